"""The emulator as an ASGI application (plain Starlette: the hot path needs no request models or OpenAPI)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from offramp.plugins.tiktok.emulator.api_routes import api_routes
from offramp.plugins.tiktok.emulator.clock import Clock
from offramp.plugins.tiktok.emulator.config import EmulatorConfig
from offramp.plugins.tiktok.emulator.control_routes import control_routes, portal_routes
from offramp.plugins.tiktok.emulator.state import EmulatorState


async def _http_error(request: Request, exc: Exception) -> Response:
    # TikTok answers a path it does not serve (e.g. without its trailing slash) with a bare 404 text page.
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    text = {404: "404 page not found", 405: "405 method not allowed"}.get(status, f"{status} error")
    return PlainTextResponse(text, status_code=status)


def create_app(
    config: EmulatorConfig | None = None, *, clock: Clock | None = None, state: EmulatorState | None = None
) -> Starlette:
    """Build the emulator's ASGI app; its live state is ``app.state.emulator`` (an `EmulatorState`).

    Args:
        config: Seed, switches and faults; the defaults when None.
        clock: Where "now" comes from (a `ManualClock` in tests); real time when None.
        state: An existing state to serve (then `config` and `clock` are ignored).
    """
    emulator = state or EmulatorState(config or EmulatorConfig(), clock)
    app = Starlette(
        routes=[*api_routes(emulator), *portal_routes(emulator), *control_routes(emulator)],
        exception_handlers={404: _http_error, 405: _http_error},
    )
    # Starlette would answer `/event/track` with a redirect to `/event/track/`; TikTok answers 404.
    app.router.redirect_slashes = False
    app.state.emulator = emulator
    return app


__all__ = ["create_app"]
