"""A store written before the store became a package still opens, verifies and hashes the same.

tests/data/store-v2.sqlite was written by the single-module store (see tests/data/make_store_v2.py):
every entity kind (proposals, signatures of each kind, schedule entries, executions, broadcasts in
each state, rehearsals, status changes) and a migration from schema version 1. The integrity code
now works from one declaration per entity; these tests pin that every hash it computes is the one
the old code wrote, byte for byte, and that changing any stored byte is still caught.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, select, update
from sqlalchemy.pool import NullPool
from store_db import StoreDB

from treasury.store import (
    BROADCAST_STATUSES,
    PROPOSAL_STATUSES,
    SCHEDULE_STATUSES,
    SIGNATURE_KINDS,
    SIGNATURE_PURPOSES,
    VERIFIERS,
    Store,
)
from treasury.store.integrity import ENTITIES, audit_hash
from treasury.store.schema import AuditHeadRow, AuditRow, Base

DATA = Path(__file__).with_name("data")
FIXTURE = DATA / "store-v2.sqlite"
# The entities of schema versions 4 (delegates, messages), 5 (drafts) and 6 (drills) postdate the fixture:
# tests/test_store_v4.py, tests/test_drafts.py and tests/test_drill.py run these same checks over stores that hold them.
FIXTURE_ENTITIES = [entity for entity in ENTITIES
                    if entity.name not in ("delegate", "delegate proof", "message", "message signature", "draft", "drill",
                                           "owner proof")]
HASHED_TABLES = [entity.row.__tablename__ for entity in FIXTURE_ENTITIES]
# Columns whose change no check can or needs to see: a signature's row id means nothing (a
# signature is known by its proposal and owner, and its hash never covered the id).
UNCHECKED = {("signatures", "id")}
CONSTRAINED = {
    ("proposals", "status"): PROPOSAL_STATUSES,
    ("signatures", "kind"): SIGNATURE_KINDS,
    ("signatures", "purpose"): SIGNATURE_PURPOSES,
    ("signatures", "verified_by"): VERIFIERS,
    ("schedule_entries", "status"): SCHEDULE_STATUSES,
    ("broadcasts", "status"): BROADCAST_STATUSES,
}


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The committed store, copied: opening a store writes to it (WAL), the fixture stays as committed."""
    target = tmp_path / "store-v2.sqlite"
    shutil.copyfile(FIXTURE, target)
    return target


def rows_of(path: Path, table: str) -> list[sqlite3.Row]:
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        return con.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    finally:
        con.close()


def stored_hashes(path: Path) -> dict[str, list[tuple[Any, str]]]:
    """(key, hash) of every hashed row and every audit entry: what a reimplementation must reproduce."""
    hashes = {table: [(row[0], row["content_hash"]) for row in rows_of(path, table)] for table in HASHED_TABLES}
    hashes["audit_log"] = [(row["seq"], row["entry_hash"]) for row in rows_of(path, "audit_log")]
    return hashes


def test_the_old_store_opens_and_verifies(copy: Path):
    with Store.open(copy) as store:
        report = store.verify_audit_log()
        assert report and report.entries == 32  # the committed 28 and today's migrations from 2 to 3 to 4 to 5 to 6
        entries = store.audit_entries()
        actions = [entry.action for entry in entries]
        assert [i for i, action in enumerate(actions) if action == "store.migrated"] == [16, 28, 29, 30, 31]
        assert [e.payload for e in entries[-4:]] == [{"from": 2, "to": 3}, {"from": 3, "to": 4}, {"from": 4, "to": 5},
                                                      {"from": 5, "to": 6}]
        proposals = store.list_proposals()
        assert sorted(p.status for p in proposals) == ["cancelled", "executed", "executed", "superseded"]
        by_title = {p.title: p for p in proposals}
        assert by_title["Pay the auditors"].description.startswith("Invoice #42 — ünïcode")
        kinds = {s.kind for p in proposals for s in store.signatures(p.id)}
        assert kinds == {"eip712", "eth_sign", "approved_hash", "contract"}
        assert sorted(e.status for p in proposals for e in store.schedule_entries(p.id)) == ["executed", "expired"]
        assert sorted(b.status for b in store.broadcasts()) == ["dropped", "mined", "mined", "sent"]
        assert sorted(r.success for p in proposals for r in store.rehearsals(p.id)) == [False, True]
        assert len([x for p in proposals for x in store.executions(p.id)]) == 3
        big = next(p for p in proposals if p.chain_id == 2**63 - 1)
        assert big.nonce == big.value == 2**256 - 1 and big.gas_price == 2**256 - 2


def test_every_stored_hash_recomputes_identically(copy: Path):
    with Store.open(copy) as store:

        def recompute(session):
            counts = {}
            for entity in FIXTURE_ENTITIES:
                rows = session.execute(select(entity.row)).scalars().all()
                assert rows, f"the fixture holds no {entity.name}"
                for row in rows:
                    assert entity.content_hash(row) == row.content_hash, f"{entity.name} {entity.row_key(row)}"
                counts[entity.name] = len(rows)
            for row in session.execute(select(AuditRow)).scalars():
                payload = json.loads(row.payload)
                assert audit_hash(row.seq, row.at, row.actor, row.action, row.proposal_id, payload, row.prev_hash) == row.entry_hash
            return counts

        counts = store._read(recompute)
    assert counts == {"proposal": 4, "signature": 5, "schedule entry": 2, "execution": 3, "broadcast": 4, "rehearsal": 2}


def _generator():
    spec = importlib.util.spec_from_file_location("make_store_v2", DATA / "make_store_v2.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_todays_code_writes_the_same_hashes(tmp_path: Path):
    """The committed store's story replayed by today's store: every row and entry hashes the same."""
    fresh = tmp_path / "again.sqlite"
    _generator().build(fresh)
    replayed, committed = stored_hashes(fresh), stored_hashes(FIXTURE)
    assert {t: h for t, h in replayed.items() if t != "audit_log"} == {t: h for t, h in committed.items() if t != "audit_log"}
    # Today's store migrates the replay's version-1 file to version 6, four more `store.migrated`
    # entries (2 to 3, 3 to 4, 4 to 5, 5 to 6) in the same transaction; every other entry says exactly what it said.
    entries = [tuple(r)[1:6] for r in rows_of(fresh, "audit_log")]
    extra = [(entries[16][0], "ape-treasury", "store.migrated", None, f'{{"from":{n},"to":{n + 1}}}') for n in (2, 3, 4, 5)]
    assert entries[17:21] == extra
    assert entries[:17] + entries[21:] == [tuple(r)[1:6] for r in rows_of(FIXTURE, "audit_log")]
    assert [tuple(r) for r in rows_of(fresh, "audit_log")][:17] == [tuple(r) for r in rows_of(FIXTURE, "audit_log")][:17]


def _changed(table: str, column: str, value: Any) -> Any:
    """The value one byte off; for a column the schema limits to a few words, another allowed word."""
    allowed = CONSTRAINED.get((table, column))
    if allowed is not None:
        return next(word for word in allowed if word != value)
    if isinstance(value, bytes):
        return value[:-1] + bytes([value[-1] ^ 1]) if value else b"\x01"
    if isinstance(value, str):
        return value[:-1] + chr(ord(value[-1]) ^ 1) if value else "x"
    if value is None:
        return 1
    return int(value) ^ 1


def _every_column() -> list[tuple[str, str]]:
    tables = [*HASHED_TABLES, "audit_log", "audit_head"]
    return [
        (table, column.name)
        for table in tables
        for column in Base.metadata.tables[table].columns
        if (table, column.name) not in UNCHECKED
    ]


@pytest.mark.parametrize("table, column", _every_column(), ids=lambda x: x)
def test_one_changed_byte_anywhere_is_detected(copy: Path, table: str, column: str):
    Store.open(copy).close()  # today's schema: the columns version 3 added are edited too
    (first,) = rows_of(copy, table)[:1]
    key = first.keys()[0]
    con = sqlite3.connect(copy)
    try:
        con.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (_changed(table, column, first[column]), first[key]))
        con.commit()
    finally:
        con.close()
    with Store.open(copy) as store:
        report = store.verify_audit_log()
    assert not report, f"changing {table}.{column} went unnoticed"


def test_the_old_store_moved_to_postgresql_verifies(postgres_db: StoreDB):
    """Hashes do not depend on the backend: the same rows copied into PostgreSQL verify there too."""
    Store.open(postgres_db.url).close()  # today's schema, empty
    source = create_engine(f"sqlite:///file:{FIXTURE}?mode=ro&uri=true", poolclass=NullPool)
    target = create_engine(postgres_db.url, poolclass=NullPool)
    try:
        with source.connect() as read, target.begin() as write:
            for table in Base.metadata.sorted_tables:
                if table.name in ("store_meta", "audit_head") or not inspect(read).has_table(table.name):
                    continue
                held = {column["name"] for column in inspect(read).get_columns(table.name)}  # version 2's columns
                rows = [dict(row._mapping) for row in read.execute(select(*(c for c in table.c if c.name in held)))]
                if rows:
                    write.execute(table.insert(), rows)
            head = read.execute(select(AuditHeadRow.seq, AuditHeadRow.entry_hash)).one()
            write.execute(update(AuditHeadRow).values(seq=head.seq, entry_hash=head.entry_hash))
    finally:
        source.dispose()
        target.dispose()
    with Store.open(postgres_db.url) as store:
        report = store.verify_audit_log()
        assert report and report.entries == 28
        assert sorted(b.status for b in store.broadcasts()) == ["dropped", "mined", "mined", "sent"]
    postgres_db.execute("UPDATE rehearsals SET success = NOT success WHERE id = 1")
    with Store.open(postgres_db.url) as store:
        assert not store.verify_audit_log()
