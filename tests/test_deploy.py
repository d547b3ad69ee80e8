"""deploy/: redis.conf gives the guarantees the README claims, on the real redis-server;
dnc.env.example is safe to start from."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from conftest import ADMIN, ready_client

from registry import serve
from registry.config import ConfigError, Settings, check_notifier, load_settings
from registry.embedded import free_port, redis_server_binary

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
CONF = DEPLOY / "redis.conf"


def test_deploy_config_is_durable_and_never_evicts(tmp_path: Path) -> None:
    port = free_port()
    # Only where it lives changes: the file's own `dir` would chdir before an override applies.
    conf = tmp_path / "redis.conf"
    conf.write_text(
        CONF.read_text()
        .replace("dir /var/lib/dnc/redis", f"dir {tmp_path}")
        .replace("unixsocket /run/dnc/redis.sock", f"unixsocket {tmp_path}/redis.sock")
        + f"\nport {port}\nsupervised no\n"
    )
    # With the unit's UMask, as systemd starts it: the append-only file is the registry,
    # complaints, consent evidence and key hashes; no other local user may read it.
    umask = int(unit_setting("dnc-redis.service", "UMask"), 8)
    server = subprocess.Popen([redis_server_binary(), str(conf)], umask=umask)
    client = redis.Redis(port=port, socket_connect_timeout=1, socket_timeout=5)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert server.poll() is None, "redis-server refused deploy/redis.conf"
                assert time.monotonic() < deadline, "redis-server never answered"
                time.sleep(0.05)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("set-max-intset-entries") == {"set-max-intset-entries": "65536"}
        # As deployed, no TCP: a socket only its owner may open.
        assert "\nport 0\n" in CONF.read_text()
        assert client.config_get("unixsocketperm") == {"unixsocketperm": "700"}
        assert (tmp_path / "redis.sock").stat().st_mode & 0o777 == 0o700
        client.sadd("s", *range(-32768, -32768 + 5000))
        assert client.object("encoding", "s") == b"intset"
        written = [p for p in tmp_path.iterdir() if p.name.startswith("appendonly")]
        assert written and all(p.stat().st_mode & 0o077 == 0 for p in written), written
    finally:
        client.close()
        server.terminate()
        server.wait(10)


def unit_setting(unit: str, name: str) -> str:
    [value] = [
        line.split("=", 1)[1]
        for line in (DEPLOY / unit).read_text().splitlines()
        if line.startswith(f"{name}=")
    ]
    return value


def test_the_units_fail_closed_and_stop_on_a_configuration_error() -> None:
    """The API outlives a Redis restart (answering 503 meanwhile) rather than restarting
    with it: a Redis restarted without its data is then a 503 registry_lost, where a
    restarted API would take the empty Redis for a new registry. A configuration error
    (exit 2) is not restarted in a loop."""
    assert unit_setting("dnc-registry.service", "Wants") == "dnc-redis.service"
    assert "Requires=" not in (DEPLOY / "dnc-registry.service").read_text()
    assert unit_setting("dnc-registry.service", "RestartPreventExitStatus") == "2"
    assert unit_setting("dnc-registry.service", "UMask") == "0077"


def template() -> dict[str, str]:
    lines = (DEPLOY / "dnc.env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {name: value for name, value in pairs}


def test_the_env_template_sends_codes_to_a_gateway_not_the_log() -> None:
    """Codes and numbers in the journal, and no subscriber ever getting one, is what `log`
    does; the template serves the public (through a TLS proxy), so it must not use it."""
    env = template()
    assert check_notifier(env["DNC_NOTIFIER"]).startswith("webhook:https://")


def test_the_template_serves_behind_a_local_proxy_and_reaches_redis_by_its_socket() -> None:
    """Plain HTTP on every address would carry keys and numbers in clear; Redis on TCP
    would let any local user read or change the registry."""
    env = template()
    assert env["DNC_HOST"] == "127.0.0.1" and env["DNC_TRUSTED_PROXIES"] == "127.0.0.1"
    assert env["DNC_REDIS_URL"] == "unix:///run/dnc/redis.sock"
    assert "unixsocket /run/dnc/redis.sock" in CONF.read_text()
    units = {name: (DEPLOY / name).read_text() for name in ("dnc-redis.service",
                                                            "dnc-registry.service")}  # fmt: skip
    assert "RuntimeDirectory=dnc" in units["dnc-redis.service"]
    assert "-s /run/dnc/redis.sock shutdown" in units["dnc-redis.service"]
    for unit in units.values():
        assert "NoNewPrivileges=yes" in unit and "ProtectSystem=strict" in unit


def test_the_templates_placeholder_admin_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="placeholder"):
        load_settings(template())
    assert load_settings({**template(), "DNC_ADMIN_KEY": "k" * 40}).admin_key == "k" * 40


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("::", False), ("10.0.0.5", False), ("dnc.internal", False)],
)  # fmt: skip
def test_a_log_notifier_is_warned_about_off_loopback(host: str, loopback: bool) -> None:
    assert serve._loopback(host) is loopback


def test_dnc_serve_warns_of_settings_that_break_a_rule_in_production() -> None:
    quiet = load_settings({})
    assert serve.warnings(quiet) == []
    loud = load_settings({"DNC_HOST": "0.0.0.0", "DNC_RETENTION_DAYS": "30"})
    found = serve.warnings(loud)
    assert len(found) == 2
    assert "DNC_NOTIFIER=log" in found[0] and "DNC_RETENTION_DAYS=30" in found[1]
    assert serve.warnings(load_settings({"DNC_RETENTION_DAYS": "153"})) == []


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("DNC_RETENTION_DAYS", "3654", "at most 3653"),
        ("DNC_RETENTION_DAYS", "30000", "at most 3653"),
        ("DNC_GRACE_DAYS", "99999999999", "at most 366"),
        ("DNC_CODE_TTL", "86401", "at most 86400"),
        ("DNC_WORKERS", "1000", "CPUs this process may use"),
    ],
)
def test_a_setting_past_what_can_work_stops_start_up(name: str, value: str, words: str) -> None:
    """A century's retention put the oldest kept change before 1970, which Redis refuses
    as a stream id: every registration was a 500. A thousand workers ran out of memory."""
    with pytest.raises(ConfigError, match=words):
        load_settings({name: value})


def test_the_longest_retention_and_grace_allowed_work(settings: Settings) -> None:
    longest = load_settings({"DNC_RETENTION_DAYS": "3653", "DNC_GRACE_DAYS": "366"})
    client = ready_client(
        settings.with_(retention_days=longest.retention_days, grace_days=longest.grace_days)
    )
    try:
        carrier = client.post("/v1/operators", json={"name": "c", "role": "carrier"}, headers=ADMIN)
        key = {"Authorization": f"Bearer {carrier.json()['api_key']}"}
        answer = client.put("/v1/registrations/+12125551234", headers=key)
        assert answer.status_code == 201, answer.text
        effective = datetime.fromisoformat(answer.json()["effective_at"])
        assert effective - datetime.now(UTC) > timedelta(days=365)
        changes = client.get("/v1/changes?since=0", headers=ADMIN)
        assert changes.status_code == 200 and changes.json()["changes"]
    finally:
        client.__exit__(None, None, None)
