"""Tamper evidence: content hashes of rows and the hash-chained audit log, declared once per entity.

Every stored entity is described by ONE `Entity` declaration: which fields its content hash covers
(under which record tag), which audit action creates a row and how that entry names it, and which
mutable columns (a status, a note) must equal what the log last recorded. Writing a row, reading it
back and `verify_audit_log` all go through these declarations, so adding an entity is adding one.

The hashed bytes are canonical JSON (sorted keys, no spaces, ASCII) of a dict whose keys and value
encodings are fixed forever per record tag: stores written by any earlier version must verify
unchanged (tests/test_store_fixture.py holds one such store). To hash other fields, declare a new
tag (e.g. "proposal/v2") rather than editing an existing one.

This detects accidental or naive edits; someone able to write the database *and* recompute
SHA-256 can forge both, so keep the database where only the treasury tooling writes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from treasury.errors import InvalidInput
from treasury.files import load_json
from treasury.store.errors import TamperedRecord
from treasury.store.schema import (
    AuditHeadRow,
    AuditRow,
    BroadcastRow,
    DelegateProofRow,
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

GENESIS_HASH = "0" * 64  # prev_hash of the first audit entry


# json.dumps with these options, built once: json.dumps makes a new encoder on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def canonical(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces, ASCII) so every implementation hashes the same bytes."""
    return _CANONICAL.encode(obj)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def audit_hash(seq: int, at: str, actor: str, action: str, proposal_id: str | None, payload: Any, prev_hash: str) -> str:
    """entry_hash = sha256(canonical JSON of the entry's fields, including its predecessor's hash)."""
    entry = {"seq": seq, "at": at, "actor": actor, "action": action, "proposal_id": proposal_id, "payload": payload}
    return sha256(canonical({**entry, "prev_hash": prev_hash}))


# --------------------------------------------------------------------------------------------------
# How one column appears in a hashed payload. Each helper returns (json key, encoder) pairs.

Encoder = Callable[[Any], Any]
HashedField = tuple[str, Encoder]


def as_is(column: str, key: str | None = None) -> list[HashedField]:
    """Text (or None) and small integers, exactly as stored."""
    return [(key or column, attrgetter(column))]


def as_decimal(column: str) -> list[HashedField]:
    """Integers that may exceed JSON's safe range, as decimal strings (None stays None)."""

    def encode(row: Any) -> str | None:
        value = getattr(row, column)
        return None if value is None else str(value)

    return [(column, encode)]


def as_flag(column: str) -> list[HashedField]:
    """A boolean, whatever the backend returns for it (1/0 on SQLite)."""
    return [(column, lambda row: bool(getattr(row, column)))]


def as_hex(column: str) -> list[HashedField]:
    """Short bytes embedded as 0x-hex."""
    return [(column, lambda row: "0x" + bytes(getattr(row, column)).hex())]


def as_digest(column: str) -> list[HashedField]:
    """Bytes that can be megabytes (calldata, a raw transaction): their SHA-256 and their length."""
    return [
        (f"{column}_sha256", lambda row: hashlib.sha256(bytes(getattr(row, column))).hexdigest()),
        (f"{column}_length", lambda row: len(getattr(row, column))),
    ]


# --------------------------------------------------------------------------------------------------
# The declarations

Key = Hashable
StateReader = Callable[[str, str | None, dict[str, Any]], "tuple[Key, tuple[Any, ...]] | None"]


@dataclass(frozen=True)
class Entity:
    """Everything the integrity checks need to know about one kind of stored row.

    - `tag` and `fields`: the content hash is sha256(canonical({"record": tag, key: encode(row)...})).
    - `created_by`: the audit action whose entry creates a row; `logged_key` reads the row's key
      from that entry (None: the entry names no row), `row_key` from the row. The entry's
      `content_hash` must equal the row's.
    - `state`: mutable columns that must equal what the log last recorded; `logged_state` reads
      (key, values) from ANY audit entry that changes them, or returns None.
    - `describe(key)`: how messages name the row ("proposal 1a2b...").
    - `removed_by`: the audit action whose entry deletes rows (None: rows are never deleted);
      `removed_keys` reads the keys of the rows it deleted (from the entry's proposal id and
      payload). A deleted row is then expected to be absent, so a row deleted behind the store's
      back is still "in the log but missing".
    """

    name: str
    row: type[Any]
    tag: str
    fields: tuple[HashedField, ...]
    created_by: str
    logged_key: Callable[[str | None, dict[str, Any]], Key | None]
    row_key: Callable[[Any], Key]
    describe: Callable[[Any], str]
    state: tuple[str, ...] = ()
    logged_state: StateReader | None = None
    form: Callable[[Any], tuple[str, tuple[HashedField, ...]]] | None = None
    removed_by: str | None = None
    removed_keys: Callable[[str | None, dict[str, Any]], list[Key]] | None = None

    def content_hash(self, row: Any) -> str:
        """The hash `row.content_hash` must hold: over the declared fields only.

        An entity whose rows come in several forms (`form`: rows written before a schema change
        keep the tag and fields they were sealed with) hashes each row under the tag its form gives.
        """
        tag, fields = self.form(row) if self.form is not None else (self.tag, self.fields)
        return sha256(canonical({"record": tag, **{key: encode(row) for key, encode in fields}}))

    def check(self, row: Any) -> None:
        """Raise TamperedRecord if `row` no longer matches its content hash."""
        if row.content_hash != self.content_hash(row):
            raise TamperedRecord(
                f"{self.describe(self.row_key(row))} was modified outside the store (content hash mismatch); "
                "do not use it, check the audit log"
            )


def _fields(*groups: list[HashedField]) -> tuple[HashedField, ...]:
    return tuple(f for group in groups for f in group)


def _by_id(payload_key: str) -> Callable[[str | None, dict[str, Any]], Key]:
    return lambda pid, payload: int(payload.get(payload_key, -1))


def _proposal_status(action: str, pid: str | None, payload: dict[str, Any]) -> tuple[Key, tuple[Any, ...]] | None:
    if pid is None or "status_to" not in payload:
        return None
    return pid, (payload["status_to"],)


def _schedule_status(action: str, pid: str | None, payload: dict[str, Any]) -> tuple[Key, tuple[Any, ...]] | None:
    if "schedule_status_to" not in payload:
        return None
    return int(payload.get("schedule_id", -1)), (payload["schedule_status_to"],)


def _broadcast_state(action: str, pid: str | None, payload: dict[str, Any]) -> tuple[Key, tuple[Any, ...]] | None:
    """broadcast.sent starts with no note; broadcast.status logs `note`, execution.recorded `broadcast_note`."""
    if "broadcast_status_to" not in payload:
        return None
    note = "" if action == "broadcast.sent" else payload.get("broadcast_note", payload.get("note", ""))
    return int(payload.get("broadcast_id", -1)), (payload["broadcast_status_to"], note)


PROPOSAL = Entity(
    name="proposal",
    row=ProposalRow,
    tag="proposal/v1",  # every immutable field: the SafeTx struct, chain id, Safe, ids and labels
    fields=_fields(
        as_is("id"), as_decimal("chain_id"), as_is("safe"), as_decimal("nonce"), as_is("to_address", "to"),
        as_decimal("value"), as_digest("data"), as_is("operation"), as_decimal("safe_tx_gas"), as_decimal("base_gas"),
        as_decimal("gas_price"), as_is("gas_token"), as_is("refund_receiver"), as_is("safe_tx_hash"), as_is("title"),
        as_is("description"), as_is("proposer"), as_is("created_at"),
    ),
    created_by="proposal.added",
    logged_key=lambda pid, payload: pid,
    row_key=lambda row: row.id,
    describe=lambda pid: f"proposal {pid}",
    state=("status",),
    logged_state=_proposal_status,
)

_SIGNATURE_V1 = _fields(as_is("proposal_id"), as_is("owner"), as_is("kind"), as_hex("signature"), as_is("created_at"))
# Schema version 3: also what the signature is over. Used for schedule and cancel signatures; a
# SafeTx signature keeps the version-1 form (its hash is the proposal's, which the proposal's
# own content hash covers), so rows written before version 3 verify unchanged.
_SIGNATURE_V2 = _SIGNATURE_V1 + _fields(as_is("purpose"), as_is("signed_hash"), as_decimal("intent_nonce"), as_decimal("entry_id"))


def _signature_form(row: Any) -> tuple[str, tuple[HashedField, ...]]:
    """signature/v1 for exactly the version-1 shape (a SafeTx signature, nothing else set); any
    other row is signature/v2, so editing a new column of an old row changes its hash."""
    if row.purpose == "safe_tx" and row.signed_hash is None and row.intent_nonce is None and row.entry_id is None:
        return "signature/v1", _SIGNATURE_V1
    return "signature/v2", _SIGNATURE_V2


def _signature_logged_key(pid: str | None, payload: dict[str, Any]) -> Key | None:
    """Entries before version 3 name the owner only: they added SafeTx signatures."""
    if pid is None:
        return None
    return pid, payload.get("purpose", "safe_tx"), payload.get("signed_hash"), payload.get("owner", "")


def _describe_signature(key: Any) -> str:
    pid, purpose, signed_hash, owner = key
    if purpose == "safe_tx":
        return f"signature of {owner} on proposal {pid}"
    return f"{purpose} signature of {owner} over {signed_hash} on proposal {pid}"


def _signature_verifier(action: str, pid: str | None, payload: dict[str, Any]) -> tuple[Key, tuple[Any, ...]] | None:
    """How a signature was verified (schema version 4): "chain" unless its `signature.added` entry
    says otherwise (every entry before version 4 added a chain-verified one); `signature.verified`
    entries move it on."""
    if action == "signature.added":
        key = _signature_logged_key(pid, payload)
        return None if key is None else (key, (payload.get("verified_by", "chain"),))
    if action == "signature.verified":
        key = _signature_logged_key(pid, payload)
        return None if key is None else (key, (payload["verified_by_to"],))
    return None


SIGNATURE = Entity(
    name="signature",
    row=SignatureRow,
    tag="signature/v2",
    fields=_SIGNATURE_V2,
    created_by="signature.added",
    logged_key=_signature_logged_key,
    row_key=lambda row: (row.proposal_id, row.purpose, row.signed_hash, row.owner),
    describe=_describe_signature,
    form=_signature_form,
    state=("verified_by",),
    logged_state=_signature_verifier,
    # A bundle-verified row that a chain-verified signature of the same owner replaced (the new
    # row's own `signature.added` entry follows).
    removed_by="signature.replaced",
    removed_keys=lambda pid, payload: [key] if (key := _signature_logged_key(pid, payload)) is not None else [],
)

SCHEDULE_ENTRY = Entity(
    name="schedule entry",
    row=ScheduleRow,
    tag="schedule/v1",
    fields=_fields(
        as_is("id"), as_is("proposal_id"), as_is("guard"), as_decimal("entry_id"), as_decimal("eta"),
        as_decimal("expiry"), as_is("tx_hash"), as_is("created_at"),
    ),
    created_by="schedule.added",
    logged_key=_by_id("schedule_id"),
    row_key=lambda row: row.id,
    describe=lambda sid: f"schedule entry {sid}",
    state=("status",),
    logged_state=_schedule_status,
)

EXECUTION = Entity(
    name="execution",
    row=ExecutionRow,
    tag="execution/v1",
    fields=_fields(
        as_is("id"), as_is("proposal_id"), as_is("tx_hash"), as_decimal("block_number"), as_decimal("gas_used"),
        as_flag("success"), as_is("executor"), as_is("recorded_at"),
    ),
    created_by="execution.recorded",
    logged_key=_by_id("execution_id"),
    row_key=lambda row: row.id,
    describe=lambda eid: f"execution {eid}",
)

BROADCAST = Entity(
    name="broadcast",
    row=BroadcastRow,
    tag="broadcast/v1",  # the fixed fields only: status and note move on as the fate is learned
    fields=_fields(
        as_is("id"), as_is("proposal_id"), as_is("tx_hash"), as_is("sender"), as_decimal("sender_nonce"),
        as_digest("raw_tx"), as_decimal("safe_nonce"), as_decimal("block_at_send"), as_is("created_at"),
    ),
    created_by="broadcast.sent",
    logged_key=_by_id("broadcast_id"),
    row_key=lambda row: row.id,
    describe=lambda bid: f"broadcast {bid}",
    state=("status", "note"),
    logged_state=_broadcast_state,
)

REHEARSAL = Entity(
    name="rehearsal",
    row=RehearsalRow,
    tag="rehearsal/v1",
    fields=_fields(
        as_is("id"), as_is("proposal_id"), as_is("safe_tx_hash"), as_decimal("chain_id"), as_decimal("block_number"),
        as_is("block_hash"), as_flag("success"), as_is("reason"), as_decimal("gas_used"),
        as_is("filled"),  # the stored JSON text itself: any edit to it shows
        as_is("executor"), as_is("rehearsed_at"),
    ),
    created_by="rehearsal.recorded",
    logged_key=_by_id("rehearsal_id"),
    row_key=lambda row: row.id,
    describe=lambda rid: f"rehearsal {rid}",
)

def _delegate_state(action: str, pid: str | None, payload: dict[str, Any]) -> tuple[Key, tuple[Any, ...]] | None:
    """`delegate.added` and `delegate.updated` log the label and expiry (a decimal string or None)."""
    if action not in ("delegate.added", "delegate.updated"):
        return None
    expiry = payload.get("expiry")
    return int(payload.get("delegate_id", -1)), (payload.get("label"), None if expiry is None else int(expiry))


DELEGATE = Entity(
    name="delegate",
    row=DelegateRow,
    tag="delegate/v1",  # who may propose for whom; label and expiry move on when re-posted
    fields=_fields(
        as_is("id"), as_decimal("chain_id"), as_is("safe"), as_is("delegate"), as_is("delegator"), as_is("created_at"),
    ),
    created_by="delegate.added",
    logged_key=_by_id("delegate_id"),
    row_key=lambda row: row.id,
    describe=lambda did: f"delegate {did}",
    state=("label", "expiry"),
    logged_state=_delegate_state,
    removed_by="delegate.removed",
    removed_keys=lambda pid, payload: [int(i) for i in payload.get("delegate_ids", [])],
)

DELEGATE_PROOF = Entity(
    name="delegate proof",
    row=DelegateProofRow,
    tag="delegate-proof/v1",  # a delegate signature used once: what it was used for, never changed
    fields=_fields(
        as_is("id"), as_decimal("chain_id"), as_is("proof"), as_is("use"), as_is("safe"), as_is("delegate"),
        as_is("delegator"), as_decimal("expiry"), as_decimal("hour"), as_is("created_at"),
    ),
    created_by="delegate.proof",
    logged_key=_by_id("proof_id"),
    row_key=lambda row: row.id,
    describe=lambda pid: f"delegate proof {pid}",
)

MESSAGE = Entity(
    name="message",
    row=MessageRow,
    tag="message/v1",
    fields=_fields(
        as_is("id"), as_decimal("chain_id"), as_is("safe"), as_is("message_hash"),
        as_is("message"),  # the text itself: messages are small (the server caps bodies)
        as_decimal("safe_app_id"), as_is("proposed_by"), as_is("created_at"),
    ),
    created_by="message.added",
    logged_key=_by_id("message_id"),
    row_key=lambda row: row.id,
    describe=lambda mid: f"message {mid}",
)

MESSAGE_SIGNATURE = Entity(
    name="message signature",
    row=MessageSignatureRow,
    tag="message-signature/v1",
    fields=_fields(
        as_is("id"), as_is("message_id"), as_is("owner"), as_is("kind"), as_hex("signature"), as_is("created_at"),
    ),
    created_by="message.signed",
    logged_key=_by_id("message_signature_id"),
    row_key=lambda row: row.id,
    describe=lambda sid: f"message signature {sid}",
)

def _draft_state(action: str, pid: str | None, payload: dict[str, Any]) -> tuple[Key, tuple[Any, ...]] | None:
    """`draft.added` starts a draft as "draft"; `draft.promoted` and `draft.dropped` log where it went.

    Draft entries name the draft in the payload (`draft_id`): the audit log's proposal column holds
    proposal ids only; a promotion's entry names its new proposal there as well.
    """
    if "draft_status_to" not in payload:
        return None
    return str(payload.get("draft_id", "")), (payload["draft_status_to"], payload.get("promoted_to"), payload.get("note", ""))


DRAFT = Entity(
    name="draft",
    row=DraftRow,
    tag="draft/v1",  # what was proposed and why it was denied; where it went moves on
    fields=_fields(
        as_is("id"), as_decimal("chain_id"), as_is("safe"), as_is("to_address", "to"), as_decimal("value"),
        as_digest("data"), as_is("operation"), as_is("title"), as_is("description"), as_is("proposer"),
        as_is("reason"), as_is("created_at"),
    ),
    created_by="draft.added",
    logged_key=lambda pid, payload: str(payload.get("draft_id", "")),
    row_key=lambda row: row.id,
    describe=lambda did: f"draft {did}",
    state=("status", "proposal_id", "note"),
    logged_state=_draft_state,
)

def _drill_state(action: str, pid: str | None, payload: dict[str, Any]) -> tuple[Key, tuple[Any, ...]] | None:
    """`drill.started` opens a drill, `drill.closed` closes it; both name it in the payload (`drill_id`)."""
    if "drill_status_to" not in payload:
        return None
    return str(payload.get("drill_id", "")), (payload["drill_status_to"],)


DRILL = Entity(
    name="drill",
    row=DrillRow,
    tag="drill/v1",  # the challenge as issued and whose device it asks for; open/closed moves on
    fields=_fields(
        as_is("id"), as_decimal("chain_id"), as_is("safe"), as_is("nonce"), as_is("challenge"), as_is("require_device"),
        as_decimal("created_at"), as_decimal("expires_at"), as_is("recorded_at"),
    ),
    created_by="drill.started",
    logged_key=lambda pid, payload: str(payload.get("drill_id", "")),
    row_key=lambda row: row.id,
    describe=lambda did: f"drill {did}",
    state=("status",),
    logged_state=_drill_state,
)

OWNER_PROOF = Entity(
    name="owner proof",
    row=OwnerProofRow,
    tag="owner-proof/v1",
    fields=_fields(
        as_is("id"), as_is("drill_id"), as_is("owner"), as_is("via"), as_hex("signature"), as_decimal("proved_at"),
        as_is("recorded_at"),
    ),
    created_by="drill.proved",
    logged_key=_by_id("owner_proof_id"),
    row_key=lambda row: row.id,
    describe=lambda oid: f"owner proof {oid}",
)

# In the order verify_audit_log checks them (and reports the first problem of).
ENTITIES: tuple[Entity, ...] = (
    PROPOSAL, SIGNATURE, SCHEDULE_ENTRY, EXECUTION, BROADCAST, REHEARSAL, DELEGATE, DELEGATE_PROOF, MESSAGE,
    MESSAGE_SIGNATURE, DRAFT, DRILL, OWNER_PROOF,
)
_ENTITY_OF_ROW: dict[type[Any], Entity] = {entity.row: entity for entity in ENTITIES}


def entity_of(row: Any) -> Entity:
    return _ENTITY_OF_ROW[type(row)]


def seal(row: Any) -> None:
    """Set a freshly written row's content hash (after any database-assigned id is known)."""
    row.content_hash = entity_of(row).content_hash(row)


def check(row: Any) -> None:
    """Raise TamperedRecord if a row read back no longer matches its content hash."""
    entity_of(row).check(row)


# --------------------------------------------------------------------------------------------------
# Verification


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


class Broken(Exception):
    """Raised inside verification at the first problem found; becomes a failed AuditReport."""

    def __init__(self, seq: int | None, problem: str) -> None:
        super().__init__(problem)
        self.seq = seq
        self.problem = problem


@dataclass
class _Logged:
    """What the log says should exist for one entity, rebuilt while walking it."""

    created: dict[Key, str] = field(default_factory=dict)  # key -> content hash, of rows that should exist
    state: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    removed: set[Key] = field(default_factory=set)  # keys whose rows the log deleted (and did not add again)


@dataclass
class _Walk:
    """Progress of one verification: entries checked so far and what they said, per entity."""

    entries: int = 0
    logged: dict[str, _Logged] = field(default_factory=lambda: {entity.name: _Logged() for entity in ENTITIES})


def verify(session: Session) -> AuditReport:
    """Walk the audit chain and cross-check it against every declared entity's rows.

    Chain: sequence numbers run 1, 2, 3... without gaps, each entry names its predecessor's hash,
    each entry's hash matches its content, and the head row points at the last entry (so edited,
    deleted, reordered and truncated entries are all caught). Data: every row matches its content
    hash and has exactly the audit entry that created it, and its mutable columns equal what the
    log last recorded for it.
    """
    walk = _Walk()
    try:
        _walk_chain(session, walk)
        for entity in ENTITIES:
            _check_rows(session, entity, walk.logged[entity.name])
    except Broken as broken:
        return AuditReport(ok=False, entries=walk.entries, first_bad_seq=broken.seq, problem=broken.problem)
    except TamperedRecord as exc:  # a uint256 column no longer holds a number
        return AuditReport(ok=False, entries=walk.entries, first_bad_seq=None, problem=str(exc))
    return AuditReport(ok=True, entries=walk.entries)


def _walk_chain(session: Session, walk: _Walk) -> None:
    """Check the chain link by link, recording what each entry says, then the head row.

    Read as plain rows (the table's columns, no ORM objects): a log can hold a million entries.
    """
    log = AuditRow.__table__
    prev_hash = GENESIS_HASH
    for row in session.connection().execute(select(log).order_by(log.c.seq)):
        payload = _checked_link(row, walk.entries + 1, prev_hash)
        walk.entries, prev_hash = walk.entries + 1, row.entry_hash
        try:
            _record_entry(row, payload, walk.logged)
        except (TypeError, ValueError, AttributeError, IndexError):
            raise Broken(row.seq, f"audit entry {row.seq} has a malformed payload") from None
    heads = AuditHeadRow.__table__
    head = session.connection().execute(select(heads.c.seq, heads.c.entry_hash).where(heads.c.id == 1)).one_or_none()
    if head is None:
        raise Broken(None, "the audit head row is missing")
    count = walk.entries
    if head.seq != count or head.entry_hash != prev_hash:
        if head.seq > count:
            raise Broken(count + 1, f"audit entries {count + 1}..{head.seq} are missing from the end of the log")
        raise Broken(head.seq or None, f"the audit head (entry {head.seq}) does not match the last entry ({count})")


def _checked_link(row: Any, expected_seq: int, prev_hash: str) -> dict[str, Any]:
    """The entry's payload, once its place in the chain and its own hash are confirmed."""
    if row.seq != expected_seq:
        if row.seq > expected_seq:
            raise Broken(expected_seq, f"audit entry {expected_seq} is missing (the next entry is {row.seq})")
        raise Broken(row.seq, f"audit entry {row.seq} is out of order")
    if row.prev_hash != prev_hash:
        raise Broken(row.seq, f"audit entry {row.seq} does not follow entry {row.seq - 1} (prev_hash mismatch)")
    try:  # bounded: a payload edited to nest 100,000 levels deep must not overflow the C stack
        payload = load_json(row.payload, f"audit entry {row.seq}")
    except (InvalidInput, ValueError, TypeError, RecursionError):
        raise Broken(row.seq, f"audit entry {row.seq} has a payload that is not JSON (or nests too deep)") from None
    if audit_hash(row.seq, row.at, row.actor, row.action, row.proposal_id, payload, row.prev_hash) != row.entry_hash:
        raise Broken(row.seq, f"audit entry {row.seq} was edited (entry_hash mismatch)")
    if not isinstance(payload, dict):
        raise Broken(row.seq, f"audit entry {row.seq} has a malformed payload")
    return payload


def _record_entry(row: Any, payload: dict[str, Any], logged: dict[str, _Logged]) -> None:
    action, proposal_id = row.action, row.proposal_id
    for entity in ENTITIES:
        seen = logged[entity.name]
        if action == entity.created_by:
            key = entity.logged_key(proposal_id, payload)
            if key is not None:
                if key in seen.created:
                    raise Broken(row.seq, f"audit entry {row.seq} adds {entity.describe(key)} a second time")
                seen.created[key] = payload.get("content_hash", "")
                seen.removed.discard(key)  # SQLite may hand a removed row's id out again
        if action == entity.removed_by and entity.removed_keys is not None:
            for key in entity.removed_keys(proposal_id, payload):
                if seen.created.pop(key, None) is None:
                    raise Broken(row.seq, f"audit entry {row.seq} removes {entity.describe(key)}, which the log never added")
                seen.removed.add(key)
        if entity.logged_state is not None:
            change = entity.logged_state(action, proposal_id, payload)
            if change is not None:
                seen.state[change[0]] = change[1]


def _check_rows(session: Session, entity: Entity, seen: _Logged) -> None:
    """Every row of one entity against its hash and the log; then anything logged but missing."""
    for row in _rows(session, entity):
        key = entity.row_key(row)
        what = entity.describe(key)
        if row.content_hash != entity.content_hash(row):
            raise Broken(None, f"{what} was modified outside the store (content hash mismatch)")
        created = seen.created.pop(key, None)
        if created is None:
            if key in seen.removed:
                raise Broken(None, f"{what} was removed ({entity.removed_by}) but is back in the store")
            raise Broken(None, f"{what} has no {entity.created_by} audit entry")
        if created != row.content_hash:
            raise Broken(None, f"{what} differs from what its audit entry recorded")
        _check_state(entity, row, what, seen.state.get(key))
    if seen.created:
        raise Broken(None, f"{entity.describe(next(iter(seen.created)))} is in the audit log but missing from the store")


def _check_state(entity: Entity, row: Any, what: str, logged_state: tuple[Any, ...] | None) -> None:
    for index, column in enumerate(entity.state):
        stored = getattr(row, column)
        recorded = None if logged_state is None else logged_state[index]
        if stored == recorded:
            continue
        if index == 0:
            raise Broken(None, f"{what} is {stored} but the audit log says {recorded}")
        raise Broken(None, f"{what} has a {column} the audit log never recorded")


def _rows(session: Session, entity: Entity) -> Iterator[Any]:
    """Every row of the entity as a plain row (its columns by name, as the ORM object has them)."""
    table = entity.row.__table__
    return iter(session.connection().execute(select(table).order_by(*table.primary_key.columns)))
