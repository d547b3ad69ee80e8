"""How a CSV list's header is read: which column holds the numbers, and a file whose
columns are not separated by commas. One set of rules for `dnc load`, `dnc scrub` and
the scrub endpoint, so a file is read the same way by all three."""

from __future__ import annotations


def column_index(header: list[str], column: str) -> int | None:
    """Where `column` is in a header row; names and cells are read trimmed (` Phone ` is
    `Phone`), by `dnc load` and `dnc scrub` alike. None when no cell has that name, when
    several do (which one holds the numbers would be a guess, and a wrong guess loads or
    washes the wrong column), or when the name is empty (an unset variable in a script)."""
    names = [name.strip() for name in header]
    wanted = column.strip()
    if not wanted or names.count(wanted) != 1:
        return None
    return names.index(wanted)


def other_separator(header: list[str], first_row: list[str] | None) -> str | None:
    """Why a CSV read with commas is one of another separator, if it is: a header of one
    cell holding `;` or a tab, as the first row is (Excel writes `;` where the decimal
    mark is a comma). Read as it is, every row's one cell is no number."""
    if len(header) != 1 or first_row is None or len(first_row) != 1:
        return None
    for separator, name in ((";", "semicolons"), ("\t", "tabs")):
        if separator in header[0] and separator in first_row[0]:
            return (
                f"the CSV's columns are separated by {name}, not commas (its header reads as "
                f"one column {header[0][:64]!r}); save it as CSV with commas "
                "(Excel: CSV UTF-8, comma delimited)"
            )
    return None


def no_column(header: list[str], column: str) -> str:
    """Why column_index found no column, in one line."""
    names = ", ".join(repr(name.strip()) for name in header)
    wanted = column.strip()
    if not wanted:
        return f"the column name is empty; name one of {names}"
    count = [name.strip() for name in header].count(wanted)
    if count > 1:
        return f"{count} columns are named {wanted!r}; rename all but one"
    hint = ""
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        hint = " (separated by semicolons or tabs? save it as CSV with commas)"
    return f"no column {column!r} in the header; it has {names}{hint}"
