"""Where `dnc export` and `dnc scrub` write (CONTRACT section 5): a failure leaves the file
that was there as it was, an output that fails or closes early is exit status 1 with one
line and no traceback, and a read never creates a registry where there was none."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import redis
from conftest import assert_cli_error
from test_cli_errors import DNC, dnc

from loader.load import load_files
from registry.embedded import RedisProcess, free_port

pytestmark = pytest.mark.slow

OLD_LIST = "+12125550000\n"


def environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("DNC_")}


def assert_failure(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert_cli_error(result, 1, *words)


def load_many(redis_url: str, tmp_path: Path, count: int) -> None:
    path = tmp_path / "many.txt"
    path.write_text("".join(f"+1212{2_000_000 + i:07d}\n" for i in range(count)))
    client = redis.Redis.from_url(redis_url)
    try:
        load_files(
            client, [path], fmt="e164", column=None, region="US", remove=False,
            retention_days=153, progress=False,
        )  # fmt: skip
    finally:
        client.close()


@pytest.mark.parametrize("since", [None, "0"])
def test_export_with_redis_down_keeps_the_previous_file(tmp_path: Path, since: str | None) -> None:
    out = tmp_path / "list.txt"
    out.write_text(OLD_LIST)
    args = ["export", "-o", str(out)] + (["--since", since] if since else [])
    result = dnc(*args, DNC_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert_failure(result, "Redis")
    assert out.read_text() == OLD_LIST
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.txt"]


def test_export_replaces_the_file_when_done(redis_url: str, tmp_path: Path) -> None:
    load_many(redis_url, tmp_path, 3)
    out = tmp_path / "list.txt"
    out.write_text(OLD_LIST)
    result = dnc("export", "-o", str(out), DNC_REDIS_URL=redis_url)
    assert result.returncode == 0, result.stderr
    assert out.read_text() == "+12122000000\n+12122000001\n+12122000002\n"
    assert not out.with_name("list.txt.part").exists()


def test_export_to_a_device_is_written_in_place(redis_url: str, tmp_path: Path) -> None:
    load_many(redis_url, tmp_path, 1)
    link = tmp_path / "stdout"
    link.symlink_to("/dev/stdout")
    result = dnc("export", "-o", str(link), DNC_REDIS_URL=redis_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "+12122000000\n"
    assert link.is_symlink() and not tmp_path.joinpath("stdout.part").exists()


def test_export_to_dev_stdout_redirected_to_a_file_writes_the_file(
    redis_url: str, tmp_path: Path
) -> None:
    """`dnc export -o /dev/stdout > list.txt`: the path leads to a regular file, and renaming
    over it replaced the system's /dev/stdout link with a file. (Through a link of the
    test's own, so a regression breaks only it.)"""
    load_many(redis_url, tmp_path, 1)
    link = tmp_path / "stdout"
    link.symlink_to("/dev/stdout")
    captured = tmp_path / "captured.txt"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DNC_")}
    with captured.open("wb") as stdout:
        result = subprocess.run(
            [*DNC, "export", "-o", str(link)],
            env={**environment, "DNC_REDIS_URL": redis_url},
            stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert captured.read_text() == "+12122000000\n"
    assert link.is_symlink() and not tmp_path.joinpath("stdout.part").exists()


def test_export_through_a_link_to_a_file_replaces_the_file_and_keeps_the_link(
    redis_url: str, tmp_path: Path
) -> None:
    load_many(redis_url, tmp_path, 2)
    real = tmp_path / "lists" / "2026-11-30.txt"
    real.parent.mkdir()
    real.write_text(OLD_LIST)
    latest = tmp_path / "latest.txt"
    latest.symlink_to(real)
    result = dnc("export", "-o", str(latest), DNC_REDIS_URL=redis_url)
    assert result.returncode == 0, result.stderr
    assert latest.is_symlink() and latest.resolve() == real
    assert real.read_text() == "+12122000000\n+12122000001\n"
    assert sorted(p.name for p in real.parent.iterdir()) == ["2026-11-30.txt"]


def test_export_to_a_full_device_exits_1(redis_url: str, tmp_path: Path) -> None:
    load_many(redis_url, tmp_path, 1)
    assert_failure(dnc("export", "-o", "/dev/full", DNC_REDIS_URL=redis_url), "/dev/full")


def test_export_to_a_file_the_kernel_refuses_is_one_line(redis_url: str, tmp_path: Path) -> None:
    load_many(redis_url, tmp_path, 1)
    result = dnc("export", "-o", "/proc/version", DNC_REDIS_URL=redis_url)
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "/proc/version" in result.stderr


def test_export_into_a_closed_pipe_exits_1_with_one_line(redis_url: str, tmp_path: Path) -> None:
    load_many(redis_url, tmp_path, 50_000)
    with subprocess.Popen(
        [*DNC, "export"],
        env={**environment(), "DNC_REDIS_URL": redis_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline() == b"+12122000000\n"
        process.stdout.close()  # as `| head -1` does
        stderr = process.stderr.read().decode()
        status = process.wait(60)
    assert status == 1, stderr
    assert stderr.strip().splitlines() == ["dnc: the output was closed before the list ended"]


def test_an_empty_output_name_is_a_usage_error(redis_url: str, tmp_path: Path) -> None:
    """`-o "$OUT"` with OUT unset wrote the list to stdout, as an empty --since or
    --region would have been read as 0 or the default: refused as they are."""
    listing = tmp_path / "list.txt"
    listing.write_text("+12125551234\n")
    for args in (["export"], ["export", "--since", "0"], ["scrub", str(listing)]):
        for empty in ("", " "):
            result = dnc(*args, "-o", empty, DNC_REDIS_URL=redis_url)
            assert_cli_error(result, 2, "-o is empty")
            assert result.stdout == ""
    assert dnc("export", "-o", "-", DNC_REDIS_URL=redis_url).returncode == 0


# -- no registry here ------------------------------------------------------------------------


def leave_an_empty_redis(data: Path) -> None:
    """What `dnc export` used to do in a mistyped DNC_DATA_DIR: start a Redis there and stop it."""
    server = RedisProcess(data)
    server.start()
    server.stop()


def files_in(data: Path) -> list[str] | None:
    return sorted(p.name for p in data.iterdir()) if data.exists() else None


@pytest.mark.parametrize("empty", [False, True], ids=["no-directory", "empty-redis-left"])
def test_reads_in_a_data_dir_without_a_registry_fail_and_create_none(
    tmp_path: Path, empty: bool
) -> None:
    data = tmp_path / "typo"
    if empty:
        leave_an_empty_redis(data)
    before = files_in(data)
    listing = tmp_path / "list.txt"
    listing.write_text("+12125551234\n")
    out = tmp_path / "out.txt"
    out.write_text(OLD_LIST)
    for args in (["export"], ["export", "--since", "0"], ["scrub", str(listing)]):
        result = dnc(*args, "-o", str(out), DNC_DATA_DIR=str(data))
        assert_failure(result, str(data))
        assert result.stdout == "" and out.read_text() == OLD_LIST
        assert files_in(data) == before


def test_reads_at_a_redis_url_without_a_registry_fail(redis_url: str, tmp_path: Path) -> None:
    """A wrong host or database number in DNC_REDIS_URL: before, an empty Redis scrubbed
    every number callable and exported an empty list, with exit 0."""
    client = redis.Redis.from_url(redis_url)
    client.flushall()  # not even the marker a new registry has
    client.close()
    listing = tmp_path / "list.txt"
    listing.write_text("+12125551234\n")
    for args in (["export"], ["export", "--since", "0"], ["scrub", str(listing)]):
        result = dnc(*args, DNC_REDIS_URL=redis_url)
        assert_failure(result, "no registry at DNC_REDIS_URL")
        assert result.stdout == ""
    assert dnc("load", str(listing), DNC_REDIS_URL=redis_url).returncode == 0
    scrub = dnc("scrub", str(listing), DNC_REDIS_URL=redis_url)
    assert scrub.stdout.splitlines()[1:] == ["+12125551234,+12125551234,blocked"], scrub.stderr


def test_reads_of_a_registry_that_load_made(tmp_path: Path) -> None:
    data = tmp_path / "dnc-data"
    listing = tmp_path / "list.txt"
    listing.write_text("+12125551234\n")
    assert dnc("load", str(listing), DNC_DATA_DIR=str(data)).returncode == 0
    export = dnc("export", DNC_DATA_DIR=str(data))
    assert (export.returncode, export.stdout) == (0, "+12125551234\n"), export.stderr
    scrub = dnc("scrub", str(listing), DNC_DATA_DIR=str(data))
    assert scrub.returncode == 0, scrub.stderr
    assert scrub.stdout.splitlines()[1] == "+12125551234,+12125551234,blocked"
