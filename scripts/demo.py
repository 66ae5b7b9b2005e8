"""The end-to-end story on a local anvil chain: `make demo` runs this.

Deploy the Safe infrastructure at the canonical addresses, create a 2-of-3 Safe 1.4.1 from the
canonical proxy factory, fund it, and move ETH out of it with two owner signatures.
"""

import click
from ape.cli import ConnectedProviderCommand, network_option


@click.command(cls=ConnectedProviderCommand, short_help="Run the treasury demo on a local chain")
@network_option()
def cli(provider):
    from ape import accounts
    from rich.table import Table

    from treasury.infrastructure import deploy_infrastructure
    from treasury.report import console, print_infrastructure, print_safe
    from treasury.safe import create_safe, safe_nonce, safe_spec
    from treasury.signing import build_safe_tx, sign_safe_tx
    from treasury.execution import execute_safe_tx

    if not provider.network.is_dev:
        raise click.ClickException("the demo only runs on a local chain or fork")
    deployer, alice, bob, carol, recipient = accounts.test_accounts[:5]

    console.rule("1. Safe infrastructure at the canonical addresses")
    print_infrastructure(deploy_infrastructure(deployer, provider=provider))

    console.rule("2. A 2-of-3 Safe 1.4.1 from the canonical proxy factory")
    spec = safe_spec(owners=[alice.address, bob.address, carol.address], threshold=2, version="1.4.1")
    created = create_safe(spec, deployer, provider=provider)
    print_safe(created)

    console.rule("3. Fund the Safe with 10 ETH")
    deployer.transfer(created.address, "10 ether")

    console.rule("4. Move 1.5 ETH out with two owner signatures (EIP-712)")
    safe_tx = build_safe_tx(
        created.address, recipient.address, 1_500_000_000_000_000_000,
        nonce=safe_nonce(created.address, created.version), chain_id=provider.chain_id, version=created.version,
    )
    console.print(f"safeTxHash {safe_tx.safe_tx_hash.to_0x_hex()}")
    before = {name: provider.get_balance(a) for name, a in (("Safe", created.address), ("recipient", recipient.address))}
    signatures = [sign_safe_tx(alice, safe_tx), sign_safe_tx(bob, safe_tx)]
    receipt = execute_safe_tx(safe_tx, signatures, sender=carol, version=created.version)
    console.print(f"executed in {receipt.txn_hash} by {carol.address} (gas used {receipt.gas_used})")

    table = Table(title="Balances (ETH)")
    for column in ("account", "address", "before", "after"):
        table.add_column(column)
    for name, address in (("Safe", created.address), ("recipient", recipient.address)):
        table.add_row(name, address, f"{before[name] / 1e18:.4f}", f"{provider.get_balance(address) / 1e18:.4f}")
    console.print(table)
