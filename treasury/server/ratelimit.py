"""Write limits per client, and the request body cap: cheap refusals before any signature is checked.

Every write costs signature recovery, a chain read and a store transaction; a client that floods
them would slow every other signer. Each client (by address) gets a bucket of `burst` writes that
refills at `rate` per minute; an empty bucket answers 429 with Retry-After, as DRF's throttles do.
The clock is the context's, so tests step time instead of sleeping.
"""

from __future__ import annotations

import ipaddress
import math
import threading
from collections.abc import Callable
from typing import Any

from treasury.server.errors import send_error, throttled, too_large

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MAX_CLIENTS = 10_000  # buckets kept before full (idle) ones are forgotten


def client_key(host: str) -> str:
    """The rate-limit bucket of a client address: an IPv6 client's /64 (one host usually holds a
    whole /64, so per-address buckets would be 2**64 buckets); an IPv4 address as it is."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d is an IPv4 client
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class TokenBuckets:
    """One refilling bucket per key; `take` says how many seconds to wait (0: allowed, one spent)."""

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                self._forget_idle(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        if len(self._buckets) > _MAX_CLIENTS:
            full = self.burst / self.rate
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full}


class WriteLimit:
    """ASGI middleware: throttle writes per client (`client_of(scope)`)."""

    def __init__(self, app: Any, buckets: TokenBuckets, client_of: Callable[[dict], str]) -> None:
        self.app, self.buckets, self.client_of = app, buckets, client_of

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in WRITE_METHODS:
            wait = self.buckets.take(self.client_of(scope))
            if wait > 0:
                await send_error(send, throttled(math.ceil(wait)))
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """ASGI middleware: refuse bodies over `limit` bytes (413) before a handler parses them.

    A declared Content-Length over the limit is refused unread; otherwise the body is read (up to
    limit + 1 bytes) here and replayed to the app, so a chunked upload cannot get past the cap.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await send_error(send, too_large(self.limit))
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.limit:
                await send_error(send, too_large(self.limit))
                return
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replayed() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
