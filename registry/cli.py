"""The `dnc` command: thin wrappers over the registry and loader modules.

Exit status: 0 on success, 2 on bad arguments or input, 1 otherwise; a short
message on stderr and never a traceback for bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import stat
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from redis.exceptions import RedisClusterException

from registry import embedded
from registry.cli_output import Failure, UsageError, output
from registry.config import ConfigError, Settings, load_settings
from registry.store import keys, setup
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
        if reading and not _has_registry(settings.redis_url):
            # A wrong host or database number, which an empty registry would pass for.
            raise Failure(
                "no registry at DNC_REDIS_URL: that Redis holds no registry's marker "
                f"({keys.EPOCH}, which `dnc serve` and `dnc load` make); check its host "
                "and database number"
            )
        yield settings.redis_url
        return
    data = settings.data_dir
    if not data.is_dir():
        if reading:
            raise Failure(_no_registry(data, reading))
        embedded.usable_data_dir(data)
    lock = embedded.DataDirLock(data)
    deadline = time.monotonic() + OWNER_WAIT_SECONDS
    while not lock.acquire():
        # Held: `dnc serve` runs its Redis (which it shares: use it), or another command
        # runs one of its own (which it stops when done: wait for the lock). Never a
        # Redis of our own on the same data: the owner's would lose its socket, and what
        # we wrote would be in neither's future.
        if (shared := embedded.running_url(data)) is not None:
            yield shared
            return
        if time.monotonic() > deadline:
            raise Failure(
                f"a dnc serve or another dnc command holds {data}, and no Redis of it "
                f"answered within {OWNER_WAIT_SECONDS:.0f} s; try again once it does or "
                "has finished (the Redis' log: redis.log there), or set DNC_REDIS_URL"
            )
        time.sleep(0.5)
    try:
        if reading and not any(
            (data / name).exists() for name in ("appendonly.aof", "appendonlydir")
        ):
            raise Failure(_no_registry(data, reading))
        # Ours alone: not advertised, and holding the lock as long as it lives.
        with embedded.RedisProcess(data, durable=durable, lock=lock, advertise=False) as server:
            if reading and _empty(server.url):
                raise Failure(_no_registry(data, reading))
            yield server.url
    finally:
        lock.release()


# How long a command waits for the data directory's owner: `dnc serve` starting its Redis
# (its start-up allows 20 s), or another command to finish with its own.
OWNER_WAIT_SECONDS = 30.0


def _no_registry(data: Path, alternative: str) -> str:
    return f"no registry in {data}: set DNC_DATA_DIR to the one `dnc serve` uses, {alternative}"


def _empty(url: str) -> bool:
    client = sync_client(url)
    try:
        return int(client.dbsize()) == 0
    finally:
        client.close()


def _has_registry(url: str) -> bool:
    client = sync_client(url)
    try:
        return bool(client.exists(keys.EPOCH))
    finally:
        client.close()


def _serve(settings: Settings, _: argparse.Namespace) -> int:
    from registry import serve  # uvicorn's side, which no other command needs

    return serve.run(settings)


def _operators_create(settings: Settings, args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from registry.accounts import PREFIX, NewOperator, created_terms
    from registry.store.audit import AuditLog
    from registry.store.operators import CallerTaken, OperatorStore

    name: str | None = args.name
    if name is None and args.prefix and not PREFIX.fullmatch(args.prefix[-1]):
        # `--prefix +1212 +1646 Acme`: the flag takes every word after it, the name too
        name = args.prefix.pop()
    if name is None:
        args.usage_of.error("the following arguments are required: NAME")
        return 2  # error() exits
    if not name.strip():
        raise UsageError("the operator needs a name")
    try:  # the rules of POST /v1/operators, from the model that states them
        new = NewOperator(
            name=name,
            role=args.role,
            prefixes=args.prefix or None,  # none given: every number
            rate_limit=_whole_number(args.rate_limit, "--rate-limit"),
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
                    new.name, new.role, new.prefixes or [], new.rate_limit, new.callers
                )
            except CallerTaken as exc:
                raise UsageError(
                    f"--caller {exc.caller}: declared by another active operator"
                ) from None
            await AuditLog(client, settings.retention_days).record(
                "operator.created",
                ACTOR,
                operator=operator.id,
                role=operator.role,
                name=new.name,
                **created_terms(new),
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
        setup.ensure_registry(client)  # a first load, before any dnc serve
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
    for rejects in result.rejects:
        print(f"invalid lines written to {rejects}", file=sys.stderr)
    if result.invalid and not (result.loaded or result.present):
        print(
            "dnc: warning: no line was a valid number; check --format, --column and --region",
            file=sys.stderr,
        )
    if not (result.invalid or result.loaded or result.present):
        print(
            "dnc: warning: no number was read; with --format auto a first line that is not "
            "a number is a CSV header: give --format e164 for a list of one number a line",
            file=sys.stderr,
        )
    sys.stderr.flush()
    # Last, on stdout and in a terminal alike: the contract says the load ends with it.
    print(f"loaded {result.loaded}, already present {result.present}, invalid {result.invalid}")
    return 0


def _whole_number(text: str | None, option: str) -> int | None:
    """An option's integer in digits 0-9, as the API takes it (int() would read other
    scripts' digits too)."""
    if text is None:
        return None
    if not re.fullmatch(r"-?[0-9]+", text.strip()):
        raise UsageError(f"{option} {text!r} is not a whole number in digits 0-9")
    return int(text)


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
    from registry.accounts import PREFIX

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
                cursor = export_full(client, out, prefixes, args.detail)
            else:
                cursor = export_changes(
                    client, out, args.since, prefixes, settings.retention_days, args.detail
                )
        except ExportError as exc:
            raise UsageError(str(exc)) from None
        finally:
            client.close()
    if cursor is not None:  # where to follow the changes from, alone on its line:
        print(cursor, file=sys.stderr)  # `--since "$(dnc export 2>&1 >list.txt)"`
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
                listing = client.read_list(path, fmt, args.column, region)
                query = ScrubQuery(rules.parse_channel(args.channel), category, region)
                summary = _scrub_locally(settings, listing, out, query)
    except client.BadInput as exc:
        raise UsageError(str(exc)) from None
    except client.ScrubFailed as exc:
        raise Failure(str(exc)) from None
    if fmt == client.CSV and args.column is None:
        _say_first_column(path)
    print(summary.line(), file=sys.stderr)
    if summary.counts["total"] and summary.counts["invalid"] == summary.counts["total"]:
        _say_why_nothing_was_valid(path)
    return 0


def _say_why_nothing_was_valid(path: Path) -> None:
    """Every row invalid is a list read wrong more often than a list of junk: say how."""
    from loader import formats

    hint = "check --format, --column and --region"
    try:
        with path.open("rb") as file:
            if formats.detect(formats.first_line(file) or "") == "ftc":
                hint = (
                    "it reads as an FTC flat file (212,5551234), which dnc load takes but a "
                    "scrub does not: give one number a line, such as (212) 555-1234"
                )
    except OSError:
        pass
    print(f"dnc: warning: no row was a valid number; {hint}", file=sys.stderr)


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

    serve = commands.add_parser(
        "serve",
        help="serve the API (and the embedded Redis)",
        description=(
            "Serve the HTTP API until Ctrl-C or SIGTERM, on the Redis of DNC_REDIS_URL or, "
            "without it, on an embedded redis-server with its data in DNC_DATA_DIR."
        ),
        epilog=(
            "It takes no options: DNC_* environment variables configure it (README, "
            "Configuration): DNC_HOST, DNC_PORT, DNC_WORKERS, DNC_DATA_DIR, DNC_REDIS_URL, "
            "DNC_ADMIN_KEY, DNC_DEFAULT_REGION, DNC_NOTIFIER, DNC_PUBLIC_URL, "
            "DNC_TRUSTED_PROXIES, DNC_GRACE_DAYS, DNC_RETENTION_DAYS, DNC_WAIT_REPLICAS, "
            "DNC_WAIT_REPLICAS_MS and the rate limits DNC_STATUS_RATE_LIMIT, DNC_CODE_TTL, "
            "DNC_CODE_NUMBER_LIMIT, DNC_CODE_NUMBER_DAILY_LIMIT, DNC_CODE_CLIENT_LIMIT, "
            "DNC_COMPLAINT_RATE_LIMIT."
        ),
    )
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
    export.add_argument(
        "--detail",
        action="store_true",
        help="each number's channels and categories too: a CSV full list, or two more cells "
        "on each change",
    )
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
    create = op_commands.add_parser(
        "create",
        help="create an account and print its key once",
        # NAME may also come after --prefix's list (see _operators_create): optional to
        # argparse, required to the command
        usage="%(prog)s [-h] NAME [--role {operator,carrier,admin}] [--prefix PREFIX ...] "
        "[--rate-limit RATE_LIMIT] [--caller CALLER]",
    )
    create.add_argument("name", nargs="?", metavar="NAME")
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
    create.add_argument("--rate-limit", default=None, help="requests a second")
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
