"""Running the emulator: in a background thread (tests), in the foreground (the CLI), or as a subprocess (benchmarks).

uvicorn serves it with access logs off and without its logging config, so an embedding process keeps its own
logging. The socket is bound before uvicorn starts, which is how port 0 (a free port) is known at once.
"""

from __future__ import annotations

import contextlib
import gc
import os
import queue
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette

from offramp.plugins.tiktok.emulator.app import create_app
from offramp.plugins.tiktok.emulator.clock import Clock
from offramp.plugins.tiktok.emulator.config import EmulatorConfig
from offramp.plugins.tiktok.emulator.state import EmulatorState

_URL_IN_ANNOUNCEMENT = re.compile(r"https?://\S+")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one); raises OSError when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto given explicitly: accepted sockets inherit it, and asyncio turns Nagle's algorithm off (TCP_NODELAY)
    # only on sockets whose proto is IPPROTO_TCP. With proto 0, every answer waited ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def base_url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _uvicorn_server(app: Starlette) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        log_level="warning",
        lifespan="off",
        ws="none",
        server_header=False,
    )
    return uvicorn.Server(config)


@dataclass
class RunningEmulator:
    """An emulator serving in this process: where it listens and its live state (for assertions)."""

    base_url: str
    state: EmulatorState
    app: Starlette


@contextlib.contextmanager
def run_emulator(
    config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0, *, clock: Clock | None = None
) -> Iterator[RunningEmulator]:
    """Serve an emulator from a background thread for the duration of the ``with`` block.

    Args:
        config: Seed, switches and faults; the defaults when None.
        host: Interface to listen on (loopback by default).
        port: Port; 0 picks a free one (read it from ``.base_url``).
        clock: Where "now" comes from, e.g. a `ManualClock` to expire codes and tokens without sleeping.
    """
    state = EmulatorState(config or EmulatorConfig(), clock)
    app = create_app(state=state)
    sock = bind_socket(host, port)
    server = _uvicorn_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="offramp-emulator", daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the emulator's server thread stopped while starting")
            if time.monotonic() > deadline:
                raise TimeoutError("the emulator did not start within 15 seconds")
            time.sleep(0.005)
        yield RunningEmulator(base_url_of(sock), state, app)
    finally:
        server.should_exit = True
        if thread.is_alive():
            thread.join(timeout=15)
        sock.close()


def tune_garbage_collector() -> None:
    """Make the cyclic garbage collector cheap for a process that only serves the emulator.

    Each request decodes thousands of short-lived containers, so with the default thresholds the collector runs
    several times per request and, every so often, scans every live object of the process: a third of the time of
    a benchmark. Freezing what exists at start-up and raising the first threshold keeps collections rare and small.
    Only for a process of its own: it changes the whole interpreter.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def serve_forever(config: EmulatorConfig, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Serve in the foreground until SIGINT or SIGTERM; `announce` gets the base URL once the port is open."""
    sock = bind_socket(host, port)
    try:
        server = _uvicorn_server(create_app(config))
        tune_garbage_collector()
        announce(base_url_of(sock))
        server.run(sockets=[sock])
    finally:
        sock.close()


@dataclass
class EmulatorProcess:
    """An `offramp emulator tiktok` subprocess; `stop()` (or leaving a ``with`` block) ends it."""

    base_url: str
    process: subprocess.Popen[bytes]
    _cleanup: list[Path] = field(default_factory=list, repr=False)

    def stop(self, timeout: float = 15) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        for path in self._cleanup:
            path.unlink(missing_ok=True)

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def start_emulator_process(
    config: EmulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    args: Sequence[str] = (),
    timeout: float = 30,
) -> EmulatorProcess:
    """Start `offramp emulator tiktok` as a subprocess and wait until it answers.

    Args:
        config: Written to a private temporary file passed as ``--config`` (removed by `stop()`).
        host: Interface to listen on.
        port: Port; 0 picks a free one.
        args: More command-line options, e.g. ``["--qps", "50"]``.
        timeout: Seconds to wait for the server to answer.
    """
    command = [sys.executable, "-m", "offramp.core.cli", "emulator", "tiktok", "--host", host, "--port", str(port)]
    command += args
    cleanup: list[Path] = []
    if config is not None:
        handle, name = tempfile.mkstemp(prefix="offramp-emulator-", suffix=".json")
        with os.fdopen(handle, "wb") as file:
            file.write(orjson.dumps(config.model_dump(mode="json")))
        cleanup.append(Path(name))
        command += ["--config", name]
    stderr_handle, stderr_name = tempfile.mkstemp(prefix="offramp-emulator-", suffix=".log")
    cleanup.append(Path(stderr_name))
    with os.fdopen(stderr_handle, "wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL)
    emulator = EmulatorProcess("", process, cleanup)
    try:
        line = _first_line(process.stdout, timeout)
        found = _URL_IN_ANNOUNCEMENT.search(line)
        if found is None:
            raise RuntimeError(f"the emulator did not start: {Path(stderr_name).read_text().strip() or line!r}")
        emulator.base_url = found.group(0)
        _wait_until_healthy(emulator.base_url, timeout)
    except BaseException:
        emulator.stop()
        raise
    return emulator


def _first_line(stream: IO[bytes] | None, timeout: float) -> str:
    """The first line the process prints, or "" when it prints none (exits) within the timeout."""
    assert stream is not None
    lines: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout).decode(errors="replace")
    except queue.Empty:
        raise TimeoutError(f"the emulator printed nothing within {timeout} seconds") from None


def _wait_until_healthy(base_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, timeout=2) as client:
        while True:
            try:
                if client.get("/_emulator/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the emulator at {base_url} did not answer within {timeout} seconds")
            time.sleep(0.05)


__all__ = [
    "EmulatorProcess",
    "RunningEmulator",
    "base_url_of",
    "bind_socket",
    "run_emulator",
    "serve_forever",
    "start_emulator_process",
]
