"""Gas overhead of TreasuryGuard on execTransaction, measured on one Safe in one run.

    make bench            (or: .venv/bin/python bench/guard_gas.py [--version 1.4.1])

For each Safe version: the same allowlisted ERC-20 transfer within the cap, and the same batch of
10 transfers through MultiSendCallOnly, executed without the guard and then with it installed.
Token balances are warmed first, so both sides pay the same storage costs; "first charge of a
sub-slot" is the guard's one-off cost when a new half-period begins.
"""

from __future__ import annotations

import argparse

from treasury.chain.toolchain import activate
from treasury.proposal.build import encode_call

UNIT = 10**6  # a 6-decimal token


def transfer_data(to: str, amount: int) -> bytes:
    return encode_call("transfer(address,uint256)", [to, amount])


def measure(version: str) -> dict[str, int]:
    from ape import accounts, chain, project

    from treasury.chain.guard import deploy_guard, install_guard
    from treasury.chain.infrastructure import deploy_infrastructure
    from treasury.chain.safe import create_safe, safe_spec
    from treasury.execution.send import execute_with_owners
    from treasury.policy.model import Policy
    from treasury.proposal.multisend import Call, encode_batch

    deployer, *owners = accounts.test_accounts[:4]
    recipients = [a.address for a in accounts.test_accounts[4:10]] + [accounts.test_accounts[0].address]
    recipients += [f"0x{i:040x}" for i in range(0x1001, 0x1001 + 10 - len(recipients))]
    deploy_infrastructure(deployer)
    safe = create_safe(safe_spec(owners=[o.address for o in owners], threshold=2, version=version), deployer)
    token = deployer.deploy(project.TestToken, "USD Coin", "USDC", 6)
    token.mint(safe.address, 10**9 * UNIT, sender=deployer)
    for r in recipients:  # warm every balance slot: no 20,000-gas zero-to-non-zero writes below
        token.mint(r, 1, sender=deployer)

    def run(to, data, operation=0) -> int:
        return execute_with_owners(safe.address, version, to, 0, data, operation, signers=owners[:2], sender=deployer).gas_used

    def single() -> int:
        return run(token.address, transfer_data(recipients[0], 100 * UNIT))

    multisend, batch_data = encode_batch([Call(token.address, 0, transfer_data(r, 10 * UNIT)) for r in recipients], version)

    def batch() -> int:
        return run(multisend, batch_data, 1)

    single()  # the Safe's first transaction also turns its nonce from 0 to 1: not part of the comparison
    figures = {"transfer, no guard": single(), "batch of 10, no guard": batch()}
    policy = Policy(
        recipients=recipients,
        calls=[{"target": token.address, "selector": "transfer(address,uint256)"}],
        caps=[{"token": token.address, "amount": 10**6 * UNIT, "period": 30 * 24 * 3600}],
    )
    guard = deploy_guard(safe.address, version, policy, deployer)
    install_guard(safe.address, version, guard.address, signers=owners[:2], sender=deployer)
    figures["transfer, guard"] = single()
    figures["batch of 10, guard"] = batch()
    chain.pending_timestamp += policy.caps[0].period // 2  # into the next half-period
    figures["transfer, guard, first charge of a sub-slot"] = single()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="append", choices=["1.3.0", "1.4.1", "1.5.0"])
    versions = parser.parse_args().version or ["1.3.0", "1.4.1", "1.5.0"]
    activate()
    from ape import networks
    from rich.table import Table

    from treasury.chain.report import console

    table = Table(title="TreasuryGuard gas overhead on execTransaction (gas used per transaction)")
    for column in ("Safe", "transfer: no guard", "guard", "overhead", "batch of 10: no guard", "guard", "overhead per call", "first charge of a sub-slot"):
        table.add_column(column, justify="right")
    for version in versions:
        with networks.parse_network_choice("ethereum:local:foundry"):
            f = measure(version)
        single = f["transfer, guard"] - f["transfer, no guard"]
        per_call = (f["batch of 10, guard"] - f["batch of 10, no guard"]) / 10
        first = f["transfer, guard, first charge of a sub-slot"] - f["transfer, no guard"]
        table.add_row(
            version, f"{f['transfer, no guard']:,}", f"{f['transfer, guard']:,}", f"{single:,}",
            f"{f['batch of 10, no guard']:,}", f"{f['batch of 10, guard']:,}", f"{per_call:,.0f}", f"{first:,}",
        )
    console.print(table)
    console.print("targets: overhead ≤ 20,000 gas for the single transfer, ≤ 6,000 gas per inner call of a batch")


if __name__ == "__main__":
    main()
