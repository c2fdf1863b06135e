"""Connection test and event-set set-up (the ``ensure-event-set`` action) of the `tiktok-ads-offline-events`
destination.

`offramp destinations test` checks, in order: the credential's token works; the advertiser is reachable with an
Operator or Admin role; the event set exists under that advertiser; its name matches (a mismatch is a warning);
its auto tracking matches (a warning, which ``fix`` corrects). Each later step is skipped when an earlier one
failed, so the first failure is the one to act on. A call that fails (TikTok unreachable, a refused grant, a
code) fails its step with one line to act on; an advertiser the token does not reach is named with the
advertisers it does reach, since TikTok answers both that and a missing role with "No permission".
"""

from __future__ import annotations

import json
from typing import Any

from offramp.core import ActionResult, CheckStep, ConfigError, DestinationContext, OfframpError
from offramp.core.hints import offramp_command
from offramp.credentials.tiktok_session import (
    WRITER_ROLES,
    TikTokAccountApi,
    TikTokCredentialSession,
    advertiser_list,
)
from offramp.plugins.tiktok.codes import CodeClass, code_class
from offramp.plugins.tiktok.settings import TikTokOfflineEventsDestinationSettings


def _settings(context: DestinationContext) -> TikTokOfflineEventsDestinationSettings:
    settings = context.settings
    if not isinstance(settings, TikTokOfflineEventsDestinationSettings):
        raise TypeError(f"expected tiktok-ads-offline-events settings, got {type(settings).__name__}")
    return settings


def _session(context: DestinationContext) -> TikTokCredentialSession:
    return TikTokCredentialSession(context.credential, timeout_seconds=context.timeout_seconds)


def _said(exc: OfframpError) -> str:
    """An error as a step's detail: its message, then its hint after a semicolon (a hint is a command to paste,
    so it is not wrapped in parentheses as ``str(exc)`` wraps it)."""
    return f"{exc.message}; {exc.hint}" if exc.hint else exc.message


def _unreached(credential: TikTokCredentialSession, advertiser: str, refusal: OfframpError | None) -> str:
    """Why the token does not reach ``advertiser``, with the advertisers it does reach and the fix.

    TikTok answers a wrong advertiser id as it answers a missing role ("No permission to operate advertiser"):
    the advertisers the token reaches tell the two apart.
    """
    try:
        reached = credential.advertisers()
    except OfframpError as exc:
        cause = f": {refusal.message}" if refusal is not None else ""
        listing = f"listing the advertisers the token reaches failed too: {_said(exc)}"
        return f"advertiser {advertiser} is not reachable{cause}; {listing}"
    if any(item["advertiser_id"] == advertiser for item in reached):
        # The token reaches it, and TikTok still refused: a role, not a wrong id.
        return f"advertiser {advertiser} is not reachable: {refusal.message if refusal else 'TikTok listed nothing'}"
    if not reached:
        return (
            f"the token of credential {credential.name} reaches no advertiser: re-authorize with a user of "
            f"advertiser {advertiser}: `{credential.reauthorize_command}`"
        )
    return (
        f"the token of credential {credential.name} does not reach advertiser {advertiser}; it reaches "
        f"{advertiser_list(reached)}: set advertiser_id to one of those (--set advertiser_id="
        f"{reached[0]['advertiser_id']}), or re-authorize as a user of advertiser {advertiser}: "
        f"`{credential.reauthorize_command}`"
    )


def check_connection(context: DestinationContext, fix: bool) -> list[CheckStep]:
    """Run the checks in order; see the module docstring. ``fix`` turns auto tracking to match the settings.

    A failure of any call (TikTok unreachable, a refused grant, a code) fails its step with one line to act on.
    """
    settings = _settings(context)
    steps: list[CheckStep] = []
    credential = _session(context)
    try:
        credential.access_token()
    except OfframpError as exc:
        return [CheckStep("token", "failed", _said(exc))]
    steps.append(CheckStep("token", "ok", f"credential {credential.name} has a working token"))
    with TikTokAccountApi(credential, context.timeout_seconds) as api:
        advertiser = settings.advertiser_id
        try:
            found = api.get("advertiser/info/", {"advertiser_ids": json.dumps([advertiser])}).get("list", [])
        except OfframpError as exc:
            code = exc.fields.get("code")
            if not isinstance(code, int) or code_class(code) is not CodeClass.NO_PERMISSION:
                return [
                    *steps,
                    CheckStep("advertiser", "failed", f"advertiser {advertiser} is not reachable: {_said(exc)}"),
                ]
            return [*steps, CheckStep("advertiser", "failed", _unreached(credential, advertiser, exc))]
        if not found:
            return [*steps, CheckStep("advertiser", "failed", _unreached(credential, advertiser, None))]
        role = found[0].get("user_role")
        if role is not None and role not in WRITER_ROLES:
            detail = (
                f"the credential was authorized by an {role.title()} of advertiser {advertiser}; OAuth needs a "
                "TikTok Ad Account Operator or Admin: re-authorize with such a user: "
                f"`{credential.reauthorize_command}`"
            )
            return [*steps, CheckStep("advertiser", "failed", detail)]
        shown_role = role.title() if role else "role not reported by TikTok"
        steps.append(CheckStep("advertiser", "ok", f"{advertiser} ({found[0].get('name')}), {shown_role}"))
        if settings.event_source == "web":
            return [*steps, CheckStep("event set", "skipped", "web pixels are not checked")]
        if settings.event_set_id is None:
            command = offramp_command("destinations", "ensure-event-set", context.destination,
                                      workspace=context.workspace)  # fmt: skip
            return [*steps, CheckStep("event set", "failed", f"no event_set_id is set: run `{command}`")]
        params = {"advertiser_id": advertiser, "event_set_ids": json.dumps([settings.event_set_id])}
        try:
            sets = api.get("offline/get/", params).get("event_set_list", [])
        except OfframpError as exc:
            detail = f"event set {settings.event_set_id} could not be read: {_said(exc)}"
            return [*steps, CheckStep("event set", "failed", detail)]
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
        steps.append(_auto_tracking(api, context, settings, event_set, fix))
    return steps


def _auto_tracking(
    api: TikTokAccountApi,
    context: DestinationContext,
    settings: TikTokOfflineEventsDestinationSettings,
    event_set: dict[str, Any],
    fix: bool,
) -> CheckStep:
    wanted = "on" if settings.auto_tracking else "off"
    if bool(event_set.get("auto_tracking")) == settings.auto_tracking:
        return CheckStep("auto tracking", "ok", wanted)
    if fix:
        body = {"advertiser_id": settings.advertiser_id, "event_set_id": settings.event_set_id}
        try:
            api.post("offline/update/", {**body, "auto_tracking": settings.auto_tracking})
        except OfframpError as exc:
            return CheckStep("auto tracking", "failed", f"could not turn auto tracking {wanted}: {_said(exc)}")
        return CheckStep("auto tracking", "fixed", f"turned {wanted} to match the destination")
    command = offramp_command("destinations", "test", context.destination, "--fix", workspace=context.workspace)
    detail = (
        f"the event set has auto tracking {'on' if event_set.get('auto_tracking') else 'off'}, the destination "
        f"says {wanted}: run `{command}` to update the event set"
    )
    return CheckStep("auto tracking", "warning", detail)


def create_event_set(context: DestinationContext) -> str:
    """Create the destination's offline event set with its name and auto tracking; return the new ID."""
    settings = _settings(context)
    if settings.event_source != "offline":
        raise ConfigError(
            "ensure-event-set creates offline event sets only; a web destination's event_set_id is its pixel code, "
            "from TikTok Events Manager"
        )
    if settings.event_set_name is None:
        # The destination's name is a fine name for its event set; the user may pick another in the command.
        command = offramp_command("destinations", "update", context.destination, "--set",
                                  f"event_set_name={context.destination}", workspace=context.workspace)  # fmt: skip
        again = offramp_command("destinations", "ensure-event-set", context.destination, workspace=context.workspace)
        raise ConfigError(
            f"destination {context.destination!r} has no event_set_name to create the event set with",
            hint=f"name it, e.g. {command}, then run {again}",
        )
    with TikTokAccountApi(_session(context), context.timeout_seconds) as api:
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
