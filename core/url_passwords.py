"""Passwords in database URLs: found wherever they sit (userinfo or query string), refused, and masked in messages.

A URL is configuration: it is stored (a source), exported, kept in shell history and readable by other processes of
the same user (``/proc/PID/environ``). So a password never travels in one; the database driver takes it from its own
mechanisms instead (for PostgreSQL: ``PGPASSWORD``, ``~/.pgpass`` or a ``PGSERVICE`` entry).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from offramp.core.errors import ConfigError

MASK = "***"

# Query parameters that carry a password in some driver: any name holding "password" or "passwd" (libpq's
# password and sslpassword, MySQL drivers' passwd) or ending in "pwd" (ODBC's pwd, Snowflake's
# private_key_file_pwd). A parameter whose value is itself a connection string (pyodbc's odbc_connect) is searched too.
_PASSWORD_KEY = re.compile(r"(?i)password|passwd|pwd$")
_PASSWORD_IN_VALUE = re.compile(r"(?i)(?:password|passwd)[\w.-]*\s*=\s*[^;&\s]|pwd\s*=\s*[^;&\s]")

_POSTGRES_FIX = (
    "give it to libpq instead: PGPASSWORD in offramp's environment, ~/.pgpass, or a service in ~/.pg_service.conf "
    "named by ?service=NAME (docs/operations.md: Passwords for database URLs)"
)
_OTHER_FIX = (
    "give it through the driver's own password file or environment variable "
    "(docs/operations.md: Passwords for database URLs)"
)


def _parse(text: str) -> URL | None:
    try:
        return make_url(text)
    except ArgumentError:
        return None


def password_fields(text: str) -> list[str]:
    """Where ``text`` (a SQLAlchemy URL) holds a password: ``"userinfo"`` and/or the query parameter names."""
    url = _parse(text)
    if url is None:
        return []
    found = ["userinfo"] if url.password else []
    for key, value in url.query.items():
        values = value if isinstance(value, tuple) else (value,)
        if _PASSWORD_KEY.search(key) and any(values):
            found.append(key)
        elif any(_PASSWORD_IN_VALUE.search(unquote_plus(item)) for item in values):
            found.append(key)
    return found


def refuse_password_in_url(text: str, what: str) -> None:
    """Raise ConfigError when the URL ``text`` holds a password; the message names where, never the value.

    Args:
        text: A SQLAlchemy URL (anything else passes: it is checked elsewhere).
        what: How to name the URL in the message, e.g. ``OFFRAMP_DATABASE_URL``.
    """
    fields = password_fields(text)
    if not fields:
        return
    url = _parse(text)
    assert url is not None
    where = " and ".join("USER:PASSWORD@" if f == "userinfo" else f"?{f}=" for f in fields)
    fix = _POSTGRES_FIX if url.get_backend_name() == "postgresql" else _OTHER_FIX
    raise ConfigError(
        f"{what} holds a password ({where}); offramp takes no password in a URL, since URLs end up in "
        "configuration, exports and process listings",
        hint=f"remove it from the URL and {fix}",
    )


def masked_url(text: str) -> str:
    """``text`` with every password (userinfo or query parameter) replaced by ``***``, for messages."""
    url = _parse(text)
    if url is None:
        return "(a URL that cannot be read)"  # not echoed: it may hold a password
    fields = set(password_fields(text))
    if not fields:
        return text
    if "userinfo" in fields:
        url = url.set(password=MASK)
    query = {key: MASK if key in fields else value for key, value in url.query.items()}
    rendered = url.set(query=query).render_as_string(hide_password=False)
    return rendered.replace("%2A%2A%2A", MASK)


__all__ = ["MASK", "masked_url", "password_fields", "refuse_password_in_url"]
