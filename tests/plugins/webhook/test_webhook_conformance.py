"""The webhook destination passes offramp.core.testing's conformance suite against a loopback receiver."""

from offramp.core.testing import DestinationConformance


class TestWebhookConformance(DestinationConformance):
    pass
