"""`treasury init`: write a commented `treasury:` section for a Safe (no chain needed)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from treasury.cli.common import console, emit_json, local_command
from treasury.errors import InvalidInput

TEMPLATE = """\

# ape-treasury (written by `treasury init`). Amounts are exact decimals in token units (quote
# fractional ones: a YAML float is not exact); durations are like 90s, 30m, 48h, 7d, 2w.
treasury:
  store: {store}  # SQLite (WAL) path, or a URL such as postgresql://...
  treasuries:
    {name}:
      safe: {safe}
      chain_id: {chain_id}
      version: "{version}"
      # guard: "0x..."  # printed by `treasury deploy-guard`
      tokens:{tokens}
      policy:  # enforced by TreasuryGuard on chain and checked before anyone signs
        recipients: []  # who may receive ETH or tokens, e.g. ["0xVendor"]
        calls: []  # (target, function) pairs, e.g. [{{target: USDC, function: "transfer(address,uint256)"}}]
        caps: []  # e.g. [{{token: USDC, amount: "10,000", period: 1d, max_per_tx: 8000, delay_threshold: 5000}}]
        delay: 48h  # how long a scheduled transaction waits
        window: 7d  # how long it stays executable afterwards
"""


def _token(text: str) -> tuple[str, str, int]:
    """SYMBOL=ADDRESS:DECIMALS"""
    symbol, _, rest = text.partition("=")
    address, _, decimals = rest.partition(":")
    if not symbol or not address or not decimals.isdigit():
        raise InvalidInput(f"--token {text!r} must look like USDC=0xA0b8...eB48:6")
    return symbol.strip(), address.strip(), int(decimals)


@local_command("init")
@click.option("--safe", required=True, help="the Safe's address")
@click.option("--chain-id", type=int, required=True, help="the chain the Safe lives on (31337 for a local anvil)")
@click.option("--version", "safe_version", default="1.4.1", show_default=True, help="Safe version: 1.3.0, 1.4.1 or 1.5.0")
@click.option("--token", "tokens", multiple=True, metavar="SYMBOL=ADDRESS:DECIMALS", help="a token of the book (repeat)")
@click.option("--store", default=".treasury/treasury.db", show_default=True, help="proposal store: a path or a SQLAlchemy URL")
def init(name, config_path, as_json, verbose, safe, chain_id, safe_version, tokens, store):
    """Write a commented `treasury:` section for one Safe: to the current ape project's
    ape-config.yaml, or to the file given with --config. An existing `treasury:` section is never
    overwritten. --treasury names the treasury (default: ops)."""
    import yaml

    from treasury.config import TreasuryConfig, first_problem

    name = name or "ops"
    target = Path(config_path) if config_path is not None else Path.cwd() / "ape-config.yaml"
    existing = ""
    if target.exists():
        if target.is_dir():
            raise InvalidInput(f"{target} is a directory")
        existing = target.read_text()
        try:
            data = yaml.safe_load(existing) or {}
        except yaml.YAMLError as error:
            raise InvalidInput(f"cannot read config {target}: {str(error).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise InvalidInput(f"config {target} is not a YAML mapping")
        if "treasury" in data:
            raise InvalidInput(f"{target} already has a `treasury:` section; edit it instead (nothing written)")
    book = [_token(t) for t in tokens]
    token_lines = "".join(f'\n        {s}: {{address: "{a}", decimals: {d}}}' for s, a, d in book) or " {}"
    text = TEMPLATE.format(store=json.dumps(store), name=json.dumps(name), safe=json.dumps(safe), chain_id=chain_id, version=safe_version, tokens=token_lines)
    # What we write must load: validate the section (addresses, version, tokens) before touching the file.
    from pydantic import ValidationError

    section = yaml.safe_load(text)["treasury"]
    try:
        config = TreasuryConfig.model_validate(section)
        entry = config.treasury(name)
        entry.token_book()
        entry.to_policy()
    except ValidationError as error:
        raise InvalidInput(f"treasury config: {first_problem(error)}") from None
    separator = "" if not existing or existing.endswith("\n") else "\n"
    target.write_text(existing + separator + (text if existing else text.lstrip("\n")))
    if as_json:
        emit_json({"config": str(target), "treasury": name, "safe": entry.safe, "chain_id": entry.chain_id,
                   "version": entry.version, "tokens": sorted(entry.tokens), "store": config.store})
    else:
        console().print(f"wrote the `treasury:` section for {name} (Safe {entry.safe}, chain {entry.chain_id}) to {target}")
        console().print("next: add the policy, then `treasury deploy-guard --treasury " + name + " --signer ALIAS ...`")
