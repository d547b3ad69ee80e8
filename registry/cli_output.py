"""Where `dnc` commands write, and the two ways they fail (registry/cli.py).

A failure is one line on stderr and an exit status: `UsageError` 2 (bad arguments or
input), `Failure` 1 (anything else), CONTRACT section 5.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


class UsageError(Exception):
    """Bad arguments or input: exit status 2."""


class Failure(Exception):
    """Anything else that stops a command: exit status 1."""


class Output:
    """Where a command writes: stdout or a file. A write that fails (a closed pipe, a full
    disk, a device that refuses) ends the command with one line, exit status 1."""

    def __init__(self, file: BinaryIO, name: str) -> None:
        self.file = file
        self.name = name

    def write(self, data: bytes | str) -> None:
        left = memoryview(data.encode() if isinstance(data, str) else data)
        try:
            # A big write into a pipe closed meanwhile can come back short, with no
            # error and the rest dropped: the write of the rest is what fails.
            while left:
                left = left[self.file.write(left) :]
        except OSError as exc:
            raise self._failed(exc) from None

    def flush(self) -> None:
        try:
            self.file.flush()
        except OSError as exc:
            raise self._failed(exc) from None

    def close(self) -> None:
        try:
            self.file.close()
        except OSError as exc:
            raise self._failed(exc) from None

    def discard(self) -> None:
        """Close without a word: after a failure, what is still buffered can go."""
        with contextlib.suppress(OSError):
            self.file.close()

    def _failed(self, exc: OSError) -> Failure:
        if self.file is sys.stdout.buffer:
            # Python flushes stdout once more at exit, into the same dead end, and would
            # print a second error under ours; what is left goes to /dev/null instead.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        if isinstance(exc, BrokenPipeError):
            return Failure("the output was closed before the list ended")
        return Failure(f"{self.name}: cannot write: {exc.strerror or exc}")


@contextlib.contextmanager
def output(name: str | None) -> Iterator[Output]:
    """stdout, or FILE written whole: it appears under its name only when the command is
    done, and a command that fails leaves the FILE that was there as it was.

    `-` is stdout. Something there already that is no regular file (a pipe, a device), or
    a path into /dev or /proc (/dev/stdout, even when it leads to a file a shell redirected
    to), is written in place: renaming over it would replace the device node or the
    system's link. A symlink to a file is followed: the file it leads to is replaced
    whole, and the link stays."""
    if name is not None and not name.strip():
        # `-o "$OUT"` with OUT unset: a list meant for a file would scroll past on a
        # terminal or go down a pipe instead. `-` is stdout, and so is no -o at all.
        raise UsageError("-o is empty: name a file, or '-' (or no -o) for stdout")
    if name is None or name == "-":
        stdout = Output(sys.stdout.buffer, "stdout")
        yield stdout
        stdout.flush()
        return
    final = Path(name)
    if final.is_dir():  # found now, not when the finished output cannot take its name
        raise UsageError(f"{name}: cannot write: Is a directory")
    in_place = final.exists() and (not final.is_file() or _system_path(final))
    if not in_place and final.is_symlink():
        final = final.resolve()  # the file it leads to (or would create), not the link
    target = final if in_place else final.with_name(final.name + ".part")
    try:
        out = Output(target.open("wb"), name)
    except OSError as exc:
        beside = f" {target.name} beside it" if target != final and final.exists() else ""
        raise UsageError(f"{name}: cannot write{beside}: {exc.strerror or exc}") from None
    try:
        yield out
        out.close()
        if not in_place:
            try:
                target.replace(final)
            except OSError as exc:
                raise UsageError(f"{name}: cannot write: {exc.strerror or exc}") from None
    finally:
        out.discard()
        if not in_place:
            target.unlink(missing_ok=True)


def _system_path(path: Path) -> bool:
    """A path into /dev or /proc, through links or not: never renamed over."""
    places = (path.absolute(), path.resolve())
    return any(p.parts[1:2] in (("dev",), ("proc",)) for p in places)
