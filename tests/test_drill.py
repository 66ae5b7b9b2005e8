"""Recovery drills (issue 15, item 1): every owner of the 3-of-5 ceremony Safe proves control of its key.

The challenge is an EIP-712 message of our own; these tests show, by asking the Safes themselves, that
a drill signature is neither a Safe transaction signature nor a message the Safe would vouch for, and
that every way of passing off a proof is refused: another Safe, chain or drill, an expired challenge,
a stranger, a removed owner, a contract owner whose inner signer is a stranger, a keystore or test
account where the drill requires a hardware wallet, malleated and garbage bytes, a replayed proof.
The store part (schema version 6: drills and owner proofs, the 5 -> 6 migration and the integrity
checks) runs on SQLite and PostgreSQL like tests/test_drafts.py. Time is pinned with `now=`.
"""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import pytest
from eth_abi import encode as abi_encode
from eth_account.messages import encode_typed_data
from eth_utils import function_signature_to_4byte_selector, keccak
from store_db import StoreDB
from test_store import SAFE

from treasury.ceremony.challenge import DrillChallenge
from treasury.ceremony.drill import (
    DrillProof,
    drill_challenge,
    drill_report,
    owner_safe_signatures,
    record_drill_proof,
    sign_drill,
    sign_drill_as_contract_owner,
    signer_kind,
    start_drill,
    verify_drill_proof,
)
from treasury.errors import InvalidInput
from treasury.signatures.verification import InvalidSignature
from treasury.store import DuplicateSignature, InvalidTransition, Store, TamperedRecord, UnknownProposal
from treasury.store.schema import Base

DAY = 86_400
T0 = 1_800_000_000  # the drills' clock (unix seconds), pinned
OWNER = "0x" + "22" * 20
NONCE = "0x" + "ab" * 32
MAGIC = bytes.fromhex("1626ba7e")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


# ---- the challenge: pure data --------------------------------------------------------------------------


def challenge(**overrides) -> DrillChallenge:
    fields = {"safe": SAFE, "chain_id": 1, "nonce": NONCE, "issued_at": T0, "expires_at": T0 + 7 * DAY}
    return DrillChallenge(**(fields | overrides))


def test_the_digest_is_the_eip712_hash_of_the_typed_data_and_binds_every_field():
    base = challenge()
    signable = encode_typed_data(full_message=base.typed_data())
    assert keccak(b"\x19" + signable.version + signable.header + signable.body) == base.digest()
    json.dumps(base.typed_data())  # JSON-safe as eth_signTypedData_v4 wants it
    variants = [challenge(safe="0x" + "33" * 20), challenge(chain_id=10), challenge(nonce="0x" + "cd" * 32),
                challenge(issued_at=T0 + 1), challenge(expires_at=T0 + 1), challenge(purpose="something else")]
    assert len({v.digest() for v in [base, *variants]}) == 7
    # Not the Safe's domain: a Safe's EIP712Domain is (uint256 chainId, address verifyingContract), no name or version.
    safe_domain = keccak(abi_encode(["bytes32", "uint256", "address"],
                                    [keccak(text="EIP712Domain(uint256 chainId,address verifyingContract)"), 1, SAFE]))
    assert base.domain_separator() != safe_domain
    assert base.typed_data()["domain"]["name"] == "ape-treasury drill"


def test_a_challenge_file_round_trips_and_an_altered_one_is_refused():
    base = DrillChallenge.create(SAFE, 1, T0, 7 * DAY)
    assert base.expires_at == T0 + 7 * DAY and base.nonce != DrillChallenge.create(SAFE, 1, T0, 7 * DAY).nonce
    text = json.dumps(base.to_json())
    assert DrillChallenge.from_json(json.loads(text)) == base
    assert DrillChallenge.from_json(base.typed_data()) == base
    altered = json.loads(text)
    altered["typed_data"]["types"]["DrillChallenge"][4]["type"] = "bytes"
    with pytest.raises(InvalidInput, match="altered"):
        DrillChallenge.from_json(altered)
    safe_tx_like = json.loads(text)
    safe_tx_like["typed_data"]["domain"] = {"chainId": 1, "verifyingContract": SAFE}
    with pytest.raises(InvalidInput, match="altered"):
        DrillChallenge.from_json(safe_tx_like)
    for bad in ({}, {"primaryType": "SafeTx"}, [], "x"):
        with pytest.raises(InvalidInput, match="not a drill challenge"):
            DrillChallenge.from_json(bad)
    for wrong in ({"expires_at": T0}, {"nonce": "0x12"}, {"chain_id": 0}, {"purpose": "two\nlines"}):
        with pytest.raises(InvalidInput):
            challenge(**wrong)


def test_a_proof_file_round_trips_and_a_malformed_one_is_one_line():
    proof = DrillProof(owner=OWNER, via="test", signature=b"\x01" * 65, safe=SAFE, chain_id=1, nonce=NONCE)
    data = json.loads(json.dumps(proof.to_json()))
    assert DrillProof.from_json(data) == proof
    for key, value, message in [("type", "bundle", "not a drill proof"), ("version", 2, "version"),
                                ("signature", "zz", "hex"), ("chain_id", "1", "chain id"), ("via", "Hard Ware", "signer kind"),
                                ("nonce", "0x1", "nonce")]:
        with pytest.raises(InvalidInput, match=message):
            DrillProof.from_json(data | {key: value})
    with pytest.raises(InvalidInput, match="missing owner"):
        DrillProof.from_json({k: v for k, v in data.items() if k != "owner"})


# ---- the store: schema version 6 -----------------------------------------------------------------------


def add_drill(store: Store, nonce: str = NONCE, **overrides):
    """Store a drill; its challenge is built from the same fields (the store refuses one that disagrees)."""
    fields = {"chain_id": 1, "safe": SAFE, "nonce": nonce, "require_device": [OWNER], "created_at": T0,
              "expires_at": T0 + 7 * DAY, "actor": "alice"} | overrides
    if "challenge" not in fields:
        issued = {"safe": fields["safe"], "chain_id": fields["chain_id"], "nonce": nonce, "issued_at": fields["created_at"],
                  "expires_at": fields["expires_at"]}
        fields["challenge"] = (challenge(**issued) if fields["expires_at"] > fields["created_at"] else challenge(nonce=nonce)
                               ).typed_data()
    return store.add_drill(**fields)


def test_drills_and_proofs_are_kept_with_their_audit_entries(store: Store):
    first = add_drill(store)
    second = add_drill(store, "0x" + "cd" * 32, created_at=T0 + 10)
    assert first.id.startswith("drill-") and len(first.id) == 18 and first.status == "open"
    assert first.challenge == challenge().typed_data() and first.require_device == (OWNER,)
    assert store.get_drill(first.id) == first
    assert [d.id for d in store.drills(1, SAFE)] == [second.id, first.id]  # newest first
    assert store.drills(2, SAFE) == []
    proof = store.add_owner_proof(first.id, OWNER, "hardware", b"\x01" * 65, T0 + 5, actor="bob")
    assert (proof.drill_id, proof.chain_id, proof.safe, proof.owner, proof.via, proof.proved_at) == (
        first.id, 1, SAFE, OWNER, "hardware", T0 + 5)
    assert proof.signature == "0x" + "01" * 65
    other = store.add_owner_proof(second.id, OWNER, "test", b"\x02" * 65, T0 + 20, actor="bob")
    assert store.owner_proofs(1, SAFE) == [proof, other]
    assert store.owner_proofs(1, SAFE, second.id) == [other] and store.owner_proofs(1, "0x" + "33" * 20) == []
    closed = store.close_drill(second.id, actor="alice")
    assert closed.status == "closed"
    assert [e.action for e in store.audit_entries()] == ["drill.started", "drill.started", "drill.proved", "drill.proved",
                                                         "drill.closed"]
    assert store.verify_audit_log()


def test_refused_drill_writes_leave_the_store_unchanged(db: StoreDB):
    with db.open() as store:
        drill = add_drill(store)
        store.add_owner_proof(drill.id, OWNER, "test", b"\x01" * 65, T0, actor="bob")
        before = db.dump()
        with pytest.raises(DuplicateSignature, match="already proved control"):
            store.add_owner_proof(drill.id, OWNER, "test", b"\x02" * 65, T0 + 1, actor="bob")
        with pytest.raises(InvalidInput, match="already issued"):
            add_drill(store)
        with pytest.raises(UnknownProposal, match="no drill"):
            store.get_drill("drill-000000000000")
        with pytest.raises(UnknownProposal, match="no drill"):
            store.add_owner_proof("not a drill", OWNER, "test", b"\x01" * 65, T0, actor="bob")
        for bad in ({"via": "Hardware!"}, {"signature": b"\x01" * 64}, {"owner": "0x12"}, {"proved_at": -1}):
            args = {"drill_id": drill.id, "owner": "0x" + "44" * 20, "via": "test", "signature": b"\x01" * 65,
                    "proved_at": T0, "actor": "bob"} | bad
            with pytest.raises(InvalidInput):
                store.add_owner_proof(**args)
        with pytest.raises(InvalidInput, match="expire after"):
            add_drill(store, "0x" + "ee" * 32, expires_at=T0)
        store.close_drill(drill.id, actor="alice")
        closed = db.dump()
        with pytest.raises(InvalidTransition):
            store.add_owner_proof(drill.id, "0x" + "44" * 20, "test", b"\x01" * 65, T0, actor="bob")
        with pytest.raises(InvalidTransition):
            store.close_drill(drill.id, actor="alice")
        assert db.dump() == closed != before


def test_an_edited_drill_or_proof_is_caught(db: StoreDB):
    with db.open() as store:
        drill = add_drill(store)
        store.add_owner_proof(drill.id, OWNER, "test", b"\x01" * 65, T0, actor="bob")
    db.update("owner_proofs", "1 = 1", via="hardware")
    with db.open() as store:
        with pytest.raises(TamperedRecord):
            store.owner_proofs(1, SAFE)
        assert not store.verify_audit_log()
    db.update("owner_proofs", "1 = 1", via="test")
    db.update("drills", "1 = 1", expires_at=T0 + 365 * DAY)
    with db.open() as store:
        with pytest.raises(TamperedRecord):
            store.get_drill(drill.id)
        assert "drill" in store.verify_audit_log().problem
    db.update("drills", "1 = 1", expires_at=T0 + 7 * DAY, status="closed")
    with db.open() as store:
        assert "audit log says open" in store.verify_audit_log().problem


def _changed(value):
    if isinstance(value, (bytes, memoryview)):
        return bytes(value) + b"\x00"
    if isinstance(value, str):
        if value in ("open", "closed"):
            return "closed" if value == "open" else "open"
        return value[:-1] + chr(ord(value[-1]) ^ 1)
    return int(value) ^ 1


@pytest.mark.parametrize("table, column", [("drills", c.name) for c in Base.metadata.tables["drills"].columns] + [
    ("owner_proofs", c.name) for c in Base.metadata.tables["owner_proofs"].columns if c.name != "drill_id"])
def test_any_column_edited_behind_the_store_is_detected(db: StoreDB, table: str, column: str):
    with db.open() as store:
        kept = add_drill(store)
        if table == "owner_proofs":
            store.add_owner_proof(kept.id, OWNER, "test", b"\x01" * 65, T0, actor="bob")
        assert store.verify_audit_log()
        ((value,),) = db.query(f"SELECT {column} FROM {table}")
        db.execute(f"UPDATE {table} SET {column} = :v", v=_changed(value))
        assert not store.verify_audit_log(), f"changing {table}.{column} went unnoticed"
        if table == "owner_proofs":
            with pytest.raises(TamperedRecord):
                store.owner_proofs(1, SAFE)
        elif column not in ("id", "status"):  # the status is checked against the log only
            with pytest.raises(TamperedRecord):
                store.get_drill(kept.id)


def test_a_proof_moved_to_another_drill_or_deleted_is_detected(db: StoreDB):
    with db.open() as store:
        first, second = add_drill(store), add_drill(store, "0x" + "cd" * 32)
        store.add_owner_proof(first.id, OWNER, "test", b"\x01" * 65, T0, actor="bob")
        db.update("owner_proofs", "1 = 1", drill_id=second.id)
        assert not store.verify_audit_log()
        with pytest.raises(TamperedRecord):
            store.owner_proofs(1, SAFE)
        db.update("owner_proofs", "1 = 1", drill_id=first.id)
        assert store.verify_audit_log()
        db.execute("DELETE FROM owner_proofs")
        assert "missing from the store" in store.verify_audit_log().problem


def test_migration_from_v5_adds_the_drill_tables_and_is_audited(db: StoreDB):
    from test_store import propose

    with db.open() as store:
        first = propose(store, 1)
        audit = store.audit_entries()
    db.execute("DROP TABLE owner_proofs", "DROP TABLE drills", "UPDATE store_meta SET value = '5' WHERE key = 'schema_version'")
    assert not {"drills", "owner_proofs"} & db.tables()
    with db.open() as store:
        assert db.query("SELECT value FROM store_meta WHERE key = 'schema_version'") == [("6",)]
        entries = store.audit_entries()
        assert entries[:-1] == audit and (entries[-1].action, entries[-1].payload) == ("store.migrated", {"from": 5, "to": 6})
        assert store.get_proposal(first.id) == first
        drill = add_drill(store)
        store.add_owner_proof(drill.id, OWNER, "test", b"\x01" * 65, T0, actor="bob")
        assert store.verify_audit_log()
    fresh = db.fresh()
    Store.open(fresh.url).close()
    assert db.schema("drills", "owner_proofs") == fresh.schema("drills", "owner_proofs")


# ---- drills on the ceremony Safe (3-of-5, one contract owner) ----------------------------------------


def eth_call(chain, to, signature, types, args, sender=None):
    data = function_signature_to_4byte_selector(signature) + abi_encode(types, args)
    return bytes(chain.provider.web3.eth.call({"to": to, "from": sender or to, "data": "0x" + data.hex()}))


def refused(chain, to, signature, types, args) -> bool:
    """Whether the call reverts or answers anything but the EIP-1271 magic value."""
    try:
        return eth_call(chain, to, signature, types, args)[:4] != MAGIC
    except Exception:  # noqa: BLE001 - a revert is a refusal
        return True


@pytest.fixture
def drill(ceremony):
    """An open drill of the ceremony Safe, issued at T0."""
    record = start_drill(ceremony.treasury, now=T0)
    return SimpleNamespace(record=record, challenge=drill_challenge(record))


def test_every_owner_proves_control_and_the_report_says_what_is_live(ceremony, drill, chain):
    treasury = ceremony.treasury
    height = chain.blocks.height
    assert drill.record.status == "open" and drill.record.expires_at == T0 + 7 * DAY
    for index, account in enumerate(ceremony.eoas):
        proof = sign_drill(drill.challenge, account)
        assert (proof.owner, proof.via) == (account.address, "test")
        stored = record_drill_proof(treasury, drill.record.id, proof, now=T0 + 60 + index)
        assert (stored.owner, stored.via, stored.proved_at) == (account.address, "test", T0 + 60 + index)
    vault = sign_drill_as_contract_owner(drill.challenge, ceremony.vault, [ceremony.vault_signer])
    assert (vault.owner, vault.via) == (ceremony.vault, "contract")
    record_drill_proof(treasury, drill.record.id, DrillProof.from_json(json.loads(json.dumps(vault.to_json()))), now=T0 + 99)
    report = drill_report(treasury, now=T0 + 120)
    assert report.drill == treasury.store.get_drill(drill.record.id) and report.missing == ()
    lines = report.lines()
    assert lines[0].startswith(f"drill {drill.record.id} (open") and "5 of 5 owners proved control" in lines[0]
    assert any(line.strip().startswith("vault: proved") and "via contract" in line for line in lines)
    assert report.liveness is not None  # owner liveness (treasury.ceremony.liveness) counts the drill's proofs
    assert "3-of-5: 10 of 10 combinations live" in lines
    assert "the threshold survives the loss of any one owner: yes; of any two: yes" in lines
    data = json.loads(json.dumps(report.as_dict()))
    assert data["missing"] == [] and data["proofs"][ceremony.vault]["via"] == "contract"
    assert [e.action for e in treasury.store.audit_entries()][-6:] == ["drill.started"] + ["drill.proved"] * 5
    assert treasury.store.verify_audit_log()
    assert chain.blocks.height == height  # nothing was sent on chain


def test_a_partial_drill_names_who_is_missing(ceremony, drill):
    alice, bob = ceremony.eoas[:2]
    for account in (alice, bob):
        record_drill_proof(ceremony.treasury, drill.record.id, sign_drill(drill.challenge, account), now=T0 + 1)
    report = drill_report(ceremony.treasury, drill.record.id, now=T0 + 2)
    assert set(report.missing) == {ceremony.eoas[2].address, ceremony.eoas[3].address, ceremony.vault}
    assert any(line.strip() == "carol: not yet proved" for line in report.lines())
    assert report.liveness is not None
    assert report.lines()[6].startswith("3-of-5: 0 of 10 combinations live")


def test_a_drill_signature_is_neither_a_safe_transaction_nor_a_safe_message(ceremony, drill, chain):
    """Ask the Safes: the owners' drill signatures execute nothing and vouch for nothing."""
    from treasury.chain.safe import safe_instance
    from treasury.proposal.safe_tx import build_safe_tx

    treasury = ceremony.treasury
    digest = drill.challenge.digest()
    proofs = [sign_drill(drill.challenge, account) for account in ceremony.eoas[:3]]
    signatures = b"".join(p.signature for p in sorted(proofs, key=lambda p: int(p.owner, 16)))
    safe = safe_instance(treasury.safe, treasury.version)
    # Not a SafeTx: whatever transaction is built, its safeTxHash is not the drill digest, and execTransaction
    # with the three owners' drill signatures (a threshold's worth) is refused by the Safe.
    safe_tx = build_safe_tx(treasury.safe, ceremony.funder.address, 1, nonce=treasury.onchain_nonce(),
                            chain_id=treasury.chain_id, version=treasury.version)
    assert bytes(safe_tx.safe_tx_hash) != digest
    assert bytes(safe.domainSeparator()) != drill.challenge.domain_separator()
    with pytest.raises(Exception, match=r"GS026|GS013"):  # the Safe recovers strangers: invalid owner
        safe.execTransaction.call(safe_tx.to, safe_tx.value, safe_tx.data, safe_tx.operation, 0, 0, 0,
                                  safe_tx.gas_token, safe_tx.refund_receiver, signatures, sender=ceremony.funder)
    # Not a message the Safe vouches for: its isValidSignature (both entry points) refuses the owners' drill
    # signatures for the drill digest and for the typed-data preimage.
    preimage = b"\x19\x01" + drill.challenge.domain_separator() + drill.challenge.struct_hash()
    assert refused(chain, treasury.safe, "isValidSignature(bytes32,bytes)", ["bytes32", "bytes"], [digest, signatures])
    assert refused(chain, treasury.safe, "isValidSignature(bytes,bytes)", ["bytes", "bytes"], [preimage, signatures])
    # The same on a Safe with Safe's own CompatibilityFallbackHandler (the vault): its owner's drill signature of a
    # drill for the vault is not a SafeMessage signature, and the digest is not the vault's message hash of it.
    vault_drill = DrillChallenge.create(ceremony.vault, treasury.chain_id, T0, DAY)
    vault_digest = vault_drill.digest()
    own = sign_drill(vault_drill, ceremony.vault_signer).signature
    message_hash = eth_call(chain, ceremony.vault, "getMessageHash(bytes)", ["bytes"], [vault_digest])
    assert message_hash != vault_digest and len(message_hash) >= 32
    assert refused(chain, ceremony.vault, "isValidSignature(bytes32,bytes)", ["bytes32", "bytes"], [vault_digest, own])
    assert refused(chain, ceremony.vault, "isValidSignature(bytes,bytes)", ["bytes", "bytes"], [vault_digest, own])
    # Control: the vault does answer for the digest when its owner signs the vault's SafeMessage of it.
    inner = owner_safe_signatures(vault_drill, ceremony.vault, [ceremony.vault_signer])
    assert not refused(chain, ceremony.vault, "isValidSignature(bytes32,bytes)", ["bytes32", "bytes"], [vault_digest, inner])


def sign_for(ceremony, account, **overrides):
    """`account`'s proof of a challenge like the ceremony Safe's, with one field changed."""
    treasury = ceremony.treasury
    fields = {"safe": treasury.safe, "chain_id": treasury.chain_id, "nonce": NONCE, "issued_at": T0,
              "expires_at": T0 + 7 * DAY}
    return sign_drill(DrillChallenge(**(fields | overrides)), account)


def test_a_proof_for_another_safe_chain_or_drill_is_refused(ceremony, drill):
    treasury, alice = ceremony.treasury, ceremony.eoas[0]
    owners = treasury.owners()
    cases = {
        "another Safe": sign_for(ceremony, alice, safe=ceremony.vault, nonce=drill.challenge.nonce),
        "another chain": sign_for(ceremony, alice, chain_id=treasury.chain_id + 1, nonce=drill.challenge.nonce),
        "another nonce": sign_for(ceremony, alice),
        "another window": sign_for(ceremony, alice, nonce=drill.challenge.nonce, expires_at=T0 + 8 * DAY),
    }
    for label, proof in cases.items():
        with pytest.raises(InvalidSignature) as named:  # as the file says: refused by name
            verify_drill_proof(drill.record, proof, owners, now=T0 + 1)
        # Relabelled as this drill's, the signature recovers to a stranger.
        relabelled = dataclasses.replace(proof, safe=treasury.safe, chain_id=treasury.chain_id, nonce=drill.challenge.nonce)
        if label == "another window":
            assert "recovers to" in str(named.value)
        with pytest.raises(InvalidSignature, match="recovers to 0x"):
            verify_drill_proof(drill.record, relabelled, owners, now=T0 + 1)
    assert treasury.store.owner_proofs(treasury.chain_id, treasury.safe) == []


def test_an_expired_or_early_proof_and_a_stranger_are_refused(ceremony, drill):
    treasury, alice = ceremony.treasury, ceremony.eoas[0]
    owners = treasury.owners()
    proof = sign_drill(drill.challenge, alice)
    verify_drill_proof(drill.record, proof, owners, now=T0 + 7 * DAY)  # the last second is still inside
    with pytest.raises(InvalidSignature, match="expired"):
        verify_drill_proof(drill.record, proof, owners, now=T0 + 7 * DAY + 1)
    with pytest.raises(InvalidSignature, match="not valid before"):
        verify_drill_proof(drill.record, proof, owners, now=T0 - 1)
    with pytest.raises(InvalidSignature, match="expired"):
        record_drill_proof(treasury, drill.record.id, proof, now=T0 + 8 * DAY)
    with pytest.raises(InvalidInput, match="at most 90 days"):
        start_drill(treasury, ttl=91 * DAY, now=T0)
    stranger = sign_drill(drill.challenge, ceremony.funder)
    with pytest.raises(InvalidSignature, match="not a current owner"):
        record_drill_proof(treasury, drill.record.id, stranger, now=T0 + 1)
    # A stranger's signature filed under an owner's name recovers to the stranger.
    with pytest.raises(InvalidSignature, match=f"recovers to {ceremony.funder.address}"):
        verify_drill_proof(drill.record, dataclasses.replace(stranger, owner=alice.address), owners, now=T0 + 1)
    assert treasury.store.owner_proofs(treasury.chain_id, treasury.safe) == []


def test_malleated_garbage_and_relabelled_signatures_are_refused(ceremony, drill):
    treasury, alice = ceremony.treasury, ceremony.eoas[0]
    owners = treasury.owners()
    proof = sign_drill(drill.challenge, alice)
    raw = proof.signature
    r, s, v = raw[:32], int.from_bytes(raw[32:64], "big"), raw[64]
    malleated = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # the same signature's twin
    cases = {
        "malleated": (malleated, "high s"),
        "64 bytes": (raw[:64], "exactly 65"),
        "v = 31": (raw[:64] + bytes([31]), "v=31"),
        "zero": (bytes(65)[:64] + bytes([27]), "out of range"),
        "garbage": (bytes([7]) * 64 + bytes([27]), "recovers to|no key"),
        "appended": (raw + b"\x00", "exactly 65"),
    }
    for signature, message in cases.values():
        with pytest.raises(InvalidSignature, match=message):
            verify_drill_proof(drill.record, dataclasses.replace(proof, signature=signature), owners, now=T0 + 1)
    # A key's signature claimed as a contract owner's: alice has no code to ask.
    with pytest.raises(InvalidSignature, match="no code"):
        verify_drill_proof(drill.record, dataclasses.replace(proof, via="contract"), owners, now=T0 + 1)
    with pytest.raises(InvalidSignature, match="recovers to"):  # alice's signature said to be bob's
        verify_drill_proof(drill.record, dataclasses.replace(proof, owner=ceremony.eoas[1].address), owners, now=T0 + 1)


def test_a_proof_from_another_drill_is_not_replayed_and_an_owner_proves_once(ceremony, drill):
    treasury, alice = ceremony.treasury, ceremony.eoas[0]
    first = sign_drill(drill.challenge, alice)
    record_drill_proof(treasury, drill.record.id, first, now=T0 + 1)
    with pytest.raises(DuplicateSignature):
        record_drill_proof(treasury, drill.record.id, sign_drill(drill.challenge, alice), now=T0 + 2)
    later = start_drill(treasury, now=T0 + 30 * DAY)
    before = treasury.store.audit_entries()
    with pytest.raises(InvalidSignature, match="answers another drill"):
        record_drill_proof(treasury, later.id, first, now=T0 + 30 * DAY + 1)
    with pytest.raises(InvalidSignature, match="recovers to"):  # its nonce edited to the new drill's
        record_drill_proof(treasury, later.id, dataclasses.replace(first, nonce=later.nonce), now=T0 + 30 * DAY + 1)
    assert treasury.store.audit_entries() == before
    assert treasury.store.owner_proofs(treasury.chain_id, treasury.safe, later.id) == []
    treasury.store.close_drill(drill.record.id, actor="test")
    with pytest.raises(InvalidInput, match="closed"):
        record_drill_proof(treasury, drill.record.id, sign_drill(drill.challenge, ceremony.eoas[1]), now=T0 + 3)


def test_a_contract_owner_whose_inner_signer_is_a_stranger_is_refused(ceremony, drill, chain):
    treasury, stranger = ceremony.treasury, ceremony.funder
    with pytest.raises(InvalidSignature, match="not an owner of owner Safe"):
        sign_drill_as_contract_owner(drill.challenge, ceremony.vault, [stranger])
    with pytest.raises(InvalidInput, match="not a Safe"):
        sign_drill_as_contract_owner(drill.challenge, ceremony.token.address, [stranger])
    blob = owner_safe_signatures(drill.challenge, ceremony.vault, [stranger], check_owners=False)
    forged = DrillProof(owner=ceremony.vault, via="contract", signature=blob, safe=treasury.safe,
                        chain_id=treasury.chain_id, nonce=drill.challenge.nonce)
    with pytest.raises(InvalidSignature, match=r"refused the drill signature: isValidSignature reverted \(.*GS026"):
        record_drill_proof(treasury, drill.record.id, forged, now=T0 + 1)
    # The vault's real answer for another drill is no answer for this one.
    other = DrillChallenge.create(treasury.safe, treasury.chain_id, T0, DAY)
    elsewhere = sign_drill_as_contract_owner(other, ceremony.vault, [ceremony.vault_signer])
    with pytest.raises(InvalidSignature, match="refused the drill signature"):
        verify_drill_proof(drill.record, dataclasses.replace(elsewhere, nonce=drill.challenge.nonce), treasury.owners(),
                           now=T0 + 1)
    # Its inner signature presented as a key's: recovery finds neither the vault nor an owner.
    with pytest.raises(InvalidSignature, match="recovers to"):
        verify_drill_proof(drill.record, dataclasses.replace(elsewhere, nonce=drill.challenge.nonce, via="keyfile"),
                           treasury.owners(), now=T0 + 1)
    assert treasury.store.owner_proofs(treasury.chain_id, treasury.safe) == []


class LedgerLike:
    """Stands in for an ape-ledger account (module ape_ledger.*): signs with a test account's key."""

    def __init__(self, account):
        self.account = account
        self.address = account.address

    def sign_message(self, message):
        return self.account.sign_message(message)


LedgerLike.__module__ = "ape_ledger.accounts"


def test_a_drill_that_requires_a_device_refuses_a_keystore_or_test_account(ceremony, accounts):
    from ape_accounts import import_account_from_private_key
    from ape_accounts.accounts import AccountContainer

    treasury, alice, bob = ceremony.treasury, *ceremony.eoas[:2]
    with pytest.raises(InvalidInput, match="not an owner"):
        start_drill(treasury, require_device=[ceremony.funder.address], now=T0)
    with pytest.raises(InvalidInput, match="contract owner"):
        start_drill(treasury, require_device=["vault"], now=T0)
    record = start_drill(treasury, require_device=["alice"], now=T0)
    assert record.require_device == (alice.address,)
    challenge_ = drill_challenge(record)
    with pytest.raises(InvalidSignature, match=r"requires .* hardware wallet.*via test"):
        record_drill_proof(treasury, record.id, sign_drill(challenge_, alice), now=T0 + 1)
    keystore = import_account_from_private_key("h1-drill-alice", "pass phrase", alice.private_key)
    try:
        keystore.set_autosign(True, passphrase="pass phrase")
        proof = sign_drill(challenge_, keystore)
        assert (proof.owner, proof.via) == (alice.address, "keyfile") and signer_kind(keystore) == "keyfile"
        with pytest.raises(InvalidSignature, match="via keyfile"):
            record_drill_proof(treasury, record.id, proof, now=T0 + 1)
    finally:
        AccountContainer.loaded_accounts.pop(keystore.alias, None)
        keystore.set_autosign(False)
        keystore.keyfile_path.unlink(missing_ok=True)
    assert treasury.store.owner_proofs(treasury.chain_id, treasury.safe) == []
    device = sign_drill(challenge_, LedgerLike(alice))
    assert device.via == "hardware"
    record_drill_proof(treasury, record.id, device, now=T0 + 2)
    record_drill_proof(treasury, record.id, sign_drill(challenge_, bob), now=T0 + 3)  # bob needs no device
    assert {p.owner: p.via for p in treasury.store.owner_proofs(treasury.chain_id, treasury.safe)} == {
        alice.address: "hardware", bob.address: "test"}
    assert any("alice: proved" in line and "(device required)" in line for line in drill_report(treasury, now=T0 + 4).lines())


def test_a_removed_owner_proves_nothing(ceremony, drill, chain):
    """dave signs, then the owners remove him (through the guard's delay): his proof no longer counts,
    and a new proof of his is refused against the chain's owners of the moment."""
    from builders import sign_by

    treasury, dave = ceremony.treasury, ceremony.eoas[3]
    record_drill_proof(treasury, drill.record.id, sign_drill(drill.challenge, dave), now=T0 + 1)
    removal = treasury.propose_remove_owner(dave.address, 3)
    sign_by(treasury, removal, ceremony.eoas, count=3)
    treasury.schedule(removal.id, signers=ceremony.eoas[:3], sender=ceremony.funder)
    chain.pending_timestamp += 2 * DAY + 60
    chain.mine()
    treasury.execute(removal.id, sender=ceremony.funder)
    assert dave.address not in treasury.owners()
    report = drill_report(treasury, now=T0 + 2)
    assert dave.address not in report.owners and report.proved == {}
    later = start_drill(treasury, now=T0 + 3)
    with pytest.raises(InvalidSignature, match="not a current owner"):
        record_drill_proof(treasury, later.id, sign_drill(drill_challenge(later), dave), now=T0 + 4)


# ---- review fixes (issue 15, F1) ----------------------------------------------------------------------

ECHO_CODE = "0x365f5f37365ff3"  # CALLDATACOPY(0, 0, CALLDATASIZE); RETURN(0, CALLDATASIZE): answers with its calldata


def answering(word_count: int, first_word: bytes = MAGIC + bytes(28)) -> str:
    """Runtime code that returns `first_word` then (word_count - 1) zero words, whatever it is asked."""
    return "0x7f" + first_word.hex() + "5f52" + f"60{32 * word_count:02x}" + "5ff3"


def contract_at(chain, code: str, seed: int) -> str:
    from eth_utils import to_checksum_address

    address = to_checksum_address("0x" + f"{seed:040x}")
    chain.provider.make_request("anvil_setCode", [address, code])
    return address


def test_an_echoing_contract_is_no_contract_owner_of_a_drill(ceremony, drill, chain):
    """A fallback that returns its calldata starts its answer with isValidSignature's own selector
    (0x1626ba7e): only the exact one-word answer counts."""
    treasury = ceremony.treasury
    echo = contract_at(chain, ECHO_CODE, 0xEC40)
    assert eth_call(chain, echo, "isValidSignature(bytes32,bytes)", ["bytes32", "bytes"], [b"\x01" * 32, b""])[:4] == MAGIC
    owners = [*treasury.owners(), echo]
    for code, seed in ((ECHO_CODE, 0xEC40), (answering(2), 0xEC41), (answering(1, MAGIC + b"\x01" * 28), 0xEC42)):
        owner = contract_at(chain, code, seed)
        proof = DrillProof(owner=owner, via="contract", signature=b"\x01" * 65, safe=treasury.safe,
                           chain_id=treasury.chain_id, nonce=drill.challenge.nonce)
        with pytest.raises(InvalidSignature, match="refused the drill signature: isValidSignature returned"):
            verify_drill_proof(drill.record, proof, [*owners, owner], now=T0 + 1)
    exact = contract_at(chain, answering(1), 0xEC43)  # the control: exactly the magic word is a yes
    verify_drill_proof(drill.record, DrillProof(owner=exact, via="contract", signature=b"\x01" * 65, safe=treasury.safe,
                                                chain_id=treasury.chain_id, nonce=drill.challenge.nonce),
                       [*owners, exact], now=T0 + 1)


def test_an_echoing_contract_is_no_eip1271_owner_of_a_safe_signature(chain):
    from treasury.signatures.verification import check_eip1271, eip1271_accepted

    echo = contract_at(chain, ECHO_CODE, 0xEC50)
    for version in ("1.4.1", "1.3.0", "1.1.1"):  # bytes32 entrypoint, and the legacy (bytes,bytes) one
        with pytest.raises(InvalidSignature, match="rejected the signature"):
            check_eip1271(echo, b"\x02" * 32, b"preimage", b"\x01" * 65, version, SAFE)
    legacy = bytes.fromhex("20c13b0b")
    assert eip1271_accepted(MAGIC + bytes(28)) and eip1271_accepted(legacy + bytes(28), legacy)
    assert not eip1271_accepted(legacy + bytes(28) + bytes(32), legacy)  # what an echo answers the legacy call
    assert not eip1271_accepted(MAGIC) and not eip1271_accepted(MAGIC + b"\x01" + bytes(27))


def test_a_contract_owner_is_not_asked_on_another_chain(ceremony, chain):
    treasury = ceremony.treasury
    other_chain = DrillChallenge.create(treasury.safe, treasury.chain_id + 1, T0, DAY)
    proof = DrillProof(owner=ceremony.vault, via="contract", signature=b"\x01" * 65, safe=treasury.safe,
                       chain_id=other_chain.chain_id, nonce=other_chain.nonce)
    with pytest.raises(InvalidSignature, match=f"for chain {other_chain.chain_id} but the node answers for chain"):
        verify_drill_proof(other_chain, proof, treasury.owners(), now=T0 + 1)
    with pytest.raises(InvalidSignature, match="node answers for chain"):
        sign_drill_as_contract_owner(other_chain, ceremony.vault, [ceremony.vault_signer])


def test_a_trailing_newline_is_no_nonce_via_or_drill_id():
    with pytest.raises(InvalidInput, match="nonce"):
        challenge(nonce=NONCE + "\n")
    typed = challenge().typed_data()
    typed["message"]["nonce"] = NONCE + "\n"
    with pytest.raises(InvalidInput, match="nonce"):
        DrillChallenge.from_json(typed)
    data = DrillProof(owner=OWNER, via="test", signature=b"\x01" * 65, safe=SAFE, chain_id=1, nonce=NONCE).to_json()
    for key, value in (("nonce", NONCE + "\n"), ("via", "test\n")):
        with pytest.raises(InvalidInput):
            DrillProof.from_json(data | {key: value})


def test_the_store_refuses_a_trailing_newline_and_a_nonce_used_by_any_drill(store: Store):
    drill = add_drill(store)
    with pytest.raises(InvalidInput, match="signer kind"):
        store.add_owner_proof(drill.id, OWNER, "test\n", b"\x01" * 65, T0, actor="bob")
    with pytest.raises(InvalidInput):
        add_drill(store, "0x" + "cd" * 32 + "\n", challenge=challenge(nonce="0x" + "cd" * 32).typed_data())
    with pytest.raises(InvalidInput, match="already issued"):  # the same nonce for another Safe and chain
        add_drill(store, safe="0x" + "33" * 20, chain_id=10)
    assert [d.id for d in store.drills(1, SAFE)] == [drill.id] and store.drills(10, "0x" + "33" * 20) == []
    assert store.owner_proofs(1, SAFE) == []


def test_the_store_keeps_only_a_challenge_that_is_the_drills_own(db: StoreDB):
    with db.open() as store:
        before = db.dump()
        with pytest.raises(InvalidInput, match="not a drill challenge"):
            add_drill(store, challenge={"primaryType": "DrillChallenge"})
        for differs, column in (({"nonce": "0x" + "cd" * 32}, "nonce"), ({"safe": "0x" + "33" * 20}, "safe"),
                                ({"chain_id": 10}, "chain_id"), ({"issued_at": T0 + 1}, "created_at"),
                                ({"expires_at": T0 + DAY}, "expires_at")):
            with pytest.raises(InvalidInput, match=f"disagrees with the drill's {column}"):
                add_drill(store, challenge=challenge(**differs).typed_data())
        assert db.dump() == before


def test_a_challenge_file_must_carry_its_own_digest_type_and_version_and_a_js_safe_chain_id():
    data = challenge().to_json()
    assert DrillChallenge.from_json(data | {"digest": data["digest"].upper().replace("0X", "0x")}) == challenge()
    with pytest.raises(InvalidInput, match="digest"):
        DrillChallenge.from_json(data | {"digest": "0x" + "00" * 32})
    with pytest.raises(InvalidInput, match="type"):
        DrillChallenge.from_json(data | {"type": "ape-treasury drill proof"})
    with pytest.raises(InvalidInput, match="version"):
        DrillChallenge.from_json(data | {"version": 2})
    assert challenge(chain_id=2**53 - 1).chain_id == 2**53 - 1
    with pytest.raises(InvalidInput, match="2\\*\\*53"):
        challenge(chain_id=2**53)
    proof = DrillProof(owner=OWNER, via="test", signature=b"\x01" * 65, safe=SAFE, chain_id=1, nonce=NONCE).to_json()
    with pytest.raises(InvalidInput, match="2\\*\\*53"):
        DrillProof.from_json(proof | {"chain_id": 2**53})


def test_a_proof_names_its_owner_and_safe_checksummed():
    from treasury.addresses import parse_address

    lower = DrillProof(owner=OWNER.lower(), via="test", signature=bytearray(b"\x01" * 65), safe=SAFE.lower(), chain_id=1,
                       nonce=NONCE.upper().replace("0X", "0x"))
    assert (lower.owner, lower.safe, lower.nonce) == (parse_address(OWNER), parse_address(SAFE), NONCE)
    assert lower == DrillProof.from_json(lower.to_json()) and isinstance(lower.signature, bytes)
    mixed = parse_address("0x" + "ab" * 20)
    broken = mixed[:2] + mixed[2:].swapcase() if mixed[2:] != mixed[2:].swapcase() else mixed
    with pytest.raises(InvalidInput, match="checksum"):
        DrillProof(owner=broken, via="test", signature=b"\x01" * 65, safe=SAFE, chain_id=1, nonce=NONCE)


def test_a_removed_owners_proofs_are_not_counted_anywhere(ceremony, drill, chain):
    from builders import sign_by

    from treasury.ceremony.drill import proven_counts
    from treasury.server.drills import drill_json
    from treasury.server.pages.drill import drill_page, drills_page

    treasury, dave = ceremony.treasury, ceremony.eoas[3]
    for account in ceremony.eoas:
        record_drill_proof(treasury, drill.record.id, sign_drill(drill.challenge, account), now=T0 + 1)
    assert drills_page(treasury, T0 + 2).rows[0].proven == 4
    removal = treasury.propose_remove_owner(dave.address, 3)
    sign_by(treasury, removal, ceremony.eoas, count=3)
    treasury.schedule(removal.id, signers=ceremony.eoas[:3], sender=ceremony.funder)
    chain.pending_timestamp += 2 * DAY + 60
    chain.mine()
    treasury.execute(removal.id, sender=ceremony.funder)
    owners = treasury.owners()
    proofs = treasury.store.owner_proofs(treasury.chain_id, treasury.safe, drill.record.id)
    assert len(proofs) == 4 and proven_counts(proofs, owners) == {drill.record.id: 3}
    assert drills_page(treasury, T0 + 2).rows[0].proven == 3 and drills_page(treasury, T0 + 2).owners == 4
    assert drill_page(treasury, drill.record, T0 + 2).proven == 3
    data = drill_json(drill.record, proofs, owners, T0 + 2)
    assert dave.address not in data["proven"] and len(data["proven"]) == 3
