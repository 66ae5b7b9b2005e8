"""pytest fixtures for any ape project: Safe infrastructure on the test chain and Safe owners.

Registered through the `pytest11` entry point, so `ape test` in any project that installs
ape-treasury can use them. They build on ape's own `accounts` and `chain` fixtures.
"""

from __future__ import annotations

import pytest

from treasury.toolchain import activate

# Make the project's pinned anvil and solc visible before ape starts a provider.
activate()


@pytest.fixture(scope="session")
def safe_deployer(accounts):
    """The test account that pays for infrastructure deployments."""
    return accounts[-1]


@pytest.fixture(scope="session")
def safe_infrastructure(safe_deployer, chain):
    """Every supported Safe version's contracts, at their canonical addresses on the test chain."""
    from treasury.infrastructure import deploy_infrastructure

    return deploy_infrastructure(safe_deployer, provider=chain.provider)


@pytest.fixture(scope="session")
def safe_owners(accounts):
    """Three test accounts to own Safes (accounts 0-2)."""
    return list(accounts[:3])
