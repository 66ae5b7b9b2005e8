"""Input checks on what callers hand the store: shape only, one line of error each.

Callers validate meaning (e.g. a signature by recovery against the owners) before storing; these
checks make sure nothing malformed reaches a row, so a bad value is refused with InvalidInput and
the store stays unchanged, on every backend alike (PostgreSQL, for one, rejects text holding NUL).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from treasury.addresses import parse_address
from treasury.errors import InvalidInput
from treasury.store.schema import MAX_LABEL, UINT256_MAX

MAX_DESCRIPTION = 20_000
MAX_NOTE = 2_000
MAX_MESSAGE = 200_000  # a message to sign: EIP-191 text or EIP-712 typed data as JSON
INT64_MAX = 2**63 - 1  # chain ids, block numbers, gas, row ids: BIGINT columns

_HEX32 = re.compile(r"^0x[0-9a-f]{64}$")
_HEX = re.compile(r"^(0x)?([0-9a-fA-F]{2})*$")


def uint(value: object, what: str, limit: int = UINT256_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be an integer, got {type(value).__name__} {value!r}")
    if value < 0:
        raise InvalidInput(f"{what} {value} is negative")
    if value > limit:
        raise InvalidInput(f"{what} {value} does not fit in {limit.bit_length()} bits")
    return value


def chain_id(value: object) -> int:
    checked = uint(value, "chain id", INT64_MAX)
    if checked == 0:
        raise InvalidInput("chain id 0 is not a valid EIP-155 chain id")
    return checked


def hash32(value: object, what: str) -> str:
    """A 32-byte hash as lowercase 0x-hex: accepts 32 raw bytes or a 66-character hex string."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if len(raw) != 32:
            raise InvalidInput(f"{what} must be 32 bytes, got {len(raw)}")
        return "0x" + raw.hex()
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a 0x-prefixed hex string, got {type(value).__name__}")
    text = value.lower()
    if not _HEX32.match(text):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidInput(f"{what} {shown!r} is not a 0x-prefixed 32-byte hex hash")
    return text


def raw_bytes(value: object, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str) and _HEX.match(value):
        return bytes.fromhex(value.removeprefix("0x"))
    raise InvalidInput(f"{what} must be bytes or an even-length hex string")


def label(value: object, what: str, limit: int = MAX_LABEL, *, required: bool = True) -> str:
    """Stripped text within `limit` characters that every backend can store (no NUL, valid Unicode)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text, got {type(value).__name__}")
    return verbatim(value.strip(), what, limit, required=required)


def verbatim(text: object, what: str, limit: int, *, required: bool = True) -> str:
    """Text kept byte for byte (a message someone signs): the checks of `label`, without stripping."""
    if not isinstance(text, str):
        raise InvalidInput(f"{what} must be text, got {type(text).__name__}")
    if required and not text:
        raise InvalidInput(f"{what} must not be empty")
    if len(text) > limit:
        raise InvalidInput(f"{what} is {len(text)} characters long; the limit is {limit}")
    if "\x00" in text:
        raise InvalidInput(f"{what} contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} is not valid Unicode text (it holds a lone surrogate)") from None
    return text


def proposal_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"proposal id must be a non-empty string, got {value!r}")
    return value.strip().lower()


def signature_shape(kind: str, signature: bytes, owner: str | None = None) -> None:
    """The shape the Safe itself reads: ECDSA signatures are r, s, v = 65 bytes; an approved_hash is
    r = the owner left-padded, s = 0, v = 1 (65 bytes, as safe-eth-py builds it); a contract
    signature is r = the owner, s = offset, v = 0, then its dynamic part (at least 65 bytes)."""
    if kind in ("eip712", "eth_sign") and len(signature) != 65:
        raise InvalidInput(f"an {kind} signature must be 65 bytes (r, s, v), got {len(signature)}")
    if kind == "approved_hash":
        if len(signature) != 65 or signature[64] != 1 or any(signature[32:64]) or any(signature[:12]):
            raise InvalidInput("an approved_hash signature must be 65 bytes: r = the owner left-padded, s = 0, v = 1")
        if owner is not None and signature[12:32] != bytes.fromhex(owner.removeprefix("0x")):
            raise InvalidInput(f"the approved_hash signature names 0x{signature[12:32].hex()}, not its owner {owner}")
    if kind == "contract" and (len(signature) < 65 or signature[64] != 0):
        raise InvalidInput(f"a contract signature must be at least 65 bytes with v = 0, got {len(signature)} bytes")


def addresses(value: object, what: str, each: str) -> tuple[str, ...]:
    """A collection of distinct addresses, checksummed and sorted ascending (the Safe's owner order)."""
    if not isinstance(value, (list, tuple, set, frozenset)):  # a lone address string is a classic slip
        raise InvalidInput(f"{what} must be a list of addresses, got {type(value).__name__}")
    parsed = [parse_address(item, each) for item in value]
    if len(set(parsed)) != len(parsed):
        repeated = next(a for a in parsed if parsed.count(a) > 1)
        raise InvalidInput(f"{what} lists {repeated} more than once")
    return tuple(sorted(parsed, key=lambda a: int(a, 16)))


def one_of(value: object, allowed: tuple[str, ...], what: str) -> str:
    """`value` if it is one of `allowed`, else InvalidInput listing them."""
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInput(f"{what} {value!r} is not one of {', '.join(allowed)}")
    return value


def now() -> str:
    """The store's clock: UTC, ISO 8601 with microseconds (fixed width, so it sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")
