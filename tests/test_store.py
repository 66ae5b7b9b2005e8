"""The proposal store on real databases: round trips, refusals, tamper evidence, concurrency, crashes.

No chain and no database mocks. Every test that takes `db` runs twice: on a SQLite file under
tmp_path and on a fresh database of a real PostgreSQL server (tests/store_db.py). The concurrency
and crash tests run the store in separate OS processes (tests/store_worker.py).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import NullPool
from store_db import StoreDB

from treasury.errors import InvalidInput, TreasuryError
from treasury.store import (
    UINT256_MAX,
    AuditReport,
    DuplicateProposal,
    DuplicateSignature,
    InvalidTransition,
    SchemaTooNew,
    Store,
    StoreBusy,
    TamperedRecord,
    UnknownProposal,
    repository as store_module,
)
from treasury.store.backends import is_transient

WORKER = Path(__file__).with_name("store_worker.py")
SAFE = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55 example address
OTHER_SAFE = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
TO = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"
ZERO = "0x0000000000000000000000000000000000000000"
OWNERS = [f"0x{i:040x}" for i in range(0x1001, 0x1011)]
SIG = b"\x01" * 65


def h32(n: int) -> str:
    return "0x" + f"{n:064x}"


def propose(store: Store, n: int = 1, **overrides):
    fields = {"chain_id": 1, "safe": SAFE, "nonce": n, "to": TO, "safe_tx_hash": h32(n), "proposer": "alice", "actor": "alice"}
    fields.update(overrides)
    return store.add_proposal(**fields)


# ---- opening ---------------------------------------------------------------------------------


def test_open_configures_sqlite_for_concurrency_and_durability(sqlite_db: StoreDB):
    with Store.open(sqlite_db.url) as store, store._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    con = sqlite3.connect(sqlite_db.url)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persisted in the file
        assert con.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchone()[0] == "6"
        indexes = {row[1] for row in con.execute("PRAGMA index_list(proposals)")}
        assert "ix_proposals_listing" in indexes
        columns = [row[2] for row in con.execute("PRAGMA index_info(ix_proposals_listing)")]
        assert columns == ["chain_id", "safe", "status", "nonce"]
    finally:
        con.close()


def test_open_configures_postgresql_for_concurrency(postgres_db: StoreDB):
    """Writers wait on a row lock at most the busy timeout; reads see one snapshot; uint256 sorts bytewise."""
    with Store.open(postgres_db.url, busy_timeout=2.5) as store:
        assert store.backend == "postgresql" and store.url.startswith("postgresql+psycopg://")

        def shown(session):
            names = ("transaction_isolation", "transaction_read_only", "lock_timeout")
            return [session.execute(text(f"SHOW {name}")).scalar() for name in names]

        assert store._read(shown) == ["repeatable read", "on", "2500ms"]
        assert store._transaction(shown, write=True) == ["read committed", "off", "2500ms"]
    assert postgres_db.query("SELECT value FROM store_meta WHERE key = 'schema_version'") == [("6",)]
    collations = dict(postgres_db.query(
        "SELECT column_name, collation_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = 'proposals'"))
    assert collations["nonce"] == collations["value"] == "C"
    (definition,) = postgres_db.query(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'ix_proposals_listing'")[0]
    assert definition.endswith("(chain_id, safe, status, nonce)")


def _other_spellings(db: StoreDB) -> list:
    """The same database named differently: a Path or sqlite:/// URL; a plain postgresql:// URL."""
    if db.kind == "sqlite":
        return [Path(db.url), f"sqlite:///{db.url}", f"  {db.url}  "]
    tail = db.url.split("://", 1)[1]
    return [f"postgresql://{tail}", f"postgres://{tail}"]


def test_reopen_keeps_data_and_accepts_url_or_path(db: StoreDB):
    with Store.open(db.url) as first:
        record = propose(first)
    for spelling in _other_spellings(db):
        with Store.open(spelling) as second:
            assert second.get_proposal(record.id) == record
            assert second.verify_audit_log()
            assert second.url.startswith("sqlite:///" if db.kind == "sqlite" else "postgresql+psycopg://")


def test_newer_schema_refused_and_file_untouched(db: StoreDB):
    Store.open(db.url).close()
    db.execute("UPDATE store_meta SET value = '99' WHERE key = 'schema_version'")
    before = db.dump()
    with pytest.raises(SchemaTooNew, match="schema version 99"):
        Store.open(db.url)
    assert db.dump() == before


def test_missing_folders_of_a_sqlite_store_are_created(tmp_path: Path):
    with Store.open(tmp_path / "a" / "b" / "treasury.db") as by_path:
        propose(by_path)
    with Store.open(f"sqlite:///{tmp_path}/c/d/treasury.db") as by_url:
        propose(by_url)
    assert (tmp_path / "a" / "b" / "treasury.db").is_file() and (tmp_path / "c" / "d" / "treasury.db").is_file()


def test_folder_that_cannot_be_created_is_a_clear_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    for location in (blocker / "sub" / "treasury.db", f"sqlite:///{blocker}/treasury.db"):
        with pytest.raises(InvalidInput, match="cannot create folder") as raised:
            Store.open(location)
        assert "\n" not in str(raised.value)
    assert blocker.read_text() == "in the way"


def test_not_a_database_is_a_clear_error(tmp_path: Path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database " * 100)
    with pytest.raises(TreasuryError, match=r"cannot open the store .*not a database") as raised:
        Store.open(junk)
    assert "\n" not in str(raised.value)


PASSWORD = "s3cret-Pw"


def test_unreachable_server_is_one_line_without_the_password():
    url = f"postgresql://treasurer:{PASSWORD}@127.0.0.1:1/treasury"  # port 1: nothing listens there
    with pytest.raises(TreasuryError, match=r"cannot open the store postgresql\+psycopg://treasurer:\*\*\*@127.0.0.1:1/treasury: ") as raised:
        Store.open(url, busy_timeout=0.2)
    assert "\n" not in str(raised.value)
    assert PASSWORD not in str(raised.value) and PASSWORD not in repr(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_password_stays_out_of_url_and_repr(postgres_db: StoreDB):
    with_password = make_url(postgres_db.url).set(password=PASSWORD).render_as_string(hide_password=False)
    with Store.open(with_password) as store:  # the throwaway server trusts local connections
        propose(store)
        for shown in (store.url, repr(store), str(store), repr(store._engine)):
            assert PASSWORD not in shown and "***" in shown


@pytest.mark.parametrize(
    "url, message",
    [
        pytest.param(f"postgresql://u:{PASSWORD}@host:notaport/db", "is not a valid SQLAlchemy URL", id="bad-port"),
        pytest.param(f"nosuchdb://u:{PASSWORD}@host/db", "needs a database driver", id="unknown-dialect"),
        pytest.param(f"mysql://u:{PASSWORD}@host/db", "needs a database driver that is not installed", id="missing-driver"),
        pytest.param("   ", "must be a database URL or a file path", id="blank"),
    ],
)
def test_bad_store_urls_refused_in_one_line(url: str, message: str):
    with pytest.raises(InvalidInput, match=message) as raised:
        Store.open(url)
    assert "\n" not in str(raised.value) and PASSWORD not in str(raised.value)


def test_in_memory_store_for_quick_use():
    with Store.open(":memory:") as store:
        proposal = propose(store)
        assert store.get_proposal(proposal.id) == proposal
        assert store.verify_audit_log()


# ---- proposals ---------------------------------------------------------------------------------


def test_round_trip_uint256_max_and_large_data(db: StoreDB):
    data = os.urandom(1024 * 1024 + 3)
    with Store.open(db.url) as store:
        added = store.add_proposal(
            chain_id=2**63 - 1,
            safe=SAFE.lower(),
            nonce=UINT256_MAX,
            to=TO,
            value=UINT256_MAX,
            data=data,
            operation=1,
            safe_tx_gas=UINT256_MAX,
            base_gas=UINT256_MAX - 1,
            gas_price=2**255,
            gas_token=OTHER_SAFE,
            refund_receiver=TO,
            safe_tx_hash=h32(0xABC).upper().replace("0X", "0x"),
            title="Pay the auditors",
            description="Invoice #42 — ünïcode survives",
            proposer="alice",
            actor="alice",
        )
    with Store.open(db.url) as store:  # a fresh engine: nothing comes from a cache
        record = store.get_proposal(added.id)
        assert record == added
        assert record.value == UINT256_MAX and record.nonce == UINT256_MAX
        assert record.safe_tx_gas == UINT256_MAX and record.base_gas == UINT256_MAX - 1 and record.gas_price == 2**255
        assert record.data == data
        assert record.safe == SAFE  # stored checksummed
        assert record.safe_tx_hash == h32(0xABC)  # stored lowercase
        assert record.status == "pending" and record.operation == 1 and record.chain_id == 2**63 - 1
        assert store.find_by_safe_tx_hash(2**63 - 1, SAFE, h32(0xABC)) == record
        assert store.find_by_safe_tx_hash(2**63 - 1, SAFE, h32(0xABD)) is None
        assert store.list_proposals(safe=SAFE, chain_id=2**63 - 1, status="pending") == [record]
        assert store.list_proposals(status="executed") == []
        assert "data=" not in repr(record)  # megabytes of calldata stay out of logs


def test_records_are_frozen_values(store: Store):
    record = propose(store)
    with pytest.raises(AttributeError):
        record.status = "executed"  # type: ignore[misc]


def test_list_filters_limit_and_numeric_nonce_order(store: Store):
    for nonce in (10, 2, 1000, 0, 2**200):
        propose(store, nonce)
    propose(store, 3, safe=OTHER_SAFE)
    propose(store, 4, chain_id=5)
    listed = store.list_proposals(safe=SAFE, chain_id=1)
    assert [p.nonce for p in listed] == [0, 2, 10, 1000, 2**200]
    assert [p.nonce for p in store.list_proposals(safe=SAFE, chain_id=1, limit=2)] == [0, 2]
    assert [p.nonce for p in store.list_proposals(safe=OTHER_SAFE)] == [3]
    assert [p.nonce for p in store.list_proposals(chain_id=5)] == [4]
    assert len(store.list_proposals()) == 7
    with pytest.raises(InvalidInput):
        store.list_proposals(status="done")
    with pytest.raises(InvalidInput):
        store.list_proposals(limit=0)


_HASHES = itertools.count(10**6)  # a fresh safeTxHash per example: the examples share one store


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    nonce=st.integers(0, UINT256_MAX),
    value=st.integers(0, UINT256_MAX),
    gas=st.tuples(*[st.integers(0, UINT256_MAX)] * 3),
    data=st.binary(max_size=300),
)
def test_uint256_fields_round_trip_exactly(store: Store, nonce, value, gas, data):
    n = next(_HASHES)
    added = propose(store, n, nonce=nonce, value=value, data=data, safe_tx_gas=gas[0], base_gas=gas[1], gas_price=gas[2])
    again = store.get_proposal(added.id)
    assert (again.nonce, again.value, (again.safe_tx_gas, again.base_gas, again.gas_price), again.data) == (
        nonce,
        value,
        gas,
        data,
    )
    assert store.find_by_safe_tx_hash(1, SAFE, h32(n)) == again


def test_duplicate_proposal_refused_store_unchanged(store: Store, db: StoreDB):
    propose(store, 1)
    before = db.dump()
    with pytest.raises(DuplicateProposal, match="already proposal"):
        propose(store, 1, title="same hash again")
    assert db.dump() == before
    # The same hash on another Safe or chain is a different proposal.
    propose(store, 1, safe=OTHER_SAFE)
    propose(store, 1, chain_id=10)


def test_unknown_proposal(store: Store):
    with pytest.raises(UnknownProposal, match="no proposal"):
        store.get_proposal("0123456789abcdef")
    with pytest.raises(UnknownProposal):
        store.add_signature("0123456789abcdef", OWNERS[0], "eip712", SIG, actor="bob")


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda s, p: propose(s, 2, nonce=-1), id="negative-nonce"),
        pytest.param(lambda s, p: propose(s, 2, value=-5), id="negative-value"),
        pytest.param(lambda s, p: propose(s, 2, value=UINT256_MAX + 1), id="value-over-uint256"),
        pytest.param(lambda s, p: propose(s, 2, value=True), id="bool-value"),
        pytest.param(lambda s, p: propose(s, 2, value="5"), id="string-value"),
        pytest.param(lambda s, p: propose(s, 2, safe_tx_hash="0x" + "zz" * 32), id="non-hex-hash"),
        pytest.param(lambda s, p: propose(s, 2, safe_tx_hash="0x" + "ab" * 31), id="short-hash"),
        pytest.param(lambda s, p: propose(s, 2, safe_tx_hash=b"\x01" * 31), id="short-hash-bytes"),
        pytest.param(lambda s, p: propose(s, 2, operation=2), id="bad-operation"),
        pytest.param(lambda s, p: propose(s, 2, chain_id=0), id="chain-zero"),
        pytest.param(lambda s, p: propose(s, 2, safe="0x1234"), id="short-address"),
        pytest.param(lambda s, p: propose(s, 2, data="0xabc"), id="odd-hex-data"),
        pytest.param(lambda s, p: propose(s, 2, proposer="  "), id="empty-proposer"),
        pytest.param(lambda s, p: propose(s, 2, actor=""), id="empty-actor"),
        pytest.param(lambda s, p: s.add_signature(p.id, OWNERS[0], "eip712", b"\x01" * 64, actor="b"), id="sig-64-bytes"),
        pytest.param(lambda s, p: s.add_signature(p.id, OWNERS[0], "bls", SIG, actor="b"), id="sig-kind"),
        pytest.param(lambda s, p: s.add_signature(p.id, "0xnothex", "eip712", SIG, actor="b"), id="sig-owner"),
        pytest.param(lambda s, p: s.set_status(p.id, "done", actor="b"), id="unknown-status"),
        pytest.param(
            lambda s, p: s.add_schedule_entry(p.id, guard=TO, entry_id=-1, eta=1, expiry=2, actor="b"), id="negative-entry"
        ),
        pytest.param(
            lambda s, p: s.add_schedule_entry(p.id, guard=TO, entry_id=1, eta=5, expiry=5, actor="b"), id="expiry-not-after-eta"
        ),
        pytest.param(
            lambda s, p: s.record_execution(
                p.id, tx_hash="0x12", block_number=1, gas_used=1, success=True, executor=TO, actor="b"
            ),
            id="short-tx-hash",
        ),
        pytest.param(
            lambda s, p: s.record_execution(
                p.id, tx_hash=h32(9), block_number=-1, gas_used=1, success=True, executor=TO, actor="b"
            ),
            id="negative-block",
        ),
    ],
)
def test_malformed_input_refused_with_one_line_message(store: Store, db: StoreDB, call):
    proposal = propose(store, 1)
    before = db.dump()
    with pytest.raises(InvalidInput) as raised:
        call(store, proposal)
    message = str(raised.value)
    assert message and "\n" not in message
    assert db.dump() == before


# ---- signatures ----------------------------------------------------------------------------------


def test_signatures_sorted_by_owner_for_exec_transaction(store: Store):
    proposal = propose(store)
    for owner in (OWNERS[3], OWNERS[0], OWNERS[2]):
        store.add_signature(proposal.id, owner, "eip712", SIG, actor=owner)
    store.add_signature(proposal.id, OWNERS[1], "approved_hash", approved(OWNERS[1]), actor="bob")
    sigs = store.signatures(proposal.id)
    assert [s.owner for s in sigs] == sorted((s.owner for s in sigs), key=lambda a: int(a, 16))
    assert {s.kind for s in sigs} == {"eip712", "approved_hash"}
    assert sigs[0].signature == SIG


def approved(owner: str) -> bytes:
    """An approved_hash signature as safe-eth-py builds it: r = owner left-padded, s = 0, v = 1."""
    return bytes(12) + bytes.fromhex(owner[2:]) + bytes(32) + b"\x01"


@pytest.mark.parametrize(
    "kind, raw",
    [
        pytest.param("approved_hash", b"", id="approved-empty"),
        pytest.param("approved_hash", approved(OWNERS[0])[:64], id="approved-short"),
        pytest.param("approved_hash", approved(OWNERS[0])[:64] + b"\x00", id="approved-v0"),
        pytest.param("approved_hash", approved(OWNERS[0])[:32] + b"\x01" * 32 + b"\x01", id="approved-s-nonzero"),
        pytest.param("approved_hash", approved(OWNERS[1]), id="approved-other-owner"),
        pytest.param("contract", b"", id="contract-empty"),
        pytest.param("contract", b"\x00" * 64, id="contract-short"),
        pytest.param("contract", b"\x03" * 97, id="contract-v3"),
    ],
)
def test_malformed_approved_hash_and_contract_signatures_refused(store: Store, db: StoreDB, kind: str, raw: bytes):
    proposal = propose(store)
    before = db.dump()
    with pytest.raises(InvalidInput, match=kind):
        store.add_signature(proposal.id, OWNERS[0], kind, raw, actor="bob")
    assert db.dump() == before
    store.add_signature(proposal.id, OWNERS[0], "approved_hash", approved(OWNERS[0]), actor="bob")
    store.add_signature(proposal.id, OWNERS[1], "contract", approved(OWNERS[1])[:64] + b"\x00" + bytes(32), actor="bob")
    assert [s.kind for s in store.signatures(proposal.id)] == ["approved_hash", "contract"]


def test_duplicate_signature_refused_store_unchanged(store: Store, db: StoreDB):
    proposal = propose(store)
    store.add_signature(proposal.id, OWNERS[0], "eip712", SIG, actor="bob")
    before = db.dump()
    with pytest.raises(DuplicateSignature, match="already signed"):
        # Same owner, different case and a different signature: still the same owner.
        store.add_signature(proposal.id, OWNERS[0].upper().replace("0X", "0x"), "eth_sign", b"\x02" * 65, actor="bob")
    assert issubclass(DuplicateSignature, InvalidInput)
    assert db.dump() == before
    assert len(store.signatures(proposal.id)) == 1


def test_closed_proposal_takes_no_signatures(store: Store, db: StoreDB):
    proposal = propose(store)
    store.set_status(proposal.id, "cancelled", actor="alice", note="wrong recipient")
    before = db.dump()
    with pytest.raises(InvalidTransition, match="cancelled"):
        store.add_signature(proposal.id, OWNERS[0], "eip712", SIG, actor="bob")
    assert db.dump() == before


# ---- status, schedule, execution -------------------------------------------------------------------


def test_invalid_status_transitions_refused_store_unchanged(store: Store, db: StoreDB):
    proposal = propose(store)
    with pytest.raises(InvalidTransition):
        store.set_status(proposal.id, "pending", actor="alice")
    assert store.set_status(proposal.id, "scheduled", actor="alice").status == "scheduled"
    assert store.set_status(proposal.id, "executed", actor="alice", note="seen on chain").status == "executed"
    before = db.dump()
    for target in ("pending", "scheduled", "failed", "cancelled", "superseded", "rejected", "executed"):
        with pytest.raises(InvalidTransition, match="final"):
            store.set_status(proposal.id, target, actor="mallory")
    assert db.dump() == before
    assert store.get_proposal(proposal.id).status == "executed"


def test_schedule_and_execute_flow(store: Store):
    proposal = propose(store)
    entry = store.add_schedule_entry(
        proposal.id, guard=OTHER_SAFE, entry_id=UINT256_MAX, eta=1_700_000_000, expiry=1_700_086_400, tx_hash=h32(1), actor="alice"
    )
    assert entry.entry_id == UINT256_MAX and entry.status == "queued"
    assert store.get_proposal(proposal.id).status == "scheduled"
    with pytest.raises(InvalidInput, match="already recorded"):
        store.add_schedule_entry(proposal.id, guard=OTHER_SAFE, entry_id=UINT256_MAX, eta=1, expiry=2, actor="alice")
    # A reverted execTransaction leaves the nonce unspent and the proposal open.
    failed = store.record_execution(
        proposal.id, tx_hash=h32(2), block_number=10, gas_used=50_000, success=False, executor=TO, actor="bob", nonce_consumed=False
    )
    assert not failed.success and store.get_proposal(proposal.id).status == "scheduled"
    store.record_execution(proposal.id, tx_hash=h32(3), block_number=11, gas_used=90_000, success=True, executor=TO, actor="bob")
    assert store.get_proposal(proposal.id).status == "executed"
    store.set_schedule_status(entry.id, "executed", actor="bob")
    with pytest.raises(InvalidTransition):
        store.set_schedule_status(entry.id, "cancelled", actor="bob")
    with pytest.raises(InvalidTransition):
        store.record_execution(proposal.id, tx_hash=h32(4), block_number=12, gas_used=1, success=True, executor=TO, actor="bob")
    assert [e.tx_hash for e in store.executions(proposal.id)] == [h32(2), h32(3)]
    assert [e.status for e in store.schedule_entries(proposal.id)] == ["executed"]
    actions = [a.action for a in store.audit_entries(proposal.id)]
    assert actions == ["proposal.added", "schedule.added", "execution.recorded", "execution.recorded", "schedule.status"]
    assert store.verify_audit_log()


def test_failure_that_spends_the_nonce_is_final(store: Store):
    proposal = propose(store)
    store.record_execution(proposal.id, tx_hash=h32(2), block_number=1, gas_used=1, success=False, executor=TO, actor="bob")
    assert store.get_proposal(proposal.id).status == "failed"
    with pytest.raises(InvalidTransition):
        store.set_status(proposal.id, "pending", actor="bob")


# ---- audit log -----------------------------------------------------------------------------------


def test_every_mutation_writes_exactly_one_linked_audit_entry(store: Store):
    proposal = propose(store)
    store.add_signature(proposal.id, OWNERS[0], "eip712", SIG, actor="bob")
    store.set_status(proposal.id, "scheduled", actor="carol", note="48 h delay")
    entries = store.audit_entries()
    assert [(e.seq, e.action, e.actor) for e in entries] == [
        (1, "proposal.added", "alice"),
        (2, "signature.added", "bob"),
        (3, "status.changed", "carol"),
    ]
    assert entries[0].prev_hash == "0" * 64
    assert all(later.prev_hash == earlier.entry_hash for earlier, later in itertools.pairwise(entries))
    assert entries[2].payload == {"status_from": "pending", "status_to": "scheduled", "note": "48 h delay"}
    assert entries[0].payload["content_hash"] == proposal.content_hash
    assert store.verify_audit_log() == AuditReport(ok=True, entries=3)


def test_change_and_audit_entry_land_together_or_not_at_all(store: Store, db: StoreDB, monkeypatch):
    propose(store, 1)
    before = db.dump()
    original = store_module._Tx.audit

    def audit_then_fail(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise RuntimeError("crash after the audit insert, before commit")

    monkeypatch.setattr(store_module._Tx, "audit", audit_then_fail)
    with pytest.raises(RuntimeError):
        propose(store, 2)
    monkeypatch.undo()
    assert db.dump() == before
    assert store.verify_audit_log()
    propose(store, 2)  # the chain continues from the last committed entry
    assert [e.seq for e in store.audit_entries()] == [1, 2]


@pytest.fixture
def audited(store: Store, db: StoreDB):
    """A store with five audit entries: one proposal and four signatures."""
    proposal = propose(store)
    for owner in OWNERS[:4]:
        store.add_signature(proposal.id, owner, "eip712", SIG, actor="bob")
    assert store.verify_audit_log().entries == 5
    return store


@pytest.mark.parametrize(
    "statements, bad_seq, problem",
    [
        pytest.param(
            ["UPDATE audit_log SET payload = replace(payload, 'eip712', 'eth_sign') WHERE seq = 3"], 3, "edited", id="edited-payload"
        ),
        pytest.param(["UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"], 2, "edited", id="edited-actor"),
        pytest.param(["DELETE FROM audit_log WHERE seq = 3"], 3, "missing", id="deleted-entry"),
        pytest.param(["DELETE FROM audit_log WHERE seq = 5"], 5, "missing", id="deleted-last-entry"),
        pytest.param(
            [
                "UPDATE audit_log SET seq = -1 WHERE seq = 2",
                "UPDATE audit_log SET seq = 2 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = -1",
            ],
            2,
            "does not follow",
            id="swapped-order",
        ),
        pytest.param(
            [
                "UPDATE audit_log SET seq = -1 WHERE seq = 2",
                "UPDATE audit_log SET seq = 2 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = -1",
                "UPDATE audit_log SET prev_hash = 'x' || substr(prev_hash, 2) WHERE seq IN (2, 3)",
                "UPDATE audit_log SET prev_hash = (SELECT entry_hash FROM audit_log WHERE seq = 1) WHERE seq = 2",
            ],
            2,
            "edited",
            id="swapped-order-relinked",
        ),
    ],
)
def test_audit_chain_detects_tampering(audited: Store, db: StoreDB, statements, bad_seq, problem):
    db.execute(*statements)
    report = audited.verify_audit_log()
    assert not report
    assert report.first_bad_seq == bad_seq
    assert problem in report.problem


_DEEP_PAYLOAD_CHECK = """
import sys
import py_ecc.bn128  # raises the recursion limit to 100,000: unbounded json.loads would overflow the C stack
from treasury.store import Store, TamperedRecord
assert sys.getrecursionlimit() >= 100_000, sys.getrecursionlimit()
with Store.open(sys.argv[1]) as store:
    report = store.verify_audit_log()
    assert not report.ok and report.first_bad_seq == 3, report
    try:
        store.audit_entries()
    except TamperedRecord as error:
        assert "audit entry 3" in str(error), error
    else:
        raise AssertionError("read a tampered audit payload")
print("report:", report.problem)
"""


def test_audit_payload_nested_deep_is_reported_not_a_crash(audited: Store, db: StoreDB):
    db.execute("UPDATE audit_log SET payload = '" + "[" * 200_000 + "' WHERE seq = 3")
    result = subprocess.run([sys.executable, "-c", _DEEP_PAYLOAD_CHECK, db.url], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    (line,) = result.stdout.splitlines()
    assert line.startswith("report: audit entry 3 has a payload that is not JSON")


def test_audit_cross_check_detects_status_edit_and_deleted_row(audited: Store, db: StoreDB):
    (proposal,) = audited.list_proposals()
    db.execute(f"UPDATE proposals SET status = 'executed' WHERE id = '{proposal.id}'")
    report = audited.verify_audit_log()
    assert not report and "audit log says pending" in report.problem
    db.execute(f"UPDATE proposals SET status = 'pending' WHERE id = '{proposal.id}'")
    assert audited.verify_audit_log()
    db.execute("DELETE FROM signatures WHERE owner = '" + audited.signatures(proposal.id)[1].owner + "'")
    report = audited.verify_audit_log()
    assert not report and "missing from the store" in report.problem


# ---- tampered rows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "assignment",
    [
        {"value": "9" * 78},
        {"to_address": "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"},
        {"data": bytes.fromhex("deadbeef")},
        {"nonce": "0" * 77 + "7"},
        {"safe_tx_hash": h32(77)},
        {"operation": 1},
        {"value": "lots"},
    ],
    ids=lambda assignment: next(iter(assignment)),
)
def test_tampered_proposal_row_detected_on_read(store: Store, db: StoreDB, assignment: dict):
    proposal = propose(store)
    db.update("proposals", f"id = '{proposal.id}'", **assignment)
    with pytest.raises(TamperedRecord, match=proposal.id if "lots" not in assignment.values() else "edited outside"):
        store.get_proposal(proposal.id)
    with pytest.raises(TamperedRecord):
        store.list_proposals()
    with pytest.raises(TamperedRecord):
        store.add_signature(proposal.id, OWNERS[0], "eip712", SIG, actor="bob")  # never build on a forged row
    assert issubclass(TamperedRecord, TreasuryError)
    assert not store.verify_audit_log()


def test_tampered_signature_detected_on_read(store: Store, db: StoreDB):
    proposal = propose(store)
    store.add_signature(proposal.id, OWNERS[0], "eip712", SIG, actor="bob")
    db.execute("UPDATE signatures SET signature = :forged", forged=b"\x02" * 65)
    with pytest.raises(TamperedRecord, match="signature"):
        store.signatures(proposal.id)


# ---- concurrency and crashes (real OS processes) ----------------------------------------------------


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_ready(process: subprocess.Popen, word: str = "ready") -> None:
    line = process.stdout.readline().strip()
    if line != word:
        process.kill()
        raise AssertionError(f"worker said {line!r}, stderr: {process.stderr.read()}")


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def assert_linear(store: Store) -> None:
    entries = store.audit_entries()
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert len({e.prev_hash for e in entries}) == len(entries)
    report = store.verify_audit_log()
    assert report, report


def test_concurrent_signers_in_separate_processes_lose_nothing(store: Store, tmp_path: Path, db: StoreDB):
    proposal = propose(store)
    workers, count = 4, 30
    go = tmp_path / "go"
    processes = [spawn("sign", db.url, proposal.id, str(w), str(count), str(go)) for w in range(workers)]
    for process in processes:
        wait_ready(process)
    go.touch()  # the barrier: every worker starts writing at the same moment
    results = [finish(p) for p in processes]

    assert all(r["own"] == count for r in results)
    # Every worker tried the same `count` contested owners: each was stored exactly once.
    assert sum(r["contested_won"] for r in results) == count
    assert sum(r["duplicates"] for r in results) == count * (workers - 1)
    signatures = store.signatures(proposal.id)
    assert len(signatures) == workers * count + count
    assert len({s.owner for s in signatures}) == len(signatures)
    assert_linear(store)
    actors = [e.actor for e in store.audit_entries()[1:]]
    assert len(actors) == len(signatures)
    # How much the writers interleave is the OS scheduler's choice (on a loaded machine one may finish
    # before another starts), so it is not asserted: what must hold under any interleaving is above.


def test_processes_creating_the_same_fresh_store_at_once(db: StoreDB, tmp_path: Path):
    go = tmp_path / "go"
    processes = [spawn("propose", db.url, str(w), str(go)) for w in range(4)]  # nothing created yet
    for process in processes:
        wait_ready(process)
    go.touch()
    ids = {finish(p)["id"] for p in processes}
    with Store.open(db.url) as store:
        assert {p.id for p in store.list_proposals()} == ids and len(ids) == 4
        assert_linear(store)


def assert_consistent_after_crash(db: StoreDB) -> int:
    """The store opens, the log verifies, and proposals and audit entries match one to one."""
    with Store.open(db.url) as store:
        assert_linear(store)
        proposals = {p.id: p for p in store.list_proposals()}
        added = {e.proposal_id: e for e in store.audit_entries() if e.action == "proposal.added"}
        assert set(proposals) == set(added)
        for pid, proposal in proposals.items():
            assert added[pid].payload["content_hash"] == proposal.content_hash
            logged_owners = {e.payload["owner"] for e in store.audit_entries(pid) if e.action == "signature.added"}
            assert logged_owners == {s.owner for s in store.signatures(pid)}
        return len(proposals)


def test_sigkill_during_write_loop_leaves_store_consistent(db: StoreDB):
    Store.open(db.url).close()
    rng = random.Random(20261201)  # the same kill times every run
    counts = []
    for round_ in range(4):
        process = spawn("fill", db.url, str(round_))
        wait_ready(process)
        time.sleep(rng.uniform(0.05, 0.6))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
        counts.append(assert_consistent_after_crash(db))
    assert counts == sorted(counts) and counts[-1] > 0  # earlier rounds' data survived each crash


def test_sigkill_inside_open_write_transaction(store: Store, db: StoreDB):
    survivor = propose(store, 1)
    store.add_signature(survivor.id, OWNERS[0], "eip712", SIG, actor="bob")
    before = db.dump()
    process = spawn("hold", db.url)
    try:
        wait_ready(process)
        wait_ready(process, "holding")  # the proposal row and its audit entry are written, not committed
        if db.kind == "sqlite":  # most of the 8 MB proposal spilled, uncommitted, into the WAL file
            assert Path(f"{db.url}-wal").stat().st_size > 4 * 1024 * 1024
        # Readers are not blocked and see only committed data; writers wait for the lock.
        assert [p.id for p in store.list_proposals()] == [survivor.id]
        with Store.open(db.url, busy_timeout=0.3) as impatient, pytest.raises(StoreBusy, match="locked"):
            propose(impatient, 2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    assert db.dump() == before
    assert assert_consistent_after_crash(db) == 1
    with Store.open(db.url) as reopened:
        assert reopened.get_proposal(survivor.id) == survivor
        propose(reopened, 2)  # the lock died with the process
        assert_linear(reopened)


# ---- PostgreSQL: which server errors mean "busy, try again" -----------------------------------------


def _server_errors(postgres_db: StoreDB) -> dict[str, BaseException]:
    """Provoke, on the real server, a lock timeout, a deadlock, a serialization failure and a duplicate key."""
    url = make_url(postgres_db.url)
    options = url.query["options"]
    dsn = {"dbname": url.database, "user": url.username, "host": url.query["host"], "options": options}
    setup = psycopg.connect(**dsn, autocommit=True)
    setup.execute("CREATE TABLE scratch (id int PRIMARY KEY, n int)")
    setup.execute("INSERT INTO scratch VALUES (1, 0), (2, 0)")
    caught: dict[str, BaseException] = {}
    a, b = psycopg.connect(**dsn), psycopg.connect(**dsn)
    try:
        a.execute("SELECT * FROM scratch WHERE id = 1 FOR UPDATE")
        try:
            b.execute("SELECT * FROM scratch WHERE id = 1 FOR UPDATE NOWAIT")
        except psycopg.Error as exc:
            caught["lock"] = exc
        b.rollback()
        b.execute("SELECT * FROM scratch WHERE id = 2 FOR UPDATE")
        blocked = threading.Thread(target=lambda: _swallow(a, "SELECT * FROM scratch WHERE id = 2 FOR UPDATE", caught, "deadlock"))
        blocked.start()
        time.sleep(0.2)  # a waits for row 2; b now waits for row 1: one of them is chosen to fail
        _swallow(b, "SELECT * FROM scratch WHERE id = 1 FOR UPDATE", caught, "deadlock")
        blocked.join(10)
        a.rollback()
        b.rollback()
        for conn in (a, b):
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            conn.execute("SELECT n FROM scratch WHERE id = 1")
        a.execute("UPDATE scratch SET n = 1 WHERE id = 1")
        a.commit()
        _swallow(b, "UPDATE scratch SET n = 2 WHERE id = 1", caught, "serialization")
        b.rollback()
        _swallow(b, "INSERT INTO scratch VALUES (1, 0)", caught, "duplicate")
    finally:
        for conn in (a, b, setup):
            conn.close()
    return caught


def _swallow(conn, sql: str, caught: dict, name: str) -> None:
    try:
        conn.execute(sql)
    except psycopg.Error as exc:
        caught[name] = exc


def test_postgres_busy_errors_are_retried_others_are_not(postgres_db: StoreDB):
    caught = _server_errors(postgres_db)
    assert {name: exc.sqlstate for name, exc in caught.items()} == {
        "lock": "55P03", "deadlock": "40P01", "serialization": "40001", "duplicate": "23505"}
    duplicate = caught.pop("duplicate")
    for exc in caught.values():  # wrapped as SQLAlchemy hands them to the store's retry loop
        assert is_transient(OperationalError("statement", {}, exc)), exc.sqlstate
    assert not is_transient(IntegrityError("statement", {}, duplicate))  # a real error fails at once


def test_postgres_writer_waits_for_a_lock_released_in_time(postgres_db: StoreDB):
    """Another session holding the audit head delays a write; it goes through once the lock is free."""
    with Store.open(postgres_db.url, busy_timeout=5) as store:
        propose(store, 1)
        holder = create_engine(postgres_db.url, poolclass=NullPool)
        locked, release = threading.Event(), threading.Event()

        def hold() -> None:
            with holder.begin() as conn:
                conn.execute(text("SELECT * FROM audit_head FOR UPDATE"))
                locked.set()
                release.wait(10)

        thread = threading.Thread(target=hold)
        thread.start()
        locked.wait(10)
        threading.Timer(0.4, release.set).start()
        started = time.monotonic()
        propose(store, 2)
        thread.join(10)
        holder.dispose()
        assert time.monotonic() - started >= 0.35
        assert_linear(store)

