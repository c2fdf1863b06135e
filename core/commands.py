"""Commands a plugin adds to the ``offramp`` command line, and the small facade of offramp they use.

A plugin contributes a command through the entry point group ``offramp.commands``. The entry point's name is the
command's name (``offramp NAME``); it points at a :class:`CommandContribution`::

    [project.entry-points."offramp.commands"]
    emulator = "offramp.plugins.tiktok.commands:EMULATOR"

The CLI loads every contribution when it is built (:func:`discover_commands`). One that fails to import, is not a
:class:`CommandContribution`, is named differently from its entry point, or claims the name of a core command or of
another contribution is left out and listed by ``offramp plugins list`` with the reason; the rest of the CLI works.

A command module imports :mod:`offramp.core` (its ``__all__``) and this module, never ``offramp.core.services``,
``.state``, ``.runner`` or ``.cli`` (``tests/test_plugin_boundary.py`` holds that). What it needs of offramp's
state store (apply a workspace, hand a credential to its type's hooks, run an orchestration, print what
``offramp run`` prints) is :class:`Offramp`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from offramp.core.errors import PluginError
from offramp.core.lazy_names import lazy_names

if TYPE_CHECKING:
    from offramp.core.oauth_callback import check_state, new_state, parse_redirect
    from offramp.core.plugin_api import CredentialHandle
    from offramp.core.registry import Registry
    from offramp.core.runner import RunSummary
    from offramp.core.services.context import Context

# Only typer and the errors are imported with this module: the CLI loads every contributed command (and so this
# module) to list them in `offramp --help`, which must not load the state store's or a run's libraries
# (tests/cli/test_cli_startup.py). What a function needs it imports when it runs.

# Names this module re-exports for contributed commands, and the modules they come from (read on first use).
_REEXPORTED = {
    "RunSummary": "offramp.core.runner.types",
    "check_state": "offramp.core.oauth_callback",
    "new_state": "offramp.core.oauth_callback",
    "parse_redirect": "offramp.core.oauth_callback",
}


__getattr__ = lazy_names(globals(), _REEXPORTED)


# The CLI's modules are imported where they are used, never at the top of this module: importing any of them builds
# the CLI app (offramp.core.cli imports it), which loads the contributed commands, which import this module.

COMMANDS_GROUP = "offramp.commands"


@dataclass(frozen=True)
class CommandContribution:
    """A command a plugin adds to the CLI.

    Args:
        name: The command's name (``offramp NAME``), lower-case words joined by hyphens; the entry point is named
            the same.
        help: One sentence for ``offramp --help``.
        app: A ``typer.Typer`` with subcommands (``offramp emulator tiktok``), or a function that is the command
            itself (its parameters declared with ``typer.Option``/``typer.Argument``, as for any Typer command).
    """

    name: str
    help: str
    app: typer.Typer | Callable[..., Any]


@dataclass(frozen=True)
class LoadedCommand:
    """A contribution that loaded, and where it came from."""

    contribution: CommandContribution
    distribution: str
    entry_point: str


@dataclass(frozen=True)
class BrokenCommand:
    """A contribution left out of the CLI, and why."""

    name: str
    distribution: str
    entry_point: str
    reason: str


@dataclass(frozen=True)
class CommandDiscovery:
    """The contributed commands: those added to the CLI, and those left out with the reason."""

    commands: tuple[LoadedCommand, ...]
    broken: tuple[BrokenCommand, ...]


def _check_contribution(found: object, entry_name: str, taken: Collection[str]) -> CommandContribution:
    from offramp.core.plugin_types import NAME_PATTERN

    if not isinstance(found, CommandContribution):
        raise PluginError(
            f"entry point must point at an offramp.core.commands.CommandContribution, got {type(found).__name__}"
        )
    if not NAME_PATTERN.match(found.name):
        raise PluginError(f"command name {found.name!r} must be lower-case words joined by hyphens")
    if found.name != entry_name:
        raise PluginError(f"entry point is named {entry_name!r} but the command declares {found.name!r}")
    if found.name in taken:
        raise PluginError(f"the name {found.name!r} is taken by another command; a contribution cannot replace it")
    if not found.help:
        raise PluginError(f"command {found.name!r} has no help")
    if not (isinstance(found.app, typer.Typer) or callable(found.app)):
        raise PluginError(f"command {found.name!r}: app must be a typer.Typer or a function")
    return found


@functools.cache
def discover_commands(reserved: frozenset[str]) -> CommandDiscovery:
    """Load the contributions of the group ``offramp.commands``; ``reserved`` are the core commands' names.

    Loaded once per process: the CLI adds them when it is built and ``offramp plugins list`` shows the same result.
    """
    commands: list[LoadedCommand] = []
    broken: list[BrokenCommand] = []
    seen: set[tuple[str, str, str]] = set()
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: (e.name, e.value)):
        distribution = entry.dist.metadata["Name"] if entry.dist is not None else "(unknown distribution)"
        identity = (entry.name, entry.value, distribution)
        if identity in seen:  # one distribution visible twice on sys.path (an editable install next to a build)
            continue
        seen.add(identity)
        taken = reserved | {loaded.contribution.name for loaded in commands}
        try:
            contribution = _check_contribution(entry.load(), entry.name, taken)
        except Exception as exc:  # noqa: BLE001 - any failure of plugin code makes it broken, not fatal
            # Not logged: this runs when the CLI is built, for every command; `offramp plugins list` shows why.
            broken.append(BrokenCommand(entry.name, distribution, entry.value, f"{type(exc).__name__}: {exc}"))
            continue
        commands.append(LoadedCommand(contribution, distribution, entry.value))
    return CommandDiscovery(tuple(commands), tuple(broken))


def add_commands(app: typer.Typer, discovery: CommandDiscovery) -> None:
    """Add the loaded contributions to the CLI ``app``."""
    for loaded in discovery.commands:
        contribution = loaded.contribution
        if isinstance(contribution.app, typer.Typer):
            app.add_typer(contribution.app, name=contribution.name, help=contribution.help)
        else:
            app.command(contribution.name, help=contribution.help)(contribution.app)


def run_report_lines(summary: RunSummary) -> list[str]:
    """The lines ``offramp run`` prints about a finished run: its counts in rows and events (which add up), reasons,
    columns not used with suggestions, unmapped labels, what to do next. A dry run says ``would send``."""
    from offramp.core.hints import offramp_command
    from offramp.core.runner.suggestions import columns_not_used
    from offramp.core.runner.types import reasons_by_outcome
    from offramp.core.services.runs import COUNTS, counts_line

    rows = {name: getattr(summary, name) for name in COUNTS}
    verb = "dry run" if summary.dry_run else "run"
    lines = [
        f"{verb} {summary.run_id} {summary.status.replace('_', ' ')} in {summary.seconds:.1f} s",
        counts_line(rows, summary.events, dry_run=summary.dry_run),
    ]
    if summary.dry_run:
        lines.append("dry run: nothing was sent; 'would send' counts the events a real run would send")
    by_outcome = reasons_by_outcome(summary.reason_counts)
    for outcome in ("rejected", "skipped", "unknown"):
        data = by_outcome.get(outcome, {})
        if data:
            lines.append(
                f"{outcome} by reason: " + ", ".join(f"{key} {value} rows" for key, value in sorted(data.items()))
            )
    if summary.unknown_columns:  # next to the rejections: a typo'd alias is the usual cause of missing fields
        lines.append("columns not used: " + columns_not_used(summary.unknown_columns, summary.column_suggestions))
    for reason, labels in sorted(summary.labels.items()):
        lines.append(f"{reason}: " + ", ".join(labels))
    if summary.vendor_codes:
        lines.append(
            "failed by code: " + ", ".join(f"{key} {value} rows" for key, value in sorted(summary.vendor_codes.items()))
        )
    if summary.warnings:
        lines.append("warnings: " + ", ".join(f"{key} {value}" for key, value in sorted(summary.warnings.items())))
    if summary.error:
        lines.append(f"error: {summary.error}")
    if summary.hint:
        lines.append(f"next: {summary.hint}")
    shown = functools.partial(offramp_command, "runs", "show", summary.run_id, workspace=summary.workspace or None)
    if summary.rejected and shown("--rejects") not in (summary.hint or ""):  # a hint is said once
        lines.append(f"rejected rows by event_id: {shown('--rejects')}")
    if summary.warnings:
        lines.append(f"events with warnings: {shown('--warnings')}")
    return lines


def progress_counts(summary: RunSummary) -> str:
    """The progress bar's counts: rows per second, then events and rows by outcome (``would send`` in a dry run)."""
    events = summary.events
    verb = "would send" if summary.dry_run else "sent"
    return (
        f"{summary.rows_per_second:,.0f} rows/s  {verb} {events['sent']} events ({summary.sent} rows)"
        f"  rejected {events['rejected']} ({summary.rejected} rows)  failed {events['failed']} ({summary.failed} rows)"
    )


def say(message: str) -> None:
    """A line of progress or result for people, on stdout, as every offramp command prints it."""
    from offramp.core.cli.output import say as say_line

    say_line(message)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout, as every ``--json`` of offramp does."""
    from offramp.core.cli.output import print_json as print_data

    print_data(data)


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a table as offramp's commands do; an empty one says so."""
    from offramp.core.cli.output import print_table as print_rows

    print_rows(title, columns, rows)


@dataclass(frozen=True)
class ApplyResult:
    """What :meth:`Offramp.apply` changed.

    Args:
        summary: ``2 to add, 0 to change, 0 to remove``.
        changes: One line per object added, changed or removed (``+ credential demo-tiktok``); empty when the
            workspace already matched the document.
    """

    summary: str
    changes: tuple[str, ...]


class Offramp:
    """offramp's state store and services, as a contributed command uses them.

    Build it with :meth:`from_environment` (the store of ``OFFRAMP_HOME`` / ``OFFRAMP_DATABASE_URL``, closed when
    the command ends) or :meth:`throwaway` (a store of its own in a directory, for benchmarks).
    """

    def __init__(self, context: Context) -> None:
        self._ctx = context

    @staticmethod
    def ensure_initialized() -> None:
        """Do what ``offramp init`` does (and print what it prints) when this environment has no state store yet."""
        from offramp.core.cli.cmd_init import init
        from offramp.core.environment import Environment
        from offramp.core.errors import StoreNotInitializedError
        from offramp.core.state.store import open_store

        try:
            open_store(Environment()).dispose()
        except StoreNotInitializedError:
            init()

    @classmethod
    def from_environment(cls, actor: str | None = None) -> Offramp:
        """The state store of this environment; ``actor`` is who acts, for the audit trail (default: the OS user)."""
        from offramp.core.cli.common import build_context

        return cls(build_context(actor))

    @classmethod
    @contextmanager
    def throwaway(cls, home: Path) -> Iterator[Offramp]:
        """A new state store and key in ``home`` (an empty directory), never the user's; closed after the block."""
        from offramp.core.environment import Environment
        from offramp.core.secrets import create_key_file
        from offramp.core.services.context import Context
        from offramp.core.state.store import initialize as initialize_store

        env = Environment(home=home, database_url=None)
        store = initialize_store(env)[0]
        try:
            create_key_file(env.key_file)
            yield cls(Context(env=env, store=store))
        finally:
            store.dispose()

    @property
    def home(self) -> Path:
        """offramp's home directory."""
        return self._ctx.env.home

    @property
    def demo_database(self) -> Path:
        """The one file in offramp's home that an orchestration's source may read: a demo's sample data."""
        from offramp.core.sources._allowed import DEMO_DATABASE

        return (self._ctx.env.home / DEMO_DATABASE).resolve()

    @property
    def registry(self) -> Registry:
        """The installed credential and destination types, and their hooks."""
        return self._ctx.registry

    def apply(self, document: Mapping[str, Any]) -> ApplyResult:
        """Make a workspace match a configuration document, as ``offramp apply FILE`` does with the file's content.

        Raises:
            ConfigError: naming every problem of the document; nothing is changed then.
        """
        from offramp.core.services.config_io import ConfigDocument, apply_document

        with self._ctx.store.session() as session:
            plan = apply_document(session, self._ctx, ConfigDocument.model_validate(dict(document)), dry_run=False)
        return ApplyResult(plan.summary, tuple(str(item) for item in plan.items))

    def credential(self, workspace: str, name: str) -> CredentialHandle:
        """The handle of a stored credential, to give its type's hooks (``authorization_url`` and the rest)."""
        from offramp.core.services.plugin_context import credential_handle

        return credential_handle(self._ctx, workspace, name)

    def run(
        self,
        workspace: str,
        orchestration: str,
        *,
        dry_run: bool = False,
        limit: int | None = None,
        progress: Callable[[RunSummary], None] | None = None,
    ) -> RunSummary:
        """Run an orchestration as ``offramp run`` does; ``progress`` is called with the summary as it grows."""
        from offramp.core.runner import RunRequest, run_orchestration

        request = RunRequest(workspace=workspace, orchestration=orchestration, dry_run=dry_run, limit=limit)
        return run_orchestration(self._ctx, request, progress=progress)

    def print_orchestrations(self, workspace: str) -> None:
        """Print what ``offramp orchestrations list -w WORKSPACE`` prints."""
        from offramp.core.cli.cmd_orchestrations import print_orchestrations

        print_orchestrations(self._ctx, workspace)


__all__ = [
    "ApplyResult",
    "BrokenCommand",
    "COMMANDS_GROUP",
    "CommandContribution",
    "CommandDiscovery",
    "LoadedCommand",
    "Offramp",
    "RunSummary",
    "add_commands",
    "check_state",
    "discover_commands",
    "new_state",
    "parse_redirect",
    "print_json",
    "print_table",
    "progress_counts",
    "run_report_lines",
    "say",
]
