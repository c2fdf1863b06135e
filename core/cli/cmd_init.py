"""`offramp init`: create or upgrade the state store and the key file."""

from __future__ import annotations

from offramp.core.cli.common import ActorOption
from offramp.core.cli.output import say
from offramp.core.environment import Environment
from offramp.core.errors import SecretKeyError
from offramp.core.secrets import create_key_file, load_secret_box
from offramp.core.services import audit
from offramp.core.services.context import current_actor, first_stored_secret
from offramp.core.state.store import StateStore, head_revision, initialize


def init(actor: ActorOption = None) -> None:
    """Create the state store (or upgrade it to this version's schema), the production workspace and the key."""
    env = Environment()
    if env.secret_key is not None:
        load_secret_box(env)  # a malformed key is reported before anything changes
    store, before, created = initialize(env)
    try:
        created_key = _ensure_key(env, store)
        _report(env, store, before, created, created_key, actor)
    finally:
        store.dispose()


def _ensure_key(env: Environment, store: StateStore) -> bool:
    """Create the key file for a store without secrets; a store with secrets needs its own key back."""
    if env.secret_key is None and not env.key_file.exists():
        if first_stored_secret(store) is not None:
            raise SecretKeyError(
                f"the state store holds encrypted secrets but the key file {env.key_file} is missing",
                hint="restore secret.key from your backup, or set OFFRAMP_SECRET_KEY to the key; a new key "
                "could not decrypt them",
            )
        create_key_file(env.key_file)
        return True
    box = load_secret_box(env)
    found = first_stored_secret(store)
    if found is not None:
        box.decrypt(found[1], found[0])
    return False


def _report(
    env: Environment, store: StateStore, before: str | None, created: bool, created_key: bool, actor: str | None
) -> None:
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
