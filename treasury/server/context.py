"""What every request handler needs, in one object the app carries: settings, store, chain, config.

Routers take it with `Depends(get_context)`, so tests can build the app over any store and any chain
view (a stand-in, a fake) without touching module globals.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import Depends, Request

from treasury.errors import InvalidInput
from treasury.server.settings import ServerSettings

if TYPE_CHECKING:
    from treasury.config import TreasuryConfig
    from treasury.store import Store
    from treasury.treasury import Treasury


@dataclass(frozen=True)
class SafeFacts:
    """What the chain says about a Safe now (addresses checksummed)."""

    address: str
    nonce: int
    threshold: int
    owners: tuple[str, ...]
    master_copy: str
    version: str
    modules: tuple[str, ...]
    fallback_handler: str
    guard: str


class NotASafe(InvalidInput):
    """The address has no code, or its code does not answer like a Safe."""

    def __init__(self, address: str, why: str) -> None:
        super().__init__(f"{address} is not a Safe: {why}")
        self.address = address


class ChainView(Protocol):
    """Reads of the chain the server needs; implemented over ape in treasury.server.chain_view."""

    chain_id: int

    def safe(self, address: str, *, fresh: bool = False) -> SafeFacts: ...

    def invalidate(self, address: str) -> None: ...


@dataclass
class ServerContext:
    settings: ServerSettings
    store: Store
    chain: ChainView
    config: TreasuryConfig | None = None  # treasuries from ape-config / --config, for policy verdicts
    clock: Callable[[], float] = time.time  # injectable: rate limits and delegate TOTP in tests

    def treasury_for(self, safe: str, actor: str | None = None) -> Treasury | None:
        """The configured treasury of this Safe on this chain, over the server's store (None: not one of ours).

        A new facade per call (cheap: the entry keeps its parsed policy), so `actor` is per request.
        """
        if self.config is None:
            return None
        from treasury.treasury import Treasury

        for name, entry in self.config.treasuries.items():
            if entry.chain_id == self.chain.chain_id and entry.safe.lower() == safe.lower():
                return Treasury(name, entry, self.store, actor=actor or "server")
        return None


def get_context(request: Request) -> ServerContext:
    return request.app.state.context


# A handler's parameter `ctx: Ctx` (ruff's B008 refuses `= Depends(get_context)` as a default).
Ctx = Annotated[ServerContext, Depends(get_context)]


def peer_host(scope: Mapping[str, Any]) -> str:
    """The TCP peer's address ("unknown" when the server has none, e.g. a Unix socket)."""
    client = scope.get("client")
    return client[0] if client else "unknown"


def client_host(scope: Mapping[str, Any], settings: ServerSettings | None = None) -> str:
    """Who is calling: the peer address, or behind our TLS proxy (--behind-tls, the peer one of
    settings.trusted_proxies) the address it forwarded; a header from any other peer is ignored.

    Only the last X-Forwarded-For entry is taken: the proxy appends the peer it saw, while earlier
    entries come from the client and could be anything.
    """
    peer = peer_host(scope)
    if settings is not None and settings.behind_tls and settings.trusts(peer):
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                forwarded = value.decode("latin-1").split(",")[-1].strip()
                if forwarded:
                    return forwarded
    return peer


def actor_of(request: Request, who: str) -> str:
    """The audit log's actor for a write through the server: the verified signer and where it came from."""
    return f"server:{who} from {client_host(request.scope, get_context(request).settings)}"
