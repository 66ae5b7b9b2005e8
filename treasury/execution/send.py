"""Send a signed Safe transaction with execTransaction and report what the Safe said.

Sending is split in two so a caller can write the transaction down in between: `sign_execution`
(estimate, then sign at the sender's pending nonce; its hash is known from here on) and
`broadcast` (eth_sendRawTransaction, receipt, confirmations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils import keccak
from safe_eth.safe.safe_signature import SafeSignature
from safe_eth.safe.safe_tx import SafeTx

from treasury.chain.guard_abi import decode_guard_error
from treasury.chain.safe import safe_instance, safe_nonce
from treasury.decode.revert import explain_revert
from treasury.errors import TreasuryError
from treasury.proposal.safe_tx import build_safe_tx
from treasury.signatures.signing import sign_safe_tx
from treasury.signatures.verification import encode_signatures

if TYPE_CHECKING:
    from ape.api import AccountAPI, ReceiptAPI, TransactionAPI

# The Safe's outcome events: (txHash, payment) in 1.3.0, 1.4.1 and 1.5.0 (indexed from 1.4.1 on).
EXECUTION_SUCCESS = keccak(text="ExecutionSuccess(bytes32,uint256)")
EXECUTION_FAILURE = keccak(text="ExecutionFailure(bytes32,uint256)")


class ExecutionReverted(TreasuryError):
    """execTransaction would revert (found by estimating it before signing): nothing was sent."""

    def __init__(self, reason: str, revert_data: bytes = b""):
        self.revert_data = revert_data
        super().__init__(f"execTransaction would revert, nothing sent: {reason}")


class ExecutionFailed(TreasuryError):
    """The Safe ran the transaction but reported ExecutionFailure (the inner call failed)."""


def exec_arguments(safe_tx: SafeTx, signatures: Sequence[SafeSignature]) -> tuple:
    """execTransaction's arguments, signatures sorted and encoded."""
    return (
        safe_tx.to, safe_tx.value, safe_tx.data, safe_tx.operation, safe_tx.safe_tx_gas, safe_tx.base_gas,
        safe_tx.gas_price, safe_tx.gas_token, safe_tx.refund_receiver, encode_signatures(signatures),
    )


@dataclass(frozen=True)
class Simulation:
    """What execTransaction would do now: succeed, fail inside (ExecutionFailure) or revert."""

    succeeds: bool
    reverted: bool
    revert_data: bytes | None = None
    message: str = ""  # the node's words when there is no revert data


def simulate(safe_tx: SafeTx, signatures: Sequence[SafeSignature], sender: str, version: str) -> Simulation:
    """execTransaction as an eth_call from `sender` against the pending block, sending nothing."""
    from ape import chain
    from web3.exceptions import ContractCustomError, ContractLogicError

    safe = safe_instance(safe_tx.safe_address, version)
    calldata = safe.execTransaction.encode_input(*exec_arguments(safe_tx, signatures))
    try:
        result = chain.provider.web3.eth.call({"from": sender, "to": safe_tx.safe_address, "data": calldata}, "pending")
    except (ContractCustomError, ContractLogicError) as error:
        data = error.data if isinstance(error.data, str) and error.data.startswith("0x") else ""
        return Simulation(False, True, bytes.fromhex(data[2:]) if data else None, error.message or str(error))
    return Simulation(bool(result) and result[-1] == 1, False)


def simulate_execution(
    safe_tx: SafeTx, signatures: Sequence[SafeSignature], sender: AccountAPI, version: str
) -> str | None:
    """Run execTransaction as an eth_call from `sender`: None if it would succeed, else why not.

    The reason is short: the Safe's own GSxxx code, or a TreasuryGuard error with its fields
    (`treasury.decode.revert` words them for people, with token amounts).
    """
    from eth_abi import decode

    outcome = simulate(safe_tx, signatures, sender.address, version)
    if outcome.succeeds:
        return None
    if not outcome.reverted:
        return "the Safe reported ExecutionFailure (the inner call failed)"
    data = outcome.revert_data or b""
    if data[:4] == bytes.fromhex("08c379a0"):  # Error(string), e.g. the Safe's "GS026"
        return decode(["string"], data[4:])[0]
    return decode_guard_error(data)[1] if data else outcome.message


@dataclass(frozen=True)
class SignedExecution:
    """An execTransaction signed by the submitting account, not yet sent.

    Its hash is known before broadcast, so the caller can write it down first: after a crash
    between broadcast and record, the transaction is found by this hash instead of being sent again.
    """

    transaction: TransactionAPI
    tx_hash: str
    raw: bytes
    sender: str
    sender_nonce: int


def sign_execution(
    safe_tx: SafeTx, signatures: Sequence[SafeSignature], sender: AccountAPI, version: str,
    *, confirmations: int | None = None,
) -> SignedExecution:
    """Prepare (gas, EIP-1559 fees) and sign execTransaction as `sender`, at its next free nonce.

    The nonce counts the sender's transactions still in the mempool ("pending"): ape's default
    ("latest") would reuse the nonce of a transaction not yet mined and replace it.
    """
    from ape import chain
    from eth_utils import to_hex

    safe = safe_instance(safe_tx.safe_address, version)
    arguments = exec_arguments(safe_tx, signatures)
    _refuse_if_reverting(safe_tx.safe_address, safe.execTransaction.encode_input(*arguments), sender.address)
    nonce = int(chain.provider.web3.eth.get_transaction_count(sender.address, "pending"))
    options: dict = {"sender": sender, "nonce": nonce}
    if confirmations is not None:
        options["required_confirmations"] = confirmations
    transaction = safe.execTransaction.as_transaction(*arguments, **options)
    signed = sender.sign_transaction(transaction)
    if signed is None or signed.signature is None:
        raise TreasuryError(f"account {sender.address} did not sign the transaction")
    return SignedExecution(signed, to_hex(signed.txn_hash), bytes(signed.serialize_transaction()), sender.address, nonce)


def _refuse_if_reverting(safe: str, calldata: bytes, sender: str) -> None:
    """Estimate the gas at the pending block; a revert becomes ExecutionReverted with its raw data.

    A transaction that would revert is refused before it is signed rather than mined and paid
    for (on a local chain ape would send it with the block gas limit, unestimated).
    """
    from ape import chain
    from web3.exceptions import ContractCustomError, ContractLogicError

    try:
        chain.provider.web3.eth.estimate_gas({"from": sender, "to": safe, "data": "0x" + bytes(calldata).hex()}, "pending")
    except (ContractCustomError, ContractLogicError) as error:
        data = error.data if isinstance(error.data, str) and error.data.startswith("0x") else ""
        reason = explain_revert(data) if data else (error.message or str(error))
        raise ExecutionReverted(reason, bytes.fromhex(data[2:]) if data else b"") from None


def broadcast(signed: SignedExecution) -> ReceiptAPI:
    """Send the signed bytes and wait for the receipt and the required confirmations.

    eth_sendRawTransaction, then receipts and blocks: nothing a hosted node refuses (ape's own
    send path also probes debug_traceTransaction for console logs after every contract call).
    """
    from ape import chain

    provider = chain.provider
    provider.web3.eth.send_raw_transaction(signed.raw)
    confirmations = signed.transaction.required_confirmations
    if confirmations is None:
        confirmations = provider.network.required_confirmations
    return provider.get_receipt(signed.tx_hash, required_confirmations=confirmations)


def safe_outcome(logs: Sequence[dict], safe_address: str, safe_tx_hash: bytes | str) -> bool | None:
    """True/False if the Safe emitted ExecutionSuccess/ExecutionFailure for this safeTxHash, else None.

    Read from raw logs, so it works for a receipt of ours and for a transaction someone else sent.
    The hash is an indexed topic from Safe 1.4.1 on and the first data word in 1.3.0.
    """
    wanted = _hash_bytes(safe_tx_hash)
    for log in logs:
        if str(log["address"]).lower() != safe_address.lower() or not log["topics"]:
            continue
        topic = _hash_bytes(log["topics"][0])
        if topic in (EXECUTION_SUCCESS, EXECUTION_FAILURE) and outcome_hash(log) == wanted:
            return topic == EXECUTION_SUCCESS
    return None


def plain_logs(logs: Sequence[Any]) -> list[dict]:
    """Logs of an ape or web3 receipt as {address, topics, data}, the shape safe_outcome reads."""
    return [{"address": log["address"], "topics": log["topics"], "data": log["data"]} for log in logs]


def outcome_hash(log: dict) -> bytes:
    """The safeTxHash an ExecutionSuccess/ExecutionFailure log carries (indexed or not)."""
    if len(log["topics"]) > 1:
        return _hash_bytes(log["topics"][1])
    return _hash_bytes(log["data"])[:32] if log["data"] else b""


def _hash_bytes(value: bytes | str) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def send_safe_tx(
    safe_tx: SafeTx, signatures: Sequence[SafeSignature], sender: AccountAPI, version: str
) -> tuple[ReceiptAPI, bool]:
    """Call execTransaction from `sender`; (receipt, whether the Safe emitted ExecutionSuccess)."""
    receipt = broadcast(sign_execution(safe_tx, signatures, sender, version))
    return receipt, bool(safe_outcome(plain_logs(receipt.logs), safe_tx.safe_address, safe_tx.safe_tx_hash))


def execute_safe_tx(
    safe_tx: SafeTx, signatures: Sequence[SafeSignature], sender: AccountAPI, version: str
) -> ReceiptAPI:
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
    signers: Sequence[AccountAPI],
    sender: AccountAPI,
    **gas_fields,
) -> ReceiptAPI:
    """Build the Safe transaction at the Safe's current nonce, have `signers` sign it, execute it.

    For scripts, tests and benchmarks where the owners are at hand; a treasury team's flow goes
    through proposals and stored signatures instead.
    """
    from ape import chain

    safe_tx = build_safe_tx(
        safe_address, to, value, data, operation,
        nonce=safe_nonce(safe_address, version), chain_id=chain.chain_id, version=version, **gas_fields,
    )
    return execute_safe_tx(safe_tx, [sign_safe_tx(s, safe_tx) for s in signers], sender=sender, version=version)
