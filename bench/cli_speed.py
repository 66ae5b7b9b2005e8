"""Start-up and listing time of the `treasury` CLI, each as a fresh process (what a user waits for).

    .venv/bin/python bench/cli_speed.py [--runs 5] [--proposals 10000]

Targets (issue 5): `treasury --help` under 0.5 s; `treasury list` against a store of 10,000
proposals under 1 s. Figures only: tests never assert on time.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TREASURY = Path(sys.executable).with_name("treasury")


def _seed():
    spec = importlib.util.spec_from_file_location("treasury_flow", HERE / "treasury_flow.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.seed


def wall(args: list[str], runs: int) -> tuple[float, float]:
    """(median, max) seconds of `treasury ARGS` as a fresh process."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(TREASURY), *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--proposals", type=int, default=10_000)
    args = parser.parse_args()
    import yaml

    from treasury.store.repository import Store

    rows = [("treasury --help", *wall(["--help"], args.runs), 0.5)]
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        store = Store.open(str(workdir / "store.db"))
        print(f"seeding {args.proposals:,} proposals ...", file=sys.stderr)
        _seed()(store, args.proposals)
        store.close()
        config = workdir / "ape-config.yaml"
        safe = "0x" + "00" * 18 + "0100"  # the first of seed()'s ten Safes
        config.write_text(yaml.safe_dump({"treasury": {"store": str(workdir / "store.db"),
                                                       "treasuries": {"bench": {"safe": safe, "chain_id": 1}}}}))
        common = ["--config", str(config)]
        rows.append((f"treasury list --status pending ({args.proposals:,} in the store)", *wall(["list", "--status", "pending", *common], args.runs), 1.0))
        rows.append(("treasury list --json (one Safe's 1/10 of the store)", *wall(["list", "--json", *common], args.runs), 1.0))
        rows.append(("treasury list (rich table, same)", *wall(["list", *common], args.runs), 1.0))
    print(f"{'command':60} {'median':>8} {'max':>8} {'target':>8}")
    for name, median, worst, target in rows:
        flag = "" if worst < target else "  OVER TARGET"
        print(f"{name:60} {median:7.3f}s {worst:7.3f}s {target:7.1f}s{flag}")


if __name__ == "__main__":
    main()
