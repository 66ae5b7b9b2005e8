"""The guard shipped inside the package is exactly what contracts/TreasuryGuard.sol compiles to."""

import json

from treasury.chain.guard import GUARD_ARTIFACT, guard_contract_type


def test_shipped_artifact_matches_the_source(project):
    compiled = project.TreasuryGuard.contract_type
    shipped = guard_contract_type()
    assert shipped.deployment_bytecode.bytecode == compiled.deployment_bytecode.bytecode, (
        "treasury/data/TreasuryGuard.json is stale: run `make guard-artifact`"
    )
    assert [a.model_dump() for a in shipped.abi] == [a.model_dump() for a in compiled.abi]


def test_shipped_artifact_is_plain_json():
    assert json.loads(GUARD_ARTIFACT.read_text())["contractName"] == "TreasuryGuard"


def test_shipped_handler_artifact_matches_the_source(project):
    """The fallback handler's address is fixed by its shipped creation code: it must be what contracts/ compiles to."""
    from treasury.chain.handler import handler_contract_type

    compiled = project.TreasuryFallbackHandler.contract_type
    shipped = handler_contract_type()
    assert shipped.deployment_bytecode.bytecode == compiled.deployment_bytecode.bytecode, (
        "treasury/data/TreasuryFallbackHandler.json is stale: run `make artifacts` (this moves the handler's address)"
    )
    assert [a.model_dump() for a in shipped.abi] == [a.model_dump() for a in compiled.abi]
