"""Shared fixtures, and what makes the suite deterministic and tiered.

The pytest plugin (treasury.testing.plugin) supplies the Safe infrastructure; tests/builders.py holds
the builders the test modules share (policies, funded Safes, signed proposals).

Determinism (a red CI must mean a regression, never a draw of the machine):
- The session's anvil listens on a port the kernel picked (`host: auto` draws one that may be taken).
- Its clock is pinned: block 1 has the timestamp CHAIN_EPOCH and every later block is one second
  after the one before, unless a test sets the next block's timestamp itself
  (`chain.pending_timestamp = t`). Time on the test chain therefore never depends on how fast the
  machine is: a verdict read at "pending" is always for the block the next transaction lands in.
- hypothesis has no deadline (a loaded machine is slow, not wrong), prints the blob to reproduce a
  failure, and under CI draws the same examples every run.

Tiers: every test gets exactly one of the markers unit, chain, live, slow, postgres (see `tier_of`),
so `ape test -m unit` runs the fast tier in seconds; the wall time per tier is printed at the end.
"""

import itertools
import os
import time
from collections import Counter, defaultdict

import pytest
from hypothesis import settings

from treasury.chain.safe import create_safe, safe_spec

# The store suite's fixtures (db on SQLite and PostgreSQL, store, sqlite_db, postgres_db).
pytest_plugins = ("store_db",)

# --- hypothesis -------------------------------------------------------------------------------------

# No deadline anywhere: the chain tests' examples take as long as the loaded machine needs.
settings.register_profile("dev", deadline=None, print_blob=True)
# CI runs the same examples every time: a red CI then means a real regression, never a new draw.
settings.register_profile("ci", deadline=None, print_blob=True, derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


# --- the session's anvil: a reserved port, a pinned clock -------------------------------------------

CHAIN_EPOCH = 1_999_987_200  # 2033-05-18 00:00:00 UTC: a whole number of days (and hours, minutes)
_DAY = 86_400
_configured_host: list = []  # the foundry host setting replaced for the session's anvil, to put back


def pytest_collection_finish(session):
    """Runs inside ape's own hook, just before ape starts the session's anvil: give it a port the
    kernel says is free (ape-foundry's `host: auto` draws a random one that may be taken, see
    treasury.chain.localnode). Only the session's provider gets it: the setting is put back before
    the first test, so forks and other networks started later choose their own ports."""
    if "APE_FOUNDRY_HOST" in os.environ or not session.items:
        return
    from ape import config

    from treasury.chain.localnode import free_local_url

    foundry = config.get_config("foundry")
    if foundry.host in (None, "auto"):
        _configured_host.append(foundry.host)
        foundry.host = free_local_url()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtestloop(session):
    if _configured_host:
        from ape import config

        config.get_config("foundry").host = _configured_host.pop()
    pin_chain_clock()
    yield


def pin_chain_clock() -> None:
    """Mine block 1 at CHAIN_EPOCH and make every later block one second after the one before.

    Done before the first test, so before ape's first snapshot: a restore never goes back to a
    block whose timestamp came from the wall clock. Only on the session's local anvil.
    """
    from ape import networks

    provider = networks.active_provider
    if provider is None or provider.name != "foundry" or provider.network.name != "local":
        return
    head = provider.get_block("latest").timestamp
    start = CHAIN_EPOCH if head < CHAIN_EPOCH else (head // _DAY + 1) * _DAY
    provider.make_request("evm_setNextBlockTimestamp", [start])
    provider.make_request("evm_mine", [])
    provider.make_request("anvil_setBlockTimestampInterval", [1])
    assert provider.get_block("latest").timestamp == start


# --- fixtures ---------------------------------------------------------------------------------------


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


CEREMONY_NAMES = ("alice", "bob", "carol", "dave")  # accounts 0-3; "vault" is the contract owner


@pytest.fixture
def ceremony(safe_infrastructure, safe_deployer, accounts, chain, tmp_path):
    """A guarded 3-of-5 treasury ("ops") for the key ceremonies: four key owners (accounts 0-3, named
    alice, bob, carol, dave in the address book) and one contract owner, "vault": a 1-of-1 Safe of
    accounts[6] with the canonical CompatibilityFallbackHandler, so it answers EIP-1271 checks.

    Yields a namespace: treasury, token, eoas (the four accounts), vault (its address), vault_signer
    (accounts[6]), funder (accounts[8], an outsider named "treasurer" in the book, allowed as a recipient).
    """
    from types import SimpleNamespace

    from treasury.chain.artifacts import safe_contract
    from treasury.testing.fixtures import make_test_treasury

    eoas, vault_signer, funder = list(accounts[:4]), accounts[6], accounts[8]
    handler = safe_contract("1.4.1", "compatibility_fallback_handler").canonical_address
    vault = create_safe(safe_spec(owners=[vault_signer.address], threshold=1, version="1.4.1", salt_nonce=15_500,
                                  fallback_handler=handler), safe_deployer, provider=chain.provider)
    names = {name: account.address for name, account in zip(CEREMONY_NAMES, eoas, strict=True)} | {"vault": vault.address}
    # The guard is installed by the first three owners (key owners): the contract owner comes last.
    owners = [*eoas, SimpleNamespace(address=vault.address)]
    treasury, token = make_test_treasury(
        tmp_path / "ceremony", owners, safe_deployer, threshold=3, salt_nonce=15_501, named_owners=names,
        vendors={"treasurer": funder.address},
        policy={"recipients": ["treasurer"], "caps": [{"token": "ETH", "amount": "1", "period": "1d"},
                                                      {"token": "TUSD", "amount": "1000", "period": "1d"}]})
    yield SimpleNamespace(treasury=treasury, token=token, eoas=eoas, vault=vault.address, vault_signer=vault_signer,
                          funder=funder)
    treasury.store.close()


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


# --- PostgreSQL for the store suite (tests/store_db.py) ---------------------------------------------


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL cluster for the session (or TREASURY_TEST_POSTGRES_URL's server)."""
    from store_db import postgres_server as serve

    with serve() as server:
        yield server


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


# --- tiers ------------------------------------------------------------------------------------------

TIERS = ("unit", "chain", "live", "slow", "postgres")
# The stand-in live chain (tests/standin.py) and forks of it.
LIVE_MODULES = {"test_live", "test_recovery", "test_fork_flow"}
LIVE_FIXTURES = {"standin", "standin_infrastructure", "standin_treasury_factory"}
# Long ones: property-based runs on the chain, and tests that run many processes (a whole `ape test`
# session, concurrent writers, kill -9 rounds, the CLI started again and again). A test may also be
# marked `@pytest.mark.slow` (or any tier) itself.
SLOW_MODULES = {"test_guard_property", "test_policy_differential"}
SLOW_TESTS = {
    "test_plugin_fixtures_work_in_another_ape_project",
    "test_concurrent_signers_in_separate_processes_lose_nothing",
    "test_processes_creating_the_same_fresh_store_at_once",
    "test_processes_opening_a_v1_store_at_once_migrate_it_once",
    "test_sigkill_during_write_loop_leaves_store_consistent",
    "test_store_only_commands_import_no_chain_stack",
    "test_load_config_agrees_with_ape_and_the_environment_wins",
    "test_a_deeply_nested_file_is_one_error_line_not_a_crash",
    "test_a_public_name_loads_its_module_on_first_use",
    "test_store_only_commands_refuse_a_bad_config_in_one_line",
}
# ape's fixtures that reach the session's anvil; every chain fixture of the plugin, of this conftest
# and of guard_helpers depends on one of them, and item.fixturenames is the whole closure.
CHAIN_FIXTURES = {"chain", "accounts", "project", "networks", "compilers", "Contract"}


def tier_of(item) -> str:
    """The one tier of a test: an explicit marker first, else by what the test uses."""
    for tier in TIERS:
        if item.get_closest_marker(tier) is not None:
            return tier
    module = getattr(getattr(item, "module", None), "__name__", "")
    fixtures = set(getattr(item, "fixturenames", ()))
    callspec = getattr(item, "callspec", None)
    if module in LIVE_MODULES or fixtures & LIVE_FIXTURES:
        return "live"
    if any("postgres" in name for name in fixtures) or (callspec is not None and "postgres" in callspec.id):
        return "postgres"  # slow or not: `-m postgres` selects every test that needs the server
    hypothesis_test = getattr(getattr(item, "obj", None), "is_hypothesis_test", False)
    if module in SLOW_MODULES or getattr(item, "originalname", "") in SLOW_TESTS or (
            hypothesis_test and fixtures & CHAIN_FIXTURES):
        return "slow"
    if fixtures & CHAIN_FIXTURES:
        return "chain"
    return "unit"


_tier: dict[str, str] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_collection_modifyitems(config, items):
    """Mark every test with its tier before `-m` deselects by marker. Afterwards, a run in which
    no test uses a chain (e.g. `-m unit`) goes without ape's chain isolation (an evm_snapshot and an
    evm_revert around each test), which would cost more than the tests themselves."""
    for item in items:
        tier = tier_of(item)
        _tier[item.nodeid] = tier
        if item.get_closest_marker(tier) is None:
            item.add_marker(getattr(pytest.mark, tier))
    yield
    if items and not any(uses_chain(item) for item in items):
        config.option.disable_isolation = True


def uses_chain(item) -> bool:
    fixtures = set(getattr(item, "fixturenames", ()))
    return _tier.get(item.nodeid) in ("chain", "live") or bool(fixtures & (CHAIN_FIXTURES | LIVE_FIXTURES))


# --- wall time per tier -----------------------------------------------------------------------------

_seconds: defaultdict = defaultdict(float)
_tests: Counter = Counter()
_started: list = []


def pytest_sessionstart(session):
    _started.append(time.perf_counter())


def pytest_runtest_logreport(report):
    tier = _tier.get(report.nodeid)
    if tier is None:
        return
    _seconds[tier] += report.duration  # setup + call + teardown, session fixtures included where first set up
    if report.when == "teardown":
        _tests[tier] += 1


def pytest_terminal_summary(terminalreporter):
    if not _tests:
        return
    write = terminalreporter.write_line
    terminalreporter.section("wall time per tier")
    for tier in TIERS:
        if _tests[tier]:
            write(f"{tier:<9}{_tests[tier]:>5} tests {_seconds[tier]:>9.1f} s")
    write(f"{'session':<9}{sum(_tests.values()):>5} tests {time.perf_counter() - _started[0]:>9.1f} s wall "
          "(start-up, collection and the chain included)")
