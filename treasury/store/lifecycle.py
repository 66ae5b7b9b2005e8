"""Which statuses each stored thing can have, and which may follow which.

Kept apart from the schema because the same tuples feed the database CHECK constraints, the input
checks and the transition rules; the words themselves are the shared Literal types of
treasury.types, so the store, the JSON output and a type checker all agree.
"""

from __future__ import annotations

from typing import Literal, get_args

from treasury.store.errors import InvalidTransition
from treasury.types import (
    BROADCAST_STATUS_VALUES,
    PROPOSAL_STATUS_VALUES,
    SCHEDULE_STATUS_VALUES,
    SIGNATURE_KIND_VALUES,
)

PROPOSAL_STATUSES = PROPOSAL_STATUS_VALUES
# Only open proposals move; executed/failed/rejected/superseded/cancelled are final because the Safe
# nonce is spent or the owners decided. A scheduled proposal may return to pending when its
# time-lock entry lapsed or was cancelled and the owners want to re-queue.
PROPOSAL_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"scheduled", "executed", "failed", "rejected", "superseded", "cancelled"}),
    "scheduled": frozenset({"pending", "executed", "failed", "rejected", "superseded", "cancelled"}),
}
OPEN_STATUSES = frozenset(PROPOSAL_TRANSITIONS)

SIGNATURE_KINDS = SIGNATURE_KIND_VALUES

# What a stored signature is over (schema version 3): the proposal's safeTxHash, the guard's
# scheduleHash of the proposal's intent at one schedule nonce, or the guard's cancelHash of one
# queue entry. Every signature row before version 3 is a "safe_tx" one.
SignaturePurpose = Literal["safe_tx", "schedule", "cancel"]
SIGNATURE_PURPOSES: tuple[SignaturePurpose, ...] = get_args(SignaturePurpose)

# How a stored signature was verified (schema version 4): by recovery against the owners the chain
# reported ("chain"), or against the owners an imported bundle recorded ("bundle"), offline, to
# be re-checked against the chain when one is reachable (then it becomes "chain", never back).
Verifier = Literal["chain", "bundle"]
VERIFIERS: tuple[Verifier, ...] = get_args(Verifier)

# A draft (schema version 5) is a denied proposal kept without a nonce: it becomes a proposal once
# the policy allows it ("promoted") or is dropped; both are final.
DraftStatus = Literal["draft", "promoted", "dropped"]
DRAFT_STATUSES: tuple[DraftStatus, ...] = get_args(DraftStatus)
DRAFT_TRANSITIONS: dict[str, frozenset[str]] = {"draft": frozenset({"promoted", "dropped"})}

# A recovery drill (schema version 6) is "open" while owners may prove control with it; "closed" is final.
DrillStatus = Literal["open", "closed"]
DRILL_STATUSES: tuple[DrillStatus, ...] = get_args(DrillStatus)
DRILL_TRANSITIONS: dict[str, frozenset[str]] = {"open": frozenset({"closed"})}

SCHEDULE_STATUSES = SCHEDULE_STATUS_VALUES
SCHEDULE_TRANSITIONS: dict[str, frozenset[str]] = {"queued": frozenset({"executed", "cancelled", "expired"})}

# A broadcast is "sent" from the moment it is written (just before the raw transaction goes to the
# network) until someone learns its fate: "mined" (included in a block, whether the Safe call
# succeeded or reverted) or "dropped" (the node no longer knows it, or its sender nonce was used by
# another transaction). Both are final: a dropped transaction is re-sent as a new broadcast.
BROADCAST_STATUSES = BROADCAST_STATUS_VALUES
BROADCAST_TRANSITIONS: dict[str, frozenset[str]] = {"sent": frozenset({"mined", "dropped"})}


def require_proposal_transition(pid: str, current: str, target: str) -> None:
    """Raise InvalidTransition unless a proposal may go from `current` to `target`."""
    if target in PROPOSAL_TRANSITIONS.get(current, frozenset()):
        return
    if current not in PROPOSAL_TRANSITIONS:
        raise InvalidTransition(f"proposal {pid} is {current}, which is final; it cannot become {target}")
    raise InvalidTransition(f"proposal {pid} cannot go from {current} to {target}")
