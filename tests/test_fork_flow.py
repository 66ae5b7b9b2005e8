"""The whole flow on a fork of the live chain: propose, sign, rehearse, schedule, execute.

The live chain is the stand-in (tests/standin.py: anvil with chain id 1, a block a second, reached as
ethereum:mainnet:node). A fork of it (`ethereum:mainnet-fork:foundry`, an anvil whose upstream is the
stand-in, chain id 1 as well) is where a team dress-rehearses a payment run before doing it for real:
there time can be moved past the guard's delay and transactions mine at once, while the live chain
must not change at all. Two ways in:

- in this process, with `networks.fork(...)` inside `live(...)`, exactly what a console user does;
- in a user's own ape project with `ape test --network ethereum:mainnet-fork:foundry`, where the
  pytest plugin's fixtures (`treasury_factory`, `safe_owners`, `safe_infrastructure`) must work on
  the fork as they do on a local chain.
"""

import sys
import textwrap
from pathlib import Path

import pytest
from builders import sign_by, tusd_policy
from standin import HARDFORK, live, project_config

from treasury.chain.guard import entries
from treasury.chain.localnode import free_local_url
from treasury.store import Store
from treasury.treasury import Treasury

pytest_plugins = ["pytester"]

UNIT = 10**6  # TUSD has 6 decimals
DAY = 86_400
DELAY = 2 * DAY  # the policy's delay ("48h")


def fork_of_the_connected_network():
    """`networks.fork` with the hardfork given explicitly: ape's fork settings replace the configured
    `foundry.fork.ethereum.mainnet` section (see treasury.execution.rehearsal._configured_fork_settings). The
    fork listens on a port the kernel says is free (see treasury.chain.localnode)."""
    from ape import networks

    return networks.fork(provider_name="foundry", provider_settings={
        "host": free_local_url(), "fork": {"ethereum": {"mainnet": {"evm_version": HARDFORK}}}})


@pytest.fixture
def vendor(accounts):
    return accounts[6]


@pytest.fixture
def delayed_treasury(standin_treasury_factory, vendor):
    """A guarded treasury on the stand-in: TUSD transfers to the vendor, 10,000 a day, and anything
    above 5,000 in one transaction waits in the guard's queue for the 48h delay."""
    return standin_treasury_factory(policy=tusd_policy(vendor.address, amount="10,000", delay_threshold=5000, delay="48h"))


def live_state(treasury, token, holders):
    """What must not move on the live chain: Safe nonce, token and ETH balances, the guard's queue and budget."""
    from ape import chain

    guard = treasury.guard()
    return {
        "nonce": treasury.onchain_nonce(),
        "tokens": {h: token.balanceOf(h) for h in holders},
        "eth": chain.provider.get_balance(treasury.safe),
        "queue": int(guard.nextEntryId()),
        "entries": entries(guard),
        "budget": int(guard.budgetLeft(token.address)),
    }


def test_flow_on_a_fork_of_the_live_chain_leaves_the_live_chain_untouched(
    delayed_treasury, standin, owners, vendor, accounts, tmp_path
):
    """A small payment (allowed at once) and a large one (above delay_threshold) go the whole way on
    a fork: the large one's rehearsal fails with the time-lock reason in words until it is scheduled
    and the fork's clock is moved past the delay; then both execute and the fork's balances show it.

    Store: the fork run uses its own store (`fork.db`), not the treasury's. Rehearsing, scheduling
    and executing on the fork write records (an "executed" proposal, a schedule entry, broadcasts)
    for chain id 1, the same chain id as the live treasury, and nothing in a record tells a fork
    from the real chain; kept in the real store they would claim payments the live chain never
    made. With a throw-away store the real store must stay empty, which the test checks along with
    the live chain itself (Safe nonce, balances, guard queue and budget; the fork's transactions are
    unknown to the stand-in).
    """
    from ape import chain

    treasury, token = delayed_treasury
    executor = accounts[3]
    holders = [treasury.safe, vendor.address]

    with live(standin.url):
        before = live_state(treasury, token, holders)
        live_block = chain.blocks.head.number
        with fork_of_the_connected_network() as fork:
            assert fork.network.name == "mainnet-fork" and chain.chain_id == 1
            assert chain.blocks.head.number >= live_block  # a copy of the live chain's recent state
            rehearsal_copy = Treasury(treasury.name, treasury.entry, Store.open(tmp_path / "fork.db"))
            try:
                executions = run_payments_on_the_fork(rehearsal_copy, token, owners, vendor, executor, before)
            finally:
                rehearsal_copy.store.close()
        # Back on the stand-in: none of it happened there.
        assert chain.provider.network.name == "mainnet"
        after = live_state(treasury, token, holders)
    assert after == before
    for execution in executions:
        assert standin.rpc("eth_getTransactionByHash", [execution.tx_hash]) is None
    assert treasury.proposals() == [] and treasury.store.broadcasts() == []


def run_payments_on_the_fork(ops, token, owners, vendor, executor, live_before):
    from ape import chain

    nonce = ops.onchain_nonce()
    assert nonce == live_before["nonce"]
    small = ops.propose_transfer(vendor.address, "1,000 TUSD", title="small")
    large = ops.propose_transfer(vendor.address, "6,000 TUSD", title="large")
    assert (small.nonce, large.nonce) == (nonce, nonce + 1)
    assert ops.verdict(small.id).outcome == "allow"
    assert ops.verdict(large.id).outcome == "needs-delay"
    for proposal in (small, large):
        sign_by(ops, proposal, owners)

    # The small payment: the rehearsal (a snapshot of the fork, reverted after) passes, then it runs.
    report = ops.rehearse(small.id, executor=executor.address)
    assert report.success, report.reason
    assert "mainnet-fork" in report.network and report.filled == ()  # both signatures were collected
    changes = {(c.holder, c.token): c.delta for c in report.balance_changes}
    assert changes[(vendor.address, token.address)] == 1_000 * UNIT
    assert token.balanceOf(vendor.address) == live_before["tokens"][vendor.address]  # reverted after
    first = ops.execute(small.id, sender=executor)
    assert first.success and ops.get(small.id).status == "executed"

    # The large payment: refused in words until it has waited in the guard's queue.
    refused = ops.rehearse(large.id, executor=executor.address)
    assert not refused.success
    assert "needs the time-lock delay" in refused.reason
    scheduled_at = chain.blocks.head.timestamp + 1
    chain.pending_timestamp = scheduled_at  # the schedule transaction's block (on the fork only)
    entry = ops.schedule(large.id, signers=owners[:2], sender=executor)
    assert ops.get(large.id).status == "scheduled"
    assert entry.eta == scheduled_at + DELAY
    assert "not due yet" in ops.rehearse(large.id, executor=executor.address).reason
    chain.pending_timestamp = entry.eta + 60  # time travel, on the fork only
    chain.mine()
    report = ops.rehearse(large.id, executor=executor.address)
    assert report.success, report.reason
    second = ops.execute(large.id, sender=executor)
    assert second.success and ops.get(large.id).status == "executed"

    assert ops.onchain_nonce() == nonce + 2
    assert token.balanceOf(vendor.address) == live_before["tokens"][vendor.address] + 7_000 * UNIT
    assert token.balanceOf(ops.safe) == live_before["tokens"][ops.safe] - 7_000 * UNIT
    assert [e.status for e in entries(ops.guard())][-1] == "executed"
    assert [r.success for r in ops.store.rehearsals(large.id)] == [False, False, True]
    return [first, second]


# --- the same in a user's project, through the pytest plugin ----------------------------------------

USER_TESTS = '''
UNIT = 10**6


def test_delayed_payment_on_a_fork_of_mainnet(treasury_factory, safe_owners, safe_infrastructure, accounts, chain):
    assert chain.chain_id == 1 and chain.provider.network.name == "mainnet-fork"
    # The canonical Safe contracts come from the live chain; only non-canonical copies (which the
    # live chain refuses to deploy) are added, because a fork counts as a dev chain.
    assert all(c.action == "present" for c in safe_infrastructure if c.canonical), safe_infrastructure
    assert any(c.version == "1.4.1" and c.role == "proxy_factory" and c.canonical for c in safe_infrastructure)
    vendor, relayer = accounts[6], accounts[5]
    ops, token = treasury_factory(policy={
        "recipients": [vendor.address],
        "calls": [{"target": "TUSD", "function": "transfer(address,uint256)"}],
        "caps": [{"token": "TUSD", "amount": "10000", "period": "1d", "delay_threshold": "5000"}],
        "delay": "48h",
    })
    assert ops.entry.guard is not None and ops.chain_id == 1

    large = ops.propose_transfer(vendor.address, "6000 TUSD")
    for owner in safe_owners[:2]:
        ops.sign(large.id, owner)
    refused = ops.rehearse(large.id, executor=relayer.address)
    assert not refused.success and "needs the time-lock delay" in refused.reason
    entry = ops.schedule(large.id, signers=safe_owners[:2], sender=relayer)
    chain.pending_timestamp = entry.eta + 60
    chain.mine()
    report = ops.rehearse(large.id, executor=relayer.address)
    assert report.success, report.reason
    ops.execute(large.id, sender=relayer)
    assert ops.get(large.id).status == "executed"
    assert token.balanceOf(vendor.address) == 6000 * UNIT
    assert token.balanceOf(ops.safe) == (1_000_000 - 6000) * UNIT
'''


def test_plugin_fixtures_on_a_fork_in_a_user_project(pytester, standin, standin_infrastructure, accounts):
    """A project with none of our contracts runs `ape test --network ethereum:mainnet-fork:foundry`
    against the stand-in: the plugin's fixtures find the Safe contracts already on the (forked) live
    chain, make a guarded treasury on the fork, and the delayed payment goes through with time
    travel. The stand-in's accounts send nothing meanwhile: every transaction stayed on the fork."""
    # The fork's anvil gets a port the kernel says is free: with `host: auto`, ape-foundry draws one
    # that may be taken, and then waits 20 s and fails (see treasury.chain.localnode).
    project_config(pytester.path, standin.url, {}, foundry_host=free_local_url())
    tests = pytester.mkdir("tests")
    (tests / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    assert not (pytester.path / "contracts").exists()

    def sent_by_test_accounts():
        return [int(standin.rpc("eth_getTransactionCount", [a.address, "latest"]), 16) for a in accounts]

    before = sent_by_test_accounts()
    ape = Path(sys.executable).parent / "ape"
    result = pytester.run(str(ape), "test", "tests", "--network", "ethereum:mainnet-fork:foundry",
                          "-p", "no:cacheprovider", "-q", timeout=600)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    result.assert_outcomes(passed=1)
    assert sent_by_test_accounts() == before
