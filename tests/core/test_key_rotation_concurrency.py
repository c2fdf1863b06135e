"""`offramp secrets rotate-key` never loses a secret: not to concurrent writers, not to `kill -9`, not to old keys.

Rotation and every writer of secrets exclude each other (the secrets lock: an advisory lock on PostgreSQL, the
write lock on SQLite); a writer re-encrypts under the key file's newest key once it holds the lock; the key file
drops an old key only once no row uses it; a process that loaded an older key reads the file again.
Each test runs on SQLite and on PostgreSQL (OFFRAMP_TEST_POSTGRES_URL), with real processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from cryptography.fernet import Fernet, InvalidToken

from offramp.core.environment import Environment
from offramp.core.state.models import Credential

OFFRAMP = str(Path(sys.executable).with_name("offramp"))
SECRETS_LOCK_KEY = int.from_bytes(b"offramp\x01", "big")  # the advisory lock offramp documents (operations.md)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, cli: Any) -> str:
    """An initialized store, SQLite or PostgreSQL, under the key file."""
    if request.param == "postgresql":
        monkeypatch.setenv("OFFRAMP_DATABASE_URL", request.getfixturevalue("postgres_url"))
    monkeypatch.setenv("ROTATION_TOKEN", "token-value-5150")
    cli.ok("init")
    return str(request.param)


def offramp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OFFRAMP, *args], capture_output=True, text=True, env=dict(os.environ), timeout=600)


def key_file_keys(home: Path) -> list[str]:
    return [line.strip() for line in (home / "secret.key").read_text().splitlines() if line.strip()]


def stored_ciphertexts() -> dict[tuple[int, str], str]:
    """{(credential id, field): Fernet token}, straight from the store."""
    engine = sa.create_engine(Environment().store_url)
    try:
        with engine.connect() as connection:
            return {
                (row_id, field): record["ciphertext"]
                for row_id, secrets in connection.execute(sa.select(Credential.id, Credential.secrets))
                for field, record in secrets.items()
            }
    finally:
        engine.dispose()


def assert_every_secret_opens_with_the_key_file(home: Path) -> int:
    """Every stored ciphertext decrypts with the key file's keys alone; returns how many there are."""
    keys = [Fernet(key.encode()) for key in key_file_keys(home)]
    tokens = stored_ciphertexts()
    lost = []
    for where, token in tokens.items():
        for key in keys:
            try:
                key.decrypt(token.encode())
                break
            except InvalidToken:
                continue
        else:
            lost.append(where)
    assert not lost, f"secrets no key in the key file opens: {lost}"
    return len(tokens)


def credentials_document(workspace: str, count: int) -> dict[str, Any]:
    return {
        "version": 1,
        "workspace": workspace,
        "credentials": [
            {"name": f"token-{index}", "type": "static-token", "settings": {"token": "env:ROTATION_TOKEN"}}
            for index in range(count)
        ],
        "shared_secret_variables": ["ROTATION_TOKEN"],  # one value for every credential, on purpose
    }


# A writer of its own: applies files and adds credentials with the CLI, one command after the other.
WRITER = textwrap.dedent(
    """
    import os, subprocess, sys
    offramp, folder, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for index in range(count):
        for command in (["apply", "-f", f"{folder}/ws-{index}.yaml"],
                        ["credentials", "add", f"added-{index}", "--type", "static-token",
                         "--set", "token=env:ROTATION_TOKEN"]):
            done = subprocess.run([offramp, *command], capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"offramp {' '.join(command)} failed: {done.stderr}")
    """
)


def test_rotations_while_apply_and_credentials_add_write_secrets_lose_nothing(
    store_kind: str, cli: Any, offramp_home: Path, tmp_path: Path, stored_secrets: Callable[..., dict[str, str]]
) -> None:
    rounds = 4
    for index in range(rounds):
        (tmp_path / f"ws-{index}.yaml").write_text(yaml.safe_dump(credentials_document(f"team-{index}", 5)))
    cli.ok("credentials", "add", "first", "--type", "static-token", "--set", "token=env:ROTATION_TOKEN")
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, OFFRAMP, str(tmp_path), str(rounds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    rotations = 0
    try:
        while writer.poll() is None or rotations < 2:
            done = offramp("secrets", "rotate-key")
            assert done.returncode == 0, done.stderr
            rotations += 1
        _, err = writer.communicate(timeout=600)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.communicate()
    assert writer.returncode == 0, err

    assert len(key_file_keys(offramp_home)) == 1
    assert assert_every_secret_opens_with_the_key_file(offramp_home) == 1 + rounds * 6
    for index in range(rounds):
        assert stored_secrets(f"added-{index}") == {"token": "token-value-5150"}
        for name in range(5):
            assert stored_secrets(f"token-{name}", f"team-{index}") == {"token": "token-value-5150"}
    cli.ok("credentials", "show", "added-0")
    final = offramp("secrets", "rotate-key")
    assert final.returncode == 0, final.stderr
    assert f"Re-encrypted {1 + rounds * 6} secret(s)" in final.stdout
    assert stored_secrets("first") == {"token": "token-value-5150"}


def hold_a_row_lock(url: str) -> tuple[sa.Engine, sa.Connection]:
    """PostgreSQL: lock one credential row, so that a rotation stops after it wrote the new key to the file."""
    engine = sa.create_engine(url)
    connection = engine.connect()
    connection.execute(sa.text("SELECT id FROM credentials ORDER BY id DESC LIMIT 1 FOR UPDATE"))
    return engine, connection


def test_a_rotation_killed_half_way_loses_nothing_and_the_next_one_works(
    store_kind: str, cli: Any, offramp_home: Path, tmp_path: Path, stored_secrets: Callable[..., dict[str, str]]
) -> None:
    count = 400  # enough rows that re-encrypting them outlasts the moment the key file is seen with two keys
    (tmp_path / "many.yaml").write_text(yaml.safe_dump(credentials_document("production", count)))
    cli.ok("apply", "-f", str(tmp_path / "many.yaml"))
    [old_key] = key_file_keys(offramp_home)
    before = stored_ciphertexts()
    held = hold_a_row_lock(os.environ["OFFRAMP_DATABASE_URL"]) if store_kind == "postgresql" else None
    rotation = subprocess.Popen(
        [OFFRAMP, "secrets", "rotate-key"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ)
    )
    try:
        deadline = time.monotonic() + 300
        while len(key_file_keys(offramp_home)) < 2:  # the new key is in the file: the rotation is half-way
            assert rotation.poll() is None, rotation.communicate()
            assert time.monotonic() < deadline, "the rotation never wrote its new key"
            time.sleep(0.001)
        os.kill(rotation.pid, signal.SIGSTOP)
        keys = key_file_keys(offramp_home)
        os.kill(rotation.pid, signal.SIGKILL)
        rotation.communicate(timeout=60)
    finally:
        if rotation.poll() is None:
            rotation.kill()
            rotation.communicate()
        if held is not None:
            held[1].close()
            held[0].dispose()
    assert len(keys) == 2 and keys[1] == old_key, "killed while the file held the new key and the old one"
    assert key_file_keys(offramp_home) == keys

    assert assert_every_secret_opens_with_the_key_file(offramp_home) == count
    if store_kind == "postgresql":  # killed before its commit: the rows are as they were
        assert stored_ciphertexts() == before
    assert stored_secrets("token-0") == {"token": "token-value-5150"}
    cli.ok("credentials", "add", "after-kill", "--type", "static-token", "--set", "token=env:ROTATION_TOKEN")

    again = offramp("secrets", "rotate-key")
    assert again.returncode == 0, again.stderr
    [newest] = key_file_keys(offramp_home)
    assert newest not in keys
    assert assert_every_secret_opens_with_the_key_file(offramp_home) == count + 1
    assert stored_secrets("after-kill") == {"token": "token-value-5150"}
    assert stored_secrets(f"token-{count - 1}") == {"token": "token-value-5150"}


# Loads the keys once, like a long run does, then reads and writes secrets after rotations replaced every key.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from offramp.core.environment import Environment
    from offramp.core.services.context import Context
    from offramp.core.services.credentials import credential_settings, get_credential, save_tokens
    from offramp.core.services.workspaces import get_workspace
    from offramp.core.state.store import open_store

    go = Path(sys.argv[1])
    env = Environment()
    store = open_store(env)
    ctx = Context(env=env, store=store)
    ctx.secret_box  # the keys as they are now
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.01)
    with store.session() as session:
        row = get_credential(session, get_workspace(session, "production"), "held")
        print(credential_settings(ctx, row).token.get_secret_value(), flush=True)
        save_tokens(session, ctx, row, {"token": "written-after-rotation"}, access_token_expires_at=None,
                    action="refresh")
    store.dispose()
    """
)


def test_a_process_that_loaded_the_old_key_reads_and_writes_after_rotations(
    store_kind: str, cli: Any, offramp_home: Path, tmp_path: Path, stored_secrets: Callable[..., dict[str, str]]
) -> None:
    cli.ok("credentials", "add", "held", "--type", "static-token", "--set", "token=env:ROTATION_TOKEN")
    [old_key] = key_file_keys(offramp_home)
    go = tmp_path / "go"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready", holder.communicate()
        for _ in range(2):  # the holder's key is gone from the file, and so is the one after it
            done = offramp("secrets", "rotate-key")
            assert done.returncode == 0, done.stderr
        assert old_key not in key_file_keys(offramp_home)
        go.touch()
        out, err = holder.communicate(timeout=300)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate()
    assert holder.returncode == 0, err
    assert out.strip() == "token-value-5150"
    # What the holder wrote with its old key loaded is under the key file's newest key.
    assert assert_every_secret_opens_with_the_key_file(offramp_home) == 1
    [newest] = key_file_keys(offramp_home)
    for token in stored_ciphertexts().values():
        Fernet(newest.encode()).decrypt(token.encode())
    assert stored_secrets("held") == {"token": "written-after-rotation"}
    final = offramp("secrets", "rotate-key")
    assert final.returncode == 0, final.stderr


# A writer caught in the middle, committing only when told to while a rotation runs: either it loaded the keys and
# flushed a new credential's secret, or it locked a credential's row as a token refresh does and saves the new
# token later. Before the secrets lock, the rotation did not see the uncommitted new row, dropped the old key, and
# the writer then committed a secret no key opens; a refresh and a rotation waiting for each other deadlocked.
IN_FLIGHT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from offramp.core.environment import Environment
    from offramp.core.services.context import Context
    from offramp.core.services.credentials import add_credential, locked_credential, save_tokens
    from offramp.core.state.store import open_store

    mode, go = sys.argv[1], Path(sys.argv[2])
    env = Environment()
    store = open_store(env)
    ctx = Context(env=env, store=store)

    def wait():
        print("in flight", flush=True)
        while not go.exists():
            time.sleep(0.01)

    if mode == "add":
        with store.session() as session:
            add_credential(session, ctx, "production", "in-flight", "static-token", {"token": "in-flight-value"})
            session.flush()
            wait()
    else:
        with locked_credential(ctx, "production", "in-flight") as (session, row):
            ctx.secret_box
            wait()
            save_tokens(session, ctx, row, {"token": "in-flight-value"}, access_token_expires_at=None,
                        action="refresh")
    store.dispose()
    """
)


def rotation_waits_for_a_lock(url: str) -> bool:
    """Whether a rotation's statement waits for a lock (the secrets lock, or a row's) on the PostgreSQL server."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            waiting = connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND (query LIKE :advisory OR query LIKE '%FROM credentials%FOR UPDATE%')"
                ),
                {"advisory": f"%pg_advisory_xact_lock({SECRETS_LOCK_KEY})%"},
            ).scalar()
    finally:
        engine.dispose()
    return bool(waiting)


@pytest.mark.parametrize("writer_mode", ["add", "refresh"])
def test_a_secret_written_while_a_rotation_runs_is_never_left_under_a_dropped_key(
    store_kind: str,
    writer_mode: str,
    cli: Any,
    offramp_home: Path,
    tmp_path: Path,
    stored_secrets: Callable[..., dict[str, str]],
) -> None:
    cli.ok("credentials", "add", "first", "--type", "static-token", "--set", "token=env:ROTATION_TOKEN")
    if writer_mode == "refresh":
        cli.ok("credentials", "add", "in-flight", "--type", "static-token", "--set", "token=env:ROTATION_TOKEN")
    go = tmp_path / "go"
    writer = subprocess.Popen(
        [sys.executable, "-c", IN_FLIGHT, writer_mode, str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    rotation: subprocess.Popen[str] | None = None
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "in flight", writer.communicate()
        rotation = subprocess.Popen(
            [OFFRAMP, "secrets", "rotate-key"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        if store_kind == "postgresql":
            # Until the rotation has either finished (it does not wait for the writer) or waits for the lock.
            deadline = time.monotonic() + 120
            url = os.environ["OFFRAMP_DATABASE_URL"]
            while rotation.poll() is None and not rotation_waits_for_a_lock(url):
                assert time.monotonic() < deadline, "the rotation neither finished nor waited for the writer"
                time.sleep(0.05)
        else:
            time.sleep(1)  # SQLite: the rotation waits for the writer's write lock (up to the 30 s busy timeout)
        go.touch()
        _, writer_err = writer.communicate(timeout=120)
        _, rotation_err = rotation.communicate(timeout=120)
    finally:
        for process in (writer, rotation):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()
    assert writer.returncode == 0, writer_err
    assert rotation.returncode == 0, rotation_err
    assert len(key_file_keys(offramp_home)) == 1
    assert assert_every_secret_opens_with_the_key_file(offramp_home) == 2
    assert stored_secrets("in-flight") == {"token": "in-flight-value"}
    again = offramp("secrets", "rotate-key")
    assert again.returncode == 0, again.stderr
