"""Re-encrypting every stored secret under the newest key."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from offramp.core.errors import ConfigError
from offramp.core.secrets import SecretBox, load_secret_box, new_key, read_key_file, write_key_file
from offramp.core.services import audit
from offramp.core.services.context import Context
from offramp.core.state.models import Credential, Destination


@dataclass(frozen=True)
class RotationResult:
    """How many secrets were re-encrypted, and where the keys live."""

    secrets: int
    key_origin: str
    key_file_rewritten: bool


def _reencrypt_all(ctx: Context, box: SecretBox) -> int:
    count = 0
    with ctx.store.session() as session:
        rows: list[Credential | Destination] = [
            *session.scalars(select(Credential).with_for_update()),
            *session.scalars(select(Destination).with_for_update()),
        ]
        for row in rows:
            subject = f"{type(row).__name__.lower()} {row.name!r}"
            row.secrets = {
                name: {**record, "ciphertext": box.rotate(record["ciphertext"], f"{subject} field {name}")}
                for name, record in row.secrets.items()
            }
            count += len(row.secrets)
        audit.record(session, ctx.actor, "rotate-key", "secrets", None, None, {"secrets": count})
    return count


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
        return RotationResult(_reencrypt_all(ctx, box), "OFFRAMP_SECRET_KEY", False)
    path = ctx.env.key_file
    old_keys = read_key_file(path) if path.exists() else []
    if not old_keys:
        load_secret_box(ctx.env)  # raises the "no secret key" error with its hint
    keys = [new_key(), *old_keys]
    write_key_file(path, keys)
    box = load_secret_box(ctx.env)
    count = _reencrypt_all(ctx, box)
    write_key_file(path, keys[:1])
    return RotationResult(count, str(path), True)


__all__ = ["RotationResult", "rotate_key"]
