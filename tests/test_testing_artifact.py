"""The TestToken shipped inside the package (for the pytest plugin) is what its source compiles to."""

import json

from treasury.testing.fixtures import TEST_TOKEN_ARTIFACT, token_contract_type


def test_shipped_test_token_matches_the_source(project):
    compiled = project.TestToken.contract_type
    shipped = token_contract_type()
    assert shipped.deployment_bytecode.bytecode == compiled.deployment_bytecode.bytecode, (
        "treasury/data/TestToken.json is stale: run `make artifacts`"
    )
    assert [a.model_dump() for a in shipped.abi] == [a.model_dump() for a in compiled.abi]
    assert json.loads(TEST_TOKEN_ARTIFACT.read_text())["contractName"] == "TestToken"
