"""`treasury dev-token`: a test ERC-20 on a development chain, minted to the Safe (treasury.devtoken)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from treasury.cli.chain import chain_command
from treasury.cli.common import account, emit_json


def _check(symbol: str, decimals: int, mint: str, **_ignored: Any) -> None:
    """Symbol, decimals and amount are refused before connecting."""
    from treasury.devtoken import mint_units

    mint_units(symbol, decimals, mint)


def _recipient(to: str, name: str | None, config_path: Path | None, chain_id: int) -> tuple[str, str | None]:
    """(address, treasury name) for --to: `safe` is the treasury's Safe, else an address or a book name."""
    from treasury.addresses import parse_address

    if to.lower() != "safe" and to.startswith("0x"):
        return parse_address(to, "--to"), None
    from treasury.cli.common import treasury_name
    from treasury.config import load_config

    name = treasury_name(name, config_path)
    entry = load_config(config_path).treasury(name)
    if to.lower() == "safe":
        if entry.chain_id != chain_id:
            raise click.ClickException(f"treasury {name}'s Safe is on chain {entry.chain_id}, not on this chain {chain_id}; "
                                       "pass --to ADDRESS")
        return entry.safe, name
    return entry.address_book().resolve(to, "--to"), None


def _config_file(name: str | None, config_path: Path | None, symbol: str, chain_id: int) -> tuple[Path, str]:
    """(config file, treasury name) for --add-to-config, checked before anything is deployed."""
    from treasury.cli.common import treasury_name
    from treasury.config import load_config, project_config_file

    name = treasury_name(name, config_path)
    entry = load_config(config_path).treasury(name)
    if entry.chain_id != chain_id:
        raise click.ClickException(f"treasury {name} is on chain {entry.chain_id}, not on this chain {chain_id}: "
                                   "its config gets no token from here")
    if symbol.upper() in {s.upper() for s in entry.tokens}:
        raise click.ClickException(f"treasury {name} already has a token {symbol}; choose another symbol")
    target = Path(config_path) if config_path is not None else project_config_file(Path.cwd())
    if target is None or target.suffix not in (".yaml", ".yml"):
        raise click.ClickException(f"--add-to-config writes a YAML config; {target or 'no ape-config.yaml here'} is not one")
    return target, name


@chain_command("dev-token", check_input=_check)
@click.argument("symbol")
@click.option("--decimals", type=click.IntRange(0, 77), default=6, show_default=True, help="the token's decimals")
@click.option("--mint", default="1,000,000", show_default=True, metavar="AMOUNT",
              help="how many tokens to mint, in token units (0: none)")
@click.option("--to", "to", default="safe", show_default=True, metavar="safe|ADDRESS",
              help="who receives the minted tokens: the treasury's Safe, an address or an address-book name")
@click.option("--account", "alias", default=None,
              help="ape account alias that deploys and mints (default on a local chain: test account 0)")
@click.option("--add-to-config", is_flag=True,
              help="also add the token to the treasury's `tokens:` in its config file (comments and layout kept)")
def dev_token(name, config_path, as_json, verbose, symbol, decimals, mint, to, alias, add_to_config):
    """Deploy a test ERC-20 (anyone may mint it) named SYMBOL on a development network, mint it
    and print its address and the line for the treasury's `tokens:` config. Refused on a live
    network: a token anyone can mint is only for local chains and forks."""
    from ape import chain

    from treasury.devtoken import deploy_dev_token, mint_units, require_dev_chain

    require_dev_chain(chain.provider)  # before anything else asks the node
    units = mint_units(symbol, decimals, mint)
    recipient, treasury = _recipient(to, name, config_path, chain.chain_id)
    target = _config_file(name, config_path, symbol, chain.chain_id) if add_to_config else None
    made = deploy_dev_token(chain.provider, account(alias), symbol, decimals, units, recipient)
    added = None
    if target is not None:
        from treasury.config_writer import add_token

        added = target[1]
        add_token(target[0], added, made.symbol, made.address, made.decimals)
    if as_json:
        emit_json({"symbol": made.symbol, "address": made.address, "decimals": made.decimals,
                   "minted": str(made.minted), "to": made.to, "config_line": made.config_line,
                   "added_to": str(target[0]) if target else None})
        return
    click.echo(f"{made.symbol} ({made.decimals} decimals) deployed at {made.address}")
    if made.minted:
        whose = f" ({treasury}'s Safe)" if treasury else ""
        click.echo(f"minted {made.minted_text} to {made.to}{whose}")
    if target is not None:
        click.echo(f"added {made.symbol} to the {added} treasury's `tokens:` in {target[0]}")
        return
    where = f"the {treasury} treasury's" if treasury else "your treasury's"
    click.echo(f"add it to {where} config under `tokens:`\n  {made.config_line}")
