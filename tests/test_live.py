"""Live mode: the tool against a stand-in live chain (anvil, chain id 1, a separate process) reached
through ape's node provider as ethereum:mainnet:node, behind a strict proxy that answers only the
eth_/net_/web3_ namespaces, as a hosted node does."""

import pytest
from builders import sign_by, signed_transfer, tusd_policy
from rpc_proxy import PUBLIC_NAMESPACES, FaultProxy
from standin import live

from treasury.execution.rehearsal import RehearsalUnavailable
from treasury.treasury import PolicyRefusal, RehearsalFailed

DEV_NAMESPACES = ("anvil_", "evm_", "hardhat_")


def nonstandard(methods):
    return sorted({m for m in methods if not m.startswith(PUBLIC_NAMESPACES)})


@pytest.fixture
def strict_proxy(standin):
    with FaultProxy(standin.url, strict=True) as proxy:
        yield proxy


@pytest.fixture
def live_treasury(standin_treasury_factory, accounts):
    recipient = accounts[6].address
    # max_per_tx above the cap, so that 12,000 TUSD passes the per-transaction limit and hits the budget
    return standin_treasury_factory(policy=tusd_policy(recipient, max_per_tx=20_000)), recipient


def test_infrastructure_deployed_with_standard_rpc_only(standin_infrastructure):
    """Deployment goes through ape's contract calls, whose send path probes debug_traceTransaction and
    then trace_transaction for console logs after each call; the strict proxy refuses both and the
    deployment carries on."""
    assert "eth_sendRawTransaction" in standin_infrastructure
    assert not [m for m in standin_infrastructure if m.startswith(DEV_NAMESPACES)]
    assert set(nonstandard(standin_infrastructure)) <= {"debug_traceTransaction", "trace_transaction"}


def test_live_execute_rehearses_waits_and_uses_standard_rpc(live_treasury, strict_proxy, owners, accounts, standin):
    (treasury, token), recipient = live_treasury
    executor = accounts[3]
    with live(strict_proxy.url):
        record = signed_transfer(treasury, owners, recipient, "1,250.5 TUSD")
        before = token.balanceOf(recipient)
        execution = treasury.execute(record.id, executor, confirmations=2)
        assert token.balanceOf(recipient) - before == 1_250_500_000
        head = int(standin.rpc("eth_blockNumber"), 16)
    assert treasury.get(record.id).status == "executed"
    assert head >= execution.block_number + 2  # execute returned only after two more blocks
    sent = standin.rpc("eth_getTransactionByHash", [execution.tx_hash])
    assert sent["type"] == "0x2" and int(sent["maxFeePerGas"], 16) > 0  # EIP-1559
    rehearsals = treasury.store.rehearsals(record.id)
    assert [r.success for r in rehearsals] == [True] and rehearsals[0].safe_tx_hash == record.safe_tx_hash
    [broadcast] = treasury.store.broadcasts(record.id)
    assert broadcast.status == "mined" and broadcast.tx_hash == execution.tx_hash
    assert "eth_sendRawTransaction" in strict_proxy.methods
    assert nonstandard(strict_proxy.methods) == []


def test_live_execute_refused_when_the_rehearsal_fails(live_treasury, strict_proxy, owners, accounts):
    (treasury, _token), recipient = live_treasury
    with live(strict_proxy.url):
        record = signed_transfer(treasury, owners, recipient, "12,000 TUSD")
        nonce = treasury.onchain_nonce()
        with pytest.raises(PolicyRefusal, match=r"^policy verdict deny"):
            treasury.execute(record.id, accounts[3])  # the verdict refuses first, before any fork is made
        with pytest.raises(RehearsalFailed, match="cap exceeded: 12,000 TUSD requested, 10,000 left"):
            treasury.execute(record.id, accounts[3], force=True)  # past the verdict, the fork refuses
        assert treasury.onchain_nonce() == nonce
    assert "eth_sendRawTransaction" not in strict_proxy.methods
    assert treasury.store.broadcasts(record.id) == []
    assert [r.success for r in treasury.store.rehearsals(record.id)] == [False]
    assert treasury.get(record.id).status == "pending"


def test_rehearsal_fills_missing_signatures_on_the_fork_only(live_treasury, strict_proxy, owners, accounts):
    (treasury, token), recipient = live_treasury
    with live(strict_proxy.url):
        record = treasury.propose_transfer(recipient, "100 TUSD")
        before = token.balanceOf(recipient)
        report = treasury.rehearse(record.id, executor=accounts[3].address)
        assert report.success, report.reason
        assert set(report.filled) == {o.address for o in owners[:2]}
        changes = {(c.holder, c.token): c.delta for c in report.balance_changes}
        assert changes[(treasury.safe, token.address)] == -100_000_000
        assert changes[(recipient, token.address)] == 100_000_000
        assert any("Transfer 100 TUSD from Safe to" in event for event in report.events)
        assert any("ExecutionSuccess" in event for event in report.events)
        assert report.gas_used > 21_000
        # Nothing happened on the live chain: no approval, no transfer, same nonce.
        safe = treasury._safe()
        assert all(safe.approvedHashes(o.address, record.safe_tx_hash) == 0 for o in owners)
        assert token.balanceOf(recipient) == before and treasury.onchain_nonce() == record.nonce
    assert nonstandard(strict_proxy.methods) == []


def test_a_rehearsal_answered_by_another_node_is_refused(live_treasury, standin, owners, accounts, monkeypatch):
    """If the fork's port is answered by a node we did not start (here the live chain itself), the
    rehearsal refuses: a passing rehearsal must come from our own fork of the rehearsed block."""
    from treasury.execution import rehearsal

    (treasury, token), recipient = live_treasury
    monkeypatch.setattr(rehearsal, "free_local_url", lambda: standin.url)
    with live(standin.url):
        record = treasury.propose_transfer(recipient, "100 TUSD")
        before = token.balanceOf(recipient)
        with pytest.raises(RehearsalUnavailable, match=f"another node answered at {standin.url}"):
            treasury.rehearse(record.id, executor=accounts[3].address)
        safe = treasury._safe()
        assert all(safe.approvedHashes(o.address, record.safe_tx_hash) == 0 for o in owners)
        assert token.balanceOf(recipient) == before
    assert standin.rpc("eth_chainId") == "0x1"  # the live chain's node was not stopped
    assert treasury.store.rehearsals(record.id) == []


def test_the_fork_moves_to_another_port_when_its_port_is_taken(live_treasury, standin, accounts, monkeypatch):
    """The port picked for the fork is taken before anvil binds it (here by an outgoing connection's
    local end): anvil cannot start there, ape gives up after its fixed 20 s, and the fork is started
    on a second port instead."""
    import socket

    from treasury.execution import rehearsal

    (treasury, _token), recipient = live_treasury
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname()) as client:
        taken = f"http://127.0.0.1:{client.getsockname()[1]}"
        urls = iter([taken, rehearsal.free_local_url()])
        monkeypatch.setattr(rehearsal, "free_local_url", lambda: next(urls))
        with live(standin.url):
            record = treasury.propose_transfer(recipient, "5 TUSD")
            report = treasury.rehearse(record.id, executor=accounts[3].address)
    assert report.success, report.reason
    assert next(urls, None) is None  # both ports were used


def test_skip_rehearsal_sends_without_forking(live_treasury, strict_proxy, owners, accounts):
    (treasury, _token), recipient = live_treasury
    with live(strict_proxy.url):
        record = signed_transfer(treasury, owners, recipient, "1 TUSD")
        treasury.execute(record.id, accounts[3], skip_rehearsal=True)
    assert treasury.store.rehearsals(record.id) == []
    assert treasury.get(record.id).status == "executed"


def test_submitting_account_with_a_pending_transaction(live_treasury, strict_proxy, owners, accounts, standin):
    """The executor already has a transaction in the mempool: execute must take the next nonce."""
    (treasury, _token), recipient = live_treasury
    executor = accounts[4]
    with live(strict_proxy.url) as provider:
        record = signed_transfer(treasury, owners, recipient, "2 TUSD")
        mined_nonce = provider.web3.eth.get_transaction_count(executor.address, "latest")
        payment = executor.prepare_transaction(provider.network.ecosystem.create_transaction(
            sender=executor.address, receiver=accounts[7].address, value=1, chain_id=1, type=2))
        pending_hash = provider.web3.eth.send_raw_transaction(executor.sign_transaction(payment).serialize_transaction())
        execution = treasury.execute(record.id, executor, skip_rehearsal=True)
        provider.web3.eth.wait_for_transaction_receipt(pending_hash, timeout=30)
        sent = provider.web3.eth.get_transaction(execution.tx_hash)
        assert sent["nonce"] == mined_nonce + 1
        assert provider.web3.eth.get_transaction_count(executor.address, "latest") == mined_nonce + 2
    assert treasury.get(record.id).status == "executed"


def test_cli_rehearse_and_execute_on_the_live_network(live_treasury, strict_proxy, owners, tmp_path):
    """`treasury rehearse` and `treasury execute` as a user runs them, against a strict node."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from standin import cli_project

    (treasury, token), recipient = live_treasury
    with live(strict_proxy.url):
        paid = treasury.propose_transfer(recipient, "300 TUSD")
        too_much = treasury.propose_transfer(recipient, "12,000 TUSD")  # the next nonce: rehearsed as if paid had run
        sign_by(treasury, paid, owners)
        before = token.balanceOf(recipient)
    project = cli_project(treasury, strict_proxy.url, tmp_path / "project")
    cli = [str(Path(sys.executable).parent / "treasury")]
    network = ["--network", "ethereum:mainnet:node"]

    refused = subprocess.run([*cli, "rehearse", too_much.id, *network], cwd=project, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 3, refused.stderr
    assert "Error: rehearsal fails: cap exceeded: 12,000 TUSD requested, 10,000 left [ExceedsBudget]" in refused.stderr

    done = subprocess.run([*cli, "execute", paid.id, "--account", "TEST::3", "--yes", "--json", *network], cwd=project,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "executed" and result["rehearsal"]["success"] is True
    changes = {(c["holder"], c["change"]) for c in result["rehearsal"]["balance_changes"]}
    assert {(treasury.safe, "-300 TUSD"), (recipient, "+300 TUSD")} <= changes
    with live(strict_proxy.url):
        assert token.balanceOf(recipient) - before == 300 * 10**6
    assert not [m for m in strict_proxy.methods if m.startswith(DEV_NAMESPACES)]
    assert nonstandard(strict_proxy.methods) == []
