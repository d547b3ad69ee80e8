"""`dnc load`: bulk registrations (or removals) from files, straight into Redis.

Files are read in chunks (CSV files CHUNK lines at a time, FTC and E.164 files
BLOCK bytes at a time, see loader.formats), so a 10-million-line file needs the
memory of one chunk: each chunk is normalized in one batch, its invalid lines
go to `FILE.rejects.csv`, and its valid numbers are written bucket by bucket
(loader.bulk). Every file is checked before the first one is loaded, so a bad
file or a missing column stops the command before anything changes.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from loader import blocks
from loader.bulk import BulkWriter
from loader.formats import FORMATS, Chunk, LoadError, Record, Source, open_source
from loader.progress import Progress

__all__ = ["BLOCK", "CHUNK", "LoadError", "LoadResult", "load_files", "rejects_path"]

CHUNK = 200_000
BLOCK = blocks.BLOCK
REJECTS_HEADER = ("line", "input", "reason")


@dataclass
class LoadResult:
    """What a load did. With `remove`, `loaded` counts the numbers removed and
    `present` the valid numbers that were not registered (nothing to remove)."""

    loaded: int = 0
    present: int = 0
    invalid: int = 0
    rejects: list[Path] = field(default_factory=list)


def rejects_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.csv")


def load_files(
    client: Any,
    paths: list[Path],
    *,
    fmt: str,
    column: str | None,
    region: str,
    remove: bool,
    retention_days: int,
    progress: bool,
) -> LoadResult:
    """Load (or with `remove`, remove) every valid number in `paths`.

    `loaded` counts numbers newly registered; `present` the valid inputs that
    were registered already, duplicates within the input included.
    """
    if fmt not in FORMATS:
        raise LoadError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if column is not None and fmt in ("e164", "ftc"):
        raise LoadError(f"--column names a CSV column; {fmt} files have none")
    sources = [open_source(path, fmt, column, region) for path in paths]
    sizes = [path.stat().st_size for path in paths]
    meter = Progress(sum(sizes), progress)
    writer = BulkWriter(client, retention_days)
    result = LoadResult()
    for source, size in zip(sources, sizes, strict=True):
        _load_source(source, writer, region, remove, result, meter)
        meter.file_done(size)
    meter.finish()
    return result


def _load_source(
    source: Source,
    writer: BulkWriter,
    region: str,
    remove: bool,
    result: LoadResult,
    meter: Progress,
) -> None:
    with source.path.open("rb") as file, Rejects(rejects_path(source.path)) as rejects:
        for chunk in _read_ahead(source.chunks(file, region, CHUNK, BLOCK)):
            rejects.write(chunk.invalid)
            numbers = chunk.numbers
            changed = writer.remove(numbers) if remove else writer.add(numbers)
            result.loaded += changed
            result.present += len(numbers) - changed
            result.invalid += len(chunk.invalid)
            meter.advance(chunk.position, chunk.lines)
    if rejects.written:
        result.rejects.append(rejects.path)


def _read_ahead(chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """The chunks, each next one read in a thread while the caller writes this one:
    numpy and the Redis socket both release the GIL, so reading and writing overlap."""
    with ThreadPoolExecutor(max_workers=1) as reader:
        ahead = reader.submit(next, chunks, None)
        while (chunk := ahead.result()) is not None:
            ahead = reader.submit(next, chunks, None)
            yield chunk


class Rejects:
    """`FILE.rejects.csv`, created at the first invalid line.

    A rejects file left by an earlier run is removed on entry, and the one a load
    stopped partway (interrupted, or a file found unreadable further on) writes is
    removed on exit: the file that exists after a load always belongs to a whole load.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: TextIO | None = None
        self.written = 0

    def __enter__(self) -> Rejects:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            raise LoadError(f"{self.path}: cannot remove the old rejects file: {exc}") from None
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if self.file is not None:
            self.file.close()
        if kind is not None and self.file is not None:
            self.path.unlink(missing_ok=True)

    def write(self, records: Iterable[Record]) -> None:
        rows = [(record.line, record.input, record.reason) for record in records]
        if not rows:
            return
        writer = csv.writer(self._open(), lineterminator="\n")
        writer.writerows(rows)
        self.written += len(rows)

    def _open(self) -> TextIO:
        if self.file is None:
            try:
                self.file = self.path.open("w", encoding="utf-8", newline="")
            except OSError as exc:
                raise LoadError(f"{self.path}: cannot write the rejects file: {exc}") from None
            csv.writer(self.file, lineterminator="\n").writerow(REJECTS_HEADER)
        return self.file
