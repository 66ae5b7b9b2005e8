"""Shared fixtures: the pytest plugin (treasury.pytest_plugin) supplies the Safe infrastructure."""

import os

import pytest
from hypothesis import settings

from treasury.safe import create_safe, safe_spec

# CI runs the same examples every time: a red CI then means a real regression, never a new draw.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def owners(safe_owners):
    return safe_owners


@pytest.fixture(scope="session")
def outsider(accounts):
    """A funded account that owns nothing."""
    return accounts[5]


@pytest.fixture(scope="session")
def make_safe(safe_infrastructure, safe_deployer, chain):
    """Create a Safe (idempotent per spec) on the test chain, after the infrastructure exists."""

    def make(owners, threshold, version="1.4.1", salt_nonce=0, **fields):
        spec = safe_spec(owners=[o.address for o in owners], threshold=threshold, version=version, salt_nonce=salt_nonce, **fields)
        return create_safe(spec, safe_deployer, provider=chain.provider)

    return make


@pytest.fixture
def make_treasury(make_safe, owners, safe_deployer, project, chain, tmp_path):
    """A configured Treasury: a Safe, a funded 6-decimal test token, optionally a guard, a store in tmp_path."""
    import yaml

    from treasury.guard import deploy_guard, install_guard
    from treasury.treasury import Treasury

    def make(policy=None, version="1.4.1", threshold=2, salt_nonce=500, guarded=True, name="ops"):
        created = make_safe(owners, threshold, version=version, salt_nonce=salt_nonce)
        token = safe_deployer.deploy(project.TestToken, "Test USD", "TUSD", 6)
        token.mint(created.address, 1_000_000 * 10**6, sender=safe_deployer)
        safe_deployer.transfer(created.address, 10 * 10**18)
        entry = {"safe": created.address, "chain_id": chain.chain_id, "version": version,
                 "tokens": {"TUSD": {"address": token.address, "decimals": 6}}, "policy": policy or {}}
        config = {"treasury": {"store": str(tmp_path / "store.db"), "treasuries": {name: entry}}}
        path = tmp_path / "ape-config.yaml"
        path.write_text(yaml.safe_dump(config))
        if guarded:
            treasury = Treasury.load(name, path)
            guard = deploy_guard(created.address, version, treasury.policy, safe_deployer)
            install_guard(created.address, version, guard.address, signers=owners[:threshold], sender=safe_deployer)
            entry["guard"] = guard.address
            path.write_text(yaml.safe_dump(config))
            treasury.store.close()
        return Treasury.load(name, path), token

    return make
