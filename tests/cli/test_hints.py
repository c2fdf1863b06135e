"""The hint checker of tests/conftest.py (every in-process CLI run passes its output through it) can fail.

Each rule is shown failing on a hint that breaks it, and a hint that keeps them all passes.
"""

from __future__ import annotations

import pytest


def test_a_hint_that_works_pasted_passes(hint_checker):
    output = "offramp: error: no run with id 'ab12' - see `offramp runs show ab12 -w sandbox`\n"

    assert hint_checker(["runs", "show", "ab12", "-w", "sandbox"], output) == []


def test_a_next_line_in_production_needs_no_workspace(hint_checker):
    assert hint_checker(["run", "orders"], "next: offramp run orders --resume\n") == []


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ("next: offramp runs show RUN_ID --rejects\n", "holds a placeholder (RUN_ID)"),
        ("see `offramp orchestrations show NAME`\n", "holds a placeholder (NAME)"),
        ("resume with: offramp run orders ... --resume\n", "placeholder (`...`)"),
        ("see `offramp runs show ab12 --no-such-option`\n", "No such option: --no-such-option"),
        ("see `offramp runz list`\n", "No such command 'runz'"),
        ("next: offramp run orders --resume --resume\n", "gives --resume twice"),
        ("see `offramp run`\n", "Missing argument"),
        ("offramp: error: run 'x' stopped - offramp run orders --resum\n", "No such option: --resum"),
    ],
)
def test_a_broken_hint_fails_naming_what_is_wrong(hint_checker, output, problem):
    problems = hint_checker(["run", "orders"], output)

    assert len(problems) == 1, problems
    assert problem in problems[0]
    assert problems[0].startswith("hint `offramp ")


def test_a_hint_printed_in_a_sandbox_must_carry_its_workspace(hint_checker):
    problems = hint_checker(["run", "orders", "-w", "sandbox"], "next: offramp run orders --resume\n")

    assert problems == ["hint `offramp run orders --resume` has no -w sandbox: pasted, it would act on production, "
                        "not on sandbox"]  # fmt: skip


def test_the_workspace_may_come_from_the_environment(hint_checker):
    env = {"OFFRAMP_WORKSPACE": "sandbox"}

    assert hint_checker(["run", "orders"], "next: offramp run orders -w sandbox\n", env) == []
    assert hint_checker(["run", "orders"], "next: offramp run orders\n", env) != []


def test_a_hint_naming_another_workspace_fails(hint_checker):
    problems = hint_checker(["run", "orders", "-w", "sandbox"], "next: offramp run orders -w staging\n")

    assert problems == ["hint `offramp run orders -w staging` names workspace 'staging', but the command acted in "
                        "'sandbox'"]  # fmt: skip


def test_json_output_is_read_as_json(hint_checker):
    output = '{"error": "no run", "hint": "see `offramp runs show RUN_ID`"}\n'

    assert hint_checker(["runs", "show", "x", "--json"], output) == ["hint `offramp runs show RUN_ID` holds a "
                                                                     "placeholder (RUN_ID) for RUN_ID"]  # fmt: skip


def test_prose_and_help_are_not_hints(hint_checker):
    prose = "offramp keeps its state in the home; the environment offramp runs in\n"

    assert hint_checker(["runs", "list"], prose) == []
    assert hint_checker(["runs", "--help"], "see `offramp runs show RUN_ID`\n") == []


def test_the_demo_samples_of_a_users_own_setup_are_not_hints(hint_checker):
    output = "    offramp credentials add tiktok --type tiktok-offline-events \\\n      --set app_id=APP_ID\n"

    assert hint_checker(["demo"], output) == []
    assert hint_checker(["runs", "list"], output) != []


def test_the_documentation_of_a_plugin_type_is_not_hints(hint_checker):
    text = "OAuth refresh token; set by `offramp credentials authorize` and rotated automatically.\n"

    assert hint_checker(["plugins", "show", "tiktok-offline-events"], text) == []
    assert hint_checker(["credentials", "show", "tiktok"], text) != []
