"""Who may read, and over what transport.

Writes are authorised by the signatures they carry (checked against the chain by each router);
reads are open on loopback, and need `Authorization: Bearer <token>` once a read token is set (a
server reachable by others should not show every pending payment to anyone who asks).
Behind a TLS-terminating proxy (--behind-tls) a request that did not arrive over HTTPS is refused,
so a misconfigured proxy cannot silently put tokens and signatures on the wire in clear text.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request

from treasury.errors import InvalidInput
from treasury.server.context import get_context, peer_host
from treasury.server.errors import ApiError, bad_request, forbidden, send_error, unauthorized
from treasury.server.settings import ServerSettings

OPAQUE_REFUSAL = "The signature was not accepted: no open transaction or message with this hash takes it"

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def require_reader(request: Request) -> None:
    """App-wide dependency: a GET needs the bearer token when the server has one."""
    if request.method in READ_METHODS:
        require_token(request)


def require_token(request: Request) -> None:
    """The bearer token whatever the method, when the server has one: for a POST that only reads
    (a gas estimation), which carries no signature to authorise it."""
    token = get_context(request).settings.read_token
    if token is None:
        return
    header = request.headers.get("authorization")
    if not header:
        raise unauthorized("Authentication credentials were not provided.")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise unauthorized("Invalid token.")


def can_read(request: Request) -> bool:
    """Whether this request may read the store: no read token is set, or it carries the token."""
    try:
        require_token(request)
    except ApiError:
        return False
    return True


@contextmanager
def opaque_refusals(request: Request) -> Iterator[None]:
    """Around a signature POST to a hash in the path: for a caller who may not read, "unknown hash"
    (404) and "refused signature" (400) answer alike, so the POST is no oracle of what exists."""
    try:
        yield
    except (ApiError, InvalidInput) as error:
        if (isinstance(error, ApiError) and error.status not in (400, 404)) or can_read(request):
            raise
        raise bad_request(OPAQUE_REFUSAL) from None


class HttpsOnly:
    """ASGI middleware for --behind-tls: every request must come from a trusted proxy
    (settings.trusted_proxies) and say `X-Forwarded-Proto: https`."""

    def __init__(self, app: Any, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not self.settings.trusts(peer_host(scope)):
            await send_error(send, forbidden("HTTPS is required: the request did not come through a trusted TLS proxy."))
            return
        if scope["type"] == "http" and self._plain(scope):
            await send_error(send, forbidden("HTTPS is required: the request did not come through the TLS proxy."))
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _plain(scope: dict) -> bool:
        protos = [value for name, value in scope.get("headers", ()) if name == b"x-forwarded-proto"]
        return len(protos) != 1 or protos[0].decode("latin-1").strip().lower() != "https"
