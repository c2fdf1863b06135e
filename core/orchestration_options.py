"""Run options of an orchestration, and the forms its data source may take.

An orchestration's options are one flat mapping, as users write them (``--option``, the ``options:`` of a YAML
file). Core reads the options every destination shares (:class:`OrchestrationOptions`: mode, timezone, schedule,
what a source may read); the destination type reads the rest, through its ``run_options`` model
(:func:`split_options`). Both are validated together, every error at once.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any, Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from offramp.core.config import ENV_PREFIX, PluginSettings
from offramp.core.errors import ConfigError, SettingsValidationError
from offramp.core.url_passwords import refuse_password_in_url

DUCKDB_MEMORY = "duckdb::memory:"
DUCKDB_PREFIX = "duckdb:"


class AlertOptions(BaseModel):
    """The alert rules of an orchestration or a group (the option ``alerts``): which channels get its notices, and
    on what. The rules are offramp.core.alerts.rules.AlertRules (its docstring says when each one alerts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[str] = Field(
        min_length=1,
        description="Alert channels (offramp alerts channels list) that get the notices, by name: found in the "
        "workspace, then in production.",
    )
    on_failure: bool = Field(default=True, description="A run fails.")
    on_partial_failure: bool = Field(default=False, description="A run ends with some events failed.")
    on_recovery: bool = Field(default=True, description="The first succeeded run after a failure notice.")
    reject_rate_above: float | None = Field(
        default=None, ge=0.0, lt=1.0, description="A run rejects more than this share of its rows (0.05 for 5%)."
    )
    runtime_above: float | None = Field(default=None, gt=0.0, description="A run takes longer than this (seconds).")
    row_count_drop_above: float | None = Field(
        default=None,
        ge=0.0,
        lt=100.0,
        description="A succeeded run reads more than this percentage fewer rows than the previous succeeded run.",
    )
    on_needs_reauthorization: bool = Field(default=True, description="A credential it uses needs re-authorizing.")

    @field_validator("channels")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"channel(s) {', '.join(repeated)} listed more than once")
        return value


FRESHNESS_QUERY = "the freshness query (--when-changed)"  # how its refusals name it


class GroupOptions(BaseModel):
    """What an orchestration and a group both carry besides their cron and timezone: how their schedule catches up,
    waits for data and is switched on, and their alerts. A group stores these in ``orchestration_groups.options``,
    an orchestration among its options; the keys are the same."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule_enabled: bool = Field(
        default=True, description="Whether the schedule fires (a disabled one still runs by hand)."
    )
    catch_up: Literal["latest", "skip"] = Field(
        default="latest",
        description="After the scheduler was down: latest (one run for the latest missed fire) or skip (none).",
    )
    max_lateness_minutes: int | None = Field(
        default=None, ge=1, description="A missed fire older than this is skipped and recorded as such."
    )
    when_changed: str | None = Field(
        default=None,
        description="A freshness query (one SELECT returning one value, run on the source): a fire runs only when "
        "its value differs from the one at the last successful run.",
    )
    alerts: AlertOptions | None = Field(default=None, description="Alert rules and the channels they notify.")

    @field_validator("when_changed")
    @classmethod
    def _read_only(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Imported here: the sources package imports this module.
        from offramp.core.sources._query import check_read_only_query

        try:
            check_read_only_query(value)
        except ConfigError as exc:
            # The check words its refusal for the orchestration's SQL; this is the freshness query.
            raise ValueError(exc.message.replace("the orchestration's SQL", FRESHNESS_QUERY)) from None
        return value


GROUP_OPTIONS = frozenset(GroupOptions.model_fields)


class OrchestrationOptions(GroupOptions):
    """How an orchestration's rows are shaped and sent, and when it runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["all", "new"] = Field(
        default="all",
        description="all: send every row the query returns; new: skip rows whose event_id was already delivered.",
    )
    timezone: str = Field(default="UTC", description="IANA timezone of timestamps that carry none.")
    schedule: str | None = Field(default=None, description="Cron expression of scheduled runs.")
    schedule_timezone: str = Field(
        default="UTC", description="IANA timezone the schedule's cron expression is read in (Europe/Berlin)."
    )
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
    max_reject_rate: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Fail the run when more than this share of the rows read is rejected: checked at the end of "
        "every run, and during a run once enough rows were read; `offramp run --max-reject-rate` overrides it.",
    )
    fail_on_empty: bool = Field(
        default=False, description="Fail the run when the query returns no rows (`offramp run --fail-on-empty`)."
    )
    statement_timeout_seconds: int = Field(
        default=3600,
        ge=1,
        le=7 * 86400,
        description="The longest one statement of a PostgreSQL source may run (its statement_timeout).",
    )

    @field_validator("timezone", "schedule_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return check_timezone(value)

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


SHARED_OPTIONS = frozenset(OrchestrationOptions.model_fields)


def _problems(exc: ValidationError, known: str) -> list[tuple[str, str]]:
    problems = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "options"
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append((field, message))
    return problems


def split_options(
    raw: dict[str, Any],
    run_options: type[PluginSettings],
    subject: str,
    *,
    strict: bool = True,
    hint: str | None = None,
) -> tuple[OrchestrationOptions, PluginSettings]:
    """Validate an orchestration's flat options: the shared ones, and those of its destination type.

    Args:
        raw: The options as the user wrote them (or as stored: only the values the user set).
        run_options: The destination type's ``run_options`` model.
        subject: What the options belong to, for the error (``orchestration 'x' (tiktok-ads-offline-events)``).
        strict: Refuse an option neither model knows. Options stored before a destination type owned its run
            options are read with ``strict=False``: an option its type does not read is left out, not an error.
        hint: The error's hint (a caller that knows the orchestration names the command that shows its options).

    Raises:
        SettingsValidationError: naming every bad option at once, and the valid names when one is unknown.
    """
    own = set(run_options.model_fields)
    known = ", ".join(sorted(SHARED_OPTIONS | own))
    shared = {key: value for key, value in raw.items() if key in SHARED_OPTIONS}
    theirs = {key: value for key, value in raw.items() if key in own and key not in SHARED_OPTIONS}
    unknown = sorted(key for key in raw if key not in SHARED_OPTIONS and key not in own)
    problems: list[tuple[str, str]] = []
    if strict:
        problems += [(key, f"unknown option (valid options: {known})") for key in unknown]
    core: OrchestrationOptions | None = None
    destination: PluginSettings | None = None
    try:
        core = OrchestrationOptions.model_validate(shared)
    except ValidationError as exc:
        problems += _problems(exc, known)
    try:
        destination = run_options.model_validate(theirs)
    except ValidationError as exc:
        problems += _problems(exc, known)
    if problems:
        problems.sort(key=lambda item: list(raw).index(item[0]) if item[0] in raw else len(raw))
        raise SettingsValidationError(
            subject,
            problems,
            hint=hint
            or "fix the options named; `offramp plugins list` names the destination types, and plugins show "
            "lists a type's run options",
        )
    assert core is not None and destination is not None
    return core, destination


def stored_options(core: OrchestrationOptions, destination: PluginSettings) -> dict[str, Any]:
    """The flat mapping that is stored and exported: only the values the user set (defaults stay implicit)."""
    return {
        **core.model_dump(mode="json", exclude_unset=True),
        **destination.model_dump(mode="json", exclude_unset=True),
    }


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


__all__ = [
    "DUCKDB_MEMORY",
    "GROUP_OPTIONS",
    "AlertOptions",
    "GroupOptions",
    "SHARED_OPTIONS",
    "OrchestrationOptions",
    "check_cron",
    "check_source",
    "check_timezone",
    "split_options",
    "stored_options",
]
