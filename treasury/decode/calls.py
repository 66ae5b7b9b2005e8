"""What a Safe transaction does, in words a signer can check before signing.

Every call is named (function and arguments), amounts are shown in token units when the token is
in the book, batches are unwrapped, a delegatecall is flagged loudly, and the three hashes a
hardware wallet shows (domain, message, safeTxHash) are given so they can be compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from eth_abi import decode as abi_decode
from eth_account.messages import encode_typed_data
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from safe_eth.safe.multi_send import MultiSend
from safe_eth.safe.safe_tx import SafeTx

from treasury.amounts import TokenBook, format_units
from treasury.proposal.build import split_types

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
        table[function_signature_to_4byte_selector(signature)] = (name, split_types(rest[:-1]))
    return table


@dataclass(frozen=True)
class DecodedCall:
    to: str
    value: int
    data: bytes
    operation: int
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
    signable = encode_typed_data(full_message=safe_tx.eip712_structured_data)
    domain, message = bytes(signable.header), bytes(signable.body)
    safe_tx_hash = keccak(b"\x19\x01" + domain + message)
    assert safe_tx_hash == bytes(safe_tx.safe_tx_hash)  # the two computations must agree
    return "0x" + domain.hex(), "0x" + message.hex(), "0x" + safe_tx_hash.hex()


def _value_text(value: int) -> str:
    return f"{format_units(value, 18)} ETH"


def decode_call(to: str, value: int, data: bytes, operation: int, safe: str, book: TokenBook) -> DecodedCall:
    """One call in words."""
    to = to_checksum_address(to)
    warnings = []
    if operation == 1:
        warnings.append(f"DELEGATECALL to {to}: its code runs with the Safe's storage and funds")
    if to == to_checksum_address(safe):
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
    try:
        args = abi_decode(types, bytes(data[4:]), strict=True)
    except Exception:
        warnings.append("calldata does not decode as " + name)
        return DecodedCall(to, value, data, operation, name, (), f"malformed {name} call to {to}", tuple(warnings))
    shown = [_argument(t, a) for t, a in zip(types, args)]
    token = book.by_address(to)
    if name in TOKEN_AMOUNT_FUNCTIONS and token is not None:
        index = TOKEN_AMOUNT_FUNCTIONS[name]
        shown[index] = f"{format_units(args[index], token.decimals)} {token.symbol}"
    if name in SAFE_ADMIN:
        warnings.append(f"Safe administration: {name}")
    description = f"{name}({', '.join(shown)}) on {token.symbol if token else to}"
    if value:
        description += f" with {_value_text(value)}"
    return DecodedCall(to, value, data, operation, name, tuple(shown), description, tuple(warnings))


def _argument(kind: str, value: object) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if kind == "address":
        return to_checksum_address(value)
    return str(value)


def decode_safe_tx(safe_tx: SafeTx, book: TokenBook) -> DecodedProposal:
    """The whole transaction: its call, or every call of its batch, and its hashes."""
    safe = safe_tx.safe_address
    outer = decode_call(safe_tx.to, safe_tx.value, bytes(safe_tx.data), safe_tx.operation, safe, book)
    calls: list[DecodedCall] = [outer]
    warnings = list(outer.warnings)
    if outer.function == "multiSend":
        try:
            inner = MultiSend.from_transaction_data(bytes(safe_tx.data))
        except Exception:
            inner = []
            warnings.append("the batch does not decode")
        calls = [decode_call(t.to, t.value, bytes(t.data), t.operation.value, safe, book) for t in inner] or [outer]
        warnings = [w for w in warnings if not w.startswith("DELEGATECALL")]
        warnings.insert(0, f"batch of {len(inner)} calls through {outer.to} (delegatecall)")
        for call in calls:
            warnings.extend(call.warnings)
    if safe_tx.gas_price:
        warnings.append(f"refund: gasPrice {safe_tx.gas_price} paid to {safe_tx.refund_receiver or 'the executor'}")
    domain, message, safe_tx_hash = hashes(safe_tx)
    return DecodedProposal(safe, safe_tx.chain_id, safe_tx.safe_nonce, tuple(calls), domain, message, safe_tx_hash, tuple(warnings))
