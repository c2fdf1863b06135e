"""What is not TikTok's API: the consent page stand-in (`/portal/auth`) and the control API under `/_emulator/`.

The control API answers plain JSON (no envelope) with ordinary HTTP statuses; it holds tokens, so it is for tests
and local use only.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode, urlsplit

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from offramp.plugins.tiktok.emulator.config import Faults
from offramp.plugins.tiktok.emulator.received import Status
from offramp.plugins.tiktok.emulator.seed import ADMIN_USER
from offramp.plugins.tiktok.emulator.state import EmulatorState

CONTROL_PREFIX = "/_emulator/"
_STATUSES = ("accepted", "duplicate")


def _json(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")


def _error(message: str, status_code: int = 400, **extra: Any) -> Response:
    return _json({"error": message, **extra}, status_code)


async def _json_body(request: Request) -> dict[str, Any] | Response:
    body = await request.body()
    if not body.strip():
        return {}
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _error("the body is not valid JSON")
    return parsed if isinstance(parsed, dict) else _error("the body must be a JSON object")


def portal_routes(state: EmulatorState) -> list[Route]:
    """`GET /portal/auth`: stands in for TikTok's consent page and redirects at once with a fresh auth code."""

    async def authorize(request: Request) -> Response:
        query = request.query_params
        app_id = query.get("app_id", "")
        redirect_uri = query.get("redirect_uri", "")
        user = query.get("user", ADMIN_USER)
        app = next((a for a in state.config.seed.apps if a.app_id == app_id), None)
        if app is None:
            return HTMLResponse(f"<p>Unknown app_id {app_id!r}.</p>", status_code=400)
        if urlsplit(redirect_uri).scheme not in ("http", "https"):
            return HTMLResponse("<p>redirect_uri must be an http(s) URL.</p>", status_code=400)
        if app.redirect_uris and redirect_uri not in app.redirect_uris:
            return HTMLResponse("<p>redirect_uri is not registered for this app.</p>", status_code=400)
        try:
            code = state.issue_auth_code(user, app_id)
        except KeyError:
            return HTMLResponse(f"<p>Unknown user {user!r}.</p>", status_code=400)
        params = {"auth_code": code, "code": code, "state": query.get("state", "")}
        separator = "&" if urlsplit(redirect_uri).query else "?"
        return RedirectResponse(redirect_uri + separator + urlencode(params), status_code=302)

    return [Route("/portal/auth", authorize, methods=["GET"])]


def control_routes(state: EmulatorState) -> list[Route]:
    """The `/_emulator/` control API: inspection, reset, faults, auth codes, revocation, grants, clock."""

    async def health(request: Request) -> Response:
        return _json({"status": "ok"})

    async def events(request: Request) -> Response:
        query = request.query_params
        status = query.get("status")
        if status is not None and status not in _STATUSES:
            return _error(f"status must be one of {', '.join(_STATUSES)}")
        limit = query.get("limit")
        if limit is not None and not limit.isdigit():
            return _error("limit must be a whole number")
        found = state.events(
            event_set_id=query.get("event_set_id"),
            event=query.get("event"),
            event_id=query.get("event_id"),
            status=cast(Status | None, status),
            limit=None if limit is None else int(limit),
        )
        return _json({"count": len(found), "events": found})

    async def stats(request: Request) -> Response:
        return _json(state.statistics())

    async def reset(request: Request) -> Response:
        state.reset()
        return _json({"reset": True})

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return _json(state.faults.model_dump(mode="json"))
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        replace = request.query_params.get("replace", "").lower() in ("1", "true", "yes")
        try:
            updated = state.set_faults(Faults.model_validate(body)) if replace else state.patch_faults(body)
        except ValidationError as exc:
            details = [f"{'.'.join(map(str, e['loc'])) or 'faults'}: {e['msg']}" for e in exc.errors()]
            return _error("invalid faults", 422, details=details)
        return _json(updated.model_dump(mode="json"))

    async def auth_codes(request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        try:
            code = state.issue_auth_code(str(body.get("user", ADMIN_USER)), body.get("app_id"))
        except KeyError as exc:
            return _error(str(exc.args[0]), 404)
        return _json({"auth_code": code})

    async def revoke(request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        try:
            revoked = state.revoke_user(str(body.get("user", ADMIN_USER)))
        except KeyError as exc:
            return _error(str(exc.args[0]), 404)
        return _json({"revoked": revoked})

    async def grants(request: Request) -> Response:
        return _json({"grants": state.grants()})

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            body = await _json_body(request)
            if isinstance(body, Response):
                return body
            seconds = body.get("advance_seconds", 0)
            if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
                return _error("advance_seconds must be a number of seconds, 0 or more")
            state.clock.advance(float(seconds))
        return _json({"now": state.clock.now()})

    return [
        Route(CONTROL_PREFIX + "health", health, methods=["GET"]),
        Route(CONTROL_PREFIX + "events", events, methods=["GET"]),
        Route(CONTROL_PREFIX + "stats", stats, methods=["GET"]),
        Route(CONTROL_PREFIX + "reset", reset, methods=["POST"]),
        Route(CONTROL_PREFIX + "faults", faults, methods=["GET", "POST"]),
        Route(CONTROL_PREFIX + "auth-codes", auth_codes, methods=["POST"]),
        Route(CONTROL_PREFIX + "revoke", revoke, methods=["POST"]),
        Route(CONTROL_PREFIX + "grants", grants, methods=["GET"]),
        Route(CONTROL_PREFIX + "clock", clock, methods=["GET", "POST"]),
    ]


__all__ = ["CONTROL_PREFIX", "control_routes", "portal_routes"]
