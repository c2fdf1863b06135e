"""TikTok's event vocabulary (docs/tiktok-api-facts.md, "Vocabularies")."""

from __future__ import annotations

import difflib

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


def closest_event(name: str) -> str | None:
    """The known event ``name`` most likely meant: the same name in other case, else the closest spelling."""
    folded = {known.lower(): known for known in KNOWN_EVENTS}
    # Spaces and underscores dropped too: "add to cart" and "add_to_cart" mean AddToCart.
    squeezed = name.lower().replace(" ", "").replace("_", "")
    if squeezed in folded:
        return folded[squeezed]
    matches = difflib.get_close_matches(squeezed, folded, n=1, cutoff=0.6)
    return folded[matches[0]] if matches else None


def unknown_event_message(*names: str) -> str | None:
    """Why ``names`` are no TikTok events (each with the likely name, then the valid ones); None when all are.

    Names are case-sensitive, as TikTok takes them and as both preparers check them: ``purchase`` is refused,
    with ``Purchase`` suggested.
    """
    problems = []
    for name in dict.fromkeys(names):
        if name not in KNOWN_EVENTS:
            guess = closest_event(name)
            problems.append(f"{name!r} is not a TikTok event" + (f" (did you mean {guess}?)" if guess else ""))
    if not problems:
        return None
    return f"{'; '.join(problems)}; valid: {', '.join(sorted(KNOWN_EVENTS))}"


__all__ = ["KNOWN_EVENTS", "LEGACY_EVENTS", "STANDARD_EVENTS", "closest_event", "unknown_event_message"]
