"""Test helpers that work in any ape project: a shipped TestToken and a one-call test treasury.

A user's project does not contain our contracts, so the ERC-20 used to fund test treasuries ships
inside this package as a compiled artifact (treasury/data/TestToken.json), exactly as the guard
does; a test checks that it is what `contracts/test/TestToken.sol` compiles to
(`make artifacts` refreshes both). `make_test_treasury` is what the `treasury_factory` fixture of
the pytest plugin calls: a Safe, optionally the guard, ETH and test tokens, a config and a store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ape.api import AccountAPI
    from ape.contracts import ContractInstance

    from treasury.treasury import Treasury

DATA = Path(__file__).resolve().parent.parent / "data"
TEST_TOKEN_ARTIFACT = DATA / "TestToken.json"
_KEEP = ("contractName", "abi", "deploymentBytecode", "runtimeBytecode", "devdoc", "userdoc", "methodIdentifiers")


def export_artifact(name: str, build_manifest: Path = Path(".build/__local__.json")) -> Path:
    """Copy the freshly compiled contract `name` into treasury/data/ (after `ape compile`)."""
    contract = json.loads(Path(build_manifest).read_text())["contractTypes"][name]
    target = DATA / f"{name}.json"
    DATA.mkdir(exist_ok=True)
    target.write_text(json.dumps({k: contract[k] for k in _KEEP if k in contract}, indent=1, sort_keys=True) + "\n")
    return target


def export_test_token_artifact(build_manifest: Path = Path(".build/__local__.json")) -> Path:
    return export_artifact("TestToken", build_manifest)


@cache
def token_contract_type():
    from ethpm_types import ContractType

    return ContractType.model_validate(json.loads(TEST_TOKEN_ARTIFACT.read_text()))


def deploy_test_token(deployer: AccountAPI, name: str = "Test USD", symbol: str = "TUSD", decimals: int = 6) -> ContractInstance:
    """Deploy the shipped TestToken (anyone may mint: for local chains and tests only)."""
    from ape.contracts import ContractContainer

    return deployer.deploy(ContractContainer(token_contract_type()), name, symbol, decimals)


def make_test_treasury(
    directory: Path,
    owners: Sequence[AccountAPI],
    deployer: AccountAPI,
    *,
    threshold: int = 2,
    policy: Mapping[str, Any] | None = None,
    version: str = "1.4.1",
    salt_nonce: int = 0,
    guarded: bool = True,
    name: str = "ops",
    eth: int = 10,
    token_amount: int = 1_000_000,
    token_symbol: str = "TUSD",
    token_decimals: int = 6,
    vendors: Mapping[str, str] | None = None,
    named_owners: Mapping[str, str] | None = None,
) -> tuple[Treasury, ContractInstance]:
    """A configured Treasury on the connected (local) chain, and its funded test token.

    Creates a Safe of `owners` (the Safe infrastructure must be deployed), deploys a test token,
    funds the Safe with `eth` ETH and `token_amount` tokens, writes `directory/ape-config.yaml`
    (store `directory/store.db`) with the token in the book and `policy` (config syntax: tokens by
    symbol, human amounts), and, if `guarded`, deploys and installs TreasuryGuard from that policy.
    `vendors` and `named_owners` (name -> address) are the config's address book (`vendors:`,
    `owners:`), so the policy may name its recipients and guardians.
    """
    import yaml
    from ape import chain

    from treasury.chain.guard import deploy_guard, install_guard
    from treasury.chain.safe import create_safe, safe_spec
    from treasury.treasury import Treasury

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    spec = safe_spec(owners=[o.address for o in owners], threshold=threshold, version=version, salt_nonce=salt_nonce)
    created = create_safe(spec, deployer, provider=chain.provider)
    token = deploy_test_token(deployer, f"Test {token_symbol}", token_symbol, token_decimals)
    if token_amount:
        token.mint(created.address, token_amount * 10**token_decimals, sender=deployer)
    if eth:
        deployer.transfer(created.address, eth * 10**18)
    entry = {"safe": created.address, "chain_id": chain.chain_id, "version": version,
             "tokens": {token_symbol: {"address": token.address, "decimals": token_decimals}}, "policy": dict(policy or {})}
    entry.update({key: dict(book) for key, book in (("vendors", vendors), ("owners", named_owners)) if book})
    config = {"treasury": {"store": str(directory / "store.db"), "treasuries": {name: entry}}}
    path = directory / "ape-config.yaml"
    path.write_text(yaml.safe_dump(config))
    if guarded:
        treasury = Treasury.load(name, path)
        try:
            guard = deploy_guard(created.address, version, treasury.policy, deployer)
            install_guard(created.address, version, guard.address, signers=list(owners)[:threshold], sender=deployer)
        finally:
            treasury.store.close()
        entry["guard"] = guard.address
        path.write_text(yaml.safe_dump(config))
    return Treasury.load(name, path), token


if __name__ == "__main__":  # `python -m treasury.testing.fixtures`: refresh the shipped TestToken artifact
    print(export_test_token_artifact())
