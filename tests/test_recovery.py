"""Faults and crashes on the live chain: a flaky node is retried, a crash between broadcast and record
is reconciled from the chain, and no Safe transaction is ever sent twice.

The tool runs against the stand-in live chain (tests/standin.py) through a FaultProxy; the crash
test runs the real `treasury` CLI in a subprocess and kills it (SIGKILL) while the node holds the
answer to its eth_sendRawTransaction: the transaction is broadcast, the process never hears back.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from builders import signed_transfer, tusd_policy
from rpc_proxy import FaultProxy
from standin import cli_project, live

from treasury.chain.rpc import RetryPolicy, RPCRefused
from treasury.errors import InvalidInput
from treasury.execution.send import execute_safe_tx
from treasury.signatures import sign_safe_tx
from treasury.store import Store
from treasury.treasury import Treasury

TREASURY_CLI = str(Path(sys.executable).parent / "treasury")
UNIT = 10**6


@pytest.fixture
def payable(standin_treasury_factory, accounts):
    """A guarded treasury on the stand-in that may pay accounts[6] in TUSD."""
    recipient = accounts[6].address
    treasury, token = standin_treasury_factory(policy=tusd_policy(recipient))
    return treasury, token, recipient


def count(methods, name):
    return sum(1 for m in methods if m == name)


def test_transient_faults_are_retried_and_the_payment_lands_once(payable, owners, accounts, standin):
    treasury, token, recipient = payable
    # A timeout with room for a loaded machine: only the injected delay may outlast it.
    treasury.retry_policy = RetryPolicy(jitter=0, first_delay=0.05, timeout=6)
    with FaultProxy(standin.url) as proxy, live(proxy.url) as provider:
        record = signed_transfer(treasury, owners, recipient)
        nonce, before = treasury.onchain_nonce(), token.balanceOf(recipient)
        proxy.inject("503", method="eth_call", times=2)
        proxy.inject("429", method="eth_estimateGas")
        proxy.inject("drop", method="eth_getTransactionCount")
        proxy.inject("delay", method="eth_blockNumber", delay=9)  # outlasts the 6 s timeout
        proxy.inject("reset_after_forward", method="eth_sendRawTransaction")  # the node has it; we never hear
        proxy.inject("502", method="eth_getTransactionReceipt", times=2)
        execution = treasury.execute(record.id, accounts[3], skip_rehearsal=True)
        assert treasury.onchain_nonce() == nonce + 1
        assert token.balanceOf(recipient) - before == 10 * UNIT
        assert provider.web3.eth.get_transaction(execution.tx_hash)["hash"].to_0x_hex() == execution.tx_hash
    assert count(proxy.forwarded, "eth_sendRawTransaction") == 2  # the same bytes twice; mined once
    assert treasury.get(record.id).status == "executed"
    assert [b.status for b in treasury.store.broadcasts(record.id)] == ["mined"]


def test_a_permanent_error_stops_at_once_and_stores_nothing(payable, owners, accounts, standin):
    treasury, _token, recipient = payable
    with FaultProxy(standin.url) as proxy, live(proxy.url):
        record = signed_transfer(treasury, owners, recipient)
        proxy.inject("401", method="eth_getTransactionCount")
        with pytest.raises(RPCRefused, match="refused eth_getTransactionCount: HTTP 401") as refused:
            treasury.execute(record.id, accounts[3], skip_rehearsal=True)
        assert "\n" not in str(refused.value)
    assert count(proxy.methods, "eth_getTransactionCount") >= 1
    assert "eth_sendRawTransaction" not in proxy.methods
    assert treasury.store.broadcasts(record.id) == [] and treasury.get(record.id).status == "pending"


def run_cli(directory, *words, timeout=180):
    return subprocess.run([TREASURY_CLI, *words, "--network", "ethereum:mainnet:node"], cwd=directory,
                          capture_output=True, text=True, timeout=timeout)


def wait_while_running(process: subprocess.Popen, done, timeout: float) -> bool:
    """Poll `done()` until it holds (True), the process ends or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        if process.poll() is not None:
            return done()
    return False


def test_killed_between_broadcast_and_record_then_reconciled(payable, owners, standin, tmp_path):
    """SIGKILL after the node has the transaction and before the store heard of the receipt; the next
    command finds the execution on chain by the write-ahead hash and records it; execute never resends."""
    treasury, token, recipient = payable
    with live(standin.url):
        record = signed_transfer(treasury, owners, recipient, "25 TUSD")
        nonce, before = treasury.onchain_nonce(), token.balanceOf(recipient)
    with FaultProxy(standin.url) as proxy:
        project = cli_project(treasury, proxy.url, tmp_path / "project")
        proxy.inject("hold", method="eth_sendRawTransaction")
        log = tmp_path / "execute.log"
        output = log.open("wb")  # a file: a pipe nobody reads could fill and block it
        process = subprocess.Popen([TREASURY_CLI, "execute", record.id, "--account", "TEST::3", "--yes",
                                    "--network", "ethereum:mainnet:node"], cwd=project,
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            forwarded = wait_while_running(process, lambda: proxy.wait_forwarded("eth_sendRawTransaction", 0.2), 240)
        finally:
            with contextlib.suppress(ProcessLookupError):  # it may have ended on its own: the assert says how
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            output.close()
        assert forwarded, f"execute ended (exit {process.returncode}) before broadcasting:\n{log.read_text()}"

        # What the dead process left: a broadcast written ahead, no outcome.
        with Store.open(treasury.store.url) as store:
            [sent] = store.broadcasts(record.id)
            assert (sent.status, store.get_proposal(record.id).status, store.executions(record.id)) == ("sent", "pending", [])
        deadline = time.monotonic() + 30
        while standin.rpc("eth_getTransactionReceipt", [sent.tx_hash]) is None and time.monotonic() < deadline:
            time.sleep(0.2)

        shown = run_cli(project, "show", record.id, "--json")
        assert shown.returncode == 0, shown.stderr
        assert '"status": "executed"' in shown.stdout
        again = run_cli(project, "execute", record.id, "--account", "TEST::3", "--yes")
        assert again.returncode == 1 and again.stderr.strip().count("\n") == 0
        assert f"proposal {record.id} is executed" in again.stderr

    assert count(proxy.forwarded, "eth_sendRawTransaction") == 1
    with Store.open(treasury.store.url) as store:
        [execution] = store.executions(record.id)
        assert execution.tx_hash == sent.tx_hash and execution.success
        assert [b.status for b in store.broadcasts(record.id)] == ["mined"]
        assert store.verify_audit_log()
    with live(standin.url):
        assert treasury.onchain_nonce() == nonce + 1
        assert token.balanceOf(recipient) - before == 25 * UNIT


def test_execution_by_another_tool_is_reconciled_and_rivals_superseded(make_treasury, owners, accounts, safe_deployer):
    """Someone executes a proposal outside this tool (Safe{Wallet}, a script): the next command records
    it from the Safe's ExecutionSuccess log, and the rejection at the same nonce becomes superseded."""
    recipient = accounts[6].address
    treasury, token = make_treasury(policy=tusd_policy(recipient))
    payment = signed_transfer(treasury, owners, recipient, "5 TUSD")
    rejection = treasury.reject(payment.id)
    later = treasury.propose_transfer(recipient, "1 TUSD")
    safe_tx = treasury.safe_tx(payment)
    receipt = execute_safe_tx(safe_tx, [sign_safe_tx(o, safe_tx) for o in owners[:2]], sender=safe_deployer,
                              version=treasury.version)

    fresh = Treasury.load(treasury.name, treasury.config_path)
    try:
        found = {r.proposal_id: r.outcome for r in fresh.reconcile() + fresh.reconciled}
        assert found == {payment.id: "executed", rejection.id: "superseded"}
        [execution] = fresh.store.executions(payment.id)
        assert execution.tx_hash == receipt.txn_hash and execution.block_number == receipt.block_number
        assert fresh.get(later.id).status == "pending"
        assert payment.safe_tx_hash in next(e for e in fresh.audit_log(rejection.id) if e.action == "status.changed").payload["note"]
        with pytest.raises(InvalidInput, match=f"proposal {rejection.id} is superseded"):
            fresh.sign(rejection.id, owners[0])
    finally:
        fresh.store.close()


def test_a_rival_is_superseded_by_name_without_historical_state(make_treasury, owners, accounts, safe_deployer,
                                                                  monkeypatch):
    """The rejection at a nonce another proposal used is named after that proposal's log when the
    log is recent, even on a node without historical state (here: the search for it is disabled)."""
    from treasury.execution import reconcile

    recipient = accounts[6].address
    treasury, _token = make_treasury(policy=tusd_policy(recipient))
    payment = signed_transfer(treasury, owners, recipient, "5 TUSD")
    rejection = treasury.reject(payment.id)
    safe_tx = treasury.safe_tx(payment)
    execute_safe_tx(safe_tx, [sign_safe_tx(o, safe_tx) for o in owners[:2]], sender=safe_deployer,
                    version=treasury.version)
    monkeypatch.setattr(reconcile, "_outcome_logs_for_nonce", lambda *_: [])  # a pruned node
    fresh = Treasury.load(treasury.name, treasury.config_path)
    try:
        found = {r.proposal_id: (r.outcome, r.detail) for r in fresh.reconcile() + fresh.reconciled}
        assert found[payment.id][0] == "executed" and found[rejection.id][0] == "superseded"
        assert payment.safe_tx_hash in found[rejection.id][1]
    finally:
        fresh.store.close()


def test_an_older_execution_is_found_by_bisecting_the_safe_nonce(payable, owners, accounts, standin, monkeypatch):
    """Past the recent-log window, the block where the Safe's nonce moved is found by bisection."""
    from treasury.execution import reconcile

    treasury, _token, recipient = payable
    with live(standin.url) as provider:
        first = signed_transfer(treasury, owners, recipient, "3 TUSD")
        safe_tx = treasury.safe_tx(first)
        receipt = execute_safe_tx(safe_tx, [sign_safe_tx(o, safe_tx) for o in owners[:2]], sender=accounts[3],
                                  version=treasury.version)
        second = signed_transfer(treasury, owners, recipient, "4 TUSD")  # the next nonce, executed by us later
        while provider.web3.eth.block_number < receipt.block_number + 3:  # the execution is now "old"
            time.sleep(0.3)
        monkeypatch.setattr(reconcile, "RECENT_BLOCKS", 1)
        fresh = Treasury.load(treasury.name, treasury.config_path)
        try:
            fresh.onchain_nonce()  # connecting reconciles
            assert [(r.proposal_id, r.outcome) for r in fresh.reconciled] == [(first.id, "executed")]
            [execution] = fresh.store.executions(first.id)
            assert (execution.tx_hash, execution.block_number) == (receipt.txn_hash, receipt.block_number)
            assert fresh.get(second.id).status == "pending"
        finally:
            fresh.store.close()


def test_a_broadcast_mined_after_its_proposal_was_settled_elsewhere(make_treasury, owners, accounts, safe_deployer, chain):
    """Our write-ahead transaction waits (lost by the node) while an owner executes the same proposal
    elsewhere; when ours is mined later it reverts, and reconciling closes it without touching the
    recorded execution (the store must not refuse every later command)."""
    from treasury.execution.send import sign_execution

    recipient = accounts[6].address
    treasury, _token = make_treasury(policy=tusd_policy(recipient))
    payment = signed_transfer(treasury, owners, recipient, "5 TUSD")
    safe_tx, signatures = treasury.safe_tx(payment), treasury.collected_signatures(payment.id)
    ours = sign_execution(safe_tx, signatures, accounts[3], treasury.version)
    treasury.store.record_broadcast(payment.id, tx_hash=ours.tx_hash, sender=ours.sender, sender_nonce=ours.sender_nonce,
                                    raw_tx=ours.raw, safe_nonce=payment.nonce, block_at_send=0, actor="test")
    theirs = execute_safe_tx(safe_tx, signatures, sender=safe_deployer, version=treasury.version)

    first = Treasury.load(treasury.name, treasury.config_path)
    try:
        first.onchain_nonce()
        assert {(r.proposal_id, r.outcome) for r in first.reconciled} == {(payment.id, "lost"), (payment.id, "executed")}
    finally:
        first.store.close()
    chain.provider.web3.eth.send_raw_transaction(ours.raw)  # the node finds ours again; it reverts (nonce used)
    later = Treasury.load(treasury.name, treasury.config_path)
    try:
        later.onchain_nonce()
        assert [(r.proposal_id, r.outcome) for r in later.reconciled] == [(payment.id, "late")]
        [execution] = later.store.executions(payment.id)
        assert execution.tx_hash == theirs.txn_hash and later.get(payment.id).status == "executed"
        assert [b.status for b in later.store.broadcasts(payment.id)] == ["mined"]
        assert later.verify_log()
    finally:
        later.store.close()


def test_an_execution_recorded_on_a_fork_is_reported_on_the_real_chain(make_treasury, owners, accounts, safe_deployer, chain):
    """A flow run on a throw-away copy with the real store leaves an 'executed' the chain never saw:
    reconciling says so (loudly) instead of letting anyone believe the vendor was paid."""
    recipient = accounts[6].address
    treasury, _token = make_treasury(policy=tusd_policy(recipient))
    payment = signed_transfer(treasury, owners, recipient, "5 TUSD")
    with chain.isolate():  # the copy: reverted when the block ends
        treasury.execute(payment.id, safe_deployer)
    fresh = Treasury.load(treasury.name, treasury.config_path)
    try:
        fresh.onchain_nonce()
        [found] = fresh.reconciled
        assert (found.proposal_id, found.outcome) == (payment.id, "not-on-chain")
        assert f"at nonce {payment.nonce}, but the Safe on this chain is at nonce {payment.nonce}" in found.detail
    finally:
        fresh.store.close()
