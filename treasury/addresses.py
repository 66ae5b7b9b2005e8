"""Strict parsing of addresses typed by people: a wrong checksum is an error, never a guess.

This is the one address parser of the project: config, CLI arguments, ABI arguments of
`propose call` (at any depth of an array or tuple), batch files and bundles all go through it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, cast

from treasury.errors import InvalidInput

try:  # pycryptodome: the keccak backend eth_hash's automatic choice takes first, called directly
    from Crypto.Hash import keccak as _pycryptodome
except ImportError:  # pragma: no cover - eth_hash with its other backend (pysha3)
    _pycryptodome = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
# The Safe's linked lists use address(1) as their head; it can never be an owner or module.
SENTINEL_ADDRESS = "0x0000000000000000000000000000000000000001"

_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def parse_address(value: object, what: str = "address") -> ChecksumAddress:
    """Return `value` as a checksummed address, or raise InvalidInput naming the problem.

    Mixed-case input must carry a valid EIP-55 checksum: a typo in a mixed-case address is caught
    by it, and we never "fix" such an address for the user. All-lowercase or all-uppercase input
    carries no checksum and is accepted as written.
    """
    if not isinstance(value, str):
        # ape accounts and contract instances carry a checksummed `.address`.
        value = getattr(value, "address", value)
    if not isinstance(value, str) or not _HEX_ADDRESS.fullmatch(value):
        shown = repr(value) if not isinstance(value, str) or len(value) <= 60 else repr(value[:57] + "...")
        raise InvalidInput(f"{what} {shown} is not a 0x-prefixed 20-byte hex address")
    digits = value[2:]
    checksummed = checksum(digits)
    if digits != digits.lower() and digits != digits.upper() and value != checksummed:
        raise InvalidInput(f"{what} {value} has an invalid EIP-55 checksum (mistyped?)")
    return checksummed


def checksum(hex_digits: str) -> ChecksumAddress:
    """EIP-55: a hex letter is upper case where the keccak of the lower-case address has a nibble >= 8.

    Computed here with `keccak` below alone: eth_utils costs a tenth of a second to import, and
    the store-only commands that load the config should not pay it for one hash per address.
    """
    lower = hex_digits.lower()
    nibbles = keccak(lower.encode("ascii")).hex()  # 64 nibbles: the first 40 give the 40 digits their case
    cased = "".join(char.upper() if int(nibble, 16) >= 8 else char for char, nibble in zip(lower, nibbles, strict=False))
    return cast("ChecksumAddress", "0x" + cased)


def keccak(data: bytes | bytearray) -> bytes:
    """keccak-256 (Ethereum's hash, not SHA3-256), as eth_hash.auto.keccak computes it.

    pycryptodome is called directly when installed (eth_hash's own backend of choice): importing
    eth_hash costs the store-only commands ~20 ms, most of it importlib.metadata reading its version.
    """
    if _pycryptodome is None:  # pragma: no cover
        from eth_hash.auto import keccak as eth_hash_keccak

        return eth_hash_keccak(data)
    return _pycryptodome.new(data=data, digest_bits=256).digest()


_HEX_DIGITS = re.compile(r"[0-9a-fA-F]{40}")


def to_checksum(value: str | bytes) -> ChecksumAddress:
    """The EIP-55 form of an address already known to be one: 20 raw bytes, or 40 hex digits in any
    case with or without 0x (a checksum it carries is not checked, as eth_utils.to_checksum_address
    does not). For what people type, use `parse_address`. Raises ValueError for anything else."""
    if isinstance(value, bytes | bytearray):
        if len(value) == 20:
            return checksum(bytes(value).hex())
    elif isinstance(value, str):
        digits = value[2:] if value[:2] in ("0x", "0X") else value
        if _HEX_DIGITS.fullmatch(digits):
            return checksum(digits)
    raise ValueError(f"{value!r} is not a 20-byte address")
