"""The per-chain deployment manifest: what was deployed where, so nobody has to remember.

One JSON file per chain id. A local chain restarts with a new genesis block, so the manifest
records the genesis hash and starts afresh when it no longer matches the chain it describes.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ape.api import ProviderAPI

    from treasury.chain.infrastructure import ContractStatus
    from treasury.chain.safe import CreatedSafe

MANIFEST_FORMAT = 1


def manifest_path(directory: Path, chain_id: int) -> Path:
    return Path(directory) / f"{chain_id}.json"


def _genesis_hash(provider: ProviderAPI) -> str:
    return provider.web3.eth.get_block(0)["hash"].to_0x_hex()


def load_manifest(directory: Path, provider: ProviderAPI) -> dict:
    """The chain's manifest, or a fresh one if none exists or it describes another genesis."""
    path = manifest_path(directory, provider.chain_id)
    genesis = _genesis_hash(provider)
    if path.exists():
        manifest = json.loads(path.read_text())
        if manifest.get("genesis_hash") == genesis:
            return manifest
    return {"format": MANIFEST_FORMAT, "chain_id": provider.chain_id, "genesis_hash": genesis, "infrastructure": {}, "safes": {}}


def save_manifest(directory: Path, manifest: dict) -> Path:
    """Write atomically: a crash mid-write leaves the previous manifest intact."""
    path = manifest_path(directory, manifest["chain_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        json.dump(manifest, out, indent=2, sort_keys=True)
        out.write("\n")
    os.replace(temporary, path)
    return path


def record_infrastructure(directory: Path, provider: ProviderAPI, statuses: Iterable[ContractStatus]) -> Path:
    manifest = load_manifest(directory, provider)
    for status in statuses:
        if status.action == "skipped":
            continue
        entry = {k: v for k, v in status.as_dict().items() if k not in ("version", "role", "action")}
        manifest["infrastructure"].setdefault(status.version, {})[status.role] = entry
    return save_manifest(directory, manifest)


def record_safe(directory: Path, provider: ProviderAPI, safe: CreatedSafe) -> Path:
    manifest = load_manifest(directory, provider)
    entry = {k: v for k, v in safe.as_dict().items() if k not in ("address", "action")}
    entry["code_hash"] = "0x" + bytes(provider.web3.keccak(bytes(provider.get_code(safe.address)))).hex()
    previous = manifest["safes"].get(safe.address, {})
    entry["transaction"] = entry["transaction"] or previous.get("transaction")
    manifest["safes"][safe.address] = entry
    return save_manifest(directory, manifest)
