"""The Store: the treasury's durable proposal store and its only public door.

Every step of the treasury flow (propose, sign, schedule, rehearse, broadcast, execute) is an append
here, and every mutating method writes one entry to the hash-chained, append-only audit log in the
*same* database transaction as the change, so the log and the data can never disagree.

How the pieces fit (each in its own module of this package):
- backends: a path or any SQLAlchemy URL -> an engine set up for SQLite (WAL) or PostgreSQL.
- schema / migrations: the tables, SCHEMA_VERSION, and the registered steps from older versions.
- validation: shape checks on every input, before any transaction starts.
- integrity: content hashes and the audit chain, declared once per entity; `verify_audit_log`.
- records: the frozen values callers receive (checked against their hash on the way out).
This module holds the transaction discipline: writers are serialized so that "read the audit head,
append after it" is atomic (SQLite's `BEGIN IMMEDIATE`, elsewhere a row lock on the audit head),
and a transaction that meets another writer's lock is retried until the busy timeout runs out.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.orm import Session

from treasury.addresses import ZERO_ADDRESS, parse_address
from treasury.errors import InvalidInput, TreasuryError
from treasury.store import validation as valid
from treasury.store.backends import (
    create_store_engine,
    is_transient,
    redact,
    store_url,
    transaction_options,
)
from treasury.store.errors import (
    DuplicateProposal,
    DuplicateSignature,
    InvalidTransition,
    StoreBusy,
    UnknownProposal,
)
from treasury.store.integrity import AuditReport, canonical, check as check_sealed, seal, verify
from treasury.store.lifecycle import (
    BROADCAST_STATUSES,
    BROADCAST_TRANSITIONS,
    DRAFT_STATUSES,
    DRAFT_TRANSITIONS,
    DRILL_TRANSITIONS,
    OPEN_STATUSES,
    PROPOSAL_STATUSES,
    SCHEDULE_STATUSES,
    SCHEDULE_TRANSITIONS,
    SIGNATURE_KINDS,
    SIGNATURE_PURPOSES,
    VERIFIERS,
    require_proposal_transition,
)
from treasury.store.migrations import complete_version, create_schema, migrate
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
    audit_record,
    broadcast_record,
    delegate_record,
    draft_record,
    drill_record,
    execution_record,
    message_record,
    message_signature_record,
    owner_proof_record,
    proposal_record,
    rehearsal_record,
    schedule_record,
    signature_record,
)
from treasury.store.schema import (
    SCHEMA_VERSION,
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
from treasury.store.transaction import WriteTx as _Tx

__all__ = ["DEFAULT_BUSY_TIMEOUT", "Store"]

DEFAULT_BUSY_TIMEOUT = 10.0  # seconds a writer waits for another writer before giving up
SMOKE_TEST_ACTIONS = ("smoke-test.started", "smoke-test.passed", "smoke-test.failed")  # each a run (begin_smoke_test)

T = TypeVar("T")


class Store:
    """The treasury's proposal store. Open it with `Store.open(url_or_path)`; safe to share across threads."""

    def __init__(self, engine: Engine, busy_timeout: float) -> None:
        """Use `Store.open`; this constructor expects an engine already configured by it."""
        self._engine = engine
        self._busy_timeout = busy_timeout

    # ---- opening and closing -------------------------------------------------------------------

    @classmethod
    def open(cls, url_or_path: str | Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Store:
        """Open (creating if missing) the store at a SQLAlchemy URL or a SQLite file path.

        A path (or `sqlite:///...`) is a SQLite file, its folder created if missing; `postgresql://`
        URLs use psycopg 3. Tables and the `schema_version` row are created in one transaction, so
        a crash during creation leaves either nothing or a complete schema. An older store is
        migrated the same way (one transaction, audited as `store.migrated`). A database written
        by a newer ape-treasury is refused rather than risk corrupting it.
        """
        url = store_url(url_or_path)
        store = cls(create_store_engine(url, busy_timeout), busy_timeout)
        try:
            store._initialise()
        except DBAPIError as exc:
            store.close()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None and str(exc.orig).strip() else type(exc).__name__
            raise TreasuryError(f"cannot open the store {store.url}: {redact(reason, url.password)}") from None
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Release every pooled connection (and, on SQLite, the file handles)."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def backend(self) -> str:
        """The database's dialect name: "sqlite", "postgresql", ..."""
        return self._engine.dialect.name

    def _initialise(self) -> None:
        """Check the schema version; create the schema if it is missing, migrate it if it is older.

        The check is a plain read, so opening an up-to-date store never waits for another process's
        write lock; only creating or migrating takes the write lock (and re-checks under it, so two
        processes opening the same store at once do the work once).
        """
        version = self._read(lambda s: complete_version(s, self.url))
        if version == SCHEMA_VERSION:
            return
        if version is None:
            self._create_schema()
            # Normally now current; older if a process running an older ape-treasury created it first.
            version = self._read(lambda s: complete_version(s, self.url))
        if version is not None and version < SCHEMA_VERSION:
            self._write(lambda tx: migrate(tx, self.url))

    def _create_schema(self) -> None:
        """Create the schema in one write transaction (see migrations.create_schema)."""
        attempts = 0
        while True:
            try:
                self._retrying(lambda: self._transaction(lambda s: create_schema(s, self.url), write=True))
                return
            except (IntegrityError, ProgrammingError):
                # Two processes creating the schema at the same moment on a server database without
                # an advisory lock: the loser's CREATE/INSERT collides; the next attempt finds it done.
                attempts += 1
                if attempts >= 3:
                    raise

    # ---- transaction plumbing ------------------------------------------------------------------

    def _transaction(self, fn: Callable[[Session], T], *, write: bool) -> T:
        """Run `fn` in one database transaction: commit if it returns, roll back if it raises."""
        with self._engine.connect() as conn:
            conn.execution_options(**transaction_options(self.backend, write=write))
            with conn.begin(), Session(bind=conn, expire_on_commit=False, autoflush=True) as session:
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
                if not is_transient(exc):
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
        signatures: Sequence[NewSignature] = (),
        from_draft: str | None = None,
    ) -> ProposalRecord:
        """Store a new proposal (status `pending`) and its `proposal.added` audit entry.

        `signatures` (see `new_signature`), already checked by the caller, are stored in the same
        transaction: a proposal that arrived with its proposer's signature never exists without it.
        `from_draft`: the draft this proposal turns into, marked "promoted" in the same transaction
        (so a draft is never both still open and already proposed); it must still be a draft.

        The caller computed `safe_tx_hash` from these fields (the store cannot: it depends on the Safe
        version's EIP-712 domain). One proposal per (chain, Safe, safeTxHash): a repeat raises
        DuplicateProposal; several proposals for the same nonce are fine (alternatives, rejections).
        """
        fields: dict[str, Any] = {
            "chain_id": valid.chain_id(chain_id),
            "safe": parse_address(safe, "Safe"),
            "nonce": valid.uint(nonce, "nonce"),
            "to_address": parse_address(to, "recipient"),
            "value": valid.uint(value, "value"),
            "data": valid.raw_bytes(data, "data"),
            "operation": operation,
            "safe_tx_gas": valid.uint(safe_tx_gas, "safeTxGas"),
            "base_gas": valid.uint(base_gas, "baseGas"),
            "gas_price": valid.uint(gas_price, "gasPrice"),
            "gas_token": parse_address(gas_token, "gas token"),
            "refund_receiver": parse_address(refund_receiver, "refund receiver"),
            "safe_tx_hash": valid.hash32(safe_tx_hash, "safeTxHash"),
            "title": valid.label(title, "title", required=False),
            "description": valid.label(description, "description", valid.MAX_DESCRIPTION, required=False),
            "proposer": valid.label(proposer, "proposer"),
        }
        if isinstance(operation, bool) or operation not in (0, 1):
            raise InvalidInput(f"operation {operation!r} is neither CALL (0) nor DELEGATECALL (1)")
        actor = valid.label(actor, "actor")
        first = tuple(signatures)
        if any(n.purpose != "safe_tx" for n in first) or len({n.owner for n in first}) != len(first):
            raise InvalidInput("a new proposal's signatures are SafeTx signatures, one per owner")
        draft_id = None if from_draft is None else valid.proposal_id(from_draft)

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
            seal(row)
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
            for new in first:
                _insert_signature(tx, row, new, actor)
            if draft_id is not None:
                _move_draft(tx, draft_id, "promoted", actor, "", promoted_to=row.id)
            return proposal_record(row)

        return self._write(write)

    def get_proposal(self, proposal_id: str) -> ProposalRecord:
        """The proposal with this id; raises UnknownProposal, or TamperedRecord if it was edited."""
        pid = valid.proposal_id(proposal_id)

        def read(s: Session) -> ProposalRecord:
            return proposal_record(_load_proposal(s, pid))

        return self._read(read)

    def find_by_safe_tx_hash(self, chain_id: int, safe: str | None, safe_tx_hash: str | bytes) -> ProposalRecord | None:
        """The proposal for this safeTxHash on this Safe and chain, or None (e.g. to spot re-proposals).

        `safe` None: on any Safe of the chain (a safeTxHash covers the Safe's address, so at most
        one Safe can have it; the server's confirmations endpoint gets the hash alone).
        """
        chain = valid.chain_id(chain_id)
        where = [ProposalRow.chain_id == chain, ProposalRow.safe_tx_hash == valid.hash32(safe_tx_hash, "safeTxHash")]
        if safe is not None:
            where.append(ProposalRow.safe == parse_address(safe, "Safe"))

        def read(s: Session) -> ProposalRecord | None:
            row = s.execute(select(ProposalRow).where(*where).order_by(ProposalRow.id).limit(1)).scalar_one_or_none()
            return None if row is None else proposal_record(row)

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
        rows = ProposalRow.__table__.c  # plain rows, not ORM objects: a listing can be thousands long
        query = select(ProposalRow.__table__)
        if chain_id is not None:
            query = query.where(rows.chain_id == valid.chain_id(chain_id))
        if safe is not None:
            query = query.where(rows.safe == parse_address(safe, "Safe"))
        if status is not None:
            if status not in PROPOSAL_STATUSES:
                raise InvalidInput(f"status {status!r} is not one of {', '.join(PROPOSAL_STATUSES)}")
            query = query.where(rows.status == status)
        query = query.order_by(rows.chain_id, rows.safe, rows.nonce, rows.created_at, rows.id)
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise InvalidInput(f"limit must be a positive integer, got {limit!r}")
            query = query.limit(limit)

        def read(s: Session) -> list[ProposalRecord]:
            return [proposal_record(row) for row in s.connection().execute(query)]

        return self._read(read)

    def set_status(self, proposal_id: str, status: str, actor: str, note: str = "") -> ProposalRecord:
        """Move a proposal to `status` if the transition is allowed; executed/failed/... are final.

        Raises InvalidTransition otherwise (store unchanged). `note` says why, for the audit log.
        """
        pid = valid.proposal_id(proposal_id)
        if status not in PROPOSAL_STATUSES:
            raise InvalidInput(f"status {status!r} is not one of {', '.join(PROPOSAL_STATUSES)}")
        actor = valid.label(actor, "actor")
        note = valid.label(note, "note", valid.MAX_NOTE, required=False)

        def write(tx: _Tx) -> ProposalRecord:
            row = _load_proposal(tx.session, pid)
            proposal_record(row)  # refuse to build on a tampered row
            previous = row.status
            require_proposal_transition(pid, previous, status)
            row.status = status
            tx.session.flush()
            tx.audit(actor, "status.changed", pid, {"status_from": previous, "status_to": status, "note": note})
            return proposal_record(row)

        return self._write(write)

    # ---- drafts (schema version 5) ---------------------------------------------------------------

    def add_draft(
        self,
        *,
        chain_id: int,
        safe: str,
        to: str,
        proposer: str,
        actor: str,
        reason: str,
        value: int = 0,
        data: bytes | str = b"",
        operation: int = 0,
        title: str = "",
        description: str = "",
    ) -> DraftRecord:
        """Keep a Safe transaction the policy denied as a draft (no nonce, no safeTxHash), audited as
        `draft.added`: it holds no place in the Safe's queue until `add_proposal(from_draft=...)`."""
        fields: dict[str, Any] = {
            "chain_id": valid.chain_id(chain_id),
            "safe": parse_address(safe, "Safe"),
            "to_address": parse_address(to, "recipient"),
            "value": valid.uint(value, "value"),
            "data": valid.raw_bytes(data, "data"),
            "operation": operation,
            "title": valid.label(title, "title", required=False),
            "description": valid.label(description, "description", valid.MAX_DESCRIPTION, required=False),
            "proposer": valid.label(proposer, "proposer"),
            "reason": valid.label(reason, "reason", valid.MAX_NOTE, required=False),
        }
        if isinstance(operation, bool) or operation not in (0, 1):
            raise InvalidInput(f"operation {operation!r} is neither CALL (0) nor DELEGATECALL (1)")
        actor = valid.label(actor, "actor")

        def write(tx: _Tx) -> DraftRecord:
            s = tx.session
            new_id = secrets.token_hex(8)
            while s.get(DraftRow, new_id) is not None or s.get(ProposalRow, new_id) is not None:  # one id names one thing
                new_id = secrets.token_hex(8)
            row = DraftRow(id=new_id, status="draft", proposal_id=None, note="", created_at=tx.now, **fields)
            seal(row)
            s.add(row)
            s.flush()
            tx.audit(actor, "draft.added", None, {
                "draft_id": row.id, "content_hash": row.content_hash, "chain_id": str(row.chain_id), "safe": row.safe,
                "reason": row.reason, "draft_status_to": "draft",
            })
            return draft_record(row)

        return self._write(write)

    def get_draft(self, draft_id: str) -> DraftRecord:
        """The draft with this id; raises UnknownProposal, or TamperedRecord if it was edited."""
        did = valid.proposal_id(draft_id)

        def read(s: Session) -> DraftRecord:
            return draft_record(_load_draft(s, did))

        return self._read(read)

    def drafts(self, safe: str | None = None, chain_id: int | None = None, status: str | None = "draft") -> list[DraftRecord]:
        """Drafts matching every given filter (default: the open ones), oldest first; each integrity-checked."""
        rows = DraftRow.__table__.c
        query = select(DraftRow.__table__)
        if chain_id is not None:
            query = query.where(rows.chain_id == valid.chain_id(chain_id))
        if safe is not None:
            query = query.where(rows.safe == parse_address(safe, "Safe"))
        if status is not None:
            if status not in DRAFT_STATUSES:
                raise InvalidInput(f"draft status {status!r} is not one of {', '.join(DRAFT_STATUSES)}")
            query = query.where(rows.status == status)
        query = query.order_by(rows.created_at, rows.id)

        def read(s: Session) -> list[DraftRecord]:
            return [draft_record(row) for row in s.connection().execute(query)]

        return self._read(read)

    def drop_draft(self, draft_id: str, actor: str, note: str = "") -> DraftRecord:
        """Mark a draft "dropped" (final), audited as `draft.dropped` with `note` saying why."""
        did = valid.proposal_id(draft_id)
        actor = valid.label(actor, "actor")
        note = valid.label(note, "note", valid.MAX_NOTE, required=False)
        return self._write(lambda tx: _move_draft(tx, did, "dropped", actor, note))

    # ---- recovery drills (schema version 6) ------------------------------------------------------

    def add_drill(
        self,
        chain_id: int,
        safe: str,
        nonce: str | bytes,
        challenge: Mapping[str, Any],
        require_device: Sequence[str],
        created_at: int,
        expires_at: int,
        actor: str,
    ) -> DrillRecord:
        """Keep a new drill's challenge (`drill.started`), open until closed.

        The caller built `challenge` (the typed data owners sign) from the other fields; the store
        keeps it as issued, once it reads as a drill challenge whose Safe, chain, nonce and times are
        the columns' own (pages and reports read both). A nonce names one drill in the whole store:
        issuing it twice is refused, so a proof of one drill can never be filed under another.
        """
        fields: dict[str, Any] = {
            "chain_id": valid.chain_id(chain_id),
            "safe": parse_address(safe, "Safe"),
            "nonce": valid.hash32(nonce, "drill nonce"),
            "challenge": _drill_challenge_text(challenge),
            "require_device": canonical(list(valid.addresses(list(require_device), "require_device", "owner"))),
            "created_at": valid.uint(created_at, "created_at", valid.INT64_MAX),
            "expires_at": valid.uint(expires_at, "expires_at", valid.INT64_MAX),
        }
        if fields["expires_at"] <= fields["created_at"]:
            raise InvalidInput(f"a drill must expire after it starts (created {created_at}, expires {expires_at})")
        _check_drill_challenge(challenge, fields)
        actor = valid.label(actor, "actor")

        def write(tx: _Tx) -> DrillRecord:
            s = tx.session
            taken = s.execute(select(DrillRow.id).where(DrillRow.nonce == fields["nonce"]).limit(1)).scalar_one_or_none()
            if taken is not None:
                raise InvalidInput(f"drill nonce {fields['nonce']} was already issued (drill {taken}); a nonce is used once")
            new_id = "drill-" + secrets.token_hex(6)
            while s.get(DrillRow, new_id) is not None:
                new_id = "drill-" + secrets.token_hex(6)
            row = DrillRow(id=new_id, status="open", recorded_at=tx.now, content_hash="", **fields)
            seal(row)
            s.add(row)
            s.flush()
            tx.audit(actor, "drill.started", None, {
                "drill_id": row.id, "content_hash": row.content_hash, "chain_id": str(row.chain_id), "safe": row.safe,
                "nonce": row.nonce, "expires_at": str(row.expires_at), "require_device": _json_list(row.require_device),
                "drill_status_to": "open",
            })
            return drill_record(row)

        return self._write(write)

    def get_drill(self, drill_id: str) -> DrillRecord:
        """The drill with this id; raises UnknownProposal (one line), or TamperedRecord if it was edited."""
        did = _drill_id(drill_id)
        return self._read(lambda s: drill_record(_load_drill(s, did)))

    def drills(self, chain_id: int, safe: str) -> list[DrillRecord]:
        """A Safe's drills, newest first; each integrity-checked."""
        chain = valid.chain_id(chain_id)
        address = parse_address(safe, "Safe")
        rows = DrillRow.__table__.c
        query = (select(DrillRow.__table__).where(rows.chain_id == chain, rows.safe == address)
                 .order_by(rows.created_at.desc(), rows.recorded_at.desc(), rows.id))

        def read(s: Session) -> list[DrillRecord]:
            return [drill_record(row) for row in s.connection().execute(query)]

        return self._read(read)

    def close_drill(self, drill_id: str, actor: str) -> DrillRecord:
        """Close an open drill (`drill.closed`, final): it takes no more proofs."""
        did = _drill_id(drill_id)
        actor = valid.label(actor, "actor")

        def write(tx: _Tx) -> DrillRecord:
            row = _load_drill(tx.session, did)
            drill_record(row)  # never build on a tampered row
            if "closed" not in DRILL_TRANSITIONS.get(row.status, frozenset()):
                raise InvalidTransition(f"drill {did} is {row.status}, which is final")
            row.status = "closed"
            tx.session.flush()
            tx.audit(actor, "drill.closed", None, {"drill_id": did, "drill_status_from": "open", "drill_status_to": "closed"})
            return drill_record(row)

        return self._write(write)

    def add_owner_proof(self, drill_id: str, owner: str, via: str, signature: bytes | str, proved_at: int,
                        actor: str) -> OwnerProofRecord:
        """Keep one owner's proof of control for an open drill (`drill.proved`).

        The caller verified the signature (treasury.ceremony.drill.record_drill_proof); the store
        checks shape only. A second proof by the same owner for the same drill raises
        DuplicateSignature and changes nothing; so does a proof for a closed drill (InvalidTransition).
        """
        did = _drill_id(drill_id)
        owner_address = parse_address(owner, "owner")
        how = _drill_via(via)
        raw = valid.raw_bytes(signature, "signature")
        from treasury.ceremony.challenge import MAX_PROOF_BYTES

        if not 65 <= len(raw) <= MAX_PROOF_BYTES:
            raise InvalidInput(f"a drill signature is 65 to {MAX_PROOF_BYTES} bytes, got {len(raw)}")
        when = valid.uint(proved_at, "proved_at", valid.INT64_MAX)
        actor = valid.label(actor, "actor")

        def write(tx: _Tx) -> OwnerProofRecord:
            s = tx.session
            drill = _load_drill(s, did)
            drill_record(drill)
            if drill.status != "open":
                raise InvalidTransition(f"drill {did} is {drill.status}: it takes no more proofs")
            taken = s.execute(select(OwnerProofRow.id).where(OwnerProofRow.drill_id == did, OwnerProofRow.owner == owner_address)
                              ).scalar_one_or_none()
            if taken is not None:
                raise DuplicateSignature(f"owner {owner_address} has already proved control in drill {did}")
            row = OwnerProofRow(drill_id=did, owner=owner_address, via=how, signature=raw, proved_at=when,
                                recorded_at=tx.now, content_hash="")
            s.add(row)
            s.flush()  # assigns row.id, which the content hash covers
            seal(row)
            s.flush()
            tx.audit(actor, "drill.proved", None, {
                "owner_proof_id": row.id, "drill_id": did, "owner": owner_address, "via": how, "proved_at": str(when),
                "content_hash": row.content_hash,
            })
            return owner_proof_record(row, drill)

        return self._write(write)

    def owner_proofs(self, chain_id: int, safe: str, drill_id: str | None = None) -> list[OwnerProofRecord]:
        """A Safe's owner proofs (of one drill, or of all), oldest first; each integrity-checked."""
        chain = valid.chain_id(chain_id)
        address = parse_address(safe, "Safe")
        did = None if drill_id is None else _drill_id(drill_id)

        def read(s: Session) -> list[OwnerProofRecord]:
            query = select(DrillRow).where(DrillRow.chain_id == chain, DrillRow.safe == address)
            if did is not None:
                query = query.where(DrillRow.id == did)
            drills = {row.id: row for row in s.execute(query).scalars()}
            if not drills:
                return []
            proofs = s.execute(select(OwnerProofRow).where(OwnerProofRow.drill_id.in_(list(drills)))
                               .order_by(OwnerProofRow.proved_at, OwnerProofRow.id)).scalars()
            return [owner_proof_record(row, drills[row.drill_id]) for row in proofs]

        return self._read(read)

    # ---- signatures ----------------------------------------------------------------------------

    def add_signature(
        self,
        proposal_id: str,
        owner: str,
        kind: str,
        signature: bytes | str,
        actor: str,
        *,
        purpose: str = "safe_tx",
        signed_hash: str | bytes | None = None,
        intent_nonce: int | None = None,
        entry_id: int | None = None,
        verified_by: str = "chain",
    ) -> SignatureRecord:
        """Store one owner's signature on an open proposal, with its audit entry.

        `purpose` says what it is over: "safe_tx" (the default) the proposal's safeTxHash, which
        `signed_hash` may repeat and nothing else may be given; "schedule" the guard's scheduleHash
        (`signed_hash`) of the proposal's intent at schedule nonce `intent_nonce`; "cancel" the
        guard's cancelHash (`signed_hash`) of queue entry `entry_id`. The caller has already
        checked the signature by recovery against the Safe's owners over that hash. One signature
        per (proposal, purpose, signed hash, owner): a repeat raises DuplicateSignature and the
        store is left unchanged, so a re-sent signature can never be counted twice. `verified_by`
        "bundle": recovered only against the owners an imported bundle recorded (see mark_verified).
        A chain-verified signature of an owner whose stored one is only bundle-verified takes its
        place (see `_insert_signature`): a bundle can never keep an owner's real signature out.
        """
        pid = valid.proposal_id(proposal_id)
        new = new_signature(owner, kind, signature, purpose=purpose, signed_hash=signed_hash,
                             intent_nonce=intent_nonce, entry_id=entry_id, verified_by=verified_by)
        actor = valid.label(actor, "actor")

        def write(tx: _Tx) -> SignatureRecord:
            proposal = _load_proposal(tx.session, pid)
            proposal_record(proposal)
            if proposal.status not in OPEN_STATUSES:
                raise InvalidTransition(f"proposal {pid} is {proposal.status}; it takes no more signatures")
            return _insert_signature(tx, proposal, new, actor)

        return self._write(write)

    def mark_verified(self, signature_id: int, actor: str) -> SignatureRecord:
        """Record that a bundle-verified signature now checked out against the chain's owners too.

        Only "bundle" -> "chain": the caller has recovered it against the owners the chain reports
        now. A signature already verified by the chain is returned unchanged (no audit entry), so a
        re-run of the re-check is harmless. Raises UnknownProposal for an unknown id.
        """
        sid = valid.uint(signature_id, "signature id", valid.INT64_MAX)
        actor = valid.label(actor, "actor")

        def write(tx: _Tx) -> SignatureRecord:
            row = tx.session.get(SignatureRow, sid)
            if row is None:
                raise UnknownProposal(f"no signature {sid} in the store")
            proposal = _load_proposal(tx.session, row.proposal_id)
            signature_record(row, proposal.safe_tx_hash)  # never build on a forged row
            if row.verified_by == "chain":
                return signature_record(row, proposal.safe_tx_hash)
            return _mark_verified(tx, row, proposal, actor)

        return self._write(write)

    def _rows_of(self, proposal_id: str, row_type: Any, to_record: Callable[[Any], T]) -> list[T]:
        """A proposal's rows of one kind (schedule entries, rehearsals, executions), oldest first."""
        pid = valid.proposal_id(proposal_id)

        def read(s: Session) -> list[T]:
            _load_proposal(s, pid)
            rows = s.execute(select(row_type).where(row_type.proposal_id == pid).order_by(row_type.id))
            return [to_record(r) for r in rows.scalars()]

        return self._read(read)

    def signatures(
        self, proposal_id: str, purpose: str | None = "safe_tx", signed_hash: str | bytes | None = None
    ) -> list[SignatureRecord]:
        """A proposal's signatures sorted by owner address ascending, the order the Safe needs.

        By default its SafeTx signatures; `purpose` "schedule" or "cancel" for those (None: every
        purpose, sorted by purpose, then owner), `signed_hash` only those over that hash.
        """
        pid = valid.proposal_id(proposal_id)
        query = select(SignatureRow).where(SignatureRow.proposal_id == pid)
        if purpose is not None:
            query = query.where(SignatureRow.purpose == valid.one_of(purpose, SIGNATURE_PURPOSES, "signature purpose"))
        digest = None if signed_hash is None else valid.hash32(signed_hash, "signed hash")
        order = {name: index for index, name in enumerate(SIGNATURE_PURPOSES)}

        def read(s: Session) -> list[SignatureRecord]:
            proposal = _load_proposal(s, pid)
            records = (signature_record(r, proposal.safe_tx_hash) for r in s.execute(query).scalars())
            chosen = [r for r in records if digest is None or r.signed_hash == digest]
            return sorted(chosen, key=lambda r: (order[r.purpose], int(r.owner, 16)))

        return self._read(read)

    def signatures_of(
        self, proposal_ids: Sequence[str], purpose: str | None = "safe_tx"
    ) -> dict[str, list[SignatureRecord]]:
        """`signatures(pid, purpose)` for many proposals in one query (a listing page): every id given
        is a key, each list sorted as signatures() sorts it. Unknown ids get an empty list."""
        pids = sorted({valid.proposal_id(pid) for pid in proposal_ids})
        query = select(SignatureRow, ProposalRow.safe_tx_hash).join(ProposalRow, ProposalRow.id == SignatureRow.proposal_id)
        query = query.where(SignatureRow.proposal_id.in_(pids))
        if purpose is not None:
            query = query.where(SignatureRow.purpose == valid.one_of(purpose, SIGNATURE_PURPOSES, "signature purpose"))
        order = {name: index for index, name in enumerate(SIGNATURE_PURPOSES)}

        def read(s: Session) -> dict[str, list[SignatureRecord]]:
            found: dict[str, list[SignatureRecord]] = {pid: [] for pid in pids}
            if pids:
                for row, safe_tx_hash in s.execute(query):
                    found[row.proposal_id].append(signature_record(row, safe_tx_hash))
            return {pid: sorted(records, key=lambda r: (order[r.purpose], int(r.owner, 16))) for pid, records in found.items()}

        return self._read(read)

    def executions_of(self, proposal_ids: Sequence[str]) -> dict[str, list[ExecutionRecord]]:
        """`executions(pid)` for many proposals in one query; every id given is a key, oldest first."""
        pids = sorted({valid.proposal_id(pid) for pid in proposal_ids})

        def read(s: Session) -> dict[str, list[ExecutionRecord]]:
            found: dict[str, list[ExecutionRecord]] = {pid: [] for pid in pids}
            if pids:
                rows = s.execute(select(ExecutionRow).where(ExecutionRow.proposal_id.in_(pids)).order_by(ExecutionRow.id))
                for row in rows.scalars():
                    found[row.proposal_id].append(execution_record(row))
            return found

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
        pid = valid.proposal_id(proposal_id)
        fields: dict[str, Any] = {
            "guard": parse_address(guard, "guard"),
            "entry_id": valid.uint(entry_id, "schedule entry id"),
            "eta": valid.uint(eta, "eta"),
            "expiry": valid.uint(expiry, "expiry"),
            "tx_hash": None if tx_hash is None else valid.hash32(tx_hash, "transaction hash"),
        }
        if fields["expiry"] <= fields["eta"]:
            raise InvalidInput(f"expiry {fields['expiry']} must be later than eta {fields['eta']}")
        actor = valid.label(actor, "actor")

        def write(tx: _Tx) -> ScheduleEntryRecord:
            s = tx.session
            proposal = _load_proposal(s, pid)
            proposal_record(proposal)
            if proposal.status not in OPEN_STATUSES:
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
            seal(row)
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
            return schedule_record(row)

        return self._write(write)

    def set_schedule_status(self, schedule_id: int, status: str, actor: str, note: str = "") -> ScheduleEntryRecord:
        """Mark a queued time-lock entry executed, cancelled or expired (those are final).

        The proposal's own status is changed separately (set_status / record_execution), because a
        lapsed entry may be re-queued while the proposal stays open.
        """
        sid = valid.uint(schedule_id, "schedule entry id", valid.INT64_MAX)
        if status not in SCHEDULE_STATUSES:
            raise InvalidInput(f"schedule status {status!r} is not one of {', '.join(SCHEDULE_STATUSES)}")
        actor = valid.label(actor, "actor")
        note = valid.label(note, "note", valid.MAX_NOTE, required=False)

        def write(tx: _Tx) -> ScheduleEntryRecord:
            row = tx.session.get(ScheduleRow, sid)
            if row is None:
                raise UnknownProposal(f"no schedule entry {sid} in the store")
            schedule_record(row)
            previous = row.status
            if status not in SCHEDULE_TRANSITIONS.get(previous, frozenset()):
                raise InvalidTransition(f"schedule entry {sid} is {previous}; it cannot become {status}")
            row.status = status
            tx.session.flush()
            tx.audit(
                actor,
                "schedule.status",
                row.proposal_id,
                {"schedule_id": sid, "schedule_status_from": previous, "schedule_status_to": status, "note": note},
            )
            return schedule_record(row)

        return self._write(write)

    def schedule_entries(self, proposal_id: str) -> list[ScheduleEntryRecord]:
        """A proposal's time-lock entries, oldest first."""
        return self._rows_of(proposal_id, ScheduleRow, schedule_record)

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
        pid = valid.proposal_id(proposal_id)
        if not isinstance(success, bool):
            raise InvalidInput("success must be True or False")
        fields: dict[str, Any] = {
            "safe_tx_hash": valid.hash32(safe_tx_hash, "safeTxHash"),
            "chain_id": valid.chain_id(chain_id),
            "block_number": valid.uint(block_number, "block number", valid.INT64_MAX),
            "block_hash": valid.hash32(block_hash, "block hash"),
            "success": success,
            "reason": valid.label(reason, "reason", valid.MAX_NOTE, required=False),
            "gas_used": None if gas_used is None else valid.uint(gas_used, "gas used", valid.INT64_MAX),
            "filled": canonical(list(valid.addresses(filled, "filled owners", "filled owner"))),
            "executor": parse_address(executor, "executor"),
        }
        actor = valid.label(actor, "actor")

        def write(tx: _Tx) -> RehearsalRecord:
            s = tx.session
            proposal = _load_proposal(s, pid)
            proposal_record(proposal)
            if proposal.status not in OPEN_STATUSES:
                raise InvalidTransition(f"proposal {pid} is {proposal.status}; only open proposals are rehearsed")
            if fields["safe_tx_hash"] != proposal.safe_tx_hash:
                raise InvalidInput(
                    f"rehearsed safeTxHash {fields['safe_tx_hash']} is not proposal {pid}'s ({proposal.safe_tx_hash})"
                )
            row = RehearsalRow(proposal_id=pid, rehearsed_at=tx.now, content_hash="", **fields)
            s.add(row)
            s.flush()  # assigns row.id, which the content hash covers
            seal(row)
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
            return rehearsal_record(row)

        return self._write(write)

    def rehearsals(self, proposal_id: str) -> list[RehearsalRecord]:
        """A proposal's fork rehearsals, oldest first."""
        return self._rows_of(proposal_id, RehearsalRow, rehearsal_record)

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
        pid = valid.proposal_id(proposal_id)
        fields: dict[str, Any] = {
            "tx_hash": valid.hash32(tx_hash, "transaction hash"),
            "sender": parse_address(sender, "sender"),
            "sender_nonce": valid.uint(sender_nonce, "sender nonce", valid.INT64_MAX),
            "raw_tx": valid.raw_bytes(raw_tx, "raw transaction"),
            "safe_nonce": valid.uint(safe_nonce, "Safe nonce"),
            "block_at_send": valid.uint(block_at_send, "block at send", valid.INT64_MAX),
        }
        if not fields["raw_tx"]:
            raise InvalidInput("raw transaction is empty; store the signed transaction exactly as it is sent")
        actor = valid.label(actor, "actor")

        def write(tx: _Tx) -> BroadcastRecord:
            s = tx.session
            proposal = _load_proposal(s, pid)
            proposal_record(proposal)
            if proposal.status not in OPEN_STATUSES:
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
            seal(row)
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
            return broadcast_record(row)

        return self._write(write)

    def broadcasts(self, proposal_id: str | None = None, status: str | None = None) -> list[BroadcastRecord]:
        """Broadcasts matching the filters, oldest first; `broadcasts(status="sent")` is the reconcile list."""
        query = select(BroadcastRow).order_by(BroadcastRow.id)
        pid = None if proposal_id is None else valid.proposal_id(proposal_id)
        if pid is not None:
            query = query.where(BroadcastRow.proposal_id == pid)
        if status is not None:
            if status not in BROADCAST_STATUSES:
                raise InvalidInput(f"broadcast status {status!r} is not one of {', '.join(BROADCAST_STATUSES)}")
            query = query.where(BroadcastRow.status == status)

        def read(s: Session) -> list[BroadcastRecord]:
            if pid is not None:
                _load_proposal(s, pid)
            return [broadcast_record(r) for r in s.execute(query).scalars()]

        return self._read(read)

    def set_broadcast_status(self, broadcast_id: int, status: str, actor: str, note: str = "") -> BroadcastRecord:
        """Settle a `sent` broadcast as `mined` or `dropped` (both final); `note` is stored with it.

        Allowed whatever the proposal's status, because a transaction's fate is learned after the
        fact: a stale `sent` record of an already executed proposal must still be closable. The
        proposal itself is not touched; record a mined execTransaction with record_execution, which
        also settles the matching broadcast in the same transaction.
        """
        bid = valid.uint(broadcast_id, "broadcast id", valid.INT64_MAX)
        if status not in BROADCAST_STATUSES:
            raise InvalidInput(f"broadcast status {status!r} is not one of {', '.join(BROADCAST_STATUSES)}")
        actor = valid.label(actor, "actor")
        note = valid.label(note, "note", valid.MAX_NOTE, required=False)

        def write(tx: _Tx) -> BroadcastRecord:
            row = tx.session.get(BroadcastRow, bid)
            if row is None:
                raise UnknownProposal(f"no broadcast {bid} in the store")
            broadcast_record(row)
            previous = row.status
            if status not in BROADCAST_TRANSITIONS.get(previous, frozenset()):
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
            return broadcast_record(row)

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
        """Record a mined execTransaction for an open (or cancelled) proposal and update its status accordingly.

        success -> `executed`. A failure that consumed the Safe nonce (ExecutionFailure event) ->
        `failed`, final. A failure that did not (the whole call reverted, nonce unspent) is recorded
        but leaves the proposal open so it can be retried: pass nonce_consumed=False.

        A `sent` broadcast of this proposal with the same tx_hash becomes `mined` in the same
        transaction (and the audit entry says so): the outcome and the closing of its write-ahead
        record land together, so no crash can leave a recorded execution with a broadcast that still
        looks in flight (which would make the next run reconcile it again).
        """
        pid = valid.proposal_id(proposal_id)
        if not isinstance(success, bool) or not isinstance(nonce_consumed, bool):
            raise InvalidInput("success and nonce_consumed must be True or False")
        fields: dict[str, Any] = {
            "tx_hash": valid.hash32(tx_hash, "transaction hash"),
            "block_number": valid.uint(block_number, "block number", valid.INT64_MAX),
            "gas_used": valid.uint(gas_used, "gas used", valid.INT64_MAX),
            "success": success,
            "executor": parse_address(executor, "executor"),
        }
        actor = valid.label(actor, "actor")

        def write(tx: _Tx) -> ExecutionRecord:
            s = tx.session
            proposal = _load_proposal(s, pid)
            proposal_record(proposal)
            new_status = "executed" if success else ("failed" if nonce_consumed else proposal.status)
            # A cancelled (dropped locally) proposal can still be run by whoever holds its signatures:
            # the chain's record of it that used the nonce is kept, not lost.
            ran_anyway = proposal.status == "cancelled" and nonce_consumed
            if proposal.status not in OPEN_STATUSES and not ran_anyway:
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
                broadcast_record(broadcast)  # never build on a forged row
            row = ExecutionRow(proposal_id=pid, recorded_at=tx.now, content_hash="", **fields)
            s.add(row)
            s.flush()
            seal(row)
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
            return execution_record(row)

        return self._write(write)

    def executions(self, proposal_id: str) -> list[ExecutionRecord]:
        """A proposal's recorded executions, oldest first."""
        return self._rows_of(proposal_id, ExecutionRow, execution_record)

    # ---- delegates (who may propose for a Safe without being an owner) ---------------------------

    def add_delegate(
        self,
        *,
        chain_id: int,
        safe: str | None,
        delegate: str,
        delegator: str,
        label: str,
        actor: str,
        expiry: int | None = None,
        proof: str | None = None,
        hour: int | None = None,
    ) -> DelegateRecord:
        """Let `delegate` propose for `safe` (None: every Safe `delegator` owns) on behalf of `delegator`.

        The caller checked the delegator's signature and that it is an owner. The same (chain,
        Safe, delegate, delegator) again updates the label and expiry (`delegate.updated`; nothing
        is written when both are unchanged), as Safe's service does.

        `proof` (the server's: see DelegateProofRow) with the signature's totp `hour`: a proof used
        before is only a retry of the same request (same delegation, label and expiry, still there),
        anything else is refused; a new proof is refused when this delegation was removed in its
        hour or later. Both checked under the write lock, with the write.
        """
        fields: dict[str, Any] = {
            "chain_id": valid.chain_id(chain_id),
            "safe": None if safe is None else parse_address(safe, "Safe"),
            "delegate": parse_address(delegate, "delegate"),
            "delegator": parse_address(delegator, "delegator"),
        }
        text = valid.label(label, "label", required=False)
        until = None if expiry is None else valid.uint(expiry, "expiry", valid.INT64_MAX)
        actor = valid.label(actor, "actor")

        def write(tx: _Tx) -> DelegateRecord:
            s = tx.session
            row = s.execute(select(DelegateRow).where(*_delegation(fields))).scalar_one_or_none()
            if proof is not None:
                used = _used_proof(s, proof)
                if used is not None:
                    if row is None or (used.safe, row.label, row.expiry) != (fields["safe"], text, until) \
                            or (used.delegate, used.delegator) != (fields["delegate"], fields["delegator"]):
                        raise InvalidInput("this delegate signature was used before; sign the delegate message again in a later hour")
                    return delegate_record(row)  # a retry of the request that used it: nothing to write
                signed_in = valid.uint(hour, "hour", valid.INT64_MAX)
                _refuse_before_removal(s, fields, signed_in)
                _add_proof(tx, actor, proof, "add", {**fields, "expiry": until, "hour": signed_in})
            if row is not None:
                delegate_record(row)  # never build on a forged row
                if (row.label, row.expiry) == (text, until):
                    return delegate_record(row)
                row.label, row.expiry = text, until
                s.flush()
                tx.audit(actor, "delegate.updated", None, _delegate_payload(row))
                return delegate_record(row)
            row = DelegateRow(label=text, expiry=until, created_at=tx.now, content_hash="", **fields)
            s.add(row)
            s.flush()  # assigns row.id, which the content hash covers
            seal(row)
            s.flush()
            tx.audit(actor, "delegate.added", None, {**_delegate_payload(row), "content_hash": row.content_hash})
            return delegate_record(row)

        return self._write(write)

    def remove_delegate(
        self,
        *,
        chain_id: int,
        delegate: str,
        delegator: str,
        safe: str | None,
        actor: str,
        proof: str | None = None,
        hour: int | None = None,
    ) -> int:
        """Remove the delegation(s) of `delegate` by `delegator`; returns how many were removed (0: none).

        `safe` None removes the delegate for every Safe of the delegator (the Safe-wide ones and the
        one with no Safe), as Safe's service does when no Safe is given; a Safe removes that one only.
        `proof` (see DelegateProofRow) is recorded with `hour`, the hour of this removal, when
        something was removed (removing is not refused for a used signature: it only takes power away).
        """
        chain = valid.chain_id(chain_id)
        who = parse_address(delegate, "delegate")
        by = parse_address(delegator, "delegator")
        where = [DelegateRow.chain_id == chain, DelegateRow.delegate == who, DelegateRow.delegator == by]
        if safe is not None:
            where.append(DelegateRow.safe == parse_address(safe, "Safe"))
        actor = valid.label(actor, "actor")

        def write(tx: _Tx) -> int:
            rows = list(tx.session.execute(select(DelegateRow).where(*where).order_by(DelegateRow.id)).scalars())
            if not rows:
                return 0
            if proof is not None:
                _add_proof(tx, actor, proof, "remove", {"chain_id": chain, "safe": None if safe is None else rows[0].safe,
                                                         "delegate": who, "delegator": by, "expiry": None,
                                                         "hour": valid.uint(hour, "hour", valid.INT64_MAX)})
            for row in rows:
                delegate_record(row)  # a forged row is reported, not silently deleted
                tx.session.delete(row)
            tx.session.flush()
            payload = {"delegate_ids": [row.id for row in rows], "chain_id": str(chain), "delegate": who, "delegator": by,
                       "safe": None if safe is None else rows[0].safe}
            tx.audit(actor, "delegate.removed", None, payload)
            return len(rows)

        return self._write(write)

    def delegates(
        self,
        *,
        chain_id: int,
        safe: str | None = None,
        delegate: str | None = None,
        delegator: str | None = None,
        label: str | None = None,
    ) -> list[DelegateRecord]:
        """Delegations on `chain_id` matching every given filter, oldest first (expired ones too:
        whether one still holds depends on the caller's clock, see DelegateRecord.active_at).

        `safe` matches delegations for that Safe only; the delegator-wide ones (no Safe) are
        listed by filtering on delegate or delegator.
        """
        where = [DelegateRow.chain_id == valid.chain_id(chain_id)]
        if safe is not None:
            where.append(DelegateRow.safe == parse_address(safe, "Safe"))
        if delegate is not None:
            where.append(DelegateRow.delegate == parse_address(delegate, "delegate"))
        if delegator is not None:
            where.append(DelegateRow.delegator == parse_address(delegator, "delegator"))
        if label is not None:
            where.append(DelegateRow.label == valid.label(label, "label", required=False))

        def read(s: Session) -> list[DelegateRecord]:
            rows = s.execute(select(DelegateRow).where(*where).order_by(DelegateRow.id)).scalars()
            return [delegate_record(row) for row in rows]

        return self._read(read)

    # ---- signed messages (EIP-1271 SafeMessages) -------------------------------------------------

    def add_message(
        self,
        *,
        chain_id: int,
        safe: str,
        message_hash: str | bytes,
        message: str,
        safe_app_id: int | None,
        proposed_by: str,
        actor: str,
        kind: str | None = None,
        signature: bytes | str | None = None,
    ) -> MessageRecord:
        """Store a message for `safe`'s owners to sign, known by its SafeMessage hash (`message.added`).

        The caller computed `message_hash` from `message` and the Safe (the store cannot: it needs
        the Safe's EIP-712 domain). One message per (chain, hash): a repeat raises DuplicateProposal.
        With `kind` and `signature`, the proposer's own signature (checked by the caller) is stored
        in the same transaction (`message.signed`), so a message never exists without it.
        """
        fields: dict[str, Any] = {
            "chain_id": valid.chain_id(chain_id),
            "safe": parse_address(safe, "Safe"),
            "message_hash": valid.hash32(message_hash, "message hash"),
            "message": valid.verbatim(message, "message", valid.MAX_MESSAGE),
            "safe_app_id": None if safe_app_id is None else valid.uint(safe_app_id, "safeAppId", valid.INT64_MAX),
            "proposed_by": parse_address(proposed_by, "proposer"),
        }
        actor = valid.label(actor, "actor")
        first = None if signature is None and kind is None else _message_signature(kind, signature, fields["proposed_by"])

        def write(tx: _Tx) -> MessageRecord:
            s = tx.session
            taken = s.execute(
                select(MessageRow.id).where(MessageRow.chain_id == fields["chain_id"], MessageRow.message_hash == fields["message_hash"])
            ).scalar_one_or_none()
            if taken is not None:
                raise DuplicateProposal(f"message {fields['message_hash']} already exists on chain {fields['chain_id']}")
            row = MessageRow(created_at=tx.now, content_hash="", **fields)
            s.add(row)
            s.flush()  # assigns row.id, which the content hash covers
            seal(row)
            s.flush()
            payload = {"message_id": row.id, "chain_id": str(row.chain_id), "safe": row.safe,
                       "message_hash": row.message_hash, "content_hash": row.content_hash}
            tx.audit(actor, "message.added", None, payload)
            if first is None:
                return message_record(row, [])
            _sign_message(tx, row, fields["proposed_by"], *first, actor)
            return message_record(row, list(s.execute(select(MessageSignatureRow).where(MessageSignatureRow.message_id == row.id)).scalars()))

        return self._write(write)

    def add_message_signature(
        self, *, chain_id: int, message_hash: str | bytes, owner: str, kind: str, signature: bytes | str, actor: str
    ) -> MessageSignatureRecord:
        """Store one owner's signature of a message's SafeMessage hash (`message.signed`).

        The caller checked it by recovery against the Safe's owners. One per owner: a repeat raises
        DuplicateSignature, store unchanged. An unknown message raises UnknownProposal.
        """
        chain = valid.chain_id(chain_id)
        digest = valid.hash32(message_hash, "message hash")
        owner_address = parse_address(owner, "owner")
        checked = _message_signature(kind, signature, owner_address)
        actor = valid.label(actor, "actor")

        def write(tx: _Tx) -> MessageSignatureRecord:
            message = _load_message(tx.session, chain, digest)
            message_record(message, [])  # never build on a forged row
            taken = tx.session.execute(
                select(MessageSignatureRow.id).where(
                    MessageSignatureRow.message_id == message.id, MessageSignatureRow.owner == owner_address
                )
            ).scalar_one_or_none()
            if taken is not None:
                raise DuplicateSignature(f"owner {owner_address} has already signed message {digest}")
            return _sign_message(tx, message, owner_address, *checked, actor)

        return self._write(write)

    def get_message(self, chain_id: int, message_hash: str | bytes) -> MessageRecord:
        """The message with this SafeMessage hash and its signatures; UnknownProposal if there is none."""
        chain = valid.chain_id(chain_id)
        digest = valid.hash32(message_hash, "message hash")

        def read(s: Session) -> MessageRecord:
            row = _load_message(s, chain, digest)
            signed = s.execute(select(MessageSignatureRow).where(MessageSignatureRow.message_id == row.id)).scalars()
            return message_record(row, list(signed))

        return self._read(read)

    def messages(self, chain_id: int, safe: str) -> list[MessageRecord]:
        """A Safe's messages, newest first (as Safe's service lists them), each with its signatures."""
        chain = valid.chain_id(chain_id)
        address = parse_address(safe, "Safe")

        def read(s: Session) -> list[MessageRecord]:
            rows = list(s.execute(
                select(MessageRow).where(MessageRow.chain_id == chain, MessageRow.safe == address).order_by(MessageRow.id.desc())
            ).scalars())
            signed: dict[int, list[MessageSignatureRow]] = {row.id: [] for row in rows}
            if rows:
                query = select(MessageSignatureRow).where(MessageSignatureRow.message_id.in_(list(signed)))
                for sig in s.execute(query).scalars():
                    signed[sig.message_id].append(sig)
            return [message_record(row, signed[row.id]) for row in rows]

        return self._read(read)

    # ---- smoke tests (H2: an audit entry only: no table, no schema change) -----------------------

    def add_smoke_test(self, chain_id: int, safe: str, outcome: str, payload: Mapping[str, Any], actor: str,
                       proposal_id: str | None = None) -> int:
        """Keep a run of `treasury smoke-test` as its "smoke-test.passed" / "smoke-test.failed" audit
        entry; returns the entry's seq. A run changes no stored data of its own (its proposal is
        stored as any other), so the hash-chained log is its record, and what a later run on a live
        network reads to refuse repeating it by accident."""
        fields = {**dict(payload), "chain_id": valid.chain_id(chain_id), "safe": parse_address(safe, "Safe")}
        action = "smoke-test." + valid.one_of(outcome, ("passed", "failed"), "smoke test outcome")
        pid = valid.proposal_id(proposal_id) if proposal_id is not None else None
        actor = valid.label(actor, "actor")

        def write(tx: _Tx) -> int:
            if pid is not None:
                proposal_record(_load_proposal(tx.session, pid))  # an unknown or tampered proposal is refused
            tx.audit(actor, action, pid, fields)
            return tx.head.seq

        return self._write(write)

    def begin_smoke_test(self, chain_id: int, safe: str, payload: Mapping[str, Any], actor: str, *,
                         again: bool = False) -> int:
        """Start a run of `treasury smoke-test` on a live network: its "smoke-test.started" audit entry,
        written BEFORE any money moves; returns the entry's seq. Unless `again`, an earlier run of this
        Safe on this chain (started, passed or failed) refuses it with InvalidTransition, store
        unchanged. The check and the write are one write transaction (the audit head is locked
        first), so two runs at once, or a run that died after funding, can never both pass the rule."""
        chain, address = valid.chain_id(chain_id), parse_address(safe, "Safe")
        fields = {**dict(payload), "chain_id": chain, "safe": address}
        actor = valid.label(actor, "actor")

        def write(tx: _Tx) -> int:
            log = AuditRow.__table__.c
            rows = tx.session.connection().execute(
                select(AuditRow.__table__).where(log.action.in_(SMOKE_TEST_ACTIONS)).order_by(log.seq))
            runs = [e for e in map(audit_record, rows) if (e.payload.get("chain_id"), e.payload.get("safe")) == (chain, address)]
            if runs and not again:
                last = runs[-1]
                raise InvalidTransition(f"a smoke test of Safe {address} already ran on chain {chain} "
                                        f"({last.action.removeprefix('smoke-test.')} at {last.at.isoformat()}, "
                                        f"audit entry {last.seq})")
            tx.audit(actor, "smoke-test.started", None, fields)
            return tx.head.seq

        return self._write(write)

    # ---- risk reviews (an audit entry only: no table, no schema change) --------------------------

    def add_review(self, proposal_id: str, review_json: Mapping[str, Any], actor: str) -> int:
        """Keep a risk review of a proposal as its "proposal.reviewed" audit entry; returns the entry's seq.

        A review is what a signer was told at one moment (the rules' findings, a model's advisory
        summary or why there is none); it changes no data, so the hash-chained log is its only home
        and `treasury log --proposal ID` lists it in order with the signatures it preceded.
        """
        pid = valid.proposal_id(proposal_id)
        payload = _review_payload(review_json)
        actor = valid.label(actor, "actor")

        def write(tx: _Tx) -> int:
            proposal_record(_load_proposal(tx.session, pid))  # an unknown or tampered proposal is refused
            tx.audit(actor, "proposal.reviewed", pid, payload)
            return tx.head.seq

        return self._write(write)

    # ---- audit log -----------------------------------------------------------------------------

    def audit_entries(self, proposal_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        """The audit log in order (optionally one proposal's entries; with `limit`, only the newest
        that many, read as such: `treasury log` on a large store reads 50 rows, not all). Call
        verify_audit_log to trust it."""
        log = AuditRow.__table__.c  # plain rows, not ORM objects: the whole log can be read
        query = select(AuditRow.__table__).order_by(log.seq.desc() if limit is not None else log.seq)
        if proposal_id is not None:
            query = query.where(log.proposal_id == valid.proposal_id(proposal_id))
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise InvalidInput(f"limit must be a positive integer, got {limit!r}")
            query = query.limit(limit)

        def read(s: Session) -> list[AuditEntry]:
            entries = [audit_record(r) for r in s.connection().execute(query)]
            return entries[::-1] if limit is not None else entries

        return self._read(read)

    def audit_head_seq(self) -> int:
        """The sequence number of the newest audit entry (0: none): it grows with every write."""

        def read(s: Session) -> int:
            head = s.execute(select(AuditHeadRow.seq).where(AuditHeadRow.id == 1)).scalar_one_or_none()
            return 0 if head is None else int(head)

        return self._read(read)

    def verify_audit_log(self) -> AuditReport:
        """Walk the audit chain and cross-check it against the data; report the first problem.

        Chain: sequence numbers run 1, 2, 3... without gaps, each entry names its predecessor's hash,
        each entry's hash matches its content, and the head row points at the last entry (so edited,
        deleted, reordered and truncated entries are all caught). Data: every proposal, signature,
        schedule entry, broadcast, rehearsal, execution, delegate, message and message signature
        row matches its content hash and has exactly the audit entry that created it (a removed
        delegate none that survives its removal), and every mutable column (a status, a broadcast's
        note, a signature's verifier, a delegate's label and expiry) equals what the log last recorded.
        """
        return self._read(verify)


MAX_REVIEW = 200_000  # characters of a stored review's JSON (a large batch has many findings)


def _review_payload(review: Mapping[str, Any]) -> dict[str, Any]:
    """A review as its audit payload: a JSON object with a findings list and a known worst severity, bounded."""
    if not isinstance(review, Mapping) or not isinstance(review.get("findings"), list):
        raise InvalidInput("a review must be a JSON object with a findings list")
    if review.get("worst") not in (None, "info", "warning", "danger"):
        raise InvalidInput(f"a review's worst severity must be info, warning or danger, got {review.get('worst')!r}")
    try:
        text = canonical(dict(review))
    except (TypeError, ValueError):
        raise InvalidInput("a review must be plain JSON data (text, numbers, lists, objects)") from None
    if len(text) > MAX_REVIEW:
        raise InvalidInput(f"the review is {len(text)} characters of JSON; the limit is {MAX_REVIEW}")
    return dict(review)


def _delegation(fields: dict[str, Any]) -> list[Any]:
    """WHERE clauses naming one delegation; a NULL Safe matches NULL (SQL's `=` never would)."""
    safe = DelegateRow.safe.is_(None) if fields["safe"] is None else DelegateRow.safe == fields["safe"]
    return [DelegateRow.chain_id == fields["chain_id"], safe, DelegateRow.delegate == fields["delegate"],
            DelegateRow.delegator == fields["delegator"]]


def _used_proof(s: Session, proof: str) -> DelegateProofRow | None:
    row = s.execute(select(DelegateProofRow).where(DelegateProofRow.proof == valid.label(proof, "proof", 66),
                                                   DelegateProofRow.use == "add")).scalar_one_or_none()
    if row is not None:
        check_sealed(row)
    return row


def _refuse_before_removal(s: Session, fields: dict[str, Any], hour: int) -> None:
    """A delegation removed in hour H comes back only with a signature of a later hour (not a held-back one)."""
    covers = DelegateProofRow.safe.is_(None) if fields["safe"] is None else \
        (DelegateProofRow.safe.is_(None) | (DelegateProofRow.safe == fields["safe"]))
    removal = s.execute(select(DelegateProofRow.hour).where(
        DelegateProofRow.use == "remove", DelegateProofRow.chain_id == fields["chain_id"], covers,
        DelegateProofRow.delegate == fields["delegate"], DelegateProofRow.delegator == fields["delegator"],
        DelegateProofRow.hour >= hour).limit(1)).scalar_one_or_none()
    if removal is not None:
        raise InvalidInput(f"this delegation was removed in hour {removal}; adding it again needs a delegate signature "
                           "made in a later hour")


def _add_proof(tx: _Tx, actor: str, proof: str, use: str, fields: dict[str, Any]) -> None:
    row = DelegateProofRow(proof=valid.label(proof, "proof", 66), use=use, created_at=tx.now, content_hash="", **fields)
    tx.session.add(row)
    tx.session.flush()
    seal(row)
    tx.session.flush()
    tx.audit(actor, "delegate.proof", None, {"proof_id": row.id, "proof": row.proof, "use": use,
                                             "chain_id": str(row.chain_id), "safe": row.safe, "delegate": row.delegate,
                                             "delegator": row.delegator, "hour": str(row.hour),
                                             "content_hash": row.content_hash})


def _delegate_payload(row: DelegateRow) -> dict[str, Any]:
    """What a delegate.added / delegate.updated entry logs (label and expiry: its mutable state)."""
    return {"delegate_id": row.id, "chain_id": str(row.chain_id), "safe": row.safe, "delegate": row.delegate,
            "delegator": row.delegator, "label": row.label, "expiry": None if row.expiry is None else str(row.expiry)}


def _message_signature(kind: str | None, signature: bytes | str | None, owner: str) -> tuple[str, bytes]:
    """(kind, bytes) of a message signature, shape-checked like a transaction's."""
    if kind not in SIGNATURE_KINDS:
        raise InvalidInput(f"signature kind {kind!r} is not one of {', '.join(SIGNATURE_KINDS)}")
    raw = valid.raw_bytes(signature, "signature")
    valid.signature_shape(kind, raw, owner)
    return kind, raw


def _sign_message(tx: _Tx, message: MessageRow, owner: str, kind: str, raw: bytes, actor: str) -> MessageSignatureRecord:
    """Append one owner's signature of `message` and its `message.signed` entry (duplicates checked by the caller)."""
    row = MessageSignatureRow(message_id=message.id, owner=owner, kind=kind, signature=raw, created_at=tx.now,
                              content_hash="")
    tx.session.add(row)
    tx.session.flush()  # assigns row.id, which the content hash covers
    seal(row)
    tx.session.flush()
    payload = {"message_signature_id": row.id, "message_id": message.id, "message_hash": message.message_hash,
               "owner": owner, "kind": kind, "content_hash": row.content_hash}
    tx.audit(actor, "message.signed", None, payload)
    return message_signature_record(row)


def _load_message(session: Session, chain_id: int, digest: str) -> MessageRow:
    row = session.execute(
        select(MessageRow).where(MessageRow.chain_id == chain_id, MessageRow.message_hash == digest)
    ).scalar_one_or_none()
    if row is None:
        raise UnknownProposal(f"no message {digest} on chain {chain_id} in the store")
    return row


_DRILL_ID = re.compile(r"drill-[0-9a-f]{12}")


def _drill_id(value: object) -> str:
    """A drill id ("drill-" and 12 hex digits); anything else names no drill (one line)."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if not _DRILL_ID.fullmatch(text):
        raise UnknownProposal(f"no drill {value!r} in the store (a drill id is drill- and 12 hex digits)")
    return text


def _drill_via(value: object) -> str:
    from treasury.ceremony.challenge import VIA  # one definition; loaded (with eth_abi) only when a proof is written

    if not isinstance(value, str) or not VIA.fullmatch(value):
        raise InvalidInput(f"signer kind {value!r} is not a short lowercase word (keyfile, test, hardware, browser, contract)")
    return value


def _drill_challenge_text(challenge: Mapping[str, Any]) -> str:
    if not isinstance(challenge, Mapping):
        raise InvalidInput(f"a drill challenge is the typed data as an object, got {type(challenge).__name__}")
    try:
        text = canonical(dict(challenge))
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"a drill challenge must be plain JSON: {error}") from None
    return valid.verbatim(text, "drill challenge", valid.MAX_MESSAGE)


def _check_drill_challenge(challenge: Mapping[str, Any], fields: Mapping[str, Any]) -> None:
    """Refuse typed data that is no drill challenge, or one that disagrees with the drill's own columns."""
    from treasury.ceremony.challenge import DrillChallenge  # the store keeps what the drill module issues

    parsed = DrillChallenge.from_json(dict(challenge))
    found = {"chain_id": parsed.chain_id, "safe": parsed.safe, "nonce": parsed.nonce, "created_at": parsed.issued_at,
             "expires_at": parsed.expires_at}
    differ = [name for name, value in found.items() if fields[name] != value]
    if differ:
        raise InvalidInput(f"the drill challenge disagrees with the drill's {', '.join(differ)}: it is not this drill's")


def _json_list(text: str) -> list[Any]:
    """The device list a drill row holds (canonical JSON written by the store)."""
    value = json.loads(text)
    return value if isinstance(value, list) else []


def _load_drill(session: Session, did: str) -> DrillRow:
    row = session.get(DrillRow, did)
    if row is None:
        raise UnknownProposal(f"no drill {did} in the store")
    return row


def _load_draft(session: Session, did: str) -> DraftRow:
    row = session.get(DraftRow, did)
    if row is None:
        raise UnknownProposal(f"no draft {did} in the store")
    return row


def _move_draft(tx: _Tx, did: str, status: str, actor: str, note: str, promoted_to: str | None = None) -> DraftRecord:
    """Move an open draft on to `status` (promoted or dropped), audited; refused if it is not open."""
    row = _load_draft(tx.session, did)
    draft_record(row)  # refuse to build on a tampered row
    if status not in DRAFT_TRANSITIONS.get(row.status, frozenset()):
        raise InvalidTransition(f"draft {did} is {row.status}, which is final; it cannot become {status}")
    row.status, row.proposal_id, row.note = status, promoted_to, note
    tx.session.flush()
    tx.audit(actor, f"draft.{status}", promoted_to, {
        "draft_id": did, "draft_status_from": "draft", "draft_status_to": status, "promoted_to": promoted_to, "note": note,
    })
    return draft_record(row)


def _load_proposal(session: Session, pid: str) -> ProposalRow:
    row = session.get(ProposalRow, pid)
    if row is None:
        raise UnknownProposal(f"no proposal {pid} in the store")
    return row


@dataclass(frozen=True)
class NewSignature:
    """A signature checked for shape and ready to insert (made by `new_signature`)."""

    owner: str
    kind: str
    raw: bytes
    purpose: str
    digest: str | None
    intent_nonce: int | None
    entry_id: int | None
    verified_by: str


def new_signature(owner: str, kind: str, signature: bytes | str, *, purpose: str = "safe_tx",
                   signed_hash: str | bytes | None = None, intent_nonce: int | None = None,
                   entry_id: int | None = None, verified_by: str = "chain") -> NewSignature:
    """One signature's fields, validated before any transaction opens (see Store.add_signature,
    and Store.add_proposal's `signatures`)."""
    verifier = valid.one_of(verified_by, VERIFIERS, "verified_by")
    owner_address = parse_address(owner, "owner")
    if kind not in SIGNATURE_KINDS:
        raise InvalidInput(f"signature kind {kind!r} is not one of {', '.join(SIGNATURE_KINDS)}")
    purpose = valid.one_of(purpose, SIGNATURE_PURPOSES, "signature purpose")
    digest = None if signed_hash is None else valid.hash32(signed_hash, "signed hash")
    nonce = None if intent_nonce is None else valid.uint(intent_nonce, "schedule nonce")
    entry = None if entry_id is None else valid.uint(entry_id, "guard entry id")
    if purpose == "safe_tx" and (nonce is not None or entry is not None):
        raise InvalidInput("a SafeTx signature has no schedule nonce and no guard entry id")
    if purpose == "schedule" and (digest is None or nonce is None or entry is not None):
        raise InvalidInput("a schedule signature needs its signed hash and schedule nonce, and no guard entry id")
    if purpose == "cancel" and (digest is None or entry is None or nonce is not None):
        raise InvalidInput("a cancel signature needs its signed hash and guard entry id, and no schedule nonce")
    raw = valid.raw_bytes(signature, "signature")
    valid.signature_shape(kind, raw, owner_address)
    return NewSignature(owner_address, kind, raw, purpose, digest, nonce, entry, verifier)



def _insert_signature(tx: _Tx, proposal: ProposalRow, new: NewSignature, actor: str) -> SignatureRecord:
    """Insert one signature on an open proposal with its audit entry (DuplicateSignature on a repeat).

    A bundle-verified row of the same owner and subject does not block a chain-verified signature:
    a bundle names owners from a list it picks itself, so a planted row must never keep an owner's
    real signature out. The very same bytes are marked verified by the chain (`signature.verified`);
    other bytes replace the row (`signature.replaced` deletes it, then `signature.added`).
    """
    s = tx.session
    pid = proposal.id
    stored_hash = new.digest
    if new.purpose == "safe_tx":
        if new.digest is not None and new.digest != proposal.safe_tx_hash:
            raise InvalidInput(f"signed hash {new.digest} is not proposal {pid}'s safeTxHash {proposal.safe_tx_hash}")
        stored_hash = None  # the proposal's own hash: kept in the version-1 form
    taken = s.execute(
        select(SignatureRow).where(
            SignatureRow.proposal_id == pid,
            SignatureRow.purpose == new.purpose,
            SignatureRow.owner == new.owner,
            *(() if stored_hash is None else (SignatureRow.signed_hash == stored_hash,)),
        )
    ).scalar_one_or_none()
    if taken is not None:
        if taken.verified_by != "bundle" or new.verified_by != "chain":
            over = "" if new.purpose == "safe_tx" else f" {new.purpose} hash {stored_hash} of"
            raise DuplicateSignature(f"owner {new.owner} has already signed{over} proposal {pid}")
        signature_record(taken, proposal.safe_tx_hash)  # never build on a forged row
        if (taken.kind, bytes(taken.signature)) == (new.kind, new.raw):
            return _mark_verified(tx, taken, proposal, actor)
        _replace_bundle_signature(tx, taken, actor)
    row = SignatureRow(proposal_id=pid, owner=new.owner, kind=new.kind, signature=new.raw, created_at=tx.now,
                       purpose=new.purpose, signed_hash=stored_hash, intent_nonce=new.intent_nonce,
                       entry_id=new.entry_id, verified_by=new.verified_by)
    seal(row)
    s.add(row)
    s.flush()
    payload: dict[str, Any] = {"owner": new.owner, "kind": new.kind, "content_hash": row.content_hash}
    if new.purpose != "safe_tx":  # a SafeTx signature's entry keeps its version-1 shape
        payload.update(purpose=new.purpose, signed_hash=stored_hash)
        payload.update({"intent_nonce": str(new.intent_nonce)} if new.intent_nonce is not None else {"entry_id": str(new.entry_id)})
    if new.verified_by != "chain":  # a chain-verified signature's entry keeps its earlier shape
        payload["verified_by"] = new.verified_by
    tx.audit(actor, "signature.added", pid, payload)
    return signature_record(row, proposal.safe_tx_hash)


def _mark_verified(tx: _Tx, row: SignatureRow, proposal: ProposalRow, actor: str) -> SignatureRecord:
    """Mark a bundle-verified row verified by the chain, with its `signature.verified` entry."""
    previous, row.verified_by = row.verified_by, "chain"
    tx.session.flush()
    payload: dict[str, Any] = {"owner": row.owner, "verified_by_from": previous, "verified_by_to": "chain"}
    if row.purpose != "safe_tx" or row.signed_hash is not None:
        payload.update(purpose=row.purpose, signed_hash=row.signed_hash)
    tx.audit(actor, "signature.verified", row.proposal_id, payload)
    return signature_record(row, proposal.safe_tx_hash)


def _replace_bundle_signature(tx: _Tx, row: SignatureRow, actor: str) -> None:
    """Delete a bundle-verified row that a chain-verified signature of its owner replaces, logged as
    `signature.replaced` (what was there: its kind and content hash) before the new row's entry."""
    payload: dict[str, Any] = {"owner": row.owner, "kind": row.kind, "content_hash": row.content_hash,
                               "verified_by": row.verified_by}
    if row.purpose != "safe_tx" or row.signed_hash is not None:
        payload.update(purpose=row.purpose, signed_hash=row.signed_hash)
    tx.session.delete(row)
    tx.session.flush()
    tx.audit(actor, "signature.replaced", row.proposal_id, payload)
