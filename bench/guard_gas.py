"""Gas overhead of TreasuryGuard on execTransaction, measured on one Safe in one run.

    make bench            (or: .venv/bin/python bench/guard_gas.py [--version 1.4.1])

For each Safe version, the same transactions are executed without the guard and then with it
installed (and TreasuryFallbackHandler, which execTransaction never calls), with every rule of
the guard in force (allowlist, recipient allowlist, cap, per-transaction limit, delay threshold):

- steady: an allowlisted ERC-20 transfer within the cap, in a sub-slot the cap was already charged in;
- first charge of a sub-slot: the same transfer when a new half-period has begun;
- batch of 10: ten transfers to ten recipients through MultiSendCallOnly (overhead per entry);
- realistic mix: three payments a day (09:00, 13:00, 17:00 UTC) under a daily cap, over five days;
  with a daily period the sub-slots are 12 h long, so two of the three are a sub-slot's first charge.

Token balances are warmed first, so both sides pay the same token storage costs. The floor is
what no guard can avoid (EIP-2929/2200 prices): the Safe's two hook calls (a cold and a warm CALL)
and its reads of the guard slot (cold, then warm), the guard's cold reads of the recipient and of
the token's cap word, and one write of that word (5,000 - 2,100). The first charge of a sub-slot
also reads and writes the cap's roll word; each further batch entry pays a cold recipient read.
"""

from __future__ import annotations

import argparse

from treasury.chain.toolchain import activate
from treasury.proposal.build import encode_call

UNIT = 10**6  # a 6-decimal token
DAY = 86400
COLD_CALL, WARM_ACCESS, COLD_SLOAD, SSTORE_RESET = 2600, 100, 2100, 5000
WRITE = SSTORE_RESET - COLD_SLOAD  # rewriting a slot that was read: 2,900
FLOOR = {
    "steady": COLD_CALL + WARM_ACCESS + COLD_SLOAD + WARM_ACCESS + 2 * COLD_SLOAD + WRITE,
    "first": COLD_CALL + WARM_ACCESS + COLD_SLOAD + WARM_ACCESS + 3 * COLD_SLOAD + 2 * WRITE,
    "entry": COLD_SLOAD,
}
MIX_DAYS, MIX_HOURS = 5, (9, 13, 17)


def transfer_data(to: str, amount: int) -> bytes:
    return encode_call("transfer(address,uint256)", [to, amount])


def measure(version: str) -> dict[str, float]:
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

    def single(i: int = 0) -> int:
        return run(token.address, transfer_data(recipients[i % len(recipients)], 100 * UNIT))

    multisend, batch_data = encode_batch([Call(token.address, 0, transfer_data(r, 10 * UNIT)) for r in recipients], version)

    def batch() -> int:
        return run(multisend, batch_data, 1)

    def mix() -> float:
        """Mean gas of three payments a day over MIX_DAYS days, from the next midnight on."""
        start = (chain.blocks.head.timestamp // DAY + 1) * DAY
        used = []
        for day in range(MIX_DAYS):
            for k, hour in enumerate(MIX_HOURS):
                chain.pending_timestamp = start + day * DAY + hour * 3600
                used.append(single(day * len(MIX_HOURS) + k))
        return sum(used) / len(used)

    single()  # the Safe's first transaction also turns its nonce from 0 to 1: not part of the comparison
    figures: dict[str, float] = {"steady, no guard": single(), "batch, no guard": batch(), "mix, no guard": mix()}
    # Everything in force: a daily cap, a per-transaction limit and a delay threshold the payments stay under.
    policy = Policy(
        recipients=recipients,
        calls=[{"target": token.address, "selector": "transfer(address,uint256)"}],
        caps=[{"token": token.address, "amount": 10**6 * UNIT, "period": DAY, "max_per_tx": 10**5 * UNIT,
               "delay_threshold": 10**4 * UNIT}],
    )
    guard = deploy_guard(safe.address, version, policy, deployer)
    install_guard(safe.address, version, guard.address, signers=owners[:2], sender=deployer)
    chain.pending_timestamp = (chain.blocks.head.timestamp // DAY + 1) * DAY + 3600  # a fresh day, 01:00
    single()  # the cap's first charge of this sub-slot
    figures["steady, guard"] = single()
    figures["batch, guard"] = batch()
    chain.pending_timestamp = (chain.blocks.head.timestamp // DAY + 1) * DAY - 3600  # 23:00: the next sub-slot
    figures["first, guard"] = single()
    figures["mix, guard"] = mix()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="append", choices=["1.3.0", "1.4.1", "1.5.0"])
    versions = parser.parse_args().version or ["1.3.0", "1.4.1", "1.5.0"]
    activate()
    from ape import networks
    from rich.table import Table

    from treasury.chain.report import console

    table = Table(title="TreasuryGuard gas overhead on execTransaction (gas used; overhead = guard - no guard)")
    for column in ("Safe", "case", "no guard", "guard", "overhead", "floor", "target"):
        table.add_column(column, justify="right")
    for version in versions:
        with networks.parse_network_choice("ethereum:local:foundry"):
            f = measure(version)
        rows = [
            ("transfer, steady", f["steady, no guard"], f["steady, guard"], FLOOR["steady"], 15_000, 1),
            ("transfer, first charge of a sub-slot", f["steady, no guard"], f["first, guard"], FLOOR["first"], 20_000, 1),
            ("batch of 10, per entry", f["batch, no guard"], f["batch, guard"], None, 4_500, 10),
            (f"mix: 3 payments a day, {MIX_DAYS} days (mean)", f["mix, no guard"], f["mix, guard"], None, None, 1),
        ]
        for case, without, with_guard, floor, target, per in rows:
            overhead = (with_guard - without) / per
            if per > 1:  # per entry: the batch's fixed part (one steady transfer's overhead) spread out
                overhead = (with_guard - without - (f["steady, guard"] - f["steady, no guard"])) / (per - 1)
                floor = FLOOR["entry"]
            table.add_row(
                version, case, f"{without:,.0f}", f"{with_guard:,.0f}", f"{overhead:,.0f}",
                "" if floor is None else f"{floor:,}", "" if target is None else f"≤ {target:,}",
            )
    console.print(table)
    console.print(
        "floor: what no guard avoids (the hook calls, the Safe's guard-slot reads, the guard's cold reads of the "
        "recipient and the cap word, one write; a sub-slot's first charge also reads and writes the roll word). "
        "Per batch entry: the overhead beyond the single transfer's, over the 9 further entries."
    )


if __name__ == "__main__":
    main()
