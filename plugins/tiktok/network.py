"""What a failed connection to TikTok is called in messages: ``TikTok unreachable (connection refused)``.

One wording for the sender, the account calls (connection test, event sets, ``credentials test``) and the token
calls. It names the kind of failure only: an exception's own text may quote the request's URL, whose query can
hold the app secret, so that text never goes into a message. Imports nothing but the standard library, so the
credential package can use it without loading the destination.
"""

from __future__ import annotations

from urllib.parse import urlsplit

# Words of the operating system's (or the TLS library's) error text, and what they are called here; first match.
_KINDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("refused",), "connection refused"),
    (("name or service not known", "nodename nor servname", "getaddrinfo", "name resolution",
      "no address associated", "failed to resolve"), "host not found"),
    (("network is unreachable", "no route to host"), "network unreachable"),
    (("certificate", "ssl", "tls"), "TLS handshake failed"),
    (("reset by peer", "connection reset"), "connection reset"),
    (("timed out", "timeout"), "timed out"),
)  # fmt: skip


def failure_kind(exc: BaseException) -> str:
    """A few words for a transport failure (httpx or requests): ``connection refused``, ``timed out``, ..."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"TimeoutException", "Timeout", "TimeoutError"}:
        return "timed out"
    text = f"{exc} {exc.__cause__ or ''} {exc.__context__ or ''}".lower()
    for words, kind in _KINDS:
        if any(word in text for word in words):
            return kind
    if "RemoteProtocolError" in names:
        return "connection closed before the answer"
    if names & {"ReadError", "WriteError", "ChunkedEncodingError"}:
        return "connection broken"
    return "cannot connect"


def unreachable(exc: BaseException) -> str:
    """``TikTok unreachable (KIND)`` for a transport failure."""
    return f"TikTok unreachable ({failure_kind(exc)})"


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url``: where a message may say it tried, without path, query or userinfo."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


__all__ = ["failure_kind", "origin", "unreachable"]
