"""Opening the state store: engine, sessions, schema version and upgrades.

SQLite is the default (``$OFFRAMP_HOME/offramp.db``); PostgreSQL through ``OFFRAMP_DATABASE_URL``. Several
processes may share one store: SQLite runs in WAL mode with a busy timeout, PostgreSQL uses row locks.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError
from sqlalchemy.orm import Session, sessionmaker

from offramp.core.environment import DEFAULT_WORKSPACE, Environment
from offramp.core.errors import ConfigError, SchemaTooNewError, StateError, StoreNotInitializedError
from offramp.core.state.locks import IMMEDIATE_MARK, KEY_FILE_OPTION
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


class _SqliteWriteLock:
    """Which threads of this process hold a store's SQLite write lock, so that none waits for itself.

    BEGIN IMMEDIATE takes SQLite's write lock at once, waiting for it up to busy_timeout: the cross-process lock
    that PostgreSQL gives with SELECT ... FOR UPDATE. A deferred BEGIN that reads and then writes must upgrade its
    lock, and SQLite answers that upgrade with "database is locked" at once, whatever the busy timeout, when
    another process wrote meanwhile; so every write transaction is IMMEDIATE (StateStore.session(), or
    execution_options(sqlite_immediate=True)). A transaction begun while the same thread already holds the lock (a
    check that reads, inside a command's transaction) would wait for that thread itself: it stays deferred.
    """

    def __init__(self) -> None:
        self._held = threading.local()  # .connection: a weak reference to this thread's IMMEDIATE transaction

    def _holder(self) -> Connection | None:
        reference = getattr(self._held, "connection", None)
        holder = reference() if reference is not None else None
        # A connection that was invalidated or closed without a commit or rollback event holds nothing any more.
        return holder if holder is not None and not holder.closed and holder.in_transaction() else None

    def begin(self, connection: Connection) -> None:
        wanted = connection.get_execution_options().get("sqlite_immediate", False)
        if wanted and self._holder() is None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            self._held.connection = weakref.ref(connection)
            connection.info[IMMEDIATE_MARK] = True
        else:
            connection.exec_driver_sql("BEGIN")

    def end(self, connection: Connection) -> None:
        connection.info.pop(IMMEDIATE_MARK, None)
        reference = getattr(self._held, "connection", None)
        if reference is not None and reference() is connection:
            self._held.connection = None


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
        lock = _SqliteWriteLock()
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", lock.begin)
        event.listen(engine, "commit", lock.end)
        event.listen(engine, "rollback", lock.end)
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

    def __init__(self, url: str, key_file: Path | None = None) -> None:
        self.url = url
        self.engine = create_store_engine(url)
        if key_file is not None:
            # Writers of secrets re-read this file under the secrets lock (offramp.core.state.locks).
            self.engine.update_execution_options(**{KEY_FILE_OPTION: str(key_file)})
        # Writers take the write lock up front on SQLite (ignored by PostgreSQL, which keeps its row locks).
        self._sessions = sessionmaker(self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False)
        self._read_sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def display_url(self) -> str:
        """The URL with any password masked (the user part and query parameters such as ``?password=``), for
        messages."""
        from offramp.core.url_passwords import masked_url  # here: this property is all of store.py it concerns

        return masked_url(self.url)

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
        with self.engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # A migration that rebuilds a table on SQLite drops it and renames its copy: with foreign keys on,
                # the drop would cascade into the tables that refer to it (a group's members, runs). They can only
                # be switched off outside a transaction, so on the raw connection, before it begins one; they are
                # checked before the commit instead (Alembic's advice for batch migrations on SQLite).
                connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            try:
                with connection.begin():
                    command.upgrade(_alembic_config(connection), "head")
                    if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                        raise StateError(
                            "the schema upgrade would leave references to rows that do not exist; nothing was changed",
                            hint="report it, with `sqlite3 offramp.db 'PRAGMA foreign_key_check'`",
                        )
            finally:
                if sqlite:
                    connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
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
        """A session in a transaction: committed on success, rolled back on error.

        On SQLite the transaction holds the database's write lock from its start (BEGIN IMMEDIATE, waiting for it
        up to the busy timeout), so that concurrent processes queue instead of failing with "database is locked".
        """
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session that only reads: on SQLite a deferred transaction, which in WAL mode never waits for a writer."""
        with self._read_sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _key_file(env: Environment) -> Path | None:
    """The key file the store's secrets are under, or None when the keys come from OFFRAMP_SECRET_KEY."""
    return None if env.secret_key is not None else Path(env.key_file)


def initialize(env: Environment) -> tuple[StateStore, str | None, bool]:
    """Create or upgrade the store and the default workspace; return (store, previous revision, created)."""
    database_file = Path(env.home) / "offramp.db"
    new_file = env.database_url is None and not database_file.exists()
    if env.database_url is None:
        # The store holds ciphertext and ledgers: keep it readable by its owner only.
        Path(env.home).mkdir(mode=0o700, parents=True, exist_ok=True)
    store = StateStore(env.store_url, _key_file(env))
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
    store = StateStore(env.store_url, _key_file(env))
    try:
        store.ensure_current(auto_upgrade=env.auto_upgrade)
    except BaseException:
        store.dispose()  # the caller never gets the store, so nobody else could close its connections
        raise
    return store


__all__ = ["StateStore", "create_store_engine", "head_revision", "initialize", "open_store"]
