"""Alert rules: one notice per change of state (offramp.core.alerts.rules lists the rules this file proves).

Each test feeds a sequence of run outcomes through ``decide``, carrying the state from one run to the next as the
scheduler will (through its JSON form, as the store will keep it), and checks the notices a user would receive.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import pytest

from offramp.core.alerts import AlertRules, AlertState, Notice, RunOutcome, decide
from offramp.core.errors import ConfigError


def run(number: int, status: str, **fields: Any) -> RunOutcome:
    values: dict[str, Any] = {"queried": 1000, "sent": 1000, "seconds": 60.0}
    values.update(fields)
    return RunOutcome(workspace="production", target="orders", run_id=f"run-{number}", status=status, **values)


def notices(rules: AlertRules, runs: Iterable[RunOutcome], state: AlertState | None = None) -> list[Notice]:
    """Every notice of a sequence of runs, the state stored as JSON between runs."""
    state = state or AlertState()
    sent: list[Notice] = []
    for outcome in runs:
        decision = decide(rules, state, outcome)
        sent.extend(decision.notices)
        state = AlertState.from_json(orjson.loads(orjson.dumps(decision.state.as_json())))
        assert state == decision.state
    return sent


def kinds(sent: list[Notice]) -> list[tuple[str, str | None]]:
    return [(notice.kind, notice.run_id) for notice in sent]


def test_a_schedule_failing_again_and_again_sends_one_failure_then_one_recovery() -> None:
    runs = [run(1, "succeeded"), run(2, "failed"), run(3, "failed"), run(4, "failed"), run(5, "succeeded")]
    runs.append(run(6, "succeeded"))
    sent = notices(AlertRules(), runs)
    assert kinds(sent) == [("failure", "run-2"), ("recovery", "run-5")]
    failure, recovery = sent
    assert failure.headline == "orchestration 'orders' failed"
    assert failure.command == "offramp runs show run-2"
    assert failure.status == "failed" and failure.workspace == "production"
    assert recovery.headline == "orchestration 'orders' recovered: run run-5 succeeded"


def test_failure_failure_recovery_gives_exactly_failure_and_recovery() -> None:
    sent = notices(AlertRules(), [run(1, "failed"), run(2, "failed"), run(3, "succeeded")])
    assert kinds(sent) == [("failure", "run-1"), ("recovery", "run-3")]


def test_a_second_failure_streak_alerts_again() -> None:
    runs = [run(1, "failed"), run(2, "succeeded"), run(3, "failed"), run(4, "succeeded")]
    assert [n.kind for n in notices(AlertRules(), runs)] == ["failure", "recovery", "failure", "recovery"]


def test_cancelled_interrupted_and_dry_runs_change_nothing() -> None:
    runs = [
        run(1, "failed"),
        run(2, "cancelled"),
        run(3, "interrupted"),
        run(4, "succeeded", dry_run=True),
        run(5, "running"),
        run(6, "failed"),
        run(7, "succeeded"),
    ]
    assert kinds(notices(AlertRules(), runs)) == [("failure", "run-1"), ("recovery", "run-7")]


def test_deciding_on_the_same_run_twice_sends_nothing_more() -> None:
    rules = AlertRules()
    first = decide(rules, AlertState(), run(1, "failed"))
    again = decide(rules, first.state, run(1, "failed"))
    assert len(first.notices) == 1 and again.notices == () and again.state == first.state
    # The same run ending another way (a failed run resumed to success) is a new outcome.
    resumed = decide(rules, first.state, run(1, "succeeded"))
    assert [n.kind for n in resumed.notices] == ["recovery"]


def test_partial_failure_alerts_once_and_recovers() -> None:
    rules = AlertRules(on_partial_failure=True)
    runs = [
        run(1, "succeeded"),
        run(2, "partially_failed", sent=990, failed=10),
        run(3, "partially_failed", sent=995, failed=5),
        run(4, "failed"),
        run(5, "partially_failed", sent=990, failed=10),
        run(6, "succeeded"),
    ]
    sent = notices(rules, runs)
    assert kinds(sent) == [
        ("partial_failure", "run-2"),
        ("failure", "run-4"),
        ("partial_failure", "run-5"),
        ("recovery", "run-6"),
    ]
    assert sent[0].headline == "orchestration 'orders' partially failed: 10 of 1,000 rows failed"


def test_partial_failure_is_off_by_default_and_then_no_recovery_follows_it() -> None:
    runs = [run(1, "partially_failed", failed=10), run(2, "succeeded")]
    assert notices(AlertRules(), runs) == []
    # But a failure, then a partial failure nobody asked about, then a success: the failure's recovery.
    runs = [run(1, "failed"), run(2, "partially_failed", failed=10), run(3, "succeeded")]
    assert kinds(notices(AlertRules(), runs)) == [("failure", "run-1"), ("recovery", "run-3")]


def test_recovery_can_be_switched_off_and_failure_too() -> None:
    runs = [run(1, "failed"), run(2, "succeeded")]
    assert kinds(notices(AlertRules(on_recovery=False), runs)) == [("failure", "run-1")]
    assert notices(AlertRules(on_failure=False), runs) == []  # no recovery without the alert it answers


def test_reject_rate_above_the_threshold_alerts_once_per_crossing() -> None:
    rules = AlertRules(reject_rate_above=0.05)
    runs = [
        run(1, "succeeded", rejected=50, sent=950),  # 5.0%: not above
        run(2, "succeeded", rejected=120, sent=880, reason_counts={"invalid_email": 100, "missing_phone": 20}),
        run(3, "succeeded", rejected=200, sent=800),  # still above: nothing more
        run(4, "succeeded", queried=0, sent=0),  # nothing read: not measured, still firing
        run(5, "succeeded", rejected=10, sent=990),  # back under: quietly ok
        run(6, "succeeded", rejected=80, sent=920),  # above again
    ]
    sent = notices(rules, runs)
    assert kinds(sent) == [("reject_rate", "run-2"), ("reject_rate", "run-6")]
    assert sent[0].headline == "orchestration 'orders' rejected 12.0% of its 1,000 rows (alert above 5.0%)"
    assert sent[0].reasons == (("invalid_email", 100), ("missing_phone", 20))
    assert sent[0].rows["rejected"] == 120


def test_runtime_above_the_threshold() -> None:
    rules = AlertRules(runtime_above=3600)
    runs = [run(1, "succeeded", seconds=3500), run(2, "succeeded", seconds=4320), run(3, "failed", seconds=4000)]
    runs += [run(4, "succeeded", seconds=600), run(5, "succeeded", seconds=7200)]
    sent = notices(rules, runs)
    assert kinds(sent) == [("runtime", "run-2"), ("failure", "run-3"), ("recovery", "run-4"), ("runtime", "run-5")]
    assert sent[0].headline == "orchestration 'orders' ran for 1 h 12 min (alert above 1 h)"


def test_row_count_drop_from_the_previous_succeeded_run() -> None:
    rules = AlertRules(row_count_drop_above=50)
    runs = [
        run(1, "succeeded", queried=1000),  # the first baseline: nothing to compare with
        run(2, "failed", queried=10),  # not a succeeded run: neither measured nor a baseline
        run(3, "succeeded", queried=600),  # 40% fewer than run 1
        run(4, "succeeded", queried=200),  # 67% fewer than run 3
        run(5, "succeeded", queried=150),  # 25% fewer than run 4: the drop is over
        run(6, "partially_failed", queried=10, failed=10),  # not measured
        run(7, "succeeded", queried=40),  # 73% fewer than run 5
    ]
    sent = [n for n in notices(rules, runs) if n.kind == "row_count_drop"]
    assert [n.run_id for n in sent] == ["run-4", "run-7"]
    assert sent[0].headline == (
        "orchestration 'orders' read 200 rows, 67% fewer than the 600 of its previous succeeded run (alert above 50%)"
    )


def test_a_credential_needing_reauthorization_alerts_once_with_the_command_that_fixes_it() -> None:
    runs = [
        run(1, "succeeded", credentials_needing_reauthorization=()),
        run(2, "failed", credentials_needing_reauthorization=("tiktok-main",), hint="the grant was revoked"),
        run(3, "failed", credentials_needing_reauthorization=("tiktok-main",)),
        run(4, "failed"),  # does not say: the rule keeps firing
        run(5, "succeeded", credentials_needing_reauthorization=()),
    ]
    sent = notices(AlertRules(), runs)
    assert kinds(sent) == [("failure", "run-2"), ("needs_reauthorization", "run-2"), ("recovery", "run-5")]
    notice = sent[1]
    assert notice.headline == "credential 'tiktok-main' of orchestration 'orders' needs re-authorizing"
    assert notice.hint == "re-authorize: offramp credentials authorize tiktok-main"
    assert [n.kind for n in notices(AlertRules(on_needs_reauthorization=False), runs)] == ["failure", "recovery"]


def test_a_rule_switched_on_while_its_condition_holds_alerts_on_the_next_run() -> None:
    slow = [run(1, "succeeded", seconds=5000), run(2, "succeeded", seconds=5000)]
    state = decide(AlertRules(), AlertState(), slow[0]).state
    assert "runtime" not in state.rules
    decision = decide(AlertRules(runtime_above=3600), state, slow[1])
    assert [n.kind for n in decision.notices] == ["runtime"]
    # Switched off, it forgets that it fired.
    assert "runtime" not in decide(AlertRules(), decision.state, run(3, "succeeded", seconds=5000)).state.rules


def test_groups_and_workspaces_appear_in_the_notice() -> None:
    outcome = RunOutcome(workspace="sandbox", target="nightly", target_type="group", run_id="g-1", status="failed")
    (notice,) = decide(AlertRules(), AlertState(), outcome).notices
    assert notice.headline == "group 'nightly' failed"
    assert notice.command == "offramp runs show g-1 -w sandbox"
    assert notice.subject() == "[offramp] sandbox: group 'nightly' failed"
    body = notice.as_json()
    assert body["target"] == {"type": "group", "name": "nightly"}
    assert body["run"] == {"id": "g-1", "status": "failed"}
    assert "Group:       nightly" in notice.text()


def test_a_run_with_several_changes_sends_them_in_rule_order() -> None:
    rules = AlertRules(reject_rate_above=0.1, runtime_above=10)
    outcome = run(1, "failed", rejected=500, credentials_needing_reauthorization=("tt",), seconds=20)
    assert [n.kind for n in decide(rules, AlertState(), outcome).notices] == [
        "failure",
        "reject_rate",
        "runtime",
        "needs_reauthorization",
    ]


def test_a_state_from_elsewhere_is_read_leniently() -> None:
    assert AlertState.from_json({}) == AlertState()
    odd = AlertState.from_json({"health": "exploded", "rules": {"runtime": "maybe", "reject_rate": "firing"}})
    assert odd.health == "ok" and dict(odd.rules) == {"reject_rate": "firing"}


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"reject_rate_above": 5}, "reject_rate_above"),
        ({"reject_rate_above": float("nan")}, "reject_rate_above"),
        ({"runtime_above": 0}, "runtime_above"),
        ({"row_count_drop_above": 100}, "row_count_drop_above"),
    ],
)
def test_rules_out_of_range_name_the_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        AlertRules(**settings)


def test_a_sandbox_notice_says_test_traffic_and_reads_back_from_its_json() -> None:
    from offramp.core.alerts.notices import notice_from_json

    outcome = RunOutcome(
        workspace="sb", target="orders", run_id="r1", status="failed", sandbox="sb", error="the vendor stopped",
        vendor_codes={"40001": 3}, credentials_needing_reauthorization=("tt",),
        credential_workspaces={"tt": "production"},
    )  # fmt: skip
    failure, reauth = decide(AlertRules(), AlertState(), outcome).notices
    assert failure.subject() == "[offramp] sb: sandbox sb (test traffic): orchestration 'orders' failed"
    assert "Traffic:" in failure.text() and "sandbox sb (test traffic)" in failure.text()
    assert (failure.error, failure.vendor_codes) == ("the vendor stopped", (("40001", 3),))
    assert reauth.hint == "re-authorize: offramp credentials authorize tt"
    again = notice_from_json(failure.as_json())
    assert again == failure and again.as_json() == failure.as_json()
