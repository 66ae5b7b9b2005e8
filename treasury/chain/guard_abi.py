"""TreasuryGuard's interface as data: the shipped artifact, its ABI and its custom errors.

This is the bottom of everything that talks about the guard. It reads a JSON file and touches no
chain, so the revert explainer (treasury.decode.revert), the executor (treasury.execution.send)
and the guard's operations (treasury.chain.guard) can all depend on it without depending on each
other. The artifact ships inside the package (treasury/data/TreasuryGuard.json) so a project
that only installs ape-treasury can deploy the guard; a test checks it is exactly what
`contracts/TreasuryGuard.sol` compiles to.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ethpm_types import ContractType

GUARD_ARTIFACT = Path(__file__).resolve().parent.parent / "data" / "TreasuryGuard.json"

# selector -> (error name, input names, input types)
GuardErrorTable = dict[bytes, tuple[str, list[str], list[str]]]


@cache
def guard_contract_type() -> ContractType:
    from ethpm_types import ContractType

    return ContractType.model_validate(json.loads(GUARD_ARTIFACT.read_text()))


def export_guard_artifact(build_manifest: Path = Path(".build/__local__.json")) -> Path:
    """Copy the freshly compiled TreasuryGuard into the package (after `ape compile`)."""
    contract = json.loads(build_manifest.read_text())["contractTypes"]["TreasuryGuard"]
    keep = ("contractName", "abi", "deploymentBytecode", "runtimeBytecode", "devdoc", "userdoc", "methodIdentifiers")
    GUARD_ARTIFACT.parent.mkdir(exist_ok=True)
    GUARD_ARTIFACT.write_text(json.dumps({k: contract[k] for k in keep if k in contract}, indent=1, sort_keys=True) + "\n")
    return GUARD_ARTIFACT


@cache
def guard_errors() -> GuardErrorTable:
    """Every custom error of the shipped guard, by selector."""
    from eth_utils import function_abi_to_4byte_selector

    errors = {}
    for item in json.loads(GUARD_ARTIFACT.read_text())["abi"]:
        if item["type"] == "error":
            selector = function_abi_to_4byte_selector(item)
            errors[selector] = (item["name"], [i["name"] for i in item["inputs"]], [i["type"] for i in item["inputs"]])
    return errors


def decode_guard_error(revert_data: str | bytes) -> tuple[str, str]:
    """(error name, words) for a guard revert, e.g. ('ExceedsBudget', 'ExceedsBudget(token=0x.., total=5, left=2)')."""
    from eth_abi import decode

    raw = bytes.fromhex(revert_data[2:]) if isinstance(revert_data, str) else bytes(revert_data)
    known = guard_errors().get(raw[:4])
    if known is None:
        # Not the guard's own error: the Safe's (e.g. GS026) or a plain revert.
        return "Reverted", f"reverted with data 0x{raw.hex()}" if raw else "reverted without data"
    name, names, types = known
    if len(raw) != 4 + 32 * len(types):  # every guard error has static fields; ape makes eth_abi pad short data
        return "Reverted", f"reverted with data 0x{raw.hex()}"
    values = decode(types, raw[4:])
    fields = ", ".join(f"{n}={_show(v)}" for n, v in zip(names, values, strict=True))
    return name, f"{name}({fields})"


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)
