"""Alerts: notices of a run's changes of state (:mod:`.notices`), the rules that decide them (:mod:`.rules`), and
the channels that deliver them (:mod:`.channels`: a signed webhook, Slack, email).

Nothing here touches the store or the CLI: callers keep each orchestration's or group's
:class:`~offramp.core.alerts.rules.AlertState`, call :func:`~offramp.core.alerts.rules.decide` after a run, and
hand its notices to the channels, recording each :class:`~offramp.core.alerts.channels.Delivery`.
"""

from __future__ import annotations

from offramp.core.alerts.channels import (
    Channel,
    Delivery,
    DeliveryPolicy,
    EmailChannel,
    SlackChannel,
    WebhookChannel,
    verify_signature,
)
from offramp.core.alerts.notices import Notice, NoticeKind, make_test_notice
from offramp.core.alerts.rules import AlertRules, AlertState, Decision, RunOutcome, decide

__all__ = [
    "AlertRules",
    "AlertState",
    "Channel",
    "Decision",
    "Delivery",
    "DeliveryPolicy",
    "EmailChannel",
    "Notice",
    "NoticeKind",
    "RunOutcome",
    "SlackChannel",
    "WebhookChannel",
    "decide",
    "make_test_notice",
    "verify_signature",
]
