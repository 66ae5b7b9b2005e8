"""A separate OS process that works on a proposal store, for tests/test_store.py.

Concurrency and crash safety are properties between processes (file locks, WAL recovery), so the
tests run the store from real subprocesses instead of threads. DB is whatever Store.open takes: a
SQLite file path or a database URL (the suite runs these on SQLite and on PostgreSQL). Modes:

  sign DB PROPOSAL_ID WORKER COUNT GO_FILE   after the barrier, add COUNT signatures of this worker's
                                             own owners plus COUNT contested ones every worker tries
  propose DB WORKER GO_FILE                  after the barrier, open DB (maybe creating it) and add
                                             one proposal
  fill DB WORKER                             add proposals + signatures in a loop until killed
  hold DB                                    add a large proposal, then stop inside the write
                                             transaction after its audit entry (until killed)

Each mode prints "ready" once it can start, and sign/propose print a JSON summary at the end.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from treasury.store import DuplicateSignature, Store, repository as store_module

SAFE = "0x" + "5a" * 20
RECIPIENT = "0x" + "7e" * 20


def owner(group: int, index: int) -> str:
    """A distinct, deterministic owner address per (group, index)."""
    return "0x" + f"{group:08x}{index:032x}"


def safe_tx_hash(worker: int, index: int) -> str:
    return "0x" + f"{worker:032x}{index:032x}"


START_TIMEOUT = 120.0  # seconds a worker waits for the go signal before giving up (a test that died)


def wait_for(go_file: str) -> None:
    """Report ready, then start when the test creates `go_file`: every worker begins at once."""
    print("ready", flush=True)
    deadline = time.monotonic() + START_TIMEOUT
    while not os.path.exists(go_file):
        if time.monotonic() > deadline:
            sys.exit(f"no go signal ({go_file}) within {START_TIMEOUT:.0f} s")
        time.sleep(0.0005)


def sign(db: str, proposal_id: str, worker: int, count: int, go_file: str) -> None:
    random.seed(worker)  # the pauses below vary per worker, the same way every run
    store = Store.open(db)
    wait_for(go_file)
    own = contested_won = duplicates = 0
    for i in range(count):
        store.add_signature(proposal_id, owner(1000 + worker, i), "eip712", bytes([worker % 256]) * 65, actor=f"worker-{worker}")
        own += 1
        try:
            store.add_signature(proposal_id, owner(999, i), "eth_sign", bytes([i % 256]) * 65, actor=f"worker-{worker}")
            contested_won += 1
        except DuplicateSignature:
            duplicates += 1
        # Let go of the CPU for a moment: SQLite's busy handler polls, so without this pause one
        # process tends to re-take the lock for a long streak and the others mostly queue behind it.
        time.sleep(random.random() / 1000)
    store.close()
    print(json.dumps({"own": own, "contested_won": contested_won, "duplicates": duplicates}), flush=True)


def propose(db: str, worker: int, go_file: str) -> None:
    wait_for(go_file)
    store = Store.open(db)
    record = store.add_proposal(
        chain_id=1, safe=SAFE, nonce=worker, to=RECIPIENT, safe_tx_hash=safe_tx_hash(worker, 0),
        proposer=f"worker-{worker}", actor=f"worker-{worker}",
    )
    store.close()
    print(json.dumps({"id": record.id}), flush=True)


def fill(db: str, worker: int) -> None:
    store = Store.open(db)
    print("ready", flush=True)
    i = 0
    while True:
        record = store.add_proposal(
            chain_id=1, safe=SAFE, nonce=i, to=RECIPIENT, value=i, data=os.urandom(i % 4096),
            safe_tx_hash=safe_tx_hash(worker, i), proposer="filler", actor="filler",
        )
        store.add_signature(record.id, owner(worker, i), "eip712", b"\x11" * 65, actor="filler")
        if i % 3 == 0:
            store.set_status(record.id, "cancelled", actor="filler", note="churn")
        i += 1


def hold(db: str) -> None:
    store = Store.open(db)
    original = store_module._Tx.audit

    def audit_then_hang(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        self.session.flush()
        print("holding", flush=True)
        time.sleep(3600)

    store_module._Tx.audit = audit_then_hang  # type: ignore[method-assign]
    print("ready", flush=True)
    # 8 MB of calldata overflows SQLite's page cache, so uncommitted pages spill into the WAL file
    # before the kill: recovery must ignore them.
    store.add_proposal(
        chain_id=1, safe=SAFE, nonce=10**6, to=RECIPIENT, data=os.urandom(8 * 1024 * 1024),
        safe_tx_hash=safe_tx_hash(0xDEAD, 0), proposer="holder", actor="holder",
    )


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "sign":
        sign(args[0], args[1], int(args[2]), int(args[3]), args[4])
    elif mode == "propose":
        propose(args[0], int(args[1]), args[2])
    elif mode == "fill":
        fill(args[0], int(args[1]))
    elif mode == "hold":
        hold(args[0])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
