"""`offramp secrets rotate-key`."""

from __future__ import annotations

import typer

from offramp.core.cli.common import ActorOption, build_context
from offramp.core.cli.output import say
from offramp.core.services.key_rotation import rotate_key

app = typer.Typer(help="Encryption keys of stored secrets.", no_args_is_help=True)


@app.command("rotate-key")
def rotate(actor: ActorOption = None) -> None:
    """Re-encrypt every stored secret under the newest key.

    With the key file, a new key is generated and replaces the old one; runs and other commands may go on meanwhile,
    and a rotation interrupted at any point loses nothing (run it again). With OFFRAMP_SECRET_KEY, put the new key
    first and the old one after it (comma-separated) in every process, run this, then drop the old key.
    """
    ctx = build_context(actor)
    result = rotate_key(ctx)
    say(f"Re-encrypted {result.secrets} secret(s) under the newest key of {result.key_origin}.")
    if result.key_file_rewritten:
        say(f"{result.key_origin} now holds only the new key; replace any backup of the old one.")
    else:
        say("Older keys can now be removed from OFFRAMP_SECRET_KEY.")
