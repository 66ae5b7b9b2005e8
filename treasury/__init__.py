"""ape-treasury: run a multisig treasury on a Safe from ape.

The public API is what `__all__` lists: `from treasury import Treasury, Policy, ...`. Everything else
is reachable one hop down, by the stage of the data flow it belongs to (DESIGN.md): `proposal`,
`decode`, `policy`, `signatures`, `execution`, `store`, `chain`, `cli`, `testing`.

Kept import-light on purpose: every name is loaded on first use (PEP 562), so `import treasury`
and the CLI's `--help` pay for neither ape nor web3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from treasury._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "treasury.treasury": (
        "PolicyRefusal", "ProposalView", "RehearsalFailed", "StaleProposal", "Treasury", "TreasuryStatus",
    ),
    "treasury.records": ("StoredView", "TreasuryRecords"),
    "treasury.config": ("TreasuryConfig", "TreasuryEntry", "load_config"),
    "treasury.amounts": ("Token", "TokenBook"),
    "treasury.addressbook": ("AddressBook",),
    "treasury.addresses": ("parse_address",),
    "treasury.errors": ("DeploymentError", "InvalidInput", "TreasuryError"),
    "treasury.policy.model": ("AllowedCall", "Policy", "TokenCap"),
    "treasury.policy.verdict": ("Verdict",),
    "treasury.proposal.build": ("Intent",),
    "treasury.proposal.multisend": ("MalformedBatch",),
    "treasury.decode.calls": ("DecodedCall", "DecodedProposal"),
    "treasury.signatures.verification": ("InvalidSignature",),
    "treasury.signatures.exchange": ("InvalidBundle",),
    "treasury.execution.send": ("ExecutionFailed", "ExecutionReverted"),
    "treasury.execution.reconcile": ("Reconciled",),
    "treasury.execution.rehearsal": ("RehearsalReport", "RehearsalUnavailable"),
    "treasury.chain.guard": ("GuardError",),
    "treasury.store": (
        "AuditEntry", "AuditReport", "BroadcastRecord", "DuplicateProposal", "DuplicateSignature", "ExecutionRecord",
        "InvalidTransition", "ProposalRecord", "RehearsalRecord", "ScheduleEntryRecord", "SchemaTooNew",
        "SignatureRecord", "Store", "StoreBusy", "TamperedRecord", "UnknownProposal",
    ),
    "treasury.types": (
        "BroadcastStatus", "EntryStatus", "OpenStatus", "Operation", "ProposalStatus", "ReconcileOutcome",
        "RehearsalOutcome", "ScheduleStatus", "SignatureKind", "VerdictOutcome", "CALL", "DELEGATE_CALL",
    ),
}
__all__ = [
    "CALL",
    "DELEGATE_CALL",
    "AddressBook",
    "AllowedCall",
    "AuditEntry",
    "AuditReport",
    "BroadcastRecord",
    "BroadcastStatus",
    "DecodedCall",
    "DecodedProposal",
    "DeploymentError",
    "DuplicateProposal",
    "DuplicateSignature",
    "EntryStatus",
    "ExecutionFailed",
    "ExecutionRecord",
    "ExecutionReverted",
    "GuardError",
    "Intent",
    "InvalidBundle",
    "InvalidInput",
    "InvalidSignature",
    "InvalidTransition",
    "MalformedBatch",
    "OpenStatus",
    "Operation",
    "Policy",
    "PolicyRefusal",
    "ProposalRecord",
    "ProposalStatus",
    "ProposalView",
    "ReconcileOutcome",
    "Reconciled",
    "RehearsalFailed",
    "RehearsalOutcome",
    "RehearsalRecord",
    "RehearsalReport",
    "RehearsalUnavailable",
    "ScheduleEntryRecord",
    "ScheduleStatus",
    "SchemaTooNew",
    "SignatureKind",
    "SignatureRecord",
    "StaleProposal",
    "Store",
    "StoreBusy",
    "StoredView",
    "TamperedRecord",
    "Token",
    "TokenBook",
    "TokenCap",
    "Treasury",
    "TreasuryConfig",
    "TreasuryEntry",
    "TreasuryError",
    "TreasuryRecords",
    "TreasuryStatus",
    "UnknownProposal",
    "Verdict",
    "VerdictOutcome",
    "load_config",
    "parse_address",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from treasury.addressbook import AddressBook
    from treasury.addresses import parse_address
    from treasury.amounts import Token, TokenBook
    from treasury.chain.guard import GuardError
    from treasury.config import TreasuryConfig, TreasuryEntry, load_config
    from treasury.decode.calls import DecodedCall, DecodedProposal
    from treasury.errors import DeploymentError, InvalidInput, TreasuryError
    from treasury.execution.reconcile import Reconciled
    from treasury.execution.rehearsal import RehearsalReport, RehearsalUnavailable
    from treasury.execution.send import ExecutionFailed, ExecutionReverted
    from treasury.policy.model import AllowedCall, Policy, TokenCap
    from treasury.policy.verdict import Verdict
    from treasury.proposal.build import Intent
    from treasury.proposal.multisend import MalformedBatch
    from treasury.records import StoredView, TreasuryRecords
    from treasury.signatures.exchange import InvalidBundle
    from treasury.signatures.verification import InvalidSignature
    from treasury.store import (
        AuditEntry,
        AuditReport,
        BroadcastRecord,
        DuplicateProposal,
        DuplicateSignature,
        ExecutionRecord,
        InvalidTransition,
        ProposalRecord,
        RehearsalRecord,
        ScheduleEntryRecord,
        SchemaTooNew,
        SignatureRecord,
        Store,
        StoreBusy,
        TamperedRecord,
        UnknownProposal,
    )
    from treasury.treasury import (
        PolicyRefusal,
        ProposalView,
        RehearsalFailed,
        StaleProposal,
        Treasury,
        TreasuryStatus,
    )
    from treasury.types import (
        CALL,
        DELEGATE_CALL,
        BroadcastStatus,
        EntryStatus,
        OpenStatus,
        Operation,
        ProposalStatus,
        ReconcileOutcome,
        RehearsalOutcome,
        ScheduleStatus,
        SignatureKind,
        VerdictOutcome,
    )
