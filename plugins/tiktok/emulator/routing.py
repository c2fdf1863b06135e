"""How a TikTok API route runs: request id, faults, the handler, the envelope, the counters.

Handlers return the envelope's `data` or raise `ApiError`; everything TikTok-shaped around them lives here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from offramp.plugins.tiktok.emulator.envelope import (
    INVALID_PARAMETER,
    ApiError,
    envelope,
    invalid_value,
    new_request_id,
    proxy_error,
)
from offramp.plugins.tiktok.emulator.state import EmulatorState

API_PREFIX = "/open_api/v1.3/"

Handler = Callable[[Request, str], Awaitable[Any]]


def api_route(state: EmulatorState, path: str, handler: Handler, methods: list[str]) -> Route:
    """A route for ``/open_api/v1.3/<path>`` (path ends in a slash, as all of TikTok's do)."""

    async def endpoint(request: Request) -> Response:
        request_id = new_request_id(state.clock.now())
        faults = state.faults
        if faults.disturbs_requests and faults.applies_to(path):
            with state.lock:
                disturbance = state.injector.draw()
            if disturbance.delay:
                await asyncio.sleep(disturbance.delay)
            if disturbance.http_status is not None:
                with state.lock:
                    state.stats.count_answer(path, http_status=disturbance.http_status)
                return proxy_error(disturbance.http_status, request_id)
            if disturbance.code is not None:
                with state.lock:
                    state.stats.count_answer(path, disturbance.code)
                return envelope(request_id, disturbance.code)
        try:
            data = await handler(request, request_id)
        except ApiError as error:
            with state.lock:
                state.stats.count_answer(path, error.code)
            return envelope(request_id, error.code, error.message)
        with state.lock:
            state.stats.count_answer(path)
        return envelope(request_id, data=data)

    return Route(API_PREFIX + path, endpoint, methods=methods)


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or the 40002 TikTok answers."""
    body = await request.body()
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(INVALID_PARAMETER, invalid_value("body", "not valid JSON")) from None
    if not isinstance(parsed, dict):
        raise ApiError(INVALID_PARAMETER, invalid_value("body", "not a valid JSON object"))
    return parsed


def query_list(request: Request, name: str) -> list[str] | None:
    """A list query parameter, sent either as a JSON array string (`ids=["1","2"]`) or as repeated keys."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    if len(values) == 1 and values[0].lstrip().startswith("["):
        try:
            parsed = orjson.loads(values[0])
        except orjson.JSONDecodeError:
            raise ApiError(INVALID_PARAMETER, invalid_value(name, "not a valid JSON list")) from None
        if not isinstance(parsed, list) or not all(isinstance(item, str | int) for item in parsed):
            raise ApiError(INVALID_PARAMETER, invalid_value(name, "not a valid list of strings"))
        return [str(item) for item in parsed]
    return values


__all__ = ["API_PREFIX", "Handler", "api_route", "query_list", "read_json_object"]
