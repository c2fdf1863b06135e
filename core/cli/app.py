"""The `offramp` command: a thin layer over the service layer."""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated, Any

import httpx
import typer
from sqlalchemy.exc import IntegrityError
from typer.core import TyperGroup

from offramp.core._version import __version__
from offramp.core.cli import (
    cmd_audit,
    cmd_config,
    cmd_credentials,
    cmd_destinations,
    cmd_init,
    cmd_orchestrations,
    cmd_plugins,
    cmd_run,
    cmd_runs,
    cmd_secrets,
    cmd_sources,
    cmd_workspaces,
)
from offramp.core.cli.common import CORE_COMMANDS, close_stores
from offramp.core.cli.output import error_line
from offramp.core.commands import add_commands, discover_commands
from offramp.core.errors import OfframpError
from offramp.core.log_redaction import RedactingFilter
from offramp.core.registry import discover
from offramp.core.registry import logger as registry_logger


class _ErrorReportingGroup(TyperGroup):
    """Turns offramp's errors into one line on stderr and exit status 1; tracebacks only with --debug."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return self._invoke_reporting_errors(ctx)
        finally:
            close_stores()

    def _invoke_reporting_errors(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except OfframpError as exc:
            if _debug(ctx):
                raise
            sys.stderr.write(error_line(exc.message, exc.hint) + "\n")
            raise typer.Exit(1) from None
        except (typer.Exit, typer.Abort, typer.TyperException, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            if _debug(ctx):
                raise
            known = _known_store_problem(exc)
            if known is not None:
                sys.stderr.write(error_line(*known) + "\n")
                raise typer.Exit(1) from None
            # Library errors (SQLAlchemy's) append the statement and a link on further lines; the first says what.
            first_line = next(iter(str(exc).splitlines()), "")
            message = f"unexpected {type(exc).__name__}: {first_line}"
            sys.stderr.write(error_line(message, "run again with --debug for the traceback, and report it") + "\n")
            raise typer.Exit(1) from None


# What the state store's engines say when the disk is full or failing (SQLite, PostgreSQL, the OS).
_DISK_PROBLEMS = ("database or disk is full", "disk i/o error", "no space left on device", "could not extend file")


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
    if isinstance(exc, IntegrityError) and ("unique" in lowered or "duplicate key" in lowered):
        # The services check that a name is free before they add it: a unique violation after that check is another
        # command that added the same name between the check and the commit.
        return (
            "another command added an object of the same name at the same moment, so this one stored nothing",
            "run the command again: it then finds the object (and says so, or leaves it as the other command made it)",
        )
    if isinstance(exc, httpx.TransportError):
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


def _debug(ctx: Any) -> bool:
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


app.command("init")(cmd_init.init)
app.add_typer(cmd_workspaces.app, name="workspaces")
app.add_typer(cmd_plugins.app, name="plugins")
app.add_typer(cmd_credentials.app, name="credentials")
app.add_typer(cmd_destinations.app, name="destinations")
app.add_typer(cmd_orchestrations.app, name="orchestrations")
app.add_typer(cmd_sources.app, name="sources")
app.command("run")(cmd_run.run)
app.add_typer(cmd_runs.app, name="runs")
app.command("export")(cmd_config.export)
app.command("apply")(cmd_config.apply)
app.add_typer(cmd_secrets.app, name="secrets")
app.command("audit")(cmd_audit.audit)


def _registered_names(group: typer.Typer) -> set[str]:
    commands = {str(item.name) for item in group.registered_commands}
    return commands | {str(item.name) for item in group.registered_groups}


# The names a contributed command may not take; kept in common.CORE_COMMANDS for `offramp plugins list`.
assert _registered_names(app) == set(CORE_COMMANDS), "update CORE_COMMANDS in core/cli/common.py"


def _add_destination_actions() -> None:
    """`offramp destinations ACTION NAME` for every action of an installed destination type.

    The registry is discovered here, when the app is built: that imports every type's hooks, a few milliseconds
    on top of the CLI's own imports. It is quiet about broken plugins: the commands that use plugins discover
    them again (cached imports) and warn then, as they always did. A registry that cannot be built (two plugins
    claim one name) adds no command: the commands that use it report that error, and `offramp destinations action
    NAME ACTION` stays.
    """
    quiet = registry_logger.disabled
    registry_logger.disabled = True
    try:
        registry = discover()
    except OfframpError:
        return
    finally:
        registry_logger.disabled = quiet
    cmd_destinations.add_action_commands(registry)


_add_destination_actions()
# Commands plugins contribute (entry point group offramp.commands), after the core commands; a broken or clashing
# one is left out and listed by `offramp plugins list`.
add_commands(app, discover_commands(frozenset(CORE_COMMANDS)))


def main() -> None:
    """Console entry point."""
    app(prog_name="offramp")


__all__ = ["app", "main"]
