"""Denied proposals do not block the queue (issue 14, item 4): drafts and dropping.

The store part (schema version 5: the drafts table, its migration and its integrity checks) runs on
SQLite and PostgreSQL like tests/test_store_v4.py; the CLI part runs `treasury` on anvil like
tests/test_cli.py: a denied `propose` exits 3 with nothing stored and no nonce taken, `--force`
keeps a draft without a nonce, `propose draft` turns it into a proposal once the policy allows it,
and `drop` frees a pending proposal's nonce locally, refused once the nonce is used, the proposal
executed, or it waits in the guard's queue.
"""

from __future__ import annotations

from typing import Any

import pytest
from store_db import StoreDB
from test_cli import Cli, policy_for, snapshot
from test_remote_cli import no_laptop_store, team  # noqa: F401 - team: the server fixture
from test_store import SAFE, TO, propose

from treasury.errors import InvalidInput
from treasury.store import InvalidTransition, Store, TamperedRecord, UnknownProposal
from treasury.store.schema import Base

DAY = 86_400


def draft(store: Store, **overrides: Any):
    fields: dict[str, Any] = {"chain_id": 1, "safe": SAFE, "to": TO, "value": 5, "data": b"\xa9\x05\x9c\xbb" + bytes(64),
                              "title": "pay a stranger", "description": "5 wei to a stranger", "proposer": "alice",
                              "actor": "alice", "reason": "recipient is not allowlisted"}
    fields.update(overrides)
    return store.add_draft(**fields)


# ---- the store: schema version 5 -------------------------------------------------------------------


def test_drafts_are_kept_promoted_and_dropped_with_their_audit_entries(store: Store):
    kept, other = draft(store), draft(store, title="another")
    assert (kept.status, kept.proposal_id, kept.value) == ("draft", None, 5)
    assert [d.id for d in store.drafts(safe=SAFE, chain_id=1)] == [kept.id, other.id]
    proposal = propose(store, 3, from_draft=kept.id)
    promoted = store.get_draft(kept.id)
    assert (promoted.status, promoted.proposal_id) == ("promoted", proposal.id)
    dropped = store.drop_draft(other.id, actor="bob", note="paid another way")
    assert (dropped.status, dropped.note) == ("dropped", "paid another way")
    assert store.drafts(safe=SAFE, chain_id=1) == [] and len(store.drafts(status=None)) == 2
    entries = store.audit_entries()
    assert [e.action for e in entries] == ["draft.added", "draft.added", "proposal.added", "draft.promoted", "draft.dropped"]
    assert entries[3].proposal_id == proposal.id and entries[0].payload["draft_id"] == kept.id
    assert store.verify_audit_log()


def test_a_dropped_proposal_records_an_execution_that_used_its_nonce_only(store: Store):
    """Cancelled locally, run anyway by whoever held its signatures: the chain's fact is kept."""
    h32 = "0x" + "ab" * 32
    dropped = propose(store, 1)
    store.set_status(dropped.id, "cancelled", "alice", "dropped: wrong amount")
    with pytest.raises(InvalidTransition):  # a reverted call leaves the nonce unused: nothing ran
        store.record_execution(dropped.id, tx_hash=h32, block_number=3, gas_used=1, success=False, executor=TO,
                               actor="bob", nonce_consumed=False)
    store.record_execution(dropped.id, tx_hash=h32, block_number=3, gas_used=1, success=True, executor=TO, actor="bob")
    assert store.get_proposal(dropped.id).status == "executed" and len(store.executions(dropped.id)) == 1
    assert store.audit_entries(dropped.id)[-1].payload["status_from"] == "cancelled"
    assert store.verify_audit_log()


def test_a_final_draft_stays_final_and_the_store_unchanged(db: StoreDB):
    with db.open() as store:
        kept = draft(store)
        store.drop_draft(kept.id, actor="bob")
        before = db.dump()
        with pytest.raises(InvalidTransition):
            store.drop_draft(kept.id, actor="bob")
        with pytest.raises(InvalidTransition):  # the proposal is not stored without its draft's promotion
            propose(store, 1, from_draft=kept.id)
        with pytest.raises(UnknownProposal):
            store.get_draft("00" * 8)
        assert db.dump() == before


def test_migration_from_v4_adds_drafts_and_is_audited(db: StoreDB):
    with db.open() as store:
        first = propose(store, 1)
        audit = store.audit_entries()
    db.execute("DROP TABLE owner_proofs", "DROP TABLE drills", "DROP TABLE drafts", "UPDATE store_meta SET value = '4' WHERE key = 'schema_version'")
    assert "drafts" not in db.tables()
    with db.open() as store:
        assert db.query("SELECT value FROM store_meta WHERE key = 'schema_version'") == [("6",)]
        entries = store.audit_entries()
        assert entries[:-2] == audit and [(e.action, e.payload) for e in entries[-2:]] == [
            ("store.migrated", {"from": 4, "to": 5}), ("store.migrated", {"from": 5, "to": 6})]
        assert store.get_proposal(first.id) == first
        draft(store)
        assert store.verify_audit_log()
    fresh = db.fresh()
    Store.open(fresh.url).close()
    assert db.schema("drafts") == fresh.schema("drafts")
    with db.open() as again:
        assert [e.action for e in again.audit_entries()].count("store.migrated") == 2


def _changed(value: Any) -> Any:
    if isinstance(value, (bytes, memoryview)):
        return bytes(value) + b"\x00"
    if value is None:
        return "0" * 16
    if isinstance(value, str):
        if not value:
            return "edited"
        if value in ("draft", "promoted", "dropped"):
            return "dropped" if value == "draft" else "draft"
        return value[:-1] + chr(ord(value[-1]) ^ 1)
    return int(value) ^ 1


@pytest.mark.parametrize("column", [c.name for c in Base.metadata.tables["drafts"].columns if c.name != "proposal_id"])
def test_a_draft_edited_behind_the_store_is_detected(db: StoreDB, column: str):
    with db.open() as store:
        kept = draft(store)
        assert store.verify_audit_log()
        ((value,),) = db.query(f"SELECT {column} FROM drafts")
        db.execute(f"UPDATE drafts SET {column} = :v", v=_changed(value))
        assert not store.verify_audit_log(), f"changing drafts.{column} went unnoticed"
        if column not in ("id", "status", "note"):  # status and note are checked against the log only
            with pytest.raises(TamperedRecord):
                store.get_draft(kept.id)


def test_a_draft_pointed_at_another_proposal_or_deleted_is_detected(db: StoreDB):
    with db.open() as store:
        kept = draft(store)
        real, other = propose(store, 1, from_draft=kept.id), propose(store, 2)
        assert store.get_draft(kept.id).proposal_id == real.id
        db.update("drafts", "1 = 1", proposal_id=other.id)
        assert not store.verify_audit_log()
        db.update("drafts", "1 = 1", proposal_id=real.id)
        assert store.verify_audit_log()
        db.execute("DELETE FROM drafts")
        report = store.verify_audit_log()
        assert not report and "missing from the store" in (report.problem or "")


# ---- the CLI on anvil ------------------------------------------------------------------------------


@pytest.fixture
def setup(make_treasury, tmp_path, chain, accounts):
    vendor = accounts[4]
    treasury, token = make_treasury(policy_for(vendor.address))
    return treasury, token, vendor, Cli(tmp_path / "ape-config.yaml", chain)


def execute(treasury, record, accounts) -> None:
    for owner in accounts[:2]:
        treasury.sign(record.id, owner)
    treasury.execute(record.id, accounts[9], skip_rehearsal=True)


def execute_outside_the_store(treasury, record, sender):
    """execTransaction with the proposal's stored signatures straight through ape: the store is not told."""
    from treasury.chain.safe import safe_instance

    signatures = b"".join(s.signature for s in treasury.store.signatures(record.id))  # sorted by owner
    safe = safe_instance(treasury.safe, treasury.version)
    return safe.execTransaction(record.to, record.value, record.data, record.operation, record.safe_tx_gas,
                                record.base_gas, record.gas_price, record.gas_token, record.refund_receiver,
                                signatures, sender=sender)


def test_a_denied_proposal_is_refused_with_exit_3_and_nothing_stored(setup, accounts):
    treasury, token, vendor, run = setup
    before = snapshot(treasury)
    refused = run("propose", "transfer", accounts[6].address, "10 TUSD")
    assert refused.exit_code == 3 and refused.stdout == ""
    assert refused.stderr.startswith("Error: the policy denies this proposal, nothing stored")
    assert "--force" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert snapshot(treasury) == before and treasury.store.drafts() == []
    # No nonce was taken: the next allowed proposal gets the chain's.
    assert run.json("propose", "transfer", vendor.address, "1 TUSD")["nonce"] == treasury.onchain_nonce()


def test_force_keeps_a_draft_that_is_listed_and_proposed_once_allowed(setup, accounts, chain):
    treasury, token, vendor, run = setup
    execute(treasury, treasury.propose_transfer(vendor.address, "5000 TUSD"), accounts)
    execute(treasury, treasury.propose_transfer(vendor.address, "4000 TUSD"), accounts)  # 1,000 TUSD left today
    kept = run.json("propose", "transfer", vendor.address, "2000 TUSD", "--title", "invoice 7", "--force")
    assert kept["verdict"]["outcome"] == "deny" and kept["draft"]["status"] == "draft"
    did = kept["draft"]["id"]
    assert kept["draft"]["title"] == "invoice 7" and kept["draft"]["reason"] == kept["verdict"]["reason"]
    assert [p.status for p in treasury.proposals()] == ["executed", "executed"]  # no proposal, no nonce
    listed = run.json("list", chain=False)  # --json: the proposals only, no draft among them
    assert [p["status"] for p in listed] == ["executed", "executed"] and all("kind" not in p for p in listed)
    assert [(d["id"], d["kind"]) for d in run.json("list", "--status", "draft", chain=False)] == [(did, "draft")]
    text = run.ok("list", chain=False).stdout
    assert "drafts" in text and did in text and "invoice 7" in text
    forced_text = run.ok("propose", "transfer", vendor.address, "3000 TUSD", "--force").stdout
    assert "kept as draft" in forced_text and "treasury propose draft" in forced_text

    still = run("propose", "draft", did)  # the budget is still spent: denied, the draft kept
    assert still.exit_code == 3 and "the draft is kept" in still.stderr
    assert treasury.store.get_draft(did).status == "draft"

    chain.pending_timestamp = chain.pending_timestamp + 2 * DAY  # the spending has left the cap's sliding window
    chain.mine()
    proposed = run.json("propose", "draft", did)
    assert proposed["verdict"]["outcome"] == "allow" and proposed["title"] == "invoice 7"
    assert proposed["nonce"] == treasury.onchain_nonce()
    promoted = treasury.store.get_draft(did)
    assert (promoted.status, promoted.proposal_id) == ("promoted", proposed["id"])
    again = run("propose", "draft", did)
    assert again.exit_code == 1 and "promoted" in again.stderr
    assert [p["id"] for p in run.json("list", chain=False)][-1] == proposed["id"]
    assert did not in [d["id"] for d in run.json("list", "--status", "draft", chain=False)]  # the 3000 TUSD draft stays
    assert treasury.store.verify_audit_log()


def test_drop_frees_a_pending_nonce_and_drops_drafts(setup, accounts):
    treasury, token, vendor, run = setup
    base = treasury.onchain_nonce()
    first = run.json("propose", "transfer", vendor.address, "1 TUSD")
    second = run.json("propose", "transfer", vendor.address, "2 TUSD")
    assert (first["nonce"], second["nonce"]) == (base, base + 1)
    dropped = run.ok("drop", first["id"], "--reason", "sent twice").stdout
    assert "dropped locally" in dropped and "no transaction" in dropped
    assert second["id"] in dropped and f"nonce {base}" in dropped  # the later proposal waits on the freed nonce
    assert "held elsewhere stay valid" in dropped and f"treasury reject {first['id']}" in " ".join(dropped.split())
    assert treasury.get(first["id"]).status == "cancelled"
    last = treasury.store.audit_entries(first["id"])[-1]
    assert last.payload["status_to"] == "cancelled" and "sent twice" in last.payload["note"]
    assert run.json("propose", "transfer", vendor.address, "3 TUSD")["nonce"] == base  # the freed nonce is reused

    kept = run.json("propose", "transfer", accounts[6].address, "1 TUSD", "--force")["draft"]["id"]
    signed = run.json("propose", "transfer", accounts[6].address, "2 TUSD", "--force", "--account", "TEST::0")["draft"]
    assert signed["proposer"] == accounts[0].address  # the proposing account, as for a proposal
    assert treasury.store.get_draft(kept).proposer == treasury.actor
    run.ok("drop", signed["id"])
    assert run.json("drop", kept) == {"kind": "draft", "id": kept, "nonce": None, "freed": False, "waiting": [],
                                      "warning": None}
    assert treasury.store.get_draft(kept).status == "dropped" and run.json("list", "--status", "draft", chain=False) == []
    unknown = run("drop", "00" * 8)
    assert unknown.exit_code == 1 and unknown.stderr.startswith("Error: no draft")
    assert treasury.store.verify_audit_log()


def one_line(result, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_drop_is_refused_once_executed_rejected_or_queued(setup, accounts):
    treasury, token, vendor, run = setup
    paid = treasury.propose_transfer(vendor.address, "1 TUSD")
    execute(treasury, paid, accounts)
    assert one_line(run("drop", paid.id)) == (f"Error: proposal {paid.id} is executed; only a pending or scheduled "
                                               "proposal can be dropped")

    # Its nonce used by its rejection: the CLI reconciles first, so it is superseded, not "nonce already used".
    doubled = treasury.propose_transfer(vendor.address, "2 TUSD")
    rejection = treasury.reject(doubled.id)
    execute(treasury, rejection, accounts)
    assert one_line(run("drop", doubled.id)) == (f"Error: proposal {doubled.id} is superseded; only a pending or "
                                                  "scheduled proposal can be dropped")

    delayed = run.json("propose", "transfer", vendor.address, "6000 TUSD")
    assert delayed["verdict"]["outcome"] == "needs-delay"
    run.ok("schedule", delayed["id"], "--signer", "TEST::0", "--signer", "TEST::1", "--account", "TEST::9")
    before = snapshot(treasury)
    queued = one_line(run("drop", delayed["id"]))
    assert "live guard queue entry" in queued and "treasury cancel" in queued
    assert snapshot(treasury) == before and treasury.get(delayed["id"]).status == "scheduled"


def test_drop_of_a_proposal_whose_nonce_was_used_since_the_last_reconcile_is_refused(setup, accounts):
    """The "nonce already used" branch: reachable from the library, whose Treasury reconciles once per
    connection (the CLI reconciles at every start, so the proposal is settled before the check)."""
    treasury, token, vendor, run = setup
    pending = treasury.propose_transfer(vendor.address, "1 TUSD")
    assert not treasury.is_live  # connected, so reconciled once: drop will not reconcile again
    for owner in accounts[:2]:
        treasury.sign(pending.id, owner)
    execute_outside_the_store(treasury, pending, accounts[9])  # the nonce moves; the store does not know
    before = snapshot(treasury)
    with pytest.raises(InvalidInput) as refused:
        treasury.drop(pending.id, force=True)
    assert str(refused.value) == (f"proposal {pending.id} has nonce {pending.nonce}, already used on chain (the Safe is "
                                  f"at {pending.nonce + 1}): there is nothing to drop")
    assert snapshot(treasury) == before


def test_drop_is_refused_with_a_stored_signature_unless_forced(setup, accounts):
    treasury, token, vendor, run = setup
    signed = treasury.propose_transfer(vendor.address, "1 TUSD")
    treasury.sign(signed.id, accounts[0])
    before = snapshot(treasury)
    refused = one_line(run("drop", signed.id))
    assert refused.startswith(f"Error: proposal {signed.id} has 1 SafeTx signature(s) stored")
    assert f"treasury reject {signed.id}" in refused and "--force" in refused
    assert snapshot(treasury) == before and treasury.get(signed.id).status == "pending"

    forced = run.json("drop", signed.id, "--force", "--reason", "wrong amount")
    assert (forced["kind"], forced["id"], forced["nonce"], forced["freed"]) == ("proposal", signed.id, signed.nonce, True)
    assert forced["warning"] == (f"signatures of proposal {signed.id} held elsewhere stay valid until nonce "
                                 f"{signed.nonce} is used: `treasury reject {signed.id}` spends it")
    assert treasury.get(signed.id).status == "cancelled"


def test_a_dropped_proposal_executed_with_its_signatures_is_recorded_by_reconcile(setup, accounts, chain):
    treasury, token, vendor, run = setup
    dropped = treasury.propose_transfer(vendor.address, "1 TUSD")
    for owner in accounts[:2]:
        treasury.sign(dropped.id, owner)
    run.ok("drop", dropped.id, "--force")
    successor = run.json("propose", "transfer", vendor.address, "3 TUSD")
    assert successor["nonce"] == dropped.nonce  # the freed nonce handed on

    chain.pending_timestamp = chain.pending_timestamp + 60  # a pinned block time
    receipt = execute_outside_the_store(treasury, dropped, accounts[9])  # by whoever held the signatures
    reconciled = run.json("reconcile")
    outcomes = {r["proposal_id"]: r["outcome"] for r in reconciled}
    assert outcomes == {dropped.id: "executed", successor["id"]: "superseded"}
    record = treasury.get(dropped.id)
    assert record.status == "executed"
    (execution,) = treasury.store.executions(dropped.id)
    assert (execution.tx_hash, execution.success, execution.block_number) == (receipt.txn_hash, True, receipt.block_number)
    assert treasury.get(successor["id"]).status == "superseded"
    assert run.json("reconcile") == []  # settled: nothing more to learn
    assert treasury.store.verify_audit_log()


def test_drop_is_refused_when_the_guard_queues_the_intent_without_this_store(setup, accounts, tmp_path):
    import yaml

    from treasury.treasury import Treasury

    treasury, token, vendor, run = setup
    config = yaml.safe_load((tmp_path / "ape-config.yaml").read_text())
    config["treasury"]["store"] = str(tmp_path / "elsewhere" / "store.db")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "ape-config.yaml").write_text(yaml.safe_dump(config))
    elsewhere = Treasury.load(treasury.name, tmp_path / "elsewhere" / "ape-config.yaml")
    try:
        theirs = elsewhere.propose_transfer(vendor.address, "6000 TUSD")
        elsewhere.schedule(theirs.id, accounts[9], accounts[:2])
    finally:
        elsewhere.store.close()
    ours = run.json("propose", "transfer", vendor.address, "6000 TUSD")  # the same intent, unknown to the guard's queue here
    assert ours["verdict"]["outcome"] == "needs-delay" and treasury.store.schedule_entries(ours["id"]) == []
    before = snapshot(treasury)
    refused = one_line(run("drop", ours["id"]))
    assert refused.startswith(f"Error: proposal {ours['id']}'s intent waits in the guard's queue as entry ")
    assert "treasury cancel" in refused
    assert snapshot(treasury) == before and treasury.get(ours["id"]).status == "pending"


def test_drafts_and_drop_are_refused_against_a_server(team, accounts):  # noqa: F811 - the imported fixture
    url, vendor, one = team["url"], team["vendor"], team["runs"][0]
    stranger = accounts[6].address
    forced = one("propose", "transfer", stranger, "1 TUSD", "--account", "TEST::0", "--server", url, "--force")
    assert forced.exit_code == 1 and "local store only" in forced.stderr and len(forced.stderr.strip().splitlines()) == 1
    refused = one("propose", "transfer", stranger, "1 TUSD", "--account", "TEST::0", "--server", url)
    assert refused.exit_code == 3 and team["store"].list_proposals() == []
    pid = one.json("propose", "transfer", vendor.address, "100 TUSD", "--account", "TEST::0", "--server", url)["id"]
    dropped = one("drop", pid, "--server", url)
    assert dropped.exit_code == 1 and "local store only" in dropped.stderr
    assert team["store"].get_proposal(pid).status == "pending"
    no_laptop_store(team)
