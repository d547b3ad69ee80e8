"""deploy/redis.conf gives the guarantees the README claims, on the real redis-server."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from registry.embedded import free_port, redis_server_binary

CONF = Path(__file__).resolve().parent.parent / "deploy" / "redis.conf"


def test_deploy_config_is_durable_and_never_evicts(tmp_path: Path) -> None:
    port = free_port()
    # Only where it lives changes: the file's own `dir` would chdir before an override applies.
    conf = tmp_path / "redis.conf"
    conf.write_text(
        CONF.read_text().replace("dir /var/lib/dnc/redis", f"dir {tmp_path}")
        + f"\nport {port}\nsupervised no\n"
    )
    server = subprocess.Popen([redis_server_binary(), str(conf)])
    client = redis.Redis(port=port, socket_connect_timeout=1, socket_timeout=5)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert server.poll() is None, "redis-server refused deploy/redis.conf"
                time.sleep(0.05)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("set-max-intset-entries") == {"set-max-intset-entries": "65536"}
        client.sadd("s", *range(-32768, -32768 + 5000))
        assert client.object("encoding", "s") == b"intset"
    finally:
        client.close()
        server.terminate()
        server.wait(10)
