"""Connection test and event-set set-up (the ``ensure-event-set`` action) of the `tiktok-ads-offline-events`
destination.

`offramp destinations test` checks, in order: the credential's token works; the advertiser is reachable with an
Operator or Admin role; the event set exists under that advertiser; its name matches (a mismatch is a warning);
its auto tracking matches (a warning, which ``fix`` corrects). Each later step is skipped when an earlier one
failed, so the first failure is the one to act on.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from offramp.core import ActionResult, CheckStep, ConfigError, DestinationContext, OfframpError
from offramp.credentials.tiktok_oauth import raise_for_envelope
from offramp.credentials.tiktok_session import API, WRITER_ROLES, TikTokCredentialSession
from offramp.plugins.tiktok.settings import TikTokOfflineEventsDestinationSettings


class _AccountApi:
    """The account and event-set endpoints, called with the credential's token."""

    def __init__(self, credential: TikTokCredentialSession, timeout_seconds: float) -> None:
        self._base = f"{credential.settings().api_base_url}{API}"
        self._client = httpx.Client(auth=credential.auth(), timeout=timeout_seconds)

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


def _settings(context: DestinationContext) -> TikTokOfflineEventsDestinationSettings:
    settings = context.settings
    if not isinstance(settings, TikTokOfflineEventsDestinationSettings):
        raise TypeError(f"expected tiktok-ads-offline-events settings, got {type(settings).__name__}")
    return settings


def _session(context: DestinationContext) -> TikTokCredentialSession:
    return TikTokCredentialSession(context.credential, timeout_seconds=context.timeout_seconds)


def check_connection(context: DestinationContext, fix: bool) -> list[CheckStep]:
    """Run the checks in order; see the module docstring. ``fix`` turns auto tracking to match the settings."""
    settings = _settings(context)
    steps: list[CheckStep] = []
    credential = _session(context)
    try:
        credential.access_token()
    except OfframpError as exc:
        return [CheckStep("token", "failed", str(exc))]
    steps.append(CheckStep("token", "ok", f"credential {credential.name} has a working token"))
    with _AccountApi(credential, context.timeout_seconds) as api:
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
                f"({credential.reauthorize_command})"
            )
            return [*steps, CheckStep("advertiser", "failed", detail)]
        shown_role = role.title() if role else "role not reported by TikTok"
        steps.append(CheckStep("advertiser", "ok", f"{advertiser} ({found[0].get('name')}), {shown_role}"))
        if settings.event_source == "web":
            return [*steps, CheckStep("event set", "skipped", "web pixels are not checked")]
        if settings.event_set_id is None:
            detail = f"no event_set_id is set: run `offramp destinations ensure-event-set {context.destination}`"
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


def create_event_set(context: DestinationContext) -> str:
    """Create the destination's offline event set with its name and auto tracking; return the new ID."""
    settings = _settings(context)
    if settings.event_source != "offline":
        raise ConfigError("ensure-event-set creates offline event sets only", hint="set the pixel code yourself")
    if settings.event_set_name is None:
        raise ConfigError(
            f"destination {context.destination!r} has no event_set_name to create the event set with",
            hint="set event_set_name (export, edit, apply) and run again",
        )
    with _AccountApi(_session(context), context.timeout_seconds) as api:
        body = {
            "advertiser_id": settings.advertiser_id,
            "name": settings.event_set_name,
            "description": "Created by offramp",
            "auto_tracking": settings.auto_tracking,
        }
        return str(api.post("offline/create/", body)["event_set_id"])


def ensure_event_set(context: DestinationContext) -> ActionResult:
    """The ``ensure-event-set`` action: create the event set unless the destination has one; core stores its ID."""
    settings = _settings(context)
    if settings.event_set_id is not None:
        return ActionResult(
            f"Destination {context.destination} already has event set {settings.event_set_id}; nothing created."
        )
    event_set_id = create_event_set(context)
    return ActionResult(
        f"Created event set {event_set_id} and stored it on destination {context.destination}.",
        settings={"event_set_id": event_set_id},
    )


__all__ = ["check_connection", "create_event_set", "ensure_event_set"]
