"""A sandbox's merge as a document a reviewer reads: ``offramp sandboxes diff`` (text, JSON, YAML), the record a
promotion keeps.

:func:`diff_document` turns a :class:`~offramp.core.services.merge.Merge` into JSON-able data in which references
are names (never keys) and secrets are only ``set`` / ``changed`` / ``removed`` (never a fingerprint, never a
value). :func:`render_text` writes it for a terminal and a pull request (SQL changes as fenced unified diffs);
:func:`render_yaml` as YAML.

A field in the document is ``{"field", "old", "new"}`` (``None`` where the object has no such field); a secret
field has ``"secret": "set" | "changed" | "removed"`` and ``old``/``new`` ``None``; an SQL change also has
``"diff"``, the unified diff text (labelled ``production`` → ``sandbox`` for a change to promote, ``base`` →
``production`` for an update to pull). A conflict's field is ``{"field", "base", "sandbox", "production"}``; for
``sql`` also ``sandbox_diff`` / ``production_diff`` (each side against the base); for a secret the sides are
``set`` / ``changed`` / ``unchanged`` / ``None`` and ``"secret": true``.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

import yaml

from offramp.core.hints import offramp_command
from offramp.core.services.config_io import LiteralDumper
from offramp.core.services.config_snapshot import REFERENCES, SECRETS_PREFIX, Snapshot
from offramp.core.services.merge import ABSENT, NAME_TAKEN, Conflict, FieldChange, Merge, ObjectChange

_SIGNS = {"add": "+", "change": "~", "remove": "-"}
_INDENT = "    "


def _name(kind: str, key: str, snapshots: tuple[Snapshot, ...]) -> str:
    for snapshot in snapshots:
        if kind == "credential":
            found = snapshot.get("credentials", {}).get(key)
        else:
            found = snapshot.get(kind, {}).get(key)
        if found:
            return str(found["name"])
    return f"{kind} #{key}"


def _value(kind: str, field: str, value: Any, snapshots: tuple[Snapshot, ...]) -> Any:
    """A field's value as the document shows it: references as names, ABSENT as None."""
    if value is ABSENT:
        return None
    target = REFERENCES.get((kind, field))
    if target is None or value is None:
        return value
    if isinstance(value, list):
        return [_name(target, str(k), snapshots) for k in value]
    return _name(target, str(value), snapshots)


def _secret_status(old: Any, new: Any) -> str:
    if old is ABSENT:
        return "set"
    if new is ABSENT:
        return "removed"
    return "changed"


def _field(kind: str, change: FieldChange, snapshots: tuple[Snapshot, ...], labels: tuple[str, str]) -> dict[str, Any]:
    if change.field.startswith(SECRETS_PREFIX):
        return {"field": change.field, "old": None, "new": None, "secret": _secret_status(change.old, change.new)}
    shown: dict[str, Any] = {
        "field": change.field,
        "old": _value(kind, change.field, change.old, snapshots),
        "new": _value(kind, change.field, change.new, snapshots),
    }
    if change.field == "sql" and isinstance(change.old, str) and isinstance(change.new, str):
        shown["diff"] = _unified(change.old, change.new, labels)
    return shown


def _unified(old: str, new: str, labels: tuple[str, str]) -> str:
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), fromfile=labels[0], tofile=labels[1], lineterm="")
    return "\n".join(lines) + "\n"


def _object(change: ObjectChange, snapshots: tuple[Snapshot, ...], labels: tuple[str, str]) -> dict[str, Any]:
    return {
        "action": change.action,
        "kind": change.kind,
        "name": change.name,
        "old_name": change.old_name,
        "fields": [_field(change.kind, f, snapshots, labels) for f in change.fields],
    }


def _conflict_side(field: str, base: Any, value: Any) -> Any:
    # A secret's side says only whether it differs from the base.
    if value is ABSENT:
        return None
    if base is ABSENT:
        return "set"
    return "changed" if value != base else "unchanged"


def _conflict(conflict: Conflict, base: Snapshot, sandbox: Snapshot, production: Snapshot) -> dict[str, Any]:
    fields = []
    for f in conflict.fields:
        if f.field.startswith(SECRETS_PREFIX):
            fields.append(
                {
                    "field": f.field,
                    "base": None if f.base is ABSENT else "set",
                    "sandbox": _conflict_side(f.field, f.base, f.sandbox),
                    "production": _conflict_side(f.field, f.base, f.production),
                    "secret": True,
                }
            )
            continue
        shown = {
            "field": f.field,
            "base": _value(conflict.kind, f.field, f.base, (base, production, sandbox)),
            "sandbox": _value(conflict.kind, f.field, f.sandbox, (sandbox, base, production)),
            "production": _value(conflict.kind, f.field, f.production, (production, base, sandbox)),
        }
        if f.field == "sql":
            # Each side's SQL against the base: three whole queries on one line would not be readable.
            old = f.base if isinstance(f.base, str) else ""
            for side, value in (("sandbox", f.sandbox), ("production", f.production)):
                if isinstance(value, str):
                    shown[f"{side}_diff"] = _unified(old, value, ("base", side))
        fields.append(shown)
    return {"kind": conflict.kind, "name": conflict.name, "reason": conflict.reason, "fields": fields}


def diff_document(
    merge: Merge,
    base: Snapshot,
    sandbox: Snapshot,
    production: Snapshot,
    *,
    sandbox_name: str,
    base_revision: int,
    production_revision: int,
) -> dict[str, Any]:
    """The merge as JSON-able data::

        {"sandbox", "base_revision", "production_revision",
         "changes": [{"action", "kind", "name", "old_name", "fields": [{"field", "old", "new", ...}]}],
         "updates_to_pull": N, "updates": [same shape], "conflicts": [{"kind", "name", "reason", "fields":
         [{"field", "base", "sandbox", "production"}]}]}

    References are resolved to names through the sandbox (then base, production) for changes, through production
    (then base, sandbox) for updates.
    """
    for_changes = (sandbox, base, production)
    for_updates = (production, base, sandbox)
    return {
        "sandbox": sandbox_name,
        "base_revision": base_revision,
        "production_revision": production_revision,
        "changes": [_object(c, for_changes, ("production", "sandbox")) for c in merge.changes],
        "updates_to_pull": len(merge.updates),
        "updates": [_object(c, for_updates, ("base", "production")) for c in merge.updates],
        "conflicts": [_conflict(c, base, sandbox, production) for c in merge.conflicts],
    }


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    return json.dumps(value, ensure_ascii=False, default=str)


def _side_shown(field: dict[str, Any], side: str) -> str:
    # A secret's sides are words already (set / changed / unchanged), never values.
    if field.get("secret"):
        return str(field[side] or "(none)")
    return _shown(field[side])


def _block(lines: list[str], language: str, text: str, indent: str) -> None:
    lines.append(f"{indent}```{language}")
    lines.extend(f"{indent}{line}" if line else "" for line in text.rstrip("\n").split("\n"))
    lines.append(f"{indent}```")


def _object_lines(obj: dict[str, Any]) -> list[str]:
    heading = f"{_SIGNS.get(obj['action'], '?')} {obj['kind']} {obj['name']}"
    if obj.get("old_name"):
        heading += f" (renamed from {obj['old_name']})"
    lines = [heading]
    if obj["action"] == "remove":
        return lines
    for f in obj["fields"]:
        if obj["action"] == "change" and f["field"] == "name":
            continue  # the heading says it
        if obj["action"] == "add" and f["field"] == "name":
            continue
        if "secret" in f:
            lines.append(f"{_INDENT}{f['field']}: {f['secret']}")
        elif "diff" in f:
            lines.append(f"{_INDENT}{f['field']}:")
            _block(lines, "diff", f["diff"], _INDENT)
        elif isinstance(f["new"], str) and "\n" in f["new"] and obj["action"] == "add":
            lines.append(f"{_INDENT}{f['field']}:")
            _block(lines, "sql" if f["field"] == "sql" else "", f["new"], _INDENT)
        elif obj["action"] == "add":
            lines.append(f"{_INDENT}{f['field']}: {_shown(f['new'])}")
        else:
            lines.append(f"{_INDENT}{f['field']}: {_shown(f['old'])} → {_shown(f['new'])}")
    return lines


def conflict_lines(document: dict[str, Any]) -> list[str]:
    """Each conflict of the document, field by field, with the commands that resolve it (empty: none)."""
    name = document["sandbox"]
    lines: list[str] = []
    for conflict in document["conflicts"]:
        lines += ["", f"! {conflict['kind']} {conflict['name']}: {conflict['reason']}"]
        for f in conflict["fields"]:
            if "sandbox_diff" in f or "production_diff" in f:
                lines.append(f"{_INDENT}{f['field']}:")
                for side in ("sandbox", "production"):
                    if f"{side}_diff" in f:
                        _block(lines, "diff", f[f"{side}_diff"], _INDENT)
                    else:
                        lines.append(f"{_INDENT}{side}: {_shown(f[side])}")
                continue
            sides = ", ".join(f"{side} {_side_shown(f, side)}" for side in ("base", "sandbox", "production"))
            lines.append(f"{_INDENT}{f['field']}: {sides}")
        if str(conflict["reason"]).startswith(NAME_TAKEN):
            continue  # no side to take: its reason says to rename in the sandbox and pull again
        target = f"{conflict['kind']}:{conflict['name']}"
        for label, side in (("keep production's", "production"), ("keep the sandbox's", "sandbox")):
            lines.append(f"{_INDENT}{label}: `{offramp_command('sandboxes', 'pull', name, '--take', side, target)}`")
    return lines


def render_text(document: dict[str, Any]) -> str:
    """The document for a terminal and a pull request: a heading, then the sections that have something."""
    name = document["sandbox"]
    lines = [
        f"Sandbox {name} → production (base revision {document['base_revision']}, "
        f"production revision {document['production_revision']})"
    ]
    changes, updates, conflicts = document["changes"], document.get("updates", []), document["conflicts"]
    if not changes and not document.get("updates_to_pull") and not conflicts:
        lines += ["", "No changes: the sandbox matches production."]
        return "\n".join(lines) + "\n"
    lines += ["", f"Changes to promote ({len(changes)})"]
    if not changes:
        lines.append(f"{_INDENT}(none)")
    for obj in changes:
        lines += ["", *_object_lines(obj)]
    if document.get("updates_to_pull"):
        lines += [
            "",
            f"Updates to pull ({document['updates_to_pull']}): run `offramp sandboxes pull {name}` before promoting",
        ]
        for obj in updates:
            lines += ["", *_object_lines(obj)]
    if conflicts:
        lines += [
            "",
            f"Conflicts ({len(conflicts)}): choose a side for each (all or nothing)",
            *conflict_lines(document),
        ]
    return "\n".join(lines) + "\n"


def render_yaml(document: dict[str, Any]) -> str:
    """The document as YAML (the same data as ``--json``)."""
    return yaml.dump(document, Dumper=LiteralDumper, sort_keys=False, allow_unicode=True, width=120)


__all__ = ["conflict_lines", "diff_document", "render_text", "render_yaml"]
