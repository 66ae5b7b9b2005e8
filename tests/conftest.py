"""Shared fixtures: the pytest plugin (treasury.pytest_plugin) supplies the Safe infrastructure."""

import pytest

from treasury.safe import create_safe, safe_spec


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
