"""Reading a `timestamp` value into TikTok's `event_time` (integer Unix seconds, UTC).

Accepted: datetimes (aware, or naive and read in the orchestration's timezone), dates (midnight there), ISO-8601
text with or without a zone, and epoch seconds or milliseconds (numbers, or digits as text; values from 1e11 up
are milliseconds). Fractions of a second are dropped (floor).

Text in another common shape (``12/31/2026 11:45 PM``, ``31.12.2026``, ``Dec 31, 2026``) is not read, since its
meaning is a guess (month or day first); its rejection says which format it looks like and how to convert it in
the query (:func:`format_fix`).

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
    """The value is not a time this destination can read.

    Args:
        fix: How to read it in the query, for text in a format this destination does not read (see
            :func:`format_fix`); None for values that are no time at all.
    """

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


# Common shapes of time text that are not ISO 8601, as (pattern, strptime format) for the date and the time of day.
# Slash and dash dates are read month first (US) unless the first number cannot be a month.
_DATES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), fmt)
    for pattern, fmt in (
        (r"(1[3-9]|2[0-9]|3[01])/[0-9]{1,2}/[0-9]{4}", "%d/%m/%Y"),
        (r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}", "%m/%d/%Y"),
        (r"(1[3-9]|2[0-9]|3[01])-[0-9]{1,2}-[0-9]{4}", "%d-%m-%Y"),
        (r"[0-9]{1,2}-[0-9]{1,2}-[0-9]{4}", "%m-%d-%Y"),
        (r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{4}", "%d.%m.%Y"),
        (r"[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}", "%Y/%m/%d"),
        (r"[0-9]{4}\.[0-9]{1,2}\.[0-9]{1,2}", "%Y.%m.%d"),
        (r"[A-Za-z]{3}\.? [0-9]{1,2},? [0-9]{4}", "%b %d, %Y"),
        (r"[A-Za-z]{4,} [0-9]{1,2},? [0-9]{4}", "%B %d, %Y"),
        (r"[0-9]{1,2} [A-Za-z]{3}\.? [0-9]{4}", "%d %b %Y"),
        (r"[0-9]{1,2} [A-Za-z]{4,} [0-9]{4}", "%d %B %Y"),
    )
)
_TIMES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), fmt)
    for pattern, fmt in (
        (r"[0-9]{1,2}:[0-9]{2}:[0-9]{2} ?[AP]M", "%I:%M:%S %p"),
        (r"[0-9]{1,2}:[0-9]{2} ?[AP]M", "%I:%M %p"),
        (r"[0-9]{1,2}:[0-9]{2}:[0-9]{2}\.[0-9]{1,6}", "%H:%M:%S.%f"),
        (r"[0-9]{1,2}:[0-9]{2}:[0-9]{2}", "%H:%M:%S"),
        (r"[0-9]{1,2}:[0-9]{2}", "%H:%M"),
    )
)
_DATE_TIME = re.compile(r"^(?P<date>.+?)(?:(?P<sep>[ T]|, ?)(?P<time>[0-9]{1,2}:[0-9]{2}.*))?$")
# strptime codes and their PostgreSQL to_timestamp equivalents.
_POSTGRES = {"%Y": "YYYY", "%m": "MM", "%d": "DD", "%H": "HH24", "%I": "HH12", "%M": "MI", "%S": "SS", "%f": "US",
             "%p": "AM", "%b": "Mon", "%B": "Month"}  # fmt: skip


def guess_format(text: str) -> str | None:
    """The strptime format of time text in a common shape that is not ISO 8601 (``12/31/2026 11:45 PM``:
    ``%m/%d/%Y %I:%M %p``), checked to read the text; None when the shape is not one of them."""
    parts = _DATE_TIME.match(text.strip())
    if parts is None:
        return None
    date_format = next((fmt for pattern, fmt in _DATES if pattern.fullmatch(parts["date"])), None)
    if date_format is None:
        return None
    fmt = date_format
    if parts["time"] is not None:
        time_format = next((f for pattern, f in _TIMES if pattern.fullmatch(parts["time"])), None)
        if time_format is None:
            return None
        if " " not in parts["time"] and "%p" in time_format:
            time_format = time_format.replace(" %p", "%p")
        fmt = f"{date_format}{parts['sep']}{time_format}"
    if ", %Y" in fmt and "," not in parts["date"]:
        fmt = fmt.replace(", %Y", " %Y")
    fmt = fmt.replace("%b", "%b." if re.match(r"^[A-Za-z]{3}\.", parts["date"]) else "%b")
    try:
        datetime.strptime(text.strip(), fmt)
    except ValueError:
        return None  # the shape fits, the values do not (a 13th month): no format to suggest
    return fmt


def format_fix(text: str) -> str:
    """How to read time text that is not ISO 8601 in the query: with the format its shape shows, or in general.

    Only the format goes in, never the text: a rejection's detail carries no input values.
    """
    fmt = guess_format(text)
    if fmt is None:
        return (
            "convert it in the query: strptime(col, FORMAT) AS timestamp in DuckDB and CSV sources, "
            "to_timestamp(col, FORMAT) AS timestamp in PostgreSQL"
        )
    postgres = re.sub("%[A-Za-z]", lambda code: _POSTGRES.get(code.group(), code.group()), fmt)
    # Month first is a guess when the day could be a month too: say what to write if the day comes first.
    swapped = fmt.replace("%m", "\0").replace("%d", "%m").replace("\0", "%d")
    first, second = (int(number) for number in re.findall(r"[0-9]+", text)[:2]) if fmt.startswith("%m") else (0, 0)
    other = f" ({swapped!r} if the day comes first)" if first <= 12 and second <= 12 and first else ""
    return (
        f"its text reads as {fmt!r}{other}: convert it in the query with strptime(col, {fmt!r}) AS timestamp "
        f"(DuckDB and CSV sources) or to_timestamp(col, {postgres!r}) AS timestamp (PostgreSQL)"
    )


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
        raise TimestampError("not ISO-8601", fix=format_fix(text)) from None
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


__all__ = [
    "TimestampError",
    "aware_to_epoch",
    "format_fix",
    "guess_format",
    "epoch_number",
    "event_time",
    "local_to_epoch",
    "parse_text",
    "zone",
]
