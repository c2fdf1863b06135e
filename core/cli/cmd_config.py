"""`offramp export` and `offramp apply`: configuration as code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import IntegrityError

from offramp.core.cli.common import ActorOption, WorkspaceOption, build_context, reading, workspace_name
from offramp.core.cli.output import say
from offramp.core.errors import ConfigError
from offramp.core.services.config_io import apply_document, export_yaml, parse_document

_APPLY_ATTEMPTS = 3


def export(
    workspace: WorkspaceOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Write every object of a workspace as YAML; secrets appear only as env: references."""
    ctx = build_context()
    with reading(ctx) as session:
        text = export_yaml(session, ctx, workspace_name(ctx, workspace))
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        say(f"Wrote {output}.")


def apply(
    file: Annotated[Path, typer.Option("--file", "-f", help="YAML file written by `offramp export` (- for stdin).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan only; change nothing.")] = False,
    actor: ActorOption = None,
) -> None:
    """Make the store match a YAML file: print the plan (added / changed / removed), then apply it."""
    if str(file) == "-":
        text, origin = sys.stdin.read(), "stdin"
    else:
        try:
            text, origin = file.read_text(), str(file)
        except OSError as exc:
            raise ConfigError(f"cannot read {file}: {exc.strerror}") from None
    document = parse_document(text, origin)
    ctx = build_context(actor)
    for attempt in range(_APPLY_ATTEMPTS):
        try:
            with ctx.store.session() as session:
                plan = apply_document(session, ctx, document, dry_run=dry_run)
                if dry_run:
                    session.rollback()
            break
        except IntegrityError:
            # Another command created one of the file's objects between our read and our insert (applies of one
            # workspace wait for each other; a `credentials add` does not). Everything was rolled back: apply
            # again against what is stored now, which then has less (or nothing) to do.
            if attempt == _APPLY_ATTEMPTS - 1:
                raise
    say(f"Plan for workspace {plan.workspace}: {plan.summary}")
    for item in plan.items:
        say(f"  {item}")
    if dry_run:
        say("Dry run: nothing was changed.")
    elif plan.items:
        say("Applied.")
    else:
        say("Nothing to do: the store already matches the file.")
