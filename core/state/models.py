"""Tables of the state store. Every configuration object belongs to a workspace.

Secret settings are stored only as Fernet ciphertext (``secrets`` columns); row outcomes are keyed by
``event_id`` and hold reason codes, never the raw values of a row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the state store; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# A configuration object's id is its identity across sandboxes and promotions (offramp.core.services.config_snapshot):
# SQLite would give a deleted object's id to the next new one (ids are max + 1 without AUTOINCREMENT), and a sandbox
# or a promotion's record would then take the new object for the old one. PostgreSQL's sequences never reuse ids.
_NEVER_REUSED_IDS: dict[str, Any] = {"sqlite_autoincrement": True}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Workspace(Base):
    """``production`` or a sandbox (every other workspace).

    ``revision`` advances with every change to the workspace's configuration (``offramp.core.services.audit``
    advances it as it records the change). A sandbox made from production (``offramp sandboxes create``) keeps the
    production revision it was made from or last pulled (``base_revision``) and production's configuration at that
    revision (``base_snapshot``, the base of the three-way merge: ``offramp.core.services.config_snapshot``).
    """

    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(255))
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    base_revision: Mapped[int | None] = mapped_column(Integer)
    base_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A sandbox's test code: its runs' events go to the vendor's test view (see DestinationCapabilities).
    test_event_code: Mapped[str | None] = mapped_column(String(255))
    # A sandbox made by `offramp promotions revert`: the promotion it reverses (recorded on its own promotion).
    reverts_promotion: Mapped[int | None] = mapped_column(Integer)
    # A deleted sandbox keeps its row, renamed NAME~deleted-ID, so that its runs stay as history and the name is
    # free again (``~`` is in no valid workspace name, so the two never clash).
    deleted_at: Mapped[datetime | None] = mapped_column()
    # A sandbox's schedules fire only when this is set (`offramp sandboxes update NAME --enable-schedules`), and then
    # as test traffic; production's always fire. A sandbox copies production's schedules: firing them by default
    # would double every scheduled send.
    schedules_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class Credential(Base):
    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("workspace_id", "name"), _NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(127))
    type: Mapped[str] = mapped_column(String(127))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {field: {"ciphertext": Fernet token, "changed_at": ISO time, "source": "VAR" or null}}
    secrets: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # ready | needs_authorization (no token yet) | needs_reauth (the vendor refused the grant; see status_reason)
    status: Mapped[str] = mapped_column(String(32), default="ready", server_default="ready")
    status_reason: Mapped[str | None] = mapped_column(Text)
    last_refreshed_at: Mapped[datetime | None] = mapped_column()
    # Not secret: when the cached access token stops working, so it is refreshed before use, not after a failure.
    access_token_expires_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    workspace: Mapped[Workspace] = relationship()


class Destination(Base):
    __tablename__ = "destinations"
    __table_args__ = (UniqueConstraint("workspace_id", "name"), _NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(127))
    type: Mapped[str] = mapped_column(String(127))
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id", ondelete="RESTRICT"), index=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # In a sandbox: the id of the production object this one was copied from (or promoted to), so that promotion
    # changes that object in place (its runs and delivery history follow) and a rename is a rename. Not a foreign
    # key: production's object may be deleted while the sandbox keeps its copy.
    origin_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    workspace: Mapped[Workspace] = relationship()
    credential: Mapped[Credential] = relationship()


class Orchestration(Base):
    __tablename__ = "orchestrations"
    __table_args__ = (UniqueConstraint("workspace_id", "name"), _NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(127))
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id", ondelete="RESTRICT"), index=True)
    # duckdb::memory:, duckdb:PATH, env:VAR or a SQLAlchemy URL without a password.
    source: Mapped[str] = mapped_column(Text)
    sql: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # In a sandbox: the id of the production object this one was copied from (or promoted to), so that promotion
    # changes that object in place (its runs and delivery history follow) and a rename is a rename. Not a foreign
    # key: production's object may be deleted while the sandbox keeps its copy.
    origin_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    workspace: Mapped[Workspace] = relationship()
    destination: Mapped[Destination] = relationship()


class OrchestrationGroup(Base):
    __tablename__ = "orchestration_groups"
    __table_args__ = (UniqueConstraint("workspace_id", "name"), _NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(127))
    schedule: Mapped[str | None] = mapped_column(String(255))
    timezone: Mapped[str | None] = mapped_column(String(64))
    # The group's schedule and alert options, the keys an orchestration's options use for the same things
    # (offramp.core.orchestration_options.ScheduleOptions and AlertOptions): only the values the user set.
    options: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    # In a sandbox: the id of the production object this one was copied from (or promoted to), so that promotion
    # changes that object in place (its runs and delivery history follow) and a rename is a rename. Not a foreign
    # key: production's object may be deleted while the sandbox keeps its copy.
    origin_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    workspace: Mapped[Workspace] = relationship()
    members: Mapped[list[OrchestrationGroupMember]] = relationship(
        order_by="OrchestrationGroupMember.position", cascade="all, delete-orphan"
    )


class OrchestrationGroupMember(Base):
    __tablename__ = "orchestration_group_members"

    group_id: Mapped[int] = mapped_column(ForeignKey("orchestration_groups.id", ondelete="CASCADE"), primary_key=True)
    orchestration_id: Mapped[int] = mapped_column(
        ForeignKey("orchestrations.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)

    orchestration: Mapped[Orchestration] = relationship()


class Promotion(Base):
    """One promotion of a sandbox's changes to production (``offramp promotions list|show|revert``).

    ``diff`` is what changed, as ``offramp sandboxes diff --json`` shows it (secrets only as ``changed``);
    ``before``/``after`` hold, per changed object, its configuration before and after (snapshot entries, secrets
    only as fingerprints), so that a revert can rebuild the objects as they were.
    """

    __tablename__ = "promotions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    sandbox: Mapped[str] = mapped_column(String(63))  # a name: the sandbox may be deleted
    message: Mapped[str] = mapped_column(Text)
    revision_before: Mapped[int] = mapped_column(Integer)
    revision_after: Mapped[int] = mapped_column(Integer)
    diff: Mapped[dict[str, Any]] = mapped_column(default=dict)
    before: Mapped[dict[str, Any]] = mapped_column(default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Set on a promotion of a sandbox made by `offramp promotions revert`: the promotion it reverts.
    reverts: Mapped[int | None] = mapped_column(Integer)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Names, not foreign keys: the trail must outlive the objects it describes.
    workspace: Mapped[str | None] = mapped_column(String(63), index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(63))
    object_type: Mapped[str] = mapped_column(String(63))
    object_name: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"), index=True)
    orchestration_id: Mapped[int | None] = mapped_column(
        ForeignKey("orchestrations.id", ondelete="SET NULL"), index=True
    )
    orchestration_name: Mapped[str] = mapped_column(String(127))
    status: Mapped[str] = mapped_column(String(32), index=True)
    mode: Mapped[str] = mapped_column(String(16))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    # Raised by every takeover (--resume): a process whose generation is no longer the run's lost its lease and may
    # neither send nor write (offramp.core.runner.fencing).
    lease_generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    queried: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    # Events whose request was in flight when a run died, too long ago to resend (docs/reliability.md, item 13).
    unknown: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reason_counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    # vendor codes, warnings, unknown columns, request ids, seconds, hint, dry-run samples (never PII); and the
    # event counts by outcome (``events``): kept here rather than in columns of their own because they are only
    # read with the rest of the report (never filtered or summed across runs in SQL), so no migration of every
    # stored run is needed, and a run from before them simply has none (``runs show`` reads them from its ledger).
    report: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    # The group run this run is a member run of (offramp groups run, or a group's scheduled fire), or None.
    group_run_id: Mapped[str | None] = mapped_column(String(32), index=True)


class GroupRun(Base):
    """One run of an orchestration group: its members run in order, as one unit (``offramp groups run``).

    ``members`` is the plan and its progress, one item per member in order: ``{"orchestration": name,
    "orchestration_id": id, "run_id": id or null, "status": "pending" | a run status | "skipped", "reason": text or
    null}``. A live group run holds a lease like a run (``heartbeat_at``, ``lease_owner``, ``lease_generation``).
    """

    __tablename__ = "group_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("orchestration_groups.id", ondelete="SET NULL"), index=True)
    group_name: Mapped[str] = mapped_column(String(127))
    status: Mapped[str] = mapped_column(String(32), index=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    actor: Mapped[str | None] = mapped_column(String(255))
    # The scheduled instant this group run is the fire of (None: started by hand).
    fire_at: Mapped[datetime | None] = mapped_column()
    members: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class ScheduleFire(Base):
    """One fire of a schedule: claimed, then run or skipped (``offramp schedules list`` shows the last).

    The unique key (target, fire time) is the claim: of several schedulers that find the same fire due, the one
    whose insert commits runs it; the others' inserts fail and they move on. So each fire runs at most once, and a
    skipped fire is recorded once. ``run_id`` is the run or group run it started.
    """

    __tablename__ = "schedule_fires"
    __table_args__ = (UniqueConstraint("target_kind", "target_id", "fire_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"), index=True)
    target_kind: Mapped[str] = mapped_column(String(16))  # orchestration | group
    target_id: Mapped[int] = mapped_column(Integer)  # not a foreign key: the history outlives the object
    target_name: Mapped[str] = mapped_column(String(127))
    fire_at: Mapped[datetime] = mapped_column()
    # claimed | running | a final run status | skipped
    status: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(32))
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()


class ScheduleState(Base):
    """Where one schedule stands: the fires handled up to ``last_fire``, for the definition ``fingerprint`` (a
    changed cron, timezone or enabling starts afresh: nothing is caught up for it), and the freshness query's value
    at the last successful run (``--when-changed``)."""

    __tablename__ = "schedule_states"

    target_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    target_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"), index=True)
    fingerprint: Mapped[str] = mapped_column(Text)
    last_fire: Mapped[datetime | None] = mapped_column()
    freshness_value: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SchedulerInstance(Base):
    """A scheduler process (``offramp scheduler``), alive while its heartbeat is fresh: ``offramp status`` lists
    them, and on SQLite a second one is refused while the first is alive (naming its host and pid)."""

    __tablename__ = "scheduler_instances"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # host:pid:random
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column()


class AlertChannel(Base):
    """Where alert notices go: a signed webhook, a Slack incoming webhook or email (``offramp alerts channels``).

    Like credentials, channels are shared by reference with sandboxes (never copied, never promoted): an alert rule
    names a channel, found in the rule's workspace first and then in production. ``settings`` hold what is not
    secret (URL of a webhook, SMTP host, port, sender, recipients); ``secrets`` the Fernet ciphertext of what is (a
    Slack URL); ``credential_id`` the credential holding a webhook's signing secret or an SMTP login.
    """

    __tablename__ = "alert_channels"
    __table_args__ = (UniqueConstraint("workspace_id", "name"), _NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(127))
    type: Mapped[str] = mapped_column(String(16))  # webhook | slack | email
    credential_id: Mapped[int | None] = mapped_column(ForeignKey("credentials.id", ondelete="RESTRICT"), index=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    workspace: Mapped[Workspace] = relationship()
    credential: Mapped[Credential | None] = relationship()


class AlertStateRow(Base):
    """The alert state of one orchestration or group (offramp.core.alerts.rules.AlertState, as JSON)."""

    __tablename__ = "alert_states"

    target_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    target_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AlertDelivery(Base):
    """One notice to one channel: recorded ``pending`` before it is sent, then ``delivered`` or ``failed`` (with
    the attempts and the error, never a secret). ``offramp status`` shows the last day's."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    workspace: Mapped[str] = mapped_column(String(63), index=True)  # names: the trail outlives the objects
    channel: Mapped[str] = mapped_column(String(127))
    channel_type: Mapped[str] = mapped_column(String(16))
    target_kind: Mapped[str | None] = mapped_column(String(16))
    target_name: Mapped[str | None] = mapped_column(String(127))
    run_id: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))  # the notice's kind: failure, recovery, test ...
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    notice: Mapped[dict[str, Any]] = mapped_column(default=dict)  # Notice.as_json(): no secret, no raw value
    delivered_at: Mapped[datetime | None] = mapped_column()


class RowOutcome(Base):
    __tablename__ = "row_outcomes"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    reason_code: Mapped[str | None] = mapped_column(String(64))
    vendor_code: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    batch: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    rows: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # source rows (line items)
    request_id: Mapped[str | None] = mapped_column(String(64))  # the vendor's id of the settling request


class LedgerBatch(Base):
    """A settled batch of a run's events that share one outcome: one row, its events' ledger keys as one blob.

    Events the vendor accepted (or a dry run would send), and events skipped whole (mode ``new``, a replay), are
    recorded this way: one row per batch instead of one per event (offramp.core.runner.ledger, "Two shapes"). Rejected,
    failed and unknown events, each with its own reason and message, stay one ``row_outcomes`` row each.
    """

    __tablename__ = "ledger_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # sent | skipped
    reason_code: Mapped[str | None] = mapped_column(String(64))  # skipped: already_delivered ...
    message: Mapped[str | None] = mapped_column(Text)  # a dry run's "dry run: not sent"
    events: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)  # source rows (line items) of those events
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    batch: Mapped[int | None] = mapped_column(Integer)  # the run's batch number
    request_id: Mapped[str | None] = mapped_column(String(64))  # the vendor's id of the settling request
    keys: Mapped[bytes] = mapped_column(LargeBinary)  # the events' ledger keys and rows (runner.packed_keys)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class EventWarning(Base):
    """The warnings of one event of a run (``runs show --warnings``): the ledger key of its id and the warning
    names (``invalid_phone``), never a value. Written with the event's ledger entry, in the same transaction."""

    __tablename__ = "run_warnings"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)  # ledger.key of the event id
    warnings: Mapped[str] = mapped_column(Text)  # the distinct warning names, comma-separated, sorted


class InFlightRequest(Base):
    """One request of a run, recorded before it is sent: which events it carries, and whether its answer was
    recorded. The events of an unsettled request of a dead run may be at the vendor without being in the ledger."""

    __tablename__ = "run_requests"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    request_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The ledger keys of the request's events, as a JSON list (one row per request, not per event).
    event_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    settled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


__all__ = [
    "AlertChannel",
    "AlertDelivery",
    "AlertStateRow",
    "AuditEvent",
    "Base",
    "Credential",
    "Destination",
    "EventWarning",
    "GroupRun",
    "InFlightRequest",
    "LedgerBatch",
    "Orchestration",
    "OrchestrationGroup",
    "OrchestrationGroupMember",
    "Promotion",
    "RowOutcome",
    "Run",
    "ScheduleFire",
    "ScheduleState",
    "SchedulerInstance",
    "Workspace",
    "utcnow",
]
