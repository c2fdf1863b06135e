"""Test kit for destination plugins: the conformance suite every destination runs, its harness protocol, and a real
workspace to build the harness's context in.

For tests only: runtime code never imports this package. It does not need pytest, but is written for it (a test
class, a fixture); when pytest is installed, it rewrites the suite's assertions so that failures explain themselves.

A plugin's test module builds a :class:`ConformanceHarness` over its real hooks, a real, emulated or loopback
vendor and a :class:`PluginWorkspace` (whose ``context()`` the harness returns), serves it as the
``conformance_harness`` fixture, and mixes :class:`DestinationConformance` into a test class::

    from collections.abc import Iterator
    from pathlib import Path

    import pytest

    from offramp.core.testing import ConformanceHarness, DestinationConformance, PluginWorkspace

    from acme_receiver import AcmeReceiver  # yours: a fake Acme API on loopback


    @pytest.fixture
    def conformance_harness(tmp_path: Path) -> Iterator[ConformanceHarness]:
        with AcmeReceiver.running(TOKEN) as receiver, PluginWorkspace(tmp_path) as workspace:
            yield AcmeHarness(workspace, receiver)  # yours: implements ConformanceHarness


    class TestAcmeConformance(DestinationConformance):
        pass

``pytest`` then runs every ``test_*`` method of the suite against the plugin, opening its preparers and senders
through its hooks as the registry checks them. ``tests/fixtures/plugin_dists/offramp-acme/tests/test_acme.py`` in
offramp's repository is that harness in full, for a third-party plugin (docs/plugin-author-guide.md walks through
it). :mod:`offramp.core.testing.checks` has the suite's helpers (cutting a table into odd-sized record batches,
preparing them all, checking texts for secrets) for a plugin's own tests.
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
