"""Bad rows through a dry run: nothing crashes, and every row is sent or rejected with a reason.

The rows are what real exports hold: odd Unicode (NUL, right-to-left marks, emoji, other scripts' digits), 1 MB
strings, blanks and NULLs, NaN and infinities in numeric columns, numbers in text columns and text in numeric ones,
impossible dates (February 30th, year 0, year 99999, DuckDB's ``infinity``, BC dates), epoch values out of any
range, lists of 100 emails. They go into a DuckDB file with explicit column types; an orchestration over that file
is added and dry-run through the CLI (``offramp run NAME --dry-run --json``), as a user would. The checks:

- the run completes (exit 0, status ``succeeded``, no traceback, nothing on stderr);
- ``queried`` is the number of rows in the table, and ``queried = sent + rejected`` (``failed`` and ``skipped``
  are 0: a dry run sends nothing and the mode is ``all``);
- every rejected row has a documented reason code: the summary's reason counts add up to ``rejected``, and so do
  the rows of ``offramp runs show RUN --rejects --format json``;
- a column the destination does not know is reported, once;
- no raw email reaches the command's output or the rejects report.

Normalization is idempotent by the tests where the functions live, not repeated here:
``tests/plugins/tiktok/test_identifiers.py::test_email_normalization_is_idempotent_and_always_64_hex`` and
``::test_phone_normalization_is_idempotent``, ``tests/plugins/tiktok/test_prepare_properties.py::
test_email_and_external_id_hashing_is_idempotent`` and ``::test_phone_normalization_is_idempotent``, and
``tests/plugins/tiktok/test_prepare_golden.py::test_prehashed_values_are_not_hashed_again``.

Size: ``OFFRAMP_BAD_INPUT_EXAMPLES`` generated tables (default 20) of 1 to 8 rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
from conftest import Emulator, set_up
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET

EXAMPLES = int(os.environ.get("OFFRAMP_BAD_INPUT_EXAMPLES", "20"))
MB = 1_000_000

# docs/tiktok-destination.md, "Reason codes".
DOCUMENTED_REASONS = frozenset({
    "conflicting_line_items", "missing_event_name", "unknown_event_name", "missing_timestamp", "invalid_timestamp",
    "event_too_old", "event_in_future", "invalid_value", "unsupported_currency", "invalid_content_type",
    "invalid_event_channel", "missing_identifiers", "invalid_event_id", "repeated_event_id",
})  # fmt: skip

# Generated emails look like this, so that a leak of one is easy to spot in any output.
RAW_EMAIL = re.compile(r"(?i)customer\.\d+@example\.com")

NOW = datetime.now(UTC).replace(microsecond=0)


class Table:
    """Columns (name, DuckDB type) and rows, as written to the DuckDB file."""

    def __init__(self, columns: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> None:
        self.columns = columns
        self.rows = rows

    def __repr__(self) -> str:  # hypothesis prints a failing example: not its megabytes
        def short(value: Any) -> str:
            text = repr(value)
            return text if len(text) <= 60 else f"{text[:40]}...<{len(text)} characters>"

        rows = ", ".join("(" + ", ".join(short(value) for value in row) + ")" for row in self.rows)
        return f"Table(columns={self.columns!r}, rows=[{rows}])"

    def write(self, path: Path) -> None:
        """Replace the DuckDB file at ``path`` with one holding this table as ``t``."""
        path.unlink(missing_ok=True)
        with duckdb.connect(str(path)) as con:
            con.execute("CREATE TABLE t (" + ", ".join(f'"{name}" {kind}' for name, kind in self.columns) + ")")
            if self.rows:
                marks = ", ".join("?" for _ in self.columns)
                con.executemany(f"INSERT INTO t VALUES ({marks})", [list(row) for row in self.rows])


class Bad:
    """Orchestration `bad` (``SELECT * FROM t`` of one DuckDB file -> destination `stores`); each dry run writes the
    file anew, so one orchestration serves every generated table."""

    def __init__(self, cli: Any, path: Path) -> None:
        self.cli = cli
        self.path = path

    def dry_run(self, table: Table) -> tuple[dict[str, Any], str]:
        """The run's summary, with its rejected rows under ``rejected_rows``, and every text the commands printed."""
        table.write(self.path)
        result = self.cli("run", "bad", "--dry-run", "--json")
        assert "Traceback" not in result.output
        assert result.exit_code in (0, 1), f"the dry run did not complete:\n{result.stderr or result.stdout[:2000]}"
        summary: dict[str, Any] = json.loads(result.stdout)
        # A dry run that would send nothing while rejecting rows fails, as the real run would (the guardrail).
        assert (result.exit_code == 1) == (summary["status"] == "failed"), result.output
        assert result.stderr == "" or summary["status"] == "failed"
        rejects = self.cli.ok("runs", "show", summary["id"], "--rejects", "--format", "json").stdout
        summary["rejected_rows"] = json.loads(rejects)
        return summary, result.stdout + rejects


@pytest.fixture
def bad(cli: Any, initialized: Any, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bad:
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    set_up(cli, emulator, "duckdb::memory:")  # credential `tt`, authorized; destination `stores`
    path = tmp_path / "bad.duckdb"
    cli.ok("orchestrations", "add", "bad", "--destination", "stores", "--source", f"duckdb:{path}",
           "--sql", "SELECT * FROM t", "--map", "Order Completed=Purchase")  # fmt: skip
    return Bad(cli, path)


def assert_every_row_is_accounted_for(summary: dict[str, Any], rows: int) -> None:
    rows_of = summary["rows"]
    # Succeeded, or failed by the guardrail only: nothing would be sent while rows were rejected.
    assert summary["status"] == "succeeded" or (
        summary["status"] == "failed" and rows_of["sent"] == 0 and rows_of["rejected"] > 0
    ), summary["error"]
    assert rows_of["queried"] == rows
    assert summary["rows"]["failed"] == 0 and summary["rows"]["skipped"] == 0
    assert rows_of["queried"] == rows_of["sent"] + rows_of["rejected"] + rows_of["failed"] + rows_of["skipped"]
    assert summary["counts_add_up"] is True
    assert set(summary["reasons"]["rejected"]) <= DOCUMENTED_REASONS
    assert sum(summary["reasons"]["rejected"].values()) == summary["rows"]["rejected"]
    listed = summary["rejected_rows"]
    assert all(row["outcome"] == "rejected" and row["reason"] in DOCUMENTED_REASONS for row in listed)
    assert sum(row["rows"] for row in listed) == summary["rows"]["rejected"]


# --- Strategies -----------------------------------------------------------------------------------------------


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` seven times in ten, else ``bad``."""
    return st.integers(min_value=0, max_value=9).flatmap(lambda pick: bad if pick >= 7 else good)


ODD_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)  # any code point a UTF-8 text can hold
BLANK = st.sampled_from(["", " ", "\t\n", "\u00a0", "\u200b", "\u0000"])
HUGE = st.sampled_from(["x", "é", "😀", " ", "9"]).map(lambda char: char * MB)
BAD_TEXT = st.one_of(ODD_TEXT, BLANK, HUGE, st.none())
RECENT = st.integers(min_value=60, max_value=20 * 86400).map(lambda seconds: NOW - timedelta(seconds=seconds))

EMAIL = st.one_of(
    st.integers(min_value=1, max_value=10**6).map(lambda n: f"Customer.{n}@Example.com"),
    st.integers(min_value=1, max_value=10**6).map(lambda n: f"  customer.{n}@example.COM\t"),
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),  # already hashed
)
EMAIL_TEXT = mostly(EMAIL, st.one_of(BAD_TEXT, st.just("x" * MB + "@example.com")))
HUNDRED_EMAILS = st.integers(min_value=1, max_value=10**4).map(
    lambda n: [f"Customer.{n * 100 + i}@Example.com" for i in range(100)]
)
PHONE = st.sampled_from(["(206) 555-0100", "+44 20 7946 0018", "+1 (213) 373-4253", "5552671", "12", "call me"])
PHONE_TEXT = mostly(PHONE, st.one_of(BAD_TEXT, st.just("١٢٣٤٥٦٧٨٩٠"), st.just("\u202e+12065550100")))


def nullable(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(values, values, values, st.none())


INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
NUMBER_EXTREMES = st.sampled_from([float("nan"), float("inf"), float("-inf"), -1.5, -0.0, 1e300, 5e-324, 1e15])
PLAIN_NUMBER = st.one_of(
    st.integers(min_value=0, max_value=100_000).map(lambda cents: cents / 100), st.integers(min_value=1, max_value=5)
)

# The type of each column and the values of that type; a column gets one type per table.
COLUMN_TYPES: dict[str, list[tuple[str, st.SearchStrategy[Any]]]] = {
    "event_id": [
        ("VARCHAR", mostly(st.sampled_from(["A", "B", "C", " A ", "a", "ORD-1"]), BAD_TEXT)),
        ("BIGINT", nullable(st.sampled_from([1, 2, 3, -(2**63), 2**63 - 1]))),
    ],
    "event": [
        (
            "VARCHAR",
            mostly(
                st.sampled_from(["Order Completed", "Purchase", "CompletePayment"]),
                st.one_of(BAD_TEXT, st.sampled_from(["purchase", " Purchase ", "Purchase\u0000"])),
            ),
        ),
        ("INTEGER", nullable(st.integers(min_value=-(2**31), max_value=2**31 - 1))),
    ],  # fmt: skip
    "timestamp": [
        (
            "TIMESTAMP",
            mostly(
                RECENT.map(lambda moment: moment.replace(tzinfo=None)),
                st.one_of(
                    st.none(),
                    st.sampled_from(
                        ["0001-01-01 00:00:00", "294246-12-31 00:00:00", "0010-01-01 (BC)", "infinity", "-infinity"]
                    ),
                ),
            ),
        ),
        ("TIMESTAMPTZ", mostly(RECENT, st.one_of(st.none(), st.sampled_from(["infinity", "-infinity"])))),
        (
            "DATE",
            mostly(
                RECENT.map(lambda moment: moment.date()),
                st.one_of(st.none(), st.sampled_from(["0001-01-01", "0010-01-01 (BC)", "5881580-07-10", "infinity"])),
            ),
        ),
        (
            "VARCHAR",
            mostly(
                st.one_of(
                    RECENT.map(lambda m: m.isoformat()),
                    RECENT.map(lambda m: str(int(m.timestamp()))),
                    RECENT.map(lambda m: m.replace(tzinfo=None).isoformat(sep=" ")),
                ),
                st.one_of(
                    BAD_TEXT,
                    st.sampled_from(
                        [
                            "2026-02-30",
                            "2026-13-01",
                            "0000-01-01",
                            "99999-01-01T00:00:00",
                            "garbage",
                            "99999999999999999999",
                            "-99999999999",
                            "1e10",
                            "NaN",
                            "infinity",
                        ]
                    ),
                ),
            ),
        ),
        ("BIGINT", mostly(RECENT.map(lambda m: int(m.timestamp())), st.one_of(st.none(), INT64))),
        ("DOUBLE", mostly(RECENT.map(lambda m: m.timestamp() * 1000), st.one_of(st.none(), NUMBER_EXTREMES))),
        ("HUGEINT", nullable(st.sampled_from([2**100, -(2**100), 0]))),
        ("VARCHAR[]", nullable(st.lists(RECENT.map(lambda m: m.isoformat()), max_size=2))),
    ],  # fmt: skip
    "email": [
        ("VARCHAR", EMAIL_TEXT),
        ("VARCHAR[]", st.one_of(st.lists(EMAIL_TEXT, max_size=4), HUNDRED_EMAILS, st.none())),
        ("BIGINT", nullable(INT64)),
        ("VARCHAR[][]", nullable(st.lists(st.lists(EMAIL, max_size=2), max_size=2))),
        ("STRUCT(address VARCHAR)", nullable(EMAIL.map(lambda email: {"address": email}))),
    ],
    "phone": [
        ("VARCHAR", PHONE_TEXT),
        ("VARCHAR[]", nullable(st.lists(PHONE_TEXT, max_size=4))),
        ("BIGINT", nullable(st.one_of(st.just(2065550100), INT64))),
    ],
    "external_id": [
        ("VARCHAR", mostly(st.text(string.ascii_letters + string.digits, min_size=1, max_size=12), BAD_TEXT)),
        ("BIGINT", nullable(INT64)),
        ("UUID", nullable(st.uuids())),
    ],
    "price": [
        ("DOUBLE", nullable(mostly(PLAIN_NUMBER, NUMBER_EXTREMES))),
        (
            "VARCHAR",
            mostly(
                PLAIN_NUMBER.map(str),
                st.one_of(BAD_TEXT, st.sampled_from(["NaN", "Infinity", "-0", "1e5", "$20", "1,000", "١٢", "9" * 400])),
            ),
        ),
        ("DECIMAL(38,10)", nullable(st.decimals(min_value=-(10**27), max_value=10**27, places=10))),
        ("HUGEINT", nullable(st.sampled_from([2**100, -1, 0, 7]))),
    ],  # fmt: skip
    "quantity": [
        ("INTEGER", nullable(st.integers(min_value=-(2**31), max_value=2**31 - 1))),
        ("DOUBLE", nullable(mostly(PLAIN_NUMBER, NUMBER_EXTREMES))),
        ("VARCHAR", mostly(st.sampled_from(["1", "2", " 3 "]), st.one_of(BAD_TEXT, st.sampled_from(["two", "-1"])))),
    ],
    "value": [
        ("DOUBLE", nullable(mostly(PLAIN_NUMBER, NUMBER_EXTREMES))),
        ("VARCHAR", mostly(PLAIN_NUMBER.map(str), st.one_of(BAD_TEXT, st.sampled_from(["NaN", "1e400", "-5"])))),
        ("DECIMAL(18,3)", nullable(st.decimals(min_value=-(10**14), max_value=10**14, places=3))),
    ],
    "currency": [
        ("VARCHAR", mostly(st.sampled_from(["USD", "usd", " EUR "]), st.one_of(BAD_TEXT, st.just("XYZ")))),
        ("INTEGER", nullable(st.integers(min_value=0, max_value=999))),
    ],
    "content_id": [
        ("VARCHAR", mostly(st.sampled_from(["SKU-1", "SKU-2"]), BAD_TEXT)),
        ("BIGINT", nullable(INT64)),
        ("DOUBLE", nullable(NUMBER_EXTREMES)),
    ],
    "order_id": [("VARCHAR", mostly(st.sampled_from(["1", "2"]), BAD_TEXT)), ("BIGINT", nullable(INT64))],
    "shop_id": [("VARCHAR", mostly(st.just("store-7"), BAD_TEXT))],
    "note": [("VARCHAR", BAD_TEXT)],  # not in the destination's contract: reported once, ignored
}
ALWAYS = ("event", "timestamp", "email")


@st.composite
def tables(draw: st.DrawFn) -> Table:
    optional = sorted(set(COLUMN_TYPES) - set(ALWAYS))
    names = [*ALWAYS, *draw(st.lists(st.sampled_from(optional), unique=True))]
    columns = [(name, draw(st.sampled_from(COLUMN_TYPES[name]))) for name in names]
    count = draw(st.integers(min_value=1, max_value=8))
    rows = [tuple(draw(values) for _, (_, values) in columns) for _ in range(count)]
    return Table([(name, kind) for name, (kind, _) in columns], rows)


# No shrinking: each example is a CLI run, and a shrink of a few hundred of them would take minutes; the failing
# example is printed as generated (its long strings cut short).
@settings(max_examples=EXAMPLES, deadline=None, database=None, phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])  # fmt: skip
@given(table=tables())
def test_generated_bad_rows_are_each_sent_or_rejected_with_a_reason(bad: Bad, table: Table) -> None:
    summary, printed = bad.dry_run(table)
    assert_every_row_is_accounted_for(summary, len(table.rows))
    assert summary["unknown_columns"] == (["note"] if ("note", "VARCHAR") in table.columns else [])
    assert not RAW_EMAIL.search(printed), "a raw email reached the output"
    for body in summary["sample_requests"]:
        for event in body["data"]:  # request bodies are JSON objects in the summary
            assert all(re.fullmatch(r"[0-9a-f]{64}", value) for value in event["user"].get("email", []))


# --- Each extreme on its own: what becomes of the row ---------------------------------------------------------

RECENT_TIME = (NOW - timedelta(hours=2)).replace(tzinfo=None)
BIG_EMAIL = "Big." + "x" * MB + "@Example.com"
HUNDRED = [f"Customer.{i}@Example.com" for i in range(100)]

# (case, column, DuckDB type, value, what the row should become: "sent" or the reasons it may be rejected with).
# The rest of the row is good: event 'Purchase', a recent TIMESTAMP, an email, unless the case replaces one of them.
EXTREMES: list[tuple[str, str, str, Any, frozenset[str]]] = [
    ("impossible date", "timestamp", "VARCHAR", "2026-02-30", frozenset({"invalid_timestamp"})),
    ("month 13", "timestamp", "VARCHAR", "2026-13-01", frozenset({"invalid_timestamp"})),
    ("year 0", "timestamp", "VARCHAR", "0000-01-01", frozenset({"invalid_timestamp"})),
    ("year 99999", "timestamp", "VARCHAR", "99999-01-01T00:00:00", frozenset({"invalid_timestamp"})),
    ("garbage time", "timestamp", "VARCHAR", "garbage", frozenset({"invalid_timestamp"})),
    ("1 MB time", "timestamp", "VARCHAR", "9" * MB, frozenset({"invalid_timestamp", "event_in_future"})),
    ("epoch beyond int64", "timestamp", "VARCHAR", "99999999999999999999",
     frozenset({"invalid_timestamp", "event_in_future"})),
    ("largest epoch", "timestamp", "BIGINT", 2**63 - 1, frozenset({"invalid_timestamp", "event_in_future"})),
    ("smallest epoch", "timestamp", "BIGINT", -(2**63), frozenset({"invalid_timestamp", "event_too_old"})),
    ("NaN time", "timestamp", "DOUBLE", float("nan"), frozenset({"invalid_timestamp"})),
    ("infinite time", "timestamp", "DOUBLE", float("inf"), frozenset({"invalid_timestamp", "event_in_future"})),
    ("epoch 1e300", "timestamp", "DOUBLE", 1e300, frozenset({"invalid_timestamp", "event_in_future"})),
    ("epoch -1e300", "timestamp", "DOUBLE", -1e300, frozenset({"invalid_timestamp", "event_too_old"})),
    ("epoch 2**100", "timestamp", "HUGEINT", 2**100, frozenset({"invalid_timestamp", "event_in_future"})),
    ("year 1", "timestamp", "TIMESTAMP", "0001-01-01 00:00:00", frozenset({"event_too_old"})),
    ("BC timestamp", "timestamp", "TIMESTAMP", "0010-01-01 (BC)", frozenset({"invalid_timestamp", "event_too_old"})),
    ("infinity timestamp", "timestamp", "TIMESTAMP", "infinity", frozenset({"invalid_timestamp", "event_in_future"})),
    ("-infinity timestamp", "timestamp", "TIMESTAMP", "-infinity",
     frozenset({"invalid_timestamp", "event_too_old"})),
    ("infinity timestamptz", "timestamp", "TIMESTAMPTZ", "infinity",
     frozenset({"invalid_timestamp", "event_in_future"})),
    ("infinity date", "timestamp", "DATE", "infinity", frozenset({"invalid_timestamp", "event_in_future"})),
    ("largest date", "timestamp", "DATE", "5881580-07-10", frozenset({"invalid_timestamp", "event_in_future"})),
    ("a list of times", "timestamp", "VARCHAR[]", [RECENT_TIME.isoformat()], frozenset({"invalid_timestamp"})),
    ("a time of day", "timestamp", "TIME", "10:00:00", frozenset({"invalid_timestamp"})),
    ("NaN price", "price", "DOUBLE", float("nan"), frozenset({"invalid_value"})),
    ("infinite price", "price", "DOUBLE", float("inf"), frozenset({"invalid_value"})),
    ("-infinite value", "value", "DOUBLE", float("-inf"), frozenset({"invalid_value"})),
    ("huge price", "price", "HUGEINT", 2**100, frozenset({"invalid_value"})),
    ("text quantity", "quantity", "VARCHAR", "two", frozenset({"invalid_value"})),
    ("'NaN' as text", "value", "VARCHAR", "NaN", frozenset({"invalid_value"})),
    ("other script's digits", "price", "VARCHAR", "١٢", frozenset({"invalid_value"})),
    ("1 MB of digits as a price", "price", "VARCHAR", "9" * MB, frozenset({"invalid_value"})),
    ("a number as the event", "event", "INTEGER", 42, frozenset({"unknown_event_name"})),
    ("1 MB event name", "event", "VARCHAR", "P" * MB, frozenset({"unknown_event_name"})),
    ("NUL in the event name", "event", "VARCHAR", "Purchase\u0000", frozenset({"unknown_event_name"})),
    ("a nested list of emails", "email", "VARCHAR[][]", [["a@example.com"]], frozenset({"missing_identifiers"})),
    ("a struct as the email", "email", "STRUCT(address VARCHAR)", {"address": "a@example.com"},
     frozenset({"missing_identifiers"})),
    ("a map as the phone", "phone", "MAP(VARCHAR, VARCHAR)", {"home": "+12065550100"},
     frozenset({"missing_identifiers"})),
    ("1 MB phone", "phone", "VARCHAR", "9" * MB, frozenset({"missing_identifiers"})),
    ("100 emails", "email", "VARCHAR[]", HUNDRED, frozenset({"sent"})),
    ("1 MB email", "email", "VARCHAR", BIG_EMAIL, frozenset({"sent"})),
    ("a number in the phone column", "phone", "BIGINT", 2065550100, frozenset({"sent"})),
    ("emoji and NUL in the email", "email", "VARCHAR", "\U0001f600\u0000@example.com", frozenset({"sent"})),
]  # fmt: skip


def _extreme_table(cases: list[tuple[int, str, str, Any]]) -> Table:
    """One row per case, event_id ``E-<number>``: a good row (event 'Purchase', a recent TIMESTAMP, an email) with
    the case's value in its column; without an email when the case is about the phone, which alone then decides."""
    column, kind = cases[0][1], cases[0][2]
    good: dict[str, tuple[str, Any]] = {
        "event": ("VARCHAR", "Purchase"), "timestamp": ("TIMESTAMP", RECENT_TIME),
        "email": ("VARCHAR", "Customer.1@Example.com"),
    }  # fmt: skip
    if column == "phone":
        del good["email"]
    good[column] = (kind, None)
    names = ["event_id", *good]
    rows = [tuple([f"E-{number}", *(value if name == column else good[name][1] for name in good)])
            for number, _, _, value in cases]  # fmt: skip
    return Table([("event_id", "VARCHAR"), *((name, good[name][0]) for name in names[1:])], rows)


def test_each_extreme_value_rejects_only_its_own_row_or_is_sent(bad: Bad) -> None:
    """Every case's row is sent or rejected with a documented reason, and the run completes.

    Cases with the same column and type share a table (one row each) and a run; when that run does not complete,
    each of its cases runs alone, so the failure names the values that break it. Every group runs before the
    assertion, so a failure lists all the cases that went wrong, not only the first.
    """
    groups: dict[tuple[str, str], list[tuple[int, str, str, Any]]] = {}
    for number, (_, column, kind, value, _) in enumerate(EXTREMES):
        groups.setdefault((column, kind), []).append((number, column, kind, value))
    problems: list[str] = []

    def check(cases: list[tuple[int, str, str, Any]]) -> bool:
        try:
            summary, _ = bad.dry_run(_extreme_table(cases))
        except AssertionError as failure:
            if len(cases) == 1:
                problems.append(f"{EXTREMES[cases[0][0]][0]}: {str(failure).splitlines()[1][:300]}")
            return False
        reasons = {row["event_id"]: row["reason"] for row in summary["rejected_rows"]}
        for number, *_ in cases:
            case, *_, expected = EXTREMES[number]
            outcome = reasons.get(f"E-{number}", "sent")
            if outcome not in expected:
                problems.append(f"{case}: expected {sorted(expected)}, got {outcome}")
        if summary["rows"]["queried"] != len(cases) or summary["rows"]["sent"] + summary["rows"]["rejected"] != len(
            cases
        ):
            problems.append(f"{[EXTREMES[number][0] for number, *_ in cases]}: the counts do not add up: {summary}")
        return True

    for cases in groups.values():
        if not check(cases) and len(cases) > 1:
            for case in cases:
                check([case])
    assert not problems, "\n".join(problems)


def _sample_user(bad: Bad, table: Table) -> dict[str, Any]:
    summary, _ = bad.dry_run(table)
    assert summary["rows"]["sent"] == 1, summary["reasons"]["rejected"]
    [body] = summary["sample_requests"]
    [event] = body["data"]
    user: dict[str, Any] = event["user"]
    return user


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_list_of_100_emails_and_a_1_mb_email_are_hashed_as_tiktok_expects(bad: Bad) -> None:
    """The hashes are computed here with hashlib from TikTok's rule (trim, lower-case, SHA-256), not with offramp."""
    listed = Table([("event_id", "VARCHAR"), ("event", "VARCHAR"), ("timestamp", "TIMESTAMP"), ("email", "VARCHAR[]")],
                   [("E-1", "Purchase", RECENT_TIME, [*HUNDRED, HUNDRED[0].upper(), None, ""])])  # fmt: skip
    user = _sample_user(bad, listed)
    assert user["email"] == [sha256(email.lower()) for email in HUNDRED]  # in order, duplicates and blanks dropped

    big = Table([("event_id", "VARCHAR"), ("event", "VARCHAR"), ("timestamp", "TIMESTAMP"), ("email", "VARCHAR"),
                 ("phone", "BIGINT")],
                [("E-1", "Purchase", RECENT_TIME, f" {BIG_EMAIL}\t", 2065550100)])  # fmt: skip
    user = _sample_user(bad, big)
    assert user["email"] == [sha256(BIG_EMAIL.lower())]
    assert user["phone"] == [sha256("+12065550100")]  # a number in a phone column is read as the number it is


# --- PostgreSQL: as the state store, and as the source -------------------------------------------------------


def test_a_long_event_id_is_accounted_for_whatever_the_store(store: str, bad: Bad) -> None:
    """The ledger keys rows by event_id: an id of 300 characters or of 1 MB must not break the run on either store."""
    ids = ["L" * 300, "M" * MB, "ok"]
    table = Table([("event_id", "VARCHAR"), ("event", "VARCHAR"), ("timestamp", "TIMESTAMP"), ("email", "VARCHAR")],
                  [(event_id, event, RECENT_TIME, "Customer.1@Example.com") for event_id in ids
                   for event in ("Purchase", "Unknown Thing")])  # fmt: skip
    summary, _ = bad.dry_run(table)
    assert_every_row_is_accounted_for(summary, len(table.rows))


@pytest.mark.postgres
@pytest.mark.parametrize(
    "columns",
    [
        pytest.param("now() - interval '1 hour' AS timestamp, emails AS email, price, qty AS quantity, val AS value",
                     id="NaN-infinity-numbers-and-arrays"),
        pytest.param("iv AS timestamp, j AS email, tm AS phone", id="interval-jsonb-time"),
        pytest.param("ts AS timestamp, email", id="infinity-and-BC-timestamps"),
        pytest.param("tstz AS timestamp, email", id="infinity-and-huge-timestamptz"),
        pytest.param("d AS timestamp, email", id="infinity-and-huge-dates"),
    ],
)  # fmt: skip
def test_odd_postgresql_values_are_each_sent_or_rejected(
    bad: Bad, cli: Any, postgres_url: str, postgres_reader_url: str, monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    """PostgreSQL has values DuckDB files rarely hold: NaN numerics, +-Infinity floats, 'infinity' timestamps and
    dates, years beyond 9999 and BC, arrays with NULLs, jsonb, intervals. Each row is sent or rejected."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE t (event_id text, event text, ts timestamp, tstz timestamptz, d date, email text,"
            " emails text[], price numeric, qty double precision, val real, j jsonb, iv interval, tm time)"
        )
        connection.exec_driver_sql(
            "INSERT INTO t VALUES"
            " ('A', 'Purchase', now() - interval '1 hour', now() - interval '1 hour', current_date, 'a@example.com',"
            "  ARRAY['x@example.com', NULL, ''], 'NaN', 'Infinity', '-Infinity', '{\"a\": 1}', '1 day', '10:00'),"
            " ('B', 'Purchase', 'infinity', '-infinity', 'infinity', 'b@example.com', ARRAY[]::text[], 1e100, 'NaN',"
            "  1, '[\"b@example.com\"]', NULL, NULL),"
            " ('C', 'Purchase', '4713-01-01 BC', '294276-01-01', '5874897-12-31', 'c@example.com', NULL, -1.5, 2, 3,"
            "  NULL, NULL, NULL),"
            " ('D', 'Purchase', '-infinity', 'infinity', '-infinity', 'd@example.com', NULL, 1, 1, 1, NULL, NULL, NULL)"
        )
    engine.dispose()
    monkeypatch.setenv("WAREHOUSE_URL", postgres_reader_url)  # a read-only role: a superuser is refused
    cli.ok("orchestrations", "add", "pg", "--destination", "stores", "--source", "env:WAREHOUSE_URL",
           "--sql", f"SELECT event_id, event, {columns} FROM t")  # fmt: skip
    result = cli("run", "pg", "--dry-run", "--json")
    summary = json.loads(result.stdout) if result.stdout.startswith("{") else {"error": result.stderr, "status": None}
    # Exit 1 only when the guardrail failed the dry run (every row rejected: nothing would be sent).
    assert result.exit_code == (1 if summary["status"] == "failed" else 0), summary["error"]
    summary["rejected_rows"] = json.loads(cli.ok("runs", "show", summary["id"], "--rejects", "--format",
                                                 "json").stdout)  # fmt: skip
    assert_every_row_is_accounted_for(summary, 4)
