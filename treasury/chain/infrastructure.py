"""Put the Safe contracts at their canonical addresses on a chain where they are missing (and the
toolkit's TreasuryFallbackHandler at its deterministic address).

Every contract is deployed from the Safe team's published creation code through the same factory
the Safe team used, so it lands at the canonical address with the canonical runtime code; both are
checked against safe-deployments after the fact. Running it twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from eth_utils import keccak

from treasury.chain.artifacts import (
    DETERMINISTIC_DEPLOYMENT_PROXY,
    SAFE_SINGLETON_FACTORY,
    SUPPORTED_VERSIONS,
    ZERO_SALT,
    SafeContract,
    check_version,
    safe_contracts,
    singleton_factory_deployment,
)
from treasury.errors import DeploymentError

if TYPE_CHECKING:
    from ape.api import AccountAPI, ProviderAPI


@dataclass(frozen=True)
class ContractStatus:
    """What deploy_infrastructure found or did for one contract."""

    version: str
    role: str
    name: str
    address: str
    code_hash: str
    canonical: bool
    action: str  # "present", "deployed" or "skipped"
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def code_hash(provider: ProviderAPI, address: str) -> str | None:
    """keccak256 of the runtime code at `address`, or None where there is no code."""
    code = bytes(provider.get_code(address))
    return "0x" + keccak(code).hex() if code else None


def is_dev_chain(provider: ProviderAPI) -> bool:
    """True for a local chain or a local fork, where rewriting state cannot cost anyone money."""
    return bool(provider.network.is_dev)


def ensure_factory(provider: ProviderAPI, deployer: AccountAPI, factory: str) -> str:
    """Make sure a CREATE2 factory exists; returns "present" or how it was brought in."""
    if code_hash(provider, factory):
        return "present"
    if factory == SAFE_SINGLETON_FACTORY:
        presigned = singleton_factory_deployment(provider.chain_id)
        if presigned:
            _send_presigned_factory_deployment(provider, deployer, presigned)
            return "deployed from the Safe team's presigned transaction"
        if is_dev_chain(provider) and code_hash(provider, DETERMINISTIC_DEPLOYMENT_PROXY):
            # Same runtime code as the deterministic deployment proxy; only on a local chain.
            provider.set_code(factory, provider.get_code(DETERMINISTIC_DEPLOYMENT_PROXY))
            return "copied onto the local chain"
    raise DeploymentError(
        f"CREATE2 factory {factory} is missing on chain {provider.chain_id} and no canonical way to "
        "deploy it is known here"
    )


def _send_presigned_factory_deployment(provider: ProviderAPI, deployer: AccountAPI, presigned: dict) -> None:
    cost = int(presigned["gasPrice"]) * int(presigned["gasLimit"])
    signer = presigned["signerAddress"]
    shortfall = cost - provider.get_balance(signer)
    if shortfall > 0:
        deployer.transfer(signer, shortfall)
    tx_hash = provider.web3.eth.send_raw_transaction(bytes.fromhex(presigned["transaction"][2:]))
    provider.web3.eth.wait_for_transaction_receipt(tx_hash)
    if not code_hash(provider, presigned["address"]):
        raise DeploymentError(f"the presigned singleton factory deployment did not create {presigned['address']}")


def deploy_contract(
    provider: ProviderAPI, deployer: AccountAPI, contract: SafeContract, allow_noncanonical: bool
) -> ContractStatus:
    """Deploy one Safe contract through its factory unless it is already there, then verify it."""
    canonical = contract.lands_canonically
    address = contract.canonical_address if canonical else contract.create2_address

    def status(code_hash: str, action: str, note: str) -> ContractStatus:
        return ContractStatus(version=contract.version, role=contract.role, name=contract.name, address=address,
                              canonical=canonical, code_hash=code_hash, action=action, note=note)

    if not canonical and not (allow_noncanonical or is_dev_chain(provider)):
        note = (
            f"the published build does not reproduce the canonical {contract.name} "
            f"{contract.canonical_address}; pass allow_noncanonical to deploy it at {address}"
        )
        return status(code_hash=code_hash(provider, contract.canonical_address) or "", action="skipped", note=note)

    found = code_hash(provider, address)
    action = "present"
    if found is None:
        deployer.transfer(contract.deployer, 0, data=ZERO_SALT + contract.creation_code)
        found = code_hash(provider, address)
        action = "deployed"
        if found is None:
            raise DeploymentError(f"{contract.name} {contract.version} did not land at {address}")

    if canonical and found != contract.canonical_code_hash:
        raise DeploymentError(
            f"{contract.name} {contract.version} at {address} has code hash {found}, "
            f"expected the canonical {contract.canonical_code_hash}"
        )
    note = "" if canonical else f"non-canonical copy: the canonical address is {contract.canonical_address}"
    return status(code_hash=found, action=action, note=note)


def deploy_infrastructure(
    deployer: AccountAPI,
    versions: Iterable[str] = SUPPORTED_VERSIONS,
    allow_noncanonical: bool = False,
    provider: ProviderAPI | None = None,
    fallback_handler: bool = True,
) -> list[ContractStatus]:
    """Deploy the Safe singletons, factory and libraries of each version where they are missing.

    A contract whose published creation code cannot reach its canonical address is deployed at its
    own CREATE2 address only on a local chain or with `allow_noncanonical`, and marked as such.
    With `fallback_handler` (the default) the toolkit's TreasuryFallbackHandler is deployed too,
    last, at its one address on every chain (treasury.chain.handler): every Safe the toolkit
    creates or guards gets it instead of Safe's handler that signs any message the owners sign.
    """
    if provider is None:
        from ape import chain

        provider = chain.provider
    versions = [check_version(v) for v in versions]
    contracts = [c for v in versions for c in safe_contracts(v)]
    for factory in sorted({c.deployer for c in contracts}):
        ensure_factory(provider, deployer, factory)
    statuses = [deploy_contract(provider, deployer, c, allow_noncanonical) for c in contracts]
    if fallback_handler:
        statuses.append(deploy_handler(provider, deployer))
    return statuses


def deploy_handler(provider: ProviderAPI, deployer: AccountAPI) -> ContractStatus:
    """Deploy the handler at its deterministic address unless it is there, then check its code.

    Only through the deterministic deployment proxy (present in anvil's genesis and on most live
    chains): where the proxy is missing, the handler could not have its one address, so we refuse.
    """
    from treasury.chain.handler import (
        HANDLER_NAME,
        HANDLER_ROLE,
        HANDLER_VERSION,
        handler_address,
        handler_creation_code,
        handler_runtime_code,
    )

    address = handler_address()
    expected = "0x" + keccak(handler_runtime_code()).hex()
    found = code_hash(provider, address)
    action = "present"
    if found is None:
        if code_hash(provider, DETERMINISTIC_DEPLOYMENT_PROXY) is None:
            raise DeploymentError(
                f"the deterministic deployment proxy {DETERMINISTIC_DEPLOYMENT_PROXY} is missing on chain "
                f"{provider.chain_id}: {HANDLER_NAME} cannot be deployed at {address}"
            )
        deployer.transfer(DETERMINISTIC_DEPLOYMENT_PROXY, 0, data=ZERO_SALT + handler_creation_code())
        found = code_hash(provider, address)
        action = "deployed"
        if found is None:
            raise DeploymentError(f"{HANDLER_NAME} did not land at {address}")
    if found != expected:
        raise DeploymentError(f"{HANDLER_NAME} at {address} has code hash {found}, expected {expected}")
    return ContractStatus(version=HANDLER_VERSION, role=HANDLER_ROLE, name=HANDLER_NAME, address=address,
                          code_hash=found, canonical=True, action=action)
