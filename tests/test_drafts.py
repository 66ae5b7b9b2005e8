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
    db.execute("DROP TABLE drafts", "UPDATE store_meta SET value = '4' WHERE key = 'schema_version'")
    assert "drafts" not in db.tables()
    with db.open() as store:
        assert db.query("SELECT value FROM store_meta WHERE key = 'schema_version'") == [("5",)]
        entries = store.audit_entries()
        assert entries[:-1] == audit and (entries[-1].action, entries[-1].payload) == ("store.migrated", {"from": 4, "to": 5})
        assert store.get_proposal(first.id) == first
        draft(store)
        assert store.verify_audit_log()
    fresh = db.fresh()
    Store.open(fresh.url).close()
    assert db.schema("drafts") == fresh.schema("drafts")
    with db.open() as again:
        assert [e.action for e in again.audit_entries()].count("store.migrated") == 1


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
    listed = run.json("list", chain=False)
    assert [(d["id"], d["kind"]) for d in listed if d.get("kind") == "draft"] == [(did, "draft")]
    assert [d["id"] for d in run.json("list", "--status", "draft", chain=False)] == [did]
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
    assert did not in [d["id"] for d in run.json("list", chain=False)]
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
    assert treasury.get(first["id"]).status == "cancelled"
    last = treasury.store.audit_entries(first["id"])[-1]
    assert last.payload["status_to"] == "cancelled" and "sent twice" in last.payload["note"]
    assert run.json("propose", "transfer", vendor.address, "3 TUSD")["nonce"] == base  # the freed nonce is reused

    kept = run.json("propose", "transfer", accounts[6].address, "1 TUSD", "--force")["draft"]["id"]
    assert run.json("drop", kept) == {"kind": "draft", "id": kept, "nonce": None, "freed": False, "waiting": []}
    assert treasury.store.get_draft(kept).status == "dropped" and run.json("list", "--status", "draft", chain=False) == []
    unknown = run("drop", "00" * 8)
    assert unknown.exit_code == 1 and unknown.stderr.startswith("Error: no draft")
    assert treasury.store.verify_audit_log()


def test_drop_is_refused_once_executed_nonce_used_or_queued(setup, accounts):
    treasury, token, vendor, run = setup
    paid = treasury.propose_transfer(vendor.address, "1 TUSD")
    execute(treasury, paid, accounts)
    refused = run("drop", paid.id)
    assert refused.exit_code == 1 and "is executed" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1

    doubled = treasury.propose_transfer(vendor.address, "2 TUSD")
    rejection = treasury.reject(doubled.id)  # same nonce; executing it uses the nonce
    execute(treasury, rejection, accounts)
    used = run("drop", doubled.id)
    assert used.exit_code == 1 and treasury.get(doubled.id).status != "cancelled"

    delayed = run.json("propose", "transfer", vendor.address, "6000 TUSD")
    assert delayed["verdict"]["outcome"] == "needs-delay"
    run.ok("schedule", delayed["id"], "--signer", "TEST::0", "--signer", "TEST::1", "--account", "TEST::9")
    before = snapshot(treasury)
    queued = run("drop", delayed["id"])
    assert queued.exit_code == 1 and "treasury cancel" in queued.stderr
    assert snapshot(treasury) == before and treasury.get(delayed["id"]).status == "scheduled"


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
