"""Sends prepared events to TikTok's `event/track/`: one request per batch, and what to do with each answer.

The runner owns retries and waits; this module owns what only a TikTok client can know (docs/tiktok-api-facts.md,
"Codes" and "Rate limits"); each code's class comes from ``codes``, through ``responses.classify``:

- the body is assembled from the events' bytes as they are, so what was prepared is exactly what is sent
  (:meth:`TikTokSender.preview` gives the same bytes for dry runs);
- an expired token (40102) is refreshed once and the request resent once, by the credential's auth flow
  (``offramp.credentials.tiktok_session.TikTokAccessTokenAuth``, the one refresh path), under the credential's
  lock, so threads and processes sharing a credential spend its single-use refresh token once;
- a refused grant (40103/40105/40107) marks the credential `needs_reauth` (the auth flow does), so later uses fail
  fast, and stops the run; so does a missing role (40001) and any other code retrying cannot fix;
- an invalid batch (40002) is split in halves until the events TikTok refuses are alone: those fail with TikTok's
  message, the others are sent. TikTok's 40002 names the field but not the event, hence the search;
- rate limits, 5xx and network failures give the events back as ``unsent`` with the advised wait.

Every answer is *returned* as a :class:`~offramp.core.DeliveryResult`: a terminal one carries a
:class:`TikTokTerminalSendError` (with a hint) as its ``error``, what the call had sent or failed before it, and the
rest as ``unsent``. Only a caller's bug (too many events) raises.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import httpx
import orjson

from offramp.core import (
    ConfigError,
    DeliveryResult,
    DestinationContext,
    DestinationError,
    FailedEvent,
    OfframpError,
    PreparedEvent,
    Terminal,
    Transient,
    __version__,
    concat_events,
    event_ids_of,
    joined_bodies,
)
from offramp.core.hints import offramp_command
from offramp.credentials.tiktok_session import TikTokCredentialSession
from offramp.plugins.tiktok.codes import SERVER_ERROR_WAIT, UNKNOWN_EVENT_SET
from offramp.plugins.tiktok.network import unreachable
from offramp.plugins.tiktok.options import TikTokRunOptions
from offramp.plugins.tiktok.responses import Outcome, TrackAnswer, classify
from offramp.plugins.tiktok.settings import MAX_EVENTS_PER_REQUEST, TikTokOfflineEventsDestinationSettings

logger = logging.getLogger(__name__)

TRACK_PATH = "/open_api/v1.3/event/track/"
_REFUSED_REMEMBERED = 10_000  # refused sub-batches a sender remembers (a few per refused event)
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class TikTokSendError(DestinationError):
    """`event/track/` did not accept a batch; ``code`` is TikTok's (None without an envelope)."""


class TikTokTransientSendError(TikTokSendError, Transient):
    """TikTok could not take the events now (rate limit, 5xx, maintenance, network); send them again later."""


class TikTokTerminalSendError(TikTokSendError, Terminal):
    """TikTok refused the events for a reason retrying cannot fix; the message and hint say what to change."""


class TikTokSender:
    """Sends batches of prepared events to one event set; safe to use from several threads.

    Args:
        credential: The destination's credential: its access tokens, refreshed on 40102 by its auth flow.
        api_base_url: ``https://business-api.tiktok.com``, or an emulator's address on loopback.
        event_source: ``offline`` or ``web``.
        event_source_id: The event set ID (the pixel code for web).
        partner_name: Sent when set.
        test_event_code: Sent at the top level when set: the events go to TikTok's Test Events view.
        max_batch_size: The most events one :meth:`send` takes (TikTok refuses more than 1000).
        timeout_seconds: Per request.
        hints: Hints by TikTok code that name this destination's commands (``40007``: the command that creates
            the event set), in place of the general ones of ``codes.HINTS``.
    """

    def __init__(
        self,
        credential: TikTokCredentialSession,
        *,
        api_base_url: str,
        event_source: str,
        event_source_id: str,
        partner_name: str | None = None,
        test_event_code: str | None = None,
        max_batch_size: int = MAX_EVENTS_PER_REQUEST,
        timeout_seconds: float = 30.0,
        hints: Mapping[int, str] | None = None,
    ) -> None:
        if not 1 <= max_batch_size <= MAX_EVENTS_PER_REQUEST:
            raise ValueError(f"max_batch_size must be between 1 and {MAX_EVENTS_PER_REQUEST}")
        base = api_base_url.rstrip("/")
        parts = urlsplit(base)
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            raise ConfigError(
                f"api_base_url {base} is plain http: the access token would cross the network unencrypted",
                hint="use https (plain http is allowed for loopback addresses only, where the emulator runs)",
            )
        self._credential = credential
        self._url = f"{base}{TRACK_PATH}"
        self._host = parts.netloc.rpartition("@")[2]  # never a userinfo part in messages
        self._max_batch_size = max_batch_size
        self._event_source_id = event_source_id
        self._hints = dict(hints or {})
        # Everything before the events and after them, written once: only the top-level scalars go through orjson.
        head = b'{"event_source":' + orjson.dumps(event_source)
        head += b',"event_source_id":' + orjson.dumps(event_source_id)
        if partner_name is not None:
            head += b',"partner_name":' + orjson.dumps(partner_name)
        if test_event_code is not None:
            head += b',"test_event_code":' + orjson.dumps(test_event_code)
        self._head = head + b',"data":['
        # Sub-batches TikTok refused with 40002, by (first id, last id, size): when a transient answer interrupts a
        # split and the rest comes back, the next send() goes straight to the halves instead of learning again
        # that the whole holds a refused event. Without it, isolating one event in a thousand needed some twenty
        # requests in a row without a transient answer. Shared by the sending threads (set operations are atomic).
        self._refused: set[tuple[str, str, int]] = set()
        self._client = httpx.Client(
            auth=credential.auth(),
            timeout=timeout_seconds,
            headers={"Content-Type": "application/json", "User-Agent": f"offramp/{__version__}"},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"TikTokSender(url={self._url!r}, event_source_id={self._event_source_id!r})"

    @property
    def max_batch_size(self) -> int:
        """The most events one call to :meth:`send` takes (the destination's ``batch_size``)."""
        return self._max_batch_size

    def preview(self, events: Sequence[PreparedEvent]) -> bytes:
        """The request body for ``events``: their bytes joined as they are, inside the fixed top level."""
        return self._head + joined_bodies(events) + b"]}"

    def send(self, events: Sequence[PreparedEvent]) -> DeliveryResult:
        """Send one batch; every event ends in exactly one of ``sent``, ``failed`` or ``unsent``.

        A terminal answer (the grant, the role or a setting is wrong) is returned as the result's ``error``, a
        :class:`TikTokTerminalSendError` whose message and hint say what to fix, with what was done before it.

        Raises:
            ValueError: More events than :attr:`max_batch_size` (a caller's bug, not TikTok's answer).
        """
        if len(events) > self._max_batch_size:
            raise ValueError(f"send() takes at most {self._max_batch_size} events, got {len(events)}")
        result = DeliveryResult()
        # Sub-batches still to send, in order; a refused one is replaced by its two halves.
        pending: deque[Sequence[PreparedEvent]] = deque([events] if events else [])
        while pending:
            batch = pending.popleft()
            known = (batch[0].event_id, batch[-1].event_id, len(batch))
            if len(batch) > 1 and known in self._refused:
                half = len(batch) // 2
                pending.appendleft(batch[half:])
                pending.appendleft(batch[:half])
                continue
            try:
                answer = self._post(batch)
            except TikTokTransientSendError as exc:
                return self._give_back(result, batch, pending, exc, exc.fields.get("retry_after_seconds"))
            except TikTokTerminalSendError as exc:
                return self._give_back(result, batch, pending, exc, None)
            if answer.request_id:
                result.request_ids.append(answer.request_id)
            if answer.outcome is Outcome.OK:
                result.sent.extend(event_ids_of(batch))
            elif answer.outcome is Outcome.INVALID and len(batch) == 1:
                result.failed.append(FailedEvent(batch[0].event_id, answer.code_text, answer.message))
            elif answer.outcome is Outcome.INVALID:
                if len(self._refused) >= _REFUSED_REMEMBERED:
                    self._refused.clear()
                self._refused.add(known)
                half = len(batch) // 2
                pending.appendleft(batch[half:])
                pending.appendleft(batch[:half])
            else:
                error = self._transient_error(answer)
                return self._give_back(result, batch, pending, error, answer.retry_after_seconds)
        return result

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> TikTokSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request --

    def _post(self, batch: Sequence[PreparedEvent]) -> TrackAnswer:
        """POST one batch (the auth flow refreshes once on 40102); return an OK, INVALID or TRANSIENT answer, or
        raise."""
        answer = self._request(self.preview(batch))
        logger.debug(
            "event/track: %d events, HTTP %d, code %s, request_id %s",
            len(batch), answer.http_status, answer.code, answer.request_id,
        )  # fmt: skip
        if answer.outcome is Outcome.TOKEN_EXPIRED:
            raise self._terminal(
                answer,
                f"TikTok says the access token of credential {self._credential.name!r} expired even right after a "
                "refresh",
                hint=f"re-authorize with: {self._reauthorize()}; if that does not help, give TikTok support the "
                f"request id {answer.request_id}",
            )
        if answer.outcome is Outcome.TOKEN_REFUSED:
            # The auth flow has marked the credential needs_reauth already.
            raise self._terminal(
                answer,
                f"TikTok refused credential {self._credential.name!r}: {_refused_text(answer)}",
                hint=f"re-authorize with: {self._reauthorize()}",
            )
        if answer.outcome is Outcome.PERMISSION:
            raise self._terminal(
                answer,
                f"TikTok refused to take events for event set {self._event_source_id}: {_refused_text(answer)}",
                hint="the TikTok user who authorized the credential needs the Ad Account Operator or Admin role on "
                f"the advertiser that owns the event set; grant it, or re-authorize as such a user: "
                f"{self._reauthorize()}",
            )
        if answer.outcome is Outcome.TERMINAL:
            message = answer.message if answer.code is None else f"TikTok refused the events: {_refused_text(answer)}"
            raise self._terminal(answer, message, hint=None if answer.code is None else self._hints.get(answer.code))
        return answer

    def _request(self, body: bytes) -> TrackAnswer:
        try:
            response = self._client.post(self._url, content=body)
        except httpx.UnsupportedProtocol:
            raise TikTokTerminalSendError(
                f"cannot send to {self._host}: unsupported URL scheme",
                hint="the credential's api_base_url must start with https://",
            ) from None
        except httpx.TransportError as exc:
            # Short, as core prints it before "; retrying in 8 s, attempt 3 of 10"; the exception's own text may
            # quote the request, so only the kind of failure is named, and the host in the hint.
            raise TikTokTransientSendError(
                unreachable(exc),
                hint=f"check that {self._host} is reachable from here and the credential's api_base_url; "
                "the events are sent again after a wait",
                retry_after_seconds=SERVER_ERROR_WAIT,
            ) from None
        except OfframpError as exc:
            # From the credential's auth flow: a refused grant, a failed refresh. Become this module's errors.
            if isinstance(exc, Terminal):
                hint = exc.hint or f"check credential {self._credential.name!r} (app_id, app_secret, api_base_url)"
                raise TikTokTerminalSendError(exc.message, hint=hint, **exc.fields) from exc
            if isinstance(exc, Transient):
                fields = {**exc.fields, "retry_after_seconds": SERVER_ERROR_WAIT}
                raise TikTokTransientSendError(exc.message, hint=exc.hint, **fields) from exc
            raise
        return classify(response.status_code, response.content, log_id=response.headers.get("X-TT-LOGID"))

    # -- errors --

    def _reauthorize(self) -> str:
        return self._credential.reauthorize_command

    def _terminal(self, answer: TrackAnswer, message: str, *, hint: str | None = None) -> TikTokTerminalSendError:
        return TikTokTerminalSendError(
            message,
            hint=hint or answer.hint,
            code=answer.code,
            api_message=answer.message,
            request_id=answer.request_id,
            http_status=answer.http_status,
        )

    @staticmethod
    def _transient_error(answer: TrackAnswer) -> TikTokTransientSendError:
        message = answer.message if answer.code is None else f"TikTok answered {answer.code}: {answer.message}"
        return TikTokTransientSendError(
            message,
            hint="the events are sent again after a wait",
            code=answer.code,
            request_id=answer.request_id,
            http_status=answer.http_status,
            retry_after_seconds=answer.retry_after_seconds,
        )

    @staticmethod
    def _give_back(
        result: DeliveryResult,
        batch: Sequence[PreparedEvent],
        pending: deque[Sequence[PreparedEvent]],
        error: DestinationError,
        retry_after: float | None,
    ) -> DeliveryResult:
        # The slices not sent, in order, as one: columns stay columns (no object per event).
        result.unsent = concat_events([batch, *pending])
        result.error = error
        result.retry_after_seconds = retry_after
        return result


def _refused_text(answer: TrackAnswer) -> str:
    """TikTok's code and message, as messages quote them: ``40001 (No permission ...)``."""
    return f"{answer.code_text} ({answer.message})" if answer.message else answer.code_text


def open_sender(context: DestinationContext) -> TikTokSender:
    """The sender of a destination, with its credential's token and API host (the framework's hook)."""
    settings = context.settings
    options = context.options
    if not isinstance(settings, TikTokOfflineEventsDestinationSettings) or not isinstance(options, TikTokRunOptions):
        raise TypeError("open_sender needs the context of a tiktok-ads-offline-events destination")
    ensure = offramp_command("destinations", "ensure-event-set", context.destination, workspace=context.workspace)
    if settings.event_set_id is None:
        raise ConfigError(
            f"destination {context.destination!r} has no event_set_id to send to",
            hint=f"create the event set with `{ensure}`, or set event_set_id",
        )
    credential = TikTokCredentialSession(context.credential, timeout_seconds=context.timeout_seconds)
    return TikTokSender(
        credential,
        api_base_url=credential.settings().api_base_url,
        event_source=settings.event_source,
        event_source_id=settings.event_set_id,
        partner_name=settings.partner_name,
        test_event_code=options.test_event_code,
        max_batch_size=settings.batch_size,
        timeout_seconds=context.timeout_seconds,
        hints={
            UNKNOWN_EVENT_SET: f"the event set does not exist: check event_set_id, or create the set with `{ensure}`"
        },
    )


__all__ = [
    "TikTokSendError",
    "TikTokSender",
    "TikTokTerminalSendError",
    "TikTokTransientSendError",
    "open_sender",
]
