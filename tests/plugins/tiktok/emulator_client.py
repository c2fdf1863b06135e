"""Helpers of the emulator tests: valid events and bodies, and a client that speaks to the emulator as TikTok's."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from offramp.plugins.tiktok.emulator import (
    ADMIN_AUTH_CODE,
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_EVENT_SET_ID,
    RunningEmulator,
)

TRACK = "/open_api/v1.3/event/track/"
ACCESS_TOKEN = "/open_api/v1.3/oauth2/access_token/"
REFRESH_TOKEN = "/open_api/v1.3/oauth2/refresh_token/"
REVOKE_TOKEN = "/open_api/v1.3/oauth2/revoke_token/"
REQUEST_ID = r"^\d{14}[0-9A-F]{20}$"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_event(n: int = 1, **overrides: Any) -> dict[str, Any]:
    """A valid offline Purchase; keyword arguments replace top-level keys."""
    event: dict[str, Any] = {
        "event": "Purchase",
        "event_time": 1_795_300_000 + n,
        "event_id": f"order-{n}",
        "user": {"email": [sha256(f"c{n}@example.com")], "phone": sha256(f"+1415555{n:04d}")},
        "properties": {
            "currency": "USD",
            "value": 59.98,
            "order_id": f"{n}",
            "content_type": "product",
            "event_channel": "in_store",
            "contents": [{"content_id": "SKU-1", "content_name": "Socks", "price": 29.99, "quantity": 2}],
        },
    }
    event.update(overrides)
    return event


def track_body(events: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"event_source": "offline", "event_source_id": DEFAULT_EVENT_SET_ID, "data": events}
    body.update(overrides)
    return body


class Api:
    """A client of one emulator: TikTok's endpoints, plus the control API for assertions."""

    def __init__(self, emulator: RunningEmulator, client: httpx.Client) -> None:
        self.emulator = emulator
        self.client = client

    @property
    def state(self) -> Any:
        return self.emulator.state

    def post(self, path: str, body: Any, token: str | None = None) -> dict[str, Any]:
        """POST JSON, assert TikTok's HTTP 200 + envelope, return the envelope."""
        headers = {"Access-Token": token} if token is not None else {}
        response = self.client.post(path, json=body, headers=headers)
        return self._envelope(response)

    def get(self, path: str, params: Any = None, token: str | None = None) -> dict[str, Any]:
        headers = {"Access-Token": token} if token is not None else {}
        return self._envelope(self.client.get(path, params=params, headers=headers))

    @staticmethod
    def _envelope(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        assert set(answer) == {"code", "message", "request_id", "data"}, answer
        assert response.headers["X-TT-LOGID"] == answer["request_id"]
        return answer

    def exchange(self, auth_code: str = ADMIN_AUTH_CODE) -> dict[str, Any]:
        body = {"app_id": DEFAULT_APP_ID, "secret": DEFAULT_APP_SECRET, "auth_code": auth_code}
        answer = self.post(ACCESS_TOKEN, body)
        assert answer["code"] == 0, answer
        data: dict[str, Any] = answer["data"]
        return data

    def token(self, auth_code: str = ADMIN_AUTH_CODE) -> str:
        return str(self.exchange(auth_code)["access_token"])

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        body = {
            "app_id": DEFAULT_APP_ID,
            "secret": DEFAULT_APP_SECRET,
            "refresh_token": refresh_token,
            "grant_type": "refresh_token",
        }
        return self.post(REFRESH_TOKEN, body)

    def track(self, token: str, events: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
        return self.post(TRACK, track_body(events, **overrides), token)

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, f"/_emulator/{path}", **kwargs)
        assert response.status_code == 200, response.text
        return response.json()
