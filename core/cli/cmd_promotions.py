"""`offramp promotions list|show|revert`: the history of what sandboxes changed in production, and its undo."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from offramp.core.cli.common import ActorOption, JsonOption, build_context, reading
from offramp.core.cli.output import print_json, print_table, say, warn, when
from offramp.core.hints import offramp_command

app = typer.Typer(help="Promotions of sandboxes to production: history and revert.", no_args_is_help=True)

IdArgument = Annotated[int, typer.Argument(help="Promotion id (see `offramp promotions list`).")]


def _summary(promotion: Any) -> dict[str, Any]:
    return {
        "id": promotion.id,
        "at": promotion.at,
        "actor": promotion.actor,
        "sandbox": promotion.sandbox,
        "message": promotion.message,
        "revision_before": promotion.revision_before,
        "revision_after": promotion.revision_after,
        "reverts": promotion.reverts,
        "changes": len(promotion.diff.get("changes", [])),
    }


@app.command("list")
def list_(
    limit: Annotated[int, typer.Option(help="Show at most this many, newest first.")] = 50,
    json_output: JsonOption = False,
) -> None:
    """List promotions, newest first: who, when, from which sandbox, the message, production's revisions."""
    from offramp.core.services.promotions import list_promotions

    ctx = build_context()
    with reading(ctx) as session:
        data = [_summary(p) for p in list_promotions(session, limit)]
    if json_output:
        print_json(data)
        return
    print_table(
        "Promotions",
        ["id", "when", "who", "sandbox", "changes", "revision", "message"],
        [
            [
                d["id"], when(d["at"]), d["actor"], d["sandbox"], d["changes"],
                f"{d['revision_before']} -> {d['revision_after']}",
                d["message"] + (f" (reverts {d['reverts']})" if d["reverts"] else ""),
            ]
            for d in data
        ],
    )  # fmt: skip


@app.command("show")
def show(promotion_id: IdArgument, json_output: JsonOption = False) -> None:
    """Show one promotion: who, when, the message and its diff."""
    from offramp.core.services import diff_render
    from offramp.core.services.promotions import get_promotion

    ctx = build_context()
    with reading(ctx) as session:
        promotion = get_promotion(session, promotion_id)
        data = _summary(promotion)
        document = dict(promotion.diff)
    if json_output:
        print_json({**data, "diff": document})
        return
    say(f"Promotion {data['id']}: sandbox {data['sandbox']} by {data['actor']} at {when(data['at'])}")
    say(f"Production revision {data['revision_before']} -> {data['revision_after']}")
    if data["reverts"]:
        say(f"Reverts promotion {data['reverts']}")
    say(f"Message: {data['message']}")
    say("")
    sys.stdout.write(diff_render.render_text(document))


@app.command("revert")
def revert(
    promotion_id: IdArgument,
    sandbox: Annotated[
        str | None, typer.Option("--sandbox", help="Name of the sandbox to make (default: revert-ID).")
    ] = None,
    actor: ActorOption = None,
) -> None:
    """Make a sandbox that holds the reverse of a promotion, to review and promote like any other change."""
    from offramp.core.services.promotions import revert_promotion

    ctx = build_context(actor)
    result = revert_promotion(ctx, promotion_id, sandbox)
    for note in result.notes:
        warn(note)
    say(f"Created sandbox {result.sandbox} holding the reverse of promotion {result.promotion}.")
    say("Review it with " + offramp_command("sandboxes", "diff", result.sandbox))
    message = f"revert promotion {result.promotion}"
    say("Then promote it with " + offramp_command("sandboxes", "promote", result.sandbox, "--message", message))
