"""The emulator's seeded world: apps, advertisers, users and their roles, event sets, auth codes.

A seed is deterministic, so a test or the demo knows every id and auth code in advance. `DEFAULT_SEED` is what
`offramp emulator tiktok` serves without `--state`; docs/emulator.md lists the same values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from offramp.core import ConfigError

DEFAULT_APP_ID = "7100000000000000001"
DEFAULT_APP_SECRET = "emulator-app-secret"
DEFAULT_ADVERTISER_ID = "7200000000000000001"
SECOND_ADVERTISER_ID = "7200000000000000002"
DEFAULT_EVENT_SET_ID = "7300000000000000001"
ADMIN_USER = "admin"
OPERATOR_USER = "operator"
ANALYST_USER = "analyst"
ADMIN_AUTH_CODE = "auth-code-admin"
OPERATOR_AUTH_CODE = "auth-code-operator"
ANALYST_AUTH_CODE = "auth-code-analyst"

Role = Literal["ADMIN", "OPERATOR", "ANALYST"]
# Roles that may send events and manage event sets; TikTok refuses the Analyst role (docs/tiktok-api-facts.md, "OAuth").
WRITER_ROLES: frozenset[str] = frozenset({"ADMIN", "OPERATOR"})
EventSource = Literal["offline", "web", "app", "crm"]


class _SeedModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AppSeed(_SeedModel):
    """A developer app: the app id and secret a client exchanges auth codes with."""

    app_id: str = Field(pattern=r"^[0-9]+$")
    secret: str = Field(min_length=1)
    name: str = "Emulator App"
    # Empty: any redirect_uri is accepted by /portal/auth (a CLI's loopback listener picks its port at run time).
    redirect_uris: tuple[str, ...] = ()
    scope: tuple[int, ...] = (1, 2, 3, 4)


class AdvertiserSeed(_SeedModel):
    """An ad account."""

    advertiser_id: str = Field(pattern=r"^[0-9]+$")
    name: str
    currency: str = "USD"
    timezone: str = "Etc/GMT"
    country: str = "US"
    company: str = "Emulator Company"


class UserSeed(_SeedModel):
    """A TikTok for Business user and the role they hold on each advertiser."""

    name: str = Field(min_length=1)
    core_user_id: str = Field(pattern=r"^[0-9]+$")
    display_name: str
    email: str
    roles: dict[str, Role] = Field(default_factory=dict, description="advertiser_id -> role")


class EventSetSeed(_SeedModel):
    """An event set: an offline event set (digits id) or, with event_source web, a pixel (its code)."""

    event_set_id: str = Field(min_length=1)
    advertiser_id: str
    name: str
    description: str = ""
    auto_tracking: bool = False
    event_source: EventSource = "offline"


class AuthCodeSeed(_SeedModel):
    """An auth code that exists from the start (single-use, valid for the config's auth_code_ttl)."""

    code: str = Field(min_length=1)
    user: str
    app_id: str | None = Field(default=None, description="Defaults to the seed's first app.")


class Seed(_SeedModel):
    """Everything the emulator knows at start (and again after a reset)."""

    apps: tuple[AppSeed, ...] = Field(min_length=1)
    advertisers: tuple[AdvertiserSeed, ...] = ()
    users: tuple[UserSeed, ...] = ()
    event_sets: tuple[EventSetSeed, ...] = ()
    auth_codes: tuple[AuthCodeSeed, ...] = ()

    @model_validator(mode="after")
    def _references_resolve(self) -> Seed:
        problems: list[str] = []
        advertisers = {a.advertiser_id for a in self.advertisers}
        users = {u.name for u in self.users}
        apps = {a.app_id for a in self.apps}
        for kind, ids in (
            ("app", [a.app_id for a in self.apps]),
            ("advertiser", [a.advertiser_id for a in self.advertisers]),
            ("user", [u.name for u in self.users]),
            ("event set", [s.event_set_id for s in self.event_sets]),
            ("auth code", [c.code for c in self.auth_codes]),
        ):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                problems.append(f"duplicate {kind} ids: {', '.join(duplicates)}")
        for user in self.users:
            unknown = sorted(set(user.roles) - advertisers)
            if unknown:
                problems.append(f"user {user.name!r} has roles on unknown advertisers: {', '.join(unknown)}")
        for event_set in self.event_sets:
            if event_set.advertiser_id not in advertisers:
                problems.append(
                    f"event set {event_set.event_set_id} names unknown advertiser {event_set.advertiser_id}"
                )
            if event_set.event_source == "offline" and not event_set.event_set_id.isdigit():
                problems.append(f"offline event set id {event_set.event_set_id!r} must be digits only")
        for code in self.auth_codes:
            if code.user not in users:
                problems.append(f"auth code {code.code!r} names unknown user {code.user!r}")
            if code.app_id is not None and code.app_id not in apps:
                problems.append(f"auth code {code.code!r} names unknown app {code.app_id}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


DEFAULT_SEED = Seed(
    apps=(AppSeed(app_id=DEFAULT_APP_ID, secret=DEFAULT_APP_SECRET),),
    advertisers=(
        AdvertiserSeed(advertiser_id=DEFAULT_ADVERTISER_ID, name="Emulator Store Co"),
        AdvertiserSeed(advertiser_id=SECOND_ADVERTISER_ID, name="Emulator Outlet Co"),
    ),
    users=(
        UserSeed(
            name=ADMIN_USER,
            core_user_id="7400000000000000001",
            display_name="Emulator Admin",
            email="admin@emulator.invalid",
            roles={DEFAULT_ADVERTISER_ID: "ADMIN", SECOND_ADVERTISER_ID: "ADMIN"},
        ),
        UserSeed(
            name=OPERATOR_USER,
            core_user_id="7400000000000000002",
            display_name="Emulator Operator",
            email="operator@emulator.invalid",
            roles={DEFAULT_ADVERTISER_ID: "OPERATOR"},
        ),
        UserSeed(
            name=ANALYST_USER,
            core_user_id="7400000000000000003",
            display_name="Emulator Analyst",
            email="analyst@emulator.invalid",
            roles={DEFAULT_ADVERTISER_ID: "ANALYST"},
        ),
    ),
    event_sets=(
        EventSetSeed(
            event_set_id=DEFAULT_EVENT_SET_ID,
            advertiser_id=DEFAULT_ADVERTISER_ID,
            name="Emulator stores",
            description="In-store purchases (emulator seed)",
            auto_tracking=False,
        ),
    ),
    auth_codes=(
        AuthCodeSeed(code=ADMIN_AUTH_CODE, user=ADMIN_USER),
        AuthCodeSeed(code=OPERATOR_AUTH_CODE, user=OPERATOR_USER),
        AuthCodeSeed(code=ANALYST_AUTH_CODE, user=ANALYST_USER),
    ),
)


def read_document(path: Path, what: str) -> object:
    """Parse a YAML or JSON file (JSON is YAML, but orjson gives better errors for .json files)."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {path}: {exc.strerror}", hint="check the path") from None
    try:
        return orjson.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        first_line = next(iter(str(exc).splitlines()), "")
        raise ConfigError(f"{path} is not valid YAML or JSON: {first_line}", hint=f"fix the {what} file") from None


def load_seed(path: Path) -> Seed:
    """Read a seed from a YAML or JSON file shaped like `Seed` (see docs/emulator.md)."""
    try:
        return Seed.model_validate(read_document(path, "seed"))
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'seed'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path} is not a valid emulator seed: {details}", hint="see docs/emulator.md") from None


__all__ = [
    "ADMIN_AUTH_CODE",
    "ADMIN_USER",
    "ANALYST_AUTH_CODE",
    "ANALYST_USER",
    "AdvertiserSeed",
    "AppSeed",
    "AuthCodeSeed",
    "DEFAULT_ADVERTISER_ID",
    "DEFAULT_APP_ID",
    "DEFAULT_APP_SECRET",
    "DEFAULT_EVENT_SET_ID",
    "DEFAULT_SEED",
    "EventSetSeed",
    "OPERATOR_AUTH_CODE",
    "OPERATOR_USER",
    "Role",
    "SECOND_ADVERTISER_ID",
    "Seed",
    "UserSeed",
    "WRITER_ROLES",
    "load_seed",
    "read_document",
]
