"""The plugin boundary, read from the source: what plugins may import of core, and that core imports no plugin.

Every ``.py`` file under ``plugins/`` and ``credentials/`` (the packages ``offramp.plugins`` and
``offramp.credentials``) and under ``core/`` (``offramp.core``) is parsed; every import counts: at the top, inside
functions, under ``TYPE_CHECKING``, relative ones (resolved against the module's package), and the string literal
given to ``importlib.import_module(...)`` or ``__import__(...)``. ``from P import n`` counts as importing ``P`` and,
for the forbidden packages, ``P.n`` too (``n`` may be a submodule). There is no list of exceptions.

The rules:

1. A module under ``plugins/`` or ``credentials/`` never imports ``offramp.core.services``, ``offramp.core.state``,
   ``offramp.core.runner`` or ``offramp.core.cli`` (nor a submodule of one), nor a private module of core (a dotted
   part that starts with ``_``, such as ``offramp.core.sources._allowed``).
2. What such a module takes from ``offramp.core`` is the plugin API: each name it imports from ``offramp.core`` or
   from a public module of it (``from offramp.core.errors import ConfigError``) is in ``offramp.core.__all__``. No
   module of core but ``offramp.core`` itself is imported whole (``import offramp.core.errors`` and
   ``from offramp.core import errors`` are refused), except:
3. ``offramp.core.commands`` (names in its ``__all__``), only from a command module: one inside a ``commands``
   package of a plugin (``plugins/tiktok/commands/``), which the entry point group ``offramp.commands`` loads.
4. ``offramp.core.testing`` is for a plugin's tests, which live under ``tests/``: never imported from ``plugins/``
   or ``credentials/``.
5. A module under ``core/`` never imports ``offramp.plugins`` or ``offramp.credentials``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"core": "offramp.core", "plugins": "offramp.plugins", "credentials": "offramp.credentials"}
FORBIDDEN_FOR_PLUGINS = ("offramp.core.services", "offramp.core.state", "offramp.core.runner", "offramp.core.cli")
FORBIDDEN_FOR_CORE = ("offramp.plugins", "offramp.credentials")
API_MODULE = "offramp.core"
COMMANDS_MODULE = "offramp.core.commands"
TESTING_MODULE = "offramp.core.testing"


@dataclass(frozen=True)
class Import:
    """One import statement (or import_module call): the module, the names taken from it, where."""

    module: str
    names: tuple[str, ...]
    line: int


def module_name(path: Path) -> tuple[str, bool]:
    """(dotted name, is a package) of a source file of the repository."""
    relative = path.relative_to(ROOT).with_suffix("")
    parts = [PACKAGES[relative.parts[0]], *relative.parts[1:]]
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _resolve(module: str | None, level: int, current: str, is_package: bool) -> str:
    if level == 0:
        return module or ""
    package = current.split(".") if is_package else current.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, module] if module else base)


def imports_of(source: str, current: str, is_package: bool) -> list[Import]:
    """Every import of a module's source, wherever it is written, in the order of its lines."""
    return sorted(_imports(source, current, is_package), key=lambda item: item.line)


def _imports(source: str, current: str, is_package: bool) -> Iterator[Import]:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node.module, node.level, current, is_package)
            yield Import(target, tuple(alias.name for alias in node.names), node.lineno)
        elif isinstance(node, ast.Call) and node.args:
            function = node.func
            called = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
            first = node.args[0]
            if called in ("import_module", "__import__") and isinstance(first, ast.Constant):
                if isinstance(first.value, str):
                    yield Import(_resolve(first.value.lstrip("."), len(first.value) - len(first.value.lstrip(".")),
                                          current, is_package), (), node.lineno)  # fmt: skip


def declared_all(path: Path) -> set[str]:
    """The names a module's ``__all__`` lists, read from its source (the boundary is checked without importing)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return {str(item) for item in ast.literal_eval(node.value)}
    raise AssertionError(f"{path} has no literal __all__")


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _targets(item: Import) -> list[str]:
    """The modules an import may load: the module, and each imported name as a possible submodule."""
    return [item.module, *(f"{item.module}.{name}" for name in item.names)]


def plugin_violations(source: str, current: str, is_package: bool) -> list[str]:
    """What a module under plugins/ or credentials/ imports against rules 1 to 4."""
    api, commands_api = declared_all(ROOT / "core" / "__init__.py"), declared_all(ROOT / "core" / "commands.py")
    in_commands_package = "commands" in current.split(".")[3:]  # offramp.plugins.PLUGIN.commands...
    problems = []
    for item in imports_of(source, current, is_package):
        where = f"{current}:{item.line}"
        if not _within(item.module, API_MODULE):
            continue
        loaded = _targets(item)
        forbidden = [target for target in loaded if any(_within(target, bad) for bad in FORBIDDEN_FOR_PLUGINS)]
        private = [target for target in loaded if any(part.startswith("_") for part in target.split(".")[2:])]
        private = [target for target in private if target.rsplit(".", 1)[-1] != "__version__"]
        if forbidden or (private and item.module != API_MODULE):
            problems.append(f"{where} imports {(forbidden or private)[0]}, which a plugin may not import")
            continue
        if _within(item.module, TESTING_MODULE):
            problems.append(f"{where} imports {item.module}: only a plugin's tests (under tests/) may")
        elif _within(item.module, COMMANDS_MODULE):
            if not in_commands_package:
                problems.append(f"{where} imports {item.module} outside a plugin's commands package")
            elif item.module != COMMANDS_MODULE or not item.names:
                problems.append(f"{where} imports the module {item.module}; import names from it")
            else:
                outside = sorted(set(item.names) - commands_api)
                if outside:
                    problems.append(f"{where} imports {', '.join(outside)} from {item.module}, not in its __all__")
        elif not item.names:
            if item.module != API_MODULE:  # `import offramp.core` is the API itself
                problems.append(f"{where} imports the module {item.module}; import names of offramp.core's API")
        else:
            outside = sorted(set(item.names) - api)
            if outside:
                problems.append(f"{where} imports {', '.join(outside)} from {item.module}: not in offramp.core.__all__")
    return problems


def core_violations(source: str, current: str, is_package: bool) -> list[str]:
    """What a module under core/ imports against rule 5."""
    problems = []
    for item in imports_of(source, current, is_package):
        found = [target for target in _targets(item) if any(_within(target, bad) for bad in FORBIDDEN_FOR_CORE)]
        if found:
            problems.append(f"{current}:{item.line} imports {found[0]}, a plugin package")
    return problems


def _sources(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def test_plugins_and_credentials_import_only_the_plugin_api() -> None:
    paths = _sources("plugins", "credentials")
    assert len(paths) > 20, "the walk found the plugins' sources"
    problems = [
        problem for path in paths for problem in plugin_violations(path.read_text(), *module_name(path))
    ]  # fmt: skip
    assert problems == []


def test_core_imports_no_plugin() -> None:
    paths = _sources("core")
    assert len(paths) > 40, "the walk found core's sources"
    problems = [problem for path in paths for problem in core_violations(path.read_text(), *module_name(path))]
    assert problems == []


# The walk itself, on sources written for the purpose: each forbidden form is found, each allowed one passes.

FORBIDDEN = """\
import offramp.core
from offramp.core import PluginSettings


def late():
    from offramp.core.services.context import Context
    import offramp.core.state.models
    return Context


def hidden():
    import importlib
    return importlib.import_module("offramp.core.runner.engine")


from offramp.core import cli
from ...core.runner import types
from offramp.core.errors import ConfigError, RowRejected
import offramp.core.errors
from offramp.core.sources._allowed import DEMO_DATABASE
from offramp.core.testing import PluginWorkspace
from offramp.core.commands import Offramp
"""


def test_the_walk_finds_every_forbidden_import_of_a_plugin_module() -> None:
    problems = plugin_violations(FORBIDDEN, "offramp.plugins.acme.sender", False)

    found = "\n".join(problems)
    assert len(problems) == 10, found
    for needle in (
        ":6 imports offramp.core.services.context",  # inside a function
        ":7 imports offramp.core.state.models",
        ":13 imports offramp.core.runner.engine",  # importlib.import_module("...")
        ":16 imports offramp.core.cli",  # from offramp.core import cli: a forbidden submodule
        ":17 imports offramp.core.runner",  # relative: offramp.plugins.acme -> offramp
        ":18 imports RowRejected from offramp.core.errors",  # a name outside offramp.core.__all__
        ":19 imports the module offramp.core.errors",
        ":20 imports offramp.core.sources._allowed",
        ":21 imports offramp.core.testing",
        ":22 imports offramp.core.commands outside a plugin's commands package",
    ):
        assert needle in found, found


def test_a_command_module_may_use_the_commands_facade_and_nothing_else_of_core() -> None:
    source = "from offramp.core.commands import Offramp, say\nfrom offramp.core.commands import build_context\n"
    problems = plugin_violations(source, "offramp.plugins.acme.commands.hello", False)

    assert problems == ["offramp.plugins.acme.commands.hello:2 imports build_context from offramp.core.commands, "
                        "not in its __all__"]  # fmt: skip


def test_the_walk_finds_a_plugin_import_in_core() -> None:
    source = (
        "def demo():\n"
        "    from offramp.plugins.tiktok.emulator import run_emulator\n"
        "import importlib\n"
        "importlib.import_module('offramp.credentials.tiktok')\n"
        "from offramp import plugins\n"
        "from offramp.core import errors\n"
    )

    problems = core_violations(source, "offramp.core.cli.app", False)

    assert [problem.split(" imports ")[1] for problem in problems] == [
        "offramp.plugins.tiktok.emulator, a plugin package",
        "offramp.credentials.tiktok, a plugin package",
        "offramp.plugins, a plugin package",  # from offramp import plugins: the name is a submodule
    ]


@pytest.mark.parametrize(
    ("current", "is_package", "written", "resolved"),
    [
        ("offramp.plugins.tiktok.sender", False, ".settings", "offramp.plugins.tiktok.settings"),
        ("offramp.plugins.tiktok", True, ".settings", "offramp.plugins.tiktok.settings"),
        ("offramp.plugins.tiktok.commands.demo", False, "..emulator", "offramp.plugins.tiktok.emulator"),
    ],
)
def test_relative_imports_resolve_against_the_package(current, is_package, written, resolved) -> None:
    level = len(written) - len(written.lstrip("."))
    (item,) = imports_of(f"from {'.' * level} import {written.lstrip('.')}\n", current, is_package)
    assert f"{item.module}.{item.names[0]}" == resolved
