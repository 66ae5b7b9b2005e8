"""`treasury smoke-test` on the ceremony Safe (3-of-5, one contract owner): every key signs, balances
move by exactly the amount, a second run on a live network is refused, and a failure names its step."""

import json

import pytest
from click.testing import CliRunner

from treasury.ceremony.smoke_test import ContractOwnerSigner, SmokeTestFailed, plan_smoke_test, run_smoke_test
from treasury.cli import cli
from treasury.treasury import Treasury

MILLI_ETH = 10**15  # the default amount, 0.001 ETH


def signers(ceremony, inner=None):
    """Every owner's signer: the four key owners and the vault through its own owner."""
    return [*ceremony.eoas, ContractOwnerSigner("vault", (inner or ceremony.vault_signer,))]


def fee(chain, tx_hash):
    receipt = chain.provider.web3.eth.get_transaction_receipt(tx_hash)
    return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])


def balance(chain, address):
    return int(chain.provider.get_balance(address))


def smoke_runs(treasury):
    return [e for e in treasury.store.audit_entries() if e.action.startswith("smoke-test.")]


def force_live(monkeypatch):
    """Treasury.is_live says True: the branch a real network takes, without one."""
    monkeypatch.setattr(Treasury, "is_live", property(lambda self: True))


# --- the library --------------------------------------------------------------------------------------


def test_every_owner_signs_and_the_balances_move_exactly(ceremony, chain):
    treasury, funder = ceremony.treasury, ceremony.funder
    safe_before, funder_before = balance(chain, treasury.safe), balance(chain, funder.address)
    seen = []
    report = run_smoke_test(treasury, funder=funder, owners=signers(ceremony), on_step=seen.append)

    owners = treasury.owners()
    names = [treasury.addresses.name_of(o) for o in owners]
    assert sorted(names) == ["alice", "bob", "carol", "dave", "vault"]
    assert [s.name for s in seen] == ["once", "owners", "nonce", "policy", "fund", "propose", *(f"sign {n}" for n in names),
                                      "threshold sets", "rehearse", "execute", "balances", "record"]
    assert seen == list(report.steps)
    assert report.signers == tuple(owners) and report.amount == MILLI_ETH and report.token == "ETH"
    assert report.recipient == funder.address and report.executor == funder.address

    # Every key signed: five verified signatures, the vault's an EIP-1271 contract signature.
    stored = treasury.store.signatures(report.proposal_id)
    assert sorted(s.owner for s in stored) == sorted(owners)
    assert {s.owner: s.kind for s in stored}[ceremony.vault] == "contract"
    assert len(treasury.collected_signatures(report.proposal_id)) == 5
    assert treasury.get(report.proposal_id).status == "executed"

    # Balances exactly: the Safe is back where it was (it pays no gas); the funder paid only gas.
    assert balance(chain, treasury.safe) == safe_before
    assert balance(chain, funder.address) == funder_before - fee(chain, report.fund_tx) - fee(chain, report.execute_tx)

    [entry] = smoke_runs(treasury)
    assert entry.action == "smoke-test.passed" and entry.seq == report.audit_seq and entry.proposal_id == report.proposal_id
    assert entry.payload["safe"] == treasury.safe and entry.payload["chain_id"] == treasury.chain_id
    assert entry.payload["signers"] == owners and entry.payload["amount"] == str(MILLI_ETH)
    assert treasury.verify_log().ok


def test_a_second_run_on_a_live_network_is_refused_unless_again(ceremony, chain, monkeypatch):
    treasury = ceremony.treasury
    run_smoke_test(treasury, funder=ceremony.funder, owners=signers(ceremony))  # a development chain: no limit
    force_live(monkeypatch)
    height, proposals = chain.blocks.height, len(treasury.proposals())
    with pytest.raises(SmokeTestFailed) as refused:
        run_smoke_test(treasury, funder=ceremony.funder, owners=signers(ceremony))
    assert refused.value.step == "once" and not refused.value.sent
    assert "already ran" in str(refused.value) and "--again" in str(refused.value) and "nothing was sent" in str(refused.value)
    assert chain.blocks.height == height and len(treasury.proposals()) == proposals and len(smoke_runs(treasury)) == 1
    # --again lets the checks pass (nothing is sent by planning).
    plan = plan_smoke_test(treasury, funder=ceremony.funder, owners=signers(ceremony), again=True)
    assert plan.live and "running again as asked" in plan.steps[0].detail
    assert chain.blocks.height == height


def test_the_first_run_on_a_live_network_is_allowed(ceremony, chain, monkeypatch):
    force_live(monkeypatch)
    plan = plan_smoke_test(ceremony.treasury, funder=ceremony.funder, owners=signers(ceremony))
    assert plan.live and plan.steps[0].detail == "a live network: 0 earlier run(s)"


def test_a_recipient_the_policy_denies_fails_at_policy_with_nothing_sent(ceremony, chain):
    treasury = ceremony.treasury
    height = chain.blocks.height
    with pytest.raises(SmokeTestFailed) as failed:
        run_smoke_test(treasury, funder=ceremony.funder, owners=signers(ceremony), to="alice")
    assert failed.value.step == "policy" and not failed.value.sent
    assert "deny" in str(failed.value) and "alice" in str(failed.value)
    assert chain.blocks.height == height and treasury.proposals() == [] and smoke_runs(treasury) == []


def test_a_funder_without_the_amount_fails_at_fund_with_nothing_sent(ceremony, chain, accounts):
    treasury = ceremony.treasury
    empty = accounts.generate_test_account()
    chain.provider.set_balance(empty.address, 0)  # whatever the provider gives a new account: nothing here
    height = chain.blocks.height
    with pytest.raises(SmokeTestFailed) as failed:
        run_smoke_test(treasury, funder=empty, owners=signers(ceremony), to="treasurer")
    assert failed.value.step == "fund" and not failed.value.sent
    assert "holds 0 ETH, less than the 0.001 ETH" in str(failed.value)
    assert chain.blocks.height == height and treasury.proposals() == []


def test_an_erc20_amount_goes_in_and_out_exactly(make_treasury, owners, accounts, chain):
    """A token instead of ETH: the funder's and the Safe's token balances move by exactly the amount."""
    vendor = accounts[4]
    policy = {"recipients": [vendor.address], "calls": [{"target": "TUSD", "function": "transfer(address,uint256)"}],
              "caps": [{"token": "TUSD", "amount": "10000", "period": "1d"}]}
    treasury, token = make_treasury(policy)
    token.mint(vendor.address, 5 * 10**6, sender=vendor)
    safe_before = token.balanceOf(treasury.safe)
    report = run_smoke_test(treasury, funder=vendor, owners=owners, amount="5 TUSD")
    assert report.token == "TUSD" and report.amount == 5 * 10**6 and len(report.signers) == len(owners)
    assert token.balanceOf(treasury.safe) == safe_before and token.balanceOf(vendor.address) == 5 * 10**6
    assert "balances" in [s.name for s in report.steps]


@pytest.mark.parametrize("case", ["missing", "stranger", "twice"])
def test_the_signers_must_be_exactly_the_owners(ceremony, accounts, case):
    everyone = signers(ceremony)
    given = {"missing": everyone[:4], "stranger": [*everyone, accounts[5]], "twice": [*everyone, ceremony.eoas[0]]}[case]
    with pytest.raises(SmokeTestFailed) as failed:
        plan_smoke_test(ceremony.treasury, funder=ceremony.funder, owners=given)
    assert failed.value.step == "owners"
    expected = {"missing": "no signer for vault", "stranger": "is not an owner", "twice": "alice"}[case]
    assert expected in str(failed.value)


def test_a_wrong_inner_signer_fails_at_the_vaults_step_and_the_run_is_recorded(ceremony, chain, accounts):
    treasury = ceremony.treasury
    safe_before = balance(chain, treasury.safe)
    with pytest.raises(SmokeTestFailed) as failed:
        run_smoke_test(treasury, funder=ceremony.funder, owners=signers(ceremony, inner=accounts[7]))
    assert failed.value.step == "sign vault" and failed.value.sent
    pid = failed.value.proposal_id
    assert pid is not None and f"proposal {pid} is left open" in str(failed.value)
    # The four key owners signed before the vault's turn; the vault's bad signature was never stored.
    assert ceremony.vault not in {s.owner for s in treasury.store.signatures(pid)}
    assert balance(chain, treasury.safe) == safe_before + MILLI_ETH  # the funding went in
    [entry] = smoke_runs(treasury)
    assert entry.action == "smoke-test.failed" and entry.payload["step"] == "sign vault" and entry.proposal_id == pid


def test_a_balance_that_moves_by_another_amount_fails_at_balances(ceremony, chain, monkeypatch):
    """A recipient that ends up with one wei less than sent (as a skimming token would) is caught."""
    from treasury.ceremony import smoke_test

    treasury, recipient = ceremony.treasury, ceremony.funder.address
    real_balance, real_execute, executed = smoke_test._balance, smoke_test._execute, []

    def execute(*args):
        done = real_execute(*args)
        executed.append(done.block_number)
        return done

    def skimmed(token, holder, block="latest"):
        short = holder == recipient and executed and block == executed[0]
        return real_balance(token, holder, block) - (1 if short else 0)

    monkeypatch.setattr(smoke_test, "_execute", execute)
    monkeypatch.setattr(smoke_test, "_balance", skimmed)
    with pytest.raises(SmokeTestFailed) as failed:
        run_smoke_test(treasury, funder=ceremony.funder, owners=signers(ceremony))
    assert failed.value.step == "balances" and "not by exactly" in str(failed.value)
    assert smoke_runs(treasury)[-1].action == "smoke-test.failed"


@pytest.mark.unit
def test_threshold_sets_cover_every_owner():
    from treasury.ceremony.smoke_test import threshold_sets

    assert threshold_sets("abcde", 3) == [("a", "b", "c"), ("c", "d", "e")]
    assert threshold_sets("abcd", 2) == [("a", "b"), ("c", "d")]
    assert threshold_sets("abc", 3) == [("a", "b", "c")]
    assert threshold_sets("abcdefg", 3) == [("a", "b", "c"), ("d", "e", "f"), ("e", "f", "g")]
    assert threshold_sets("ab", 1) == [("a",), ("b",)]


def test_signing_as_a_contract_owner_twice_is_refused(ceremony):
    from treasury.store import DuplicateSignature

    treasury = ceremony.treasury
    record = treasury.propose_transfer("treasurer", "0.001 ETH")
    stored = treasury.sign_as_contract_owner(record.id, "vault", [ceremony.vault_signer])
    assert stored.owner == ceremony.vault and stored.kind == "contract"
    with pytest.raises(DuplicateSignature):
        treasury.sign_as_contract_owner(record.id, "vault", [ceremony.vault_signer])
    with pytest.raises(Exception, match="is not an owner"):
        treasury.sign_as_contract_owner(record.id, ceremony.funder.address, [ceremony.vault_signer])


# --- the CLI --------------------------------------------------------------------------------------------


OWNER_OPTIONS = ["--owner", "TEST::0", "--owner", "TEST::1", "--owner", "TEST::2", "--owner", "TEST::3",
                 "--owner-safe", "vault", "--inner", "TEST::6"]


@pytest.fixture
def smoke(ceremony, tmp_path, chain, monkeypatch):
    """Runs `treasury smoke-test ...` against the ceremony treasury's config, on the session's anvil as
    a development network (APE_FOUNDRY_HOST + ethereum:local:foundry) or, with live=True, reached by its
    URL: an ad-hoc network, which the tool counts as live."""
    monkeypatch.setenv("APE_FOUNDRY_HOST", chain.provider.uri)
    config = tmp_path / "ceremony" / "ape-config.yaml"

    def run(*words, live=False):
        network = chain.provider.uri if live else "ethereum:local:foundry"
        args = ["smoke-test", "--funder", "TEST::8", *words, "--yes", "--config", config, "--network", network]
        return CliRunner(mix_stderr=False).invoke(cli, [str(w) for w in args])

    return run


def test_the_cli_runs_it_and_reports_every_step(ceremony, smoke, chain):
    treasury, funder = ceremony.treasury, ceremony.funder
    safe_before, funder_before = balance(chain, treasury.safe), balance(chain, funder.address)
    result = smoke(*OWNER_OPTIONS, "--json")
    assert result.exit_code == 0, result.stderr
    done = json.loads(result.stdout)
    assert done["passed"] is True and done["amount"] == str(MILLI_ETH) and done["token"] == "ETH"
    assert sorted(done["signers"]) == sorted(treasury.owners())
    steps = [s["name"] for s in done["steps"]]
    assert steps[:6] == ["once", "owners", "nonce", "policy", "fund", "propose"]
    assert steps[-5:] == ["threshold sets", "rehearse", "execute", "balances", "record"]
    assert sorted(steps[6:-5]) == ["sign alice", "sign bob", "sign carol", "sign dave", "sign vault"]
    assert balance(chain, treasury.safe) == safe_before
    assert balance(chain, funder.address) == funder_before - fee(chain, done["fund_tx"]) - fee(chain, done["execute_tx"])
    assert treasury.get(done["proposal_id"]).status == "executed"

    # A development chain runs it again, printing each step for people.
    again = smoke(*OWNER_OPTIONS)
    assert again.exit_code == 0, again.stderr
    for text in ("once", "sign vault", "EIP-1271 checked", "threshold sets", "balances", "smoke test passed"):
        assert text in again.stdout, text
    assert [e.action for e in smoke_runs(treasury)] == ["smoke-test.passed"] * 2

    # Reached by URL the network is live: a third run is refused before anything is sent.
    height = chain.blocks.height
    refused = smoke(*OWNER_OPTIONS, live=True)
    assert refused.exit_code == 1 and "step 'once'" in refused.stderr and "--again" in refused.stderr
    assert refused.stderr.count("\n") == 1 and chain.blocks.height == height

    # --again runs it: the money goes in, then this ad-hoc network cannot be forked for the rehearsal,
    # so the run stops there, names the step and is recorded as failed (money moved).
    safe_before = balance(chain, treasury.safe)
    stopped = smoke(*OWNER_OPTIONS, "--again", live=True)
    assert stopped.exit_code == 1 and "step 'rehearse'" in stopped.stderr and "cannot fork" in stopped.stderr
    assert "is left open" in stopped.stderr and "nothing was sent" not in stopped.stderr
    assert balance(chain, treasury.safe) == safe_before + MILLI_ETH
    started, last = smoke_runs(treasury)[-2:]  # live: written down as started before the funding went out
    assert started.action == "smoke-test.started" and started.payload["fund_tx"] is None
    assert last.action == "smoke-test.failed" and last.payload["step"] == "rehearse" and last.payload["live"] is True
    assert last.payload["started_seq"] == started.seq


def test_the_cli_names_the_failing_step_in_one_line(ceremony, smoke, chain):
    height = chain.blocks.height
    denied = smoke(*OWNER_OPTIONS, "--to", "alice")
    assert denied.exit_code == 3 and "step 'policy'" in denied.stderr and denied.stderr.count("\n") == 1
    tokens = smoke(*OWNER_OPTIONS, "--amount", "1 TUSD")  # the policy allows no TUSD transfer call here
    assert tokens.exit_code == 3 and "step 'policy'" in tokens.stderr and "CallNotAllowed" in tokens.stderr
    unknown = smoke(*OWNER_OPTIONS, "--amount", "1 DOGE")
    assert unknown.exit_code == 1 and "step 'amount'" in unknown.stderr and "unknown token" in unknown.stderr
    missing = smoke(*OWNER_OPTIONS[:8])
    assert missing.exit_code == 1 and "step 'owners'" in missing.stderr and "vault" in missing.stderr
    alone = smoke(*OWNER_OPTIONS[:10])
    assert alone.exit_code == 1 and "--inner" in alone.stderr
    assert chain.blocks.height == height and ceremony.treasury.proposals() == []


# --- the store's record of a run ---------------------------------------------------------------------------


def test_the_store_keeps_a_run_as_an_audit_entry_and_refuses_bad_ones(tmp_path):
    from eth_utils import to_checksum_address

    from treasury.errors import InvalidInput
    from treasury.store import Store

    safe = "0x" + "ab" * 20
    with Store.open(tmp_path / "store.db") as store:
        seq = store.add_smoke_test(31337, safe, "passed", {"amount": "1"}, "alice")
        [entry] = store.audit_entries()
        assert (entry.seq, entry.action, entry.proposal_id) == (seq, "smoke-test.passed", None)
        assert entry.payload == {"amount": "1", "chain_id": 31337, "safe": to_checksum_address(safe)}
        with pytest.raises(InvalidInput, match="not one of passed, failed"):
            store.add_smoke_test(31337, safe, "maybe", {}, "alice")
        with pytest.raises(Exception, match="proposal"):
            store.add_smoke_test(31337, safe, "failed", {}, "alice", proposal_id="0123456789abcdef")
        assert len(store.audit_entries()) == 1 and store.verify_audit_log().ok


# --- the once-only rule survives a crash and a concurrent run ----------------------------------------------


def test_a_run_killed_after_funding_still_blocks_the_next_run_on_a_live_network(ceremony, chain, monkeypatch):
    from treasury.ceremony import smoke_test

    treasury = ceremony.treasury
    force_live(monkeypatch)

    def killed(*_args):
        raise KeyboardInterrupt  # the process dies between funding and proposing: no failure is recorded

    monkeypatch.setattr(smoke_test, "_propose", killed)
    safe_before = balance(chain, treasury.safe)
    with pytest.raises(KeyboardInterrupt):
        run_smoke_test(treasury, funder=ceremony.funder, owners=signers(ceremony))
    assert balance(chain, treasury.safe) == safe_before + MILLI_ETH  # the money went in
    [started] = smoke_runs(treasury)
    assert started.action == "smoke-test.started" and started.payload["safe"] == treasury.safe
    monkeypatch.undo()
    force_live(monkeypatch)
    height = chain.blocks.height
    with pytest.raises(SmokeTestFailed) as refused:
        run_smoke_test(treasury, funder=ceremony.funder, owners=signers(ceremony))
    assert refused.value.step == "once" and "started at" in str(refused.value) and "--again" in str(refused.value)
    assert chain.blocks.height == height


def test_the_rule_is_checked_again_atomically_when_the_run_starts(ceremony, chain, monkeypatch):
    """A run planned while no other had started is still refused if one starts before it funds."""
    from treasury.ceremony.smoke_test import carry_out

    treasury = ceremony.treasury
    force_live(monkeypatch)
    plan = plan_smoke_test(treasury, funder=ceremony.funder, owners=signers(ceremony))
    treasury.store.begin_smoke_test(treasury.chain_id, treasury.safe, {}, "another terminal")  # a concurrent run
    height = chain.blocks.height
    with pytest.raises(SmokeTestFailed) as refused:
        carry_out(plan)
    assert refused.value.step == "once" and not refused.value.sent and "already ran" in str(refused.value)
    assert chain.blocks.height == height and [e.actor for e in smoke_runs(treasury)] == ["another terminal"]


def test_begin_smoke_test_refuses_an_earlier_run_of_the_same_safe_unless_again(tmp_path):
    from treasury.store import InvalidTransition, Store

    safe, other = "0x" + "ab" * 20, "0x" + "cd" * 20
    with Store.open(tmp_path / "store.db") as store:
        store.add_smoke_test(1, safe, "failed", {"step": "fund"}, "alice")  # a run recorded before the rule existed
        with pytest.raises(InvalidTransition, match=r"failed at .*audit entry 1"):
            store.begin_smoke_test(1, safe, {}, "alice")
        assert store.begin_smoke_test(5, safe, {}, "alice") == 2  # another chain
        assert store.begin_smoke_test(1, other, {}, "alice") == 3  # another Safe
        with pytest.raises(InvalidTransition, match="started at"):
            store.begin_smoke_test(1, other, {}, "alice")
        assert store.begin_smoke_test(1, safe, {}, "alice", again=True) == 4
        assert [e.action for e in store.audit_entries()][1:] == ["smoke-test.started"] * 3
        assert store.verify_audit_log().ok


def test_a_failure_that_cannot_be_recorded_is_said_on_stderr(capsys):
    from types import SimpleNamespace as NS

    from treasury.ceremony.smoke_test import _record_failure

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    treasury = NS(chain_id=1, safe="0x" + "ab" * 20, actor="t", store=NS(add_smoke_test=broken))
    plan = NS(treasury=treasury, token=NS(symbol="ETH"), amount=1, funder=NS(address="0xF"), recipient="0xF",
              executor=NS(address="0xF"), live=True, signers=())
    _record_failure(plan, SmokeTestFailed("execute", "reverted", sent=True), None, 7)  # type: ignore[arg-type]
    assert "could not be recorded (RuntimeError: disk full); its started entry still counts" in capsys.readouterr().err


# --- fees on OP-stack chains, the amount and the nonce -------------------------------------------------------


def test_an_op_stack_l1_fee_is_part_of_what_the_gas_payer_paid(ceremony, chain, monkeypatch):
    """An OP-stack receipt adds `l1Fee` (hex): the funder paid it on top of gasUsed x price; the check is exact."""
    from treasury.ceremony import smoke_test

    l1_fee = 123_456_789
    paid: list[tuple[str, int]] = []  # (sender, block) of every receipt read: each charged the L1 fee
    real_receipt, real_balance = smoke_test._receipt, smoke_test._balance

    def op_receipt(tx_hash):
        receipt = dict(real_receipt(tx_hash))
        if (receipt["from"], receipt["blockNumber"]) not in paid:
            paid.append((receipt["from"], receipt["blockNumber"]))
        return {**receipt, "l1Fee": hex(l1_fee)}

    def charged(token, holder, block="latest"):
        at = chain.blocks.height if block == "latest" else block
        return real_balance(token, holder, block) - l1_fee * sum(1 for who, b in paid if who == holder and b <= at)

    monkeypatch.setattr(smoke_test, "_receipt", op_receipt)
    monkeypatch.setattr(smoke_test, "_balance", charged)
    report = run_smoke_test(ceremony.treasury, funder=ceremony.funder, owners=signers(ceremony))
    assert [who for who, _ in paid] == [ceremony.funder.address] * 2  # funding and execution: the funder sent both
    steps = {s.name: s.detail for s in report.steps}
    assert "includes its gas fee, any L1 data fee too" in steps["fund"]
    assert "less its execution fee, any L1 data fee included" in steps["balances"]
    assert smoke_test.paid_fee({"gasUsed": 2, "effectiveGasPrice": 3}) == 6
    assert smoke_test.paid_fee({"gasUsed": 2, "effectiveGasPrice": "0x3", "l1Fee": "0x10"}) == 22


def test_a_zero_amount_and_an_open_proposal_at_the_safes_nonce_are_refused_before_funding(ceremony, chain):
    treasury = ceremony.treasury
    height = chain.blocks.height
    with pytest.raises(SmokeTestFailed) as zero:
        plan_smoke_test(treasury, funder=ceremony.funder, owners=signers(ceremony), amount="0 ETH")
    assert zero.value.step == "amount" and "is zero" in str(zero.value) and not zero.value.sent  # the book refuses it
    held = treasury.propose_transfer("treasurer", "0.01 ETH", title="waiting")
    assert held.nonce == treasury.onchain_nonce()
    with pytest.raises(SmokeTestFailed) as blocked:
        run_smoke_test(treasury, funder=ceremony.funder, owners=signers(ceremony))
    assert blocked.value.step == "nonce" and f"open proposal {held.id} holds the Safe's nonce" in str(blocked.value)
    assert not blocked.value.sent and chain.blocks.height == height
    treasury.drop(held.id, "not now")
    assert plan_smoke_test(treasury, funder=ceremony.funder, owners=signers(ceremony)).nonce == held.nonce
