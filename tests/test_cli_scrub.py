"""`dnc scrub` (CONTRACT section 5), run as a user runs it: a subprocess, through a real
`dnc serve` with --url and --key, and locally against a real redis-server."""

from __future__ import annotations

import csv
import http.server
import io
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import start_redis

from registry.embedded import RedisProcess, free_port
from registry.scrub_client import StatusCount

pytestmark = pytest.mark.slow

ADMIN_KEY = "scrub-cli-admin-key"
_installed = Path(sys.executable).with_name("dnc")
DNC = [str(_installed)] if _installed.exists() else [sys.executable, "-m", "registry.cli"]

FULL = "+12125551234"  # registered, full block
ALLOWS_2 = "+12125551235"  # registered, category 2 allowed
SMS_ONLY = "+12125551236"  # registered, blocks only sms
FREE = "+12125551237"  # not registered
# The list: inputs as a dial list holds them, and their E.164 form ("" when invalid).
LIST = [
    (FULL, FULL),
    ("(212) 555-1235", ALLOWS_2),
    (SMS_ONLY, SMS_ONLY),
    ("212.555.1237", FREE),
    ("not a number", ""),
    (FULL, FULL),  # duplicates are rows of their own
]


def expected(channel: str | None = None, category: int | None = None) -> list[str]:
    """The status of each LIST row, by the callable rule of CONTRACT section 3."""
    statuses = []
    for _, number in LIST:
        allowed = (number == ALLOWS_2 and category == 2) or (
            number == SMS_ONLY and channel == "voice"
        )
        if not number:
            statuses.append("invalid")
        elif number == FREE or allowed:
            statuses.append("callable")
        else:
            statuses.append("blocked")
    return statuses


def dnc_env(**values: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("DNC_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(values)
    return env


def dnc(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DNC, *args], env=dnc_env(**env), capture_output=True, text=True, timeout=60, cwd=cwd
    )


def rows(output: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(output)))


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int) -> None:
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnc: "), result.stderr


class Registry:
    """One redis-server and one `dnc serve` on it, with the numbers above registered."""

    operator_key = ""
    carrier_key = ""

    def __init__(self, redis: RedisProcess, log: Path) -> None:
        self.redis_url = redis.url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*DNC, "serve"],
                env=dnc_env(
                    DNC_REDIS_URL=redis.url,
                    DNC_ADMIN_KEY=ADMIN_KEY,
                    DNC_HOST="127.0.0.1",
                    DNC_PORT=str(self.port),
                ),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.log = log

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"dnc serve exited:\n{self.log.read_text(errors='replace')}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dnc serve not ready:\n{self.log.read_text(errors='replace')}")
            time.sleep(0.1)

    def key(self, role: str) -> str:
        answer = httpx.post(
            f"{self.url}/v1/operators",
            json={"name": f"cli {role}", "role": role},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["api_key"])

    def register(self, carrier: str, number: str, **body: object) -> None:
        answer = httpx.put(
            f"{self.url}/v1/registrations/{number}",
            json=body or None,
            headers={"Authorization": f"Bearer {carrier}"},
        )
        assert answer.status_code == 201, answer.text

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    redis = start_redis(tmp_path_factory.mktemp("scrub-redis"))
    server = Registry(redis, tmp_path_factory.mktemp("scrub-serve") / "serve.log")
    try:
        server.wait_ready()
        carrier = server.key("carrier")
        server.register(carrier, FULL)
        server.register(carrier, ALLOWS_2, allow_categories=[2])
        server.register(carrier, SMS_ONLY, channels=["sms"])
        server.operator_key = server.key("operator")
        server.carrier_key = carrier
        yield server
    finally:
        server.stop()
        redis.stop()


@pytest.fixture
def plain_list(tmp_path: Path) -> Path:
    path = tmp_path / "dial-list.txt"
    path.write_text(
        "\n".join(text for text, _ in LIST[:3])
        + "\n\n"
        + "\n".join(text for text, _ in LIST[3:])
        + "\n"
    )  # a blank line in the middle is not a row
    return path


@pytest.fixture
def csv_list(tmp_path: Path) -> Path:
    path = tmp_path / "leads.csv"
    lines = ["name,phone,note"] + [f'lead {i},{text},"a, b"' for i, (text, _) in enumerate(LIST)]
    path.write_text("\n".join(lines) + "\n")
    return path


def remote(registry: Registry, *args: str) -> subprocess.CompletedProcess[str]:
    return dnc("scrub", *args, "--url", registry.url, "--key", registry.operator_key)


def local(registry: Registry, *args: str) -> subprocess.CompletedProcess[str]:
    return dnc("scrub", *args, DNC_REDIS_URL=registry.redis_url)


MODES = {"remote": remote, "local": local}


# -- what a scrub writes ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_plain_list_gets_input_number_status(
    registry: Registry, plain_list: Path, mode: str
) -> None:
    result = MODES[mode](registry, str(plain_list))
    assert result.returncode == 0, result.stderr
    table = rows(result.stdout)
    assert table[0] == ["input", "number", "status"]
    assert table[1:] == [
        [text, number, status] for (text, number), status in zip(LIST, expected(), strict=True)
    ]
    assert "callable 1, blocked 4, invalid 1" in result.stderr
    if mode == "remote":
        assert "receipt scr_" in result.stderr


@pytest.mark.parametrize("mode", MODES)
def test_a_quote_never_closed_names_the_line_its_row_began_on(
    registry: Registry, tmp_path: Path, mode: str
) -> None:
    """As `dnc load` names it; before, the local scrub named the last line (where the
    reader gave up) and the remote one none."""
    path = tmp_path / "leads.csv"
    path.write_text('phone,name\n+12125550100,Ann\n"+12125550101,Bob\n+12125550102,Cy\n')
    result = MODES[mode](registry, str(path), "--column", "phone")
    assert result.returncode == 2, result.stderr
    assert "line 3" in result.stderr and "line 4" not in result.stderr, result.stderr
    load = dnc("load", str(path), "--format", "csv", "--column", "phone",
               DNC_REDIS_URL=registry.redis_url)  # fmt: skip
    assert load.returncode == 2 and "line 3" in load.stderr, load.stderr


def test_the_counts_come_from_the_answer_when_the_receipt_cannot_be_read(
    registry: Registry, csv_list: Path
) -> None:
    """A key limited to one request a second has its receipt read refused (429): the
    counts were all 0 then, exit 0. The answer's own rows count them."""
    answer = httpx.post(
        f"{registry.url}/v1/operators",
        json={"name": "one a second", "role": "operator", "rate_limit": 1},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert answer.status_code == 201, answer.text
    key = answer.json()["api_key"]
    result = dnc("scrub", str(csv_list), "--column", "phone", "--url", registry.url, "--key", key)
    assert result.returncode == 0, result.stderr
    assert "scrubbed 6: callable 1, blocked 4, invalid 1 (receipt scr_" in result.stderr


def test_status_counts_read_rows_as_csv_does() -> None:
    """StatusCount against the csv module, on answers whose cells hold newlines, commas
    and quotes, cut into chunks anywhere."""
    rng = random.Random(7)
    pieces = ["a", ",", "\n", '""', "blocked\n", ",callable", "\r\n", "x,invalid\n", " "]
    for _ in range(300):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["name", "note", "number", "status"])
        statuses = rng.choices(["callable", "blocked", "invalid"], k=rng.randrange(0, 30))
        for status in statuses:
            cell = "".join(rng.choices(pieces, k=rng.randrange(0, 6)))
            writer.writerow([cell, rng.choice(["", 'q"q']), "+12125551234", status])
        data = out.getvalue().encode()
        assert [row[-1] for row in csv.reader(io.StringIO(data.decode()))][1:] == statuses
        count = StatusCount()
        cuts = sorted(rng.sample(range(len(data) + 1), k=min(len(data) + 1, rng.randrange(0, 8))))
        for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
            count.feed(data[start:end])
        expected = {name: statuses.count(name) for name in ("callable", "blocked", "invalid")}
        assert count.counts() == {"total": len(statuses), **expected}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("channel", "category"), [(None, 2), ("voice", None), ("sms", 2), ("voice", 2)]
)
def test_channel_and_category_are_asked_about(
    registry: Registry, plain_list: Path, mode: str, channel: str | None, category: int | None
) -> None:
    args = [str(plain_list)]
    if channel:
        args += ["--channel", channel]
    if category:
        args += ["--category", str(category)]
    result = MODES[mode](registry, *args)
    assert result.returncode == 0, result.stderr
    assert [row[2] for row in rows(result.stdout)[1:]] == expected(channel, category)


@pytest.mark.parametrize("mode", MODES)
def test_a_csv_keeps_its_columns_and_gains_number_and_status(
    registry: Registry, csv_list: Path, mode: str
) -> None:
    result = MODES[mode](registry, str(csv_list), "--column", "phone")
    assert result.returncode == 0, result.stderr
    table = rows(result.stdout)
    assert table[0] == ["name", "phone", "note", "number", "status"]
    assert table[1:] == [
        [f"lead {i}", text, "a, b", number, status]
        for i, ((text, number), status) in enumerate(zip(LIST, expected(), strict=True))
    ]


@pytest.mark.parametrize("mode", MODES)
def test_a_column_is_found_as_dnc_load_finds_it(
    registry: Registry, tmp_path: Path, mode: str
) -> None:
    """Header cells are read trimmed, as `dnc load --column` reads them: ` Phone ` is Phone."""
    path = tmp_path / "leads.csv"
    path.write_text("name, Phone ,note\n" + "".join(f"lead,{text},x\n" for text, _ in LIST))
    result = MODES[mode](registry, str(path), "--column", "Phone")
    assert result.returncode == 0, result.stderr
    table = rows(result.stdout)
    assert table[0] == ["name", " Phone ", "note", "number", "status"]
    assert [row[3:] for row in table[1:]] == [
        [number, status] for (_, number), status in zip(LIST, expected(), strict=True)
    ]


@pytest.mark.parametrize("mode", ["remote", "local"])
def test_a_column_for_a_plain_list_is_refused_as_dnc_load_refuses_it(
    registry: Registry, plain_list: Path, mode: str
) -> None:
    result = MODES[mode](registry, str(plain_list), "--column", "phone")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("dnc: ") and "--column applies to CSV files only" in line


def test_remote_and_local_write_the_same_bytes(
    registry: Registry, plain_list: Path, csv_list: Path
) -> None:
    for args in ([str(plain_list)], [str(csv_list), "--column", "phone", "--category", "2"]):
        through_api, straight = remote(registry, *args), local(registry, *args)
        assert through_api.returncode == straight.returncode == 0
        assert through_api.stdout == straight.stdout


@pytest.mark.parametrize("mode", MODES)
def test_output_file(registry: Registry, plain_list: Path, tmp_path: Path, mode: str) -> None:
    out = tmp_path / "washed.csv"
    result = MODES[mode](registry, str(plain_list), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert [row[2] for row in rows(out.read_text())[1:]] == expected()
    assert not out.with_name("washed.csv.part").exists()


@pytest.mark.parametrize("mode", MODES)
def test_output_to_dash_or_a_device_is_written_in_place(
    registry: Registry, plain_list: Path, tmp_path: Path, mode: str
) -> None:
    dash = MODES[mode](registry, str(plain_list), "-o", "-")
    assert dash.returncode == 0, dash.stderr
    assert [row[2] for row in rows(dash.stdout)[1:]] == expected()
    assert not (Path.cwd() / "-").exists()
    # A link to a device, as /dev/stdout is: written through, the link left a link.
    link = tmp_path / "stdout"
    link.symlink_to("/dev/null")
    result = MODES[mode](registry, str(plain_list), "-o", str(link))
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == "/dev/null"
    assert not tmp_path.joinpath("stdout.part").exists()


@pytest.mark.parametrize("mode", MODES)
def test_a_lone_cr_ends_a_line_as_in_universal_newlines(
    registry: Registry, tmp_path: Path, mode: str
) -> None:
    """Old Mac files: `dnc load` reads them so, and the API too."""
    plain = tmp_path / "old-mac.txt"
    plain.write_bytes(f"{FULL}\r{FREE}\r".encode())
    result = MODES[mode](registry, str(plain))
    assert result.returncode == 0, result.stderr
    assert rows(result.stdout) == [
        ["input", "number", "status"],
        [FULL, FULL, "blocked"],
        [FREE, FREE, "callable"],
    ]
    table = tmp_path / "old-mac-table.txt"
    table.write_bytes(f"phone,name\r{FULL},a\r{FREE},b\r".encode())
    result = MODES[mode](registry, str(table))
    assert result.returncode == 0, result.stderr
    assert rows(result.stdout) == [
        ["phone", "name", "number", "status"],
        [FULL, "a", FULL, "blocked"],
        [FREE, "b", FREE, "callable"],
    ]


def test_a_national_list_is_read_against_the_region(registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "gb.txt"
    path.write_text("020 7946 0958\n")
    for run in (remote, local):
        result = run(registry, str(path), "--region", "GB")
        assert result.returncode == 0, result.stderr
        assert rows(result.stdout)[1] == ["020 7946 0958", "+442079460958", "callable"]
        default = run(registry, str(path))
        assert rows(default.stdout)[1][2] == "invalid"  # read as a US number


def test_local_scrub_of_the_embedded_redis_data(tmp_path: Path, plain_list: Path) -> None:
    """No DNC_REDIS_URL: the data `dnc load` left in DNC_DATA_DIR, as `dnc serve` keeps it."""
    data = tmp_path / "dnc-data"
    numbers = tmp_path / "numbers.txt"
    numbers.write_text(f"{FULL}\n{SMS_ONLY}\n")
    loaded = dnc("load", str(numbers), DNC_DATA_DIR=str(data))
    assert loaded.returncode == 0, loaded.stderr
    result = dnc("scrub", str(plain_list), DNC_DATA_DIR=str(data))
    assert result.returncode == 0, result.stderr
    statuses = [row[2] for row in rows(result.stdout)[1:]]
    # Bulk-loaded numbers are full blocks; the others are not registered here.
    assert statuses == ["blocked", "callable", "blocked", "callable", "invalid", "blocked"]


def test_local_scrub_without_a_registry_fails_instead_of_calling_everything_callable(
    tmp_path: Path, plain_list: Path
) -> None:
    result = dnc("scrub", str(plain_list), DNC_DATA_DIR=str(tmp_path / "nothing-here"))
    assert_one_line_error(result, 1)
    assert result.stdout == ""
    assert not (tmp_path / "nothing-here").exists()


# -- exit statuses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["missing.txt"],
        ["{list}", "--category", "9"],
        ["{list}", "--category", "real-estate"],
        ["{list}", "--url", "http://127.0.0.1:9"],
        ["{list}", "--key", "k"],
        ["{list}", "--region", "XX"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(plain_list: Path, args: list[str]) -> None:
    result = dnc("scrub", *[a.replace("{list}", str(plain_list)) for a in args])
    assert_one_line_error(result, 2)
    assert result.stdout == ""


def test_an_unknown_choice_is_a_usage_error(plain_list: Path) -> None:
    result = dnc("scrub", str(plain_list), "--channel", "fax")
    assert result.returncode == 2
    assert "usage:" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("mode", MODES)
def test_an_unknown_column_is_bad_input(registry: Registry, csv_list: Path, mode: str) -> None:
    result = MODES[mode](registry, str(csv_list), "--column", "mobile")
    assert_one_line_error(result, 2)
    assert "mobile" in result.stderr


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("header", "column", "words"),
    [
        ("phone,name,phone", "phone", "2 columns are named 'phone'"),
        ("name,phone", "", "column name is empty"),
    ],
)
def test_a_column_that_is_no_single_column_is_bad_input_in_both_modes(
    registry: Registry, tmp_path: Path, mode: str, header: str, column: str, words: str
) -> None:
    """As the API refuses it: which column holds the numbers would be a guess."""
    path = tmp_path / "list.csv"
    row = ",".join(["+12125551236"] * len(header.split(",")))
    path.write_text(f"{header}\n{row}\n")
    result = MODES[mode](registry, str(path), "--column", column)
    assert_one_line_error(result, 2)
    assert words in result.stderr


def test_a_file_that_is_not_utf8_is_bad_input(registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"name,phone\nJos\xe9,+12125551234\n")
    assert_one_line_error(local(registry, str(path)), 2)
    assert_one_line_error(remote(registry, str(path)), 2)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", range(4))
def test_a_binary_file_is_bad_input(
    registry: Registry, tmp_path: Path, mode: str, seed: int
) -> None:
    path = tmp_path / "junk.bin"
    # Random bytes, a CR early in the first line among them: what broke format detection.
    path.write_bytes(b"\x9c\xf1\r\x07" + random.Random(seed).randbytes(5000))
    result = MODES[mode](registry, str(path))
    assert_one_line_error(result, 2)
    assert "binary" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("key", ["abc\u2019", "dnc_abc def", "dnc_abc\t", "\u201cdnc_abc\u201d"])
def test_a_key_that_cannot_be_sent_is_bad_input(
    registry: Registry, plain_list: Path, key: str
) -> None:
    """A pasted key with a curly quote or a space in it: no HTTP header can carry it."""
    result = dnc("scrub", str(plain_list), "--url", registry.url, "--key", key)
    assert_one_line_error(result, 2)
    assert "--key" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("mode", MODES)
def test_an_output_that_fails_to_write_exits_1(
    registry: Registry, plain_list: Path, mode: str
) -> None:
    result = MODES[mode](registry, str(plain_list), "-o", "/dev/full")
    assert_one_line_error(result, 1)
    assert "/dev/full" in result.stderr and "No space left" in result.stderr


@pytest.mark.parametrize("mode", MODES)
def test_an_output_closed_early_exits_1_with_one_line(
    registry: Registry, tmp_path: Path, mode: str
) -> None:
    path = tmp_path / "long.txt"
    path.write_text(f"{FREE}\n" * 100_000)
    args = ["scrub", str(path)]
    if mode == "remote":
        args += ["--url", registry.url, "--key", registry.operator_key]
    env = dnc_env(DNC_REDIS_URL=registry.redis_url) if mode == "local" else dnc_env()
    with subprocess.Popen(
        [*DNC, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.readline()
        process.stdout.close()  # as `| head -1` does
        stderr = process.stderr.read().decode()
        status = process.wait(60)
    assert status == 1, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert stderr.strip().splitlines() == ["dnc: the output was closed before the list ended"]


def test_an_unreachable_server_exits_1(plain_list: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = dnc(
        "scrub", str(plain_list), "--url", f"http://127.0.0.1:{free_port()}", "--key", "k",
        "-o", str(out),
    )  # fmt: skip
    assert_one_line_error(result, 1)
    assert "cannot reach" in result.stderr
    assert not out.exists() and not out.with_name("out.csv.part").exists()


class ForeignServer(http.server.ThreadingHTTPServer):
    """Not the registry: a web server that answers every POST with one set answer."""

    answer: tuple[int, str, bytes]


class ForeignHandler(http.server.BaseHTTPRequestHandler):
    server: ForeignServer

    def do_POST(self) -> None:
        self.read_body()  # all of it, or closing would reset the connection under the answer
        status, kind, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            return
        while size := int(self.rfile.readline().split(b";")[0], 16):
            self.rfile.read(size + 2)
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def foreign() -> Iterator[ForeignServer]:
    server = ForeignServer(("127.0.0.1", 0), ForeignHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


PAGE = b"<!DOCTYPE html>\n<html>\n<head><title>Not Found</title></head>\n<body>\n</body>\n</html>\n"


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ((404, "text/html", PAGE), "answered 404 Not Found"),
        ((200, "text/html; charset=utf-8", PAGE), "answered 200 OK with text/html"),
        ((404, "application/json", b'{"detail": "Not Found"}'), "answered 404 Not Found"),
        ((502, "text/plain", b"Bad\nGateway\n"), "answered 502 Bad Gateway"),
    ],
    ids=["404-page", "200-page", "404-other-json", "502-text"],
)
def test_a_server_that_is_not_the_registry_is_one_line_exit_1(
    foreign: ForeignServer,
    plain_list: Path,
    tmp_path: Path,
    answer: tuple[int, str, bytes],
    said: str,
) -> None:
    """Its page is not shown (nor written out as a scrub): one line says what answered."""
    foreign.answer = answer
    url = f"http://127.0.0.1:{foreign.server_address[1]}"
    out = tmp_path / "out.csv"
    result = dnc("scrub", str(plain_list), "--url", url, "--key", "k", "-o", str(out))
    assert_one_line_error(result, 1)
    assert result.stderr.strip() == f"dnc: {url}: {said}, not the registry's API (is --url right?)"
    assert not out.exists() and not out.with_name("out.csv.part").exists()


def test_a_url_that_is_not_the_registrys_root_exits_1(registry: Registry, plain_list: Path) -> None:
    """The registry's own 404 (its scrub route always exists): the URL is wrong, not the list."""
    url = registry.url + "/healthz"
    result = dnc("scrub", str(plain_list), "--url", url, "--key", registry.operator_key)
    assert_one_line_error(result, 1)
    assert "404" in result.stderr and "is --url the registry's root?" in result.stderr


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("start", "said"),
    [
        (b"\xff\xfe+\x001\x00", "UTF-16 text"),
        (b"\x1f\x8b\x08\x00", "gzip-compressed; gunzip it first"),
        (b"PK\x03\x04", "a zip file"),
    ],
)
def test_files_that_are_no_text_say_what_they_are(
    registry: Registry, tmp_path: Path, mode: str, start: bytes, said: str
) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(start + bytes(range(256)) * 4)
    result = MODES[mode](registry, str(path))
    assert_one_line_error(result, 2)
    assert said in result.stderr


def test_an_unknown_key_exits_2(registry: Registry, plain_list: Path) -> None:
    """A bad `--key` is a bad argument (CONTRACT section 5: exit 2)."""
    result = dnc("scrub", str(plain_list), "--url", registry.url, "--key", "not-a-key")
    assert_one_line_error(result, 2)
    assert "401" in result.stderr and result.stdout == ""


def test_a_carrier_key_cannot_scrub(registry: Registry, plain_list: Path) -> None:
    result = dnc("scrub", str(plain_list), "--url", registry.url, "--key", registry.carrier_key)
    assert_one_line_error(result, 2)
    assert "403" in result.stderr


def test_redis_down_in_local_mode_exits_1_and_writes_nothing(
    plain_list: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    result = dnc(
        "scrub", str(plain_list), "-o", str(out), DNC_REDIS_URL=f"redis://127.0.0.1:{free_port()}"
    )
    assert_one_line_error(result, 1)
    assert not out.exists()


# Lists both modes refuse alike (exit 2, one line saying why), each read differently once:
# - columns separated by semicolons (Excel where the decimal mark is a comma);
# - a .csv of numbers alone: read with a header row, its first number was no header;
# - a NUL byte past the binary sniff at the start: the API refused the body, while the
#   local scrub echoed the byte, so the two modes wrote different files;
# - a line longer than a CSV cell may be, which both echoed whole.
REFUSED_LISTS = {
    "semicolons": (
        "crm.csv",
        b"Name;Telefon;Ort\nAnn;+12125551234;Berlin\n",
        "semicolons, not commas",
    ),
    "numbers-alone": (
        "dial.csv",
        b"+12125551234\n+12125551235\n",
        "the first row is data, not a header",
    ),
    "nul-byte": (
        "nul.txt",
        ("\n".join([FULL] * 3000) + f"\n{FREE}\x00x\n{FREE}\n").encode(),
        "NUL byte, on line 3001",
    ),
    "long-line": (
        "long.txt",
        f"{FULL}\n\n{'9' * 200_000}\n{FREE}\n".encode(),
        "a line of 200000 bytes (line 2 of those not blank) is over the limit of 131072",
    ),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("refused", REFUSED_LISTS)
def test_a_list_read_wrong_once_is_bad_input_in_both_modes(
    registry: Registry, tmp_path: Path, mode: str, refused: str
) -> None:
    name, content, words = REFUSED_LISTS[refused]
    listing = tmp_path / name
    listing.write_bytes(content)
    result = MODES[mode](registry, str(listing))
    assert_one_line_error(result, 2)
    assert words in result.stderr


@pytest.mark.parametrize("mode", MODES)
def test_a_list_of_no_valid_number_gets_a_hint_in_both_modes(
    registry: Registry, tmp_path: Path, mode: str
) -> None:
    ftc = tmp_path / "ftc.txt"
    ftc.write_text("212,5551234\n212,5551235\n")
    result = MODES[mode](registry, str(ftc))
    assert result.returncode == 0, result.stderr
    assert "no row was a valid number" in result.stderr
    assert "reads as an FTC flat file" in result.stderr
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\nworld\n")
    result = MODES[mode](registry, str(junk))
    assert "no row was a valid number; check --format, --column and --region" in result.stderr


@pytest.mark.parametrize("mode", MODES)
def test_a_csv_scrubbed_without_column_says_which_column_was_read(
    registry: Registry, tmp_path: Path, mode: str
) -> None:
    """An account number in the first column scrubs as a phone number: the contract's
    default, so it is said, not refused."""
    listing = tmp_path / "crm.csv"
    listing.write_text("account_no,name,phone\n2015550143,Ann,+12125551234\n")
    result = MODES[mode](registry, str(listing))
    assert result.returncode == 0, result.stderr
    assert "read from the first column, 'account_no' (of 3); --column names another" in (
        result.stderr
    )
    named = MODES[mode](registry, str(listing), "--column", "phone")
    assert named.returncode == 0 and "first column" not in named.stderr
