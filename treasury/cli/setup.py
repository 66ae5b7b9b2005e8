"""Deployment commands: Safe infrastructure, a new Safe, and TreasuryGuard on a Safe.

Also the ape scripts `ape run deploy`, `ape run create_safe` and `ape run deploy_guard`.
"""

from pathlib import Path

import click
from ape.cli import network_option

from treasury.chain.artifacts import DEFAULT_VERSION, SUPPORTED_VERSIONS
from treasury.cli.chain import ChainCommand


@click.command("deploy", cls=ChainCommand, short_help="Deploy the Safe contracts at their canonical addresses")
@network_option()
@click.option("--version", "versions", multiple=True, type=click.Choice(SUPPORTED_VERSIONS), help="Safe version (repeatable; default: all)")
@click.option("--account", "alias", default=None, help="ape account alias that pays (default on a local chain: test account 0)")
@click.option("--allow-noncanonical", is_flag=True, help="On a live chain, deploy contracts whose published build cannot land at the canonical address")
@click.option("--manifest-dir", type=click.Path(path_type=Path), default=Path("deployments"), show_default=True,
              help="folder of the deployment manifests (JSON records of what was deployed where)")
def deploy(provider, versions, alias, allow_noncanonical, manifest_dir):
    from treasury.chain.infrastructure import deploy_infrastructure
    from treasury.chain.manifest import record_infrastructure
    from treasury.chain.report import print_infrastructure
    from treasury.errors import TreasuryError
    from treasury.signatures.accounts import resolve_account

    try:
        statuses = deploy_infrastructure(
            resolve_account(alias), versions or SUPPORTED_VERSIONS, allow_noncanonical, provider=provider
        )
    except TreasuryError as error:
        raise click.ClickException(str(error)) from None
    print_infrastructure(statuses)
    click.echo(f"manifest: {record_infrastructure(manifest_dir, provider, statuses)}")


def _check_safe_spec(owners, threshold, salt_nonce, version, fallback_handler, l2, **_ignored) -> None:
    from treasury.chain.safe import safe_spec

    safe_spec(owners=owners, threshold=threshold, salt_nonce=salt_nonce, version=version,
              fallback_handler=fallback_handler, l2=l2)


@click.command("create-safe", cls=ChainCommand, check_input=_check_safe_spec,
               short_help="Create an M-of-N Safe at a predicted address")
@network_option()
@click.option("--owner", "owners", multiple=True, required=True, help="owner address (repeat for each owner)")
@click.option("--threshold", type=int, required=True, help="signatures required to execute")
@click.option("--salt-nonce", type=int, default=0, show_default=True,
              help="CREATE2 salt nonce: another value gives another address for the same owners and threshold")
@click.option("--version", default=DEFAULT_VERSION, show_default=True, help="Safe version: 1.3.0, 1.4.1 or 1.5.0")
@click.option("--fallback-handler", default=None, help="default: the toolkit's TreasuryFallbackHandler (signs only what the guard approved)")
@click.option("--l2/--l1", default=None, help="singleton flavour (default: L2 except on Ethereum mainnet)")
@click.option("--account", "alias", default=None, help="ape account alias that pays (default on a local chain: test account 0)")
@click.option("--manifest-dir", type=click.Path(path_type=Path), default=Path("deployments"), show_default=True,
              help="folder of the deployment manifests (JSON records of what was deployed where)")
def create_safe(provider, owners, threshold, salt_nonce, version, fallback_handler, l2, alias, manifest_dir):
    from treasury.chain.manifest import record_safe
    from treasury.chain.report import print_safe
    from treasury.chain.safe import create_safe as create, predict_safe_address, safe_spec
    from treasury.errors import TreasuryError
    from treasury.signatures.accounts import resolve_account

    try:
        spec = safe_spec(
            owners=owners, threshold=threshold, salt_nonce=salt_nonce, version=version,
            fallback_handler=fallback_handler, l2=l2,
        )
        click.echo(f"predicted address: {predict_safe_address(spec, provider.chain_id)}")
        created = create(spec, resolve_account(alias), provider=provider)
    except TreasuryError as error:
        raise click.ClickException(str(error)) from None
    print_safe(created)
    click.echo(f"manifest: {record_safe(manifest_dir, provider, created)}")


def _check_treasury(name, config_path, **_ignored) -> None:
    from treasury.config import load_config

    load_config(config_path).treasury(name)


@click.command("deploy-guard", cls=ChainCommand, check_input=_check_treasury, short_help="Deploy TreasuryGuard from a treasury's policy and install it")
@network_option()
@click.option("--treasury", "name", required=True, help="treasury name from the `treasury:` config")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None, help="ape-config.yaml (default: the ape project's)")
@click.option("--signer", "signers", multiple=True, required=True, help="owner account alias that signs setGuard (repeat up to the threshold)")
@click.option("--account", "alias", default=None, help="ape account alias that pays (default on a local chain: test account 0)")
def deploy_guard(provider, name, config_path, signers, alias):
    """Deploy a guard configured with the treasury's policy and make it the Safe's guard.

    Installation is immediate only on a Safe without a guard; afterwards every change of guard
    or settings goes through the guard's delay queue.
    """
    from treasury.chain.guard import deploy_guard as deploy, install_guard
    from treasury.errors import TreasuryError
    from treasury.signatures.accounts import resolve_account
    from treasury.treasury import Treasury

    try:
        treasury = Treasury.load(name, config_path)
        payer = resolve_account(alias)
        owners = [resolve_account(s) for s in signers]
        guard = deploy(treasury.safe, treasury.version, treasury.policy, payer)
        install_guard(treasury.safe, treasury.version, guard.address, signers=owners, sender=payer)
    except TreasuryError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"guard {guard.address} installed on Safe {treasury.safe}")
    click.echo(f"add to the {name} treasury's config:  guard: \"{guard.address}\"")
