"""How offramp signs what it POSTs to a receiver (the webhook destination, alert webhooks), and how one checks it.

A request carries ``X-Offramp-Timestamp`` (Unix seconds) and ``X-Offramp-Signature``: ``sha256=`` and the hex
HMAC-SHA256, under the shared secret, of the timestamp, a dot and the exact body bytes. Signing the timestamp with
the body lets a receiver refuse a replayed request: :func:`verify_signature` refuses one older than five minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "X-Offramp-Signature"
TIMESTAMP_HEADER = "X-Offramp-Timestamp"
MAX_SKEW_SECONDS = 300


def signature(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``X-Offramp-Signature`` value of ``body`` signed at ``timestamp``."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_headers(secret: bytes, body: bytes, now: float | None = None) -> dict[str, str]:
    """The timestamp and signature headers of one request carrying ``body`` (sign each attempt afresh)."""
    timestamp = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, body, timestamp)}


def verify_signature(
    secret: bytes, body: bytes, headers: Mapping[str, str], *, now: float | None = None,
    tolerance: float = MAX_SKEW_SECONDS,
) -> bool:  # fmt: skip
    """True when ``body`` with ``headers`` (any letter case) was signed with ``secret`` within ``tolerance`` seconds
    of ``now``: what a receiver checks before trusting a request."""
    lowered = {key.lower(): value for key, value in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower())
    given = lowered.get(SIGNATURE_HEADER.lower())
    if not timestamp or not given or not (timestamp.isascii() and timestamp.isdigit()):
        return False  # isdigit() alone takes digits such as "²", which int() refuses
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    # Compared as bytes: compare_digest() raises on text that is not ASCII.
    return hmac.compare_digest(signature(secret, body, int(timestamp)).encode(), given.encode("utf-8", "replace"))


__all__ = [
    "MAX_SKEW_SECONDS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "signature",
    "signature_headers",
    "verify_signature",
]
