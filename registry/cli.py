"""The `dnc` command: thin wrappers over the registry and loader modules.

Exit status: 0 on success, 2 on bad arguments or input, 1 otherwise; a short
message on stderr and never a traceback for bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import redis
from redis.exceptions import RedisClusterException

from registry import embedded
from registry.config import ConfigError, Settings, load_settings
from registry.store import setup
from registry.store.connect import RedisURLError, async_client, sync_client

# The audit trail's actor for what the command line does: whoever runs `dnc` can reach
# Redis and holds no key to name them by.
ACTOR = "cli"


class UsageError(Exception):
    """Bad arguments or input: exit status 2."""


class Failure(Exception):
    """Anything else that stops a command: exit status 1."""


@contextlib.contextmanager
def redis_url(settings: Settings, durable: bool = True) -> Iterator[str]:
    """DNC_REDIS_URL; else the embedded Redis of `dnc serve` if it runs; else one of our own."""
    if settings.redis_url:
        yield settings.redis_url
        return
    running = embedded.running_url(settings.data_dir)
    if running:
        yield running
        return
    with embedded.RedisProcess(settings.data_dir, durable=durable) as server:
        yield server.url


def _stop_on_sigterm(signum: int, frame: object) -> None:
    # uvicorn re-raises the signal it shut down on; with the default action SIGTERM would end
    # us before `finally` stops the embedded Redis. As KeyboardInterrupt, the API just returns.
    raise KeyboardInterrupt


def _serve(settings: Settings, _: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    if settings.redis_url is None and embedded.running_url(settings.data_dir):
        raise Failure(f"another dnc serve already uses {settings.data_dir}")
    listener = _listen(settings.host, settings.port)
    server: embedded.RedisProcess | None = None
    try:
        if settings.redis_url is None:
            server = embedded.RedisProcess(settings.data_dir)
            os.environ["DNC_REDIS_URL"] = server.start()
            settings = settings.with_(redis_url=os.environ["DNC_REDIS_URL"])
            print(f"embedded redis-server: {server.url} (data in {server.data_dir})", flush=True)
        assert settings.redis_url is not None
        client = sync_client(settings.redis_url)
        setup.tune(client)
        client.close()
        if settings.admin_key is None:
            key = asyncio.run(_create_admin_key(settings.redis_url, settings.retention_days))
            if key:
                print(f"admin key (shown once, keep it): {key}", flush=True)
        print(f"dnc-registry serving http://{settings.host}:{settings.port}", flush=True)
        _run_api(settings, listener)
    finally:
        listener.close()
        if server is not None:
            server.stop()
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """The API's socket, bound before anything starts: a port in use stops `dnc serve` at
    once, with nothing to undo. uvicorn handed it has no bind of its own to fail: after
    a failed bind it waits on the application's shutdown, which can hang for good."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise Failure(
                f"port {port} on {host} is in use: stop what holds it or set DNC_PORT"
            ) from None
        raise Failure(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
    return sock


def _run_api(settings: Settings, listener: socket.socket) -> None:
    """uvicorn until SIGINT/SIGTERM; a start-up it gives up on is a Failure, not its exit 3.

    One worker serves on `listener`. uvicorn's supervisor of several workers takes no
    socket, so it binds the port itself the moment ours is let go; should another
    process take the port in between, that bind fails in the supervisor, before any
    worker or application starts, and ends uvicorn at once.
    """
    import uvicorn

    app = "registry.api.app:create_app_from_env"
    options: dict[str, Any] = {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        "log_level": "info",
        "access_log": False,
        # X-Forwarded-For names the client only when a trusted proxy sent it: the
        # per-client limits (status checks, codes, complaints) count by that address.
        "proxy_headers": settings.trusted_proxies != "none",
        "forwarded_allow_ips": settings.trusted_proxies,
    }
    try:
        if settings.workers > 1:
            listener.close()
            uvicorn.run(app, **options)  # returns on KeyboardInterrupt
            return
        api = uvicorn.Server(uvicorn.Config(app, **options))
        api.run(sockets=[listener])
        started = api.started
    except KeyboardInterrupt:
        return
    except SystemExit as exc:
        started = exc.code in (0, None)
    if not started:
        raise Failure(
            f"the API did not start on {settings.host} port {settings.port} (see its log above)"
        )


async def _create_admin_key(url: str, retention_days: int) -> str | None:
    from registry.store.operators import OperatorStore

    client = async_client(url)
    try:
        return await OperatorStore(client, retention_days).create_admin_key()
    finally:
        await client.aclose()


def _operators_create(settings: Settings, args: argparse.Namespace) -> int:
    from registry.api.admin import PREFIX
    from registry.store.audit import AuditLog
    from registry.store.operators import OperatorStore

    for prefix in args.prefix:
        if not PREFIX.match(prefix):
            raise UsageError(f"prefix {prefix!r} must be '+' and 1 to 15 digits, like +1212")
    if not args.name.strip():
        raise UsageError("the operator needs a name")

    async def create(url: str) -> tuple[Any, str]:
        client = async_client(url)
        try:
            store = OperatorStore(client, settings.retention_days)
            operator, api_key = await store.create(
                args.name, args.role, args.prefix, args.rate_limit
            )
            await AuditLog(client, settings.retention_days).record(
                "operator.created", ACTOR, operator=operator.id, role=operator.role, name=args.name
            )
            return operator, api_key
        finally:
            await client.aclose()

    with redis_url(settings) as url:
        operator, api_key = asyncio.run(create(url))
    print(f"operator_id: {operator.id}")
    print(f"api_key: {api_key}")
    print("(the key is shown once; the registry keeps only its hash)", file=sys.stderr)
    return 0


def _load(settings: Settings, args: argparse.Namespace) -> int:
    from loader.load import LoadError, load_files
    from registry import numbers as nums

    paths = [Path(p) for p in args.files]
    for path in paths:
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
    try:
        region = nums.check_region(args.region, settings.default_region)
    except nums.RegionError as exc:
        raise UsageError(str(exc)) from None
    with redis_url(settings) as url:
        client = sync_client(url)
        setup.tune(client)
        try:
            result = load_files(
                client,
                paths,
                fmt=args.format,
                column=args.column,
                region=region,
                remove=args.remove,
                retention_days=settings.retention_days,
                progress=sys.stderr.isatty(),
            )
        except LoadError as exc:
            raise UsageError(str(exc)) from None
        finally:
            client.close()
    print(f"loaded {result.loaded}, already present {result.present}, invalid {result.invalid}")
    for rejects in result.rejects:
        print(f"invalid lines written to {rejects}", file=sys.stderr)
    return 0


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from loader.export import ExportError, export_changes, export_full

    try:
        to_file = args.output and args.output != "-"
        out = open(args.output, "w", encoding="utf-8") if to_file else sys.stdout  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
    try:
        with redis_url(settings) as url:
            client = sync_client(url)
            try:
                prefixes = [args.prefix] if args.prefix else []
                if args.since is None:
                    export_full(client, out, prefixes)
                else:
                    cursor = export_changes(
                        client, out, args.since, prefixes, settings.retention_days
                    )
                    print(f"next cursor: {cursor}", file=sys.stderr)
            except ExportError as exc:
                raise UsageError(str(exc)) from None
            finally:
                client.close()
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _scrub(settings: Settings, args: argparse.Namespace) -> int:
    from registry import numbers as nums
    from registry import rules
    from registry import scrub_client as client
    from registry.scrub import ScrubQuery

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    if args.url and not args.key:
        raise UsageError("--url needs --key, an operator's API key")
    if args.key and not args.url:
        raise UsageError("--key goes with --url; a local scrub (no --url) needs no key")
    try:
        category = rules.parse_category(args.category)
        region = nums.check_region(args.region, settings.default_region)
    except (rules.PreferenceError, nums.RegionError) as exc:
        raise UsageError(str(exc)) from None
    try:
        fmt = client.detect_format(path, args.format)
        with _output(args.output) as out:
            if args.url:
                summary = client.scrub_remote(
                    path,
                    out,
                    url=args.url,
                    key=args.key,
                    fmt=fmt,
                    channel=args.channel,
                    category=category,
                    region=region if args.region else None,
                    column=args.column,
                )
            else:
                listing = client.read_list(path, fmt, args.column)
                query = ScrubQuery(rules.parse_channel(args.channel), category, region)
                summary = _scrub_locally(settings, listing, out, query)
    except client.BadInput as exc:
        raise UsageError(str(exc)) from None
    except client.ScrubFailed as exc:
        raise Failure(str(exc)) from None
    except BrokenPipeError:
        raise Failure("the output was closed before the scrub was written") from None
    print(summary.line(), file=sys.stderr)
    return 0


def _scrub_locally(settings: Settings, listing: Any, out: Any, query: Any) -> Any:
    """Against DNC_REDIS_URL or the embedded Redis' data; never an empty registry of our own."""
    from registry import scrub_client as client

    data = settings.data_dir
    if (
        settings.redis_url is None
        and embedded.running_url(data) is None
        and not any((data / name).exists() for name in ("appendonly.aof", "appendonlydir"))
    ):
        raise Failure(
            f"no registry data in {data}: set DNC_REDIS_URL or DNC_DATA_DIR, "
            "or scrub through the API with --url and --key"
        )

    async def scrub(url: str) -> Any:
        redis_client = async_client(url)
        try:
            return await client.scrub_local(
                listing,
                out,
                redis=redis_client,
                retention_days=settings.retention_days,
                query=query,
            )
        finally:
            await redis_client.aclose()

    with redis_url(settings) as url:
        return asyncio.run(scrub(url))


@contextlib.contextmanager
def _output(name: str | None) -> Iterator[Any]:
    """stdout, or FILE written whole: it appears under its name only when the scrub is done.

    `-` is stdout. Something there already that is no regular file (/dev/stdout, a pipe)
    is written in place: renaming over it would replace the link or the device node."""
    if not name or name == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    final = Path(name)
    if final.is_dir():  # found now, not when the finished scrub cannot take its name
        raise UsageError(f"{name}: cannot write: Is a directory")
    if final.exists() and not final.is_file():
        try:
            out = final.open("wb")
        except OSError as exc:
            raise UsageError(f"{name}: cannot write: {exc.strerror or exc}") from None
        with out:
            yield out
        return
    partial = final.with_name(final.name + ".part")
    try:
        out = partial.open("wb")
    except OSError as exc:
        raise UsageError(f"{name}: cannot write: {exc.strerror or exc}") from None
    try:
        with out:
            yield out
        try:
            partial.replace(final)
        except OSError as exc:
            raise UsageError(f"{name}: cannot write: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="dnc", description="The do-not-call registry.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the API (and the embedded Redis)")
    serve.set_defaults(run=_serve)

    load = commands.add_parser("load", help="bulk-import registrations into Redis")
    load.add_argument("files", nargs="+", metavar="FILE")
    load.add_argument("--format", choices=["auto", "e164", "ftc", "csv"], default="auto")
    load.add_argument("--column", help="the phone column of a csv file (default: the first)")
    load.add_argument("--region", help="region for national-format numbers")
    load.add_argument("--remove", action="store_true", help="remove the numbers instead")
    load.set_defaults(run=_load)

    export = commands.add_parser("export", help="the full list, or the changes since a cursor")
    export.add_argument("--prefix", help="only numbers under this prefix, e.g. +1212")
    export.add_argument("--since", metavar="CURSOR", help="the change list after CURSOR (0: all)")
    export.add_argument("-o", "--output", metavar="FILE")
    export.set_defaults(run=_export)

    scrub = commands.add_parser("scrub", help="scrub a list: each row with its status")
    scrub.add_argument("file", metavar="FILE", help="a number a line, or a CSV with a header")
    scrub.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    scrub.add_argument("--channel", choices=["voice", "sms"], help="default: both")
    scrub.add_argument("--category", metavar="N", help="the call's category, 1 to 8")
    scrub.add_argument("--region", help="region for national-format numbers")
    scrub.add_argument("--column", help="the phone column of a CSV file (default: the first)")
    scrub.add_argument("--format", choices=["auto", "plain", "csv"], default="auto")
    scrub.add_argument("--url", help="scrub through this API (else straight against Redis)")
    scrub.add_argument("--key", help="an operator's API key, with --url")
    scrub.set_defaults(run=_scrub)

    operators = commands.add_parser("operators", help="operator accounts")
    op_commands = operators.add_subparsers(dest="op_command", required=True, metavar="COMMAND")
    create = op_commands.add_parser("create", help="create an account and print its key once")
    create.add_argument("name")
    create.add_argument("--role", choices=["operator", "carrier", "admin"], default="operator")
    create.add_argument("--prefix", action="append", default=[], help="repeat for several")
    create.add_argument("--rate-limit", type=int, default=None, help="requests a second")
    create.set_defaults(run=_operators_create)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
        return int(args.run(settings, args))
    except (UsageError, ConfigError, RedisURLError) as exc:
        print(f"dnc: {exc}", file=sys.stderr)
        return 2
    except (Failure, embedded.EmbeddedRedisError) as exc:
        print(f"dnc: {exc}", file=sys.stderr)
        return 1
    except (redis.RedisError, RedisClusterException) as exc:
        print(f"dnc: Redis: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
