"""Safe infrastructure lands at the canonical addresses with the canonical runtime code."""

import json

import pytest
from eth_utils import keccak

from treasury.chain import infrastructure
from treasury.chain.artifacts import (
    DETERMINISTIC_DEPLOYMENT_PROXY,
    ROLES,
    SAFE_SINGLETON_FACTORY,
    SUPPORTED_VERSIONS,
    safe_contract,
)
from treasury.chain.infrastructure import deploy_infrastructure
from treasury.chain.toolchain import node_modules
from treasury.errors import DeploymentError, InvalidInput

# Read straight from safe-deployments, independently of treasury.chain.artifacts' table.
ASSET_NAMES = {
    "1.3.0": ["gnosis_safe", "gnosis_safe_l2", "proxy_factory", "compatibility_fallback_handler", "multi_send",
              "multi_send_call_only", "create_call", "simulate_tx_accessor"],
    "1.4.1": ["safe", "safe_l2", "safe_proxy_factory", "compatibility_fallback_handler", "multi_send",
              "multi_send_call_only", "sign_message_lib", "create_call", "simulate_tx_accessor"],
}
ASSET_NAMES["1.5.0"] = ASSET_NAMES["1.4.1"]


def canonical(version, asset):
    path = node_modules() / "@safe-global/safe-deployments/dist/assets" / f"v{version}" / f"{asset}.json"
    return json.loads(path.read_text())["deployments"]["canonical"]


def runtime_hash(chain, address):
    code = bytes(chain.provider.get_code(address))
    return "0x" + keccak(code).hex() if code else None


def test_live_chain_never_gets_a_non_canonical_copy_without_the_flag(safe_deployer, chain, monkeypatch):
    monkeypatch.setattr(infrastructure, "is_dev_chain", lambda provider: False)
    contract = safe_contract("1.3.0", "sign_message_lib")
    # Start from an empty account there, whatever ran before (CREATE2 needs code and nonce zero).
    chain.provider.set_code(contract.create2_address, "0x")
    chain.provider.make_request("anvil_setNonce", [contract.create2_address, "0x0"])
    infrastructure.ensure_factory(chain.provider, safe_deployer, contract.deployer)
    block = chain.blocks.height
    status = infrastructure.deploy_contract(chain.provider, safe_deployer, contract, allow_noncanonical=False)
    assert status.action == "skipped" and "allow_noncanonical" in status.note
    assert chain.blocks.height == block
    assert not chain.provider.get_code(contract.create2_address)
    status = infrastructure.deploy_contract(chain.provider, safe_deployer, contract, allow_noncanonical=True)
    assert status.action == "deployed" and not status.canonical
    assert chain.provider.get_code(contract.create2_address)


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_every_contract_has_canonical_address_and_code_hash(safe_infrastructure, chain, version):
    for asset in ASSET_NAMES[version]:
        expected = canonical(version, asset)
        assert runtime_hash(chain, expected["address"]) == expected["codeHash"], (version, asset)


def test_safe_1_4_1_lands_where_design_says(safe_infrastructure, chain):
    assert runtime_hash(chain, "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762") == (
        "0xb1f926978a0f44a2c0ec8fe822418ae969bd8c3f18d61e5103100339894f81ff"
    )
    assert chain.provider.get_code("0x4e1DCf7AD4e460CfD30791CCC4F9c8a4f820ec67")


def test_every_role_is_reported_once_per_version(safe_infrastructure):
    reported = {(s.version, s.role) for s in safe_infrastructure}
    # and the toolkit's TreasuryFallbackHandler, once for every version (tests/test_fallback_handler.py)
    assert reported == {(v, r) for v in SUPPORTED_VERSIONS for r in ROLES} | {("all", "treasury_fallback_handler")}


def test_signmessagelib_1_3_0_from_npm_is_flagged_non_canonical(safe_infrastructure, chain):
    """The npm build of 1.3.0 SignMessageLib does not reproduce the canonical deployment."""
    status = next(s for s in safe_infrastructure if (s.version, s.role) == ("1.3.0", "sign_message_lib"))
    assert not status.canonical
    assert status.address != canonical("1.3.0", "sign_message_lib")["address"]
    assert runtime_hash(chain, canonical("1.3.0", "sign_message_lib")["address"]) is None
    assert runtime_hash(chain, status.address) == status.code_hash


def test_singleton_factory_comes_from_the_presigned_deployment(safe_infrastructure, chain):
    factory_code = bytes(chain.provider.get_code(SAFE_SINGLETON_FACTORY))
    assert factory_code == bytes(chain.provider.get_code(DETERMINISTIC_DEPLOYMENT_PROXY))


def test_second_run_changes_nothing(safe_infrastructure, safe_deployer, chain):
    block, nonce = chain.blocks.height, safe_deployer.nonce
    again = deploy_infrastructure(safe_deployer, provider=chain.provider)
    assert {s.action for s in again} == {"present"}
    assert (chain.blocks.height, safe_deployer.nonce) == (block, nonce)
    assert [(s.address, s.code_hash) for s in again] == [(s.address, s.code_hash) for s in safe_infrastructure]


def test_foreign_code_at_a_canonical_address_is_refused(safe_infrastructure, safe_deployer, chain):
    """Something that is not the Safe contract squatting a canonical address must not be trusted."""
    multisend = safe_contract("1.4.1", "multi_send").canonical_address
    chain.provider.set_code(multisend, "0x6001600055")
    with pytest.raises(DeploymentError, match="code hash"):
        deploy_infrastructure(safe_deployer, versions=["1.4.1"], provider=chain.provider)


def test_unknown_version_is_refused_before_anything_is_sent(safe_deployer, chain):
    block = chain.blocks.height
    with pytest.raises(InvalidInput, match=r"unknown Safe version '1.2.0'"):
        deploy_infrastructure(safe_deployer, versions=["1.2.0"], provider=chain.provider)
    assert chain.blocks.height == block
