"""Connection test and event-set set-up of the `tiktok-ads-offline-events` destination.

`offramp destinations test` checks, in order: the credential's token works; the advertiser is reachable with an
Operator or Admin role; the event set exists under that advertiser; its name matches (a mismatch is a warning);
its auto tracking matches (a warning, which ``fix`` corrects). Each later step is skipped when an earlier one
failed, so the first failure is the one to act on.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from offramp.core.connection_checks import CheckStep
from offramp.core.errors import ConfigError, OfframpError
from offramp.core.services.context import Context
from offramp.core.state.models import Destination
from offramp.credentials.tiktok_oauth import raise_for_envelope
from offramp.credentials.tiktok_session import TikTokCredentialSession
from offramp.plugins.tiktok.settings import TikTokOfflineEventsDestinationSettings

API = "/open_api/v1.3"
WRITER_ROLES = ("ADMIN", "OPERATOR")


class _AccountApi:
    """The account and event-set endpoints, called with the credential's token."""

    def __init__(self, credential: TikTokCredentialSession) -> None:
        self._base = f"{credential.settings().api_base_url}{API}"
        self._client = httpx.Client(auth=credential.auth(), timeout=30.0)

    def __enter__(self) -> _AccountApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def _answer(self, response: httpx.Response) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        return raise_for_envelope(payload, response.status_code)

    def get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return self._answer(self._client.get(f"{self._base}/{path}", params=params))

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._answer(self._client.post(f"{self._base}/{path}", json=body))


def _session(ctx: Context, row: Destination) -> TikTokCredentialSession:
    return TikTokCredentialSession(ctx, row.workspace.name, row.credential.name)


def check_connection(
    ctx: Context, row: Destination, settings: TikTokOfflineEventsDestinationSettings, *, fix: bool = False
) -> list[CheckStep]:
    """Run the checks in order; see the module docstring."""
    steps: list[CheckStep] = []
    credential = _session(ctx, row)
    try:
        credential.access_token()
    except OfframpError as exc:
        return [CheckStep("token", "failed", str(exc))]
    steps.append(CheckStep("token", "ok", f"credential {row.credential.name} has a working token"))
    with _AccountApi(credential) as api:
        advertiser = settings.advertiser_id
        try:
            found = api.get("advertiser/info/", {"advertiser_ids": json.dumps([advertiser])}).get("list", [])
        except OfframpError as exc:
            return [*steps, CheckStep("advertiser", "failed", f"advertiser {advertiser} is not reachable: {exc}")]
        if not found:
            return [*steps, CheckStep("advertiser", "failed", f"the token does not reach advertiser {advertiser}")]
        role = found[0].get("user_role")
        if role is not None and role not in WRITER_ROLES:
            detail = (
                f"the credential was authorized by an {role.title()} of advertiser {advertiser}; OAuth needs a "
                "TikTok Ad Account Operator or Admin: re-authorize with such a user "
                f"(offramp credentials authorize {row.credential.name})"
            )
            return [*steps, CheckStep("advertiser", "failed", detail)]
        shown_role = role.title() if role else "role not reported by TikTok"
        steps.append(CheckStep("advertiser", "ok", f"{advertiser} ({found[0].get('name')}), {shown_role}"))
        if settings.event_source == "web":
            return [*steps, CheckStep("event set", "skipped", "web pixels are not checked")]
        if settings.event_set_id is None:
            detail = f"no event_set_id is set: run `offramp destinations ensure-event-set {row.name}`"
            return [*steps, CheckStep("event set", "failed", detail)]
        params = {"advertiser_id": advertiser, "event_set_ids": json.dumps([settings.event_set_id])}
        sets = api.get("offline/get/", params).get("event_set_list", [])
        if not sets:
            detail = f"event set {settings.event_set_id} does not exist under advertiser {advertiser}"
            return [*steps, CheckStep("event set", "failed", detail)]
        event_set = sets[0]
        steps.append(CheckStep("event set", "ok", f"{settings.event_set_id} ({event_set.get('name')})"))
        if settings.event_set_name is not None and event_set.get("name") != settings.event_set_name:
            detail = f"TikTok calls it {event_set.get('name')!r}, the destination says {settings.event_set_name!r}"
            steps.append(CheckStep("event set name", "warning", detail))
        else:
            steps.append(CheckStep("event set name", "ok", str(event_set.get("name"))))
        if bool(event_set.get("auto_tracking")) == settings.auto_tracking:
            steps.append(CheckStep("auto tracking", "ok", "on" if settings.auto_tracking else "off"))
        elif fix:
            body = {"advertiser_id": advertiser, "event_set_id": settings.event_set_id}
            api.post("offline/update/", {**body, "auto_tracking": settings.auto_tracking})
            detail = f"turned {'on' if settings.auto_tracking else 'off'} to match the destination"
            steps.append(CheckStep("auto tracking", "fixed", detail))
        else:
            detail = (
                f"the event set has auto tracking {'on' if event_set.get('auto_tracking') else 'off'}, the destination "
                f"says {'on' if settings.auto_tracking else 'off'}: run again with --fix to update the event set"
            )
            steps.append(CheckStep("auto tracking", "warning", detail))
    return steps


def create_event_set(ctx: Context, row: Destination, settings: TikTokOfflineEventsDestinationSettings) -> str:
    """Create the destination's offline event set with its name and auto tracking; return the new ID."""
    if settings.event_source != "offline":
        raise ConfigError("ensure-event-set creates offline event sets only", hint="set the pixel code yourself")
    if settings.event_set_name is None:
        raise ConfigError(
            f"destination {row.name!r} has no event_set_name to create the event set with",
            hint="set event_set_name (export, edit, apply) and run again",
        )
    with _AccountApi(_session(ctx, row)) as api:
        body = {
            "advertiser_id": settings.advertiser_id,
            "name": settings.event_set_name,
            "description": "Created by offramp",
            "auto_tracking": settings.auto_tracking,
        }
        return str(api.post("offline/create/", body)["event_set_id"])


__all__ = ["check_connection", "create_event_set"]
