"""`treasury sync` (issue 12) against `treasury serve` itself as the Safe Transaction Service.

Push: our signed proposals reach the service with one owner's signature as the proposer's and the
rest as confirmations; pushing twice changes nothing there. Pull: the service's pending transactions
come into our store only after their safeTxHash is recomputed here and each confirmation verifies
against the Safe's owners on chain. The remote is made hostile by writing its store behind its
back (a transaction whose hash does not match its fields, a confirmation by a non-owner): those
are skipped, reported and counted, and nothing of them is stored. The service's key comes from
$SAFE_TRANSACTION_SERVICE_API_KEY and is never printed.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from builders import tusd_policy
from server_helpers import running_server
from test_cli import Cli

from treasury.remote.store import RemoteStore
from treasury.remote.sync import pull, push, service
from treasury.signatures.signing import sign as sign_safe_tx
from treasury.store import Store


def policy_for(vendor: str) -> dict:
    return tusd_policy(vendor, amount="100000", delay_threshold="50000")


@pytest.fixture
def world(make_treasury, tmp_path, chain, accounts, request):
    """Our treasury (local store) and a `treasury serve` over its own store: the service.

    Each test gets a Safe at its own address (a salt from its name): in a full run this module may
    start right after tests that never touch the chain, and a Safe left by the previous test must not
    be the one the next one deploys."""
    vendor = accounts[4]
    salt = 10_000 + int.from_bytes(hashlib.sha256(request.node.name.encode()).digest()[:3], "big")
    treasury, _token = make_treasury(policy_for(vendor.address), salt_nonce=salt)
    remote_store = Store.open(str(tmp_path / "service.db"))
    with running_server(remote_store) as url:
        yield treasury, remote_store, url, vendor, Cli(tmp_path / "ape-config.yaml", chain)
    remote_store.close()


def remote_view(store, safe_tx_hash):
    record = next(p for p in store.list_proposals() if p.safe_tx_hash == safe_tx_hash)
    return record, [s.owner for s in store.signatures(record.id)]


def test_push_proposes_with_one_signature_then_confirms_the_rest_and_is_idempotent(world, accounts):
    treasury, remote_store, url, vendor, run = world
    signed = treasury.propose_transfer(vendor.address, "100 TUSD")
    treasury.sign(signed.id, accounts[0])
    treasury.sign(signed.id, accounts[1])
    unsigned = treasury.propose_transfer(vendor.address, "200 TUSD")

    report = push(treasury, service(url))
    assert (report.proposed, report.confirmed, report.unchanged, report.skipped) == (1, 1, 0, [])
    assert len(report.notes) == 1 and unsigned.id in report.notes[0] and "no signature" in report.notes[0]
    record, owners = remote_view(remote_store, signed.safe_tx_hash)
    assert sorted(owners) == sorted([accounts[0].address, accounts[1].address])
    assert record.nonce == signed.nonce and record.to == signed.to and bytes(record.data) == bytes(signed.data)

    again = push(treasury, service(url))
    assert (again.proposed, again.confirmed, again.unchanged, again.skipped) == (0, 0, 1, [])
    assert len(remote_store.list_proposals()) == 1 and len(remote_store.signatures(record.id)) == 2

    treasury.sign(unsigned.id, accounts[2])  # now signed: the CLI pushes it
    pushed = run.json("sync", "--to", url)
    assert (pushed["proposed"], pushed["confirmed"], pushed["unchanged"], pushed["skipped"]) == (1, 0, 1, 0)
    assert remote_view(remote_store, unsigned.safe_tx_hash)[1] == [accounts[2].address]


def hostile_remote(treasury, remote_store, url, vendor, accounts):
    """The service's store holds one honest transaction and two it would never have accepted."""
    honest = type(treasury)(treasury.name, treasury.entry, RemoteStore(url))
    honest.proposer = accounts[0]
    good = honest.propose_transfer(vendor.address, "100 TUSD")
    honest.sign(good.id, accounts[1])

    # Written behind the service's back: fields of one transfer, the hash of another.
    other = treasury._safe_tx(vendor.address, 0, b"", 0, good.nonce + 5)
    forged = remote_store.add_proposal(
        chain_id=treasury.chain_id, safe=treasury.safe, nonce=good.nonce + 1, to=vendor.address, value=1,
        safe_tx_hash=other.safe_tx_hash.to_0x_hex(), proposer="mallory", actor="mallory", title="forged")
    # A real transaction with an owner's confirmation and a stranger's.
    mixed_tx = treasury._safe_tx(vendor.address, 2, b"", 0, good.nonce + 2)
    mixed = remote_store.add_proposal(
        chain_id=treasury.chain_id, safe=treasury.safe, nonce=good.nonce + 2, to=vendor.address, value=2,
        safe_tx_hash=mixed_tx.safe_tx_hash.to_0x_hex(), proposer="mallory", actor="mallory", title="mixed")
    for signer in (accounts[2], accounts[5]):  # accounts[5] owns nothing
        signature = sign_safe_tx(signer, mixed_tx)
        remote_store.add_signature(mixed.id, signer.address, "eip712", bytes(signature.export_signature()), actor="mallory")
    honest.store.close()
    return good, forged, mixed


def test_pull_verifies_everything_and_skips_what_does_not_verify(world, accounts):
    treasury, remote_store, url, vendor, run = world
    good, forged, mixed = hostile_remote(treasury, remote_store, url, vendor, accounts)

    report = pull(treasury, service(url))
    assert (report.pulled, report.signatures) == (2, 3)
    assert len(report.skipped) == 2
    assert any(forged.safe_tx_hash in line and "hash to" in line for line in report.skipped), report.skipped
    assert any(mixed.safe_tx_hash in line and accounts[5].address in line for line in report.skipped), report.skipped

    local = {p.safe_tx_hash: p for p in treasury.proposals()}
    assert set(local) == {good.safe_tx_hash, mixed.safe_tx_hash}  # nothing of the forged one
    assert sorted(s.owner for s in treasury.store.signatures(local[good.safe_tx_hash].id)) == sorted(
        [accounts[0].address, accounts[1].address])
    assert [s.owner for s in treasury.store.signatures(local[mixed.safe_tx_hash].id)] == [accounts[2].address]
    assert treasury.store.verify_audit_log().ok
    assert treasury.records.hashes(local[mixed.safe_tx_hash])  # re-hashes to its safeTxHash

    again = pull(treasury, service(url))  # idempotent; the hostile items are reported again
    assert (again.pulled, again.signatures, again.unchanged, len(again.skipped)) == (0, 0, 2, 2)

    result = run("sync", "--from", url, "--json")
    assert result.exit_code == 1 and "2 item(s) skipped" in result.stderr
    assert json.loads(result.stdout)["skipped"] == 2
    assert len(treasury.proposals()) == 2

    # What was pulled is as good as what was signed here: it executes from our store.
    execution = treasury.execute(local[good.safe_tx_hash].id, accounts[9])
    assert execution.success and treasury.get(local[good.safe_tx_hash].id).status == "executed"


def test_pull_takes_in_no_transaction_that_no_owner_signed(world, accounts):
    """Anyone can hash a transaction: a service's correctly hashed transaction with no confirmation, or
    only a stranger's, under a misleading title and an owner named as its proposer, is skipped and
    reported, never stored. What is taken in names its verified signer as proposer, not the
    service's claim, says where its title came from, and the pull is capped (and says so)."""
    treasury, remote_store, url, vendor, run = world
    nonce = treasury.onchain_nonce()

    def remote(value: int, title: str, signers=()):
        safe_tx = treasury._safe_tx(vendor.address, value, b"", 0, nonce + value)
        record = remote_store.add_proposal(
            chain_id=treasury.chain_id, safe=treasury.safe, nonce=nonce + value, to=vendor.address, value=value,
            safe_tx_hash=safe_tx.safe_tx_hash.to_0x_hex(), proposer=accounts[0].address, actor="mallory", title=title)
        for signer in signers:
            remote_store.add_signature(record.id, signer.address, "eip712", bytes(sign_safe_tx(signer, safe_tx).export_signature()),
                                       actor="mallory")
        return record

    unsigned = remote(1, "Payroll, approved by the board")
    strangers = remote(2, "Routine top-up", [accounts[5]])  # accounts[5] owns nothing
    honest = remote(3, "Pay the vendor", [accounts[2]])

    report = pull(treasury, service(url))
    assert (report.pulled, report.signatures) == (1, 1), report.skipped
    for skipped in (unsigned, strangers):
        assert any(skipped.safe_tx_hash in line and "no confirmation verifies" in line for line in report.skipped), report.skipped
    assert [p.safe_tx_hash for p in treasury.proposals()] == [honest.safe_tx_hash]
    record = treasury.proposals()[0]
    host = url.split("//", 1)[1]
    assert record.proposer == f"sync:{accounts[2].address}" and record.title == "Pay the vendor"
    assert host in record.description and "title as it gave it" in record.description
    entries = treasury.store.audit_entries(record.id)
    assert [e.action for e in entries] == ["proposal.added", "signature.added"]
    assert all(f"sync from http://{host}" in e.actor for e in entries) and treasury.store.verify_audit_log().ok

    capped = pull(treasury, service(url), limit=1)
    assert any("stopped after 1 transactions" in note for note in capped.notes), capped.notes


def test_the_services_key_comes_from_the_environment_and_is_never_printed(make_treasury, tmp_path, chain, accounts,
                                                                          monkeypatch):
    treasury, _token = make_treasury(policy_for(accounts[4].address))
    run = Cli(tmp_path / "ape-config.yaml", chain)
    key = "sk-service-key-5f2a"
    with running_server(str(tmp_path / "service.db"), read_token=key) as url:
        monkeypatch.delenv("SAFE_TRANSACTION_SERVICE_API_KEY", raising=False)
        refused = run("sync", "--from", url)
        assert refused.exit_code == 1 and "401" in refused.stderr and url in refused.stderr
        monkeypatch.setenv("SAFE_TRANSACTION_SERVICE_API_KEY", key)
        done = run("sync", "--from", url, "--json", "--verbose")
        assert done.exit_code == 0, done.stderr
        assert json.loads(done.stdout)["pulled"] == 0
        for output in (refused.stdout, refused.stderr, done.stdout, done.stderr):
            assert key not in output
    assert run("sync", "--to", url, "--from", url).exit_code == 1
