"""Delegates through `treasury serve`: add, list, remove, and who may then propose.

Over HTTP to the server on the session's anvil, signed by ape test accounts the way each client signs:
EIP-712 `Delegate(delegateAddress, totp)` (api-kit, safe-eth-py: its own message builder is used) and
Safe's v1 message as a raw hash (ape-safe). The server's clock is pinned, so the TOTP is too. Every
refused request is checked to leave the store exactly as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hexbytes import HexBytes
from safe_eth.safe.api.transaction_service_api.transaction_service_messages import get_delegate_message
from server_helpers import running_server

from treasury.proposal.safe_tx import build_safe_tx
from treasury.server.delegates import eip712_hash, totp, v1_hash
from treasury.signatures.signing import sign
from treasury.store import Store

NOW = 1_900_000_123.0  # the server's pinned clock
HOUR = 3600


class Clock:
    """The server's clock, moved by the test."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def safe(make_safe, owners, request):
    salt = 90_000 + int.from_bytes(request.node.name.encode()[-4:], "big") % 10_000
    return make_safe(owners, 2, salt_nonce=salt).address


@pytest.fixture
def served(tmp_path: Path):
    """(url, store, clock): the server over a fresh SQLite store, its clock pinned at NOW."""
    clock = Clock()
    with Store.open(tmp_path / "server.db") as store, running_server(store, clock=clock) as url:
        yield url, store, clock


def eip712_signature(account, delegate: str, chain_id: int, now: float = NOW) -> str:
    """What api-kit and safe-eth-py send: the delegator's EIP-712 signature (safe-eth-py builds the message)."""
    message = get_delegate_message(delegate, chain_id)
    message["message"]["totp"] = totp(now)
    signable = encode_typed_data(full_message=message)
    assert keccak(b"\x19" + signable.version + signable.header + signable.body) == eip712_hash(delegate, totp(now), chain_id)
    signed = account.sign_message(signable)
    return "0x" + signed.encode_rsv().hex()


def v1_signature(account, delegate: str, now: float = NOW) -> str:
    """What ape-safe sends: a raw signature of keccak(delegate + totp), hex without 0x."""
    return account.sign_raw_msghash(HexBytes(v1_hash(delegate, totp(now)))).encode_rsv().hex()


def snapshot(store: Store, chain_id: int):
    return store.delegates(chain_id=chain_id), len(store.audit_entries())


def test_owner_adds_lists_and_removes_a_delegate(served, safe, owners, accounts, chain):
    url, store, clock = served
    delegate = accounts[7].address
    body = {"safe": safe, "delegate": delegate, "delegator": owners[0].address, "label": "ci bot",
            "signature": eip712_signature(owners[0], delegate, chain.chain_id)}
    answer = requests.post(f"{url}/api/v2/delegates/", json=body, timeout=30)
    assert answer.status_code == 201, answer.text
    assert answer.json()["delegate"] == delegate and answer.json()["expiryDate"] is None

    listing = requests.get(f"{url}/api/v2/delegates/", params={"safe": safe}, timeout=30).json()
    assert (listing["count"], listing["next"], listing["previous"]) == (1, None, None)
    assert listing["results"] == [{"safe": safe, "delegate": delegate, "delegator": owners[0].address, "label": "ci bot",
                                   "expiryDate": None}]
    assert requests.get(f"{url}/api/v2/delegates", params={"delegator": owners[0].address}, timeout=30).json()["count"] == 1
    entry = store.audit_entries()[-1]
    assert entry.action == "delegate.added" and entry.actor.startswith(f"server:{owners[0].address} from 127.0.0.1")
    assert requests.get(f"{url}/api/v2/delegates/", timeout=30).status_code == 400  # a filter is required
    # label alone lists nothing: it would show every Safe's delegates (safe, delegate or delegator needed)
    assert requests.get(f"{url}/api/v2/delegates/", params={"label": "ci bot"}, timeout=30).status_code == 400

    # The same delegation again, with a new signature (a later hour), updates its label (and expiry);
    # the v1 path answers the same.
    clock.now = NOW + HOUR
    body.update(label="ci bot 2", expiryDate="2030-06-01T00:00:00Z",
                signature=eip712_signature(owners[0], delegate, chain.chain_id, clock.now))
    assert requests.post(f"{url}/api/v1/delegates/", json=body, timeout=30).status_code == 201
    (record,) = store.delegates(chain_id=chain.chain_id)
    assert (record.label, record.expiry) == ("ci bot 2", 1_906_502_400)

    removal = {"delegator": owners[0].address, "signature": eip712_signature(owners[0], delegate, chain.chain_id)}
    assert requests.delete(f"{url}/api/v2/delegates/{delegate}/", json=removal, timeout=30).status_code == 204
    assert requests.get(f"{url}/api/v2/delegates/", params={"safe": safe}, timeout=30).json()["count"] == 0
    assert requests.delete(f"{url}/api/v2/delegates/{delegate}", json=removal, timeout=30).status_code == 404
    assert store.verify_audit_log()


def test_ape_safes_v1_message_and_the_previous_hour_are_accepted(served, safe, owners, accounts, chain):
    url, store, clock = served
    delegate = accounts[8].address
    signed_last_hour = v1_signature(owners[1], delegate, NOW - HOUR)  # no 0x, as ape-safe sends it
    body = {"safe": safe, "delegate": delegate, "delegator": owners[1].address, "label": "ape-safe",
            "signature": signed_last_hour}
    assert requests.post(f"{url}/api/v2/delegates", json=body, timeout=30).status_code == 201
    # The delegate itself may remove the delegation (its own signature), with no Safe named.
    removal = {"delegator": owners[1].address, "signature": v1_signature(accounts[8], delegate)}
    assert requests.delete(f"{url}/api/v2/delegates/{delegate}", json=removal, timeout=30).status_code == 204
    assert store.delegates(chain_id=chain.chain_id) == []


def _refusals(owners, accounts, chain_id, safe):
    """(name, body changes, expected status): each must leave the store unchanged."""
    delegate = accounts[7].address
    outsider = accounts[5]
    return [
        ("non-owner delegator", {"delegator": outsider.address,
                                 "signature": eip712_signature(outsider, delegate, chain_id)}, 400, "not an owner"),
        ("another chain id", {"signature": eip712_signature(owners[0], delegate, chain_id + 1)}, 400, "does not match"),
        ("expired totp", {"signature": eip712_signature(owners[0], delegate, chain_id, NOW - 2 * HOUR)}, 400, "does not match"),
        ("next hour's totp", {"signature": eip712_signature(owners[0], delegate, chain_id, NOW + HOUR)}, 400, "does not match"),
        ("another owner's signature", {"signature": eip712_signature(owners[1], delegate, chain_id)}, 400, "does not match"),
        ("signed for another delegate", {"signature": eip712_signature(owners[0], accounts[8].address, chain_id)}, 400,
         "does not match"),
        ("no Safe", {"safe": None}, 400, "needs `safe`"),
        ("lower-case delegate", {"delegate": delegate.lower()}, 400, "not checksumed"),
        ("not a Safe", {"safe": accounts[6].address}, 422, "not a Safe"),
        ("truncated signature", {"signature": "0x" + "11" * 64}, 400, "65-byte"),
        ("no label", {"label": ""}, 400, "blank"),
        ("expiry in the past", {"expiryDate": "2020-01-01T00:00:00Z"}, 400, "past"),
    ]


def test_refused_delegations_change_nothing(served, safe, owners, accounts, chain):
    url, store, _ = served
    before = snapshot(store, chain.chain_id)
    delegate = accounts[7].address
    for name, changes, status, words in _refusals(owners, accounts, chain.chain_id, safe):
        body = {"safe": safe, "delegate": delegate, "delegator": owners[0].address, "label": "bot",
                "signature": eip712_signature(owners[0], delegate, chain.chain_id), **changes}
        answer = requests.post(f"{url}/api/v2/delegates/", json=body, timeout=30)
        assert answer.status_code == status, (name, answer.text)
        assert words in answer.text, (name, answer.text)
        assert snapshot(store, chain.chain_id) == before, name
    assert requests.post(f"{url}/api/v2/delegates/", data=b"{not json", timeout=30).status_code == 400
    assert snapshot(store, chain.chain_id) == before


def test_a_removal_needs_the_delegators_or_the_delegates_signature(served, safe, owners, accounts, chain):
    url, store, _ = served
    delegate = accounts[7].address
    body = {"safe": safe, "delegate": delegate, "delegator": owners[0].address, "label": "bot",
            "signature": eip712_signature(owners[0], delegate, chain.chain_id)}
    assert requests.post(f"{url}/api/v2/delegates/", json=body, timeout=30).status_code == 201
    before = snapshot(store, chain.chain_id)
    forged = {"delegator": owners[0].address, "signature": eip712_signature(accounts[5], delegate, chain.chain_id)}
    answer = requests.delete(f"{url}/api/v2/delegates/{delegate}/", json=forged, timeout=30)
    assert answer.status_code == 400 and "does not match" in answer.text
    assert snapshot(store, chain.chain_id) == before


def propose_as(url, safe, account, chain_id, nonce):
    """POST a proposal (an empty call to the Safe itself) signed by `account` as its sender."""
    safe_tx = build_safe_tx(safe, safe, 0, b"", 0, nonce=nonce, chain_id=chain_id, version="1.4.1")
    body = {
        "to": safe, "value": 0, "data": "0x", "operation": 0, "gasToken": safe_tx.gas_token, "safeTxGas": 0, "baseGas": 0,
        "gasPrice": 0, "refundReceiver": safe_tx.refund_receiver, "nonce": nonce,
        "contractTransactionHash": "0x" + bytes(safe_tx.safe_tx_hash).hex(), "sender": account.address,
        "signature": "0x" + bytes(sign(account, safe_tx).export_signature()).hex(), "origin": "by a delegate",
    }
    return requests.post(f"{url}/api/v2/safes/{safe}/multisig-transactions/", json=body, timeout=30)


def test_a_delegate_proposes_until_removed_or_expired(served, safe, owners, accounts, chain):
    url, store, clock = served
    bot = accounts[7]
    assert propose_as(url, safe, bot, chain.chain_id, 0).status_code == 422  # not yet a delegate
    body = {"safe": safe, "delegate": bot.address, "delegator": owners[0].address, "label": "bot",
            "signature": eip712_signature(owners[0], bot.address, chain.chain_id), "expiryDate": "2030-03-18T00:00:00Z"}
    assert requests.post(f"{url}/api/v2/delegates/", json=body, timeout=30).status_code == 201
    answer = propose_as(url, safe, bot, chain.chain_id, 0)
    assert answer.status_code == 201, answer.text
    (proposal,) = store.list_proposals()
    assert store.signatures(proposal.id) == []  # a delegate's signature is no confirmation

    clock.now = NOW + 86_400  # after expiryDate: the delegation no longer holds
    assert requests.get(f"{url}/api/v2/delegates/", params={"safe": safe}, timeout=30).json()["count"] == 0
    assert propose_as(url, safe, bot, chain.chain_id, 1).status_code == 422
    clock.now = NOW

    removal = {"delegator": owners[0].address, "safe": safe,
               "signature": eip712_signature(owners[0], bot.address, chain.chain_id)}
    assert requests.delete(f"{url}/api/v2/delegates/{bot.address}/", json=removal, timeout=30).status_code == 204
    before = (len(store.list_proposals()), len(store.audit_entries()))
    refused = propose_as(url, safe, bot, chain.chain_id, 2)
    assert refused.status_code == 422 and "not an owner or delegate" in refused.text
    assert (len(store.list_proposals()), len(store.audit_entries())) == before


def test_a_delegate_signature_makes_one_delegation_only(served, safe, make_safe, owners, accounts, chain):
    """Replays of an accepted signature: to another Safe of the delegator, to lift the expiry, after a removal."""
    url, store, clock = served
    other_safe = make_safe(owners, 2, salt_nonce=123_456).address  # owners[0] owns this one too
    delegate = accounts[7].address
    for form in ("eip712", "v1"):
        signature = eip712_signature(owners[0], delegate, chain.chain_id, clock.now) if form == "eip712" \
            else v1_signature(owners[0], delegate, clock.now)
        body = {"safe": safe, "delegate": delegate, "delegator": owners[0].address, "label": "one hour",
                "signature": signature, "expiryDate": "2030-03-18T01:00:00Z"}
        assert requests.post(f"{url}/api/v2/delegates/", json=body, timeout=30).status_code == 201, form
        assert requests.post(f"{url}/api/v2/delegates/", json=body, timeout=30).status_code == 201  # a retry: no change
        before = snapshot(store, chain.chain_id)
        # re-encoded (v as 0/1 instead of 27/28): the same signature still
        raw = bytes.fromhex(signature.removeprefix("0x"))
        reencoded = "0x" + (raw[:64] + bytes([raw[64] - 27])).hex()
        for name, changes in [("another Safe", {"safe": other_safe, "expiryDate": None}),
                              ("no expiry", {"expiryDate": None}), ("another label", {"label": "forever"}),
                              ("re-encoded, another Safe", {"safe": other_safe, "signature": reencoded})]:
            answer = requests.post(f"{url}/api/v2/delegates/", json={**body, **changes}, timeout=30)
            assert answer.status_code == 400 and "used before" in answer.text, (form, name, answer.text)
            assert snapshot(store, chain.chain_id) == before, (form, name)

        removal = {"delegator": owners[0].address, "safe": safe, "signature": signature}
        assert requests.delete(f"{url}/api/v2/delegates/{delegate}/", json=removal, timeout=30).status_code == 204
        before = snapshot(store, chain.chain_id)
        assert requests.post(f"{url}/api/v2/delegates/", json=body, timeout=30).status_code == 400  # the original again
        # another signature of the removal's hour (the other form, held back) does not bring it back either
        other = v1_signature(owners[0], delegate, clock.now) if form == "eip712" \
            else eip712_signature(owners[0], delegate, chain.chain_id, clock.now - HOUR)
        answer = requests.post(f"{url}/api/v2/delegates/", json={**body, "signature": other}, timeout=30)
        assert answer.status_code == 400 and "later hour" in answer.text, answer.text
        assert snapshot(store, chain.chain_id) == before
        clock.now += HOUR  # a signature of a later hour does
        fresh = eip712_signature(owners[0], delegate, chain.chain_id, clock.now)
        assert requests.post(f"{url}/api/v2/delegates/", json={**body, "signature": fresh}, timeout=30).status_code == 201
        clean = {"delegator": owners[0].address, "safe": safe, "signature": fresh}
        assert requests.delete(f"{url}/api/v2/delegates/{delegate}/", json=clean, timeout=30).status_code == 204
        clock.now += HOUR
    assert store.verify_audit_log()
