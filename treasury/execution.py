"""Send a signed Safe transaction with execTransaction and report what the Safe said."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from safe_eth.safe.safe_signature import SafeSignature
from safe_eth.safe.safe_tx import SafeTx

from treasury.errors import TreasuryError
from treasury.safe import safe_instance
from treasury.signing import encode_signatures

if TYPE_CHECKING:
    from ape.api import AccountAPI, ReceiptAPI


class ExecutionFailed(TreasuryError):
    """The Safe ran the transaction but reported ExecutionFailure (the inner call failed)."""


def _exec_arguments(safe_tx: SafeTx, signatures: Sequence[SafeSignature]) -> tuple:
    return (
        safe_tx.to, safe_tx.value, safe_tx.data, safe_tx.operation, safe_tx.safe_tx_gas, safe_tx.base_gas,
        safe_tx.gas_price, safe_tx.gas_token, safe_tx.refund_receiver, encode_signatures(signatures),
    )


def simulate_execution(
    safe_tx: SafeTx, signatures: Sequence[SafeSignature], sender: "AccountAPI", version: str
) -> str | None:
    """Run execTransaction as an eth_call from `sender`: None if it would succeed, else why not.

    The reason is decoded: a TreasuryGuard error in words, or the Safe's own GSxxx code.
    """
    from ape import chain
    from eth_abi import decode
    from web3.exceptions import ContractCustomError, ContractLogicError

    from treasury.guard import decode_guard_error

    safe = safe_instance(safe_tx.safe_address, version)
    calldata = safe.execTransaction.encode_input(*_exec_arguments(safe_tx, signatures))
    try:
        result = chain.provider.web3.eth.call({"from": sender.address, "to": safe_tx.safe_address, "data": calldata}, "pending")
    except (ContractCustomError, ContractLogicError) as error:
        data = error.data if isinstance(error.data, str) else ""
        if data.startswith("0x08c379a0"):  # Error(string), e.g. the Safe's "GS026"
            return decode(["string"], bytes.fromhex(data[10:]))[0]
        return decode_guard_error(data)[1] if data else (error.message or str(error))
    return None if result and result[-1] == 1 else "the Safe reported ExecutionFailure (the inner call failed)"


def send_safe_tx(
    safe_tx: SafeTx, signatures: Sequence[SafeSignature], sender: "AccountAPI", version: str
) -> tuple["ReceiptAPI", bool]:
    """Call execTransaction from `sender`; (receipt, whether the Safe emitted ExecutionSuccess)."""
    safe = safe_instance(safe_tx.safe_address, version)
    receipt = safe.execTransaction(*_exec_arguments(safe_tx, signatures), sender=sender)
    return receipt, bool(list(receipt.decode_logs(safe.ExecutionSuccess)))


def execute_safe_tx(
    safe_tx: SafeTx, signatures: Sequence[SafeSignature], sender: "AccountAPI", version: str
) -> "ReceiptAPI":
    """Call execTransaction from `sender` (an owner or any relayer) and require ExecutionSuccess."""
    receipt, success = send_safe_tx(safe_tx, signatures, sender, version)
    if not success:
        raise ExecutionFailed(f"Safe transaction {safe_tx.safe_tx_hash.hex()} executed but its call failed")
    return receipt


def execute_with_owners(
    safe_address: str,
    version: str,
    to: str,
    value: int = 0,
    data: bytes = b"",
    operation: int = 0,
    *,
    signers: Sequence["AccountAPI"],
    sender: "AccountAPI",
    **gas_fields,
) -> "ReceiptAPI":
    """Build the Safe transaction at the Safe's current nonce, have `signers` sign it, execute it.

    For scripts, tests and benchmarks where the owners are at hand; a treasury team's flow goes
    through proposals and stored signatures instead.
    """
    from ape import chain

    from treasury.safe import safe_nonce
    from treasury.signing import build_safe_tx, sign_safe_tx

    safe_tx = build_safe_tx(
        safe_address, to, value, data, operation,
        nonce=safe_nonce(safe_address, version), chain_id=chain.chain_id, version=version, **gas_fields,
    )
    return execute_safe_tx(safe_tx, [sign_safe_tx(s, safe_tx) for s in signers], sender=sender, version=version)
