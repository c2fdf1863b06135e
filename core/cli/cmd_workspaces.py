"""`offramp workspaces add|list|delete`."""

from __future__ import annotations

from typing import Annotated

import typer

from offramp.core.cli.common import ActorOption, JsonOption, build_context, reading, transaction
from offramp.core.cli.output import print_json, print_table, say, when
from offramp.core.services import workspaces as service

app = typer.Typer(help="Workspaces: production and named sandboxes.", no_args_is_help=True)


@app.command("list")
def list_(json_output: JsonOption = False) -> None:
    """List workspaces."""
    ctx = build_context()
    with reading(ctx) as session:
        data = [
            {"name": w.name, "description": w.description, "created_at": w.created_at}
            for w in service.list_workspaces(session)
        ]
    if json_output:
        print_json(data)
        return
    print_table(
        "Workspaces",
        ["name", "description", "created"],
        [[d["name"], d["description"], when(d["created_at"])] for d in data],
    )


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Workspace name (lower-case).")],
    description: Annotated[str | None, typer.Option(help="What the workspace is for.")] = None,
    actor: ActorOption = None,
) -> None:
    """Create an empty sandbox workspace. To copy production into a sandbox you can promote from, use
    `offramp sandboxes create` instead."""
    ctx = build_context(actor)
    with transaction(ctx) as session:
        service.add_workspace(session, ctx, name, description)
    say(f"Added workspace {name}.")


@app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="Workspace name.")], actor: ActorOption = None) -> None:
    """Delete an empty workspace."""
    ctx = build_context(actor)
    with transaction(ctx) as session:
        service.delete_workspace(session, ctx, name)
    say(f"Deleted workspace {name}.")
