"""Encryption of secret settings at rest (Fernet / MultiFernet).

Keys never live in the database. They come from ``OFFRAMP_SECRET_KEY`` (comma-separated, newest first) or from
the key file ``$OFFRAMP_HOME/secret.key`` (one key per line or comma-separated, newest first), which
`offramp init` creates with mode 0600. Encryption always uses the newest key; decryption tries every key, which
is what makes rotation possible without downtime.
"""

from __future__ import annotations

import os
import stat
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from offramp.core.environment import Environment
from offramp.core.errors import SecretKeyError

GENERATE_HINT = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


def _split_keys(text: str) -> list[str]:
    return [part.strip() for line in text.splitlines() for part in line.split(",") if part.strip()]


def _parse_keys(text: str, origin: str) -> list[str]:
    """The keys in ``text``, newest first, each checked to be a Fernet key."""
    parts = _split_keys(text)
    if not parts:
        raise SecretKeyError(f"{origin} holds no key", hint=f"generate one with {GENERATE_HINT}")
    for position, part in enumerate(parts, start=1):
        try:
            Fernet(part.encode())
        except ValueError:
            raise SecretKeyError(
                f"key {position} in {origin} is not a Fernet key (32 url-safe base64-encoded bytes)",
                hint=f"generate one with {GENERATE_HINT}",
            ) from None
    return parts


@dataclass(frozen=True)
class _Keys:
    """One consistent set of keys: swapped whole, since the threads of a run share a box another thread reloads."""

    origin_keys: tuple[str, ...]  # what the origin holds, newest first
    retired: tuple[str, ...]  # keys the origin no longer holds that this box still decrypts with
    fernet: MultiFernet
    newest: Fernet

    @classmethod
    def of(cls, origin_keys: list[str], retired: list[str]) -> _Keys:
        every = [*origin_keys, *retired]
        fernets = [Fernet(key.encode()) for key in every]
        return cls(tuple(origin_keys), tuple(retired), MultiFernet(fernets), fernets[0])


# Every box of this process that was loaded from a key file, so that a writer of secrets, once it holds the secrets
# lock, can open what this process encrypted under a key that a rotation has since dropped from the file.
_key_file_boxes: weakref.WeakSet[SecretBox] = weakref.WeakSet()


class SecretBox:
    """Encrypts under the newest key and decrypts under any of them.

    A box loaded from the key file follows the file: when no key it holds opens a secret (a rotation in another
    process replaced the key since), it reads the file again and retries once. It keeps the keys it held before,
    for decrypting only, so that what this process encrypted before the rotation still opens.
    """

    def __init__(self, keys: list[str], origin: str, key_file: Path | None = None, retired: list[str] | None = None):
        self.origin = origin
        self.key_file = key_file
        self._lock = threading.Lock()
        self._keys = _Keys.of(keys, retired or [])
        if key_file is not None:
            _key_file_boxes.add(self)

    @property
    def key_count(self) -> int:
        """How many keys the origin holds (not counting retired ones this process still remembers)."""
        return len(self._keys.origin_keys)

    def reload(self) -> bool:
        """Read the key file again (a rotation may have changed it); whether the keys changed."""
        if self.key_file is None or not self.key_file.exists():
            return False
        fresh = _parse_keys(self.key_file.read_text(), str(self.key_file))
        with self._lock:
            current = self._keys
            if tuple(fresh) == current.origin_keys:
                return False
            held = [*current.origin_keys, *current.retired]
            self._keys = _Keys.of(fresh, [key for key in held if key not in fresh])
            return True

    def encrypt(self, plaintext: str) -> str:
        """Encrypt ``plaintext`` under the newest key."""
        return self._keys.fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str, what: str) -> str:
        """Decrypt a token; ``what`` names the secret in the error if no key fits."""
        try:
            return self._keys.fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            pass
        # A rotation in another process may have re-encrypted the store under a key this process never read.
        if self.reload():
            try:
                return self._keys.fernet.decrypt(token.encode()).decode()
            except InvalidToken:
                pass
        raise SecretKeyError(
            f"the secret key from {self.origin} cannot decrypt {what}",
            hint="set OFFRAMP_SECRET_KEY (or the key file) to the key the store was written with; "
            "while rotating, list the new key first and the old one after it, comma-separated",
        )

    def rotate(self, token: str, what: str) -> str:
        """Re-encrypt a token under the newest key."""
        try:
            return self._keys.fernet.rotate(token.encode()).decode()
        except InvalidToken:
            self.decrypt(token, what)  # raises with the explanation, or reloads the file so that it opens below
            return self._keys.fernet.rotate(token.encode()).decode()

    def is_newest(self, token: str) -> bool:
        """Whether the newest key alone decrypts ``token``."""
        try:
            self._keys.newest.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def held_keys(self) -> list[str]:
        """Every key this box decrypts with, newest first (for the store's secrets lock; never shown)."""
        keys = self._keys
        return [*keys.origin_keys, *keys.retired]


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
    return SecretBox(_parse_keys(path.read_text(), str(path)), str(path), key_file=path)


def key_file_box(path: Path) -> SecretBox:
    """The key file as it is now, for a writer that holds the secrets lock.

    It encrypts under the file's newest key and also decrypts under every key this process's boxes of that file
    hold, so that secrets this process encrypted before a rotation can be re-encrypted under the new key. Those
    boxes move to the file's newest key as well.
    """
    fresh = _parse_keys(path.read_text(), str(path))
    retired: list[str] = []
    resolved = path.resolve()
    for box in list(_key_file_boxes):
        if box.key_file is None or box.key_file.resolve() != resolved:
            continue
        box.reload()
        retired.extend(key for key in box.held_keys() if key not in fresh and key not in retired)
    return SecretBox(fresh, str(path), retired=retired)


def file_keys_open(path: Path, token: str) -> bool:
    """Whether the key file's own keys (not keys this process remembers) decrypt ``token``."""
    try:
        MultiFernet([Fernet(key.encode()) for key in _parse_keys(path.read_text(), str(path))]).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


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
    return _split_keys(path.read_text())


def create_key_file(path: Path) -> bool:
    """Create a key file with a fresh key unless one exists; return whether it was created."""
    if path.exists():
        return False
    write_key_file(path, [Fernet.generate_key().decode()])
    return True


def new_key() -> str:
    """A fresh Fernet key."""
    return Fernet.generate_key().decode()


__all__ = [
    "SecretBox",
    "create_key_file",
    "file_keys_open",
    "key_file_box",
    "load_secret_box",
    "new_key",
    "read_key_file",
    "write_key_file",
]
