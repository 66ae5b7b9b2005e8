"""The values the store hands to callers: frozen dataclasses, detached from any session.

Callers never hold a live ORM object (so nobody holds a session or a lock by accident), and every
row is checked against its content hash on its way out: a row edited behind the store's back
raises TamperedRecord here instead of being trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from treasury.errors import InvalidInput
from treasury.files import load_json
from treasury.store.errors import TamperedRecord
from treasury.store.integrity import DRAFT, DRILL, OWNER_PROOF, PROPOSAL, SIGNATURE, check
from treasury.store.lifecycle import (
    BROADCAST_STATUSES,
    DRAFT_STATUSES,
    DRILL_STATUSES,
    PROPOSAL_STATUSES,
    SIGNATURE_PURPOSES,
    VERIFIERS,
    DraftStatus,
    DrillStatus,
    SignaturePurpose,
    Verifier,
)
from treasury.store.schema import (
    AuditRow,
    BroadcastRow,
    DelegateRow,
    DraftRow,
    DrillRow,
    ExecutionRow,
    MessageRow,
    MessageSignatureRow,
    OwnerProofRow,
    ProposalRow,
    RehearsalRow,
    ScheduleRow,
    SignatureRow,
)
from treasury.types import BroadcastStatus, Operation, ProposalStatus, ScheduleStatus, SignatureKind

if TYPE_CHECKING:
    from sqlalchemy.engine import Row


@dataclass(frozen=True, slots=True)
class ProposalRecord:
    """A proposed Safe transaction and where it stands. Fields mirror the SafeTx struct."""

    id: str
    chain_id: int
    safe: str
    nonce: int
    to: str
    value: int
    data: bytes = field(repr=False)  # calldata can be megabytes; keep reprs and logs readable
    operation: Operation
    safe_tx_gas: int
    base_gas: int
    gas_price: int
    gas_token: str
    refund_receiver: str
    safe_tx_hash: str
    title: str
    description: str
    proposer: str
    status: ProposalStatus
    created_at: datetime
    content_hash: str


@dataclass(frozen=True, slots=True)
class DraftRecord:
    """A Safe transaction the policy denied, kept without a nonce (schema version 5).

    `reason`: the verdict that denied it. `status` "draft" until it is "promoted" (to proposal
    `proposal_id`) or "dropped" (`note` says why).
    """

    id: str
    chain_id: int
    safe: str
    to: str
    value: int
    data: bytes = field(repr=False)
    operation: Operation
    title: str
    description: str
    proposer: str
    reason: str
    status: DraftStatus
    proposal_id: str | None
    note: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DrillRecord:
    """A recovery drill (schema version 6): the challenge every owner signs to prove control of its key.

    `challenge`: the EIP-712 typed data as issued (eth_signTypedData_v4 shape); `nonce` its fresh
    bytes32 (0x-hex); `require_device`: owners who must sign through a hardware wallet. Times are
    unix seconds. `status` "open" until "closed".
    """

    id: str
    chain_id: int
    safe: str
    nonce: str
    challenge: dict[str, Any] = field(repr=False)
    require_device: tuple[str, ...]
    created_at: int
    expires_at: int
    status: DrillStatus


@dataclass(frozen=True, slots=True)
class OwnerProofRecord:
    """One owner's verified signature of a drill's challenge: its proof of control at `proved_at` (unix s).

    `via`: how it signed (keyfile, test, hardware, browser, contract, ...); `signature` 0x-hex (for a
    contract owner: what its isValidSignature accepted).
    """

    id: int
    drill_id: str
    chain_id: int
    safe: str
    owner: str
    via: str
    signature: str
    proved_at: int


@dataclass(frozen=True, slots=True)
class SignatureRecord:
    """One owner's signature (or on-chain approval) for a proposal, and what it is over.

    `purpose` "safe_tx": over the proposal's safeTxHash (`signed_hash`); "schedule": over the
    guard's scheduleHash of the proposal's intent at schedule nonce `intent_nonce`; "cancel": over
    the guard's cancelHash of queue entry `entry_id`. `verified_by` (schema version 4) "chain":
    recovered against the owners the chain reported; "bundle": against the owners an imported
    bundle recorded, to re-check (Store.mark_verified) once a node is reachable. `id` names the
    row for that.
    """

    proposal_id: str
    owner: str
    kind: SignatureKind
    signature: bytes
    created_at: datetime
    purpose: SignaturePurpose = "safe_tx"
    signed_hash: str = ""
    intent_nonce: int | None = None
    entry_id: int | None = None
    verified_by: Verifier = "chain"
    id: int = 0


@dataclass(frozen=True, slots=True)
class ScheduleEntryRecord:
    """A proposal queued in a TreasuryGuard time-lock: runnable from `eta` until `expiry`."""

    id: int
    proposal_id: str
    guard: str
    entry_id: int
    eta: int
    expiry: int
    status: ScheduleStatus
    tx_hash: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """An execTransaction that was mined for a proposal (successful or not)."""

    id: int
    proposal_id: str
    tx_hash: str
    block_number: int
    gas_used: int
    success: bool
    executor: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class BroadcastRecord:
    """A signed execTransaction, written down *before* it was sent to the network.

    If the process dies between sending and recording the outcome, the next run finds the
    transaction by `tx_hash` (and can re-send the very same `raw_tx`) instead of signing and sending
    a second one. `raw_tx` is the signed transaction, public once broadcast; it holds no key.
    `status` and `note` change as the transaction's fate becomes known; every other field is fixed.
    """

    id: int
    proposal_id: str
    tx_hash: str
    sender: str
    sender_nonce: int
    raw_tx: bytes = field(repr=False)  # carries the whole calldata; keep reprs and logs readable
    safe_nonce: int
    block_at_send: int
    status: BroadcastStatus
    note: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RehearsalRecord:
    """The outcome of executing a proposal on a local fork of `chain_id` at `block_number`.

    `filled` names the owners whose approvals existed only on the fork (impersonated approveHash
    calls that made up the threshold there): a success that needed them still needs those owners
    to sign for real.
    """

    id: int
    proposal_id: str
    safe_tx_hash: str
    chain_id: int
    block_number: int
    block_hash: str
    success: bool
    reason: str
    gas_used: int | None
    filled: tuple[str, ...]
    executor: str
    rehearsed_at: datetime


@dataclass(frozen=True, slots=True)
class DelegateRecord:
    """An address `delegator` (an owner) allowed to propose for `safe` (None: every Safe it owns),
    as Safe's transaction service keeps delegates; `expiry` in unix seconds (None: never)."""

    id: int
    chain_id: int
    safe: str | None
    delegate: str
    delegator: str
    label: str
    expiry: int | None
    created_at: datetime

    def active_at(self, now: float) -> bool:
        """Whether the delegation still holds at unix time `now`."""
        return self.expiry is None or now < self.expiry


@dataclass(frozen=True, slots=True)
class MessageSignatureRecord:
    """One owner's signature of a message's SafeMessage hash."""

    id: int
    message_id: int
    owner: str
    kind: SignatureKind
    signature: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """An off-chain message for a Safe's owners to sign, and the signatures it has, by owner ascending.

    `message` is what was signed, as the caller encoded it (the server keeps JSON: a string for
    EIP-191 text, an object for EIP-712 typed data).
    """

    id: int
    chain_id: int
    safe: str
    message_hash: str
    message: str
    safe_app_id: int | None
    proposed_by: str
    created_at: datetime
    signatures: tuple[MessageSignatureRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One link of the audit chain. `payload` is a fresh dict per read; mutating it changes nothing."""

    seq: int
    at: datetime
    actor: str
    action: str
    proposal_id: str | None
    payload: dict[str, Any]
    prev_hash: str
    entry_hash: str


def _known_status(row: Any, statuses: tuple[str, ...], what: str) -> None:
    if row.status not in statuses:
        raise TamperedRecord(f"{what} has unknown status {row.status!r}: the row was edited outside the store")


def proposal_record(row: ProposalRow | Row[Any]) -> ProposalRecord:
    """From an ORM row or a plain row of the table (the same names): both are checked alike."""
    PROPOSAL.check(row)
    _known_status(row, PROPOSAL_STATUSES, f"proposal {row.id}")
    return ProposalRecord(
        id=row.id,
        chain_id=row.chain_id,
        safe=row.safe,
        nonce=row.nonce,
        to=row.to_address,
        value=row.value,
        data=bytes(row.data),
        operation=cast(Operation, row.operation),  # the CHECK constraint allows 0 and 1 only
        safe_tx_gas=row.safe_tx_gas,
        base_gas=row.base_gas,
        gas_price=row.gas_price,
        gas_token=row.gas_token,
        refund_receiver=row.refund_receiver,
        safe_tx_hash=row.safe_tx_hash,
        title=row.title,
        description=row.description,
        proposer=row.proposer,
        status=cast(ProposalStatus, row.status),  # a known status: checked above
        created_at=datetime.fromisoformat(row.created_at),
        content_hash=row.content_hash,
    )


def signature_record(row: SignatureRow, safe_tx_hash: str) -> SignatureRecord:
    """`safe_tx_hash`: the proposal's, which a SafeTx signature is over (its row stores no hash)."""
    SIGNATURE.check(row)
    if row.purpose not in SIGNATURE_PURPOSES or row.verified_by not in VERIFIERS:  # pragma: no cover - CHECK constraints
        raise TamperedRecord(f"signature of {row.owner} has an unknown purpose or verifier: the row was edited outside the store")
    return SignatureRecord(
        proposal_id=row.proposal_id,
        owner=row.owner,
        kind=cast(SignatureKind, row.kind),  # the CHECK constraint allows no other
        signature=bytes(row.signature),
        created_at=datetime.fromisoformat(row.created_at),
        purpose=row.purpose,  # one of SIGNATURE_PURPOSES: checked above
        signed_hash=row.signed_hash or safe_tx_hash,
        intent_nonce=row.intent_nonce,
        entry_id=row.entry_id,
        verified_by=row.verified_by,  # one of VERIFIERS: checked above
        id=row.id,
    )


def schedule_record(row: ScheduleRow) -> ScheduleEntryRecord:
    check(row)
    return ScheduleEntryRecord(
        id=row.id,
        proposal_id=row.proposal_id,
        guard=row.guard,
        entry_id=row.entry_id,
        eta=row.eta,
        expiry=row.expiry,
        status=cast(ScheduleStatus, row.status),  # the CHECK constraint allows no other
        tx_hash=row.tx_hash,
        created_at=datetime.fromisoformat(row.created_at),
    )


def execution_record(row: ExecutionRow) -> ExecutionRecord:
    check(row)
    return ExecutionRecord(
        id=row.id,
        proposal_id=row.proposal_id,
        tx_hash=row.tx_hash,
        block_number=row.block_number,
        gas_used=row.gas_used,
        success=bool(row.success),
        executor=row.executor,
        recorded_at=datetime.fromisoformat(row.recorded_at),
    )


def broadcast_record(row: BroadcastRow) -> BroadcastRecord:
    check(row)
    _known_status(row, BROADCAST_STATUSES, f"broadcast {row.id}")
    return BroadcastRecord(
        id=row.id,
        proposal_id=row.proposal_id,
        tx_hash=row.tx_hash,
        sender=row.sender,
        sender_nonce=row.sender_nonce,
        raw_tx=bytes(row.raw_tx),
        safe_nonce=row.safe_nonce,
        block_at_send=row.block_at_send,
        status=cast(BroadcastStatus, row.status),  # a known status: checked above
        note=row.note,
        created_at=datetime.fromisoformat(row.created_at),
    )


def rehearsal_record(row: RehearsalRow) -> RehearsalRecord:
    check(row)
    return RehearsalRecord(
        id=row.id,
        proposal_id=row.proposal_id,
        safe_tx_hash=row.safe_tx_hash,
        chain_id=row.chain_id,
        block_number=row.block_number,
        block_hash=row.block_hash,
        success=bool(row.success),
        reason=row.reason,
        gas_used=row.gas_used,
        filled=tuple(stored_json(row.filled, f"rehearsal {row.id}")),  # hash-checked above, bounded anyway
        executor=row.executor,
        rehearsed_at=datetime.fromisoformat(row.rehearsed_at),
    )


def delegate_record(row: DelegateRow) -> DelegateRecord:
    check(row)
    return DelegateRecord(
        id=row.id,
        chain_id=row.chain_id,
        safe=row.safe,
        delegate=row.delegate,
        delegator=row.delegator,
        label=row.label,
        expiry=row.expiry,
        created_at=datetime.fromisoformat(row.created_at),
    )


def message_signature_record(row: MessageSignatureRow) -> MessageSignatureRecord:
    check(row)
    return MessageSignatureRecord(
        id=row.id,
        message_id=row.message_id,
        owner=row.owner,
        kind=cast(SignatureKind, row.kind),  # the CHECK constraint allows no other
        signature=bytes(row.signature),
        created_at=datetime.fromisoformat(row.created_at),
    )


def message_record(row: MessageRow, signatures: list[MessageSignatureRow]) -> MessageRecord:
    """`signatures`: the message's signature rows, any order (returned by owner ascending)."""
    check(row)
    records = sorted((message_signature_record(s) for s in signatures), key=lambda s: int(s.owner, 16))
    return MessageRecord(
        id=row.id,
        chain_id=row.chain_id,
        safe=row.safe,
        message_hash=row.message_hash,
        message=row.message,
        safe_app_id=row.safe_app_id,
        proposed_by=row.proposed_by,
        created_at=datetime.fromisoformat(row.created_at),
        signatures=tuple(records),
    )


def draft_record(row: DraftRow | Row[Any]) -> DraftRecord:
    """From an ORM row or a plain row of the table, checked against its content hash."""
    DRAFT.check(row)
    _known_status(row, DRAFT_STATUSES, f"draft {row.id}")
    return DraftRecord(
        id=row.id,
        chain_id=row.chain_id,
        safe=row.safe,
        to=row.to_address,
        value=row.value,
        data=bytes(row.data),
        operation=cast(Operation, row.operation),  # the CHECK constraint allows 0 and 1 only
        title=row.title,
        description=row.description,
        proposer=row.proposer,
        reason=row.reason,
        status=cast(DraftStatus, row.status),
        proposal_id=row.proposal_id,
        note=row.note,
        created_at=datetime.fromisoformat(row.created_at),
    )


def drill_record(row: DrillRow | Row[Any]) -> DrillRecord:
    """From an ORM row or a plain row of the table, checked against its content hash."""
    DRILL.check(row)
    _known_status(row, DRILL_STATUSES, f"drill {row.id}")
    challenge = stored_json(row.challenge, f"drill {row.id}'s challenge")
    devices = stored_json(row.require_device, f"drill {row.id}'s device list")
    if not isinstance(challenge, dict) or not isinstance(devices, list):
        raise TamperedRecord(f"drill {row.id} holds JSON the store did not write: the row was edited outside the store")
    return DrillRecord(
        id=row.id,
        chain_id=row.chain_id,
        safe=row.safe,
        nonce=row.nonce,
        challenge=challenge,
        require_device=tuple(str(d) for d in devices),
        created_at=int(row.created_at),
        expires_at=int(row.expires_at),
        status=cast(DrillStatus, row.status),
    )


def owner_proof_record(row: OwnerProofRow | Row[Any], drill: DrillRow | Row[Any]) -> OwnerProofRecord:
    """A proof, checked against its content hash, with its drill's chain and Safe."""
    OWNER_PROOF.check(row)
    return OwnerProofRecord(
        id=row.id,
        drill_id=row.drill_id,
        chain_id=drill.chain_id,
        safe=drill.safe,
        owner=row.owner,
        via=row.via,
        signature="0x" + bytes(row.signature).hex(),
        proved_at=int(row.proved_at),
    )


def stored_json(text: Any, what: str) -> Any:
    """JSON read back from the database, depth-bounded: a row edited outside the store is TamperedRecord."""
    try:
        return load_json(text, what)
    except (InvalidInput, ValueError, TypeError, RecursionError) as error:
        raise TamperedRecord(f"{what} holds JSON the store did not write ({error}): the row was edited outside the store") from None


def audit_record(row: AuditRow | Row[Any]) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        at=datetime.fromisoformat(row.at),
        actor=row.actor,
        action=row.action,
        proposal_id=row.proposal_id,
        payload=stored_json(row.payload, f"audit entry {row.seq}"),
        prev_hash=row.prev_hash,
        entry_hash=row.entry_hash,
    )
