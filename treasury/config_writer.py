"""Writing a new `treasury:` section into an ape config file (what `treasury init` does).

Every value is validated by the same model `load_config` uses before anything is written, and it
reaches the file only through the YAML emitter, never through string formatting: a version such as
'1.4.1"\\n      guard: "0x..' stays one (refused) string instead of becoming a key of the user's
config. The comments are fixed text. An existing `treasury:` section is never overwritten, and the
combined file must load before it replaces the old one.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from treasury.config import DEFAULT_STORE, TreasuryConfig, TreasuryEntry
from treasury.errors import InvalidInput
from treasury.files import load_yaml, read_text

HEADER = """\
# ape-treasury (written by `treasury init`). Amounts are exact decimals in token units (quote
# fractional ones: a YAML float is not exact); durations are like 90s, 30m, 48h, 7d, 2w.
# store: a SQLite (WAL) path, or a URL such as postgresql://... (APE_TREASURY_STORE overrides it).
# guard: "0x..."  # add under the treasury once `treasury deploy-guard` prints it.
# policy: enforced by TreasuryGuard on chain and checked before anyone signs:
#   recipients: who may receive ETH or tokens, e.g. ["0xVendor"]
#   calls: (target, function) pairs, e.g. [{target: USDC, function: "transfer(address,uint256)"}]
#   caps: e.g. [{token: USDC, amount: "10,000", period: 1d, max_per_tx: 8000, delay_threshold: 5000}]
#   delay: how long a scheduled transaction waits; window: how long it stays executable afterwards.
"""
_TOKEN = re.compile(r"^\s*(?P<symbol>[^=\s]+)\s*=\s*(?P<address>[^:\s]+)\s*:\s*(?P<decimals>[0-9]{1,3})\s*$")


def parse_token_option(text: str) -> tuple[str, dict[str, object]]:
    """(symbol, {address, decimals}) from "USDC=0xA0b8...eB48:6"; the config model checks the values."""
    match = _TOKEN.fullmatch(text)
    if not match:
        raise InvalidInput(f"--token {text!r} must look like USDC=0xA0b8...eB48:6")
    return match["symbol"], {"address": match["address"], "decimals": int(match["decimals"])}


def new_section(name: str, safe: str, chain_id: int, version: str, tokens: Sequence[str] = (),
                store: str = DEFAULT_STORE) -> dict:
    """The `treasury:` section for one Safe, validated as `load_config` would (InvalidInput otherwise)."""
    book = dict(parse_token_option(t) for t in tokens)
    if len(book) != len(tokens):
        raise InvalidInput("a --token symbol is given twice")
    section = {"store": store, "treasuries": {name: {
        "safe": safe, "chain_id": chain_id, "version": version, "tokens": book,
        "policy": {"recipients": [], "calls": [], "caps": [], "delay": "48h", "window": "7d"},
    }}}
    TreasuryConfig.from_section(section, environ={})
    return section


def add_section(target: Path, section: dict) -> TreasuryEntry:
    """Append `section` as `treasury:` to `target` (created if missing); returns the entry as loaded back."""
    import yaml

    existing = ""
    if target.exists():
        existing = read_text(target, "config")
        data = load_yaml(existing, f"cannot read config {target}")
        if data is not None and not isinstance(data, dict):
            raise InvalidInput(f"config {target} is not a YAML mapping")
        if data and "treasury" in data:
            raise InvalidInput(f"{target} already has a `treasury:` section; edit it instead (nothing written)")
    body = yaml.safe_dump({"treasury": section}, sort_keys=False, default_flow_style=False, allow_unicode=True)
    separator = "" if not existing or existing.endswith("\n") else "\n"
    text = existing + separator + ("\n" if existing else "") + HEADER + body
    loaded = load_yaml(text, f"config {target} with the new section")
    config = TreasuryConfig.from_section(loaded["treasury"], environ={})
    _replace(target, text)
    [name] = section["treasuries"]
    return config.treasury(name)


def _replace(target: Path, text: str) -> None:
    """Write the whole new file next to the old one, then rename: a crash leaves either file whole."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(text)
        if target.exists():
            shutil.copymode(target, partial)
        os.replace(partial, target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise InvalidInput(f"cannot write config {target}: {error.strerror or error}") from None
