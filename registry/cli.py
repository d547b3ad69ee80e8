"""The `dnc` command: thin wrappers over the registry and loader modules.

Exit status: 0 on success, 2 on bad arguments or input, 1 otherwise; a short
message on stderr and never a traceback for bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import os
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from redis.exceptions import RedisClusterException

from registry import embedded
from registry.cli_output import Failure, UsageError, output
from registry.config import ConfigError, Settings, load_settings
from registry.notifier import usable_notifier
from registry.store import setup
from registry.store.connect import RedisURLError, async_client, sync_client
from registry.store.operators import ROLES
from registry.store.replication import NotReplicated, Replication, replicated_sync

if TYPE_CHECKING:
    from pydantic import ValidationError

# The audit trail's actor for what the command line does: whoever runs `dnc` can reach
# Redis and holds no key to name them by.
ACTOR = "cli"


@contextlib.contextmanager
def redis_url(settings: Settings, durable: bool = True, *, reading: str = "") -> Iterator[str]:
    """DNC_REDIS_URL; else the embedded Redis of `dnc serve` if it runs; else one of our own.

    `reading` (what else the user can do) marks a command that only reads: our own Redis
    must then find a registry in DNC_DATA_DIR. Started where there is none, it would
    create one, empty, in which every number is callable; and the directory it leaves
    would pass for a registry the next time. So an append-only file is not enough: a
    registry has keys (bulk-loaded numbers, their change stream, an admin key).
    """
    if settings.redis_url:
        yield settings.redis_url
        return
    data = settings.data_dir
    running = embedded.running_url(data)
    if running:
        yield running
        return
    if reading and not any((data / name).exists() for name in ("appendonly.aof", "appendonlydir")):
        raise Failure(_no_registry(data, reading))
    usable_data_dir(data)
    with embedded.RedisProcess(data, durable=durable) as server:
        if reading and _empty(server.url):
            raise Failure(_no_registry(data, reading))
        yield server.url


def usable_data_dir(data: Path) -> None:
    """DNC_DATA_DIR made if missing; a path that cannot be a directory (a file, /proc) is a
    bad setting, said in one line, not a traceback from deep in the embedded Redis."""
    try:
        data.mkdir(mode=0o700, parents=True, exist_ok=True)  # personal data: this user's
    except OSError as exc:
        raise ConfigError(
            f"DNC_DATA_DIR={data} cannot hold the registry's data: {exc.strerror or exc}; "
            "set it to a directory this user may write"
        ) from None


def _no_registry(data: Path, alternative: str) -> str:
    return f"no registry in {data}: set DNC_DATA_DIR to the one `dnc serve` uses, {alternative}"


def _empty(url: str) -> bool:
    client = sync_client(url)
    try:
        return int(client.dbsize()) == 0
    finally:
        client.close()


def _stop_on_sigterm(signum: int, frame: object) -> None:
    # uvicorn re-raises the signal it shut down on; with the default action SIGTERM would end
    # us before `finally` stops the embedded Redis. As KeyboardInterrupt, the API just returns.
    raise KeyboardInterrupt


def _serve(settings: Settings, _: argparse.Namespace) -> int:
    usable_notifier(settings.notifier)  # before anything starts or says it serves
    for warning in warnings(settings):
        print(f"dnc: warning: {warning}", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    if settings.redis_url is None and embedded.running_url(settings.data_dir):
        raise Failure(f"another dnc serve already uses {settings.data_dir}")
    listener = _listen(settings.host, settings.port)
    server: embedded.RedisProcess | None = None
    stopping, redis_gone = threading.Event(), threading.Event()
    try:
        if settings.redis_url is None:
            usable_data_dir(settings.data_dir)
            server = embedded.RedisProcess(settings.data_dir)
            os.environ["DNC_REDIS_URL"] = server.start()
            settings = settings.with_(redis_url=os.environ["DNC_REDIS_URL"])
            print(f"embedded redis-server: {server.url} (data in {server.data_dir})", flush=True)
            watch = (server, stopping, redis_gone)
            threading.Thread(target=_watch, args=watch, name="dnc-redis-watch", daemon=True).start()
        assert settings.redis_url is not None
        client = sync_client(settings.redis_url)
        setup.tune(client)
        if settings.admin_key is None:
            key = asyncio.run(_create_admin_key(settings.redis_url, settings.retention_days))
            if key:
                print(f"admin key (shown once, keep it): {key}", flush=True)
                _warn_unless_replicated(settings, client)
        client.close()
        print(f"dnc-registry serving http://{settings.host}:{settings.port}", flush=True)
        try:
            _run_api(settings, listener)
        except KeyboardInterrupt:
            if not redis_gone.is_set():
                raise
    finally:
        stopping.set()
        listener.close()
        if server is not None:
            server.stop()
    if redis_gone.is_set():
        raise Failure(
            "the embedded redis-server is gone, so dnc serve stopped rather than answer 503 "
            f"for ever; run it again: the data in {settings.data_dir} is kept"
        )
    return 0


def _watch(server: embedded.RedisProcess, stopping: threading.Event, gone: threading.Event) -> None:
    """The embedded Redis killed or crashed while serving: start it again on its data, at
    the same address, so the workers (which answer 503 meanwhile, never "callable")
    reconnect and serve again. One that cannot be started, or dies again and again, stops
    the API (exit 1) for a person or a service manager to see to."""
    deaths: list[float] = []
    while True:
        assert server.process is not None
        status = server.process.wait()
        if stopping.is_set():
            return
        now = time.monotonic()
        deaths = [t for t in deaths if now - t < RESTART_WINDOW] + [now]
        print(
            f"dnc: the embedded redis-server exited (status {status})", file=sys.stderr, flush=True
        )
        if len(deaths) > RESTARTS:
            problem = f"it exited {len(deaths)} times in {RESTART_WINDOW:.0f} s"
        else:
            if server.tcp:
                server.fixed_port = server.port  # the address the workers know
            url = server.url
            try:
                restarted = server.start(timeout=RESTART_TIMEOUT)
                problem = "" if restarted == url else f"it came back at {restarted}, not {url}"
            except Exception as exc:  # noqa: BLE001 - any failure: stop, and say why
                problem = f"it could not be started again: {exc}"
            if not problem:
                print(
                    f"dnc: embedded redis-server started again on {server.data_dir}",
                    file=sys.stderr,
                    flush=True,
                )
                continue
        print(f"dnc: {problem}; stopping", file=sys.stderr, flush=True)
        gone.set()
        os.kill(os.getpid(), signal.SIGTERM)
        return


# The embedded Redis is started again after a crash, at most this often; the AOF of a large
# registry takes a few seconds to load.
RESTARTS, RESTART_WINDOW, RESTART_TIMEOUT = 3, 60.0, 120.0


# Five months, the least the rules keep consent evidence and ended records: the longest
# five calendar months run to 153 days.
FIVE_MONTHS_DAYS = 153


def warnings(settings: Settings) -> list[str]:
    """What `dnc serve` starts with but should not: settings allowed for development and
    tests that break a rule in production."""
    found = []
    if settings.notifier == "log" and not _loopback(settings.host):
        found.append(
            f"DNC_NOTIFIER=log on DNC_HOST={settings.host}: every code and its number goes "
            "to the log and no subscriber gets one; set DNC_NOTIFIER to webhook:https://... "
            "or file:/path/outbox.jsonl"
        )
    if settings.retention_days < FIVE_MONTHS_DAYS:
        found.append(
            f"DNC_RETENTION_DAYS={settings.retention_days} is under five months "
            f"({FIVE_MONTHS_DAYS} days): consent evidence and ended registrations, which the "
            "rules keep at least that long, are dropped sooner"
        )
    return found


def _loopback(host: str) -> bool:
    """Whether `host` (DNC_HOST) listens on this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _warn_unless_replicated(settings: Settings, client: Any) -> None:
    """The key just shown is stored on the master: say so if the replicas do not hold it
    yet (it is shown only once, and a failover now would lose it)."""
    if not settings.wait_replicas:
        return
    try:
        replicated_sync(client, settings.wait_replicas, settings.wait_replicas_ms)
    except redis.RedisError as exc:
        print(
            f"dnc: warning: the admin key is on the master, but {exc}; if the master fails "
            "before the replicas catch up, the key is lost: then set DNC_ADMIN_KEY",
            file=sys.stderr,
            flush=True,
        )


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

    from registry.api.protocol import Protocol

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
        # httptools, as uvicorn's default here, answering what it cannot parse as the API
        # answers every error (registry/api/protocol.py).
        "http": Protocol,
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
    from pydantic import ValidationError

    from registry.api.admin import NewOperator
    from registry.store.audit import AuditLog
    from registry.store.operators import CallerTaken, OperatorStore

    if not args.name.strip():
        raise UsageError("the operator needs a name")
    try:  # the rules of POST /v1/operators, from the model that states them
        new = NewOperator(
            name=args.name,
            role=args.role,
            prefixes=args.prefix,
            rate_limit=args.rate_limit,
            callers=args.caller,
        )
    except ValidationError as exc:
        raise UsageError(_broken_rule(exc)) from None

    async def create(url: str) -> tuple[Any, str]:
        client = async_client(url)
        try:
            store = OperatorStore(client, settings.retention_days)
            try:
                operator, api_key = await store.create(
                    new.name, new.role, new.prefixes, new.rate_limit, new.callers
                )
            except CallerTaken as exc:
                raise UsageError(
                    f"--caller {exc.caller}: declared by another active operator"
                ) from None
            await AuditLog(client, settings.retention_days).record(
                "operator.created", ACTOR, operator=operator.id, role=operator.role, name=new.name
            )
            if settings.wait_replicas:
                replication = Replication(client, settings.wait_replicas, settings.wait_replicas_ms)
                try:
                    await replication.wait()
                except NotReplicated as exc:
                    raise Failure(
                        f"operator {operator.id} is on the master, but {exc}; its key is not "
                        f"shown: revoke it (DELETE /v1/operators/{operator.id}), and create "
                        "the operator again once the replicas are back"
                    ) from None
                finally:
                    await replication.aclose()
            return operator, api_key
        finally:
            await client.aclose()

    with redis_url(settings) as url:
        operator, api_key = asyncio.run(create(url))
    # The key alone on stdout, as the contract says it is printed: KEY=$(dnc operators ...).
    print(api_key)
    print(
        f"operator {operator.id} created; its key above is shown once "
        "(the registry keeps only its hash)",
        file=sys.stderr,
    )
    return 0


# The options of `dnc operators create` that set each field of the API's NewOperator.
_OPERATOR_OPTIONS = {
    "name": "NAME",
    "prefixes": "--prefix",
    "rate_limit": "--rate-limit",
    "callers": "--caller",
}


def _broken_rule(exc: ValidationError) -> str:
    """A pydantic ValidationError of NewOperator as one line, in the command's own words."""
    error = exc.errors()[0]
    if error["type"] == "value_error":  # a validator's own message, which names the value
        return str(error["ctx"]["error"])
    field = str(error["loc"][0]) if error["loc"] else ""
    return f"{_OPERATOR_OPTIONS.get(field, field)}: {error['msg']}"


def _load(settings: Settings, args: argparse.Namespace) -> int:
    from loader.load import LoadError, load_files
    from registry.store.audit import record_sync

    paths = [_input_file(name) for name in args.files]
    region = _region(args.region, settings)
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
            # One entry a load, not a number: the numbers are in the change list.
            record_sync(
                client,
                settings.retention_days,
                "registrations.removed" if args.remove else "registrations.loaded",
                ACTOR,
                files=",".join(path.name for path in paths)[:512],
                changed=result.loaded,
                unchanged=result.present,
                invalid=result.invalid,
            )
            if settings.wait_replicas:
                replicated_sync(client, settings.wait_replicas, settings.wait_replicas_ms)
        except LoadError as exc:
            raise UsageError(str(exc)) from None
        except KeyboardInterrupt:
            print(
                "dnc: interrupted: the numbers loaded so far stay loaded, and no rejects file "
                "is left; run the same command again to finish (numbers already present are "
                "counted, not loaded twice)",
                file=sys.stderr,
            )
            raise
        except NotReplicated as exc:
            raise Failure(
                f"the load is on the master, but {exc}; load the same files again once the "
                "replicas are back (numbers already present are counted, not loaded twice)"
            ) from None
        finally:
            client.close()
    print(f"loaded {result.loaded}, already present {result.present}, invalid {result.invalid}")
    for rejects in result.rejects:
        print(f"invalid lines written to {rejects}", file=sys.stderr)
    if result.invalid and not (result.loaded or result.present):
        print(
            "dnc: warning: no line was a valid number; check --format, --column and --region",
            file=sys.stderr,
        )
    return 0


def _input_file(name: str) -> Path:
    """A list to read: a regular file, which `dnc load` and `dnc scrub` read more than once
    (the format from its first lines, then the whole), as a pipe cannot be read."""
    path = Path(name)
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{path}: is a directory; name the files in it")
    if not stat.S_ISREG(mode):
        raise UsageError(
            f"{path}: not a regular file (a pipe or a device); save the list to a file first"
        )
    return path


def _region(region: str | None, settings: Settings) -> str:
    """--region, or DNC_DEFAULT_REGION when it is not given; given empty, it is a mistake."""
    from registry import numbers as nums

    if region is not None and not region.strip():
        raise UsageError("--region is empty: give a region code such as US or CN, or leave it out")
    try:
        return nums.check_region(region, settings.default_region)
    except nums.RegionError as exc:
        raise UsageError(str(exc)) from None


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from loader.export import ExportError, export_changes, export_full
    from registry.api.admin import PREFIX

    if args.prefix is not None and not PREFIX.fullmatch(args.prefix):
        # the rule of POST /v1/operators and `dnc operators create --prefix`
        raise UsageError(f"prefix {args.prefix!r} must be '+' and 1 to 15 digits, like +1212")
    if args.since is not None and not args.since.strip():
        raise UsageError("--since is empty: give 0 for every change kept, or the last cursor")
    prefixes = [args.prefix] if args.prefix is not None else []
    cursor = None
    with (
        output(args.output) as out,
        redis_url(settings, reading="or DNC_REDIS_URL") as url,
    ):
        client = sync_client(url)
        try:
            if args.since is None:
                cursor = export_full(client, out, prefixes)
            else:
                cursor = export_changes(client, out, args.since, prefixes, settings.retention_days)
        except ExportError as exc:
            raise UsageError(str(exc)) from None
        finally:
            client.close()
    if cursor is not None:  # after a full list: where to follow the changes from
        print(f"next cursor: {cursor}", file=sys.stderr)
    return 0


def _scrub(settings: Settings, args: argparse.Namespace) -> int:
    from registry import rules
    from registry import scrub_client as client
    from registry.scrub import ScrubQuery

    path = _input_file(args.file)
    if args.url and not args.key:
        raise UsageError("--url needs --key, an operator's API key")
    if args.key and not args.url:
        raise UsageError("--key goes with --url; a local scrub (no --url) needs no key")
    if args.key:
        _check_key(args.key)
    try:
        category = rules.parse_category(args.category)
    except rules.PreferenceError as exc:
        raise UsageError(str(exc)) from None
    region = _region(args.region, settings)
    try:
        fmt = client.detect_format(path, args.format)
        if args.column and fmt == client.PLAIN:  # as dnc load refuses it
            raise client.BadInput(
                f"{path}: --column applies to CSV files only, and this file reads as one "
                "number a line (--format csv if it is a CSV)"
            )
        with output(args.output) as out:
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
    if fmt == client.CSV and args.column is None:
        _say_first_column(path)
    print(summary.line(), file=sys.stderr)
    return 0


def _say_first_column(path: Path) -> None:
    """A CSV of several columns scrubbed without --column is read in its first (the
    contract's default): say which, since an account number there scrubs as a phone."""
    from loader import formats

    try:
        with path.open("rb") as file:
            header = formats.header_row(path, file)
    except (OSError, formats.LoadError):
        return  # the scrub itself says what is wrong with the file
    if len(header) > 1:
        print(
            f"dnc: note: the phone numbers are read from the first column, {header[0].strip()!r} "
            f"(of {len(header)}); --column names another",
            file=sys.stderr,
        )


def _check_key(key: str) -> None:
    """An API key is visible ASCII (`dnc_` and URL-safe base64); anything else, a curly
    quote or a space pasted with it, cannot go in an HTTP header, nor be any key."""
    for position, char in enumerate(key, start=1):
        if not "!" <= char <= "~":
            raise UsageError(
                f"--key has {char!r} at character {position}, which no API key has: "
                "copy the key as it was printed, without quotes or spaces"
            )


def _scrub_locally(settings: Settings, listing: Any, out: Any, query: Any) -> Any:
    """Against DNC_REDIS_URL or the embedded Redis' data; never an empty registry of our own."""
    from registry import scrub_client as client

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

    with redis_url(
        settings, reading="or DNC_REDIS_URL, or scrub through the API with --url and --key"
    ) as url:
        return asyncio.run(scrub(url))


class _Parser(argparse.ArgumentParser):
    """A usage error is the usage line and one line (CONTRACT section 5): the usage is not
    wrapped to the terminal there, as it still is in `--help`."""

    def format_usage(self) -> str:
        formatter = argparse.HelpFormatter(self.prog, width=1 << 16)
        formatter.add_usage(self.usage, self._actions, self._mutually_exclusive_groups)
        return formatter.format_help()


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="dnc", description="The do-not-call registry.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the API (and the embedded Redis)")
    serve.set_defaults(run=_serve, usage_of=serve)

    load = commands.add_parser("load", help="bulk-import registrations into Redis")
    load.add_argument("files", nargs="+", metavar="FILE")
    load.add_argument("--format", choices=["auto", "e164", "ftc", "csv"], default="auto")
    load.add_argument("--column", help="the phone column of a csv file (default: the first)")
    load.add_argument("--region", help="region for national-format numbers")
    load.add_argument("--remove", action="store_true", help="remove the numbers instead")
    load.set_defaults(run=_load, usage_of=load)

    export = commands.add_parser("export", help="the full list, or the changes since a cursor")
    export.add_argument("--prefix", help="only numbers under this prefix, e.g. +1212")
    export.add_argument("--since", metavar="CURSOR", help="the change list after CURSOR (0: all)")
    export.add_argument("-o", "--output", metavar="FILE")
    export.set_defaults(run=_export, usage_of=export)

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
    scrub.set_defaults(run=_scrub, usage_of=scrub)

    operators = commands.add_parser("operators", help="operator accounts")
    op_commands = operators.add_subparsers(dest="op_command", required=True, metavar="COMMAND")
    create = op_commands.add_parser("create", help="create an account and print its key once")
    create.add_argument("name")
    create.add_argument("--role", choices=ROLES, default="operator")
    # Both `--prefix +1212 +1312` (the contract's `--prefix +1212 ...`) and the flag repeated.
    create.add_argument(
        "--prefix",
        action="extend",
        nargs="+",
        default=[],
        metavar="PREFIX",
        help="numbers this account may see, e.g. +1212; several after one flag, or repeat it",
    )
    create.add_argument("--rate-limit", type=int, default=None, help="requests a second")
    create.add_argument(
        "--caller",
        action="append",
        default=[],
        help="a number (E.164), short code, sender id or 【signature】 it calls or texts "
        "from; repeat for several",
    )
    create.set_defaults(run=_operators_create, usage_of=create)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    args, unknown = top.parse_known_args(argv)
    if unknown:  # with its command's usage line, not the top level's
        getattr(args, "usage_of", top).error(f"unrecognized arguments: {' '.join(unknown)}")
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
