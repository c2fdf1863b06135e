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
from sqlalchemy.exc import ArgumentError, DatabaseError
from sqlalchemy.orm import Session, sessionmaker

from offramp.core.environment import DEFAULT_WORKSPACE, Environment
from offramp.core.errors import ConfigError, SchemaTooNewError, StateError, StoreNotInitializedError
from offramp.core.state.models import Workspace

logger = logging.getLogger(__name__)

MIGRATIONS = "offramp.core.state:migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite opens transactions itself, and not before a SAVEPOINT: the first savepoint then is the transaction
    # and its RELEASE commits, so a rollback (a dry run, a failed apply) would keep changes. Take BEGIN over.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; without them a credential in use could be deleted.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # In WAL mode NORMAL keeps the database consistent and every commit survives a crash of the process (a killed
    # run); only a power cut may take back the last commits. FULL would wait for the disk at each of a run's
    # ledger checkpoints. What a power cut could take back is resent on resume and deduplicated by event_id.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # BEGIN IMMEDIATE takes SQLite's write lock at once (waiting up to busy_timeout): the cross-process lock that
    # PostgreSQL gives with SELECT ... FOR UPDATE, asked for with execution_options(sqlite_immediate=True).
    immediate = connection.get_execution_options().get("sqlite_immediate", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


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
        event.listen(engine, "begin", _sqlite_begin)
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
        except DatabaseError as exc:  # unreachable server, or a file that is not a database
            raise StateError(
                f"cannot open the state store at {self.display_url}: {exc.orig}",
                hint="check OFFRAMP_DATABASE_URL / OFFRAMP_HOME and that the database server is running",
            ) from None

    def upgrade(self) -> tuple[str | None, str]:
        """Upgrade the schema to head; return (from, to)."""
        before = self.current_revision()
        self._refuse_newer(before)
        with self.engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "head")
        return before, head_revision()

    def _refuse_newer(self, current: str | None) -> None:
        # Alembic would only say it "can't locate revision"; say who wrote it and what to do.
        known = {script.revision for script in ScriptDirectory.from_config(_alembic_config(None)).walk_revisions()}
        if current is not None and current not in known:
            raise SchemaTooNewError(
                f"the state store at {self.display_url} has schema {current}, written by a newer offramp",
                hint="install the newer offramp that wrote it (pull it and reinstall) to use this store",
            )

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
        self._refuse_newer(current)
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
    database_file = Path(env.home) / "offramp.db"
    new_file = env.database_url is None and not database_file.exists()
    if env.database_url is None:
        # The store holds ciphertext and ledgers: keep it readable by its owner only.
        Path(env.home).mkdir(mode=0o700, parents=True, exist_ok=True)
    store = StateStore(env.store_url)
    try:
        before, _ = store.upgrade()
    except BaseException:
        store.dispose()  # e.g. a schema from a newer offramp: nobody else gets the store to close it
        raise
    if new_file and database_file.exists():
        database_file.chmod(0o600)  # SQLite gives its -wal and -shm files the same mode
    if make_url(store.url).get_backend_name() == "sqlite":
        # Outside any transaction: SQLite cannot switch to WAL inside one.
        raw = store.engine.raw_connection()
        try:
            raw.cursor().execute("PRAGMA journal_mode=WAL")
        finally:
            raw.close()
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
    try:
        store.ensure_current(auto_upgrade=env.auto_upgrade)
    except BaseException:
        store.dispose()  # the caller never gets the store, so nobody else could close its connections
        raise
    return store


__all__ = ["StateStore", "create_store_engine", "head_revision", "initialize", "open_store"]
