"""`offramp sources check`: what a source may read and what its role could do beyond reading, before a run."""

from __future__ import annotations

from dataclasses import dataclass, field

from offramp.core.errors import ConfigError
from offramp.core.orchestration_options import OrchestrationOptions

#: At most this many writable tables are named in a warning; the count is always given.
NAMED_TABLES = 5


@dataclass
class SourceReport:
    """What `sources check` prints: facts about the source, and warnings (each a risk the user should remove)."""

    engine: str
    facts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def inspect_source(reference: str, options: OrchestrationOptions | None = None) -> SourceReport:
    """Open the source as a run would, and report what it may read and, for PostgreSQL, what its role may change.

    Raises:
        ConfigError: the source cannot be opened or reached, or (PostgreSQL) its role is privileged and the
            options do not accept that (what a run would refuse too).
    """
    from offramp.core.sources import open_source
    from offramp.core.sources._duckdb import DuckDBSource
    from offramp.core.sources._sqlalchemy import SQLAlchemySource

    options = options or OrchestrationOptions()
    with open_source(reference, options) as source:
        if isinstance(source, DuckDBSource):
            report = SourceReport("DuckDB")
            report.facts.append(source.describe_access())
            report.facts.append(source.describe_memory())
            return report
        assert isinstance(source, SQLAlchemySource)
        role, writable = source.inspect()
        report = SourceReport(source.engine_name)
        if role is None:
            report.warnings.append(
                f"offramp cannot check what a {source.engine_name} user may change: connect as a user that may only "
                "read (SELECT) the tables the query needs"
            )
            return report
        report.facts.append(f"connects as PostgreSQL role {role.describe()}")
        report.facts.append(
            f"the query's statements together are bounded by statement_timeout ({options.statement_timeout_seconds} s)"
        )
        if role.privileges:
            if not options.accept_privileged_role:
                raise ConfigError(
                    f"source: PostgreSQL role {role.describe()}: runs are refused, since a read-only transaction "
                    "does not bind such a role",
                    hint="connect as a read-only role (docs/operations.md, 'A read-only warehouse role'), or accept "
                    "the risk with accept_privileged_role: true in the orchestration's options",
                )
            report.warnings.append(
                f"role {role.describe()}: the orchestration accepts it (accept_privileged_role), but a query can "
                "write server files or run programs through it; use a read-only role"
            )
        if writable:
            named = ", ".join(writable[:NAMED_TABLES]) + (", ..." if len(writable) > NAMED_TABLES else "")
            report.warnings.append(
                f"role {role.names[0]!r} may change {len(writable)} table(s) ({named}): INSERT, UPDATE, DELETE or "
                "TRUNCATE, or it owns them; a read-only transaction binds this session only (dblink, for one, opens "
                "another). Use a role that may only SELECT (docs/operations.md, 'A read-only warehouse role')"
            )
        return report


__all__ = ["NAMED_TABLES", "SourceReport", "inspect_source"]
