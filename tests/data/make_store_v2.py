"""Build tests/data/store-v2.sqlite: a small store holding every kind of stored entity.

The committed file was written by the store code *before* it became a package (the 2,000-line
treasury/store/repository.py): tests/test_store_fixture.py opens it with today's code and checks
that every hash still recomputes, byte for byte. Running this script again with today's code
must produce a store whose every content hash and audit entry hash equal the committed file's
(the test does exactly that), so a change to a hash payload cannot slip through.

Deterministic: the store's clock and its random proposal ids are replaced for the run, the
version-1 phase ends by turning the file into what a version-1 ape-treasury left (the version-2
tables dropped), and reopening it migrates it to version 2 (a `store.migrated` audit entry).

    python tests/data/make_store_v2.py OUT.sqlite
"""

from __future__ import annotations

import random
import secrets
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

SAFE = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
TO = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"
GUARD = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
OWNERS = [f"0x{i:040x}" for i in range(0x1001, 0x1006)]
EPOCH = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def h32(n: int) -> str:
    return "0x" + f"{n:064x}"


@contextmanager
def deterministic(clock_module: object) -> Iterator[None]:
    """Pin the store's clock (one second per transaction) and its random proposal ids."""
    ticks = iter(range(10_000))
    ids = random.Random(2026)

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
            return EPOCH + timedelta(seconds=next(ticks))

    saved_datetime, saved_token = clock_module.datetime, secrets.token_hex  # type: ignore[attr-defined]
    clock_module.datetime = Clock  # type: ignore[attr-defined]
    secrets.token_hex = lambda n=32: ids.randbytes(n).hex()  # type: ignore[assignment]
    try:
        yield
    finally:
        clock_module.datetime = saved_datetime  # type: ignore[attr-defined]
        secrets.token_hex = saved_token  # type: ignore[assignment]


def downgrade_to_v1(path: Path) -> None:
    """What ape-treasury with schema version 1 left behind: no broadcasts, no rehearsals."""
    con = sqlite3.connect(path)
    try:
        con.execute("DROP TABLE broadcasts")
        con.execute("DROP TABLE rehearsals")
        con.execute("UPDATE store_meta SET value = '1' WHERE key = 'schema_version'")
        con.commit()
    finally:
        con.close()


def version_1(store) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Every version-1 entity: proposals, each signature kind, schedule entries, executions, statuses."""
    paid = store.add_proposal(
        chain_id=1, safe=SAFE, nonce=0, to=TO, value=10**18, data=bytes.fromhex("a9059cbb") + bytes(range(64)),
        safe_tx_hash=h32(1), title="Pay the auditors", description="Invoice #42 — ünïcode and \"quotes\"\nnew line",
        proposer="alice", actor="alice",
    )
    big = store.add_proposal(
        chain_id=2**63 - 1, safe=SAFE.lower(), nonce=2**256 - 1, to=TO, value=2**256 - 1, data=b"", operation=1,
        safe_tx_gas=2**255, base_gas=7, gas_price=2**256 - 2, gas_token=GUARD, refund_receiver=TO,
        safe_tx_hash=h32(2), title="", description="", proposer="bob", actor="bob",
    )
    spare = store.add_proposal(chain_id=1, safe=SAFE, nonce=0, to=GUARD, safe_tx_hash=h32(3), proposer="carol", actor="carol")
    store.add_signature(paid.id, OWNERS[0], "eip712", b"\x01" * 65, actor="owner-0")
    store.add_signature(paid.id, OWNERS[1], "eth_sign", b"\x02" * 65, actor="owner-1")
    store.add_signature(paid.id, OWNERS[2], "approved_hash", b"", actor="owner-2")
    store.add_signature(paid.id, OWNERS[3], "contract", b"\x03" * 97, actor="owner-3")
    store.add_signature(big.id, OWNERS[4], "approved_hash", b"\x04" * 65, actor="owner-4")
    lapsed = store.add_schedule_entry(big.id, guard=GUARD, entry_id=2**256 - 1, eta=100, expiry=200, actor="bob")
    store.set_schedule_status(lapsed.id, "expired", actor="bob", note="nobody ran it")
    store.set_status(big.id, "pending", actor="bob", note="re-queue")
    queued = store.add_schedule_entry(paid.id, guard=GUARD, entry_id=5, eta=1_700_000_000, expiry=1_700_086_400,
                                      tx_hash=h32(0x51), actor="alice")
    store.record_execution(paid.id, tx_hash=h32(0xE1), block_number=10, gas_used=30_000, success=False,
                           executor=TO, actor="alice", nonce_consumed=False)
    store.record_execution(paid.id, tx_hash=h32(0xE2), block_number=11, gas_used=90_000, success=True, executor=TO, actor="alice")
    store.set_schedule_status(queued.id, "executed", actor="alice")
    store.set_status(spare.id, "superseded", actor="carol", note=f"nonce 0 used by {paid.id}")
    return {"paid": paid.id, "big": big.id, "spare": spare.id}


def version_2(store, ids: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Every version-2 entity: broadcasts in each state, rehearsals that passed and failed."""
    live = store.add_proposal(chain_id=1, safe=SAFE, nonce=1, to=TO, value=5, safe_tx_hash=h32(4), proposer="dave", actor="dave")
    raw = b"\x02\xf8" + bytes(range(200))
    store.record_rehearsal(live.id, safe_tx_hash=live.safe_tx_hash, chain_id=1, block_number=19_000_000, block_hash=h32(0xB1),
                           success=True, reason="", gas_used=84_123, filled=[OWNERS[1], OWNERS[0]], executor=GUARD, actor="bot")
    store.record_rehearsal(live.id, safe_tx_hash=live.safe_tx_hash, chain_id=1, block_number=19_000_001, block_hash=h32(0xB2),
                           success=False, reason="GS013", gas_used=None, filled=[], executor=GUARD, actor="bot")
    dropped = store.record_broadcast(live.id, tx_hash=h32(0xD1), sender=GUARD, sender_nonce=7, raw_tx=raw, safe_nonce=1,
                                     block_at_send=19_000_002, actor="bot")
    store.set_broadcast_status(dropped.id, "dropped", actor="bot", note="unknown to the node after 30 blocks")
    store.record_broadcast(live.id, tx_hash=h32(0xD2), sender=GUARD, sender_nonce=8, raw_tx=raw + b"\x01", safe_nonce=1,
                           block_at_send=19_000_040, actor="bot")
    store.record_execution(live.id, tx_hash=h32(0xD2), block_number=19_000_041, gas_used=91_000, success=True,
                           executor=GUARD, actor="bot")
    reverted = store.record_broadcast(ids["big"], tx_hash=h32(0xD3), sender=TO, sender_nonce=0, raw_tx=b"\xf8\x01",
                                      safe_nonce=2**256 - 1, block_at_send=1, actor="bob")
    store.set_broadcast_status(reverted.id, "mined", actor="bob", note="reverted: GS013")
    store.record_broadcast(ids["big"], tx_hash=h32(0xD4), sender=TO, sender_nonce=1, raw_tx=b"\xf8\x02",
                           safe_nonce=2**256 - 1, block_at_send=2, actor="bob")  # still in flight
    store.set_status(ids["big"], "cancelled", actor="bob", note="too big")


def _clock_module() -> object:
    """The module whose `datetime` the store's clock reads (it moved when the store became a package)."""
    try:
        from treasury.store import validation

        return validation
    except ImportError:  # the single-module store that wrote the committed file
        from treasury.store import repository

        return repository


def build(path: Path) -> None:
    """Write the store at `path` (which must not exist yet) with the store code importable here."""
    # Store lives in treasury.store.repository both before and after the split.
    from treasury.store import Store

    clock_module = _clock_module()
    # The committed file holds signatures of the shapes the store took when it was written (an empty
    # approved_hash, a contract signature without v = 0); today's stricter shape check is off for the replay.
    shape = getattr(clock_module, "signature_shape", None)
    if shape is not None:
        clock_module.signature_shape = lambda *args, **kwargs: None  # type: ignore[attr-defined]
    try:
        with deterministic(clock_module):
            with Store.open(path) as store:
                ids = version_1(store)
            downgrade_to_v1(path)
            with Store.open(path) as store:  # migrates 1 -> 2
                version_2(store, ids)
                assert store.verify_audit_log()
    finally:
        if shape is not None:
            clock_module.signature_shape = shape  # type: ignore[attr-defined]
    con = sqlite3.connect(path)
    try:  # a small file to commit: rollback journal, small pages, no free pages
        con.execute("PRAGMA journal_mode = DELETE")
        con.execute("PRAGMA page_size = 512")
        con.execute("VACUUM")
    finally:
        con.close()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    out = Path(sys.argv[1])
    if out.exists():
        raise SystemExit(f"{out} exists; remove it first")
    build(out)
    print(out, out.stat().st_size, "bytes")
