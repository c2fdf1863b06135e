"""TikTok's event vocabulary (docs/tiktok-api-facts.md, "Vocabularies")."""

from __future__ import annotations

# Events API 2.0 standard events; offline accepts exactly these (case-sensitive).
STANDARD_EVENTS: frozenset[str] = frozenset(
    {
        "AddPaymentInfo", "AddToCart", "AddToWishlist", "ApplicationApproval", "CompleteRegistration", "Contact",
        "CustomizeProduct", "Download", "FindLocation", "InitiateCheckout", "Lead", "Purchase", "Schedule",
        "Search", "StartTrial", "SubmitApplication", "Subscribe", "ViewContent",
    }
)  # fmt: skip

# Older names that large integrations still send to event/track; acceptance for offline is unconfirmed.
LEGACY_EVENTS: frozenset[str] = frozenset({"CompletePayment", "PlaceAnOrder", "SubmitForm", "ClickButton", "PageView"})

KNOWN_EVENTS: frozenset[str] = STANDARD_EVENTS | LEGACY_EVENTS

__all__ = ["KNOWN_EVENTS", "LEGACY_EVENTS", "STANDARD_EVENTS"]
