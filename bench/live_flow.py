"""Time of the live-network steps against a stand-in live chain (anvil, chain id 1, one block a second).

    make bench            (or: .venv/bin/python bench/live_flow.py)

The stand-in is a separate anvil process reached as ethereum:mainnet:node, as in the test suite
(tests/standin.py). Printed: a rehearsal (anvil fork of the current block, missing signatures filled,
execution, balance diff), the same rehearsal when the proposal is fully signed, execute with its
own rehearsal and without (--skip-rehearsal), reconciling when there is nothing to do, and
reconciling an execution made by another tool (bisecting the Safe's nonce over the chain's history).
Execute includes waiting for the next block: up to the stand-in's one-second block time.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from treasury.chain.toolchain import activate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def timed(action) -> tuple[float, object]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def flow(workdir: Path) -> list[tuple[str, float]]:
    from ape import accounts
    from standin import StandinChain, live

    from treasury.chain.infrastructure import deploy_infrastructure
    from treasury.execution import reconcile
    from treasury.execution.send import execute_safe_tx
    from treasury.signatures.signing import sign_safe_tx
    from treasury.testing.fixtures import make_test_treasury
    from treasury.treasury import Treasury

    chain_process = StandinChain()
    try:
        owners, deployer, executor, vendor = accounts.test_accounts[:3], accounts.test_accounts[9], accounts.test_accounts[3], accounts.test_accounts[6]
        policy = {"recipients": [vendor.address], "calls": [{"target": "TUSD", "function": "transfer(address,uint256)"}],
                  "caps": [{"token": "TUSD", "amount": 10_000, "period": "1d"}]}
        with live(chain_process.url) as provider:
            deploy_infrastructure(deployer, provider=provider)
            treasury, _token = make_test_treasury(workdir, owners, deployer, policy=policy)
            figures = []
            unsigned = treasury.propose_transfer(vendor.address, "10 TUSD")
            seconds, report = timed(lambda: treasury.rehearse(unsigned.id, executor=executor.address))
            assert report.success, report.reason
            figures.append(("rehearse, no signatures yet (fork, fill, execute, diff)", seconds))
            for owner in owners[:2]:
                treasury.sign(unsigned.id, owner)
            seconds, _ = timed(lambda: treasury.rehearse(unsigned.id, executor=executor.address))
            figures.append(("rehearse, fully signed", seconds))
            seconds, _ = timed(lambda: treasury.execute(unsigned.id, executor))
            figures.append(("execute with its rehearsal (rehearse, estimate, sign, record, send, receipt)", seconds))
            skipped = treasury.propose_transfer(vendor.address, "10 TUSD")
            for owner in owners[:2]:
                treasury.sign(skipped.id, owner)
            seconds, _ = timed(lambda: treasury.execute(skipped.id, executor, skip_rehearsal=True))
            figures.append(("execute --skip-rehearsal", seconds))
            seconds, _ = timed(treasury.execution.reconcile)
            figures.append(("reconcile, nothing to do", seconds))
            for label, recent in (("found in the recent logs", reconcile.RECENT_BLOCKS), ("found by bisecting nonce()", 1)):
                reconcile.RECENT_BLOCKS = recent
                elsewhere = treasury.propose_transfer(vendor.address, "10 TUSD")
                safe_tx = treasury.safe_tx(elsewhere)
                receipt = execute_safe_tx(safe_tx, [sign_safe_tx(o, safe_tx) for o in owners[:2]], sender=deployer,
                                          version=treasury.version)
                while provider.web3.eth.block_number < receipt.block_number + 2:
                    time.sleep(0.2)
                fresh = Treasury.load("ops", workdir / "ape-config.yaml")
                seconds, _ = timed(fresh.reconcile)  # the first call connects and reconciles
                assert fresh.get(elsewhere.id).status == "executed"
                head = provider.web3.eth.block_number
                figures.append((f"reconcile an execution made by another tool, {label} ({head} blocks)", seconds))
                fresh.store.close()
            treasury.store.close()
            return figures
    finally:
        chain_process.stop()


def main() -> None:
    activate()
    with tempfile.TemporaryDirectory() as directory:
        figures = flow(Path(directory))
    print("Live-network steps on the stand-in (anvil chain id 1, 1 s blocks, ethereum:mainnet:node)")
    for name, seconds in figures:
        print(f"  {name:92} {seconds * 1000:8.0f} ms")


if __name__ == "__main__":
    main()
