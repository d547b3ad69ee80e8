"""`dnc` on bad arguments and input (CONTRACT section 5): exit status 2 and one line on
stderr, never a traceback, and nothing written to the registry.

An output file that cannot be written is bad input as much as a bad flag is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from conftest import assert_cli_error

from registry.embedded import free_port
from registry.store import keys

pytestmark = pytest.mark.slow

_installed = Path(sys.executable).with_name("dnc")
DNC = [str(_installed)] if _installed.exists() else [sys.executable, "-m", "registry.cli"]
NATIONAL = "2125551234\n(212) 555-1235\n"


def dnc(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("DNC_")}
    environment.update(env)
    return subprocess.run(
        [*DNC, *args], env=environment, capture_output=True, text=True, timeout=60, cwd=cwd
    )


def assert_bad_input(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert_cli_error(result, 2, *words)


def unwritable(tmp_path: Path) -> dict[str, Path]:
    """Output paths no one can write, root included: in a missing directory, and a directory."""
    directory = tmp_path / "a-directory"
    directory.mkdir()
    return {"missing-dir": tmp_path / "no-such-dir" / "out.txt", "directory": directory}


@pytest.mark.parametrize("kind", ["missing-dir", "directory"])
@pytest.mark.parametrize("since", [None, "0"])
def test_export_to_a_file_that_cannot_be_written(
    redis_url: str, tmp_path: Path, kind: str, since: str | None
) -> None:
    out = unwritable(tmp_path)[kind]
    args = ["export", "-o", str(out)] + (["--since", since] if since else [])
    assert_bad_input(dnc(*args, DNC_REDIS_URL=redis_url), str(out))


@pytest.mark.parametrize("kind", ["missing-dir", "directory"])
def test_scrub_to_a_file_that_cannot_be_written(redis_url: str, tmp_path: Path, kind: str) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text(NATIONAL)
    out = unwritable(tmp_path)[kind]
    assert_bad_input(dnc("scrub", str(listing), "-o", str(out), DNC_REDIS_URL=redis_url), str(out))
    assert not list(out.parent.glob("*.part"))


def test_load_whose_rejects_file_cannot_be_written(redis_url: str, tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("not a number\n")
    (tmp_path / "list.txt.rejects.csv").mkdir()
    assert_bad_input(dnc("load", str(listing), DNC_REDIS_URL=redis_url), "rejects")


@pytest.mark.parametrize("region", ["ZZ", "XYZ", "12"])
def test_load_with_an_unknown_region(redis_url: str, tmp_path: Path, region: str) -> None:
    listing = tmp_path / "national.txt"
    listing.write_text(NATIONAL)
    assert_bad_input(
        dnc("load", str(listing), "--region", region, DNC_REDIS_URL=redis_url), repr(region)
    )
    assert not (tmp_path / "national.txt.rejects.csv").exists()
    client = redis.Redis.from_url(redis_url)
    assert client.scard(keys.BUCKETS) == 0
    client.close()


def test_load_and_scrub_refuse_an_unknown_region_alike(redis_url: str, tmp_path: Path) -> None:
    listing = tmp_path / "national.txt"
    listing.write_text(NATIONAL)
    load = dnc("load", str(listing), "--region", "ZZ", DNC_REDIS_URL=redis_url)
    scrub = dnc("scrub", str(listing), "--region", "ZZ", DNC_REDIS_URL=redis_url)
    assert_bad_input(load)
    assert load.stderr == scrub.stderr


def not_a_file(tmp_path: Path, kind: str) -> tuple[str, str]:
    """A FILE argument that is no regular file, and what the one line says it is."""
    if kind == "directory":
        (tmp_path / "lists").mkdir()
        return str(tmp_path / "lists"), "is a directory"
    return "/dev/stdin", "not a regular file"


@pytest.mark.parametrize("kind", ["directory", "pipe"])
@pytest.mark.parametrize("command", ["load", "scrub"])
def test_a_file_that_is_no_regular_file_is_named_for_what_it_is(
    redis_url: str, tmp_path: Path, command: str, kind: str
) -> None:
    """Not "no such file": it is there, and the line says what it is instead (stdin is a
    pipe here, which neither command can read twice)."""
    name, words = not_a_file(tmp_path, kind)
    result = subprocess.run(
        [*DNC, command, name],
        env={**os.environ, "DNC_REDIS_URL": redis_url},
        input="+12125551234\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_bad_input(result, name, words)
    assert "no such file" not in result.stderr
    client = redis.Redis.from_url(redis_url)
    assert client.scard(keys.BUCKETS) == 0
    client.close()


@pytest.mark.parametrize(
    "args",
    [
        ["load", "{list}", "--region", ""],
        ["scrub", "{list}", "--region", ""],
        ["scrub", "{list}", "--region", " "],
        ["export", "--since", ""],
    ],
)
def test_an_empty_value_is_bad_input_not_the_default(
    redis_url: str, tmp_path: Path, args: list[str]
) -> None:
    """`--region ""` is not "no region" (DNC_DEFAULT_REGION), nor `--since ""` cursor 0."""
    listing = tmp_path / "national.txt"
    listing.write_text(NATIONAL)
    result = dnc(*[a.replace("{list}", str(listing)) for a in args], DNC_REDIS_URL=redis_url)
    assert_bad_input(result, args[-2], "empty")
    assert result.stdout == ""
    client = redis.Redis.from_url(redis_url)
    assert client.scard(keys.BUCKETS) == 0
    client.close()


@pytest.mark.parametrize("prefix", ["1212", "", "+", "+0", "+1212x", " +1212", "+1234567890123456"])
def test_export_applies_the_prefix_rule_of_operators_create(redis_url: str, prefix: str) -> None:
    export = dnc("export", "--prefix", prefix, DNC_REDIS_URL=redis_url)
    create = dnc("operators", "create", "Acme", "--prefix", prefix, DNC_REDIS_URL=redis_url)
    assert_bad_input(export, repr(prefix))
    assert_bad_input(create, repr(prefix))
    assert export.stderr == create.stderr and export.stdout == ""


def test_export_to_dash_is_stdout(redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushall()
    finally:
        client.close()
    (tmp_path / "one.txt").write_text("+12125551234\n")
    assert dnc("load", "one.txt", DNC_REDIS_URL=redis_url, cwd=tmp_path).returncode == 0
    result = dnc("export", "-o", "-", DNC_REDIS_URL=redis_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "+12125551234\n"
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--rate-limit", "0"], ["--rate-limit", "1"]),
        (["--rate-limit", "-5"], ["--rate-limit", "1"]),
        (["--rate-limit", "\u0661\u0660"], ["'\u0661\u0660'", "0-9"]),  # Arabic-Indic 10
        (["--prefix", "+1212x"], ["'+1212x'"]),
        (["--caller", "3125550100"], ["'3125550100'", "E.164"]),
    ],
)
def test_operators_create_applies_the_rules_of_the_api(
    redis_url: str, args: list[str], words: list[str]
) -> None:
    """POST /v1/operators answers 400 to these; the command line refuses them alike."""
    result = dnc("operators", "create", "Acme", *args, DNC_REDIS_URL=redis_url)
    assert_bad_input(result, *words)
    assert result.stdout == ""
    client = redis.Redis.from_url(redis_url)
    assert client.keys() == [keys.EPOCH.encode()]  # the registry as it was: no account
    client.close()


def test_operators_create_refuses_a_name_the_api_refuses(redis_url: str) -> None:
    result = dnc("operators", "create", "x" * 201, DNC_REDIS_URL=redis_url)
    assert_bad_input(result, "200")
    assert dnc("operators", "create", "x" * 200, DNC_REDIS_URL=redis_url).returncode == 0


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (["load", "--bogus", "x"], "usage: dnc load "),
        (["export", "extra"], "usage: dnc export "),
        (["operators", "create", "Acme", "--bogus"], "usage: dnc operators create "),
    ],
)
def test_a_usage_error_shows_the_usage_of_its_command(args: list[str], usage: str) -> None:
    result = dnc(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(usage), result.stderr
    assert "unrecognized arguments" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("args", [["scrub"], ["scrub", "x", "--channel", "fax"], ["load", "-x"]])
def test_a_usage_error_is_the_usage_line_and_one_line(args: list[str]) -> None:
    """However wide the usage and however narrow the terminal, as CONTRACT section 5 says."""
    result = dnc(*args, COLUMNS="40")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    usage, error = result.stderr.strip().splitlines()
    assert usage.startswith(f"usage: dnc {args[0]} ") and usage.endswith(
        "FILE" if args[0] == "scrub" else "...]"
    )
    assert error.startswith(f"dnc {args[0]}: error: ")


def test_operators_create_declares_callers_once(redis_url: str) -> None:
    """A caller another active operator declared is refused, and nothing is created."""
    first = dnc("operators", "create", "Acme", "--caller", "+1 312 555 0100", "--caller",
                "AcmeBank", DNC_REDIS_URL=redis_url)  # fmt: skip
    assert first.returncode == 0, first.stderr
    again = dnc("operators", "create", "Copycat", "--caller", "ACMEBANK", DNC_REDIS_URL=redis_url)
    assert_bad_input(again, "--caller ACMEBANK", "another active operator")
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.scard(keys.OPERATORS) == 1
        owners = client.hgetall(keys.CALLERS)
        assert sorted(owners) == [b"+13125550100", b"ACMEBANK"]
        client.flushall()
    finally:
        client.close()


def test_operators_create_takes_several_prefixes_after_one_flag_or_the_flag_repeated(
    redis_url: str,
) -> None:
    """The contract writes `--prefix +1212 ...`: both readings of it work."""
    client = redis.Redis.from_url(redis_url)
    try:
        for args in (
            ["Acme", "--prefix", "+1212", "+1312"],
            ["Acme", "--prefix", "+1212", "--prefix", "+1312"],
            ["--prefix", "+1212", "+1312", "Acme"],  # the name after the list is still the name
            ["--role", "operator", "--prefix", "+1212", "--prefix", "+1312", "Acme"],
        ):
            client.flushall()
            result = dnc("operators", "create", *args, DNC_REDIS_URL=redis_url)
            assert result.returncode == 0, result.stderr
            [operator_id] = [o.decode() for o in client.smembers(keys.OPERATORS)]
            record = client.hgetall(keys.operator(operator_id))
            assert record[b"name"] == b"Acme", (args, record)
            assert b"+1212" in record[b"prefixes"] and b"+1312" in record[b"prefixes"], record
            assert b"Acme" not in record[b"prefixes"]
        client.flushall()
    finally:
        client.close()


@pytest.mark.parametrize("args", [["--prefix", "+1212"], ["--prefix", "+1212", "+1312"], []])
def test_operators_create_without_a_name_is_a_usage_error(redis_url: str, args: list[str]) -> None:
    result = dnc("operators", "create", *args, DNC_REDIS_URL=redis_url)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("usage: dnc operators create [-h] NAME "), result.stderr
    assert result.stderr.strip().endswith("required: NAME"), result.stderr
    assert result.stdout == ""
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.keys() == [keys.EPOCH.encode()]  # the registry as it was: no account
    finally:
        client.close()


@pytest.mark.parametrize("where", ["a-file", "under-a-file", "/proc/dnc-registry"])
@pytest.mark.parametrize("command", [["serve"], ["operators", "create", "Acme"], ["load", "x.txt"]])
def test_a_data_dir_that_cannot_be_a_directory_is_one_line_not_a_traceback(
    tmp_path: Path, where: str, command: list[str]
) -> None:
    (tmp_path / "a-file").write_text("")
    (tmp_path / "x.txt").write_text("+12125551234\n")
    data = {"a-file": tmp_path / "a-file", "under-a-file": tmp_path / "a-file" / "sub"}.get(
        where, Path(where)
    )
    result = dnc(*command, cwd=tmp_path, DNC_DATA_DIR=str(data), DNC_PORT=str(free_port()))
    assert_bad_input(result, "DNC_DATA_DIR", str(data))
