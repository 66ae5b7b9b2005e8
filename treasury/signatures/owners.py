"""What the chain says about a Safe's owners right now: who they are, the threshold, approved hashes.

Signatures are checked against these live facts, never against a list someone handed us, so the
reads live in one place that signing and verification share.
"""

from __future__ import annotations

from typing import Any

from treasury.addresses import parse_address
from treasury.chain.artifacts import DEFAULT_VERSION


def safe_at(address: str, version: str) -> Any:
    """The Safe at `address` as an ape contract instance of `version`'s ABI."""
    from treasury.chain.safe import safe_instance

    return safe_instance(address, version)


def current_owners(safe_address: str, version: str = DEFAULT_VERSION) -> tuple[str, ...]:
    """The Safe's owners as the chain says now (getOwners), checksummed."""
    return tuple(parse_address(str(owner), "owner") for owner in safe_at(parse_address(safe_address, "Safe"), version).getOwners())


def current_threshold(safe_address: str, version: str = DEFAULT_VERSION) -> int:
    """The Safe's threshold as the chain says now."""
    return int(safe_at(parse_address(safe_address, "Safe"), version).getThreshold())


def is_approved(safe_address: str, version: str, owner: str, safe_hash: bytes) -> bool:
    """Whether `owner` sent approveHash(safe_hash) to the Safe: an approved_hash signature's proof."""
    return int(safe_at(safe_address, version).approvedHashes(owner, bytes(safe_hash))) != 0


def code_at(address: str) -> bytes:
    """The runtime code at `address` (empty for an account without code)."""
    from ape import chain

    return bytes(chain.provider.get_code(address))
