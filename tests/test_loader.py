"""`dnc load` and `dnc export` (CONTRACT section 5), against a real redis-server.

The loader writes straight into the bucket sets; these tests check the
formats, the counts, the rejects file, the storage layout the API's Bloom
filters depend on, that a running API sees a load without a restart, and the
command line end to end.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from redis.cluster import RedisCluster

from loader import formats, load
from loader.bulk import BulkWriter
from loader.export import ExportError, export_changes, export_full
from loader.formats import detect, open_source
from loader.load import LoadError, LoadResult, load_files
from registry.store import changes, keys, setup

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster
DNC = Path(sys.executable).parent / "dnc"

DAYS = 153  # the default retention, which the test settings keep


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def run_load(
    client: redis.Redis,
    *paths: Path,
    fmt: str = "auto",
    column: str | None = None,
    region: str = "US",
    remove: bool = False,
    progress: bool = False,
) -> LoadResult:
    return load_files(
        client,
        list(paths),
        fmt=fmt,
        column=column,
        region=region,
        remove=remove,
        retention_days=153,
        progress=progress,
    )


def counts(result: LoadResult) -> tuple[int, int, int]:
    return result.loaded, result.present, result.invalid


def registered(client: redis.Redis) -> list[str]:
    """Every number in the bucket sets, as E.164, ascending."""
    found = []
    for raw in client.smembers(keys.BUCKETS):
        bucket = int(raw)
        members = np.array([int(m) for m in client.smembers(keys.numbers_set(bucket))])
        found += keys.join(bucket, members).tolist()
    return [f"+{n}" for n in sorted(found)]


def dnc(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DNC_REDIS_URL": redis_url}
    return subprocess.run(
        [str(DNC), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


# Formats


def test_e164_file_takes_national_formats_and_skips_blank_lines(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = write(tmp_path / "list.txt", "+12125551234\n\n(212) 555-1235\r\n  212.555.1236  \n")
    result = run_load(redis_client, path, fmt="e164")
    assert counts(result) == (3, 0, 0)
    assert result.rejects == []
    assert registered(redis_client) == ["+12125551234", "+12125551235", "+12125551236"]


def test_national_numbers_are_read_against_the_region(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = write(tmp_path / "beijing.txt", "010 1234 5678\n")
    assert counts(run_load(redis_client, path, region="CN")) == (1, 0, 0)
    assert registered(redis_client) == ["+861012345678"]


def test_ftc_flat_file(redis_client: redis.Redis, tmp_path: Path) -> None:
    path = write(tmp_path / "ftc.txt", "212,5551234\n415,5552671\n")
    assert counts(run_load(redis_client, path, fmt="ftc")) == (2, 0, 0)
    assert registered(redis_client) == ["+12125551234", "+14155552671"]


def test_csv_takes_the_first_column_by_default(redis_client: redis.Redis, tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", "phone,name\n+12125551234,Ann\n(415) 555-2671,Bob\n")
    assert counts(run_load(redis_client, path, fmt="csv")) == (2, 0, 0)
    assert registered(redis_client) == ["+12125551234", "+14155552671"]


def test_csv_column_by_name(redis_client: redis.Redis, tmp_path: Path) -> None:
    path = write(
        tmp_path / "list.csv",
        'name,phone\nAnn,+12125551234\n"Bob, Jr.",212-555-1235\nCid,\n',
    )
    result = run_load(redis_client, path, column="phone")
    assert counts(result) == (2, 0, 1)
    assert rejects(result) == "line,input,reason\n4,,empty\n"
    assert registered(redis_client) == ["+12125551234", "+12125551235"]


@pytest.mark.parametrize(
    ("first_line", "fmt"),
    [
        ("212,5551234", "ftc"),
        (" 212 , 5551234 ", "ftc"),
        ("phone,name", "csv"),
        ("Number", "csv"),
        ("name,phone", "csv"),
        ("+12125551234", "e164"),
        ("(212) 555-1234", "e164"),
        ("1-800-FLOWERS", "e164"),
        ("+12125551234,Ann", "e164"),
        ("2125551234", "e164"),
        # A header's names may hold digits; a data row's number starts like one or holds
        # seven digits, wherever it is.
        ("phone_e164,name", "csv"),
        ("E164", "csv"),
        ("Ann,020 7946 0018", "e164"),
        ("Ann,+12125551234", "e164"),
        ("tel:+1-212-555-1234", "e164"),
        ("１２１２５５５１２３４", "e164"),
        # Names that start with an ordinal are names, not numbers (1-800-FLOWERS is one).
        ("phone,2nd_phone", "csv"),
        ("1st phone,2nd phone", "csv"),
        ("3rd-party,phone", "csv"),
        ("1-800-FLOWERS,2nd", "e164"),
    ],
)
def test_auto_detection_from_the_first_line(first_line: str, fmt: str) -> None:
    assert detect(first_line) == fmt


@pytest.mark.parametrize(
    "content",
    [
        "\n212,5551234\n415,5552671\n",
        "\n+12125551234\n+14155552671\n",
        "phone\n+12125551234\n+14155552671\n",
        "\ufeffname,phone\nAnn,+12125551234\nBob,+14155552671\n",
    ],
    ids=["ftc", "e164", "csv", "csv-with-bom"],
)
def test_auto_loads_every_format(redis_client: redis.Redis, tmp_path: Path, content: str) -> None:
    column = "phone" if "name,phone" in content else None
    result = run_load(redis_client, write(tmp_path / "in", content), column=column)
    assert counts(result) == (2, 0, 0)
    assert registered(redis_client) == ["+12125551234", "+14155552671"]


@pytest.mark.parametrize(
    ("content", "fmt"),
    [
        (b"+12125551003\r+12125559999\r", "e164"),
        (b"212,5551003\r212,5559999", "ftc"),
        (b"phone,name\r+12125551003,a\r+12125559999,b\r", "csv"),
        (b"\xef\xbb\xbfphone\r\n+12125551003\r+12125559999\n", "csv"),
    ],
    ids=["e164", "ftc", "csv", "csv-mixed-endings"],
)
def test_a_lone_cr_ends_a_line_as_in_universal_newlines(
    redis_client: redis.Redis, tmp_path: Path, content: bytes, fmt: str
) -> None:
    """Old Mac files end their lines with CR alone; the API reads them so, and so does load."""
    path = write(tmp_path / "old-mac.txt", content)
    assert open_source(path, "auto", None, "US").format == fmt
    assert counts(run_load(redis_client, path)) == (2, 0, 0)
    assert registered(redis_client) == ["+12125551003", "+12125559999"]


def test_rejects_count_lines_ended_by_a_lone_cr(redis_client: redis.Redis, tmp_path: Path) -> None:
    path = write(tmp_path / "old-mac.txt", b"+12125551003\rnot a number\r\n\rjunk\r")
    result = run_load(redis_client, path)
    assert counts(result) == (1, 0, 2)
    assert [row.split(",")[:2] for row in rejects(result).splitlines()[1:]] == [
        ["2", "not a number"],
        ["4", "junk"],
    ]


@pytest.mark.parametrize("fmt", ["e164", "ftc"])
def test_blocks_cut_lines_at_a_lone_cr_as_the_per_line_path_does(tmp_path: Path, fmt: str) -> None:
    lines = (
        [b"+12125551003", b"(212) 555-1004", b"not a number", b"", b"+1", b"+12125551005"]
        if fmt == "e164"
        else [b"212,5551003", b"212,5551004", b"212,555", b"", b"junk", b"415,5552671"]
    )
    endings = [b"\r", b"\r\n", b"\r\r\n", b"\n", b"\r", b""]
    path = write(tmp_path / "in.txt", b"".join(a + b for a, b in zip(lines, endings, strict=True)))
    source = open_source(path, fmt, None, "US")
    with path.open("rb") as file:
        numbers, invalid = formats.normalize(list(source.records(file)), "US")
    expected = sorted(numbers.tolist()), [(r.line, r.input) for r in invalid]
    assert len(expected[0]) == 3 and [line for line, _ in expected[1]] == [3, 6]
    for block in (1, 2, 5, 13, 64, load.BLOCK):
        found: list[int] = []
        rows: list[tuple[int, str]] = []
        with path.open("rb") as file:
            for chunk in source.chunks(file, "US", 4, block):
                found += chunk.numbers.tolist()
                rows += [(r.line, r.input) for r in chunk.invalid]
        assert (sorted(found), rows) == expected, block


# Rejects


def rejects(result: LoadResult) -> str:
    assert len(result.rejects) == 1
    return result.rejects[0].read_text(encoding="utf-8")


def test_rejects_file_lists_each_invalid_line_with_its_reason(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "list.txt",
        b"+12125551234\n\n12\nhello\n2120001234\n\xff\xfe2125551235\n"
        b"  (212) 555-1236  \n+99912345\n",
    )
    result = run_load(redis_client, path)
    assert counts(result) == (2, 0, 5)
    assert result.rejects == [tmp_path / "list.txt.rejects.csv"]
    assert rejects(result) == (
        "line,input,reason\n"
        "3,12,too_short\n"
        "4,hello,not_a_number\n"
        "5,2120001234,invalid_for_region\n"
        "6,\\xff\\xfe2125551235,not_a_number\n"
        "8,+99912345,invalid_country_code\n"
    )


# Past the first 8 KiB (where a NUL byte marks a binary file and refuses it whole).
PADDING = [f"+1212555{i:04d}" for i in range(1000)]
FTC_PADDING = [f"212,555{i:04d}" for i in range(1000)]


@pytest.mark.parametrize(
    ("fmt", "padding", "lines"),
    [
        ("e164", PADDING, ["+12125571000\0", "\0+12125571001", "+1212557\x001002", "\0"]),
        ("ftc", FTC_PADDING, ["212,5571000\0", "\x00212,5571001", "212,557\x001002", "\0"]),
        (
            "csv",
            ["phone,name", *PADDING],
            ["+12125571000\0,a", "\0+12125571001", "+12125571002,\0", '+12125571003,"a\nb\0"'],
        ),
    ],
)
def test_a_line_holding_a_nul_byte_is_a_reject_and_the_rest_loads(
    redis_client: redis.Redis, tmp_path: Path, fmt: str, padding: list[str], lines: list[str]
) -> None:
    """The library reads `+12125571000\\0` as the number; a NUL is no part of a list."""
    text = "\n".join([*padding, *lines, "+12125579999" if fmt != "ftc" else "212,5579999"])
    path = write(tmp_path / "in.txt", text + "\n")
    for detected in (fmt, "auto"):
        result = run_load(redis_client, path, fmt=detected)
        assert result.invalid == len(lines)
        first = len(padding) + 1
        found = [row.split(",")[-1] for row in rejects(result).splitlines()[1:]]
        assert found == ["nul_byte"] * len(lines)
        assert f"\n{first}," in rejects(result) and "\\x00" in rejects(result)
        assert "\0" not in rejects(result)
    assert not {f"+1212557100{i}" for i in range(4)} & set(registered(redis_client))
    assert "+12125579999" in registered(redis_client)


def test_an_e164_line_in_an_ftc_file_loads_and_other_lines_say_why(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    """A `+` number is unambiguous in any file; a line that is no `areacode,number`
    says so rather than `not_a_number` (2125551234 is a number, just not an FTC line)."""
    path = write(tmp_path / "ftc.txt", "212,5551234\n+14155552671\n2125551235\n+99912345\n")
    result = run_load(redis_client, path, fmt="ftc")
    assert counts(result) == (2, 0, 2)
    assert rejects(result) == (
        "line,input,reason\n3,2125551235,not_ftc_line\n4,+99912345,invalid_country_code\n"
    )
    assert registered(redis_client) == ["+12125551234", "+14155552671"]


def test_ftc_rejects_keep_the_line_as_written(redis_client: redis.Redis, tmp_path: Path) -> None:
    path = write(tmp_path / "ftc.txt", "212,5551234\n212,555123\n999,5551234\n2125551234\n")
    result = run_load(redis_client, path, fmt="ftc")
    assert counts(result) == (1, 0, 3)
    assert rejects(result) == (
        "line,input,reason\n"
        '2,"212,555123",too_short\n'
        '3,"999,5551234",invalid_for_region\n'
        "4,2125551234,not_ftc_line\n"
    )


def test_line_numbers_run_on_across_chunks(
    redis_client: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(load, "CHUNK", 2)
    monkeypatch.setattr(load, "BLOCK", 16)
    lines = [f"+1212555{i:04d}" if i % 3 else "bad" for i in range(1, 10)]
    result = run_load(redis_client, write(tmp_path / "list.txt", "\n".join(lines) + "\n"))
    assert counts(result) == (6, 0, 3)
    assert rejects(result) == (
        "line,input,reason\n3,bad,not_a_number\n6,bad,not_a_number\n9,bad,not_a_number\n"
    )


def test_no_rejects_file_when_every_line_is_valid_and_a_stale_one_goes(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = write(tmp_path / "list.txt", "+12125551234\n")
    stale = write(tmp_path / "list.txt.rejects.csv", "line,input,reason\n1,old,too_short\n")
    result = run_load(redis_client, path)
    assert result.rejects == []
    assert not stale.exists()


# Counts


def test_duplicates_count_as_already_present(redis_client: redis.Redis, tmp_path: Path) -> None:
    path = write(tmp_path / "list.txt", "+12125551234\n(212) 555-1234\n+14155552671\nbad\n")
    assert counts(run_load(redis_client, path)) == (2, 1, 1)


def test_a_second_load_finds_everything_present_and_logs_nothing(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = write(tmp_path / "list.txt", "+12125551234\n+14155552671\n+12125551234\n")
    assert counts(run_load(redis_client, path)) == (2, 1, 0)
    entries = redis_client.xlen(keys.CHANGES)
    assert counts(run_load(redis_client, path)) == (0, 3, 0)
    assert redis_client.xlen(keys.CHANGES) == entries


def test_counts_add_up_over_several_files(redis_client: redis.Redis, tmp_path: Path) -> None:
    first = write(tmp_path / "a.txt", "+12125551234\n+14155552671\n")
    second = write(tmp_path / "b.txt", "+14155552671\n+12025550123\nbad\n")
    result = run_load(redis_client, first, second)
    assert counts(result) == (3, 1, 1)
    assert result.rejects == [tmp_path / "b.txt.rejects.csv"]


# Removal


def test_remove_counts_removed_and_not_registered(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    run_load(redis_client, write(tmp_path / "in.txt", "+12125551234\n+14155552671\n"))
    path = write(tmp_path / "out.txt", "+12125551234\n+12125551234\n+12025550123\nbad\n")
    result = run_load(redis_client, path, remove=True)
    # loaded = removed; present = valid inputs that were not registered (the repeat included).
    assert counts(result) == (1, 2, 1)
    assert registered(redis_client) == ["+14155552671"]


def test_remove_logs_only_what_it_removed(redis_client: redis.Redis, tmp_path: Path) -> None:
    run_load(redis_client, write(tmp_path / "in.txt", "+12125551234\n"))
    before = redis_client.xlen(keys.CHANGES)
    run_load(redis_client, write(tmp_path / "out.txt", "+12125551234\n+12125551299\n"), remove=True)
    entries = redis_client.xrange(keys.CHANGES, count=100)[before:]
    assert len(entries) == 1
    change = changes.decode(*entries[0])
    assert change.op == changes.REMOVE
    assert change.numbers.tolist() == [12125551234]


def test_remove_drops_the_details_of_a_number_registered_through_the_api(
    client: TestClient,
    carrier: dict[str, str],
    operator: dict[str, str],
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    assert client.put("/v1/registrations/+12125551234", headers=carrier).status_code == 201
    bucket, member = keys.bucket_of(12125551234), keys.member_of(12125551234)
    assert redis_client.hexists(keys.details(bucket), member)
    result = run_load(redis_client, write(tmp_path / "out.txt", "+12125551234\n"), remove=True)
    assert counts(result) == (1, 0, 0)
    assert not redis_client.hexists(keys.details(bucket), member)
    answer = client.get("/v1/numbers/%2B12125551234", headers=operator).json()
    assert answer["status"] == "callable"


def test_remove_keeps_the_ended_record_of_a_number_registered_one_by_one(
    client: TestClient, carrier: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    """As a deregistration does; a bulk-loaded number's record is its file and the change list."""
    assert client.put("/v1/registrations/+12125551234", headers=carrier).status_code == 201
    run_load(redis_client, write(tmp_path / "in.txt", "+12125559876\n"))
    out = write(tmp_path / "out.txt", "+12125551234\n+12125559876\n")
    assert counts(run_load(redis_client, out, remove=True)) == (2, 0, 0)
    ended = keys.ended(keys.bucket_of(12125551234), keys.member_of(12125551234))
    (record,) = redis_client.lrange(ended, 0, -1)
    at, channels, allowed, source, ended_at, who = record.decode().split("|")
    assert source.endswith(":carrier") and who == "cli" and int(ended_at) >= int(at) > 0
    assert (channels, allowed) == ("3", "0")
    assert 152 * 86400 < redis_client.ttl(ended) <= 153 * 86400
    bulk = keys.ended(keys.bucket_of(12125559876), keys.member_of(12125559876))
    assert not redis_client.exists(bulk)


# Storage layout


def test_numbers_are_int16_members_of_their_buckets(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    run_load(redis_client, write(tmp_path / "list.txt", "+12125551234\n+861012345678\n"))
    for number in (12125551234, 861012345678):
        bucket = number >> 16
        assert redis_client.smembers(keys.numbers_set(bucket)) == {
            str((number & 0xFFFF) - 32768).encode()
        }
        assert str(bucket).encode() in redis_client.smembers(keys.BUCKETS)
    assert redis_client.smembers(keys.numbers_set(12125551234 >> 16)) == {b"-17790"}


def servers(client: Any) -> list[redis.Redis]:
    """The test's Redis itself, or each node of the Cluster."""
    if isinstance(client, RedisCluster):
        return [client.get_redis_connection(node) for node in client.get_nodes()]
    return [client]


def test_big_buckets_stay_intsets_after_tune(redis_client: redis.Redis, tmp_path: Path) -> None:
    for server in servers(redis_client):
        server.config_set("set-max-intset-entries", 512)
    assert setup.tune(redis_client)
    for server in servers(redis_client):  # on a Cluster: every node, not the one redis-py picks
        assert server.config_get("set-max-intset-entries") == {"set-max-intset-entries": "65536"}
    base = (12125551234 >> 16) << 16
    lines = "".join(f"+{base + i}\n" for i in range(0, 65536, 16))  # 4096 in one bucket
    assert counts(run_load(redis_client, write(tmp_path / "big.txt", lines))) == (4096, 0, 0)
    key = keys.numbers_set(base >> 16)
    assert redis_client.scard(key) == 4096
    assert redis_client.object("encoding", key) == b"intset"
    members = sorted(int(m) for m in redis_client.smembers(key))
    assert members[0] == -32768 and members[-1] == 32767 - 15


def test_one_change_entry_per_bucket(redis_client: redis.Redis, tmp_path: Path) -> None:
    numbers = ["+12125551234", "+12125551235", "+14155552671", "+442079460958"]
    run_load(redis_client, write(tmp_path / "list.txt", "\n".join(numbers) + "\n"))
    assert redis_client.xlen(keys.CHANGES) == 3
    assert int(redis_client.get(keys.VERSION)) == 3


def test_the_writer_survives_redis_forgetting_its_scripts(redis_client: redis.Redis) -> None:
    writer = BulkWriter(redis_client, retention_days=153)
    redis_client.script_flush()
    assert writer.add(np.array([12125551234, 14155552671])) == 2
    redis_client.script_flush()
    assert writer.remove(np.array([12125551234])) == 1
    assert registered(redis_client) == ["+14155552671"]
    assert redis_client.xlen(keys.CHANGES) == 3


def add_entries(redis_client: Any) -> list[str]:
    return [i.decode() for i, f in redis_client.xrange(keys.CHANGES) if b"A" in f or b"a" in f]


def test_a_batch_stored_too_long_after_its_entry_is_logged_again(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader of the sets follows the stream from changes.REAPPLY_MS before its last entry:
    an add that lands later than changes.STORE_WINDOW_MS after its entry could be behind
    that cursor and not in the sets it read. Such a store's members are logged anew."""
    existing = np.arange(12125550000, 12125550100)  # a fuller bucket: the batch stays a batch
    writer = BulkWriter(redis_client, retention_days=153)
    assert writer.add(existing) == 100
    before = add_entries(redis_client)
    assert writer.add(np.array([12125551234])) == 1
    assert len(add_entries(redis_client)) == len(before) + 1  # in time: logged once
    monkeypatch.setattr(changes, "STORE_WINDOW_MS", -1)  # every store too late
    assert writer.add(np.array([12125551235])) == 1
    again = redis_client.xrange(keys.CHANGES)[-2:]
    assert [changes.decode(i, f).numbers.tolist() for i, f in again] == [[12125551235]] * 2
    assert "+12125551235" in registered(redis_client)


# A running API sees the load


def test_a_load_is_visible_to_a_running_api_without_restart(
    client: TestClient, operator: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    numbers = ["+12125551234", "+14155552671"]
    look_up = "/v1/numbers/%2B12125551234"
    assert client.get(look_up, headers=operator).json()["status"] == "callable"
    path = write(tmp_path / "list.txt", "\n".join(numbers) + "\n")

    assert counts(run_load(redis_client, path)) == (2, 0, 0)
    assert client.get(look_up, headers=operator).json() == {
        "number": "+12125551234",
        "status": "blocked",
        "reason": "registered",
    }
    scrub = client.post("/v1/scrub", json={"numbers": numbers}, headers=operator).json()
    assert scrub["blocked"] == numbers

    assert counts(run_load(redis_client, path, remove=True)) == (2, 0, 0)
    assert client.get(look_up, headers=operator).json()["status"] == "callable"
    scrub = client.post("/v1/scrub", json={"numbers": numbers}, headers=operator).json()
    assert scrub["counts"]["callable"] == 2


# Bad input


def test_binary_file_is_refused(redis_client: redis.Redis, tmp_path: Path) -> None:
    path = write(tmp_path / "list.bin", bytes(range(256)) * 4)
    with pytest.raises(LoadError, match="binary"):
        run_load(redis_client, path)
    utf16 = write(tmp_path / "list.txt", "+12125551234\n".encode("utf-16"))
    with pytest.raises(LoadError, match="UTF-16 text.*save it as UTF-8"):
        run_load(redis_client, utf16)
    gz = write(tmp_path / "list.gz", b"\x1f\x8b\x08\x00" + bytes(range(256)))
    with pytest.raises(LoadError, match="gunzip it first"):
        run_load(redis_client, gz)


def test_missing_csv_column_is_refused_before_anything_loads(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    good = write(tmp_path / "a.csv", "phone\n+12125551234\n")
    bad = write(tmp_path / "b.csv", "name,tel\nAnn,+14155552671\n")
    with pytest.raises(LoadError, match="no column 'phone'"):
        run_load(redis_client, good, bad, column="phone")
    assert registered(redis_client) == []


def test_a_csv_whose_first_row_is_a_number_is_refused_before_anything_loads(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    """Taken for the header, the first number would be neither loaded nor rejected."""
    numbers = write(tmp_path / "a.csv", "+12125551234\n+12125551235\n")
    with pytest.raises(LoadError, match="the first row is data, not a header"):
        run_load(redis_client, numbers, fmt="csv")
    assert registered(redis_client) == []


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("phone;name\n+12125551400;a\n", "separated by semicolons"),
        ("phone\tname\n+12125551400\ta\n", "separated by tabs"),
        ("Title\n212,5553103\n212,5553104\n", "a title line over an FTC list?"),
    ],
    ids=["semicolons", "tabs", "title-over-ftc"],
)
def test_a_csv_is_read_as_strictly_as_a_scrub_reads_it(
    redis_client: redis.Redis, tmp_path: Path, content: str, words: str
) -> None:
    """Read loosely, these loaded nothing or dropped values, and still exited 0."""
    with pytest.raises(LoadError, match=re.escape(words)):
        run_load(redis_client, write(tmp_path / "list.csv", content))
    assert registered(redis_client) == []


def test_a_row_with_too_many_or_too_few_cells_is_a_reject_and_the_rest_loads(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    """One malformed row once stopped the whole load (exit 2, nothing loaded). A short
    row that still has the phone cell loads, as the scrub endpoint pads it."""
    path = write(
        tmp_path / "in.csv",
        "name,phone,note\nAnn,+12125551201,a\nBob,+12125551202,b,c\nCid,+12125551203\n"
        "Dee\nEve,+12125551204,,\n",
    )
    result = run_load(redis_client, path, column="phone")
    assert counts(result) == (3, 0, 2)
    assert rejects(result) == (
        "line,input,reason\n3,+12125551202,too_many_cells\n5,,too_few_cells\n"
    )
    assert registered(redis_client) == ["+12125551201", "+12125551203", "+12125551204"]


def test_cli_load_of_a_csv_with_a_malformed_row_loads_the_rest(
    redis_url: str, redis_client: Any, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "in.csv", "phone,name\n+12125551201,a\n+12125551202,b,c\n+12125551203\n"
    )
    answer = dnc(redis_url, "load", str(path))
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout == "loaded 2, already present 0, invalid 1\n"
    assert (tmp_path / "in.csv.rejects.csv").read_text() == (
        "line,input,reason\n3,+12125551202,too_many_cells\n"
    )
    assert registered(redis_client) == ["+12125551201", "+12125551203"]


def test_an_empty_phone_cell_is_a_reject_and_a_blank_line_no_row(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    """`""`, `,Ann` and `,` are rows whose phone cell is empty, as the scrub endpoint
    answers them `invalid`; a line with nothing but spaces is no row."""
    path = write(
        tmp_path / "in.csv",
        'phone,name\n+12125551211,a\n""\n   \n\n,Ann\n  ,Bob\n,\n"  "\n+12125551212,b\n',
    )
    result = run_load(redis_client, path)
    assert counts(result) == (2, 0, 5)
    assert rejects(result) == (
        "line,input,reason\n3,,empty\n6,,empty\n7,,empty\n8,,empty\n9,,empty\n"
    )


def test_a_one_column_csv_rejects_an_empty_cell_and_skips_blank_lines(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = write(tmp_path / "in.csv", 'phone\n+12125551221\n""\n   \n\t\n+12125551222\n')
    result = run_load(redis_client, path, fmt="csv")
    assert counts(result) == (2, 0, 1)
    assert rejects(result) == "line,input,reason\n3,,empty\n"


def test_empty_cells_past_the_header_are_no_values(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    result = run_load(redis_client, write(tmp_path / "a.csv", "phone\n+12125551400,,\n"))
    assert result.loaded == 1


def test_column_with_a_format_that_has_none_is_refused(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    with pytest.raises(LoadError, match="--column"):
        run_load(redis_client, write(tmp_path / "a.txt", "+1\n"), fmt="e164", column="phone")


@pytest.mark.parametrize(
    ("content", "reads_as"),
    [("+12125551234\n", "one number a line"), ("212,5551234\n", "an FTC flat file")],
    ids=["e164", "ftc"],
)
def test_column_with_a_file_detected_as_no_csv_is_refused(
    redis_client: redis.Redis, tmp_path: Path, content: str, reads_as: str
) -> None:
    """--column given for a file that `auto` reads as no CSV: not ignored, refused."""
    path = write(tmp_path / "list.txt", content)
    with pytest.raises(LoadError, match=f"--column applies to CSV files only.*{reads_as}"):
        run_load(redis_client, path, column="phone")
    assert registered(redis_client) == []
    assert counts(run_load(redis_client, path)) == (1, 0, 0)  # without --column it loads


def test_progress_bar_goes_to_stderr_only_when_asked(
    redis_client: redis.Redis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "list.txt", "+12125551234\n")
    run_load(redis_client, path)
    assert capsys.readouterr() == ("", "")
    run_load(redis_client, path, progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "100%" in err and err.endswith("\n")


# Export


def load_numbers(client: redis.Redis, tmp_path: Path, numbers: list[str]) -> None:
    run_load(client, write(tmp_path / "list.txt", "\n".join(numbers) + "\n"))


EXPORT_SET = ["+442079460958", "+12125551235", "+14155552671", "+12125551234", "+12025550123"]


def test_export_full_is_ascending(redis_client: redis.Redis, tmp_path: Path) -> None:
    load_numbers(redis_client, tmp_path, EXPORT_SET)
    out = io.StringIO()
    export_full(redis_client, out, [])
    assert out.getvalue() == (
        "+12025550123\n+12125551234\n+12125551235\n+14155552671\n+442079460958\n"
    )


def test_export_full_within_a_prefix(redis_client: redis.Redis, tmp_path: Path) -> None:
    load_numbers(redis_client, tmp_path, EXPORT_SET)
    out = io.StringIO()
    export_full(redis_client, out, ["+1212"])
    assert out.getvalue() == "+12125551234\n+12125551235\n"
    with pytest.raises(ExportError):
        export_full(redis_client, io.StringIO(), ["+12x"])


def test_dnc_export_detail_is_a_csv_of_the_preferences(
    redis_client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """The flag reaches the export; tests/test_api_registrations.py holds its rows to the
    API's."""
    load_numbers(redis_client, tmp_path, ["+12125551234"])
    full = dnc(redis_url, "export", "--detail")
    assert full.returncode == 0, full.stderr
    assert full.stdout == "number,channels,allow_categories\n+12125551234,voice sms,\n"
    changed = dnc(redis_url, "export", "--detail", "--since", "0")
    assert changed.returncode == 0, changed.stderr
    number, op, _, channels, categories = changed.stdout.strip().split(",")
    assert (number, op, channels, categories) == ("+12125551234", "add", "voice sms", "")


def change_lines(text: str) -> list[tuple[str, str]]:
    rows = [line.split(",") for line in text.splitlines()]
    assert all(len(row) == 3 and row[2].endswith("Z") for row in rows)
    return [(number, op) for number, op, _ in rows]


def test_export_changes_resume_from_the_cursor(redis_client: redis.Redis, tmp_path: Path) -> None:
    load_numbers(redis_client, tmp_path, ["+12125551234", "+14155552671"])
    out = io.StringIO()
    cursor = export_changes(redis_client, out, "0", [], DAYS)
    assert sorted(change_lines(out.getvalue())) == [
        ("+12125551234", "add"),
        ("+14155552671", "add"),
    ]

    nothing = io.StringIO()
    assert export_changes(redis_client, nothing, cursor, [], DAYS) == cursor
    assert nothing.getvalue() == ""

    path = write(tmp_path / "out.txt", "+12125551234\n")
    run_load(redis_client, path, remove=True)
    later = io.StringIO()
    next_cursor = export_changes(redis_client, later, cursor, [], DAYS)
    assert change_lines(later.getvalue()) == [("+12125551234", "remove")]
    assert next_cursor != cursor


def test_export_changes_within_a_prefix(redis_client: redis.Redis, tmp_path: Path) -> None:
    load_numbers(redis_client, tmp_path, ["+12125551234", "+14155552671"])
    out = io.StringIO()
    export_changes(redis_client, out, "0", ["+1415"], DAYS)
    assert change_lines(out.getvalue()) == [("+14155552671", "add")]


def test_export_changes_match_the_api_change_list(
    client: TestClient, operator: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    load_numbers(redis_client, tmp_path, EXPORT_SET)
    out = io.StringIO()
    cursor = export_changes(redis_client, out, "0", [], DAYS)
    api = client.get("/v1/changes?since=0", headers=operator).json()
    assert out.getvalue() == "".join(f"{c['number']},{c['op']},{c['at']}\n" for c in api["changes"])
    assert cursor == api["next"]


def test_export_changes_refuses_a_foreign_cursor(redis_client: redis.Redis) -> None:
    with pytest.raises(ExportError, match="cursor"):
        export_changes(redis_client, io.StringIO(), "yesterday", [], DAYS)


@pytest.mark.parametrize("cursor", ["1", "0-1.5", "1700000000000-0"])
def test_export_changes_refuses_a_cursor_older_than_the_retention_as_the_api_does(
    client: TestClient, operator: dict[str, str], redis_client: redis.Redis, cursor: str
) -> None:
    with pytest.raises(ExportError, match=f"older than the {DAYS} days"):
        export_changes(redis_client, io.StringIO(), cursor, [], DAYS)
    api = client.get("/v1/changes", params={"since": cursor}, headers=operator)
    assert api.status_code == 410


# The command line


@pytest.mark.slow
def test_cli_load_prints_the_counts(redis_url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "list.txt", "+12125551234\n+12125551234\nbad\n")
    answer = dnc(redis_url, "load", str(path))
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout == "loaded 1, already present 1, invalid 1\n"
    assert "list.txt.rejects.csv" in answer.stderr
    assert "Traceback" not in answer.stderr
    # The contract: the load "ends with the line" of counts, in a terminal's merged output too.
    for content in ("+12125551234\nbad\n", "bad\n"):  # the second warns: no line was valid
        write(path, content)
        merged = subprocess.run(
            [str(DNC), "load", str(path), "--format", "e164"],
            env={**os.environ, "DNC_REDIS_URL": redis_url},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
            check=False,
        )
        assert merged.returncode == 0, merged.stdout
        lines = merged.stdout.splitlines()
        assert lines[-1].startswith("loaded "), lines
        assert any("rejects.csv" in line for line in lines[:-1]), lines
    # A lone line that is no number, read as a CSV header: nothing read, and it says so.
    alone = dnc(redis_url, "load", str(write(path, "bad\n")))
    assert alone.returncode == 0 and alone.stdout == "loaded 0, already present 0, invalid 0\n"
    assert "no number was read" in alone.stderr and "--format e164" in alone.stderr


@pytest.mark.slow
def test_cli_load_remove(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> None:
    path = write(tmp_path / "list.txt", "212,5551234\n")
    assert dnc(redis_url, "load", str(path)).stdout == "loaded 1, already present 0, invalid 0\n"
    answer = dnc(redis_url, "load", "--remove", "--format", "ftc", str(path))
    assert answer.stdout == "loaded 1, already present 0, invalid 0\n"
    # Each load is one entry of the audit trail, by the command line, with its counts.
    entries = [fields for _, fields in redis_client.xrange(keys.AUDIT)][-2:]
    assert [e[b"action"] for e in entries] == [b"registrations.loaded", b"registrations.removed"]
    assert all(e[b"actor"] == b"cli" and e[b"files"] == b"list.txt" for e in entries)
    assert entries[1][b"changed"] == b"1" and entries[1][b"invalid"] == b"0"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.txt"], "no such file"),
        (["--column", "phone", "list.csv"], "no column 'phone'"),
        (["junk.bin"], "binary"),
        (["--column", "phone", "list.txt"], "--column applies to CSV files only"),
    ],
)
def test_cli_load_bad_input_exits_2_with_one_line(
    redis_url: str, tmp_path: Path, args: list[str], message: str
) -> None:
    write(tmp_path / "list.csv", "name,tel\nAnn,+12125551234\n")
    write(tmp_path / "junk.bin", bytes(range(256)) * 4)
    write(tmp_path / "list.txt", "+12125551234\n")
    answer = subprocess.run(
        [str(DNC), "load", *args],
        cwd=tmp_path,
        env={**os.environ, "DNC_REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert answer.returncode == 2
    assert answer.stdout == ""
    assert answer.stderr.count("\n") == 1 and message in answer.stderr
    assert "Traceback" not in answer.stderr


@pytest.mark.slow
def test_cli_export_to_a_file_and_the_change_list(redis_url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "list.txt", "+14155552671\n+12125551234\n")
    assert dnc(redis_url, "load", str(path)).returncode == 0

    out = tmp_path / "all.txt"
    answer = dnc(redis_url, "export", "-o", str(out))
    assert answer.returncode == 0, answer.stderr
    assert out.read_text() == "+12125551234\n+14155552671\n"
    # The full list says where to follow the changes from: after it, nothing new yet
    # (adds logged in the last minute come again: they may have been on their way).
    # The contract's "next cursor on stderr": the cursor alone, so it can be fed back.
    after_full = answer.stderr.strip()
    assert re.fullmatch(r"\d+-\d+", after_full), answer.stderr
    listed = {n for n, _ in change_lines(dnc(redis_url, "export", "--since", after_full).stdout)}
    assert listed <= {"+12125551234", "+14155552671"}
    write(tmp_path / "more.txt", "+13125550100\n")
    assert dnc(redis_url, "load", str(tmp_path / "more.txt")).returncode == 0
    answer = dnc(redis_url, "export", "--since", after_full)
    assert change_lines(answer.stdout)[-1:] == [("+13125550100", "add")]
    assert {n for n, _ in change_lines(answer.stdout)} - listed == {"+13125550100"}

    answer = dnc(redis_url, "export", "--prefix", "+1212", "--since", "0")
    assert answer.returncode == 0, answer.stderr
    assert change_lines(answer.stdout) == [("+12125551234", "add")]
    cursor = answer.stderr.strip()
    assert re.fullmatch(r"\d+-\d+(\.\d+)?", cursor), answer.stderr

    answer = dnc(redis_url, "export", "--since", cursor)
    assert (answer.returncode, answer.stdout) == (0, "")


@pytest.mark.slow
def test_cli_export_bad_cursor_exits_2(redis_url: str) -> None:
    answer = dnc(redis_url, "export", "--since", "yesterday")
    assert answer.returncode == 2
    assert answer.stderr.count("\n") == 1 and "Traceback" not in answer.stderr


def test_a_header_with_digits_in_its_names_is_a_header(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = write(tmp_path / "in.csv", "phone_e164,name\n+12125557010,Ann\n2125557011,Bob\n")
    assert counts(run_load(redis_client, path)) == (2, 0, 0)
    again = write(tmp_path / "again.csv", "phone_e164,name\n+12125557012,Cy\n")
    assert counts(run_load(redis_client, again, column="phone_e164")) == (1, 0, 0)


def test_an_unclosed_quote_stops_the_load_naming_its_line(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    """Read leniently, every row after the quote would fold into one rejected cell, and
    those numbers would be neither loaded nor listed: as the API, the loader refuses."""
    path = write(
        tmp_path / "in.csv",
        'phone,name\n+12125557001,a\n"+12125557002,b\n+12125557003,c\n+12125557004,d\n',
    )
    with pytest.raises(LoadError, match=r"line 3: .*quote"):
        run_load(redis_client, path)
    # Rows before it may be loaded, a batch at a time (here none: one small batch).
    assert set(registered(redis_client)) <= {"+12125557001"}


@pytest.mark.parametrize(
    ("header", "column", "words"),
    [
        ("phone,name,phone", "phone", "2 columns are named 'phone'"),
        ("name,phone", "", "column name is empty"),
        ("name,phone", "  ", "column name is empty"),
    ],
)
def test_a_column_that_is_no_single_column_is_refused(
    redis_client: redis.Redis, tmp_path: Path, header: str, column: str, words: str
) -> None:
    path = write(tmp_path / "in.csv", f"{header}\n+12125551236,a,+12125550000\n")
    with pytest.raises(LoadError, match=words):
        run_load(redis_client, path, column=column)
    assert registered(redis_client) == []


def test_a_load_stopped_partway_leaves_no_rejects_file(tmp_path: Path) -> None:
    """The rejects file that exists after a load belongs to a whole load."""
    path = tmp_path / "in.txt.rejects.csv"
    with pytest.raises(RuntimeError), load.Rejects(path) as rejects:
        rejects.write([formats.Record(3, "bad", "", "not_a_number")])
        assert path.exists()
        raise RuntimeError("interrupted")
    assert not path.exists()
    with load.Rejects(path) as rejects:
        rejects.write([formats.Record(3, "bad", "", "not_a_number")])
    assert path.read_text() == "line,input,reason\n3,bad,not_a_number\n"


@pytest.mark.slow
def test_cli_load_interrupted_says_what_is_kept(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # National formats: the slower path, so the load is still running when the signal comes.
    lines = (f"(212) {n // 10_000 + 200:03d}-{n % 10_000:04d}\n" for n in range(3_000_000))
    path = write(tmp_path / "big.txt", "junk\n" + "".join(lines))
    env = {**os.environ, "DNC_REDIS_URL": redis_url}
    process = subprocess.Popen(
        [str(DNC), "load", str(path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
        # Ctrl-C as a terminal delivers it, even where this suite runs as a background job
        # (a non-interactive shell's `make test &` ignores SIGINT, and children inherit that).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    # Once its first numbers are written (not while Python starts): mid-load.
    deadline = time.monotonic() + 60
    while not redis_client.exists(keys.CHANGES) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, (out, err)
    assert "interrupted" in err and "run the same command again" in err
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "big.txt.rejects.csv").exists()


@pytest.mark.parametrize(
    ("lines", "fmt"),
    [
        (["# DNC list, area code 212, 2026-11-01", "212,5551234", "415,5552671"], "ftc"),
        (["List 2026-11-01 (area code 212)", "212,5551234"], "ftc"),
        # A header row is CSV, as the contract says, whatever lines follow it.
        (["areacode,number", "212,5551234"], "csv"),
        (["Area code 212 list", "212,5551234"], "csv"),
        (["phone,name", "+12125551234,Ann"], "csv"),
        # Not every line after the first is FTC: read as one number a line.
        (["# list of 2026-11-01", "212,5551234", "+14155552671"], "e164"),
        (["# list of 2026-11-01"], "e164"),
    ],
)
def test_auto_detection_passes_over_a_title_line_before_ftc_lines(
    lines: list[str], fmt: str
) -> None:
    assert detect(lines[0], lines) == fmt


def test_cli_load_of_an_ftc_file_with_a_title_rejects_the_title_only(
    redis_url: str, redis_client: Any, tmp_path: Path
) -> None:
    text = "# Do-not-call list, area code 212, downloaded 2026-11-01\n212,5551234\n415,5552671\n"
    path = write(tmp_path / "list.txt", text)
    answer = dnc(redis_url, "load", str(path))
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout == "loaded 2, already present 0, invalid 1\n"
    rejects = (tmp_path / "list.txt.rejects.csv").read_text()
    assert "Do-not-call list" in rejects and "5551234" not in rejects


def test_cli_load_warns_when_no_line_was_a_number(redis_url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "list.txt", "212,5551234x\nhello\n")
    answer = dnc(redis_url, "load", "--format", "e164", str(path))
    assert answer.returncode == 0
    assert answer.stdout == "loaded 0, already present 0, invalid 2\n"
    assert "no line was a valid number" in answer.stderr
