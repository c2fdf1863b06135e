"""The three-way merge of a sandbox with production: pure functions over snapshots (``config_snapshot``).

A sandbox's **changes** are what it did since its base (what promotion does to production); production's
**updates** are what production did since that base (what ``offramp sandboxes pull`` brings in). Both are lists of
:class:`ObjectChange`, computed by :func:`changes` from two snapshots of one workspace lineage: one object has one
key everywhere (see ``config_snapshot``), so an object present on one side only was added or removed, and a rename
is a change of its ``name`` field.

Conflicts are found field by field (:func:`three_way`): two sides changing different fields of one object merge;
both changing a field to the same value is agreement; only a field changed to different values conflicts. Removing
an object one side changed is a conflict, and so is adding, on both sides, an object of one kind and name.
:func:`pull_plan` turns the merge and a side chosen per conflict into the writes that bring production's updates
into the sandbox, never writing a reference to an object that would not exist.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from offramp.core.errors import ConfigError
from offramp.core.services.config_snapshot import KINDS, NEW_PREFIX, REFERENCES, Entry, Snapshot, referred_keys


class _Absent:
    """The value of a field an entry does not have (an added object's old values, a removed one's new values)."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        # One instance, so ``value is ABSENT`` holds after copying and pickling too.
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Absent, ())


ABSENT: Final[Any] = _Absent()

Side = Literal["production", "sandbox"]
SIDES: tuple[Side, ...] = ("production", "sandbox")

CHANGED_ON_BOTH = "changed on both sides"
REMOVED_IN_PRODUCTION = "removed in production, changed in the sandbox"
REMOVED_IN_SANDBOX = "changed in production, removed in the sandbox"
ADDED_ON_BOTH = "added on both sides with the same name"
REFERS_TO_REMOVED = "refers to an object removed in the sandbox"
STILL_USED = "removed in production, still used in the sandbox"
# Not resolved by choosing a side (either side keeps two objects of one name): the sandbox renames its object.
NAME_TAKEN = "named in the sandbox as production names another object: rename it in the sandbox and pull again"


@dataclass(frozen=True)
class FieldChange:
    """One field of one object, before and after (:data:`ABSENT` where the entry has no such field)."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ObjectChange:
    """What happened to one object between two snapshots.

    ``fields``: for an add every field (old ABSENT), for a remove every field (new ABSENT), for a change only the
    changed ones, in the entry's field order. ``name`` is the name after (before, for a remove); ``old_name`` is set
    when the object was renamed.
    """

    kind: str
    key: str
    action: Literal["add", "change", "remove"]
    name: str
    old_name: str | None
    fields: tuple[FieldChange, ...]
    before: Entry | None
    after: Entry | None


@dataclass(frozen=True)
class ConflictField:
    """A field's value in the base, the sandbox and production (ABSENT where the object has no such field)."""

    field: str
    base: Any
    sandbox: Any
    production: Any


@dataclass(frozen=True)
class Conflict:
    """An object the sandbox and production changed incompatibly; resolved by choosing a side for it.

    ``key`` is the object's key (production's, for a name clash, where ``sandbox_key`` is the sandbox's ``new-``
    key); ``name`` is the name the sandbox knows it by when it has it, else production's. ``reason`` is one of the
    module's reason strings; a :data:`STILL_USED` reason names the sandbox objects that use it.
    """

    kind: str
    key: str
    name: str
    reason: str
    fields: tuple[ConflictField, ...]
    sandbox_key: str | None = None


@dataclass(frozen=True)
class Merge:
    """``changes``: the sandbox against its base (what promotion does to production); ``updates``: production
    against the base (what a pull brings in); ``conflicts``: what a pull needs a side chosen for."""

    changes: list[ObjectChange]
    updates: list[ObjectChange]
    conflicts: list[Conflict]


@dataclass(frozen=True)
class PullPlan:
    """The writes that bring production's updates into a sandbox.

    ``writes``: (kind, key, entry) to write, ``None`` meaning remove: every write in KINDS order, then every remove
    in reverse KINDS order (what is referred to is written first and removed last). ``adopt``: (kind, sandbox
    ``new-`` key, production key) of name clashes: the sandbox's object becomes the copy of production's (its
    ``origin_id`` is set), to be done before the writes, which use production's key for it. ``unresolved``: the
    conflicts without a side in ``take``; when there are any, ``writes`` and ``adopt`` are empty (the pull is
    refused as a whole).
    """

    writes: list[tuple[str, str, Entry | None]]
    adopt: list[tuple[str, str, str]]
    unresolved: list[Conflict]


def _field_order(before: Entry, after: Entry) -> list[str]:
    return list(after) + [f for f in before if f not in after]


def changes(before: Snapshot, after: Snapshot) -> list[ObjectChange]:
    """What changed from ``before`` to ``after``, per object, ordered by KINDS then name.

    A key only in ``after`` (a sandbox's ``new-`` key, a production row added since) is an add; a key only in
    ``before`` a remove; a key in both with some field different a change.
    """
    found: list[ObjectChange] = []
    for kind in KINDS:
        old_entries: Mapping[str, Entry] = before.get(kind, {})
        new_entries: Mapping[str, Entry] = after.get(kind, {})
        for key in {*old_entries, *new_entries}:
            old, new = old_entries.get(key), new_entries.get(key)
            if old is None and new is not None:
                fields = tuple(FieldChange(f, ABSENT, v) for f, v in new.items())
                found.append(ObjectChange(kind, key, "add", str(new["name"]), None, fields, None, new))
            elif new is None and old is not None:
                fields = tuple(FieldChange(f, v, ABSENT) for f, v in old.items())
                found.append(ObjectChange(kind, key, "remove", str(old["name"]), None, fields, old, None))
            elif old is not None and new is not None:
                fields = tuple(
                    FieldChange(f, old.get(f, ABSENT), new.get(f, ABSENT))
                    for f in _field_order(old, new)
                    if old.get(f, ABSENT) != new.get(f, ABSENT)
                )
                if fields:
                    renamed = str(old["name"]) if old["name"] != new["name"] else None
                    found.append(ObjectChange(kind, key, "change", str(new["name"]), renamed, fields, old, new))
    found.sort(key=lambda c: (KINDS.index(c.kind), c.name, c.key))
    return found


def _entries(snapshot: Snapshot, kind: str) -> Mapping[str, Entry]:
    entries: Mapping[str, Entry] = snapshot.get(kind, {})
    return entries


def _keys_of(value: Any) -> list[str]:
    return [str(k) for k in value] if isinstance(value, list) else [str(value)]


def _reference_fields(kind: str) -> dict[str, str]:
    """field -> kind referred to, for the merged kinds only (credentials are shared, never merged)."""
    return {f: target for (owner, f), target in REFERENCES.items() if owner == kind and target in KINDS}


def three_way(base: Snapshot, sandbox: Snapshot, production: Snapshot) -> Merge:
    """The merge of ``sandbox`` and ``production``, both made from ``base``.

    Conflicts, per object:

    - changed on both sides: the fields changed on both sides to different values (same value: no conflict;
      different fields: no conflict);
    - removed on one side, changed on the other (with the changed fields); removed on both: no conflict;
    - a production add and a sandbox add of one kind and name (a name clash: ``key`` production's,
      ``sandbox_key`` the sandbox's);
    - a production update that refers to an object the sandbox removed (its reference fields);
    - a production remove of an object that the sandbox, after the merge, would still use;
    - an object the sandbox named (added or renamed) with a name production's updates give another object
      (:data:`NAME_TAKEN`: no side resolves it; the sandbox renames its object).
    """
    ours = changes(base, sandbox)
    theirs = changes(base, production)
    ours_by_key = {(c.kind, c.key): c for c in ours}
    theirs_by_key = {(c.kind, c.key): c for c in theirs}
    conflicts: list[Conflict] = []

    def name_of(kind: str, key: str) -> str:
        for snapshot in (sandbox, production, base):
            entry = _entries(snapshot, kind).get(key)
            if entry is not None:
                return str(entry["name"])
        return f"{kind} #{key}"

    for update in theirs:
        mine = ours_by_key.get((update.kind, update.key))
        if mine is None or (update.action == "remove" and mine.action == "remove"):
            continue
        name = name_of(update.kind, update.key)
        if update.action == "remove":
            fields = tuple(ConflictField(f.field, f.old, f.new, ABSENT) for f in mine.fields)
            conflicts.append(Conflict(update.kind, update.key, name, REMOVED_IN_PRODUCTION, fields))
        elif mine.action == "remove":
            fields = tuple(ConflictField(f.field, f.old, ABSENT, f.new) for f in update.fields)
            conflicts.append(Conflict(update.kind, update.key, name, REMOVED_IN_SANDBOX, fields))
        else:
            mine_new = {f.field: f.new for f in mine.fields}
            fields = tuple(
                ConflictField(f.field, f.old, mine_new[f.field], f.new)
                for f in update.fields
                if f.field in mine_new and mine_new[f.field] != f.new
            )
            if fields:
                conflicts.append(Conflict(update.kind, update.key, name, CHANGED_ON_BOTH, fields))

    # Name clashes: two new objects that production's unique names cannot both hold.
    sandbox_adds = {(c.kind, c.name): c for c in ours if c.action == "add" and c.key.startswith(NEW_PREFIX)}
    for update in theirs:
        mine = sandbox_adds.get((update.kind, update.name))
        if update.action != "add" or mine is None or mine.after is None or update.after is None:
            continue
        fields = tuple(
            ConflictField(f, ABSENT, mine.after.get(f, ABSENT), update.after.get(f, ABSENT))
            for f in _field_order(mine.after, update.after)
            if mine.after.get(f, ABSENT) != update.after.get(f, ABSENT)
        )
        conflicts.append(Conflict(update.kind, update.key, update.name, ADDED_ON_BOTH, fields, sandbox_key=mine.key))

    conflicted = {(c.kind, c.key) for c in conflicts}

    def removed_in_sandbox(kind: str, key: str) -> bool:
        return key in _entries(base, kind) and key not in _entries(sandbox, kind) and key in _entries(production, kind)

    # Production's updates that refer to what the sandbox removed: writing them would leave a dangling reference.
    for update in theirs:
        if update.action == "remove" or (update.kind, update.key) in conflicted:
            continue
        references = _reference_fields(update.kind)
        fields = tuple(
            ConflictField(
                f.field, f.old, _entries(sandbox, update.kind).get(update.key, {}).get(f.field, ABSENT), f.new
            )
            for f in update.fields
            if f.field in references
            and f.new is not ABSENT
            and any(removed_in_sandbox(references[f.field], k) for k in _keys_of(f.new))
        )
        if fields:
            name = name_of(update.kind, update.key)
            conflicts.append(Conflict(update.kind, update.key, name, REFERS_TO_REMOVED, fields))
            conflicted.add((update.kind, update.key))

    # Production's removes of objects the sandbox would still use once merged (a new orchestration on a removed
    # destination): removing them would leave the sandbox's reference dangling.
    for update in theirs:
        if update.action != "remove" or (update.kind, update.key) in conflicted:
            continue
        users = _users_after_merge(update.kind, update.key, sandbox, ours_by_key, theirs_by_key)
        if users:
            reason = f"{STILL_USED} (by {', '.join(users)})"
            conflicts.append(Conflict(update.kind, update.key, update.name, reason, ()))

    conflicts.extend(_name_clashes(sandbox, production, ours_by_key, theirs_by_key, conflicts))
    conflicts.sort(key=lambda c: (KINDS.index(c.kind), c.name, c.key))
    return Merge(ours, theirs, conflicts)


def _name_clashes(
    sandbox: Snapshot,
    production: Snapshot,
    ours: Mapping[tuple[str, str], ObjectChange],
    theirs: Mapping[tuple[str, str], ObjectChange],
    found: list[Conflict],
) -> list[Conflict]:
    """Objects the sandbox named (renamed or added) with a name that production's updates give another object:
    names are unique, so the pull could not write both. Clashes of two adds are already ``found``."""
    clashes = []
    paired = {(c.kind, k) for c in found if c.reason == ADDED_ON_BOTH for k in (c.key, c.sandbox_key)}
    for kind in KINDS:
        # Who has each name once production's updates are in (the sandbox's name where it named the object).
        holders: dict[str, list[str]] = {}
        for key in {*_entries(sandbox, kind), *_entries(production, kind)}:
            mine, update = ours.get((kind, key)), theirs.get((kind, key))
            entry = _entries(sandbox, kind).get(key)
            if entry is None:
                if update is None or update.action != "add":
                    continue  # the sandbox removed it (a conflict decides whether it comes back)
                entry = _entries(production, kind).get(key)  # production's add
            elif update is not None and update.action == "remove" and mine is None:
                continue  # production removed it and the sandbox did not touch it: it goes
            elif update is not None and update.old_name and not (mine is not None and mine.old_name):
                entry = _entries(production, kind).get(key)  # production's rename comes in
            if entry is not None and (kind, key) not in paired:
                holders.setdefault(str(entry["name"]), []).append(key)
        for name, keys in holders.items():
            if len(keys) < 2:
                continue
            for key in keys:
                mine = ours.get((kind, key))
                if mine is not None and mine.action in ("add", "change") and (mine.action == "add" or mine.old_name):
                    base_name = mine.old_name if mine.action == "change" else ABSENT
                    field = ConflictField(
                        "name", base_name, name, _entries(production, kind).get(key, {}).get("name", ABSENT)
                    )
                    clashes.append(Conflict(kind, key, name, NAME_TAKEN, (field,)))
    return clashes


def _users_after_merge(
    kind: str,
    key: str,
    sandbox: Snapshot,
    ours: Mapping[tuple[str, str], ObjectChange],
    theirs: Mapping[tuple[str, str], ObjectChange],
) -> list[str]:
    """The sandbox objects whose merged entries would still refer to ``key`` (as "orchestration 'x'")."""
    users = []
    for user_kind in KINDS:
        for field_name, target in _reference_fields(user_kind).items():
            if target != kind:
                continue
            for user_key, entry in _entries(sandbox, user_kind).items():
                if key not in _keys_of(entry.get(field_name, [])):
                    continue
                update = theirs.get((user_kind, user_key))
                mine = ours.get((user_kind, user_key))
                if update is not None and update.action == "remove" and mine is None:
                    continue  # production removed the user too, and the sandbox did not change it: it goes
                mine_fields = {f.field for f in mine.fields} if mine is not None else set()
                moved = update is not None and any(
                    f.field == field_name and key not in _keys_of(f.new if f.new is not ABSENT else [])
                    for f in update.fields
                )
                if moved and field_name not in mine_fields:
                    continue  # production's update of the user stops referring to it, and merges in
                users.append(f"{user_kind} {entry['name']!r}")
    return users


def _apply(entry: Entry, fields: Iterable[FieldChange], skip: Collection[str] = ()) -> Entry:
    merged = dict(entry)
    for f in fields:
        if f.field in skip:
            continue
        if f.new is ABSENT:
            merged.pop(f.field, None)
        else:
            merged[f.field] = f.new
    return merged


def _rekey(entry: Entry, kind: str, renames: Mapping[tuple[str, str], str]) -> Entry:
    """``entry`` with its references to renamed keys ((kind, old key) -> new key) rewritten."""
    result = dict(entry)
    for field_name, target in _reference_fields(kind).items():
        if field_name not in result:
            continue
        value = result[field_name]
        if isinstance(value, list):
            result[field_name] = [renames.get((target, str(k)), str(k)) for k in value]
        else:
            result[field_name] = renames.get((target, str(value)), str(value))
    return result


def pull_plan(
    base: Snapshot, sandbox: Snapshot, production: Snapshot, take: Mapping[tuple[str, str], Side]
) -> PullPlan:
    """The writes that make ``sandbox`` take in production's updates since ``base``.

    ``take`` maps a conflict's (kind, key) onto the side whose state wins. Without a conflict, an object production
    changed is written as the sandbox's entry with production's changed fields applied (for an object the sandbox
    did not change: production's entry); an object production added is written under production's key; one it
    removed and the sandbox did not change is removed.

    A side chosen for a conflict:

    - changed on both sides: "production": production's values for the conflicting fields; "sandbox": the
      sandbox's (production's other changed fields merge in either way);
    - removed on one side, changed on the other: the chosen side's state of the object (kept, restored from
      production, or removed);
    - name clash: the sandbox's object is adopted as the copy of production's (``adopt``); "production" also writes
      production's entry over it, "sandbox" keeps its fields. (Adopting rather than removing and re-adding keeps
      the sandbox's references to it valid and never has two objects of one name.)
    - refers to an object removed in the sandbox: "production": the update is applied and the object it refers to
      restored from production; "sandbox": the reference fields keep the sandbox's values (a production add is
      not brought in);
    - removed in production, still used in the sandbox: "sandbox" keeps it; "production" removes it, with the
      sandbox's orchestrations on it (a removed destination) and its group memberships.

    Whenever a chosen side's entry refers to an object the sandbox removed, that object is restored from
    production too, so nothing written refers to an object that would not exist.
    """
    merge = three_way(base, sandbox, production)
    unresolved = [c for c in merge.conflicts if c.reason == NAME_TAKEN or take.get((c.kind, c.key)) not in SIDES]
    if unresolved:
        return PullPlan([], [], unresolved)
    conflicts = {(c.kind, c.key): c for c in merge.conflicts}
    ours = {(c.kind, c.key) for c in merge.changes}

    adopt: list[tuple[str, str, str]] = []
    renames: dict[tuple[str, str], str] = {}
    for conflict in merge.conflicts:
        if conflict.reason == ADDED_ON_BOTH and conflict.sandbox_key is not None:
            adopt.append((conflict.kind, conflict.sandbox_key, conflict.key))
            renames[(conflict.kind, conflict.sandbox_key)] = conflict.key
    # The sandbox as it is once adopted objects carry production's keys: what the writes are compared with.
    current: dict[str, dict[str, Entry]] = {
        kind: {
            renames.get((kind, key), key): _rekey(entry, kind, renames)
            for key, entry in _entries(sandbox, kind).items()
        }
        for kind in KINDS
    }
    state = {kind: {key: dict(entry) for key, entry in entries.items()} for kind, entries in current.items()}
    purged: set[tuple[str, str]] = set()

    for update in merge.updates:
        entries = state[update.kind]
        found = conflicts.get((update.kind, update.key))
        side = take[(update.kind, update.key)] if found is not None else None
        prod_entry = _entries(production, update.kind).get(update.key)
        if found is None or (found.reason == REFERS_TO_REMOVED and side == "production"):
            if update.action == "add" and prod_entry is not None:
                entries[update.key] = dict(prod_entry)
            elif update.action == "remove":
                if (update.kind, update.key) not in ours:
                    entries.pop(update.key, None)
            elif update.key in entries:
                entries[update.key] = _apply(entries[update.key], update.fields)
        elif found.reason == REFERS_TO_REMOVED:  # the sandbox's references win
            if update.action == "change" and update.key in entries:
                entries[update.key] = _apply(entries[update.key], update.fields, {f.field for f in found.fields})
        elif found.reason == CHANGED_ON_BOTH:
            skip: set[str] = {f.field for f in found.fields} if side == "sandbox" else set()
            if update.key in entries:
                entries[update.key] = _apply(entries[update.key], update.fields, skip)
        elif found.reason in (REMOVED_IN_PRODUCTION, REMOVED_IN_SANDBOX):
            if side == "production":
                if prod_entry is None:
                    entries.pop(update.key, None)
                else:
                    entries[update.key] = dict(prod_entry)
        elif found.reason == ADDED_ON_BOTH:
            if side == "production" and prod_entry is not None:
                entries[update.key] = dict(prod_entry)
        elif found.reason.startswith(STILL_USED) and side == "production":
            entries.pop(update.key, None)
            purged.add((update.kind, update.key))

    _settle_references(state, production, purged)

    writes: list[tuple[str, str, Entry | None]] = []
    for kind in KINDS:
        for key, entry in sorted(state[kind].items(), key=lambda item: (str(item[1]["name"]), item[0])):
            if current[kind].get(key) != entry:
                writes.append((kind, key, entry))
    for kind in reversed(KINDS):
        for key in sorted(current[kind].keys() - state[kind].keys(), key=lambda k: (str(current[kind][k]["name"]), k)):
            writes.append((kind, key, None))
    return PullPlan(writes, adopt, [])


def _settle_references(state: dict[str, dict[str, Entry]], production: Snapshot, purged: set[tuple[str, str]]) -> None:
    """Make every reference in ``state`` resolve: an object removed (chosen "production" on a still-used conflict)
    takes its users along (group memberships dropped, orchestrations on a removed destination removed); one the
    sandbox removed that production has is restored from production."""
    changed = True
    while changed:
        changed = False
        for kind in KINDS:
            for key, entry in list(state[kind].items()):
                for target, target_key in referred_keys(kind, entry):
                    if target not in state or target_key in state[target]:
                        continue
                    if (target, target_key) in purged:
                        if kind == "group":
                            entry["orchestrations"] = [k for k in entry["orchestrations"] if k in state[target]]
                        else:
                            del state[kind][key]
                            purged.add((kind, key))
                        changed = True
                        break
                    restored = _entries(production, target).get(target_key)
                    if restored is not None:
                        state[target][target_key] = dict(restored)
                        changed = True


def find_object(candidates: Iterable[tuple[str, str, str]], text: str) -> tuple[str, str]:
    """The (kind, key) among ``candidates`` that ``text`` names.

    Args:
        candidates: (kind, key, name) of the objects to choose from (a merge's conflicts, say); repeats are fine.
        text: ``KIND:NAME``, ``KIND/NAME``, or a bare name when only one kind has an object of that name.

    Raises:
        ConfigError: nothing matches, or a bare name matches objects of several kinds; the message lists the
            candidates as ``KIND:NAME``.
    """
    unique = sorted(set(candidates), key=lambda c: (KINDS.index(c[0]) if c[0] in KINDS else len(KINDS), c[2], c[1]))
    kind: str | None = None
    name = text.strip()
    for separator in (":", "/"):
        prefix, found, rest = name.partition(separator)
        if found and prefix in KINDS:
            kind, name = prefix, rest
            break
    matches = [(k, key) for k, key, n in unique if n == name and (kind is None or k == kind)]
    listed = ", ".join(f"{k}:{n}" for k, _, n in unique) or "none"
    if not matches:
        raise ConfigError(
            f"no object {text!r} to choose among: {listed}",
            hint="name one of them as KIND:NAME (KIND: destination, orchestration or group)",
        )
    if len(matches) > 1:
        kinds = ", ".join(f"{k}:{name}" for k, _ in matches)
        raise ConfigError(f"{text!r} names more than one object: {kinds}", hint="name one of them as KIND:NAME")
    return matches[0]


__all__ = [
    "ABSENT",
    "ADDED_ON_BOTH",
    "CHANGED_ON_BOTH",
    "REFERS_TO_REMOVED",
    "REMOVED_IN_PRODUCTION",
    "NAME_TAKEN",
    "REMOVED_IN_SANDBOX",
    "SIDES",
    "STILL_USED",
    "Conflict",
    "ConflictField",
    "FieldChange",
    "Merge",
    "ObjectChange",
    "PullPlan",
    "Side",
    "changes",
    "find_object",
    "pull_plan",
    "three_way",
]
