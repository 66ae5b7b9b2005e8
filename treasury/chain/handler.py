"""TreasuryFallbackHandler: the Safe fallback handler that signs only what the guard approved.

Safe's CompatibilityFallbackHandler answers EIP-1271 `isValidSignature` with "yes" for any
message a threshold of owners signed. Owners (or whoever holds their keys) could then sign an
EIP-2612 permit, an EIP-3009 authorization, a Permit2 transfer or a DEX order "as the Safe" and
move its tokens without any Safe transaction, so without the guard's caps, allowlists or delay.
TreasuryFallbackHandler keeps what users need (token receiver hooks, `simulate`) and answers
"yes" only for messages the Safe's guard approved through its delay queue.

The handler is stateless and shared by every Safe of a chain. Its creation code ships in the
package (treasury/data/TreasuryFallbackHandler.json; a test checks it is what
contracts/TreasuryFallbackHandler.sol compiles to) and is deployed through the deterministic
deployment proxy with a zero salt, so it lives at the same address on every chain.

This module also tells what a Safe's current handler means for its signatures (`classify_handler`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from eth_utils import function_signature_to_4byte_selector

from treasury.addresses import ZERO_ADDRESS, parse_address, to_checksum
from treasury.chain.artifacts import DETERMINISTIC_DEPLOYMENT_PROXY, SUPPORTED_VERSIONS, ZERO_SALT, create2_address
from treasury.chain.toolchain import node_modules

if TYPE_CHECKING:
    from ape.api import ProviderAPI
    from ethpm_types import ContractType

HANDLER_ARTIFACT = Path(__file__).resolve().parent.parent / "data" / "TreasuryFallbackHandler.json"
HANDLER_NAME = "TreasuryFallbackHandler"
# How deploy_infrastructure reports the handler (treasury.chain.infrastructure.deploy_handler): one contract
# for every Safe version.
HANDLER_VERSION = "all"
HANDLER_ROLE = "treasury_fallback_handler"
# keccak256("fallback_manager.handler.address"), identical in Safe 1.3.0, 1.4.1 and 1.5.0
FALLBACK_HANDLER_STORAGE_SLOT = 0x6C9A6C4A39284E37ED1CF53D337577D14212A4870FB976A4366C693B939918D5
SET_FALLBACK_HANDLER = function_signature_to_4byte_selector("setFallbackHandler(address)")

HandlerKind = Literal["treasury", "compatibility", "token-callbacks", "unknown", "none"]

# What each kind means for the Safe's EIP-1271 signatures; None: nothing to warn about.
HANDLER_WARNINGS: dict[HandlerKind, str | None] = {
    "treasury": None,
    "compatibility": (
        "signs any message its owners sign: a threshold of owners can sign token permits or orders as the Safe "
        "and move funds without a Safe transaction (no cap, no allowlist, no delay)"
    ),
    "token-callbacks": None,
    "unknown": "unknown fallback handler: it may sign arbitrary messages as the Safe, outside the guard's checks",
    "none": None,
}

# safe-deployments assets of Safe's handlers, per version: those that validate owner signatures for any
# message (the compatibility handler; the extensible one falls back to owner signatures for every domain
# without a verifier) and those that only receive tokens.
_SIGNING_ASSETS = {
    "1.3.0": ("compatibility_fallback_handler",),
    "1.4.1": ("compatibility_fallback_handler",),
    "1.5.0": ("compatibility_fallback_handler", "extensible_fallback_handler"),
}
_CALLBACK_ASSETS = {"1.5.0": ("token_callback_handler",)}


@cache
def handler_artifact() -> dict:
    return json.loads(HANDLER_ARTIFACT.read_text())


@cache
def handler_contract_type() -> ContractType:
    from ethpm_types import ContractType

    return ContractType.model_validate(handler_artifact())


def handler_creation_code() -> bytes:
    return bytes.fromhex(handler_artifact()["deploymentBytecode"]["bytecode"][2:])


def handler_runtime_code() -> bytes:
    return bytes.fromhex(handler_artifact()["runtimeBytecode"]["bytecode"][2:])


@cache
def handler_address() -> str:
    """Where the shipped handler lives on every chain: CREATE2 through the deterministic deployment proxy."""
    return create2_address(DETERMINISTIC_DEPLOYMENT_PROXY, ZERO_SALT, handler_creation_code())


def export_handler_artifact(build_manifest: Path = Path(".build/__local__.json")) -> Path:
    """Copy the freshly compiled TreasuryFallbackHandler into the package (after `ape compile`).

    Changing the artifact moves the handler's address: Safes created before keep the old handler.
    """
    contract = json.loads(build_manifest.read_text())["contractTypes"][HANDLER_NAME]
    keep = ("contractName", "abi", "deploymentBytecode", "runtimeBytecode", "devdoc", "userdoc", "methodIdentifiers")
    HANDLER_ARTIFACT.parent.mkdir(exist_ok=True)
    HANDLER_ARTIFACT.write_text(json.dumps({k: contract[k] for k in keep if k in contract}, indent=1, sort_keys=True) + "\n")
    handler_artifact.cache_clear()
    handler_contract_type.cache_clear()
    handler_address.cache_clear()
    return HANDLER_ARTIFACT


# --- what a Safe's handler means ------------------------------------------------------------------


def _deployments(version: str, asset: str) -> set[str]:
    path = node_modules() / "@safe-global" / "safe-deployments" / "dist" / "assets" / f"v{version}" / f"{asset}.json"
    if not path.exists():
        return set()
    deployments = json.loads(path.read_text())["deployments"]
    return {to_checksum(d["address"]) for d in deployments.values()}


@cache
def known_handlers() -> dict[str, tuple[HandlerKind, str]]:
    """Safe's published handlers (every deployment type: canonical, eip155, zksync) -> (kind, name)."""
    known: dict[str, tuple[HandlerKind, str]] = {}
    for version in SUPPORTED_VERSIONS:
        for asset in _SIGNING_ASSETS.get(version, ()):
            for address in _deployments(version, asset):
                known[address] = ("compatibility", f"Safe {version} {asset.replace('_', ' ')}")
        for asset in _CALLBACK_ASSETS.get(version, ()):
            for address in _deployments(version, asset):
                known[address] = ("token-callbacks", f"Safe {version} {asset.replace('_', ' ')}")
    return known


@dataclass(frozen=True)
class HandlerInfo:
    """A Safe's fallback handler and what it means for signatures made "as the Safe"."""

    address: str
    kind: HandlerKind
    name: str

    @property
    def warning(self) -> str | None:
        """Why this handler undermines the guard, or None."""
        return HANDLER_WARNINGS[self.kind]

    @property
    def is_ours(self) -> bool:
        return self.kind == "treasury"

    def as_dict(self) -> dict:
        return {"address": self.address, "kind": self.kind, "name": self.name, "warning": self.warning}


def classify_handler(address: str) -> HandlerInfo:
    """Classify a fallback handler address (no chain needed).

    ours ("treasury"); one of Safe's handlers that sign any message the owners sign ("compatibility");
    Safe's token callback handler, which signs nothing ("token-callbacks"); none; anything else
    "unknown", since its code may answer isValidSignature however it likes.
    """
    address = parse_address(address, "fallback handler")
    if address == ZERO_ADDRESS:
        return HandlerInfo(address, "none", "no fallback handler")
    if address == handler_address():
        return HandlerInfo(address, "treasury", HANDLER_NAME)
    kind, name = known_handlers().get(address, ("unknown", "unknown contract"))
    return HandlerInfo(address, kind, name)


def read_address_slot(safe: str, slot: int, provider: ProviderAPI | None = None) -> str:
    """The address a Safe keeps in storage `slot` (guard, module guard, fallback handler)."""
    if provider is None:
        from ape import chain

        provider = chain.provider
    word = bytes(provider.get_storage(parse_address(safe, "Safe"), slot))
    return to_checksum(word[-20:])


def installed_handler(safe: str, provider: ProviderAPI | None = None) -> str:
    """The Safe's fallback handler now (the zero address if none), read from its storage."""
    return read_address_slot(safe, FALLBACK_HANDLER_STORAGE_SLOT, provider)


class _SafeState(Protocol):
    """What safety_warnings reads (treasury.treasury.TreasuryStatus has it)."""

    @property
    def version(self) -> str: ...
    @property
    def installed_guard(self) -> str: ...
    @property
    def modules(self) -> tuple[str, ...]: ...
    @property
    def fallback_handler(self) -> Any: ...  # HandlerInfo | None
    @property
    def module_guard(self) -> str | None: ...


def handler_warning(handler: HandlerInfo, guarded: bool) -> str | None:
    """The warning for a guarded Safe whose handler may sign what the guard never saw; None otherwise.

    An unguarded Safe is warned about nothing here: its owners can move everything anyway.
    """
    if not guarded or handler.warning is None:
        return None
    return f"fallback handler {handler.address} ({handler.name}) {handler.warning}"


def module_warnings(version: str, modules: tuple[str, ...], guard: str, module_guard: str | None) -> list[str]:
    """One warning per enabled module that can act without the guard's checks.

    Safe 1.3.0 and 1.4.1 never show module transactions to a guard; 1.5.0 shows them to its module
    guard, so they are checked only while the TreasuryGuard is the module guard too.
    """
    warnings = []
    for module in modules:
        if version in ("1.3.0", "1.4.1"):
            warnings.append(f"module {module} can execute any transaction from the Safe: Safe {version} does not show "
                            "module transactions to the guard")
        elif guard == ZERO_ADDRESS or module_guard != guard:
            warnings.append(f"module {module} can execute any transaction from the Safe: its module guard is "
                            f"{module_guard or ZERO_ADDRESS}, not the Safe's TreasuryGuard")
    return warnings


def safety_warnings(status: _SafeState) -> list[str]:
    """What lets owners or modules act past the guard: the handler, then the modules."""
    guarded = status.installed_guard != ZERO_ADDRESS
    found = []
    if status.fallback_handler is not None:
        warning = handler_warning(status.fallback_handler, guarded)
        if warning:
            found.append(warning)
    found += module_warnings(status.version, tuple(status.modules), status.installed_guard, status.module_guard)
    return found


def set_fallback_handler_data(handler: str | None = None) -> bytes:
    """Calldata of the Safe's own setFallbackHandler(handler) (ours by default)."""
    address = parse_address(handler or handler_address(), "fallback handler")
    return SET_FALLBACK_HANDLER + bytes(12) + bytes.fromhex(address[2:])
