"""Checks that a user guide under docs/ shows commands that exist: what a reader pastes parses against the real CLI.

- Every command line of a ``console`` block (after ``$ ``) and of a ``bash`` block that runs ``offramp`` (also after
  ``|``, ``&&`` or ``;``) parses as click parses it: an existing command, valid options and values, required
  arguments given.
- Every ``offramp ...`` of a synopsis block and of the prose (in backquotes) names an existing command and only
  options it has; upper-case placeholders (``NAME``, ``ID``) and ``[optional]`` parts are allowed there.
- Every command of a group the guide is about, and each of its options, is in the guide.

Used by tests/docs/test_sandbox_guide.py and tests/docs/test_scheduling_guide.py.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from typer._click import Command
from typer._click import Context as ClickContext
from typer.core import TyperGroup
from typer.main import get_command

from offramp.core.cli import app

# Options a command parses itself rather than through click (`sandboxes pull` reads repeated
# `--take production|sandbox OBJECT` pairs from its extra arguments: core/cli/cmd_sandboxes.py `_takes`).
HAND_PARSED: dict[tuple[str, ...], set[str]] = {("offramp", "sandboxes", "pull"): {"--take"}}

_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_SEPARATORS = {"|", "&&", ";", "&"}


def root() -> TyperGroup:
    command = get_command(app)
    assert isinstance(command, TyperGroup)
    return command


def _blocks(guide: Path) -> list[tuple[str, str]]:
    return [(language, body) for language, body in _BLOCK.findall(guide.read_text())]


def _logical_lines(body: str) -> list[str]:
    """The block's lines, with backslash continuations joined."""
    return body.replace("\\\n", " ").splitlines()


def _commands_in(line: str) -> list[list[str]]:
    """The ``offramp ...`` commands of one shell line, as words (redirections and comments left out)."""
    commands: list[list[str]] = []
    current: list[str] = []
    words = iter([*shlex.split(line, comments=True), ";"])
    for word in words:
        if word in _SEPARATORS:
            if current and current[0] == "offramp":
                commands.append(current)
            current = []
        elif word in (">", ">>", "<", "2>"):
            next(words)  # the redirection's file
        elif not word.startswith((">", "<")):
            current.append(word)
    return commands


def pasted_commands(guide: Path) -> list[list[str]]:
    """Every offramp command a reader can paste from a console or bash block."""
    found = []
    for language, body in _blocks(guide):
        if language not in ("console", "bash"):
            continue
        for line in _logical_lines(body):
            text = line.strip()
            if language == "console":
                if not text.startswith("$ "):
                    continue  # output
                text = text[2:]
            found += _commands_in(text)
    return found


def documented_commands(guide: Path) -> list[list[str]]:
    """The synopsis block's lines and the prose's backquoted commands, as words (placeholders allowed)."""
    found = []
    for language, body in _blocks(guide):
        if language == "":
            found += [line.split() for line in body.splitlines() if line.startswith("offramp ")]
    prose = _BLOCK.sub("", guide.read_text())
    found += [" ".join(text.split()).split() for text in re.findall(r"`(offramp\s[^`]*)`", prose)]
    return found


def path_of(words: list[str]) -> tuple[list[str], Command, list[str]]:
    """The command ``words`` name (walking the groups by name), its path and the words after it."""
    command: Command = root()
    path, rest = ["offramp"], list(words[1:])
    while isinstance(command, TyperGroup):
        assert rest, f"`{' '.join(words)}` names a group, not a command"
        sub = command.get_command(None, rest[0])  # type: ignore[arg-type]
        assert sub is not None, f"`{' '.join(words)}`: {' '.join(path)} has no command {rest[0]!r}"
        command, path, rest = sub, [*path, rest.pop(0)], rest
    return path, command, rest


def parse(words: list[str]) -> None:
    """Parse ``offramp ARGS`` as click does when it runs the command (raises UsageError on a mistake)."""
    command: Command = root()
    args, name = list(words[1:]), "offramp"
    parent: ClickContext | None = None
    while isinstance(command, TyperGroup):
        ctx = command.make_context(name, list(args), parent=parent, resilient_parsing=False)
        sub_name, sub, args = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        assert sub_name is not None and sub is not None
        command, parent, name = sub, ctx, sub_name
    command.make_context(name, list(args), parent=parent, resilient_parsing=False)


def options(path: list[str], command: Command) -> set[str]:
    names = {opt for param in command.params for opt in [*param.opts, *param.secondary_opts] if opt.startswith("-")}
    return names | {"--help"} | HAND_PARSED.get(tuple(path), set())


def check_pasted(words: list[str]) -> None:
    """A pasted command names a runnable command and parses."""
    path, command, _rest = path_of(words)
    assert command.callback is not None, f"{' '.join(path)} cannot run"
    parse(words)


def check_documented(words: list[str]) -> None:
    """A documented command exists and has every option it is shown with."""
    path, command, rest = path_of(words)
    given = {word.strip("[]|.,").split("=", 1)[0] for word in rest}
    unknown = sorted(option for option in given if option.startswith("--") and option not in options(path, command))
    assert not unknown, f"`{' '.join(words)}`: {' '.join(path)} has no option {', '.join(unknown)}"


def check_group_covered(guide: Path, group: str) -> None:
    """Every command of ``offramp GROUP`` (or the command ``offramp GROUP`` itself) and each of its options is in
    the guide."""
    text = guide.read_text()
    found = root().get_command(None, group)  # type: ignore[arg-type]
    assert found is not None
    commands = (
        {name: found.get_command(None, name) for name in found.list_commands(None)}  # type: ignore[arg-type]
        if isinstance(found, TyperGroup)
        else {"": found}
    )
    for name, command in commands.items():
        shown = f"offramp {group} {name}".rstrip()
        assert shown in text, f"the guide never shows `{shown}`"
        assert command is not None
        if isinstance(command, TyperGroup):
            for sub in command.list_commands(None):  # type: ignore[arg-type]
                assert f"{shown} {sub}" in text, f"the guide never shows `{shown} {sub}`"
            continue
        for param in command.params:
            long = [opt for opt in param.opts if opt.startswith("--")]
            if long and long[0] != "--help":
                assert long[0] in text, f"the guide never mentions {long[0]} of `{shown}`"


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def check_links(guide: Path) -> None:
    """Every link of the guide leads to a file or to one of its headings."""
    text = _BLOCK.sub("", guide.read_text())
    anchors = {_anchor(heading) for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        page, _, anchor = target.partition("#")
        if page:
            assert (guide.parent / page).is_file(), f"the guide links to {page}, which does not exist"
        elif anchor:
            assert anchor in anchors, f"the guide links to #{anchor}, which is no heading of it"
