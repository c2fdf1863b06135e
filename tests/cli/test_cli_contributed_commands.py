"""Commands plugins contribute (entry point group ``offramp.commands``): the TikTok plugin's, and a third party's.

The third party is a real distribution on ``sys.path`` (its ``.dist-info`` with ``entry_points.txt``) of a process
of its own, so that the CLI is built exactly as a user's ``offramp`` builds it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HELLO_MODULE = '''\
from typing import Annotated

import typer

from offramp.core.commands import CommandContribution, Offramp, say


def hello(name: Annotated[str, typer.Option(help="Who to greet.")] = "world") -> None:
    """Greet, and say where offramp's home is."""
    say(f"hello {name} from {Offramp.from_environment().home.name}")


greetings = typer.Typer(help="Greetings.")
greetings.command("formal")(lambda: say("good day"))

HELLO = CommandContribution(name="hello", help="Say hello.", app=hello)
GREETINGS = CommandContribution(name="greetings", help="More greetings.", app=greetings)
RUN = CommandContribution(name="run", help="Takes the name of a core command.", app=hello)
MISNAMED = CommandContribution(name="other-name", help="Named unlike its entry point.", app=hello)
NOT_A_CONTRIBUTION = hello
'''

ENTRY_POINTS = """\
[offramp.commands]
hello = acme_commands:HELLO
greetings = acme_commands:GREETINGS
run = acme_commands:RUN
misnamed = acme_commands:MISNAMED
plain = acme_commands:NOT_A_CONTRIBUTION
missing = acme_commands_gone:NOTHING
"""


@pytest.fixture
def acme(tmp_path: Path, offramp_home: Path) -> dict[str, str]:
    """A distribution contributing commands (good and bad ones); the environment of a process that has it."""
    site = tmp_path / "site"
    info = site / "acme_commands-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-commands\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "acme_commands.py").write_text(HELLO_MODULE)
    env = {**os.environ, "OFFRAMP_HOME": str(offramp_home)}
    env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def offramp(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "offramp.core.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_the_tiktok_plugin_contributes_demo_bench_and_emulator(cli, cli_json):
    listed = {(p["kind"], p["name"]): p for p in cli_json("plugins", "list")}

    for name in ("demo", "bench", "emulator"):
        assert listed[("command", name)]["status"] == "ok"
        assert listed[("command", name)]["distribution"] == "offramp"
    assert "tiktok" in cli.ok("emulator", "--help").stdout
    assert "--rows" in cli.ok("bench", "--help").stdout


def test_a_third_party_command_runs_and_the_broken_ones_are_listed_with_their_reason(acme, initialized):
    hello = offramp(acme, "hello", "--name", "acme")
    formal = offramp(acme, "greetings", "formal")
    listed = offramp(acme, "plugins", "list", "--json")

    assert hello.returncode == 0, hello.stderr
    assert hello.stdout == f"hello acme from {initialized.name}\n"
    assert formal.stdout == "good day\n"
    plugins = {(p["kind"], p["name"]): p for p in json.loads(listed.stdout)}
    assert plugins[("command", "hello")]["status"] == "ok"
    assert plugins[("command", "hello")]["distribution"] == "acme-commands"
    reasons = {name: plugins[("command", name)].get("reason", "") for name in ("run", "misnamed", "plain", "missing")}
    assert "the name 'run' is taken by another command" in reasons["run"]
    assert "entry point is named 'misnamed' but the command declares 'other-name'" in reasons["misnamed"]
    assert "must point at an offramp.core.commands.CommandContribution, got function" in reasons["plain"]
    assert "ModuleNotFoundError" in reasons["missing"]
    assert all(plugins[("command", name)]["status"] == "broken" for name in reasons)
    # The core command keeps its own behaviour; the broken contributions do not stop the CLI.
    assert "Run an orchestration" in offramp(acme, "run", "--help").stdout
    table = offramp(acme, "plugins", "list").stdout
    assert "broken: PluginError: the name 'run' is taken by another command" in table


def test_the_cli_lists_a_core_command_for_every_name_it_reserves(cli):
    from offramp.core.cli.common import CORE_COMMANDS

    listed = cli.ok("--help").stdout
    for name in CORE_COMMANDS:
        assert f" {name} " in listed, name
