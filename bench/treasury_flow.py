"""Time of each treasury step in one process on anvil, and of listing a store of 10,000 proposals.

    make bench            (or: .venv/bin/python bench/treasury_flow.py [--proposals 10000])

Propose, three owner signatures (each verified against the Safe's owners before it is stored),
execute (simulation, send, receipt, record); then a store seeded with N proposals: list all
pending ones, and filter one Safe's pending proposals.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from treasury.chain.toolchain import activate


def timed(action, repeat: int = 1) -> tuple[float, object]:
    results, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = action()
        results.append(time.perf_counter() - start)
    return statistics.median(results), result


def flow(workdir: Path) -> list[tuple[str, float]]:
    import yaml
    from ape import accounts, chain, networks, project

    from treasury.chain.infrastructure import deploy_infrastructure
    from treasury.chain.safe import create_safe, safe_spec
    from treasury.treasury import Treasury

    with networks.parse_network_choice("ethereum:local:foundry"):
        deployer, a, b, c, vendor = accounts.test_accounts[:5]
        deploy_infrastructure(deployer)
        safe = create_safe(safe_spec(owners=[a.address, b.address, c.address], threshold=3), deployer)
        token = deployer.deploy(project.TestToken, "Test USD", "TUSD", 6)
        token.mint(safe.address, 10**12, sender=deployer)
        config = {"treasury": {"store": str(workdir / "flow.db"), "treasuries": {"ops": {
            "safe": safe.address, "chain_id": chain.chain_id, "tokens": {"TUSD": {"address": token.address, "decimals": 6}}}}}}
        (workdir / "ape-config.yaml").write_text(yaml.safe_dump(config))
        treasury = Treasury.load("ops", workdir / "ape-config.yaml")
        figures = []
        seconds, record = timed(lambda: treasury.propose_transfer(vendor.address, "100 TUSD"))
        figures.append(("propose", seconds))
        for owner in (a, b, c):
            seconds, _ = timed(lambda owner=owner: treasury.sign(record.id, owner))
            figures.append((f"sign + verify (owner {owner.address[:10]})", seconds))
        seconds, _ = timed(lambda: treasury.execute(record.id, sender=deployer))
        figures.append(("execute (simulate, send, receipt, record)", seconds))
        return figures


def seed(store, n: int) -> None:
    """n proposals over 10 Safes, one in seven pending (spread over every Safe)."""
    safes = [f"0x{i:040x}" for i in range(0x100, 0x10a)]
    for i in range(n):
        record = store.add_proposal(
            chain_id=1, safe=safes[i % 10], nonce=i // 10, to="0x" + "11" * 20, value=i,
            safe_tx_hash="0x" + i.to_bytes(32, "big").hex(), proposer="bench", actor="bench",
        )
        if i % 7:
            store.set_status(record.id, "rejected", actor="bench")


def listing(workdir: Path, n: int) -> list[tuple[str, float]]:
    from treasury.store import Store

    path = workdir / "listing.db"
    store = Store.open(str(path))
    start = time.perf_counter()
    seed(store, n)
    seeding = time.perf_counter() - start
    store.close()
    store = Store.open(str(path))
    figures = [(f"seed {n:,} proposals (one write transaction each)", seeding)]
    seconds, pending = timed(lambda: store.list_proposals(status="pending"), repeat=5)
    figures.append((f"list all pending ({len(pending):,} of {n:,})", seconds))
    seconds, mine = timed(lambda: store.list_proposals(chain_id=1, safe="0x" + "00" * 18 + "0100", status="pending"), repeat=5)
    figures.append((f"filter one Safe's pending ({len(mine):,})", seconds))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proposals", type=int, default=10_000)
    args = parser.parse_args()
    activate()
    from rich.table import Table

    from treasury.chain.report import console

    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        rows = flow(workdir) + listing(workdir, args.proposals)
    table = Table(title="Treasury steps (median wall time)")
    table.add_column("step")
    table.add_column("time", justify="right")
    for step, seconds in rows:
        table.add_row(step, f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s")
    console.print(table)
    console.print("target: listing and filtering pending proposals of a 10,000-proposal store under 200 ms")


if __name__ == "__main__":
    main()
