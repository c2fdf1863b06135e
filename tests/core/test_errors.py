"""offramp's errors carry a message, a hint and structured fields, and survive pickling (process pools)."""

from __future__ import annotations

import pickle

import pytest

from offramp.core import errors
from offramp.core.errors import (
    ConfigError,
    DestinationError,
    ObjectInUseError,
    OfframpError,
    SettingsValidationError,
    Terminal,
    Transient,
)

OFFRAMP_ERRORS = [
    cls for name in errors.__all__ if isinstance(cls := getattr(errors, name), type) and issubclass(cls, OfframpError)
]
# SettingsValidationError takes (subject, errors); it has its own test.
PLAIN_ERRORS = [cls for cls in OFFRAMP_ERRORS if cls is not SettingsValidationError]


class RateLimited(DestinationError, Transient):
    """A vendor error with a retry marker, as a destination plugin would define it."""


class GrantRevoked(DestinationError, Terminal):
    pass


def round_trip(error: BaseException) -> BaseException:
    return pickle.loads(pickle.dumps(error))


def test_every_error_class_derives_from_the_root():
    names = {cls.__name__ for cls in OFFRAMP_ERRORS}
    assert {"ConfigError", "PluginError", "StateError", "SecretKeyError", "DestinationError"} <= names
    assert set(errors.__all__) - names == {"Terminal", "Transient"}  # the markers


def test_the_message_says_what_and_the_hint_what_next():
    error = ConfigError("the SQL is empty", hint="pass --sql TEXT")

    assert str(error) == "the SQL is empty (pass --sql TEXT)"
    assert error.args == ("the SQL is empty",)
    assert str(ConfigError("no hint")) == "no hint"
    assert ConfigError("no hint").hint is None


def test_fields_are_attributes():
    error = ObjectInUseError("credential 'c' is used", hint="delete them", users=["a", "b"])

    assert error.users == ["a", "b"]
    assert error.fields == {"users": ["a", "b"]}


@pytest.mark.parametrize("cls", PLAIN_ERRORS, ids=lambda cls: cls.__name__)
def test_every_error_survives_a_pickle_round_trip(cls):
    error = cls("something went wrong", hint="do this next", code=40002, names=["x", "y"])

    copy = round_trip(error)

    assert type(copy) is cls
    assert copy.message == "something went wrong"
    assert copy.hint == "do this next"
    assert copy.fields == {"code": 40002, "names": ["x", "y"]}
    assert copy.code == 40002
    assert copy.names == ["x", "y"]
    assert str(copy) == str(error)
    assert copy.args == error.args


def test_an_error_without_hint_or_fields_survives_pickling():
    copy = round_trip(ConfigError("bare"))

    assert (copy.message, copy.hint, copy.fields, str(copy)) == ("bare", None, {}, "bare")


def test_a_settings_validation_error_keeps_every_field_error():
    problems = [("advertiser_id", "digits only"), ("batch_size", "at most 1000")]
    error = SettingsValidationError("destination 'd' (tiktok-ads-offline-events)", problems, hint="see the fields")

    copy = round_trip(error)

    assert type(copy) is SettingsValidationError
    assert isinstance(copy, ConfigError)
    assert copy.errors == problems
    assert copy.subject == "destination 'd' (tiktok-ads-offline-events)"
    assert copy.hint == "see the fields"
    assert copy.message == (
        "invalid settings for destination 'd' (tiktok-ads-offline-events): "
        "advertiser_id: digits only; batch_size: at most 1000"
    )
    assert str(copy) == str(error)


@pytest.mark.parametrize(("cls", "marker"), [(RateLimited, Transient), (GrantRevoked, Terminal)])
def test_retry_markers_survive_pickling(cls, marker):
    copy = round_trip(cls("vendor said no", hint="wait", code=40100))

    assert isinstance(copy, marker)
    assert isinstance(copy, DestinationError)
    assert copy.code == 40100
    assert copy.hint == "wait"


def test_a_pickled_error_can_be_raised_and_caught_by_its_class():
    copy = round_trip(ObjectInUseError("in use", hint="free it", users=["d1"]))

    with pytest.raises(ObjectInUseError, match="in use") as raised:
        raise copy
    assert raised.value.users == ["d1"]
