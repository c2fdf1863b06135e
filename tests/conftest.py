"""Shared fixtures: an isolated OFFRAMP_HOME per test, the CLI run in-process, a PostgreSQL schema per test."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from offramp.core.cli import app
from offramp.core.environment import Environment
from offramp.core.services.context import Context
from offramp.core.services.credentials import credential_settings, get_credential
from offramp.core.services.workspaces import get_workspace
from offramp.core.state.store import open_store

POSTGRES_ENV = "OFFRAMP_TEST_POSTGRES_URL"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def one_line_error(self, *needles: str) -> str:
        """Assert the command failed as a user's mistake should: exit 1, one `offramp: error:` line, no traceback.

        Returns that line, after checking it contains every needle.
        """
        assert self.exit_code == 1, f"expected exit status 1, got {self.exit_code}:\n{self.output}"
        assert "Traceback" not in self.output
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got:\n{self.stderr}"
        assert lines[0].startswith("offramp: error: "), lines[0]
        for needle in needles:
            assert needle in lines[0], lines[0]
        return lines[0]


class Cli:
    """Runs `offramp ...` in this process, the way a user's shell would, and captures both streams."""

    def __init__(self) -> None:
        self._runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> CliResult:
        try:
            result = self._runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        finally:
            # The command pointed logging at the runner's stderr, which is closed now; a shell would have exited.
            root = logging.getLogger()
            for handler in list(root.handlers):
                root.removeHandler(handler)
            root.setLevel(logging.WARNING)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    def ok(self, *args: str, **kwargs: object) -> CliResult:
        """Run and assert success, showing the output when it fails."""
        result = self(*args, **kwargs)  # type: ignore[arg-type]
        assert result.exit_code == 0, f"offramp {' '.join(args)} failed:\n{result.output}"
        return result


@pytest.fixture(autouse=True)
def offramp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own OFFRAMP_HOME and working directory, and no OFFRAMP_* settings from outside."""
    for name in list(os.environ):
        if name.startswith("OFFRAMP_") and name != POSTGRES_ENV:
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("OFFRAMP_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture
def initialized(cli: Cli, offramp_home: Path) -> Path:
    """A store created by `offramp init` in the test's home."""
    cli.ok("init")
    return offramp_home


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL whose search_path is a fresh schema, dropped afterwards."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    schema = f"offramp_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def postgres_reader_url(postgres_url: str) -> Iterator[str]:
    """``postgres_url`` as a read-only warehouse role, the way users should connect sources (docs/operations.md):
    a login role with USAGE on the test's schema and SELECT on its tables, also on tables created later. Create the
    tables through ``postgres_url``; query them as a source through this one. The role is dropped afterwards."""
    url = make_url(postgres_url)
    schema = str(url.query["options"]).removeprefix("-csearch_path=")
    reader = f"offramp_reader_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE ROLE "{reader}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')
        connection.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{schema}" TO "{reader}"')
        connection.exec_driver_sql(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{reader}"')
        connection.exec_driver_sql(
            f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" GRANT SELECT ON TABLES TO "{reader}"'
        )
    try:
        yield url.set(username=reader).render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP OWNED BY "{reader}"')
            connection.exec_driver_sql(f'DROP ROLE "{reader}"')
        admin.dispose()


def read_stored_secrets(name: str, workspace: str = "production") -> dict[str, str]:
    """A credential's secret values as the code that uses it reads them, with the current OFFRAMP_* settings."""
    env = Environment()
    store = open_store(env)
    try:
        ctx = Context(env=env, store=store)
        with store.session() as session:
            row = get_credential(session, get_workspace(session, workspace), name)
            settings = credential_settings(ctx, row)
    finally:
        store.dispose()
    return {field: value.get_secret_value() for field, value in settings if isinstance(value, SecretStr)}


@pytest.fixture
def stored_secrets() -> Callable[..., dict[str, str]]:
    """``stored_secrets(name)``: the decrypted secrets of a stored credential."""
    return read_stored_secrets


# The fixture distributions carry their own tests, run inside their own venvs (tests/packaging/); collecting them
# here would import packages this environment does not have installed.
collect_ignore_glob = ["fixtures/*"]
