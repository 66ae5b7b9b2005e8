"""The end-to-end story from the Python library, on a local anvil chain: `make demo-library` runs this
(`make demo` tells the same story through the `treasury` CLI: scripts/demo_cli.py).

1. Deploy the Safe infrastructure at the canonical addresses.
2. Create a 2-of-3 Safe 1.4.1 from the canonical proxy factory and fund it.
3. Move ETH out of it with two owner signatures.
4. Install TreasuryGuard with a policy, then: one transfer allowed, one refused by the cap, and one
   held in the delay queue and executed after the delay.
"""

from datetime import UTC, datetime

import click
from ape.cli import ConnectedProviderCommand, network_option

USDC = 10**6  # the demo token has 6 decimals
ETHER = 10**18
DAY = 24 * 3600


@click.command(cls=ConnectedProviderCommand, short_help="Run the treasury demo on a local chain")
@network_option()
def cli(provider):
    from ape import accounts, chain, project

    from treasury.chain.guard import budgets, deploy_guard, entries, install_guard, predict_verdict, schedule_intent
    from treasury.chain.infrastructure import deploy_infrastructure
    from treasury.chain.report import console, print_infrastructure, print_safe
    from treasury.chain.safe import create_safe, safe_nonce, safe_spec
    from treasury.execution.send import execute_safe_tx, simulate_execution
    from treasury.policy.model import Policy
    from treasury.proposal.safe_tx import build_safe_tx
    from treasury.signatures.signing import sign_safe_tx

    if not provider.network.is_dev:
        raise click.ClickException("the demo only runs on a local chain or fork")
    deployer, alice, bob, carol, vendor, stranger = accounts.test_accounts[:6]

    def safe_tx(to, value=0, data=b"", operation=0):
        return build_safe_tx(created.address, to, value, data, operation,
                             nonce=safe_nonce(created.address, created.version), chain_id=provider.chain_id, version=created.version)

    def signed_by_two(tx):
        console.print(f"  safeTxHash {tx.safe_tx_hash.to_0x_hex()}  signed by Alice and Bob (EIP-712)")
        return [sign_safe_tx(alice, tx), sign_safe_tx(bob, tx)]

    def balances(title):
        console.print(
            f"  {title}: Safe {provider.get_balance(created.address) / ETHER:.2f} ETH, "
            f"{token.balanceOf(created.address) / USDC:,.0f} USDC | vendor {token.balanceOf(vendor.address) / USDC:,.0f} USDC"
        )

    console.rule("1. Safe infrastructure at the canonical addresses")
    print_infrastructure(deploy_infrastructure(deployer, provider=provider))

    console.rule("2. A 2-of-3 Safe 1.4.1 from the canonical proxy factory, funded")
    created = create_safe(safe_spec(owners=[alice.address, bob.address, carol.address], threshold=2), deployer, provider=provider)
    print_safe(created)
    token = deployer.deploy(project.TestToken, "Demo USD", "USDC", 6)
    token.mint(created.address, 1_000_000 * USDC, sender=deployer)
    deployer.transfer(created.address, 10 * ETHER)
    balances("funded")

    console.rule("3. Move 1.5 ETH out with two owner signatures")
    before = provider.get_balance(vendor.address)
    tx = safe_tx(vendor.address, 15 * ETHER // 10)
    receipt = execute_safe_tx(tx, signed_by_two(tx), sender=carol, version=created.version)
    console.print(f"  executed by Carol in {receipt.txn_hash} (gas {receipt.gas_used:,}); "
                  f"vendor received {(provider.get_balance(vendor.address) - before) / ETHER} ETH")
    balances("after")

    console.rule("4. TreasuryGuard: caps, allowlist and a delay queue, enforced on chain")
    policy = Policy(
        recipients=[vendor.address],
        calls=[{"target": token.address, "selector": "transfer(address,uint256)"}],
        caps=[
            {"token": token.address, "amount": 10_000 * USDC, "period": DAY, "max_per_tx": 8_000 * USDC, "delay_threshold": 5_000 * USDC},
            {"amount": 2 * ETHER, "period": DAY},
        ],
        delay=2 * DAY, window=7 * DAY,
    )
    guard = deploy_guard(created.address, created.version, policy, deployer)
    install_guard(created.address, created.version, guard.address, signers=[alice, bob], sender=carol)
    console.print(f"  guard {guard.address} installed: USDC cap 10,000 per day, at most 8,000 per transaction, "
                  "above 5,000 waits 48 h; only the vendor may be paid")

    def pay(amount, to=vendor):
        from treasury.proposal.build import encode_call

        return token.address, encode_call("transfer(address,uint256)", [to.address, amount * USDC])

    def attempt(label, amount, to=vendor):
        target, data = pay(amount, to)
        verdict = predict_verdict(guard, target, 0, data)
        console.print(f"\n[bold]{label}[/bold]: {amount:,} USDC to {to.address}")
        console.print(f"  guard verdict before signing: [bold]{verdict.outcome}[/bold] {verdict.reason}")
        tx = safe_tx(target, 0, data)
        signatures = signed_by_two(tx)
        refusal = simulate_execution(tx, signatures, sender=carol, version=created.version)
        if refusal:
            console.print(f"  execTransaction with two valid signatures [red]reverts[/red]: {refusal}")
            return tx, signatures
        receipt = execute_safe_tx(tx, signatures, sender=carol, version=created.version)
        console.print(f"  [green]executed[/green] in {receipt.txn_hash} (gas {receipt.gas_used:,})")
        return None

    attempt("An allowed payment", 4_000)
    console.print(f"  budget left today: {budgets(guard, policy)[token.address] / USDC:,.0f} USDC")
    attempt("A payment the cap refuses", 7_000)
    attempt("A payment to someone not on the allowlist", 100, to=stranger)
    held = attempt("A payment above the delay threshold", 6_000)
    if held:
        target, data = pay(6_000)
        entry_id = schedule_intent(guard, target, 0, data, 0, signers=[alice, bob], sender=carol)
        entry = entries(guard)[-1]

        def when(t: int) -> str:
            return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")

        console.print(f"  scheduled as entry {entry_id} by Alice and Bob: executable from {when(entry.eta)} until {when(entry.expiry)}")
        console.print(f"  executing now: {simulate_execution(*held, sender=carol, version=created.version)}")
        chain.pending_timestamp += policy.delay + 60
        chain.mine()
        console.print("  ... 48 hours pass ...")
        receipt = execute_safe_tx(*held, sender=carol, version=created.version)
        console.print(f"  [green]executed[/green] in {receipt.txn_hash}; entry {entry_id} is now {entries(guard)[-1].status}")

    console.rule("What happened")
    balances("final")
    console.print(f"  budget left: {budgets(guard, policy)[token.address] / USDC:,.0f} USDC; queue: "
                  + ", ".join(f"entry {e.entry_id} {e.status}" for e in entries(guard)))
