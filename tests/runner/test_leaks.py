"""Leaks: after runs under faults, at DEBUG logging, no raw identifier and no secret is anywhere a user, a log
collector or someone holding the state store could read it.

This extends the INFO-level check in ``test_reliability.py`` (the store's files and the output of ``run``, for raw
emails, raw phones and the app secret) with:

- logging at DEBUG (``offramp --debug``), captured from stderr, for every command below;
- the tokens: every access token and refresh token the emulator issued during the test (tokens expire every
  second, so the run refreshes them), the auth codes, and the Fernet key that encrypts the store's secrets;
- every form of a phone number: as written, in E.164 (computed here with phonenumbers), its digits only, and the
  E.164 digits without ``+``; emails as written, trimmed and lower-cased;
- the output of every command that reports on runs or configuration: ``run`` (real, dry, failed, resumed),
  ``runs list``, ``runs show`` (summary, ``--rejects``, ``--failed``, JSON and CSV), ``orchestrations show/list``,
  ``destinations show/test``, ``credentials show/list/test/authorize``, ``export``, ``audit``;
- every file under OFFRAMP_HOME (the SQLite store, its WAL and journal, any log file) but the key file, and, for a
  PostgreSQL store, the text of every row of every table.

Size: ``OFFRAMP_LEAK_ROWS`` order lines (default 1500).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import duckdb
import phonenumbers
import pytest
import sqlalchemy as sa
from conftest import Emulator, set_up

from offramp.core.environment import Environment
from offramp.plugins.tiktok.commands.benchmark import BENCH_SQL, write_orders
from offramp.plugins.tiktok.emulator import DEFAULT_APP_SECRET

ROWS = int(os.environ.get("OFFRAMP_LEAK_ROWS", "1500"))


def identifiers(path: Path) -> list[str]:
    """Every raw form of every email and phone in the orders file."""
    with duckdb.connect(str(path), read_only=True) as con:
        emails = [email for (email,) in con.sql("SELECT DISTINCT email FROM orders WHERE email IS NOT NULL").fetchall()]
        phones = [phone for (phone,) in con.sql("SELECT DISTINCT phone FROM orders WHERE phone <> 'n/a'").fetchall()]
    values = {form for email in emails for form in (email, email.strip(), email.strip().lower())}
    for phone in phones:
        values.add(phone)
        values.add(re.sub(r"\D", "", phone))
        number = phonenumbers.parse(phone, "US")
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        values.update((e164, e164.removeprefix("+")))
    assert len(emails) > 100 and len(phones) > 100, "the orders file has too few identifiers to prove anything"
    return sorted(value for value in values if len(value) >= 7)


def secrets(emulator: Emulator, home: Path) -> dict[str, str]:
    """Every secret of the test by a name to report it with (never its value)."""
    auth = emulator.state.auth
    found = {"app secret": DEFAULT_APP_SECRET}
    found.update({f"access token #{n}": token for n, token in enumerate(auth.access_tokens)})
    found.update({f"refresh token #{n}": token for n, token in enumerate(auth.refresh_tokens)})
    found.update({f"auth code #{n}": code for n, code in enumerate(auth.codes)})
    found["secret key"] = (home / "secret.key").read_text().strip()
    return found


def stored_text(home: Path) -> bytes:
    """The store as an attacker holding it would read it: every file under OFFRAMP_HOME but the key file, and for
    a PostgreSQL store every row of every table as text."""
    blob = b"".join(path.read_bytes() for path in home.rglob("*") if path.is_file() and path.name != "secret.key")
    url = Environment().store_url
    if not url.startswith("sqlite"):
        engine = sa.create_engine(url)
        try:
            metadata = sa.MetaData()
            metadata.reflect(engine)
            with engine.connect() as connection:
                for table in metadata.tables.values():
                    blob += repr(connection.execute(table.select()).fetchall()).encode()
        finally:
            engine.dispose()
    return blob


def test_after_runs_with_faults_at_debug_level_nothing_leaks(
    store: str, cli: Any, initialized: Path, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMULATOR_APP_SECRET", DEFAULT_APP_SECRET)
    path = tmp_path / "orders.duckdb"
    write_orders(path, ROWS)
    name = set_up(cli, emulator, f"duckdb:{path}", BENCH_SQL)
    outputs: dict[str, str] = {}

    def debug(*args: str, code: int = 0, input: str | None = None) -> str:
        result = cli("--debug", *args, input=input)
        assert result.exit_code == code, result.stdout[:3000] + result.stderr[-2000:]
        outputs[" ".join(args)] = result.stdout + result.stderr
        stdout: str = result.stdout
        return stdout

    emulator.faults(fail={"40100": 0.1, "50000": 0.05}, http_502=0.02, access_token_ttl=1, random_seed=5)
    time.sleep(1.1)  # the token `credentials authorize` stored has expired: the run must refresh it
    first = json.loads(debug("run", name, "--json"))
    assert first["status"] == "succeeded" and first["rows"]["rejected"] > 0, first["error"]
    assert "offramp: DEBUG: event/track: " in outputs[f"run {name} --json"], "DEBUG logging is not on"
    assert len(emulator.state.auth.access_tokens) > 1, "no token was refreshed during the run"
    debug("run", name, "--dry-run", "--json")

    # An event TikTok refuses: its rows fail with TikTok's message. (Not together with the transient faults above:
    # isolating it takes a dozen requests, and under those faults its batch may use up its attempts.)
    with duckdb.connect(str(path), read_only=True) as con:
        query = "SELECT min(order_id) FROM orders WHERE email IS NOT NULL AND phone <> 'n/a'"
        [(poisoned,)] = con.sql(query).fetchall()
    emulator.faults(fail={}, http_502=0.0, poison={"event_id": poisoned})
    refused = json.loads(debug("run", name, "--json"))
    assert refused["status"] == "partially_failed" and refused["vendor_codes"] == {"40002": refused["rows"]["failed"]}

    emulator.faults(poison={})  # tokens still expire every second
    emulator.revoke()
    failed = debug("run", name, code=1)
    assert "error: " in failed, failed
    debug("credentials", "authorize", "tt", input=f"{emulator.state.issue_auth_code('admin')}\n")
    resumed = json.loads(debug("run", name, "--resume", "--json"))
    assert resumed["status"] == "succeeded"

    run_id = refused["id"]
    for reporting in (
        ["runs", "list"], ["runs", "list", "--json"], ["runs", "show", run_id], ["runs", "show", run_id, "--json"],
        ["runs", "show", run_id, "--rejects", "--format", "json"], ["runs", "show", run_id, "--rejects", "--format",
        "csv"], ["runs", "show", run_id, "--failed", "--format", "json"], ["runs", "show", first["id"]],
        ["orchestrations", "show", name, "--json"], ["orchestrations", "list", "--json"],
        ["destinations", "show", "stores", "--json"], ["destinations", "test", "stores"],
        ["credentials", "show", "tt"], ["credentials", "show", "tt", "--json"], ["credentials", "list", "--json"],
        ["credentials", "test", "tt", "--json"], ["export"], ["audit", "--json"],
    ):  # fmt: skip
        debug(*reporting)
    assert poisoned in outputs[f"runs show {run_id} --failed --format json"]  # the reports are not empty

    # Leaks are collected by name, never asserted with the value in the expression: pytest would print a secret.
    stored = stored_text(initialized)
    leaks: list[str] = []
    for value in identifiers(path):  # synthetic data: naming the value helps, and discloses nothing
        if value.encode() in stored:
            leaks.append(f"identifier {value!r} in the state store")
        leaks.extend(f"identifier {value!r} in `offramp {cmd}`" for cmd, text in outputs.items() if value in text)
    for what, value in secrets(emulator, initialized).items():
        if value.encode() in stored:
            leaks.append(f"the {what} in the state store")
        for command, text in outputs.items():
            if what.startswith("auth code") and command == "credentials authorize tt":
                continue  # the user typed it there (a used code is dead)
            if value in text:
                leaks.append(f"the {what} in `offramp {command}`")
    assert not leaks, "\n".join(leaks[:50])
