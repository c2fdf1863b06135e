"""A sandbox's merge as a document a reviewer reads: ``offramp sandboxes diff`` (text, JSON, YAML), the record a
promotion keeps.

:func:`diff_document` turns a :class:`~offramp.core.services.merge.Merge` into JSON-able data in which references
are names (never keys) and secrets are only ``set`` / ``changed`` / ``removed`` (never a fingerprint, never a
value). :func:`render_text` writes it as CommonMark that reads as plain text in a terminal and renders in a pull request
(a heading per object, a list item per field, SQL changes as fenced unified diffs); :func:`render_yaml` as YAML.

A field in the document is ``{"field", "old", "new"}`` (``None`` where the object has no such field); a secret
field has ``"secret": "set" | "changed" | "removed"`` and ``old``/``new`` ``None``; an SQL change also has
``"diff"``, the unified diff text (labelled ``production`` → ``sandbox`` for a change to promote, ``base`` →
``production`` for an update to pull). A conflict's field is ``{"field", "base", "sandbox", "production"}``; for
``sql`` also ``sandbox_diff`` / ``production_diff`` (each side against the base); for a secret the sides are
``set`` / ``changed`` / ``unchanged`` / ``None`` and ``"secret": true``. A reference to a credential of a sandbox
(not production's) is ``NAME (sandbox WORKSPACE)``: it can have the name of one of production's.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

import yaml

from offramp.core.environment import DEFAULT_WORKSPACE
from offramp.core.hints import offramp_command
from offramp.core.services.config_io import LiteralDumper
from offramp.core.services.config_snapshot import REFERENCES, SECRETS_PREFIX, Snapshot
from offramp.core.services.merge import ABSENT, NAME_TAKEN, Conflict, FieldChange, Merge, ObjectChange

_SIGNS = {"add": "+", "change": "~", "remove": "-"}
_EMPHASIS = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _name(kind: str, key: str, snapshots: tuple[Snapshot, ...]) -> str:
    for snapshot in snapshots:
        if kind == "credential":
            found = snapshot.get("credentials", {}).get(key)
            workspace = found.get("workspace") if found else None
            if found and workspace and workspace != DEFAULT_WORKSPACE:
                # A sandbox's own credential may have the name of one of production's: the reviewer must tell
                # which one a destination is bound to.
                return f"{found['name']} (sandbox {workspace})"
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


def _code(text: str) -> str:
    """``text`` as a Markdown code span: fenced by one backtick more than its longest run of them."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _shown(value: Any) -> str:
    """A value on one line, as code: a plain string as it is, a list item by item, anything else as JSON (so a
    string that would not survive a code span, with a line break or edge spaces, is quoted)."""
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return _code(value if value and value == value.strip() and value.isprintable() else json.dumps(value))
    if isinstance(value, list) and value and all(isinstance(v, str | int | float | bool) for v in value):
        return ", ".join(_shown(v) for v in value)
    return _code(json.dumps(value, ensure_ascii=False, default=str))


def _side_shown(field: dict[str, Any], side: str) -> str:
    # A secret's sides are words already (set / changed / unchanged), never values.
    if field.get("secret"):
        return str(field[side] or "(none)")
    return _shown(field[side])


def _text(words: str) -> str:
    """Names in Markdown text: an underscore that could start or end emphasis (not between two letters or digits,
    where CommonMark never reads it so) is escaped; names hold nothing else Markdown reads."""
    return _EMPHASIS.sub(r"\\_", words)


def _block(lines: list[str], language: str, text: str) -> None:
    # At column 0: indented, a fence is no fence (inside a list item it would need the item's exact indent).
    # Longer than any run of backticks that could close it (up to 3 spaces in, as a diff's context line is).
    fence = "`" * max([3, *(len(run) + 1 for run in re.findall(r"^ {0,3}(`{3,})", text, re.MULTILINE))])
    lines.append(f"{fence}{language}")
    lines.extend(text.rstrip("\n").split("\n"))
    lines.append(fence)


def _object_lines(obj: dict[str, Any]) -> list[str]:
    heading = f"### {_SIGNS.get(obj['action'], '?')} {obj['kind']} {_text(obj['name'])}"
    if obj.get("old_name"):
        heading += f" (renamed from {_text(obj['old_name'])})"
    lines = [heading]
    fields = [f for f in obj["fields"] if f["field"] != "name"]  # the heading says it
    if obj["action"] == "remove" or not fields:
        return lines
    lines.append("")
    for f in fields:
        if "secret" in f:
            lines.append(f"- {f['field']}: {f['secret']}")
        elif "diff" in f:
            lines.append(f"- {f['field']}:")
            _block(lines, "diff", f["diff"])
        elif obj["action"] == "add" and isinstance(f["new"], str) and (f["field"] == "sql" or "\n" in f["new"]):
            lines.append(f"- {f['field']}:")
            _block(lines, "sql" if f["field"] == "sql" else "", f["new"])
        elif obj["action"] == "add":
            lines.append(f"- {f['field']}: {_shown(f['new'])}")
        else:
            lines.append(f"- {f['field']}: {_shown(f['old'])} → {_shown(f['new'])}")
    return lines


def conflict_lines(document: dict[str, Any]) -> list[str]:
    """Each conflict of the document (after a blank line), field by field, with the commands that resolve it
    (empty: none). Markdown, as in :func:`render_text`: a heading, a list of fields, SQL as fenced diffs."""
    name = document["sandbox"]
    lines: list[str] = []
    for conflict in document["conflicts"]:
        lines += ["", f"### ! {conflict['kind']} {_text(conflict['name'])}: {conflict['reason']}", ""]
        for f in conflict["fields"]:
            if "sandbox_diff" in f or "production_diff" in f:
                for side, where in (("sandbox", "in the sandbox"), ("production", "in production")):
                    if f"{side}_diff" in f:
                        lines.append(f"- {f['field']} {where}, against the base:")
                        _block(lines, "diff", f[f"{side}_diff"])
                    else:
                        lines.append(f"- {f['field']} {where}: {_shown(f[side])}")
                continue
            sides = ", ".join(f"{side} {_side_shown(f, side)}" for side in ("base", "sandbox", "production"))
            lines.append(f"- {f['field']}: {sides}")
        if str(conflict["reason"]).startswith(NAME_TAKEN):
            continue  # no side to take: its reason says to rename in the sandbox and pull again
        # A paragraph between the two lists: without it, they would be one list of fields and commands.
        lines += ["", "Resolve it with one of:", ""]
        target = f"{conflict['kind']}:{conflict['name']}"
        for label, side in (("keep production's", "production"), ("keep the sandbox's", "sandbox")):
            lines.append(f"- {label}: {_code(offramp_command('sandboxes', 'pull', name, '--take', side, target))}")
    return lines


def render_text(document: dict[str, Any]) -> str:
    """The document for a terminal and a pull request, as CommonMark: a title, a section for each part that has
    something, a heading for each object, a list item for each field, SQL in fenced blocks."""
    name = document["sandbox"]
    lines = [
        f"# Sandbox {name} → production (base revision {document['base_revision']}, "
        f"production revision {document['production_revision']})"
    ]
    changes, updates, conflicts = document["changes"], document.get("updates", []), document["conflicts"]
    if not changes and not document.get("updates_to_pull") and not conflicts:
        lines += ["", "No changes: the sandbox matches production."]
        return "\n".join(lines) + "\n"
    lines += ["", f"## Changes to promote ({len(changes)})"]
    if not changes:
        lines += ["", "(none)"]
    for obj in changes:
        lines += ["", *_object_lines(obj)]
    if document.get("updates_to_pull"):
        pull = _code(offramp_command("sandboxes", "pull", name))
        lines += ["", f"## Updates to pull ({document['updates_to_pull']}): run {pull} before promoting"]
        for obj in updates:
            lines += ["", *_object_lines(obj)]
    if conflicts:
        lines += [
            "",
            f"## Conflicts ({len(conflicts)}): choose a side for each (all or nothing)",
            *conflict_lines(document),
        ]
    return "\n".join(lines) + "\n"


def render_yaml(document: dict[str, Any]) -> str:
    """The document as YAML (the same data as ``--json``)."""
    return yaml.dump(document, Dumper=LiteralDumper, sort_keys=False, allow_unicode=True, width=120)


__all__ = ["conflict_lines", "diff_document", "render_text", "render_yaml"]
