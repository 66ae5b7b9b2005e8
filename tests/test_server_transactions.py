"""Multisig transactions through `treasury serve`: propose, list, show, confirm, estimate, reconcile.

Every request goes over HTTP to the server running on the session's anvil, with signatures made by
ape test accounts (the Safe's owners), as a remote signer would send them. Each refused request is
checked to leave the store exactly as it was (proposals, signatures and the audit log). Every test
runs on SQLite and on PostgreSQL (the `db` fixture of tests/store_db.py).
"""

from __future__ import annotations

import pytest
import requests
from builders import tusd_policy
from server_helpers import running_server

from treasury.addresses import ZERO_ADDRESS
from treasury.proposal.build import encode_call
from treasury.proposal.safe_tx import build_safe_tx
from treasury.signatures.signing import sign

UNIT = 10**6


@pytest.fixture
def vendor(accounts):
    return accounts[6]


@pytest.fixture
def ops(make_treasury, vendor, db):
    """The treasury (guarded, paying `vendor` in TUSD) over a store on SQLite or PostgreSQL (`db`)."""
    from treasury.treasury import Treasury

    configured, token = make_treasury(tusd_policy(vendor.address, amount="10,000", max_per_tx=8000))
    configured.store.close()
    treasury = Treasury(configured.name, configured.entry, db.open())
    treasury.config_path = configured.config_path
    yield treasury, token
    treasury.store.close()


@pytest.fixture
def served(ops):
    """(treasury, token, base URL): the server over the treasury's own store and config (no write
    limit to hit here: tests/test_server_core.py tests it)."""
    treasury, token = ops
    with running_server(treasury.store, config_path=treasury.config_path, write_burst=1000) as url:
        yield treasury, token, url


def snapshot(store):
    """Everything a refused request must leave unchanged."""
    proposals = [(p.id, p.status, p.safe_tx_hash) for p in store.list_proposals()]
    signatures = [(s.proposal_id, s.owner) for p in store.list_proposals() for s in store.signatures(p.id)]
    return proposals, signatures, len(store.audit_entries())


def transfer_tx(treasury, token, to, amount=1, nonce=None, chain_id=None, **fields):
    """A SafeTx paying `amount` TUSD from the treasury's Safe."""
    data = encode_call("transfer(address,uint256)", [to, amount * UNIT])
    return build_safe_tx(treasury.safe, token.address, 0, data, 0,
                         nonce=treasury.onchain_nonce() if nonce is None else nonce,
                         chain_id=treasury.chain_id if chain_id is None else chain_id, version=treasury.version, **fields)


def body_of(safe_tx, signer, *, sender=None, signature="sign", **over):
    """The POST body Safe's clients send for `safe_tx`, signed by `signer` (or with `signature` as given)."""
    body = {
        "to": safe_tx.to, "value": safe_tx.value, "data": "0x" + bytes(safe_tx.data).hex(), "operation": safe_tx.operation,
        "gasToken": safe_tx.gas_token, "safeTxGas": safe_tx.safe_tx_gas, "baseGas": safe_tx.base_gas,
        "gasPrice": safe_tx.gas_price, "refundReceiver": safe_tx.refund_receiver, "nonce": safe_tx.safe_nonce,
        "contractTransactionHash": "0x" + bytes(safe_tx.safe_tx_hash).hex(),
        "sender": sender or signer.address,
        "signature": signature_hex(signer, safe_tx) if signature == "sign" else signature,
        "origin": "invoice 42",
    }
    body.update(over)
    return body


def tx_url(url, safe, version="v2"):
    return f"{url}/api/{version}/safes/{safe}/multisig-transactions/"


def signature_hex(account, safe_tx, kind="eip712"):
    return "0x" + bytes(sign(account, safe_tx, kind).export_signature()).hex()


def test_propose_list_show_confirm_round_trip(served, owners, vendor, safe_deployer):
    treasury, token, url = served
    safe_tx = transfer_tx(treasury, token, vendor.address, 250)
    safe_tx_hash = "0x" + bytes(safe_tx.safe_tx_hash).hex()

    answer = requests.post(tx_url(url, treasury.safe), json=body_of(safe_tx, owners[0]), timeout=30)
    assert answer.status_code == 201, answer.text

    listing = requests.get(tx_url(url, treasury.safe, "v1"), timeout=30).json()
    assert (listing["count"], listing["next"], listing["previous"], listing["countUniqueNonce"]) == (1, None, None, 1)
    tx = listing["results"][0]
    assert tx["safeTxHash"] == safe_tx_hash and tx["nonce"] == safe_tx.safe_nonce and tx["safeTxGas"] == 0
    assert (tx["value"], tx["gasPrice"], tx["to"], tx["data"]) == ("0", "0", token.address, "0x" + bytes(safe_tx.data).hex())
    assert (tx["isExecuted"], tx["isSuccessful"], tx["transactionHash"], tx["confirmationsRequired"]) == (False, None, None, 2)
    assert [(c["owner"], c["signatureType"]) for c in tx["confirmations"]] == [(owners[0].address, "EOA")]
    assert tx["proposer"] == owners[0].address and tx["origin"] == "invoice 42"
    record = treasury.store.find_by_safe_tx_hash(treasury.chain_id, treasury.safe, safe_tx_hash)
    assert tx["treasury"]["proposalId"] == record.id and tx["treasury"]["title"] == "invoice 42"
    assert tx["treasury"]["verdict"]["outcome"] == "allow" and tx["treasury"]["status"] == "pending"
    assert record.proposer == owners[0].address
    assert any(e.actor.startswith(f"server:{owners[0].address} from 127.0.0.1") for e in treasury.store.audit_entries(record.id))

    detail = requests.get(f"{url}/api/v2/multisig-transactions/{safe_tx_hash}/", timeout=30).json()
    assert detail["nonce"] == str(safe_tx.safe_nonce) and detail["safeTxGas"] == "0" and detail["baseGas"] == "0"

    confirmation = {"signature": signature_hex(owners[1], safe_tx, "eth_sign")}
    confirm_url = f"{url}/api/v1/multisig-transactions/{safe_tx_hash}/confirmations/"
    answer = requests.post(confirm_url, json=confirmation, timeout=30)
    assert answer.status_code == 201 and answer.json() == confirmation
    before = snapshot(treasury.store)
    again = requests.post(confirm_url, json=confirmation, timeout=30)  # a retry whose answer was lost
    assert again.status_code == 201 and snapshot(treasury.store) == before
    again = requests.post(tx_url(url, treasury.safe, "v1"), json=body_of(safe_tx, owners[0]), timeout=30)
    assert again.status_code == 201 and snapshot(treasury.store) == before  # the same proposal again: idempotent

    confirmations = requests.get(confirm_url, timeout=30).json()
    assert confirmations["count"] == 2
    listed = requests.get(tx_url(url, treasury.safe, "v1"), timeout=30).json()["results"][0]  # cached page renewed
    assert [c["owner"] for c in listed["confirmations"]] == sorted([o.address for o in owners[:2]], key=lambda a: int(a, 16))
    assert {(c["owner"], c["signatureType"]) for c in confirmations["results"]} == {
        (owners[0].address, "EOA"), (owners[1].address, "ETH_SIGN")}

    execution = treasury.execute(record.id, sender=safe_deployer)
    done = requests.get(f"{url}/api/v1/multisig-transactions/{safe_tx_hash}/", timeout=30).json()
    assert (done["isExecuted"], done["isSuccessful"], done["transactionHash"]) == (True, True, execution.tx_hash)
    assert done["blockNumber"] == execution.block_number and done["executor"] == safe_deployer.address
    assert int(done["ethGasPrice"]) > 0 and done["executionDate"].endswith("Z") and done["treasury"]["status"] == "executed"
    pending = requests.get(tx_url(url, treasury.safe) + "?executed=false", timeout=30).json()
    assert pending["count"] == 0


def test_execution_elsewhere_is_reconciled_on_read(ops, owners, vendor, safe_deployer):
    """Executed by another tool straight on chain: the listing shows it executed, its rival superseded.

    The chain view's owner cache is off here, so the read sees the new nonce at once (with it, within
    owner_cache_seconds)."""
    treasury, token = ops
    with running_server(treasury.store, config_path=treasury.config_path, owner_cache_seconds=0) as url:
        check_reconciled(treasury, token, url, owners, vendor, safe_deployer)


def check_reconciled(treasury, token, url, owners, vendor, safe_deployer):
    from treasury.chain.safe import safe_instance
    from treasury.signatures.verification import encode, parse_signature

    nonce = treasury.onchain_nonce()
    paid, rival = transfer_tx(treasury, token, vendor.address, 5), transfer_tx(treasury, token, vendor.address, 6)
    for safe_tx in (paid, rival):
        assert requests.post(tx_url(url, treasury.safe), json=body_of(safe_tx, owners[0]), timeout=30).status_code == 201
    paid_hash = "0x" + bytes(paid.safe_tx_hash).hex()
    second = {"signature": signature_hex(owners[1], paid)}
    assert requests.post(f"{url}/api/v1/multisig-transactions/{paid_hash}/confirmations/", json=second, timeout=30).status_code == 201

    shown = requests.get(f"{url}/api/v2/multisig-transactions/{paid_hash}/", timeout=30).json()
    signatures = encode([parse_signature(c["signature"], paid) for c in shown["confirmations"]])
    safe = safe_instance(treasury.safe, treasury.version)
    receipt = safe.execTransaction(paid.to, paid.value, paid.data, paid.operation, 0, 0, 0, ZERO_ADDRESS, ZERO_ADDRESS,
                                   signatures, sender=safe_deployer)

    listing = requests.get(tx_url(url, treasury.safe) + "?ordering=created", timeout=30).json()
    by_hash = {tx["safeTxHash"]: tx for tx in listing["results"]}
    assert by_hash[paid_hash]["isExecuted"] and by_hash[paid_hash]["transactionHash"] == receipt.txn_hash
    assert by_hash["0x" + bytes(rival.safe_tx_hash).hex()]["treasury"]["status"] == "superseded"

    before = snapshot(treasury.store)  # the nonce is used now: a proposal for it is refused
    stale = transfer_tx(treasury, token, vendor.address, 7, nonce=nonce)
    answer = requests.post(tx_url(url, treasury.safe), json=body_of(stale, owners[0]), timeout=30)
    assert answer.status_code == 422 and "already executed" in answer.json()["nonFieldErrors"][0]
    late = requests.post(f"{url}/api/v1/multisig-transactions/{paid_hash}/confirmations/",
                         json={"signature": signature_hex(owners[2], paid)}, timeout=30)
    assert late.status_code == 400 and "already executed" in late.json()["signature"][0]
    assert snapshot(treasury.store) == before


def test_refused_proposals_change_nothing(served, owners, outsider, vendor):
    treasury, token, url = served
    safe_tx = transfer_tx(treasury, token, vendor.address, 3)
    post = tx_url(url, treasury.safe)
    before = snapshot(treasury.store)

    def refused(body, status=422, url=post):
        answer = requests.post(url, json=body, timeout=30)
        assert answer.status_code == status, answer.text
        assert snapshot(treasury.store) == before
        return answer.json()

    assert "is not an owner or delegate" in refused(body_of(safe_tx, outsider))["nonFieldErrors"][0]
    foreign = body_of(safe_tx, owners[0], signature=signature_hex(outsider, safe_tx))
    assert "is not an owner" in refused(foreign)["nonFieldErrors"][0]
    unsigned_sender = body_of(safe_tx, owners[0], signature=signature_hex(owners[1], safe_tx))
    assert "Signature does not match sender" in refused(unsigned_sender)["nonFieldErrors"][0]
    other_chain = transfer_tx(treasury, token, vendor.address, 3, chain_id=1)
    error = refused(body_of(safe_tx, owners[0], signature=signature_hex(owners[0], other_chain)))["nonFieldErrors"][0]
    assert "chain id 1" in error
    other_nonce = transfer_tx(treasury, token, vendor.address, 3, nonce=safe_tx.safe_nonce + 1)
    error = refused(body_of(safe_tx, owners[0], signature=signature_hex(owners[0], other_nonce)))["nonFieldErrors"][0]
    assert f"nonce {safe_tx.safe_nonce + 1}" in error
    mismatch = body_of(safe_tx, owners[0], contractTransactionHash="0x" + bytes(other_nonce.safe_tx_hash).hex())
    assert "does not match" in refused(mismatch)["nonFieldErrors"][0]
    tampered = body_of(safe_tx, owners[0], to=outsider.address)  # the original hash and signature, another recipient
    assert "does not match" in refused(tampered)["nonFieldErrors"][0]
    odd_gas = transfer_tx(treasury, token, vendor.address, 3, safe_tx_gas=50_000, gas_price=1, gas_token=token.address)
    assert "does not match" in refused(body_of(odd_gas, owners[0], safeTxGas=50_001))["nonFieldErrors"][0]
    assert refused(body_of(safe_tx, owners[0], signature=None))["nonFieldErrors"]
    assert refused(body_of(safe_tx, owners[0], to=vendor.address.lower()))["to"] == [
        f"Address {vendor.address.lower()} is not checksumed"]
    assert "less than or equal to" in refused(body_of(safe_tx, owners[0], value=2**300))["value"][0]
    assert refused(body_of(safe_tx, owners[0], value=str(2**300)))["value"]
    assert refused(body_of(safe_tx, owners[0], value=True))["value"] == ["A valid integer is required."]
    assert refused(body_of(safe_tx, owners[0], nonce=-1))["nonce"]
    assert refused(body_of(safe_tx, owners[0], operation=7))["operation"] == ["Unknown operation"]
    assert refused(body_of(safe_tx, owners[0], signature="0x1234"))["signature"]
    assert refused(body_of(safe_tx, owners[0], signature="0x" + "zz" * 65))["signature"]
    assert refused([1, 2, 3])["nonFieldErrors"]
    huge = b'{"value": ' + b"9" * 5000 + b"}"
    answer = requests.post(post, data=huge, headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 400 and "JSON parse error" in answer.json()["detail"]
    answer = requests.post(post, data=b'{"to": ', headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 400 and "JSON parse error" in answer.json()["detail"]
    checksum = refused(body_of(safe_tx, owners[0]), url=tx_url(url, treasury.safe.lower()))
    assert checksum == {"code": 1, "message": "Checksum address validation failed", "arguments": [treasury.safe.lower()]}
    assert refused(body_of(safe_tx, owners[0]), url=tx_url(url, vendor.address))["code"] == 50  # not a Safe
    assert snapshot(treasury.store) == before


def test_refused_confirmations_change_nothing(served, owners, outsider, vendor):
    treasury, token, url = served
    safe_tx = transfer_tx(treasury, token, vendor.address, 4)
    safe_tx_hash = "0x" + bytes(safe_tx.safe_tx_hash).hex()
    assert requests.post(tx_url(url, treasury.safe), json=body_of(safe_tx, owners[0]), timeout=30).status_code == 201
    confirm_url = f"{url}/api/v1/multisig-transactions/{safe_tx_hash}/confirmations/"
    before = snapshot(treasury.store)

    def refused(body, status=400, url=confirm_url):
        answer = requests.post(url, json=body, timeout=30)
        assert answer.status_code == status, answer.text
        assert snapshot(treasury.store) == before
        return answer.json()

    assert "not an owner" in refused({"signature": signature_hex(outsider, safe_tx)})["signature"][0]
    other = transfer_tx(treasury, token, vendor.address, 5)
    assert refused({"signature": signature_hex(owners[1], other)})["signature"]
    other_chain = transfer_tx(treasury, token, vendor.address, 4, chain_id=1)
    assert "chain id 1" in refused({"signature": signature_hex(owners[1], other_chain)})["signature"][0]
    twice = signature_hex(owners[1], safe_tx)
    assert "duplicated" in refused({"signature": twice + twice[2:]})["signature"][0]
    assert refused({"signature": "0x" + "00" * 64})["signature"]
    assert refused({})["signature"] == ["This field is required."]
    unknown = f"{url}/api/v1/multisig-transactions/0x{'ab' * 32}/confirmations/"
    assert refused({"signature": twice}, 404, unknown)["detail"].startswith("Multisig transaction")
    assert requests.get(f"{url}/api/v2/multisig-transactions/0x{'ab' * 32}/", timeout=30).status_code == 404


def test_with_a_read_token_a_confirmation_tells_no_stranger_which_hashes_exist(ops, owners, outsider, vendor):
    """Unknown hash and refused signature answer alike to a caller without the token; alike to the token holder as before."""
    treasury, token = ops
    safe_tx = transfer_tx(treasury, token, vendor.address, 6)
    known = f"/api/v1/multisig-transactions/0x{bytes(safe_tx.safe_tx_hash).hex()}/confirmations/"
    unknown = f"/api/v1/multisig-transactions/0x{'ab' * 32}/confirmations/"
    bad = {"signature": signature_hex(outsider, safe_tx)}
    with running_server(treasury.store, config_path=treasury.config_path, write_burst=1000, read_token="t0ken") as url:
        assert requests.post(tx_url(url, treasury.safe), json=body_of(safe_tx, owners[0]), timeout=30).status_code == 201
        before = snapshot(treasury.store)
        to_known, to_unknown = (requests.post(url + path, json=bad, timeout=30) for path in (known, unknown))
        assert (to_known.status_code, to_known.json()) == (to_unknown.status_code, to_unknown.json())
        assert to_known.status_code == 400 and "Multisig" not in to_known.text
        reader = {"Authorization": "Bearer t0ken"}
        assert requests.post(url + unknown, json=bad, headers=reader, timeout=30).status_code == 404
        assert "not an owner" in requests.post(url + known, json=bad, headers=reader, timeout=30).text
        assert snapshot(treasury.store) == before
        good = {"signature": signature_hex(owners[1], safe_tx)}
        assert requests.post(url + known, json=good, timeout=30).status_code == 201  # owners need no token to sign


def test_pages_filters_and_ordering(served, owners, vendor):
    treasury, token, url = served
    first = treasury.onchain_nonce()
    hashes = []
    for offset in range(3):
        safe_tx = transfer_tx(treasury, token, vendor.address, 1 + offset, nonce=first + offset)
        assert requests.post(tx_url(url, treasury.safe), json=body_of(safe_tx, owners[0]), timeout=30).status_code == 201
        hashes.append("0x" + bytes(safe_tx.safe_tx_hash).hex())
    base = tx_url(url, treasury.safe)
    page = requests.get(base + "?limit=2", timeout=30).json()
    assert page["count"] == 3 and [t["safeTxHash"] for t in page["results"]] == hashes[:0:-1]
    assert page["next"] == f"{base}?limit=2&offset=2" and page["previous"] is None
    last = requests.get(page["next"], timeout=30).json()
    assert [t["safeTxHash"] for t in last["results"]] == hashes[:1] and last["previous"] == f"{base}?limit=2"
    ascending = requests.get(base + "?ordering=nonce", timeout=30).json()
    assert [t["safeTxHash"] for t in ascending["results"]] == hashes
    ranged = requests.get(base + f"?nonce__gte={first + 1}&nonce__lt={first + 2}", timeout=30).json()
    assert [t["safeTxHash"] for t in ranged["results"]] == [hashes[1]]
    exact = requests.get(base + f"?safe_tx_hash={hashes[2]}&executed=false&trusted=true", timeout=30).json()
    assert [t["safeTxHash"] for t in exact["results"]] == [hashes[2]]
    assert requests.get(base + "?nonce=abc", timeout=30).status_code == 400


def test_refuse_denied_stores_nothing_and_verdicts_are_shown(ops, owners, accounts):
    treasury, token = ops
    stranger = accounts[7]
    denied = transfer_tx(treasury, token, stranger.address, 1)
    before = snapshot(treasury.store)
    with running_server(treasury.store, config_path=treasury.config_path, refuse_denied=True) as url:
        answer = requests.post(tx_url(url, treasury.safe), json=body_of(denied, owners[0]), timeout=30)
        assert answer.status_code == 422 and answer.json()["code"] == 70
        assert "RecipientNotAllowed" in answer.json()["arguments"] and "policy" in answer.json()["message"]
        assert snapshot(treasury.store) == before
    with running_server(treasury.store, config_path=treasury.config_path) as url:
        assert requests.post(tx_url(url, treasury.safe), json=body_of(denied, owners[0]), timeout=30).status_code == 201
        shown = requests.get(tx_url(url, treasury.safe), timeout=30).json()["results"][0]["treasury"]["verdict"]
        assert (shown["outcome"], shown["error"], shown["allowed"]) == ("deny", "RecipientNotAllowed", False)


def test_estimation(served, vendor):
    treasury, token, url = served
    estimate = f"{url}/api/v1/safes/{treasury.safe}/multisig-transactions/estimations/"
    call = {"to": token.address, "value": 0, "data": "0x" + encode_call("transfer(address,uint256)", [vendor.address, UNIT]).hex(),
            "operation": 0}
    answer = requests.post(estimate, json=call, timeout=30)
    assert answer.status_code == 200 and int(answer.json()["safeTxGas"]) > 59_000
    too_much = {**call, "data": "0x" + encode_call("transfer(address,uint256)", [vendor.address, 10**30]).hex()}
    failed = requests.post(estimate, json=too_much, timeout=30)
    # the node's own words (revert reasons, node errors) stay in the server's log
    assert failed.status_code == 422 and failed.json() == {"code": 30, "message": "Gas estimation failed", "arguments": []}
    assert requests.post(estimate, json={**call, "to": "0x12"}, timeout=30).status_code == 400


def test_estimation_is_a_read_it_needs_the_read_token_and_its_gas_is_capped(ops, vendor, chain):
    treasury, token = ops
    from treasury.addresses import to_checksum

    looper = to_checksum("0x" + "5e" * 20)  # code that jumps to itself forever (JUMPDEST PUSH1 0 JUMP): burns any gas it gets
    chain.provider.make_request("anvil_setCode", [looper, "0x5b600056"])
    call = {"to": token.address, "value": 0, "operation": 0,
            "data": "0x" + encode_call("transfer(address,uint256)", [vendor.address, UNIT]).hex()}
    with running_server(treasury.store, read_token="t0ken", write_burst=1000) as url:
        estimate = f"{url}/api/v1/safes/{treasury.safe}/multisig-transactions/estimations/"
        assert requests.post(estimate, json=call, timeout=30).status_code == 401
        assert requests.post(estimate, json=call, headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
        reader = {"Authorization": "Bearer t0ken"}
        assert requests.post(estimate, json=call, headers=reader, timeout=30).status_code == 200
        endless = requests.post(estimate, json={**call, "to": looper, "data": "0x"}, headers=reader, timeout=60)
        assert endless.status_code == 422 and endless.json()["arguments"] == []


def test_delegate_proposes_without_confirming(served, owners, accounts, vendor):
    """A delegate of an owner may propose (its signature checked, not stored as a confirmation);
    a delegate of someone who is not an owner, or one that expired, may not."""
    treasury, token, url = served
    delegate, stranger = accounts[8], accounts[7]
    treasury.store.add_delegate(chain_id=treasury.chain_id, safe=treasury.safe, delegate=delegate.address,
                                delegator=owners[0].address, label="ops bot", actor="test")
    treasury.store.add_delegate(chain_id=treasury.chain_id, safe=None, delegate=stranger.address,
                                delegator=vendor.address, label="not an owner's", actor="test")
    safe_tx = transfer_tx(treasury, token, vendor.address, 2)
    before = snapshot(treasury.store)
    answer = requests.post(tx_url(url, treasury.safe), json=body_of(safe_tx, stranger), timeout=30)
    assert answer.status_code == 422 and "is not an owner or delegate" in answer.json()["nonFieldErrors"][0]
    assert delegate.address not in answer.text and "Delegates" not in answer.text  # who the delegates are stays private
    both = signature_hex(delegate, safe_tx) + signature_hex(owners[1], safe_tx)[2:]
    answer = requests.post(tx_url(url, treasury.safe), json=body_of(safe_tx, delegate, signature=both), timeout=30)
    assert answer.status_code == 422 and snapshot(treasury.store) == before

    answer = requests.post(tx_url(url, treasury.safe), json=body_of(safe_tx, delegate), timeout=30)
    assert answer.status_code == 201, answer.text
    tx = requests.get(f"{url}/api/v1/multisig-transactions/0x{bytes(safe_tx.safe_tx_hash).hex()}/", timeout=30).json()
    assert tx["confirmations"] == [] and tx["proposer"] == delegate.address


def test_wire_reads_and_writes_as_the_service_does():
    """Offline: DRF's page links, origin to title, and the body checks that need no chain."""
    from treasury.server import wire

    page = wire.page_of({"limit": "2", "offset": "4"})
    body = wire.page_json("http://h/api/v1/x/?ordering=nonce&limit=2&offset=4", page, 7, [])
    assert body["next"] == "http://h/api/v1/x/?limit=2&offset=6&ordering=nonce"
    assert body["previous"] == "http://h/api/v1/x/?limit=2&offset=2&ordering=nonce"
    first = wire.page_json("http://h/x/?limit=2&offset=2", wire.page_of({"limit": "2", "offset": "2"}), 3, [])
    assert (first["next"], first["previous"]) == (None, "http://h/x/?limit=2")
    assert wire.page_of({"limit": "0", "offset": "x"}) == wire.Page(wire.DEFAULT_LIMIT, 0)
    assert wire.page_of({"limit": "99999"}).limit == wire.MAX_LIMIT
    assert wire.title_of('{"url": "https://app.safe.global", "name": "Safe{Wallet}"}') == "Safe{Wallet}"
    assert wire.title_of("pay the\nauditors\x00") == "pay the auditors" and wire.title_of(None) == ""
    with pytest.raises(wire.FieldError, match="This field is required"):
        wire.read_estimation({"to": ZERO_ADDRESS, "value": 0})
    assert wire.read_confirmation({"signature": "ab" * 65}) == bytes.fromhex("ab" * 65)  # ape-safe sends no 0x


def test_an_owner_added_a_moment_ago_is_not_refused(make_treasury, owners, accounts, vendor, safe_deployer, db):
    """The chain view caches owners (here for an hour); a signer missing from the cached set makes the
    server read the owners again before it refuses, so a new owner is accepted at once."""
    from treasury.treasury import Treasury

    configured, token = make_treasury(None, guarded=False, salt_nonce=501)
    configured.store.close()
    treasury = Treasury(configured.name, configured.entry, db.open())
    newcomer = accounts[7]
    with running_server(treasury.store, owner_cache_seconds=3600) as url:
        assert requests.get(tx_url(url, treasury.safe), timeout=30).json()["count"] == 0  # owners now cached
        added = treasury.propose_add_owner(newcomer.address, 2)
        for owner in owners[:2]:
            treasury.sign(added.id, owner)
        treasury.execute(added.id, sender=safe_deployer)
        safe_tx = transfer_tx(treasury, token, vendor.address, 1)
        answer = requests.post(tx_url(url, treasury.safe), json=body_of(safe_tx, newcomer), timeout=30)
        assert answer.status_code == 201, answer.text
        shown = requests.get(f"{url}/api/v1/multisig-transactions/0x{bytes(safe_tx.safe_tx_hash).hex()}/", timeout=30).json()
        assert [c["owner"] for c in shown["confirmations"]] == [newcomer.address]
    treasury.store.close()


def test_extension_pages_bounded_intent_nonce_and_cached_log_verification(served, owners, vendor, monkeypatch):
    """The extension's lists page (default 100, at most 1000, `next`), and RemoteStore follows the pages;
    an intentNonce beyond uint256 is a 400; the audit log's verification is redone only when the log grew."""
    import treasury.remote.store as remote_store
    from treasury.remote.store import RemoteStore

    treasury, token, url = served
    first = treasury.onchain_nonce()
    for offset in range(3):
        safe_tx = transfer_tx(treasury, token, vendor.address, 1, nonce=first + offset)
        assert requests.post(tx_url(url, treasury.safe), json=body_of(safe_tx, owners[0]), timeout=30).status_code == 201
    listing = f"{url}/api/treasury/v1/safes/{treasury.safe}/proposals/"
    page = requests.get(listing, params={"limit": 2}, timeout=30).json()
    assert len(page["results"]) == 2 and page["next"] is not None
    rest = requests.get(page["next"], timeout=30).json()
    assert len(rest["results"]) == 1 and rest["next"] is None
    ids = [p["id"] for p in page["results"] + rest["results"]]
    assert ids == [r.id for r in treasury.store.list_proposals(safe=treasury.safe)]
    assert requests.get(listing, params={"limit": 1001}, timeout=30).status_code == 400
    assert requests.get(f"{url}/api/treasury/v1/audit-log/", params={"limit": 1001}, timeout=30).status_code == 400
    log = requests.get(f"{url}/api/treasury/v1/audit-log/", params={"limit": 2}, timeout=30).json()
    newest = treasury.store.audit_entries()[-2:]
    assert [e["seq"] for e in log["results"]] == [e.seq for e in newest] and log["next"] is not None

    monkeypatch.setattr(remote_store, "PAGE_LIMIT", 2)  # the client reads every page, in order
    remote = RemoteStore(url)
    assert [r.id for r in remote.list_proposals(treasury.safe)] == ids
    assert [r.id for r in remote.list_proposals(treasury.safe, limit=1)] == ids[:1]
    assert [e.seq for e in remote.audit_entries()] == [e.seq for e in treasury.store.audit_entries()]
    assert [e.seq for e in remote.audit_entries(limit=3)] == [e.seq for e in treasury.store.audit_entries()[-3:]]

    pid = ids[0]
    huge = {"purpose": "schedule", "signedHash": "0x" + "11" * 32, "signature": "0x" + "22" * 65, "intentNonce": 2**256}
    answer = requests.post(f"{url}/api/treasury/v1/proposals/{pid}/guard-signatures/", json=huge, timeout=30)
    assert answer.status_code == 400 and "intentNonce" in answer.text

    verifications = []
    verify = treasury.store.verify_audit_log
    monkeypatch.setattr(treasury.store, "verify_audit_log", lambda: verifications.append(1) or verify())
    check = f"{url}/api/treasury/v1/audit-log/verify/"
    assert all(requests.get(check, timeout=30).json()["ok"] for _ in range(3)) and len(verifications) == 1
    safe_tx = transfer_tx(treasury, token, vendor.address, 1, nonce=first)
    confirm = f"{url}/api/v1/multisig-transactions/0x{bytes(safe_tx.safe_tx_hash).hex()}/confirmations/"
    assert requests.post(confirm, json={"signature": signature_hex(owners[1], safe_tx)}, timeout=30).status_code == 201
    assert requests.get(check, timeout=30).json()["ok"] and len(verifications) == 2  # the log grew: verified again
