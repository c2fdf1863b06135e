"""The secrets lock: key rotation and every writer of secrets exclude each other, across processes.

A rotation writes a new key to the key file, re-encrypts every stored secret under it, commits, then drops the
old keys. A writer that encrypted a secret under the key it loaded earlier must not commit it after the rotation
read the rows, or the secret would be under a key that is about to go. So every transaction that writes a
credential's, a destination's or an alert channel's secrets takes the secrets lock when it flushes them (a session
event, so no writer can forget it), reads the key file again while it holds the lock, and re-encrypts under the
file's newest key what is not under it yet. The rotation holds the same lock from before it writes the key file
until it commits.

- PostgreSQL: a transaction-level advisory lock (``pg_advisory_xact_lock``), released at commit or rollback. It
  is also taken before any ``SELECT ... FOR UPDATE`` of a credential or destination, so that the secrets lock is
  always taken before such row locks and a writer and a rotation never wait for each other.
- SQLite: the database's write lock. Every write transaction already holds it from BEGIN IMMEDIATE; a deferred one
  takes it with a write that changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import InstanceState, ORMExecuteState, Session

from offramp.core.errors import SecretKeyError
from offramp.core.secrets import file_keys_open, key_file_box
from offramp.core.state.models import AlertChannel, Credential, Destination

# Every table that holds secrets (a ``secrets`` column of Fernet records): the writers this lock guards, and what a
# key rotation re-encrypts.
SECRET_MODELS = (Credential, Destination, AlertChannel)
SecretHolder = Credential | Destination | AlertChannel

# Any constant every offramp agrees on ("offramp" and 1, as the 64-bit key of a PostgreSQL advisory lock).
SECRETS_LOCK_KEY = int.from_bytes(b"offramp\x01", "big")
IMMEDIATE_MARK = "offramp_sqlite_immediate"  # in Connection.info while its transaction holds the write lock
KEY_FILE_OPTION = "offramp_key_file"  # execution option of a store whose secrets are under the key file


def holds_sqlite_write_lock(connection: Connection) -> bool:
    """Whether ``connection`` is in a SQLite transaction that began IMMEDIATE, so holds the write lock."""
    return bool(connection.info.get(IMMEDIATE_MARK))


def take_secrets_lock(connection: Connection) -> None:
    """Hold the secrets lock until ``connection``'s transaction ends (waits for it)."""
    backend = connection.dialect.name
    if backend == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SECRETS_LOCK_KEY})")
    elif backend == "sqlite" and not holds_sqlite_write_lock(connection):
        # A write, even of nothing, takes SQLite's write lock (waiting up to the busy timeout).
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = version_num WHERE 0")


def _writes_secrets(session: Session, row: object) -> bool:
    if not isinstance(row, SECRET_MODELS):
        return False
    if row in session.new:
        return bool(row.secrets)
    state: InstanceState[Any] = inspect(row)
    return bool(state.attrs.secrets.history.has_changes())


def _stored_ciphertext(connection: Connection, rows: list[SecretHolder]) -> str | None:
    """One ciphertext already stored on a row other than ``rows``, to check the key file against."""
    skip = {(type(row), row.id) for row in rows if row.id is not None}
    for model in SECRET_MODELS:
        for row_id, records in connection.execute(select(model.id, model.secrets)):
            if (model, row_id) in skip:
                continue
            for record in (records or {}).values():
                return str(record["ciphertext"])
    return None


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    rows = [row for row in (*session.new, *session.dirty) if _writes_secrets(session, row)]
    if not rows:
        return
    connection = session.connection()
    take_secrets_lock(connection)
    key_file = connection.get_execution_options().get(KEY_FILE_OPTION)
    if key_file is None or not Path(key_file).exists():
        return  # keys from OFFRAMP_SECRET_KEY: the operator rotates them in every process's environment
    path = Path(key_file)
    box = key_file_box(path)  # read now, under the lock: what a rotation that finished before us left
    stale = [row for row in rows if not all(box.is_newest(r["ciphertext"]) for r in row.secrets.values())]
    if not stale:
        return
    # This process encrypted under a key the file no longer leads with. Move to the file's newest key, but only if
    # the file still opens the store: a key file swapped for a wrong key must not get secrets written under it.
    with session.no_autoflush:
        stored = _stored_ciphertext(connection, rows)
    if stored is not None and not file_keys_open(path, stored):
        raise SecretKeyError(
            f"the keys in {path} cannot decrypt the secrets already stored",
            hint="restore the key file from your backup (its newest key first); nothing was written",
        )
    for row in stale:
        subject = f"{type(row).__name__.lower()} {row.name!r}"
        row.secrets = {
            name: record
            if box.is_newest(record["ciphertext"])
            else {**record, "ciphertext": box.rotate(record["ciphertext"], f"{subject} field {name}")}
            for name, record in row.secrets.items()
        }


def _before_locking_read(state: ORMExecuteState) -> None:
    # On PostgreSQL a writer may lock a credential's row (SELECT ... FOR UPDATE, as a token refresh does) and write
    # its secrets later in the transaction, while a rotation holding the secrets lock waits for that row: each would
    # wait for the other, and PostgreSQL would abort one (perhaps the refresh, whose new token TikTok already
    # issued). Taking the secrets lock before any such row lock keeps one order, secrets lock first, everywhere.
    if not state.is_select or getattr(state.statement, "_for_update_arg", None) is None:
        return
    if not any(mapper.class_ in SECRET_MODELS for mapper in state.all_mappers):
        return
    connection = state.session.connection()
    if connection.dialect.name == "postgresql":
        take_secrets_lock(connection)


event.listen(Session, "before_flush", _before_flush)
event.listen(Session, "do_orm_execute", _before_locking_read)


__all__ = [
    "IMMEDIATE_MARK",
    "KEY_FILE_OPTION",
    "SECRETS_LOCK_KEY",
    "SECRET_MODELS",
    "SecretHolder",
    "holds_sqlite_write_lock",
    "take_secrets_lock",
]
