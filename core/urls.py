"""A URL setting type: http(s) with a host, kept exactly as written but without a trailing slash."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator


def _check_http_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL with a host, such as https://example.com")
    return value.strip().rstrip("/")


HttpUrlText = Annotated[str, AfterValidator(_check_http_url)]

__all__ = ["HttpUrlText"]
