"""`offramp credentials add|list|show|delete`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from offramp.core.cli.common import (
    ActorOption,
    JsonOption,
    SetOption,
    WorkspaceOption,
    build_context,
    parse_settings,
    prompt_missing_secrets,
    transaction,
    workspace_name,
)
from offramp.core.cli.output import print_json, print_mapping, print_table, say, when
from offramp.core.services import credentials as service
from offramp.core.services.workspaces import get_workspace

app = typer.Typer(help="Named, typed secret bundles (encrypted at rest).", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="Credential name.")]


@app.command("add")
def add(
    name: NameArgument,
    type_name: Annotated[str, typer.Option("--type", "-t", help="Credential type (see `offramp plugins list`).")],
    settings: SetOption = None,
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
) -> None:
    """Add a credential. Secrets not given with --set are prompted for without echo."""
    ctx = build_context(actor)
    values = parse_settings(settings)
    prompt_missing_secrets(ctx.registry.credential_type(type_name).settings, values)
    with transaction(ctx) as session:
        row = service.add_credential(session, ctx, workspace_name(ctx, workspace), name, type_name, values)
        say(f"Added credential {row.name} ({row.type}) to workspace {row.workspace.name}.")


@app.command("list")
def list_(workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """List credentials."""
    ctx = build_context()
    with transaction(ctx) as session:
        rows = service.list_credentials(session, get_workspace(session, workspace_name(ctx, workspace)))
        data: list[dict[str, Any]] = [
            {"name": r.name, "type": r.type, "used_by": service.users_of(session, r), "updated_at": r.updated_at}
            for r in rows
        ]
    if json_output:
        print_json(data)
        return
    print_table(
        "Credentials",
        ["name", "type", "used by", "updated"],
        [[d["name"], d["type"], ", ".join(d["used_by"]), when(d["updated_at"])] for d in data],
    )


@app.command("show")
def show(name: NameArgument, workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """Show a credential's settings; secrets only as set / not set, with when they last changed."""
    ctx = build_context()
    with transaction(ctx) as session:
        row = service.get_credential(session, get_workspace(session, workspace_name(ctx, workspace)), name)
        data = service.describe_credential(session, ctx, row)
    if json_output:
        print_json(data)
    else:
        print_mapping(f"credential {name}", {k: v for k, v in data.items() if k != "name"})


@app.command("delete")
def delete(name: NameArgument, workspace: WorkspaceOption = None, actor: ActorOption = None) -> None:
    """Delete a credential; refused while a destination uses it."""
    ctx = build_context(actor)
    with transaction(ctx) as session:
        service.delete_credential(session, ctx, workspace_name(ctx, workspace), name)
    say(f"Deleted credential {name}.")
