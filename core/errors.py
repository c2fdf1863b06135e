"""Errors raised by offramp, and how the runner treats them.

Every error offramp raises on purpose derives from :class:`OfframpError`. Its message says what went wrong and
its ``hint`` what to do next; the CLI prints both on one line and exits non-zero.

What the runner does with an error is carried by marker classes, never by parsing messages::

    OfframpError
    ├── ConfigError            a setting, a file or an option is wrong (all field errors at once)
    ├── PluginError            a plugin cannot be loaded, or two plugins claim one name
    ├── StateError             the state store is missing, too new, or an object is missing or in use
    ├── SecretKeyError         no secret key, or the key cannot decrypt what the store holds
    └── DestinationError       a vendor call went wrong (combined with a marker below)

The runner's rules, one per sentence (``tests/runner/test_error_channel.py`` proves each):

- A sender that raises a :class:`Transient` error has sent nothing of the batch: the runner sends the whole batch
  again after a wait, within the run's retry budget.
- A :class:`~offramp.core.destination_api.DeliveryResult` whose ``error`` is :class:`Transient` gives its unsent
  events back: the runner sends them again after the advised wait.
- A sender that raises anything else (:class:`Terminal` or not) stops the run: the batch is recorded as failed
  with reason ``not_sent``, and ``offramp run NAME --resume`` sends it.
- A result whose ``error`` is not :class:`Transient` stops the run the same way, after its sent and failed
  events are recorded.
- A preparer that raises stops the run: the rows it was given are recorded as failed with reason
  ``not_prepared``, so that ``queried = sent + rejected + failed + skipped`` still holds.
- Rejection is data, not an exception: a preparer returns
  :class:`~offramp.core.destination_api.RejectedEvent` items, recorded with their reason, and the run goes on.
- :class:`Terminal` marks an error that retrying cannot help (revoked grant, missing permission); its ``hint``
  says what to do, and the run's summary shows both.
"""

from __future__ import annotations

from typing import Any


class OfframpError(Exception):
    """Root of every error offramp raises on purpose.

    Args:
        message: What went wrong, in one sentence.
        hint: What the user should do next.
        **fields: Structured context (object names, codes) kept as attributes for callers and logs.
    """

    def __init__(self, message: str, *, hint: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.fields = fields
        for key, value in fields.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments do not survive the default pickling of exceptions.
        return (_rebuild, (type(self), self.message, self.hint, self.fields))


def _rebuild(cls: type[OfframpError], message: str, hint: str | None, fields: dict[str, Any]) -> OfframpError:
    error = cls.__new__(cls)
    OfframpError.__init__(error, message, hint=hint, **fields)
    return error


class Transient(Exception):  # noqa: N818 - a marker, read as "this error is transient"
    """Marker: the operation may succeed if retried after a wait.

    The error's message is logged at every retry, before the wait and the attempt (``TikTok unreachable (connection
    refused); retrying in 8 s, attempt 3 of 10``): it names what failed, in a few words, without a URL or a value.
    """


class Terminal(Exception):  # noqa: N818
    """Marker: retrying cannot help; the run must stop."""


class ConfigError(OfframpError):
    """A configuration value, file or command-line option is invalid."""


class SettingsValidationError(ConfigError):
    """Settings failed validation against a plugin's model; ``errors`` lists every bad field."""

    def __init__(self, subject: str, errors: list[tuple[str, str]], *, hint: str | None = None) -> None:
        details = "; ".join(f"{field}: {problem}" for field, problem in errors)
        super().__init__(f"invalid settings for {subject}: {details}", hint=hint, subject=subject, errors=errors)


class PluginError(OfframpError):
    """A plugin could not be loaded or registered."""


class PluginConflictError(PluginError):
    """Two plugins of one kind claim the same name."""


class PluginNotFoundError(PluginError):
    """No plugin of that kind is registered under that name."""


class StateError(OfframpError):
    """The state store cannot serve the request."""


class StoreNotInitializedError(StateError):
    """The state store does not exist yet."""


class SchemaTooNewError(StateError):
    """The state store was written by a newer offramp."""


class ObjectNotFoundError(StateError):
    """A named object does not exist in the workspace."""


class ObjectExistsError(StateError):
    """An object with that name already exists in the workspace."""


class ObjectInUseError(StateError):
    """An object cannot be deleted because others depend on it."""


class SecretKeyError(OfframpError):
    """The secret key is missing or cannot decrypt the stored secrets."""


class DestinationError(OfframpError):
    """A call to a vendor failed; combine with :class:`Transient` or :class:`Terminal`."""


__all__ = [
    "ConfigError",
    "DestinationError",
    "ObjectExistsError",
    "ObjectInUseError",
    "ObjectNotFoundError",
    "OfframpError",
    "PluginConflictError",
    "PluginError",
    "PluginNotFoundError",
    "SchemaTooNewError",
    "SecretKeyError",
    "SettingsValidationError",
    "StateError",
    "StoreNotInitializedError",
    "Terminal",
    "Transient",
]
