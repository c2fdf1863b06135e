"""Shared fixtures: an isolated OFFRAMP_HOME per test, the CLI run in-process, a PostgreSQL schema per test."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from typer._click import Command
from typer._click import Context as ClickContext
from typer._click.exceptions import UsageError
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from offramp.core.cli import app
from offramp.core.environment import DEFAULT_WORKSPACE, Environment
from offramp.core.services.context import Context
from offramp.core.services.credentials import credential_settings, get_credential
from offramp.core.services.workspaces import get_workspace
from offramp.core.state.store import open_store

POSTGRES_ENV = "OFFRAMP_TEST_POSTGRES_URL"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def one_line_error(self, *needles: str) -> str:
        """Assert the command failed as a user's mistake should: exit 1, one `offramp: error:` line, no traceback.

        Returns that line, after checking it contains every needle.
        """
        assert self.exit_code == 1, f"expected exit status 1, got {self.exit_code}:\n{self.output}"
        assert "Traceback" not in self.output
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got:\n{self.stderr}"
        assert lines[0].startswith("offramp: error: "), lines[0]
        for needle in needles:
            assert needle in lines[0], lines[0]
        return lines[0]


# --- The hint checker ----------------------------------------------------------------------------------------
#
# Every hint offramp prints must be a command that works when pasted (offramp.core.hints, issue 13). Each
# in-process CLI run of the tests (Cli.__call__) passes its output through `hint_problems`, which raises when a hint
# breaks a rule. The rules:
#
# - What is a hint: every `offramp ...` in backticks, and every unquoted `offramp COMMAND ...` at the start of a line
#   (after its indentation or a `next:` / `hint:` / `then:` label), after ": " or " - " (the hint part of the
#   `offramp: error: MESSAGE - HINT` line), or after "see", "with", "run", "try"; COMMAND must be a command of the
#   CLI, so that prose such as "offramp keeps..." is not taken for one. An unquoted hint ends at the end of the line,
#   two spaces, "; " or " (". Output that is JSON is read as JSON: each string in it is scanned.
# - It parses: shlex splits it, and click resolves it against the real command tree (typer.main.get_command(app)),
#   resilient parsing off: an existing command, valid options, required arguments given. A hint ending in --help
#   only needs its command to exist.
# - No placeholder: no upper-case word (NAME, RUN_ID) as an argument, no placeholder word as an option's value, no
#   `...` or `…`; no option given twice (not doubled).
# - The right workspace: a hint whose command takes --workspace carries `-w W` when the workspace the printing
#   command acted in (its -w/--workspace, else OFFRAMP_WORKSPACE, else production) is W and not production, and never
#   a -w naming another workspace.
# - Not checked: output of --help and of DOCUMENTING commands (documentation, naming commands without their
#   arguments on purpose), and NOT_HINTS below.
#
# A test that deliberately prints a bad hint says so with @pytest.mark.hints_unchecked (there should be none).

# The workspace a command acts in when it takes none on its command line: `offramp demo` sets up its own.
COMMAND_WORKSPACES = {"demo": "demo"}  # plugins/tiktok/commands/demo.py DEMO_WORKSPACE

# Printed lines that are examples, not hints: `offramp demo` ends with the commands of a user's own setup, indented
# by four spaces, continued with backslashes, with names and environment variables for the user to choose.
NOT_HINTS: tuple[tuple[str, re.Pattern[str]], ...] = (("demo", re.compile(r"^    (offramp |--)")),)

# Commands whose output documents a plugin type: its fields' and actions' descriptions, like --help.
DOCUMENTING = (("plugins", "show"),)

PLACEHOLDER_WORDS = frozenset(
    {"NAME", "ID", "RUN_ID", "WORKSPACE", "ORCHESTRATION", "DESTINATION", "CREDENTIAL", "TYPE", "FILE", "DIR",
     "PATH", "KEY", "VALUE", "KEY=VALUE", "ACTION", "GROUP", "TEXT", "URL", "SQL"}
)  # fmt: skip
_UPPER_WORD = re.compile(r"^[A-Z][A-Z0-9_]*$")
_BACKTICKED = re.compile(r"`(offramp\s[^`]*)`")
_UNQUOTED = re.compile(
    r"(?:^\s*(?:(?:next|hint|then):\s+)?|:\s+|\s-\s+|\b(?:see|with|run|try)\s+)"
    r"(offramp\s+([a-z][a-z0-9-]*)(?=\s|$).*)"
)
_HINT_END = re.compile(r"\s{2,}|;\s|\s\(")


def _root_command() -> TyperGroup:
    command = get_command(app)
    assert isinstance(command, TyperGroup)
    return command


def printed_hints(text: str, command_names: Sequence[str], not_hints: Sequence[re.Pattern[str]] = ()) -> list[str]:
    """Every offramp command that ``text`` (one command's output) offers to paste."""
    try:
        data = json.loads(text)
    except ValueError:
        strings = text.splitlines()
    else:
        strings = []

        def walk(value: Any) -> None:
            if isinstance(value, str):
                strings.extend(value.splitlines())
            elif isinstance(value, dict):
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(data)
    hints: list[str] = []
    for line in strings:
        if any(pattern.search(line) for pattern in not_hints):
            continue
        hints += [match.strip() for match in _BACKTICKED.findall(line)]
        rest = _BACKTICKED.sub(" ", line)
        for match in _UNQUOTED.finditer(rest):
            if match.group(2) in command_names:
                hint = _HINT_END.split(match.group(1), maxsplit=1)[0].rstrip(" .,")
                hints.append(hint)
    return hints


def _workspace_of(params: Mapping[str, Any]) -> str | None:
    value = params.get("workspace")
    return value if isinstance(value, str) else None


def _resolve(words: Sequence[str]) -> tuple[list[str], Command, ClickContext | None]:
    """Parse ``offramp ARGS`` as click does; returns the command path, the command and its parsed context.

    The context is None for a hint asking --help (its command's path is checked, not its arguments). Raises
    UsageError.
    """
    command: Command = _root_command()
    path = ["offramp"]
    args = list(words[1:])
    parent: ClickContext | None = None
    while isinstance(command, TyperGroup):
        if args == ["--help"]:
            return path, command, None
        ctx = command.make_context(path[-1], list(args), parent=parent, resilient_parsing=False)
        rest = [*ctx._protected_args, *ctx.args]  # what the group left for its subcommand
        name, sub, args = command.resolve_command(ctx, rest)
        assert name is not None and sub is not None
        command, parent = sub, ctx
        path.append(name)
    if "--help" in args:
        return path, command, None
    ctx = command.make_context(path[-1], list(args), parent=parent, resilient_parsing=False)
    return path, command, ctx


def _acting_workspace(args: Sequence[str], env: Mapping[str, str] | None) -> tuple[str, set[str]]:
    """The workspace a command of the tests acted in, and the workspaces its hints may name."""
    try:
        path, _command, ctx = _resolve(["offramp", *args])
    except (UsageError, AssertionError, typer.Exit):  # a usage error, or an eager option (--version) exited
        path, ctx = ["offramp", *args[:1]], None
    given = _workspace_of(ctx.params) if ctx is not None else None
    environment = (env or {}).get("OFFRAMP_WORKSPACE") or os.environ.get("OFFRAMP_WORKSPACE")
    workspace = given or COMMAND_WORKSPACES.get(path[1] if len(path) > 1 else "") or environment or DEFAULT_WORKSPACE
    allowed = {workspace}
    if len(path) > 1 and path[1] == "workspaces" and ctx is not None:
        allowed |= {value for value in ctx.params.values() if isinstance(value, str)}  # the workspace it made
    if len(path) > 1 and path[1] == "sandboxes" and ctx is not None and isinstance(ctx.params.get("name"), str):
        # `offramp sandboxes diff NAME` acts in the sandbox NAME (its hints name it with -w), and on production.
        workspace = ctx.params["name"]
        allowed = {workspace, DEFAULT_WORKSPACE}
    if len(path) > 2 and path[1:3] == ["promotions", "revert"] and ctx is not None:
        workspace = ctx.params.get("sandbox") or f"revert-{ctx.params.get('promotion_id')}"  # the sandbox it makes
        allowed = {workspace, DEFAULT_WORKSPACE}
    return workspace, allowed


def hint_problem(hint: str, workspace: str, allowed: set[str] | None = None) -> str | None:
    """What is wrong with ``hint`` printed by a command that acted in ``workspace``; None when it works pasted."""
    allowed = allowed or {workspace}
    try:
        words = shlex.split(hint)
    except ValueError as exc:
        return f"does not split as shell words ({exc})"
    if "..." in hint or "…" in hint:
        return "holds a placeholder (`...`)"
    try:
        _path, command, ctx = _resolve(words)
    except UsageError as exc:
        return f"is not a valid offramp command: {exc.format_message()}"
    except typer.Exit:
        return None  # an eager option such as --version: valid, and it does what it says
    if ctx is None:
        return None
    for param in command.params:
        value = ctx.params.get(param.name or "")
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            if not isinstance(item, str):
                continue
            if param.param_type_name == "argument" and _UPPER_WORD.match(item) and len(item) > 1:
                return f"holds a placeholder ({item}) for {(param.name or '').upper()}"
            if param.param_type_name == "option" and item in PLACEHOLDER_WORDS:
                return f"holds a placeholder ({item}) for {param.opts[0]}"
        if param.param_type_name == "option" and not getattr(param, "multiple", False):
            given = [word for word in words if word in param.opts or word.split("=", 1)[0] in param.opts]
            if len(given) > 1:
                return f"gives {param.opts[0]} twice"
    if any(param.name == "workspace" for param in command.params):
        named = _workspace_of(ctx.params)
        if named is None and workspace != DEFAULT_WORKSPACE:
            return f"has no -w {workspace}: pasted, it would act on {DEFAULT_WORKSPACE}, not on {workspace}"
        if named is not None and named not in allowed:
            return f"names workspace {named!r}, but the command acted in {workspace!r}"
    return None


def hint_problems(args: Sequence[str], output: str, env: Mapping[str, str] | None = None) -> list[str]:
    """Each broken hint in ``output`` of ``offramp ARGS`` with what is wrong with it (empty when all work)."""
    if "--help" in args or tuple(args[:2]) in DOCUMENTING:
        return []  # help text documents commands with placeholders on purpose
    workspace, allowed = _acting_workspace(args, env)
    names = _root_command().list_commands(None)  # type: ignore[arg-type]
    first = args[0] if args else ""
    not_hints = [pattern for command, pattern in NOT_HINTS if command == first]
    problems = []
    for hint in printed_hints(output, names, not_hints):
        problem = hint_problem(hint, workspace, allowed)
        if problem is not None:
            problems.append(f"hint `{hint}` {problem}")
    return problems


class Cli:
    """Runs `offramp ...` in this process, the way a user's shell would, and captures both streams.

    Every hint the command prints is checked (`hint_problems`): a broken one fails the test, naming the command.
    """

    def __init__(self, check_hints: bool = True) -> None:
        self._runner = CliRunner()
        self._check_hints = check_hints

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> CliResult:
        try:
            result = self._runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        finally:
            # The command pointed logging at the runner's stderr, which is closed now; a shell would have exited.
            root = logging.getLogger()
            for handler in list(root.handlers):
                root.removeHandler(handler)
            root.setLevel(logging.WARNING)
        if self._check_hints:
            problems = [*hint_problems(args, result.stdout, env), *hint_problems(args, result.stderr, env)]
            assert not problems, f"`offramp {shlex.join(args)}` printed a broken hint:\n" + "\n".join(problems)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    def ok(self, *args: str, **kwargs: object) -> CliResult:
        """Run and assert success, showing the output when it fails."""
        result = self(*args, **kwargs)  # type: ignore[arg-type]
        assert result.exit_code == 0, f"offramp {' '.join(args)} failed:\n{result.output}"
        return result


@pytest.fixture(autouse=True)
def offramp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own OFFRAMP_HOME and working directory, and no OFFRAMP_* settings from outside."""
    for name in list(os.environ):
        if name.startswith("OFFRAMP_") and name != POSTGRES_ENV:
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("OFFRAMP_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hints_unchecked: the test prints a broken hint on purpose; Cli does not check its hints"
    )


@pytest.fixture
def cli(request: pytest.FixtureRequest) -> Cli:
    return Cli(check_hints=request.node.get_closest_marker("hints_unchecked") is None)


@pytest.fixture
def hint_checker() -> Callable[..., list[str]]:
    """``hint_checker(args, output, env=None)``: the broken hints in the output of ``offramp ARGS``."""
    return hint_problems


@pytest.fixture
def initialized(cli: Cli, offramp_home: Path) -> Path:
    """A store created by `offramp init` in the test's home."""
    cli.ok("init")
    return offramp_home


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL whose search_path is a fresh schema, dropped afterwards."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    schema = f"offramp_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def postgres_reader_url(postgres_url: str) -> Iterator[str]:
    """``postgres_url`` as a read-only warehouse role, the way users should connect sources (docs/operations.md):
    a login role with USAGE on the test's schema and SELECT on its tables, also on tables created later. Create the
    tables through ``postgres_url``; query them as a source through this one. The role is dropped afterwards."""
    url = make_url(postgres_url)
    schema = str(url.query["options"]).removeprefix("-csearch_path=")
    reader = f"offramp_reader_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE ROLE "{reader}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')
        connection.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{schema}" TO "{reader}"')
        connection.exec_driver_sql(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{reader}"')
        connection.exec_driver_sql(
            f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" GRANT SELECT ON TABLES TO "{reader}"'
        )
    try:
        yield url.set(username=reader).render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP OWNED BY "{reader}"')
            connection.exec_driver_sql(f'DROP ROLE "{reader}"')
        admin.dispose()


def read_stored_secrets(name: str, workspace: str = "production") -> dict[str, str]:
    """A credential's secret values as the code that uses it reads them, with the current OFFRAMP_* settings."""
    env = Environment()
    store = open_store(env)
    try:
        ctx = Context(env=env, store=store)
        with store.session() as session:
            row = get_credential(session, get_workspace(session, workspace), name)
            settings = credential_settings(ctx, row)
    finally:
        store.dispose()
    return {field: value.get_secret_value() for field, value in settings if isinstance(value, SecretStr)}


@pytest.fixture
def stored_secrets() -> Callable[..., dict[str, str]]:
    """``stored_secrets(name)``: the decrypted secrets of a stored credential."""
    return read_stored_secrets


# The fixture distributions carry their own tests, run inside their own venvs (tests/packaging/); collecting them
# here would import packages this environment does not have installed.
collect_ignore_glob = ["fixtures/*"]
