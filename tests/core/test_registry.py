"""The plugin registry: what a user sees when third-party plugins are installed, and the rules a type must follow.

The installed-plugin tests build real distributions from ``tests/fixtures/plugin_dists`` with pip, install them
into a throwaway venv layered over the dev environment (so offramp itself stays the editable checkout), and run
the real command line there. The dev venv is never modified: other tests run in it at the same time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from offramp.core import (
    CredentialHooks,
    CredentialType,
    DestinationCapabilities,
    DestinationHooks,
    DestinationType,
    PluginError,
    PluginSettings,
    __version__,
)
from offramp.core.errors import PluginConflictError, PluginNotFoundError
from offramp.core.registry import Registry, load_hooks, validate_descriptor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plugin_dists"
BUILT_INS = {
    ("credential", "hmac-secret"),
    ("credential", "static-token"),
    ("credential", "tiktok-offline-events"),
    ("credential", "username-password"),
    ("destination", "dummy"),
    ("destination", "tiktok-ads-offline-events"),
    ("destination", "webhook"),
}


# --- in-process: Registry.register and validate_descriptor ----------------------------------------------------


class GoodSettings(PluginSettings):
    url: str = Field(description="Where to send.")
    token: SecretStr = Field(description="Token.")


# Hooks as a plugin writes them; each test imports them from a real module file (see `plugin_module`).
GOOD_HOOKS = """
from offramp.core import ActionResult, CheckStep, DestinationAction, DestinationHooks

def open_preparer(context):
    raise NotImplementedError

def open_sender(context):
    raise NotImplementedError

def check_connection(context, fix):
    return [CheckStep("reach", "ok", "reached")]

def ping(context):
    return ActionResult("pong")

HOOKS = DestinationHooks(
    open_preparer=open_preparer,
    open_sender=open_sender,
    check_connection=check_connection,
    actions=(DestinationAction(name="ping", help="Says pong.", run=ping),),
)
"""
# Never imported: the tests that use it fail before the registry imports the implementation.
UNUSED = "acme_unused_hooks:HOOKS"


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Write a module of plugin code to a fresh folder on sys.path; returns a function of its source and its
    importable name (a new name each time, so no test sees another's cached module)."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source: str) -> str:
        name = f"acme_hooks_{uuid.uuid4().hex[:12]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        monkeypatch.delitem(sys.modules, name, raising=False)  # removed again after the test
        return name

    return write


@pytest.fixture
def good_hooks(plugin_module: Any) -> str:
    """The implementation reference of valid hooks."""
    return f"{plugin_module(GOOD_HOOKS)}:HOOKS"


def _destination(
    name: str = "acme-webhook", settings: type[Any] = GoodSettings, max_batch: int = 100, implementation: str = UNUSED
) -> Any:
    return DestinationType(
        name=name,
        display_name="Acme",
        version="1.0",
        settings=settings,
        capabilities=DestinationCapabilities(max_batch_size=max_batch),
        implementation=implementation,
    )


def test_registered_type_is_found_by_name_with_its_checked_hooks(good_hooks: str) -> None:
    registry = Registry()
    descriptor = _destination(implementation=good_hooks)
    registry.register("destination", descriptor, "acme-plugin", "acme:DESTINATION_TYPE")

    assert registry.destination_type("acme-webhook") is descriptor
    found = registry.find("acme-webhook")
    assert (found.kind, found.distribution) == ("destination", "acme-plugin")
    assert found.entry_point == "acme:DESTINATION_TYPE"
    hooks = registry.destination_hooks("acme-webhook")
    assert isinstance(hooks, DestinationHooks) and hooks is descriptor.load()
    ping = hooks.action("ping")
    assert ping is not None and ping.run(None).message == "pong"  # type: ignore[arg-type]
    assert hooks.action("pong") is None


def test_a_credential_type_without_implementation_has_empty_hooks() -> None:
    registry = Registry()
    registry.register("credential", CredentialType(name="acme-key", display_name="Acme key", version="1.0",
                                                   settings=GoodSettings))  # fmt: skip
    assert registry.credential_hooks("acme-key") == CredentialHooks()


def test_unknown_type_names_the_installed_ones(good_hooks: str) -> None:
    registry = Registry()
    registry.register("destination", _destination(implementation=good_hooks), "acme-plugin")

    with pytest.raises(PluginNotFoundError, match=r"no destination type named 'nope' \(installed: acme-webhook\)"):
        registry.destination_type("nope")
    with pytest.raises(PluginNotFoundError, match="no credential type named 'acme-webhook'"):
        registry.credential_type("acme-webhook")


def test_duplicate_name_raises_conflict_naming_both_distributions(good_hooks: str) -> None:
    registry = Registry()
    first = _destination("dummy", implementation=good_hooks)
    registry.register("destination", first, "offramp", "offramp.plugins.dummy:DESTINATION_TYPE")

    with pytest.raises(PluginConflictError) as raised:
        second = _destination("dummy", implementation=good_hooks)
        registry.register("destination", second, "acme-plugin", "acme:DESTINATION_TYPE")

    message = str(raised.value)
    assert "'dummy'" in message
    assert "'offramp'" in message and "'acme-plugin'" in message
    assert raised.value.distributions == ("offramp", "acme-plugin")  # type: ignore[attr-defined]
    assert "pip uninstall acme-plugin" in message
    # The first registration is kept; nothing was silently replaced.
    assert registry.destination_type("dummy") is first


@pytest.mark.parametrize("name", ["Acme", "acme_webhook", "acme webhook", "-acme", "acme-", "acme--hook", "1acme", ""])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(PluginError, match="must be lower-case words joined by hyphens") as raised:
        Registry().register("destination", _destination(name))
    assert repr(name) in str(raised.value)


@pytest.mark.parametrize("extra", ["allow", "ignore"])
def test_settings_must_forbid_unknown_fields(extra: str) -> None:
    class Lenient(PluginSettings):
        model_config = ConfigDict(extra=extra)  # type: ignore[typeddict-item]

        url: str = Field(description="Where to send.")

    with pytest.raises(PluginError, match="settings model must set extra='forbid'"):
        Registry().register("destination", _destination(settings=Lenient))


def test_fields_without_description_are_refused_by_name() -> None:
    class Undocumented(PluginSettings):
        url: str = Field(description="Where to send.")
        token: SecretStr
        retries: int = 3

    with pytest.raises(PluginError, match="settings fields without a description: token, retries$"):
        Registry().register("destination", _destination(settings=Undocumented))


def test_settings_must_derive_from_plugin_settings() -> None:
    class Plain(BaseModel):
        model_config = ConfigDict(extra="forbid")

        url: str = Field(description="Where to send.")

    with pytest.raises(PluginError, match=r"settings must be a subclass of offramp\.core\.PluginSettings"):
        Registry().register("destination", _destination(settings=Plain))


def test_descriptor_must_match_its_group() -> None:
    credential = CredentialType(name="acme-key", display_name="Acme key", version="1.0", settings=GoodSettings)

    with pytest.raises(PluginError, match="must point at a DestinationType, got CredentialType"):
        Registry().register("destination", credential)  # type: ignore[arg-type]
    with pytest.raises(PluginError, match="must point at a CredentialType, got NoneType"):
        validate_descriptor("credential", None)


def test_entry_point_name_must_be_the_type_name() -> None:
    with pytest.raises(PluginError, match="entry point is named 'acme' but the type declares 'acme-webhook'"):
        validate_descriptor("destination", _destination(), entry_name="acme")


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(PluginError, match="max_batch_size must be at least 1"):
        Registry().register("destination", _destination(max_batch=0))


def test_a_destination_type_needs_an_implementation() -> None:
    without = DestinationType(
        name="acme-webhook",
        display_name="Acme",
        version="1.0",
        settings=GoodSettings,
        capabilities=DestinationCapabilities(max_batch_size=10),
    )
    with pytest.raises(PluginError, match=r"needs an implementation \('module:HOOKS'\)"):
        Registry().register("destination", without)


# --- hooks are checked when a type is registered, not when a run reaches them ----------------------------------

BAD_HOOKS: dict[str, tuple[str, str]] = {
    "a module of functions, as before 1.0": (
        """
        def open_preparer(settings, options): ...
        def open_sender(ctx, row, settings, options): ...
        """,
        r"{module}: the implementation must be an offramp\.core\.DestinationHooks, got module",
    ),
    "open_sender with the old four arguments": (
        """
        from offramp.core import DestinationHooks
        def open_preparer(context): ...
        def open_sender(ctx, row, settings, options): ...
        HOOKS = DestinationHooks(open_preparer=open_preparer, open_sender=open_sender)
        """,
        r"{module}:HOOKS: DestinationHooks\.open_sender must take 1 positional argument\(s\), but its signature "
        r"is open_sender\(ctx, row, settings, options\)",
    ),
    "check_connection without fix": (
        """
        from offramp.core import DestinationHooks
        def open_preparer(context): ...
        def open_sender(context): ...
        def check_connection(context): ...
        HOOKS = DestinationHooks(open_preparer, open_sender, check_connection=check_connection)
        """,
        r"DestinationHooks\.check_connection must take 2 positional argument\(s\)",
    ),
    "a hook that is not callable": (
        """
        from offramp.core import DestinationHooks
        def open_preparer(context): ...
        HOOKS = DestinationHooks(open_preparer=open_preparer, open_sender="offramp_acme.sender:open")
        """,
        r"DestinationHooks\.open_sender is not callable \(got str\)",
    ),
    "an action with a bad name": (
        """
        from offramp.core import ActionResult, DestinationAction, DestinationHooks
        def open_preparer(context): ...
        def open_sender(context): ...
        def create(context): return ActionResult("created")
        HOOKS = DestinationHooks(open_preparer, open_sender,
                                 actions=(DestinationAction(name="Ensure_Set", help="Creates it.", run=create),))
        """,
        r"action name 'Ensure_Set' must be lower-case words joined by hyphens",
    ),
    "an action named twice": (
        """
        from offramp.core import ActionResult, DestinationAction, DestinationHooks
        def open_preparer(context): ...
        def open_sender(context): ...
        def create(context): return ActionResult("created")
        ACTION = DestinationAction(name="ensure-set", help="Creates it.", run=create)
        HOOKS = DestinationHooks(open_preparer, open_sender, actions=(ACTION, ACTION))
        """,
        r"actions named twice: ensure-set",
    ),
    "an action whose run takes no context": (
        """
        from offramp.core import ActionResult, DestinationAction, DestinationHooks
        def open_preparer(context): ...
        def open_sender(context): ...
        def create(): return ActionResult("created")
        HOOKS = DestinationHooks(open_preparer, open_sender,
                                 actions=(DestinationAction(name="ensure-set", help="Creates it.", run=create),))
        """,
        r"DestinationAction\.ensure-set\.run must take 1 positional argument\(s\)",
    ),
}


@pytest.mark.parametrize("mistake", sorted(BAD_HOOKS))
def test_register_refuses_hooks_that_do_not_check_out(plugin_module: Any, mistake: str) -> None:
    source, message = BAD_HOOKS[mistake]
    module = plugin_module(source)
    implementation = module if "as before 1.0" in mistake else f"{module}:HOOKS"
    registry = Registry()
    with pytest.raises(PluginError, match=message.format(module=module)):
        registry.register("destination", _destination(implementation=implementation), "acme-plugin")
    assert registry.destinations == {}, "a type whose hooks do not check out was registered"


def test_register_raises_when_the_implementation_cannot_be_imported(plugin_module: Any) -> None:
    module = plugin_module("import offramp_acme_missing_dependency\n")
    registry = Registry()
    with pytest.raises(ModuleNotFoundError, match="offramp_acme_missing_dependency"):
        registry.register("destination", _destination(implementation=f"{module}:HOOKS"), "acme-plugin")
    assert registry.destinations == {}


def test_credential_hooks_are_checked_too(plugin_module: Any) -> None:
    module = plugin_module(
        """
        from offramp.core import CredentialHooks, DestinationHooks
        def authorization_url(credential, state): ...
        HOOKS = CredentialHooks(authorization_url=authorization_url)
        WRONG_KIND = DestinationHooks(open_preparer=print, open_sender=print)
        """
    )

    def credential(implementation: str) -> CredentialType:
        return CredentialType("acme-key", "Acme key", "1.0", GoodSettings, implementation=implementation)

    with pytest.raises(PluginError, match=r"CredentialHooks\.authorization_url must take 3 positional argument"):
        Registry().register("credential", credential(f"{module}:HOOKS"))
    with pytest.raises(PluginError, match=r"must be an offramp\.core\.CredentialHooks, got DestinationHooks"):
        Registry().register("credential", credential(f"{module}:WRONG_KIND"))


def test_load_hooks_is_the_check_registration_makes(good_hooks: str, plugin_module: Any) -> None:
    """What the conformance suite calls (offramp.core.testing) gives the registered hooks, and fails the same way."""
    registry = Registry()
    descriptor = _destination(implementation=good_hooks)
    registry.register("destination", descriptor)
    assert load_hooks("destination", descriptor) is registry.destination_hooks("acme-webhook")
    source, message = BAD_HOOKS["open_sender with the old four arguments"]
    module = plugin_module(source)
    with pytest.raises(PluginError, match=message.format(module=module)):
        load_hooks("destination", _destination(implementation=f"{module}:HOOKS"))


# --- listing plugins stays light -------------------------------------------------------------------------------


def test_discovery_does_not_import_the_web_stack(tmp_path: Path) -> None:
    """Registering a type imports its hooks to check them (core/registry.py), and with them its vendor client; the
    web stack that only the emulator and the OAuth listener use must still wait until one of them runs."""
    heavy = ["fastapi", "uvicorn", "starlette"]
    script = (
        "import json, sys\n"
        "import offramp.core.registry\n"
        "registry = offramp.core.registry.discover()\n"
        "assert not registry.broken, registry.broken\n"
        f"print(json.dumps([name for name in {heavy!r} if name in sys.modules]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


# --- real plugin distributions, installed with pip ---------------------------------------------------------------


@dataclass(frozen=True)
class PluginEnv:
    """A venv holding some plugin distributions, layered over the dev environment's offramp."""

    venv: Path

    def offramp(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `offramp ARGS` in this venv with the test's OFFRAMP_HOME (set by the autouse fixture)."""
        env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
        return subprocess.run(
            [str(self.venv / "bin" / "python"), "-m", "offramp.core.cli", *args],
            cwd=Path(env["OFFRAMP_HOME"]).parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.offramp(*args)
        assert result.returncode == 0, f"offramp {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
        return result


def _pip(args: Sequence[str | Path], cwd: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"pip {' '.join(map(str, args))} failed:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def plugin_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Wheels of the fixture distributions, built once (pip builds local folders in place, so from a copy)."""
    root = tmp_path_factory.mktemp("plugin_dists")
    sources = root / "src"
    shutil.copytree(FIXTURES, sources, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    wheels = root / "wheels"
    _pip(["wheel", "--no-deps", "--wheel-dir", wheels, *sorted(sources.iterdir())], cwd=root)
    return {path.name.split("-")[0].replace("_", "-"): path for path in wheels.glob("*.whl")}


def _plugin_env(root: Path, wheels: Sequence[Path]) -> PluginEnv:
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site_packages = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # offramp (and pydantic, typer...) come from the dev environment; processed as a site dir so its
    # editable-install hook runs. The plugins are installed into the venv itself, ahead of it on sys.path.
    dev_site = sysconfig.get_path("purelib")
    (site_packages / "zz_offramp_dev_environment.pth").write_text(f"import site; site.addsitedir({dev_site!r})\n")
    _pip(["--python", venv / "bin" / "python", "install", "--no-deps", "--no-index", *wheels], cwd=root)
    return PluginEnv(venv)


@pytest.fixture(scope="module")
def example_env(tmp_path_factory: pytest.TempPathFactory, plugin_wheels: dict[str, Path]) -> PluginEnv:
    """The working example plugin and the broken plugins installed next to offramp's own types."""
    wheels = [plugin_wheels["offramp-example-plugin"], plugin_wheels["offramp-broken-plugin"]]
    return _plugin_env(tmp_path_factory.mktemp("example_env"), wheels)


@pytest.fixture(scope="module")
def clash_env(tmp_path_factory: pytest.TempPathFactory, plugin_wheels: dict[str, Path]) -> PluginEnv:
    """A plugin that claims the built-in name `dummy`."""
    return _plugin_env(tmp_path_factory.mktemp("clash_env"), [plugin_wheels["offramp-clashing-plugin"]])


def _table_rows(text: str) -> list[list[str]]:
    """Cells of each row of a rich table printed without edges (columns separated by │, in the header by ┃)."""
    return [[cell.strip() for cell in re.split("[│┃]", line)] for line in text.splitlines() if re.search("[│┃]", line)]


@pytest.mark.slow
def test_installed_plugin_is_listed_with_its_distribution(example_env: PluginEnv) -> None:
    rows = _table_rows(example_env.ok("plugins", "list").stdout)
    assert ["destination", "example-webhook", "Example webhook", "1.2.3", "offramp-example-plugin", "ok"] in rows
    assert ["destination", "dummy", "Dummy (for tests)", __version__, "offramp", "ok"] in rows

    listed = {(p["kind"], p["name"]): p for p in json.loads(example_env.ok("plugins", "list", "--json").stdout)}
    example = listed[("destination", "example-webhook")]
    assert example["distribution"] == "offramp-example-plugin"
    assert example["version"] == "1.2.3"
    assert example["status"] == "ok"
    assert example["capabilities"]["max_batch_size"] == 500
    assert example["credential_types"] == ["static-token"]
    assert BUILT_INS <= set(listed)
    assert all(listed[key]["status"] == "ok" and listed[key]["distribution"] == "offramp" for key in BUILT_INS)


# Each broken fixture plugin (tests/fixtures/plugin_dists/offramp-broken-plugin), with the reason it is listed with.
BROKEN_REASONS = {
    "broken-webhook": "ModuleNotFoundError: No module named 'offramp_missing_dependency'",
    "sloppy-webhook": "PluginError: settings model must set extra='forbid'",
    "old-style-webhook": "PluginError: offramp_broken_plugin.old_style: the implementation must be an "
    "offramp.core.DestinationHooks, got module (export an instance: HOOKS = DestinationHooks(...), and name it in "
    "the descriptor's implementation ('module:HOOKS'))",
    "wrong-arity-webhook": "PluginError: offramp_broken_plugin.hooks:WRONG_ARITY: DestinationHooks.open_sender must "
    "take 1 positional argument(s), but its signature is open_sender(ctx, row, settings, options) (see "
    "docs/plugin-author-guide.md for each hook's arguments)",
    "bad-action-webhook": "PluginError: offramp_broken_plugin.hooks:BAD_ACTION: action name 'Ensure_Set' must be "
    "lower-case words joined by hyphens",
    "hooks-dependency-webhook": "ModuleNotFoundError: No module named 'offramp_missing_dependency'",
}


@pytest.mark.slow
def test_broken_plugins_are_listed_with_their_reason_and_the_rest_works(example_env: PluginEnv) -> None:
    result = example_env.ok("plugins", "list")
    assert "Traceback" not in result.stderr
    rows = {row[1]: row for row in _table_rows(result.stdout)}
    assert rows["broken-webhook"][4] == "offramp-broken-plugin"
    assert rows["broken-webhook"][5].startswith("broken: ModuleNotFoundError")
    assert rows["sloppy-webhook"][5].startswith("broken: PluginError")
    assert rows["wrong-arity-webhook"][5].startswith("broken: PluginError")

    listed = json.loads(example_env.ok("plugins", "list", "--json").stdout)
    broken = {p["name"]: p for p in listed if p["status"] == "broken"}
    assert {name: plugin["reason"] for name, plugin in broken.items()} == BROKEN_REASONS
    assert broken["broken-webhook"] == {
        "kind": "destination",
        "name": "broken-webhook",
        "distribution": "offramp-broken-plugin",
        "status": "broken",
        "reason": "ModuleNotFoundError: No module named 'offramp_missing_dependency'",
    }
    ok = {(p["kind"], p["name"]) for p in listed if p["status"] == "ok" and p["kind"] in ("credential", "destination")}
    assert ok == BUILT_INS | {("destination", "example-webhook")}

    # Built-in types keep working next to a broken plugin.
    assert "advertiser_id" in example_env.ok("plugins", "show", "tiktok-ads-offline-events").stdout


@pytest.mark.slow
def test_discover_lists_a_plugin_whose_hooks_do_not_check_out_as_broken(example_env: PluginEnv) -> None:
    """The same through the library: discover() keeps going, and says why for each broken plugin."""
    script = (
        "import json\n"
        "from offramp.core import discover\n"
        "registry = discover()\n"
        "print(json.dumps({'ok': sorted(registry.destinations), "
        "'broken': {b.name: [b.distribution, b.entry_point, b.reason] for b in registry.broken}}))\n"
    )
    result = subprocess.run([str(example_env.venv / "bin" / "python"), "-c", script], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert {name: reason for name, (_, _, reason) in found["broken"].items()} == BROKEN_REASONS
    assert found["broken"]["bad-action-webhook"][:2] == [
        "offramp-broken-plugin",
        "offramp_broken_plugin.hooks:BAD_ACTION_TYPE",
    ]
    assert "example-webhook" in found["ok"] and "dummy" in found["ok"]


@pytest.mark.slow
def test_showing_a_broken_plugin_says_why_in_one_line(example_env: PluginEnv) -> None:
    result = example_env.offramp("plugins", "show", "broken-webhook")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.startswith("offramp: error:")]
    assert len(lines) == 1
    assert "installed but broken: ModuleNotFoundError" in lines[0]
    assert "offramp-broken-plugin" in lines[0]


@pytest.mark.slow
def test_plugins_show_prints_every_field_of_an_installed_plugin(example_env: PluginEnv) -> None:
    text = example_env.ok("plugins", "show", "example-webhook").stdout
    assert "Example webhook (destination type example-webhook, version 1.2.3)" in text
    assert "distribution: offramp-example-plugin" in text
    rows = {row[0]: row for row in _table_rows(text)}
    assert rows["field"] == ["field", "type", "required", "default", "secret", "description"]
    assert rows["url"] == ["url", "string", "yes", "", "no", "Endpoint that receives each batch as JSON."]
    assert rows["signing_secret"] == [
        "signing_secret",
        "string",
        "yes",
        "",
        "yes",
        "Shared secret used to sign each request.",
    ]
    assert rows["method"] == ["method", "POST|PUT", "no", "'POST'", "no", "HTTP method of each request."]
    assert rows["timeout_seconds"] == [
        "timeout_seconds",
        "integer (>= 1, <= 300)",
        "no",
        "30",
        "no",
        "Seconds to wait for the webhook to answer.",
    ]

    shown = json.loads(example_env.ok("plugins", "show", "example-webhook", "--json").stdout)
    assert shown["distribution"] == "offramp-example-plugin"
    assert [(f["name"], f["required"], f["default"], f["secret"]) for f in shown["fields"]] == [
        ("url", True, None, False),
        ("signing_secret", True, None, True),
        ("method", False, "POST", False),
        ("timeout_seconds", False, 30, False),
    ]
    assert all(f["description"] for f in shown["fields"])
    assert shown["schema"]["additionalProperties"] is False


@pytest.mark.slow
def test_installed_plugin_is_usable_as_a_destination_type(example_env: PluginEnv) -> None:
    example_env.ok("init")
    example_env.ok("credentials", "add", "hook-token", "--type", "static-token", "--set", "token=tok-123")

    refused = example_env.offramp(
        "destinations", "add", "hook", "--type", "example-webhook", "--credential", "hook-token",
        "--set", "url=https://hooks.example.com/in", "--set", "signing_secret=s3cret-value",
        "--set", "timeout_seconds=0", "--set", "retries=2",
    )  # fmt: skip
    assert refused.returncode == 1
    assert "timeout_seconds" in refused.stderr and "retries: unknown field" in refused.stderr
    assert "s3cret-value" not in refused.stdout + refused.stderr

    example_env.ok(
        "destinations", "add", "hook", "--type", "example-webhook", "--credential", "hook-token",
        "--set", "url=https://hooks.example.com/in", "--set", "signing_secret=s3cret-value",
    )  # fmt: skip
    shown = example_env.ok("destinations", "show", "hook", "--json").stdout
    assert "example-webhook" in shown
    assert "https://hooks.example.com/in" in shown
    assert "s3cret-value" not in shown


@pytest.mark.slow
@pytest.mark.parametrize(
    "args", [("plugins", "list"), ("plugins", "list", "--json"), ("plugins", "show", "example-webhook")]
)
def test_clashing_names_fail_with_one_line_naming_both_distributions(clash_env: PluginEnv, args: tuple[str]) -> None:
    result = clash_env.offramp(*args)
    assert result.returncode == 1
    if "--json" in args:  # a script reads the error from stdout, as one JSON object
        assert json.loads(result.stdout)["error"].startswith("two destination types are named 'dummy'")
    else:
        assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("offramp: error: two destination types are named 'dummy'")
    assert "'offramp'" in line
    assert "'offramp-clashing-plugin'" in line


@pytest.mark.slow
def test_clashing_names_stop_commands_that_use_plugins(clash_env: PluginEnv) -> None:
    clash_env.ok("init")
    result = clash_env.offramp("credentials", "add", "tok", "--type", "static-token", "--set", "token=abc")
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert "'offramp'" in line and "'offramp-clashing-plugin'" in line


def test_a_test_traffic_option_must_be_one_of_the_run_options() -> None:
    # A sandbox's runs set this option so that the vendor keeps their events apart; one the type does not read
    # would be dropped, and the sandbox's events would go live.
    unread = DestinationType(
        name="acme-webhook",
        display_name="Acme",
        version="1.0",
        settings=GoodSettings,
        capabilities=DestinationCapabilities(max_batch_size=10, test_traffic_option="test_code"),
        implementation="acme:HOOKS",
    )
    with pytest.raises(PluginError, match="test_traffic_option 'test_code' is not one of the run options"):
        Registry().register("destination", unread)
