"""Safe{Wallet}'s Transaction Builder batch files: read them as calls, write proposals as them.

    {"version": "1.0", "chainId": "1", "createdAt": 1703107040104,
     "meta": {"name": "...", "description": "...", "txBuilderVersion": "...",
              "createdFromSafeAddress": "0x...", "createdFromOwnerAddress": "", "checksum": "0x..."},
     "transactions": [{"to": "0x...", "value": "0", "data": "0x..."},
                      {"to": "0x...", "value": "0", "data": null,
                       "contractMethod": {"name": "transfer", "payable": false,
                                          "inputs": [{"name": "to", "type": "address"}, ...]},
                       "contractInputsValues": {"to": "0x...", "value": "29000000000"}}]}

This is the file the Transaction Builder app of Safe{Wallet} exports and imports (ape-safe#15 asks
for it), so a batch can move between this tool and the Safe web interface in either direction.

The checksum (meta.checksum) is what Safe{Wallet} writes to notice a file edited after it was
made: keccak-256 of a canonical serialisation of the whole file, in which every object is its
sorted key list (as JSON) followed by each value and a comma, arrays are their elements joined by
commas, every other value is its JSON text, meta.checksum itself is left out and meta.name is null
(a batch may be renamed without breaking it). It is verified when present: it catches an edited
file, not a forged one (anyone can recompute it), so what the calls do is still shown and judged
by the policy before anyone signs.

A transaction gives its calldata as `data`, or as `contractMethod` + `contractInputsValues` which
are encoded here with the project's own ABI-argument parser; when a file gives both they must
agree (a method shown to a signer that is not the calldata they sign is refused, never preferred).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from treasury.addresses import keccak, parse_address
from treasury.errors import InvalidInput

FORMAT_VERSION = "1.0"
# The Transaction Builder release whose file layout this module writes (Safe{Wallet} reads it).
TX_BUILDER_VERSION = "1.16.3"
MAX_NAME_CHARS = 200
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BASIC_TYPE = re.compile(r"^[a-z]+[0-9]*(\[[0-9]*\])*$")
_HEX_DATA = re.compile(r"^0x(?:[0-9a-fA-F]{2})*$")
_DECIMAL = re.compile(r"^[0-9]{1,78}$")


@dataclass(frozen=True)
class BuilderCall:
    """One transaction of the file: a plain call. `method` is the signature the file named, if any."""

    to: str
    value: int
    data: bytes
    method: str | None = None


@dataclass(frozen=True)
class BuilderFile:
    """A Transaction Builder file, read and checked (its checksum, if it has one, verified)."""

    chain_id: int
    name: str
    description: str
    safe: str | None
    calls: tuple[BuilderCall, ...]
    checksummed: bool


def looks_like_tx_builder(data: object) -> bool:
    """Whether parsed JSON has the Transaction Builder's shape (a mapping with transactions and chainId/meta)."""
    return isinstance(data, Mapping) and "transactions" in data and ("chainId" in data or "meta" in data)


def checksum(data: Mapping[str, Any]) -> str:
    """The Transaction Builder checksum of a batch file (its own meta.checksum ignored), 0x-hex."""
    meta = {key: value for key, value in dict(data.get("meta") or {}).items() if key != "checksum"}
    body = {**data, "meta": {**meta, "name": None}}
    return "0x" + keccak(_serialise(body).encode("utf-8", "surrogatepass")).hex()


def _serialise(value: Any) -> str:
    """The canonical text the checksum hashes (see the module docstring)."""
    if isinstance(value, list):
        return "[" + ",".join(_serialise(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value)
        return "{" + json.dumps(keys, separators=(",", ":"), ensure_ascii=False) + "".join(_serialise(value[k]) + "," for k in keys) + "}"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))  # JavaScript prints 1.0 as 1
    return json.dumps(value, ensure_ascii=False)


def read_tx_builder(data: Mapping[str, Any], where: str, max_calls: int) -> BuilderFile:
    """The file's calls and metadata, or InvalidInput "{where}: ..." for the first problem found."""
    version = data.get("version")
    if not isinstance(version, str) or not version.startswith("1."):
        raise InvalidInput(f"{where}: Transaction Builder file version {version!r} is not supported (expected {FORMAT_VERSION})")
    meta = data.get("meta")
    if not isinstance(meta, Mapping):
        raise InvalidInput(f"{where}: meta must be a mapping")
    claimed = meta.get("checksum")
    if claimed not in (None, "") and (not isinstance(claimed, str) or claimed.lower() != checksum(data)):
        raise InvalidInput(f"{where}: its checksum does not match its contents (the file was changed after it was written)")
    transactions = data.get("transactions")
    if not isinstance(transactions, list) or not transactions:
        raise InvalidInput(f"{where}: transactions must be a non-empty list")
    if len(transactions) > max_calls:
        raise InvalidInput(f"{where}: {len(transactions)} transactions; at most {max_calls} fit one reviewable transaction")
    calls = tuple(_call(tx, f"{where}: transaction {number}") for number, tx in enumerate(transactions, 1))
    safe = meta.get("createdFromSafeAddress")
    return BuilderFile(
        chain_id=_chain_id(data.get("chainId"), where), name=_text(meta.get("name"), "meta.name", where),
        description=_text(meta.get("description"), "meta.description", where),
        safe=parse_address(safe, f"{where}: meta.createdFromSafeAddress") if safe else None,
        calls=calls, checksummed=bool(claimed),
    )


def _chain_id(value: object, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and _DECIMAL.fullmatch(value) and int(value) > 0:
        return int(value)
    raise InvalidInput(f"{where}: chainId {value!r} is not a chain id")


def _text(value: object, key: str, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: {key} must be a string")
    return value.strip()[:MAX_NAME_CHARS]


def _call(tx: object, where: str) -> BuilderCall:
    """One transaction: to, value in wei, and calldata from `data` and/or `contractMethod`."""
    if not isinstance(tx, Mapping):
        raise InvalidInput(f"{where} is not a mapping")
    if tx.get("operation") not in (None, 0, "0"):
        raise InvalidInput(f"{where}: operation {tx.get('operation')!r}: only plain calls can be batched (no delegatecall)")
    to = parse_address(tx.get("to"), f"{where}: to")
    value = _wei(tx.get("value", "0"), where)
    data = _data(tx.get("data"), where)
    method = None
    if tx.get("contractMethod") is not None:
        method, encoded = _method(tx["contractMethod"], tx.get("contractInputsValues"), where)
        if data and data != encoded:
            raise InvalidInput(f"{where}: its data is not the encoding of {method} with its contractInputsValues")
        data = encoded
    return BuilderCall(to, value, data or b"", method)


def _wei(value: object, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**256:
        return value
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()) and int(value) < 2**256:
        return int(value)
    raise InvalidInput(f"{where}: value {value!r} is not an amount of wei (a decimal string such as \"0\")")


def _data(value: object, where: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _HEX_DATA.fullmatch(value):
        raise InvalidInput(f"{where}: data must be 0x-prefixed hex bytes or null")
    return bytes.fromhex(value[2:])


def _method(method: object, values: object, where: str) -> tuple[str, bytes]:
    """(signature, calldata) of contractMethod with contractInputsValues, through the project's encoder."""
    from treasury.proposal.build import encode_call

    if not isinstance(method, Mapping) or not isinstance(method.get("name"), str) or not _IDENTIFIER.fullmatch(method["name"]):
        raise InvalidInput(f"{where}: contractMethod must name a function")
    inputs = method.get("inputs") or []
    if not isinstance(inputs, list) or not all(isinstance(i, Mapping) for i in inputs):
        raise InvalidInput(f"{where}: contractMethod.inputs must be a list of mappings")
    if not isinstance(values, Mapping) and inputs:
        raise InvalidInput(f"{where}: contractInputsValues must map each input's name to its value")
    signature = f"{method['name']}({','.join(_abi_type(i, where) for i in inputs)})"
    args = []
    for number, item in enumerate(inputs, 1):
        key = item.get("name") or ""
        if key not in values:  # type: ignore[operator]
            raise InvalidInput(f"{where}: contractInputsValues has no value for input {key or number} of {signature}")
        args.append(values[key])  # type: ignore[index]
    try:
        return signature, encode_call(signature, args)
    except InvalidInput as error:
        raise InvalidInput(f"{where}: {error}") from None


def _abi_type(item: Mapping[str, Any], where: str) -> str:
    """The canonical ABI type of an input: a tuple's components written out, as in a signature."""
    kind = item.get("type")
    if not isinstance(kind, str):
        raise InvalidInput(f"{where}: an input of contractMethod has no type")
    if kind.startswith("tuple"):
        components = item.get("components")
        if not isinstance(components, list) or not all(isinstance(c, Mapping) for c in components):
            raise InvalidInput(f"{where}: tuple input {item.get('name')!r} has no components")
        suffix = kind[len("tuple"):]
        if not re.fullmatch(r"(\[[0-9]*\])*", suffix):
            raise InvalidInput(f"{where}: {kind!r} is not an ABI type")
        return "(" + ",".join(_abi_type(c, where) for c in components) + ")" + suffix
    if not _BASIC_TYPE.fullmatch(kind):
        raise InvalidInput(f"{where}: {kind!r} is not an ABI type")
    return kind


# --- writing -----------------------------------------------------------------------------------


def tx_builder_file(calls: Sequence[Any], *, chain_id: int, safe: str, name: str, description: str,
                    created_at: datetime) -> dict[str, Any]:
    """A Transaction Builder file of `calls` (anything with to, value, data), checksummed as Safe{Wallet} does.

    Each call is written as raw `data` (contractMethod null): the bytes are exactly what was
    proposed here, and Safe{Wallet} decodes them itself for its own display.
    """
    body: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "chainId": str(chain_id),
        "createdAt": int((created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)).timestamp() * 1000),
        "meta": {
            "name": name[:MAX_NAME_CHARS], "description": description, "txBuilderVersion": TX_BUILDER_VERSION,
            "createdFromSafeAddress": parse_address(safe, "Safe"), "createdFromOwnerAddress": "",
        },
        "transactions": [
            {"to": parse_address(call.to, "call target"), "value": str(call.value), "data": "0x" + bytes(call.data).hex(),
             "contractMethod": None, "contractInputsValues": None}
            for call in calls
        ],
    }
    body["meta"]["checksum"] = checksum(body)
    return body


def proposal_calls(record: Any) -> list[Any]:
    """The plain calls a stored proposal makes: itself if a call, its entries if a MultiSendCallOnly batch.

    Anything else (a delegatecall elsewhere) has no Transaction Builder form: refused in one line.
    """
    from treasury.proposal.multisend import Call, decode_batch, is_multisend_call_only
    from treasury.types import CALL

    if record.operation == CALL:
        return [Call(record.to, record.value, bytes(record.data))]
    if not is_multisend_call_only(record.to) or record.value:
        raise InvalidInput(f"proposal {record.id} delegatecalls {record.to}: a Transaction Builder file holds plain calls only")
    return [Call(entry.to, entry.value, entry.data) for entry in decode_batch(bytes(record.data), call_only=True)]


def proposal_file(record: Any) -> dict[str, Any]:
    """The Transaction Builder file of a stored proposal (its nonce and signatures are not part of the format)."""
    return tx_builder_file(proposal_calls(record), chain_id=record.chain_id, safe=record.safe, name=record.title,
                           description=record.description, created_at=record.created_at)


def tx_builder_text(data: Mapping[str, Any]) -> str:
    """The file's text: indented JSON, UTF-8 as written (the checksum is over the values, not the layout)."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_tx_builder(data: Mapping[str, Any], path: str | Path) -> None:
    """Write a Transaction Builder file; a path that cannot be written is one line."""
    try:
        Path(path).write_text(tx_builder_text(data), encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot write {path}: {error.strerror or error}") from None
