"""Bad configuration and SQL: one clear line naming the problem and its fix, a non-zero exit, and nothing changed.

"Nothing changed" is checked on the state store itself: every row of every table (the Alembic version included)
is read with SQLAlchemy before and after the command and compared. What may differ depends on where the mistake
is caught, and each kind is documented behaviour:

- **Refused before anything starts** (invalid settings, a name that does not exist, SQL that is not one read
  query, a secret key that cannot decrypt the store's secrets, a usage error): every table is identical, the
  audit trail included. The customer's DuckDB file is identical too, and no file appears (``COPY ... TO``).
- **Refused once the run has started** (SQL the engine cannot run, a database file that does not exist): the run
  is recorded, so that ``offramp runs list`` shows what failed (user guide, "run"). The only change is one new
  row in ``runs``: status ``failed``, nothing queried, its error set. No row outcome, no change to credentials,
  destinations, orchestrations or the audit trail.
- **A revoked credential** (TikTok answers 40105): documented in the user guide ("run", "Troubleshooting") and
  tiktok-destination.md: the run fails, its unsent rows are recorded as ``failed`` with code ``not_sent`` so
  that ``--resume`` sends them after re-authorization, and the credential is marked ``needs_reauth`` (with its
  audit event). Its secrets and settings, the destinations and the orchestrations do not change.

A failed run reports in its summary (``error: ...`` and ``next: ...`` on stdout), not on stderr; the other
commands print one ``offramp: error: WHAT - WHAT TO DO`` line on stderr (user guide, "Errors"). Usage errors exit
2 with the argument parser's usage text.

Unknown columns in the SQL are not a mistake: they are reported once per run and ignored
(tiktok-destination.md, "Columns in, events out").
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import ORDERS_SQL, Emulator, set_up, write_orders
from cryptography.fernet import Fernet

from offramp.core.environment import Environment
from offramp.core.state.models import Orchestration
from offramp.core.state.store import open_store
from offramp.plugins.tiktok.emulator import DEFAULT_ADVERTISER_ID, DEFAULT_APP_SECRET, DEFAULT_EVENT_SET_ID

Snapshot = dict[str, list[tuple[Any, ...]]]


def records(snapshot: Snapshot, table: str) -> list[dict[str, Any]]:
    """The rows of ``table`` in a snapshot, as column -> value."""
    engine = sa.create_engine(Environment().store_url)
    try:
        names = [column.name for column in sa.Table(table, sa.MetaData(), autoload_with=engine).columns]
    finally:
        engine.dispose()
    return [dict(zip(names, row, strict=True)) for row in snapshot[table]]


def snapshot() -> Snapshot:
    """Every row of every table of the state store the current OFFRAMP_* settings point at."""
    engine = sa.create_engine(Environment().store_url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            return {
                name: sorted((tuple(row) for row in connection.execute(table.select())), key=repr)
                for name, table in metadata.tables.items()
            }
    finally:
        engine.dispose()


def added_rows(before: Snapshot, after: Snapshot, only: str | None = None) -> Snapshot:
    """Rows of ``after`` not in ``before``, by table (or of table ``only``); fails if a row of ``before`` changed or
    disappeared."""
    assert set(before) == set(after)
    added: Snapshot = {}
    for name in [only] if only else before:
        remaining = list(after[name])
        for row in before[name]:
            assert row in remaining, f"a row of {name} changed or disappeared"
            remaining.remove(row)
        if remaining:
            added[name] = remaining
    return added


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- One configured home per module, copied for each test -----------------------------------------------------

# SQL offramp must refuse before any engine sees it: `orchestrations add` refuses it, and a run refuses it when an
# older offramp stored it (the home below writes it into the store directly, as that offramp could have).
NOT_ONE_SELECT = {
    "delete": "DELETE FROM orders",
    "insert": "INSERT INTO orders SELECT * FROM orders",
    "update": "UPDATE orders SET email = NULL",
    "create": "CREATE TABLE stolen AS SELECT * FROM orders",
    "drop": "DROP TABLE orders",
    "attach": "ATTACH 'other.duckdb' AS other",
    "copy": "COPY orders TO 'out.csv'",
    "export": "EXPORT DATABASE 'exported'",
    "pragma": "PRAGMA database_list",
    "install": "INSTALL httpfs",
    "set": "SET threads = 1",
    "two-statements": "SELECT 1; DROP TABLE orders",
    "select-into": "SELECT * INTO stolen FROM orders",
    "writing-cte": "WITH gone AS (DELETE FROM orders RETURNING *) SELECT * FROM gone",
}
# SQL the check cannot read: refused before any engine sees it, with what is wrong rather than "one SELECT".
UNREADABLE = {
    "unterminated": ("SELECT 'oops FROM orders", ("unterminated string literal", "fix the orchestration's SQL")),
}
# Orchestrations whose SQL passes that check and fails in the engine: (SQL, what the error names).
ENGINE_FAILS = {
    "syntax": ("SELECT email,\nFROM orders WHERE", ("syntax error", "line 2")),
    "no-table": ("SELECT * FROM no_such_table", ("no_such_table",)),
    "no-column": ("SELECT no_such_column FROM orders", ("no_such_column",)),
}
_templates: dict[str, Path] = {}


@pytest.fixture
def home(cli: Any, offramp_home: Path, shared_emulator: Emulator, tmp_path_factory: pytest.TempPathFactory,
         monkeypatch: pytest.MonkeyPatch) -> Path:  # fmt: skip
    """A home with credential `tt` (authorized), destination `stores`, orchestration `orders` over a DuckDB file,
    `missing-file` over a file that does not exist, and one orchestration per SQL case above.

    Built once per module (the emulator is the module's) and copied into each test's OFFRAMP_HOME; the tests that
    need the emulator's grants intact use their own home (the `emulator` fixture resets the emulator).
    """
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    template = _templates.get(shared_emulator.base_url)
    if template is not None:
        shutil.copytree(template, offramp_home)
        return offramp_home
    data = tmp_path_factory.mktemp("bad-config")
    write_orders(data / "orders.duckdb", 20)
    cli.ok("init")
    set_up(cli, shared_emulator, f"duckdb:{data / 'orders.duckdb'}")
    cli.ok("orchestrations", "add", "missing-file", "--destination", "stores",
           "--source", f"duckdb:{data / 'no-such.duckdb'}", "--sql", "SELECT 1 AS x")  # fmt: skip
    for name, sql in {**{name: sql for name, (sql, _) in ENGINE_FAILS.items()}}.items():
        cli.ok("orchestrations", "add", name, "--destination", "stores", "--source", f"duckdb:{data / 'orders.duckdb'}",
               "--sql", sql)  # fmt: skip
    for name, sql in {**NOT_ONE_SELECT, **{name: sql for name, (sql, _) in UNREADABLE.items()}}.items():
        cli.ok("orchestrations", "add", name, "--destination", "stores", "--source", f"duckdb:{data / 'orders.duckdb'}",
               "--sql", "SELECT 1 AS x")  # fmt: skip
        store_sql_as_an_older_offramp_did(name, sql)
    shutil.copytree(offramp_home, data / "home")
    _templates[shared_emulator.base_url] = data / "home"
    return offramp_home


def store_sql_as_an_older_offramp_did(name: str, sql: str) -> None:
    """Write ``sql`` into orchestration ``name`` in the store directly: offramp before 0.2 stored any SQL."""
    store = open_store(Environment())
    try:
        with store.session() as session:
            session.execute(sa.update(Orchestration).where(Orchestration.name == name).values(sql=sql))
    finally:
        store.dispose()


@pytest.mark.parametrize("name", [*NOT_ONE_SELECT, *UNREADABLE])
def test_orchestrations_add_refuses_sql_that_is_not_one_select_and_stores_nothing(
    cli: Any, home: Path, name: str
) -> None:
    sql = UNREADABLE[name][0] if name in UNREADABLE else NOT_ONE_SELECT[name]
    needles = UNREADABLE[name][1][:1] if name in UNREADABLE else ("SELECT",)
    before = snapshot()
    cli("orchestrations", "add", f"new-{name}", "--destination", "stores", "--sql", sql).one_line_error(*needles)
    cli("orchestrations", "update", "orders", "--sql", sql).one_line_error(*needles)
    assert snapshot() == before


@pytest.fixture
def orders_file(cli: Any, home: Path) -> Path:
    """The customer's DuckDB file behind orchestration `orders`."""
    shown = json.loads(cli.ok("orchestrations", "show", "orders", "--json").stdout)
    return Path(shown["source"].removeprefix("duckdb:"))


# --- Refused before anything starts: every table identical -----------------------------------------------------

DESTINATION = ["destinations", "add", "d2", "--type", "tiktok-ads-offline-events", "--credential", "tt"]
GOOD_IDS = ["--set", f"advertiser_id={DEFAULT_ADVERTISER_ID}", "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}"]
ORCHESTRATION = ["orchestrations", "add", "o2", "--destination", "stores", "--sql", "SELECT 1"]
CREDENTIAL = ["credentials", "add", "c2", "--type", "tiktok-offline-events", "--set", "app_id=1"]

# (case, command, texts its one line must contain: the problem and the fix)
REFUSED: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("destination: unknown setting", [*DESTINATION, *GOOD_IDS, "--set", "colour=blue"],
     ("colour: unknown field", "valid fields", "offramp plugins show tiktok-ads-offline-events")),
    ("destination: advertiser id not digits",
     [*DESTINATION, "--set", "advertiser_id=abc", "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}"],
     ("advertiser_id", "[0-9]", "offramp plugins show")),
    ("destination: event set id not digits",
     [*DESTINATION, "--set", f"advertiser_id={DEFAULT_ADVERTISER_ID}", "--set", "event_set_id=12-ab"],
     ("event_set_id", "digits", "offramp plugins show")),
    ("destination: batch over TikTok's maximum", [*DESTINATION, *GOOD_IDS, "--set", "batch_size=5000"],
     ("batch_size", "1000")),
    ("destination: unknown credential",
     ["destinations", "add", "d2", "--type", "tiktok-ads-offline-events", "--credential", "nope", *GOOD_IDS],
     ("no credential named 'nope'", "offramp credentials list")),
    ("destination: unknown type", ["destinations", "add", "d2", "--type", "tiktok", "--credential", "tt"],
     ("tiktok",)),
    ("orchestration: unknown timezone", [*ORCHESTRATION, "--timezone", "Mars/Base"],
     ("timezone", "Mars/Base", "IANA name such as America/New_York")),
    ("orchestration: attribution window 0", [*ORCHESTRATION, "--attribution-window-days", "0"],
     ("attribution_window_days", "greater than or equal to 1")),
    ("orchestration: attribution window 400", [*ORCHESTRATION, "--attribution-window-days", "400"],
     ("attribution_window_days", "less than or equal to 365")),
    ("orchestration: unknown phone region", [*ORCHESTRATION, "--phone-region", "XX"],
     ("default_phone_region", "'XX'", "ISO 3166 code such as US")),
    ("orchestration: unknown mode", [*ORCHESTRATION, "--mode", "some"], ("mode", "'all' or 'new'")),
    ("orchestration: schedule not cron", [*ORCHESTRATION, "--schedule", "every day"], ("schedule", "cron")),
    ("orchestration: event map without '='", [*ORCHESTRATION, "--map", "Purchase"],
     ("--map", "'Source Name=DestinationName'")),
    ("orchestration: a duckdb:/// URL", [*ORCHESTRATION, "--source", "duckdb:///data.duckdb"], ("duckdb:PATH",)),
    ("orchestration: a password in the source URL",
     [*ORCHESTRATION, "--source", "postgresql+psycopg://reader:pw@db.internal/analytics"],
     ("holds a password", "PGPASSWORD")),
    ("orchestration: empty SQL", ["orchestrations", "add", "o2", "--destination", "stores", "--sql", " \n "],
     ("SQL is empty", "--sql")),
    ("orchestration: name taken", ["orchestrations", "add", "orders", "--destination", "stores", "--sql", "SELECT 1"],
     ("'orders' already exists", "pick another name")),
    ("orchestration: unknown destination",
     ["orchestrations", "add", "o2", "--destination", "nope", "--sql", "SELECT 1"],
     ("no destination named 'nope'", "offramp destinations list")),
    ("credential: unknown setting", [*CREDENTIAL, "--set", "app_secret=s", "--set", "bogus=1"],
     ("bogus: unknown field", "offramp plugins show tiktok-offline-events")),
    ("credential: secret from an unset variable", [*CREDENTIAL, "--set", "app_secret=env:OFFRAMP_TEST_NOT_SET"],
     ("OFFRAMP_TEST_NOT_SET is not set", "export OFFRAMP_TEST_NOT_SET")),
    ("run: unknown orchestration", ["run", "nope"], ("no orchestration named 'nope'", "offramp orchestrations list")),
    ("run: unknown workspace", ["run", "orders", "-w", "nosuch"],
     ("no workspace named 'nosuch'", "offramp sandboxes create nosuch")),
    ("run: nothing to resume", ["run", "orders", "--resume"],
     ("no cancelled, interrupted or failed run to resume", "offramp run orders")),
    ("run: replay of an unknown run", ["run", "orders", "--replay-failed", "nosuch"],
     ("no run with id 'nosuch'", "offramp runs list")),
]  # fmt: skip


@pytest.mark.parametrize(("command", "needles"), [(c, n) for _, c, n in REFUSED], ids=[case for case, *_ in REFUSED])
def test_a_refused_command_says_what_and_how_to_fix_it_and_changes_nothing(
    cli: Any, home: Path, command: list[str], needles: tuple[str, ...]
) -> None:
    before = snapshot()
    cli(*command).one_line_error(*needles)
    assert snapshot() == before


@pytest.mark.parametrize("name", [*NOT_ONE_SELECT, *UNREADABLE])
def test_sql_that_is_not_one_select_is_refused_before_it_runs_and_changes_nothing(
    cli: Any, home: Path, orders_file: Path, tmp_path: Path, name: str
) -> None:
    needles = UNREADABLE[name][1] if name in UNREADABLE else ("the orchestration's SQL", "SELECT")
    before, data, files = snapshot(), digest(orders_file), sorted(tmp_path.rglob("*"))
    for mode in ([], ["--dry-run"]):
        cli("run", name, *mode).one_line_error(*needles)
    assert snapshot() == before
    assert digest(orders_file) == data  # the customer's database is untouched
    assert sorted(tmp_path.rglob("*")) == files  # COPY / EXPORT / ATTACH wrote nothing


def _other_key(home: Path) -> None:
    (home / "secret.key").write_text(Fernet.generate_key().decode() + "\n")


def _no_key(home: Path) -> None:
    (home / "secret.key").unlink()


# (case, how the key goes wrong, environment, what the line names)
KEYS: list[tuple[str, Callable[[Path], None] | None, dict[str, str], tuple[str, ...]]] = [
    ("another key in OFFRAMP_SECRET_KEY", None, {"OFFRAMP_SECRET_KEY": Fernet.generate_key().decode()},
     ("the secret key from OFFRAMP_SECRET_KEY cannot decrypt credential 'tt'", "the key the store was written with")),
    ("not a key in OFFRAMP_SECRET_KEY", None, {"OFFRAMP_SECRET_KEY": "not-a-key"},
     ("key 1 in OFFRAMP_SECRET_KEY is not a Fernet key", "generate one with")),
    ("another key file", _other_key, {}, ("secret.key cannot decrypt credential 'tt'", "OFFRAMP_SECRET_KEY")),
    ("no key file", _no_key, {}, ("no secret key", "secret.key does not exist", "restore the key file")),
]  # fmt: skip


@pytest.mark.parametrize(("spoil", "env", "needles"), [k[1:] for k in KEYS], ids=[k[0] for k in KEYS])
def test_a_wrong_secret_key_stops_the_run_before_it_starts_and_changes_nothing(
    cli: Any, home: Path, spoil: Callable[[Path], None] | None, env: dict[str, str], needles: tuple[str, ...]
) -> None:
    before = snapshot()
    if spoil is not None:
        spoil(home)
    for mode in ([], ["--dry-run"]):
        cli("run", "orders", *mode, env=env).one_line_error(*needles)
    assert snapshot() == before


@pytest.mark.parametrize(
    "command",
    [["run", "orders", "--resume", "--replay-failed", "x"], ["run", "orders", "--max-reject-rate", "2"],
     ["run", "orders", "--concurrency", "0"], ["run"], ["run", "orders", "--no-such-option"]],
    ids=["resume-and-replay", "reject-rate-over-1", "concurrency-0", "no-orchestration", "unknown-option"],
)  # fmt: skip
def test_a_usage_error_exits_2_with_the_usage_and_changes_nothing(cli: Any, home: Path, command: list[str]) -> None:
    before = snapshot()
    result = cli(*command)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "Usage:" in result.stderr and "Error:" in result.stderr
    assert snapshot() == before


# --- Refused once the run has started: one failed run recorded, nothing else -------------------------------------


def assert_only_a_failed_run_was_recorded(before: Snapshot, name: str) -> None:
    added = added_rows(before, snapshot())
    assert set(added) == {"runs", "audit_events"}, f"more than the run's record changed: {sorted(added)}"
    [record] = records(added, "runs")
    audit = records(added, "audit_events")  # the run's start and end, nothing else
    assert [(event["action"], event["object_type"], event["object_name"]) for event in audit] == [
        ("start", "run", record["id"]),
        ("finish", "run", record["id"]),
    ]
    assert record["orchestration_name"] == name and record["status"] == "failed"
    assert record["queried"] == record["sent"] == record["rejected"] == record["failed"] == 0
    assert record["error"]


def failed_run_lines(result: Any) -> tuple[str, str]:
    """The summary's one ``error:`` and one ``next:`` line of a failed run, after checking the exit and streams."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].split()[-4] == "failed", lines[0]  # "run ID failed in 0.1 s" / "dry run ID failed in ..."
    [error] = [line for line in lines if line.startswith("error: ")]
    [fix] = [line for line in lines if line.startswith("next: ")]
    return error, fix


@pytest.mark.parametrize("name", sorted(ENGINE_FAILS))
def test_sql_the_engine_cannot_run_fails_the_run_naming_the_problem_and_records_only_that(
    cli: Any, home: Path, name: str
) -> None:
    sql, needles = ENGINE_FAILS[name]
    for mode in ([], ["--dry-run"]):
        before = snapshot()
        error, fix = failed_run_lines(cli("run", name, *mode))
        assert "the orchestration's SQL failed in DuckDB" in error
        assert all(needle in error for needle in needles), error
        assert f"offramp orchestrations show {name}" in fix
        assert_only_a_failed_run_was_recorded(before, name)


def test_a_missing_duckdb_file_fails_the_run_naming_the_file_and_records_only_that(cli: Any, home: Path) -> None:
    for mode in ([], ["--dry-run"]):
        before = snapshot()
        error, fix = failed_run_lines(cli("run", "missing-file", *mode))
        assert "no-such.duckdb does not exist" in error
        assert "check the orchestration's source path" in fix
        assert_only_a_failed_run_was_recorded(before, "missing-file")
    listed = json.loads(cli.ok("runs", "list", "--json").stdout)
    assert [run["status"] for run in listed] == ["failed", "failed"]
    assert all("does not exist" in run["error"] for run in listed)


# --- Unknown columns: reported, not fatal ----------------------------------------------------------------------


def test_unknown_columns_are_reported_once_and_the_run_goes_on(cli: Any, home: Path, orders_file: Path) -> None:
    sql = ORDERS_SQL.replace("FROM orders", ", 'x' AS colour, 1 AS sizing FROM orders")
    cli.ok("orchestrations", "add", "extra", "--destination", "stores", "--source", f"duckdb:{orders_file}",
           "--sql", sql, "--map", "Order Completed=Purchase")  # fmt: skip
    summary = json.loads(cli.ok("run", "extra", "--dry-run", "--json").stdout)
    assert summary["status"] == "succeeded" and summary["rows"]["sent"] > 0
    assert sorted(summary["unknown_columns"]) == ["colour", "sizing"]
    text = cli.ok("run", "extra", "--dry-run").stdout
    assert text.count("columns not used: ") == 1 and "colour" in text and "sizing" in text
    shown = json.loads(cli.ok("runs", "show", summary["id"], "--json").stdout)
    assert sorted(shown["unknown_columns"]) == ["colour", "sizing"]


# --- Tests with their own home: the emulator's grants matter ---------------------------------------------------


@pytest.fixture
def fresh(cli: Any, initialized: Path, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Credential `tt`, destination `stores`, orchestration `orders` over a 20-order file, against a reset emulator."""
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    path = tmp_path / "orders.duckdb"
    write_orders(path, 20, bad_every=5)
    set_up(cli, emulator, f"duckdb:{path}")
    return path


def test_a_destination_the_credential_cannot_reach_is_not_saved(cli: Any, fresh: Path) -> None:
    before = snapshot()
    cli(*DESTINATION, "--set", "advertiser_id=7200000000000000999", "--set", f"event_set_id={DEFAULT_EVENT_SET_ID}",
        ).one_line_error("failed its connection test", "7200000000000000999", "--no-test")  # fmt: skip
    assert snapshot() == before


def test_a_revoked_credential_fails_the_run_and_changes_only_what_resume_needs(
    cli: Any, fresh: Path, emulator: Emulator
) -> None:
    emulator.revoke()
    before = snapshot()
    error, fix = failed_run_lines(cli("run", "orders"))
    assert "40105" in error and "'tt'" in error
    assert "offramp credentials authorize tt" in fix and "offramp run orders --resume" in fix
    after = snapshot()
    assert emulator.accepted_ids() == []

    for table in ("workspaces", "destinations", "orchestrations", "orchestration_groups", "alembic_version"):
        assert after[table] == before[table], f"{table} changed"
    [old], [new] = records(before, "credentials"), records(after, "credentials")
    assert (old["status"], new["status"]) == ("ready", "needs_reauth")
    for field in ("settings", "secrets", "name", "type", "workspace_id"):
        assert new[field] == old[field], f"the credential's {field} changed"
    audit = records(added_rows(before, after, only="audit_events"), "audit_events")
    assert [(event["action"], event["object_type"]) for event in audit if event["object_type"] != "run"] == [
        ("needs-reauth", "credential")
    ]
    assert {event["action"] for event in audit if event["object_type"] == "run"} == {"start", "finish"}
    [run] = records(added_rows(before, after, only="runs"), "runs")
    assert run["status"] == "failed" and run["sent"] == 0
    assert before["row_outcomes"] == []
    outcomes = records(after, "row_outcomes")
    assert {row["run_id"] for row in outcomes} == {run["id"]}
    assert {(row["outcome"], row["reason_code"]) for row in outcomes} == {
        ("failed", "not_sent"),
        ("rejected", "missing_identifiers"),
    }  # unsent rows wait for --resume; rows our validation refused are rejected as in any run
    assert sum(row["rows"] for row in outcomes) == run["queried"]


# --- The same guarantees on a PostgreSQL state store ------------------------------------------------------------


@pytest.mark.postgres
def test_on_postgresql_refusals_change_nothing_and_a_failed_run_records_only_itself(
    cli: Any, emulator: Emulator, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFRAMP_DATABASE_URL", postgres_url)
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    path = tmp_path / "orders.duckdb"
    write_orders(path, 20)
    cli.ok("init")
    set_up(cli, emulator, f"duckdb:{path}")
    cli.ok("orchestrations", "add", "syntax", "--destination", "stores", "--source", f"duckdb:{path}",
           "--sql", ENGINE_FAILS["syntax"][0])  # fmt: skip
    cli.ok("orchestrations", "add", "delete", "--destination", "stores", "--source", f"duckdb:{path}",
           "--sql", "SELECT 1 AS x")  # fmt: skip
    store_sql_as_an_older_offramp_did("delete", NOT_ONE_SELECT["delete"])

    before = snapshot()
    cli("run", "delete").one_line_error("SELECT")
    cli("run", "orders", env={"OFFRAMP_SECRET_KEY": Fernet.generate_key().decode()}).one_line_error("cannot decrypt")
    cli(*ORCHESTRATION, "--timezone", "Mars/Base").one_line_error("timezone")
    assert snapshot() == before

    error, _ = failed_run_lines(cli("run", "syntax"))
    assert "syntax error" in error
    assert_only_a_failed_run_was_recorded(before, "syntax")

    before = snapshot()
    cli("run", "orders", "--replay-failed", "nosuch").one_line_error("no run with id 'nosuch'")
    assert snapshot() == before
