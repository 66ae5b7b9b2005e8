"""`treasury init`: write a commented `treasury:` section for a Safe (no chain needed)."""

from __future__ import annotations

from pathlib import Path

import click

from treasury.cli.common import console, emit_json, local_command
from treasury.errors import InvalidInput


@local_command("init")
@click.option("--safe", required=True, help="the Safe's address")
@click.option("--chain-id", type=int, required=True, help="the chain the Safe lives on (31337 for a local anvil)")
@click.option("--version", "safe_version", default="1.4.1", show_default=True, help="Safe version: 1.3.0, 1.4.1 or 1.5.0")
@click.option("--token", "tokens", multiple=True, metavar="SYMBOL=ADDRESS:DECIMALS", help="a token of the book (repeat)")
@click.option("--store", default=".treasury/treasury.db", show_default=True, help="proposal store: a path or a SQLAlchemy URL")
@click.option("--vendor", "vendors", multiple=True, metavar="NAME=ADDRESS",
              help="a named recipient of the address book (repeat); the name then works wherever an address does")
@click.option("--owner", "owners", multiple=True, metavar="NAME=ADDRESS", help="a named owner of the address book (repeat)")
def init(name, config_path, as_json, verbose, safe, chain_id, safe_version, tokens, store, vendors, owners):
    """Write a commented `treasury:` section for one Safe: to the current ape project's
    ape-config.yaml, or to the file given with --config. An existing `treasury:` section is never
    overwritten, and nothing is written unless the whole section is valid. --treasury names the
    treasury (default: ops)."""
    from treasury.config_writer import add_section, new_section

    name = "ops" if name is None else name
    target = Path(config_path) if config_path is not None else Path.cwd() / "ape-config.yaml"
    if target.is_dir():
        raise InvalidInput(f"{target} is a directory")
    section = new_section(name, safe, chain_id, safe_version, tokens, store, vendors=vendors, owners=owners)
    entry = add_section(target, section)
    if as_json:
        emit_json({"config": str(target), "treasury": name, "safe": entry.safe, "chain_id": entry.chain_id,
                   "version": entry.version, "tokens": sorted(entry.tokens), "store": section["store"],
                   "address_book": dict(entry.address_book().names)})
    else:
        from rich.markup import escape

        console().print(f"wrote the `treasury:` section for {escape(name)} (Safe {entry.safe}, chain {entry.chain_id}) "
                        f"to {escape(str(target))}")
        console().print(f"next: add the policy, then `treasury deploy-guard --treasury {escape(name)} --signer ALIAS ...`")
