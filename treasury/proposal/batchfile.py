"""Batch files: several transfers and calls for one Safe transaction, from YAML or JSON.

    - {to: "0xVendor", amount: "250 USDC"}                   # a transfer (ETH or a token of the book)
    - {target: USDC, function: "approve(address,uint256)", args: ["0xSpender", 1000000]}
    - {target: "0xPool", function: "setFee(uint256)", args: [30], value: "0.1 ETH"}

A list of items, or a mapping with one `calls:` list. The file is read bounded (size, depth), and
every amount, address and argument goes through the same parsers as the command line, so a batch
can express nothing a single proposal could not.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from treasury.addresses import parse_address
from treasury.amounts import TokenBook
from treasury.errors import InvalidInput
from treasury.files import read_yaml
from treasury.proposal.arguments import parse_arguments

MAX_ITEMS = 256  # MultiSend has no limit, but a batch no signer can review is not a batch
TRANSFER_KEYS = {"to", "amount"}
CALL_KEYS = {"target", "function", "args", "value"}
_SHAPE = "{to, amount} or {target, function, args[, value]}"


def read_batch_file(path: str | Path) -> list[dict[str, Any]]:
    """The items of a batch file: a YAML/JSON list, or a mapping with a `calls:` list."""
    data = read_yaml(path, "batch file")
    if isinstance(data, dict) and set(data) == {"calls"}:
        data = data["calls"]
    if not isinstance(data, list) or not data:
        raise InvalidInput(f"batch file {path} must hold a non-empty list of {_SHAPE} items")
    if len(data) > MAX_ITEMS:
        raise InvalidInput(f"batch file {path} has {len(data)} items; at most {MAX_ITEMS} fit one reviewable transaction")
    for number, item in enumerate(data, 1):
        if not isinstance(item, dict):
            raise InvalidInput(f"batch item {number} is not a mapping ({_SHAPE})")
    return data


def batch_intents(safe: str, book: TokenBook, items: Sequence[dict[str, Any]]) -> list:
    """`Intent`s from batch items: {to, amount} (a transfer) or {target, function, args, value} (a call)."""
    return [_intent(safe, book, item, f"batch item {number}") for number, item in enumerate(items, 1)]


def _intent(safe: str, book: TokenBook, item: dict[str, Any], where: str):
    from treasury.proposal import build

    if not isinstance(item, dict):
        raise InvalidInput(f"{where} is not a mapping ({_SHAPE})")
    keys = set(item)
    if keys == TRANSFER_KEYS:
        try:
            return build.token_transfer(safe, book, _text(item["to"], "to", where), _text(item["amount"], "amount", where))
        except InvalidInput as error:
            raise InvalidInput(f"{where}: {error}") from None
    if {"target", "function"} <= keys <= CALL_KEYS:
        return _call(book, item, where)
    raise InvalidInput(f"{where} has keys {sorted(map(str, keys))}; expected {_SHAPE}")


def _call(book: TokenBook, item: dict[str, Any], where: str):
    from treasury.proposal import build

    signature = _text(item["function"], "function", where)
    args = item.get("args") or []
    if not isinstance(args, list):
        raise InvalidInput(f"{where}: args must be a list")
    parsed = parse_arguments(signature, args, where)
    wei = 0
    if item.get("value") is not None:
        value = item["value"]
        if isinstance(value, float):
            raise InvalidInput(f"{where}: value {value} must be quoted (\"{value} ETH\") so that it is read exactly")
        try:
            token, wei = book.parse(str(value), default_symbol="ETH")
        except InvalidInput as error:
            raise InvalidInput(f"{where}: {error}") from None
        if not token.is_native:
            raise InvalidInput(f"{where}: value {value!r} must be in the native currency")
    try:
        target = _target(book, _text(item["target"], "target", where))
        return build.contract_call(target, signature, parsed, wei)
    except InvalidInput as error:
        raise InvalidInput(f"{where}: {error}") from None
    except (TypeError, ValueError, OverflowError) as error:
        raise InvalidInput(f"{where}: arguments do not fit {signature}: {str(error).splitlines()[0]}") from None


def _target(book: TokenBook, target: str) -> str:
    """A contract address, or a token of the book by symbol (as in the policy config)."""
    if target.lower().startswith("0x"):
        return parse_address(target, "call target")
    token = book.by_symbol(target)
    if token.is_native:
        raise InvalidInput(f"{target} is the native currency, not a contract")
    return token.address


def _text(value: object, key: str, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and key in ("to", "target"):
        raise InvalidInput(f"{where}: {key} must be quoted (YAML reads an unquoted 0x... as a number)")
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: {key} must be a string, not {type(value).__name__}")
    return value
