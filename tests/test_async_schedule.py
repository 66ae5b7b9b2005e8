"""Sign once, asynchronously (issue 11): schedule and cancel signatures collected one owner at a time
through the `treasury` CLI on anvil, stored and verified like SafeTx signatures.

Three owners (threshold 2) of a Safe 1.4.1 with TreasuryGuard v2. Each owner runs `treasury sign`
on its own, at its own time; `treasury schedule` then queues the proposal with no owner present.
One owner's `treasury sign --cancel` and `treasury cancel` veto it (the guard's cancel threshold is
1); a guardian cancels with `--guardian`. Bundles carry schedule and cancel signatures to a second
store. Bad signatures (a stranger's, one over another hash) are refused in one line and change
nothing. The chain's clock is pinned (tests/conftest.py): every timestamp here is exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import Cli, snapshot

DAY = 86_400


def policy_for(vendor: str, guardian: str) -> dict:
    return {
        "recipients": [vendor],
        "calls": [{"target": "TUSD", "function": "transfer(address,uint256)"}],
        "caps": [{"token": "TUSD", "amount": "100000", "period": "1d", "delay_threshold": "5000"}],
        "cancel_threshold": 1,
        "guardians": [guardian],
    }


@pytest.fixture
def setup(make_treasury, tmp_path, chain, accounts):
    vendor, guardian = accounts[4], accounts[6]
    treasury, token = make_treasury(policy_for(vendor.address, guardian.address))
    return treasury, vendor, guardian, Cli(tmp_path / "ape-config.yaml", chain)


def full_snapshot(treasury):
    """Everything stored: proposals, every signature of every purpose, schedule entries, the audit chain."""
    store = treasury.store
    base = snapshot(treasury)
    every = {p.id: [(s.purpose, s.owner, s.signed_hash, s.signature) for s in store.signatures(p.id, None)]
             for p in store.list_proposals()}
    entries = {p.id: [(e.entry_id, e.status) for e in store.schedule_entries(p.id)] for p in store.list_proposals()}
    return base, every, entries


def refused(run, *args, match: str):
    """One `Error:` line, a non-zero exit."""
    result = run(*args)
    assert result.exit_code != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert match in lines[0], lines[0]
    return lines[0]


def delayed_proposal(run, vendor, amount="6000 TUSD"):
    proposed = run.json("propose", "transfer", vendor.address, amount)  # above the 5,000 delay threshold
    assert proposed["verdict"]["outcome"] == "needs-delay" and proposed["verdict"]["error"] == "NotScheduled"
    return proposed["id"]


def test_owners_sign_at_different_times_then_schedule_and_veto_with_no_signer_present(setup, chain, accounts):
    treasury, vendor, _guardian, run = setup
    pid = delayed_proposal(run, vendor)

    # Owner 0 signs: one confirmation, the SafeTx and the guard's schedule hash (schedule nonce 0).
    first = run.json("sign", pid, "--account", "TEST::0", "--yes")
    assert [(s["purpose"], s["owner"], s["intent_nonce"]) for s in first["signed"]] == [
        ("safe_tx", accounts[0].address, None), ("schedule", accounts[0].address, 0)]
    schedule_hash = first["signed"][1]["signed_hash"]
    guard, record = treasury.guard(), treasury.get(pid)
    intent = (record.to, record.value, record.data, record.operation)
    assert schedule_hash == "0x" + bytes(guard.scheduleHash(*intent, 0)).hex()  # the guard's own hash
    needs = {n["purpose"]: n for n in first["needs"]}
    assert (needs["schedule"]["required"], needs["schedule"]["missing"]) == (2, 1)

    # One stored schedule signature is not enough: refused, saying how many are missing, nothing changes.
    before = full_snapshot(treasury)
    line = refused(run, "schedule", pid, "--account", "TEST::9", match="1 of the 2 schedule signatures")
    assert "1 missing" in line
    assert full_snapshot(treasury) == before

    # Owner 1 signs an hour later, owner 2 a day later: their signatures stay valid meanwhile.
    chain.pending_timestamp += 3600
    chain.mine()
    second = run.ok("sign", pid, "--account", "TEST::1", "--yes").stdout
    assert "signed the SafeTx" in second and "schedule hash (schedule nonce 0)" in second and "2 of 2" in second
    chain.pending_timestamp += DAY
    chain.mine()
    run.ok("sign", pid, "--account", "TEST::2", "--yes")
    stored = treasury.store.signatures(pid, "schedule")
    assert [s.owner for s in stored] == sorted((a.address for a in accounts[:3]), key=lambda a: int(a, 16))
    assert {s.signed_hash for s in stored} == {schedule_hash} and {s.intent_nonce for s in stored} == {0}

    # Signing again stores nothing and says so.
    refused(run, "sign", pid, "--account", "TEST::0", "--yes", match="has already signed the SafeTx and the schedule nonce 0")

    # No owner present: TEST::9 (not an owner) only pays.
    queued = run.json("schedule", pid, "--account", "TEST::9")
    assert queued["status"] == "scheduled" and queued["schedule"]["status"] == "queued"
    entry_id = queued["schedule"]["entry_id"]
    assert int(guard.intentState(bytes(guard.intentId(*intent)))[0]) == 1  # the nonce-0 signatures are spent

    shown = run.json("show", pid)
    sets = {(s["purpose"], s["over"]): s for s in shown["signature_sets"]}
    assert len(sets[("safe_tx", "the SafeTx")]["signers"]) == 3
    assert sets[("schedule", "schedule nonce 0")]["needed_now"] is False  # spent by the schedule
    cancel_set = sets[("cancel", f"cancel of entry {entry_id}")]
    assert (cancel_set["signers"], cancel_set["required"], cancel_set["missing"]) == ([], 1, 1)
    offline = run.json("show", pid, chain=False)
    assert {(s["purpose"], len(s["signers"]), s["required"]) for s in offline["signature_sets"]} == {
        ("safe_tx", 3, None), ("schedule", 3, None)}
    text = run.ok("show", pid).stdout
    assert "schedule nonce 0" in text and f"cancel of entry {entry_id}" in text and "0 of 1, 1 missing" in text

    # A minority veto: one owner's cancel signature (the Safe needs 2 to execute) cancels the entry.
    vetoed = run.ok("sign", pid, "--cancel", "--account", "TEST::2", "--yes").stdout
    assert f"signed the cancel of guard entry {entry_id} by {accounts[2].address}" in vetoed and "1 of 1" in vetoed
    assert treasury.threshold() == 2
    cancelled = run.json("cancel", pid, "--account", "TEST::9")
    assert cancelled["status"] == "pending" and cancelled["schedule"]["status"] == "cancelled"
    assert [e.status for e in treasury.store.schedule_entries(pid)] == ["cancelled"]
    (cancel_sig,) = treasury.store.signatures(pid, "cancel")
    assert (cancel_sig.owner, cancel_sig.entry_id) == (accounts[2].address, entry_id)
    actions = [e["action"] for e in run.json("log", "--proposal", pid, chain=False)["log"]]
    assert actions.count("signature.added") == 3 + 3 + 1 and "schedule.status" in actions
    assert run.json("log", chain=False)["verified"]

    # The intent is not taken again before the cancelled entry's eta; the spent nonce-0 signatures
    # are not used: the owners sign schedule nonce 1, the SafeTx they signed before is kept.
    refused(run, "schedule", pid, "--account", "TEST::9", match="takes it again from timestamp")
    eta = treasury.store.schedule_entries(pid)[0].eta
    chain.pending_timestamp = eta + 1
    chain.mine()
    refused(run, "schedule", pid, "--account", "TEST::9", match="0 of the 2 schedule signatures the guard needs for the schedule nonce 1")
    again = run.json("sign", pid, "--account", "TEST::1", "--yes")
    assert [(s["purpose"], s["intent_nonce"]) for s in again["signed"]] == [("schedule", 1)] and again["already"] == ["safe_tx"]
    # --signer still works, alongside the stored signature.
    requeued = run.json("schedule", pid, "--signer", "TEST::0", "--account", "TEST::9")
    assert requeued["schedule"]["entry_id"] == entry_id + 1
    assert len(treasury.store.signatures(pid, "schedule")) == 3 + 2

    # The second cancel of the intent needs one signature again, but not owner 2's: each owner
    # cancels an intent once until it runs.
    second_entry = entry_id + 1
    assert int(guard.cancelSignaturesRequired(second_entry)) == 1
    before = full_snapshot(treasury)
    refused(run, "sign", pid, "--cancel", "--account", "TEST::2", "--yes", match="already cancelled proposal")
    line = refused(run, "cancel", pid, "--signer", "TEST::2", "--account", "TEST::9",
                   match=f"0 of the 1 cancel signatures the guard needs for the cancel of entry {second_entry}: 1 missing")
    assert "1 owner(s) already cancelled this intent since it last ran" in line
    assert full_snapshot(treasury) == before
    run.ok("sign", pid, "--cancel", "--account", "TEST::0", "--yes")
    dropped = run.json("cancel", pid, "--account", "TEST::9", "--drop")
    assert dropped["status"] == "cancelled"
    assert treasury.store.verify_audit_log()


def test_guardian_cancels_alone_and_strangers_cannot(setup, accounts):
    treasury, vendor, guardian, run = setup
    pid = delayed_proposal(run, vendor)
    run.ok("sign", pid, "--account", "TEST::0", "--yes")
    run.ok("sign", pid, "--account", "TEST::1", "--yes")
    run.ok("schedule", pid, "--account", "TEST::9")
    before = full_snapshot(treasury)
    refused(run, "cancel", pid, "--guardian", "TEST::5", match="is not a guardian of guard")
    refused(run, "cancel", pid, "--guardian", "TEST::6", "--signer", "TEST::0", match="--guardian cancels alone")
    refused(run, "sign", pid, "--cancel", "--account", "TEST::5", "--yes", match="is not an owner")
    assert full_snapshot(treasury) == before
    cancelled = run.json("cancel", pid, "--guardian", "TEST::6")
    assert cancelled["guardian"] is True and cancelled["status"] == "pending"
    assert "cancelled by guardian " + guardian.address in treasury.store.audit_entries(pid)[-1].payload["note"]


def test_non_owner_and_wrong_hash_signatures_are_refused_and_change_nothing(setup, accounts, tmp_path):
    treasury, vendor, _guardian, run = setup
    pid = delayed_proposal(run, vendor)
    before = full_snapshot(treasury)
    # A stranger's `treasury sign`: neither the SafeTx nor the schedule signature is stored.
    refused(run, "sign", pid, "--account", "TEST::5", "--yes", match="is not an owner")
    assert full_snapshot(treasury) == before

    # Bundles: an owner's schedule signature over another hash (the next schedule nonce), and a
    # stranger's over the right one, are refused on import; nothing is stored.
    run.ok("sign", pid, "--account", "TEST::0", "--yes")
    good = tmp_path / "good.json"
    run.ok("export", pid, good, chain=False)
    bundle = json.loads(good.read_text())
    (entry,) = bundle["guard_signatures"]
    assert (entry["purpose"], entry["owner"], entry["intent_nonce"]) == ("schedule", accounts[0].address, "0")
    record = treasury.get(pid)
    next_nonce = treasury.schedule_message(pid, 1)
    from treasury.signatures.signing import sign_guard_message

    wrong_hash = sign_guard_message(accounts[1], next_nonce, treasury.version)
    stranger = sign_guard_message(accounts[5], treasury.schedule_message(pid), treasury.version)
    before = full_snapshot(treasury)
    cases = [
        ({**entry, "owner": accounts[1].address, "signature": "0x" + bytes(wrong_hash.export_signature()).hex()},
         "said to be by " + accounts[1].address),
        ({**entry, "owner": accounts[5].address, "signature": "0x" + bytes(stranger.export_signature()).hex()}, "is not an owner"),
        ({**entry, "signed_hash": next_nonce.hash_hex}, "states hash"),
    ]
    for index, (bad, message) in enumerate(cases):
        path = tmp_path / f"bad-{index}.json"
        path.write_text(json.dumps({**bundle, "guard_signatures": [bad]}))
        refused(run, "import", path, match=message)
        assert full_snapshot(treasury) == before, index
    # A stranger among the --signer of `schedule`: refused before anything is stored or sent, the
    # valid owner's new signature included.
    refused(run, "schedule", pid, "--signer", "TEST::1", "--signer", "TEST::5", "--account", "TEST::9", match="is not an owner")
    assert full_snapshot(treasury) == before and treasury.get(pid).status == record.status == "pending"


def test_bundles_carry_schedule_and_cancel_signatures_to_a_second_store(setup, accounts, tmp_path):
    treasury, vendor, _guardian, run = setup
    pid = delayed_proposal(run, vendor)
    # A second store (another machine) holds the same proposal and owner 1's signatures.
    other = treasury.__class__.load("ops", Path(run.config), store=str(tmp_path / "other.db"))
    twin = other.propose_transfer(vendor.address, "6000 TUSD")
    assert twin.safe_tx_hash == treasury.get(pid).safe_tx_hash
    signed = other.sign_all(twin.id, accounts[1])
    assert signed.schedule is not None and signed.schedule.intent_nonce == 0
    other.export_bundle(twin.id, tmp_path / "from-other.json")
    run.ok("sign", pid, "--account", "TEST::0", "--yes")
    imported = run.json("import", tmp_path / "from-other.json")
    assert imported["added"] == 2  # the SafeTx and the schedule signature of owner 1
    assert [s.owner for s in treasury.store.signatures(pid, "schedule")] == sorted(
        (accounts[0].address, accounts[1].address), key=lambda a: int(a, 16))
    # Importing again adds nothing.
    assert run.json("import", tmp_path / "from-other.json")["added"] == 0
    queued = run.json("schedule", pid, "--account", "TEST::9")

    # Owner 2's cancel signature travels back the other way, and cancels from the first store.
    other.store.add_schedule_entry(twin.id, guard=queued["schedule"]["guard"], entry_id=queued["schedule"]["entry_id"],
                                   eta=queued["schedule"]["eta"], expiry=queued["schedule"]["expiry"], actor="other")
    other.sign_cancel(twin.id, accounts[2])
    other.export_bundle(twin.id, tmp_path / "cancel.json")
    cancel_entries = [e for e in json.loads((tmp_path / "cancel.json").read_text())["guard_signatures"] if e["purpose"] == "cancel"]
    assert [(e["owner"], e["entry_id"]) for e in cancel_entries] == [(accounts[2].address, str(queued["schedule"]["entry_id"]))]
    assert run.json("import", tmp_path / "cancel.json")["added"] == 1
    assert run.json("cancel", pid, "--account", "TEST::9")["status"] == "pending"
    other.store.close()


def test_a_tiered_proposal_executes_only_once_enough_signatures_are_stored(make_treasury, tmp_path, chain, accounts):
    """A cap's tier: above 1,000 TUSD the guard wants 3 owner signatures, one more than the Safe's threshold."""
    vendor = accounts[4]
    policy = policy_for(vendor.address, accounts[6].address)
    policy["caps"][0].update(tier_above="1000", tier_signers=3)
    treasury, token = make_treasury(policy)
    run = Cli(tmp_path / "ape-config.yaml", chain)
    pid = run.json("propose", "transfer", vendor.address, "2000 TUSD")["id"]
    small = run.json("propose", "transfer", vendor.address, "900 TUSD")["id"]
    for alias in ("TEST::0", "TEST::1"):
        signed = run.json("sign", pid, "--account", alias, "--yes")
        assert [s["purpose"] for s in signed["signed"]] == ["safe_tx"]  # no delay: nothing to schedule
    before = full_snapshot(treasury), token.balanceOf(vendor.address)
    refused(run, "execute", pid, "--account", "TEST::9", "--yes", "--skip-rehearsal", match="NotEnoughSignatures")
    assert (full_snapshot(treasury), token.balanceOf(vendor.address)) == before
    run.ok("sign", pid, "--account", "TEST::2", "--yes")
    executed = run.json("execute", pid, "--account", "TEST::9", "--yes", "--skip-rehearsal")
    assert executed["status"] == "executed" and token.balanceOf(vendor.address) == 2000 * 10**6
    # Below the tier, the Safe's threshold is enough.
    for alias in ("TEST::0", "TEST::1"):
        run.ok("sign", small, "--account", alias, "--yes")
    assert run.json("execute", small, "--account", "TEST::9", "--yes", "--skip-rehearsal")["status"] == "executed"


def test_guard_messages_hash_as_eip712_typed_data_says():
    """The hashes computed without a chain are the typed data's EIP-712 hashes (what wallets sign)."""
    from eth_account.messages import encode_typed_data
    from eth_utils import keccak

    from treasury.signatures.guard_messages import cancel_message, schedule_message

    common = {"chain_id": 31337, "guard": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "safe": "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"}
    messages = [
        schedule_message(**common, to="0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", value=2**256 - 1, data=b"\xa9\x05" * 40,
                         operation=1, nonce=7),
        cancel_message(**common, entry_id=2**256 - 1),
    ]
    for message in messages:
        signable = encode_typed_data(full_message=message.typed_data)
        assert keccak(b"\x19" + signable.version + signable.header + signable.body) == message.hash == keccak(message.preimage)
    assert messages[0].hash != schedule_message(**{**common, "chain_id": 1}, to="0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
                                                value=2**256 - 1, data=b"\xa9\x05" * 40, operation=1, nonce=7).hash
    assert (messages[0].describe(), messages[1].describe()) == ("schedule nonce 7", f"cancel of entry {2**256 - 1}")
