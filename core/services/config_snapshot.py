"""A workspace's configuration as data: the snapshots that sandboxes diff, merge and promote.

A snapshot holds, per kind (``destination``, ``orchestration``, ``group``), each object as a flat entry of fields
(``name``, ``settings.advertiser_id``, ``options.mode``, ``sql`` ...), keyed by the object's **identity**:

- in production, its row id (``"12"``);
- in a sandbox, the id of the production object it was copied from (``origin_id``: the same key), or ``new-ID``
  for an object made in the sandbox.

So one object has one key in production, in a sandbox and in the sandbox's base, and a rename is a change of its
``name`` field. References to other objects are keys too (an orchestration's ``destination``, a group's
``orchestrations``); references to credentials are credential row ids (credentials are shared, never copied, so a
sandbox's destination refers to production's credential row itself). Secrets appear only as fingerprints (when the
value was last set), never as values or ciphertext: a changed fingerprint shows as ``changed``.

Credentials are not in the merge (they are shared by reference); ``credentials`` maps the ids the entries refer to
onto their names and workspaces, for display and for validation.

:class:`WorkspaceWriter` writes entries back into a workspace's rows: the one way sandboxes are created, pulled,
promoted and reverted, each write audited (which advances the workspace's revision).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.environment import DEFAULT_WORKSPACE
from offramp.core.errors import ConfigError
from offramp.core.services import audit
from offramp.core.services.context import Context
from offramp.core.state.models import (
    Credential,
    Destination,
    Orchestration,
    OrchestrationGroup,
    OrchestrationGroupMember,
    Workspace,
)

Entry = dict[str, Any]
Snapshot = dict[str, Any]  # {"destination": {key: Entry}, "orchestration": ..., "group": ..., "credentials": {...}}

# The merged kinds, in the order their additions and changes are written (what is referred to comes first);
# removals go in the reverse order.
KINDS: tuple[str, ...] = ("destination", "orchestration", "group")

# The fields whose values are keys of other objects: (kind, field) -> kind referred to. A group's ``orchestrations``
# is a list of keys; the others one key each.
REFERENCES: dict[tuple[str, str], str] = {
    ("destination", "credential"): "credential",
    ("orchestration", "destination"): "destination",
    ("group", "orchestrations"): "orchestration",
}

NEW_PREFIX = "new-"
SETTINGS_PREFIX = "settings."
SECRETS_PREFIX = "secrets."
OPTIONS_PREFIX = "options."

_MODELS: dict[str, type[Destination] | type[Orchestration] | type[OrchestrationGroup]] = {
    "destination": Destination,
    "orchestration": Orchestration,
    "group": OrchestrationGroup,
}


def is_production(workspace: Workspace) -> bool:
    """Whether ``workspace`` is production (every other workspace is a sandbox)."""
    return workspace.name == DEFAULT_WORKSPACE


def key_of(row: Destination | Orchestration | OrchestrationGroup, production: bool) -> str:
    """The identity key of a row (see the module's docstring)."""
    if production:
        return str(row.id)
    return str(row.origin_id) if row.origin_id is not None else f"{NEW_PREFIX}{row.id}"


def secret_fingerprint(record: Mapping[str, Any]) -> str:
    """What a snapshot holds of one secret: when it was last set. Never its value, never its ciphertext (which a
    key rotation rewrites without changing the secret)."""
    return str(record.get("changed_at") or "set")


def destination_entry(row: Destination) -> Entry:
    entry: Entry = {"name": row.name, "type": row.type, "credential": str(row.credential_id)}
    # In stored order (not sorted): a copy written back from an entry then exports exactly as the original.
    entry.update({f"{SETTINGS_PREFIX}{name}": value for name, value in row.settings.items()})
    entry.update({f"{SECRETS_PREFIX}{name}": secret_fingerprint(rec) for name, rec in sorted(row.secrets.items())})
    return entry


def orchestration_entry(row: Orchestration, destination_key: str) -> Entry:
    entry: Entry = {"name": row.name, "destination": destination_key, "source": row.source, "sql": row.sql}
    entry.update({f"{OPTIONS_PREFIX}{name}": value for name, value in row.options.items()})
    return entry


def group_entry(row: OrchestrationGroup, member_keys: list[str]) -> Entry:
    entry: Entry = {"name": row.name, "schedule": row.schedule, "timezone": row.timezone, "orchestrations": member_keys}
    # Its schedule and alert options, one field each, as an orchestration's: a diff names the option that changed.
    entry.update({f"{OPTIONS_PREFIX}{name}": value for name, value in (row.options or {}).items()})
    return entry


def _rows(session: Session, model: Any, workspace: Workspace) -> list[Any]:
    return list(session.scalars(select(model).where(model.workspace_id == workspace.id).order_by(model.id)))


def take_snapshot(session: Session, workspace: Workspace) -> Snapshot:
    """The configuration of ``workspace`` now, keyed as the module's docstring says."""
    production = is_production(workspace)
    destinations = _rows(session, Destination, workspace)
    orchestrations = _rows(session, Orchestration, workspace)
    groups = _rows(session, OrchestrationGroup, workspace)
    destination_keys = {row.id: key_of(row, production) for row in destinations}
    orchestration_keys = {row.id: key_of(row, production) for row in orchestrations}
    snapshot: Snapshot = {
        "destination": {destination_keys[row.id]: destination_entry(row) for row in destinations},
        "orchestration": {
            orchestration_keys[row.id]: orchestration_entry(row, destination_keys[row.destination_id])
            for row in orchestrations
        },
        "group": {
            key_of(row, production): group_entry(row, [orchestration_keys[m.orchestration_id] for m in row.members])
            for row in groups
        },
    }
    credential_ids = sorted({int(entry["credential"]) for entry in snapshot["destination"].values()})
    credentials: dict[str, Any] = {}
    if credential_ids:
        query = select(Credential.id, Credential.name, Workspace.name).join(Workspace)
        for cid, name, ws in session.execute(query.where(Credential.id.in_(credential_ids))):
            credentials[str(cid)] = {"name": name, "workspace": ws}
    snapshot["credentials"] = credentials
    return snapshot


def empty_snapshot() -> Snapshot:
    return {kind: {} for kind in KINDS} | {"credentials": {}}


def entry_name(snapshot: Snapshot, kind: str, key: str) -> str:
    """The name of the object ``key`` of ``kind`` in ``snapshot`` (for a credential, from its name map)."""
    if kind == "credential":
        found = snapshot.get("credentials", {}).get(key)
        return str(found["name"]) if found else f"credential #{key}"
    entry = snapshot.get(kind, {}).get(key)
    return str(entry["name"]) if entry else f"{kind} #{key}"


@dataclass
class WorkspaceWriter:
    """Writes snapshot entries into the rows of one workspace, each write audited.

    Keys are the module's identity keys. Writing an entry whose key has no row here adds one (in a sandbox, with
    ``origin_id`` set from the key unless it is a ``new-`` key); ``added`` maps each such key onto its new row, so
    references to it within the same write resolve. References to keys that exist nowhere raise ConfigError: the
    caller validates first (``offramp sandboxes validate``), so this is a guard, not the check.

    Args:
        session: The transaction.
        ctx: Who acts (the audit's actor).
        workspace: The workspace written to.
        details: Added to every audit event (``{"promotion": 4, "message": ...}``, ``{"pulled": true}``).
    """

    session: Session
    ctx: Context
    workspace: Workspace
    details: dict[str, Any] = field(default_factory=dict)
    added: dict[tuple[str, str], Any] = field(default_factory=dict)
    _rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Rows moved out of the way of a name another object takes (a swap of names, a remove and add of one name):
    # (kind, key) -> the row's entry before; each is written or removed later in the same write (see `done`).
    _parked: dict[tuple[str, str], Entry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        production = is_production(self.workspace)
        for kind, model in _MODELS.items():
            self._rows[kind] = {key_of(row, production): row for row in _rows(self.session, model, self.workspace)}

    def keys(self, kind: str) -> list[str]:
        """The keys of this workspace's objects of ``kind`` (a copy: removing while iterating is fine)."""
        return list(self._rows[kind])

    def row(self, kind: str, key: str) -> Any | None:
        """The row of ``key`` in this workspace (or added by this writer), or None."""
        return self._rows[kind].get(key)

    def secrets_of(self, kind: str, key: str) -> dict[str, Any] | None:
        """The stored secret records (ciphertext) of the destination ``key`` here, to copy with its entry."""
        row = self._rows[kind].get(key)
        return dict(row.secrets) if kind == "destination" and row is not None else None

    def _referred(self, kind: str, key: str, by: str) -> Any:
        if kind == "credential":
            found = self.session.get(Credential, int(key)) if key.isdigit() else None
        else:
            found = self._rows[kind].get(key)
        if found is None:
            raise ConfigError(
                f"{by} refers to a {kind} that does not exist in workspace {self.workspace.name!r}",
                hint="nothing was changed",
            )
        return found

    def put(self, kind: str, key: str, entry: Entry, secrets: Mapping[str, Any] | None = None) -> tuple[Any, list[str]]:
        """Make the object ``key`` match ``entry`` (adding it if it is not here); return the row and the fields that
        changed (every field for an added object). ``secrets`` are the stored records (ciphertext) to give the
        object, taken from the row the entry was read from; a secret whose fingerprint already matches is kept."""
        existing = self._rows[kind].get(key)
        is_new = existing is None
        name = str(entry["name"])
        by = f"{kind} {name!r}"
        before = self._parked.pop((kind, key), None) or (self.entry_of(kind, existing) if existing is not None else {})
        self._park_holder_of(kind, name, key)
        if kind == "destination":
            credential = self._referred("credential", str(entry["credential"]), by)
            settings = _prefixed(entry, SETTINGS_PREFIX)
            wanted = set(_prefixed(entry, SECRETS_PREFIX))
            kept = dict(existing.secrets) if existing is not None else {}
            records = {
                f: rec
                for f, rec in kept.items()
                if f in wanted and secret_fingerprint(rec) == entry[f"{SECRETS_PREFIX}{f}"]
            }
            for f in sorted(wanted - records.keys()):
                if secrets is None or f not in secrets:
                    raise ConfigError(
                        f"{by}: no stored value to copy for secret {f}",
                        hint="set it again with `offramp destinations update`",
                    )
                records[f] = dict(secrets[f])
            if existing is None:
                existing = Destination(workspace=self.workspace, name=name, type=entry["type"], credential=credential,
                                       settings=settings, secrets=records)  # fmt: skip
            else:
                existing.name, existing.credential, existing.settings, existing.secrets = (
                    name,
                    credential,
                    settings,
                    records,
                )
        elif kind == "orchestration":
            destination = self._referred("destination", str(entry["destination"]), by)
            options = _prefixed(entry, OPTIONS_PREFIX)
            if existing is None:
                existing = Orchestration(workspace=self.workspace, name=name, destination=destination,
                                         source=entry["source"], sql=entry["sql"], options=options)  # fmt: skip
            else:
                existing.name, existing.destination = name, destination
                existing.source, existing.sql, existing.options = entry["source"], entry["sql"], options
        else:
            members = [self._referred("orchestration", str(k), by) for k in entry.get("orchestrations", [])]
            if existing is None:
                existing = OrchestrationGroup(workspace=self.workspace, name=name)
            existing.name, existing.schedule, existing.timezone = name, entry.get("schedule"), entry.get("timezone")
            existing.options = _prefixed(entry, OPTIONS_PREFIX)
        if is_new:
            self.session.add(existing)
            if not is_production(self.workspace) and not key.startswith(NEW_PREFIX):
                existing.origin_id = int(key)
            self._rows[kind][key] = existing
            self.added[(kind, key)] = existing
        if isinstance(existing, OrchestrationGroup):
            existing.members.clear()
            self.session.flush()  # the old memberships go before the new ones (same primary keys) come
            existing.members.extend(
                OrchestrationGroupMember(orchestration=row, position=i) for i, row in enumerate(members)
            )
        self.session.flush()
        after = self.entry_of(kind, existing)
        changed = sorted(after) if is_new else changed_fields(before, after)
        if changed:
            self._audit("create" if is_new else "update", kind, name, {"fields": changed})
        return existing, changed

    def _park_holder_of(self, kind: str, name: str, key: str) -> None:
        """Move another object that holds ``name`` out of its way, under a name no user can give (``~``).

        Names are unique per workspace, and a write is a list of puts then removes: without this, giving an object
        the name another one gives up later in the same write (or that a removed one holds) would fail.
        """
        for other_key, row in self._rows[kind].items():
            if other_key != key and row.name == name and (kind, other_key) not in self._parked:
                self._parked[(kind, other_key)] = self.entry_of(kind, row)
                row.name = f"~{kind}-{row.id}"
                self.session.flush()

    def done(self) -> None:
        """Check every object moved out of the way was then written or removed (a guard: the merge plans so)."""
        if self._parked:
            names = ", ".join(f"{kind} {entry['name']!r}" for (kind, _), entry in self._parked.items())
            raise ConfigError(
                f"the change would leave {names} without its name in workspace {self.workspace.name!r}",
                hint="rename it in the sandbox, then try again; nothing was changed",
            )

    def remove(self, kind: str, key: str) -> str | None:
        """Delete the object ``key`` (its runs stay as history, as a command's delete leaves them); return its name
        (None when there is no such object)."""
        row = self._rows[kind].pop(key, None)
        if row is None:
            return None
        parked = self._parked.pop((kind, key), None)
        name = str(parked["name"]) if parked else str(row.name)
        self.session.delete(row)
        self.session.flush()
        self._audit("delete", kind, name, {})
        return name

    def entry_of(self, kind: str, row: Any) -> Entry:
        """The snapshot entry of one of this workspace's rows (keys as this workspace's snapshot has them)."""
        production = is_production(self.workspace)
        if kind == "destination":
            return destination_entry(row)
        if kind == "orchestration":
            return orchestration_entry(row, key_of(row.destination, production))
        return group_entry(row, [key_of(m.orchestration, production) for m in row.members])

    def _audit(self, action: str, kind: str, name: str, details: dict[str, Any]) -> None:
        audit.record(self.session, self.ctx.actor, action, kind, name, self.workspace.name, {**details, **self.details})


def changed_fields(before: Entry, after: Entry) -> list[str]:
    """The fields whose values differ between two entries of one object (absent and present count as different)."""
    missing = object()
    return sorted(f for f in {*before, *after} if before.get(f, missing) != after.get(f, missing))


def _prefixed(entry: Entry, prefix: str) -> dict[str, Any]:
    return {name.removeprefix(prefix): value for name, value in entry.items() if name.startswith(prefix)}


def referred_keys(kind: str, entry: Entry) -> Iterable[tuple[str, str]]:
    """(kind, key) of every object ``entry`` refers to."""
    for (owner, field_name), target in REFERENCES.items():
        if owner != kind or field_name not in entry:
            continue
        value = entry[field_name]
        for key in value if isinstance(value, list) else [value]:
            yield target, str(key)


__all__ = [
    "KINDS",
    "NEW_PREFIX",
    "OPTIONS_PREFIX",
    "REFERENCES",
    "SECRETS_PREFIX",
    "SETTINGS_PREFIX",
    "Entry",
    "Snapshot",
    "WorkspaceWriter",
    "changed_fields",
    "empty_snapshot",
    "entry_name",
    "is_production",
    "key_of",
    "referred_keys",
    "secret_fingerprint",
    "take_snapshot",
]
