"""Signed messages (EIP-1271) through `treasury serve`, with the treasury policy in front.

On the session's anvil: a Safe with Safe's compatibility handler takes messages as Safe's service
does (safe-eth-py's TransactionServiceApi posts, reads and confirms them; the signatures the server
collected then validate through the Safe's own isValidSignature). A Safe with TreasuryFallbackHandler
gets messages only when its guard would honour them: refused with 422 (code 71) otherwise, taken
once the guard approved the message through its delay queue. Owners sign with ape test accounts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from eth_abi import encode
from eth_account.messages import defunct_hash_message
from guard_helpers import build_guarded_safe, relayer  # noqa: F401 - relayer is a fixture
from hexbytes import HexBytes
from safe_eth.eth import EthereumClient, EthereumNetwork
from safe_eth.safe import Safe
from safe_eth.safe.api import TransactionServiceApi
from server_helpers import running_server

from treasury.addresses import keccak
from treasury.chain.artifacts import safe_contract
from treasury.server.messages import POLICY_REFUSED, read_message, safe_message_hash
from treasury.signatures.signing import sign_digest
from treasury.store import Store

VERSION = "1.4.1"
MAGIC = bytes.fromhex("1626ba7e")
TEXT = "I approve the 2027 budget\n"
MAIL = {
    "types": {
        "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                         {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
        "Mail": [{"name": "from", "type": "address"}, {"name": "contents", "type": "string"}],
    },
    "primaryType": "Mail",
    "domain": {"name": "Ballots", "version": "1", "chainId": 1, "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
    "message": {"from": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB", "contents": "yes"},
}


@pytest.fixture
def store(tmp_path: Path):
    with Store.open(tmp_path / "server.db") as opened:
        yield opened


@pytest.fixture
def served(store):
    with running_server(store) as url:
        yield url


@pytest.fixture
def open_safe(make_safe, owners, request):
    """A 2-of-3 Safe with Safe's CompatibilityFallbackHandler: it honours whatever a threshold of owners signs."""
    handler = safe_contract(VERSION, "compatibility_fallback_handler").canonical_address
    salt = 70_000 + sum(request.node.name.encode()) % 10_000
    return make_safe(owners, 2, version=VERSION, salt_nonce=salt, fallback_handler=handler).address


def owner_signature(account, safe: str, chain_id: int, content, kind: str = "eip712") -> bytes:
    """`account`'s signature of the SafeMessage of `content`, as protocol-kit / safe-eth-py users make it."""
    digest, _ = safe_message_hash(safe, chain_id, read_message(content).message_hash)
    typed = {
        "types": {"EIP712Domain": [{"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
                  "SafeMessage": [{"name": "message", "type": "bytes"}]},
        "primaryType": "SafeMessage",
        "domain": {"chainId": chain_id, "verifyingContract": safe},
        "message": {"message": HexBytes(read_message(content).message_hash)},
    }
    return bytes(sign_digest(account, kind, digest, typed, safe, VERSION).export_signature())


def snapshot(store: Store, chain_id: int, safe: str):
    return store.messages(chain_id, safe), len(store.audit_entries())


def is_valid_signature(safe: str, digest: bytes, signature: bytes) -> bytes:
    from ape import chain

    data = keccak(b"isValidSignature(bytes32,bytes)")[:4] + encode(["bytes32", "bytes"], [digest, signature])
    return bytes(chain.provider.web3.eth.call({"to": safe, "data": "0x" + data.hex()}))[:4]


def test_safe_eth_py_posts_reads_and_confirms_a_message(served, store, open_safe, owners, chain):
    client = TransactionServiceApi(EthereumNetwork(chain.chain_id), base_url=served)
    raw_hash = bytes(defunct_hash_message(text=TEXT))
    # The SafeMessage hash, as safe-eth-py computes it from the Safe itself.
    expected = bytes(Safe(open_safe, EthereumClient(chain.provider.uri)).get_message_hash(raw_hash))
    assert expected == safe_message_hash(open_safe, chain.chain_id, raw_hash)[0]

    assert client.post_message(open_safe, TEXT, owner_signature(owners[0], open_safe, chain.chain_id, TEXT), safe_app_id=7)
    message = client.get_message(expected)
    assert (message["safe"], message["messageHash"], message["message"]) == (open_safe, "0x" + expected.hex(), TEXT)
    assert (message["proposedBy"], message["safeAppId"], message["preparedSignature"]) == (owners[0].address, 7, None)
    assert [(c["owner"], c["signatureType"]) for c in message["confirmations"]] == [(owners[0].address, "EOA")]
    assert message["treasury"]["handler"]["kind"] == "compatibility" and message["treasury"]["honoured"] is None

    second = owner_signature(owners[1], open_safe, chain.chain_id, TEXT, "eth_sign")
    assert client.post_message_signature(expected, second)
    assert client.post_message_signature(expected, second)  # a retry whose answer was lost: kept once
    message = client.get_message(expected)
    assert sorted(c["signatureType"] for c in message["confirmations"]) == ["EOA", "ETH_SIGN"]
    # What the server prepared is what the Safe accepts as its own signature of the message.
    assert is_valid_signature(open_safe, raw_hash, HexBytes(message["preparedSignature"])) == MAGIC

    # Typed data too, returned as the object it was; the list is newest first.
    answer = requests.post(f"{served}/api/v1/safes/{open_safe}/messages/", timeout=30, json={
        "message": MAIL, "safeAppId": None,
        "signature": "0x" + owner_signature(owners[2], open_safe, chain.chain_id, MAIL).hex()})
    assert answer.status_code == 201, answer.text
    listing = client.get_messages(open_safe)
    assert [m["message"] for m in listing] == [MAIL, TEXT]
    assert listing[0]["messageHash"] == "0x" + safe_message_hash(open_safe, chain.chain_id, read_message(MAIL).message_hash)[0].hex()
    actions = [e.action for e in store.audit_entries()]
    assert actions == ["message.added", "message.signed", "message.signed", "message.added", "message.signed"]
    assert all(e.actor.startswith("server:0x") for e in store.audit_entries())
    assert store.verify_audit_log()


def test_refused_messages_and_signatures_change_nothing(served, store, open_safe, owners, accounts, chain):
    url = served
    chain_id = chain.chain_id
    signed = owner_signature(owners[0], open_safe, chain_id, TEXT)
    assert requests.post(f"{url}/api/v1/safes/{open_safe}/messages/", json={"message": TEXT, "signature": "0x" + signed.hex()},
                         timeout=30).status_code == 201
    digest = "0x" + safe_message_hash(open_safe, chain_id, read_message(TEXT).message_hash)[0].hex()
    before = snapshot(store, chain_id, open_safe)
    other_text = "something else"
    posts = [
        ("non-owner", {"message": other_text, "signature": "0x" + owner_signature(accounts[5], open_safe, chain_id, other_text).hex()}, 400),
        ("another chain", {"message": other_text, "signature": "0x" + owner_signature(owners[0], open_safe, chain_id + 1, other_text).hex()}, 400),
        ("malformed", {"message": other_text, "signature": "0x1234"}, 400),
        ("no signature", {"message": other_text}, 400),
        ("a number", {"message": 5, "signature": "0x" + signed.hex()}, 400),
        ("bad typed data", {"message": {"types": {}}, "signature": "0x" + signed.hex()}, 400),
        ("again", {"message": TEXT, "signature": "0x" + signed.hex()}, 400),
    ]
    for name, body, status in posts:
        answer = requests.post(f"{url}/api/v1/safes/{open_safe}/messages/", json=body, timeout=30)
        assert answer.status_code == status, (name, answer.text)
    assert requests.post(f"{url}/api/v1/safes/{open_safe.lower()}/messages/", json=posts[0][1], timeout=30).status_code == 422
    assert requests.post(f"{url}/api/v1/safes/{accounts[6].address}/messages/", json=posts[0][1], timeout=30).status_code == 422
    assert requests.post(f"{url}/api/v1/safes/{open_safe}/messages/", data=b"{", timeout=30).status_code == 400

    stranger = owner_signature(accounts[5], open_safe, chain_id, TEXT)
    answer = requests.post(f"{url}/api/v1/messages/{digest}/signatures/", json={"signature": "0x" + stranger.hex()}, timeout=30)
    assert answer.status_code == 400 and "not an owner" in answer.text
    approved = bytes(12) + bytes.fromhex(owners[1].address[2:]) + bytes(32) + b"\x01"
    answer = requests.post(f"{url}/api/v1/messages/{digest}/signatures/", json={"signature": "0x" + approved.hex()}, timeout=30)
    assert answer.status_code == 400 and "approved-hash" in answer.text
    other = owner_signature(owners[0], open_safe, chain_id, TEXT, "eth_sign")  # owner 0 again, other bytes
    assert requests.post(f"{url}/api/v1/messages/{digest}/signatures/", json={"signature": "0x" + other.hex()},
                         timeout=30).status_code == 400
    assert requests.post(f"{url}/api/v1/messages/0x{'ab' * 32}/signatures/", json={"signature": "0x" + other.hex()},
                         timeout=30).status_code == 404
    assert requests.get(f"{url}/api/v1/messages/0x1234/", timeout=30).status_code == 404
    assert snapshot(store, chain_id, open_safe) == before


def test_a_safe_with_the_treasury_handler_and_no_guard_signs_no_message(served, store, make_safe, owners, chain):
    safe = make_safe(owners, 2, version=VERSION, salt_nonce=79_001).address  # TreasuryFallbackHandler by default
    body = {"message": TEXT, "signature": "0x" + owner_signature(owners[0], safe, chain.chain_id, TEXT).hex()}
    answer = requests.post(f"{served}/api/v1/safes/{safe}/messages/", json=body, timeout=30)
    assert answer.status_code == 422 and answer.json()["code"] == POLICY_REFUSED
    assert "no guard" in answer.json()["message"]
    assert store.messages(chain.chain_id, safe) == [] and store.audit_entries() == []


@pytest.fixture(scope="module")
def guarded(make_safe, owners, safe_deployer, relayer, project):  # noqa: F811 - relayer is guard_helpers' fixture
    """A 2-of-3 Safe with TreasuryGuard and TreasuryFallbackHandler."""
    return build_guarded_safe(version=VERSION, salt_nonce=79_500, make_safe=make_safe, owners=owners,
                              deployer=safe_deployer, relayer=relayer, project=project)


def test_a_guarded_safe_takes_only_messages_its_guard_approved(served, store, guarded, owners, chain):
    safe, chain_id = guarded.address, chain.chain_id
    url = f"{served}/api/v1/safes/{safe}/messages/"
    for content in (TEXT, MAIL):
        body = {"message": content, "signature": "0x" + owner_signature(owners[0], safe, chain_id, content).hex()}
        answer = requests.post(url, json=body, timeout=30)
        assert answer.status_code == 422 and answer.json()["code"] == POLICY_REFUSED, answer.text
        assert "would not sign" in answer.json()["message"] and guarded.guard.address in answer.json()["message"]
    assert "setTypedDataAllowed" in answer.json()["message"]  # typed data: both ways to allow it are named
    assert store.messages(chain_id, safe) == [] and store.audit_entries() == []

    # The Safe approves the text's hash through the guard's delay queue; then the message is taken.
    raw_hash = read_message(TEXT).message_hash
    approve = (guarded.guard.address, 0, guarded.encode_guard("approveMessage", raw_hash), 0)
    entry = guarded.schedule(*approve)
    guarded.wait_until_due(entry)
    guarded.execute(*approve)
    body = {"message": TEXT, "signature": "0x" + owner_signature(owners[0], safe, chain_id, TEXT).hex()}
    answer = requests.post(url, json=body, timeout=30)
    assert answer.status_code == 201, answer.text
    (listed,) = requests.get(url, timeout=30).json()["results"]
    assert listed["treasury"]["handler"]["kind"] == "treasury" and listed["treasury"]["honoured"] is True
    assert "approveMessage" in listed["treasury"]["reason"]
    assert store.verify_audit_log()


def test_the_listing_judges_only_the_page_and_a_stranger_learns_no_hash(store, open_safe, owners, accounts, chain,
                                                                        monkeypatch):
    """A listing makes the verdict's chain calls for the messages it shows only; with a read token, a
    signature POSTed without it gets one answer for an unknown hash and for a refused signature."""
    import treasury.server.messages as messages

    chain_id = chain.chain_id
    judged = []
    judge = messages.verdict
    monkeypatch.setattr(messages, "verdict", lambda *args: judged.append(1) or judge(*args))
    with running_server(store, read_token="t0ken") as url:
        reader = {"Authorization": "Bearer t0ken"}
        for text in ("one", "two", "three"):
            body = {"message": text, "signature": "0x" + owner_signature(owners[0], open_safe, chain_id, text).hex()}
            assert requests.post(f"{url}/api/v1/safes/{open_safe}/messages/", json=body, timeout=30).status_code == 201
        judged.clear()
        page = requests.get(f"{url}/api/v1/safes/{open_safe}/messages/", params={"limit": 1, "offset": 1}, headers=reader,
                            timeout=30).json()
        assert (page["count"], len(page["results"]), len(judged)) == (3, 1, 1)

        digest = "0x" + safe_message_hash(open_safe, chain_id, read_message("one").message_hash)[0].hex()
        stranger = {"signature": "0x" + owner_signature(accounts[5], open_safe, chain_id, "one").hex()}
        before = snapshot(store, chain_id, open_safe)
        known, unknown = (requests.post(f"{url}/api/v1/messages/{h}/signatures/", json=stranger, timeout=30)
                          for h in (digest, "0x" + "ab" * 32))
        assert (known.status_code, known.json()) == (unknown.status_code, unknown.json()) and known.status_code == 400
        assert requests.post(f"{url}/api/v1/messages/0x{'ab' * 32}/signatures/", json=stranger, headers=reader,
                             timeout=30).status_code == 404
        assert snapshot(store, chain_id, open_safe) == before
