"""Reading a `timestamp` value into TikTok's `event_time` (integer Unix seconds, UTC).

Accepted: datetimes (aware, or naive and read in the orchestration's timezone), dates (midnight there), ISO-8601
text with or without a zone, and epoch seconds or milliseconds (numbers, or digits as text; values from 1e11 up
are milliseconds). Fractions of a second are dropped (floor).

Local times that a daylight-saving change makes ambiguous are read as the later instant (standard time), and
times that fall in a spring-forward gap as if the clock had not changed yet: the rule DuckDB's ICU applies, so the
vectorized path and this one agree. In both cases that is ``max`` of Python's two ``fold`` readings.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from offramp.plugins.tiktok.rules import EPOCH_MILLIS_FROM

_EPOCH_TEXT = re.compile(r"^[-+]?[0-9]+(\.[0-9]+)?$")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


class TimestampError(ValueError):
    """The value is not a time this destination can read."""


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (cached: ZoneInfo lookups read files)."""
    return ZoneInfo(name)


def aware_to_epoch(moment: datetime) -> int:
    """Unix seconds of an aware datetime, floored, in exact integer arithmetic (no float rounding)."""
    return (moment - _EPOCH) // _SECOND


def local_to_epoch(moment: datetime, tz: str) -> int:
    """Unix seconds of a naive ``moment`` read as wall-clock time in ``tz`` (see the module docstring)."""
    if tz == "UTC":
        return aware_to_epoch(moment.replace(tzinfo=UTC))
    where = zone(tz)
    first = aware_to_epoch(moment.replace(tzinfo=where, fold=0))
    second = aware_to_epoch(moment.replace(tzinfo=where, fold=1))
    return max(first, second)


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def epoch_number(value: float) -> int:
    """Unix seconds from epoch seconds or milliseconds."""
    if math.isnan(value) or math.isinf(value):
        raise TimestampError("not a finite number")
    seconds = math.floor(value / 1000) if abs(value) >= EPOCH_MILLIS_FROM else math.floor(value)
    if not _INT64_MIN <= seconds <= _INT64_MAX:
        # No time at all (and no integer TikTok's event_time could carry): the same answer as the SQL path's.
        raise TimestampError("beyond the 64-bit range of Unix seconds")
    return seconds


def parse_text(text: str, tz: str) -> int:
    """Unix seconds of ISO-8601 text (zone optional) or epoch digits."""
    text = text.strip()
    if _EPOCH_TEXT.match(text):
        return epoch_number(float(text))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TimestampError("not ISO-8601") from None
    if moment.tzinfo is None:
        return local_to_epoch(moment, tz)
    return aware_to_epoch(moment)


def event_time(value: object, tz: str) -> int | None:
    """Unix seconds of a `timestamp` value; None when there is none; TimestampError when it cannot be read."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return local_to_epoch(value, tz)
        return aware_to_epoch(value)
    if isinstance(value, date):
        return local_to_epoch(datetime(value.year, value.month, value.day), tz)
    if isinstance(value, bool):
        raise TimestampError("a boolean is not a time")
    if isinstance(value, int | float | Decimal):
        return epoch_number(float(value))
    if isinstance(value, str):
        if not value.strip():
            return None
        return parse_text(value, tz)
    raise TimestampError(f"a {type(value).__name__} is not a time")


__all__ = ["TimestampError", "aware_to_epoch", "epoch_number", "event_time", "local_to_epoch", "parse_text", "zone"]
