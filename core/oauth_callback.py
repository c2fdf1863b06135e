"""A one-shot loopback listener that catches an OAuth redirect (`offramp credentials authorize --listen`)."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
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


def new_state() -> str:
    """An unguessable ``state`` to tie the redirect to this authorization."""
    return secrets.token_urlsafe(24)


def parse_redirect(text: str, code_parameter: str = "auth_code") -> Redirect:
    """Read a pasted redirect URL (or a bare code) into its parts."""
    text = text.strip()
    if "?" not in text and "=" not in text:
        return Redirect(code=text or None, state=None, error=None)
    query = parse_qs(urlsplit(text).query if "?" in text else text)
    first = {key: values[0] for key, values in query.items() if values}
    return Redirect(
        code=first.get(code_parameter) or first.get("code"), state=first.get("state"), error=first.get("error")
    )


def check_state(redirect: Redirect, expected: str) -> str:
    """The code of a redirect whose ``state`` matches; anything else is refused, naming why."""
    if redirect.error:
        raise ConfigError(f"the authorization was refused: {redirect.error}", hint="authorize again")
    if redirect.state is not None and redirect.state != expected:
        raise ConfigError(
            "the redirect's state does not match this authorization (a stale or forged redirect)",
            hint="start `offramp credentials authorize` again and use the new URL",
        )
    if not redirect.code:
        raise ConfigError("the redirect holds no auth_code", hint="copy the whole URL TikTok redirected to")
    return redirect.code


class LoopbackListener:
    """Serves one GET on ``127.0.0.1:port`` and hands back its query.

    Bind first (port 0 picks a free port), show the user the authorization URL with :attr:`redirect_uri`,
    then :meth:`wait`.
    """

    def __init__(self, port: int = 0, path: str = "/callback", code_parameter: str = "auth_code") -> None:
        self._result: Redirect | None = None
        self._done = threading.Event()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                parts = urlsplit(self.path)
                if parts.path != path:
                    self.send_error(404)
                    return
                redirect = parse_redirect(f"?{parts.query}", code_parameter)
                ok = bool(redirect.code) and not redirect.error
                body = _PAGE.format(
                    title="offramp is authorized" if ok else "Authorization failed",
                    detail="offramp received the authorization code." if ok else (redirect.error or "no code"),
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                listener._result = redirect
                listener._done.set()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return  # the request line holds the code: keep it out of the terminal

        try:
            self._server = HTTPServer(("127.0.0.1", port), Handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on 127.0.0.1:{port}: {exc.strerror}", hint="pick another --port"
            ) from None
        self._server.timeout = 0.2  # handle_request returns this often, so the thread sees close()
        self.redirect_uri = f"http://127.0.0.1:{self._server.server_port}{path}"
        self._thread = threading.Thread(target=self._serve, name="offramp-oauth-callback", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._done.is_set():
            self._server.handle_request()

    def wait(self, timeout: float) -> Redirect:
        """The redirect, or ConfigError after ``timeout`` seconds."""
        try:
            if not self._done.wait(timeout):
                raise ConfigError(
                    f"no redirect arrived at {self.redirect_uri} within {timeout:.0f} s",
                    hint="open the URL in a browser on this machine, or paste the code without --listen",
                )
            assert self._result is not None
            return self._result
        finally:
            self.close()

    def close(self) -> None:
        """Stop listening."""
        self._done.set()
        self._thread.join()
        self._server.server_close()


__all__ = ["LoopbackListener", "Redirect", "check_state", "new_state", "parse_redirect"]
