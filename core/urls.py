"""URLs: a setting type (http(s) with a host, kept exactly as written but without a trailing slash), and which
hosts plain http may reach."""

from __future__ import annotations

import ipaddress
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator


def _check_http_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL with a host, such as https://example.com")
    return value.strip().rstrip("/")


HttpUrlText = Annotated[str, AfterValidator(_check_http_url)]


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ``::1``): the only hosts plain http may
    reach, since nothing crosses a network there."""
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


__all__ = ["HttpUrlText", "is_loopback"]
