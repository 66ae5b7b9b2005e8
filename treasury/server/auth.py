"""Who may read, and over what transport.

Writes are authorised by the signatures they carry (checked against the chain by each router);
reads are open on loopback, and need `Authorization: Bearer <token>` once a read token is set (a
server reachable by others should not show every pending payment to anyone who asks).
Behind a TLS-terminating proxy (--behind-tls) a request that did not arrive over HTTPS is refused,
so a misconfigured proxy cannot silently put tokens and signatures on the wire in clear text.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Request

from treasury.server.context import get_context
from treasury.server.errors import forbidden, send_error, unauthorized

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def require_reader(request: Request) -> None:
    """App-wide dependency: a GET needs the bearer token when the server has one."""
    token = get_context(request).settings.read_token
    if token is None or request.method not in READ_METHODS:
        return
    header = request.headers.get("authorization")
    if not header:
        raise unauthorized("Authentication credentials were not provided.")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise unauthorized("Invalid token.")


class HttpsOnly:
    """ASGI middleware for --behind-tls: every request must say `X-Forwarded-Proto: https`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self._plain(scope):
            await send_error(send, forbidden("HTTPS is required: the request did not come through the TLS proxy."))
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _plain(scope: dict) -> bool:
        protos = [value for name, value in scope.get("headers", ()) if name == b"x-forwarded-proto"]
        return len(protos) != 1 or protos[0].decode("latin-1").strip().lower() != "https"
