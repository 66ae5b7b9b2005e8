"""Shared fixtures: the pytest plugin (treasury.testing.plugin) supplies the Safe infrastructure."""

import itertools
import os

import pytest
from hypothesis import settings

from treasury.chain.safe import create_safe, safe_spec

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
def make_treasury(safe_infrastructure, owners, safe_deployer, tmp_path):
    """A configured Treasury in tmp_path (config and store): see treasury.testing.fixtures.make_test_treasury."""
    from treasury.testing.fixtures import make_test_treasury

    def make(policy=None, version="1.4.1", threshold=2, salt_nonce=500, guarded=True, name="ops"):
        return make_test_treasury(tmp_path, owners, safe_deployer, threshold=threshold, policy=policy,
                                  version=version, salt_nonce=salt_nonce, guarded=guarded, name=name)

    return make


@pytest.fixture(scope="session")
def load_script():
    """The click command (`cli`) of an ape script under scripts/, as `ape run` would find it."""
    import importlib.util
    from pathlib import Path

    def load(name):
        path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"script_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.cli

    return load


# --- the stand-in live chain (tests/standin.py) ----------------------------------------------------

_STANDIN_SALTS = itertools.count(20_000)  # one Safe address per stand-in treasury of the session


@pytest.fixture(scope="session")
def standin():
    """anvil with chain id 1 as a separate process, mining a block a second: a live chain's stand-in."""
    from standin import StandinChain

    chain = StandinChain()
    yield chain
    chain.stop()


@pytest.fixture(scope="session")
def standin_infrastructure(standin, safe_deployer):
    """The Safe infrastructure on the stand-in, deployed by the tool through a strict proxy.

    Returns the JSON-RPC methods the deployment used (chain id 1 has no anvil tricks: the singleton
    factory comes from the Safe team's presigned transaction).
    """
    from rpc_proxy import FaultProxy
    from standin import live

    from treasury.chain.infrastructure import deploy_infrastructure

    with FaultProxy(standin.url, strict=True) as proxy, live(proxy.url) as provider:
        deploy_infrastructure(safe_deployer, provider=provider)
        return list(proxy.methods)


@pytest.fixture
def standin_treasury_factory(standin, standin_infrastructure, owners, safe_deployer, tmp_path_factory):
    """`make(policy=..., **options)`: a guarded, funded test treasury on the stand-in (chain id 1)."""
    from standin import live

    from treasury.testing.fixtures import make_test_treasury

    made = []

    def make(policy=None, **options):
        options.setdefault("salt_nonce", next(_STANDIN_SALTS))
        directory = tmp_path_factory.mktemp("standin")
        with live(standin.url):
            treasury, token = make_test_treasury(directory, owners, safe_deployer, policy=policy, **options)
        made.append(treasury)
        return treasury, token

    yield make
    for treasury in made:
        treasury.store.close()
