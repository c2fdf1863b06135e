"""Run options of an orchestration, and the forms its data source may take."""

from __future__ import annotations

import re
import zoneinfo
from typing import Literal

import phonenumbers
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from offramp.core.config import ENV_PREFIX
from offramp.core.errors import ConfigError
from offramp.core.url_passwords import refuse_password_in_url

DUCKDB_MEMORY = "duckdb::memory:"
DUCKDB_PREFIX = "duckdb:"


class OrchestrationOptions(BaseModel):
    """How an orchestration's rows are shaped and sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["all", "new"] = Field(
        default="all",
        description="all: send every row the query returns; new: skip rows whose event_id was already delivered.",
    )
    timezone: str = Field(default="UTC", description="IANA timezone of timestamps that carry none.")
    default_phone_region: str = Field(
        default="US", description="Region (ISO 3166 alpha-2) of phone numbers written without a country code."
    )
    event_name_map: dict[str, str] = Field(
        default_factory=dict, description="Source event names translated to TikTok's, e.g. Order Completed."
    )
    attribution_window_days: int = Field(
        default=28,
        ge=1,
        le=365,
        description="Rows older than this many days are rejected: TikTok attributes offline events up to 28 days.",
    )
    test_event_code: str | None = Field(default=None, description="Send to TikTok's Test Events view.")
    schedule: str | None = Field(default=None, description="Cron expression of scheduled runs.")
    allowed_paths: list[str] = Field(
        default_factory=list,
        description="Files and directories the SQL of a DuckDB source may read (read_parquet, read_csv, ...), besides "
        "its database file; stored as absolute paths. offramp's home, key and store and /proc are never allowed.",
    )
    accept_privileged_role: bool = Field(
        default=False,
        description="Run a PostgreSQL source's query even as a superuser or a role that may write or run server "
        "files (pg_write_server_files, pg_execute_server_program, pg_read_server_files). Use a read-only role.",
    )
    statement_timeout_seconds: int = Field(
        default=3600,
        ge=1,
        le=7 * 86400,
        description="The longest one statement of a PostgreSQL source may run (its statement_timeout).",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("default_phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {value!r}; use an ISO 3166 code such as US, GB or DE")
        return region

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        return check_cron(value)

    @field_validator("allowed_paths")
    @classmethod
    def _allowed_paths(cls, value: list[str]) -> list[str]:
        # Imported here: the sources package imports this module.
        from offramp.core.sources._allowed import check_allowed_paths

        return [str(path) for path in check_allowed_paths(value)]


def check_timezone(value: str) -> str:
    """``value`` if it names an IANA timezone, else ValueError saying what to write."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r}; use an IANA name such as America/New_York") from None
    return value


def check_cron(value: str | None) -> str | None:
    """``value`` if it is a cron expression (or None), else ValueError."""
    if value is not None and not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a cron expression (five fields, e.g. '0 6 * * *')")
    return value


def check_source(source: str) -> str:
    """Validate an orchestration's source reference and return it.

    Accepted: ``duckdb::memory:``, ``duckdb:PATH``, ``env:VAR`` (a variable holding any of these or a URL), or a
    SQLAlchemy URL without a password (neither ``USER:PASSWORD@`` nor ``?password=``), since configuration is
    exported and reviewed in git.
    """
    if source == DUCKDB_MEMORY:
        return source
    if source.startswith(ENV_PREFIX):
        if not source[len(ENV_PREFIX) :]:
            raise ConfigError("source: `env:` must be followed by a variable name", hint="write env:MY_VARIABLE")
        return source
    if source.startswith(DUCKDB_PREFIX) and not source.startswith("duckdb://"):
        if not source[len(DUCKDB_PREFIX) :]:
            raise ConfigError("source: duckdb: needs a database file path", hint="write duckdb:PATH/TO/FILE.duckdb")
        return source
    try:
        url = make_url(source)
    except ArgumentError:
        # Echoed only when it cannot be a URL holding a password.
        shown = "" if re.search(r"(?i)@|pass|pwd", source) else f" {source!r}"
        raise ConfigError(
            f"source{shown} is not duckdb::memory:, duckdb:PATH, env:VAR or a SQLAlchemy URL",
            hint="for example duckdb:warehouse.duckdb or postgresql+psycopg://reader@db/analytics",
        ) from None
    if url.get_backend_name() == "duckdb":
        raise ConfigError("source: read DuckDB files with duckdb:PATH", hint="write duckdb:PATH/TO/FILE.duckdb")
    refuse_password_in_url(source, "source: the URL")
    return source


__all__ = ["DUCKDB_MEMORY", "OrchestrationOptions", "check_cron", "check_source", "check_timezone"]
