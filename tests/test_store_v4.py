"""Schema version 4 of the proposal store: how signatures were verified, delegates, signed messages.

Like tests/test_store.py: every test that takes `db` runs on a SQLite file and on a fresh database of
a real PostgreSQL server (tests/store_db.py), no mocks of the database. A version-3 store is made the
way an upgrade meets one: today's store written and filled, then stripped of what version 4 added
(the verified_by column, the new tables, the safeTxHash index) and marked version 3.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils import to_checksum_address
from store_db import StoreDB
from test_store import OWNERS, SAFE, SIG, TO, h32, propose  # the store suite's helpers

from treasury.errors import InvalidInput
from treasury.store import (
    DuplicateProposal,
    DuplicateSignature,
    Store,
    TamperedRecord,
    UnknownProposal,
)
from treasury.store.schema import Base

DELEGATE = to_checksum_address("0x00000000000000000000000000000000000de1e9")
OTHER = to_checksum_address("0x0000000000000000000000000000000000000bad")
MESSAGE_HASH = h32(0x3E55)
V3_SIGNATURE_COLUMNS = "id, proposal_id, owner, kind, signature, created_at, content_hash, purpose, signed_hash, intent_nonce, entry_id"
V4_TABLES = ("delegates", "delegate_proofs", "messages", "message_signatures")


def actions(store: Store) -> list[str]:
    return [entry.action for entry in store.audit_entries()]


def message(store: Store, digest: str = MESSAGE_HASH, text: str = "I agree to the terms\n", **overrides: Any):
    fields: dict[str, Any] = {"chain_id": 1, "safe": SAFE, "message_hash": digest, "message": text, "safe_app_id": None,
                              "proposed_by": OWNERS[0], "actor": "server:alice"}
    fields.update(overrides)
    return store.add_message(**fields)


def delegate(store: Store, safe: str | None = SAFE, who: str = DELEGATE, by: str = OWNERS[0], label: str = "bot", **kw: Any):
    return store.add_delegate(chain_id=1, safe=safe, delegate=who, delegator=by, label=label, actor="server:alice", **kw)


# ---- signatures: verified by the chain or by a bundle ---------------------------------------------


def test_bundle_verified_signature_is_marked_verified_once(store: Store):
    proposal = propose(store)
    chain_sig = store.add_signature(proposal.id, OWNERS[0], "eip712", SIG, actor="bob")
    bundle_sig = store.add_signature(proposal.id, OWNERS[1], "eip712", SIG, actor="import", verified_by="bundle")
    assert chain_sig.verified_by == "chain" and bundle_sig.verified_by == "bundle"
    assert chain_sig.id != bundle_sig.id and bundle_sig.id > 0
    assert [s.verified_by for s in store.signatures(proposal.id)] == ["chain", "bundle"]
    entries = store.audit_entries()
    assert "verified_by" not in entries[-2].payload and entries[-1].payload["verified_by"] == "bundle"

    marked = store.mark_verified(bundle_sig.id, actor="treasury")
    assert marked.verified_by == "chain" and marked.id == bundle_sig.id and marked.owner == OWNERS[1]
    last = store.audit_entries()[-1]
    assert (last.action, last.proposal_id) == ("signature.verified", proposal.id)
    assert last.payload == {"owner": OWNERS[1], "verified_by_from": "bundle", "verified_by_to": "chain"}
    count = len(store.audit_entries())
    assert store.mark_verified(bundle_sig.id, actor="treasury") == marked  # already chain: nothing written
    assert len(store.audit_entries()) == count
    assert store.verify_audit_log()


def named(owner: str) -> bytes:
    """An approved_hash "signature": bytes that merely name the owner (its proof is on chain)."""
    return bytes(12) + bytes.fromhex(owner[2:]) + bytes(32) + b"\x01"


def test_a_chain_verified_signature_replaces_a_bundles_of_the_same_owner(db: StoreDB):
    """A bundle vouches for owners from a list it picks itself: its rows (here an approved_hash that
    merely names the owner) must never keep an owner's real signature out, on any subject. Other
    bytes replace the bundle's row (audited, the log still verifies); the very same bytes are just
    marked verified; everything else is still refused with the store unchanged."""
    eth_sign = b"\x02" * 64 + b"\x1f"
    schedule = {"purpose": "schedule", "signed_hash": h32(0x5C), "intent_nonce": 0}
    with db.open() as store:
        proposal = propose(store)
        store.add_signature(proposal.id, OWNERS[0], "approved_hash", named(OWNERS[0]), actor="import", verified_by="bundle")
        store.add_signature(proposal.id, OWNERS[1], "eip712", SIG, actor="import", verified_by="bundle")
        store.add_signature(proposal.id, OWNERS[2], "eip712", SIG, actor="import", verified_by="bundle", **schedule)
        before = db.dump()
        with pytest.raises(DuplicateSignature):  # a bundle never replaces anything
            store.add_signature(proposal.id, OWNERS[0], "eip712", SIG, actor="import", verified_by="bundle")
        assert db.dump() == before

        real = store.add_signature(proposal.id, OWNERS[0], "eip712", SIG, actor="bob")
        same = store.add_signature(proposal.id, OWNERS[1], "eip712", SIG, actor="carol")
        guard = store.add_signature(proposal.id, OWNERS[2], "eth_sign", eth_sign, actor="dave", **schedule)
        assert [(r.owner, r.kind, r.signature, r.verified_by) for r in (real, same, guard)] == [
            (OWNERS[0], "eip712", SIG, "chain"), (OWNERS[1], "eip712", SIG, "chain"), (OWNERS[2], "eth_sign", eth_sign, "chain")]
        assert [(s.owner, s.purpose, s.kind, s.verified_by) for s in store.signatures(proposal.id, None)] == [
            (OWNERS[0], "safe_tx", "eip712", "chain"), (OWNERS[1], "safe_tx", "eip712", "chain"),
            (OWNERS[2], "schedule", "eth_sign", "chain")]
        entries = store.audit_entries()[-5:]
        assert [(e.action, e.actor) for e in entries] == [
            ("signature.replaced", "bob"), ("signature.added", "bob"), ("signature.verified", "carol"),
            ("signature.replaced", "dave"), ("signature.added", "dave")]
        assert entries[0].payload == {"owner": OWNERS[0], "kind": "approved_hash", "verified_by": "bundle",
                                      "content_hash": entries[0].payload["content_hash"]}
        assert entries[3].payload["purpose"] == "schedule" and entries[3].payload["signed_hash"] == h32(0x5C)
        assert store.verify_audit_log()

        before = db.dump()
        with pytest.raises(DuplicateSignature):  # chain-verified now: a repeat is refused as before
            store.add_signature(proposal.id, OWNERS[0], "eth_sign", eth_sign, actor="bob")
        assert db.dump() == before


def test_a_replaced_bundle_signature_put_back_behind_the_store_is_detected(db: StoreDB):
    columns = "id, proposal_id, owner, kind, signature, created_at, content_hash, purpose, verified_by"
    with db.open() as store:
        proposal = propose(store)
        store.add_signature(proposal.id, OWNERS[0], "approved_hash", named(OWNERS[0]), actor="import", verified_by="bundle")
        planted = dict(zip(columns.split(", "), db.query(f"SELECT {columns} FROM signatures")[0], strict=True))
        store.add_signature(proposal.id, OWNERS[0], "eip712", SIG, actor="bob")
        db.execute("DELETE FROM signatures", f"INSERT INTO signatures ({columns}) VALUES "
                   f"({', '.join(':' + c for c in columns.split(', '))})", **planted)
        report = store.verify_audit_log()
        assert not report and "differs from what its audit entry recorded" in (report.problem or "")


def test_schedule_signature_from_a_bundle_is_marked_verified(store: Store):
    proposal = propose(store)
    sig = store.add_signature(proposal.id, OWNERS[0], "eip712", SIG, actor="import", purpose="schedule",
                              signed_hash=h32(0x5C), intent_nonce=0, verified_by="bundle")
    store.mark_verified(sig.id, actor="treasury")
    assert store.signatures(proposal.id, purpose="schedule")[0].verified_by == "chain"
    assert store.verify_audit_log()


def test_verified_by_refusals_leave_the_store_unchanged(db: StoreDB):
    with db.open() as store:
        proposal = propose(store)
        before = db.dump()
        with pytest.raises(InvalidInput, match="verified_by 'node' is not one of chain, bundle"):
            store.add_signature(proposal.id, OWNERS[0], "eip712", SIG, actor="bob", verified_by="node")
        with pytest.raises(UnknownProposal, match="no signature 99"):
            store.mark_verified(99, actor="bob")
        assert db.dump() == before


@pytest.mark.parametrize("start, forged", [("bundle", "chain"), ("chain", "bundle")])
def test_verified_by_edited_behind_the_store_is_detected(db: StoreDB, start: str, forged: str):
    with db.open() as store:
        proposal = propose(store)
        store.add_signature(proposal.id, OWNERS[0], "eip712", SIG, actor="bob", verified_by=start)
        db.execute("UPDATE signatures SET verified_by = :v", v=forged)
        report = store.verify_audit_log()
        assert not report and "the audit log says" in (report.problem or "")


# ---- the migration from version 3 ------------------------------------------------------------------


def downgrade_to_v3(db: StoreDB) -> None:
    """What ape-treasury with schema version 3 left: no verified_by column, none of the new tables."""
    db.execute(
        f"CREATE TABLE signatures_v3 AS SELECT {V3_SIGNATURE_COLUMNS} FROM signatures",
        "DROP TABLE signatures",
        "ALTER TABLE signatures_v3 RENAME TO signatures",
        "DROP TABLE message_signatures",
        "DROP TABLE messages",
        "DROP TABLE delegates",
        "DROP TABLE owner_proofs",  # version 6's (tests/test_drill.py)
        "DROP TABLE drills",
        "DROP TABLE drafts",  # version 5's (tests/test_drafts.py)
        "DROP INDEX ix_proposals_safe_tx_hash",
        "UPDATE store_meta SET value = '3' WHERE key = 'schema_version'",
    )


def test_migration_from_v3_keeps_every_signature_and_is_audited(db: StoreDB):
    with db.open() as store:
        first, second = propose(store, 1), propose(store, 2)
        for owner in OWNERS[:3]:
            store.add_signature(first.id, owner, "eip712", SIG, actor=owner)
        store.add_signature(second.id, OWNERS[0], "eip712", SIG, actor="bob", purpose="cancel", signed_hash=h32(0xCA),
                            entry_id=7)
        held = store.signatures(first.id) + store.signatures(second.id, purpose=None)
        audit = store.audit_entries()
    downgrade_to_v3(db)
    rows = db.query(f"SELECT {V3_SIGNATURE_COLUMNS} FROM signatures ORDER BY id")
    with db.open() as store:
        assert db.query("SELECT value FROM store_meta WHERE key = 'schema_version'") == [("6",)]
        assert db.query(f"SELECT {V3_SIGNATURE_COLUMNS} FROM signatures ORDER BY id") == rows
        assert db.query("SELECT DISTINCT verified_by FROM signatures") == [("chain",)]
        entries = store.audit_entries()
        assert entries[:-3] == audit and [e.payload for e in entries[-3:]] == [{"from": 3, "to": 4}, {"from": 4, "to": 5},
                                                                                {"from": 5, "to": 6}]
        assert store.signatures(first.id) + store.signatures(second.id, purpose=None) == held
        # The new tables and columns work, and new signature ids continue after the old ones.
        added = store.add_signature(first.id, OWNERS[3], "eip712", SIG, actor="import", verified_by="bundle")
        assert added.id == len(rows) + 1
        delegate(store)
        message(store)
        assert store.find_by_safe_tx_hash(1, None, first.safe_tx_hash) == first
        assert store.verify_audit_log()
    fresh = db.fresh()
    Store.open(fresh.url).close()
    tables = ("signatures", "proposals", *V4_TABLES)
    assert db.schema(*tables) == fresh.schema(*tables)
    with db.open() as again:  # migrated once: reopening logs nothing more
        assert actions(again).count("store.migrated") == 3


# ---- delegates -------------------------------------------------------------------------------------


def test_delegates_add_update_list_and_remove(store: Store):
    first = delegate(store, label="ci bot", expiry=1_900_000_000)
    assert (first.safe, first.delegate, first.delegator, first.label, first.expiry) == (SAFE, DELEGATE, OWNERS[0], "ci bot", 1_900_000_000)
    assert first.active_at(1_899_999_999) and not first.active_at(1_900_000_000)
    wide = delegate(store, safe=None, label="everywhere")
    other = delegate(store, by=OWNERS[1], label="bob's")
    assert wide.active_at(2**40)

    # The same key again updates label and expiry (one delegate.updated); unchanged writes nothing.
    updated = delegate(store, label="ci bot v2")
    assert (updated.id, updated.label, updated.expiry) == (first.id, "ci bot v2", None)
    count = len(store.audit_entries())
    assert delegate(store, label="ci bot v2") == updated
    assert len(store.audit_entries()) == count
    assert actions(store) == ["delegate.added"] * 3 + ["delegate.updated"]

    assert store.delegates(chain_id=1, safe=SAFE) == [updated, other]
    assert store.delegates(chain_id=1, delegate=DELEGATE) == [updated, wide, other]
    assert store.delegates(chain_id=1, delegator=OWNERS[1]) == [other]
    assert store.delegates(chain_id=1, label="everywhere") == [wide]
    assert store.delegates(chain_id=5, delegate=DELEGATE) == []

    # A Safe removes that delegation only; no Safe removes every one of the delegator's.
    assert store.remove_delegate(chain_id=1, delegate=DELEGATE, delegator=OWNERS[1], safe=SAFE, actor="server:bob") == 1
    assert store.remove_delegate(chain_id=1, delegate=DELEGATE, delegator=OWNERS[1], safe=SAFE, actor="server:bob") == 0
    assert store.remove_delegate(chain_id=1, delegate=DELEGATE, delegator=OWNERS[0], safe=None, actor="server:alice") == 2
    assert store.delegates(chain_id=1) == []
    removed = store.audit_entries()[-1]
    assert removed.action == "delegate.removed" and removed.payload["delegate_ids"] == [first.id, wide.id]
    assert store.verify_audit_log()

    # Delegating again after a removal is a new delegation (SQLite may reuse the highest id).
    again = delegate(store)
    assert store.delegates(chain_id=1) == [again]
    assert store.verify_audit_log()


PROOF = "0x" + "ab" * 32  # what the server derives from a delegate signature (keccak of signer and digest)


def test_a_delegate_proof_makes_one_delegation_and_a_removal_needs_a_later_hour(store: Store):
    first = delegate(store, expiry=2_000_000_000, proof=PROOF, hour=500)
    assert delegate(store, expiry=2_000_000_000, proof=PROOF, hour=500) == first  # a retry: nothing written
    count = len(store.audit_entries())
    for name, changes in [("another Safe", {"safe": OWNERS[2]}), ("no expiry", {"expiry": None}),
                          ("another label", {"label": "other"}), ("no Safe", {"safe": None})]:
        with pytest.raises(InvalidInput, match="used before"):
            delegate(store, **{"expiry": 2_000_000_000, "proof": PROOF, "hour": 500, **changes})
        assert len(store.audit_entries()) == count, name
    # the same signature may remove (clients sign the same message for both); removed in hour 501
    assert store.remove_delegate(chain_id=1, delegate=DELEGATE, delegator=OWNERS[0], safe=None, actor="x",
                                 proof=PROOF, hour=501) == 1
    with pytest.raises(InvalidInput, match="used before"):
        delegate(store, expiry=2_000_000_000, proof=PROOF, hour=500)
    for hour in (500, 501):  # another signature made before or in the removal's hour
        with pytest.raises(InvalidInput, match="later hour"):
            delegate(store, proof="0x" + f"{hour:064x}", hour=hour)
    assert store.delegates(chain_id=1) == []
    assert delegate(store, proof="0x" + "cd" * 32, hour=502).safe == SAFE
    assert [e.action for e in store.audit_entries()].count("delegate.proof") == 3
    assert store.verify_audit_log()


def test_delegate_refusals_leave_the_store_unchanged(db: StoreDB):
    with db.open() as store:
        delegate(store)
        before = db.dump()
        bad: list[dict[str, Any]] = [
            {"who": "0x1234"},
            {"by": "not an address"},
            {"safe": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeD"},  # wrong checksum
            {"label": "x" * 201},
            {"expiry": -1},
            {"label": "nul\x00"},
        ]
        for fields in bad:
            with pytest.raises(InvalidInput):
                delegate(store, **fields)
        assert db.dump() == before


@pytest.mark.parametrize("column, value", [("label", "evil"), ("expiry", 1), ("delegate", OTHER), ("safe", None)])
def test_edited_delegate_detected(db: StoreDB, column: str, value: Any):
    with db.open() as store:
        delegate(store, expiry=2_000_000_000)
        db.execute(f"UPDATE delegates SET {column} = :v", v=value)
        assert not store.verify_audit_log()


def test_delegate_deleted_behind_the_store_is_detected(db: StoreDB):
    with db.open() as store:
        delegate(store)
        db.execute("DELETE FROM delegates")
        report = store.verify_audit_log()
        assert not report and "missing from the store" in (report.problem or "")


def test_removed_delegate_put_back_behind_the_store_is_detected(db: StoreDB):
    columns = "id, chain_id, safe, delegate, delegator, label, expiry, created_at, content_hash"
    with db.open() as store:
        delegate(store)
        (row,) = db.query(f"SELECT {columns} FROM delegates")
        assert store.remove_delegate(chain_id=1, delegate=DELEGATE, delegator=OWNERS[0], safe=SAFE, actor="x") == 1
        assert store.verify_audit_log()
        names = columns.split(", ")
        db.execute(f"INSERT INTO delegates ({columns}) VALUES ({', '.join(':' + n for n in names)})", **dict(zip(names, row, strict=True)))
        report = store.verify_audit_log()
        assert not report and "was removed" in (report.problem or "")


# ---- messages --------------------------------------------------------------------------------------


def test_messages_round_trip_with_signatures(store: Store):
    added = message(store, safe_app_id=42)
    assert (added.safe, added.message_hash, added.message, added.safe_app_id, added.signatures) == (
        SAFE, MESSAGE_HASH, "I agree to the terms\n", 42, ())
    typed = message(store, digest=h32(0x712), text='{"domain":{},"message":{},"primaryType":"Mail","types":{}}')
    for owner in (OWNERS[2], OWNERS[0]):
        store.add_message_signature(chain_id=1, message_hash=MESSAGE_HASH, owner=owner, kind="eip712", signature=SIG,
                                    actor=f"server:{owner}")
    got = store.get_message(1, MESSAGE_HASH)
    assert [s.owner for s in got.signatures] == [OWNERS[0], OWNERS[2]]  # owner ascending, as the Safe needs
    assert got.signatures[0].signature == SIG and got.signatures[0].kind == "eip712"
    assert [m.message_hash for m in store.messages(1, SAFE)] == [typed.message_hash, MESSAGE_HASH]  # newest first
    assert store.messages(1, TO) == [] and store.messages(5, SAFE) == []
    assert actions(store) == ["message.added", "message.added", "message.signed", "message.signed"]
    assert store.verify_audit_log()


def test_message_refusals_leave_the_store_unchanged(db: StoreDB):
    with db.open() as store:
        message(store)
        store.add_message_signature(chain_id=1, message_hash=MESSAGE_HASH, owner=OWNERS[0], kind="eip712", signature=SIG,
                                    actor="x")
        before = db.dump()
        with pytest.raises(DuplicateProposal, match="already exists"):
            message(store, text="another text, same hash")
        with pytest.raises(DuplicateSignature, match="already signed"):
            store.add_message_signature(chain_id=1, message_hash=MESSAGE_HASH, owner=OWNERS[0], kind="eth_sign",
                                        signature=SIG, actor="x")
        with pytest.raises(UnknownProposal, match="no message"):
            store.add_message_signature(chain_id=1, message_hash=h32(9), owner=OWNERS[1], kind="eip712", signature=SIG,
                                        actor="x")
        with pytest.raises(UnknownProposal):
            store.get_message(2, MESSAGE_HASH)  # the hash is known on chain 1 only
        for fields in ({"text": ""}, {"text": "nul\x00"}, {"safe_app_id": -1}, {"digest": "0x12"}, {"proposed_by": "bob"}):
            with pytest.raises(InvalidInput):
                message(store, **{"digest": h32(77), **fields})
        with pytest.raises(InvalidInput, match="65 bytes"):
            store.add_message_signature(chain_id=1, message_hash=MESSAGE_HASH, owner=OWNERS[1], kind="eip712",
                                        signature=SIG[:64], actor="x")
        assert db.dump() == before


def test_edited_message_is_refused_on_read(db: StoreDB):
    with db.open() as store:
        message(store)
        db.execute("UPDATE messages SET message = 'I agree to pay'")
        with pytest.raises(TamperedRecord):
            store.get_message(1, MESSAGE_HASH)
        assert not store.verify_audit_log()


# ---- every new column is under the integrity checks ------------------------------------------------


def filled(store: Store) -> None:
    """One row of every version-4 table, every nullable column set."""
    delegate(store, expiry=2_000_000_000, proof=PROOF, hour=527_000)
    message(store, safe_app_id=7)
    store.add_message_signature(chain_id=1, message_hash=MESSAGE_HASH, owner=OWNERS[0], kind="eip712", signature=SIG,
                                actor="x")


def _changed(value: Any) -> Any:
    if isinstance(value, (bytes, memoryview)):
        raw = bytes(value)
        return raw[:-1] + bytes([raw[-1] ^ 1])
    if isinstance(value, str):
        if value in ("eip712", "add"):
            return {"eip712": "eth_sign", "add": "remove"}[value]
        return value[:-1] + chr(ord(value[-1]) ^ 1)
    return int(value) ^ 1


@pytest.mark.parametrize(
    "table, column",
    [(t, c.name) for t in V4_TABLES for c in Base.metadata.tables[t].columns],
    ids=lambda x: x,
)
def test_one_changed_value_in_a_new_table_is_detected(db: StoreDB, table: str, column: str):
    with db.open() as store:
        if (table, column) == ("messages", "id") and store.backend == "postgresql":
            pytest.skip("PostgreSQL's foreign key from message_signatures refuses the change itself")
        filled(store)
        assert store.verify_audit_log()
        ((value,),) = db.query(f"SELECT {column} FROM {table}")
        changed = _changed(value)
        if table == "message_signatures" and column == "message_id":
            changed = message(store, digest=h32(0xA2)).id  # another message for the signature to point at
        db.execute(f"UPDATE {table} SET {column} = :v", v=changed)
        assert not store.verify_audit_log(), f"changing {table}.{column} went unnoticed"


# ---- batch reads and lookups for the server -------------------------------------------------------


def test_batch_reads_match_the_single_reads(store: Store):
    proposals = [propose(store, n) for n in (1, 2, 3)]
    for owner in (OWNERS[2], OWNERS[0]):
        store.add_signature(proposals[0].id, owner, "eip712", SIG, actor="bob")
    store.add_signature(proposals[1].id, OWNERS[1], "eip712", SIG, actor="bob", purpose="schedule",
                        signed_hash=h32(0x5C), intent_nonce=0)
    store.record_execution(proposals[2].id, tx_hash=h32(0xE1), block_number=5, gas_used=1, success=True, executor=TO,
                           actor="bob")
    ids = [p.id for p in proposals]
    assert store.signatures_of(ids) == {pid: store.signatures(pid) for pid in ids}
    assert store.signatures_of(ids, purpose=None) == {pid: store.signatures(pid, purpose=None) for pid in ids}
    assert store.executions_of(ids) == {pid: store.executions(pid) for pid in ids}
    assert store.signatures_of([]) == {} and store.executions_of(["feedfeedfeedfeed"]) == {"feedfeedfeedfeed": []}


def test_find_by_safe_tx_hash_without_the_safe(store: Store):
    proposal = propose(store, 4)
    assert store.find_by_safe_tx_hash(1, None, proposal.safe_tx_hash) == proposal
    assert store.find_by_safe_tx_hash(1, SAFE, proposal.safe_tx_hash) == proposal
    assert store.find_by_safe_tx_hash(2, None, proposal.safe_tx_hash) is None
    assert store.find_by_safe_tx_hash(1, TO, proposal.safe_tx_hash) is None


def test_a_message_and_its_proposers_signature_land_together(db: StoreDB):
    with db.open() as store:
        added = message(store, kind="eth_sign", signature=SIG[:64] + b"\x1f")
        assert [(s.owner, s.kind) for s in added.signatures] == [(OWNERS[0], "eth_sign")]
        assert store.get_message(1, MESSAGE_HASH) == added
        assert actions(store) == ["message.added", "message.signed"]
        before = db.dump()
        with pytest.raises(InvalidInput, match="65 bytes"):
            message(store, digest=h32(5), kind="eip712", signature=SIG[:10])
        with pytest.raises(InvalidInput, match="signature kind"):
            message(store, digest=h32(5), kind=None, signature=SIG)
        with pytest.raises(DuplicateProposal):
            message(store, kind="eip712", signature=SIG)
        assert db.dump() == before
        assert store.verify_audit_log()
