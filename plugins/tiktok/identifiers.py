"""Normalization and hashing of TikTok matching identifiers: email, phone, external_id (docs/tiktok-api-facts.md,
"Hashing").

- email: trimmed and lower-cased; phone: parsed with phonenumbers in a default region, kept only when
  ``is_valid_number`` and written E.164; external_id: trimmed. Then SHA-256, lowercase hex.
- A value that already is 64 hex characters is taken as hashed and passes through (lower-cased), so a user who
  pre-hashes is not hashed twice.
- Empty values are dropped, never hashed (the hash of "" would match nothing and pollute the event).

This is the reference implementation, one value at a time; parsing a phone number is slow (tens of microseconds),
so results are cached by distinct (value, region).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

_HEX64 = re.compile(r"^[0-9A-Fa-f]{64}$")


@dataclass(frozen=True)
class Normalized:
    """The hashes of one identifier column's values, and why any value was dropped."""

    hashes: tuple[str, ...]
    invalid: tuple[str, ...] = ()  # reason codes of dropped values (never the values themselves)


def sha256_hex(text: str) -> str:
    """SHA-256 of UTF-8 text, lowercase hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _prehashed(value: str) -> str | None:
    return value.lower() if _HEX64.match(value) else None


def hash_email(value: str) -> str | None:
    """The hash of an email address, or None for an empty one."""
    text = value.strip()
    if not text:
        return None
    return _prehashed(text) or sha256_hex(text.lower())


def hash_external_id(value: str) -> str | None:
    """The hash of an external id (trimmed, case kept: lower-casing it is not TikTok's rule), or None if empty."""
    text = value.strip()
    if not text:
        return None
    return _prehashed(text) or sha256_hex(text)


def parse_e164(value: str, region: str) -> str | None:
    """A phone number in E.164 (``+`` and digits) when phonenumbers deems it valid in ``region``, else None."""
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    # Checking the default region first is the same test (a number valid there is valid) at a quarter of the
    # cost: is_valid_number has to find the number's region among all that share its country code.
    if not (phonenumbers.is_valid_number_for_region(parsed, region) or phonenumbers.is_valid_number(parsed)):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# Parsing costs tens of microseconds and the same numbers recur across rows and runs: cache by distinct value.
e164 = lru_cache(maxsize=1 << 18)(parse_e164)


def hash_phone(value: str, region: str, parse: Callable[[str, str], str | None] = e164) -> tuple[str | None, bool]:
    """(hash, invalid): the hash of a valid phone number; an invalid one is dropped and flagged.

    ``parse`` is the E.164 parser: cached by default; the benchmark passes ``parse_e164`` for a plain baseline.
    """
    text = value.strip()
    if not text:
        return None, False
    hashed = _prehashed(text)
    if hashed is not None:
        return hashed, False
    number = parse(text, region)
    if number is None:
        return None, True
    return sha256_hex(number), False


def _values(value: object) -> Iterable[str]:
    """One value or a list of them (a DuckDB LIST, an array column), without NULLs, as text."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return (str(item) for item in value if item is not None)
    return (str(value),)


def _unique(hashes: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(h for h in hashes if h is not None))


def normalize_emails(value: object) -> Normalized:
    """Hashes of an email column's value (one or a list), deduplicated, in order."""
    return Normalized(_unique(hash_email(text) for text in _values(value)))


def normalize_external_ids(value: object) -> Normalized:
    """Hashes of an external_id column's value (one or a list), deduplicated, in order."""
    return Normalized(_unique(hash_external_id(text) for text in _values(value)))


def normalize_phones(value: object, region: str, parse: Callable[[str, str], str | None] = e164) -> Normalized:
    """Hashes of a phone column's value (one or a list); invalid numbers are dropped and reported."""
    hashes: list[str | None] = []
    invalid: list[str] = []
    for text in _values(value):
        hashed, is_invalid = hash_phone(text, region, parse)
        hashes.append(hashed)
        if is_invalid:
            invalid.append("invalid_phone")
    return Normalized(_unique(hashes), tuple(invalid))


__all__ = [
    "Normalized",
    "e164",
    "hash_email",
    "hash_external_id",
    "hash_phone",
    "normalize_emails",
    "normalize_external_ids",
    "normalize_phones",
    "parse_e164",
    "sha256_hex",
]
