"""The store's tables (SQLAlchemy 2.x models) and its schema version.

One set of models serves every backend: the only dialect-specific DDL is the collation of the
uint256 columns on PostgreSQL (see Uint256). Rows never leave the store: callers get the frozen
records of treasury.store.records. Changing a table means a new SCHEMA_VERSION and a migration
(treasury.store.migrations); changing which fields a row's content hash covers means a new record
tag (treasury.store.integrity), never an edit of an existing one.
"""

from __future__ import annotations

from typing import Any

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
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from treasury.errors import InvalidInput
from treasury.store.errors import TamperedRecord
from treasury.store.lifecycle import (
    BROADCAST_STATUSES,
    DRAFT_STATUSES,
    DRILL_STATUSES,
    PROPOSAL_STATUSES,
    SCHEDULE_STATUSES,
    SIGNATURE_KINDS,
    SIGNATURE_PURPOSES,
    VERIFIERS,
)

# 1: proposals, signatures, schedule, executions, audit; 2: + broadcasts, rehearsals;
# 3: signatures say what they are over (SafeTx, a guard schedule hash, a guard cancel hash);
# 4: signatures say how they were verified (chain, bundle); delegates (and the signatures that made them); signed
#    messages (the server)
# 5: drafts (proposals the policy denied, kept without a nonce at the proposer's request)
# 6: recovery drills and the owners' proofs of control (key ceremonies)
SCHEMA_VERSION = 6

UINT256_MAX = 2**256 - 1
UINT256_DIGITS = 78  # len(str(2**256 - 1))
MAX_LABEL = 200  # actor, proposer, title: the width of their columns


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class Uint256(TypeDecorator[int]):
    """A uint256 stored as zero-padded decimal text: exact everywhere, and sorts like the number.

    SQLite has no 256-bit integer (its NUMERIC affinity silently rounds through floats), and a
    fixed-width digit string compares like the number it spells, so listing by nonce uses the index.
    On PostgreSQL the column uses the "C" collation, so that comparison is bytewise whatever the
    server's locale is.
    """

    impl = String(UINT256_DIGITS)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(String(UINT256_DIGITS, collation="C"))
        return dialect.type_descriptor(String(UINT256_DIGITS))

    def process_bind_param(self, value: int | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT256_MAX:
            raise InvalidInput(f"{value!r} is not a uint256")
        return f"{value:0{UINT256_DIGITS}d}"

    def process_result_value(self, value: str | None, dialect: Any) -> int | None:
        if value is None:
            return None
        text = str(value)
        if not text.isdigit() or len(text) > UINT256_DIGITS:
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
        # Schema version 4: the server finds a proposal by its safeTxHash alone (a hash names one Safe).
        Index("ix_proposals_safe_tx_hash", "safe_tx_hash"),
        CheckConstraint("operation IN (0, 1)", name="ck_proposals_operation"),
        CheckConstraint(_one_of("status", PROPOSAL_STATUSES), name="ck_proposals_status"),
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
    title: Mapped[str] = mapped_column(String(MAX_LABEL))
    description: Mapped[str] = mapped_column(Text)
    proposer: Mapped[str] = mapped_column(String(MAX_LABEL))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))


class SignatureRow(Base):
    """One owner's signature for a proposal, and (schema version 3) what it is over.

    `purpose` "safe_tx": over the proposal's safeTxHash; `signed_hash` is NULL, the proposal's own
    hash being the only one it can be (every row written before version 3 is of this form, and
    SafeTx signatures are still written so). "schedule": over the guard's scheduleHash of the
    proposal's intent at schedule nonce `intent_nonce`; "cancel": over the guard's cancelHash of
    queue entry `entry_id`; both store that hash in `signed_hash`. One signature per (proposal,
    purpose, signed hash, owner): the store checks it for SafeTx rows too, whose hash is NULL here.
    """

    __tablename__ = "signatures"
    __table_args__ = (
        UniqueConstraint("proposal_id", "purpose", "signed_hash", "owner", name="uq_signatures_signed_owner"),
        Index("ix_signatures_proposal_purpose", "proposal_id", "purpose"),
        CheckConstraint(_one_of("kind", SIGNATURE_KINDS), name="ck_signatures_kind"),
        CheckConstraint(_one_of("purpose", SIGNATURE_PURPOSES), name="ck_signatures_purpose"),
        CheckConstraint(_one_of("verified_by", VERIFIERS), name="ck_signatures_verified_by"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.id"))
    owner: Mapped[str] = mapped_column(String(42))
    kind: Mapped[str] = mapped_column(String(16))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(16), default="safe_tx")
    signed_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    intent_nonce: Mapped[int | None] = mapped_column(Uint256, nullable=True)
    entry_id: Mapped[int | None] = mapped_column(Uint256, nullable=True)
    # Schema version 4: "chain" (recovered against the owners the chain reported) or "bundle"
    # (against the owners an imported bundle recorded, to re-check once a node is reachable).
    # Mutable (bundle -> chain), so outside the content hash and checked against the log instead.
    verified_by: Mapped[str] = mapped_column(String(16), default="chain", server_default=text("'chain'"))


class ScheduleRow(Base):
    __tablename__ = "schedule_entries"
    __table_args__ = (
        UniqueConstraint("proposal_id", "guard", "entry_id", name="uq_schedule_entry"),
        CheckConstraint(_one_of("status", SCHEDULE_STATUSES), name="ck_schedule_status"),
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
        CheckConstraint(_one_of("status", BROADCAST_STATUSES), name="ck_broadcasts_status"),
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


class DelegateRow(Base):
    """An address a Safe owner allowed to propose for a Safe (schema version 4), as Safe's service has them.

    `safe` NULL: a delegate of the delegator for every Safe it owns. One row per (chain, Safe,
    delegate, delegator), which the store checks under its write lock (a UNIQUE constraint would
    treat NULL Safes as all distinct). `label` and `expiry` (unix seconds, NULL: never) change when
    the same delegation is posted again, so they stay out of the content hash and are checked
    against the log. Removing a delegation deletes the row; its `delegate.removed` entry says so.
    """

    __tablename__ = "delegates"
    __table_args__ = (Index("ix_delegates_lookup", "chain_id", "safe", "delegate"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    safe: Mapped[str | None] = mapped_column(String(42), nullable=True)
    delegate: Mapped[str] = mapped_column(String(42))
    delegator: Mapped[str] = mapped_column(String(42))
    label: Mapped[str] = mapped_column(String(MAX_LABEL))
    expiry: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))


class DelegateProofRow(Base):
    """A delegate signature the server accepted (schema version 4), so it is never accepted again.

    The delegate message names only the delegate and an hour (and the chain in its EIP-712 form),
    not the Safe nor the expiry: without this table a signature given for one delegation could
    create another, or re-create a removed one while its hour lasts. `proof` is keccak256 of the
    signer and the digest it signed (so every encoding of one ECDSA signature is the same proof),
    looked up across chains (Safe's v1 form names no chain). `use` "add": `hour` is the signature's
    totp hour, and the store adds with one proof once (checked under its write lock: the same
    signature may also remove, as clients sign the same message for both); "remove": `hour` is the
    hour of the removal, and a later add needs a later hour. Immutable; never deleted.
    """

    __tablename__ = "delegate_proofs"
    __table_args__ = (
        Index("ix_delegate_proofs_proof", "proof"),
        Index("ix_delegate_proofs_pair", "chain_id", "delegate", "delegator"),
        CheckConstraint("use IN ('add', 'remove')", name="ck_delegate_proofs_use"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    proof: Mapped[str] = mapped_column(String(66))
    use: Mapped[str] = mapped_column(String(8))
    safe: Mapped[str | None] = mapped_column(String(42), nullable=True)
    delegate: Mapped[str] = mapped_column(String(42))
    delegator: Mapped[str] = mapped_column(String(42))
    expiry: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    hour: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))


class MessageRow(Base):
    """An off-chain message proposed for a Safe's owners to sign (EIP-1271), schema version 4.

    `message_hash` is the SafeMessage hash (the Safe's EIP-712 domain, so it names the Safe and
    the chain); `message` what was signed, as the caller encodes it (the server: JSON, a string for
    EIP-191 text or an object for EIP-712 typed data). Every field is immutable.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("chain_id", "message_hash", name="uq_messages_hash"),
        Index("ix_messages_safe", "chain_id", "safe"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    safe: Mapped[str] = mapped_column(String(42))
    message_hash: Mapped[str] = mapped_column(String(66))
    message: Mapped[str] = mapped_column(Text)
    safe_app_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    proposed_by: Mapped[str] = mapped_column(String(42))
    created_at: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))


class MessageSignatureRow(Base):
    """One owner's signature of a message's SafeMessage hash (schema version 4); immutable."""

    __tablename__ = "message_signatures"
    __table_args__ = (
        UniqueConstraint("message_id", "owner", name="uq_message_signatures_owner"),
        CheckConstraint(_one_of("kind", SIGNATURE_KINDS), name="ck_message_signatures_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    owner: Mapped[str] = mapped_column(String(42))
    kind: Mapped[str] = mapped_column(String(16))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))


class DraftRow(Base):
    """A Safe transaction the policy denied, kept at the proposer's request (schema version 5).

    A draft has no nonce and no safeTxHash: it holds no place in the Safe's queue, so it never
    blocks the proposals after it. `status` "draft" until it becomes a proposal ("promoted",
    `proposal_id` names it) or is dropped ("dropped"); both are final. `status`, `proposal_id` and
    `note` move on, so they stay out of the content hash and are checked against the log. `reason`
    is the verdict that denied it, as the proposer saw it.
    """

    __tablename__ = "drafts"
    __table_args__ = (
        Index("ix_drafts_listing", "chain_id", "safe", "status"),
        CheckConstraint("operation IN (0, 1)", name="ck_drafts_operation"),
        CheckConstraint(_one_of("status", DRAFT_STATUSES), name="ck_drafts_status"),
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    safe: Mapped[str] = mapped_column(String(42))
    to_address: Mapped[str] = mapped_column(String(42))
    value: Mapped[int] = mapped_column(Uint256)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    operation: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(MAX_LABEL))
    description: Mapped[str] = mapped_column(Text)
    proposer: Mapped[str] = mapped_column(String(MAX_LABEL))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    proposal_id: Mapped[str | None] = mapped_column(ForeignKey("proposals.id"), nullable=True)
    note: Mapped[str] = mapped_column(Text)


class DrillRow(Base):
    """A recovery drill (schema version 6): a fresh EIP-712 challenge for every owner of a Safe to sign.

    `challenge` is the typed data as canonical JSON (what owners sign, byte for byte as issued);
    `require_device` a canonical JSON list of the owners who must sign through a hardware wallet.
    Times are unix seconds by the wall clock of whoever issued it (the tool's or the server's), not
    a block's. A nonce is never issued twice in a store (one drill per nonce). `status` "open" until "closed"; it moves on, so it stays out of
    the content hash and is checked against the log.
    """

    __tablename__ = "drills"
    __table_args__ = (
        UniqueConstraint("chain_id", "safe", "nonce", name="uq_drills_nonce"),
        Index("ix_drills_safe", "chain_id", "safe", "created_at"),
        CheckConstraint(_one_of("status", DRILL_STATUSES), name="ck_drills_status"),
    )

    id: Mapped[str] = mapped_column(String(18), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    safe: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[str] = mapped_column(String(66))
    challenge: Mapped[str] = mapped_column(Text)
    require_device: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))


class OwnerProofRow(Base):
    """One owner's verified signature of a drill's challenge (schema version 6); immutable.

    `via`: how it was signed (keyfile, test, hardware, browser, contract, ...); `proved_at` unix
    seconds. One proof per (drill, owner).
    """

    __tablename__ = "owner_proofs"
    __table_args__ = (UniqueConstraint("drill_id", "owner", name="uq_owner_proofs_owner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    drill_id: Mapped[str] = mapped_column(ForeignKey("drills.id"), index=True)
    owner: Mapped[str] = mapped_column(String(42))
    via: Mapped[str] = mapped_column(String(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    proved_at: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))


class AuditRow(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(MAX_LABEL))
    action: Mapped[str] = mapped_column(String(64))
    proposal_id: Mapped[str | None] = mapped_column(ForeignKey("proposals.id"), nullable=True, index=True)
    payload: Mapped[str] = mapped_column(Text)
    # Unique: two entries claiming the same predecessor would be a fork of the chain.
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)
