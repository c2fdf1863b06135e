"""A webhook receiver on loopback, as a user would write one: it verifies each request's signature (or bearer
token) the way docs/webhook-destination.md tells receivers to, records the events it accepted, and can be told to
answer 429, 503, 400 or 401, or to refuse some events."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

MAX_SKEW_SECONDS = 300


@dataclass
class Answer:
    """One scripted answer: status, headers, body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Received:
    """One request as it arrived."""

    body: bytes
    headers: dict[str, str]
    status: int  # what the receiver answered
    path: str = ""


# The recipe of docs/webhook-destination.md, "Verifying a request", character for character (a test holds them
# equal).
def verify(secret: bytes, body: bytes, timestamp: str | None, signature: str | None) -> bool:
    """True when the request was signed by offramp with `secret` less than five minutes ago."""
    if not timestamp or not signature or not (timestamp.isascii() and timestamp.isdigit()):
        return False  # isdigit() alone accepts digits such as "²", which int() refuses
    if abs(time.time() - int(timestamp)) > MAX_SKEW_SECONDS:
        return False
    expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    # Compared as bytes: compare_digest() raises on text that is not ASCII.
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


class Receiver:
    """The receiver's state; every method is safe to call while requests arrive."""

    def __init__(self, *, secret: str | None = None, token: str | None = None) -> None:
        self.secret = secret.encode() if secret else None
        self.token = token
        self._lock = threading.Lock()
        self._script: deque[Answer] = deque()
        self._forced: Answer | None = None
        self._refuse: set[str] = set()
        self._fail_batches_with: set[str] = set()
        self._delivered: list[str] = []
        self._events: list[dict[str, Any]] = []
        self.requests: list[Received] = []
        self.url = ""
        self.route = ""  # the one path it answers, as a web framework's route: "/hook" is not "/hook/"

    # -- control --

    def script(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order (after signature checks pass)."""
        with self._lock:
            self._script.extend(answers)

    @contextmanager
    def forced(self, answer: Answer) -> Iterator[None]:
        """Answer every request with ``answer`` while the block runs."""
        with self._lock:
            self._forced = answer
        try:
            yield
        finally:
            with self._lock:
                self._forced = None

    @contextmanager
    def refusing(self, ids: set[str]) -> Iterator[None]:
        """Accept batches, but name these events as failed in a 200 answer."""
        with self._lock:
            self._refuse = set(ids)
        try:
            yield
        finally:
            with self._lock:
                self._refuse = set()

    def fail_batches_with(self, *ids: str) -> None:
        """Answer 400 to every batch holding one of these events."""
        with self._lock:
            self._fail_batches_with.update(ids)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._forced = None
            self._refuse = set()
            self._fail_batches_with = set()
            self._delivered = []
            self._events = []
            self.requests = []

    # -- what arrived --

    def delivered(self) -> list[str]:
        with self._lock:
            return list(self._delivered)

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    def statuses(self) -> list[int]:
        with self._lock:
            return [item.status for item in self.requests]

    # -- one request --

    def handle(self, body: bytes, headers: dict[str, str], path: str) -> Answer:
        if path != self.route:
            answer = Answer(404, body=b'{"error": "no such route"}')
        else:
            answer = self._answer(body, headers)
        with self._lock:
            self.requests.append(Received(body, headers, answer.status, path))
        return answer

    def _authentic(self, body: bytes, headers: dict[str, str]) -> bool:
        if self.secret is not None:
            return verify(self.secret, body, headers.get("x-offramp-timestamp"), headers.get("x-offramp-signature"))
        return hmac.compare_digest(headers.get("authorization", ""), f"Bearer {self.token}")

    def _answer(self, body: bytes, headers: dict[str, str]) -> Answer:
        if not self._authentic(body, headers):
            return Answer(401, body=b'{"error": "bad signature"}')
        events = orjson.loads(body)["events"]
        ids = [str(event["event_id"]) for event in events]
        with self._lock:
            if self._forced is not None:
                return self._forced
            if self._script:
                return self._script.popleft()
            if self._fail_batches_with & set(ids):
                # Quotes what it was sent, as real services do: the sender must not copy this whole.
                quoted = orjson.dumps(events)[:500].decode()
                return Answer(400, body=orjson.dumps({"error": f"invalid batch: {quoted}"}))
            refused = [event_id for event_id in ids if event_id in self._refuse]
            for event_id, event in zip(ids, events, strict=True):
                if event_id not in self._refuse:
                    self._delivered.append(event_id)
                    self._events.append(event)
        failed = [{"event_id": event_id, "code": "duplicate_order", "message": "seen before"} for event_id in refused]
        return Answer(200, {"X-Request-Id": f"req-{len(self.requests)}"}, orjson.dumps({"failed": failed}))


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            answer = receiver.handle(body, {key.lower(): value for key, value in self.headers.items()}, self.path)
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the tests read `requests`

    return Handler


@contextmanager
def running(receiver: Receiver, path: str = "/hooks/offramp") -> Iterator[Receiver]:
    """Serve ``receiver`` on 127.0.0.1 (a free port) in a thread; ``receiver.url`` is where to POST."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    receiver.route = path
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
