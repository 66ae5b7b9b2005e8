"""The Treasury object end to end on anvil: propose, decode, verdict, sign, bundle, schedule, execute."""

import json
import sqlite3

import pytest
from builders import sign_by, tusd_policy

from treasury.errors import InvalidInput, TreasuryError
from treasury.store import TamperedRecord
from treasury.treasury import PolicyRefusal, StaleProposal

UNIT = 10**6
DAY = 86400


@pytest.fixture
def policy(accounts):
    vendor = accounts[6]
    return tusd_policy(vendor.address, amount="10,000", max_per_tx=8000, delay_threshold=5000,
                       more_caps=[{"token": "ETH", "amount": "2", "period": "1d"}], delay="48h", window="7d")


@pytest.fixture
def ops(make_treasury, policy):
    treasury, token = make_treasury(policy)
    return treasury, token


@pytest.fixture
def vendor(accounts):
    return accounts[6]


def dump(treasury):
    """Everything the store holds, to show a refused operation changed nothing."""
    return ([(p.id, p.status, p.safe_tx_hash) for p in treasury.proposals()],
            [(e.seq, e.entry_hash) for e in treasury.audit_log()])


def test_transfer_from_proposal_to_execution(ops, owners, vendor, safe_deployer):
    treasury, token = ops
    record = treasury.propose_transfer(vendor.address, "1,500.25 TUSD", title="invoice 42")
    assert (record.nonce, record.status, record.title) == (treasury.onchain_nonce(), "pending", "invoice 42")

    view = treasury.view(record.id)
    assert view.decoded.calls[0].description == f"transfer({vendor.address}, 1,500.25 TUSD) on TUSD"
    assert view.decoded.safe_tx_hash == record.safe_tx_hash
    assert view.verdict.outcome == "allow" and view.signers == () and view.threshold == 2

    treasury.sign(record.id, owners[0])
    treasury.sign(record.id, owners[1], kind="eth_sign")
    execution = treasury.execute(record.id, sender=safe_deployer)
    assert execution.success and token.balanceOf(vendor.address) == 1_500_250_000
    assert treasury.get(record.id).status == "executed"
    assert treasury.verify_log()


def test_nonces_follow_pending_proposals_and_rejection_reuses_one(ops, vendor, owners, safe_deployer):
    treasury, _ = ops
    first = treasury.propose_transfer(vendor.address, "1 TUSD")
    second = treasury.propose_transfer(vendor.address, "2 TUSD")
    assert second.nonce == first.nonce + 1
    rejection = treasury.reject(first.id)
    assert rejection.nonce == first.nonce and treasury.decode(rejection.id).calls[0].to == treasury.safe
    assert treasury.verdict(rejection.id).outcome == "allow"  # the guard lets the no-op through at once
    sign_by(treasury, rejection, owners)
    treasury.execute(rejection.id, sender=safe_deployer)
    assert treasury.get(first.id).status == "superseded"
    with pytest.raises(InvalidInput, match="is superseded"):
        treasury.sign(first.id, owners[0])


def test_policy_verdicts_before_anyone_signs(ops, vendor, accounts):
    treasury, _ = ops
    assert treasury.verdict(treasury.propose_transfer(vendor.address, "4,000 TUSD").id).outcome == "allow"
    too_big = treasury.verdict(treasury.propose_transfer(vendor.address, "9,000 TUSD").id)
    assert (too_big.outcome, too_big.error) == ("deny", "ExceedsPerTxLimit")
    stranger = treasury.verdict(treasury.propose_transfer(accounts[7].address, "1 TUSD").id)
    assert (stranger.outcome, stranger.error) == ("deny", "RecipientNotAllowed")
    held = treasury.verdict(treasury.propose_transfer(vendor.address, "6,000 TUSD").id)
    assert (held.outcome, held.error) == ("needs-delay", "NotScheduled")


def test_delayed_payment_is_scheduled_then_executed(ops, vendor, owners, safe_deployer, chain):
    treasury, token = ops
    record = treasury.propose_transfer(vendor.address, "6,000 TUSD")
    sign_by(treasury, record, owners)
    with pytest.raises(PolicyRefusal, match=r"^policy verdict needs-delay: .*NotScheduled"):
        treasury.execute(record.id, sender=safe_deployer)
    entry = treasury.schedule(record.id, signers=owners[:2], sender=safe_deployer)
    assert treasury.get(record.id).status == "scheduled" and entry.eta > chain.pending_timestamp
    with pytest.raises(PolicyRefusal, match=r"^policy verdict needs-delay: .*NotYetDue"):
        treasury.execute(record.id, sender=safe_deployer)
    chain.pending_timestamp += 2 * DAY + 60
    chain.mine()
    treasury.execute(record.id, sender=safe_deployer)
    assert token.balanceOf(vendor.address) == 6_000 * UNIT


def test_bundle_round_trip_for_an_offline_signer(ops, vendor, owners, safe_deployer, tmp_path):
    treasury, token = ops
    record = treasury.propose_transfer(vendor.address, "10 TUSD")
    treasury.sign(record.id, owners[0])
    path = tmp_path / "bundle.json"
    treasury.export_bundle(record.id, path)
    # the offline owner signs from the bundle alone
    import treasury.signatures as signatures
    from treasury.proposal.safe_tx import build_safe_tx

    data = json.loads(path.read_text())
    offline_tx = build_safe_tx(data["safe"], data["to"], int(data["value"]), bytes.fromhex(data["data"][2:]), data["operation"],
                               nonce=data["nonce"], chain_id=data["chain_id"], version=data["version"])
    data["signatures"].append({"owner": owners[2].address, "kind": "eip712",
                               "signature": "0x" + bytes(signatures.sign(owners[2], offline_tx).export_signature()).hex()})
    path.write_text(json.dumps(data))
    imported, added = treasury.import_bundle(path)
    assert (imported.id, added) == (record.id, 1)
    treasury.execute(record.id, sender=safe_deployer)
    assert token.balanceOf(vendor.address) == 10 * UNIT


def test_tampered_bundle_changes_nothing(ops, vendor, owners, tmp_path):
    treasury, _ = ops
    record = treasury.propose_transfer(vendor.address, "10 TUSD")
    treasury.sign(record.id, owners[0])
    path = tmp_path / "bundle.json"
    data = treasury.export_bundle(record.id, path)
    data["value"] = "1"
    path.write_text(json.dumps(data))
    before = dump(treasury)
    with pytest.raises(InvalidInput):
        treasury.import_bundle(path)
    assert dump(treasury) == before


@pytest.mark.parametrize("call,message", [
    (lambda t, v, o: t.propose_transfer(v, "1 DAI"), "unknown token 'DAI'"),
    (lambda t, v, o: t.propose_transfer(v, "0.0000001 TUSD"), "more than 6 decimals"),
    (lambda t, v, o: t.propose_transfer(v, "-1 TUSD"), "negative"),
    (lambda t, v, o: t.propose_transfer(v, "0 TUSD"), "zero"),
    (lambda t, v, o: t.propose_transfer(t.safe, "1 TUSD"), "is the Safe itself"),
    (lambda t, v, o: t.propose_transfer(v.lower()[:-1] + "A", "1 TUSD"), "not a 0x-prefixed|checksum"),
    (lambda t, v, o: t.propose_transfer("0x70997970c51812dc3A010C7d01b50e0d17dc79C8", "1 TUSD"), "checksum"),
    (lambda t, v, o: t.propose_threshold(4), r"threshold 4 must be between 1 and the number of owners \(3\)"),
    (lambda t, v, o: t.propose_add_owner(o[0].address, 2), "already an owner"),
    (lambda t, v, o: t.get("0123456789abcdef"), "0123456789abcdef"),
])
def test_bad_input_changes_nothing(ops, vendor, owners, call, message):
    treasury, _ = ops
    before = dump(treasury)
    with pytest.raises(InvalidInput, match=message) as error:
        call(treasury, vendor.address, owners)
    assert "\n" not in str(error.value)
    assert dump(treasury) == before


def test_non_owner_signature_is_refused_and_not_stored(ops, vendor, outsider):
    treasury, _ = ops
    record = treasury.propose_transfer(vendor.address, "1 TUSD")
    before = dump(treasury)
    with pytest.raises(InvalidInput, match="not an owner"):
        treasury.sign(record.id, outsider)
    assert dump(treasury) == before and treasury.store.signatures(record.id) == []


def test_duplicate_signature_is_refused(ops, vendor, owners):
    treasury, _ = ops
    record = treasury.propose_transfer(vendor.address, "1 TUSD")
    treasury.sign(record.id, owners[0])
    before = dump(treasury)
    with pytest.raises(InvalidInput, match="already signed"):
        treasury.sign(record.id, owners[0], kind="eth_sign")
    assert dump(treasury) == before


def test_stale_nonce_is_refused(ops, vendor):
    from treasury.proposal.build import token_transfer

    treasury, _ = ops
    assert treasury.onchain_nonce() == 1  # installing the guard used nonce 0
    before = dump(treasury)
    with pytest.raises(StaleProposal, match="nonce 0 was already used on chain"):
        treasury.propose(token_transfer(treasury.safe, treasury.book, vendor.address, "1 TUSD"), nonce=0)
    assert dump(treasury) == before


def test_a_tampered_stored_proposal_is_detected(ops, vendor, owners, tmp_path):
    treasury, _ = ops
    record = treasury.propose_transfer(vendor.address, "1 TUSD")
    database = sqlite3.connect(tmp_path / "store.db")
    database.execute("UPDATE proposals SET to_address = ? WHERE id = ?", (owners[2].address, record.id))
    database.commit()
    database.close()
    with pytest.raises(TamperedRecord):
        treasury.sign(record.id, owners[0])


def test_a_proposal_of_another_safe_is_refused(make_treasury, policy, vendor):
    first, _ = make_treasury(policy, salt_nonce=600, name="ops")
    record = first.propose_transfer(vendor.address, "1 TUSD")
    other, _ = make_treasury(policy, salt_nonce=601, name="other")
    with pytest.raises(InvalidInput, match="belongs to Safe"):
        other.get(record.id)


def test_owner_change_waits_in_the_queue_then_executes(ops, owners, outsider, safe_deployer, chain):
    treasury, _ = ops
    record = treasury.propose_add_owner(outsider.address, 2)
    verdict = treasury.verdict(record.id)
    assert (verdict.outcome, verdict.error) == ("needs-delay", "NotScheduled")
    assert "Safe administration: addOwnerWithThreshold" in treasury.decode(record.id).warnings
    sign_by(treasury, record, owners)
    treasury.schedule(record.id, signers=owners[:2], sender=safe_deployer)
    chain.pending_timestamp += 2 * DAY + 60
    chain.mine()
    treasury.execute(record.id, sender=safe_deployer)
    assert outsider.address in treasury.owners() and treasury.threshold() == 2


def test_batch_proposal_executes_every_call(ops, owners, vendor, safe_deployer):
    from treasury.proposal import build

    treasury, token = ops
    intents = [build.token_transfer(treasury.safe, treasury.book, vendor.address, f"{n} TUSD") for n in (1, 2, 3)]
    record = treasury.propose_batch(intents, title="three invoices")
    assert [c.function for c in treasury.decode(record.id).calls] == ["transfer"] * 3
    assert treasury.verdict(record.id).outcome == "allow"
    sign_by(treasury, record, owners)
    treasury.execute(record.id, sender=safe_deployer)
    assert token.balanceOf(vendor.address) == 6 * UNIT


def test_executing_out_of_nonce_order_is_refused(ops, owners, vendor, safe_deployer):
    treasury, _ = ops
    first = treasury.propose_transfer(vendor.address, "1 TUSD")
    second = treasury.propose_transfer(vendor.address, "2 TUSD")
    sign_by(treasury, second, owners)
    with pytest.raises(InvalidInput, match=f"nonce {second.nonce}; the Safe executes nonce {first.nonce} first"):
        treasury.execute(second.id, sender=safe_deployer)


def test_execution_needs_the_threshold(ops, owners, vendor, safe_deployer):
    treasury, _ = ops
    record = treasury.propose_transfer(vendor.address, "1 TUSD")
    treasury.sign(record.id, owners[0])
    with pytest.raises(InvalidInput, match="has 1 of 2 signatures"):
        treasury.execute(record.id, sender=safe_deployer)
    assert treasury.get(record.id).status == "pending"


def test_execute_refuses_what_the_policy_denies_unless_forced(ops, owners, accounts, safe_deployer):
    """The execute-time verdict check is the library's: nothing is signed or broadcast for a denied proposal."""
    treasury, token = ops
    record = treasury.propose_transfer(accounts[7].address, "1 TUSD")
    for owner in owners[:2]:
        treasury.sign(record.id, owner)
    before = dump(treasury)
    with pytest.raises(PolicyRefusal, match=r"^policy verdict deny: .*RecipientNotAllowed") as refused:
        treasury.execute(record.id, sender=safe_deployer)
    assert refused.value.verdict.error == "RecipientNotAllowed" and "\n" not in str(refused.value)
    assert dump(treasury) == before and treasury.store.broadcasts(record.id) == []
    # Forced, the policy no longer stops it: the Safe's own simulation does, with the guard's words.
    with pytest.raises(TreasuryError, match=r"would revert, nothing sent: recipient .* is not on the allowlist"):
        treasury.execute(record.id, sender=safe_deployer, force=True)
    assert token.balanceOf(accounts[7].address) == 0
