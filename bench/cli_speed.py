"""How long the store-only `treasury` commands take on a 10,000-proposal store, each as a fresh process.

    .venv/bin/python bench/cli_speed.py [--runs 7] [--proposals 10000]

Targets (issue 10): `treasury list`, `show`, `log` and `export` under 0.25 s (median), with no ape,
web3 or safe-eth-py imported; `treasury --help` under 0.1 s. The store (on a RAM disk) is written
in one transaction with the store's own schema and hashing; every proposal's safeTxHash is its real
hash and every signature its owner's, so `show`, `export` and `log` verify what they read. Each
command runs once to warm the bytecode cache, then --runs times; wall and CPU medians are printed.
Figures only: tests never assert on time.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TREASURY = Path(sys.executable).with_name("treasury")
SAFES = [f"0x{0x100 + i:040x}" for i in range(10)]  # the store holds ten Safes' proposals, as a shared server's would
SAFE = SAFES[0]  # the benchmarked treasury: a tenth of the store
TOKEN = "0x" + "00" * 18 + "0200"
VENDORS = [f"0x{0x300 + i:040x}" for i in range(20)]
SIGNED_EVERY = 20  # one proposal in twenty carries two owner signatures; one in seven is pending, the rest rejected
HEAVY = ("ape", "web3", "safe_eth")
ZERO = "0x" + "00" * 20
# What any store command must import, whatever this package does: the interpreter, then the libraries.
FLOORS = [
    ("the interpreter alone", "pass"),
    ("import sqlalchemy (Core only)", "import sqlalchemy, sqlalchemy.dialects.sqlite"),
    ("import sqlalchemy.orm (the store)", "import sqlalchemy.orm, sqlalchemy.dialects.sqlite"),
    ("import pydantic, eth_hash.auto (config, addresses)", "import pydantic, eth_hash.auto"),
    ("import all three + click, yaml, rich",
     "import sqlalchemy.orm, sqlalchemy.dialects.sqlite, pydantic, eth_hash.auto, click, yaml, rich.console"),
    ("import treasury.records (config + store + hashes)", "import treasury.records, treasury.config"),
    # As the store-only commands load it (treasury.cli.common.open_records): the collector paused, then frozen.
    ("the same, collector paused then frozen (as `treasury`)",
     ("import atexit, gc; gc.disable(); import treasury.records, treasury.config; gc.freeze(); gc.enable(); "
      "atexit.register(gc.freeze)")),
]


def _owners(count: int) -> list:
    """Throwaway signing keys, made fresh for this run and never written anywhere."""
    from eth_keys import keys

    return [keys.PrivateKey(os.urandom(32)) for _ in range(count)]


def _eip712(key, digest: bytes) -> bytes:
    signature = key.sign_msg_hash(digest)
    return signature.r.to_bytes(32, "big") + signature.s.to_bytes(32, "big") + bytes([signature.v + 27])


class _Bulk:
    """Rows and their audit entries for one bulk write, hashed by the store's own integrity code
    (content hashes from the entity declarations, the audit chain from `audit_hash`), exactly as
    Store.add_proposal / add_signature / set_status write them one transaction at a time."""

    def __init__(self, seq: int, prev_hash: str, now: str) -> None:
        self.seq, self.prev_hash, self.now = seq, prev_hash, now
        self.proposals: list[dict] = []
        self.signatures: list[dict] = []
        self.audit: list[dict] = []

    def log(self, action: str, proposal_id: str, payload: dict) -> None:
        from treasury.store.integrity import audit_hash, canonical

        self.seq += 1
        entry_hash = audit_hash(self.seq, self.now, "bench", action, proposal_id, payload, self.prev_hash)
        self.audit.append({"seq": self.seq, "at": self.now, "actor": "bench", "action": action, "proposal_id": proposal_id,
                           "payload": canonical(payload), "prev_hash": self.prev_hash, "entry_hash": entry_hash})
        self.prev_hash = entry_hash

    def proposal(self, status: str, **fields) -> str:
        from treasury.store.integrity import PROPOSAL
        from treasury.store.schema import ProposalRow

        row = ProposalRow(id=os.urandom(8).hex(), status="pending", created_at=self.now, **fields)
        row.content_hash = PROPOSAL.content_hash(row)
        self.proposals.append({c.key: getattr(row, c.key) for c in ProposalRow.__table__.columns})
        self.log("proposal.added", row.id, {"content_hash": row.content_hash, "chain_id": str(row.chain_id), "safe": row.safe,
                                            "nonce": str(row.nonce), "safe_tx_hash": row.safe_tx_hash, "status_to": "pending"})
        if status != "pending":
            self.proposals[-1]["status"] = status
            self.log("status.changed", row.id, {"status_from": "pending", "status_to": status, "note": ""})
        return row.id

    def signature(self, proposal_id: str, owner: str, raw: bytes) -> None:
        from treasury.store.integrity import SIGNATURE
        from treasury.store.schema import SignatureRow

        row = SignatureRow(proposal_id=proposal_id, owner=owner, kind="eip712", signature=raw, created_at=self.now)
        row.content_hash = SIGNATURE.content_hash(row)
        self.signatures.append({c.key: getattr(row, c.key) for c in SignatureRow.__table__.columns if c.key != "id"})
        self.log("signature.added", proposal_id, {"owner": owner, "kind": "eip712", "content_hash": row.content_hash})


def seed(path: Path, n: int) -> tuple[str, str]:
    """n proposals (ERC-20 transfers) over ten Safes, as in the store behind issue 10's figures: one
    in seven pending, the others rejected, one in twenty signed by two owners. Written in ONE
    transaction with the store's schema and hashing (the public Store API takes a transaction per
    row: minutes for 10,000); the store then verifies them like any other (in_process checks).
    Returns (a signed proposal's id, the newest proposal's id), both of the benchmarked Safe."""
    from eth_abi import encode
    from eth_utils import function_signature_to_4byte_selector
    from sqlalchemy import create_engine, insert, select, update

    from treasury.decode.hashes import safe_tx_hashes
    from treasury.store import Store
    from treasury.store.schema import AuditHeadRow, AuditRow, ProposalRow, SignatureRow
    from treasury.store.validation import now

    Store.open(str(path)).close()  # the schema, as the store creates it
    transfer = function_signature_to_4byte_selector("transfer(address,uint256)")
    owners = [(key, key.public_key.to_checksum_address()) for key in _owners(2)]
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        head = conn.execute(select(AuditHeadRow.seq, AuditHeadRow.entry_hash).where(AuditHeadRow.id == 1)).one()
        bulk = _Bulk(head.seq, head.entry_hash, now())
        signed = last = ""
        for i in range(n):
            data = transfer + encode(["address", "uint256"], [VENDORS[i % len(VENDORS)], (i + 1) * 10**6])
            safe, nonce = SAFES[i % len(SAFES)], i // len(SAFES)
            hashes = safe_tx_hashes(safe=safe, chain_id=1, version="1.4.1", to=TOKEN, value=0, data=data, operation=0, nonce=nonce)
            sign = i % SIGNED_EVERY == 0
            proposal = bulk.proposal(
                "pending" if sign or i % 7 == 0 else "rejected", chain_id=1, safe=safe, nonce=nonce, to_address=TOKEN, value=0,
                data=data, operation=0, safe_tx_gas=0, base_gas=0, gas_price=0, gas_token=ZERO, refund_receiver=ZERO,
                safe_tx_hash=hashes.safe_tx_hash, title=f"pay invoice {i}", description="", proposer="bench")
            if safe == SAFE:
                last = proposal
            if sign:
                digest = bytes.fromhex(hashes.safe_tx_hash[2:])
                for key, owner in owners:
                    bulk.signature(proposal, owner, _eip712(key, digest))
                signed = proposal if safe == SAFE else signed
        conn.execute(insert(ProposalRow), bulk.proposals)
        conn.execute(insert(SignatureRow), bulk.signatures)
        conn.execute(insert(AuditRow), bulk.audit)
        conn.execute(update(AuditHeadRow).where(AuditHeadRow.id == 1).values(seq=bulk.seq, entry_hash=bulk.prev_hash))
    engine.dispose()
    return signed, last


def _environment(pycache: Path) -> dict[str, str]:
    """As an installed tool runs: compiled bytecode cached (pip does that on install), so the
    figures do not include recompiling the package each time (PYTHONDONTWRITEBYTECODE is dropped;
    the cache goes to a temporary folder, not into the source tree)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(pycache)}


def wall(args: list[str], runs: int, env: dict[str, str]) -> tuple[float, float, float]:
    """(median wall seconds, max wall seconds, median CPU seconds) of `treasury ARGS` as a fresh process
    (of `python ARGS` when ARGS start with -c).

    CPU time (user + system of the child) is the steadier figure on a machine shared with other work."""
    command = [sys.executable, *args] if args[0] == "-c" else [str(TREASURY), *args]
    subprocess.run(command, check=True, capture_output=True, env=env)  # warm the bytecode cache
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), max(walls), statistics.median(cpus)


def heavy_imports(args: list[str], env: dict[str, str]) -> list[str]:
    """The chain-stack packages `treasury ARGS` imports (it should import none)."""
    done = subprocess.run([str(TREASURY), *args], capture_output=True, text=True, check=True,
                          env={**env, "PYTHONPROFILEIMPORTTIME": "1"})
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return sorted({name.split(".")[0] for name in names} & set(HEAVY))


def in_process(path: Path) -> list[tuple[str, float]]:
    """Where the time of `log` and `list` goes, without process start-up: the full hash-chain
    verification, reading the whole log, and reading every proposal of the Safe."""
    from treasury.store import Store

    store = Store.open(str(path))
    try:
        figures = []
        for label, work in (("verify_audit_log()", store.verify_audit_log), ("audit_entries() (the whole log)", store.audit_entries),
                            ("list_proposals() (every proposal of the Safe)", lambda: store.list_proposals(safe=SAFE, chain_id=1))):
            start = time.perf_counter()
            result = work()
            figures.append((label, time.perf_counter() - start))
            if label.startswith("verify"):
                if not result.ok:
                    raise SystemExit(f"the bench store does not verify: {result.problem}")
                figures[-1] = (f"verify_audit_log() ({result.entries:,} entries)", figures[-1][1])
        return figures
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--proposals", type=int, default=10_000)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    import yaml

    ram = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=ram) as directory:
        workdir = Path(directory)
        env = _environment(workdir / "pycache")
        store = workdir / "store.db"
        start = time.perf_counter()
        signed, last = seed(store, args.proposals)
        print(f"seeded {args.proposals:,} proposals in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        breakdown = in_process(store)
        config = workdir / "ape-config.yaml"
        config.write_text(yaml.safe_dump({"treasury": {"store": str(store), "treasuries": {"bench": {
            "safe": SAFE, "chain_id": 1, "tokens": {"USDC": {"address": TOKEN, "decimals": 6}}}}}}))
        common = ["--config", str(config)]
        n, mine = f"{args.proposals:,}", f"{args.proposals // len(SAFES):,}"
        commands = [
            ("treasury --help", ["--help"], 0.1),
            (f"treasury list (the Safe's {mine} rows)", ["list", *common], 0.25),
            (f"treasury list --json ({mine} rows)", ["list", "--json", *common], 0.25),
            ("treasury list --status pending", ["list", "--status", "pending", *common], 0.25),
            ("treasury list --limit 20", ["list", "--limit", "20", *common], 0.25),
            ("treasury show ID", ["show", signed, *common], 0.25),
            ("treasury show ID --json", ["show", signed, "--json", *common], 0.25),
            ("treasury export ID FILE --force", ["export", signed, str(workdir / "bundle.json"), "--force", *common], 0.25),
            ("treasury log (newest 50, verifies all)", ["log", *common], 0.25),
            ("treasury log --json", ["log", "--json", *common], 0.25),
            ("treasury log --proposal ID", ["log", "--proposal", last, *common], 0.25),
        ]
        rows = [(label, *wall(words, args.runs, env), target, heavy_imports(words, env)) for label, words, target in commands]
        floors = [(label, *wall(["-c", code], args.runs, env)) for label, code in FLOORS]
        load_after = os.getloadavg()[0]
    print(f"store: {n} proposals over {len(SAFES)} Safes; load average {load_before:.2f} before, "
          f"{load_after:.2f} after ({os.cpu_count()} CPUs)")
    print(f"{'command (fresh process, median of ' + str(args.runs) + ')':46} {'wall':>7} {'max':>7} {'cpu':>7} {'target':>7}  ape/web3/safe_eth")
    for label, median, worst, cpu, target, heavy in rows:
        flag = "" if median < target else "  OVER TARGET"
        print(f"{label:46} {median:6.3f}s {worst:6.3f}s {cpu:6.3f}s {target:6.2f}s  {', '.join(heavy) or 'none'}{flag}")
    print("\nthe floor under every store command (python -c, same conditions):")
    for label, median, _worst, cpu in floors:
        print(f"  {label:56} {median:6.3f}s wall {cpu:6.3f}s cpu")
    print(f"\nin process, what `log` pays for on this store ({n} proposals):")
    for label, seconds in breakdown:
        print(f"  {label:56} {seconds:6.3f}s")


if __name__ == "__main__":
    main()
