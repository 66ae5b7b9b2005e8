"""ENS names to addresses, asked of the connected chain: "vitalik.eth" -> 0xd8dA...6045.

A chain has ENS when the ENS registry (the same address on mainnet and its testnets) has code;
elsewhere an ENS name is refused in one line rather than guessed. The name is normalized (ENSIP-15)
and hashed (EIP-137 namehash) by web3's bundled `ens` module; the lookup itself is the registry's
resolver for that node, then the resolver's addr(node). Two plain calls: what was resolved is
exactly what the chain says now, and a test chain needs only a registry and a resolver.

Wildcard (ENSIP-10) and off-chain (CCIP-read) names are not resolved: a name without a resolver of
its own is refused, and the caller can type the address instead.
"""

from __future__ import annotations

from typing import Any

from treasury.addresses import ZERO_ADDRESS, keccak, to_checksum
from treasury.errors import InvalidInput, TreasuryError

ENS_REGISTRY = "0x00000000000C2E074eC69A0dFb2997BA6C7d2e1e"
_RESOLVER = keccak(b"resolver(bytes32)")[:4]
_ADDR = keccak(b"addr(bytes32)")[:4]


def has_ens(provider: Any) -> bool:
    """Whether the connected chain has the ENS registry (it has code at the registry address)."""
    return len(bytes(provider.get_code(ENS_REGISTRY))) > 0


def resolve_ens(provider: Any, name: str, what: str = "address") -> str:
    """The checksummed address `name` points to on the connected chain, or a one-line InvalidInput
    (no ENS on this chain, an invalid name, no resolver, no address)."""
    if not has_ens(provider):
        raise InvalidInput(f"{what} {name!r} is an ENS name, but chain {provider.chain_id} has no ENS registry: "
                           "use an address or an address book name")
    node = namehash(name, what)
    resolver = _address_call(provider, ENS_REGISTRY, _RESOLVER + node)
    if resolver == ZERO_ADDRESS:
        raise InvalidInput(f"ENS name {name!r} has no resolver on chain {provider.chain_id}")
    address = _address_call(provider, resolver, _ADDR + node)
    if address == ZERO_ADDRESS:
        raise InvalidInput(f"ENS name {name!r} does not point to an address on chain {provider.chain_id}")
    return address


def namehash(name: str, what: str = "address") -> bytes:
    """EIP-137 namehash of the ENSIP-15-normalized `name`; an invalid name is one line."""
    from ens.utils import normal_name_to_hash  # type: ignore[import-untyped]

    return bytes(normal_name_to_hash(normalize_ens(name, what)))


def normalize_ens(name: str, what: str = "address") -> str:
    """The ENSIP-15-normalized `name`, the name that is resolved: 'Vitalik.ETH' -> 'vitalik.eth',
    'vitaIik.eth' (capital I) -> 'vitaiik.eth'. What signers are shown; an invalid name is one line."""
    from ens.exceptions import ENSException  # type: ignore[import-untyped]
    from ens.utils import normalize_name

    _lists_to_nfc()
    try:
        return str(normalize_name(name))
    except (ENSException, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InvalidInput(f"{what} {name!r} is not a valid ENS name: {first}") from None


def _lists_to_nfc() -> None:
    """web3 7.16's ENSIP-15 code hands pyunormalize's NFC a list of characters; pyunormalize 18 takes
    only a string and fails on every name ('list' object has no attribute 'isascii'). Give web3's
    module an NFC that joins the list first, once, and only when the installed NFC refuses a list,
    so a fixed pairing of the two is left alone."""
    import ens._normalization as ensip15  # type: ignore[import-untyped]

    nfc = ensip15.NFC
    try:
        nfc(["a"])
    except (AttributeError, TypeError):
        ensip15.NFC = lambda text: nfc("".join(text) if isinstance(text, list) else text)


def _address_call(provider: Any, to: str, data: bytes) -> str:
    """An address returned by a view call (a word, the address in its low 20 bytes)."""
    try:
        raw = bytes(provider.web3.eth.call({"to": to, "data": "0x" + data.hex()}))
    except Exception as error:  # noqa: BLE001 - a reverting or absent resolver: say which, in one line
        raise TreasuryError(f"ENS lookup at {to} failed: {type(error).__name__}") from None
    if len(raw) < 32:
        raise TreasuryError(f"ENS lookup at {to} returned {len(raw)} bytes, not an address")
    return to_checksum(raw[12:32])
