"""The durable proposal store: proposals, signatures, time-lock entries, broadcasts, fork rehearsals,
executions and an audit log.

Every step of the treasury flow (propose, sign, schedule, execute) is an append here, and every
mutating method writes one entry to a hash-chained, append-only audit log in the *same* database
transaction as the change, so the log and the data can never disagree: both land or neither does.

Why it is built the way it is:
- SQLAlchemy 2.x ORM so the same code runs on the embedded SQLite default and on PostgreSQL (a
  team signing from several machines points every client at one URL). The only dialect-specific SQL
  is the SQLite connection set-up (WAL, busy timeout, foreign keys) and SQLite's `BEGIN IMMEDIATE`.
- Writers are serialized so that "read the audit head, append after it" is atomic: SQLite takes the
  database write lock up front (`BEGIN IMMEDIATE`), every other dialect row-locks the single
  `audit_head` row with `SELECT ... FOR UPDATE`. Two processes signing at once therefore both keep
  their signature and the audit chain stays linear. A lock that cannot be had right now is retried
  until the busy timeout runs out.
- uint256 quantities are stored as zero-padded 78-digit decimal text: exact on every backend (SQLite
  has no 256-bit integer and its NUMERIC affinity silently rounds through floats) and, being fixed
  width, they still sort numerically, so listing by nonce uses the index.
- Rows carry a `content_hash` over their immutable fields, recomputed on every read: an edit made
  behind the store's back raises `TamperedRecord` instead of being trusted. This (and the audit
  chain) detects accidental or naive edits; someone able to write the database *and* recompute
  SHA-256 can forge both, so keep the database where only the treasury tooling writes it.
- Callers receive frozen dataclasses, never live ORM objects, so nobody holds a session or a lock.
- The schema is versioned (`store_meta.schema_version`). `Store.open` migrates an older store forward
  in one transaction under the write lock, with a `store.migrated` audit entry, so a crash leaves it
  either wholly old or wholly new; a store written by a newer ape-treasury is refused untouched.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    select,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

from treasury.addresses import ZERO_ADDRESS, parse_address
from treasury.errors import InvalidInput, TreasuryError

__all__ = [
    "AuditEntry",
    "AuditReport",
    "BROADCAST_STATUSES",
    "BroadcastRecord",
    "DuplicateProposal",
    "DuplicateSignature",
    "ExecutionRecord",
    "InvalidTransition",
    "PROPOSAL_STATUSES",
    "ProposalRecord",
    "RehearsalRecord",
    "SCHEDULE_STATUSES",
    "SCHEMA_VERSION",
    "SIGNATURE_KINDS",
    "ScheduleEntryRecord",
    "SchemaTooNew",
    "SignatureRecord",
    "Store",
    "StoreBusy",
    "TamperedRecord",
    "UnknownProposal",
]

SCHEMA_VERSION = 2  # 1: proposals, signatures, schedule, executions, audit; 2: + broadcasts, rehearsals
DEFAULT_BUSY_TIMEOUT = 10.0  # seconds a writer waits for another writer before giving up
GENESIS_HASH = "0" * 64  # prev_hash of the first audit entry

UINT256_MAX = 2**256 - 1
_UINT256_DIGITS = 78  # len(str(2**256 - 1))

PROPOSAL_STATUSES = ("pending", "scheduled", "executed", "failed", "rejected", "superseded", "cancelled")
# Which status may follow which. Only open proposals move; executed/failed/rejected/superseded/
# cancelled are final because the Safe nonce is spent or the owners decided. A scheduled proposal may
# return to pending when its time-lock entry lapsed or was cancelled and the owners want to re-queue.
_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"scheduled", "executed", "failed", "rejected", "superseded", "cancelled"}),
    "scheduled": frozenset({"pending", "executed", "failed", "rejected", "superseded", "cancelled"}),
}
_OPEN_STATUSES = frozenset(_TRANSITIONS)

SIGNATURE_KINDS = ("eip712", "eth_sign", "approved_hash", "contract")
SCHEDULE_STATUSES = ("queued", "executed", "cancelled", "expired")
_SCHEDULE_TRANSITIONS: dict[str, frozenset[str]] = {"queued": frozenset({"executed", "cancelled", "expired"})}
# A broadcast is "sent" from the moment it is written (just before the raw transaction goes to the
# network) until someone learns its fate: "mined" (included in a block, whether the Safe call
# succeeded or reverted) or "dropped" (the node no longer knows it, or its sender nonce was used by
# another transaction). Both are final: a dropped transaction is re-sent as a new broadcast.
BROADCAST_STATUSES = ("sent", "mined", "dropped")
_BROADCAST_TRANSITIONS: dict[str, frozenset[str]] = {"sent": frozenset({"mined", "dropped"})}

_HEX32 = re.compile(r"^0x[0-9a-f]{64}$")
_HEX = re.compile(r"^(0x)?([0-9a-fA-F]{2})*$")
_MAX_LABEL = 200  # actor, proposer, title
_MAX_DESCRIPTION = 20_000
_MAX_NOTE = 2_000

T = TypeVar("T")


# --------------------------------------------------------------------------------------------------
# Errors (TreasuryError subclasses; each message is one line a user can act on)


class TamperedRecord(TreasuryError):
    """A stored row no longer matches its content hash: it was edited outside the store."""


class SchemaTooNew(TreasuryError):
    """The database was written by a newer ape-treasury; opening it could corrupt it."""


class StoreBusy(TreasuryError):
    """Another writer held the database longer than the busy timeout."""


class DuplicateSignature(InvalidInput):
    """That owner has already signed this proposal; a Safe counts each owner once."""


class DuplicateProposal(InvalidInput):
    """A proposal with this safeTxHash already exists for this Safe on this chain."""


class UnknownProposal(InvalidInput):
    """No proposal (or schedule entry, or broadcast) has the given id."""


class InvalidTransition(InvalidInput):
    """The requested status change is not allowed from the current status."""


# --------------------------------------------------------------------------------------------------
# Records handed to callers (plain frozen values, detached from any session)


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
    operation: int
    safe_tx_gas: int
    base_gas: int
    gas_price: int
    gas_token: str
    refund_receiver: str
    safe_tx_hash: str
    title: str
    description: str
    proposer: str
    status: str
    created_at: datetime
    content_hash: str


@dataclass(frozen=True, slots=True)
class SignatureRecord:
    """One owner's signature (or on-chain approval) over a proposal's safeTxHash."""

    proposal_id: str
    owner: str
    kind: str
    signature: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ScheduleEntryRecord:
    """A proposal queued in a TreasuryGuard time-lock: runnable from `eta` until `expiry`."""

    id: int
    proposal_id: str
    guard: str
    entry_id: int
    eta: int
    expiry: int
    status: str
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
    status: str
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


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Result of `Store.verify_audit_log()`; truthy when everything checks out.

    `first_bad_seq` is the audit sequence number where the chain first breaks (None when the problem
    is not tied to one entry, e.g. a data row with no audit entry); `problem` says what is wrong.
    """

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None

    def __bool__(self) -> bool:
        return self.ok


# --------------------------------------------------------------------------------------------------
# Schema


class Uint256(TypeDecorator[int]):
    """A uint256 stored as zero-padded decimal text: exact everywhere, and sorts like the number."""

    impl = String(_UINT256_DIGITS)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT256_MAX:
            raise InvalidInput(f"{value!r} is not a uint256")
        return f"{value:0{_UINT256_DIGITS}d}"

    def process_result_value(self, value: str | None, dialect: Any) -> int | None:
        if value is None:
            return None
        text = str(value)
        if not text.isdigit() or len(text) > _UINT256_DIGITS:
            raise TamperedRecord(f"stored value {text[:40]!r} is not a decimal uint256: the row was edited outside the store")
        return int(text)


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    """Key/value facts about the store itself; holds the `schema_version` row."""

    __tablename__ = "store_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class AuditHeadRow(Base):
    """The single row (id=1) naming the last audit entry.

    Writers lock it (`SELECT ... FOR UPDATE`) before appending, which serializes appends on
    databases with row locks; comparing it with the last entry also detects a truncated log tail.
    """

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    entry_hash: Mapped[str] = mapped_column(String(64))


class ProposalRow(Base):
    __tablename__ = "proposals"
    __table_args__ = (
        UniqueConstraint("chain_id", "safe", "safe_tx_hash", name="uq_proposals_safe_tx_hash"),
        Index("ix_proposals_listing", "chain_id", "safe", "status", "nonce"),
        CheckConstraint("operation IN (0, 1)", name="ck_proposals_operation"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in PROPOSAL_STATUSES) + ")", name="ck_proposals_status"
        ),
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    safe: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(Uint256)
    to_address: Mapped[str] = mapped_column(String(42))
    value: Mapped[int] = mapped_column(Uint256)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    operation: Mapped[int] = mapped_column(Integer)
    safe_tx_gas: Mapped[int] = mapped_column(Uint256)
    base_gas: Mapped[int] = mapped_column(Uint256)
    gas_price: Mapped[int] = mapped_column(Uint256)
    gas_token: Mapped[str] = mapped_column(String(42))
    refund_receiver: Mapped[str] = mapped_column(String(42))
    safe_tx_hash: Mapped[str] = mapped_column(String(66))
    title: Mapped[str] = mapped_column(String(_MAX_LABEL))
    description: Mapped[str] = mapped_column(Text)
    proposer: Mapped[str] = mapped_column(String(_MAX_LABEL))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))


class SignatureRow(Base):
    __tablename__ = "signatures"
    __table_args__ = (
        UniqueConstraint("proposal_id", "owner", name="uq_signatures_owner"),
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in SIGNATURE_KINDS) + ")", name="ck_signatures_kind"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.id"))
    owner: Mapped[str] = mapped_column(String(42))
    kind: Mapped[str] = mapped_column(String(16))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))


class ScheduleRow(Base):
    __tablename__ = "schedule_entries"
    __table_args__ = (
        UniqueConstraint("proposal_id", "guard", "entry_id", name="uq_schedule_entry"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in SCHEDULE_STATUSES) + ")", name="ck_schedule_status"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.id"), index=True)
    guard: Mapped[str] = mapped_column(String(42))
    entry_id: Mapped[int] = mapped_column(Uint256)
    eta: Mapped[int] = mapped_column(Uint256)
    expiry: Mapped[int] = mapped_column(Uint256)
    status: Mapped[str] = mapped_column(String(16))
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    created_at: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))


class ExecutionRow(Base):
    __tablename__ = "executions"
    __table_args__ = (UniqueConstraint("proposal_id", "tx_hash", name="uq_execution_tx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.id"), index=True)
    tx_hash: Mapped[str] = mapped_column(String(66))
    block_number: Mapped[int] = mapped_column(BigInteger)
    gas_used: Mapped[int] = mapped_column(BigInteger)
    success: Mapped[bool] = mapped_column(Boolean)
    executor: Mapped[str] = mapped_column(String(42))
    recorded_at: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))


class BroadcastRow(Base):
    """Write-ahead record of a signed execTransaction (schema version 2).

    `tx_hash` is unique across the table: a hash names one transaction, so it can belong to one
    proposal only. `status` and `note` are mutable and stay out of the content hash, as a schedule
    entry's status does; verify_audit_log checks them against the log instead.
    """

    __tablename__ = "broadcasts"
    __table_args__ = (
        UniqueConstraint("tx_hash", name="uq_broadcasts_tx_hash"),
        Index("ix_broadcasts_proposal_status", "proposal_id", "status"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in BROADCAST_STATUSES) + ")", name="ck_broadcasts_status"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.id"))
    tx_hash: Mapped[str] = mapped_column(String(66))
    sender: Mapped[str] = mapped_column(String(42))
    sender_nonce: Mapped[int] = mapped_column(BigInteger)
    raw_tx: Mapped[bytes] = mapped_column(LargeBinary)
    safe_nonce: Mapped[int] = mapped_column(Uint256)
    block_at_send: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))


class RehearsalRow(Base):
    """The result of running a proposal on a fork (schema version 2). Every field is immutable.

    `filled` holds the simulated-only owners as canonical JSON (a sorted list of checksummed
    addresses), so one text column carries any number of them on every backend.
    """

    __tablename__ = "rehearsals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.id"), index=True)
    safe_tx_hash: Mapped[str] = mapped_column(String(66))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    success: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    gas_used: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    filled: Mapped[str] = mapped_column(Text)
    executor: Mapped[str] = mapped_column(String(42))
    rehearsed_at: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))


class AuditRow(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(_MAX_LABEL))
    action: Mapped[str] = mapped_column(String(64))
    proposal_id: Mapped[str | None] = mapped_column(ForeignKey("proposals.id"), nullable=True, index=True)
    payload: Mapped[str] = mapped_column(Text)
    # Unique: two entries claiming the same predecessor would be a fork of the chain.
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


# --------------------------------------------------------------------------------------------------
# Hashing


def _canonical(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces, ASCII) so every implementation hashes the same bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _proposal_hash(row: ProposalRow) -> str:
    """Hash of every immutable proposal field: the SafeTx struct, chain id, Safe, ids and labels."""
    return _sha256(
        _canonical(
            {
                "record": "proposal/v1",
                "id": row.id,
                "chain_id": str(row.chain_id),
                "safe": row.safe,
                "nonce": str(row.nonce),
                "to": row.to_address,
                "value": str(row.value),
                "data_sha256": hashlib.sha256(bytes(row.data)).hexdigest(),
                "data_length": len(row.data),
                "operation": row.operation,
                "safe_tx_gas": str(row.safe_tx_gas),
                "base_gas": str(row.base_gas),
                "gas_price": str(row.gas_price),
                "gas_token": row.gas_token,
                "refund_receiver": row.refund_receiver,
                "safe_tx_hash": row.safe_tx_hash,
                "title": row.title,
                "description": row.description,
                "proposer": row.proposer,
                "created_at": row.created_at,
            }
        )
    )


def _signature_hash(row: SignatureRow) -> str:
    return _sha256(
        _canonical(
            {
                "record": "signature/v1",
                "proposal_id": row.proposal_id,
                "owner": row.owner,
                "kind": row.kind,
                "signature": "0x" + bytes(row.signature).hex(),
                "created_at": row.created_at,
            }
        )
    )


def _schedule_hash(row: ScheduleRow) -> str:
    return _sha256(
        _canonical(
            {
                "record": "schedule/v1",
                "id": row.id,
                "proposal_id": row.proposal_id,
                "guard": row.guard,
                "entry_id": str(row.entry_id),
                "eta": str(row.eta),
                "expiry": str(row.expiry),
                "tx_hash": row.tx_hash,
                "created_at": row.created_at,
            }
        )
    )


def _execution_hash(row: ExecutionRow) -> str:
    return _sha256(
        _canonical(
            {
                "record": "execution/v1",
                "id": row.id,
                "proposal_id": row.proposal_id,
                "tx_hash": row.tx_hash,
                "block_number": str(row.block_number),
                "gas_used": str(row.gas_used),
                "success": bool(row.success),
                "executor": row.executor,
                "recorded_at": row.recorded_at,
            }
        )
    )


def _broadcast_hash(row: BroadcastRow) -> str:
    """Hash of the fixed fields only: `status` and `note` move on as the transaction's fate is learned.

    The raw transaction is hashed (with its length) rather than embedded, as proposal calldata is.
    """
    return _sha256(
        _canonical(
            {
                "record": "broadcast/v1",
                "id": row.id,
                "proposal_id": row.proposal_id,
                "tx_hash": row.tx_hash,
                "sender": row.sender,
                "sender_nonce": str(row.sender_nonce),
                "raw_tx_sha256": hashlib.sha256(bytes(row.raw_tx)).hexdigest(),
                "raw_tx_length": len(row.raw_tx),
                "safe_nonce": str(row.safe_nonce),
                "block_at_send": str(row.block_at_send),
                "created_at": row.created_at,
            }
        )
    )


def _rehearsal_hash(row: RehearsalRow) -> str:
    return _sha256(
        _canonical(
            {
                "record": "rehearsal/v1",
                "id": row.id,
                "proposal_id": row.proposal_id,
                "safe_tx_hash": row.safe_tx_hash,
                "chain_id": str(row.chain_id),
                "block_number": str(row.block_number),
                "block_hash": row.block_hash,
                "success": bool(row.success),
                "reason": row.reason,
                "gas_used": None if row.gas_used is None else str(row.gas_used),
                "filled": row.filled,  # the stored JSON text itself: any edit to it shows
                "executor": row.executor,
                "rehearsed_at": row.rehearsed_at,
            }
        )
    )


def _audit_hash(
    seq: int, at: str, actor: str, action: str, proposal_id: str | None, payload: Any, prev_hash: str
) -> str:
    """entry_hash = sha256(canonical JSON of the entry's fields, including its predecessor's hash)."""
    return _sha256(
        _canonical(
            {
                "seq": seq,
                "at": at,
                "actor": actor,
                "action": action,
                "proposal_id": proposal_id,
                "payload": payload,
                "prev_hash": prev_hash,
            }
        )
    )


# --------------------------------------------------------------------------------------------------
# Input checks: shape only. Callers validate meaning (e.g. signatures by recovery) before storing.


def _uint(value: object, what: str, limit: int = UINT256_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be an integer, got {type(value).__name__} {value!r}")
    if value < 0:
        raise InvalidInput(f"{what} {value} is negative")
    if value > limit:
        raise InvalidInput(f"{what} {value} does not fit in {limit.bit_length()} bits")
    return value


def _chain_id(value: object) -> int:
    chain_id = _uint(value, "chain id", 2**63 - 1)
    if chain_id == 0:
        raise InvalidInput("chain id 0 is not a valid EIP-155 chain id")
    return chain_id


def _hash32(value: object, what: str) -> str:
    """A 32-byte hash as lowercase 0x-hex: accepts 32 raw bytes or a 66-character hex string."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if len(raw) != 32:
            raise InvalidInput(f"{what} must be 32 bytes, got {len(raw)}")
        return "0x" + raw.hex()
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a 0x-prefixed hex string, got {type(value).__name__}")
    text = value.lower()
    if not _HEX32.match(text):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidInput(f"{what} {shown!r} is not a 0x-prefixed 32-byte hex hash")
    return text


def _bytes(value: object, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str) and _HEX.match(value):
        return bytes.fromhex(value[2:] if value.startswith("0x") else value)
    raise InvalidInput(f"{what} must be bytes or an even-length hex string")


def _label(value: object, what: str, limit: int = _MAX_LABEL, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text, got {type(value).__name__}")
    text = value.strip()
    if required and not text:
        raise InvalidInput(f"{what} must not be empty")
    if len(text) > limit:
        raise InvalidInput(f"{what} is {len(text)} characters long; the limit is {limit}")
    return text


def _proposal_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"proposal id must be a non-empty string, got {value!r}")
    return value.strip().lower()


def _signature_shape(kind: str, signature: bytes) -> None:
    """Length checks the Safe itself would apply: ECDSA signatures are r, s, v = 65 bytes."""
    if kind in ("eip712", "eth_sign") and len(signature) != 65:
        raise InvalidInput(f"an {kind} signature must be 65 bytes (r, s, v), got {len(signature)}")
    if kind == "approved_hash" and len(signature) not in (0, 65):
        raise InvalidInput(f"an approved_hash signature must be empty or 65 bytes, got {len(signature)}")


def _addresses(value: object, what: str, each: str) -> tuple[str, ...]:
    """A collection of distinct addresses, checksummed and sorted ascending (the Safe's owner order)."""
    if not isinstance(value, (list, tuple, set, frozenset)):  # a lone address string is a classic slip
        raise InvalidInput(f"{what} must be a list of addresses, got {type(value).__name__}")
    parsed = [parse_address(item, each) for item in value]
    if len(set(parsed)) != len(parsed):
        repeated = next(a for a in parsed if parsed.count(a) > 1)
        raise InvalidInput(f"{what} lists {repeated} more than once")
    return tuple(sorted(parsed, key=lambda a: int(a, 16)))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --------------------------------------------------------------------------------------------------
# Row -> record conversion (with the integrity check)


def _check(row: Any, expected: str, what: str) -> None:
    if row.content_hash != expected:
        raise TamperedRecord(
            f"{what} was modified outside the store (content hash mismatch); do not use it, check the audit log"
        )


def _proposal_record(row: ProposalRow) -> ProposalRecord:
    _check(row, _proposal_hash(row), f"proposal {row.id}")
    if row.status not in PROPOSAL_STATUSES:
        raise TamperedRecord(f"proposal {row.id} has unknown status {row.status!r}: the row was edited outside the store")
    return ProposalRecord(
        id=row.id,
        chain_id=row.chain_id,
        safe=row.safe,
        nonce=row.nonce,
        to=row.to_address,
        value=row.value,
        data=bytes(row.data),
        operation=row.operation,
        safe_tx_gas=row.safe_tx_gas,
        base_gas=row.base_gas,
        gas_price=row.gas_price,
        gas_token=row.gas_token,
        refund_receiver=row.refund_receiver,
        safe_tx_hash=row.safe_tx_hash,
        title=row.title,
        description=row.description,
        proposer=row.proposer,
        status=row.status,
        created_at=_parse_time(row.created_at),
        content_hash=row.content_hash,
    )


def _signature_record(row: SignatureRow) -> SignatureRecord:
    _check(row, _signature_hash(row), f"signature of {row.owner} on proposal {row.proposal_id}")
    return SignatureRecord(
        proposal_id=row.proposal_id,
        owner=row.owner,
        kind=row.kind,
        signature=bytes(row.signature),
        created_at=_parse_time(row.created_at),
    )


def _schedule_record(row: ScheduleRow) -> ScheduleEntryRecord:
    _check(row, _schedule_hash(row), f"schedule entry {row.id}")
    return ScheduleEntryRecord(
        id=row.id,
        proposal_id=row.proposal_id,
        guard=row.guard,
        entry_id=row.entry_id,
        eta=row.eta,
        expiry=row.expiry,
        status=row.status,
        tx_hash=row.tx_hash,
        created_at=_parse_time(row.created_at),
    )


def _execution_record(row: ExecutionRow) -> ExecutionRecord:
    _check(row, _execution_hash(row), f"execution {row.id}")
    return ExecutionRecord(
        id=row.id,
        proposal_id=row.proposal_id,
        tx_hash=row.tx_hash,
        block_number=row.block_number,
        gas_used=row.gas_used,
        success=bool(row.success),
        executor=row.executor,
        recorded_at=_parse_time(row.recorded_at),
    )


def _broadcast_record(row: BroadcastRow) -> BroadcastRecord:
    _check(row, _broadcast_hash(row), f"broadcast {row.id}")
    if row.status not in BROADCAST_STATUSES:
        raise TamperedRecord(f"broadcast {row.id} has unknown status {row.status!r}: the row was edited outside the store")
    return BroadcastRecord(
        id=row.id,
        proposal_id=row.proposal_id,
        tx_hash=row.tx_hash,
        sender=row.sender,
        sender_nonce=row.sender_nonce,
        raw_tx=bytes(row.raw_tx),
        safe_nonce=row.safe_nonce,
        block_at_send=row.block_at_send,
        status=row.status,
        note=row.note,
        created_at=_parse_time(row.created_at),
    )


def _rehearsal_record(row: RehearsalRow) -> RehearsalRecord:
    _check(row, _rehearsal_hash(row), f"rehearsal {row.id}")
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
        filled=tuple(json.loads(row.filled)),  # hash-checked above, so it is the JSON we wrote
        executor=row.executor,
        rehearsed_at=_parse_time(row.rehearsed_at),
    )


def _audit_record(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        at=_parse_time(row.at),
        actor=row.actor,
        action=row.action,
        proposal_id=row.proposal_id,
        payload=json.loads(row.payload),
        prev_hash=row.prev_hash,
        entry_hash=row.entry_hash,
    )


# --------------------------------------------------------------------------------------------------
# Transactions


@dataclass
class _Tx:
    """One write transaction: the session, the locked audit head and the transaction's timestamp."""

    session: Session
    head: AuditHeadRow
    now: str = field(default_factory=_now)

    def audit(self, actor: str, action: str, proposal_id: str | None, payload: Mapping[str, Any]) -> None:
        """Append the audit entry for this transaction's change, after the current head."""
        body = json.loads(_canonical(dict(payload)))  # exactly what will be read back
        seq = self.head.seq + 1
        entry_hash = _audit_hash(seq, self.now, actor, action, proposal_id, body, self.head.entry_hash)
        self.session.add(
            AuditRow(
                seq=seq,
                at=self.now,
                actor=actor,
                action=action,
                proposal_id=proposal_id,
                payload=_canonical(body),
                prev_hash=self.head.entry_hash,
                entry_hash=entry_hash,
            )
        )
        self.head.seq = seq
        self.head.entry_hash = entry_hash
        self.session.flush()


def _is_transient(exc: BaseException) -> bool:
    """Errors that mean "another writer is busy, try again": SQLite locks, PG serialization/deadlock."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).lower()
    if "database is locked" in text or "database table is locked" in text or "database is busy" in text:
        return True
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    return code in {"40001", "40P01", "55P03"}


def _to_url(url_or_path: str | Path) -> str:
    if isinstance(url_or_path, Path):
        return "sqlite:///" + str(url_or_path.expanduser().resolve())
    if not isinstance(url_or_path, str) or not url_or_path.strip():
        raise InvalidInput(f"store location must be a database URL or a file path, got {url_or_path!r}")
    text = url_or_path.strip()
    if text == ":memory:":
        return "sqlite://"
    if "://" in text:
        return text
    return "sqlite:///" + str(Path(text).expanduser().resolve())


# --------------------------------------------------------------------------------------------------
# Migrations: _MIGRATIONS[n] turns a version-n store into a version-(n+1) one. Store.open runs the
# steps in one transaction and sets schema_version after each (see Store._migrate).

_MIGRATION_ACTOR = "ape-treasury"  # the audit actor of a migration: no user asked for it by name


def _migrate_1_to_2(tx: _Tx) -> None:
    """Version 2 adds the `broadcasts` and `rehearsals` tables; no existing row changes.

    The tables are built from the current models. When a later version alters either table, this
    step must go on creating the version-2 shape and leave the change to the step after it.
    """
    tables = [Base.metadata.tables[BroadcastRow.__tablename__], Base.metadata.tables[RehearsalRow.__tablename__]]
    Base.metadata.create_all(tx.session.connection(), tables=tables)


_MIGRATIONS: dict[int, Callable[[_Tx], None]] = {1: _migrate_1_to_2}


# --------------------------------------------------------------------------------------------------
# The store


class Store:
    """The treasury's proposal store. Open it with `Store.open(url_or_path)`; safe to share across threads."""

    def __init__(self, engine: Engine, busy_timeout: float) -> None:
        """Use `Store.open`; this constructor expects an engine already configured by it."""
        self._engine = engine
        self._busy_timeout = busy_timeout
        self._is_sqlite = engine.dialect.name == "sqlite"

    # ---- opening and closing -------------------------------------------------------------------

    @classmethod
    def open(cls, url_or_path: str | Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Store:
        """Open (creating if missing) the store at a SQLAlchemy URL or a SQLite file path.

        Tables and the `schema_version` row are created in one transaction, so a crash during
        creation leaves either nothing or a complete schema. An older store is migrated the same
        way (one transaction, audited as `store.migrated`). A database written by a newer
        ape-treasury is refused rather than risk corrupting it.
        """
        url = _to_url(url_or_path)
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise InvalidInput(f"store URL {url!r} is not a valid SQLAlchemy URL") from exc
        if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
            parent = Path(parsed.database).parent
            if not parent.is_dir():
                raise InvalidInput(f"cannot create the store {parsed.database}: directory {parent} does not exist")
        engine = create_engine(parsed)
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine, busy_timeout)
        store = cls(engine, busy_timeout)
        try:
            store._initialise()
        except DBAPIError as exc:
            engine.dispose()
            reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
            raise TreasuryError(f"cannot open the store {store.url}: {reason}") from exc
        except BaseException:
            engine.dispose()
            raise
        return store

    def close(self) -> None:
        """Release every pooled connection (and, on SQLite, the file handles)."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    def _initialise(self) -> None:
        """Check the schema version; create the schema if it is missing, migrate it if it is older.

        The check is a plain read, so opening an up-to-date store never waits for another process's
        write lock; only creating or migrating takes the write lock (and re-checks under it, so two
        processes opening the same store at once do the work once).
        """

        def version_of(session: Session) -> int | None:
            if not inspect(session.connection()).has_table(MetaRow.__tablename__):
                return None
            stored = session.get(MetaRow, "schema_version")
            if stored is None:
                return None
            try:
                version = int(stored.value)
            except ValueError:
                raise TreasuryError(f"store {self.url} has an unreadable schema_version {stored.value!r}") from None
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"store {self.url} has schema version {version}, newer than this ape-treasury "
                    f"understands ({SCHEMA_VERSION}); upgrade ape-treasury"
                )
            if any(step not in _MIGRATIONS for step in range(version, SCHEMA_VERSION)):
                raise TreasuryError(f"store {self.url} has schema version {version}; no migration to {SCHEMA_VERSION} exists")
            return version

        def complete_version(session: Session) -> int | None:
            """The schema version of a fully created store, None while there is none."""
            version = version_of(session)
            if version is None or session.get(AuditHeadRow, 1) is None:
                return None
            return version

        version = self._read(complete_version)
        if version == SCHEMA_VERSION:
            return
        if version is None:
            self._create_schema(version_of)
            # Normally now current; older if a process running an older ape-treasury created it first.
            version = self._read(complete_version)
        if version is not None and version < SCHEMA_VERSION:
            self._migrate(version_of)

    def _create_schema(self, version_of: Callable[[Session], int | None]) -> None:
        """Create every table, the `schema_version` row and the audit head in one write transaction."""

        def init(session: Session) -> None:
            conn = session.connection()
            if version_of(session) is None:  # re-checked under the write lock
                Base.metadata.create_all(conn)
                session.add(MetaRow(key="schema_version", value=str(SCHEMA_VERSION)))
            if session.get(AuditHeadRow, 1) is None:
                session.add(AuditHeadRow(id=1, seq=0, entry_hash=GENESIS_HASH))

        attempts = 0
        while True:
            try:
                self._retrying(lambda: self._transaction(init, write=True))
                return
            except (IntegrityError, ProgrammingError):
                # Two processes creating the schema at the same moment on a server database: the
                # loser's CREATE/INSERT collides with the winner's; the next attempt finds it done.
                attempts += 1
                if attempts >= 3:
                    raise

    def _migrate(self, version_of: Callable[[Session], int | None]) -> None:
        """Bring an older store up to SCHEMA_VERSION in ONE write transaction, audited step by step.

        It is an ordinary `_write`: the audit head is locked first, then the version is read again,
        so a second process that opened the same old store at the same moment waits, sees the new
        version and does nothing. DDL is transactional on SQLite and PostgreSQL, so a crash (or an
        error) part-way leaves the store exactly at its old version, and the next open retries.
        """

        def migrate(tx: _Tx) -> None:
            version = version_of(tx.session)
            if version is None:  # pragma: no cover - a complete store does not lose its version row
                raise TreasuryError(f"store {self.url} lost its schema_version while being migrated")
            meta = tx.session.get(MetaRow, "schema_version")
            assert meta is not None
            while version < SCHEMA_VERSION:
                _MIGRATIONS[version](tx)
                meta.value = str(version + 1)
                tx.session.flush()
                tx.audit(_MIGRATION_ACTOR, "store.migrated", None, {"from": version, "to": version + 1})
                version += 1

        self._write(migrate)

    # ---- transaction plumbing ------------------------------------------------------------------

    def _transaction(self, fn: Callable[[Session], T], *, write: bool) -> T:
        """Run `fn` in one database transaction: commit if it returns, roll back if it raises."""
        with self._engine.connect() as conn:
            conn.execution_options(treasury_write=write)
            with conn.begin():
                with Session(bind=conn, expire_on_commit=False, autoflush=True) as session:
                    result = fn(session)
                    session.flush()
                    return result

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Repeat `attempt` while the database reports a lock conflict, until the busy timeout."""
        deadline = time.monotonic() + self._busy_timeout
        delay = 0.002
        while True:
            try:
                return attempt()
            except DBAPIError as exc:
                if not _is_transient(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise StoreBusy(
                        f"store {self.url} stayed locked by another writer for {self._busy_timeout:g} s; try again"
                    ) from exc
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.1)

    def _read(self, fn: Callable[[Session], T]) -> T:
        return self._retrying(lambda: self._transaction(fn, write=False))

    def _write(self, fn: Callable[[_Tx], T]) -> T:
        """A serialized write transaction whose first act is to lock the audit head."""

        def body(session: Session) -> T:
            head = session.execute(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()).scalar_one()
            return fn(_Tx(session=session, head=head))

        return self._retrying(lambda: self._transaction(body, write=True))

    # ---- proposals -----------------------------------------------------------------------------

    def add_proposal(
        self,
        *,
        chain_id: int,
        safe: str,
        nonce: int,
        to: str,
        safe_tx_hash: str | bytes,
        proposer: str,
        actor: str,
        value: int = 0,
        data: bytes | str = b"",
        operation: int = 0,
        safe_tx_gas: int = 0,
        base_gas: int = 0,
        gas_price: int = 0,
        gas_token: str = ZERO_ADDRESS,
        refund_receiver: str = ZERO_ADDRESS,
        title: str = "",
        description: str = "",
    ) -> ProposalRecord:
        """Store a new proposal (status `pending`) and its `proposal.added` audit entry.

        The caller computed `safe_tx_hash` from these fields (the store cannot: it depends on the Safe
        version's EIP-712 domain). One proposal per (chain, Safe, safeTxHash): a repeat raises
        DuplicateProposal; several proposals for the same nonce are fine (alternatives, rejections).
        """
        fields = dict(
            chain_id=_chain_id(chain_id),
            safe=parse_address(safe, "Safe"),
            nonce=_uint(nonce, "nonce"),
            to_address=parse_address(to, "recipient"),
            value=_uint(value, "value"),
            data=_bytes(data, "data"),
            operation=operation,
            safe_tx_gas=_uint(safe_tx_gas, "safeTxGas"),
            base_gas=_uint(base_gas, "baseGas"),
            gas_price=_uint(gas_price, "gasPrice"),
            gas_token=parse_address(gas_token, "gas token"),
            refund_receiver=parse_address(refund_receiver, "refund receiver"),
            safe_tx_hash=_hash32(safe_tx_hash, "safeTxHash"),
            title=_label(title, "title", required=False),
            description=_label(description, "description", _MAX_DESCRIPTION, required=False),
            proposer=_label(proposer, "proposer"),
        )
        if isinstance(operation, bool) or operation not in (0, 1):
            raise InvalidInput(f"operation {operation!r} is neither CALL (0) nor DELEGATECALL (1)")
        actor = _label(actor, "actor")

        def write(tx: _Tx) -> ProposalRecord:
            s = tx.session
            existing = s.execute(
                select(ProposalRow.id).where(
                    ProposalRow.chain_id == fields["chain_id"],
                    ProposalRow.safe == fields["safe"],
                    ProposalRow.safe_tx_hash == fields["safe_tx_hash"],
                )
            ).scalar_one_or_none()
            if existing is not None:
                raise DuplicateProposal(
                    f"safeTxHash {fields['safe_tx_hash']} is already proposal {existing} for {fields['safe']} on chain {fields['chain_id']}"
                )
            new_id = secrets.token_hex(8)
            while s.get(ProposalRow, new_id) is not None:  # 64 random bits: practically never loops
                new_id = secrets.token_hex(8)
            row = ProposalRow(id=new_id, status="pending", created_at=tx.now, **fields)
            row.content_hash = _proposal_hash(row)
            s.add(row)
            s.flush()
            tx.audit(
                actor,
                "proposal.added",
                row.id,
                {
                    "content_hash": row.content_hash,
                    "chain_id": str(row.chain_id),
                    "safe": row.safe,
                    "nonce": str(row.nonce),
                    "safe_tx_hash": row.safe_tx_hash,
                    "status_to": "pending",
                },
            )
            return _proposal_record(row)

        return self._write(write)

    def get_proposal(self, proposal_id: str) -> ProposalRecord:
        """The proposal with this id; raises UnknownProposal, or TamperedRecord if it was edited."""
        pid = _proposal_id(proposal_id)

        def read(s: Session) -> ProposalRecord:
            return _proposal_record(_load_proposal(s, pid))

        return self._read(read)

    def find_by_safe_tx_hash(self, chain_id: int, safe: str, safe_tx_hash: str | bytes) -> ProposalRecord | None:
        """The proposal for this safeTxHash on this Safe and chain, or None (e.g. to spot re-proposals)."""
        chain = _chain_id(chain_id)
        address = parse_address(safe, "Safe")
        digest = _hash32(safe_tx_hash, "safeTxHash")

        def read(s: Session) -> ProposalRecord | None:
            row = s.execute(
                select(ProposalRow).where(
                    ProposalRow.chain_id == chain, ProposalRow.safe == address, ProposalRow.safe_tx_hash == digest
                )
            ).scalar_one_or_none()
            return None if row is None else _proposal_record(row)

        return self._read(read)

    def list_proposals(
        self,
        safe: str | None = None,
        chain_id: int | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[ProposalRecord]:
        """Proposals matching every given filter, ordered by chain, Safe, nonce, then age.

        The (chain_id, safe, status, nonce) index serves the common "open proposals of this Safe"
        query without a table scan. Every row returned is integrity-checked.
        """
        query = select(ProposalRow)
        if chain_id is not None:
            query = query.where(ProposalRow.chain_id == _chain_id(chain_id))
        if safe is not None:
            query = query.where(ProposalRow.safe == parse_address(safe, "Safe"))
        if status is not None:
            if status not in PROPOSAL_STATUSES:
                raise InvalidInput(f"status {status!r} is not one of {', '.join(PROPOSAL_STATUSES)}")
            query = query.where(ProposalRow.status == status)
        query = query.order_by(ProposalRow.chain_id, ProposalRow.safe, ProposalRow.nonce, ProposalRow.created_at, ProposalRow.id)
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise InvalidInput(f"limit must be a positive integer, got {limit!r}")
            query = query.limit(limit)

        def read(s: Session) -> list[ProposalRecord]:
            return [_proposal_record(row) for row in s.execute(query).scalars()]

        return self._read(read)

    def set_status(self, proposal_id: str, status: str, actor: str, note: str = "") -> ProposalRecord:
        """Move a proposal to `status` if the transition is allowed; executed/failed/... are final.

        Raises InvalidTransition otherwise (store unchanged). `note` says why, for the audit log.
        """
        pid = _proposal_id(proposal_id)
        if status not in PROPOSAL_STATUSES:
            raise InvalidInput(f"status {status!r} is not one of {', '.join(PROPOSAL_STATUSES)}")
        actor = _label(actor, "actor")
        note = _label(note, "note", _MAX_NOTE, required=False)

        def write(tx: _Tx) -> ProposalRecord:
            row = _load_proposal(tx.session, pid)
            _proposal_record(row)  # refuse to build on a tampered row
            previous = row.status
            _require_transition(pid, previous, status)
            row.status = status
            tx.session.flush()
            tx.audit(actor, "status.changed", pid, {"status_from": previous, "status_to": status, "note": note})
            return _proposal_record(row)

        return self._write(write)

    # ---- signatures ----------------------------------------------------------------------------

    def add_signature(
        self, proposal_id: str, owner: str, kind: str, signature: bytes | str, actor: str
    ) -> SignatureRecord:
        """Store one owner's signature on an open proposal, with its audit entry.

        The caller has already checked the signature by recovery against the Safe's owners. An owner
        who already signed raises DuplicateSignature and the store is left unchanged, so a re-sent
        signature can never be counted twice toward the threshold.
        """
        pid = _proposal_id(proposal_id)
        owner_address = parse_address(owner, "owner")
        if kind not in SIGNATURE_KINDS:
            raise InvalidInput(f"signature kind {kind!r} is not one of {', '.join(SIGNATURE_KINDS)}")
        raw = _bytes(signature, "signature")
        _signature_shape(kind, raw)
        actor = _label(actor, "actor")

        def write(tx: _Tx) -> SignatureRecord:
            s = tx.session
            proposal = _load_proposal(s, pid)
            _proposal_record(proposal)
            if proposal.status not in _OPEN_STATUSES:
                raise InvalidTransition(f"proposal {pid} is {proposal.status}; it takes no more signatures")
            taken = s.execute(
                select(SignatureRow.id).where(SignatureRow.proposal_id == pid, SignatureRow.owner == owner_address)
            ).scalar_one_or_none()
            if taken is not None:
                raise DuplicateSignature(f"owner {owner_address} has already signed proposal {pid}")
            row = SignatureRow(proposal_id=pid, owner=owner_address, kind=kind, signature=raw, created_at=tx.now)
            row.content_hash = _signature_hash(row)
            s.add(row)
            s.flush()
            tx.audit(
                actor, "signature.added", pid, {"owner": owner_address, "kind": kind, "content_hash": row.content_hash}
            )
            return _signature_record(row)

        return self._write(write)

    def _rows_of(self, proposal_id: str, row_type: type, to_record: Callable[[Any], T]) -> list[T]:
        """A proposal's rows of one kind (schedule entries, rehearsals, executions), oldest first."""
        pid = _proposal_id(proposal_id)

        def read(s: Session) -> list[T]:
            _load_proposal(s, pid)
            rows = s.execute(select(row_type).where(row_type.proposal_id == pid).order_by(row_type.id))
            return [to_record(r) for r in rows.scalars()]

        return self._read(read)

    def signatures(self, proposal_id: str) -> list[SignatureRecord]:
        """A proposal's signatures sorted by owner address ascending, the order execTransaction needs."""
        pid = _proposal_id(proposal_id)

        def read(s: Session) -> list[SignatureRecord]:
            _load_proposal(s, pid)
            rows = s.execute(select(SignatureRow).where(SignatureRow.proposal_id == pid)).scalars()
            return sorted((_signature_record(r) for r in rows), key=lambda r: int(r.owner, 16))

        return self._read(read)

    # ---- time-lock schedule --------------------------------------------------------------------

    def add_schedule_entry(
        self,
        proposal_id: str,
        *,
        guard: str,
        entry_id: int,
        eta: int,
        expiry: int,
        actor: str,
        tx_hash: str | bytes | None = None,
    ) -> ScheduleEntryRecord:
        """Record that the proposal was queued in a guard's time-lock (`tx_hash`: the queuing tx).

        A pending proposal becomes `scheduled` in the same transaction. `eta`/`expiry` are the
        guard's unix timestamps; the entry starts `queued`.
        """
        pid = _proposal_id(proposal_id)
        fields = dict(
            guard=parse_address(guard, "guard"),
            entry_id=_uint(entry_id, "schedule entry id"),
            eta=_uint(eta, "eta"),
            expiry=_uint(expiry, "expiry"),
            tx_hash=None if tx_hash is None else _hash32(tx_hash, "transaction hash"),
        )
        if fields["expiry"] <= fields["eta"]:
            raise InvalidInput(f"expiry {fields['expiry']} must be later than eta {fields['eta']}")
        actor = _label(actor, "actor")

        def write(tx: _Tx) -> ScheduleEntryRecord:
            s = tx.session
            proposal = _load_proposal(s, pid)
            _proposal_record(proposal)
            if proposal.status not in _OPEN_STATUSES:
                raise InvalidTransition(f"proposal {pid} is {proposal.status}; it cannot be scheduled")
            clash = s.execute(
                select(ScheduleRow.id).where(
                    ScheduleRow.proposal_id == pid,
                    ScheduleRow.guard == fields["guard"],
                    ScheduleRow.entry_id == fields["entry_id"],
                )
            ).scalar_one_or_none()
            if clash is not None:
                raise InvalidInput(f"guard entry {fields['entry_id']} is already recorded for proposal {pid} (schedule entry {clash})")
            row = ScheduleRow(proposal_id=pid, status="queued", created_at=tx.now, content_hash="", **fields)
            s.add(row)
            s.flush()  # assigns row.id, which the content hash covers
            row.content_hash = _schedule_hash(row)
            payload: dict[str, Any] = {
                "schedule_id": row.id,
                "guard": row.guard,
                "entry_id": str(row.entry_id),
                "eta": str(row.eta),
                "expiry": str(row.expiry),
                "tx_hash": row.tx_hash,
                "content_hash": row.content_hash,
                "schedule_status_to": "queued",
            }
            if proposal.status == "pending":
                proposal.status = "scheduled"
                payload.update(status_from="pending", status_to="scheduled")
            s.flush()
            tx.audit(actor, "schedule.added", pid, payload)
            return _schedule_record(row)

        return self._write(write)

    def set_schedule_status(self, schedule_id: int, status: str, actor: str, note: str = "") -> ScheduleEntryRecord:
        """Mark a queued time-lock entry executed, cancelled or expired (those are final).

        The proposal's own status is changed separately (set_status / record_execution), because a
        lapsed entry may be re-queued while the proposal stays open.
        """
        sid = _uint(schedule_id, "schedule entry id", 2**63 - 1)
        if status not in SCHEDULE_STATUSES:
            raise InvalidInput(f"schedule status {status!r} is not one of {', '.join(SCHEDULE_STATUSES)}")
        actor = _label(actor, "actor")
        note = _label(note, "note", _MAX_NOTE, required=False)

        def write(tx: _Tx) -> ScheduleEntryRecord:
            row = tx.session.get(ScheduleRow, sid)
            if row is None:
                raise UnknownProposal(f"no schedule entry {sid} in the store")
            _schedule_record(row)
            previous = row.status
            if status not in _SCHEDULE_TRANSITIONS.get(previous, frozenset()):
                raise InvalidTransition(f"schedule entry {sid} is {previous}; it cannot become {status}")
            row.status = status
            tx.session.flush()
            tx.audit(
                actor,
                "schedule.status",
                row.proposal_id,
                {"schedule_id": sid, "schedule_status_from": previous, "schedule_status_to": status, "note": note},
            )
            return _schedule_record(row)

        return self._write(write)

    def schedule_entries(self, proposal_id: str) -> list[ScheduleEntryRecord]:
        """A proposal's time-lock entries, oldest first."""
        return self._rows_of(proposal_id, ScheduleRow, _schedule_record)

    # ---- fork rehearsals -----------------------------------------------------------------------

    def record_rehearsal(
        self,
        proposal_id: str,
        *,
        safe_tx_hash: str | bytes,
        chain_id: int,
        block_number: int,
        block_hash: str | bytes,
        success: bool,
        reason: str,
        gas_used: int | None,
        filled: list[str] | tuple[str, ...],
        executor: str,
        actor: str,
    ) -> RehearsalRecord:
        """Keep the result of executing an open proposal on a local fork, with its audit entry.

        A rehearsal says whether *this* SafeTx would run, so `safe_tx_hash` must be the proposal's
        own: a result for any other transaction is refused rather than filed under the wrong
        proposal. Only open (pending/scheduled) proposals are rehearsed: once one is executed or
        closed, what a fork would have done no longer informs any decision. `block_number` and
        `block_hash` pin the fork point, `filled` the owners whose approvals were simulated.
        """
        pid = _proposal_id(proposal_id)
        if not isinstance(success, bool):
            raise InvalidInput("success must be True or False")
        fields = dict(
            safe_tx_hash=_hash32(safe_tx_hash, "safeTxHash"),
            chain_id=_chain_id(chain_id),
            block_number=_uint(block_number, "block number", 2**63 - 1),
            block_hash=_hash32(block_hash, "block hash"),
            success=success,
            reason=_label(reason, "reason", _MAX_NOTE, required=False),
            gas_used=None if gas_used is None else _uint(gas_used, "gas used", 2**63 - 1),
            filled=_canonical(list(_addresses(filled, "filled owners", "filled owner"))),
            executor=parse_address(executor, "executor"),
        )
        actor = _label(actor, "actor")

        def write(tx: _Tx) -> RehearsalRecord:
            s = tx.session
            proposal = _load_proposal(s, pid)
            _proposal_record(proposal)
            if proposal.status not in _OPEN_STATUSES:
                raise InvalidTransition(f"proposal {pid} is {proposal.status}; only open proposals are rehearsed")
            if fields["safe_tx_hash"] != proposal.safe_tx_hash:
                raise InvalidInput(
                    f"rehearsed safeTxHash {fields['safe_tx_hash']} is not proposal {pid}'s ({proposal.safe_tx_hash})"
                )
            row = RehearsalRow(proposal_id=pid, rehearsed_at=tx.now, content_hash="", **fields)
            s.add(row)
            s.flush()  # assigns row.id, which the content hash covers
            row.content_hash = _rehearsal_hash(row)
            s.flush()
            tx.audit(
                actor,
                "rehearsal.recorded",
                pid,
                {
                    "rehearsal_id": row.id,
                    "chain_id": str(row.chain_id),
                    "block_number": str(row.block_number),
                    "success": success,
                    "content_hash": row.content_hash,
                },
            )
            return _rehearsal_record(row)

        return self._write(write)

    def rehearsals(self, proposal_id: str) -> list[RehearsalRecord]:
        """A proposal's fork rehearsals, oldest first."""
        return self._rows_of(proposal_id, RehearsalRow, _rehearsal_record)

    # ---- broadcasts (write-ahead records of sent transactions) --------------------------------

    def record_broadcast(
        self,
        proposal_id: str,
        *,
        tx_hash: str | bytes,
        sender: str,
        sender_nonce: int,
        raw_tx: bytes | str,
        safe_nonce: int,
        block_at_send: int,
        actor: str,
    ) -> BroadcastRecord:
        """Write down a signed execTransaction (status `sent`) BEFORE sending it to the network.

        Call this after signing and before `eth_sendRawTransaction`. If the process then dies, the
        record survives: the next run looks `tx_hash` up on chain and reconciles (record_execution,
        or set_broadcast_status "dropped") instead of sending a second transaction. While a
        proposal has a `sent` broadcast, another one is refused (InvalidInput): that is the double
        send this table exists to prevent. A transaction hash is recorded once, ever.
        """
        pid = _proposal_id(proposal_id)
        fields = dict(
            tx_hash=_hash32(tx_hash, "transaction hash"),
            sender=parse_address(sender, "sender"),
            sender_nonce=_uint(sender_nonce, "sender nonce", 2**63 - 1),
            raw_tx=_bytes(raw_tx, "raw transaction"),
            safe_nonce=_uint(safe_nonce, "Safe nonce"),
            block_at_send=_uint(block_at_send, "block at send", 2**63 - 1),
        )
        if not fields["raw_tx"]:
            raise InvalidInput("raw transaction is empty; store the signed transaction exactly as it is sent")
        actor = _label(actor, "actor")

        def write(tx: _Tx) -> BroadcastRecord:
            s = tx.session
            proposal = _load_proposal(s, pid)
            _proposal_record(proposal)
            if proposal.status not in _OPEN_STATUSES:
                raise InvalidTransition(f"proposal {pid} is {proposal.status}; nothing may be broadcast for it")
            known = s.execute(
                select(BroadcastRow.id, BroadcastRow.proposal_id).where(BroadcastRow.tx_hash == fields["tx_hash"])
            ).one_or_none()
            if known is not None:
                raise InvalidInput(
                    f"transaction {fields['tx_hash']} is already broadcast {known.id} of proposal {known.proposal_id}"
                )
            in_flight = s.execute(
                select(BroadcastRow).where(BroadcastRow.proposal_id == pid, BroadcastRow.status == "sent").limit(1)
            ).scalar_one_or_none()
            if in_flight is not None:
                raise InvalidInput(
                    f"proposal {pid} already has broadcast {in_flight.id} ({in_flight.tx_hash}) in flight; "
                    "reconcile it (mined or dropped) before sending again"
                )
            row = BroadcastRow(proposal_id=pid, status="sent", note="", created_at=tx.now, content_hash="", **fields)
            s.add(row)
            s.flush()  # assigns row.id, which the content hash covers
            row.content_hash = _broadcast_hash(row)
            s.flush()
            tx.audit(
                actor,
                "broadcast.sent",
                pid,
                {
                    "broadcast_id": row.id,
                    "tx_hash": row.tx_hash,
                    "sender": row.sender,
                    "sender_nonce": str(row.sender_nonce),
                    "safe_nonce": str(row.safe_nonce),
                    "block_at_send": str(row.block_at_send),
                    "content_hash": row.content_hash,
                    "broadcast_status_to": "sent",
                },
            )
            return _broadcast_record(row)

        return self._write(write)

    def broadcasts(self, proposal_id: str | None = None, status: str | None = None) -> list[BroadcastRecord]:
        """Broadcasts matching the filters, oldest first; `broadcasts(status="sent")` is the reconcile list."""
        query = select(BroadcastRow).order_by(BroadcastRow.id)
        pid = None if proposal_id is None else _proposal_id(proposal_id)
        if pid is not None:
            query = query.where(BroadcastRow.proposal_id == pid)
        if status is not None:
            if status not in BROADCAST_STATUSES:
                raise InvalidInput(f"broadcast status {status!r} is not one of {', '.join(BROADCAST_STATUSES)}")
            query = query.where(BroadcastRow.status == status)

        def read(s: Session) -> list[BroadcastRecord]:
            if pid is not None:
                _load_proposal(s, pid)
            return [_broadcast_record(r) for r in s.execute(query).scalars()]

        return self._read(read)

    def set_broadcast_status(self, broadcast_id: int, status: str, actor: str, note: str = "") -> BroadcastRecord:
        """Settle a `sent` broadcast as `mined` or `dropped` (both final); `note` is stored with it.

        Allowed whatever the proposal's status, because a transaction's fate is learned after the
        fact: a stale `sent` record of an already executed proposal must still be closable. The
        proposal itself is not touched; record a mined execTransaction with record_execution, which
        also settles the matching broadcast in the same transaction.
        """
        bid = _uint(broadcast_id, "broadcast id", 2**63 - 1)
        if status not in BROADCAST_STATUSES:
            raise InvalidInput(f"broadcast status {status!r} is not one of {', '.join(BROADCAST_STATUSES)}")
        actor = _label(actor, "actor")
        note = _label(note, "note", _MAX_NOTE, required=False)

        def write(tx: _Tx) -> BroadcastRecord:
            row = tx.session.get(BroadcastRow, bid)
            if row is None:
                raise UnknownProposal(f"no broadcast {bid} in the store")
            _broadcast_record(row)
            previous = row.status
            if status not in _BROADCAST_TRANSITIONS.get(previous, frozenset()):
                raise InvalidTransition(f"broadcast {bid} is {previous}; it cannot become {status}")
            row.status = status
            row.note = note
            tx.session.flush()
            tx.audit(
                actor,
                "broadcast.status",
                row.proposal_id,
                {"broadcast_id": bid, "broadcast_status_from": previous, "broadcast_status_to": status, "note": note},
            )
            return _broadcast_record(row)

        return self._write(write)

    # ---- executions ----------------------------------------------------------------------------

    def record_execution(
        self,
        proposal_id: str,
        *,
        tx_hash: str | bytes,
        block_number: int,
        gas_used: int,
        success: bool,
        executor: str,
        actor: str,
        nonce_consumed: bool = True,
    ) -> ExecutionRecord:
        """Record a mined execTransaction for an open proposal and update its status accordingly.

        success -> `executed`. A failure that consumed the Safe nonce (ExecutionFailure event) ->
        `failed`, final. A failure that did not (the whole call reverted, nonce unspent) is recorded
        but leaves the proposal open so it can be retried: pass nonce_consumed=False.

        A `sent` broadcast of this proposal with the same tx_hash becomes `mined` in the same
        transaction (and the audit entry says so): the outcome and the closing of its write-ahead
        record land together, so no crash can leave a recorded execution with a broadcast that still
        looks in flight (which would make the next run reconcile it again).
        """
        pid = _proposal_id(proposal_id)
        if not isinstance(success, bool) or not isinstance(nonce_consumed, bool):
            raise InvalidInput("success and nonce_consumed must be True or False")
        fields = dict(
            tx_hash=_hash32(tx_hash, "transaction hash"),
            block_number=_uint(block_number, "block number", 2**63 - 1),
            gas_used=_uint(gas_used, "gas used", 2**63 - 1),
            success=success,
            executor=parse_address(executor, "executor"),
        )
        actor = _label(actor, "actor")

        def write(tx: _Tx) -> ExecutionRecord:
            s = tx.session
            proposal = _load_proposal(s, pid)
            _proposal_record(proposal)
            new_status = "executed" if success else ("failed" if nonce_consumed else proposal.status)
            if proposal.status not in _OPEN_STATUSES:
                raise InvalidTransition(f"proposal {pid} is already {proposal.status}; no execution can be recorded")
            clash = s.execute(
                select(ExecutionRow.id).where(ExecutionRow.proposal_id == pid, ExecutionRow.tx_hash == fields["tx_hash"])
            ).scalar_one_or_none()
            if clash is not None:
                raise InvalidInput(f"transaction {fields['tx_hash']} is already recorded for proposal {pid}")
            broadcast = s.execute(
                select(BroadcastRow).where(
                    BroadcastRow.proposal_id == pid, BroadcastRow.tx_hash == fields["tx_hash"], BroadcastRow.status == "sent"
                )
            ).scalar_one_or_none()
            if broadcast is not None:
                _broadcast_record(broadcast)  # never build on a forged row
            row = ExecutionRow(proposal_id=pid, recorded_at=tx.now, content_hash="", **fields)
            s.add(row)
            s.flush()
            row.content_hash = _execution_hash(row)
            payload: dict[str, Any] = {
                "execution_id": row.id,
                "tx_hash": row.tx_hash,
                "block_number": str(row.block_number),
                "success": success,
                "content_hash": row.content_hash,
            }
            if new_status != proposal.status:
                payload.update(status_from=proposal.status, status_to=new_status)
                proposal.status = new_status
            if broadcast is not None:
                broadcast.status = "mined"
                broadcast.note = f"mined in block {row.block_number}: execution {row.id}"
                payload.update(
                    broadcast_id=broadcast.id,
                    broadcast_status_from="sent",
                    broadcast_status_to="mined",
                    broadcast_note=broadcast.note,
                )
            s.flush()
            tx.audit(actor, "execution.recorded", pid, payload)
            return _execution_record(row)

        return self._write(write)

    def executions(self, proposal_id: str) -> list[ExecutionRecord]:
        """A proposal's recorded executions, oldest first."""
        return self._rows_of(proposal_id, ExecutionRow, _execution_record)

    # ---- audit log -----------------------------------------------------------------------------

    def audit_entries(self, proposal_id: str | None = None) -> list[AuditEntry]:
        """The audit log in order (optionally one proposal's entries). Call verify_audit_log to trust it."""
        query = select(AuditRow).order_by(AuditRow.seq)
        if proposal_id is not None:
            query = query.where(AuditRow.proposal_id == _proposal_id(proposal_id))

        def read(s: Session) -> list[AuditEntry]:
            return [_audit_record(r) for r in s.execute(query).scalars()]

        return self._read(read)

    def verify_audit_log(self) -> AuditReport:
        """Walk the audit chain and cross-check it against the data; report the first problem.

        Chain: sequence numbers run 1, 2, 3... without gaps, each entry names its predecessor's hash,
        each entry's hash matches its content, and the head row points at the last entry (so edited,
        deleted, reordered and truncated entries are all caught). Data: every proposal, signature,
        schedule entry, broadcast, rehearsal and execution row matches its content hash and has
        exactly the audit entry that created it, and every status (and a broadcast's note) equals
        the last one the log recorded for it.
        """
        return self._read(_verify)


def _load_proposal(session: Session, pid: str) -> ProposalRow:
    row = session.get(ProposalRow, pid)
    if row is None:
        raise UnknownProposal(f"no proposal {pid} in the store")
    return row


def _require_transition(pid: str, current: str, target: str) -> None:
    if target not in _TRANSITIONS.get(current, frozenset()):
        if current not in _TRANSITIONS:
            raise InvalidTransition(f"proposal {pid} is {current}, which is final; it cannot become {target}")
        raise InvalidTransition(f"proposal {pid} cannot go from {current} to {target}")


def _verify(s: Session) -> AuditReport:
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    # What the log says should exist, rebuilt while walking it.
    logged_proposals: dict[str, str] = {}
    logged_status: dict[str, str] = {}
    logged_signatures: dict[tuple[str, str], str] = {}
    logged_schedules: dict[int, str] = {}
    logged_schedule_status: dict[int, str] = {}
    logged_executions: dict[int, str] = {}
    logged_broadcasts: dict[int, str] = {}
    logged_broadcast_state: dict[int, tuple[str, str]] = {}  # id -> (status, note)
    logged_rehearsals: dict[int, str] = {}

    def bad(seq: int | None, problem: str) -> AuditReport:
        return AuditReport(ok=False, entries=count, first_bad_seq=seq, problem=problem)

    for row in s.execute(select(AuditRow).order_by(AuditRow.seq)).scalars():
        if row.seq != expected_seq:
            if row.seq > expected_seq:
                return bad(expected_seq, f"audit entry {expected_seq} is missing (the next entry is {row.seq})")
            return bad(row.seq, f"audit entry {row.seq} is out of order")
        if row.prev_hash != prev_hash:
            return bad(row.seq, f"audit entry {row.seq} does not follow entry {row.seq - 1} (prev_hash mismatch)")
        try:
            payload = json.loads(row.payload)
        except ValueError:
            return bad(row.seq, f"audit entry {row.seq} has a payload that is not JSON")
        if _audit_hash(row.seq, row.at, row.actor, row.action, row.proposal_id, payload, row.prev_hash) != row.entry_hash:
            return bad(row.seq, f"audit entry {row.seq} was edited (entry_hash mismatch)")
        count += 1
        prev_hash = row.entry_hash
        expected_seq += 1

        pid = row.proposal_id
        if row.action == "proposal.added" and pid is not None:
            if pid in logged_proposals:
                return bad(row.seq, f"audit entry {row.seq} adds proposal {pid} a second time")
            logged_proposals[pid] = payload.get("content_hash", "")
        elif row.action == "signature.added" and pid is not None:
            logged_signatures[(pid, payload.get("owner", ""))] = payload.get("content_hash", "")
        elif row.action == "schedule.added":
            logged_schedules[int(payload.get("schedule_id", -1))] = payload.get("content_hash", "")
        elif row.action == "execution.recorded":
            logged_executions[int(payload.get("execution_id", -1))] = payload.get("content_hash", "")
        elif row.action == "broadcast.sent":
            logged_broadcasts[int(payload.get("broadcast_id", -1))] = payload.get("content_hash", "")
        elif row.action == "rehearsal.recorded":
            logged_rehearsals[int(payload.get("rehearsal_id", -1))] = payload.get("content_hash", "")
        if pid is not None and "status_to" in payload:
            logged_status[pid] = payload["status_to"]
        if "schedule_status_to" in payload:
            logged_schedule_status[int(payload.get("schedule_id", -1))] = payload["schedule_status_to"]
        if "broadcast_status_to" in payload:  # broadcast.sent, broadcast.status, execution.recorded
            note = payload.get("broadcast_note", payload.get("note", "")) if row.action != "broadcast.sent" else ""
            logged_broadcast_state[int(payload.get("broadcast_id", -1))] = (payload["broadcast_status_to"], note)

    head = s.get(AuditHeadRow, 1)
    if head is None:
        return bad(None, "the audit head row is missing")
    if head.seq != count or head.entry_hash != prev_hash:
        if head.seq > count:
            return bad(count + 1, f"audit entries {count + 1}..{head.seq} are missing from the end of the log")
        return bad(head.seq or None, f"the audit head (entry {head.seq}) does not match the last entry ({count})")

    try:
        for p in s.execute(select(ProposalRow).order_by(ProposalRow.id)).scalars():
            if p.content_hash != _proposal_hash(p):
                return bad(None, f"proposal {p.id} was modified outside the store (content hash mismatch)")
            logged = logged_proposals.pop(p.id, None)
            if logged is None:
                return bad(None, f"proposal {p.id} has no proposal.added audit entry")
            if logged != p.content_hash:
                return bad(None, f"proposal {p.id} differs from what its audit entry recorded")
            if logged_status.get(p.id) != p.status:
                return bad(None, f"proposal {p.id} is {p.status} but the audit log says {logged_status.get(p.id)}")
        if logged_proposals:
            return bad(None, f"proposal {next(iter(logged_proposals))} is in the audit log but missing from the store")

        for sig in s.execute(select(SignatureRow).order_by(SignatureRow.id)).scalars():
            if sig.content_hash != _signature_hash(sig):
                return bad(None, f"signature of {sig.owner} on proposal {sig.proposal_id} was modified outside the store")
            if logged_signatures.pop((sig.proposal_id, sig.owner), None) != sig.content_hash:
                return bad(None, f"signature of {sig.owner} on proposal {sig.proposal_id} has no matching audit entry")
        if logged_signatures:
            pid, owner = next(iter(logged_signatures))
            return bad(None, f"signature of {owner} on proposal {pid} is in the audit log but missing from the store")

        for sched in s.execute(select(ScheduleRow).order_by(ScheduleRow.id)).scalars():
            if sched.content_hash != _schedule_hash(sched):
                return bad(None, f"schedule entry {sched.id} was modified outside the store")
            if logged_schedules.pop(sched.id, None) != sched.content_hash:
                return bad(None, f"schedule entry {sched.id} has no matching audit entry")
            if logged_schedule_status.get(sched.id) != sched.status:
                return bad(None, f"schedule entry {sched.id} is {sched.status} but the audit log says {logged_schedule_status.get(sched.id)}")
        if logged_schedules:
            return bad(None, f"schedule entry {next(iter(logged_schedules))} is in the audit log but missing from the store")

        for ex in s.execute(select(ExecutionRow).order_by(ExecutionRow.id)).scalars():
            if ex.content_hash != _execution_hash(ex):
                return bad(None, f"execution {ex.id} was modified outside the store")
            if logged_executions.pop(ex.id, None) != ex.content_hash:
                return bad(None, f"execution {ex.id} has no matching audit entry")
        if logged_executions:
            return bad(None, f"execution {next(iter(logged_executions))} is in the audit log but missing from the store")

        for bc in s.execute(select(BroadcastRow).order_by(BroadcastRow.id)).scalars():
            if bc.content_hash != _broadcast_hash(bc):
                return bad(None, f"broadcast {bc.id} was modified outside the store")
            if logged_broadcasts.pop(bc.id, None) != bc.content_hash:
                return bad(None, f"broadcast {bc.id} has no matching audit entry")
            logged_state = logged_broadcast_state.get(bc.id)
            if logged_state is None or logged_state[0] != bc.status:
                shown = None if logged_state is None else logged_state[0]
                return bad(None, f"broadcast {bc.id} is {bc.status} but the audit log says {shown}")
            if logged_state[1] != bc.note:
                return bad(None, f"broadcast {bc.id} has a note the audit log never recorded")
        if logged_broadcasts:
            return bad(None, f"broadcast {next(iter(logged_broadcasts))} is in the audit log but missing from the store")

        for rh in s.execute(select(RehearsalRow).order_by(RehearsalRow.id)).scalars():
            if rh.content_hash != _rehearsal_hash(rh):
                return bad(None, f"rehearsal {rh.id} was modified outside the store")
            if logged_rehearsals.pop(rh.id, None) != rh.content_hash:
                return bad(None, f"rehearsal {rh.id} has no matching audit entry")
        if logged_rehearsals:
            return bad(None, f"rehearsal {next(iter(logged_rehearsals))} is in the audit log but missing from the store")
    except TamperedRecord as exc:  # a uint256 column no longer holds a number
        return bad(None, str(exc))

    return AuditReport(ok=True, entries=count)


# --------------------------------------------------------------------------------------------------
# SQLite connection set-up (the only SQLite-specific SQL in this module)


def _configure_sqlite(engine: Engine, busy_timeout: float) -> None:
    """WAL, busy timeout, foreign keys and synchronous=FULL on every connection; explicit BEGINs.

    WAL lets readers proceed while one writer writes. busy_timeout makes a blocked writer wait instead
    of failing at once. synchronous=FULL makes a committed change survive power loss, not just a
    killed process. pysqlite's own transaction handling is switched off (isolation_level=None) so
    SQLAlchemy's begin event can issue `BEGIN IMMEDIATE` for writes: the write lock is taken before
    the audit head is read, so two writers can never append after the same entry.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("treasury_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
