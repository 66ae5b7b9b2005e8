"""Self-contained bundles: `treasury import` on a machine that never saw the proposal and has no node.

The bundle carries the whole proposal (every SafeTx field, the hashes, title, description, proposer,
the owners and threshold at export time, every signature with its kind). Offline, the safeTxHash is
recomputed from the fields, each ECDSA signature is recovered and must be one of the recorded owners'
(stored verified_by="bundle"); anything that does not check refuses the whole bundle with nothing
stored. Once a chain is reachable, `Treasury.reverify` checks the bundle's signatures against the
Safe's current owners. The offline tests need no chain: ape's test accounts sign without a node.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from treasury.cli import cli

TREASURY = Path(sys.executable).with_name("treasury")
HEAVY = ("ape", "web3", "safe_eth")
SAFE = "0x" + "00" * 18 + "0100"
TOKEN = "0x" + "00" * 18 + "0200"
VENDOR = "0x" + "00" * 18 + "0300"
GAS_TOKEN = "0x" + "00" * 18 + "0400"
REFUNDER = "0x" + "00" * 18 + "0500"
GUARD = "0x" + "00" * 18 + "0600"
TRANSFER = function_signature_to_4byte_selector("transfer(address,uint256)")


def _accounts():
    from ape import accounts

    return accounts.test_accounts


def _config(tmp_path: Path, store: str = "laptop.db", **entry) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "ape-config.yaml"
    config.write_text(yaml.safe_dump({"treasury": {"store": str(tmp_path / store), "treasuries": {"ops": {
        "safe": SAFE, "chain_id": 31337, "version": "1.4.1", "tokens": {"TUSD": {"address": TOKEN, "decimals": 6}},
        **entry}}}}))
    return config


def _foreign_tx(nonce: int = 3):
    """A SafeTx as another tool may make it: every gas field set, a gas token and a refund receiver
    (safe-eth-py's SafeTx: the reference hash)."""
    from safe_eth.safe.safe_tx import SafeTx

    data = TRANSFER + encode(["address", "uint256"], [VENDOR, 250 * 10**6])
    return SafeTx(None, SAFE, TOKEN, 0, data, 0, 50_000, 21_000, 10**9, GAS_TOKEN, REFUNDER,  # type: ignore[arg-type]
                  safe_nonce=nonce, safe_version="1.4.1", chain_id=31337)


def _bundle(tmp_path: Path, tx, signers, *, owners=None, threshold=2, name="bundle.json", kinds=None, mutate=None) -> Path:
    """Write a bundle of `tx` signed by `signers` (ape test accounts), recording `owners` (default:
    test accounts 0-2) and `threshold`; `mutate(dict)` edits the JSON before it is written."""
    from treasury.signatures import export_bundle, sign
    from treasury.signatures.bundle import ProposalFacts

    test = _accounts()
    owners = [a.address for a in test[:3]] if owners is None else owners
    signatures = [sign(a, tx, (kinds or {}).get(a.address, "eip712")) for a in signers]
    facts = ProposalFacts(title="pay the vendor", description="250 TUSD for October", proposer="ops-bot",
                          owners=tuple(owners), threshold=threshold)
    data = export_bundle(tx, "1.4.1", signatures, facts=facts)
    if mutate is not None:
        mutate(data)
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=2))
    return path


def _cli(*args):
    return CliRunner(mix_stderr=False).invoke(cli, [str(a) for a in args])


def _stored(config: Path):
    """Everything a store holds: proposals, signatures with their mark, the audit log."""
    from treasury.store import Store

    path = Path(yaml.safe_load(config.read_text())["treasury"]["store"])
    if not path.exists():
        return None
    with Store.open(path) as store:
        proposals = store.list_proposals()
        return ([(p.id, p.safe_tx_hash) for p in proposals],
                {p.id: [(s.owner, s.kind, s.verified_by) for s in store.signatures(p.id, None)] for p in proposals},
                [e.entry_hash for e in store.audit_entries()])


# --- offline import -------------------------------------------------------------------------------


def test_offline_import_creates_the_proposal_and_verifies_every_signature(tmp_path):
    from treasury.records import TreasuryRecords
    from treasury.store import Store

    test = _accounts()
    tx = _foreign_tx()
    path = _bundle(tmp_path, tx, test[:2], kinds={test[1].address: "eth_sign"})
    config = _config(tmp_path)
    result = _cli("import", path, "--config", config, "--json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["created"] is True and out["added"] == 2 and out["verified_by"] == "bundle" and out["unchecked"] == []
    assert out["bundle_owners"] == [a.address for a in test[:3]] and out["bundle_threshold"] == 2
    with Store.open(tmp_path / "laptop.db") as store:
        record = store.get_proposal(out["id"])
        # Taken in as it is: every field, as safe-eth-py hashes it.
        assert record.safe_tx_hash == tx.safe_tx_hash.to_0x_hex()
        assert (record.safe_tx_gas, record.base_gas, record.gas_price, record.gas_token, record.refund_receiver) == (
            50_000, 21_000, 10**9, GAS_TOKEN, REFUNDER)
        assert (record.title, record.description, record.proposer, record.nonce) == (
            "pay the vendor", "250 TUSD for October", "bundle:ops-bot", 3)  # the bundle's claim, said so
        stored = store.signatures(record.id)
        assert [(s.owner, s.kind, s.verified_by) for s in stored] == sorted(
            [(test[0].address, "eip712", "bundle"), (test[1].address, "eth_sign", "bundle")], key=lambda s: int(s[0], 16))
        assert store.verify_audit_log().ok
    # Importing again adds nothing; a bundle with one more signature adds just that one.
    again = json.loads(_cli("import", path, "--config", config, "--json").stdout)
    assert (again["id"], again["created"], again["added"]) == (out["id"], False, 0)
    more = _bundle(tmp_path, tx, test[:3], name="more.json")
    assert json.loads(_cli("import", more, "--config", config, "--json").stdout)["added"] == 1
    # The store-only commands read it back: show recomputes the hash, export writes the same facts.
    records = TreasuryRecords.load(config_path=config)
    try:
        assert records.view(out["id"]).signers == tuple(sorted((a.address for a in test[:3]), key=lambda a: int(a, 16)))
        assert records.bundle(out["id"])["title"] == "pay the vendor"
    finally:
        records.close()


def test_an_approved_hash_is_stored_unchecked_and_said_so(tmp_path):
    from safe_eth.safe.safe_signature import SafeSignatureApprovedHash

    test = _accounts()
    tx = _foreign_tx()
    approval = SafeSignatureApprovedHash.build_for_owner(test[2].address, tx.safe_tx_hash.to_0x_hex())

    def add_approval(data):
        data["signatures"].append({"owner": test[2].address, "kind": "approved_hash",
                                   "signature": "0x" + bytes(approval.export_signature()).hex()})

    path = _bundle(tmp_path, tx, test[:1], mutate=add_approval)
    config = _config(tmp_path)
    text = _cli("import", path, "--config", config)
    assert text.exit_code == 0, text.stderr
    assert "cannot be checked offline" in text.stdout and test[2].address in text.stdout
    _, signatures, _ = _stored(config)
    assert sorted(k for _, k, _ in next(iter(signatures.values()))) == ["approved_hash", "eip712"]


def _forge(owner_address: str, real_signer):
    """A bundle edit: add `real_signer`'s signature claimed to be by `owner_address`."""
    from treasury.signatures import sign

    def mutate(data):
        data["signatures"].append({"owner": owner_address, "kind": "eip712",
                                   "signature": "0x" + bytes(sign(real_signer, _foreign_tx()).export_signature()).hex()})
    return mutate


@pytest.mark.parametrize("case, message", [
    ("tampered value", "bundle altered: its fields hash to safeTxHash"),
    ("tampered gas price", "bundle altered: its fields hash to safeTxHash"),
    ("tampered refund receiver", "bundle altered"),
    ("forged signature", "said to be by .* recovers to"),
    ("non-owner per the bundle", "is not one of the owners the bundle records"),
    ("kind lies", "it is declared eth_sign"),
    ("no owners recorded", "records no owners"),
    ("another Safe", "not ops"),
    ("another chain", "bundle altered|not ops"),
    ("threshold above the owners", "'threshold' is 4"),
])
def test_a_bad_bundle_is_refused_in_one_line_with_nothing_stored(tmp_path, case, message):
    test = _accounts()
    tx = _foreign_tx()
    mutate = {
        "tampered value": lambda d: d.update(value="1"),
        "tampered gas price": lambda d: d.update(gas_price=1),
        "tampered refund receiver": lambda d: d.update(refund_receiver=VENDOR),
        "forged signature": _forge(test[1].address, test[5]),
        "non-owner per the bundle": _forge(test[5].address, test[5]),
        "kind lies": lambda d: d["signatures"][0].update(kind="eth_sign"),
        "no owners recorded": lambda d: (d.pop("owners"), d.pop("threshold")),
        "another Safe": lambda d: None,
        "another chain": lambda d: d.update(chain_id=1),
        "threshold above the owners": lambda d: d.update(threshold=4),
    }[case]
    path = _bundle(tmp_path, tx, test[:1], mutate=mutate)
    config = _config(tmp_path, **({"safe": VENDOR} if case == "another Safe" else {}))
    before = _stored(config)
    done = subprocess.run([str(TREASURY), "import", str(path), "--config", str(config)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 1 and done.stdout == "", (done.stdout, done.stderr)
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    assert re.search(message, line), line
    after = _stored(config)
    assert after in (before, ([], {}, [])), after  # no proposal, no signature, no audit entry


def test_a_foreign_tool_proposal_hashes_as_safe_eth_py_hashes_it(tmp_path):
    """Any safeTxGas / baseGas / gasPrice / gasToken / refundReceiver, as the Safe hashes them."""
    from safe_eth.safe.safe_tx import SafeTx

    from treasury.records import TreasuryRecords

    test = _accounts()
    config = _config(tmp_path)
    records = TreasuryRecords.load(config_path=config, create=True)
    try:
        for nonce, gas in enumerate([(0, 0, 0), (1, 2, 3), (2**32, 10**6, 2**100), (2**256 - 1, 2**256 - 1, 2**256 - 1)]):
            for gas_token, refund in ((GAS_TOKEN, REFUNDER), ("0x" + "00" * 20, VENDOR), (TOKEN, "0x" + "00" * 20)):
                tx = SafeTx(None, SAFE, VENDOR, 7, b"\x01\x02", 1, *gas, gas_token, refund,  # type: ignore[arg-type]
                            safe_nonce=nonce, safe_version="1.4.1", chain_id=31337)
                done = records.import_bundle(_bundle(tmp_path, tx, test[:1], name=f"b-{nonce}-{refund}.json"))
                assert done.record.safe_tx_hash == tx.safe_tx_hash.to_0x_hex()
                assert records.hashes(done.record).safe_tx_hash == tx.safe_tx_hash.to_0x_hex()  # re-hashed from the store
    finally:
        records.close()


def test_schedule_signatures_travel_offline_over_the_configured_guards_hash(tmp_path):
    from treasury.records import TreasuryRecords
    from treasury.signatures.guard_messages import schedule_message
    from treasury.signatures.signing import sign_guard_message

    test = _accounts()
    tx = _foreign_tx()
    message = schedule_message(chain_id=31337, guard=GUARD, safe=SAFE, to=tx.to, value=tx.value, data=bytes(tx.data),
                               operation=tx.operation, nonce=0)
    signed = sign_guard_message(test[1], message, "1.4.1")

    def add(data, signed_hash=message.hash_hex):
        data["guard_signatures"] = [{"purpose": "schedule", "owner": test[1].address, "kind": "eip712",
                                     "signature": "0x" + bytes(signed.export_signature()).hex(), "guard": GUARD,
                                     "signed_hash": signed_hash, "intent_nonce": "0"}]

    config = _config(tmp_path, guard=GUARD)
    records = TreasuryRecords.load(config_path=config, create=True)
    try:
        from treasury.errors import InvalidInput

        wrong = schedule_message(chain_id=31337, guard=GUARD, safe=SAFE, to=tx.to, value=tx.value, data=bytes(tx.data),
                                 operation=tx.operation, nonce=1)
        with pytest.raises(InvalidInput, match="states hash"):
            records.import_bundle(_bundle(tmp_path, tx, test[:1], name="wrong.json", mutate=lambda d: add(d, wrong.hash_hex)))
        assert records.proposals() == []
        done = records.import_bundle(_bundle(tmp_path, tx, test[:1], mutate=add))
        schedule = [s for s in done.added if s.purpose == "schedule"]
        assert [(s.owner, s.intent_nonce, s.verified_by) for s in schedule] == [(test[1].address, 0, "bundle")]
    finally:
        records.close()


def _imported(args: list[str], cwd: Path) -> set[str]:
    """Top-level packages a fresh `treasury ARGS` process imported (from PYTHONPROFILEIMPORTTIME)."""
    done = subprocess.run([str(TREASURY), *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False,
                          env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert done.returncode == 0, f"{args}: {done.stderr[-2000:]}"
    names = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {name.split(".")[0] for name in names}


def test_treasury_import_offline_imports_no_chain_stack(tmp_path):
    test = _accounts()
    path = _bundle(tmp_path, _foreign_tx(), test[:2])
    config = _config(tmp_path)
    assert not set(HEAVY) & _imported(["import", str(path), "--config", str(config)], tmp_path)
    assert not set(HEAVY) & _imported(["import", str(path), "--config", str(config), "--json"], tmp_path)  # again: nothing new
    assert len(next(iter(_stored(config)[1].values()))) == 2


# --- with a chain: creating from a bundle, and re-verification --------------------------------------------


@pytest.fixture
def chain_treasury(make_treasury, tmp_path):
    treasury, _token = make_treasury(guarded=False, salt_nonce=930)
    return treasury, tmp_path / "ape-config.yaml"


def test_reverify_marks_the_chains_owners_and_rejects_the_rest(chain_treasury, owners, outsider, vendor_address, tmp_path):
    from treasury.records import TreasuryRecords
    from treasury.signatures import sign
    from treasury.treasury import Treasury

    treasury, config = chain_treasury
    record = treasury.propose_transfer(vendor_address, "10 TUSD")
    treasury.sign(record.id, owners[0])
    exported = treasury.export_bundle(record.id, tmp_path / "from-chain.json")
    assert exported["owners"] == treasury.owners() and exported["threshold"] == 2 and exported["title"] == record.title
    # The bundle is edited to name the outsider as an owner, with its signature: offline, the
    # bundle's word is all there is, so it is taken in (as "bundle"); the chain then refuses it.
    safe_tx = treasury.safe_tx(record)
    exported["owners"] = sorted([*exported["owners"], outsider.address], key=lambda a: int(a, 16))
    exported["signatures"].append({"owner": outsider.address, "kind": "eip712",
                                   "signature": "0x" + bytes(sign(outsider, safe_tx).export_signature()).hex()})
    (tmp_path / "edited.json").write_text(json.dumps(exported))
    laptop = TreasuryRecords.load("ops", config, store=str(tmp_path / "laptop.db"), create=True)
    done = laptop.import_bundle(tmp_path / "edited.json")
    assert done.created and {s.verified_by for s in done.added} == {"bundle"} and len(done.added) == 2
    laptop.close()

    pid = done.record.id
    online = Treasury.load("ops", config, store=str(tmp_path / "laptop.db"))
    try:
        checked = online.reverify(pid)
        assert [s.owner for s in checked.confirmed] == [owners[0].address]
        assert [(s.owner, "is not an owner" in why) for s, why in checked.rejected] == [(outsider.address, True)]
        marks = {s.owner: s.verified_by for s in online.store.signatures(pid)}
        assert marks == {owners[0].address: "chain", outsider.address: "bundle"}
        # Not counted: the collected signatures and the needs leave the outsider out.
        assert [s.owner for s in online.collected_signatures(pid)] == [owners[0].address]
        need = online.signature_needs(pid)[0]
        assert need.signers == (owners[0].address,) and need.missing == 1
        assert online.reverify(pid).confirmed == ()  # already marked: only the rejected one is re-checked
        assert online.store.verify_audit_log().ok
    finally:
        online.store.close()


def test_import_with_a_chain_creates_a_proposal_this_store_never_saw(chain_treasury, owners, outsider, vendor_address, tmp_path):
    from treasury.signatures.verification import InvalidSignature
    from treasury.treasury import Treasury

    treasury, config = chain_treasury
    record = treasury.propose_transfer(vendor_address, "12 TUSD")
    treasury.sign(record.id, owners[0])
    treasury.sign(record.id, owners[1])
    path = tmp_path / "bundle.json"
    treasury.export_bundle(record.id, path)
    other = Treasury.load("ops", config, store=str(tmp_path / "other.db"))
    try:
        # A bundle with a non-owner's signature is refused with nothing stored, the proposal included.
        forged = json.loads(path.read_text())
        from treasury.signatures import sign

        forged["signatures"].append({"owner": outsider.address, "kind": "eip712",
                                     "signature": "0x" + bytes(sign(outsider, treasury.safe_tx(record)).export_signature()).hex()})
        (tmp_path / "forged.json").write_text(json.dumps(forged))
        with pytest.raises(InvalidSignature, match="is not an owner"):
            other.import_bundle(tmp_path / "forged.json")
        assert other.store.list_proposals() == [] and other.store.audit_entries() == []
        created, added = other.import_bundle(path)
        assert (created.safe_tx_hash, created.title, added) == (record.safe_tx_hash, record.title, 2)
        assert {s.verified_by for s in other.store.signatures(created.id)} == {"chain"}
        assert len(other.collected_signatures(created.id)) == 2
    finally:
        other.store.close()


def test_a_hostile_bundle_never_keeps_an_owners_real_signature_out(chain_treasury, owners, vendor_address, tmp_path):
    """A bundle's approved_hash "signatures" merely name owners (offline nothing proves them), here all
    three: before the fix they filled every owner's place, so neither `treasury sign` nor the
    server's confirmation could ever store the real ones (the server even answered 201). Now a
    chain-verified signature replaces the bundle's row, and the server answers 201 only for what it
    stored or for the very bytes it holds."""
    import requests
    from server_helpers import running_server

    from treasury.records import TreasuryRecords
    from treasury.signatures import sign
    from treasury.treasury import Treasury

    treasury, config = chain_treasury
    record = treasury.propose_transfer(vendor_address, "4 TUSD")
    hostile = treasury.export_bundle(record.id)
    hostile["proposer"] = owners[2].address  # the bundle's word, not a verified proposer
    hostile["signatures"] = [{"owner": o.address, "kind": "approved_hash",
                              "signature": "0x" + "00" * 12 + o.address[2:].lower() + "00" * 32 + "01"} for o in owners[:3]]
    (tmp_path / "hostile.json").write_text(json.dumps(hostile))
    laptop = TreasuryRecords.load("ops", config, store=str(tmp_path / "laptop.db"), create=True)
    done = laptop.import_bundle(tmp_path / "hostile.json")
    assert len(done.unchecked) == 3 and done.record.proposer == f"bundle:{owners[2].address}"
    laptop.close()

    online = Treasury.load("ops", config, store=str(tmp_path / "laptop.db"))
    pid, safe_tx = done.record.id, treasury.safe_tx(record)
    try:
        signed = online.sign(pid, owners[0])
        assert (signed.owner, signed.kind, signed.verified_by) == (owners[0].address, "eip712", "chain")
        with running_server(online.store, config_path=config) as url:
            confirm = f"{url}/api/v1/multisig-transactions/{record.safe_tx_hash}/confirmations/"
            real = "0x" + bytes(sign(owners[1], safe_tx).export_signature()).hex()
            assert requests.post(confirm, json={"signature": real}, timeout=60).status_code == 201
            stored = {s.owner: (s.verified_by, "0x" + bytes(s.signature).hex()) for s in online.store.signatures(pid)}
            assert stored[owners[1].address] == ("chain", real)
            before = [e.entry_hash for e in online.store.audit_entries()]
            assert requests.post(confirm, json={"signature": real}, timeout=60).status_code == 201  # a true repeat
            other = "0x" + bytes(sign(owners[1], safe_tx, "eth_sign").export_signature()).hex()
            refused = requests.post(confirm, json={"signature": other}, timeout=60)
            assert refused.status_code == 400 and "already confirmed" in refused.json()["signature"][0]
            assert [e.entry_hash for e in online.store.audit_entries()] == before
        counted = [s.owner for s in online.collected_signatures(pid)]  # the third, still a bundle's claim, is not
        assert counted == sorted((o.address for o in owners[:2]), key=lambda a: int(a, 16))
        actions = [e.action for e in online.store.audit_entries(pid)]
        assert actions.count("signature.replaced") == 2 and online.store.verify_audit_log().ok
    finally:
        online.store.close()


@pytest.fixture
def vendor_address(accounts):
    return accounts[4].address


def test_a_bundle_from_the_server_imports_on_a_laptop_with_no_node(chain_treasury, owners, vendor_address, tmp_path):
    """The server states the Safe's owners and threshold from the chain, so its bundle is self-contained."""
    import requests
    from server_helpers import running_server

    treasury, config = chain_treasury
    record = treasury.propose_transfer(vendor_address, "3 TUSD")
    treasury.sign(record.id, owners[1])
    with running_server(treasury.store, config_path=config) as url:
        answer = requests.get(f"{url}/api/treasury/v1/proposals/{record.id}/bundle/", timeout=60)
    assert answer.status_code == 200, answer.text
    bundle = answer.json()
    assert (bundle["owners"], bundle["threshold"]) == (treasury.owners(), 2)
    path = tmp_path / "from-server.json"
    path.write_text(json.dumps(bundle))
    laptop = _config(tmp_path / "laptop", safe=treasury.safe, chain_id=treasury.chain_id, version=treasury.version)
    done = subprocess.run([str(TREASURY), "import", str(path), "--config", str(laptop), "--json"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["created"], out["added"], out["signers"], out["safe_tx_hash"]) == (
        True, 1, [owners[1].address], record.safe_tx_hash)
