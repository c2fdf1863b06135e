"""What an alert says: one :class:`Notice` per change of state, rendered as JSON (webhook), a subject and plain text
(email, Slack).

A notice carries names, ids, counts and reason codes, and the hint and command offramp wrote itself: never a
secret, never a row's value, never a vendor's or a database's message (which may quote a row). So a notice can go
to a chat channel or a mailbox without leaking what the run sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from offramp.core.hints import offramp_command

NoticeKind = Literal[
    "failure",
    "partial_failure",
    "recovery",
    "reject_rate",
    "runtime",
    "row_count_drop",
    "needs_reauthorization",
    "test",
]
NOTICE_KINDS: tuple[NoticeKind, ...] = (
    "failure",
    "partial_failure",
    "recovery",
    "reject_rate",
    "runtime",
    "row_count_drop",
    "needs_reauthorization",
    "test",
)
# What a notice is about: an orchestration, a group, or (a test notice) the channel itself.
TargetType = Literal["orchestration", "group", "channel"]

# The body's "type" and "version": a receiver dispatches on them; a field added later does not change the version,
# a field removed or changed in meaning does.
NOTICE_TYPE = "offramp.alert"
NOTICE_VERSION = 1

ROW_COUNTS = ("queried", "sent", "rejected", "failed", "skipped", "unknown")

# How a kind reads in a subject when the notice has no headline of its own.
_KIND_WORDS: dict[NoticeKind, str] = {
    "failure": "failed",
    "partial_failure": "partially failed",
    "recovery": "recovered",
    "reject_rate": "reject rate above the alert's threshold",
    "runtime": "ran longer than the alert's threshold",
    "row_count_drop": "row count dropped",
    "needs_reauthorization": "a credential needs re-authorizing",
    "test": "test notice",
}


def _one_line(text: str) -> str:
    """``text`` on one line: names are validated elsewhere, but a subject or a header must never take a line break
    (it would inject a header)."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Notice:
    """One alert: what changed, on which orchestration or group, in which run.

    Args:
        kind: The change of state (``failure``, ``recovery``, ``reject_rate`` ... ``test``).
        workspace: The workspace of the orchestration or group.
        target: The orchestration's or the group's name.
        target_type: ``orchestration`` or ``group`` (``channel`` for a test notice).
        headline: One sentence saying what changed, written by offramp (``orchestration 'orders' failed``).
        run_id: The run (or group run) the change was seen in; None for a test notice.
        status: That run's status (``failed``, ``succeeded`` ...).
        rows: Source rows by outcome (``queried``, ``sent``, ``rejected``, ``failed``, ``skipped``, ``unknown``).
        events: Events by outcome (``prepared``, ``sent`` ...).
        reasons: The top reasons, as (reason code, rows), most rows first.
        hint: What to do next, as offramp wrote it for the run.
        command: The command that shows the run (``offramp runs show ID -w WORKSPACE``).
        error: Why the run failed, as the run stored it (offramp's own words, never a row's value).
        vendor_codes: The vendor's codes of the failed rows, as (code, rows), most rows first.
        sandbox: The sandbox's name when the workspace is a sandbox: its notices are about test traffic, and say
            so in the title (a sandbox's rules may page production's channels).
        id: Unique per notice and kept across delivery attempts, so a receiver can drop a retried duplicate.
        created_at: When the notice was made (UTC).
    """

    kind: NoticeKind
    workspace: str
    target: str
    target_type: TargetType = "orchestration"
    headline: str = ""
    run_id: str | None = None
    status: str | None = None
    rows: Mapping[str, int] = field(default_factory=dict)
    events: Mapping[str, int] = field(default_factory=dict)
    reasons: tuple[tuple[str, int], ...] = ()
    hint: str | None = None
    command: str | None = None
    error: str | None = None
    vendor_codes: tuple[tuple[str, int], ...] = ()
    sandbox: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def title(self) -> str:
        """The headline (or a default one built from the kind), marked as test traffic in a sandbox."""
        said = self.headline or f"{self.target_type} {self.target!r}: {_KIND_WORDS[self.kind]}"
        if self.sandbox is not None:
            said = f"{sandbox_mark(self.sandbox)}: {said}"
        return _one_line(said)

    def subject(self) -> str:
        """An email subject: ``[offramp] production: orchestration 'orders' failed``."""
        return _one_line(f"[offramp] {self.workspace}: {self.title}")

    def as_json(self) -> dict[str, Any]:
        """The webhook body (``docs``: the alert body's fields); JSON-serializable as is."""
        return {
            "type": NOTICE_TYPE,
            "version": NOTICE_VERSION,
            "id": self.id,
            "kind": self.kind,
            "headline": self.title,
            "workspace": self.workspace,
            "target": {"type": self.target_type, "name": self.target},
            "run": {"id": self.run_id, "status": self.status} if self.run_id is not None else None,
            "rows": dict(self.rows),
            "events": dict(self.events),
            "reasons": [{"code": code, "rows": rows} for code, rows in self.reasons],
            "hint": self.hint,
            "command": self.command,
            "error": self.error,
            "vendor_codes": [{"code": code, "rows": rows} for code, rows in self.vendor_codes],
            "sandbox": self.sandbox,
            "created_at": self.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        }

    def facts(self) -> list[tuple[str, str]]:
        """The notice's details as (label, value) lines, in reading order; what :meth:`text` and Slack show."""
        lines: list[tuple[str, str]] = [("Workspace", self.workspace), (self.target_type.capitalize(), self.target)]
        if self.sandbox is not None:
            lines.append(("Traffic", sandbox_mark(self.sandbox)))
        if self.run_id is not None:
            lines.append(("Run", f"{self.run_id} ({self.status})" if self.status else self.run_id))
        if self.rows:
            lines.append(("Rows", _counts(self.rows)))
        if self.events:
            lines.append(("Events", _counts(self.events)))
        if self.reasons:
            lines.append(("Top reasons", ", ".join(f"{code} ({rows:,} rows)" for code, rows in self.reasons)))
        if self.vendor_codes:
            lines.append(("Vendor codes", ", ".join(f"{code} ({rows:,} rows)" for code, rows in self.vendor_codes)))
        if self.error:
            lines.append(("Error", _one_line(self.error)))
        if self.hint:
            lines.append(("Hint", _one_line(self.hint)))
        if self.command:
            lines.append(("See the run", self.command))
        return lines

    def text(self) -> str:
        """Plain text for an email body or a Slack message: the headline, then one fact per line."""
        width = max(len(label) for label, _ in self.facts()) + 1
        body = "\n".join(f"{label + ':':<{width}} {value}" for label, value in self.facts())
        return f"{self.title}\n\n{body}\n"


def sandbox_mark(sandbox: str) -> str:
    """How a sandbox's notice says it is about test traffic."""
    return f"sandbox {sandbox} (test traffic)"


def notice_from_json(data: Mapping[str, Any]) -> Notice:
    """The notice :meth:`Notice.as_json` wrote (a delivery's stored notice, sent again by the retry of a delivery
    left pending); the same id, so a receiver can drop it if the first attempt did arrive."""
    kind = str(data["kind"])
    if kind not in NOTICE_KINDS:
        raise ValueError(f"not a notice kind: {kind!r}")
    target = dict(data.get("target") or {})
    target_type = str(target.get("type") or "orchestration")
    if target_type not in ("orchestration", "group", "channel"):
        raise ValueError(f"not a notice target type: {target_type!r}")
    run = data.get("run") or {}
    created = str(data.get("created_at") or "")
    sandbox = str(data["sandbox"]) if data.get("sandbox") else None
    headline = str(data.get("headline") or "")
    if sandbox is not None:
        # The stored headline is the title, marked already: unmarked here, as the title marks it again.
        headline = headline.removeprefix(f"{sandbox_mark(sandbox)}: ")
    return Notice(
        kind=kind,  # checked against NOTICE_KINDS above
        workspace=str(data["workspace"]),
        target=str(target.get("name") or ""),
        target_type=target_type,  # type: ignore[arg-type]  # checked above
        headline=headline,
        run_id=run.get("id"),
        status=run.get("status"),
        rows={str(k): int(v) for k, v in dict(data.get("rows") or {}).items()},
        events={str(k): int(v) for k, v in dict(data.get("events") or {}).items()},
        reasons=tuple((str(r["code"]), int(r["rows"])) for r in data.get("reasons") or []),
        hint=data.get("hint"),
        command=data.get("command"),
        error=data.get("error"),
        vendor_codes=tuple((str(r["code"]), int(r["rows"])) for r in data.get("vendor_codes") or []),
        sandbox=sandbox,
        id=str(data["id"]),
        created_at=datetime.fromisoformat(created.replace("Z", "+00:00")) if created else datetime.now(UTC),
    )


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {value:,}" for name, value in counts.items())


def top_reasons(reason_counts: Mapping[str, int], limit: int = 5) -> tuple[tuple[str, int], ...]:
    """The ``limit`` reason codes with the most rows, most first (ties by code, so a notice reads the same twice)."""
    ranked = sorted(((code, rows) for code, rows in reason_counts.items() if rows > 0), key=lambda x: (-x[1], x[0]))
    return tuple(ranked[:limit])


def run_command(run_id: str, workspace: str) -> str:
    """The command that shows a run: ``offramp runs show ID`` (with ``-w WORKSPACE`` outside the default one)."""
    return offramp_command("runs", "show", run_id, workspace=workspace)


def make_test_notice(workspace: str, channel: str) -> Notice:
    """The notice ``offramp alerts test CHANNEL`` sends: it names the channel, and no run."""
    return Notice(
        kind="test",
        workspace=workspace,
        target=channel,
        target_type="channel",
        headline=f"test notice from offramp for alert channel {channel!r}",
        hint="nothing to do: this notice shows that the channel delivers",
    )


__all__ = [
    "NOTICE_KINDS",
    "NOTICE_TYPE",
    "NOTICE_VERSION",
    "ROW_COUNTS",
    "Notice",
    "NoticeKind",
    "TargetType",
    "make_test_notice",
    "notice_from_json",
    "run_command",
    "sandbox_mark",
    "top_reasons",
]
