"""`offramp init`: create or upgrade the state store and the key file."""

from __future__ import annotations

from offramp.core.cli.common import ActorOption
from offramp.core.cli.output import say
from offramp.core.environment import Environment
from offramp.core.secrets import create_key_file, load_secret_box
from offramp.core.services import audit
from offramp.core.services.context import current_actor
from offramp.core.state.store import head_revision, initialize


def init(actor: ActorOption = None) -> None:
    """Create the state store (or upgrade it to this version's schema), the production workspace and the key."""
    env = Environment()
    created_key = False
    if env.secret_key is None:
        created_key = create_key_file(env.key_file)
    load_secret_box(env)  # a malformed key is reported now, not at the first secret
    store, before, created = initialize(env)
    with store.session() as session:
        action = "init" if created else ("upgrade" if before != head_revision() else "init-noop")
        if action != "init-noop":
            audit.record(session, actor or current_actor(), action, "store", None, None, {"from": before})
    if created:
        say(f"Created the state store at {store.display_url} (schema {head_revision()}), workspace production.")
    elif before != head_revision():
        say(f"Upgraded the state store at {store.display_url} from schema {before} to {head_revision()}.")
    else:
        say(f"The state store at {store.display_url} is ready (schema {head_revision()}).")
    if created_key:
        say(
            f"Created the secret key file {env.key_file} (mode 0600). Back it up: without it the stored secrets "
            "cannot be decrypted."
        )
    store.dispose()
