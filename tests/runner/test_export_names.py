"""Exported variable names are unique, and one variable never silently feeds two secrets (issue 11, item 4).

`shop-token`, `shop_token` and `shop.token` all exported ``env:SHOP_TOKEN_TOKEN``, so applying the file with that
variable set made three secrets one. Export now gives each secret its own variable; apply refuses a variable read
by two different secrets unless the file lists it under ``shared_secret_variables``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from test_bad_config import snapshot

TOKENS = {"shop-token": "tok-dash-1", "shop_token": "tok-underscore-2", "shop.token": "tok-dot-3"}


@pytest.fixture
def three(cli: Any, store: str) -> str:
    """Three static-token credentials whose names differ only in punctuation, their tokens given as values."""
    cli.ok("init")
    for name, token in TOKENS.items():
        cli.ok("credentials", "add", name, "--type", "static-token", "--set", f"token={token}")
    return store


def exported_variables(cli: Any) -> dict[str, str]:
    document = yaml.safe_load(cli.ok("export").stdout)
    return {c["name"]: c["settings"]["token"].removeprefix("env:") for c in document["credentials"]}


def test_export_gives_each_secret_its_own_variable_deterministically(cli: Any, three: str) -> None:
    variables = exported_variables(cli)
    assert len(set(variables.values())) == 3, variables
    assert all(variable.startswith("SHOP_TOKEN_TOKEN_") for variable in variables.values()), variables
    assert exported_variables(cli) == variables  # the same store exports the same names
    assert "shared_secret_variables" not in cli.ok("export").stdout


def test_the_export_applied_with_its_variables_keeps_three_different_secrets(
    cli: Any, three: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stored_secrets: Any
) -> None:
    variables = exported_variables(cli)
    path = tmp_path / "export.yaml"
    path.write_text(cli.ok("export").stdout)
    for name, variable in variables.items():
        monkeypatch.setenv(variable, TOKENS[name] + "-rotated")
    cli.ok("apply", "-f", str(path))
    assert {name: stored_secrets(name)["token"] for name in TOKENS} == {
        name: token + "-rotated" for name, token in TOKENS.items()
    }


def shared(cli: Any, tmp_path: Path, *, marked: bool) -> Any:
    document = {
        "workspace": "production",
        "credentials": [
            {"name": name, "type": "static-token", "settings": {"token": "env:SHOP_TOKEN_TOKEN"}} for name in TOKENS
        ],
    }
    if marked:
        document["shared_secret_variables"] = ["SHOP_TOKEN_TOKEN"]
    path = tmp_path / "shared.yaml"
    path.write_text(yaml.safe_dump(document))
    return cli("apply", "-f", str(path))


def test_apply_refuses_one_variable_feeding_two_secrets(
    cli: Any, three: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stored_secrets: Any
) -> None:
    """What today's export of these three credentials says: one variable for all three."""
    monkeypatch.setenv("SHOP_TOKEN_TOKEN", "one-for-all")
    before = snapshot()
    shared(cli, tmp_path, marked=False).one_line_error(
        "env:SHOP_TOKEN_TOKEN feeds credential 'shop-token' token, credential 'shop_token' token, "
        "credential 'shop.token' token",
        "give each secret its own variable", "shared_secret_variables",
    )  # fmt: skip
    assert snapshot() == before
    assert {name: stored_secrets(name)["token"] for name in TOKENS} == TOKENS


def test_a_variable_marked_shared_feeds_several_secrets_and_exports_so(
    cli: Any, three: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stored_secrets: Any
) -> None:
    monkeypatch.setenv("SHOP_TOKEN_TOKEN", "one-for-all")
    result = shared(cli, tmp_path, marked=True)
    assert result.exit_code == 0, result.output
    assert {name: stored_secrets(name)["token"] for name in TOKENS} == dict.fromkeys(TOKENS, "one-for-all")
    document = yaml.safe_load(cli.ok("export").stdout)
    assert document["shared_secret_variables"] == ["SHOP_TOKEN_TOKEN"]
    assert {c["settings"]["token"] for c in document["credentials"]} == {"env:SHOP_TOKEN_TOKEN"}
    path = tmp_path / "again.yaml"
    path.write_text(cli.ok("export").stdout)
    assert "Nothing to do" in cli.ok("apply", "-f", str(path)).stdout  # the export applies as it is
