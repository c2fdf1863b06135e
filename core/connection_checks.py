"""The verdicts of a destination's connection test (`offramp destinations test`), step by step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["ok", "warning", "failed", "skipped", "fixed"]


@dataclass(frozen=True)
class CheckStep:
    """One step of a connection test: what was checked, the verdict, and what to do about it."""

    name: str
    verdict: Verdict
    detail: str


def has_failures(steps: list[CheckStep]) -> bool:
    """Whether any step failed (warnings do not count)."""
    return any(step.verdict == "failed" for step in steps)


__all__ = ["CheckStep", "Verdict", "has_failures"]
