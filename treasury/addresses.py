"""Strict parsing of addresses typed by people: a wrong checksum is an error, never a guess."""

from __future__ import annotations

import re

from eth_utils import is_checksum_address, to_checksum_address

from treasury.errors import InvalidInput

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
# The Safe's linked lists use address(1) as their head; it can never be an owner or module.
SENTINEL_ADDRESS = "0x0000000000000000000000000000000000000001"

_HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def parse_address(value: object, what: str = "address") -> str:
    """Return `value` as a checksummed address, or raise InvalidInput naming the problem.

    Mixed-case input must carry a valid EIP-55 checksum: a typo in a mixed-case address is caught
    by it, and we never "fix" such an address for the user. All-lowercase or all-uppercase input
    carries no checksum and is accepted as written.
    """
    if not isinstance(value, str):
        # ape accounts and contract instances carry a checksummed `.address`.
        value = getattr(value, "address", value)
    if not isinstance(value, str) or not _HEX_ADDRESS.match(value):
        raise InvalidInput(f"{what} {value!r} is not a 0x-prefixed 20-byte hex address")
    digits = value[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(value):
        raise InvalidInput(f"{what} {value} has an invalid EIP-55 checksum (mistyped?)")
    return to_checksum_address(value)
