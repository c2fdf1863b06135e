"""Loopback stand-ins that receive alert notices, for the alert tests: an HTTP receiver (a webhook or Slack) that
records every POST and answers what a test scripts, and an SMTP server (aiosmtpd) that keeps what it accepted.

Shared by tests/core/test_alert_channels.py (the channels alone) and tests/alerts/ (channels of real runs).
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

SMTP_USER = "alerts@example.com"
SMTP_PASSWORD = "smtp-pass-do-not-leak"


# -- a loopback HTTP receiver (webhook and Slack stand-in) -------------------------------------------------------


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every POST; answers the scripted (status, headers, body) first, then 200 ``ok``."""

    requests: list[Request] = field(default_factory=list)
    script: deque[tuple[int, dict[str, str], bytes]] = field(default_factory=deque)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[Any]:
        with self.lock:
            return [orjson.loads(request.body) for request in self.requests]


@contextmanager
def receiving(path: str = "/hooks/alerts") -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                receiver.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status, headers, answer = receiver.script.popleft() if receiver.script else (200, {}, b"ok")
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a loopback SMTP server ------------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """What the SMTP server accepted, and the logins it saw; ``defer_rcpt`` answers 451 to that many RCPTs."""

    messages: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    defer_rcpt: int = 0

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's naming
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.defer_rcpt > 0:
            self.defer_rcpt -= 1
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTPServer, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((envelope, message))
        return "250 OK"

    def authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        ok = auth_data.login.decode() == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


@dataclass
class SmtpServer:
    mailbox: Mailbox
    port: int


@contextmanager
def smtp_server(**options: Any) -> Iterator[SmtpServer]:
    """An SMTP server on loopback; ``auth=True`` requires a login (over TLS), ``login=True`` offers one over plain
    SMTP (aiosmtpd warns, rightly, when a login is required without TLS)."""
    mailbox = Mailbox()
    if options.pop("auth", False):
        options["authenticator"] = mailbox.authenticate
        options["auth_required"] = True
    if options.pop("login", False):
        options["authenticator"] = mailbox.authenticate
        options["auth_require_tls"] = False
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield SmtpServer(mailbox, port)
    finally:
        controller.stop()
