"""`offramp credentials add|list|show|delete`."""

from __future__ import annotations

import sys
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
    reading,
    transaction,
    workspace_name,
)
from offramp.core.cli.output import print_json, print_mapping, print_table, say, when
from offramp.core.errors import ConfigError
from offramp.core.oauth_callback import LoopbackListener, check_state, new_state, parse_redirect
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
    with reading(ctx) as session:
        rows = service.list_credentials(session, get_workspace(session, workspace_name(ctx, workspace)))
        data: list[dict[str, Any]] = [
            {
                "name": r.name,
                "type": r.type,
                "status": r.status,
                "status_reason": r.status_reason,
                "last_refreshed_at": r.last_refreshed_at,
                "used_by": service.users_of(session, r),
                "updated_at": r.updated_at,
            }
            for r in rows
        ]
    if json_output:
        print_json(data)
        return
    print_table(
        "Credentials",
        ["name", "type", "status", "last refresh", "used by", "updated"],
        [
            [
                d["name"],
                d["type"],
                d["status"],
                when(d["last_refreshed_at"]),
                ", ".join(d["used_by"]),
                when(d["updated_at"]),
            ]
            for d in data
        ],
    )


@app.command("show")
def show(name: NameArgument, workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """Show a credential's settings; secrets only as set / not set, with when they last changed."""
    ctx = build_context()
    with reading(ctx) as session:
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


@app.command("authorize")
def authorize(
    name: NameArgument,
    listen: Annotated[
        bool, typer.Option("--listen", help="Catch TikTok's redirect on a one-shot loopback listener.")
    ] = False,
    port: Annotated[int, typer.Option(help="Port of the --listen listener (0: any free port).")] = 0,
    redirect_uri: Annotated[
        str | None,
        typer.Option("--redirect-uri", help="Redirect URI registered for your app (without --listen)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds --listen waits for the redirect.")] = 300.0,
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
) -> None:
    """Authorize a credential: open the printed URL, approve, and hand back the auth_code.

    Without --listen, paste the auth_code (or the whole URL TikTok redirected to). The tokens are stored encrypted.
    """
    ctx = build_context(actor)
    ws = workspace_name(ctx, workspace)
    with reading(ctx) as session:
        row = service.get_credential(session, get_workspace(session, ws), name)
        kind = ctx.registry.credential_type(row.type)
        settings = service.credential_settings(ctx, row)
    implementation = kind.load() if kind.implementation else None
    if implementation is None or not hasattr(implementation, "authorization_url"):
        raise ConfigError(f"credential type {row.type} does not use an authorization", hint="set its secrets instead")
    credential = implementation(ctx, ws, name)
    state = new_state()
    # The listener knows the state: a callback with none or another one is refused and the real redirect awaited.
    listener = LoopbackListener(port, state=state) if listen else None
    try:
        uri = listener.redirect_uri if listener is not None else redirect_uri
        say("Open this URL, sign in with an Admin or Operator of the ad account, and approve:")
        say(f"  {implementation.authorization_url(settings, state, uri)}")
        if listener is not None:
            say(f"Waiting for the redirect to {listener.redirect_uri} ...")
            redirect = listener.wait(timeout)
        else:
            answer = typer.prompt("Paste the auth_code (or the whole redirect URL)", hide_input=sys.stdin.isatty())
            redirect = parse_redirect(answer)
    finally:
        if listener is not None:
            listener.close()
    grant = credential.complete_authorization(check_state(redirect, state))
    expiry = (
        f"expires in {grant.expires_in} s and is refreshed automatically" if grant.expires_in else "does not expire"
    )
    advertisers = ", ".join(grant.advertiser_ids) or "none"
    say(f"Authorized credential {name}: advertisers {advertisers}; the access token {expiry}.")


@app.command("test")
def test(name: NameArgument, workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """Check the credential's token against the API: which advertisers it reaches, and with which role."""
    ctx = build_context()
    ws = workspace_name(ctx, workspace)
    with reading(ctx) as session:
        row = service.get_credential(session, get_workspace(session, ws), name)
        kind = ctx.registry.credential_type(row.type)
    implementation = kind.load() if kind.implementation else None
    if implementation is None or not hasattr(implementation, "describe_access"):
        raise ConfigError(f"credential type {row.type} cannot be tested against an API yet")
    advertisers = implementation(ctx, ws, name).describe_access()
    if json_output:
        print_json({"credential": name, "ok": True, "advertisers": advertisers})
        return
    say(f"Credential {name} works: the token reaches {len(advertisers)} advertiser(s).")
    print_table(
        "Advertisers",
        ["advertiser id", "name", "status", "your role", "can send events"],
        [
            [a["advertiser_id"], a["name"], a["status"], a["role"] or "not reported"]
            + ["unknown" if a["can_send"] is None else "yes" if a["can_send"] else "no: needs Admin or Operator"]
            for a in advertisers
        ],
    )
