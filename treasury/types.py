"""The small vocabularies every stage shares: statuses, kinds, outcomes and operations.

They are `Literal` types over the very strings (and integers) the store, the JSON output and the
bundles carry today, so typing them changes no stored or printed byte; a type checker then catches a
misspelt status. Each `*_VALUES` tuple is the same set at run time, for validation and for the
store's CHECK constraints, so the two can never disagree. Importing this module costs nothing.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

# A proposal's life in the store. Open proposals can still change; the others are final.
ProposalStatus = Literal["pending", "scheduled", "executed", "failed", "rejected", "superseded", "cancelled"]
OpenStatus = Literal["pending", "scheduled"]

# How an owner's signature is made (see treasury.signatures): the name bundles and the store use.
SignatureKind = Literal["eip712", "eth_sign", "approved_hash", "contract"]

# A stored schedule entry (the store's record of a guard queue entry).
ScheduleStatus = Literal["queued", "executed", "cancelled", "expired"]

# A guard queue entry as read from the chain; "expired" is a pending entry past its expiry.
EntryStatus = Literal["none", "pending", "executed", "cancelled", "expired"]

# Our own execTransaction, written down before it is sent (the write-ahead broadcast record).
BroadcastStatus = Literal["sent", "mined", "dropped"]

# What the guard (or the policy engine, which mirrors it) says about a transaction now.
VerdictOutcome = Literal["allow", "needs-delay", "deny"]

# What reconciling with the chain learned about a proposal.
ReconcileOutcome = Literal[
    "executed", "failed", "reverted", "superseded", "dropped", "in-flight", "lost", "late", "not-on-chain"
]

# A rehearsal on a copy of the chain: the Safe transaction succeeds there, or it fails.
RehearsalOutcome = Literal["succeeds", "fails"]

# A Safe transaction's operation: a call, or a delegatecall (the Safe runs the target's code).
Operation = Literal[0, 1]
CALL: Final = 0
DELEGATE_CALL: Final = 1

PROPOSAL_STATUS_VALUES: tuple[ProposalStatus, ...] = get_args(ProposalStatus)
OPEN_STATUS_VALUES: tuple[OpenStatus, ...] = get_args(OpenStatus)
SIGNATURE_KIND_VALUES: tuple[SignatureKind, ...] = get_args(SignatureKind)
SCHEDULE_STATUS_VALUES: tuple[ScheduleStatus, ...] = get_args(ScheduleStatus)
ENTRY_STATUS_VALUES: tuple[EntryStatus, ...] = get_args(EntryStatus)
BROADCAST_STATUS_VALUES: tuple[BroadcastStatus, ...] = get_args(BroadcastStatus)
VERDICT_OUTCOME_VALUES: tuple[VerdictOutcome, ...] = get_args(VerdictOutcome)
RECONCILE_OUTCOME_VALUES: tuple[ReconcileOutcome, ...] = get_args(ReconcileOutcome)
REHEARSAL_OUTCOME_VALUES: tuple[RehearsalOutcome, ...] = get_args(RehearsalOutcome)
OPERATION_VALUES: tuple[Operation, ...] = get_args(Operation)

__all__ = [
    "BROADCAST_STATUS_VALUES",
    "CALL",
    "DELEGATE_CALL",
    "ENTRY_STATUS_VALUES",
    "OPEN_STATUS_VALUES",
    "OPERATION_VALUES",
    "PROPOSAL_STATUS_VALUES",
    "RECONCILE_OUTCOME_VALUES",
    "REHEARSAL_OUTCOME_VALUES",
    "SCHEDULE_STATUS_VALUES",
    "SIGNATURE_KIND_VALUES",
    "VERDICT_OUTCOME_VALUES",
    "BroadcastStatus",
    "EntryStatus",
    "OpenStatus",
    "Operation",
    "ProposalStatus",
    "ReconcileOutcome",
    "RehearsalOutcome",
    "ScheduleStatus",
    "SignatureKind",
    "VerdictOutcome",
]
