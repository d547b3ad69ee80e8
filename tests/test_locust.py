"""benchmarks/locustfile.py runs headless against a real `dnc serve` and stops by itself.

A few users for a few seconds: every user type makes requests and none fails (the
locustfile checks each scrub's rows and its receipt's counts, blocked ones included). A run
that cannot start (a wrong key, no registry) ends at once, and `make locust` then keeps
the previous run's stats.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from registry.embedded import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ADMIN_KEY = "locust-test-admin-key"
_bin = Path(sys.executable).parent
DNC = [str(_bin / "dnc")] if (_bin / "dnc").exists() else [sys.executable, "-m", "registry.cli"]
LOCUST = [str(_bin / "locust")] if (_bin / "locust").exists() else [sys.executable, "-m", "locust"]


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DNC_", "LOCUST_"))}
    return {**env, "PYTHONUNBUFFERED": "1", **values}


def wait_ready(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        if server.poll() is not None:
            pytest.fail(f"dnc serve exited with {server.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"dnc serve not ready:\n{log.read_text()}")
        time.sleep(0.1)


@contextmanager
def dnc_serve(redis_url: str, tmp_path: Path) -> Iterator[str]:
    """A real `dnc serve` with ADMIN_KEY on a free port; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*DNC, "serve"],
            env=clean_env(
                DNC_REDIS_URL=redis_url,
                DNC_ADMIN_KEY=ADMIN_KEY,
                DNC_HOST="127.0.0.1",
                DNC_PORT=str(port),
            ),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(url, server, log)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def run_locust(
    url: str, tmp_path: Path, admin_key: str, *options: list[str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """The Makefile's headless command against `url`, its CSV stats in `tmp_path`."""
    command = [
        *LOCUST,
        "-f",
        str(ROOT / "benchmarks" / "locustfile.py"),
        "--headless",
        "--only-summary",
        "--host",
        url,
        "--csv",
        str(tmp_path / "locust"),
    ]
    return subprocess.run(
        command + [word for option in options for word in option],
        env=clean_env(DNC_ADMIN_KEY=admin_key),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_locust_runs_every_user_type_without_failures(redis_url: str, tmp_path: Path) -> None:
    with dnc_serve(redis_url, tmp_path) as url:
        # the Makefile's command, shorter and smaller
        run = run_locust(
            url,
            tmp_path,
            ADMIN_KEY,
            ["--users", "6", "--spawn-rate", "6"],
            # the complaint checks need a few subscriber turns, slow runner or not
            ["--run-time", "10s"],
            # the preload is then 550: the 5,000-row lists' 10%, and a tenth more for the
            # carriers' deregistrations
            ["--scrub-sizes", "1000,5000"],
            timeout=60,
        )
    assert run.returncode == 0, run.stderr[-3000:]

    stats = tmp_path / "locust_stats.csv"
    assert stats.exists(), run.stderr[-3000:]
    rows = {row["Name"]: row for row in csv.DictReader(stats.open())}
    requests = {name: int(row["Request Count"]) for name, row in rows.items()}
    by_user = {
        "subscriber": [n for n in requests if n.startswith("GET /v1/registrations/")],
        "carrier": [n for n in requests if n.startswith("PUT /v1/registrations/")],
        "operator": [n for n in requests if n.startswith(("GET /v1/numbers/", "POST /v1/scrub"))],
    }
    for user, names in by_user.items():
        assert sum(requests[n] for n in names) > 0, f"no {user} requests in {requests}"
    for path in ("POST /v1/sms/inbound", "POST /v1/complaints", "GET /v1/complaints/[id]/status"):
        assert any(n.startswith(path) for n in requests), f"no {path} in {requests}"
    assert int(rows["Aggregated"]["Failure Count"]) == 0, (
        tmp_path / "locust_failures.csv"
    ).read_text()
    assert len((tmp_path / "locust_failures.csv").read_text().splitlines()) == 1  # the header
    # Every list held its 10% of distinct numbers registered for voice calls, each blocked
    # by the voice scrub (the receipts' check, a failure otherwise).
    assert "550 numbers preloaded" in run.stderr, [
        line for line in run.stderr.splitlines() if "preload" in line
    ]
    assert "raise --preload" not in run.stderr


def test_locust_refuses_to_start_without_the_admin_key(tmp_path: Path) -> None:
    run = subprocess.run(
        [*LOCUST, "-f", str(ROOT / "benchmarks" / "locustfile.py"), "--headless", "-t", "1s"],
        env=clean_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "DNC_ADMIN_KEY" in run.stderr


NOT_STARTED = 3  # benchmarks/locustfile.py's exit status when no user could start


def test_locust_with_a_wrong_key_stops_at_once_and_says_why(redis_url: str, tmp_path: Path) -> None:
    with dnc_serve(redis_url, tmp_path) as url:
        started = time.monotonic()
        run = run_locust(url, tmp_path, "not-the-admin-key", ["--run-time", "60s"], timeout=90)
        elapsed = time.monotonic() - started
    assert run.returncode == NOT_STARTED, run.stderr[-3000:]
    assert elapsed < 30, f"waited {elapsed:.0f} s of its 60 s run time"
    assert "is DNC_ADMIN_KEY the registry's administrator key?" in run.stderr
    assert "401" in run.stderr


@pytest.mark.skipif(
    shutil.which("make") is None or not (_bin / "locust").exists(), reason="needs make and locust"
)
def test_make_locust_keeps_the_last_stats_when_the_registry_is_not_there(tmp_path: Path) -> None:
    stats = tmp_path / "locust_stats.csv"
    stats.write_text("the previous run's stats\n")
    started = time.monotonic()
    run = subprocess.run(
        [
            "make",
            "-C",
            str(ROOT),
            "locust",
            f"BIN={_bin}",
            "-o",
            str(_bin / "dnc"),  # not rebuilt here
            f"LOCUST_HOST=http://127.0.0.1:{free_port()}",
            "LOCUST_RUN_TIME=60s",
            f"LOCUST_CSV={tmp_path / 'locust'}",
        ],
        env=clean_env(DNC_ADMIN_KEY=ADMIN_KEY),
        capture_output=True,
        text=True,
        timeout=90,
    )
    elapsed = time.monotonic() - started
    assert run.returncode != 0, run.stdout[-3000:]
    assert elapsed < 30, f"waited {elapsed:.0f} s of its 60 s run time"
    assert "cannot be reached" in run.stderr
    assert stats.read_text() == "the previous run's stats\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locust_stats.csv"]
