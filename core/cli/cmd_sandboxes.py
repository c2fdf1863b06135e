"""`offramp sandboxes create|list|update|delete|diff|validate|pull|promote`: change safely, review, promote.

The workflow is in docs/sandboxes.md. Every other command works in a sandbox with ``-w NAME``.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from offramp.core.cli.common import ActorOption, JsonOption, build_context, reading, transaction
from offramp.core.cli.output import print_json, print_table, say, warn, when
from offramp.core.errors import ConfigError, OfframpError
from offramp.core.hints import offramp_command

app = typer.Typer(
    help="Sandboxes: copies of production to change and test safely, then promote them.",
    no_args_is_help=True,
)

NameArgument = Annotated[str, typer.Argument(help="Sandbox name (lower-case).")]
CodeOption = Annotated[
    str | None,
    typer.Option(
        "--test-event-code",
        help="The sandbox's test code: its runs send to the vendor's test view (TikTok: Test Events) with it.",
    ),
]


@app.command("create")
def create(
    name: NameArgument,
    description: Annotated[str | None, typer.Option(help="What the sandbox is for.")] = None,
    test_event_code: CodeOption = None,
    actor: ActorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Make a sandbox from production's configuration now: destinations, orchestrations and groups are copied;
    credentials are shared (never copied); runs are not copied."""
    from offramp.core.services import sandboxes as service

    ctx = build_context(actor)
    with transaction(ctx) as session:
        sandbox = service.create_sandbox(session, ctx, name, description=description, test_event_code=test_event_code)
        base, code = sandbox.base_revision, sandbox.test_event_code
        copied = {kind: len(sandbox.base_snapshot[kind]) for kind in ("destination", "orchestration", "group")}  # type: ignore[index]
    if json_output:
        print_json({"name": name, "base_revision": base, "copied": copied, "test_event_code": code})
        return
    say(
        f"Created sandbox {name} from production at revision {base}: {copied['destination']} destination(s), "
        f"{copied['orchestration']} orchestration(s), {copied['group']} group(s); credentials are shared."
    )
    if code is None:
        say(
            "Runs that send need a test event code: "
            + offramp_command("sandboxes", "update", name, "--test-event-code", "TEST12345")
            + " (the code TikTok's Events Manager shows under Test Events)"
        )
    say("Change it with -w " + name + ", then review with " + offramp_command("sandboxes", "diff", name))


@app.command("list")
def list_(json_output: JsonOption = False) -> None:
    """List sandboxes: base revision, changes ready to promote, production updates to pull, last run."""
    from offramp.core.services import sandboxes as service

    ctx = build_context()
    with reading(ctx) as session:
        data = service.list_sandboxes(session)
    if json_output:
        print_json(data)
        return

    def counts(item: dict[str, Any]) -> tuple[str, str]:
        if item["changes"] is None:
            return "(not made from production)", ""
        pull = f"{item['updates']} update(s) to pull" if item["updates"] else "up to date"
        if item["conflicts"]:
            pull += f", {item['conflicts']} conflict(s)"
        return f"{item['changes']} change(s)", pull

    rows = []
    for item in data:
        changes, pull = counts(item)
        last = item["last_run"]
        last_text = "" if last is None else f"{last['orchestration']} {last['status']} {when(last['started_at'])}"
        rows.append([
            item["name"], item["description"], f"{when(item['created_at'])} by {item['created_by'] or '?'}",
            item["base_revision"], changes, pull, item["test_event_code"] or "(none)", last_text,
        ])  # fmt: skip
    print_table(
        "Sandboxes",
        ["name", "description", "created", "base", "to promote", "production", "test code", "last run"],
        rows,
    )


@app.command("update")
def update(
    name: NameArgument,
    description: Annotated[str | None, typer.Option(help="What the sandbox is for.")] = None,
    test_event_code: CodeOption = None,
    unset_test_event_code: Annotated[
        bool, typer.Option("--unset-test-event-code", help="Remove the sandbox's test code.")
    ] = False,
    schedules: Annotated[
        bool | None,
        typer.Option(
            "--enable-schedules/--disable-schedules",
            help="Whether the sandbox's schedules fire (`offramp scheduler`); off by default, and then as test "
            "traffic: its runs need a test event code.",
        ),
    ] = None,
    actor: ActorOption = None,
) -> None:
    """Change a sandbox's description, test event code, or whether its schedules fire."""
    from offramp.core.services import sandboxes as service
    from offramp.core.services.workspaces import get_workspace

    if test_event_code is not None and unset_test_event_code:
        raise ConfigError("give --test-event-code or --unset-test-event-code, not both")
    ctx = build_context(actor)
    with transaction(ctx) as session:
        changed = service.update_sandbox(
            session, ctx, name, description=description, test_event_code=test_event_code,
            unset_test_event_code=unset_test_event_code, schedules_enabled=schedules,
        )  # fmt: skip
        sandbox = get_workspace(session, name)  # also a workspace added empty: update takes those too
        untested = bool(sandbox.schedules_enabled) and not sandbox.test_event_code
    say(f"Updated sandbox {name}: {', '.join(changed)}." if changed else f"Sandbox {name}: nothing to change.")
    if untested:
        # Its schedules fire, and the runner refuses every sandbox run without a test code: say it now.
        warn(
            f"sandbox {name} has no test event code: its scheduled runs will be refused (failed fires) until it has "
            "one: " + offramp_command("sandboxes", "update", name, "--test-event-code", "TEST12345")
        )


@app.command("delete")
def delete(name: NameArgument, actor: ActorOption = None) -> None:
    """Delete a sandbox and its objects (its own credentials too; production's shared ones stay). Its runs stay as
    history."""
    from offramp.core.services import sandboxes as service

    ctx = build_context(actor)
    with transaction(ctx) as session:
        runs = service.delete_sandbox(session, ctx, name)
    kept = f"; its {runs} run(s) stay as history" if runs else ""
    say(f"Deleted sandbox {name}{kept}.")


class DiffFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    YAML = "yaml"


@app.command("diff")
def diff(
    name: NameArgument,
    output_format: Annotated[DiffFormat, typer.Option("--format", help="text (default), json or yaml.")] = (
        DiffFormat.TEXT
    ),
    json_output: JsonOption = False,
) -> None:
    """What promotion would do to production: added, changed and removed objects, field by field (secrets only as
    "changed"), and production's updates to pull. Paste the text into a pull request."""
    from offramp.core.services import diff_render
    from offramp.core.services import sandboxes as service

    ctx = build_context()
    with reading(ctx) as session:
        merged = service.sandbox_merge(session, service.get_sandbox(session, name))
        document = diff_render.diff_document(
            merged.merge, merged.base, merged.current, merged.production_snapshot, sandbox_name=name,
            base_revision=int(merged.sandbox.base_revision or 0), production_revision=merged.production.revision,
        )  # fmt: skip
    if json_output or output_format is DiffFormat.JSON:
        print_json(document)
    elif output_format is DiffFormat.YAML:
        sys.stdout.write(diff_render.render_yaml(document))
    else:
        sys.stdout.write(diff_render.render_text(document))


@app.command("validate")
def validate(
    name: NameArgument,
    no_connection_tests: Annotated[
        bool, typer.Option("--no-connection-tests", help="Skip the destinations' connection tests.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Check the sandbox before promotion. Errors block it (exit 1); warnings do not."""
    from offramp.core.services.sandbox_checks import validate_sandbox

    ctx = build_context()
    result = validate_sandbox(ctx, name, connection_tests=not no_connection_tests)
    if json_output:
        print_json(
            {
                "sandbox": name,
                "ok": not result.errors,
                "errors": [vars(f) for f in result.errors],
                "warnings": [vars(f) for f in result.warnings],
            }
        )
    else:
        for finding in [*result.errors, *result.warnings]:
            line = f"{finding.severity}: {finding.subject}: {finding.message}"
            say(line + (f" ({finding.hint})" if finding.hint else ""))
        verdict = "can be promoted" if not result.errors else "cannot be promoted until the errors are fixed"
        say(f"Sandbox {name}: {len(result.errors)} error(s), {len(result.warnings)} warning(s); it {verdict}.")
    if result.errors:
        raise typer.Exit(1)


def _takes(args: list[str], name: str) -> list[tuple[str, str]]:
    """``--take production|sandbox OBJECT`` pairs (parsed by hand: Typer cannot take a repeated two-value option)."""
    pairs: list[tuple[str, str]] = []
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if word != "--take" or len(rest) < 2 or rest[0] not in ("production", "sandbox"):
            raise ConfigError(
                f"unexpected {word!r}: pull takes --take production|sandbox OBJECT, repeated",
                hint=offramp_command("sandboxes", "pull", name, "--take", "production", "orchestration:NAME"),
            )
        pairs.append((rest.pop(0), rest.pop(0)))
    return pairs


@app.command(
    "pull",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def pull(typer_ctx: typer.Context, name: NameArgument, actor: ActorOption = None) -> None:
    """Bring production's changes since the sandbox's base into it. Objects changed on both sides differently are
    conflicts: resolve each with --take production|sandbox OBJECT (OBJECT: KIND:NAME, or a name), repeatable, or
    edit the sandbox to match and pull again. All or nothing."""
    from offramp.core.services import merge
    from offramp.core.services import sandboxes as service

    ctx = build_context(actor)
    takes = _takes(list(typer_ctx.args), name)
    try:
        with transaction(ctx) as session:
            sandbox = service.get_sandbox(session, name)
            merged = service.sandbox_merge(session, sandbox)
            candidates = [(c.kind, c.key, c.name) for c in merged.merge.conflicts]
            if takes and not candidates:
                raise ConfigError(
                    f"sandbox {name!r} has no conflicts with production, so there is no side to --take",
                    hint="pull without --take: " + offramp_command("sandboxes", "pull", name),
                )
            take: dict[tuple[str, str], merge.Side] = {}
            for side, text in takes:
                take[merge.find_object(candidates, text)] = side  # type: ignore[assignment]
            result = service.pull_sandbox(session, ctx, name, take)
    except OfframpError as exc:
        for line in getattr(exc, "conflict_lines", []):
            if line.strip():
                warn(line)
        raise
    if not result.written and result.base_before == result.base_after:
        say(f"Sandbox {name} is up to date with production (revision {result.base_after}).")
        return
    for line in result.written:
        say(line)
    say(f"Pulled production into sandbox {name}: base revision {result.base_before} -> {result.base_after}.")


@app.command("promote")
def promote(
    name: NameArgument,
    message: Annotated[str, typer.Option("--message", "-m", help="What changes and why (kept with the promotion).")],
    delete_sandbox: Annotated[
        bool, typer.Option("--delete-sandbox", help="Delete the sandbox once its changes are in production.")
    ] = False,
    actor: ActorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Apply the sandbox's changes to production in one transaction, recorded with the message. Refused while
    production has updates to pull or validation has errors."""
    from offramp.core.services.promotions import promote_sandbox

    ctx = build_context(actor)
    promotion = promote_sandbox(ctx, name, message, delete=delete_sandbox)
    if json_output:
        print_json(
            {
                "promotion": promotion.id,
                "sandbox": name,
                "revision_before": promotion.revision_before,
                "revision_after": promotion.revision_after,
                "changes": promotion.diff["changes"],
            }
        )
        return
    count = len(promotion.diff["changes"])
    say(
        f"Promoted sandbox {name} to production as promotion {promotion.id}: {count} change(s), revision "
        f"{promotion.revision_before} -> {promotion.revision_after}."
    )
    if delete_sandbox:
        say(f"Deleted sandbox {name}.")
    say("Undo with " + offramp_command("promotions", "revert", str(promotion.id)))
