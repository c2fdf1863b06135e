"""`env:` in a field that is not secret is refused, never resolved and stored (issue 11, item 3).

Resolving it stored the variable's value in plain text: ``app_id: env:APP_SECRET`` put a secret unencrypted in the
store and in `export`. offramp now refuses it with one line, from `credentials add --set` and from `apply`; the
value is nowhere in the store, and the store is unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from test_bad_config import snapshot

from offramp.core.environment import Environment

SECRET_VALUE = "app-secret-value-5c1e9d"


def store_text() -> str:
    """Every value of every row of every table of the store, as text."""
    return repr(sorted(snapshot().items()))


def store_files(home: Path) -> bytes:
    return b"".join(path.read_bytes() for path in home.rglob("*") if path.is_file())


@pytest.fixture
def home(cli: Any, store: str, offramp_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("APP_SECRET", SECRET_VALUE)
    cli.ok("init")
    return store


def test_credentials_add_refuses_env_in_a_field_that_is_not_secret(cli: Any, home: str, offramp_home: Path) -> None:
    before = snapshot()
    cli(
        "credentials", "add", "tt", "--type", "tiktok-offline-events",
        "--set", "app_id=env:APP_SECRET", "--set", "app_secret=env:APP_SECRET",
    ).one_line_error(
        "app_id is not a secret, so `env:` is not read for it", "write app_id's value itself",
        "app_secret",
    )  # fmt: skip
    assert snapshot() == before
    assert SECRET_VALUE not in store_text()
    if home == "sqlite":
        assert SECRET_VALUE.encode() not in store_files(offramp_home)


def test_apply_refuses_env_in_a_field_that_is_not_secret(cli: Any, home: str, tmp_path: Path) -> None:
    document = {
        "workspace": "production",
        "credentials": [
            {"name": "tt", "type": "tiktok-offline-events",
             "settings": {"app_id": "env:APP_SECRET", "app_secret": "env:APP_SECRET"}},
            {"name": "tok", "type": "static-token", "settings": {"token": "env:APP_SECRET"}},
        ],
        "destinations": [
            {"name": "sink", "type": "dummy", "credential": "tok", "settings": {"seed": "env:APP_SECRET"}},
        ],
        "shared_secret_variables": ["APP_SECRET"],  # the same value feeds both secrets on purpose
    }  # fmt: skip
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump(document))
    before = snapshot()
    line = cli("apply", "-f", str(path)).one_line_error("app_id is not a secret", "seed is not a secret")
    assert "nothing was changed" in line
    assert snapshot() == before
    assert SECRET_VALUE not in store_text()


def test_a_secret_read_from_a_variable_is_exported_as_that_reference(cli: Any, home: str) -> None:
    """The secret side of the rule is unchanged: read once, stored encrypted, exported as ``env:NAME``."""
    cli.ok("credentials", "add", "tok", "--type", "static-token", "--set", "token=env:APP_SECRET")
    exported = cli.ok("export").stdout
    assert yaml.safe_load(exported)["credentials"][0]["settings"] == {"token": "env:APP_SECRET"}
    assert SECRET_VALUE not in exported and SECRET_VALUE not in store_text()
    engine = sa.create_engine(Environment().store_url)
    try:
        with engine.connect() as connection:
            [secrets] = connection.execute(sa.text("SELECT secrets FROM credentials")).scalars()
    finally:
        engine.dispose()
    assert "ciphertext" in str(secrets) and SECRET_VALUE not in str(secrets)
