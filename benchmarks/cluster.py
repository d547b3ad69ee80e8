"""Goal 7's figure: the same 1M scrub against a three-master Redis Cluster on loopback.

The cluster is three plain redis-servers (default configuration plus
`cluster-enabled`) joined by `redis-cli --cluster create`, the `redis-cli`
that ships beside the registry's `redis-server`. The registry is loaded with
`dnc load` through `DNC_REDIS_URL=redis+cluster://...` and scrubbed through a
`dnc serve` on that URL, exactly as on one node. A failure is reported as the
figure's reason, not raised: the rest of the run still counts.
"""

from __future__ import annotations

import random
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import redis

from benchmarks import servers, world
from benchmarks.client import check_answer, create_operator, every_run, scrub_text
from registry.embedded import redis_server_binary

MASTERS = 3
CLUSTER_BUS_OFFSET = 10_000


@contextmanager
def three_masters() -> Iterator[str]:
    """A running cluster; yields its `redis+cluster://` URL. Stops every node on the way out."""
    with ExitStack() as stack:
        nodes = []
        for i, port in enumerate(_ports(MASTERS)):
            node = servers.PlainRedis(f"cluster{i}", port)
            node.args += [
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(node.directory / "nodes.conf"),
                "--cluster-node-timeout", "5000",
            ]  # fmt: skip
            nodes.append(stack.enter_context(node))
        cli = str(Path(redis_server_binary()).with_name("redis-cli"))
        addresses = [f"127.0.0.1:{node.port}" for node in nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        _wait_ok([node.port for node in nodes])
        yield "redis+cluster://" + ",".join(addresses)


def _ports(count: int) -> list[int]:
    """Free ports whose cluster bus port (port + 10000) is free and below 65536 too."""
    found: list[int] = []
    for port in random.sample(range(20_000, 30_000), 200):
        if _free(port) and _free(port + CLUSTER_BUS_OFFSET):
            found.append(port)
            if len(found) == count:
                return found
    raise RuntimeError("no free loopback ports for a cluster")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_ok(ports: list[int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    for port in ports:
        client = redis.Redis(port=port)
        while client.cluster("info").get("cluster_state") != "ok":
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        client.close()


def bench(runs: int, w: world.World) -> dict[str, Any]:
    """Load, then the E.164 scrub `runs` times; {"error": ...} when any step fails."""
    try:
        with three_masters() as url:
            started = time.perf_counter()
            load = subprocess.run(
                servers.dnc_command("load", str(w.registry_ftc), "--format", "ftc"),
                env=servers.dnc_env(url, None, 1),
                capture_output=True,
                text=True,
            )
            load_seconds = time.perf_counter() - started
            if load.returncode != 0:
                return {"error": f"dnc load on the cluster: {load.stderr.strip()[-500:]}"}
            body = w.scrub_e164.read_bytes()
            times, checks = [], []
            with servers.dnc_serve(url, 1) as api:
                key = create_operator(api.url)
                for _ in range(runs):
                    seconds, answer = scrub_text(api.url, key, body, None)
                    times.append(seconds)
                    checks.append(check_answer(answer, w.registered))
            return {
                "masters": MASTERS,
                "load_output": load.stdout.strip().splitlines()[-1],
                "load_seconds": load_seconds,
                "runs": times,
                "median": statistics.median(times),
                **every_run(checks),
            }
    except Exception as exc:  # noqa: BLE001 - reported in RESULTS.md as the reason
        return {"error": f"{type(exc).__name__}: {str(exc)[-800:]}"}
