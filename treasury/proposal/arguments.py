"""ABI arguments typed by people, as the ABI type wants them: one parser for the CLI and batch files.

A shell word ("0x..", "30", "true", '["0xA", "0xB"]') or a batch-file value (YAML's own ints,
lists and strings) becomes the Python value eth_abi encodes. Every address, at any depth of an
array or tuple, goes through the project's address parser: a mixed-case address with a wrong
EIP-55 checksum is a typo caught, never an address encoded into calldata someone then signs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from treasury.addresses import parse_address
from treasury.errors import InvalidInput
from treasury.files import load_json

MAX_SIGNATURE_CHARS = 1024  # a function signature; tuples of tuples nest a few levels at most
MAX_TYPE_DEPTH = 16
_SIGNATURE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\((.*)\)$")
_HEX = re.compile(r"^(?:0x)?(?:[0-9a-fA-F]{2})*$")
_INTEGER = re.compile(r"^(?:0[xX][0-9a-fA-F]+|[0-9]+)$")
Resolve = Callable[[str, str], str]  # (what was typed, what it is) -> checksummed address: names, ENS


def argument_types(signature: str) -> list[str]:
    """The parameter types of "transfer(address,uint256)", tuple types such as (address,uint256)[] kept whole."""
    compact = str(signature).replace(" ", "")
    if len(compact) > MAX_SIGNATURE_CHARS or _paren_depth(compact) > MAX_TYPE_DEPTH:
        raise InvalidInput(f"function signature {compact[:40]!r}... is too long or nests too deep")
    match = _SIGNATURE.match(compact)
    if not match:
        raise InvalidInput(f"{signature!r} is not a function signature like transfer(address,uint256)")
    return split_types(match[2])


def split_types(inner: str) -> list[str]:
    """Top-level comma split, keeping tuple types such as (address,uint256)[] whole."""
    types, depth, current = [], 0, ""
    for char in inner:
        if char == "," and depth == 0:
            types.append(current)
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    if current:
        types.append(current)
    return types


def parse_arguments(signature: str, values: Sequence[object], where: str = "", resolve: Resolve | None = None) -> list[Any]:
    """Every argument of `signature` parsed; the count must match. `where` prefixes errors (a batch item).

    `resolve` (e.g. `Treasury.resolve_address`) takes an address argument that is not 0x-hex: an
    address book or ENS name. Without it only 0x-hex addresses are addresses."""
    types = argument_types(signature)
    prefix = f"{where}: " if where else ""
    if len(types) != len(values):
        raise InvalidInput(f"{prefix}{signature} takes {len(types)} arguments, {len(values)} given")
    try:
        return [parse_argument(kind, value, resolve) for kind, value in zip(types, values, strict=True)]
    except InvalidInput as error:
        raise InvalidInput(f"{prefix}{error}") from None


def parse_argument(kind: str, value: object, resolve: Resolve | None = None) -> Any:
    """One argument: ints (decimal or 0x), bools, bytes as 0x-hex, addresses checked, arrays and tuples as JSON."""
    from eth_abi.grammar import parse as parse_type

    try:
        abi = parse_type(kind)
    except Exception:  # noqa: BLE001 - parsimonious raises several kinds; all mean "not an ABI type"
        raise InvalidInput(f"{kind!r} is not an ABI type") from None
    if isinstance(value, str) and (abi.is_array or _is_tuple(abi)):
        value = load_json(value, f"argument {_short(value)} for {kind}")
    return _convert(abi, value, resolve)


def _convert(abi: Any, value: object, resolve: Resolve | None = None) -> Any:
    kind = abi.to_type_str()
    if abi.is_array:
        if not isinstance(value, (list, tuple)):
            raise InvalidInput(f"argument {_short(value)} is not a valid {kind}: expected a JSON list")
        size = abi.arrlist[-1]
        if size and len(value) != size[0]:
            raise InvalidInput(f"argument {_short(value)} is not a valid {kind}: {len(value)} items, not {size[0]}")
        return [_convert(abi.item_type, item, resolve) for item in value]
    if _is_tuple(abi):
        if not isinstance(value, (list, tuple)) or len(value) != len(abi.components):
            raise InvalidInput(f"argument {_short(value)} is not a valid {kind}: expected a list of {len(abi.components)}")
        return tuple(_convert(component, item, resolve) for component, item in zip(abi.components, value, strict=True))
    return _basic(abi.base, kind, value, resolve)


def _basic(base: str, kind: str, value: object, resolve: Resolve | None = None) -> Any:
    if base == "address":
        if resolve is not None and isinstance(value, str) and not value.strip().lower().startswith("0x"):
            return resolve(value.strip(), "address argument")
        return parse_address(value, "address argument")
    if base in ("uint", "int"):
        return _integer(kind, value)
    if base == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        raise InvalidInput(f"argument {_short(value)} is not a valid bool (true or false)")
    if base == "bytes":
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, str) and _HEX.fullmatch(value):
            return bytes.fromhex(value.removeprefix("0x"))
        raise InvalidInput(f"argument {_short(value)} is not a valid {kind}: expected 0x-prefixed hex")
    if base == "string" and not isinstance(value, str):
        raise InvalidInput(f"argument {_short(value)} is not a valid string")
    return value


def _integer(kind: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        negative = kind.startswith("int") and text.startswith("-")
        digits = text[1:] if negative else text
        if _INTEGER.fullmatch(digits) and len(digits) <= 80:
            number = int(digits, 0) if digits[:2].lower() == "0x" else int(digits)
            return -number if negative else number
    raise InvalidInput(f"argument {_short(value)} is not a valid {kind}")


def _is_tuple(abi: Any) -> bool:
    return hasattr(abi, "components") and not abi.is_array


def _paren_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        depth += (char == "(") - (char == ")")
        deepest = max(deepest, depth)
    return deepest


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
