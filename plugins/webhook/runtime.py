"""The `webhook` destination's hooks: rows to JSON events, signed batches over HTTPS, answers by HTTP status.

Built on :mod:`offramp.core`'s public API only (``tests/test_plugin_boundary.py`` holds every plugin to that).
docs/webhook-destination.md is the user's reference for everything below: the column contract, the body, the
signature, how each answer is classified, and the connection test.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import orjson
import pyarrow as pa
from pydantic import SecretStr

from offramp.core import (
    CheckStep,
    ConfigError,
    DeliveryResult,
    DestinationContext,
    DestinationError,
    DestinationHooks,
    FailedEvent,
    PreparedBatch,
    PreparedEvent,
    RejectedEvent,
    Terminal,
    Transient,
    __version__,
    signature_headers,
)
from offramp.plugins.webhook import HEADER_VALUE, WebhookDestinationSettings

logger = logging.getLogger(__name__)

MISSING_EVENT_ID = "missing_event_id"
INVALID_IDENTIFIER = "invalid_identifier"
UNENCODABLE_VALUE = "unencodable_value"

MAX_RETRY_AFTER_SECONDS = 900.0  # a longer advised wait is cut to this; the runner's retry budget does the rest
_MESSAGE_LENGTH = 120  # of a receiver's per-event message in a 2xx answer: enough to read, too short to hold much
_CODE_LENGTH = 64
# A receiver's machine code (`{"code": "invalid_batch"}`), the only part of its answer a batch refusal keeps: free
# text may quote the events (an e-mail address), and would be copied into the ledger for every event.
_CODE = re.compile(r"\A[A-Za-z0-9_.-]{1,64}\Z")
_DELAY_SECONDS = re.compile(r"\A[0-9]+\Z")  # RFC 9110 delay-seconds: digits only
_BODY_START = b'{"events":['
_BODY_END = b"]}"
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\uffff]+")


class WebhookTransientError(DestinationError, Transient):
    """The receiver could not take the batch now (408, 429, 5xx, a network failure); it is sent again later."""


class WebhookTerminalError(DestinationError, Terminal):
    """The receiver refused the credential, redirected, or answered something retrying cannot change."""


# -- preparing --------------------------------------------------------------------------------------------------


def hash_identifier(value: str) -> str:
    """SHA-256 (hex) of an identifier after trimming and lower-casing it (docs/webhook-destination.md,
    "Hashed columns")."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal) and value.is_finite():
        return str(value)  # exactly as the warehouse holds it; a float would round it
    raise TypeError(type(value).__name__)


class _Unencodable(Exception):  # noqa: N818 - internal signal, never leaves this module
    def __init__(self, why: str) -> None:
        self.why = why


def _localize(value: Any, zone: ZoneInfo) -> Any:
    """``value`` with naive timestamps placed in ``zone``; NaN, infinities, intervals and values Python cannot hold
    refused (JSON cannot hold them)."""
    if value is _UNREADABLE:
        raise _Unencodable("a value out of the range offramp can convert (an infinite or far-off date or time)")
    if isinstance(value, pa.MonthDayNano):
        raise _Unencodable("an interval, which JSON cannot hold")
    if isinstance(value, datetime):
        return value.replace(tzinfo=zone) if value.tzinfo is None else value
    if isinstance(value, float) and not math.isfinite(value):
        raise _Unencodable("NaN or an infinity, which JSON cannot hold")
    if isinstance(value, dict):
        return {key: _localize(item, zone) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_localize(item, zone) for item in value]
    return value


def _derived_id(row: Mapping[str, Any]) -> str:
    """The id recorded for a row that has none: a hash of its values, the same on every rerun, revealing none."""
    return "row-" + hashlib.sha256(repr(sorted(row.items(), key=lambda item: item[0])).encode()).hexdigest()[:32]


def _microsecond_type(kind: pa.DataType) -> pa.DataType:
    """``kind`` with every nanosecond timestamp, time and duration in it (nested ones too) in microseconds, which
    Python's datetime, time and timedelta hold."""
    if pa.types.is_timestamp(kind) and kind.unit == "ns":
        return pa.timestamp("us", kind.tz)
    if pa.types.is_time64(kind) and kind.unit == "ns":
        return pa.time64("us")
    if pa.types.is_duration(kind) and kind.unit == "ns":
        return pa.duration("us")
    if pa.types.is_map(kind):
        return pa.map_(_microsecond_type(kind.key_type), _microsecond_type(kind.item_type))
    if pa.types.is_list(kind):
        return pa.list_(kind.value_field.with_type(_microsecond_type(kind.value_type)))
    if pa.types.is_large_list(kind):
        return pa.large_list(kind.value_field.with_type(_microsecond_type(kind.value_type)))
    if pa.types.is_fixed_size_list(kind):
        return pa.list_(kind.value_field.with_type(_microsecond_type(kind.value_type)), kind.list_size)
    if pa.types.is_struct(kind):
        return pa.struct([field.with_type(_microsecond_type(field.type)) for field in kind])
    return kind


def _microseconds(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with nanoseconds cut to microseconds (JSON gets ISO 8601 with microseconds)."""
    columns = list(batch.columns)
    changed = False
    for index, column in enumerate(columns):
        wanted = _microsecond_type(column.type)
        if wanted != column.type:
            columns[index] = column.cast(wanted, safe=False)
            changed = True
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names) if changed else batch


class _Unreadable:
    """Stands for a value Python cannot hold (a DuckDB 'infinity' timestamp, a date beyond year 9999)."""

    def __repr__(self) -> str:
        return "<unreadable>"


_UNREADABLE = _Unreadable()


def _rows(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """The rows as Python values; a value that cannot be converted is ``_UNREADABLE`` in its row alone."""
    try:
        rows: list[dict[str, Any]] = batch.to_pylist()
        return rows
    except (ValueError, OverflowError, pa.ArrowException):
        pass  # one bad value fails the whole conversion: go column by column, then value by value
    names = batch.schema.names
    columns: list[list[Any]] = []
    for column in batch.columns:
        try:
            columns.append(column.to_pylist())
        except (ValueError, OverflowError, pa.ArrowException):
            values: list[Any] = []
            for scalar in column:
                try:
                    values.append(scalar.as_py())
                except (ValueError, OverflowError, pa.ArrowException):
                    values.append(_UNREADABLE)
            columns.append(values)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)] if columns else []


@dataclass(frozen=True)
class _Layout:
    """How the columns of one query schema become keys of the event JSON."""

    keys: tuple[tuple[str, str], ...]  # (column, key), in the query's order
    has_event_id: bool


class WebhookPreparer:
    """Turns each row into one event: every column a key (renamed, identifiers hashed), the body its JSON."""

    def __init__(self, settings: WebhookDestinationSettings, timezone: str) -> None:
        self._settings = settings
        self._zone = ZoneInfo(timezone)
        self._hashed = frozenset(settings.hash_columns)
        self._layouts: dict[tuple[str, ...], _Layout] = {}

    @property
    def unknown_columns(self) -> tuple[str, ...]:
        return ()  # every column is sent

    def prepare(self, batch: pa.RecordBatch) -> PreparedBatch:
        layout = self._layout(tuple(batch.schema.names))
        result = PreparedBatch()
        for row in _rows(_microseconds(batch)):
            outcome = self._event(row, layout)
            (result.events if isinstance(outcome, PreparedEvent) else result.rejected).append(outcome)  # type: ignore[arg-type]
        return result

    def finish(self) -> PreparedBatch:
        return PreparedBatch()  # nothing is held back: one row is one event

    def close(self) -> None:
        """Nothing to release."""

    def _layout(self, names: tuple[str, ...]) -> _Layout:
        known = self._layouts.get(names)
        if known is not None:
            return known
        settings = self._settings
        missing = sorted({*settings.hash_columns, *settings.rename} - set(names))
        if missing:
            # A hashed identifier spelled differently in the query would go out in clear: stop instead.
            raise ConfigError(
                f"the webhook destination's hash_columns or rename name columns the query does not have: "
                f"{', '.join(missing)} (the query has: {', '.join(names)})",
                hint="spell them as the query's columns (names are case-sensitive), or change the destination's "
                "settings (offramp export, edit, offramp apply -f FILE)",
            )
        keys = tuple((name, settings.rename.get(name, name)) for name in names)
        seen = [key for _, key in keys]
        repeated = sorted({key for key in seen if seen.count(key) > 1})
        if repeated:
            raise ConfigError(
                f"the webhook destination would send several columns under the key(s) {', '.join(repeated)}",
                hint="rename the columns in the query, or change the destination's rename setting",
            )
        layout = _Layout(keys, settings.event_id_column in names)
        self._layouts[names] = layout
        return layout

    def _event(self, row: dict[str, Any], layout: _Layout) -> PreparedEvent | RejectedEvent:
        column = self._settings.event_id_column
        raw_id = row.get(column) if layout.has_event_id else None
        if raw_id is _UNREADABLE:
            return RejectedEvent(
                _derived_id(row), UNENCODABLE_VALUE, f"column {column} holds a value out of the range offramp can "
                "convert; fix it in the query",
            )  # fmt: skip
        event_id = None if raw_id is None else str(raw_id).strip()
        if not event_id:
            detail = (
                f"the {column} column is null or blank; give every row an event id"
                if layout.has_event_id
                else f"the query has no {column} column; select one (… AS {column}) or set event_id_column"
            )
            return RejectedEvent(_derived_id(row), MISSING_EVENT_ID, detail)
        if column in self._hashed:
            event_id = hash_identifier(event_id)  # the ledger keeps the id as sent, never an identifier in clear
        event: dict[str, Any] = {}
        for name, key in layout.keys:
            value = row[name]
            if name in self._hashed and value is not None and value is not _UNREADABLE:
                if isinstance(value, bool) or not isinstance(value, str | int):
                    return RejectedEvent(
                        event_id,
                        INVALID_IDENTIFIER,
                        f"column {name} (in hash_columns) holds a {type(value).__name__} value; identifiers to hash "
                        "must be text or whole numbers: cast it in the query",
                    )
                text = str(value).strip()
                value = hash_identifier(text) if text else None  # a blank identifier is absent, not hash("")
            try:
                event[key] = _localize(value, self._zone)
            except _Unencodable as exc:
                return RejectedEvent(event_id, UNENCODABLE_VALUE, f"column {name} holds {exc.why}; fix it in the query")
        try:
            body = orjson.dumps(event, default=_json_default)
        except orjson.JSONEncodeError:
            return RejectedEvent(event_id, UNENCODABLE_VALUE, self._unencodable_detail(event, layout))
        return PreparedEvent(event_id=event_id, body=body)

    @staticmethod
    def _unencodable_detail(event: dict[str, Any], layout: _Layout) -> str:
        for name, key in layout.keys:
            try:
                orjson.dumps(event[key], default=_json_default)
            except orjson.JSONEncodeError:
                kind = type(event[key]).__name__
                return (
                    f"column {name} holds a value JSON cannot hold ({kind}, or a number beyond 64 bits); cast it "
                    "in the query (to text, for example)"
                )
        return "a value JSON cannot hold; cast the columns to text or numbers in the query"  # pragma: no cover


# -- sending ----------------------------------------------------------------------------------------------------


class _Credential:
    """How requests prove who sends them: a bearer token (`static-token`) or an HMAC signature (`hmac-secret`)."""

    def __init__(self, type_name: str, name: str, settings: object) -> None:
        self.type = type_name
        self.name = name
        field = {"static-token": "token", "hmac-secret": "secret"}.get(type_name)
        secret = getattr(settings, field, None) if field else None
        if not isinstance(secret, SecretStr):
            raise ConfigError(
                f"credential {name!r} is a {type_name} credential; the webhook destination takes hmac-secret or "
                "static-token",
                hint="bind the destination to an hmac-secret credential: offramp credentials add NAME --type "
                "hmac-secret --set secret=env:VARIABLE",
            )
        text = secret.get_secret_value()
        if type_name == "static-token" and not (text and HEADER_VALUE.match(text)):
            # It goes in a header: anything else would inject a header or fail to encode at every request.
            raise ConfigError(
                f"the token of credential {name!r} holds a character a request header cannot carry (a line break, "
                "a control character or a non-ASCII letter)",
                hint="give the credential the token exactly as the receiver issued it (offramp export, set token: "
                "env:VARIABLE, offramp apply -f FILE)",
            )
        self._secret = text.encode()

    def headers(self, body: bytes, now: float) -> dict[str, str]:
        if self.type == "static-token":
            return {"Authorization": f"Bearer {self._secret.decode()}"}
        return signature_headers(self._secret, body, now)

    def reveals(self, text: str) -> bool:
        """Whether ``text`` holds the secret, or is a piece of it long enough to help guess the rest."""
        secret = self._secret.decode()
        return bool(secret) and (secret in text or (len(text) >= 8 and text in secret))

    def scrub(self, text: str) -> str:
        """``text`` without the secret, should a receiver echo it."""
        secret = self._secret.decode()
        return text.replace(secret, "[secret]") if secret else text


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` header's wait (RFC 9110: delay-seconds, digits only, or an HTTP-date); None when absent,
    unreadable or already past, so that the runner's backoff decides."""
    if not value:
        return None
    text = value.strip()
    if _DELAY_SECONDS.match(text):
        return min(float(text), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = when.timestamp() - now
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)


def _short(text: str) -> str:
    """A receiver's text, cut to a line: it may quote what it was sent, so never the whole of it."""
    flat = " ".join(_UNPRINTABLE.sub(" ", text).split())
    return flat if len(flat) <= _MESSAGE_LENGTH else flat[: _MESSAGE_LENGTH - 1] + "…"


def _answer_code(response: httpx.Response, credential: _Credential) -> str | None:
    """A JSON answer's ``code`` field when it is a short machine code (``_CODE``) holding no secret; else None."""
    if response.content[:1] != b"{":
        return None
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    code = data.get("code") if isinstance(data, dict) else None
    return _machine_code(code, credential)


def _machine_code(value: object, credential: _Credential) -> str | None:
    if not isinstance(value, str) or not _CODE.match(value):
        return None
    return None if credential.reveals(value) else value


class WebhookSender:
    """POSTs batches to the destination's URL; safe to call from several threads (httpx's client is)."""

    def __init__(
        self, settings: WebhookDestinationSettings, credential: _Credential, *, destination: str, timeout: float
    ) -> None:
        self._settings = settings
        self._credential = credential
        self._destination = destination
        parts = urlsplit(settings.url)
        self._host = parts.netloc
        self._client = httpx.Client(
            timeout=timeout,
            headers={
                **settings.headers,
                "Content-Type": "application/json",
                "User-Agent": f"offramp/{__version__}",
            },
            follow_redirects=False,  # a signed body or a token must never go to another address than the one set
        )

    def __repr__(self) -> str:
        return f"WebhookSender(url={self._settings.url!r})"

    @property
    def max_batch_size(self) -> int:
        return self._settings.batch_size

    @property
    def host(self) -> str:
        """The receiver's host (and port), as messages name it."""
        return self._host

    @property
    def signs(self) -> bool:
        """Whether requests are signed (an `hmac-secret` credential) rather than carrying a bearer token."""
        return self._credential.type == "hmac-secret"

    def preview(self, events: Sequence[PreparedEvent]) -> bytes:
        """The body: the events' bytes as prepared, joined inside ``{"events":[...]}``."""
        return _BODY_START + b",".join(event.body for event in events) + _BODY_END

    def post(self, body: bytes) -> httpx.Response:
        """POST ``body`` with the credential's headers, made for this very body and moment.

        Raises:
            httpx.HTTPError: The receiver could not be reached, or its answer could not be read.
        """
        return self._client.post(self._settings.url, content=body, headers=self._credential.headers(body, time.time()))

    def send(self, events: Sequence[PreparedEvent]) -> DeliveryResult:
        """Send one batch; see docs/webhook-destination.md, "Answers", for what each status does.

        Raises:
            ValueError: More than ``batch_size`` events.
            WebhookTerminalError: 401/403 (credential refused), a redirect, or a status outside 100..599.
        """
        if len(events) > self.max_batch_size:
            raise ValueError(f"send() takes at most {self.max_batch_size} events, got {len(events)}")
        if not events:
            return DeliveryResult()
        try:
            response = self.post(self.preview(events))
        except httpx.HTTPError as exc:  # no answer, or one that could not be read (a broken Content-Encoding)
            # The exception's text may quote the request: name the host and the kind of failure only.
            error = WebhookTransientError(
                f"the webhook receiver at {self._host} could not be reached or its answer could not be read "
                f"({type(exc).__name__})",
                hint="check that it is running and the url; the events are sent again after a wait (a receiver "
                "that got them before the failure sees them twice: deduplicate on event_id)",
            )
            return DeliveryResult(unsent=list(events), error=error)
        status = response.status_code
        request_id = _short(self._credential.scrub(response.headers.get("X-Request-Id", "")))[:_CODE_LENGTH]
        request_ids = [request_id] if request_id else []
        logger.debug("webhook %s: %d events, HTTP %d", self._destination, len(events), status)
        if 200 <= status < 300:
            return self._accepted(events, response, request_ids)
        if status in (408, 429) or 500 <= status < 600:
            wait = retry_after_seconds(response.headers.get("Retry-After"), time.time())
            error = WebhookTransientError(
                f"the webhook receiver at {self._host} answered HTTP {status}",
                hint="the events are sent again after a wait",
                http_status=status,
            )
            return DeliveryResult(unsent=list(events), error=error, request_ids=request_ids, retry_after_seconds=wait)
        if status in (401, 403):
            field = "secret" if self._credential.type == "hmac-secret" else "token"
            raise WebhookTerminalError(
                f"the webhook receiver at {self._host} refused credential {self._credential.name!r} (HTTP {status})",
                hint=f"give credential {self._credential.name!r} the receiver's {field} (offramp export, set "
                f"{field}: env:VARIABLE, offramp apply -f FILE), then offramp run NAME --resume; a signature refused "
                "although the secrets match means the clocks differ (the timestamp is signed)",
                http_status=status,
            )
        if 400 <= status < 500:
            answer_code = _answer_code(response, self._credential)
            message = f"the receiver refused the batch (HTTP {status}" + (
                f", code {answer_code})" if answer_code else ")"
            )
            if status == 413:
                message += " (lower the destination's batch_size)"
            code = f"HTTP {status}"
            return DeliveryResult(
                failed=[FailedEvent(event.event_id, code, message) for event in events], request_ids=request_ids
            )
        if 300 <= status < 400:
            raise WebhookTerminalError(
                f"the webhook receiver at {self._host} redirected (HTTP {status})",
                hint="set url to the address it redirects to: offramp never follows a redirect, so that a signed "
                "body or a token only goes where it was meant to",
                http_status=status,
            )
        raise WebhookTerminalError(
            f"the webhook receiver at {self._host} answered HTTP {status}, which is not an answer to a POST",
            hint="check the url points at the receiver",
            http_status=status,
        )

    def _accepted(
        self, events: Sequence[PreparedEvent], response: httpx.Response, request_ids: list[str]
    ) -> DeliveryResult:
        """A 2xx answer: every event sent, but for those a ``{"failed": [...]}`` body names."""
        refused: dict[str, FailedEvent] = {}
        if response.content[:1] == b"{":
            try:
                data = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                data = None
            ids = {event.event_id for event in events}
            items = data.get("failed") if isinstance(data, dict) else None
            for item in items if isinstance(items, list) else []:
                event_id = item.get("event_id") if isinstance(item, dict) else None
                if isinstance(event_id, str) and event_id in ids:
                    code = _machine_code(item.get("code"), self._credential) or "refused"
                    # Scrubbed before it is cut or its white space collapsed, which could split the secret.
                    message = _short(self._credential.scrub(str(item.get("message") or "")))
                    refused[event_id] = FailedEvent(event_id, code, message)
        return DeliveryResult(
            sent=[event.event_id for event in events if event.event_id not in refused],
            failed=[refused[event.event_id] for event in events if event.event_id in refused],
            request_ids=request_ids,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


# -- hooks ------------------------------------------------------------------------------------------------------


def _settings(context: DestinationContext) -> WebhookDestinationSettings:
    settings = context.settings
    if not isinstance(settings, WebhookDestinationSettings):  # pragma: no cover - core validated them
        raise ConfigError(f"destination {context.destination!r} does not hold webhook settings")
    return settings


def open_preparer(context: DestinationContext) -> WebhookPreparer:
    """A preparer for one run."""
    return WebhookPreparer(_settings(context), context.timezone)


def open_sender(context: DestinationContext) -> WebhookSender:
    """A sender for one run, with the credential's secret read once."""
    handle = context.credential
    credential = _Credential(handle.type, handle.name, handle.settings())
    return WebhookSender(
        _settings(context), credential, destination=context.destination, timeout=context.timeout_seconds
    )


def check_connection(context: DestinationContext, fix: bool) -> list[CheckStep]:
    """Two steps: the credential is of a type the webhook takes; the receiver accepts a signed empty batch,
    ``{"events":[]}`` (nothing to fix: ``fix`` is ignored)."""
    try:
        sender = open_sender(context)
    except ConfigError as exc:
        return [
            CheckStep("credential", "failed", f"{exc.message} ({exc.hint})"),
            CheckStep("receiver", "skipped", "needs a usable credential"),
        ]
    how = "signs each body (X-Offramp-Signature)" if sender.signs else "is sent as Authorization: Bearer"
    steps = [CheckStep("credential", "ok", f"{context.credential.type} credential {context.credential.name!r} {how}")]
    try:
        response = sender.post(sender.preview([]))
    except httpx.HTTPError as exc:  # any failure to get an answer, not only the network's (an invalid URL, ...)
        steps.append(
            CheckStep(
                "receiver", "failed", f"{sender.host} could not be reached or its answer could not be read "
                f"({type(exc).__name__})",
            )
        )  # fmt: skip
        return steps
    finally:
        sender.close()
    status = response.status_code
    if 200 <= status < 300:
        steps.append(CheckStep("receiver", "ok", f"{sender.host} accepted an empty batch (HTTP {status})"))
    elif status in (401, 403):
        steps.append(
            CheckStep(
                "receiver", "failed", f"{sender.host} refused the credential (HTTP {status}); give the credential "
                "the receiver's secret or token (offramp export, edit, offramp apply)",
            )
        )  # fmt: skip
    elif 400 <= status < 500 and status not in (408, 429):
        steps.append(
            CheckStep(
                "receiver", "warning", f"{sender.host} answered HTTP {status} to an empty batch; fine if it refuses "
                "empty batches, otherwise check url",
            )
        )  # fmt: skip
    else:
        steps.append(CheckStep("receiver", "failed", f"{sender.host} answered HTTP {status} to an empty batch"))
    return steps


HOOKS = DestinationHooks(open_preparer=open_preparer, open_sender=open_sender, check_connection=check_connection)

__all__ = [
    "HOOKS",
    "INVALID_IDENTIFIER",
    "MISSING_EVENT_ID",
    "UNENCODABLE_VALUE",
    "WebhookPreparer",
    "WebhookSender",
    "WebhookTerminalError",
    "WebhookTransientError",
    "check_connection",
    "hash_identifier",
    "open_preparer",
    "open_sender",
    "retry_after_seconds",
]
