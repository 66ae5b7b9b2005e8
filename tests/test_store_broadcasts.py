"""Schema version 2 of the proposal store: broadcasts, fork rehearsals and the migration from version 1.

Like tests/test_store.py: every test that takes `db` runs on a SQLite file and on a fresh database
of a real PostgreSQL server (tests/store_db.py), no mocks of the database, and the
concurrent-migration test runs the store in separate OS processes (tests/store_worker.py).
A version-1 store is made the way an upgrade meets one: a store written and filled, then stripped
of the version-2 tables and marked version 1 (the version-1 tables are unchanged by version 2).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from store_db import StoreDB
from test_store import TO, h32, propose  # the store suite's helpers

from treasury.errors import InvalidInput, TreasuryError
from treasury.store import (
    BROADCAST_STATUSES,
    SCHEMA_VERSION,
    BroadcastRecord,
    InvalidTransition,
    RehearsalRecord,
    SchemaTooNew,
    Store,
    TamperedRecord,
    UnknownProposal,
    migrations,
    repository as store_module,
)

WORKER = Path(__file__).with_name("store_worker.py")
SENDER = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
OWNERS = [f"0x{i:040x}" for i in range(0x1001, 0x1011)]
SIG = b"\x01" * 65
RAW_TX = b"\x02\xf8" + bytes(range(256)) * 4  # a typed (EIP-1559) transaction's shape; content is opaque here
V1_TABLES = ("store_meta", "audit_head", "proposals", "signatures", "schedule_entries", "executions", "audit_log")


def downgrade_to_v1(db: StoreDB) -> None:
    """Turn a store into what ape-treasury with SCHEMA_VERSION 1 left behind."""
    db.execute("DROP TABLE owner_proofs", "DROP TABLE drills",  # version 6's
               "DROP TABLE drafts",  # version 5's
               "DROP TABLE message_signatures", "DROP TABLE messages", "DROP TABLE delegate_proofs",
               "DROP TABLE delegates",  # version 4's
               "DROP TABLE broadcasts", "DROP TABLE rehearsals", "UPDATE store_meta SET value = '1' WHERE key = 'schema_version'")
    assert db.tables() == set(V1_TABLES)


def broadcast(store: Store, proposal_id: str, n: int = 0x100, **overrides) -> BroadcastRecord:
    fields = {
        "tx_hash": h32(n), "sender": SENDER, "sender_nonce": 7, "raw_tx": RAW_TX, "safe_nonce": 1, "block_at_send": 19_000_000, "actor": "bot"
    }
    fields.update(overrides)
    return store.record_broadcast(proposal_id, **fields)


def rehearse(store: Store, proposal, **overrides) -> RehearsalRecord:
    fields = {
        "safe_tx_hash": proposal.safe_tx_hash,
        "chain_id": 1,
        "block_number": 19_000_000,
        "block_hash": h32(0xB10C),
        "success": True,
        "reason": "",
        "gas_used": 84_123,
        "filled": [OWNERS[1], OWNERS[0]],
        "executor": SENDER,
        "actor": "bot",
    }
    fields.update(overrides)
    return store.record_rehearsal(proposal.id, **fields)


# ---- schema version 2 and the migration from 1 ----------------------------------------------------


def test_fresh_store_is_version_2_with_both_new_tables(store: Store, db: StoreDB):
    assert SCHEMA_VERSION == 6  # versions 3 (signature purposes), 4, 5 and 6 are test_store_signatures.py's, test_store_v4.py's, test_drafts.py's, test_drill.py's
    assert db.query("SELECT value FROM store_meta WHERE key = 'schema_version'") == [("6",)]
    assert db.tables() == set(V1_TABLES) | {"broadcasts", "rehearsals", "delegates", "delegate_proofs", "messages", "message_signatures",
                                            "drafts", "drills", "owner_proofs"}
    assert any("ix_broadcasts_proposal_status" in repr(entry) for entry in db.schema("broadcasts"))
    assert store.audit_entries() == []  # nothing to migrate, nothing logged


@pytest.fixture
def v1_store(db: StoreDB) -> dict:
    """A version-1 store holding every kind of version-1 row; returns what it held."""
    with Store.open(db.url) as store:
        first = propose(store, 1, data=b"\xca\xfe" * 1000)
        second = propose(store, 2)
        for owner in OWNERS[:3]:
            store.add_signature(first.id, owner, "eip712", SIG, actor=owner)
        store.add_signature(
            second.id, OWNERS[0], "approved_hash", bytes(12) + bytes.fromhex(OWNERS[0][2:]) + bytes(32) + b"\x01", actor="bob"
        )
        entry = store.add_schedule_entry(first.id, guard=TO, entry_id=5, eta=100, expiry=200, actor="carol")
        store.record_execution(first.id, tx_hash=h32(9), block_number=3, gas_used=1, success=True, executor=SENDER, actor="bob")
        store.set_schedule_status(entry.id, "executed", actor="bob")
        store.set_status(second.id, "superseded", actor="bob", note="nonce used")
        held = {
            "proposals": [store.get_proposal(first.id), store.get_proposal(second.id)],
            "signatures": store.signatures(first.id) + store.signatures(second.id),
            "schedule": store.schedule_entries(first.id),
            "executions": store.executions(first.id),
            "audit": store.audit_entries(),
        }
    downgrade_to_v1(db)
    held["rows"] = {t: db.query(f"SELECT * FROM {t} ORDER BY 1") for t in V1_TABLES if t not in ("store_meta", "audit_head")}
    return held


def test_migration_from_v1_keeps_everything_and_is_audited(db: StoreDB, v1_store: dict):
    with Store.open(db.url) as store:
        assert db.query("SELECT value FROM store_meta WHERE key = 'schema_version'") == [("6",)]
        # Not one version-1 row changed, and the audit log only grew by the migration entry.
        for table, rows in v1_store["rows"].items():
            if table != "audit_log":
                assert db.query(f"SELECT * FROM {table} ORDER BY 1") == rows, table
        entries = store.audit_entries()
        assert entries[:-5] == v1_store["audit"]  # then 1 -> 2 and (in the same transaction) 2 -> 3 -> 4 -> 5 -> 6
        migrated = entries[-5]
        assert (migrated.seq, migrated.action, migrated.proposal_id) == (len(v1_store["audit"]) + 1, "store.migrated", None)
        assert migrated.payload == {"from": 1, "to": 2} and [e.payload for e in entries[-4:]] == [
            {"from": 2, "to": 3}, {"from": 3, "to": 4}, {"from": 4, "to": 5}, {"from": 5, "to": 6}]
        assert migrated.prev_hash == v1_store["audit"][-1].entry_hash
        report = store.verify_audit_log()
        assert report and report.entries == len(v1_store["audit"]) + 5
        first, second = v1_store["proposals"]
        assert [store.get_proposal(first.id), store.get_proposal(second.id)] == v1_store["proposals"]
        assert store.signatures(first.id) + store.signatures(second.id) == v1_store["signatures"]
        assert store.schedule_entries(first.id) == v1_store["schedule"]
        assert store.executions(first.id) == v1_store["executions"]
        # The new tables work, and are exactly what a fresh version-2 store has.
        assert store.broadcasts() == [] and store.rehearsals(first.id) == []
        third = propose(store, 3)
        broadcast(store, third.id)
        rehearse(store, third)
        assert store.verify_audit_log()
    fresh = db.fresh()
    Store.open(fresh.url).close()
    assert db.schema("broadcasts", "rehearsals", "signatures") == fresh.schema("broadcasts", "rehearsals", "signatures")
    with Store.open(db.url) as again:  # migrated once: reopening logs nothing more
        assert [e.action for e in again.audit_entries()].count("store.migrated") == 5


def test_failed_migration_leaves_the_store_at_version_1(db: StoreDB, v1_store: dict, monkeypatch):
    before = db.dump()
    original = store_module._Tx.audit

    def fail_on_migration_entry(self, actor, action, *args, **kwargs):
        original(self, actor, action, *args, **kwargs)
        if action == "store.migrated":  # the tables are created and the version bumped by now
            raise RuntimeError("crash inside the migration transaction")

    monkeypatch.setattr(store_module._Tx, "audit", fail_on_migration_entry)
    with pytest.raises(RuntimeError, match="crash inside"):
        Store.open(db.url)
    monkeypatch.undo()
    assert db.dump() == before  # no half-made tables, version still 1, no audit entry
    assert db.tables() == set(V1_TABLES)
    with Store.open(db.url) as store:  # the next open migrates for real
        assert store.audit_entries()[-1].action == "store.migrated"
        assert store.verify_audit_log()


def test_processes_opening_a_v1_store_at_once_migrate_it_once(db: StoreDB, v1_store: dict, tmp_path: Path):
    go = tmp_path / "go"
    workers = [
        subprocess.Popen([sys.executable, str(WORKER), "propose", db.url, str(w), str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w in range(4)
    ]
    for process in workers:
        assert process.stdout.readline().strip() == "ready"
    go.touch()  # every worker opens the version-1 store at the same moment
    ids = set()
    for process in workers:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        ids.add(json.loads(out.strip().splitlines()[-1])["id"])
    with Store.open(db.url) as store:
        entries = store.audit_entries()
        assert [e.action for e in entries].count("store.migrated") == 5  # 1 -> 2 -> 3 -> 4 -> 5 -> 6, once
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        assert ids <= {p.id for p in store.list_proposals()} and len(ids) == 4
        assert store.verify_audit_log()
    assert db.query("SELECT value FROM store_meta WHERE key = 'schema_version'") == [("6",)]


def test_a_new_schema_version_is_one_registered_function(db: StoreDB, monkeypatch):
    """Bump the version, register the step: the next open runs it, audited, in its one transaction."""
    with Store.open(db.url) as store:
        propose(store)
    monkeypatch.setattr(migrations, "MIGRATIONS", dict(migrations.MIGRATIONS))
    for module in (migrations, store_module):
        monkeypatch.setattr(module, "SCHEMA_VERSION", 7)

    @migrations.migration(6)
    def add_notes(tx) -> None:
        tx.session.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))

    with pytest.raises(RuntimeError, match="two migrations from schema version 6"):
        migrations.migration(6)(add_notes)
    with Store.open(db.url) as store:
        last = store.audit_entries()[-1]
        assert (last.action, last.payload) == ("store.migrated", {"from": 6, "to": 7})
        assert store.verify_audit_log()
    assert "notes" in db.tables()
    assert db.query("SELECT value FROM store_meta WHERE key = 'schema_version'") == [("7",)]


@pytest.mark.parametrize(
    "version, error, message",
    [
        pytest.param("7", SchemaTooNew, "schema version 7, newer than this ape-treasury understands \\(6\\)", id="v7"),
        pytest.param("0", TreasuryError, "schema version 0; no migration to 6 exists", id="v0"),
    ],
)
def test_unknown_schema_versions_refused_and_file_untouched(db: StoreDB, version: str, error, message):
    with Store.open(db.url) as store:
        propose(store)
    db.execute(f"UPDATE store_meta SET value = '{version}' WHERE key = 'schema_version'")
    before = db.dump()
    with pytest.raises(error, match=message) as raised:
        Store.open(db.url)
    assert "\n" not in str(raised.value)
    assert db.dump() == before


# ---- broadcasts ------------------------------------------------------------------------------------


def test_broadcast_round_trip_filters_and_audit(db: StoreDB):
    with Store.open(db.url) as store:
        proposal = propose(store, 1)
        other = propose(store, 2)
        sent = broadcast(store, proposal.id, tx_hash=h32(0xAA).upper().replace("0X", "0x"), sender=SENDER.lower())
        assert (sent.proposal_id, sent.tx_hash, sent.sender, sent.status, sent.note) == (proposal.id, h32(0xAA), SENDER, "sent", "")
        assert (sent.sender_nonce, sent.raw_tx, sent.safe_nonce, sent.block_at_send) == (7, RAW_TX, 1, 19_000_000)
        assert "raw_tx" not in repr(sent)
        with pytest.raises(AttributeError):
            sent.status = "mined"  # type: ignore[misc]
        other_sent = broadcast(store, other.id, n=0xBB, raw_tx="0x" + RAW_TX.hex(), safe_nonce=2**256 - 1)
        assert other_sent.raw_tx == RAW_TX and other_sent.safe_nonce == 2**256 - 1
    with Store.open(db.url) as store:  # a fresh engine: nothing comes from a cache
        assert store.broadcasts() == [sent, other_sent]
        assert store.broadcasts(proposal.id) == [sent]
        assert store.broadcasts(status="sent") == [sent, other_sent]
        dropped = store.set_broadcast_status(sent.id, "dropped", actor="bot", note="unknown to the node after 30 blocks")
        assert (dropped.status, dropped.note) == ("dropped", "unknown to the node after 30 blocks")
        assert store.broadcasts(status="sent") == [other_sent]
        assert store.broadcasts(proposal.id, status="dropped") == [dropped]
        assert store.broadcasts(other.id, status="dropped") == []
        resent = broadcast(store, proposal.id, n=0xCC, sender_nonce=8)  # the dropped one no longer blocks
        assert [b.id for b in store.broadcasts(proposal.id)] == [sent.id, resent.id]  # oldest first
        entries = store.audit_entries(proposal.id)
        assert [e.action for e in entries] == ["proposal.added", "broadcast.sent", "broadcast.status", "broadcast.sent"]
        assert entries[1].payload["tx_hash"] == h32(0xAA) and entries[1].payload["broadcast_id"] == sent.id
        assert entries[2].payload == {
            "broadcast_id": sent.id,
            "broadcast_status_from": "sent",
            "broadcast_status_to": "dropped",
            "note": "unknown to the node after 30 blocks",
        }
        assert store.verify_audit_log()
        assert BROADCAST_STATUSES == ("sent", "mined", "dropped")


def test_second_sent_broadcast_refused_store_unchanged(store: Store, db: StoreDB):
    proposal = propose(store)
    first = broadcast(store, proposal.id, n=1)
    before = db.dump()
    with pytest.raises(InvalidInput, match=f"already has broadcast {first.id} .* in flight") as raised:
        broadcast(store, proposal.id, n=2, sender_nonce=8)  # a different tx for the same proposal
    assert "\n" not in str(raised.value)
    assert db.dump() == before
    store.set_broadcast_status(first.id, "mined", actor="bot", note="reverted: GS013")
    broadcast(store, proposal.id, n=2, sender_nonce=8)  # settled: a new attempt may go out


def test_transaction_hash_is_recorded_once_ever(store: Store, db: StoreDB):
    proposal = propose(store, 1)
    other = propose(store, 2)
    first = broadcast(store, proposal.id, n=5)
    store.set_broadcast_status(first.id, "dropped", actor="bot")
    before = db.dump()
    for pid in (proposal.id, other.id):
        with pytest.raises(InvalidInput, match=f"already broadcast {first.id} of proposal {proposal.id}"):
            broadcast(store, pid, n=5)
    assert db.dump() == before


@pytest.mark.parametrize(
    "call, message",
    [
        pytest.param(lambda s, p: broadcast(s, p.id, tx_hash="0x1234"), "transaction hash '0x1234' is not", id="short-tx-hash"),
        pytest.param(lambda s, p: broadcast(s, p.id, tx_hash="0x" + "zz" * 32), "is not a 0x-prefixed 32-byte", id="non-hex-tx-hash"),
        pytest.param(lambda s, p: broadcast(s, p.id, tx_hash=None), "transaction hash must be", id="no-tx-hash"),
        pytest.param(lambda s, p: broadcast(s, p.id, sender_nonce=-1), "sender nonce -1 is negative", id="negative-sender-nonce"),
        pytest.param(lambda s, p: broadcast(s, p.id, sender_nonce=2**63), "sender nonce .* does not fit", id="huge-sender-nonce"),
        pytest.param(lambda s, p: broadcast(s, p.id, safe_nonce=-1), "Safe nonce -1 is negative", id="negative-safe-nonce"),
        pytest.param(lambda s, p: broadcast(s, p.id, safe_nonce=True), "Safe nonce must be an integer", id="bool-safe-nonce"),
        pytest.param(lambda s, p: broadcast(s, p.id, block_at_send=-5), "block at send -5 is negative", id="negative-block"),
        pytest.param(lambda s, p: broadcast(s, p.id, raw_tx=b""), "raw transaction is empty", id="empty-raw-tx"),
        pytest.param(lambda s, p: broadcast(s, p.id, raw_tx="0x"), "raw transaction is empty", id="empty-raw-tx-hex"),
        pytest.param(lambda s, p: broadcast(s, p.id, raw_tx=12345), "raw transaction must be bytes", id="raw-tx-not-bytes"),
        pytest.param(lambda s, p: broadcast(s, p.id, raw_tx="0xabc"), "raw transaction must be bytes", id="raw-tx-odd-hex"),
        pytest.param(lambda s, p: broadcast(s, p.id, sender="0x1234"), "sender '0x1234' is not", id="bad-sender"),
        pytest.param(lambda s, p: broadcast(s, p.id, actor=" "), "actor must not be empty", id="empty-actor"),
        pytest.param(lambda s, p: broadcast(s, "0123456789abcdef"), "no proposal 0123456789abcdef", id="unknown-proposal"),
        pytest.param(lambda s, p: s.broadcasts("0123456789abcdef"), "no proposal 0123456789abcdef", id="list-unknown-proposal"),
        pytest.param(lambda s, p: s.broadcasts(status="pending"), "broadcast status 'pending' is not one of", id="list-bad-status"),
        pytest.param(lambda s, p: s.set_broadcast_status(1, "confirmed", actor="bot"), "'confirmed' is not one of", id="unknown-status"),
        pytest.param(lambda s, p: s.set_broadcast_status(99, "mined", actor="bot"), "no broadcast 99", id="unknown-broadcast"),
        pytest.param(lambda s, p: s.set_broadcast_status(-1, "mined", actor="bot"), "broadcast id -1 is negative", id="negative-broadcast-id"),
        pytest.param(
            lambda s, p: s.set_broadcast_status(1, "mined", actor="bot", note="x" * 2001), "note is 2001 characters", id="note-too-long"
        ),
        pytest.param(lambda s, p: rehearse(s, p, safe_tx_hash=h32(0xDEAD)), "is not proposal .*'s", id="rehearsal-other-safe-tx-hash"),
        pytest.param(lambda s, p: rehearse(s, p, block_hash="0x00"), "block hash '0x00' is not", id="rehearsal-bad-block-hash"),
        pytest.param(lambda s, p: rehearse(s, p, block_number=-1), "block number -1 is negative", id="rehearsal-negative-block"),
        pytest.param(lambda s, p: rehearse(s, p, chain_id=0), "chain id 0", id="rehearsal-chain-zero"),
        pytest.param(lambda s, p: rehearse(s, p, success=1), "success must be True or False", id="rehearsal-success-not-bool"),
        pytest.param(lambda s, p: rehearse(s, p, reason="r" * 2001), "reason is 2001 characters", id="rehearsal-reason-too-long"),
        pytest.param(lambda s, p: rehearse(s, p, gas_used=-1), "gas used -1 is negative", id="rehearsal-negative-gas"),
        pytest.param(lambda s, p: rehearse(s, p, filled=OWNERS[0]), "must be a list of addresses", id="rehearsal-filled-a-string"),
        pytest.param(
            lambda s, p: rehearse(s, p, filled=[OWNERS[0], OWNERS[0].upper().replace("0X", "0x")]),
            "lists 0x0000000000000000000000000000000000001001 more than once",
            id="rehearsal-filled-twice",
        ),
        pytest.param(lambda s, p: rehearse(s, p, filled=["0xnothex"]), "filled owner '0xnothex' is not", id="rehearsal-filled-bad-address"),
        pytest.param(lambda s, p: rehearse(s, p, executor="nobody"), "executor 'nobody' is not", id="rehearsal-bad-executor"),
        pytest.param(lambda s, p: rehearse(s, p, actor=""), "actor must not be empty", id="rehearsal-empty-actor"),
        pytest.param(
            lambda s, p: s.record_rehearsal("0123456789abcdef", **_rehearsal_fields(p)), "no proposal", id="rehearsal-unknown-proposal"
        ),
        pytest.param(lambda s, p: s.rehearsals("0123456789abcdef"), "no proposal", id="rehearsals-unknown-proposal"),
    ],
)
def test_malformed_input_refused_with_one_line_message(store: Store, db: StoreDB, call, message):
    in_flight = propose(store, 1)
    broadcast(store, in_flight.id)  # broadcast 1, so status changes on it reach their own checks
    fresh = propose(store, 2)  # no broadcast yet: only the malformed field can be the reason for a refusal
    before = db.dump()
    with pytest.raises(InvalidInput, match=message) as raised:
        call(store, fresh)
    assert "\n" not in str(raised.value)
    assert db.dump() == before


def _rehearsal_fields(proposal) -> dict:
    return {
        "safe_tx_hash": proposal.safe_tx_hash, "chain_id": 1, "block_number": 1, "block_hash": h32(1), "success": True, "reason": "",
        "gas_used": None, "filled": [], "executor": SENDER, "actor": "bot",
    }


def test_unknown_ids_raise_unknown_proposal(store: Store):
    with pytest.raises(UnknownProposal, match="no broadcast 4"):
        store.set_broadcast_status(4, "mined", actor="bot")
    with pytest.raises(UnknownProposal, match="no proposal"):
        broadcast(store, "0123456789abcdef")
    with pytest.raises(UnknownProposal, match="no proposal"):
        store.rehearsals("0123456789abcdef")


@pytest.mark.parametrize("closing", ["executed", "failed", "rejected", "superseded", "cancelled"])
def test_closed_proposal_takes_no_broadcast_or_rehearsal(store: Store, db: StoreDB, closing: str):
    proposal = propose(store)
    store.set_status(proposal.id, closing, actor="alice")
    before = db.dump()
    with pytest.raises(InvalidTransition, match=f"is {closing}; nothing may be broadcast"):
        broadcast(store, proposal.id)
    with pytest.raises(InvalidTransition, match=f"is {closing}; only open proposals are rehearsed"):
        rehearse(store, proposal)
    assert db.dump() == before


def test_scheduled_proposal_is_open_for_broadcast_and_rehearsal(store: Store):
    proposal = propose(store)
    store.add_schedule_entry(proposal.id, guard=TO, entry_id=1, eta=1, expiry=2, actor="carol")
    broadcast(store, proposal.id)
    rehearse(store, proposal)
    assert store.verify_audit_log()


@pytest.mark.parametrize(
    "first, then",
    [("mined", "dropped"), ("mined", "mined"), ("dropped", "mined"), ("dropped", "sent"), (None, "sent")],
)
def test_broadcast_transitions_refused_store_unchanged(store: Store, db: StoreDB, first, then):
    proposal = propose(store)
    sent = broadcast(store, proposal.id)
    if first is not None:
        store.set_broadcast_status(sent.id, first, actor="bot")
    before = db.dump()
    with pytest.raises(InvalidTransition, match=f"broadcast {sent.id} is {first or 'sent'}; it cannot become {then}"):
        store.set_broadcast_status(sent.id, then, actor="bot", note="second thoughts")
    assert db.dump() == before


def test_stale_sent_broadcast_of_a_closed_proposal_can_still_be_settled(store: Store):
    proposal = propose(store)
    stale = broadcast(store, proposal.id, n=1)
    # Another machine's transaction (not recorded here) executed the proposal.
    store.record_execution(proposal.id, tx_hash=h32(2), block_number=5, gas_used=1, success=True, executor=TO, actor="bob")
    assert store.broadcasts(proposal.id) == [stale]  # a different hash: not this broadcast's outcome
    assert store.set_broadcast_status(stale.id, "dropped", actor="bot", note="nonce used by 0x..02").status == "dropped"
    assert store.verify_audit_log()


# ---- record_execution settles the matching broadcast -----------------------------------------------


def test_record_execution_marks_the_matching_broadcast_mined(store: Store):
    proposal = propose(store)
    sent = broadcast(store, proposal.id, n=0xE1)
    execution = store.record_execution(
        proposal.id, tx_hash=h32(0xE1), block_number=19_000_002, gas_used=90_000, success=True, executor=SENDER, actor="bot"
    )
    (mined,) = store.broadcasts(proposal.id)
    assert mined.status == "mined" and mined.note == f"mined in block 19000002: execution {execution.id}"
    assert (mined.id, mined.tx_hash, mined.raw_tx, mined.created_at) == (sent.id, sent.tx_hash, sent.raw_tx, sent.created_at)
    last = store.audit_entries(proposal.id)[-1]
    assert last.action == "execution.recorded"
    assert last.payload["broadcast_id"] == sent.id
    assert (last.payload["broadcast_status_from"], last.payload["broadcast_status_to"]) == ("sent", "mined")
    assert (last.payload["status_from"], last.payload["status_to"]) == ("pending", "executed")
    assert store.verify_audit_log()


def test_reverted_execution_settles_broadcast_and_allows_a_retry(store: Store):
    proposal = propose(store)
    sent = broadcast(store, proposal.id, n=1)
    store.record_execution(
        proposal.id, tx_hash=h32(1), block_number=9, gas_used=30_000, success=False, executor=SENDER, actor="bot", nonce_consumed=False
    )
    assert store.get_proposal(proposal.id).status == "pending"
    assert store.broadcasts(proposal.id)[0].status == "mined"  # in a block, even though it reverted
    retry = broadcast(store, proposal.id, n=2, sender_nonce=sent.sender_nonce + 1)
    assert [b.status for b in store.broadcasts(proposal.id)] == ["mined", "sent"] and retry.id == sent.id + 1
    assert store.verify_audit_log()


def test_execution_of_another_hash_or_proposal_leaves_a_broadcast_alone(store: Store):
    proposal = propose(store, 1)
    other = propose(store, 2)
    mine = broadcast(store, proposal.id, n=1)
    store.record_execution(other.id, tx_hash=h32(1), block_number=9, gas_used=1, success=True, executor=SENDER, actor="bot")
    store.record_execution(
        proposal.id, tx_hash=h32(3), block_number=9, gas_used=1, success=False, executor=SENDER, actor="bot", nonce_consumed=False
    )
    assert store.broadcasts(proposal.id) == [mine]
    assert "broadcast_id" not in store.audit_entries()[-1].payload
    assert store.verify_audit_log()


def test_execution_and_broadcast_settle_together_or_not_at_all(store: Store, db: StoreDB, monkeypatch):
    proposal = propose(store)
    broadcast(store, proposal.id, n=1)
    before = db.dump()

    def crash(self, *args, **kwargs):
        raise RuntimeError("crash before the audit entry")

    monkeypatch.setattr(store_module._Tx, "audit", crash)
    with pytest.raises(RuntimeError):
        store.record_execution(proposal.id, tx_hash=h32(1), block_number=9, gas_used=1, success=True, executor=TO, actor="bot")
    monkeypatch.undo()
    assert db.dump() == before
    assert store.broadcasts(status="sent")[0].proposal_id == proposal.id


# ---- rehearsals ------------------------------------------------------------------------------------


def test_rehearsal_round_trip(db: StoreDB):
    with Store.open(db.url) as store:
        proposal = propose(store)
        passed = rehearse(store, proposal, filled=(OWNERS[2], OWNERS[0].upper().replace("0X", "0x")))
        failed = rehearse(store, proposal, success=False, reason="GS013", gas_used=None, filled=[], block_hash=bytes(range(32)))
    with Store.open(db.url) as store:
        assert store.rehearsals(proposal.id) == [passed, failed]
        entries = store.audit_entries(proposal.id)
        assert store.verify_audit_log()
    assert [e.action for e in entries] == ["proposal.added", "rehearsal.recorded", "rehearsal.recorded"]
    assert entries[2].payload["success"] is False and entries[2].payload["rehearsal_id"] == failed.id
    assert passed.filled == (OWNERS[0], OWNERS[2])  # checksummed, sorted like the Safe's owners
    assert (passed.success, passed.gas_used, passed.block_number, passed.chain_id) == (True, 84_123, 19_000_000, 1)
    assert (passed.safe_tx_hash, passed.executor, passed.reason) == (proposal.safe_tx_hash, SENDER, "")
    assert (failed.success, failed.reason, failed.gas_used, failed.filled) == (False, "GS013", None, ())
    assert failed.block_hash == "0x" + bytes(range(32)).hex()
    with pytest.raises(AttributeError):
        passed.success = False  # type: ignore[misc]


# ---- tamper evidence -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "assignment",
    [
        pytest.param({"raw_tx": bytes.fromhex("02f801")}, id="raw-tx"),
        pytest.param({"raw_tx": RAW_TX[:-1] + b"\x00"}, id="raw-tx-one-byte"),  # same length, one byte changed
        pytest.param({"tx_hash": h32(0xEE)}, id="tx-hash"),
        pytest.param({"sender": TO}, id="sender"),
        pytest.param({"sender_nonce": 8}, id="sender-nonce"),
        pytest.param({"safe_nonce": "0" * 77 + "2"}, id="safe-nonce"),
        pytest.param({"block_at_send": 1}, id="block-at-send"),
        pytest.param({"proposal_id": "{other}"}, id="proposal-id"),
    ],
)
def test_tampered_broadcast_detected_on_read(store: Store, db: StoreDB, assignment: dict):
    proposal = propose(store, 1)
    other = propose(store, 2)
    sent = broadcast(store, proposal.id, n=0xE1)
    values = {column: other.id if value == "{other}" else value for column, value in assignment.items()}
    db.update("broadcasts", f"id = {sent.id}", **values)
    with pytest.raises(TamperedRecord, match=f"broadcast {sent.id} was modified outside the store"):
        store.broadcasts()
    with pytest.raises(TamperedRecord):
        store.set_broadcast_status(sent.id, "dropped", actor="bot")  # never build on a forged row
    tx_hash = db.query("SELECT tx_hash FROM broadcasts")[0][0]
    pid = db.query("SELECT proposal_id FROM broadcasts")[0][0]
    before = db.dump()
    with pytest.raises(TamperedRecord):
        store.record_execution(pid, tx_hash=tx_hash, block_number=9, gas_used=1, success=True, executor=TO, actor="bot")
    assert db.dump() == before
    assert not store.verify_audit_log()


def test_broadcast_status_and_note_edits_caught_by_the_audit_cross_check(store: Store, db: StoreDB):
    proposal = propose(store)
    sent = broadcast(store, proposal.id)
    assert store.verify_audit_log()
    db.execute(f"UPDATE broadcasts SET status = 'dropped' WHERE id = {sent.id}")  # would allow a second send
    report = store.verify_audit_log()
    assert not report and f"broadcast {sent.id} is dropped but the audit log says sent" in report.problem
    db.execute(f"UPDATE broadcasts SET status = 'sent', note = 'all fine' WHERE id = {sent.id}")
    report = store.verify_audit_log()
    assert not report and "note" in report.problem
    db.execute(f"UPDATE broadcasts SET note = '' WHERE id = {sent.id}")
    assert store.verify_audit_log()
    db.execute(f"DELETE FROM broadcasts WHERE id = {sent.id}")
    report = store.verify_audit_log()
    assert not report and f"broadcast {sent.id} is in the audit log but missing from the store" in report.problem


@pytest.mark.parametrize(
    "assignment",
    [
        pytest.param({"success": False}, id="success"),
        pytest.param({"reason": "nothing to see"}, id="reason"),
        pytest.param({"gas_used": 1}, id="gas-used"),
        pytest.param({"gas_used": None}, id="gas-used-null"),
        pytest.param({"filled": "[]"}, id="filled"),
        pytest.param({"block_hash": h32(0xBAD)}, id="block-hash"),
        pytest.param({"safe_tx_hash": h32(0xBAD)}, id="safe-tx-hash"),
        pytest.param({"chain_id": 5}, id="chain-id"),
    ],
)
def test_tampered_rehearsal_detected_on_read(store: Store, db: StoreDB, assignment: dict):
    proposal = propose(store)
    done = rehearse(store, proposal)
    db.update("rehearsals", f"id = {done.id}", **assignment)
    with pytest.raises(TamperedRecord, match=f"rehearsal {done.id} was modified outside the store"):
        store.rehearsals(proposal.id)
    report = store.verify_audit_log()
    assert not report and f"rehearsal {done.id} was modified" in report.problem


def test_deleted_rehearsal_caught_by_the_audit_cross_check(store: Store, db: StoreDB):
    proposal = propose(store)
    done = rehearse(store, proposal)
    db.execute(f"DELETE FROM rehearsals WHERE id = {done.id}")
    report = store.verify_audit_log()
    assert not report and f"rehearsal {done.id} is in the audit log but missing from the store" in report.problem
