"""The three-way merge of a sandbox with production: what promotion would do, what a pull brings in, and which
changes conflict (field by field), over hand-made snapshots."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from offramp.core.errors import ConfigError
from offramp.core.services.merge import (
    ABSENT,
    ADDED_ON_BOTH,
    CHANGED_ON_BOTH,
    NAME_TAKEN,
    REFERS_TO_REMOVED,
    REMOVED_IN_PRODUCTION,
    REMOVED_IN_SANDBOX,
    STILL_USED,
    ConflictField,
    FieldChange,
    changes,
    find_object,
    pull_plan,
    three_way,
)

SQL = "select email, order_id\nfrom orders\nwhere paid\n"


def destination(name: str = "tiktok", **fields: Any) -> dict[str, Any]:
    entry = {
        "name": name,
        "type": "tiktok",
        "credential": "1",
        "settings.advertiser_id": "111",
        "secrets.access_token": "2026-01-01T00:00:00",
    }
    entry.update(fields)
    return entry


def orchestration(name: str = "store-orders", dest: str = "10", **fields: Any) -> dict[str, Any]:
    entry = {"name": name, "destination": dest, "source": "warehouse", "sql": SQL, "options.mode": "upsert"}
    entry.update(fields)
    return entry


def group(name: str = "nightly", members: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    entry = {"name": name, "schedule": "0 2 * * *", "timezone": "UTC", "orchestrations": members or ["20"]}
    entry.update(fields)
    return entry


def snapshot(
    destinations: dict[str, dict[str, Any]] | None = None,
    orchestrations: dict[str, dict[str, Any]] | None = None,
    groups: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "destination": destinations if destinations is not None else {"10": destination()},
        "orchestration": orchestrations if orchestrations is not None else {"20": orchestration()},
        "group": groups if groups is not None else {"30": group()},
        "credentials": {"1": {"name": "tiktok-main", "workspace": "production"}},
    }


def edited(snap: dict[str, Any], kind: str, key: str, **fields: Any) -> dict[str, Any]:
    result = copy.deepcopy(snap)
    result[kind][key].update(fields)
    return result


def without(snap: dict[str, Any], kind: str, key: str) -> dict[str, Any]:
    result = copy.deepcopy(snap)
    del result[kind][key]
    return result


def with_entry(snap: dict[str, Any], kind: str, key: str, entry: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(snap)
    result[kind][key] = entry
    return result


BASE = snapshot()


# --- changes -------------------------------------------------------------------------------------------------


def test_identical_snapshots_have_no_changes():
    assert changes(BASE, copy.deepcopy(BASE)) == []


def test_a_change_lists_only_the_changed_fields_old_and_new():
    after = edited(BASE, "orchestration", "20", sql="select 1\n", **{"options.mode": "insert"})
    (change,) = changes(BASE, after)
    assert (change.kind, change.key, change.action, change.name, change.old_name) == (
        "orchestration",
        "20",
        "change",
        "store-orders",
        None,
    )
    assert change.fields == (FieldChange("sql", SQL, "select 1\n"), FieldChange("options.mode", "upsert", "insert"))
    assert change.before == BASE["orchestration"]["20"] and change.after == after["orchestration"]["20"]


def test_a_rename_is_a_change_of_the_name_field_with_the_old_name():
    (change,) = changes(BASE, edited(BASE, "group", "30", name="hourly"))
    assert change.action == "change" and change.name == "hourly" and change.old_name == "nightly"
    assert change.fields == (FieldChange("name", "nightly", "hourly"),)


def test_a_field_that_appears_or_disappears_is_old_or_new_absent():
    after = edited(BASE, "orchestration", "20", **{"options.batch_size": 500})
    del after["orchestration"]["20"]["options.mode"]
    (change,) = changes(BASE, after)
    assert set(change.fields) == {
        FieldChange("options.batch_size", ABSENT, 500),
        FieldChange("options.mode", "upsert", ABSENT),
    }


def test_an_add_carries_every_field_and_a_remove_every_field():
    after = with_entry(without(BASE, "group", "30"), "destination", "new-4", destination("test-pixel"))
    add, remove = changes(BASE, after)
    assert add.action == "add" and add.key == "new-4" and add.name == "test-pixel" and add.before is None
    assert add.fields[0] == FieldChange("name", ABSENT, "test-pixel")
    assert {f.field for f in add.fields} == set(destination())
    assert all(f.old is ABSENT for f in add.fields)
    assert remove.action == "remove" and remove.kind == "group" and remove.name == "nightly" and remove.after is None
    assert all(f.new is ABSENT for f in remove.fields) and len(remove.fields) == 4


def test_changes_are_ordered_by_kind_then_name():
    after = copy.deepcopy(BASE)
    after["group"]["new-1"] = group("a-group")
    after["orchestration"]["new-2"] = orchestration("zeta")
    after["orchestration"]["new-3"] = orchestration("alpha")
    after["destination"]["new-4"] = destination("omega")
    found = [(c.kind, c.name) for c in changes(BASE, after)]
    assert found == [
        ("destination", "omega"),
        ("orchestration", "alpha"),
        ("orchestration", "zeta"),
        ("group", "a-group"),
    ]


def test_absent_is_one_value_through_copies_and_pickling():
    assert copy.deepcopy(ABSENT) is ABSENT and pickle.loads(pickle.dumps(ABSENT)) is ABSENT
    assert not ABSENT and repr(ABSENT) == "ABSENT"


# --- three_way -----------------------------------------------------------------------------------------------


def test_changes_and_updates_are_each_side_against_the_base():
    sandbox = edited(BASE, "orchestration", "20", sql="select 1\n")
    production = edited(BASE, "group", "30", schedule="0 3 * * *")
    merge = three_way(BASE, sandbox, production)
    assert [(c.kind, c.key) for c in merge.changes] == [("orchestration", "20")]
    assert [(c.kind, c.key) for c in merge.updates] == [("group", "30")]
    assert merge.conflicts == []


def test_different_fields_of_one_object_merge_without_conflict():
    sandbox = edited(BASE, "orchestration", "20", sql="select 1\n")
    production = edited(BASE, "orchestration", "20", **{"options.mode": "insert"})
    assert three_way(BASE, sandbox, production).conflicts == []


def test_one_field_changed_to_the_same_value_on_both_sides_is_no_conflict():
    sandbox = edited(BASE, "orchestration", "20", sql="select 1\n")
    production = edited(BASE, "orchestration", "20", sql="select 1\n")
    assert three_way(BASE, sandbox, production).conflicts == []


def test_one_field_changed_to_different_values_conflicts_on_that_field_only():
    sandbox = edited(BASE, "orchestration", "20", sql="select 1\n", **{"options.mode": "insert"})
    production = edited(BASE, "orchestration", "20", sql="select 2\n", source="lake")
    (conflict,) = three_way(BASE, sandbox, production).conflicts
    assert (conflict.kind, conflict.key, conflict.name, conflict.reason) == (
        "orchestration",
        "20",
        "store-orders",
        CHANGED_ON_BOTH,
    )
    assert conflict.fields == (ConflictField("sql", SQL, "select 1\n", "select 2\n"),)
    assert conflict.sandbox_key is None


def test_renamed_differently_on_both_sides_conflicts_on_the_name():
    sandbox = edited(BASE, "group", "30", name="hourly")
    production = edited(BASE, "group", "30", name="daily")
    (conflict,) = three_way(BASE, sandbox, production).conflicts
    assert conflict.name == "hourly"  # the name the sandbox knows it by
    assert conflict.fields == (ConflictField("name", "nightly", "hourly", "daily"),)


def test_removed_in_production_and_changed_in_the_sandbox_conflicts_with_the_changed_fields():
    sandbox = edited(BASE, "group", "30", schedule="0 4 * * *")
    production = without(BASE, "group", "30")
    (conflict,) = three_way(BASE, sandbox, production).conflicts
    assert conflict.reason == REMOVED_IN_PRODUCTION and conflict.key == "30"
    assert conflict.fields == (ConflictField("schedule", "0 2 * * *", "0 4 * * *", ABSENT),)


def test_changed_in_production_and_removed_in_the_sandbox_conflicts():
    sandbox = without(BASE, "group", "30")
    production = edited(BASE, "group", "30", timezone="Europe/Paris")
    (conflict,) = three_way(BASE, sandbox, production).conflicts
    assert conflict.reason == REMOVED_IN_SANDBOX and conflict.name == "nightly"
    assert conflict.fields == (ConflictField("timezone", "UTC", ABSENT, "Europe/Paris"),)


def test_removed_on_both_sides_is_no_conflict():
    gone = without(BASE, "group", "30")
    merge = three_way(BASE, gone, copy.deepcopy(gone))
    assert merge.conflicts == [] and len(merge.changes) == len(merge.updates) == 1


def test_added_on_both_sides_with_one_name_is_a_name_clash():
    sandbox = with_entry(BASE, "destination", "new-7", destination("pixel-b", **{"settings.advertiser_id": "222"}))
    production = with_entry(BASE, "destination", "15", destination("pixel-b"))
    (conflict,) = three_way(BASE, sandbox, production).conflicts
    assert conflict.reason == ADDED_ON_BOTH
    assert (conflict.kind, conflict.key, conflict.sandbox_key, conflict.name) == (
        "destination",
        "15",
        "new-7",
        "pixel-b",
    )
    assert conflict.fields == (ConflictField("settings.advertiser_id", ABSENT, "222", "111"),)


def test_added_on_both_sides_with_different_names_or_kinds_is_no_conflict():
    sandbox = with_entry(BASE, "destination", "new-7", destination("pixel-b"))
    sandbox = with_entry(sandbox, "group", "new-8", group("pixel-c"))
    production = with_entry(BASE, "destination", "15", destination("pixel-c"))
    assert three_way(BASE, sandbox, production).conflicts == []


def test_a_production_update_referring_to_what_the_sandbox_removed_conflicts():
    base = snapshot(destinations={"10": destination(), "11": destination("legacy")})
    sandbox = without(base, "destination", "11")
    production = edited(base, "orchestration", "20", destination="11")
    (conflict,) = three_way(base, sandbox, production).conflicts
    assert conflict.reason == REFERS_TO_REMOVED and (conflict.kind, conflict.key) == ("orchestration", "20")
    assert conflict.fields == (ConflictField("destination", "10", "10", "11"),)


def test_a_production_add_referring_to_what_the_sandbox_removed_conflicts():
    base = snapshot(destinations={"10": destination(), "11": destination("legacy")})
    sandbox = without(base, "destination", "11")
    production = with_entry(base, "orchestration", "21", orchestration("refunds", dest="11"))
    (conflict,) = three_way(base, sandbox, production).conflicts
    assert conflict.reason == REFERS_TO_REMOVED and conflict.key == "21"
    assert conflict.fields == (ConflictField("destination", ABSENT, ABSENT, "11"),)


def test_removing_in_production_what_the_sandbox_still_uses_conflicts():
    base = snapshot(destinations={"10": destination(), "11": destination("legacy")})
    sandbox = with_entry(base, "orchestration", "new-5", orchestration("refunds", dest="11"))
    production = without(base, "destination", "11")
    (conflict,) = three_way(base, sandbox, production).conflicts
    assert conflict.reason.startswith(STILL_USED) and "orchestration 'refunds'" in conflict.reason
    assert (conflict.kind, conflict.key, conflict.name) == ("destination", "11", "legacy")


def test_removing_in_production_an_object_and_its_unchanged_users_is_no_conflict():
    production = without(without(without(BASE, "group", "30"), "orchestration", "20"), "destination", "10")
    assert three_way(BASE, copy.deepcopy(BASE), production).conflicts == []


def test_production_dropping_a_member_merges_with_a_sandbox_change_of_the_group():
    base = snapshot(
        orchestrations={"20": orchestration(), "21": orchestration("refunds")},
        groups={"30": group(members=["20", "21"])},
    )
    sandbox = edited(base, "group", "30", schedule="0 4 * * *")
    production = edited(without(base, "orchestration", "21"), "group", "30", orchestrations=["20"])
    assert three_way(base, sandbox, production).conflicts == []
    plan = pull_plan(base, sandbox, production, {})
    assert plan.writes == [
        ("group", "30", group(members=["20"], schedule="0 4 * * *")),
        ("orchestration", "21", None),
    ]


def test_a_sandbox_rename_to_a_name_production_added_is_a_conflict_no_side_resolves():
    sandbox = edited(BASE, "group", "30", name="hourly")
    production = with_entry(BASE, "group", "31", group("hourly"))
    (conflict,) = three_way(BASE, sandbox, production).conflicts
    assert (conflict.kind, conflict.key, conflict.reason) == ("group", "30", NAME_TAKEN)
    assert conflict.fields == (ConflictField("name", "nightly", "hourly", "nightly"),)
    for side in ("production", "sandbox"):
        plan = pull_plan(BASE, sandbox, production, {("group", "30"): side})
        assert plan.unresolved == [conflict] and plan.writes == []


def test_a_sandbox_add_named_as_production_renamed_another_object_is_a_conflict():
    sandbox = with_entry(BASE, "group", "new-3", group("hourly"))
    production = edited(BASE, "group", "30", name="hourly")
    (conflict,) = three_way(BASE, sandbox, production).conflicts
    assert (conflict.key, conflict.reason, conflict.name) == ("new-3", NAME_TAKEN, "hourly")


def test_names_swapped_in_production_are_no_clash():
    base = snapshot(groups={"30": group("a"), "31": group("b")})
    production = edited(edited(base, "group", "30", name="b"), "group", "31", name="a")
    sandbox = edited(base, "orchestration", "20", sql="select 1\n")
    assert three_way(base, sandbox, production).conflicts == []
    assert len(pull_plan(base, sandbox, production, {}).writes) == 2


def test_conflicts_are_ordered_by_kind_then_name():
    sandbox = edited(edited(BASE, "group", "30", schedule="a"), "destination", "10", **{"settings.advertiser_id": "2"})
    production = edited(
        edited(BASE, "group", "30", schedule="b"), "destination", "10", **{"settings.advertiser_id": "3"}
    )
    assert [c.kind for c in three_way(BASE, sandbox, production).conflicts] == ["destination", "group"]


# --- pull_plan -----------------------------------------------------------------------------------------------


def test_nothing_to_pull_writes_nothing():
    sandbox = edited(BASE, "orchestration", "20", sql="select 1\n")
    plan = pull_plan(BASE, sandbox, copy.deepcopy(BASE), {})
    assert plan.writes == [] and plan.adopt == [] and plan.unresolved == []


def test_an_object_only_production_changed_is_written_as_production_has_it():
    production = edited(BASE, "group", "30", schedule="0 5 * * *")
    plan = pull_plan(BASE, copy.deepcopy(BASE), production, {})
    assert plan.writes == [("group", "30", production["group"]["30"])] and plan.unresolved == [] and plan.adopt == []


def test_production_changes_are_applied_field_by_field_onto_the_sandbox_entry():
    sandbox = edited(BASE, "orchestration", "20", sql="select 1\n")
    production = edited(BASE, "orchestration", "20", **{"options.mode": "insert"})
    del production["orchestration"]["20"]["source"]
    plan = pull_plan(BASE, sandbox, production, {})
    ((kind, key, entry),) = plan.writes
    assert (kind, key) == ("orchestration", "20")
    assert entry is not None
    assert entry["sql"] == "select 1\n" and entry["options.mode"] == "insert" and "source" not in entry


def test_same_value_on_both_sides_needs_no_write():
    sandbox = edited(BASE, "orchestration", "20", sql="select 1\n")
    production = edited(BASE, "orchestration", "20", sql="select 1\n")
    assert pull_plan(BASE, sandbox, production, {}).writes == []


def test_a_production_add_is_written_under_production_key_and_a_remove_removed():
    base = snapshot(groups={"30": group(), "31": group("weekly")})
    production = with_entry(without(base, "group", "31"), "orchestration", "21", orchestration("refunds"))
    plan = pull_plan(base, copy.deepcopy(base), production, {})
    assert plan.writes == [("orchestration", "21", production["orchestration"]["21"]), ("group", "31", None)]


def test_writes_come_in_kinds_order_then_removes_in_reverse_order():
    base = snapshot(
        destinations={"10": destination(), "11": destination("old-pixel")},
        orchestrations={"20": orchestration(), "22": orchestration("old-orders", dest="11")},
        groups={"30": group(), "31": group("old-group", members=["22"])},
    )
    production = without(without(without(base, "group", "31"), "orchestration", "22"), "destination", "11")
    production = with_entry(production, "group", "32", group("hourly"))
    production = with_entry(production, "orchestration", "23", orchestration("refunds", dest="12"))
    production = with_entry(production, "destination", "12", destination("new-pixel"))
    plan = pull_plan(base, copy.deepcopy(base), production, {})
    assert [(kind, key, entry is None) for kind, key, entry in plan.writes] == [
        ("destination", "12", False),
        ("orchestration", "23", False),
        ("group", "32", False),
        ("group", "31", True),
        ("orchestration", "22", True),
        ("destination", "11", True),
    ]


def test_an_unresolved_conflict_refuses_the_whole_pull():
    sandbox = edited(BASE, "orchestration", "20", sql="select 1\n")
    production = edited(edited(BASE, "orchestration", "20", sql="select 2\n"), "group", "30", schedule="x")
    plan = pull_plan(BASE, sandbox, production, {})
    assert plan.writes == [] and plan.adopt == []
    assert [(c.kind, c.key) for c in plan.unresolved] == [("orchestration", "20")]


@pytest.mark.parametrize(("side", "sql"), [("production", "select 2\n"), ("sandbox", "select 1\n")])
def test_changed_on_both_sides_takes_the_chosen_side_for_the_conflicting_fields(side, sql):
    sandbox = edited(BASE, "orchestration", "20", sql="select 1\n", source="lake")
    production = edited(BASE, "orchestration", "20", sql="select 2\n", **{"options.mode": "insert"})
    plan = pull_plan(BASE, sandbox, production, {("orchestration", "20"): side})
    ((_, _, entry),) = plan.writes
    assert entry is not None
    # The conflicting field from the chosen side; the fields only one side changed merge either way.
    assert entry["sql"] == sql and entry["source"] == "lake" and entry["options.mode"] == "insert"


def test_removed_in_production_changed_in_the_sandbox_take_production_removes_it():
    sandbox = edited(BASE, "group", "30", schedule="0 4 * * *")
    production = without(BASE, "group", "30")
    assert pull_plan(BASE, sandbox, production, {("group", "30"): "production"}).writes == [("group", "30", None)]
    assert pull_plan(BASE, sandbox, production, {("group", "30"): "sandbox"}).writes == []


def test_changed_in_production_removed_in_the_sandbox_take_production_restores_it():
    sandbox = without(BASE, "group", "30")
    production = edited(BASE, "group", "30", timezone="Europe/Paris")
    plan = pull_plan(BASE, sandbox, production, {("group", "30"): "production"})
    assert plan.writes == [("group", "30", production["group"]["30"])]
    assert pull_plan(BASE, sandbox, production, {("group", "30"): "sandbox"}).writes == []


def test_restoring_an_object_restores_what_it_refers_to():
    # The sandbox removed the orchestration and its destination; production changed the orchestration.
    sandbox = without(without(BASE, "orchestration", "20"), "destination", "10")
    sandbox["group"]["30"]["orchestrations"] = []
    production = edited(BASE, "orchestration", "20", sql="select 2\n")
    plan = pull_plan(BASE, sandbox, production, {("orchestration", "20"): "production"})
    assert plan.unresolved == []
    assert plan.writes == [
        ("destination", "10", BASE["destination"]["10"]),
        ("orchestration", "20", production["orchestration"]["20"]),
    ]


def test_name_clash_take_sandbox_adopts_the_sandbox_object_with_its_fields():
    mine = orchestration("refunds", sql="select mine\n")
    sandbox = with_entry(BASE, "orchestration", "new-9", mine)
    sandbox["group"]["30"]["orchestrations"] = ["20", "new-9"]
    production = with_entry(BASE, "orchestration", "25", orchestration("refunds", sql="select theirs\n"))
    merge = three_way(BASE, sandbox, production)
    (conflict,) = merge.conflicts
    plan = pull_plan(BASE, sandbox, production, {("orchestration", "25"): "sandbox"})
    assert plan.adopt == [("orchestration", "new-9", "25")]
    # Nothing to write: the adopted object keeps its fields, and the group's reference to it is the same row.
    assert plan.writes == [] and plan.unresolved == []


def test_name_clash_take_production_adopts_and_writes_production_entry():
    sandbox = with_entry(BASE, "orchestration", "new-9", orchestration("refunds", sql="select mine\n"))
    production = with_entry(BASE, "orchestration", "25", orchestration("refunds", sql="select theirs\n"))
    plan = pull_plan(BASE, sandbox, production, {("orchestration", "25"): "production"})
    assert plan.adopt == [("orchestration", "new-9", "25")]
    assert plan.writes == [("orchestration", "25", production["orchestration"]["25"])]
    # Never a remove of the sandbox's object (its users would dangle) nor two objects named "refunds".
    assert all(entry is not None for _, _, entry in plan.writes)


def test_a_reference_to_what_the_sandbox_removed_is_never_written_unresolved():
    base = snapshot(destinations={"10": destination(), "11": destination("legacy")})
    sandbox = without(base, "destination", "11")
    production = edited(base, "orchestration", "20", destination="11", sql="select 2\n")
    plan = pull_plan(base, sandbox, production, {})
    assert plan.writes == [] and plan.unresolved[0].reason == REFERS_TO_REMOVED


def test_a_reference_to_what_the_sandbox_removed_take_sandbox_keeps_the_reference_and_merges_the_rest():
    base = snapshot(destinations={"10": destination(), "11": destination("legacy")})
    sandbox = without(base, "destination", "11")
    production = edited(base, "orchestration", "20", destination="11", sql="select 2\n")
    plan = pull_plan(base, sandbox, production, {("orchestration", "20"): "sandbox"})
    ((kind, key, entry),) = plan.writes
    assert entry is not None and entry["destination"] == "10" and entry["sql"] == "select 2\n"


def test_a_reference_to_what_the_sandbox_removed_take_production_restores_it_first():
    base = snapshot(destinations={"10": destination(), "11": destination("legacy")})
    sandbox = without(base, "destination", "11")
    production = edited(base, "orchestration", "20", destination="11")
    plan = pull_plan(base, sandbox, production, {("orchestration", "20"): "production"})
    assert plan.writes == [
        ("destination", "11", base["destination"]["11"]),
        ("orchestration", "20", production["orchestration"]["20"]),
    ]


def test_a_production_add_referring_to_what_the_sandbox_removed_take_sandbox_is_not_brought_in():
    base = snapshot(destinations={"10": destination(), "11": destination("legacy")})
    sandbox = without(base, "destination", "11")
    production = with_entry(base, "orchestration", "21", orchestration("refunds", dest="11"))
    assert pull_plan(base, sandbox, production, {("orchestration", "21"): "sandbox"}).writes == []


def test_still_used_take_sandbox_keeps_it_and_take_production_removes_it_with_its_users():
    base = snapshot(destinations={"10": destination(), "11": destination("legacy")})
    sandbox = with_entry(base, "orchestration", "new-5", orchestration("refunds", dest="11"))
    sandbox["group"]["30"]["orchestrations"] = ["20", "new-5"]
    production = without(base, "destination", "11")
    assert pull_plan(base, sandbox, production, {("destination", "11"): "sandbox"}).writes == []
    plan = pull_plan(base, sandbox, production, {("destination", "11"): "production"})
    assert plan.writes == [
        ("group", "30", group(members=["20"])),
        ("orchestration", "new-5", None),
        ("destination", "11", None),
    ]


def test_no_write_refers_to_a_missing_object():
    base = snapshot(destinations={"10": destination(), "11": destination("legacy")})
    sandbox = without(base, "destination", "11")
    production = with_entry(base, "orchestration", "21", orchestration("refunds", dest="11"))
    production = with_entry(production, "group", "32", group("hourly", members=["21"]))
    for side in ("production", "sandbox"):
        plan = pull_plan(base, sandbox, production, {("orchestration", "21"): side})
        assert plan.unresolved == []
        written = {(k, key) for k, key, e in plan.writes if e is not None}
        existing = {(k, key) for k in ("destination", "orchestration", "group") for key in sandbox[k]} | written
        for kind, _key, entry in plan.writes:
            if entry is None:
                continue
            refs = {"orchestration": [("destination", entry.get("destination"))]}.get(kind, [])
            refs += [("orchestration", m) for m in entry.get("orchestrations", [])] if kind == "group" else []
            for ref in refs:
                assert ref in existing, (side, kind, entry)


# --- find_object ---------------------------------------------------------------------------------------------

CANDIDATES = [
    ("orchestration", "20", "store-orders"),
    ("group", "30", "nightly"),
    ("destination", "10", "nightly"),
    ("orchestration", "20", "store-orders"),
]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("orchestration:store-orders", ("orchestration", "20")),
        ("orchestration/store-orders", ("orchestration", "20")),
        ("store-orders", ("orchestration", "20")),
        ("group:nightly", ("group", "30")),
        ("destination/nightly", ("destination", "10")),
    ],
)
def test_find_object_by_kind_and_name_or_an_unambiguous_name(text, found):
    assert find_object(CANDIDATES, text) == found


def test_find_object_refuses_an_ambiguous_bare_name_listing_the_matches():
    with pytest.raises(ConfigError) as raised:
        find_object(CANDIDATES, "nightly")
    assert "destination:nightly" in str(raised.value) and "group:nightly" in str(raised.value)
    assert "KIND:NAME" in str(raised.value)


def test_find_object_refuses_an_unknown_name_listing_the_candidates():
    with pytest.raises(ConfigError) as raised:
        find_object(CANDIDATES, "orchestration:nightly")
    message = str(raised.value)
    assert "orchestration:nightly" in message
    assert "destination:nightly, orchestration:store-orders, group:nightly" in message
