"""The chain as the server sees it: a Safe's owners, threshold, nonce and configuration, briefly cached.

Every write is checked against the Safe's current owners, and reading them per request would put a
node round trip (several, over a hosted RPC) on every confirmation. Facts are reused for a few
seconds (settings.owner_cache_seconds) and re-read when a handler asks for `fresh`, e.g. when a
signer is not among the cached owners (an owner added a moment ago must not be refused); a fresh
read reuses one at most FRESH_WITHIN old made at the current block, so floods of fresh reads
cannot hammer the node.

Reads go through the current ape provider's web3 with raw eth_call: one ABI-free path for every
Safe version, and uvicorn's worker threads take turns on ape (`_lock`), which is not thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from eth_abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector as selector
from web3.exceptions import ContractLogicError, Web3RPCError

from treasury.addresses import SENTINEL_ADDRESS, to_checksum
from treasury.chain.guard import GUARD_STORAGE_SLOT
from treasury.chain.handler import FALLBACK_HANDLER_STORAGE_SLOT
from treasury.server.context import NotASafe, SafeFacts

SINGLETON_SLOT = 0  # the proxy keeps its singleton (masterCopy) in storage slot 0
_MODULE_PAGE = 100
_GET_OWNERS = selector("getOwners()")
_GET_THRESHOLD = selector("getThreshold()")
_NONCE = selector("nonce()")
_VERSION = selector("VERSION()")
_GET_MODULES = selector("getModulesPaginated(address,uint256)") + bytes(12) + bytes.fromhex(SENTINEL_ADDRESS[2:]) \
    + _MODULE_PAGE.to_bytes(32, "big")


FRESH_WITHIN = 1.0  # seconds: a "fresh" read this recent, at the same block, is reused (the throttle per Safe)


class ApeChainView:
    """Safe facts over an ape provider (default: the one connected now), cached for `ttl` seconds."""

    def __init__(self, provider: Any = None, *, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 fresh_within: float = FRESH_WITHIN) -> None:
        if provider is None:
            from ape import chain

            provider = chain.provider
        self._provider = provider
        self._web3 = provider.web3
        self._ttl = ttl
        self._fresh_within = min(fresh_within, ttl)  # no cache at all (ttl 0): every fresh read is one
        self._clock = clock
        self.lock = threading.RLock()  # one caller on ape/web3 at a time: take it for any other ape call too
        self._lock = self.lock
        self._cache: dict[str, tuple[float, int, SafeFacts]] = {}  # address -> (read at, block, facts)
        self._cache_lock = threading.Lock()
        self.chain_id: int = int(provider.chain_id)

    def safe(self, address: str, *, fresh: bool = False) -> SafeFacts:
        """The Safe's facts read at most `ttl` seconds ago; with `fresh`, as of the chain's current block.

        Fresh reads are throttled per Safe: one read at most `fresh_within` old and made at the
        block the node is at now is reused, so a flood of proposals or GET safes/ costs the node one
        eth_blockNumber each, not a read of the Safe, and a new block (an execution, an owner added)
        is always seen. Callers queued behind a read take its result. A read's age counts from when
        it started.
        """
        key = address.lower()
        if not fresh:
            cached = self._cached(key)
            if cached is not None and self._clock() - cached[0] < self._ttl:
                return cached[2]
        with self._lock:
            head = int(self._web3.eth.block_number)
            cached = self._cached(key)
            if cached is not None and self._clock() - cached[0] < (self._fresh_within if fresh else self._ttl) \
                    and (cached[1] == head or not fresh):
                return cached[2]
            started = self._clock()
            facts = self.read(address)
            with self._cache_lock:
                self._cache[key] = (started, head, facts)
        return facts

    def _cached(self, key: str) -> tuple[float, int, SafeFacts] | None:
        with self._cache_lock:
            return self._cache.get(key)

    def invalidate(self, address: str) -> None:
        with self._cache_lock:
            self._cache.pop(address.lower(), None)

    def read(self, address: str) -> SafeFacts:
        """The Safe's facts from the chain now (no cache); NotASafe if it does not answer like one."""
        address = to_checksum(address)
        with self._lock:
            if not bytes(self._web3.eth.get_code(address)):
                raise NotASafe(address, "there is no contract code at this address on this chain")
            try:
                owners = decode(["address[]"], self._call(address, _GET_OWNERS))[0]
                threshold = decode(["uint256"], self._call(address, _GET_THRESHOLD))[0]
                nonce = decode(["uint256"], self._call(address, _NONCE))[0]
                version = decode(["string"], self._call(address, _VERSION))[0]
                modules = decode(["address[]", "address"], self._call(address, _GET_MODULES))[0]
            except (Web3RPCError, ContractLogicError, DecodingError, OverflowError, UnicodeDecodeError):  # a revert, or an error
                raise NotASafe(address, "its contract does not answer like a Safe") from None
            slots = [self._slot(address, slot) for slot in (SINGLETON_SLOT, GUARD_STORAGE_SLOT, FALLBACK_HANDLER_STORAGE_SLOT)]
        if not owners or not 1 <= threshold <= len(owners):
            raise NotASafe(address, "it has no owners (a singleton or an uninitialised proxy)")
        return SafeFacts(
            address=address, nonce=int(nonce), threshold=int(threshold), owners=tuple(to_checksum(o) for o in owners),
            master_copy=slots[0], version=str(version), modules=tuple(to_checksum(m) for m in modules),
            fallback_handler=slots[2], guard=slots[1],
        )

    def _call(self, address: str, data: bytes) -> bytes:
        return bytes(self._web3.eth.call({"to": address, "data": "0x" + data.hex()}))

    def _slot(self, address: str, slot: int) -> str:
        word = bytes(self._web3.eth.get_storage_at(address, slot))
        return to_checksum(word[-20:].rjust(20, b"\0"))
