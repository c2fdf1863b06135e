"""Encryption of secret settings at rest (Fernet / MultiFernet).

Keys never live in the database. They come from ``OFFRAMP_SECRET_KEY`` (comma-separated, newest first) or from
the key file ``$OFFRAMP_HOME/secret.key`` (one key per line or comma-separated, newest first), which
`offramp init` creates with mode 0600. Encryption always uses the newest key; decryption tries every key, which
is what makes rotation possible without downtime.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from offramp.core.environment import Environment
from offramp.core.errors import SecretKeyError

GENERATE_HINT = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


def _parse_keys(text: str, origin: str) -> list[Fernet]:
    parts = [part.strip() for line in text.splitlines() for part in line.split(",") if part.strip()]
    if not parts:
        raise SecretKeyError(f"{origin} holds no key", hint=f"generate one with {GENERATE_HINT}")
    keys = []
    for position, part in enumerate(parts, start=1):
        try:
            keys.append(Fernet(part.encode()))
        except ValueError:
            raise SecretKeyError(
                f"key {position} in {origin} is not a Fernet key (32 url-safe base64-encoded bytes)",
                hint=f"generate one with {GENERATE_HINT}",
            ) from None
    return keys


class SecretBox:
    """Encrypts under the newest key and decrypts under any of them."""

    def __init__(self, keys: list[Fernet], origin: str) -> None:
        self._fernet = MultiFernet(keys)
        self._newest = keys[0]
        self.key_count = len(keys)
        self.origin = origin

    def encrypt(self, plaintext: str) -> str:
        """Encrypt ``plaintext`` under the newest key."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str, what: str) -> str:
        """Decrypt a token; ``what`` names the secret in the error if no key fits."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                f"the secret key from {self.origin} cannot decrypt {what}",
                hint="set OFFRAMP_SECRET_KEY (or the key file) to the key the store was written with; "
                "while rotating, list the new key first and the old one after it, comma-separated",
            ) from None

    def rotate(self, token: str, what: str) -> str:
        """Re-encrypt a token under the newest key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            self.decrypt(token, what)  # raises with the explanation
            raise

    def is_newest(self, token: str) -> bool:
        """Whether the newest key alone decrypts ``token``."""
        try:
            self._newest.decrypt(token.encode())
        except InvalidToken:
            return False
        return True


def load_secret_box(env: Environment) -> SecretBox:
    """The keys from ``OFFRAMP_SECRET_KEY`` or the key file.

    Raises:
        SecretKeyError: when neither holds a usable key, naming what to set.
    """
    if env.secret_key is not None:
        return SecretBox(_parse_keys(env.secret_key.get_secret_value(), "OFFRAMP_SECRET_KEY"), "OFFRAMP_SECRET_KEY")
    path = env.key_file
    if not path.exists():
        raise SecretKeyError(
            f"no secret key: OFFRAMP_SECRET_KEY is not set and {path} does not exist",
            hint="restore the key file from your backup or set OFFRAMP_SECRET_KEY (a new store: run `offramp init`)",
        )
    return SecretBox(_parse_keys(path.read_text(), str(path)), str(path))


def write_key_file(path: Path, keys: list[str]) -> None:
    """Write keys (newest first) to ``path`` with mode 0600, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("\n".join(keys) + "\n")
    os.chmod(temporary, stat.S_IRUSR | stat.S_IWUSR)
    os.replace(temporary, path)


def read_key_file(path: Path) -> list[str]:
    """The keys in a key file, newest first."""
    return [part.strip() for line in path.read_text().splitlines() for part in line.split(",") if part.strip()]


def create_key_file(path: Path) -> bool:
    """Create a key file with a fresh key unless one exists; return whether it was created."""
    if path.exists():
        return False
    write_key_file(path, [Fernet.generate_key().decode()])
    return True


def new_key() -> str:
    """A fresh Fernet key."""
    return Fernet.generate_key().decode()


__all__ = ["SecretBox", "create_key_file", "load_secret_box", "new_key", "read_key_file", "write_key_file"]
