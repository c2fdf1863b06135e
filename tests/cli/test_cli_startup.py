"""Start-up: `offramp --version` and `offramp --help` load none of the heavy libraries nor a plugin's models.

Each command runs in a fresh process (``python -m offramp.core.cli``, what the console script runs), which prints
the modules it imported when it exits; the test reads that list. No time is asserted: the benchmark
(tests/benchmarks/bench_startup.py) measures the time.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from offramp.core.cli.app import CORE

# What `--version` and `--help` must not load: the state store's and the sources' libraries, the HTTP client, and
# the TikTok plugin's pydantic models (its settings and run options).
HEAVY = ("sqlalchemy", "alembic", "duckdb", "httpx", "pyarrow", "offramp.plugins.tiktok.settings",
         "offramp.plugins.tiktok.options")  # fmt: skip

# Runs the CLI as `python -m offramp.core.cli ARGS` does, then prints sys.modules on stderr as the process exits
# (atexit runs after click's SystemExit), after a marker so that the command's own output cannot be taken for it.
PROBE = """\
import atexit, runpy, sys
atexit.register(lambda: sys.stderr.write("\\nIMPORTED " + " ".join(sorted(sys.modules)) + "\\n"))
sys.argv = ["offramp", *sys.argv[1:]]
runpy.run_module("offramp.core.cli", run_name="__main__")
"""


def imported_by(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OFFRAMP_")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    marker = result.stderr.rfind("\nIMPORTED ")
    assert marker >= 0, result.stderr
    return result, set(result.stderr[marker:].split()[1:])


def loaded(modules: set[str], package: str) -> bool:
    return package in modules or any(name.startswith(package + ".") for name in modules)


# --help reads each contributed command's help from its CommandContribution, so it imports the contributing module:
# offramp.core.commands and the TikTok plugin's command modules import what they run with when they run.
@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help_load_no_heavy_library_nor_a_plugin_model(args):
    result, modules = imported_by(*args)

    assert result.returncode == 0, result.stderr
    assert [name for name in HEAVY if loaded(modules, name)] == []


def test_help_still_lists_every_core_and_contributed_command():
    result, _ = imported_by("--help")

    listed = result.stdout.split("Commands:", 1)[1]
    names = {line.split()[0] for line in listed.splitlines() if line.startswith("  ") and line.strip()}
    assert names == {*CORE, "demo", "bench", "emulator"}


def test_version_loads_no_command_module():
    result, modules = imported_by("--version")

    assert result.stdout.startswith("offramp ")
    assert sorted(f"offramp.core.cli.{entry.module}" for entry in CORE.values()
                  if f"offramp.core.cli.{entry.module}" in modules) == []  # fmt: skip


@pytest.mark.parametrize("name", sorted(CORE))
def test_the_help_listed_without_loading_a_command_is_its_own_help(cli, name):
    """`offramp --help` shows each core command's line from app.CORE; it must be the command's own help."""
    from typer.main import get_command

    from offramp.core.cli import app

    command = get_command(app).get_command(None, name)  # type: ignore[attr-defined, arg-type]

    own = (command.help or "").split("\n\n", 1)[0].replace("\n", " ").strip()
    assert own == CORE[name].help, f"update the help of {name!r} in core/cli/app.py CORE"


def test_importing_the_core_and_the_tiktok_package_loads_no_model_until_a_name_is_used():
    code = (
        "import sys, offramp.core, offramp.plugins.tiktok\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pydantic', 'sqlalchemy', 'offramp.plugins.tiktok.'))))\n"
        "from offramp.plugins.tiktok import DESTINATION_TYPE\n"
        "print(DESTINATION_TYPE.name, 'offramp.plugins.tiktok.settings' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)

    assert result.stdout.splitlines() == ["[]", "tiktok-ads-offline-events True"]
