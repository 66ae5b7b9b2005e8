"""The three hashes of a Safe transaction (domain, message, safeTxHash), computed from its fields alone.

A signer compares these with a hardware wallet's screen, and the store's safeTxHash is checked
against them, so they must come out exactly as the Safe computes them. Every EIP-712 member of a
SafeTx is a static 32-byte word (the calldata enters as its keccak), so the encoding is plain
concatenation: no ABI library, no web3 and no safe-eth-py, which keeps store-only commands
(`treasury show`, `export`) fast. tests/test_offline_hashes.py checks them against safe-eth-py.
"""

from __future__ import annotations

from dataclasses import dataclass

from treasury.addresses import keccak, parse_address
from treasury.errors import InvalidInput

UINT256_MAX = 2**256 - 1

# Safe >= 1.3.0 binds the domain to the chain id; earlier versions to the Safe's address only.
_DOMAIN_WITH_CHAIN = keccak(b"EIP712Domain(uint256 chainId,address verifyingContract)")
_DOMAIN_WITHOUT_CHAIN = keccak(b"EIP712Domain(address verifyingContract)")
_SAFE_TX = ("SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 {base},"
            "uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)")
# Safe 1.0.0 renamed the `dataGas` member to `baseGas`: a different type string, so a different hash.
_SAFE_TX_TYPEHASH = keccak(_SAFE_TX.format(base="baseGas").encode())
_SAFE_TX_TYPEHASH_LEGACY = keccak(_SAFE_TX.format(base="dataGas").encode())


def function_selector(signature: str) -> bytes:
    """The 4-byte selector of a function signature such as "transfer(address,uint256)" (spaces
    ignored), as eth_utils.function_signature_to_4byte_selector computes it without its import cost."""
    return keccak(signature.replace(" ", "").encode())[:4]


@dataclass(frozen=True)
class SafeTxHashes:
    """0x-hex hashes as a hardware wallet shows them; safeTxHash = keccak(0x1901 || domain || message)."""

    domain_hash: str
    message_hash: str
    safe_tx_hash: str


def _version(text: str) -> tuple[int, int, int]:
    """MAJOR.MINOR.PATCH exactly: "1.3" or "1.3.0+L2" would compare wrongly and give another hash."""
    parts = text.split(".")
    if len(parts) != 3 or not all(part.isascii() and part.isdigit() for part in parts):
        raise InvalidInput(f"Safe version {text!r} is not like 1.4.1")
    return int(parts[0]), int(parts[1]), int(parts[2])


def _uint(value: int, what: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT256_MAX:
        raise InvalidInput(f"{what} {value!r} is not a uint256")
    return value.to_bytes(32, "big")


def _address(value: str, what: str) -> bytes:
    return bytes(12) + bytes.fromhex(parse_address(value, what)[2:])


def domain_hash(safe: str, chain_id: int, version: str) -> bytes:
    """The EIP-712 domain separator of the Safe at `safe` (what its domainSeparator() returns)."""
    if _version(version) >= (1, 3, 0):
        return keccak(_DOMAIN_WITH_CHAIN + _uint(chain_id, "chain id") + _address(safe, "Safe"))
    return keccak(_DOMAIN_WITHOUT_CHAIN + _address(safe, "Safe"))


def message_hash(
    *, to: str, value: int, data: bytes, operation: int, safe_tx_gas: int, base_gas: int, gas_price: int,
    gas_token: str, refund_receiver: str, nonce: int, version: str,
) -> bytes:
    """hashStruct(SafeTx): the typehash and the ten members, each one 32-byte word."""
    if operation not in (0, 1) or isinstance(operation, bool):
        raise InvalidInput(f"operation {operation!r} is neither CALL (0) nor DELEGATECALL (1)")
    typehash = _SAFE_TX_TYPEHASH if _version(version) >= (1, 0, 0) else _SAFE_TX_TYPEHASH_LEGACY
    words = (
        typehash, _address(to, "to"), _uint(value, "value"), keccak(bytes(data)), _uint(operation, "operation"),
        _uint(safe_tx_gas, "safeTxGas"), _uint(base_gas, "baseGas"), _uint(gas_price, "gasPrice"),
        _address(gas_token, "gas token"), _address(refund_receiver, "refund receiver"), _uint(nonce, "nonce"),
    )
    return keccak(b"".join(words))


def safe_tx_hashes(
    *, safe: str, chain_id: int, version: str, to: str, value: int, data: bytes, operation: int, nonce: int,
    safe_tx_gas: int = 0, base_gas: int = 0, gas_price: int = 0,
    gas_token: str = "0x" + "00" * 20, refund_receiver: str = "0x" + "00" * 20,
) -> SafeTxHashes:
    """Domain, message and safeTxHash of a Safe transaction, as the Safe's getTransactionHash computes them."""
    domain = domain_hash(safe, chain_id, version)
    message = message_hash(to=to, value=value, data=data, operation=operation, safe_tx_gas=safe_tx_gas,
                           base_gas=base_gas, gas_price=gas_price, gas_token=gas_token,
                           refund_receiver=refund_receiver, nonce=nonce, version=version)
    digest = keccak(b"\x19\x01" + domain + message)
    return SafeTxHashes("0x" + domain.hex(), "0x" + message.hex(), "0x" + digest.hex())
