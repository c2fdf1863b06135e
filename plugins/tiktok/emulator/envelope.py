"""TikTok's answers: the `{code, message, request_id, data}` envelope, its codes, and the pages of the proxies.

TikTok answers HTTP 200 for application errors; the body's `code` decides (docs/tiktok-api-facts.md, "Envelope
and HTTP status").
"""

from __future__ import annotations

import os
import time
from typing import Any

import orjson
from starlette.responses import Response

OK = 0
NO_PERMISSION = 40001
INVALID_PARAMETER = 40002
NOT_FOUND = 40007
NOT_IMPLEMENTED = 40008
RATE_LIMITED = 40100
INVALID_APP = 40101
ACCESS_TOKEN_EXPIRED = 40102
REFRESH_TOKEN_EXPIRED = 40103
ACCESS_TOKEN_MISSING = 40104
ACCESS_TOKEN_INVALID = 40105
REFRESH_TOKEN_INVALID = 40107
INVALID_GRANT_TYPE = 40108
AUTH_CODE_INVALID = 40110

MESSAGES: dict[int, str] = {
    OK: "OK",
    NO_PERMISSION: "No permission to operate. You must be an admin or operator of this advertiser account.",
    INVALID_PARAMETER: "Invalid parameter.",
    NOT_FOUND: "The object does not exist.",
    NOT_IMPLEMENTED: "The endpoint is not implemented.",
    40016: "Requests too frequent. Please retry in some time.",
    RATE_LIMITED: "Too many requests. Please retry in some time.",
    INVALID_APP: "Invalid app_id or secret.",
    ACCESS_TOKEN_EXPIRED: "Access token has expired. Refresh it or authorize again.",
    REFRESH_TOKEN_EXPIRED: "Refresh token has expired. Authorize again.",
    ACCESS_TOKEN_MISSING: "Access token is null. Put it in the Access-Token header.",
    ACCESS_TOKEN_INVALID: "Access token is incorrect or has been revoked.",
    REFRESH_TOKEN_INVALID: "Refresh token is invalid: it was used, revoked, or belongs to a long-term token.",
    INVALID_GRANT_TYPE: "Invalid grant_type.",
    AUTH_CODE_INVALID: "The auth_code has been cancelled, used or expired.",
    40133: "Too many requests for this advertiser. Please retry in some time.",
    40202: "Write conflict. Please retry.",
    50000: "System error. Please retry later.",
    50002: "Error processing the request. Please retry.",
    51305: "Satellite service error. Please retry.",
    60001: "System in maintenance. Please retry later.",
}

LOGID_HEADER = "X-TT-LOGID"

# What TikTok's proxies send when the request never reached the API (docs/tiktok-api-facts.md, "Envelope and HTTP
# status").
NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
NGINX_503 = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n"
    "</html>\r\n"
)


class ApiError(Exception):
    """An answer other than OK: handlers raise it, the route turns it into an HTTP 200 envelope."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.message = MESSAGES.get(code, "Error.") if message is None else message
        super().__init__(f"{code}: {self.message}")


def new_request_id(now: float) -> str:
    """TikTok's format: UTC `YYYYMMDDHHMMSS` then 20 upper-case hex characters (34 in all)."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(now)) + os.urandom(10).hex().upper()


def envelope(request_id: str, code: int = OK, message: str | None = None, data: Any = None) -> Response:
    """An HTTP 200 JSON envelope carrying `code`; its message defaults to the code's usual text."""
    body = {
        "code": code,
        "message": MESSAGES.get(code, "Error.") if message is None else message,
        "request_id": request_id,
        "data": {} if data is None else data,
    }
    return Response(orjson.dumps(body), media_type="application/json", headers={LOGID_HEADER: request_id})


def proxy_error(status: int, request_id: str) -> Response:
    """An nginx HTML page with HTTP 502 or 503: no envelope, as when TikTok's gateway fails."""
    page = NGINX_502 if status == 502 else NGINX_503
    return Response(page, status_code=status, media_type="text/html", headers={LOGID_HEADER: request_id})


def invalid_value(field: str, reason: str) -> str:
    """The 40002 message TikTok uses: ``Invalid value for event_id: not a valid string.``"""
    return f"Invalid value for {field}: {reason}."


__all__ = [
    "ACCESS_TOKEN_EXPIRED",
    "ACCESS_TOKEN_INVALID",
    "ACCESS_TOKEN_MISSING",
    "AUTH_CODE_INVALID",
    "ApiError",
    "INVALID_APP",
    "INVALID_GRANT_TYPE",
    "INVALID_PARAMETER",
    "LOGID_HEADER",
    "MESSAGES",
    "NGINX_502",
    "NGINX_503",
    "NOT_FOUND",
    "NOT_IMPLEMENTED",
    "NO_PERMISSION",
    "OK",
    "RATE_LIMITED",
    "REFRESH_TOKEN_EXPIRED",
    "REFRESH_TOKEN_INVALID",
    "envelope",
    "invalid_value",
    "new_request_id",
    "proxy_error",
]
