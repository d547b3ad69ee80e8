"""The real `dnc` command, run as a user runs it: `dnc serve` and friends as subprocesses.

These check the safety rules of CONTRACT section 7 from outside the process:
read your writes across workers and processes, nothing acknowledged is lost
to a `kill -9`, and the embedded Redis starts and stops with `dnc serve`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from conftest import stack_dump

from registry import config
from registry.embedded import free_port

pytestmark = pytest.mark.slow

ADMIN_KEY = "serve-test-admin-key"
_installed = Path(sys.executable).with_name("dnc")
DNC = [str(_installed)] if _installed.exists() else [sys.executable, "-m", "registry.cli"]
# Every request on its own connection, so that consecutive ones may reach different workers.
http = httpx.Client(timeout=10, headers={"Connection": "close"})


def dnc_env(**values: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("DNC_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"  # stack_dump: what one that will not stop is doing
    env.update(values)
    return env


def dnc(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DNC, *args], env=dnc_env(**env), capture_output=True, text=True, timeout=60
    )


class Serve:
    """One `dnc serve` process, its output kept in a file."""

    def __init__(self, log: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*DNC, "serve"],
                env=dnc_env(DNC_HOST="127.0.0.1", DNC_PORT=str(self.port), **env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: cleanup reaches uvicorn's workers
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"dnc serve exited with {self.process.returncode}:\n{self.output}")
            try:
                if http.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dnc serve not ready within {timeout:.0f} s:\n{self.output}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
        """Ctrl-C (or a service manager's SIGTERM); the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                stacks = stack_dump(self.process, lambda: self.output)
                pytest.fail(f"dnc serve did not stop on signal {sig}:\n{stacks}")
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Serve]]:
    """Start `dnc serve` with these DNC_* variables and wait until it is ready."""
    started: list[Serve] = []

    def start(**env: str) -> Serve:
        server = Serve(tmp_path / f"serve-{len(started)}.log", env)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.kill()


def request(
    method: str,
    url: str,
    key: str | None = None,
    *,
    json: object = None,
    content: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    headers = dict(headers or {})
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return http.request(method, url, headers=headers, json=json, content=content)


def new_key(server: Serve, role: str, admin_key: str = ADMIN_KEY) -> str:
    answer = request(
        "POST", f"{server.url}/v1/operators", admin_key, json={"name": f"e2e {role}", "role": role}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["api_key"])


def register(server: Serve, carrier_key: str, number: str) -> None:
    answer = request("PUT", f"{server.url}/v1/registrations/{number}", carrier_key)
    assert answer.status_code == 201, answer.text


def statuses(server: Serve, key: str, number: str, times: int) -> list[str]:
    """`times` answers about `number`: look-ups, JSON scrubs and text scrubs in turn."""
    answers = []
    for i in range(times):
        kind = i % 3
        if kind == 0:
            answer = request("GET", f"{server.url}/v1/numbers/{number}", key)
            assert answer.status_code == 200, answer.text
            answers.append(answer.json()["status"])
        elif kind == 1:
            answer = request("POST", f"{server.url}/v1/scrub", key, json={"numbers": [number]})
            assert answer.status_code == 200, answer.text
            scrub = answer.json()
            counts = {status: n for status, n in scrub["counts"].items() if status != "total"}
            answers.append(max(counts, key=counts.__getitem__))
            assert scrub["blocked"] == ([number] if answers[-1] == "blocked" else [])
        else:
            answer = request(
                "POST",
                f"{server.url}/v1/scrub",
                key,
                content=f"{number}\n",
                headers={"Content-Type": "text/plain"},
            )
            assert answer.status_code == 200, answer.text
            header, row = answer.text.splitlines()
            assert header == "input,number,status"
            answers.append(row.rsplit(",", 1)[1])
    return answers


def worker_pids(server: Serve, seconds: float = 20) -> set[int]:
    """The pids that label /metrics answers over fresh connections, until two have or
    `seconds` pass. The kernel hands a connection to whichever worker is waiting in
    accept(): on a busy machine one may take a hundred in a row, so this asks for a
    while, pausing between, rather than a fixed number of times."""
    seen: set[int] = set()
    deadline = time.monotonic() + seconds
    while len(seen) < 2 and time.monotonic() < deadline:
        text = request("GET", f"{server.url}/metrics").text
        seen |= {int(p) for p in re.findall(r'dnc_http_requests_total\{worker="(\d+)"', text)}
        time.sleep(0.02)
    return seen


def parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def redis_pids(data_dir: Path) -> list[int]:
    """Live redis-server processes that serve `data_dir` (its path in their title or cwd)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "redis-server" not in title:
                continue
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue  # gone, or a zombie
        if str(data_dir) in title or cwd == str(data_dir):
            found.append(int(entry.name))
    return found


def number(i: int) -> str:
    return f"+1212555{1000 + i}"


@pytest.mark.cluster  # `dnc serve` and `dnc load` on redis+cluster:// too
def test_read_your_writes_across_workers(serve: Callable[..., Serve], redis_url: str) -> None:
    server = serve(DNC_REDIS_URL=redis_url, DNC_ADMIN_KEY=ADMIN_KEY, DNC_WORKERS="2")
    carrier, operator = new_key(server, "carrier"), new_key(server, "operator")
    for i in range(5):
        # Each worker has answered "callable" before: its filter is built and lacks the number.
        assert set(statuses(server, operator, number(i), 6)) == {"callable"}
        register(server, carrier, number(i))
        assert set(statuses(server, operator, number(i), 40)) == {"blocked"}

    pids = worker_pids(server)
    assert len(pids) == 2, f"one worker answered every request: {pids}"
    assert {parent_pid(pid) for pid in pids} == {server.pid}


def test_read_your_writes_across_processes(serve: Callable[..., Serve], redis_url: str) -> None:
    a = serve(DNC_REDIS_URL=redis_url, DNC_ADMIN_KEY=ADMIN_KEY)
    b = serve(DNC_REDIS_URL=redis_url, DNC_ADMIN_KEY=ADMIN_KEY)
    carrier, operator = new_key(a, "carrier"), new_key(b, "operator")
    for i in range(5):
        assert statuses(b, operator, number(i), 3) == ["callable"] * 3
        register(a, carrier, number(i))
        assert statuses(b, operator, number(i), 3) == ["blocked"] * 3


def test_embedded_redis_keeps_data_across_restarts(
    serve: Callable[..., Serve], tmp_path: Path
) -> None:
    data = (tmp_path / "data").resolve()
    first = serve(DNC_DATA_DIR=str(data))
    assert f"serving {first.url}" in first.output
    admin_key = re.search(r"admin key \(shown once, keep it\): (\S+)", first.output)
    assert admin_key, first.output
    carrier = new_key(first, "carrier", admin_key[1])
    register(first, carrier, number(0))
    assert redis_pids(data), "no redis-server found for the data dir"

    assert first.stop() == 0, first.output
    assert redis_pids(data) == []
    assert not (data / "redis.url").exists()
    assert (data / "appendonly.aof").exists() or (data / "appendonlydir").is_dir()

    second = serve(DNC_DATA_DIR=str(data))
    assert "admin key" not in second.output
    assert statuses(second, admin_key[1], number(0), 3) == ["blocked"] * 3
    assert second.stop(signal.SIGTERM) == 0, second.output
    assert redis_pids(data) == []
    assert not (data / "redis.url").exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_embedded_redis_that_dies_is_started_again_and_503_meanwhile(
    serve: Callable[..., Serve], tmp_path: Path, workers: str
) -> None:
    """Killed or crashed, the embedded Redis left an API that answered 503 for ever and
    looked alive to a service manager: it is started again on its data, at the same
    address, and the workers serve again; never "callable" meanwhile."""
    data = (tmp_path / "data").resolve()
    server = serve(DNC_DATA_DIR=str(data), DNC_ADMIN_KEY=ADMIN_KEY, DNC_WORKERS=workers)
    carrier = new_key(server, "carrier")
    register(server, carrier, number(0))
    (redis_pid,) = redis_pids(data)
    os.kill(redis_pid, signal.SIGKILL)
    answers = []
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline, f"never served again:\n{server.output}"
        assert server.process.poll() is None, server.output
        answer = request("GET", f"{server.url}/v1/numbers/{number(0)}", ADMIN_KEY)
        answers.append(answer.status_code)
        if answer.status_code == 200:
            assert answer.json()["status"] == "blocked"
            break
        assert answer.status_code == 503, answer.text
        time.sleep(0.05)
    assert redis_pids(data) and redis_pids(data) != [redis_pid]
    while "started again" not in server.output:  # said once its restart returned
        assert time.monotonic() < deadline, server.output
        time.sleep(0.05)
    assert "the embedded redis-server exited" in server.output
    assert "Traceback" not in server.output
    assert server.stop() == 0, server.output
    assert redis_pids(data) == []


def test_an_embedded_redis_that_keeps_dying_stops_dnc_serve_with_status_1(
    serve: Callable[..., Serve], tmp_path: Path
) -> None:
    """Started again three times within a minute and killed each time: something is wrong
    that a restart will not mend, and the API stops for someone to see to it."""
    data = (tmp_path / "data").resolve()
    server = serve(DNC_DATA_DIR=str(data), DNC_ADMIN_KEY=ADMIN_KEY)
    deadline = time.monotonic() + 60
    killed = 0
    while server.process.poll() is None:
        assert time.monotonic() < deadline, f"dnc serve went on:\n{server.output}"
        # Each kill lands on a redis-server that finished starting again: one killed in
        # its start-up would stop dnc serve as "could not be started", not as this test's
        # "exited 4 times".
        if server.output.count("started again") >= killed:
            for pid in redis_pids(data):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
        time.sleep(0.05)
    assert server.process.returncode == 1, server.output
    assert "times in 60 s; stopping" in server.output
    assert "is gone, so dnc serve stopped" in server.output
    assert "Traceback" not in server.output


def test_acknowledged_registration_survives_kill_9(
    serve: Callable[..., Serve], tmp_path: Path
) -> None:
    data = (tmp_path / "data").resolve()
    server = serve(DNC_DATA_DIR=str(data), DNC_ADMIN_KEY=ADMIN_KEY)
    embedded_url = re.search(r"embedded redis-server: (\S+)", server.output)
    assert embedded_url, server.output
    embedded = redis.Redis.from_url(embedded_url[1])
    assert embedded.config_get("appendonly") == {"appendonly": "yes"}
    assert embedded.config_get("appendfsync") == {"appendfsync": "always"}
    embedded.close()
    carrier = new_key(server, "carrier")
    (redis_pid,) = redis_pids(data)
    for i in range(3):
        register(server, carrier, number(i))
    os.kill(redis_pid, signal.SIGKILL)
    server.kill()
    deadline = time.monotonic() + 10
    while redis_pids(data):
        assert time.monotonic() < deadline, "redis-server outlived SIGKILL"
        time.sleep(0.05)

    again = serve(DNC_DATA_DIR=str(data), DNC_ADMIN_KEY=ADMIN_KEY)
    for i in range(3):
        assert statuses(again, ADMIN_KEY, number(i), 3) == ["blocked"] * 3


def test_operators_create_prints_a_working_key(serve: Callable[..., Serve], redis_url: str) -> None:
    server = serve(DNC_REDIS_URL=redis_url, DNC_ADMIN_KEY=ADMIN_KEY)
    created = dnc(
        "operators", "create", "Acme Mobile", "--role", "carrier", "--prefix", "+1212",
        DNC_REDIS_URL=redis_url,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    # The key alone on stdout, as KEY=$(dnc operators create ...) takes it; the rest on stderr.
    api_key = created.stdout.strip()
    assert created.stdout == api_key + "\n" and " " not in api_key, created.stdout
    assert "shown once" in created.stderr
    register(server, api_key, number(0))
    assert statuses(server, ADMIN_KEY, number(0), 3) == ["blocked"] * 3


def test_bad_arguments_exit_2_without_a_traceback(redis_url: str) -> None:
    bare = dnc()
    assert bare.returncode == 2
    assert bare.stderr.startswith("usage: dnc")

    bad_prefix = dnc("operators", "create", "Acme", "--prefix", "1212", DNC_REDIS_URL=redis_url)
    assert bad_prefix.returncode == 2
    assert len(bad_prefix.stderr.strip().splitlines()) == 1, bad_prefix.stderr
    assert "Traceback" not in bad_prefix.stderr

    missing = dnc("load", "no-such-file.txt", DNC_REDIS_URL=redis_url)
    assert missing.returncode == 2, missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.cluster  # `dnc serve` and `dnc load` on redis+cluster:// too
def test_load_is_seen_by_a_running_server_without_restart(
    serve: Callable[..., Serve], redis_url: str, tmp_path: Path
) -> None:
    server = serve(DNC_REDIS_URL=redis_url, DNC_ADMIN_KEY=ADMIN_KEY, DNC_WORKERS="2")
    operator = new_key(server, "operator")
    loaded = [f"+1212555{2000 + i}" for i in range(50)]
    for _ in range(6):  # both workers' filters are built, without these numbers
        answer = request("POST", f"{server.url}/v1/scrub", operator, json={"numbers": loaded})
        assert answer.json()["counts"]["callable"] == 50
    register(server, new_key(server, "carrier"), loaded[0])
    ftc = tmp_path / "ftc.txt"
    ftc.write_text("".join(f"212,{n[-7:]}\n" for n in loaded))

    load = dnc("load", str(ftc), DNC_REDIS_URL=redis_url)
    assert load.returncode == 0, load.stderr
    assert load.stdout.strip().splitlines()[-1] == "loaded 49, already present 1, invalid 0"

    for _ in range(10):
        answer = request("POST", f"{server.url}/v1/scrub", operator, json={"numbers": loaded})
        assert answer.json()["blocked"] == loaded
        answer = request(
            "POST",
            f"{server.url}/v1/scrub",
            operator,
            content="\n".join(loaded),
            headers={"Content-Type": "text/plain"},
        )
        rows = answer.text.splitlines()[1:]
        assert rows == [f"{n},{n},blocked" for n in loaded]
    for n in loaded:
        assert statuses(server, operator, n, 1) == ["blocked"]


def test_nothing_starts_a_second_redis_on_a_served_data_dir_whose_redis_stalls(
    serve: Callable[..., Serve], tmp_path: Path
) -> None:
    """A stopped Redis (a paused container, a swap storm) does not answer a PING; a
    command that took that for "no dnc serve here" started its own Redis on the same
    append-only file, took the server's socket and loaded into a Redis the API never saw.
    The Redis holds the directory's lock too: its `dnc serve` killed, it still does."""
    data = (tmp_path / "data").resolve()
    server = serve(DNC_DATA_DIR=str(data), DNC_ADMIN_KEY=ADMIN_KEY)
    [pid] = redis_pids(data)
    one = tmp_path / "one.txt"
    one.write_text("+12125551777\n")
    os.kill(pid, signal.SIGSTOP)
    try:
        load = dnc("load", str(one), DNC_DATA_DIR=str(data))
        assert load.returncode == 1, load.stderr
        assert "no Redis of it answered within 30 s" in load.stderr
        assert "Traceback" not in load.stderr
        other = dnc("serve", DNC_DATA_DIR=str(data), DNC_PORT=str(free_port()))
        assert other.returncode == 1 and "another dnc serve" in other.stderr, other.stderr
        assert redis_pids(data) == [pid] and (data / "redis.sock").exists()
        server.kill()  # its Redis, stopped, cannot act on being orphaned yet
        again = dnc("serve", DNC_DATA_DIR=str(data), DNC_PORT=str(free_port()))
        assert again.returncode == 1 and "another dnc serve" in again.stderr, again.stderr
        assert redis_pids(data) == [pid]
    finally:
        os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + 20
    while redis_pids(data):  # orphaned, it stops (and lets the lock go)
        assert time.monotonic() < deadline, "the orphaned redis-server did not stop"
        time.sleep(0.1)
    load = dnc("load", str(one), DNC_DATA_DIR=str(data))
    assert load.returncode == 0, load.stderr
    restarted = serve(DNC_DATA_DIR=str(data), DNC_ADMIN_KEY=ADMIN_KEY)
    assert statuses(restarted, ADMIN_KEY, "+12125551777", 3) == ["blocked"] * 3


def test_a_command_waits_for_another_that_runs_its_own_redis_then_runs_its_own(
    tmp_path: Path,
) -> None:
    """Without `dnc serve`, a command runs a Redis of its own and stops it when done: a
    second one using it meanwhile lost it mid-way. It waits for the lock instead."""
    data = (tmp_path / "data").resolve()
    many = tmp_path / "many.txt"
    # National formats, the slower path: the load is still running when the export starts.
    many.write_text(
        "".join(f"(212) {n // 10_000:03d}-{n % 10_000:04d}\n" for n in range(2_000_000, 3_500_000))
    )
    first = subprocess.Popen(
        [*DNC, "load", str(many)],
        env=dnc_env(DNC_DATA_DIR=str(data)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not redis_pids(data):  # the first holds the directory and runs its Redis
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.02)
    export = dnc("export", "--prefix", "+1212", DNC_DATA_DIR=str(data))
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert export.returncode == 0, export.stderr
    assert len(export.stdout.splitlines()) == 1_500_000  # after the load, all of it


@pytest.mark.parametrize(
    ("trusted", "second"),
    [(None, 200), ("none", 429), ("10.0.0.0/8", 429), ("127.0.0.0/8", 200)],
)
def test_x_forwarded_for_names_the_client_only_behind_a_trusted_proxy(
    serve: Callable[..., Serve], redis_url: str, trusted: str | None, second: int
) -> None:
    """One status check a minute per client: two clients behind a trusted local proxy
    (the test itself, on 127.0.0.1) get one each; an untrusted peer's header is ignored,
    so both requests are the peer's own."""
    env = {"DNC_REDIS_URL": redis_url, "DNC_ADMIN_KEY": ADMIN_KEY, "DNC_STATUS_RATE_LIMIT": "1"}
    if trusted is not None:
        env["DNC_TRUSTED_PROXIES"] = trusted
    server = serve(**env)

    def check(client: str) -> int:
        headers = {"X-Forwarded-For": client}
        return request(
            "GET", f"{server.url}/v1/registrations/+12125550199", headers=headers
        ).status_code

    assert check("198.51.100.1") == 200
    assert check("198.51.100.2") == second
    assert check("198.51.100.1") == 429


def test_a_bad_trusted_proxies_setting_stops_start_up(redis_url: str) -> None:
    done = dnc("serve", DNC_REDIS_URL=redis_url, DNC_TRUSTED_PROXIES="10.0.0.0/8,proxy.local")
    assert done.returncode == 2
    assert "DNC_TRUSTED_PROXIES entry 'proxy.local'" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_outbox_in_a_missing_directory_stops_serve_before_it_says_it_serves(
    redis_url: str, tmp_path: Path
) -> None:
    result = dnc(
        "serve",
        DNC_REDIS_URL=redis_url,
        DNC_PORT=str(free_port()),
        DNC_NOTIFIER=f"file:{tmp_path}/nowhere/outbox.jsonl",
    )
    assert result.returncode == 2, result.stderr
    assert "serving" not in result.stdout
    assert result.stderr.strip().splitlines() == [
        f"dnc: DNC_NOTIFIER: the directory of '{tmp_path}/nowhere/outbox.jsonl' does not exist"
    ]


def run_until_it_stops(argv: list[str], env: dict[str, str], hang: str) -> tuple[int, str, str]:
    """A `dnc serve` expected to stop by itself: its status, stdout and stderr; a test
    failure saying `hang` (its whole process group killed) if it still runs after 30 s."""
    process = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"dnc serve {hang}:\n{stack_dump(process)}")
    return process.returncode, out, err


# A SIGTERM (or Ctrl-C) handled while the garbage collector runs a finalizer: Python prints
# what the handler raised ("Exception ignored in ...") and carries on, as it did for a
# redis-py connection pool's __del__ in CI, where dnc serve then started and ran for good.
# sys.argv[2] names the signal; sys.argv[1] the step after which the finalizer runs: before
# dnc serve says it serves (Redis' settings), or as uvicorn starts, before its own handlers.
_SIGNAL_IN_A_FINALIZER = """
import os, signal, sys
import uvicorn
from registry import cli, serve

class Dropped:
    def __del__(self):
        os.kill(os.getpid(), getattr(signal, sys.argv[2]))
        for _ in range(100_000):  # the handler runs in here
            pass

owner, name = (serve.setup, "tune") if sys.argv[1] == "tune" else (uvicorn.Config, "__init__")
step = getattr(owner, name)

def step_then_drop(*args, **kwargs):
    step(*args, **kwargs)
    Dropped()

setattr(owner, name, step_then_drop)
sys.exit(cli.main(["serve"]))
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("step", ["tune", "uvicorn"])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_signal_during_start_up_stops_serve_even_where_python_ignores_it(
    tmp_path: Path, workers: str, step: str, sig: str
) -> None:
    data = (tmp_path / "data").resolve()
    status, out, err = run_until_it_stops(
        [sys.executable, "-c", _SIGNAL_IN_A_FINALIZER, step, sig],
        dnc_env(DNC_DATA_DIR=str(data), DNC_PORT=str(free_port()), DNC_WORKERS=workers),
        f"kept running after a {sig} in start-up",
    )
    assert "Exception ignored in" in err, err  # the signal did land in the finalizer
    assert status in (0, 130), (out, err)
    assert redis_pids(data) == []
    assert not (data / "redis.url").exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_stops_serve_at_once_and_its_redis_with_it(
    tmp_path: Path, workers: str
) -> None:
    data = (tmp_path / "data").resolve()
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        status, out, err = run_until_it_stops(
            [*DNC, "serve"],
            dnc_env(DNC_DATA_DIR=str(data), DNC_PORT=str(port), DNC_WORKERS=workers),
            "still running on a port in use",
        )
    assert status == 1, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnc: ") and str(port) in lines[0], err
    assert redis_pids(data) == []
    assert not (data / "redis.url").exists()


@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1"])
def test_a_port_out_of_range_is_a_configuration_error(redis_url: str, port: str) -> None:
    done = dnc("serve", DNC_REDIS_URL=redis_url, DNC_PORT=port)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "DNC_PORT" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "serving" not in done.stdout


def test_operators_create_writes_the_audit_entry(
    serve: Callable[..., Serve], redis_url: str
) -> None:
    server = serve(DNC_REDIS_URL=redis_url, DNC_ADMIN_KEY=ADMIN_KEY)
    created = dnc(
        "operators", "create", "Acme Mobile", "--role", "carrier", "--prefix", "+1212",
        DNC_REDIS_URL=redis_url,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    operator_id = re.search(r"^operator (op_\S+) created", created.stderr, re.MULTILINE)
    assert operator_id, created.stderr
    answer = request("GET", f"{server.url}/v1/audit", ADMIN_KEY)
    assert answer.status_code == 200, answer.text
    entries = answer.json()["entries"]
    assert [(e["action"], e["actor"]) for e in entries] == [("operator.created", "cli")]
    assert entries[0]["operator"] == operator_id[1]
    assert (entries[0]["role"], entries[0]["name"]) == ("carrier", "Acme Mobile")
    # what it subscribes to and sends from, as POST /v1/operators audits it
    assert (entries[0]["prefixes"], entries[0]["callers"]) == ("+1212", "none")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_request_that_is_not_http_gets_the_error_shape(
    serve: Callable[..., Serve], redis_url: str, workers: str
) -> None:
    """uvicorn answers what it cannot parse itself; in the contract's shape all the same."""
    server = serve(DNC_REDIS_URL=redis_url, DNC_ADMIN_KEY=ADMIN_KEY, DNC_WORKERS=workers)
    for raw in (
        b"GET /v1/numbers/+1 212 555 1234 HTTP/1.1\r\nHost: x\r\n\r\n",  # spaces unencoded
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 TLS to a plain port\r\n\r\n",
    ):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(raw)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), data
        assert b"content-type: application/json" in head.lower()
        error = json.loads(body)["error"]
        assert error["code"] == "invalid_http" and error["details"] == {}


def test_an_upload_the_client_gives_up_is_no_500_and_no_traceback(
    serve: Callable[..., Serve], redis_url: str
) -> None:
    """A scrub cancelled mid-upload (or a dropped network) is nobody's failure: a line in
    the log and a 499 in /metrics, not a traceback and a 500 that would page someone."""
    server = serve(DNC_REDIS_URL=redis_url, DNC_ADMIN_KEY=ADMIN_KEY)
    operator = new_key(server, "operator")
    for path in ("/v1/scrub", "/v1/consents"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {operator}\r\n"
                "Content-Type: text/plain\r\nContent-Length: 100\r\n\r\n+1212555".encode()
            )
            time.sleep(0.2)  # the route is reading the body when the client goes
    deadline = time.monotonic() + 10
    while 'status="499"' not in (metrics := request("GET", f"{server.url}/metrics").text):
        assert time.monotonic() < deadline, metrics
        time.sleep(0.2)
    assert 'status="500"' not in metrics
    assert "Traceback" not in server.output and "the client left" in server.output


def test_serve_help_names_every_variable_that_configures_it() -> None:
    helped = dnc("serve", "--help")
    assert helped.returncode == 0
    text = " ".join(helped.stdout.split())
    read = set(re.findall(r'"(DNC_[A-Z_]+)"', Path(config.__file__).read_text()))
    assert read and {name for name in read if name not in text} == set()
