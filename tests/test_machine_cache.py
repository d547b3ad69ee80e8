"""registry/machine_cache.py: a machine kept on disk is the machine built, or it is built.

The machines decide every fast-path answer, so a kept one must be exactly what the
builder makes, and anything else on disk (cut short, altered, from another build) must
be built again rather than believed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from registry import machine_cache, parse_machines
from registry.digit_automata import Dfa
from registry.machine_cache import MachineCache


class Builder:
    """The US national machine, built afresh and counted."""

    def __init__(self) -> None:
        self.builds = 0

    def __call__(self) -> Dfa:
        self.builds += 1
        metadata = parse_machines.PhoneMetadata.metadata_for_region("US", None)
        return parse_machines._built(1, metadata)


def kept_file(directory: Path) -> Path:
    [path] = directory.glob("*.npz")
    return path


def same(a: Dfa, b: Dfa) -> bool:
    return a.trans == b.trans and a.labels == b.labels


def test_a_kept_machine_is_the_machine_built_and_is_not_built_again(tmp_path: Path) -> None:
    build = Builder()
    built = MachineCache(tmp_path).get("national-US", build)
    assert build.builds == 1
    again = MachineCache(tmp_path).get("national-US", build)  # as another process would
    assert build.builds == 1
    assert same(again, built)
    assert again.label("2125551234") == built.label("2125551234")
    assert kept_file(tmp_path).name == f"national-US-{machine_cache.fingerprint()}.npz"


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # cut short
        lambda data: b"",  # empty
        lambda data: b"not a zip file at all",
    ],
)
def test_a_kept_file_that_cannot_be_read_is_built_again(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    build = Builder()
    built = MachineCache(tmp_path).get("national-US", build)
    path = kept_file(tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    again = MachineCache(tmp_path).get("national-US", build)
    assert build.builds == 2 and same(again, built)
    assert same(MachineCache(tmp_path).get("national-US", build), built)  # and rewritten
    assert build.builds == 2


def test_a_kept_machine_altered_on_disk_is_not_believed(tmp_path: Path) -> None:
    build = Builder()
    built = MachineCache(tmp_path).get("national-US", build)
    path = kept_file(tmp_path)
    with np.load(path) as kept:
        trans, labels, digest = kept["trans"].copy(), kept["labels"], kept["digest"]
    trans[0, 2] = (trans[0, 2] + 1) % len(trans)  # one transition, checksum left as it was
    np.savez(path, trans=trans, labels=labels, digest=digest)
    assert same(MachineCache(tmp_path).get("national-US", build), built)
    assert build.builds == 2


def test_a_machine_of_another_build_is_not_used_and_is_removed(tmp_path: Path) -> None:
    other = tmp_path / "national-US-0123456789abcdef0123.npz"
    MachineCache(tmp_path).get("national-US", Builder())
    kept_file(tmp_path).rename(other)
    build = Builder()
    MachineCache(tmp_path).get("national-US", build)
    assert build.builds == 1
    assert not other.exists()
    assert kept_file(tmp_path).name.endswith(f"{machine_cache.fingerprint()}.npz")


def test_a_directory_that_cannot_be_written_only_costs_a_build(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the directory would be")
    build = Builder()
    for _ in range(2):
        machine = MachineCache(blocked / "machines").get("national-US", build)
        assert machine.label("2125551234") != 0
    assert build.builds == 2
    assert list(tmp_path.iterdir()) == [blocked]  # and no temporary file left about


def test_without_a_directory_every_machine_is_built(tmp_path: Path) -> None:
    build = Builder()
    MachineCache(None).get("national-US", build)
    MachineCache(None).get("national-US", build)
    assert build.builds == 2
