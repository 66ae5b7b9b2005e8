"""A numbered, hashable Safe transaction (SafeTx) from its fields, computed offline.

This is the last step of a proposal: an intent (to, value, data, operation) plus nonce, chain id
and Safe version becomes the SafeTx whose EIP-712 hash owners sign. Everything the hash needs is
given explicitly, so no node is asked and two machines always compute the same safeTxHash.
"""

from __future__ import annotations

from safe_eth.safe.safe_tx import SafeTx

from treasury.addresses import ZERO_ADDRESS, parse_address
from treasury.errors import InvalidInput
from treasury.types import CALL, OPERATION_VALUES


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
    if operation not in OPERATION_VALUES:
        raise InvalidInput(f"operation {operation} is neither CALL (0) nor DELEGATECALL (1)")
    return SafeTx(
        # No client: every field the hash needs is given explicitly (safe-eth-py types the client as required).
        None,  # type: ignore[arg-type]
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
