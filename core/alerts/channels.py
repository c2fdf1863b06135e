"""Where notices go: a signed webhook, a Slack incoming webhook, or email over SMTP.

Each channel's :meth:`deliver` sends one notice, retrying what may pass on a second try (a refused or dropped
connection, a timeout, HTTP 408/429/5xx, an SMTP 4xx answer) with jittered exponential backoff, within a
:class:`DeliveryPolicy` that bounds both the attempts and the total time. It never raises: whatever happens comes
back as a :class:`Delivery`, whose ``error`` is one line that names the channel and says what went wrong, and never
holds a secret (the webhook's signing secret, the Slack URL, the SMTP password) nor what a server answered at
length. An alert that cannot be delivered is recorded by the caller; it never fails the run it reports on.

Webhook signature (the same scheme as the webhook destination's, docs/webhook-destination.md, "Signature"; Stripe
and Slack sign their own webhooks this way)::

    X-Offramp-Timestamp: 1767225600                      Unix time, whole seconds, when the attempt was signed
    X-Offramp-Signature: sha256=<hex>                    lower-case hex of HMAC-SHA256(secret, timestamp + "." + body)
    X-Offramp-Notice-Id: 0f3c...                         the notice's id, the same on every attempt

The signed content is the timestamp, a full stop, and the exact body bytes. A receiver verifies the raw body before
parsing it, compares in constant time, and refuses a timestamp more than five minutes from its clock, so that a
captured request replayed later is refused (:func:`verify_signature` does all three). A retry is signed afresh; a
receiver that already saw the notice id can drop the retry.
"""

from __future__ import annotations

import email.policy
import errno
import html
import logging
import math
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import httpx
import orjson
import stamina
from pydantic import SecretStr

from offramp.core._version import __version__
from offramp.core.alerts.notices import Notice
from offramp.core.errors import ConfigError
from offramp.core.retry_hooks import quiet_stamina
from offramp.core.signatures import (
    MAX_SKEW_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
    signature_headers,
)
from offramp.core.signatures import verify_signature as _verify
from offramp.core.urls import is_loopback

log = logging.getLogger("offramp.core.alerts")

NOTICE_ID_HEADER = "X-Offramp-Notice-Id"

# stamina's default hooks would log a bare "stamina.retry_scheduled" at every retry; this module logs its own lines.
quiet_stamina()

ChannelKind = Literal["webhook", "slack", "email"]


# -- signatures ---------------------------------------------------------------------------------------------------


def _key(secret: str | bytes | SecretStr) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes | SecretStr, body: bytes, timestamp: int) -> str:
    """The ``X-Offramp-Signature`` value of ``body`` signed at ``timestamp`` (``offramp.core.signatures``)."""
    return signature(_key(secret), body, timestamp)


def verify_signature(
    secret: str | bytes | SecretStr, body: bytes, headers: Mapping[str, str], *, now: float | None = None,
    tolerance: float = MAX_SKEW_SECONDS,
) -> bool:  # fmt: skip
    """:func:`offramp.core.signatures.verify_signature` with the secret as a channel holds it."""
    return _verify(_key(secret), body, headers, now=now, tolerance=tolerance)


# -- delivery -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """What became of one notice on one channel: delivered or not, after how many attempts, and why not."""

    ok: bool
    attempts: int
    error: str | None = None


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard a channel tries: at most ``attempts`` attempts, waits from ``wait_initial`` doubling up to
    ``wait_max`` seconds (jittered), no new attempt after ``total_seconds``, and ``request_seconds`` for each network
    operation. A delivery thus takes at most about ``total_seconds + request_seconds``."""

    attempts: int = 5
    wait_initial: float = 1.0
    wait_max: float = 30.0
    total_seconds: float = 120.0
    request_seconds: float = 10.0

    def __post_init__(self) -> None:
        problems = []
        if self.attempts < 1:
            problems.append(f"attempts is at least 1, not {self.attempts}")
        for name in ("wait_initial", "wait_max", "total_seconds", "request_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0) or (name == "request_seconds" and value == 0):
                problems.append(f"{name} is a number of seconds above 0, not {value!r}")
        if problems:
            raise ConfigError("delivery policy: " + "; ".join(problems), hint="give each setting a value in range")


class Channel(Protocol):
    """An alert channel: a name, a kind, and a way to deliver a notice that never raises."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> ChannelKind: ...

    def deliver(self, notice: Notice) -> Delivery: ...


class _Retry(Exception):  # noqa: N818 - internal signal to stamina: try again (after ``wait`` when given)
    def __init__(self, said: str, wait: float | None = None) -> None:
        super().__init__(said)
        self.said = said
        self.wait = wait


class _Fail(Exception):  # noqa: N818 - internal: retrying cannot help
    def __init__(self, said: str) -> None:
        super().__init__(said)
        self.said = said


def _backoff(exc: Exception) -> bool | float:
    """stamina's hook: retry our retries, after the server's advised wait when it gave one."""
    if isinstance(exc, _Retry):
        return exc.wait if exc.wait is not None else True
    return False


def _scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` on one line and without any of ``secrets`` (our messages hold none; this makes sure)."""
    return " ".join(_mask(text, secrets).split())


class _Masking(logging.Filter):
    """Replaces given secrets in the records of one logger: httpx logs each request's URL at INFO, and a Slack
    webhook's URL is its secret."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = _mask(text, self._secrets)
        if masked != text:
            record.msg, record.args = masked, None
        return True


def _mask(text: str, secrets: Sequence[str]) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "[secret]")
    return text


# The loggers of the HTTP client that name a request's URL (a logger's filter sees only its own records).
_HTTP_LOGGERS = ("httpx",)


def _run_attempts(label: str, policy: DeliveryPolicy, attempt: Callable[[], None], secrets: Sequence[str]) -> Delivery:
    """Call ``attempt`` until it returns, raises ``_Fail``, or the policy's attempts or time run out; ``secrets`` are
    kept out of the error, and out of the HTTP client's log records while it runs."""
    masking = _Masking(secrets)
    loggers = [logging.getLogger(name) for name in _HTTP_LOGGERS]
    for logger in loggers:
        logger.addFilter(masking)
    try:
        return _attempts(label, policy, attempt, secrets)
    finally:
        for logger in loggers:
            logger.removeFilter(masking)


def _attempts(label: str, policy: DeliveryPolicy, attempt: Callable[[], None], secrets: Sequence[str]) -> Delivery:
    attempts = 0
    try:
        for retrying in stamina.retry_context(
            on=_backoff,
            attempts=policy.attempts,
            timeout=policy.total_seconds,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=min(1.0, policy.wait_initial),
        ):
            with retrying:
                attempts += 1
                try:
                    attempt()
                except _Retry as exc:
                    if attempts < policy.attempts:
                        log.warning(
                            "%s: %s; retrying (attempt %d of %d)", label, exc.said, attempts + 1, policy.attempts
                        )
                    raise
        return Delivery(ok=True, attempts=attempts)
    except _Retry as exc:
        times = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        error = f"{label} could not deliver the notice: {exc.said} (gave up after {times})"
    except _Fail as exc:
        error = f"{label} could not deliver the notice: {exc.said}"
    except Exception as exc:  # noqa: BLE001 - a delivery never raises into the run it reports on
        error = f"{label} could not deliver the notice: unexpected {type(exc).__name__}"
    error = _scrub(error, secrets)
    log.warning("%s", error)
    return Delivery(ok=False, attempts=attempts, error=error)


# -- HTTP (webhook and Slack) -------------------------------------------------------------------------------------

_SHORT_CODE = re.compile(r"\A[a-z][a-z0-9_]{0,63}\Z")  # an error code a server answered (Slack: "no_service")
_DELAY_SECONDS = re.compile(r"\A[0-9]{1,6}\Z")


def _check_url(url: str, channel: str, what: str, *, show: bool) -> None:
    """An https URL (or http to loopback); ``show``: whether the error may quote it (a Slack URL is a secret)."""
    parts = urlsplit(url)
    named = f" ({url})" if show else ""
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return
    raise ConfigError(
        f"alert channel {channel!r}: the {what}{named} must be an https:// URL (plain http only to 127.0.0.1, ::1 or "
        "localhost)",
        hint=f"give the channel the https:// {what}",
    )


def _os_reason(exc: BaseException) -> str:
    """A few words for a failed connection, from the OS error under an httpx or smtplib one (never its text, which
    may name the host or URL)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return "the host name does not resolve"
        if isinstance(current, TimeoutError | socket.timeout):
            return "timed out"
        if isinstance(current, OSError) and current.errno is not None:
            if current.errno == errno.ECONNREFUSED:
                return "connection refused"
            if current.errno in (errno.ECONNRESET, errno.EPIPE):
                return "connection reset"
            if current.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                return "host unreachable"
        current = current.__cause__ or current.__context__
    return "could not connect"


def _tls_failure(exc: BaseException) -> str | None:
    """The words for a TLS failure under ``exc``, or None when it is not one (retrying cannot fix a certificate)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return "the server's TLS certificate did not verify"
        if isinstance(current, ssl.SSLError):
            return "the TLS handshake failed"
        current = current.__cause__ or current.__context__
    return None


def _post(client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str], wait_max: float) -> None:
    """One POST; returns on 2xx, raises ``_Retry`` when another attempt may pass and ``_Fail`` when not."""
    try:
        response = client.post(url, content=body, headers=dict(headers))
    except httpx.TimeoutException:
        raise _Retry("timed out") from None
    except httpx.TransportError as exc:
        tls = _tls_failure(exc)
        if tls is not None:
            raise _Fail(tls) from None
        raise _Retry(_os_reason(exc)) from None
    status = response.status_code
    if 200 <= status < 300:
        return
    said = f"HTTP {status}"
    answer = response.text.strip()[:64]
    if _SHORT_CODE.match(answer):
        said += f" {answer}"  # Slack answers a bare code ("no_service", "invalid_token"): safe and telling
    if status in (408, 425, 429) or status >= 500:
        advised = response.headers.get("retry-after", "").strip()
        wait = min(float(advised), wait_max) if _DELAY_SECONDS.match(advised) else None
        raise _Retry(said, wait)
    if 300 <= status < 400:
        raise _Fail(f"{said}: the endpoint redirects, and a notice is not sent on to another address")
    raise _Fail(f"the endpoint answered {said}")


def _client(policy: DeliveryPolicy) -> httpx.Client:
    # No redirects: a signed notice goes to the configured address only.
    return httpx.Client(timeout=httpx.Timeout(policy.request_seconds), follow_redirects=False)


@dataclass(frozen=True)
class WebhookChannel:
    """POSTs each notice as JSON (:meth:`Notice.as_json`) to ``url``, signed with ``secret`` (the module's scheme).

    Args:
        name: The channel's name, in errors and logs.
        url: An https:// URL (plain http only to loopback). Errors never quote it (it may carry a token).
        secret: The HMAC-SHA256 key (from an ``hmac-secret`` credential).
        policy: Retries and timeouts.
    """

    name: str
    url: str = field(repr=False)
    secret: SecretStr = field(repr=False)
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)

    def __post_init__(self) -> None:
        _check_url(self.url, self.name, "webhook URL", show=False)
        if not self.secret.get_secret_value():
            raise ConfigError(f"alert channel {self.name!r}: the signing secret is empty", hint="give it a secret")

    @property
    def kind(self) -> ChannelKind:
        return "webhook"

    def body(self, notice: Notice) -> bytes:
        """The exact bytes POSTed (and signed) for ``notice``."""
        return orjson.dumps(notice.as_json())

    def deliver(self, notice: Notice) -> Delivery:
        label = f"alert channel {self.name!r} (webhook)"
        secret = self.secret.get_secret_value()
        try:
            body = self.body(notice)
        except Exception as exc:  # noqa: BLE001 - never raises into a run
            return Delivery(ok=False, attempts=0, error=f"{label}: the notice cannot be encoded ({type(exc).__name__})")

        def attempt() -> None:
            headers = {
                "Content-Type": "application/json",
                "User-Agent": f"offramp/{__version__}",
                NOTICE_ID_HEADER: notice.id,
                **signature_headers(_key(self.secret), body),  # signed afresh at every attempt
            }
            with _client(self.policy) as client:
                _post(client, self.url, body, headers, self.policy.wait_max)

        return _run_attempts(label, self.policy, attempt, [secret, self.url])


def _mrkdwn(text: str) -> str:
    """Text for Slack's mrkdwn: the three characters Slack asks to escape, escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(notice: Notice) -> dict[str, Any]:
    """The Slack message of ``notice``: ``text`` (notifications, and clients without blocks) and ``blocks``."""
    facts = notice.facts()
    lines = [f"*{_mrkdwn(label)}:* {_mrkdwn(value)}" for label, value in facts if label != "See the run"]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": notice.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}},
    ]
    if notice.command:
        see = f"See the run: `{_mrkdwn(notice.command)}`"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": see[:3000]}]})
    return {"text": _mrkdwn(f"[offramp] {notice.workspace}: {notice.title}"), "blocks": blocks}


@dataclass(frozen=True)
class SlackChannel:
    """POSTs each notice to a Slack incoming webhook (:func:`slack_message`).

    The webhook URL is a secret (whoever holds it may post to the channel): it is never logged nor put in an error,
    which names the channel instead.
    """

    name: str
    webhook_url: SecretStr = field(repr=False)
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)

    def __post_init__(self) -> None:
        _check_url(self.webhook_url.get_secret_value(), self.name, "Slack webhook URL", show=False)

    @property
    def kind(self) -> ChannelKind:
        return "slack"

    def deliver(self, notice: Notice) -> Delivery:
        label = f"alert channel {self.name!r} (slack)"
        url = self.webhook_url.get_secret_value()
        path = urlsplit(url).path
        try:
            body = orjson.dumps(slack_message(notice))
        except Exception as exc:  # noqa: BLE001 - never raises into a run
            return Delivery(ok=False, attempts=0, error=f"{label}: the notice cannot be encoded ({type(exc).__name__})")

        def attempt() -> None:
            headers = {"Content-Type": "application/json", "User-Agent": f"offramp/{__version__}"}
            with _client(self.policy) as client:
                _post(client, url, body, headers, self.policy.wait_max)

        # The path holds the webhook's tokens (/services/T.../B.../XXXX): scrubbed too, should it ever be quoted.
        return _run_attempts(label, self.policy, attempt, [url, path if len(path) > 1 else ""])


# -- email --------------------------------------------------------------------------------------------------------

_ADDRESS = re.compile(r"\A[^@\s<>,;\"]+@[^@\s<>,;\"]+\Z")


def _smtp_code(exc: smtplib.SMTPResponseException) -> int:
    return int(exc.smtp_code)


@dataclass(frozen=True)
class EmailChannel:
    """Sends each notice as an email (plain text and HTML alternatives) over SMTP.

    Args:
        name: The channel's name, in errors and logs.
        host: The SMTP server (relay or submission server).
        port: Its port: 587 (submission, with STARTTLS) by default; 25 for a relay.
        sender: The From address.
        recipients: The To addresses (one message to all).
        starttls: Upgrade the connection with STARTTLS before anything else, verifying the server's certificate;
            a server that does not offer it is an error, never a silent fall back to plain text.
        username: Log in (SMTP AUTH) as this user, with ``password`` (from a credential).
        password: The password; only ever sent over STARTTLS (or to a server on loopback).
        ca_file: A PEM file of the certificate authorities to trust instead of the system's (an internal relay).
        policy: Retries and timeouts.
    """

    name: str
    host: str
    sender: str
    recipients: tuple[str, ...]
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    ca_file: Path | None = None
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.host or any(c.isspace() for c in self.host):
            problems.append(f"host {self.host!r} is not a host name")
        if not 0 < self.port < 65536:
            problems.append(f"port {self.port} is not a port (1-65535)")
        if not _ADDRESS.match(self.sender):
            problems.append(f"sender {self.sender!r} is not an email address")
        if not self.recipients:
            problems.append("recipients is empty")
        problems += [f"recipient {to!r} is not an email address" for to in self.recipients if not _ADDRESS.match(to)]
        if (self.username is None) != (self.password is None):
            problems.append("username and password go together")
        if self.password is not None and not self.starttls and not is_loopback(self.host):
            problems.append("a password is sent only over STARTTLS (starttls off sends it in clear text)")
        if problems:
            raise ConfigError(
                f"alert channel {self.name!r}: " + "; ".join(problems),
                hint="fix the email channel's settings",
            )

    @property
    def kind(self) -> ChannelKind:
        return "email"

    def message(self, notice: Notice) -> EmailMessage:
        """The email of ``notice``: subject, plain text, and the same as HTML."""
        # Headers folded only past RFC 5322's hard limit: Python's folding at 78 characters moves some subjects
        # (with both brackets and quotes) whole onto a continuation line, and they arrive with a leading space.
        message = EmailMessage(policy=email.policy.default.clone(max_line_length=998))
        message["Subject"] = notice.subject()
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Date"] = formatdate(usegmt=True)
        # Given the sender's domain: make_msgid() would otherwise look up this machine's name, which can hang.
        message["Message-ID"] = make_msgid(idstring=notice.id, domain=self.sender.rpartition("@")[2])
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office answers to an alert
        message["X-Offramp-Notice-Id"] = notice.id
        message["X-Offramp-Notice-Kind"] = notice.kind
        message.set_content(notice.text())
        rows = "".join(
            f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
            for label, value in notice.facts()
        )
        message.add_alternative(
            f"<html><body><p><strong>{html.escape(notice.title)}</strong></p><table>{rows}</table></body></html>",
            subtype="html",
        )
        return message

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file is not None else None)

    def deliver(self, notice: Notice) -> Delivery:
        label = f"alert channel {self.name!r} (email)"
        password = self.password.get_secret_value() if self.password is not None else ""
        try:
            message = self.message(notice)
            context = self._context() if self.starttls else None
        except Exception as exc:  # noqa: BLE001 - never raises into a run
            return Delivery(ok=False, attempts=0, error=f"{label}: the message cannot be built ({type(exc).__name__})")
        return _run_attempts(label, self.policy, lambda: self._send(message, context, password), [password])

    def _send(self, message: EmailMessage, context: ssl.SSLContext | None, password: str) -> None:
        """One attempt: connect, STARTTLS, log in, send; ``_Retry`` for what another attempt may fix."""
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.policy.request_seconds)
        except smtplib.SMTPConnectError as exc:
            raise _Retry(f"the SMTP server refused the connection ({_smtp_code(exc)})") from None
        except OSError as exc:
            raise _Retry(_os_reason(exc)) from None
        try:
            self._session(smtp, message, context, password)
        finally:
            try:
                smtp.quit()  # after the message was accepted, a failing QUIT must not make it sent twice
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _session(
        self, smtp: smtplib.SMTP, message: EmailMessage, context: ssl.SSLContext | None, password: str
    ) -> None:
        try:
            smtp.ehlo()
            if context is not None:
                if not smtp.has_extn("starttls"):
                    raise _Fail("the SMTP server does not offer STARTTLS (turn starttls off only for a trusted relay)")
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.username is not None:
                smtp.login(self.username, password)
            refused = smtp.send_message(message, from_addr=self.sender, to_addrs=list(self.recipients))
        except _Fail:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise _Fail(f"the SMTP server refused the user name or password ({_smtp_code(exc)})") from None
        except smtplib.SMTPSenderRefused as exc:
            code = _smtp_code(exc)
            if 400 <= code < 500:
                raise _Retry(f"the SMTP server deferred the sender address ({code})") from None
            raise _Fail(f"the SMTP server refused the sender address ({code})") from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({int(code) for code, _ in exc.recipients.values()})
            shown = ", ".join(str(code) for code in codes)
            if all(400 <= code < 500 for code in codes):
                raise _Retry(f"the SMTP server deferred every recipient ({shown})") from None
            raise _Fail(f"the SMTP server refused every recipient ({shown})") from None
        except smtplib.SMTPNotSupportedError:
            raise _Fail("the SMTP server does not support what the channel asks (AUTH or STARTTLS)") from None
        except smtplib.SMTPResponseException as exc:
            code = _smtp_code(exc)
            if 400 <= code < 500:
                raise _Retry(f"the SMTP server answered {code}") from None
            raise _Fail(f"the SMTP server answered {code}") from None
        except smtplib.SMTPServerDisconnected:
            raise _Retry("the SMTP server closed the connection") from None
        except smtplib.SMTPException as exc:
            raise _Fail(f"SMTP error ({type(exc).__name__})") from None
        except ssl.SSLCertVerificationError:
            raise _Fail("the SMTP server's TLS certificate did not verify (set ca_file for an internal CA)") from None
        except ssl.SSLError:
            raise _Fail("the TLS handshake with the SMTP server failed") from None
        except OSError as exc:
            raise _Retry(_os_reason(exc)) from None
        if refused:
            # The others received it: another attempt would send it to them twice.
            answered = ", ".join(str(code) for code in sorted({int(code) for code, _ in refused.values()}))
            raise _Fail(f"the SMTP server refused {len(refused)} of {len(self.recipients)} recipients ({answered})")


__all__ = [
    "MAX_SKEW_SECONDS",
    "NOTICE_ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Channel",
    "ChannelKind",
    "Delivery",
    "DeliveryPolicy",
    "EmailChannel",
    "SlackChannel",
    "WebhookChannel",
    "sign",
    "signature_headers",
    "slack_message",
    "verify_signature",
]
