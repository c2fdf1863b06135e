"""The part of TikTok's Business API that offramp uses: events, OAuth, advertiser and user info, event sets."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from offramp.plugins.tiktok.emulator.routing import api_route, query_list, read_json_object
from offramp.plugins.tiktok.emulator.state import EmulatorState

_TOKEN_HEADER = "access-token"


def api_routes(state: EmulatorState) -> list[Route]:
    """Every TikTok API route of the emulator, bound to its state."""

    async def track(request: Request, request_id: str) -> None:
        # The token is checked before the body is read, so a request without one answers 40104 whatever it holds.
        token = state.authenticate(request.headers.get(_TOKEN_HEADER))
        state.track(token, await request.body(), request_id)

    async def access_token(request: Request, request_id: str) -> dict[str, Any]:
        body = await read_json_object(request)
        with state.lock:
            return state.auth.exchange_code(body)

    async def refresh_token(request: Request, request_id: str) -> dict[str, Any]:
        body = await read_json_object(request)
        with state.lock:
            return state.auth.refresh(body)

    async def revoke_token(request: Request, request_id: str) -> dict[str, Any]:
        body = await read_json_object(request)
        with state.lock:
            return state.auth.revoke_token(body)

    async def advertiser_get(request: Request, request_id: str) -> dict[str, Any]:
        token, query = request.headers.get(_TOKEN_HEADER), request.query_params
        return state.authorized_advertisers(token, query.get("app_id"), query.get("secret"))

    async def advertiser_info(request: Request, request_id: str) -> dict[str, Any]:
        return state.advertiser_info(
            request.headers.get(_TOKEN_HEADER), query_list(request, "advertiser_ids"), query_list(request, "fields")
        )

    async def user_info(request: Request, request_id: str) -> dict[str, Any]:
        return state.user_info(request.headers.get(_TOKEN_HEADER))

    async def offline_create(request: Request, request_id: str) -> dict[str, Any]:
        token = request.headers.get(_TOKEN_HEADER)
        state.authenticate(token)
        return state.create_event_set(token, await read_json_object(request))

    async def offline_get(request: Request, request_id: str) -> dict[str, Any]:
        query = request.query_params
        return state.list_event_sets(
            request.headers.get(_TOKEN_HEADER),
            query.get("advertiser_id"),
            query_list(request, "event_set_ids"),
            query.get("name"),
        )

    async def offline_update(request: Request, request_id: str) -> dict[str, Any]:
        token = request.headers.get(_TOKEN_HEADER)
        state.authenticate(token)
        return state.update_event_set(token, await read_json_object(request))

    async def offline_delete(request: Request, request_id: str) -> dict[str, Any]:
        token = request.headers.get(_TOKEN_HEADER)
        state.authenticate(token)
        return state.delete_event_set(token, await read_json_object(request))

    return [
        api_route(state, "event/track/", track, ["POST"]),
        api_route(state, "oauth2/access_token/", access_token, ["POST"]),
        api_route(state, "oauth2/refresh_token/", refresh_token, ["POST"]),
        api_route(state, "oauth2/revoke_token/", revoke_token, ["POST"]),
        api_route(state, "oauth2/advertiser/get/", advertiser_get, ["GET"]),
        api_route(state, "advertiser/info/", advertiser_info, ["GET"]),
        # TikTok's docs use GET; one SDK calls it with POST, so both work.
        api_route(state, "user/info/", user_info, ["GET", "POST"]),
        api_route(state, "offline/create/", offline_create, ["POST"]),
        api_route(state, "offline/get/", offline_get, ["GET"]),
        api_route(state, "offline/update/", offline_update, ["POST"]),
        api_route(state, "offline/delete/", offline_delete, ["POST"]),
    ]


__all__ = ["api_routes"]
