"""How an emulator behaves: the seed, the switches for TikTok facts we could not confirm, and the faults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from offramp.core import ConfigError
from offramp.plugins.tiktok.emulator.seed import DEFAULT_SEED, Seed, read_document

# Codes the emulator knows a message for; `Faults.fail` accepts any of them.
FAULT_CODES: frozenset[int] = frozenset({40016, 40100, 40133, 40202, 50000, 50002, 51305, 60001})
# Where faults apply when `Faults.paths` is not given: the data plane only, so OAuth flows stay usable.
DEFAULT_FAULT_PATHS: tuple[str, ...] = ("event/track/",)


class Faults(BaseModel):
    """Failures injected into the emulator's answers; every random draw comes from `random_seed`.

    Faults apply to the TikTok API paths listed in `paths` (relative to `/open_api/v1.3/`, `*` for all of them);
    `access_token_ttl` and `poison` apply wherever a token is checked or events are validated.
    """

    model_config = ConfigDict(extra="forbid")

    qps: float | None = Field(
        default=None, gt=0, description="Requests per second allowed (sliding 1 s window); more answer 40100."
    )
    fail: dict[int, float] = Field(
        default_factory=dict, description="Envelope code -> fraction of requests answered with it (40100, 50000...)."
    )
    http_502: float = Field(default=0.0, ge=0, le=1, description="Fraction answered HTTP 502 with nginx's page.")
    http_503: float = Field(default=0.0, ge=0, le=1, description="Fraction answered HTTP 503.")
    latency_ms: int = Field(default=0, ge=0, description="Fixed delay added to every answer.")
    jitter_ms: int = Field(default=0, ge=0, description="Extra delay drawn uniformly from 0..jitter_ms.")
    slow_fraction: float = Field(default=0.0, ge=0, le=1, description="Fraction of requests delayed by slow_ms.")
    slow_ms: int = Field(default=2000, ge=0, description="Delay of the slow requests.")
    access_token_ttl: int | None = Field(
        default=None,
        ge=0,
        description="Every access token, long-term ones and those already issued, expires this many seconds "
        "after it was issued (40102).",
    )
    poison: dict[str, str] = Field(
        default_factory=dict,
        description="Event field path (dotted, e.g. properties.order_id) -> value that fails its batch with 40002.",
    )
    random_seed: int = Field(default=0, description="Seed of the random draws; setting faults restarts the sequence.")
    paths: tuple[str, ...] = Field(default=DEFAULT_FAULT_PATHS, description="API paths the request faults apply to.")

    @model_validator(mode="after")
    def _fractions_fit(self) -> Faults:
        unknown = sorted(set(self.fail) - FAULT_CODES)
        if unknown:
            raise ValueError(f"fail: unknown codes {unknown}; use some of {sorted(FAULT_CODES)}")
        if any(not 0 <= fraction <= 1 for fraction in self.fail.values()):
            raise ValueError("fail: each fraction must be between 0 and 1")
        if sum(self.fail.values()) > 1:
            raise ValueError("fail: the fractions add up to more than 1")
        if self.http_502 + self.http_503 > 1:
            raise ValueError("http_502 + http_503 add up to more than 1")
        return self

    def applies_to(self, path: str) -> bool:
        """Whether request faults apply to an API path such as ``event/track/``."""
        return "*" in self.paths or path in self.paths

    @property
    def delays(self) -> bool:
        return bool(self.latency_ms or self.jitter_ms or self.slow_fraction)

    @property
    def disturbs_requests(self) -> bool:
        """Whether any per-request fault is on (the hot path skips the fault code otherwise)."""
        return bool(self.qps or self.fail or self.http_502 or self.http_503 or self.delays)


class EmulatorConfig(BaseModel):
    """Everything an emulator needs to start. The defaults are what `offramp emulator tiktok` serves."""

    model_config = ConfigDict(extra="forbid")

    seed: Seed = Field(default=DEFAULT_SEED, description="Apps, advertisers, users, event sets, auth codes.")
    refresh_tokens: bool = Field(
        default=True,
        description="Serve oauth2/refresh_token/ and issue expiring access tokens with rotating refresh tokens "
        "(UNCONFIRMED for advertisers); off: long-term access tokens and refresh answers 40008.",
    )
    access_token_ttl: int | None = Field(
        default=86_400,
        ge=1,
        description="Lifetime of access tokens when refresh_tokens is on; None: they never expire.",
    )
    refresh_token_ttl: int | None = Field(
        default=31_536_000, ge=1, description="Lifetime of each refresh token; None: they never expire."
    )
    auth_code_ttl: int = Field(default=3600, ge=1, description="Lifetime of an auth code (TikTok: 1 hour).")
    accept_legacy_events: bool = Field(
        default=True,
        description="Accept CompletePayment, PlaceAnOrder, SubmitForm, ClickButton and PageView for offline "
        "event sets (UNCONFIRMED).",
    )
    require_hashed_identifiers: bool = Field(
        default=True, description="Refuse email, phone and external_id values that are not 64 lowercase hex."
    )
    check_event_channel: bool = Field(
        default=True, description="Refuse a properties.event_channel outside TikTok's six values (UNCONFIRMED)."
    )
    error_field_style: Literal["name", "path"] = Field(
        default="name",
        description="40002 messages name the field (`event_id`, as TikTok's real answers do) or its path "
        "(`data.3.event_id`, UNCONFIRMED for event/track).",
    )
    unknown_event_set_code: Literal[40001, 40007] = Field(
        default=40001, description="Code for an event_source_id that names no event set the token can see."
    )
    dedup_window: int = Field(default=172_800, ge=0, description="Seconds within which a repeat is a duplicate.")
    keep_events: int = Field(
        default=100_000, ge=0, description="Received events kept for inspection (oldest requests dropped first)."
    )
    faults: Faults = Field(default_factory=Faults)


def load_config(path: Path) -> EmulatorConfig:
    """Read an `EmulatorConfig` from a YAML or JSON file (what `--config` and `start_emulator_process` use)."""
    try:
        return EmulatorConfig.model_validate(read_document(path, "emulator config"))
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path} is not a valid emulator config: {details}", hint="see docs/emulator.md") from None


__all__ = [
    "DEFAULT_FAULT_PATHS",
    "EmulatorConfig",
    "FAULT_CODES",
    "Faults",
    "load_config",
]
