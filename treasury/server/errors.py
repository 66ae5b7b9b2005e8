"""Errors in the Safe Transaction Service's own style (Django REST framework), so clients parse them.

Safe's clients read `detail`, `message`, `nonFieldErrors` or a field's list (api-kit's sendRequest
tries them in that order), so every refusal of ours has one of those shapes. Routers raise `ApiError`
(or the library's `InvalidInput`); treasury.server.app turns both into JSON responses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from treasury.addresses import checksum
from treasury.errors import InvalidInput


class ApiError(Exception):
    """A refusal with its HTTP status, JSON body and extra headers (Retry-After, WWW-Authenticate)."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def bad_request(message: str, field: str | None = None) -> ApiError:
    """400 as a serializer's validation error: `{"nonFieldErrors": [...]}` or `{field: [...]}`."""
    return ApiError(400, {field or "nonFieldErrors": [message]})


def not_found(detail: str = "Not found.") -> ApiError:
    return ApiError(404, {"detail": detail})


def unprocessable(message: str, code: int = 1, arguments: Sequence[Any] = ()) -> ApiError:
    """422 with the service's numbered error codes (1: checksum, 50: cannot read the Safe, ...)."""
    return ApiError(422, {"code": code, "message": message, "arguments": [str(a) for a in arguments]})


def unauthorized(detail: str) -> ApiError:
    return ApiError(401, {"detail": detail}, {"WWW-Authenticate": 'Bearer realm="api"'})


def forbidden(detail: str) -> ApiError:
    return ApiError(403, {"detail": detail})


def too_large(limit: int) -> ApiError:
    return ApiError(413, {"detail": f"Request body is larger than {limit} bytes."})


def throttled(wait_seconds: int) -> ApiError:
    """429 as DRF's throttles answer it, with the standard Retry-After header."""
    wait = max(1, int(wait_seconds))
    return ApiError(429, {"detail": f"Request was throttled. Expected available in {wait} seconds."},
                    {"Retry-After": str(wait)})


def internal_error() -> ApiError:
    return ApiError(500, {"detail": "Internal server error"})


CHECKSUM_FAILED = "Checksum address validation failed"
_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def path_address(value: str) -> str:
    """An address taken from a URL path, which Safe's service requires checksummed (EIP-55).

    Unlike parse_address, all-lowercase is refused too: the service answers 422 with code 1 to any
    address in a path that is not exactly its checksummed form, and clients are written against that.
    """
    if not _HEX_ADDRESS.fullmatch(value) or checksum(value[2:]) != value:
        raise unprocessable(CHECKSUM_FAILED, 1, [value])
    return value


def invalid_input(error: InvalidInput) -> ApiError:
    """The library's one-line refusal as a 400 non-field error."""
    from treasury.errors import worded_safe_codes

    return bad_request(worded_safe_codes(str(error)) or type(error).__name__)  # a bare GS026 in words


async def send_error(send, error: ApiError) -> None:
    """Answer from a pure ASGI middleware (before any route runs) with `error` as JSON."""
    import json

    body = json.dumps(error.body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
