"""The Safe team's published build artifacts and canonical deployments, read from node_modules.

Creation code comes from the npm packages pinned in package.json (@gnosis.pm/safe-contracts 1.3.0,
@safe-global/safe-contracts 1.4.1, @safe-global/safe-smart-account 1.5.0); the canonical address
and runtime code hash of each contract come from @safe-global/safe-deployments. Keeping the two
sources apart is what lets us *check* every deployment instead of trusting either one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from treasury.addresses import keccak, to_checksum
from treasury.chain.toolchain import node_modules
from treasury.errors import InvalidInput

# The factories that make deployments land at the same address on every chain.
DETERMINISTIC_DEPLOYMENT_PROXY = "0x4e59b44847b379578588920cA78FbF26c0B4956C"
SAFE_SINGLETON_FACTORY = "0x914d7Fec6aaC8cd542e72Bca78B30650d45643d7"
ZERO_SALT = b"\x00" * 32

SUPPORTED_VERSIONS = ("1.3.0", "1.4.1", "1.5.0")
DEFAULT_VERSION = "1.4.1"

# Roles this project needs, mapped per version to (safe-deployments asset, artifact contract name).
ROLES = (
    "safe",
    "safe_l2",
    "proxy_factory",
    "compatibility_fallback_handler",
    "multi_send",
    "multi_send_call_only",
    "sign_message_lib",
    "create_call",
    "simulate_tx_accessor",
)

_LAYOUT: dict[str, tuple[str, str, dict[str, tuple[str, str]]]] = {
    "1.3.0": (
        "@gnosis.pm/safe-contracts",
        DETERMINISTIC_DEPLOYMENT_PROXY,
        {
            "safe": ("gnosis_safe", "GnosisSafe"),
            "safe_l2": ("gnosis_safe_l2", "GnosisSafeL2"),
            "proxy_factory": ("proxy_factory", "GnosisSafeProxyFactory"),
            "compatibility_fallback_handler": ("compatibility_fallback_handler", "CompatibilityFallbackHandler"),
            "multi_send": ("multi_send", "MultiSend"),
            "multi_send_call_only": ("multi_send_call_only", "MultiSendCallOnly"),
            "sign_message_lib": ("sign_message_lib", "SignMessageLib"),
            "create_call": ("create_call", "CreateCall"),
            "simulate_tx_accessor": ("simulate_tx_accessor", "SimulateTxAccessor"),
        },
    ),
    "1.4.1": (
        "@safe-global/safe-contracts",
        SAFE_SINGLETON_FACTORY,
        {
            "safe": ("safe", "Safe"),
            "safe_l2": ("safe_l2", "SafeL2"),
            "proxy_factory": ("safe_proxy_factory", "SafeProxyFactory"),
            "compatibility_fallback_handler": ("compatibility_fallback_handler", "CompatibilityFallbackHandler"),
            "multi_send": ("multi_send", "MultiSend"),
            "multi_send_call_only": ("multi_send_call_only", "MultiSendCallOnly"),
            "sign_message_lib": ("sign_message_lib", "SignMessageLib"),
            "create_call": ("create_call", "CreateCall"),
            "simulate_tx_accessor": ("simulate_tx_accessor", "SimulateTxAccessor"),
        },
    ),
}
_LAYOUT["1.5.0"] = ("@safe-global/safe-smart-account", SAFE_SINGLETON_FACTORY, _LAYOUT["1.4.1"][2])


@dataclass(frozen=True)
class SafeContract:
    """One Safe contract of one version: where it must live and how to put it there."""

    version: str
    role: str
    name: str
    abi: list
    creation_code: bytes
    deployer: str
    canonical_address: str
    canonical_code_hash: str

    @property
    def create2_address(self) -> str:
        """Where the published creation code lands through this version's factory, salt zero."""
        return create2_address(self.deployer, ZERO_SALT, self.creation_code)

    @property
    def lands_canonically(self) -> bool:
        """False when the npm build does not reproduce the canonical deployment (1.3.0 SignMessageLib)."""
        return self.create2_address == self.canonical_address


def create2_address(deployer: str, salt: bytes, init_code: bytes) -> str:
    digest = keccak(b"\xff" + bytes.fromhex(deployer[2:]) + salt + keccak(init_code))
    return to_checksum(digest[12:])


def check_version(version: str) -> str:
    if version not in SUPPORTED_VERSIONS:
        raise InvalidInput(
            f"unknown Safe version {version!r}: supported are {', '.join(SUPPORTED_VERSIONS)}"
        )
    return version


@cache
def _artifacts_by_name(package: str) -> dict[str, dict]:
    root = node_modules() / package / "build" / "artifacts" / "contracts"
    found: dict[str, dict] = {}
    for path in root.rglob("*.json"):
        if path.name.endswith(".dbg.json") or "/test/" in path.as_posix():
            continue
        artifact = json.loads(path.read_text())
        found[artifact["contractName"]] = artifact
    return found


def _canonical_deployment(version: str, asset: str) -> dict:
    path = node_modules() / "@safe-global" / "safe-deployments" / "dist" / "assets" / f"v{version}" / f"{asset}.json"
    return json.loads(Path(path).read_text())["deployments"]["canonical"]


@cache
def canonical_address(version: str, role: str) -> str:
    """The canonical address of a Safe contract, from safe-deployments alone.

    Cheaper than `safe_contract` (one small JSON, no build artifacts), for readers that only need
    to recognise a contract, such as the decoder asking whether a batch goes through MultiSendCallOnly.
    """
    asset, _name = _LAYOUT[check_version(version)][2][role]
    return to_checksum(_canonical_deployment(version, asset)["address"])


@cache
def safe_contract(version: str, role: str) -> SafeContract:
    package, deployer, roles = _LAYOUT[check_version(version)]
    asset, name = roles[role]
    artifact = _artifacts_by_name(package)[name]
    canonical = _canonical_deployment(version, asset)
    return SafeContract(
        version=version,
        role=role,
        name=name,
        abi=artifact["abi"],
        creation_code=bytes.fromhex(artifact["bytecode"][2:]),
        deployer=deployer,
        canonical_address=to_checksum(canonical["address"]),
        canonical_code_hash=canonical["codeHash"].lower(),
    )


def safe_contracts(version: str) -> list[SafeContract]:
    return [safe_contract(version, role) for role in ROLES]


def proxy_creation_code(version: str) -> bytes:
    """Creation code of the SafeProxy that this version's factory deploys."""
    package = _LAYOUT[check_version(version)][0]
    name = "GnosisSafeProxy" if version == "1.3.0" else "SafeProxy"
    return bytes.fromhex(_artifacts_by_name(package)[name]["bytecode"][2:])


def singleton_factory_deployment(chain_id: int) -> dict | None:
    """The Safe team's presigned deployment of the singleton factory for this chain, if any."""
    path = node_modules() / "@safe-global" / "safe-singleton-factory" / "artifacts" / str(chain_id) / "deployment.json"
    return json.loads(path.read_text()) if path.exists() else None


def contract_type(contract: SafeContract | str, version: str | None = None):
    """An ape ContractType for a Safe contract (by object, or by role and version)."""
    from ethpm_types import ContractType

    if isinstance(contract, str):
        contract = safe_contract(version or DEFAULT_VERSION, contract)
    return ContractType.model_validate({"contractName": contract.name, "abi": contract.abi})
