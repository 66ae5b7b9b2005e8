"""Key-ceremony drills through `treasury serve` (treasury.server.drills), on the session's anvil.

The `ceremony` treasury (3-of-5: alice, bob, carol, dave and the contract owner "vault") runs a
drill: an owner starts it by signing its challenge, every owner posts a proof (the vault through its
own owner, EIP-1271), and the server shows who has proved control. Every refused write (a stranger,
a proof of another drill, Safe or chain, a replay, garbage, an expired drill, an oversized body)
answers in the API's own error style and leaves the store exactly as it was. The happy path runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from eth_account.messages import encode_typed_data
from server_helpers import running_server

from treasury.addresses import keccak
from treasury.ceremony.challenge import DrillChallenge
from treasury.store import Store

UNTHROTTLED = {"write_rate": 1_000_000.0, "write_burst": 10_000}
WEEK = 7 * 86_400
NOW = 2_000_000_000  # the server's pinned clock (drills are issued and expire by the server's clock)
BACKENDS = ("sqlite", "postgresql")


# --- helpers ----------------------------------------------------------------------------------------


def nonce_of(label: str) -> str:
    return "0x" + keccak(label.encode()).hex()


def typed_signature(account, typed: dict) -> str:
    """An ape test account's EIP-712 signature of `typed` (after the JSON round trip a client makes), r||s||v."""
    signed = account.sign_message(encode_typed_data(full_message=json.loads(json.dumps(typed))))
    v = int(signed.v)
    return "0x" + bytes(signed.r).rjust(32, b"\0").hex() + bytes(signed.s).rjust(32, b"\0").hex() + f"{v if v >= 27 else v + 27:02x}"


class Clock:
    """The server's clock for a test: fixed until the test moves it."""

    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return float(self.now)


def drill_body(ceremony, chain, signer, *, label: str = "drill", issued_at: int | None = None, ttl: int = WEEK,
               require_device: tuple[str, ...] = (), purpose: str = "Quarterly recovery drill", **overrides) -> dict:
    """What a client POSTs to start a drill: the challenge's fields and `signer`'s signature of it."""
    issued = NOW if issued_at is None else issued_at
    challenge = DrillChallenge(ceremony.treasury.safe, chain.chain_id, nonce_of(label), issued, issued + ttl, purpose)
    body = {"nonce": challenge.nonce, "issuedAt": issued, "expiresAt": issued + ttl, "purpose": purpose,
            "requireDevice": list(require_device), "sender": signer.address,
            "signature": typed_signature(signer, challenge.typed_data())}
    return {**body, **overrides}


def start(url: str, ceremony, chain, signer, **options) -> dict:
    answer = requests.post(f"{url}/api/treasury/v1/safes/{ceremony.treasury.safe}/drills/",
                           json=drill_body(ceremony, chain, signer, **options), timeout=60)
    assert answer.status_code == 201, answer.text
    return answer.json()


def proofs_url(url: str, drill_id: str) -> str:
    return f"{url}/api/treasury/v1/drills/{drill_id}/proofs/"


def prove(url: str, drill_id: str, signature: str, via: str = "test", owner: str | None = None) -> requests.Response:
    body = {"signature": signature, "via": via} | ({"owner": owner} if owner else {})
    return requests.post(proofs_url(url, drill_id), json=body, timeout=60)


def vault_proof(ceremony, typed: dict) -> str:
    """The contract owner's proof: its own owner signs SafeMessage(digest) in the vault's domain (EIP-1271)."""
    from treasury.ceremony.drill import sign_drill_as_contract_owner

    proof = sign_drill_as_contract_owner(DrillChallenge.from_json(typed), ceremony.vault, [ceremony.vault_signer])
    return "0x" + bytes(proof.signature).hex()


def snapshot(store: Store, ceremony) -> tuple:
    """What a refused request must leave unchanged: drills, proofs and the audit log."""
    treasury = ceremony.treasury
    return (store.drills(treasury.chain_id, treasury.safe), store.owner_proofs(treasury.chain_id, treasury.safe),
            [(e.seq, e.entry_hash) for e in store.audit_entries()])


@pytest.fixture(params=BACKENDS)
def server_store(request, tmp_path) -> Iterator[Store]:
    """The server's store: a SQLite file, or a fresh database on the session's PostgreSQL."""
    if request.param == "sqlite":
        with Store.open(tmp_path / "server.db") as store:
            yield store
        return
    server = request.getfixturevalue("postgres_server")
    try:
        with Store.open(server.new_database().url) as store:
            yield store
    finally:
        server.drop_all()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def served(ceremony, clock) -> Iterator[str]:
    with running_server(ceremony.treasury.store, config_path=ceremony.treasury.config_path, clock=clock,
                        **UNTHROTTLED) as url:
        yield url


# --- the drill, end to end ---------------------------------------------------------------------------


def test_an_owner_starts_a_drill_and_every_owner_proves_control(ceremony, chain, server_store):
    treasury = ceremony.treasury
    alice, bob, carol, dave = ceremony.eoas
    with running_server(server_store, config_path=treasury.config_path, clock=Clock(), **UNTHROTTLED) as url:
        started = start(url, ceremony, chain, alice, label="end-to-end", require_device=(carol.address,))
        drill_id = started["id"]
        assert started["safe"] == treasury.safe and started["chainId"] == chain.chain_id and started["status"] == "open"
        assert started["requireDevice"] == [carol.address] and started["proven"] == [] and not started["expired"]
        assert set(started["missing"]) == {alice.address, bob.address, carol.address, dave.address, ceremony.vault}
        typed = started["typedData"]
        challenge = DrillChallenge.from_json(typed)
        assert started["digest"] == "0x" + challenge.digest().hex() and challenge.nonce == nonce_of("end-to-end")

        shown = requests.get(f"{url}/api/treasury/v1/drills/{drill_id}/", timeout=60).json()
        assert shown == started
        for account, via in ((alice, "keyfile"), (bob, "browser"), (carol, "hardware"), (dave, "test")):
            answer = prove(url, drill_id, typed_signature(account, typed), via)
            assert answer.status_code == 201, answer.text
            assert answer.json()["owner"] == account.address and answer.json()["via"] == via
        answer = prove(url, drill_id, vault_proof(ceremony, typed), "contract", owner=ceremony.vault)
        assert answer.status_code == 201, answer.text

        shown = requests.get(f"{url}/api/treasury/v1/drills/{drill_id}/", timeout=60).json()
        assert shown["missing"] == [] and len(shown["proven"]) == 5
        assert {p["owner"]: p["via"] for p in shown["proofs"]}[ceremony.vault] == "contract"
        listed = requests.get(proofs_url(url, drill_id), timeout=60).json()
        assert listed["count"] == 5 and [p["owner"] for p in listed["results"]] == shown["proven"]
        drills = requests.get(f"{url}/api/treasury/v1/safes/{treasury.safe}/drills/", timeout=60).json()
        assert drills["count"] == 1 and drills["results"][0]["id"] == drill_id

    stored = server_store.owner_proofs(chain.chain_id, treasury.safe, drill_id)
    assert {p.owner for p in stored} == {alice.address, bob.address, carol.address, dave.address, ceremony.vault}
    entries = server_store.audit_entries()
    assert [e.action for e in entries] == ["drill.started"] + ["drill.proved"] * 5
    assert entries[0].actor.startswith(f"server:{alice.address} from ")
    assert server_store.verify_audit_log().ok


def test_a_delegate_may_start_a_drill_a_stranger_may_not(ceremony, chain, served, accounts):
    treasury = ceremony.treasury
    stranger = accounts[5]
    url = f"{served}/api/treasury/v1/safes/{treasury.safe}/drills/"
    answer = requests.post(url, json=drill_body(ceremony, chain, stranger), timeout=60)
    assert answer.status_code == 400 and "is not an owner or delegate" in answer.json()["sender"][0]
    # Sent in an owner's name, signed by the stranger.
    forged = drill_body(ceremony, chain, stranger, sender=ceremony.eoas[0].address)
    answer = requests.post(url, json=forged, timeout=60)
    assert answer.status_code == 400 and "signature" in answer.json()
    assert treasury.store.drills(chain.chain_id, treasury.safe) == []

    treasury.store.add_delegate(chain_id=chain.chain_id, safe=treasury.safe, delegate=stranger.address,
                                delegator=ceremony.eoas[0].address, label="drill runner", actor="test")
    answer = requests.post(url, json=drill_body(ceremony, chain, stranger, label="by a delegate"), timeout=60)
    assert answer.status_code == 201, answer.text


# --- refusals ----------------------------------------------------------------------------------------


def refused(url: str, store: Store, ceremony, before: tuple, method: str, target: str, status: int, **kwargs) -> dict:
    """Send; the answer must be `status`, JSON in the API's style, no trace; the store unchanged."""
    answer = requests.request(method, target, timeout=60, **kwargs)
    assert answer.status_code == status, (target, answer.status_code, answer.text[:300])
    assert answer.headers["content-type"].startswith("application/json")
    assert "Traceback" not in answer.text and "/work/" not in answer.text
    assert snapshot(store, ceremony) == before, target
    return answer.json()


def test_refused_proofs_store_nothing(ceremony, chain, served, accounts):
    treasury, store = ceremony.treasury, ceremony.treasury.store
    alice, bob, carol, _dave = ceremony.eoas
    drill = start(served, ceremony, chain, alice, label="refusals", require_device=(carol.address,))
    other = start(served, ceremony, chain, alice, label="another drill")
    typed, drill_id = drill["typedData"], drill["id"]
    assert prove(served, drill_id, typed_signature(alice, typed)).status_code == 201
    before = snapshot(store, ceremony)
    target = proofs_url(served, drill_id)

    def signed_over(**changes) -> str:
        fields = {"safe": treasury.safe, "chain_id": chain.chain_id, "nonce": drill["nonce"], "issued_at": drill["issuedAt"],
                  "expires_at": drill["expiresAt"], "purpose": drill["purpose"]} | changes
        return typed_signature(bob, DrillChallenge(**fields).typed_data())

    def bad(body: dict, status: int = 400) -> dict:
        return refused(served, store, ceremony, before, "POST", target, status, json=body)

    # A stranger's signature, and a stranger claiming to be an owner.
    stranger = typed_signature(accounts[5], typed)
    assert "owner" in json.dumps(bad({"signature": stranger, "via": "test"}))
    bad({"signature": stranger, "via": "test", "owner": bob.address})
    # Bob's signature of another drill, another Safe, another chain, another window, another purpose.
    bad({"signature": typed_signature(bob, other["typedData"]), "via": "test"})
    bad({"signature": signed_over(safe=ceremony.vault), "via": "test"})
    bad({"signature": signed_over(chain_id=1), "via": "test"})
    bad({"signature": signed_over(expires_at=drill["expiresAt"] + 1), "via": "test"})
    bad({"signature": signed_over(purpose="something else"), "via": "test"})
    # Bob's good signature filed under alice's name; alice's proof again (a replay), in both encodings of v.
    bad({"signature": typed_signature(bob, typed), "via": "test", "owner": alice.address})
    replay = typed_signature(alice, typed)
    assert "already" in bad({"signature": replay, "via": "test"})["signature"][0]
    bad({"signature": replay[:-2] + f"{int(replay[-2:], 16) - 27:02x}", "via": "test"})
    # The malleable twin of bob's signature (s -> n - s, v flipped): the same key, never accepted.
    good = bytes.fromhex(typed_signature(bob, typed)[2:])
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    twin = good[:32] + (n - int.from_bytes(good[32:64], "big")).to_bytes(32, "big") + bytes([55 - good[64]])
    bad({"signature": "0x" + twin.hex(), "via": "test"})
    # Garbage.
    for garbage in ("0x1234", "0x" + "00" * 65, "0x" + "ff" * 65, "0x" + "11" * 130, "not hex", 12, None):
        bad({"signature": garbage, "via": "test"})
    bad({"signature": typed_signature(bob, typed) + "00", "via": "test"})
    # The device rule: carol must sign with hardware.
    assert "hardware" in json.dumps(bad({"signature": typed_signature(carol, typed), "via": "browser"}))
    # A contract owner's proof with the wrong inner signer, and one sent without naming its owner.
    bad({"signature": typed_signature(bob, typed), "via": "contract", "owner": ceremony.vault})
    bad({"signature": vault_proof(ceremony, typed), "via": "contract"})
    # Bodies: no via, a via that is no word, not an object, not JSON, over the cap.
    assert bad({"signature": typed_signature(bob, typed)})["via"]
    bad({"signature": typed_signature(bob, typed), "via": "<b>"})
    bad([typed_signature(bob, typed)])
    error = refused(served, store, ceremony, before, "POST", target, 400, data=b'{"signature": "0x',
                    headers={"Content-Type": "application/json"})
    assert error["detail"].startswith("JSON parse error")
    huge = json.dumps({"signature": "0x" + "ab" * 2_000_000, "via": "test"}).encode()
    assert "larger than" in refused(served, store, ceremony, before, "POST", target, 413, data=huge,
                                    headers={"Content-Type": "application/json"})["detail"]
    # Unknown drills.
    good_bob = {"signature": typed_signature(bob, typed), "via": "test"}
    assert refused(served, store, ceremony, before, "POST", proofs_url(served, "drill-000000000000"), 404,
                   json=good_bob) == {"detail": "Not found."}
    refused(served, store, ceremony, before, "POST", proofs_url(served, "DRILL-zz"), 404, json=good_bob)
    refused(served, store, ceremony, before, "GET", f"{served}/api/treasury/v1/drills/nothing/", 404)
    # After all that, bob's good proof is taken.
    answer = prove(served, drill_id, good_bob["signature"])
    assert answer.status_code == 201 and answer.json()["owner"] == bob.address


def test_an_expired_drill_takes_no_proof(ceremony, chain, served, clock):
    alice = ceremony.eoas[0]
    drill = start(served, ceremony, chain, alice, label="short", ttl=120)
    clock.now = drill["expiresAt"] + 1
    before = snapshot(ceremony.treasury.store, ceremony)
    error = refused(served, ceremony.treasury.store, ceremony, before, "POST", proofs_url(served, drill["id"]), 400,
                    json={"signature": typed_signature(alice, drill["typedData"]), "via": "test"})
    assert "expired" in error["nonFieldErrors"][0]
    assert requests.get(f"{served}/api/treasury/v1/drills/{drill['id']}/", timeout=60).json()["expired"] is True



def test_a_closed_drill_takes_no_proof(ceremony, chain, served):
    alice, bob = ceremony.eoas[:2]
    store = ceremony.treasury.store
    drill = start(served, ceremony, chain, alice, label="closed")
    store.close_drill(drill["id"], actor="test")
    before = snapshot(store, ceremony)
    error = refused(served, store, ceremony, before, "POST", proofs_url(served, drill["id"]), 400,
                    json={"signature": typed_signature(bob, drill["typedData"]), "via": "test"})
    assert "closed" in error["nonFieldErrors"][0]
    assert requests.get(f"{served}/api/treasury/v1/drills/{drill['id']}/", timeout=60).json()["status"] == "closed"
    page = requests.get(f"{served}/drills/{drill['id']}", timeout=60).text
    assert 'id="sign-drill"' not in page and "closed" in page


def test_the_same_owners_proof_sent_at_once_is_stored_once(ceremony, chain, served):
    from concurrent.futures import ThreadPoolExecutor

    alice, bob = ceremony.eoas[:2]
    drill = start(served, ceremony, chain, alice, label="race")
    signature = typed_signature(bob, drill["typedData"])
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: prove(served, drill["id"], signature), range(6)))
    assert sorted(a.status_code for a in answers) == [201] + [400] * 5, [a.text for a in answers]
    assert all("already" in a.text for a in answers if a.status_code == 400)
    store = ceremony.treasury.store
    assert [p.owner for p in store.owner_proofs(chain.chain_id, ceremony.treasury.safe, drill["id"])] == [bob.address]
    assert [e.action for e in store.audit_entries()].count("drill.proved") == 1 and store.verify_audit_log().ok

def test_a_drill_that_cannot_be_started_stores_nothing(ceremony, chain, served, accounts):
    treasury, store = ceremony.treasury, ceremony.treasury.store
    alice = ceremony.eoas[0]
    before = snapshot(store, ceremony)
    target = f"{served}/api/treasury/v1/safes/{treasury.safe}/drills/"
    now = NOW

    def bad(body, status: int = 400, where: str = target) -> dict:
        return refused(served, store, ceremony, before, "POST", where, status, json=body)

    assert "issuedAt" in bad(drill_body(ceremony, chain, alice, issued_at=now - 3_600))
    assert "issuedAt" in bad(drill_body(ceremony, chain, alice, issued_at=now + 3_600))
    assert "expiresAt" in bad(drill_body(ceremony, chain, alice, issued_at=now - 500, ttl=100))
    assert "expiresAt" in bad(drill_body(ceremony, chain, alice, ttl=365 * 86_400))
    assert "requireDevice" in bad(drill_body(ceremony, chain, alice, require_device=(accounts[5].address,)))
    assert "requireDevice" in bad(drill_body(ceremony, chain, alice, require_device=(alice.address.lower(),)))
    assert "contract owner" in bad(drill_body(ceremony, chain, alice, require_device=(ceremony.vault,)))["requireDevice"][0]
    assert "purpose" in bad(drill_body(ceremony, chain, alice, purpose="two\nlines"[:3]) | {"purpose": "two\nlines"})
    assert "purpose" in bad(drill_body(ceremony, chain, alice) | {"purpose": "x" * 501})
    assert "nonce" in bad(drill_body(ceremony, chain, alice, nonce="0x1234"))
    # The signature must cover the fields sent: a changed purpose after signing.
    assert "signature" in bad({**drill_body(ceremony, chain, alice), "purpose": "changed after signing"})
    assert bad({**drill_body(ceremony, chain, alice), "signature": "0x" + "00" * 65})["signature"]
    bad([1, 2])
    # The Safe in the path: not checksummed (the service's 422, code 1), not a Safe (code 50).
    assert bad(drill_body(ceremony, chain, alice), 422, target.replace(treasury.safe, treasury.safe.lower()))["code"] == 1
    token_url = target.replace(treasury.safe, ceremony.token.address)
    assert bad(drill_body(ceremony, chain, alice), 422, token_url)["code"] == 50
    # A nonce already used names one drill only.
    start(served, ceremony, chain, alice, label="once")
    after = snapshot(store, ceremony)
    again = refused(served, store, ceremony, after, "POST", target, 400,
                    json=drill_body(ceremony, chain, alice, label="once", purpose="the same nonce again"))
    assert "nonce" in again


def test_with_a_read_token_reads_need_it_and_a_stranger_learns_nothing(ceremony, chain):
    treasury = ceremony.treasury
    with running_server(treasury.store, config_path=treasury.config_path, read_token="s3cret", clock=Clock(),
                        **UNTHROTTLED) as url:
        auth = {"Authorization": "Bearer s3cret"}
        answer = requests.post(f"{url}/api/treasury/v1/safes/{treasury.safe}/drills/",
                               json=drill_body(ceremony, chain, ceremony.eoas[0], label="token"), timeout=60)
        assert answer.status_code == 201, answer.text  # a write carries its own authority
        drill = answer.json()
        assert requests.get(f"{url}/api/treasury/v1/drills/{drill['id']}/", timeout=60).status_code == 401
        assert requests.get(f"{url}/api/treasury/v1/drills/{drill['id']}/", headers=auth, timeout=60).status_code == 200
        stranger = typed_signature(ceremony.funder, drill["typedData"])
        unknown = prove(url, "drill-000000000000", stranger)
        refused_proof = prove(url, drill["id"], stranger)
        assert unknown.status_code == refused_proof.status_code == 400
        assert unknown.json() == refused_proof.json()  # no oracle of which drills exist
        assert prove(url, drill["id"], typed_signature(ceremony.eoas[1], drill["typedData"])).status_code == 201


# --- the client side (treasury.remote.drills): what `--server` needs ----------------------------------


def test_the_remote_client_starts_a_drill_and_sends_proofs(ceremony, chain, served, accounts):
    from treasury.ceremony.drill import sign_drill, sign_drill_as_contract_owner
    from treasury.remote import drills as remote
    from treasury.remote.http import HttpClient, ServerError

    treasury = ceremony.treasury
    alice, bob, carol, _dave = ceremony.eoas
    http = HttpClient(served)
    try:
        started = remote.start_drill(http, treasury.safe, chain.chain_id, alice, require_device=[carol.address], now=NOW,
                                     purpose="Drill from a laptop")
        assert started["requireDevice"] == [carol.address] and started["status"] == "open"
        challenge = remote.challenge_of(remote.get_drill(http, started["id"]))
        assert (challenge.issued_at, challenge.purpose) == (NOW, "Drill from a laptop")
        stored = remote.send_proof(http, started["id"], sign_drill(challenge, bob))
        assert (stored["owner"], stored["via"]) == (bob.address, "test")
        remote.send_proof(http, started["id"], sign_drill_as_contract_owner(challenge, ceremony.vault,
                                                                              [ceremony.vault_signer]))
        with pytest.raises(ServerError, match="not a current owner"):
            remote.send_proof(http, started["id"], sign_drill(challenge, accounts[5]))
        with pytest.raises(ServerError, match="hardware wallet"):
            remote.send_proof(http, started["id"], sign_drill(challenge, carol))
        with pytest.raises(ServerError, match="is not an owner or delegate"):
            remote.start_drill(http, treasury.safe, chain.chain_id, accounts[5], now=NOW)
        with pytest.raises(Exception, match="no drill drill-000000000000"):
            remote.get_drill(http, "drill-000000000000")
        assert [d["id"] for d in remote.list_drills(http, treasury.safe)] == [started["id"]]
        lines = remote.status_lines(remote.get_drill(http, started["id"]), {bob.address: "bob"})
    finally:
        http.close()
    assert lines[0].startswith(f"drill {started['id']} (open, expires ") and "2 of 5 owners proved control" in lines[0]
    assert "  bob: proved " in "\n".join(lines) and f"  {carol.address}: not yet proved (device required)" in lines
    assert {p.owner for p in treasury.store.owner_proofs(chain.chain_id, treasury.safe)} == {bob.address, ceremony.vault}


# --- review fixes (issue 15, F1) ------------------------------------------------------------------------


def test_a_nonce_any_drill_in_the_store_used_is_refused(ceremony, chain, served):
    """The starter picks the nonce: one any drill of the server's store has used (here another Safe's) is refused."""
    store = ceremony.treasury.store
    elsewhere = DrillChallenge("0x" + "33" * 20, chain.chain_id, nonce_of("shared"), NOW, NOW + WEEK)
    store.add_drill(chain.chain_id, elsewhere.safe, elsewhere.nonce, elsewhere.typed_data(), (), created_at=NOW,
                    expires_at=NOW + WEEK, actor="test")
    before = snapshot(store, ceremony)
    answer = refused(served, store, ceremony, before, "POST", f"{served}/api/treasury/v1/safes/{ceremony.treasury.safe}/drills/",
                     400, json=drill_body(ceremony, chain, ceremony.eoas[0], label="shared"))
    assert "already issued" in json.dumps(answer["nonce"])


def test_the_server_recovers_drill_signers_as_the_library_does(ceremony):
    """One recoverer: v 0/1 (accepted by some libraries) is refused by the server as by verify_drill_proof."""
    from treasury.server.drills import recover_signer

    bob = ceremony.eoas[1]
    typed = DrillChallenge(ceremony.treasury.safe, 1, nonce_of("v"), NOW, NOW + WEEK).typed_data()
    good = bytes.fromhex(typed_signature(bob, typed)[2:])
    digest = DrillChallenge.from_json(typed).digest()
    assert recover_signer(digest, good) == bob.address
    assert recover_signer(digest, good[:64] + bytes([good[64] - 27])) is None
    assert recover_signer(digest, good + b"\x00") is None


def test_the_remote_status_counts_only_todays_owners():
    from treasury.remote.drills import status_lines

    alice, dave = "0x" + "aa" * 20, "0x" + "dd" * 20
    drill = {"id": "drill-0123456789ab", "expiresAt": NOW, "status": "open", "owners": [alice],
             "proofs": [{"owner": alice, "provedAt": NOW, "via": "test"}, {"owner": dave, "provedAt": NOW, "via": "test"}]}
    lines = status_lines(drill)
    assert "1 of 1 owners proved control" in lines[0] and not any(dave in line for line in lines)
