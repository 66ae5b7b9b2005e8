"""Owner signatures over a Safe transaction: EIP-712 hashing and encoding through safe-eth-py.

Owners are ape accounts (keystores, hardware wallets, test accounts); this module never sees a
private key. Every signature is recovered and checked against the account that produced it before
it is used, so a wrong-chain or wrong-payload signature cannot slip through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from eth_account.messages import encode_typed_data
from safe_eth.safe.safe_signature import SafeSignature, SafeSignatureEOA
from safe_eth.safe.safe_tx import SafeTx
from safe_eth.safe.signatures import signature_to_bytes

from treasury.addresses import ZERO_ADDRESS, parse_address
from treasury.errors import InvalidInput

if TYPE_CHECKING:
    from ape.api import AccountAPI

CALL, DELEGATE_CALL = 0, 1


def build_safe_tx(
    safe: str,
    to: str,
    value: int = 0,
    data: bytes = b"",
    operation: int = CALL,
    *,
    nonce: int,
    chain_id: int,
    version: str,
    safe_tx_gas: int = 0,
    base_gas: int = 0,
    gas_price: int = 0,
    gas_token: str = ZERO_ADDRESS,
    refund_receiver: str = ZERO_ADDRESS,
) -> SafeTx:
    """A SafeTx whose hashes are computed offline: nonce, chain id and version are given."""
    if value < 0:
        raise InvalidInput(f"value {value} is negative")
    if operation not in (CALL, DELEGATE_CALL):
        raise InvalidInput(f"operation {operation} is neither CALL (0) nor DELEGATECALL (1)")
    return SafeTx(
        None,  # no client: every field the hash needs is given explicitly
        parse_address(safe, "Safe"),
        parse_address(to, "recipient"),
        value,
        data,
        operation,
        safe_tx_gas,
        base_gas,
        gas_price,
        parse_address(gas_token, "gas token"),
        parse_address(refund_receiver, "refund receiver"),
        safe_nonce=nonce,
        safe_version=version,
        chain_id=chain_id,
    )


def sign_safe_tx(account: "AccountAPI", safe_tx: SafeTx) -> SafeSignatureEOA:
    """Have `account` sign the transaction's EIP-712 typed data; verify the signer by recovery."""
    message = encode_typed_data(full_message=safe_tx.eip712_structured_data)
    signed = account.sign_message(message)
    if signed is None:
        raise InvalidInput(f"account {account.address} declined to sign")
    v = signed.v + 27 if signed.v in (0, 1) else signed.v  # some wallets answer with v in {0, 1}
    raw = signature_to_bytes(v, int.from_bytes(signed.r, "big"), int.from_bytes(signed.s, "big"))
    (signature,) = SafeSignature.parse_signature(raw, safe_tx.safe_tx_hash)
    if signature.owner != account.address:
        raise InvalidInput(f"signature recovers to {signature.owner}, not to the signing account {account.address}")
    return signature


def encode_signatures(signatures: Sequence[SafeSignature]) -> bytes:
    """Signatures in the form execTransaction expects: sorted by owner address, concatenated."""
    return bytes(SafeSignature.export_signatures(list(signatures)))
