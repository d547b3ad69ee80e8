"""The parse machines, kept on disk from one process to the next.

Building a region's machines from phonenumbers' metadata (registry/parse_machines.py)
takes about half a second of CPU, which every `dnc scrub` and `dnc load` and every API
worker as it starts would pay again for the same answer. A machine built once is kept
as two arrays in an .npz file under the user's cache directory, named by a fingerprint
of everything it was built from: the phonenumbers version and the source of the modules
that build it, so that a new version of either builds afresh and no machine outlives
the code that made it.

A file is only a cache: one that cannot be read, has the wrong shape or fails its
checksum is built again and rewritten, and a directory that cannot be written (no home
directory, a read-only one) only makes every process build its own machines as before.
Files are written whole under a temporary name and renamed, so processes building the
same machine at once never read half of one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import phonenumbers

from registry.digit_automata import DIGITS, Dfa

# Bumped when the file layout changes.
FORMAT = 1
# The modules whose source decides what a machine is.
_SOURCES = ("digit_automata.py", "number_metadata.py", "parse_machines.py", "machine_cache.py")


@functools.cache
def fingerprint() -> str:
    """What the machines on disk must have been built from to be used."""
    digest = hashlib.sha256(f"{FORMAT} {phonenumbers.__version__}".encode())
    here = Path(__file__).parent
    for name in _SOURCES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:20]


def default_directory() -> Path | None:
    """~/.cache/dnc-registry/machines, or None where there is no home directory."""
    try:
        return Path.home() / ".cache" / "dnc-registry" / "machines"
    except (RuntimeError, KeyError):
        return None


class MachineCache:
    """Machines by name in `directory`; None keeps nothing (every machine is built)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def get(self, name: str, build: Callable[[], Dfa]) -> Dfa:
        """The machine `name` from disk if it was kept, else `build()`, then kept."""
        if self.directory is None:
            return build()
        path = self.directory / f"{name}-{fingerprint()}.npz"
        found = _read(path)
        if found is not None:
            return found
        machine = build()
        self._write(path, machine)
        return machine

    def _write(self, path: Path, machine: Dfa) -> None:
        trans = np.array(machine.trans, dtype=np.int32).reshape(-1, DIGITS)
        labels = np.array(machine.labels, dtype=np.int32)
        temporary = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(handle, "wb") as out:
                np.savez(out, trans=trans, labels=labels, digest=_digest(trans, labels))
            os.replace(temporary, path)
            temporary = None
            self._forget_others(path)
        except OSError:
            pass  # a cache that cannot be written: the next process builds it too
        finally:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)

    def _forget_others(self, kept: Path) -> None:
        """Machines of an older phonenumbers or an older build of this code."""
        current = fingerprint()
        for path in kept.parent.glob("*.npz"):
            if not path.stem.endswith(current):
                with contextlib.suppress(OSError):
                    path.unlink()


def _digest(trans: np.ndarray, labels: np.ndarray) -> np.ndarray:
    digest = hashlib.sha256(trans.tobytes() + b"|" + labels.tobytes()).digest()
    return np.frombuffer(digest, dtype=np.uint8)


def _read(path: Path) -> Dfa | None:
    """The machine kept at `path`, or None if there is none, or none whole and sound."""
    try:
        with np.load(path, allow_pickle=False) as kept:
            trans, labels, digest = kept["trans"], kept["labels"], kept["digest"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    sound = (
        trans.dtype == np.int32
        and labels.dtype == np.int32
        and trans.ndim == 2
        and trans.shape[1] == DIGITS
        and labels.shape == (len(trans),)
        and len(trans) > 0
        and np.array_equal(digest, _digest(trans, labels))
        and int(trans.min()) >= 0
        and int(trans.max()) < len(trans)
    )
    return Dfa(trans.tolist(), labels.tolist()) if sound else None
