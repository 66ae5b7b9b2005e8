"""pytest fixtures for any ape project: Safe infrastructure, Safe owners and test treasuries.

Registered through the `pytest11` entry point, so `ape test` in any project that installs
ape-treasury can use them. They build on ape's own `accounts` and `chain` fixtures and need none of
this repository's contracts: the guard and the test token ship compiled inside the package.

    def test_pays_the_vendor(treasury_factory, safe_owners, accounts):
        ops, token = treasury_factory(policy={"recipients": [accounts[4].address]})
        ...
"""

from __future__ import annotations

import itertools

import pytest

from treasury.chain.toolchain import activate

# Make the project's pinned anvil and solc visible before ape starts a provider.
activate()


@pytest.fixture(scope="session")
def safe_deployer(accounts):
    """The test account that pays for infrastructure deployments."""
    return accounts[-1]


@pytest.fixture(scope="session")
def safe_infrastructure(safe_deployer, chain):
    """Every supported Safe version's contracts, at their canonical addresses on the test chain."""
    from treasury.chain.infrastructure import deploy_infrastructure

    return deploy_infrastructure(safe_deployer, provider=chain.provider)


@pytest.fixture(scope="session")
def safe_owners(accounts):
    """Three test accounts to own Safes (accounts 0-2)."""
    return list(accounts[:3])


_salts = itertools.count(10_000)


@pytest.fixture
def treasury_factory(safe_infrastructure, safe_owners, safe_deployer, tmp_path_factory):
    """Make configured treasuries: `treasury_factory(policy=None, owners=None, threshold=2, ...)`.

    Each call creates a new Safe (owners default to `safe_owners`), deploys the shipped test token
    (TUSD, 6 decimals), funds the Safe with 10 ETH and 1,000,000 TUSD, writes a config and a store in
    a fresh temporary directory, deploys and installs TreasuryGuard from `policy` (config syntax:
    tokens by symbol, human amounts; `guarded=False` skips it) and returns `(treasury, token)`.
    Other keywords: version, salt_nonce, name, eth, token_amount, token_symbol, token_decimals.
    """
    from treasury.testing.fixtures import make_test_treasury

    made = []

    def make(policy=None, owners=None, threshold=2, **options):
        options.setdefault("salt_nonce", next(_salts))
        directory = tmp_path_factory.mktemp("treasury")
        treasury, token = make_test_treasury(directory, list(owners or safe_owners), safe_deployer,
                                             threshold=threshold, policy=policy, **options)
        made.append(treasury)
        return treasury, token

    yield make
    for treasury in made:
        treasury.store.close()
