"""The proposal store: proposals, signatures, time-lock entries, broadcasts, fork rehearsals,
executions, delegates, signed messages, recovery drills and a hash-chained audit log, on SQLite (embedded default)
or PostgreSQL.

    from treasury.store import Store
    with Store.open(".treasury/treasury.db") as store:          # or "postgresql://user@host/db"
        store.list_proposals(status="pending")

Read the package in this order: `repository` (the Store and its transactions), `records` (what it
returns), `integrity` (content hashes and the audit chain, one declaration per entity),
`schema` and `migrations` (tables and versions), `backends` (paths and URLs), `validation`.
"""

from treasury.store.errors import (
    DuplicateProposal,
    DuplicateSignature,
    InvalidTransition,
    SchemaTooNew,
    StoreBusy,
    TamperedRecord,
    UnknownProposal,
)
from treasury.store.integrity import AuditReport
from treasury.store.lifecycle import (
    BROADCAST_STATUSES,
    PROPOSAL_STATUSES,
    SCHEDULE_STATUSES,
    SIGNATURE_KINDS,
    SIGNATURE_PURPOSES,
    VERIFIERS,
)
from treasury.store.records import (
    AuditEntry,
    BroadcastRecord,
    DelegateRecord,
    DraftRecord,
    DrillRecord,
    ExecutionRecord,
    MessageRecord,
    MessageSignatureRecord,
    OwnerProofRecord,
    ProposalRecord,
    RehearsalRecord,
    ScheduleEntryRecord,
    SignatureRecord,
)
from treasury.store.repository import DEFAULT_BUSY_TIMEOUT, NewSignature, Store, new_signature
from treasury.store.schema import SCHEMA_VERSION, UINT256_MAX

__all__ = [
    "BROADCAST_STATUSES",
    "DEFAULT_BUSY_TIMEOUT",
    "PROPOSAL_STATUSES",
    "SCHEDULE_STATUSES",
    "SCHEMA_VERSION",
    "SIGNATURE_KINDS",
    "SIGNATURE_PURPOSES",
    "UINT256_MAX",
    "VERIFIERS",
    "AuditEntry",
    "AuditReport",
    "BroadcastRecord",
    "DelegateRecord",
    "DraftRecord",
    "DrillRecord",
    "DuplicateProposal",
    "DuplicateSignature",
    "ExecutionRecord",
    "InvalidTransition",
    "MessageRecord",
    "MessageSignatureRecord",
    "NewSignature",
    "OwnerProofRecord",
    "ProposalRecord",
    "RehearsalRecord",
    "ScheduleEntryRecord",
    "SchemaTooNew",
    "SignatureRecord",
    "Store",
    "StoreBusy",
    "TamperedRecord",
    "UnknownProposal",
    "new_signature",
]
