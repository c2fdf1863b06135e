"""Re-encrypting every stored secret under the newest key, without ever leaving a secret no key opens.

Rotation and every writer of secrets exclude each other through the secrets lock (offramp.core.state.locks): a
writer that encrypted under the key it loaded earlier re-encrypts under the key file's newest key once it holds
the lock, so nothing written concurrently stays under a key the rotation drops. With the key file, the rotation
holds the lock from writing the new key into the file (ahead of the old ones) until it committed the re-encrypted
rows; only then, under the lock again and once no row is under an old key, does the file keep the new key alone.
A rotation killed at any point leaves a file that opens every row, and the next rotation starts from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from offramp.core.errors import ConfigError
from offramp.core.secrets import SecretBox, load_secret_box, new_key, read_key_file, write_key_file
from offramp.core.services import audit
from offramp.core.services.context import Context
from offramp.core.state.locks import SECRET_MODELS, SecretHolder, take_secrets_lock

_DROP_ATTEMPTS = 10  # rounds of "re-encrypt what a writer without the lock left under an old key"


@dataclass(frozen=True)
class RotationResult:
    """How many secrets were re-encrypted, and where the keys live."""

    secrets: int
    key_origin: str
    key_file_rewritten: bool


def _rows(session: Session) -> list[SecretHolder]:
    rows: list[SecretHolder] = []
    for model in SECRET_MODELS:
        rows.extend(session.scalars(select(model).order_by(model.id).with_for_update()))
    return rows


def _subject(row: SecretHolder) -> str:
    return f"{type(row).__name__.lower()} {row.name!r}"


def _reencrypt(rows: list[SecretHolder], box: SecretBox) -> int:
    count = 0
    for row in rows:
        row.secrets = {
            name: {**record, "ciphertext": box.rotate(record["ciphertext"], f"{_subject(row)} field {name}")}
            for name, record in row.secrets.items()
        }
        count += len(row.secrets)
    return count


def _check_opens_store(session: Session, box: SecretBox) -> None:
    """Decrypt one stored secret (SecretKeyError naming what to set if no key opens it) before anything changes."""
    for model in SECRET_MODELS:
        for name, records in session.execute(select(model.name, model.secrets)):
            for field_name, record in (records or {}).items():
                box.decrypt(record["ciphertext"], f"{model.__name__.lower()} {name!r} field {field_name}")
                return


def _drop_old_keys(ctx: Context, path: Path) -> None:
    """Leave only the newest key in the key file, once (under the lock) no row is encrypted under another."""
    for _ in range(_DROP_ATTEMPTS):
        with ctx.store.session() as session:
            take_secrets_lock(session.connection())
            keys = read_key_file(path)
            if len(keys) < 2:
                return
            box = SecretBox(keys, str(path))
            stale = [
                row for row in _rows(session) if not all(box.is_newest(r["ciphertext"]) for r in row.secrets.values())
            ]
            if not stale:
                # Still under the lock: no writer can add a row under an old key before the file drops it.
                write_key_file(path, keys[:1])
                return
            _reencrypt(stale, box)  # committed below; the file is checked again in the next round
    raise ConfigError(
        f"secrets kept being written under an old key while rotating; {path} keeps the old keys as well",
        hint="stop processes of older offramp versions that write secrets, then run `offramp secrets rotate-key`",
    )


def rotate_key(ctx: Context) -> RotationResult:
    """Re-encrypt every secret under the newest key.

    With ``OFFRAMP_SECRET_KEY`` set, the newest key is its first; it must list the old key(s) after it. With the
    key file, a new key is generated: the file holds new and old keys while rows are re-encrypted (so a crash
    midway loses nothing), then only the new key.
    """
    if ctx.env.secret_key is not None:
        box = load_secret_box(ctx.env)
        if box.key_count < 2:
            raise ConfigError(
                "OFFRAMP_SECRET_KEY holds a single key, so there is nothing to rotate to",
                hint="set OFFRAMP_SECRET_KEY=NEW_KEY,OLD_KEY (newest first) and run again",
            )
        with ctx.store.session() as session:
            take_secrets_lock(session.connection())
            count = _reencrypt(_rows(session), box)
            audit.record(session, ctx.actor, "rotate-key", "secrets", None, None, {"secrets": count})
        return RotationResult(count, "OFFRAMP_SECRET_KEY", False)
    path = ctx.env.key_file
    with ctx.store.session() as session:
        take_secrets_lock(session.connection())
        old_keys = read_key_file(path) if path.exists() else []
        if not old_keys:
            load_secret_box(ctx.env)  # raises the "no secret key" error with its hint
        _check_opens_store(session, SecretBox(old_keys, str(path)))
        keys = [new_key(), *old_keys]
        # Written before any row changes, and under the lock: whatever happens next, the file opens every row.
        write_key_file(path, keys)
        count = _reencrypt(_rows(session), SecretBox(keys, str(path)))
        audit.record(session, ctx.actor, "rotate-key", "secrets", None, None, {"secrets": count})
    _drop_old_keys(ctx, path)
    return RotationResult(count, str(path), True)


__all__ = ["RotationResult", "rotate_key"]
