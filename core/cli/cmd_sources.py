"""`offramp sources check`: what a source may read, and what its database role could change, before a run."""

from __future__ import annotations

from typing import Annotated

import typer

from offramp.core.cli.common import JsonOption, WorkspaceOption, build_context, reading, workspace_name
from offramp.core.cli.output import print_json, say, warn
from offramp.core.orchestration_options import DUCKDB_PREFIX, OrchestrationOptions
from offramp.core.services.orchestrations import get_orchestration
from offramp.core.services.plugin_context import shared_options
from offramp.core.services.workspaces import get_workspace
from offramp.core.sources import inspect_source

app = typer.Typer(help="Check orchestrations' data sources.", no_args_is_help=True)


def _is_reference(text: str) -> bool:
    """A source reference (duckdb:..., env:VAR, a URL) rather than an orchestration's name."""
    return text.startswith((DUCKDB_PREFIX, "env:")) or "://" in text


@app.command("check")
def check(
    target: Annotated[
        str,
        typer.Argument(
            help="An orchestration's name (its source checked with its options), or a source: duckdb::memory:, "
            "duckdb:PATH, env:VAR or a SQLAlchemy URL (checked with the default options).",
        ),
    ],
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Open a source as a run would: say what its SQL may read (DuckDB) or which role it runs as and whether that role
    may change any table (PostgreSQL). Exits 1 when a run would be refused, 0 otherwise; warnings go to stderr."""
    if _is_reference(target):
        reference, options = target, OrchestrationOptions()
    else:
        ctx = build_context()
        with reading(ctx) as session:
            row = get_orchestration(session, get_workspace(session, workspace_name(ctx, workspace)), target)
            run_options = ctx.registry.destination_type(row.destination.type).run_options
            subject = f"orchestration {row.name!r}"
            reference, options = row.source, shared_options(row.options, run_options, subject)
    report = inspect_source(reference, options)
    if json_output:
        print_json({"engine": report.engine, "facts": report.facts, "warnings": report.warnings})
        return
    for fact in report.facts:
        say(f"{report.engine} source: {fact}.")
    for warning in report.warnings:
        warn(warning)
    if not report.warnings:
        say("No warnings.")
