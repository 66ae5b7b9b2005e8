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
# vendors: {acme: "0x..."} and owners: {alice: "0x..."}: the address book. A name works wherever an
#   address does (`treasury propose transfer acme "250 USDC"`) and is shown beside its address.
# policy: enforced by TreasuryGuard on chain and checked before anyone signs:
#   recipients: who may receive ETH or tokens, e.g. ["0xVendor", acme] (addresses or book names)
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


def parse_name_option(text: str, option: str) -> tuple[str, str]:
    """(name, address) from "acme=0x15d3...6A65" (--vendor, --owner); the address book checks both."""
    name, sep, address = text.partition("=")
    if not sep or not name.strip() or not address.strip():
        raise InvalidInput(f"{option} {text!r} must look like acme=0x15d3...6A65")
    return name.strip(), address.strip()


def new_section(name: str, safe: str, chain_id: int, version: str, tokens: Sequence[str] = (),
                store: str = DEFAULT_STORE, vendors: Sequence[str] = (), owners: Sequence[str] = ()) -> dict:
    """The `treasury:` section for one Safe, validated as `load_config` would (InvalidInput otherwise).
    `vendors` and `owners` ("acme=0x...") start its address book."""
    book = dict(parse_token_option(t) for t in tokens)
    if len(book) != len(tokens):
        raise InvalidInput("a --token symbol is given twice")
    named = {key: dict(parse_name_option(t, f"--{key[:-1]}") for t in given)
             for key, given in (("vendors", vendors), ("owners", owners)) if given}
    if any(len(named.get(key, ())) != len(given) for key, given in (("vendors", vendors), ("owners", owners)) if given):
        raise InvalidInput("a --vendor or --owner name is given twice")
    section = {"store": store, "treasuries": {name: {
        "safe": safe, "chain_id": chain_id, "version": version, "tokens": book, **named,
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


def add_token(target: Path, name: str, symbol: str, address: str, decimals: int) -> TreasuryEntry:
    """Add `symbol` to treasury `name`'s `tokens:` in `target`, every other byte of the file kept.

    The user's comments and layout matter more than a tidy re-dump, so the one new line is inserted
    where the YAML parser says the token mapping ends, and the result must load to exactly the old
    data plus the new token before it replaces the file; otherwise nothing is written and the line
    to add by hand is in the error. Used by `treasury dev-token --add-to-config`.
    """
    import copy
    import json

    import yaml

    text = read_text(target, "config")
    old = load_yaml(text, f"cannot read config {target}")
    entry = TreasuryConfig.from_section((old or {}).get("treasury"), environ={}).treasury(name)
    line = f'{json.dumps(symbol)}: {{address: "{address}", decimals: {decimals}}}'
    if symbol.upper() in {s.upper() for s in entry.tokens} or entry.token_book().by_address(address):
        raise InvalidInput(f"treasury {name} already has a token {symbol} or one at {address} (nothing written)")
    by_hand = f"add it by hand under the {name} treasury's `tokens:`: {line} (nothing written)"
    node = _mapping_at(yaml.compose(text), ("treasury", "treasuries", name))
    new_text = _insert_token(text, node, line) if node is not None else None
    expected = copy.deepcopy(old)
    expected["treasury"]["treasuries"][name].setdefault("tokens", {})[symbol] = {"address": address, "decimals": decimals}
    if new_text is None or load_yaml(new_text, f"config {target} with the new token") != expected:
        raise InvalidInput(f"cannot place the token in {target} safely; {by_hand}")
    _replace(target, new_text)
    return TreasuryConfig.from_section(expected["treasury"], environ={}).treasury(name)


def _mapping_at(root: object, keys: Sequence[str]) -> object | None:
    """The YAML block mapping node at `keys` under `root`, or None."""
    import yaml

    node = root
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return None
        node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
    return node if isinstance(node, yaml.MappingNode) and not node.flow_style else None


def _insert_token(text: str, entry: object, line: str) -> str | None:
    """`text` with `line` added to the entry's block `tokens:` mapping (made if missing, or from an
    empty `tokens: {}` as `treasury init` writes it), or None where no line of its own fits."""
    import yaml

    assert isinstance(entry, yaml.MappingNode)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    key, tokens = next(((k, v) for k, v in entry.value if getattr(k, "value", None) == "tokens"), (None, None))
    if key is None or tokens is None:
        indent = entry.value[0][0].start_mark.column
        return _insert_after(lines, entry.value[-1][1], f"{' ' * indent}tokens:\n{' ' * (indent + 2)}{line}\n")
    if not isinstance(tokens, yaml.MappingNode):
        return None
    if tokens.flow_style and not tokens.value and tokens.start_mark.line == tokens.end_mark.line:
        at, start, end = tokens.start_mark.line, tokens.start_mark.column, tokens.end_mark.column
        lines[at] = lines[at][:start].rstrip() + lines[at][end:]  # `tokens: {}` -> `tokens:`
        lines.insert(at + 1, f"{' ' * (key.start_mark.column + 2)}{line}\n")
        return "".join(lines)
    if tokens.flow_style or not tokens.value:
        return None
    return _insert_after(lines, tokens.value[-1][1], f"{' ' * tokens.value[0][0].start_mark.column}{line}\n")


def _insert_after(lines: list[str], last: object, new: str) -> str:
    """`new` inserted on the line after the value node `last` ends (before trailing blank or comment lines)."""
    import yaml

    assert isinstance(last, yaml.Node)
    block = isinstance(last, yaml.MappingNode | yaml.SequenceNode) and not last.flow_style
    # A block value ends where the next token starts (that line); a scalar or flow value on its own line.
    at = min(last.end_mark.line if block else last.end_mark.line + 1, len(lines))
    while at - 1 > last.start_mark.line and (not lines[at - 1].strip() or lines[at - 1].lstrip().startswith("#")):
        at -= 1
    lines.insert(at, new)
    return "".join(lines)


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
