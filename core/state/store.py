"""Opening the state store: engine, sessions, schema version and upgrades.

SQLite is the default (``$OFFRAMP_HOME/offramp.db``); PostgreSQL through ``OFFRAMP_DATABASE_URL``. Several
processes may share one store: SQLite runs in WAL mode with a busy timeout, PostgreSQL uses row locks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from offramp.core.environment import DEFAULT_WORKSPACE, Environment
from offramp.core.errors import ConfigError, SchemaTooNewError, StateError, StoreNotInitializedError
from offramp.core.state.models import Workspace

logger = logging.getLogger(__name__)

MIGRATIONS = "offramp.core.state:migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; without them a credential in use could be deleted.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_store_engine(url: str) -> Engine:
    """An engine for the state store at ``url``."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "OFFRAMP_DATABASE_URL is not a valid SQLAlchemy URL",
            hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB",
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, pool_pre_ping=True)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _alembic_config(connection: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this offramp knows."""
    head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
    assert head is not None
    return head


class StateStore:
    """The state store of one deployment."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_store_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def display_url(self) -> str:
        """The URL with any password masked, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    def current_revision(self) -> str | None:
        """The schema revision the database is at, or None for a blank database."""
        try:
            with self.engine.connect() as connection:
                return MigrationContext.configure(connection).get_current_revision()
        except OperationalError as exc:
            raise StateError(
                f"cannot open the state store at {self.display_url}: {exc.orig}",
                hint="check OFFRAMP_DATABASE_URL / OFFRAMP_HOME and that the database server is running",
            ) from None

    def upgrade(self) -> tuple[str | None, str]:
        """Upgrade the schema to head; return (from, to)."""
        before = self.current_revision()
        with self.engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "head")
        return before, head_revision()

    def ensure_current(self, *, auto_upgrade: bool) -> None:
        """Make sure the schema is at head, upgrading it when allowed.

        Raises:
            StoreNotInitializedError: for a blank database.
            SchemaTooNewError: when a newer offramp wrote the schema.
            StateError: when the schema is older and auto upgrade is off.
        """
        current = self.current_revision()
        head = head_revision()
        if current == head:
            return
        if current is None:
            raise StoreNotInitializedError(
                f"the state store at {self.display_url} is not initialized", hint="run `offramp init`"
            )
        known = {script.revision for script in ScriptDirectory.from_config(_alembic_config(None)).walk_revisions()}
        if current not in known:
            raise SchemaTooNewError(
                f"the state store at {self.display_url} has schema {current}, written by a newer offramp",
                hint="upgrade offramp (pip install -U offramp) to use this store",
            )
        if not auto_upgrade:
            raise StateError(
                f"the state store at {self.display_url} has schema {current}; this offramp needs {head}",
                hint="run `offramp init` to upgrade it (OFFRAMP_AUTO_UPGRADE=0 is set)",
            )
        self.upgrade()
        logger.warning("upgraded the state store schema from %s to %s", current, head)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        with self._sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def initialize(env: Environment) -> tuple[StateStore, str | None, bool]:
    """Create or upgrade the store and the default workspace; return (store, previous revision, created)."""
    if env.database_url is None:
        Path(env.home).mkdir(parents=True, exist_ok=True)
    store = StateStore(env.store_url)
    before, _ = store.upgrade()
    if make_url(store.url).get_backend_name() == "sqlite":
        with store.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    with store.session() as session:
        if session.scalar(select(Workspace).where(Workspace.name == DEFAULT_WORKSPACE)) is None:
            session.add(Workspace(name=DEFAULT_WORKSPACE, description="Production configuration"))
    return store, before, before is None


def open_store(env: Environment) -> StateStore:
    """Open an initialized store, upgrading an older schema when ``OFFRAMP_AUTO_UPGRADE`` allows it."""
    if env.database_url is None and not (Path(env.home) / "offramp.db").exists():
        raise StoreNotInitializedError(
            f"no state store in {Path(env.home).resolve()}",
            hint="run `offramp init` (or set OFFRAMP_HOME / OFFRAMP_DATABASE_URL to an existing store)",
        )
    store = StateStore(env.store_url)
    store.ensure_current(auto_upgrade=env.auto_upgrade)
    return store


__all__ = ["StateStore", "create_store_engine", "head_revision", "initialize", "open_store"]
