"""What a reviewer reads of a sandbox's merge (``offramp sandboxes diff``, a promotion's record): names, never keys;
secrets as set / changed / removed, never a fingerprint or a value; text that reads in a terminal and renders as
Markdown when pasted into a pull request (a heading per object, an item per field, SQL as a fenced diff)."""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from markdown_it import MarkdownIt

from offramp.core.services.diff_render import diff_document, render_text, render_yaml
from offramp.core.services.merge import three_way

FINGERPRINT = "2026-01-01T00:00:00"
NEW_FINGERPRINT = "2026-02-02T12:34:56"
SQL = "select email, order_id\nfrom orders\nwhere paid\n"


def base_snapshot() -> dict[str, Any]:
    return {
        "destination": {
            "10": {
                "name": "tiktok-store",
                "type": "tiktok",
                "credential": "1",
                "settings.advertiser_id": "111",
                "secrets.access_token": FINGERPRINT,
            }
        },
        "orchestration": {
            "20": {
                "name": "store-orders",
                "destination": "10",
                "source": "warehouse",
                "sql": SQL,
                "options.mode": "upsert",
            },
            "21": {"name": "refunds", "destination": "10", "source": "warehouse", "sql": "select 1\n"},
        },
        "group": {"30": {"name": "nightly", "schedule": "0 2 * * *", "timezone": "UTC", "orchestrations": ["20"]}},
        "credentials": {
            "1": {"name": "tiktok-main", "workspace": "production"},
            "2": {"name": "tiktok-test", "workspace": "try-pixel"},
        },
    }


def document(base: dict[str, Any], sandbox: dict[str, Any], production: dict[str, Any]) -> dict[str, Any]:
    return diff_document(
        three_way(base, sandbox, production),
        base,
        sandbox,
        production,
        sandbox_name="try-pixel",
        base_revision=7,
        production_revision=7,
    )


def typical() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Add a destination (with a secret) on a test credential, change SQL, rename a group and add a member to it,
    change a secret, remove an orchestration."""
    base = base_snapshot()
    sandbox = copy.deepcopy(base)
    sandbox["destination"]["new-4"] = {
        "name": "tiktok-pixel-b",
        "type": "tiktok",
        "credential": "2",
        "settings.advertiser_id": "222",
        "secrets.access_token": NEW_FINGERPRINT,
    }
    sandbox["destination"]["10"]["secrets.access_token"] = NEW_FINGERPRINT
    sandbox["orchestration"]["20"]["sql"] = "select email, order_id, value\nfrom orders\nwhere paid\n"
    sandbox["orchestration"]["new-5"] = {
        "name": "pixel-orders",
        "destination": "new-4",
        "source": "warehouse",
        "sql": "select email\nfrom orders\n",
        "options.mode": "insert",
    }
    sandbox["group"]["30"]["name"] = "nightly-v2"
    sandbox["group"]["30"]["orchestrations"] = ["20", "new-5"]
    del sandbox["orchestration"]["21"]
    return base, sandbox, copy.deepcopy(base)


def test_the_document_lists_each_change_with_references_by_name():
    doc = document(*typical())
    assert (doc["sandbox"], doc["base_revision"], doc["production_revision"]) == ("try-pixel", 7, 7)
    assert doc["updates_to_pull"] == 0 and doc["conflicts"] == []
    summary = [(c["action"], c["kind"], c["name"], c["old_name"]) for c in doc["changes"]]
    assert summary == [
        ("add", "destination", "tiktok-pixel-b", None),
        ("change", "destination", "tiktok-store", None),
        ("add", "orchestration", "pixel-orders", None),
        ("remove", "orchestration", "refunds", None),
        ("change", "orchestration", "store-orders", None),
        ("change", "group", "nightly-v2", "nightly"),
    ]
    by_name = {c["name"]: {f["field"]: f for f in c["fields"]} for c in doc["changes"]}
    assert by_name["pixel-orders"]["destination"]["new"] == "tiktok-pixel-b"
    assert by_name["tiktok-pixel-b"]["credential"]["new"] == "tiktok-test (sandbox try-pixel)"
    assert by_name["nightly-v2"]["orchestrations"] == {
        "field": "orchestrations",
        "old": ["store-orders"],
        "new": ["store-orders", "pixel-orders"],
    }
    assert by_name["nightly-v2"]["name"] == {"field": "name", "old": "nightly", "new": "nightly-v2"}
    json.dumps(doc)  # JSON-able as it is


def test_a_secret_is_set_changed_or_removed_and_never_its_fingerprint():
    base, sandbox, production = typical()
    sandbox["destination"]["10"]["secrets.app_secret"] = FINGERPRINT
    production["destination"]["10"]["secrets.pixel_key"] = FINGERPRINT  # an update, shown too
    base["destination"]["10"]["secrets.old_key"] = FINGERPRINT
    production["destination"]["10"]["secrets.old_key"] = FINGERPRINT
    doc = document(base, sandbox, production)
    (store,) = [c for c in doc["changes"] if c["name"] == "tiktok-store"]
    fields = {f["field"]: f for f in store["fields"]}
    assert fields["secrets.access_token"] == {
        "field": "secrets.access_token",
        "old": None,
        "new": None,
        "secret": "changed",
    }
    assert fields["secrets.app_secret"]["secret"] == "set"
    assert fields["secrets.old_key"]["secret"] == "removed"
    text, as_json, as_yaml = render_text(doc), json.dumps(doc), render_yaml(doc)
    for output in (text, as_json, as_yaml):
        assert FINGERPRINT not in output and NEW_FINGERPRINT not in output
        assert "2026-" not in output
    assert "- secrets.access_token: changed" in text
    assert "- secrets.app_secret: set" in text
    assert "- secrets.old_key: removed" in text


def test_a_secret_in_conflict_shows_no_fingerprint():
    base = base_snapshot()
    sandbox, production = copy.deepcopy(base), copy.deepcopy(base)
    sandbox["destination"]["10"]["secrets.access_token"] = NEW_FINGERPRINT
    production["destination"]["10"]["secrets.access_token"] = "2026-03-03T00:00:00"
    doc = document(base, sandbox, production)
    (conflict,) = doc["conflicts"]
    assert conflict["fields"][0] == {
        "field": "secrets.access_token",
        "base": "set",
        "sandbox": "changed",
        "production": "changed",
        "secret": True,
    }
    for output in (render_text(doc), json.dumps(doc), render_yaml(doc)):
        assert "2026-" not in output


def test_an_sql_change_is_a_unified_diff_in_a_fenced_block():
    doc = document(*typical())
    (sql,) = [f for c in doc["changes"] if c["name"] == "store-orders" for f in c["fields"] if f["field"] == "sql"]
    assert sql["old"] == SQL and sql["new"].startswith("select email, order_id, value")
    assert sql["diff"].splitlines()[:2] == ["--- production", "+++ sandbox"]
    assert "-select email, order_id" in sql["diff"] and "+select email, order_id, value" in sql["diff"]
    text = render_text(doc)
    section = text[text.index("### ~ orchestration store-orders") :]
    assert section.splitlines()[1:6] == ["", "- sql:", "```diff", "--- production", "+++ sandbox"]
    assert "\n-select email, order_id\n+select email, order_id, value\n from orders\n where paid\n```\n" in section


def test_the_text_reads_as_a_review():
    text = render_text(document(*typical()))
    lines = text.splitlines()
    assert lines[0] == "# Sandbox try-pixel → production (base revision 7, production revision 7)"
    assert "## Changes to promote (6)" in lines
    assert "### + destination tiktok-pixel-b" in lines
    assert "### - orchestration refunds" in lines
    assert "### ~ group nightly-v2 (renamed from nightly)" in lines
    assert "- orchestrations: `store-orders` → `store-orders`, `pixel-orders`" in lines
    # An add shows its fields, references by name, and its SQL as a block.
    added = text[text.index("### + orchestration pixel-orders") :].split("\n\n")[1].splitlines()
    assert added == [
        "- destination: `tiktok-pixel-b`",
        "- source: `warehouse`",
        "- sql:",
        "```sql",
        "select email",
        "from orders",
        "```",
        "- options.mode: `insert`",
    ]
    assert "- credential: `tiktok-test (sandbox try-pixel)`" in text
    assert "Updates to pull" not in text and "Conflicts" not in text
    assert "new-4" not in text and "new-5" not in text  # keys are not for reviewers


def test_updates_to_pull_and_conflicts_have_their_sections():
    base = base_snapshot()
    sandbox, production = copy.deepcopy(base), copy.deepcopy(base)
    sandbox["orchestration"]["20"]["options.mode"] = "insert"
    production["orchestration"]["20"]["options.mode"] = "replace"
    production["group"]["30"]["schedule"] = "0 3 * * *"
    doc = document(base, sandbox, production)
    assert doc["updates_to_pull"] == 2
    text = render_text(doc)
    lines = text.splitlines()
    assert "## Updates to pull (2): run `offramp sandboxes pull try-pixel` before promoting" in lines
    assert "- schedule: `0 2 * * *` → `0 3 * * *`" in lines
    assert "## Conflicts (1): choose a side for each (all or nothing)" in lines
    keep = "- keep production's: `offramp sandboxes pull try-pixel --take production orchestration:store-orders`"
    assert keep in lines
    keep = "- keep the sandbox's: `offramp sandboxes pull try-pixel --take sandbox orchestration:store-orders`"
    assert keep in lines
    assert "### ! orchestration store-orders: changed on both sides" in lines
    assert "- options.mode: base `upsert`, sandbox `insert`, production `replace`" in lines


def test_conflicting_sql_shows_each_side_as_a_diff_against_the_base():
    base = base_snapshot()
    sandbox, production = copy.deepcopy(base), copy.deepcopy(base)
    sandbox["orchestration"]["20"]["sql"] = SQL.replace("where paid", "where paid and email is not null")
    production["orchestration"]["20"]["sql"] = SQL.replace("where paid", "where refunded")
    doc = document(base, sandbox, production)
    (field,) = doc["conflicts"][0]["fields"]
    assert field["sandbox_diff"].splitlines()[:2] == ["--- base", "+++ sandbox"]
    assert field["production_diff"].splitlines()[:2] == ["--- base", "+++ production"]
    text = render_text(doc)
    assert "\n+where paid and email is not null\n" in text and "\n+where refunded\n" in text
    assert "- sql in production, against the base:\n```diff\n--- base\n+++ production\n" in text
    assert "- sql in the sandbox, against the base:\n```diff\n--- base\n+++ sandbox\n" in text


def test_an_update_references_by_production_names():
    base = base_snapshot()
    sandbox, production = copy.deepcopy(base), copy.deepcopy(base)
    production["destination"]["11"] = {"name": "tiktok-eu", "type": "tiktok", "credential": "1"}
    production["orchestration"]["20"]["destination"] = "11"
    text = render_text(document(base, sandbox, production))
    assert "- destination: `tiktok-store` → `tiktok-eu`" in text
    assert "### + destination tiktok-eu" in text


def test_an_absent_value_shows_as_none():
    base, sandbox, production = typical()
    sandbox["orchestration"]["20"]["options.batch_size"] = 500
    del sandbox["orchestration"]["20"]["options.mode"]
    text = render_text(document(base, sandbox, production))
    assert "- options.batch_size: (none) → `500`" in text
    assert "- options.mode: `upsert` → (none)" in text


def test_no_changes_says_so():
    base = base_snapshot()
    doc = document(base, copy.deepcopy(base), copy.deepcopy(base))
    assert doc["changes"] == [] and doc["updates"] == []
    assert render_text(doc).splitlines()[-1] == "No changes: the sandbox matches production."


def test_yaml_is_the_same_data_with_sql_as_blocks():
    doc = document(*typical())
    text = render_yaml(doc)
    assert yaml.safe_load(text) == doc
    assert "diff: |" in text


def outline(text: str) -> list[str]:
    """The text as Markdown renders it: each heading (``h3 ...``), list item (``li ...``), paragraph (``p ...``) and
    code block (``diff: ...``) in order, as plain text (code spans unwrapped, a line break inside one kept as
    ``\\n``, so lines merged into one paragraph show)."""
    tokens = MarkdownIt("commonmark").parse(text)

    def plain(index: int) -> str:
        inline = tokens[index]
        assert inline.type == "inline"
        parts = {"text": lambda t: t.content, "code_inline": lambda t: t.content, "softbreak": lambda t: "\n"}
        return "".join(parts[child.type](child) for child in inline.children or [])

    shown: list[str] = []
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            shown.append(f"{token.tag} {plain(i + 1)}")
        elif token.type == "list_item_open":
            shown.append(f"li {plain(i + 2)}")
        elif token.type == "paragraph_open":
            if tokens[i - 1].type != "list_item_open":  # a list item's own paragraph is the item's text
                shown.append(f"p {plain(i + 1)}")
        elif token.type == "fence":
            shown.append(f"{token.info}: {token.content}")
        elif token.type not in ("heading_close", "list_item_close", "paragraph_close", "inline"):
            assert token.type in ("bullet_list_open", "bullet_list_close"), token  # nothing else: no indented code
    return shown


def test_the_text_renders_as_markdown_with_a_heading_per_object_and_an_item_per_field():
    base, sandbox, production = typical()
    sandbox["orchestration"]["20"]["options.mode"] = "insert"
    production["orchestration"]["20"]["options.mode"] = "replace"
    doc = document(base, sandbox, production)
    text = render_text(doc)
    sql_diff = (
        "--- production\n+++ sandbox\n@@ -1,3 +1,3 @@\n-select email, order_id\n+select email, order_id, value\n"
        " from orders\n where paid\n"
    )
    keep = "offramp sandboxes pull try-pixel --take {} orchestration:store-orders"
    assert outline(text) == [
        "h1 Sandbox try-pixel → production (base revision 7, production revision 7)",
        "h2 Changes to promote (6)",
        "h3 + destination tiktok-pixel-b",
        "li type: tiktok",
        "li credential: tiktok-test (sandbox try-pixel)",
        "li settings.advertiser_id: 222",
        "li secrets.access_token: set",
        "h3 ~ destination tiktok-store",
        "li secrets.access_token: changed",
        "h3 + orchestration pixel-orders",
        "li destination: tiktok-pixel-b",
        "li source: warehouse",
        "li sql:",
        "sql: select email\nfrom orders\n",
        "li options.mode: insert",
        "h3 - orchestration refunds",
        "h3 ~ orchestration store-orders",
        "li sql:",
        f"diff: {sql_diff}",
        "li options.mode: upsert → insert",
        "h3 ~ group nightly-v2 (renamed from nightly)",
        "li orchestrations: store-orders → store-orders, pixel-orders",
        "h2 Updates to pull (1): run offramp sandboxes pull try-pixel before promoting",
        "h3 ~ orchestration store-orders",
        "li options.mode: upsert → replace",
        "h2 Conflicts (1): choose a side for each (all or nothing)",
        "h3 ! orchestration store-orders: changed on both sides",
        "li options.mode: base upsert, sandbox insert, production replace",
        "p Resolve it with one of:",
        f"li keep production's: {keep.format('production')}",
        f"li keep the sandbox's: {keep.format('sandbox')}",
    ]
    html = MarkdownIt("commonmark").render(text)
    assert f'<pre><code class="language-diff">{sql_diff}</code></pre>' in html
    assert "<li>options.mode: <code>upsert</code> → <code>insert</code></li>" in html


def test_conflicting_sql_renders_as_two_fenced_diffs():
    base = base_snapshot()
    sandbox, production = copy.deepcopy(base), copy.deepcopy(base)
    sandbox["orchestration"]["21"]["sql"] = "select 2\n"
    production["orchestration"]["21"]["sql"] = "select 3\n"
    shown = outline(render_text(document(base, sandbox, production)))
    start = shown.index("h3 ! orchestration refunds: changed on both sides")
    assert shown[start + 1 : start + 5] == [
        "li sql in the sandbox, against the base:",
        "diff: --- base\n+++ sandbox\n@@ -1 +1 @@\n-select 1\n+select 2\n",
        "li sql in production, against the base:",
        "diff: --- base\n+++ production\n@@ -1 +1 @@\n-select 1\n+select 3\n",
    ]


def test_a_binding_to_the_sandboxs_own_credential_is_told_from_productions_of_the_same_name():
    base = base_snapshot()
    sandbox = copy.deepcopy(base)
    sandbox["credentials"]["3"] = {"name": "tiktok-main", "workspace": "try-pixel"}
    sandbox["destination"]["10"]["credential"] = "3"
    sandbox["destination"]["11"] = {"name": "tiktok-eu", "type": "tiktok", "credential": "1"}
    doc = document(base, sandbox, copy.deepcopy(base))
    fields = {c["name"]: {f["field"]: f for f in c["fields"]} for c in doc["changes"]}
    assert fields["tiktok-store"]["credential"] == {
        "field": "credential",
        "old": "tiktok-main",
        "new": "tiktok-main (sandbox try-pixel)",
    }
    assert fields["tiktok-eu"]["credential"]["new"] == "tiktok-main"  # production's: its name alone
    text = render_text(doc)
    assert "- credential: `tiktok-main` → `tiktok-main (sandbox try-pixel)`" in text.splitlines()


def test_names_and_values_markdown_would_misread_render_as_they_are():
    base = base_snapshot()
    sandbox = copy.deepcopy(base)
    sandbox["orchestration"]["20"]["name"] = "orders._eu_.v2"
    sandbox["orchestration"]["20"]["options.note"] = "use `id`, not `email`"
    sandbox["orchestration"]["20"]["options.prefix"] = " padded "
    shown = outline(render_text(document(base, sandbox, copy.deepcopy(base))))
    assert "h3 ~ orchestration orders._eu_.v2 (renamed from store-orders)" in shown
    assert "li options.note: (none) → use `id`, not `email`" in shown
    assert 'li options.prefix: (none) → " padded "' in shown
