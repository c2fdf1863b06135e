"""The live state of one emulator: the seeded world, OAuth, received events, counters and faults.

Requests are served on the server's event loop thread, while a test reads the state from its own thread, so every
operation takes `lock`. The operations raise `ApiError` for anything TikTok would answer with a non-zero code.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson

from offramp.plugins.tiktok.emulator.clock import Clock, SystemClock
from offramp.plugins.tiktok.emulator.config import EmulatorConfig, Faults
from offramp.plugins.tiktok.emulator.envelope import (
    ACCESS_TOKEN_INVALID,
    INVALID_PARAMETER,
    NO_PERMISSION,
    NOT_FOUND,
    ApiError,
    invalid_value,
)
from offramp.plugins.tiktok.emulator.fast_validation import fast_check
from offramp.plugins.tiktok.emulator.faults import FaultInjector
from offramp.plugins.tiktok.emulator.oauth import AccessToken, AuthStore
from offramp.plugins.tiktok.emulator.received import EventLog, Status
from offramp.plugins.tiktok.emulator.seed import WRITER_ROLES, AdvertiserSeed, EventSetSeed, UserSeed
from offramp.plugins.tiktok.emulator.stats import Stats
from offramp.plugins.tiktok.emulator.validation import Problem, TrackRules, check_body, check_events


def _no_permission(what: str, object_id: str) -> str:
    # TikTok's wording for a pixel (docs/tiktok-api-facts.md, "Codes"), which the Analyst restriction also produces.
    return f"No permission to operate {what}: {object_id}. You must be an admin or operator of this advertiser account."


def _timestamp(seconds: float) -> str:
    # Format of offline/get's create_time and update_time: UNCONFIRMED (docs/emulator.md).
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


@dataclass
class EventSetRecord:
    """An event set as the emulator holds it (created from the seed or by offline/create/)."""

    event_set_id: str
    advertiser_id: str
    name: str
    description: str
    auto_tracking: bool
    event_source: str
    create_time: float
    update_time: float

    @classmethod
    def from_seed(cls, seed: EventSetSeed, now: float) -> EventSetRecord:
        return cls(
            seed.event_set_id,
            seed.advertiser_id,
            seed.name,
            seed.description,
            seed.auto_tracking,
            seed.event_source,
            now,
            now,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "advertiser_id": self.advertiser_id,
            "event_set_id": self.event_set_id,
            "name": self.name,
            "description": self.description,
            "auto_tracking": self.auto_tracking,
            "create_time": _timestamp(self.create_time),
            "update_time": _timestamp(self.update_time),
        }


class EmulatorState:
    """Everything one emulator knows; `reset()` brings it back to the seed."""

    def __init__(self, config: EmulatorConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.clock: Clock = clock or SystemClock()
        self.lock = threading.RLock()
        self.started_at = self.clock.now()
        self._load()

    def _load(self) -> None:
        seed = self.config.seed
        now = self.clock.now()
        self.advertisers: dict[str, AdvertiserSeed] = {a.advertiser_id: a for a in seed.advertisers}
        self.users: dict[str, UserSeed] = {u.name: u for u in seed.users}
        self.event_sets: dict[str, EventSetRecord] = {
            s.event_set_id: EventSetRecord.from_seed(s, now) for s in seed.event_sets
        }
        self.auth = AuthStore(
            config=self.config,
            apps={a.app_id: a for a in seed.apps},
            users=self.users,
            advertiser_order=list(self.advertisers),
            now=self.clock.now,
            fault_ttl=lambda: self.injector.faults.access_token_ttl,
        )
        self.log = EventLog(self.config.keep_events, self.config.dedup_window)
        self.stats = Stats()
        self.set_faults(self.config.faults)
        self.auth.seed_codes()

    # -- inspection and control (the /_emulator/ API and tests) --

    def reset(self) -> None:
        """Back to the seed: events, counters, tokens and grants gone, seeded auth codes valid for another hour,
        faults as configured at start. The clock is left where it is."""
        with self.lock:
            self._load()

    @property
    def faults(self) -> Faults:
        return self.injector.faults

    def set_faults(self, faults: Faults) -> Faults:
        """Replace the faults (restarting their random sequence and the rate limiter's window)."""
        with self.lock:
            self.injector = FaultInjector(faults)
            self.rules = TrackRules.build(
                accept_legacy_events=self.config.accept_legacy_events,
                require_hashed=self.config.require_hashed_identifiers,
                check_event_channel=self.config.check_event_channel,
                poison=faults.poison,
            )
            return faults

    def patch_faults(self, changes: dict[str, Any]) -> Faults:
        """Change some fault settings and keep the others (raises pydantic's ValidationError on bad values)."""
        with self.lock:
            return self.set_faults(Faults.model_validate({**self.faults.model_dump(), **changes}))

    def events(
        self,
        *,
        event_set_id: str | None = None,
        event: str | None = None,
        event_id: str | None = None,
        status: Status | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Received events (accepted and duplicate ones), oldest first, filtered."""
        with self.lock:
            return self.log.query(event_set_id=event_set_id, event=event, event_id=event_id, status=status, limit=limit)

    def statistics(self) -> dict[str, Any]:
        with self.lock:
            return {**self.stats.as_dict(), "events_stored": self.log.stored}

    def issue_auth_code(self, user: str, app_id: str | None = None) -> str:
        """A fresh single-use auth code for a seeded user (raises KeyError for an unknown user or app)."""
        with self.lock:
            return self.auth.issue_code(user, app_id)

    def revoke_user(self, user: str) -> int:
        """Revoke every grant of a user (the "revoked grant" fault); returns how many were live."""
        with self.lock:
            return self.auth.revoke_user(user)

    def grants(self) -> list[dict[str, Any]]:
        with self.lock:
            return self.auth.grants_view()

    # -- TikTok API operations --

    def authenticate(self, access_token: str | None) -> AccessToken:
        with self.lock:
            return self.auth.authenticate(access_token)

    def track(self, token: AccessToken, raw: bytes, request_id: str) -> None:
        """`event/track/` for an authenticated token: validate, check the event set, deduplicate and record."""
        rules = self.rules
        fast = fast_check(raw, rules.offline_events) if rules.fast else None
        with self.lock:
            if token.grant.revoked:
                raise ApiError(ACCESS_TOKEN_INVALID)
            if fast is not None:
                self._check_event_set(token, fast.event_source, fast.event_source_id)
                source, source_id, test_event_code, keys = fast
            else:
                # The reference validator decides, and words the error, for every body the fast path refused.
                try:
                    payload = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise ApiError(INVALID_PARAMETER, invalid_value("body", "not valid JSON")) from None
                body = check_body(payload)
                if isinstance(body, Problem):
                    raise self._invalid(body)
                self._check_event_set(token, body.event_source, body.event_source_id)
                problem = check_events(body.events, body.event_source, rules)
                if problem is not None:
                    raise self._invalid(problem)
                source, source_id, test_event_code = body.event_source, body.event_source_id, body.test_event_code
                keys = [(event["event"], event.get("event_id")) for event in body.events]
            duplicates = self.log.record(raw, source, source_id, test_event_code, keys, request_id, self.clock.now())
            received = len(keys)
            stats = self.stats
            stats.events_received += received
            if test_event_code is not None:
                stats.test_events += received
            stats.events_accepted += received - duplicates
            stats.duplicates_dropped += duplicates

    def _invalid(self, problem: Problem) -> ApiError:
        return ApiError(INVALID_PARAMETER, invalid_value(problem.field(self.config.error_field_style), problem.reason))

    def _check_event_set(self, token: AccessToken, event_source: str, event_set_id: str) -> None:
        record = self.event_sets.get(event_set_id)
        if record is None or record.event_source != event_source:
            if self.config.unknown_event_set_code == NOT_FOUND:
                raise ApiError(NOT_FOUND, f"Event source id does not exist: {event_set_id}.")
            raise ApiError(NO_PERMISSION, _no_permission("event source id", event_set_id))
        if not self._can_write(token, record.advertiser_id):
            raise ApiError(NO_PERMISSION, _no_permission("event source id", event_set_id))

    def _can_write(self, token: AccessToken, advertiser_id: str) -> bool:
        grant = token.grant
        role = self.users[grant.user].roles.get(advertiser_id)
        return advertiser_id in grant.advertiser_ids and role in WRITER_ROLES

    def _readable_advertiser(self, token: AccessToken, advertiser_id: Any) -> str:
        if not isinstance(advertiser_id, str) or not advertiser_id:
            raise ApiError(INVALID_PARAMETER, invalid_value("advertiser_id", "missing data for required field"))
        if advertiser_id not in token.grant.advertiser_ids:
            raise ApiError(NO_PERMISSION, _no_permission("advertiser", advertiser_id))
        return advertiser_id

    def _writable_advertiser(self, token: AccessToken, advertiser_id: Any) -> str:
        readable = self._readable_advertiser(token, advertiser_id)
        if not self._can_write(token, readable):
            raise ApiError(NO_PERMISSION, _no_permission("advertiser", readable))
        return readable

    def authorized_advertisers(self, access_token: str | None, app_id: Any, secret: Any) -> dict[str, Any]:
        """`oauth2/advertiser/get/`: the advertisers the token's grant covers."""
        with self.lock:
            self.auth.check_app(app_id, secret)
            token = self.auth.authenticate(access_token)
            names = {a: self.advertisers[a].name for a in token.grant.advertiser_ids}
            return {"list": [{"advertiser_id": a, "advertiser_name": name} for a, name in names.items()]}

    def advertiser_info(
        self, access_token: str | None, advertiser_ids: list[str] | None, fields: list[str] | None
    ) -> dict[str, Any]:
        """`advertiser/info/`: one record per requested advertiser the token may see."""
        with self.lock:
            token = self.auth.authenticate(access_token)
            if not advertiser_ids:
                raise ApiError(INVALID_PARAMETER, invalid_value("advertiser_ids", "missing data for required field"))
            records = []
            for advertiser_id in advertiser_ids:
                self._readable_advertiser(token, advertiser_id)
                record = self._advertiser_record(advertiser_id, token.grant.user)
                if fields:
                    record = {key: value for key, value in record.items() if key in fields or key == "advertiser_id"}
                records.append(record)
            return {"list": records}

    def _advertiser_record(self, advertiser_id: str, user: str) -> dict[str, Any]:
        advertiser = self.advertisers[advertiser_id]
        return {
            "advertiser_id": advertiser.advertiser_id,
            "name": advertiser.name,
            "status": "STATUS_ENABLE",
            "role": "ROLE_ADVERTISER",
            "currency": advertiser.currency,
            "timezone": advertiser.timezone,
            "display_timezone": advertiser.timezone,
            "country": advertiser.country,
            "company": advertiser.company,
            "balance": 0.0,
            "email": "emu***@emulator.invalid",
            "create_time": int(self.started_at),
            "user_role": self.users[user].roles.get(advertiser_id),
        }

    def user_info(self, access_token: str | None) -> dict[str, Any]:
        """`user/info/`: the user behind the token (email masked, as TikTok does)."""
        with self.lock:
            user = self.users[self.auth.authenticate(access_token).grant.user]
            local, _, domain = user.email.partition("@")
            return {
                "core_user_id": user.core_user_id,
                "display_name": user.display_name,
                "email": f"{local[:2]}***@{domain}",
                "avatar_url": "",
                "create_time": int(self.started_at),
            }

    def create_event_set(self, access_token: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """`offline/create/`: a new offline event set under an advertiser (Admin or Operator only)."""
        with self.lock:
            token = self.auth.authenticate(access_token)
            advertiser_id = self._writable_advertiser(token, body.get("advertiser_id"))
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                raise ApiError(INVALID_PARAMETER, invalid_value("name", "missing data for required field"))
            description = body.get("description", "")
            if not isinstance(description, str):
                raise ApiError(INVALID_PARAMETER, invalid_value("description", "not a valid string"))
            auto_tracking = body.get("auto_tracking", False)
            if not isinstance(auto_tracking, bool):
                raise ApiError(INVALID_PARAMETER, invalid_value("auto_tracking", "not a valid boolean"))
            numeric = [int(i) for i in self.event_sets if i.isdigit()]
            event_set_id = str(max(numeric, default=7300000000000000000) + 1)
            now = self.clock.now()
            self.event_sets[event_set_id] = EventSetRecord(
                event_set_id, advertiser_id, name, description, auto_tracking, "offline", now, now
            )
            return {"event_set_id": event_set_id}

    def list_event_sets(
        self, access_token: str | None, advertiser_id: str | None, event_set_ids: list[str] | None, name: str | None
    ) -> dict[str, Any]:
        """`offline/get/`: the advertiser's offline event sets, optionally by id or name."""
        with self.lock:
            token = self.auth.authenticate(access_token)
            advertiser_id = self._readable_advertiser(token, advertiser_id)
            found = [
                record.as_dict()
                for record in self.event_sets.values()
                if record.advertiser_id == advertiser_id
                and record.event_source == "offline"
                and (not event_set_ids or record.event_set_id in event_set_ids)
                and (name is None or record.name == name)
            ]
            return {"event_set_list": found}

    def update_event_set(self, access_token: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """`offline/update/`: rename an event set or switch its auto tracking."""
        with self.lock:
            record = self._owned_event_set(access_token, body)
            name = body.get("name")
            if name is not None:
                if not isinstance(name, str) or not name.strip():
                    raise ApiError(INVALID_PARAMETER, invalid_value("name", "not a valid string"))
                record.name = name
            auto_tracking = body.get("auto_tracking")
            if auto_tracking is not None:
                if not isinstance(auto_tracking, bool):
                    raise ApiError(INVALID_PARAMETER, invalid_value("auto_tracking", "not a valid boolean"))
                record.auto_tracking = auto_tracking
            record.update_time = self.clock.now()
            return {}

    def delete_event_set(self, access_token: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """`offline/delete/`: remove an event set; events sent to it afterwards are refused."""
        with self.lock:
            record = self._owned_event_set(access_token, body)
            del self.event_sets[record.event_set_id]
            return {}

    def _owned_event_set(self, access_token: str | None, body: dict[str, Any]) -> EventSetRecord:
        token = self.auth.authenticate(access_token)
        advertiser_id = self._writable_advertiser(token, body.get("advertiser_id"))
        event_set_id = body.get("event_set_id")
        if not isinstance(event_set_id, str) or not event_set_id:
            raise ApiError(INVALID_PARAMETER, invalid_value("event_set_id", "missing data for required field"))
        record = self.event_sets.get(event_set_id)
        if record is None or record.advertiser_id != advertiser_id or record.event_source != "offline":
            raise ApiError(NOT_FOUND, f"Event set does not exist: {event_set_id}.")
        return record


__all__ = ["EmulatorState", "EventSetRecord"]
