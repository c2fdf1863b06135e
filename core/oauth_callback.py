"""A loopback listener that catches an OAuth redirect (`offramp credentials authorize --listen`)."""

from __future__ import annotations

import html
import secrets
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from offramp.core.errors import ConfigError

_PAGE = (
    "<!doctype html><title>offramp</title><body style='font-family:sans-serif'>"
    "<h2>{title}</h2><p>{detail}</p><p>You can close this tab and return to the terminal.</p></body>"
)


@dataclass(frozen=True)
class Redirect:
    """What the authorization server sent back."""

    code: str | None
    state: str | None
    error: str | None
    # A code typed or pasted on its own, not a redirect: it carries no state, and the user vouches for it.
    bare_code: bool = False


def new_state() -> str:
    """An unguessable ``state`` to tie the redirect to this authorization."""
    return secrets.token_urlsafe(24)


def parse_redirect(text: str, code_parameter: str = "auth_code") -> Redirect:
    """Read a pasted redirect URL (or a bare code) into its parts."""
    text = text.strip()
    if "?" not in text and "=" not in text:
        return Redirect(code=text or None, state=None, error=None, bare_code=bool(text))
    query = parse_qs(urlsplit(text).query if "?" in text else text)
    first = {key: values[0] for key, values in query.items() if values}
    return Redirect(
        code=first.get(code_parameter) or first.get("code"), state=first.get("state"), error=first.get("error")
    )


def check_state(redirect: Redirect, expected: str) -> str:
    """The code of a redirect whose ``state`` matches; anything else is refused, naming why.

    A redirect without any ``state`` is refused like one with another state: anyone who can make the browser (or
    a local process) call the redirect URI could otherwise bind the credential to their own grant. Only a code
    given on its own, which the user copied themselves, carries no state.
    """
    if redirect.state is None and not redirect.bare_code:
        raise ConfigError(
            "the redirect carries no state, so it cannot be tied to this authorization (a forged redirect?)",
            hint="run the same `credentials authorize` command again and use the new URL it prints; paste the whole "
            "URL TikTok redirected to, or only its auth_code",
        )
    if redirect.state is not None and redirect.state != expected:
        raise ConfigError(
            "the redirect's state does not match this authorization (a stale or forged redirect)",
            hint="run the same `credentials authorize` command again and use the new URL it prints",
        )
    if redirect.error:
        raise ConfigError(f"the authorization was refused: {redirect.error}", hint="authorize again")
    if not redirect.code:
        raise ConfigError("the redirect holds no auth_code", hint="copy the whole URL TikTok redirected to")
    return redirect.code


_Request = socket.socket | tuple[bytes, socket.socket]


class _Server(ThreadingHTTPServer):
    # Each connection gets a thread of its own, so one that sends nothing cannot hold up the real redirect; the
    # threads are daemons and are not waited for on close, so a stuck client cannot hold up the command either.
    daemon_threads = True
    block_on_close = False
    # socketserver's default backlog is 5: a local process opening connections in a tight loop fills it before
    # the serve thread accepts, and Linux then drops every further SYN (the browser's too), each costing the
    # client a retransmit of 1 s, then 3 s, ... so the real redirect could not land before --timeout. A deep
    # queue (the kernel caps it at net.core.somaxconn) lets the kernel complete a burst at once.
    request_queue_size = 4096
    # Connections accepted but still without a complete request are bounded: past this many, the oldest is
    # dropped, so a burst (or slow senders) cannot pile up threads and file descriptors until accept() fails.
    # The real redirect is sent right after its connection opens, so it is the newest, never the oldest.
    MAX_IDLE_CONNECTIONS = 64

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._idle_lock = threading.Lock()
        self._idle: dict[socket.socket, None] = {}  # insertion order: oldest first
        super().__init__(address, handler)

    def process_request(self, request: _Request, client_address: Any) -> None:
        if isinstance(request, socket.socket):
            with self._idle_lock:
                self._idle[request] = None
                while len(self._idle) > self.MAX_IDLE_CONNECTIONS:
                    oldest = next(iter(self._idle))
                    del self._idle[oldest]
                    # Under the lock: a connection still listed here has not been closed, so its descriptor
                    # cannot have been reused by another one. Its handler then reads EOF and ends.
                    try:
                        oldest.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
        super().process_request(request, client_address)

    def request_arrived(self, request: socket.socket) -> None:
        """The connection sent a whole request: it is being answered, no longer idle."""
        with self._idle_lock:
            self._idle.pop(request, None)

    def shutdown_request(self, request: _Request) -> None:
        if isinstance(request, socket.socket):
            with self._idle_lock:
                self._idle.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: _Request, client_address: Any) -> None:
        # A connection that broke (reset, dropped, no thread left for it) concerns only itself; the default
        # prints a traceback into the terminal. The listener keeps serving the others.
        return


class LoopbackListener:
    """Serves GETs on ``127.0.0.1:port`` until one brings the redirect, and hands back its query.

    Bind first (port 0 picks a free port), show the user the authorization URL with :attr:`redirect_uri`,
    then :meth:`wait`. A callback without a ``state`` (or, when ``state`` is given, with another one) is refused
    with HTTP 400 and the listener keeps waiting for the real redirect, until the timeout.
    """

    CONNECTION_TIMEOUT = 10.0  # seconds a connection may take to send its request

    def __init__(
        self, port: int = 0, path: str = "/callback", code_parameter: str = "auth_code", state: str | None = None
    ) -> None:
        self._result: Redirect | None = None
        self._done = threading.Event()
        self._closed = False
        listener = self

        class Handler(BaseHTTPRequestHandler):
            timeout = self.CONNECTION_TIMEOUT  # an idle connection is dropped after this, never waited for

            def parse_request(self) -> bool:
                # Called once the request line and headers are read: from now on this connection is answered.
                listener._server.request_arrived(self.connection)
                return super().parse_request()

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                parts = urlsplit(self.path)
                if parts.path != path:
                    self.send_error(404)
                    return
                redirect = parse_redirect(f"?{parts.query}", code_parameter)
                if redirect.state is None or (state is not None and redirect.state != state):
                    self._page(400, "Authorization refused", "This redirect does not belong to the authorization.")
                    return
                if listener._done.is_set():  # a second redirect after the first: the first one counts
                    self._page(409, "Already answered", "offramp already received a redirect.")
                    return
                ok = bool(redirect.code) and not redirect.error
                self._page(
                    200,
                    "offramp is authorized" if ok else "Authorization failed",
                    "offramp received the authorization code." if ok else (redirect.error or "no code"),
                )
                listener._result = redirect
                listener._done.set()

            def _page(self, status: int, title: str, detail: str) -> None:
                body = _PAGE.format(title=html.escape(title), detail=html.escape(detail)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return  # the request line holds the code: keep it out of the terminal

        try:
            self._server = _Server(("127.0.0.1", port), Handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on 127.0.0.1:{port}: {exc.strerror}", hint="pick another --port"
            ) from None
        self.redirect_uri = f"http://127.0.0.1:{self._server.server_port}{path}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="offramp-oauth-callback", daemon=True
        )
        self._thread.start()

    def wait(self, timeout: float) -> Redirect:
        """The redirect, or ConfigError after ``timeout`` seconds."""
        try:
            if not self._done.wait(timeout):
                raise ConfigError(
                    f"no redirect arrived at {self.redirect_uri}: timed out after {timeout:g} s",
                    hint="open the URL in a browser on this machine, or paste the code without --listen",
                )
            assert self._result is not None
            return self._result
        finally:
            self.close()

    def close(self) -> None:
        """Stop listening (connections still open are dropped with the process)."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()


__all__ = ["LoopbackListener", "Redirect", "check_state", "new_state", "parse_redirect"]
