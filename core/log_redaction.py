"""A logging filter that masks secrets in log records, whatever library wrote them.

httpx logs every request URL at INFO, and TikTok's account endpoints take the app secret as a query parameter;
token endpoints carry tokens in bodies that some libraries log at DEBUG; a Slack incoming webhook's URL is itself
its secret. This filter is installed on the CLI's
handler so that even `--debug` output never holds a secret.
"""

from __future__ import annotations

import logging
import re

_SECRET_KEYS = r"(secret|app_secret|access_token|refresh_token|auth_code|token|password)"
_PATTERNS = (
    # key=value in query strings and forms
    re.compile(rf"(?i)\b{_SECRET_KEYS}=([^&\s\"']+)"),
    # "key": "value" in JSON
    re.compile(rf"(?i)([\"']{_SECRET_KEYS}[\"']\s*:\s*[\"'])([^\"']+)"),
    # Access-Token: value in headers
    re.compile(r"(?i)(access-token['\"]?\s*[:=]\s*['\"]?)([A-Za-z0-9._~+/=-]+)"),
    # A Slack incoming webhook's URL: its path (/services/T.../B.../TOKEN) is the secret that lets anyone post
    re.compile(r"(?i)(hooks\.slack(?:-gov)?\.com/services/)([^\s\"'<>]+)"),
)
MASK = "***"


def redact(text: str) -> str:
    """``text`` with every secret-looking value replaced by ``***``."""
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}={MASK}", text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _PATTERNS[2].sub(lambda m: f"{m.group(1)}{MASK}", text)
    return _PATTERNS[3].sub(lambda m: f"{m.group(1)}{MASK}", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with :func:`redact` before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


__all__ = ["MASK", "RedactingFilter", "redact"]
