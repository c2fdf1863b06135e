"""Secrets: encrypted at rest with Fernet, never shown, and re-encrypted by `offramp secrets rotate-key`.

The plaintext checks read what really lands on disk (every byte of the SQLite file and its -wal/-shm/-journal
companions) or in PostgreSQL (every row of every table, as text), after real CLI commands.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

from offramp.core.environment import Environment
from offramp.core.state.models import Credential
from offramp.core.state.store import StateStore

APP_SECRET = "S3cr3t-app-secret-XYZ"
REFRESH_TOKEN = "S3cr3t-refresh-token-LMN"
STATIC_TOKEN = "S3cr3t-static-token-QRS"
SECRETS = [APP_SECRET, REFRESH_TOKEN, STATIC_TOKEN]
# Not a secret: stored as plain JSON, so finding it proves the searches below really read the stored rows.
APP_ID = "app-id-VISIBLE-4711"


# `tt`: app secret read from an environment variable, refresh token given as a value; `api`: a static token value.
ADD_TT = ("credentials", "add", "tt", "--type", "tiktok-offline-events", "--set", f"app_id={APP_ID}",
          "--set", "app_secret=env:MY_SECRET_VAR", "--set", f"refresh_token={REFRESH_TOKEN}")  # fmt: skip
ADD_API = ("credentials", "add", "api", "--type", "static-token", "--set", f"token={STATIC_TOKEN}")


def add_credentials(cli) -> list:
    """Add `tt` and `api`; return the two results."""
    return [cli.ok(*ADD_TT), cli.ok(*ADD_API)]


EXPECTED = {
    "tt": {"app_secret": APP_SECRET, "refresh_token": REFRESH_TOKEN},
    "api": {"token": STATIC_TOKEN},
}


def stored_ciphertexts() -> dict[tuple[str, str], str]:
    """{(credential, field): Fernet token} straight from the store."""
    store = StateStore(Environment().store_url)
    try:
        with store.session() as session:
            return {
                (row.name, field): record["ciphertext"]
                for row in session.scalars(sa.select(Credential))
                for field, record in row.secrets.items()
            }
    finally:
        store.dispose()


def key_file_keys(home: Path) -> list[str]:
    return [line.strip() for line in (home / "secret.key").read_text().splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def secret_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SECRET_VAR", APP_SECRET)


# -- the key file ---------------------------------------------------------------------------------------------------


def test_init_creates_a_key_file_with_mode_0600_holding_one_fernet_key(cli, offramp_home: Path):
    result = cli.ok("init")
    key_file = offramp_home / "secret.key"
    assert str(key_file) in result.stdout, "init must tell the user where the key is, to back it up"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    [key] = key_file_keys(offramp_home)
    Fernet(key.encode())  # a valid key

    cli.ok("init")
    assert key_file_keys(offramp_home) == [key], "a second init must never replace the key"


def test_init_with_offramp_secret_key_set_creates_no_key_file(stored_secrets, cli, offramp_home: Path, monkeypatch):
    monkeypatch.setenv("OFFRAMP_SECRET_KEY", Fernet.generate_key().decode())
    cli.ok("init")
    assert not (offramp_home / "secret.key").exists()
    add_credentials(cli)
    assert stored_secrets("tt") == EXPECTED["tt"]


# -- plaintext never stored, never shown -----------------------------------------------------------------------------


def _sqlite_bytes(home: Path) -> bytes:
    files = sorted(home.glob("offramp.db*"))  # the database and any -wal / -shm / -journal beside it
    assert home / "offramp.db" in files
    return b"".join(path.read_bytes() for path in files)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stored_bytes(request: pytest.FixtureRequest, offramp_home: Path, monkeypatch) -> Callable[[], bytes]:
    """Everything the state store holds, as bytes: raw SQLite files, or every PostgreSQL row as text."""
    if request.param == "sqlite":
        return lambda: _sqlite_bytes(offramp_home)
    url = str(request.getfixturevalue("postgres_url"))
    monkeypatch.setenv("OFFRAMP_DATABASE_URL", url)

    def dump() -> bytes:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as connection:
                tables = sa.inspect(connection).get_table_names()
                assert "credentials" in tables and "audit_events" in tables
                rows = [
                    text
                    for table in tables
                    for text in connection.execute(sa.text(f'SELECT CAST(t AS text) FROM "{table}" AS t')).scalars()
                ]
        finally:
            engine.dispose()
        return "\n".join(rows).encode()

    return dump


def test_no_secret_plaintext_is_stored_or_printed(
    stored_secrets, cli, offramp_home: Path, stored_bytes: Callable[[], bytes]
):
    outputs = [cli.ok("init"), *add_credentials(cli)]
    shown = cli.ok("credentials", "show", "tt", "--json")
    assert '"app_secret": "set' in shown.stdout, "show says a secret is set, without its value"
    outputs += [
        shown,
        cli.ok("credentials", "show", "tt"),
        cli.ok("credentials", "show", "api"),
        cli.ok("credentials", "show", "api", "--json"),
        cli.ok("credentials", "list"),
        cli.ok("credentials", "list", "--json"),
        cli.ok("export"),
        cli.ok("audit"),
        cli.ok("audit", "--json"),
        cli.ok("secrets", "rotate-key"),
    ]
    for result in outputs:
        for secret in SECRETS:
            assert secret not in result.output

    export = cli.ok("export").stdout
    assert "app_secret: env:MY_SECRET_VAR" in export, "export refers to the variable the secret came from"

    stored = stored_bytes()
    assert APP_ID.encode() in stored, "the search must see the stored rows"
    assert b"gAAAAA" in stored, "secrets are stored as Fernet tokens"
    for secret in SECRETS:
        assert secret.encode() not in stored
    for key in key_file_keys(offramp_home):
        assert key.encode() not in stored, "keys never live in the database"
    # And the values are all still there, under the encryption.
    assert stored_secrets("tt") == EXPECTED["tt"]
    assert stored_secrets("api") == EXPECTED["api"]


# -- adding secrets ------------------------------------------------------------------------------------------------


def test_secrets_given_from_env_or_as_values_decrypt_to_what_was_given(stored_secrets, cli, initialized: Path):
    add_credentials(cli)
    assert stored_secrets("tt") == EXPECTED["tt"]
    assert stored_secrets("api") == EXPECTED["api"]


@pytest.mark.parametrize(
    ("type_name", "settings", "field"),
    [("tiktok-offline-events", ["app_id=123"], "app_secret"), ("static-token", [], "token")],
)
def test_a_required_secret_not_given_off_a_terminal_is_a_one_line_error_naming_it(
    cli, initialized: Path, type_name: str, settings: list[str], field: str
):
    args = [arg for pair in settings for arg in ("--set", pair)]
    cli("credentials", "add", "c", "--type", type_name, *args).one_line_error(field)
    assert cli.ok("credentials", "list", "--json").stdout.strip() == "[]"


def test_an_unset_environment_variable_is_a_one_line_error_naming_it(cli, initialized: Path):
    result = cli("credentials", "add", "api", "--type", "static-token", "--set", "token=env:OFFRAMP_TEST_UNSET_VAR")
    result.one_line_error("OFFRAMP_TEST_UNSET_VAR")
    assert cli.ok("credentials", "list", "--json").stdout.strip() == "[]"


# -- wrong, missing and malformed keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command_line",
    [
        ("credentials", "add", "more", "--type", "static-token", "--set", "token=another-value"),
        ("secrets", "rotate-key"),
    ],
)
def test_a_wrong_key_is_a_one_line_error_naming_offramp_secret_key(
    stored_secrets, cli, initialized: Path, monkeypatch, command_line: tuple[str, ...]
):
    add_credentials(cli)
    before = stored_ciphertexts()
    wrong = [Fernet.generate_key().decode(), Fernet.generate_key().decode()]
    # rotate-key needs two keys before it decrypts anything; both are wrong here.
    monkeypatch.setenv("OFFRAMP_SECRET_KEY", ",".join(wrong if command_line[0] == "secrets" else wrong[:1]))

    cli(*command_line).one_line_error("OFFRAMP_SECRET_KEY")

    assert stored_ciphertexts() == before, "nothing may be written under a key that cannot read the store"
    monkeypatch.delenv("OFFRAMP_SECRET_KEY")
    assert stored_secrets("tt") == EXPECTED["tt"]


@pytest.mark.parametrize(
    "command_line",
    [
        ("credentials", "add", "more", "--type", "static-token", "--set", "token=another-value"),
        ("secrets", "rotate-key"),
        ("init",),  # init must not mint a key that cannot open the secrets already stored
    ],
)
def test_a_missing_key_file_is_a_one_line_error_naming_offramp_secret_key(
    cli, initialized: Path, command_line: tuple[str, ...]
):
    add_credentials(cli)
    before = stored_ciphertexts()
    (initialized / "secret.key").unlink()

    cli(*command_line).one_line_error("OFFRAMP_SECRET_KEY")

    assert not (initialized / "secret.key").exists(), "a lost key must not be silently replaced by a new one"
    assert stored_ciphertexts() == before


@pytest.mark.parametrize("make_key", [lambda: "not-a-fernet-key", lambda: Fernet.generate_key().decode() + ",garbage"])
@pytest.mark.parametrize(
    "command_line",
    [
        ("init",),
        ("credentials", "add", "more", "--type", "static-token", "--set", "token=another-value"),
        ("secrets", "rotate-key"),
    ],
)
def test_a_malformed_offramp_secret_key_is_a_one_line_error_naming_it(
    cli, initialized: Path, monkeypatch, make_key: Callable[[], str], command_line: tuple[str, ...]
):
    monkeypatch.setenv("OFFRAMP_SECRET_KEY", make_key())
    cli(*command_line).one_line_error("OFFRAMP_SECRET_KEY")
    monkeypatch.delenv("OFFRAMP_SECRET_KEY")
    assert cli.ok("credentials", "list", "--json").stdout.strip() == "[]"


def test_a_malformed_key_file_is_a_one_line_error_naming_the_file(cli, initialized: Path):
    key_file = initialized / "secret.key"
    key_file.write_text("not-a-fernet-key\n")
    result = cli("credentials", "add", "api", "--type", "static-token", "--set", f"token={STATIC_TOKEN}")
    line = result.one_line_error(str(key_file))
    assert "not-a-fernet-key" not in line, "a key, even a broken one, is never echoed"


# -- rotation ----------------------------------------------------------------------------------------------------------


def test_rotate_key_with_the_key_file_replaces_the_key_and_reencrypts_every_secret(
    stored_secrets, cli, initialized: Path, monkeypatch
):
    add_credentials(cli)
    key_file = initialized / "secret.key"
    [old_key] = key_file_keys(initialized)
    before = stored_ciphertexts()

    result = cli.ok("secrets", "rotate-key")
    assert "3 secret(s)" in result.stdout

    [new_key] = key_file_keys(initialized)
    assert new_key != old_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    after = stored_ciphertexts()
    assert after.keys() == before.keys() and len(after) == 3
    for where, token in after.items():
        assert token != before[where]
        with pytest.raises(InvalidToken):
            Fernet(old_key.encode()).decrypt(token.encode())
        Fernet(new_key.encode()).decrypt(token.encode())
    assert stored_secrets("tt") == EXPECTED["tt"]
    assert stored_secrets("api") == EXPECTED["api"]

    # The old key no longer opens the store, for the CLI either.
    monkeypatch.setenv("OFFRAMP_SECRET_KEY", old_key)
    cli("credentials", "add", "more", "--type", "static-token", "--set", "token=x").one_line_error("OFFRAMP_SECRET_KEY")
    monkeypatch.delenv("OFFRAMP_SECRET_KEY")
    cli.ok("credentials", "add", "more", "--type", "static-token", "--set", "token=x")


def test_rotate_key_with_new_and_old_key_in_offramp_secret_key(stored_secrets, cli, offramp_home: Path, monkeypatch):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("OFFRAMP_SECRET_KEY", old_key)
    cli.ok("init")
    add_credentials(cli)

    monkeypatch.setenv("OFFRAMP_SECRET_KEY", f"{new_key},{old_key}")
    assert stored_secrets("tt") == EXPECTED["tt"], "during rotation both keys open the store"
    result = cli.ok("secrets", "rotate-key")
    assert "3 secret(s)" in result.stdout
    assert not (offramp_home / "secret.key").exists(), "keys from the environment are never written to a file"

    monkeypatch.setenv("OFFRAMP_SECRET_KEY", new_key)
    assert stored_secrets("tt") == EXPECTED["tt"]
    assert stored_secrets("api") == EXPECTED["api"]
    for token in stored_ciphertexts().values():
        with pytest.raises(InvalidToken):
            Fernet(old_key.encode()).decrypt(token.encode())
    cli.ok("credentials", "add", "more", "--type", "static-token", "--set", "token=x")
    assert stored_secrets("more") == {"token": "x"}

    monkeypatch.setenv("OFFRAMP_SECRET_KEY", old_key)
    again = cli("credentials", "add", "again", "--type", "static-token", "--set", "token=y")
    again.one_line_error("OFFRAMP_SECRET_KEY")


def test_rotate_key_with_a_single_key_in_offramp_secret_key_refuses(
    stored_secrets, cli, offramp_home: Path, monkeypatch
):
    monkeypatch.setenv("OFFRAMP_SECRET_KEY", Fernet.generate_key().decode())
    cli.ok("init")
    add_credentials(cli)
    before = stored_ciphertexts()

    line = cli("secrets", "rotate-key").one_line_error("OFFRAMP_SECRET_KEY")
    assert "single key" in line

    assert stored_ciphertexts() == before
    assert stored_secrets("tt") == EXPECTED["tt"]
