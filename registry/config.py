"""One Settings object read from the DNC_* environment; nothing else reads os.environ."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import phonenumbers


class ConfigError(ValueError):
    """A DNC_* variable holds a value the registry cannot use."""


# deploy/dnc.env.example's placeholder: public, so never a key.
PLACEHOLDER_ADMIN_KEY = "change-me"


def _admin_key(key: str | None) -> str | None:
    if key is not None and key.startswith(PLACEHOLDER_ADMIN_KEY):
        raise ConfigError(
            "DNC_ADMIN_KEY is still the template's placeholder, which anyone can read; set a "
            "long random key (python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return key


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None
    data_dir: Path = Path("dnc-data")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    admin_key: str | None = None
    default_region: str = "US"
    grace_days: int = 31
    retention_days: int = 153
    notifier: str = "log"
    # Limits of the scrub endpoint (CONTRACT section 6).
    max_scrub_rows: int = 1_000_000
    max_body_bytes: int = 128 * 1024 * 1024
    max_json_body_bytes: int = 64 * 1024 * 1024
    # How long an operator's key stays cached in a worker; revocation takes effect within it.
    auth_cache_seconds: float = 2.0
    # Public status checks (GET /v1/registrations/{number}) one client address may make a minute.
    status_checks_per_minute: int = 30
    # Subscriber one-time codes: how long one lives, and how many codes an hour one
    # number may be sent and one client address may ask for (each costs an SMS).
    code_ttl_seconds: int = 600
    codes_per_number_per_hour: int = 5
    codes_per_number_per_day: int = 10
    codes_per_client_per_hour: int = 20
    complaints_per_hour: int = 20
    # Peers whose X-Forwarded-For names the client (reverse proxies): addresses or
    # networks, comma-separated; "*" for any, "none" for no one. uvicorn's own default.
    trusted_proxies: str = "127.0.0.1"
    # Replicas that must hold a write before it is acknowledged (registry/store/replication.py),
    # and how long to wait for them.
    wait_replicas: int = 0
    wait_replicas_ms: int = 1000
    # The registry's web address as subscribers reach it, named in the SMS help text as
    # where to complain; None: the text says "the registry's website".
    public_url: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _int(
    env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None
) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {value}")
    return value


MAX_GRACE_DAYS = 366
MAX_RETENTION_DAYS = 3653  # ten years
# Workers a CPU at most: each holds a Bloom filter of the registry and a Redis pool, and
# past this they only take memory (a thousand ran a machine out of it).
WORKERS_PER_CPU = 4


def _workers(env: Mapping[str, str]) -> int:
    cpus = len(os.sched_getaffinity(0))
    most = WORKERS_PER_CPU * cpus
    workers = _int(env, "DNC_WORKERS", 1, minimum=1)
    if workers > most:
        raise ConfigError(
            f"DNC_WORKERS must be at most {most} ({WORKERS_PER_CPU} for each of the {cpus} "
            f"CPUs this process may use), got {workers}"
        )
    return workers


def check_notifier(spec: str) -> str:
    """DNC_NOTIFIER if it names a notifier (registry/notifier.py), else a ConfigError."""
    kind, _, target = spec.partition(":")
    url = urlsplit(target)
    if (
        spec == "log"
        or (kind == "file" and target)
        or (kind == "webhook" and url.scheme in ("http", "https") and url.netloc)
    ):
        return spec
    raise ConfigError(
        f"DNC_NOTIFIER {spec!r} is not log, file:/path/outbox.jsonl or webhook:https://host/path"
    )


def _proxies(raw: str) -> str:
    """DNC_TRUSTED_PROXIES, checked: addresses or networks, "*" or "none"."""
    value = raw.strip()
    if value in ("*", "none"):
        return value
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(
                f"DNC_TRUSTED_PROXIES entry {entry!r} is not an address or network "
                "(e.g. 127.0.0.1,10.0.0.0/8), '*' or 'none'"
            ) from None
    if not entries:
        raise ConfigError("DNC_TRUSTED_PROXIES is empty: name addresses, '*' or 'none'")
    return ",".join(entries)


def _public_url(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        parts = urlsplit(raw.strip())
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        usable = False  # an unclosed [ or a port past 65535
    if not usable or len(raw) > 100:
        raise ConfigError(
            f"DNC_PUBLIC_URL {raw[:100]!r} is not an http(s) address such as "
            "https://donotcall.example.gov (at most 100 characters: it goes in a text message)"
        )
    return raw.strip().rstrip("/")


def _region(raw: str) -> str:
    region = raw.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"DNC_DEFAULT_REGION {raw!r} is not a region code such as US or CN")
    return region


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment (or from `env` in tests)."""
    env = os.environ if env is None else env
    redis_url = env.get("DNC_REDIS_URL") or None
    wait_replicas = _int(env, "DNC_WAIT_REPLICAS", 0, maximum=100)
    if wait_replicas and redis_url is None:
        raise ConfigError(
            "DNC_WAIT_REPLICAS needs DNC_REDIS_URL: the embedded Redis has no replicas, "
            "so no write could be acknowledged"
        )
    return Settings(
        redis_url=redis_url,
        data_dir=Path(env.get("DNC_DATA_DIR") or "dnc-data"),
        host=env.get("DNC_HOST") or "127.0.0.1",
        port=_int(env, "DNC_PORT", 8000, minimum=1, maximum=65535),
        workers=_workers(env),
        admin_key=_admin_key(env.get("DNC_ADMIN_KEY") or None),
        default_region=_region(env.get("DNC_DEFAULT_REGION") or "US"),
        # Bounded so that every date they make is a date: a century's retention put the
        # oldest change kept before 1970, which Redis refuses as a stream id (a 500 on
        # every registration), and a huge grace an effective_at in the year 273792727.
        grace_days=_int(env, "DNC_GRACE_DAYS", 31, maximum=MAX_GRACE_DAYS),
        retention_days=_int(env, "DNC_RETENTION_DAYS", 153, minimum=1, maximum=MAX_RETENTION_DAYS),
        notifier=check_notifier(env.get("DNC_NOTIFIER") or "log"),
        status_checks_per_minute=_int(env, "DNC_STATUS_RATE_LIMIT", 30, minimum=1),
        code_ttl_seconds=_int(env, "DNC_CODE_TTL", 600, minimum=1, maximum=86_400),
        codes_per_number_per_hour=_int(env, "DNC_CODE_NUMBER_LIMIT", 5, minimum=1),
        codes_per_number_per_day=_int(env, "DNC_CODE_NUMBER_DAILY_LIMIT", 10, minimum=1),
        codes_per_client_per_hour=_int(env, "DNC_CODE_CLIENT_LIMIT", 20, minimum=1),
        complaints_per_hour=_int(env, "DNC_COMPLAINT_RATE_LIMIT", 20, minimum=1),
        trusted_proxies=_proxies(env.get("DNC_TRUSTED_PROXIES") or "127.0.0.1"),
        wait_replicas=wait_replicas,
        wait_replicas_ms=_int(env, "DNC_WAIT_REPLICAS_MS", 1000, minimum=1, maximum=60_000),
        public_url=_public_url(env.get("DNC_PUBLIC_URL")),
    )
