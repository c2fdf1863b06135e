"""`offramp credentials add|update|rename|list|show|delete|authorize|test`."""

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
from offramp.core.hints import offramp_command
from offramp.core.oauth_callback import LoopbackListener, check_state, new_state, parse_redirect
from offramp.core.services import credentials as service
from offramp.core.services.plugin_context import credential_handle
from offramp.core.services.workspaces import get_workspace

app = typer.Typer(help="Named, typed secret bundles (encrypted at rest).", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="Credential name.")]
UnsetOption = Annotated[
    list[str] | None, typer.Option("--unset", "-u", metavar="KEY", help="Remove a setting (or secret); repeatable.")
]


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


@app.command("update")
def update(
    name: NameArgument,
    settings: SetOption = None,
    unset: UnsetOption = None,
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
) -> None:
    """Change a credential's settings: --set what changes, --unset what goes; everything else is kept.

    Validated as `add` validates (every invalid field at once). A secret is given as with `add`: env:VAR (read
    from the environment) or the value itself; it is never printed.
    """
    ctx = build_context(actor)
    values = parse_settings(settings)
    with transaction(ctx) as session:
        changed = service.edit_credential(session, ctx, workspace_name(ctx, workspace), name, values, unset or [])
    say_changed("credential", name, changed)


def say_changed(kind: str, name: str, changed: list[str]) -> None:
    """What an update prints: the fields that changed (secrets by name only), or that nothing did."""
    if changed:
        say(f"Updated {kind} {name}: {', '.join(changed)} changed.")
    else:
        say(f"{kind.capitalize()} {name}: nothing to change.")


@app.command("rename")
def rename(
    name: NameArgument,
    new_name: Annotated[str, typer.Argument(metavar="NEW", help="The new name.")],
    workspace: WorkspaceOption = None,
    actor: ActorOption = None,
) -> None:
    """Rename a credential; the destinations bound to it stay bound."""
    ctx = build_context(actor)
    with transaction(ctx) as session:
        renamed = service.rename_credential(session, ctx, workspace_name(ctx, workspace), name, new_name)
    say(f"Renamed credential {name} to {new_name}." if renamed else f"Credential {name}: nothing to change.")


@app.command("list")
def list_(workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """List credentials; in a sandbox, its own and production's, which it shares (marked shared from production).

    A production credential whose name the sandbox also gives one of its own is listed too, marked shadowed: its
    destinations may be bound to it, but a name (`--credential NAME`) finds the sandbox's own first.
    """
    ctx = build_context()
    with reading(ctx) as session:
        seen_from = get_workspace(session, workspace_name(ctx, workspace))
        own = [(row, None, False) for row in service.list_credentials(session, seen_from)]
        shared = [(row, row.workspace.name, False) for row in service.shared_credentials(session, seen_from)]
        shadowed = [(row, row.workspace.name, True) for row in service.shadowed_credentials(session, seen_from)]
        data: list[dict[str, Any]] = [
            {
                "name": r.name,
                "type": r.type,
                "status": r.status,
                "status_reason": r.status_reason,
                "last_refreshed_at": r.last_refreshed_at,
                # In a sandbox: its destinations bound to the credential, not production's.
                "used_by": service.users_of(session, r, within=seen_from if shared_from else None),
                "updated_at": r.updated_at,
                **({"shared_from": shared_from} if shared_from else {}),
                **({"shadowed": True} if hidden else {}),
            }
            # The sandbox's own before production's of the same name.
            for r, shared_from, hidden in sorted(
                [*own, *shared, *shadowed], key=lambda i: (i[0].name, i[1] is not None)
            )
        ]
    if json_output:
        print_json(data)
        return
    print_table(
        "Credentials",
        ["name", "type", "status", "last refresh", "used by", "updated"],
        [
            [
                _listed_name(d),
                d["type"],
                d["status"],
                when(d["last_refreshed_at"]),
                ", ".join(d["used_by"]),
                when(d["updated_at"]),
            ]
            for d in data
        ],
    )


def _listed_name(item: dict[str, Any]) -> str:
    if "shared_from" not in item:
        return str(item["name"])
    if item.get("shadowed"):
        return (
            f"{item['name']} (shared from {item['shared_from']}; shadowed by the sandbox's own {item['name']}, which "
            "--credential finds first)"
        )
    return f"{item['name']} (shared from {item['shared_from']})"


@app.command("show")
def show(name: NameArgument, workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """Show a credential's settings; secrets only as set / not set, with when they last changed."""
    ctx = build_context()
    with reading(ctx) as session:
        row = service.resolve_credential(session, get_workspace(session, workspace_name(ctx, workspace)), name)
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
        bool, typer.Option("--listen", help="Catch the vendor's redirect on a one-shot loopback listener.")
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

    Without --listen, paste the auth_code (or the whole URL the vendor redirected to). The tokens are stored
    encrypted.
    """
    ctx = build_context(actor)
    credential = credential_handle(ctx, workspace_name(ctx, workspace), name, changes="authorize")
    kind = ctx.registry.credential_type(credential.type)
    hooks = ctx.registry.credential_hooks(credential.type)
    if hooks.authorization_url is None or hooks.complete_authorization is None:
        update = offramp_command("credentials", "update", name, "--help")
        raise ConfigError(
            f"credential type {credential.type} does not use an authorization",
            hint=f"set its secrets instead (see `{update}`)",
        )
    state = new_state()
    # The listener knows the state: a callback with none or another one is refused and the real redirect awaited.
    listener = LoopbackListener(port, state=state) if listen else None
    try:
        uri = listener.redirect_uri if listener is not None else redirect_uri
        say(f"Open this URL, {kind.authorization_prompt}:")
        say(f"  {hooks.authorization_url(credential, state, uri)}")
        if listener is not None:
            say(f"Waiting for the redirect to {listener.redirect_uri} ...")
            redirect = listener.wait(timeout)
        else:
            answer = typer.prompt("Paste the auth_code (or the whole redirect URL)", hide_input=sys.stdin.isatty())
            redirect = parse_redirect(answer)
    finally:
        if listener is not None:
            listener.close()
    authorization = hooks.complete_authorization(credential, check_state(redirect, state))
    say(authorization.message)


@app.command("test")
def test(name: NameArgument, workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """Check the credential against the vendor's API: what it reaches, as its type reports it."""
    ctx = build_context()
    credential = credential_handle(ctx, workspace_name(ctx, workspace), name)
    describe = ctx.registry.credential_hooks(credential.type).describe_access
    if describe is None:
        raise ConfigError(f"credential type {credential.type} cannot be tested against an API yet")
    report = describe(credential)
    if json_output:
        print_json({"credential": name, "ok": True, report.key: [dict(item) for item in report.items]})
        return
    say(f"Credential {name} works: {report.summary}.")
    print_table(report.title, list(report.columns), [list(row) for row in report.rows])
