"""Schema version 3 of the proposal store: schedule and cancel signatures stored like SafeTx ones.

Like tests/test_store.py: every test that takes `db` runs on a SQLite file and on a fresh database of
a real PostgreSQL server (tests/store_db.py), no mocks of the database. A version-2 store is made the
way an upgrade meets one: today's store written and filled with SafeTx signatures, then its
signatures table rebuilt in the version-2 shape (no purpose, hash, nonce or entry columns) and
marked version 2.
"""

from __future__ import annotations

import pytest
from store_db import StoreDB
from test_store import SIG, h32, propose  # the store suite's helpers

from treasury.errors import InvalidInput
from treasury.store import DuplicateSignature, InvalidTransition, Store, TamperedRecord

OWNERS = [f"0x{i:040x}" for i in range(0x2001, 0x2006)]
SCHEDULE_HASH = h32(0x5C)
OTHER_SCHEDULE_HASH = h32(0x5D)
CANCEL_HASH = h32(0xCA)
V2_COLUMNS = "id, proposal_id, owner, kind, signature, created_at, content_hash"


def schedule_sig(store: Store, pid: str, owner: str, digest: str = SCHEDULE_HASH, nonce: int = 0, **kw):
    return store.add_signature(pid, owner, "eip712", SIG, actor="bob", purpose="schedule", signed_hash=digest,
                               intent_nonce=nonce, **kw)


def cancel_sig(store: Store, pid: str, owner: str, entry_id: int = 7):
    return store.add_signature(pid, owner, "eth_sign", b"\x02" * 64 + b"\x1f", actor="carol", purpose="cancel",
                               signed_hash=CANCEL_HASH, entry_id=entry_id)


def test_schedule_and_cancel_signatures_round_trip_with_what_they_are_over(db: StoreDB):
    with Store.open(db.url) as store:
        proposal = propose(store)
        store.add_signature(proposal.id, OWNERS[1], "eip712", SIG, actor="alice")
        first = schedule_sig(store, proposal.id, OWNERS[2], SCHEDULE_HASH.upper().replace("0X", "0x"), nonce=2**256 - 1)
        schedule_sig(store, proposal.id, OWNERS[0])
        cancelled = cancel_sig(store, proposal.id, OWNERS[3], entry_id=2**256 - 1)
    assert (first.purpose, first.signed_hash, first.intent_nonce, first.entry_id) == ("schedule", SCHEDULE_HASH, 2**256 - 1, None)
    assert (cancelled.purpose, cancelled.signed_hash, cancelled.intent_nonce, cancelled.entry_id) == ("cancel", CANCEL_HASH, None, 2**256 - 1)
    with Store.open(db.url) as store:  # a fresh engine: nothing from a cache
        safe_tx = store.signatures(proposal.id)  # the default: SafeTx signatures only, as execTransaction wants
        assert [(s.owner, s.purpose, s.signed_hash) for s in safe_tx] == [(OWNERS[1], "safe_tx", proposal.safe_tx_hash)]
        assert [s.owner for s in store.signatures(proposal.id, "schedule")] == [OWNERS[0], OWNERS[2]]  # by owner
        assert store.signatures(proposal.id, "schedule", OTHER_SCHEDULE_HASH) == []
        assert store.signatures(proposal.id, "cancel", CANCEL_HASH) == [cancelled]
        assert [s.purpose for s in store.signatures(proposal.id, None)] == ["safe_tx", "schedule", "schedule", "cancel"]
        entries = [e for e in store.audit_entries(proposal.id) if e.action == "signature.added"]
        assert entries[0].payload.keys() == {"owner", "kind", "content_hash"}  # a SafeTx entry keeps its shape
        assert entries[1].payload == {"owner": OWNERS[2], "kind": "eip712", "purpose": "schedule", "signed_hash": SCHEDULE_HASH,
                                      "intent_nonce": str(2**256 - 1), "content_hash": entries[1].payload["content_hash"]}
        assert entries[3].payload["entry_id"] == str(2**256 - 1) and entries[3].actor == "carol"
        assert store.verify_audit_log()


def test_one_signature_per_proposal_purpose_hash_and_owner(db: StoreDB):
    with Store.open(db.url) as store:
        proposal = propose(store)
        owner = OWNERS[0]
        store.add_signature(proposal.id, owner, "eip712", SIG, actor="bob")
        schedule_sig(store, proposal.id, owner)
        schedule_sig(store, proposal.id, owner, OTHER_SCHEDULE_HASH, nonce=1)  # the next schedule nonce: another hash
        cancel_sig(store, proposal.id, owner)
        before = db.dump()
        with pytest.raises(DuplicateSignature, match=f"already signed schedule hash {SCHEDULE_HASH} of proposal"):
            schedule_sig(store, proposal.id, owner.upper().replace("0X", "0x"))
        with pytest.raises(DuplicateSignature, match="already signed cancel hash"):
            cancel_sig(store, proposal.id, owner)
        with pytest.raises(DuplicateSignature, match="already signed proposal"):
            store.add_signature(proposal.id, owner, "eth_sign", b"\x02" * 64 + b"\x1f", actor="bob", signed_hash=proposal.safe_tx_hash)
        assert db.dump() == before
        assert len(store.signatures(proposal.id, None)) == 4


@pytest.mark.parametrize(
    "fields, message",
    [
        pytest.param({"purpose": "veto"}, "signature purpose 'veto' is not one of safe_tx, schedule, cancel", id="purpose"),
        pytest.param({"purpose": "schedule", "signed_hash": SCHEDULE_HASH}, "needs its signed hash and schedule nonce", id="no-nonce"),
        pytest.param({"purpose": "schedule", "intent_nonce": 0}, "needs its signed hash", id="no-hash"),
        pytest.param({"purpose": "schedule", "signed_hash": SCHEDULE_HASH, "intent_nonce": 0, "entry_id": 1}, "no guard entry id", id="both"),
        pytest.param({"purpose": "cancel", "signed_hash": CANCEL_HASH}, "needs its signed hash and guard entry id", id="no-entry"),
        pytest.param({"purpose": "cancel", "signed_hash": CANCEL_HASH, "entry_id": 1, "intent_nonce": 0}, "no schedule nonce", id="cancel-nonce"),
        pytest.param({"intent_nonce": 3}, "a SafeTx signature has no schedule nonce", id="safe-tx-nonce"),
        pytest.param({"signed_hash": h32(0xBAD)}, "is not proposal .*'s safeTxHash", id="safe-tx-other-hash"),
        pytest.param({"purpose": "schedule", "signed_hash": "0x1234", "intent_nonce": 0}, "not a 0x-prefixed 32-byte hex hash", id="short-hash"),
        pytest.param({"purpose": "cancel", "signed_hash": CANCEL_HASH, "entry_id": -1}, "guard entry id -1 is negative", id="negative-entry"),
    ],
)
def test_malformed_signature_subjects_refused_store_unchanged(db: StoreDB, fields: dict, message: str):
    with Store.open(db.url) as store:
        proposal = propose(store)
        before = db.dump()
        with pytest.raises(InvalidInput, match=message) as raised:
            store.add_signature(proposal.id, OWNERS[0], "eip712", SIG, actor="bob", **fields)
        assert "\n" not in str(raised.value)
        assert db.dump() == before


def test_closed_proposal_takes_no_cancel_signatures(db: StoreDB):
    with Store.open(db.url) as store:
        proposal = propose(store)
        store.set_status(proposal.id, "cancelled", actor="bob")
        before = db.dump()
        with pytest.raises(InvalidTransition, match="takes no more signatures"):
            cancel_sig(store, proposal.id, OWNERS[0])
        assert db.dump() == before


@pytest.mark.parametrize(
    "column, value",
    [
        pytest.param("purpose", "cancel", id="purpose"),
        pytest.param("signed_hash", OTHER_SCHEDULE_HASH, id="signed-hash"),
        pytest.param("intent_nonce", f"{1:078d}", id="intent-nonce"),
        pytest.param("entry_id", f"{1:078d}", id="entry-id"),
        pytest.param("owner", OWNERS[4], id="owner"),
    ],
)
def test_edited_schedule_signature_detected(db: StoreDB, column: str, value: str):
    with Store.open(db.url) as store:
        proposal = propose(store)
        schedule_sig(store, proposal.id, OWNERS[0])
        assert store.verify_audit_log()
        db.update("signatures", "purpose = 'schedule'", **{column: value})
        assert not store.verify_audit_log()
        with pytest.raises(TamperedRecord, match="modified outside the store"):
            store.signatures(proposal.id, None)


def test_a_schedule_signature_made_to_look_like_an_old_safe_tx_one_is_detected(db: StoreDB):
    """Version-1 hashing applies to the version-1 shape only: forging that shape changes the hash."""
    with Store.open(db.url) as store:
        proposal = propose(store)
        schedule_sig(store, proposal.id, OWNERS[0])
        db.execute("UPDATE signatures SET purpose = 'safe_tx', signed_hash = NULL, intent_nonce = NULL")
        report = store.verify_audit_log()
        assert not report and "modified outside the store" in report.problem
        with pytest.raises(TamperedRecord):
            store.signatures(proposal.id)


def test_edited_new_column_of_an_old_safe_tx_signature_detected(db: StoreDB):
    with Store.open(db.url) as store:
        proposal = propose(store)
        store.add_signature(proposal.id, OWNERS[0], "eip712", SIG, actor="bob")
        db.execute("UPDATE signatures SET signed_hash = :h", h=h32(0xEE))
        assert not store.verify_audit_log()
        with pytest.raises(TamperedRecord):
            store.signatures(proposal.id)


def downgrade_to_v2(db: StoreDB) -> None:
    """What ape-treasury with schema version 2 left: a signatures table without the version-3 columns."""
    db.execute(
        f"CREATE TABLE signatures_v2 AS SELECT {V2_COLUMNS} FROM signatures",
        "DROP TABLE signatures",
        "ALTER TABLE signatures_v2 RENAME TO signatures",
        "UPDATE store_meta SET value = '2' WHERE key = 'schema_version'",
    )


def test_migration_from_v2_keeps_every_signature_and_is_audited(db: StoreDB):
    with Store.open(db.url) as store:
        first, second = propose(store, 1), propose(store, 2)
        for owner in OWNERS[:3]:
            store.add_signature(first.id, owner, "eip712", SIG, actor=owner)
        store.add_signature(second.id, OWNERS[0], "eth_sign", b"\x02" * 64 + b"\x1f", actor="bob")
        held = store.signatures(first.id) + store.signatures(second.id)
        audit = store.audit_entries()
    downgrade_to_v2(db)
    rows = db.query(f"SELECT {V2_COLUMNS} FROM signatures ORDER BY id")
    with Store.open(db.url) as store:
        assert db.query("SELECT value FROM store_meta WHERE key = 'schema_version'") == [("6",)]
        assert db.query(f"SELECT {V2_COLUMNS} FROM signatures ORDER BY id") == rows  # ids, bytes, hashes unchanged
        assert db.query("SELECT DISTINCT purpose, signed_hash, intent_nonce, entry_id FROM signatures") == [("safe_tx", None, None, None)]
        entries = store.audit_entries()
        assert entries[:-4] == audit and [e.payload for e in entries[-4:]] == [{"from": 2, "to": 3}, {"from": 3, "to": 4},
                                                                                {"from": 4, "to": 5}, {"from": 5, "to": 6}]
        assert store.signatures(first.id) + store.signatures(second.id) == held
        # New rows continue after the old ids (PostgreSQL's sequence was moved on) and verify.
        added = schedule_sig(store, first.id, OWNERS[0])
        assert added.purpose == "schedule"
        assert db.query("SELECT MAX(id) FROM signatures") == [(len(rows) + 1,)]
        with pytest.raises(DuplicateSignature):
            store.add_signature(first.id, OWNERS[0], "eth_sign", b"\x02" * 64 + b"\x1f", actor="bob")
        assert store.verify_audit_log()
    fresh = db.fresh()
    Store.open(fresh.url).close()
    assert db.schema("signatures") == fresh.schema("signatures")
