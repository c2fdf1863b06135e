"""The wheel a user installs holds every module and data file, and works in a clean virtual environment.

The repository is built the way a release is (sdist, then the wheel from the unpacked sdist), installed with its
dependencies into a fresh venv that cannot see this checkout, and exercised from a directory outside the repo.
A module, subpackage or data file left out of ``[tool.setuptools]`` in pyproject.toml fails here, while the
editable install every other test uses would hide it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# Repository folder -> the import package it installs as (pyproject.toml's package-dir).
PACKAGE_DIRS = {"core": "offramp/core", "credentials": "offramp/credentials", "plugins": "offramp/plugins"}
BUILT_IN_TYPES = {
    ("credential", "tiktok-offline-events"),
    ("credential", "static-token"),
    ("credential", "hmac-secret"),
    ("credential", "username-password"),
    ("destination", "tiktok-ads-offline-events"),
    ("destination", "dummy"),
    ("destination", "webhook"),
    # Commands the TikTok plugin contributes to the CLI (entry point group offramp.commands).
    ("command", "demo"),
    ("command", "bench"),
    ("command", "emulator"),
}
# Local state and caches that are not part of the source tree a release is built from.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".*_cache", ".typecheck"
)

# Runs inside the installed venv: imports every module of the three packages and reports where each came from.
_IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys

# Scripts, not importable modules: `python -m offramp.core.cli` runs __main__, alembic runs env.py.
NOT_IMPORTABLE = {"offramp.core.state.migrations.env"}

def fail(name):
    raise SystemExit(f"cannot walk {name}: {sys.exc_info()[1]!r}")

found = {}
for package_name in ("offramp.core", "offramp.credentials", "offramp.plugins"):
    package = importlib.import_module(package_name)
    found[package_name] = package.__file__
    for info in pkgutil.walk_packages(package.__path__, package_name + ".", onerror=fail):
        if info.name.endswith(".__main__") or info.name in NOT_IMPORTABLE:
            found[info.name] = None
            continue
        found[info.name] = importlib.import_module(info.name).__file__
print(json.dumps(found))
"""


@dataclass(frozen=True)
class Installed:
    """The built wheel and the clean venv it is installed in."""

    source: Path
    wheel: Path
    venv: Path
    outside: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def offramp(self) -> Path:
        return self.venv / "bin" / "offramp"


def _clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment minus anything that would let the venv see this checkout or the dev venv."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")
    }
    env.update(extra)
    return env


def _run(args: Sequence[str | Path], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=env or _clean_env(), capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n"
        f"{result.stderr}"
    )
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    # Build from a copy: an in-tree build writes build/ and egg-info into the checkout other tests are using.
    source = root / "source"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    dist = root / "dist"
    started = time.monotonic()
    _run([sys.executable, "-m", "build", "--outdir", dist, source], cwd=root)
    built = time.monotonic()
    (wheel,) = dist.glob("offramp-*.whl")

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root)
    # The dev venv's pip installs into the clean venv; dependencies come from the configured indexes or pip's
    # cache. --no-compile halves the time (pyarrow, duckdb...); Python compiles what it imports anyway.
    _run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-compile", wheel], cwd=root)
    done = time.monotonic()
    sys.stderr.write(f"\nwheel built in {built - started:.1f}s, installed with dependencies in {done - built:.1f}s\n")

    outside = root / "outside"
    outside.mkdir()
    return Installed(source=source, wheel=wheel, venv=venv, outside=outside)


def _wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def _source_files(source: Path, suffix: str) -> set[str]:
    """Files with ``suffix`` in the source tree's packages, named as they are inside the wheel."""
    names = set()
    for folder, installed_as in PACKAGE_DIRS.items():
        for path in (source / folder).rglob(f"*{suffix}"):
            if "__pycache__" not in path.parts:
                names.add(f"{installed_as}/{path.relative_to(source / folder).as_posix()}")
    return names


def test_wheel_holds_exactly_the_python_files_of_the_source_packages(installed: Installed) -> None:
    in_wheel = {name for name in _wheel_names(installed.wheel) if name.endswith(".py")}
    in_source = _source_files(installed.source, ".py")
    assert in_source, "found no Python files in the source tree"
    assert in_source - in_wheel == set(), "source modules missing from the wheel (add the package to pyproject.toml)"
    assert in_wheel - in_source == set(), "the wheel holds Python files that are not in the source tree"


def test_wheel_holds_migrations_and_type_markers(installed: Installed) -> None:
    names = _wheel_names(installed.wheel)
    versions = {name for name in names if re.fullmatch(r"offramp/core/state/migrations/versions/\w+\.py", name)}
    source_versions = {
        f"offramp/core/state/migrations/versions/{path.name}"
        for path in (installed.source / "core/state/migrations/versions").glob("*.py")
    }
    assert versions == source_versions
    assert any(not name.endswith("__init__.py") for name in versions), "no migration scripts in the wheel"
    assert "offramp/core/state/migrations/env.py" in names
    assert "offramp/core/state/migrations/script.py.mako" in names
    for package in PACKAGE_DIRS.values():
        assert f"{package}/py.typed" in names


def test_every_module_imports_from_the_installed_wheel(installed: Installed) -> None:
    result = _run([installed.python, "-I", "-c", _IMPORT_EVERYTHING], cwd=installed.outside)
    found: dict[str, str | None] = json.loads(result.stdout)

    site_packages = str(installed.venv / "lib")
    imported = {name: path for name, path in found.items() if path is not None}
    outside_venv = {name: path for name, path in imported.items() if not path.startswith(site_packages)}
    assert outside_venv == {}, "modules were imported from outside the clean venv"

    # Every module file of the wheel was reached by the walk (and imported, unless it is a script).
    expected = set()
    for name in _wheel_names(installed.wheel):
        if name.startswith("offramp/") and name.endswith(".py"):
            module = name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            expected.add(module)
    assert set(found) == expected
    assert {"offramp.core.services", "offramp.core.cli.app", "offramp.plugins.tiktok.settings"} <= set(imported)


def test_console_script_runs_from_the_venv(installed: Installed, offramp_home: Path) -> None:
    env = _clean_env(OFFRAMP_HOME=str(offramp_home))
    result = _run([installed.offramp, "--help"], cwd=installed.outside, env=env)
    for command in ("init", "plugins", "credentials", "destinations", "run", "demo", "bench", "emulator"):
        assert command in result.stdout

    version = installed.wheel.name.split("-")[1]
    assert _run([installed.offramp, "--version"], cwd=installed.outside, env=env).stdout.strip() == (
        f"offramp {version}"
    )


def test_plugins_list_shows_the_built_in_types(installed: Installed, offramp_home: Path) -> None:
    env = _clean_env(OFFRAMP_HOME=str(offramp_home))
    result = _run([installed.offramp, "plugins", "list", "--json"], cwd=installed.outside, env=env)
    plugins = json.loads(result.stdout)
    assert {(p["kind"], p["name"]) for p in plugins} == BUILT_IN_TYPES
    assert {(p["status"], p["distribution"]) for p in plugins} == {("ok", "offramp")}


def test_init_applies_the_packaged_migrations(installed: Installed, offramp_home: Path) -> None:
    """`offramp init` runs alembic from the installed package: env.py, the mako template's folder, every version."""
    env = _clean_env(OFFRAMP_HOME=str(offramp_home))
    _run([installed.offramp, "init"], cwd=installed.outside, env=env)

    revisions: dict[str, str | None] = {}
    with zipfile.ZipFile(installed.wheel) as archive:
        for name in archive.namelist():
            if re.fullmatch(r"offramp/core/state/migrations/versions/\d\w*\.py", name):
                text = archive.read(name).decode()
                revision = re.search(r'^revision\b.*?=\s*"([^"]+)"', text, re.MULTILINE)
                down = re.search(r'^down_revision\b.*?=\s*(?:"([^"]+)"|None)', text, re.MULTILINE)
                assert revision and down, f"{name} does not declare revision and down_revision"
                revisions[revision.group(1)] = down.group(1)
    (head,) = set(revisions) - set(revisions.values())

    connection = sqlite3.connect(offramp_home / "offramp.db")
    try:
        (stored,) = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        connection.close()
    assert stored == (head,)
