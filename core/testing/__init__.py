"""Test kit for destination plugins: the conformance suite every destination runs, and its harness protocol.

For tests only: runtime code never imports this package. It does not need pytest, but is written for it (a test
class, a fixture); when pytest is installed, it rewrites the suite's assertions so that failures explain themselves.

A plugin's test module builds a :class:`ConformanceHarness` from its real hooks and a real, emulated or in-memory
vendor, serves it as the ``conformance_harness`` fixture, and mixes :class:`DestinationConformance` into a test
class::

    from collections.abc import Iterator

    import pytest

    from offramp.core.testing import ConformanceHarness, DestinationConformance

    from offramp_acme.testing import AcmeHarness  # yours: implements ConformanceHarness against a fake Acme API


    @pytest.fixture
    def conformance_harness() -> Iterator[ConformanceHarness]:
        with AcmeHarness.start() as harness:  # a fresh vendor per test
            yield harness


    class TestAcmeConformance(DestinationConformance):
        pass

``pytest`` then runs every ``test_*`` method of the suite against the plugin. ``tests/plugins/dummy/
test_dummy_conformance.py`` in offramp's repository is a complete harness for the in-memory ``dummy``
destination. :mod:`offramp.core.testing.checks` has the suite's helpers (cutting a table into odd-sized record
batches, preparing them all, checking texts for secrets) for a plugin's own tests.
"""

try:
    import pytest
except ImportError:  # pragma: no cover - an installed offramp without its development dependencies
    pass
else:
    # The suite's plain `assert`s explain their failures only if pytest rewrites its modules, which must be
    # registered before they are first imported.
    pytest.register_assert_rewrite("offramp.core.testing.conformance", "offramp.core.testing.checks")

from offramp.core.testing.conformance import DestinationConformance  # noqa: E402
from offramp.core.testing.harness import ConformanceHarness  # noqa: E402
from offramp.core.testing.workspace import PluginWorkspace  # noqa: E402

__all__ = ["ConformanceHarness", "DestinationConformance", "PluginWorkspace"]
