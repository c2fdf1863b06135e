"""The settings of the built-in TikTok types, as users see and rely on them.

`offramp plugins show` is how a user learns what to set; ``validate_settings`` is what every add, update and
apply goes through, and it must report every bad field at once so a config is fixed in one round trip.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import SecretStr

from offramp.core import validate_settings
from offramp.core.errors import SettingsValidationError
from offramp.credentials.tiktok import TikTokOfflineEventsCredentialSettings
from offramp.plugins.tiktok.settings import TikTokOfflineEventsDestinationSettings

DESTINATION_SUBJECT = "destination 'tiktok-main' (tiktok-ads-offline-events)"
CREDENTIAL_SUBJECT = "credential 'tiktok-app' (tiktok-offline-events)"


def _settings_table(text: str, title: str = "Settings") -> dict[str, list[str]]:
    """The rows of the table under ``title`` by field name; a description wrapped onto extra lines is joined back."""
    rows: dict[str, list[str]] = {}
    last: list[str] | None = None
    inside = False
    for line in text.splitlines():
        if "│" not in line and "┃" not in line and "━" not in line:
            inside = line.startswith(title)
            continue
        if not inside or "│" not in line:
            continue
        cells = [cell.strip() for cell in line.split("│")]
        if cells[0]:
            last = rows[cells[0]] = cells
        elif last is not None:  # continuation line of a wrapped cell
            last[:] = [f"{a} {b}".strip() for a, b in zip(last, cells, strict=True)]
    return rows


def _show_json(cli: Any, name: str) -> dict[str, dict[str, Any]]:
    shown = json.loads(cli.ok("plugins", "show", name, "--json").stdout)
    return {field["name"]: field for field in shown["fields"]}


# --- what `offramp plugins show` tells the user --------------------------------------------------------------


def test_show_credential_type_lists_every_field(cli: Any) -> None:
    rows = _settings_table(cli.ok("plugins", "show", "tiktok-offline-events").stdout)
    # field: (type, required, default, secret)
    assert {name: row[1:5] for name, row in rows.items()} == {
        "app_id": ["string", "yes", "", "no"],
        "app_secret": ["string", "yes", "", "yes"],
        "refresh_token": ["string", "no", "-", "yes"],
        "access_token": ["string", "no", "-", "yes"],
        "api_base_url": ["string", "no", "'https://business-api.tiktok.com'", "no"],
        "auth_url": ["string", "no", "'https://business-api.tiktok.com/portal/auth'", "no"],
    }
    assert all(row[5] for row in rows.values()), "every field has a description"

    fields = _show_json(cli, "tiktok-offline-events")
    assert list(fields) == ["app_id", "app_secret", "refresh_token", "access_token", "api_base_url", "auth_url"]
    secrets = {name for name, field in fields.items() if field["secret"]}
    assert secrets == {"app_secret", "refresh_token", "access_token"}
    assert fields["api_base_url"]["default"] == "https://business-api.tiktok.com"


def test_show_destination_type_lists_every_field(cli: Any) -> None:
    text = cli.ok("plugins", "show", "tiktok-ads-offline-events").stdout
    assert "max_batch_size: 1000" in text
    rows = _settings_table(text)
    assert set(rows) == {
        "advertiser_id",
        "event_set_id",
        "event_set_name",
        "event_source",
        "auto_tracking",
        "fixed_event_name",
        "limited_data_use",
        "partner_name",
        "batch_size",
    }
    assert rows["advertiser_id"][1:3] == ["string (matching ^[0-9]+$)", "yes"]
    assert rows["event_source"][1:4] == ["offline|web", "no", "'offline'"]
    assert rows["batch_size"][1:4] == ["integer (>= 1, <= 1000)", "no", "1000"]
    assert rows["auto_tracking"][1:4] == ["boolean", "no", "False"]
    assert rows["limited_data_use"][1:4] == ["boolean", "no", "False"]
    assert "ensure-event-set" in rows["event_set_id"][5], "a wrapped description is printed whole"
    assert all(row[4] == "no" for row in rows.values()), "the destination holds no secrets"
    assert all(row[5] for row in rows.values()), "every field has a description"
    # The orchestration options this destination type reads are listed apart from its settings.
    run_options = _settings_table(text, "Run options")
    assert set(run_options) == {"default_phone_region", "event_name_map", "attribution_window_days", "test_event_code"}
    assert run_options["attribution_window_days"][1:4] == ["integer (>= 1, <= 365)", "no", "28"]

    fields = _show_json(cli, "tiktok-ads-offline-events")
    assert fields["batch_size"]["default"] == 1000
    assert [name for name, field in fields.items() if field["required"]] == ["advertiser_id"]


# --- validate_settings: what add, update and apply go through ----------------------------------------------------


def _problems(model: Any, values: dict[str, Any], subject: str) -> dict[str, str]:
    with pytest.raises(SettingsValidationError) as raised:
        validate_settings(model, values, subject)
    errors: list[tuple[str, str]] = raised.value.errors  # type: ignore[attr-defined]
    problems = dict(errors)
    assert len(problems) == len(errors), f"one problem per field expected: {errors}"
    for field in problems:
        assert f"{field}:" in str(raised.value), "the message names every bad field"
    return problems


def test_every_bad_field_is_reported_at_once() -> None:
    problems = _problems(
        TikTokOfflineEventsDestinationSettings,
        {"advertiser_id": "abc", "batch_size": 5000, "event_sorce": "offline"},
        DESTINATION_SUBJECT,
    )
    assert set(problems) == {"advertiser_id", "batch_size", "event_sorce"}
    assert "1000" in problems["batch_size"]
    assert "^[0-9]+$" in problems["advertiser_id"]
    assert problems["event_sorce"].startswith("unknown field")
    assert "event_source" in problems["event_sorce"], "the unknown-field message lists the valid fields"


def test_cross_field_rules_are_reported_with_the_other_errors() -> None:
    problems = _problems(
        TikTokOfflineEventsDestinationSettings,
        {"advertiser_id": "7012345678", "event_set_id": "ABC123", "fixed_event_name": "Dance", "batch_size": 0},
        DESTINATION_SUBJECT,
    )
    assert set(problems) == {"event_set_id", "fixed_event_name", "batch_size"}
    assert "digits only" in problems["event_set_id"]
    assert "standard events only" in problems["fixed_event_name"]
    assert "CompletePayment" in problems["fixed_event_name"], "the message lists the events that are accepted"


def test_missing_required_fields_are_named() -> None:
    assert _problems(TikTokOfflineEventsDestinationSettings, {}, DESTINATION_SUBJECT) == {
        "advertiser_id": "required, not set"
    }
    problems = _problems(TikTokOfflineEventsCredentialSettings, {}, CREDENTIAL_SUBJECT)
    assert set(problems) == {"app_id", "app_secret"}
    assert problems["app_id"].startswith("required")
    assert problems["app_secret"].startswith("required")


def test_error_points_at_the_type_description() -> None:
    with pytest.raises(SettingsValidationError, match=re.escape("offramp plugins show tiktok-ads-offline-events")):
        validate_settings(TikTokOfflineEventsDestinationSettings, {"advertiser_id": "x"}, DESTINATION_SUBJECT)


def test_valid_offline_settings_get_their_defaults() -> None:
    settings = validate_settings(
        TikTokOfflineEventsDestinationSettings,
        {"advertiser_id": "7012345678", "event_set_id": "7300000000000000001", "fixed_event_name": "Purchase"},
        DESTINATION_SUBJECT,
    )
    assert isinstance(settings, TikTokOfflineEventsDestinationSettings)
    assert settings.event_source == "offline"
    assert settings.batch_size == 1000
    assert settings.auto_tracking is False
    assert settings.limited_data_use is False


@pytest.mark.parametrize("event_set_id", ["7300000000000000001", "1"])
def test_offline_event_set_id_accepts_digits(event_set_id: str) -> None:
    validate_settings(
        TikTokOfflineEventsDestinationSettings,
        {"advertiser_id": "1", "event_source": "offline", "event_set_id": event_set_id},
        DESTINATION_SUBJECT,
    )


@pytest.mark.parametrize("event_set_id", ["CABCDEFGH12345", "73000-0001", " 7300000001", "7e10"])
def test_offline_event_set_id_must_be_digits(event_set_id: str) -> None:
    problems = _problems(
        TikTokOfflineEventsDestinationSettings,
        {"advertiser_id": "1", "event_source": "offline", "event_set_id": event_set_id},
        DESTINATION_SUBJECT,
    )
    assert set(problems) == {"event_set_id"}


def test_web_event_source_takes_a_pixel_code() -> None:
    settings = validate_settings(
        TikTokOfflineEventsDestinationSettings,
        {"advertiser_id": "1", "event_source": "web", "event_set_id": "CABCDEFGH12345"},
        DESTINATION_SUBJECT,
    )
    assert settings.event_set_id == "CABCDEFGH12345"  # type: ignore[attr-defined]
    problems = _problems(
        TikTokOfflineEventsDestinationSettings,
        {"advertiser_id": "1", "event_source": "web", "event_set_id": "pixel"},
        DESTINATION_SUBJECT,
    )
    assert "pixel code" in problems["event_set_id"]


def test_event_source_is_offline_or_web() -> None:
    problems = _problems(
        TikTokOfflineEventsDestinationSettings, {"advertiser_id": "1", "event_source": "store"}, DESTINATION_SUBJECT
    )
    assert set(problems) == {"event_source"}
    assert "'offline'" in problems["event_source"] and "'web'" in problems["event_source"]


@pytest.mark.parametrize("name", ["Dance", "purchase", "CustomConversion"])
def test_offline_refuses_unknown_fixed_event_names(name: str) -> None:
    problems = _problems(
        TikTokOfflineEventsDestinationSettings, {"advertiser_id": "1", "fixed_event_name": name}, DESTINATION_SUBJECT
    )
    assert set(problems) == {"fixed_event_name"}


@pytest.mark.parametrize("name", ["CompletePayment", "Purchase", "Contact", "SubmitForm"])
def test_offline_accepts_standard_fixed_event_names(name: str) -> None:
    validate_settings(
        TikTokOfflineEventsDestinationSettings, {"advertiser_id": "1", "fixed_event_name": name}, DESTINATION_SUBJECT
    )


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_batch_size_range_ends_are_accepted(batch_size: int) -> None:
    settings = validate_settings(
        TikTokOfflineEventsDestinationSettings, {"advertiser_id": "1", "batch_size": batch_size}, DESTINATION_SUBJECT
    )
    assert settings.batch_size == batch_size  # type: ignore[attr-defined]


@pytest.mark.parametrize("batch_size", [0, 1001, 5000])
def test_batch_size_outside_1_to_1000_is_refused(batch_size: int) -> None:
    problems = _problems(
        TikTokOfflineEventsDestinationSettings, {"advertiser_id": "1", "batch_size": batch_size}, DESTINATION_SUBJECT
    )
    assert set(problems) == {"batch_size"}


def test_credential_secrets_are_secret_and_never_echoed() -> None:
    settings = validate_settings(
        TikTokOfflineEventsCredentialSettings,
        {"app_id": "7000000000001", "app_secret": "app-secret-value", "api_base_url": "http://127.0.0.1:8080/"},
        CREDENTIAL_SUBJECT,
    )
    assert isinstance(settings, TikTokOfflineEventsCredentialSettings)
    assert isinstance(settings.app_secret, SecretStr)
    assert settings.app_secret.get_secret_value() == "app-secret-value"
    assert "app-secret-value" not in repr(settings) and "app-secret-value" not in str(settings)
    assert settings.refresh_token is None and settings.access_token is None
    assert settings.api_base_url == "http://127.0.0.1:8080", "the base URL is kept without a trailing slash"
    assert settings.auth_url == "https://business-api.tiktok.com/portal/auth"

    # A bad value next to secrets, and a misspelled secret field: the message never contains a secret.
    with pytest.raises(SettingsValidationError) as raised:
        validate_settings(
            TikTokOfflineEventsCredentialSettings,
            {"app_id": "", "app_secret": "app-secret-value", "refresh_tokn": "refresh-secret-value"},
            CREDENTIAL_SUBJECT,
        )
    assert {field for field, _ in raised.value.errors} == {"app_id", "refresh_tokn"}  # type: ignore[attr-defined]
    assert "app-secret-value" not in str(raised.value)
    assert "refresh-secret-value" not in str(raised.value)


def test_api_urls_must_be_http() -> None:
    problems = _problems(
        TikTokOfflineEventsCredentialSettings,
        {"app_id": "1", "app_secret": "s", "api_base_url": "business-api.tiktok.com", "auth_url": "ftp://x"},
        CREDENTIAL_SUBJECT,
    )
    assert set(problems) == {"api_base_url", "auth_url"}


def test_cli_reports_every_bad_destination_setting_in_one_line(cli: Any, initialized: Any) -> None:
    cli.ok("credentials", "add", "tiktok-app", "--type", "tiktok-offline-events",
           "--set", "app_id=7000000000001", "--set", "app_secret=app-secret-value")  # fmt: skip
    result = cli(
        "destinations", "add", "tiktok-main", "--type", "tiktok-ads-offline-events", "--credential", "tiktok-app",
        "--no-test", "--set", "advertiser_id=abc", "--set", "batch_size=5000", "--set", "event_sorce=offline",
    )  # fmt: skip
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    for field in ("advertiser_id:", "batch_size:", "event_sorce: unknown field"):
        assert field in line
    assert json.loads(cli.ok("destinations", "list", "--json").stdout) == []
