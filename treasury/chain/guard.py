"""TreasuryGuard from Python: deploy it for a Safe, install it, read it, ask it, schedule and cancel.

Its interface (the shipped artifact, the ABI, the custom errors) is treasury.chain.guard_abi,
which this module re-exports for convenience; the verdict type is treasury.policy.verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_account.messages import encode_typed_data
from eth_utils import function_signature_to_4byte_selector
from safe_eth.safe.safe_signature import SafeSignature
from safe_eth.safe.signatures import signature_to_bytes

from treasury.addresses import ZERO_ADDRESS, parse_address
from treasury.chain.guard_abi import GUARD_ARTIFACT, decode_guard_error, export_guard_artifact, guard_contract_type  # noqa: F401 - re-exported
from treasury.errors import InvalidInput, TreasuryError
from treasury.execution.send import execute_with_owners
from treasury.policy.model import Policy
from treasury.policy.verdict import DELAY_ERRORS, Verdict  # noqa: F401 - DELAY_ERRORS re-exported
from treasury.proposal.multisend import multisend_call_only
from treasury.types import EntryStatus

if TYPE_CHECKING:
    from ape.api import AccountAPI, ReceiptAPI
    from ape.contracts import ContractInstance

# keccak256("guard_manager.guard.address"), identical in Safe 1.3.0, 1.4.1 and 1.5.0
GUARD_STORAGE_SLOT = 0x4A204F620C8C5CCDCA3FD54D003BADD85BA500436A431F0CBDA4F558C93C34C8
# keccak256("module_manager.module_guard.address"), Safe 1.5.0
MODULE_GUARD_STORAGE_SLOT = 0xB104E0B93118902C651344349B610029D694CFDEC91C589C91EBAFBCD0289947
SET_GUARD = function_signature_to_4byte_selector("setGuard(address)")
SET_MODULE_GUARD = function_signature_to_4byte_selector("setModuleGuard(address)")
# The guard's Status enum, by index; "expired" is a pending entry past its expiry (see `entries`).
ENTRY_STATUS: tuple[EntryStatus, ...] = ("none", "pending", "executed", "cancelled")


class GuardError(TreasuryError):
    """The guard refused, or the guard is not in the state an operation needs."""


def constructor_args(safe: str, version: str, policy: Policy) -> list[Any]:
    """The guard's constructor arguments: the whole policy, set before the guard is installed."""
    return [
        parse_address(safe, "Safe"),
        multisend_call_only(version),
        (policy.delay, policy.window, policy.cancel_threshold, list(policy.guardians)),
        [(call.target, call.selector) for call in policy.calls],
        [(call.target, call.selector, [rule.word for rule in call.arguments]) for call in policy.calls if call.arguments],
        list(policy.recipients),
        [
            (cap.token, cap.amount, cap.period, cap.per_tx_limit, cap.delay_above, cap.nft, cap.tier_amount, cap.tier_signers)
            for cap in policy.caps
        ],
    ]


def deploy_guard(safe: str, version: str, policy: Policy, deployer: AccountAPI) -> ContractInstance:
    """Deploy a TreasuryGuard for `safe`, configured with `policy` (not installed yet)."""
    from ape.contracts import ContractContainer

    if policy.allow_refunds:
        raise InvalidInput("allow_refunds can only be switched on through the delay queue after installation")
    return deployer.deploy(ContractContainer(guard_contract_type()), *constructor_args(safe, version, policy))


def guard_at(address: str) -> ContractInstance:
    from ape import chain

    return chain.contracts.instance_at(parse_address(address, "guard"), contract_type=guard_contract_type(), fetch_from_explorer=False)


def installed_guard(safe: str) -> str:
    """The transaction guard the Safe has now (the zero address if none)."""
    from ape import chain
    from eth_utils import to_checksum_address

    word = bytes(chain.provider.get_storage(parse_address(safe, "Safe"), GUARD_STORAGE_SLOT))
    return to_checksum_address(word[-20:])


def install_guard(
    safe: str, version: str, guard: str, *, signers: Sequence[AccountAPI], sender: AccountAPI
) -> list[ReceiptAPI]:
    """Make `guard` the Safe's transaction guard (and on 1.5.0 its module guard as well).

    Only on a Safe without a guard: once a TreasuryGuard is installed, changing the guard is a
    configuration change that must go through its delay queue. The Safe's fallback handler becomes
    TreasuryFallbackHandler first, while that is still immediate: Safe's own handler would let a
    threshold of owners sign permits "as the Safe", past every check of the guard.
    """
    from treasury.chain.handler import handler_address, installed_handler, set_fallback_handler_data

    guard = parse_address(guard, "guard")
    current = installed_guard(safe)
    if current == guard:
        return []
    if current != ZERO_ADDRESS:
        raise GuardError(f"the Safe already has guard {current}; replacing it must be scheduled through that guard")
    if guard_at(guard).SAFE() != parse_address(safe, "Safe"):
        raise GuardError(f"guard {guard} was deployed for another Safe")
    argument = bytes(12) + bytes.fromhex(guard[2:])
    calls = [SET_GUARD + argument]
    if version == "1.5.0":
        # The module guard first: once the transaction guard is set, changing it needs the delay.
        calls.insert(0, SET_MODULE_GUARD + argument)
    if installed_handler(safe) != handler_address():
        from ape import chain

        if not bytes(chain.provider.get_code(handler_address())):
            raise GuardError(f"TreasuryFallbackHandler {handler_address()} is not deployed; run `ape run deploy` first")
        calls.insert(0, set_fallback_handler_data())
    receipts = [execute_with_owners(safe, version, safe, 0, data, signers=signers, sender=sender) for data in calls]
    return receipts


def predict_verdict(
    guard: ContractInstance, to: str, value: int = 0, data: bytes = b"", operation: int = 0, gas_price: int = 0
) -> Verdict:
    """Run the guard's check as the Safe would (an eth_call from the Safe), sending nothing.

    The verdict therefore comes from the guard's own code and live state: budget left, schedule.
    """
    from ape import chain
    from web3.exceptions import ContractCustomError, ContractLogicError

    calldata = guard.checkTransaction.encode_input(
        parse_address(to, "recipient"), value, data, operation, 0, 0, gas_price, ZERO_ADDRESS, ZERO_ADDRESS, b"", ZERO_ADDRESS
    )
    try:
        # "pending": the timestamp of the block a transaction would land in, not of the last one.
        chain.provider.web3.eth.call({"from": guard.SAFE(), "to": guard.address, "data": calldata}, "pending")
    except (ContractCustomError, ContractLogicError) as error:
        revert_data = error.data if isinstance(error.data, str) else ""
        name, reason = decode_guard_error(revert_data)
        return Verdict.refused(name, reason, detail=reason)
    return Verdict("allow")


@dataclass(frozen=True)
class ScheduledEntry:
    entry_id: int
    intent_id: str
    eta: int
    expiry: int
    status: EntryStatus  # "pending", "executed", "cancelled" or "expired"


def entries(guard: ContractInstance) -> list[ScheduledEntry]:
    """Every entry the guard's queue has had, newest last."""
    from ape import chain

    now = chain.pending_timestamp
    found = []
    for entry_id in range(1, guard.nextEntryId()):
        intent, eta, expiry, status = guard.getEntry(entry_id)
        name = ENTRY_STATUS[int(status)]
        if name == "pending" and now >= expiry:
            name = "expired"
        found.append(ScheduledEntry(entry_id, "0x" + bytes(intent).hex(), eta, expiry, name))
    return found


def budgets(guard: ContractInstance, policy: Policy) -> dict[str, int]:
    """Budget left now, per token the policy caps (address(0) is the native currency)."""
    return {cap.token: guard.budgetLeft(cap.token) for cap in policy.caps}


# --- the delay queue --------------------------------------------------------------------------


def _typed_data(guard: ContractInstance, primary: str, fields: list[tuple[str, str]], message: dict) -> dict:
    from ape import chain

    return {
        "types": {
            "EIP712Domain": [{"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            primary: [{"name": name, "type": kind} for name, kind in fields],
        },
        "primaryType": primary,
        "domain": {"chainId": chain.chain_id, "verifyingContract": guard.address},
        "message": message,
    }


def schedule_typed_data(guard: ContractInstance, to: str, value: int, data: bytes, operation: int, nonce: int) -> dict:
    """The EIP-712 message owners sign to schedule an intent for the `nonce`-th time.

    The nonce is the intent's own schedule count (`intentState(intent)[0]`), not a queue position:
    signatures collected one owner at a time stay valid whatever else gets scheduled meanwhile, and
    are spent once this intent is scheduled.
    """
    fields = [("safe", "address"), ("to", "address"), ("value", "uint256"), ("data", "bytes"), ("operation", "uint8"), ("nonce", "uint256")]
    message = {"safe": guard.SAFE(), "to": parse_address(to, "recipient"), "value": value, "data": data, "operation": operation, "nonce": nonce}
    return _typed_data(guard, "Schedule", fields, message)


def cancel_typed_data(guard: ContractInstance, entry_id: int) -> dict:
    """The EIP-712 message owners sign to cancel entry `entry_id`."""
    return _typed_data(guard, "Cancel", [("safe", "address"), ("entryId", "uint256")], {"safe": guard.SAFE(), "entryId": entry_id})


def sign_typed_data(signers: Sequence[AccountAPI], typed_data: dict, expected_hash: bytes) -> bytes:
    """Owner signatures over `typed_data`, checked to be over `expected_hash`, sorted for the Safe."""
    message = encode_typed_data(full_message=typed_data)
    signatures = []
    for signer in signers:
        signed = signer.sign_message(message)
        if signed is None:
            raise InvalidInput(f"account {signer.address} declined to sign")
        v = signed.v + 27 if signed.v in (0, 1) else signed.v  # some wallets answer with v in {0, 1}
        raw = signature_to_bytes(v, int.from_bytes(signed.r, "big"), int.from_bytes(signed.s, "big"))
        (signature,) = SafeSignature.parse_signature(raw, expected_hash)
        if signature.owner != signer.address:
            raise GuardError(f"the signature of {signer.address} is not over the guard's hash {expected_hash.hex()}")
        signatures.append(signature)
    return bytes(SafeSignature.export_signatures(signatures))


@dataclass(frozen=True)
class IntentState:
    """The guard's minority-veto record of one intent."""

    schedule_nonce: int  # times scheduled: the nonce the next schedule signatures commit to
    cancels: int  # cancels in its current epoch (since it last executed)
    not_before: int  # it cannot be scheduled again before this time


def intent_state(guard: ContractInstance, to: str, value: int, data: bytes, operation: int) -> IntentState:
    """The intent's record on the guard (read live)."""
    intent = guard.intentId(parse_address(to, "recipient"), value, data, operation)
    nonce, cancels, not_before = guard.intentState(intent)
    return IntentState(int(nonce), int(cancels), int(not_before))


def schedule_hash(guard: ContractInstance, to: str, value: int, data: bytes, operation: int) -> tuple[int, bytes]:
    """(nonce, hash): the intent's current schedule nonce and the EIP-712 hash owners sign now to schedule it.

    The hash comes from the guard itself, so a signer's tooling and the chain cannot disagree.
    """
    to = parse_address(to, "recipient")
    nonce = intent_state(guard, to, value, data, operation).schedule_nonce
    return nonce, bytes(guard.scheduleHash(to, value, data, operation, nonce))


def cancel_hash(guard: ContractInstance, entry_id: int) -> bytes:
    """The EIP-712 hash owners sign to cancel entry `entry_id`."""
    return bytes(guard.cancelHash(entry_id))


def cancel_signatures_required(guard: ContractInstance, entry_id: int) -> int:
    """How many owner signatures cancel `entry_id`: the cancel threshold, at most the Safe's
    threshold, from owners who have not cancelled its intent since it last executed."""
    return int(guard.cancelSignaturesRequired(entry_id))


def has_cancelled(guard: ContractInstance, entry_id: int, who: str) -> bool:
    """Whether owner or guardian `who` cancelled `entry_id`'s intent in its current epoch (since it
    last executed): then the guard refuses its cancel of that intent (AlreadyCancelledBy)."""
    intent = guard.getEntry(entry_id)[0]
    return bool(guard.hasCancelled(intent, parse_address(who, "canceller")))


def schedule_intent(
    guard: ContractInstance, to: str, value: int, data: bytes, operation: int,
    *, signers: Sequence[AccountAPI], sender: AccountAPI,
) -> int:
    """Put a transaction's intent in the guard's queue with owner signatures; returns the entry id."""
    to = parse_address(to, "recipient")
    nonce, expected = schedule_hash(guard, to, value, data, operation)
    signatures = sign_typed_data(signers, schedule_typed_data(guard, to, value, data, operation, nonce), expected)
    receipt = guard.schedule(to, value, data, operation, signatures, sender=sender)
    return _scheduled_entry_id(guard, receipt)


def _scheduled_entry_id(guard: ContractInstance, receipt: ReceiptAPI) -> int:
    """The entry id from the receipt's Scheduled event (nextEntryId read before sending could race)."""
    for log in guard.Scheduled.from_receipt(receipt):
        return int(log.entryId)
    raise GuardError("the schedule transaction emitted no Scheduled event")


def cancel_entry(guard: ContractInstance, entry_id: int, *, signers: Sequence[AccountAPI], sender: AccountAPI) -> None:
    """Cancel a pending entry with owner signatures that commit to its id.

    It needs `cancel_signatures_required(guard, entry_id)` signers (the minority veto) among those
    who have not cancelled the intent since it last executed: each owner cancels an intent once per
    epoch, so signers who already did are left out. The guard checks the first ones in owner
    order, so extra signers are harmless.
    """
    required = cancel_signatures_required(guard, entry_id)
    fresh = [signer for signer in signers if not has_cancelled(guard, entry_id, signer.address)]
    if len(fresh) < required:
        spent = len(signers) - len(fresh)
        raise GuardError(f"cancelling entry {entry_id} needs {required} owner signatures from owners who have not "
                         f"cancelled its intent since it last ran; got {len(fresh)} ({spent} already cancelled)")
    signers = sorted(fresh, key=lambda signer: int(signer.address, 16))[:required]
    expected = cancel_hash(guard, entry_id)
    guard.cancel(entry_id, sign_typed_data(signers, cancel_typed_data(guard, entry_id), expected), sender=sender)


def cancel_as_guardian(guard: ContractInstance, entry_id: int, *, guardian: AccountAPI) -> None:
    """Cancel a pending entry as a guardian: each guardian cancels an intent once until it executes
    (whatever owners did), so it cannot block a re-scheduled change forever."""
    if not guard.isGuardian(guardian.address):
        raise GuardError(f"{guardian.address} is not a guardian of guard {guard.address}")
    if has_cancelled(guard, entry_id, guardian.address):
        raise GuardError(f"guardian {guardian.address} already cancelled entry {entry_id}'s intent since it last ran")
    guard.cancelAsGuardian(entry_id, sender=guardian)
