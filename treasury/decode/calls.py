"""What a Safe transaction does, in words a signer can check before signing.

Every call is named (function and arguments), amounts are shown in token units when the token is
in the book, batches are unwrapped, a delegatecall is flagged loudly, and the three hashes a
hardware wallet shows (domain, message, safeTxHash) are given so they can be compared.

Batches are unpacked by the same strict decoder the policy engine uses
(treasury.proposal.multisend.decode_batch), so a signer is shown exactly the calls the policy
judged and the guard will see; a batch the guard would refuse is shown as not decoding, never as
a plausible list of calls with the extra bytes silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, cast

from treasury.addresses import keccak, to_checksum
from treasury.amounts import TokenBook, format_units
from treasury.decode.hashes import function_selector
from treasury.proposal.arguments import split_types
from treasury.proposal.multisend import MalformedBatch, decode_batch, is_multisend_call_only
from treasury.types import DELEGATE_CALL

if TYPE_CHECKING:  # safe-eth-py (and web3 with it) loads only where a SafeTx is built: decoding needs neither
    from safe_eth.safe.safe_tx import SafeTx

# Functions a treasury meets every day; anything else is shown as raw calldata.
KNOWN_FUNCTIONS = (
    "transfer(address,uint256)",
    "approve(address,uint256)",
    "transferFrom(address,address,uint256)",
    "safeTransferFrom(address,address,uint256)",
    "multiSend(bytes)",
    "addOwnerWithThreshold(address,uint256)",
    "removeOwner(address,address,uint256)",
    "swapOwner(address,address,address)",
    "changeThreshold(uint256)",
    "enableModule(address)",
    "disableModule(address,address)",
    "setGuard(address)",
    "setModuleGuard(address)",
    "setFallbackHandler(address)",
    "setAllowedCall(address,bytes4,bool)",
    "setRecipient(address,bool)",
    "setCap(address,uint256,uint256,uint256,uint256)",
    "removeCap(address)",
    "setDelay(uint256,uint256)",
    "setAllowRefunds(bool)",
)
SAFE_ADMIN = {"addOwnerWithThreshold", "removeOwner", "swapOwner", "changeThreshold", "enableModule", "disableModule",
              "setGuard", "setModuleGuard", "setFallbackHandler"}
TOKEN_AMOUNT_FUNCTIONS = {"transfer": 1, "approve": 1, "transferFrom": 2}


@cache
def _functions() -> dict[bytes, tuple[str, list[str]]]:
    table = {}
    for signature in KNOWN_FUNCTIONS:
        name, _, rest = signature.partition("(")
        table[function_selector(signature)] = (name, split_types(rest[:-1]))
    return table


@dataclass(frozen=True)
class DecodedCall:
    to: str
    value: int
    data: bytes
    operation: int  # as stored: 0 (call) or 1 (delegatecall); a decoder shows what it is given
    function: str | None  # e.g. "transfer", None for a plain transfer or unknown calldata
    arguments: tuple[str, ...] = ()
    description: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class DecodedProposal:
    safe: str
    chain_id: int
    nonce: int
    calls: tuple[DecodedCall, ...]
    domain_hash: str
    message_hash: str
    safe_tx_hash: str
    warnings: tuple[str, ...] = field(default=())

    @property
    def is_batch(self) -> bool:
        return len(self.calls) > 1 or (bool(self.calls) and self.calls[0].function == "multiSend")


def hashes(safe_tx: SafeTx) -> tuple[str, str, str]:
    """(domain hash, message hash, safeTxHash), as a hardware wallet shows them for EIP-712."""
    from eth_account.messages import encode_typed_data

    signable = encode_typed_data(full_message=safe_tx.eip712_structured_data)
    domain, message = bytes(signable.header), bytes(signable.body)
    safe_tx_hash = keccak(b"\x19\x01" + domain + message)
    assert safe_tx_hash == bytes(safe_tx.safe_tx_hash)  # the two computations must agree
    return "0x" + domain.hex(), "0x" + message.hex(), "0x" + safe_tx_hash.hex()


def _value_text(value: int) -> str:
    return f"{format_units(value, 18)} ETH"


def decode_call(to: str, value: int, data: bytes, operation: int, safe: str, book: TokenBook) -> DecodedCall:
    """One call in words."""
    to = to_checksum(to)
    warnings = []
    if operation == DELEGATE_CALL:
        warnings.append(f"DELEGATECALL to {to}: its code runs with the Safe's storage and funds")
    if to == to_checksum(safe):
        warnings.append("call to the Safe itself: changes its configuration" if data else "no-op (rejection)")
    if not data:
        description = f"send {_value_text(value)} to {to}" if value else f"empty call to {to}"
        return DecodedCall(to, value, data, operation, None, (), description, tuple(warnings))
    known = _functions().get(bytes(data[:4]))
    if known is None:
        description = f"call {to} with unknown calldata 0x{bytes(data).hex()}"
        warnings.append(f"function 0x{bytes(data[:4]).hex()} is not one we can decode")
        return DecodedCall(to, value, data, operation, None, (), description, tuple(warnings))
    name, types = known
    from eth_abi import decode as abi_decode  # here: a tenth of a second to import, for calldata only

    try:
        args = abi_decode(types, bytes(data[4:]), strict=True)
    except Exception:  # noqa: BLE001 - whatever eth_abi raises on hostile calldata, the call is shown as malformed
        warnings.append("calldata does not decode as " + name)
        return DecodedCall(to, value, data, operation, name, (), f"malformed {name} call to {to}", tuple(warnings))
    shown = [_argument(t, a) for t, a in zip(types, args, strict=True)]
    token = book.by_address(to)
    if name in TOKEN_AMOUNT_FUNCTIONS and token is not None:
        index = TOKEN_AMOUNT_FUNCTIONS[name]
        shown[index] = f"{format_units(args[index], token.decimals)} {token.symbol}"
    if name in SAFE_ADMIN:
        warnings.append(f"Safe administration: {name}")
    if name == "multiSend" and operation != DELEGATE_CALL:
        warnings.append(f"multiSend as a plain call: the calls inside would run from {to}, not from the Safe")
    description = f"{name}({', '.join(shown)}) on {token.symbol if token else to}"
    if value:
        description += f" with {_value_text(value)}"
    return DecodedCall(to, value, data, operation, name, tuple(shown), description, tuple(warnings))


def _argument(kind: str, value: object) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if kind == "address":
        return to_checksum(cast(str, value))  # eth_abi decodes an address as its hex text
    return str(value)


def decode_safe_tx(safe_tx: SafeTx, book: TokenBook) -> DecodedProposal:
    """The whole transaction: its call, or every call of its batch, and its hashes."""
    return decode_transaction(
        safe_tx.safe_address, safe_tx.chain_id, safe_tx.safe_nonce, safe_tx.to, safe_tx.value, bytes(safe_tx.data),
        safe_tx.operation, book, hashes=hashes(safe_tx), gas_price=safe_tx.gas_price, refund_receiver=safe_tx.refund_receiver,
    )


def decode_transaction(
    safe: str, chain_id: int, nonce: int, to: str, value: int, data: bytes, operation: int, book: TokenBook, *,
    hashes: tuple[str, str, str], gas_price: int = 0, refund_receiver: str | None = None,
) -> DecodedProposal:
    """The same from the transaction's fields and its (domain, message, safeTxHash) hashes: no SafeTx,
    so store-only readers (treasury.records) decode without loading safe-eth-py or web3."""
    outer = decode_call(to, value, data, operation, safe, book)
    calls: list[DecodedCall] = [outer]
    warnings = list(outer.warnings)
    if outer.function == "multiSend" and outer.operation == DELEGATE_CALL:
        calls, warnings = _unwrap_batch(outer, safe, book)
    if gas_price:
        warnings.append(f"refund: gasPrice {gas_price} paid to {refund_receiver or 'the executor'}")
    domain, message, safe_tx_hash = hashes
    return DecodedProposal(safe, chain_id, nonce, tuple(calls), domain, message, safe_tx_hash, tuple(warnings))


def _unwrap_batch(outer: DecodedCall, safe: str, book: TokenBook) -> tuple[list[DecodedCall], list[str]]:
    """The batch's calls and warnings; a batch the guard would refuse stays one call, flagged."""
    call_only = is_multisend_call_only(outer.to)
    try:
        entries = decode_batch(outer.data, call_only=call_only)
    except MalformedBatch as malformed:
        return [outer], [*outer.warnings, f"the batch does not decode: {malformed} [{malformed.error}]"]
    calls = [decode_call(e.to, e.value, e.data, e.operation, safe, book) for e in entries]
    # Through a canonical MultiSendCallOnly the delegatecall runs only plain calls: the batch line says it all.
    warnings = [w for w in outer.warnings if not (call_only and w.startswith("DELEGATECALL"))]
    warnings.insert(0, f"batch of {len(calls)} calls through {outer.to} (delegatecall)")
    for call in calls:
        warnings.extend(call.warnings)
    return calls, warnings
