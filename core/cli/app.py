"""The `offramp` command: a thin layer over the service layer.

Start-up is lazy: this module imports none of the commands. ``offramp --version`` and ``offramp --help`` load
neither SQLAlchemy, DuckDB, httpx nor a plugin (``tests/cli/test_cli_startup.py`` holds that); a command's module
is imported, and its Typer app converted to a click command, when that command is invoked or its help is asked.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer
from typer._click.utils import make_default_short_help
from typer.core import TyperGroup

from offramp.core._version import __version__
from offramp.core.cli.common import CORE_COMMANDS, close_stores
from offramp.core.cli.output import error_line
from offramp.core.errors import OfframpError
from offramp.core.log_redaction import RedactingFilter

if TYPE_CHECKING:
    from typer._click import Command, Context, HelpFormatter

    from offramp.core.commands import LoadedCommand


class _Core(NamedTuple):
    """A core command: where its Typer app (or function) is, and the line ``offramp --help`` shows for it."""

    module: str
    attribute: str
    help: str  # the first paragraph of the command's own help (tests/cli/test_cli_startup.py checks they match)


# Every core command, in the order of `offramp --help`; the one place the CLI's commands are named.
CORE: dict[str, _Core] = {
    "init": _Core(
        "cmd_init", "init",
        "Create the state store (or upgrade it to this version's schema), the production workspace and the key.",
    ),
    "run": _Core("cmd_run", "run", "Run an orchestration: query, shape, send, and record what became of every row."),
    "export": _Core(
        "cmd_config", "export", "Write every object of a workspace as YAML; secrets appear only as env: references."
    ),
    "apply": _Core(
        "cmd_config", "apply",
        "Make the store match a YAML file: print the plan (added / changed / removed), then apply it.",
    ),
    "audit": _Core("cmd_audit", "audit", "List audit events, newest first: who changed what, and when."),
    "workspaces": _Core("cmd_workspaces", "app", "Workspaces: production and named sandboxes."),
    "sandboxes": _Core(
        "cmd_sandboxes", "app", "Sandboxes: copies of production to change and test safely, then promote them."
    ),
    "promotions": _Core("cmd_promotions", "app", "Promotions of sandboxes to production: history and revert."),
    "plugins": _Core("cmd_plugins", "app", "Installed credential and destination types, and commands plugins add."),
    "credentials": _Core("cmd_credentials", "app", "Named, typed secret bundles (encrypted at rest)."),
    "destinations": _Core("cmd_destinations", "app", "Vendor targets, each bound to one credential."),
    "orchestrations": _Core(
        "cmd_orchestrations", "app", "SQL queries bound to a destination, with their run options."
    ),
    "sources": _Core("cmd_sources", "app", "Check orchestrations' data sources."),
    "groups": _Core("cmd_groups", "app", "Orchestration groups: orchestrations that run in order, as one unit."),
    "schedules": _Core("cmd_schedules", "app", "Schedules of orchestrations and groups: next fires, last outcomes."),
    "scheduler": _Core("cmd_scheduler", "scheduler", "Run due schedules: a long-running process, or once (--once)."),
    "alerts": _Core("cmd_alerts", "app", "Alert channels (webhook, Slack, email) and the rules that notify them."),
    "status": _Core("cmd_status", "status", "The health of a workspace at a glance: schedules, last runs, alerts."),
    "runs": _Core("cmd_runs", "app", "Past runs, their counts and their per-row ledger."),
    "secrets": _Core("cmd_secrets", "app", "Encryption keys of stored secrets."),
}  # fmt: skip

# The names a contributed command may not take; common.CORE_COMMANDS has them for `offramp plugins list`.
assert set(CORE) == set(CORE_COMMANDS), "update CORE_COMMANDS in core/cli/common.py"


def _typer_like_root() -> typer.Typer:
    """A Typer with the root's settings, to convert one command the way ``add_typer``/``command`` on the root would."""
    return typer.Typer(rich_markup_mode=None, add_completion=False, pretty_exceptions_enable=False)


def _load_core(name: str) -> Command:
    import importlib

    entry = CORE[name]
    module = importlib.import_module(f"offramp.core.cli.{entry.module}")
    if name == "destinations":
        _add_destination_actions(module)
    target = getattr(module, entry.attribute)
    holder = _typer_like_root()
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    return typer.main.get_group(holder).commands[name]


def _add_destination_actions(cmd_destinations: Any) -> None:
    """`offramp destinations ACTION NAME` for every action of an installed destination type.

    The registry is discovered when `offramp destinations ...` is loaded: that imports every type's hooks. It is
    quiet about broken plugins: the commands that use plugins discover them again (cached imports) and warn then,
    as they always did. A registry that cannot be built (two plugins claim one name) adds no command: the commands
    that use it report that error, and `offramp destinations action NAME ACTION` stays.
    """
    from offramp.core.registry import discover
    from offramp.core.registry import logger as registry_logger

    quiet = registry_logger.disabled
    registry_logger.disabled = True
    try:
        registry = discover()
    except OfframpError:
        return
    finally:
        registry_logger.disabled = quiet
    cmd_destinations.add_action_commands(registry)  # adds each action once: a second call finds them taken


def _contributions() -> dict[str, LoadedCommand]:
    """Commands plugins contribute (entry point group offramp.commands), loaded once per process.

    A broken or clashing one is left out here and listed by `offramp plugins list`.
    """
    from offramp.core.commands import discover_commands

    return {loaded.contribution.name: loaded for loaded in discover_commands(frozenset(CORE_COMMANDS)).commands}


def _load_contributed(loaded: LoadedCommand) -> Command:
    from offramp.core.commands import CommandDiscovery, add_commands

    holder = _typer_like_root()
    add_commands(holder, CommandDiscovery((loaded,), ()))
    return typer.main.get_group(holder).commands[loaded.contribution.name]


# Commands converted so far in this process (tests run many commands in one).
_loaded: dict[str, Command] = {}


def _command_names() -> list[str]:
    return [*CORE, *_contributions()]  # a contribution never takes a core command's name


class _LazyCommands(MutableMapping[str, "Command"]):
    """The root group's ``commands``: every name is known at once; a command is imported and converted only when
    it is looked up (click's ``get_command``), so code that reads ``group.commands`` sees the whole CLI."""

    def __getitem__(self, name: str) -> Command:
        command = _loaded.get(name)
        if command is None:
            if name in CORE:
                command = _load_core(name)
            else:
                loaded = _contributions().get(name)
                if loaded is None:
                    raise KeyError(name)
                command = _load_contributed(loaded)
            _loaded[name] = command
        return command

    def __contains__(self, name: object) -> bool:
        return name in CORE or name in _command_names()

    def __iter__(self) -> Iterator[str]:
        return iter(_command_names())

    def __len__(self) -> int:
        return len(_command_names())

    def __setitem__(self, name: str, command: Command) -> None:
        _loaded[name] = command

    def __delitem__(self, name: str) -> None:
        raise TypeError("the commands of offramp's CLI are fixed")


class _ErrorReportingGroup(TyperGroup):
    """The root group: loads each command when it is used; turns offramp's errors into one line on stderr and exit
    status 1 (and, under --json, a JSON object on stdout); tracebacks only with --debug."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _LazyCommands()

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The commands and their one-line help, without importing a core command's module."""
        rows = [(name, entry.help) for name, entry in CORE.items()]
        rows += [(name, loaded.contribution.help) for name, loaded in _contributions().items()]
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, make_default_short_help(text, limit)) for name, text in rows])

    def invoke(self, ctx: Context) -> Any:
        try:
            return self._invoke_reporting_errors(ctx)
        finally:
            close_stores()

    def _invoke_reporting_errors(self, ctx: Context) -> Any:
        # Whether the command was given --json, from its words (every command's --json, a contributed one's too);
        # kept in the context's meta, which the whole command shares.
        words = [*ctx._protected_args, *ctx.args]
        ctx.meta[_JSON_REQUESTED] = "--json" in (words[: words.index("--")] if "--" in words else words)
        try:
            return super().invoke(ctx)
        except OfframpError as exc:
            if _debug(ctx):
                raise
            _report(ctx, exc.message, exc.hint)
        except (typer.Exit, typer.Abort, typer.TyperException, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            if _debug(ctx):
                raise
            known = _known_store_problem(exc)
            if known is not None:
                _report(ctx, *known)
            # Library errors (SQLAlchemy's) append the statement and a link on further lines; the first says what.
            first_line = next(iter(str(exc).splitlines()), "")
            message = f"unexpected {type(exc).__name__}: {first_line}"
            _report(ctx, message, "run again with --debug for the traceback, and report it")


_JSON_REQUESTED = "offramp.json"


def _report(ctx: Context, message: str, hint: str | None) -> None:
    """Print a failed command's one line on stderr (and its JSON object on stdout under --json); exit status 1."""
    sys.stderr.write(error_line(message, hint) + "\n")
    if ctx.meta.get(_JSON_REQUESTED):
        sys.stdout.write(json.dumps({"error": message, "hint": hint}, ensure_ascii=False) + "\n")
    raise typer.Exit(1) from None


# What the state store's engines say when the disk is full or failing (SQLite, PostgreSQL, the OS).
_DISK_PROBLEMS = ("database or disk is full", "disk i/o error", "no space left on device", "could not extend file")


def _instance_of(exc: BaseException, module: str, name: str) -> bool:
    """``isinstance(exc, module.name)`` without importing ``module``: an error of a library never imported in this
    process cannot be one of its errors."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(exc, getattr(loaded, name))


def _known_store_problem(exc: BaseException) -> tuple[str, str] | None:
    """One line (what, what to do) for failures of the environment rather than of offramp; None for the rest.

    These are not bugs to report: the transaction that hit them was rolled back, so the command's unfinished
    change was not stored, and the fix is the user's (free space, remove a character).
    """
    text = str(getattr(exc, "orig", None) or exc)
    first_line = next(iter(text.splitlines()), "").strip()
    lowered = text.lower()
    errno = getattr(getattr(exc, "orig", exc), "errno", None)
    if any(problem in lowered for problem in _DISK_PROBLEMS) or errno == 28:  # 28: ENOSPC
        return (
            f"the state store cannot write: {first_line}",
            "free space on the disk that holds the state store (or repair the disk), then run the command again; "
            "its unfinished change was not stored",
        )
    if "database is locked" in lowered:
        # SQLite waited its whole busy timeout for the write lock: another process held it that long.
        return (
            "the state store stayed locked by another process for longer than the busy timeout (30 s)",
            "see what holds it (a long `apply` or `secrets rotate-key`, or a paused offramp process) and run the "
            "command again once it has finished; this command's change was not stored",
        )
    if _instance_of(exc, "sqlalchemy.exc", "IntegrityError") and ("unique" in lowered or "duplicate key" in lowered):
        # The services check that a name is free before they add it: a unique violation after that check is another
        # command that added the same name between the check and the commit.
        return (
            "another command added an object of the same name at the same moment, so this one stored nothing",
            "run the command again: it then finds the object (and says so, or leaves it as the other command made it)",
        )
    if _instance_of(exc, "httpx", "TransportError"):
        request = getattr(exc, "_request", None)  # set when the error came from a request (httpx keeps it private)
        port = f":{request.url.port}" if request is not None and request.url.port else ""
        where = f" at {request.url.scheme}://{request.url.host}{port}" if request is not None else ""
        return (
            f"cannot reach the vendor's API{where}: {type(exc).__name__}: {first_line}",
            "check that the host is up and reachable from here, and that the credential's api_base_url is right; "
            "then run the command again (nothing was changed)",
        )
    if "nul (0x00)" in lowered:
        return (
            "a value holds a NUL character (\\x00), which the PostgreSQL state store cannot hold",
            "remove the character and run the command again; its change was not stored",
        )
    return None


def _debug(ctx: Context) -> bool:
    return bool(ctx.params.get("debug")) or _debug_from_environment()


def _debug_from_environment() -> bool:
    return os.environ.get("OFFRAMP_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


app = typer.Typer(
    cls=_ErrorReportingGroup,
    help="offramp: run SQL against your data and send every row to a vendor API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"offramp {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Configure logging for the command."""
    logging.basicConfig(
        level=logging.DEBUG if debug or _debug_from_environment() else logging.WARNING,
        format="offramp: %(levelname)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())  # even --debug output never shows a secret
    if not debug:
        # stdlib loggers of libraries (alembic announces every migration) stay quiet unless asked.
        logging.getLogger("alembic").setLevel(logging.WARNING)


def main() -> None:
    """Console entry point."""
    app(prog_name="offramp")


__all__ = ["CORE", "app", "main"]
