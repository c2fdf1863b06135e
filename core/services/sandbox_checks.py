"""`offramp sandboxes validate`: what must hold before a sandbox's changes may reach production.

The checks run inside the sandbox, on the objects promotion would touch: those whose snapshot entries differ from
the sandbox's base (``Workspace.base_snapshot``; every object, for a sandbox made empty, which has no base), and the
orchestrations those changes affect (an orchestration whose destination changed sends differently; one that joined,
left or stayed in a changed group runs on another schedule).

Errors block promotion:

- an object refers to one that will not exist in production: a destination bound to a credential that is not
  production's (credentials are never promoted), or a reference to an object the sandbox does not hold;
- a changed destination fails its connection test (the test ``offramp destinations test`` runs);
- an orchestration's query does not parse or plan against its source: it runs there under the source's read-only
  rules, wrapped so that it returns no source row (:func:`query_columns`);
- an orchestration that runs unattended (in a group with a schedule, or with a schedule of its own) has no column
  for a field its destination requires (the type's ``required_columns`` hook);
- an orchestration's query has two columns that claim one field of the type's column contract (``email, email`` or
  ``Email, email``): every run of it fails.

Warnings do not: query columns the destination type does not read (with the run report's suggestions); a changed
orchestration without a successful test-traffic run in the sandbox since its last change ("send a test first"); an
orchestration in no group and with no schedule; an orchestration promotion would bring to production that carries
its own test code (production's runs of it would be test traffic, never attributed).

``Validation.promotable`` says whether the workspace can be promoted at all (a workspace without a base, made by
`workspaces add` or `apply`, is checked but cannot be).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.environment import DEFAULT_WORKSPACE
from offramp.core.errors import ConfigError, OfframpError
from offramp.core.hints import offramp_command
from offramp.core.orchestration_options import OrchestrationOptions
from offramp.core.runner.suggestions import columns_not_used, suggest_columns
from offramp.core.services.config_snapshot import (
    KINDS,
    OPTIONS_PREFIX,
    Snapshot,
    changed_fields,
    entry_name,
    is_production,
    key_of,
    referred_keys,
    take_snapshot,
)
from offramp.core.services.context import Context
from offramp.core.services.destination_calls import test_connection
from offramp.core.services.plugin_context import context_of, shared_options
from offramp.core.services.workspaces import get_workspace
from offramp.core.sources import SourceQueryError, check_read_only_query, open_source
from offramp.core.state.models import (
    AlertChannel,
    Credential,
    Destination,
    Orchestration,
    OrchestrationGroup,
    Run,
    Workspace,
)

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One problem: ``subject`` names the object (``orchestration store-orders``), ``message`` says what is wrong in
    one line, ``hint`` the command that fixes or shows it."""

    severity: Severity
    subject: str
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class Validation:
    """What validating a sandbox found, each list ordered by subject."""

    errors: list[Finding]
    warnings: list[Finding]
    # Whether `sandboxes promote` can take the workspace at all: a sandbox made from production has a base (the
    # revision it was made from or last pulled); a workspace made by `workspaces add` or `apply` has none, so it
    # is checked (everything in it counts as changed) but cannot be promoted, and the CLI must not say it could.
    promotable: bool = True

    @property
    def ok(self) -> bool:
        """Whether nothing blocks promotion (warnings do not)."""
        return not self.errors


# The query runs as a derived table that returns no row, right-joined to one row of its own: the result is exactly
# one row, every column NULL, under the query's column names. Sources hand out no batch of zero rows, so the row is
# what carries the columns; the engine parses, binds and plans the query but reads no row of it (LIMIT 0). The query
# starts on the first line, so an engine's line numbers still point into it; it ends on a line of its own, so a
# trailing `-- comment` cannot swallow the closing parenthesis.
_COLUMNS_QUERY = (
    "SELECT q.* FROM (SELECT * FROM ({sql}\n) AS offramp_query LIMIT 0) AS q "
    "RIGHT JOIN (SELECT 1 AS offramp_row) AS offramp_row ON TRUE"
)


# A derived table may rename repeated names (DuckDB: `email, email` comes out `email, email_1`; `email AS Email,
# email` too), but a run reads the query's own names, where two columns for one field fail every run. DuckDB
# describes the query's own result without running it, one row per column; other engines refuse this query and keep
# the derived table's names, which PostgreSQL does not rename.
_NAMES_QUERY = "SELECT column_name FROM (DESCRIBE {sql}\n)"


def query_columns(source: str, sql: str, options: OrchestrationOptions | None = None) -> list[str]:
    """The column names ``sql`` returns from ``source``, without reading any of its rows.

    The query is checked as a run checks it (:func:`~offramp.core.sources.check_read_only_query`) and runs through
    the source as a run opens it (same ``options``: allowed paths, role checks, statement timeout), so what fails
    here fails in a run.

    Raises:
        ConfigError: the SQL is not one read query, or the source cannot be opened.
        SourceQueryError: the engine refused the query (its message names the line of ``sql`` it points at).
    """
    query = check_read_only_query(sql)
    with open_source(source, options) as opened:
        try:
            batches = list(opened.batches(_COLUMNS_QUERY.format(sql=query), 1, 1))
        except SourceQueryError as exc:
            raise _in_user_lines(exc, query) from None
        if not batches:
            return []
        names = list(batches[0].schema.names)
        try:
            described = [
                str(value)
                for batch in opened.batches(_NAMES_QUERY.format(sql=query), 1000)
                for value in batch.column(0).to_pylist()
            ]
        except OfframpError:
            return names  # the engine takes no such query: the derived table's names (see _NAMES_QUERY)
    return described if len(described) == len(names) else names


def _in_user_lines(exc: SourceQueryError, query: str) -> SourceQueryError:
    """The engine's error, quoting the user's line rather than the wrapping query's first line."""
    line = getattr(exc, "line", None)
    if line is None:
        return exc
    lines = query.splitlines()
    if not 0 < line <= len(lines):
        return exc
    shown = lines[line - 1].strip()
    shown = shown if len(shown) <= 120 else shown[:117] + "..."
    message = f"{exc.engine_message} (line {line}: {shown!r})"
    return SourceQueryError(message, hint=exc.hint, engine_message=exc.engine_message, line=line, line_text=shown)


@dataclass
class _Orchestration:
    """What the checks read of one affected orchestration, loaded in the read session."""

    key: str
    name: str
    destination: str
    destination_type: str
    source: str
    sql: str
    options: OrchestrationOptions | None
    contract: tuple[str, ...]
    required: Sequence[Sequence[str]]
    test_option: str | None
    test_code: bool  # the sandbox or the orchestration sets a test code (a plain `offramp run` sends test traffic)
    own_test_code: bool  # the orchestration's own options set one: promoted, production's runs would carry it
    promoted: bool  # promotion brings the orchestration itself to production (it differs from the base)
    scheduled_by: str | None  # "group NAME" or "its own schedule"; None: runs only when started
    grouped: bool
    changed: bool  # sends differently: it or its destination changed
    tested: bool  # a successful run of the right kind since its (and its destination's) last change
    problem: Finding | None = None  # an error found while loading (a type not installed, options that fail)


@dataclass
class _Plan:
    findings: list[Finding] = field(default_factory=list)
    destinations: list[Destination] = field(default_factory=list)  # changed ones, loaded, to test
    orchestrations: list[_Orchestration] = field(default_factory=list)


def validate_sandbox(ctx: Context, sandbox: str, *, connection_tests: bool = True) -> Validation:
    """Validate the sandbox ``sandbox`` (see the module's docstring); ``connection_tests=False`` skips the
    destinations' connection tests (they call the vendor).

    Raises:
        ConfigError: ``sandbox`` is production.
        ObjectNotFoundError: there is no workspace ``sandbox``.
    """
    with ctx.store.read_session() as session:
        workspace = get_workspace(session, sandbox)
        if is_production(workspace):
            raise ConfigError(
                "production is not a sandbox: validation checks a sandbox's changes before they reach production",
                hint="see " + offramp_command("sandboxes", "list"),
            )
        plan = _plan(ctx, session, workspace)
        promotable = workspace.base_snapshot is not None and workspace.base_revision is not None
    # Outside the read session: a connection test may refresh the credential (a write transaction of its own), and
    # a source query may take as long as the source does.
    findings = plan.findings
    if connection_tests:
        for row in plan.destinations:
            findings += _connection(ctx, row, sandbox)
    for item in plan.orchestrations:
        findings += _orchestration_findings(item, sandbox)
    findings.sort(key=lambda f: (f.subject, f.message))
    return Validation(
        errors=[f for f in findings if f.severity == "error"],
        warnings=[f for f in findings if f.severity == "warning"],
        promotable=promotable,
    )


def _changed(snapshot: Snapshot, base: Snapshot | None, kind: str) -> set[str]:
    """Keys of the objects of ``kind`` whose entries differ from the base (all of them without a base)."""
    if base is None:
        return set(snapshot[kind])
    before = base.get(kind, {})
    return {key for key, entry in snapshot[kind].items() if key not in before or changed_fields(before[key], entry)}


def _plan(ctx: Context, session: Session, workspace: Workspace) -> _Plan:
    sandbox = workspace.name
    snapshot = take_snapshot(session, workspace)
    base = workspace.base_snapshot
    plan = _Plan()
    changed = {kind: _changed(snapshot, base, kind) for kind in KINDS}
    plan.findings += _references(session, snapshot, changed["destination"], sandbox)
    plan.findings += _alert_channels(session, snapshot, changed, sandbox)

    def rows(model: Any) -> dict[str, Any]:
        found = session.scalars(select(model).where(model.workspace_id == workspace.id))
        return {key_of(row, False): row for row in found}

    destinations: dict[str, Destination] = rows(Destination)
    orchestrations: dict[str, Orchestration] = rows(Orchestration)
    groups: dict[str, OrchestrationGroup] = rows(OrchestrationGroup)
    for key in sorted(changed["destination"]):
        row = destinations[key]
        _loaded = (row.workspace.name, row.credential.name)  # the connection test runs after this session
        plan.destinations.append(row)

    sends_differently = changed["orchestration"] | {
        key for key, entry in snapshot["orchestration"].items() if entry["destination"] in changed["destination"]
    }
    regrouped: set[str] = set()
    for key in changed["group"]:
        regrouped.update(snapshot["group"][key]["orchestrations"])
        if base is not None and key in base["group"]:
            regrouped.update(k for k in base["group"][key]["orchestrations"] if k in snapshot["orchestration"])
    in_groups: dict[str, list[OrchestrationGroup]] = {}
    for group in groups.values():
        for member in group.members:
            in_groups.setdefault(key_of(member.orchestration, False), []).append(group)
    for key in sorted(sends_differently | regrouped, key=lambda k: orchestrations[k].name):
        plan.orchestrations.append(
            _load(
                ctx,
                session,
                workspace,
                orchestrations[key],
                in_groups.get(key, []),
                key in sends_differently,
                promoted=key in changed["orchestration"],
            )
        )
    return plan


def _references(session: Session, snapshot: Snapshot, changed_destinations: set[str], sandbox: str) -> list[Finding]:
    """Errors for references to what will not exist in production."""
    findings: list[Finding] = []
    credentials: Mapping[str, Any] = snapshot.get("credentials", {})
    for kind in KINDS:
        for key, entry in snapshot[kind].items():
            subject = f"{kind} {entry['name']}"
            for target, ref in referred_keys(kind, entry):
                if target != "credential":
                    if ref not in snapshot[target]:
                        shown = offramp_command(f"{kind}s", "show", entry["name"], workspace=sandbox)
                        findings.append(
                            Finding(
                                "error", subject, f"refers to a {target} the sandbox does not hold", f"see `{shown}`"
                            )
                        )
                    continue
                found = credentials.get(ref)
                if found is not None and found["workspace"] == DEFAULT_WORKSPACE:
                    continue
                if key not in changed_destinations and found is not None:
                    continue  # unchanged: promotion leaves it as production has it
                owner = "no workspace" if found is None else f"sandbox {found['workspace']!r}"
                name = entry_name(snapshot, "credential", ref)
                findings.append(
                    Finding(
                        "error",
                        subject,
                        f"is bound to credential {name!r} of {owner}, which will not exist in production "
                        "(credentials are never promoted)",
                        _rebind_hint(session, entry, ref, sandbox),
                    )
                )
    return findings


def _alert_channels(
    session: Session, snapshot: Snapshot, changed: Mapping[str, set[str]], sandbox: str
) -> list[Finding]:
    """Errors for changed alert rules that notify a channel production does not have: channels, like credentials,
    are shared by reference and never promoted, so such a rule's notices would fail in production."""
    production = select(AlertChannel.name).join(Workspace).where(Workspace.name == DEFAULT_WORKSPACE)
    existing = set(session.scalars(production))
    findings: list[Finding] = []
    for kind in ("orchestration", "group"):
        for key in sorted(changed[kind]):
            entry = snapshot[kind][key]
            rules = entry.get(f"{OPTIONS_PREFIX}alerts") or {}
            for channel in rules.get("channels", []):
                if channel in existing:
                    continue
                findings.append(
                    Finding(
                        "error",
                        f"{kind} {entry['name']}",
                        f"its alert rules notify channel {channel!r}, which production does not have (alert "
                        "channels are never promoted)",
                        "add the channel to production: " + offramp_command("alerts", "channels", "add", "--help"),
                    )
                )
    return findings


def _rebind_hint(session: Session, entry: Mapping[str, Any], credential_id: str, sandbox: str) -> str:
    """Bind the destination to a production credential of its type that the sandbox can name (its own credentials'
    names come first in a sandbox), or add one to production.

    When production has a credential of the bound one's name and type, that is the one meant; but the name finds
    the sandbox's own first, so the sandbox's own is renamed out of the way (its destinations stay bound to it, by
    id) before the destination is bound by name."""
    production = get_workspace(session, DEFAULT_WORKSPACE)
    workspace = get_workspace(session, sandbox)
    own = set(session.scalars(select(Credential.name).where(Credential.workspace_id == workspace.id)))
    query = select(Credential).where(Credential.workspace_id == production.id).order_by(Credential.name)
    bound = session.get(Credential, int(credential_id)) if credential_id.isdigit() else None
    credential_type = bound.type if bound is not None else ""
    if bound is not None and bound.workspace_id == workspace.id:
        namesake = session.scalar(query.where(Credential.name == bound.name, Credential.type == bound.type))
        if namesake is not None:
            spare = _free_name(f"{bound.name}-{sandbox}", own)
            rename = offramp_command("credentials", "rename", bound.name, spare, workspace=sandbox)
            rebind = offramp_command(
                "destinations", "update", entry["name"], "--credential", bound.name, workspace=sandbox
            )
            return (
                f"bind it to production's {bound.name!r}, which the name finds only once the sandbox's own is out of "
                f"the way: rename the sandbox's own first ({rename}; or delete it once nothing uses it), then "
                f"{rebind}"
            )
    shared = [row.name for row in session.scalars(query) if row.name not in own and row.type == credential_type]
    if shared:
        command = offramp_command("destinations", "update", entry["name"], "--credential", shared[0], workspace=sandbox)
        return f"bind it to a production credential: {command}"
    add, update = offramp_command("credentials", "add", "--help"), offramp_command("destinations", "update", "--help")
    what = f"a {credential_type} credential" if credential_type else "a credential"
    return f"add {what} to production (`{add}`), then bind the destination to it (`{update}`)"


def _free_name(wanted: str, taken: set[str]) -> str:
    """``wanted``, or ``wanted-2``, ``wanted-3``... : the first that no credential of the sandbox has."""
    name, number = wanted, 1
    while name in taken:
        number += 1
        name = f"{wanted}-{number}"
    return name


def _schedule_of(row: Orchestration, groups: list[OrchestrationGroup]) -> str | None:
    scheduled = sorted(group.name for group in groups if group.schedule)
    if scheduled:
        return f"group {scheduled[0]}"
    return "its own schedule" if row.options.get("schedule") else None


def _load(
    ctx: Context,
    session: Session,
    workspace: Workspace,
    row: Orchestration,
    groups: list[OrchestrationGroup],
    sends_differently: bool,
    *,
    promoted: bool,
) -> _Orchestration:
    destination = row.destination
    item = _Orchestration(
        key=key_of(row, False), name=row.name, destination=destination.name, destination_type=destination.type,
        source=row.source, sql=row.sql, options=None, contract=(), required=(), test_option=None, test_code=False,
        own_test_code=False, promoted=promoted, scheduled_by=_schedule_of(row, groups), grouped=bool(groups),
        changed=sends_differently, tested=False,
    )  # fmt: skip
    subject = f"orchestration {row.name}"
    try:
        kind = ctx.registry.destination_type(destination.type)
        hooks = ctx.registry.destination_hooks(destination.type)
        described = f"orchestration {row.name!r} ({destination.type})"
        item.options = shared_options(row.options, kind.run_options, described)
        item.contract = tuple(kind.columns)
        # A type declares the columns a run cannot do without for its destination's settings and the orchestration's
        # options (TikTok: an event name unless fixed_event_name, a timestamp, an identifier its event source reads).
        required: Callable[[Any], Sequence[Sequence[str]]] | None = getattr(hooks, "required_columns", None)
        if required is not None:
            item.required = required(context_of(ctx, destination, options=row.options, subject=described, dry_run=True))
        item.test_option = getattr(kind.capabilities, "test_traffic_option", None)
    except OfframpError as exc:
        item.problem = Finding("error", subject, exc.message, exc.hint)
        return item
    if item.test_option is not None:
        # Blank is no code, as a run reads it (the engine strips the code it sends).
        item.own_test_code = bool(str(row.options.get(item.test_option) or "").strip())
        item.test_code = bool((workspace.test_event_code or "").strip()) or item.own_test_code
    since = max(row.updated_at, destination.updated_at)
    query = select(Run).where(Run.workspace_id == workspace.id, Run.orchestration_id == row.id)
    # Compared here, not in SQL: SQLite compares stored times as text.
    runs = [run for run in session.scalars(query.where(Run.status == "succeeded")) if run.started_at > since]
    if item.test_option is None:
        # The type cannot keep test traffic apart, so a sandbox only dry-runs it: a dry run is the test.
        item.tested = any(run.dry_run for run in runs)
    else:
        item.tested = any(not run.dry_run and (run.report or {}).get("test_traffic") is True for run in runs)
    return item


def _connection(ctx: Context, row: Destination, sandbox: str) -> list[Finding]:
    subject = f"destination {row.name}"
    shown = offramp_command("destinations", "test", row.name, workspace=sandbox)
    try:
        steps = test_connection(ctx, row)
    except OfframpError as exc:
        return [Finding("error", subject, f"its connection test could not run: {exc.message}", exc.hint)]
    failed = [step for step in steps if step.verdict == "failed"]
    if not failed:
        return []
    detail = "; ".join(f"{step.name}: {step.detail}" for step in failed)
    return [Finding("error", subject, f"fails its connection test: {detail}", f"see every step with `{shown}`")]


def _orchestration_findings(item: _Orchestration, sandbox: str) -> list[Finding]:
    subject = f"orchestration {item.name}"
    shown = f"`{offramp_command('orchestrations', 'show', item.name, workspace=sandbox)}` prints its SQL"
    findings: list[Finding] = []
    if item.problem is not None:
        return [item.problem]
    if item.changed and not item.tested:
        findings.append(_send_a_test(item, subject, sandbox))
    if item.promoted and item.own_test_code and item.test_option is not None:
        unset = offramp_command("orchestrations", "update", item.name, "--unset", item.test_option, workspace=sandbox)
        findings.append(
            Finding("warning", subject, f"its own test code would go to production ({item.test_option} is set in its "
                    "options): production's runs of it would be test traffic, never attributed",
                    f"unset it before promoting: {unset} (the sandbox's own code keeps its runs test traffic: "
                    f"{offramp_command('sandboxes', 'update', sandbox, '--test-event-code', 'CODE')})")
        )  # fmt: skip
    if item.scheduled_by is None and not item.grouped:
        every_morning = offramp_command(
            "orchestrations", "update", item.name, "--schedule", "0 6 * * *", workspace=sandbox
        )
        findings.append(
            Finding("warning", subject, "is in no group and has no schedule: it runs only when started by hand",
                    f"schedule it, e.g. {every_morning}")
        )  # fmt: skip
    try:
        columns = query_columns(item.source, item.sql, item.options)
    except OfframpError as exc:
        # The engine's complaint is about the SQL; other errors (a missing file, a path not allowed) say their fix.
        hint = f"fix the query ({shown})" if isinstance(exc, SourceQueryError) else exc.hint
        findings.append(Finding("error", subject, f"its query does not plan against its source: {exc.message}", hint))
        return findings
    lowered = {column.strip().lower(): column for column in columns}
    findings += _repeated_columns(item, columns, subject, shown)
    if item.contract:
        known = {name.lower() for name in item.contract}
        unknown = [column for column in columns if column.strip().lower() not in known]
        if unknown:
            listed = columns_not_used(unknown, suggest_columns(unknown, item.contract))
            findings.append(
                Finding("warning", subject, f"{item.destination_type} does not read the query's column(s) {listed}",
                        f"rename or drop them in the query ({shown})")
            )  # fmt: skip
    if item.scheduled_by is not None:
        for group in item.required:
            if any(name.lower() in lowered for name in group):
                continue
            wanted = " or ".join(group)
            near = suggest_columns(columns, list(group))  # `event_time` for `timestamp`, `emial` for `email`
            maybe = "".join(f" (did you mean {column} AS {name}?)" for column, name in sorted(near.items())[:1])
            findings.append(
                Finding(
                    "error",
                    subject,
                    f"runs on {item.scheduled_by}, but its query has no {wanted} column, which destination "
                    f"{item.destination!r} ({item.destination_type}) requires{maybe}",
                    f"add it to the query ({shown})",
                )
            )
    return findings


def _repeated_columns(item: _Orchestration, columns: list[str], subject: str, shown: str) -> list[Finding]:
    """Errors for two query columns that claim one field of the destination type's column contract.

    A type reads its contract's columns by name, trimmed and case-insensitively (``DestinationType.columns``), so
    ``email, email`` or ``Email, email`` give one field two values, and the type's preparer fails every run of the
    query (TikTok: "the query has two columns for 'email'"). A type without a contract is not checked: what it makes
    of its columns is its own.
    """
    contract = {name.lower() for name in item.contract}
    claimed: dict[str, list[str]] = {}
    for column in columns:
        name = column.strip().lower()
        if name in contract:
            claimed.setdefault(name, []).append(column)
    return [
        Finding(
            "error",
            subject,
            f"the query has two columns for {name!r} ({' and '.join(repr(c) for c in found)}): every run of it "
            f"fails, as {item.destination_type} reads one column per field",
            f"drop or rename one of them in the SELECT list ({shown})",
        )
        for name, found in sorted(claimed.items())
        if len(found) > 1
    ]


def _send_a_test(item: _Orchestration, subject: str, sandbox: str) -> Finding:
    if item.test_option is None:
        command = offramp_command("run", item.name, "--dry-run", workspace=sandbox)
        return Finding("warning", subject, "has had no successful dry run in this sandbox since its last change "
                       f"({item.destination_type} cannot send test traffic): run one first", command)  # fmt: skip
    if item.test_code:
        command = offramp_command("run", item.name, workspace=sandbox)
    else:
        command = offramp_command("run", item.name, "--test-event-code", "CODE", workspace=sandbox)
    return Finding(
        "warning",
        subject,
        "has had no successful test run in this sandbox since its last change: send a test first",
        command,
    )


__all__ = ["Finding", "Validation", "query_columns", "validate_sandbox"]
