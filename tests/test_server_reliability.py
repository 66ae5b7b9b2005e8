"""`treasury serve` under stress: signers at once, a crash mid-write, lost answers, hostile input.

Every request goes over HTTP, as a signer's client sends it, with signatures made beforehand by ape's
test accounts (the Safe's owners). The store is checked directly afterwards: every answer 201 the
clients saw is stored exactly once, every row has its audit entry and the hash chain verifies, and
refused input leaves proposals, signatures and the audit log exactly as they were. Nothing waits on
the wall clock for correctness: concurrent requests are released by a barrier, the crash is
triggered by the count of answers seen, polling loops only bound a broken run.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import requests
from server_helpers import running_server, serve_process

from treasury.proposal.build import encode_call
from treasury.proposal.safe_tx import build_safe_tx
from treasury.signatures.signing import sign
from treasury.store import Store

UNIT = 10**6
BACKENDS = ("sqlite", "postgresql")
FAST_WRITES = ["--write-rate", "1000000"]  # the crash test's burst comes from one client: no throttling
UNTHROTTLED = {"write_rate": 1_000_000.0, "write_burst": 10_000}  # the hostile requests all come from one client


# --- fixtures and helpers ---------------------------------------------------------------------------


@pytest.fixture
def nine(safe_infrastructure, accounts, safe_deployer, tmp_path, request):
    """A treasury whose Safe has nine owners (test accounts 0-8), threshold 9: nothing executes by accident."""
    from treasury.testing.fixtures import make_test_treasury

    salt = 912_000 + sum(map(ord, request.node.name)) % 10_000  # a Safe of its own per test
    treasury, token = make_test_treasury(tmp_path, list(accounts[:9]), safe_deployer, threshold=9, salt_nonce=salt,
                                         guarded=False)
    yield treasury, token, list(accounts[:9])
    treasury.store.close()


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path) -> Iterator[str]:
    """An empty store for the server: a SQLite file, or a fresh schema on the session's PostgreSQL."""
    if request.param == "sqlite":
        yield str(tmp_path / "server.db")
        return
    server = request.getfixturevalue("postgres_server")
    try:
        yield server.new_database().url
    finally:
        server.drop_all()


@pytest.fixture
def postgres_url(postgres_server) -> Iterator[str]:
    try:
        yield postgres_server.new_database().url
    finally:
        postgres_server.drop_all()


def transfer_tx(treasury, token, amount: int, *, nonce: int | None = None, chain_id: int | None = None):
    data = encode_call("transfer(address,uint256)", ["0x" + "00" * 18 + "0777", amount * UNIT])
    return build_safe_tx(treasury.safe, token.address, 0, data, 0,
                         nonce=treasury.onchain_nonce() if nonce is None else nonce,
                         chain_id=treasury.chain_id if chain_id is None else chain_id, version=treasury.version)


def hex_of(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def signature_hex(account, safe_tx, kind: str = "eip712") -> str:
    return hex_of(sign(account, safe_tx, kind).export_signature())


def proposal_body(safe_tx, signer, origin: str = "reliability") -> dict:
    """What Safe's clients POST to propose `safe_tx`, signed by `signer`."""
    return {
        "to": safe_tx.to, "value": str(safe_tx.value), "data": hex_of(safe_tx.data), "operation": safe_tx.operation,
        "gasToken": safe_tx.gas_token, "safeTxGas": str(safe_tx.safe_tx_gas), "baseGas": str(safe_tx.base_gas),
        "gasPrice": str(safe_tx.gas_price), "refundReceiver": safe_tx.refund_receiver, "nonce": str(safe_tx.safe_nonce),
        "contractTransactionHash": hex_of(safe_tx.safe_tx_hash), "sender": signer.address,
        "signature": signature_hex(signer, safe_tx), "origin": origin,
    }


def txs_url(url: str, safe: str, version: str = "v2") -> str:
    return f"{url}/api/{version}/safes/{safe}/multisig-transactions/"


def confirmations_url(url: str, safe_tx_hash: str) -> str:
    return f"{url}/api/v1/multisig-transactions/{safe_tx_hash}/confirmations/"


def propose(url: str, safe_tx, signer) -> str:
    answer = requests.post(txs_url(url, safe_tx.safe_address), json=proposal_body(safe_tx, signer), timeout=60)
    assert answer.status_code == 201, answer.text
    return hex_of(safe_tx.safe_tx_hash)


def snapshot(store: Store) -> tuple:
    """Everything a refused request must leave unchanged: proposals, signatures, the audit log."""
    proposals = store.list_proposals()
    return ([(p.id, p.status, p.safe_tx_hash) for p in proposals],
            sorted((s.proposal_id, s.purpose, s.owner, s.signature) for p in proposals for s in store.signatures(p.id, None)),
            [(e.seq, e.entry_hash) for e in store.audit_entries()])


def assert_whole(store: Store) -> dict[str, set[str]]:
    """Nothing half-written: the audit chain verifies, every row reads back (content hashes), and
    rows and audit entries match one for one. Returns the stored signers by safeTxHash."""
    report = store.verify_audit_log()
    assert report.ok, (report.first_bad_seq, report.problem)
    entries = store.audit_entries()
    proposals = store.list_proposals()  # raises TamperedRecord on a torn row
    assert sorted(p.id for p in proposals) == sorted(e.proposal_id for e in entries if e.action == "proposal.added")
    signers: dict[str, set[str]] = {}
    rows = []
    for record in proposals:
        stored = store.signatures(record.id, None)
        signers[record.safe_tx_hash] = {s.owner for s in stored}
        rows += [(record.id, s.owner) for s in stored]
    logged = [(e.proposal_id, e.payload["owner"]) for e in entries if e.action == "signature.added"]
    assert sorted(rows) == sorted(logged)
    return signers


# --- eight signers at once --------------------------------------------------------------------------------


def test_eight_signers_confirm_the_same_proposal_at_once_on_postgresql(nine, postgres_url):
    treasury, token, owners = nine
    with running_server(postgres_url, config_path=treasury.config_path) as url:
        safe_tx = transfer_tx(treasury, token, 5)
        safe_tx_hash = propose(url, safe_tx, owners[8])
        bodies = [{"signature": signature_hex(owner, safe_tx, "eth_sign" if i % 2 else "eip712")}
                  for i, owner in enumerate(owners[:8])]
        start = threading.Barrier(len(bodies))
        answers: list[requests.Response | BaseException] = [RuntimeError("not sent")] * len(bodies)

        def confirm(index: int) -> None:
            with requests.Session() as session:
                start.wait(timeout=120)
                try:
                    answers[index] = session.post(confirmations_url(url, safe_tx_hash), json=bodies[index], timeout=120)
                except requests.RequestException as error:
                    answers[index] = error

        threads = [threading.Thread(target=confirm, args=(i,)) for i in range(len(bodies))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [getattr(a, "status_code", a) for a in answers] == [201] * 8
        listed = requests.get(confirmations_url(url, safe_tx_hash), timeout=60).json()
        assert listed["count"] == 9 and {c["owner"] for c in listed["results"]} == {o.address for o in owners}
    with Store.open(postgres_url) as store:
        assert assert_whole(store) == {safe_tx_hash: {o.address for o in owners}}


# --- SIGKILL in the middle of a burst of writes -------------------------------------------------------------


@dataclass
class Burst:
    """Confirmations posted by a few writers at once; what each got back."""

    url: str
    jobs: queue.Queue
    accepted: list[tuple[str, str]] = field(default_factory=list)  # (safeTxHash, owner) answered 201
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # refused with another status: a bug
    lost: list[tuple[str, str, dict]] = field(default_factory=list)  # no answer: the server died meanwhile
    lock: threading.Lock = field(default_factory=threading.Lock)
    enough: threading.Event = field(default_factory=threading.Event)
    kill_after: int = 0

    def writer(self) -> None:
        with requests.Session() as session:
            while True:
                try:
                    safe_tx_hash, owner, body = self.jobs.get_nowait()
                except queue.Empty:
                    return
                try:
                    answer = session.post(confirmations_url(self.url, safe_tx_hash), json=body, timeout=120)
                except requests.RequestException:
                    with self.lock:
                        self.lost.append((safe_tx_hash, owner, body))
                    continue  # the rest of the queue meets the dead server too: each is "lost"
                with self.lock:
                    if answer.status_code == 201:
                        self.accepted.append((safe_tx_hash, owner))
                        if len(self.accepted) >= self.kill_after:
                            self.enough.set()
                    else:
                        self.failed.append((safe_tx_hash, owner, f"{answer.status_code} {answer.text[:200]}"))


def test_sigkill_mid_write_loses_nothing_answered_and_leaves_nothing_half_written(nine, store_url, tmp_path):
    treasury, token, owners = nine
    with serve_process(store_url, config_path=treasury.config_path, cwd=tmp_path, args=FAST_WRITES) as served:
        txs = [transfer_tx(treasury, token, amount) for amount in range(1, 9)]  # eight alternatives for one nonce
        hashes = [propose(served.url, tx, owners[0]) for tx in txs]
        jobs: queue.Queue = queue.Queue()
        for tx, safe_tx_hash in zip(txs, hashes, strict=True):
            for owner in owners[1:]:
                jobs.put((safe_tx_hash, owner.address, {"signature": signature_hex(owner, tx)}))
        total = jobs.qsize()
        burst = Burst(served.url, jobs, kill_after=total // 3)
        writers = [threading.Thread(target=burst.writer) for _ in range(6)]
        for writer in writers:
            writer.start()
        assert burst.enough.wait(timeout=600), (burst.accepted, burst.failed)
        assert served.kill() == -9  # SIGKILL while the other writers' requests are in flight
        for writer in writers:
            writer.join()
    assert burst.failed == []
    assert burst.lost, "the kill came after the burst: nothing was in flight"
    with Store.open(store_url) as store:
        signers = assert_whole(store)
    for safe_tx_hash, owner in burst.accepted:  # every 201 a client saw is stored
        assert owner in signers[safe_tx_hash]

    # Restarted on the same store: the clients send again what got no answer; each is stored once.
    with serve_process(store_url, config_path=treasury.config_path, cwd=tmp_path, args=FAST_WRITES) as served:
        for safe_tx_hash, _owner, body in burst.lost:
            answer = requests.post(confirmations_url(served.url, safe_tx_hash), json=body, timeout=60)
            assert answer.status_code == 201, answer.text
        for safe_tx_hash in hashes:
            listed = requests.get(confirmations_url(served.url, safe_tx_hash), timeout=60).json()
            assert listed["count"] == len(owners)
    with Store.open(store_url) as store:
        assert assert_whole(store) == {h: {o.address for o in owners} for h in hashes}
        assert len(burst.accepted) + len(burst.lost) == total


# --- a confirmation whose answer was lost, sent again ----------------------------------------------------


def _post_raw(url: str, path: str, body: bytes, *, read_first_byte: bool) -> None:
    """POST over a bare socket and hang up: after the first byte of the answer (the write committed,
    the answer never reaches the client's code) or at once (the server may or may not get to it)."""
    where = urlsplit(url)
    request = (f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
    with socket.create_connection((where.hostname, where.port), timeout=120) as conn:
        conn.sendall(request)
        if read_first_byte:
            assert conn.recv(1) == b"H"


def test_a_confirmation_retried_after_its_answer_was_lost_is_stored_once(nine, store_url):
    treasury, token, owners = nine
    with running_server(store_url, config_path=treasury.config_path) as url:
        safe_tx = transfer_tx(treasury, token, 3)
        safe_tx_hash = propose(url, safe_tx, owners[0])
        path = urlsplit(confirmations_url(url, safe_tx_hash)).path

        # The server committed and answered; the answer was lost on the way. The client sends again.
        lost = {"signature": signature_hex(owners[1], safe_tx)}
        _post_raw(url, path, json.dumps(lost).encode(), read_first_byte=True)
        again = requests.post(confirmations_url(url, safe_tx_hash), json=lost, timeout=60)
        assert again.status_code == 201 and again.json() == lost

        # The connection dropped before any answer: sent again, and again by four retrying clients at once.
        dropped = {"signature": signature_hex(owners[2], safe_tx, "eth_sign")}
        _post_raw(url, path, json.dumps(dropped).encode(), read_first_byte=False)
        start = threading.Barrier(4)
        statuses: list[int] = []

        def retry() -> None:
            start.wait(timeout=120)
            statuses.append(requests.post(confirmations_url(url, safe_tx_hash), json=dropped, timeout=120).status_code)

        threads = [threading.Thread(target=retry) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [201] * 4
        listed = requests.get(confirmations_url(url, safe_tx_hash), timeout=60).json()
        assert sorted(c["owner"] for c in listed["results"]) == sorted(o.address for o in owners[:3])
    with Store.open(store_url) as store:
        assert assert_whole(store) == {safe_tx_hash: {o.address for o in owners[:3]}}  # once each, audited once each


# --- hostile input ------------------------------------------------------------------------------------------


def test_hostile_input_gets_an_api_style_error_and_changes_nothing(nine, store_url, accounts):
    treasury, token, owners = nine
    outsider = accounts.generate_test_account()  # owns nothing (test accounts 0-8 own this Safe)
    with running_server(store_url, config_path=treasury.config_path, max_body=64 * 1024, **UNTHROTTLED) as url:
        safe_tx = transfer_tx(treasury, token, 2)
        safe_tx_hash = propose(url, safe_tx, owners[0])
        post_tx, post_confirm = txs_url(url, treasury.safe), confirmations_url(url, safe_tx_hash)
        with Store.open(store_url) as store:
            before = snapshot(store)

        def refused(method: str, target: str, status: int, **kwargs) -> dict:
            answer = requests.request(method, target, timeout=60, **kwargs)
            assert answer.status_code == status, (target, answer.status_code, answer.text[:300])
            assert answer.headers["content-type"].startswith("application/json")
            assert "Traceback" not in answer.text and "/work/" not in answer.text
            with Store.open(store_url) as store:
                assert snapshot(store) == before, target
            return answer.json()

        json_header = {"Content-Type": "application/json"}
        # Malformed JSON, to both writes.
        for target in (post_tx, post_confirm):
            for text in ('{"signature": "0x', "[1, 2", "\x00\xff", "{'signature': 1}", "[" * 30_000):
                error = refused("POST", target, 400, data=text.encode("utf-8", "surrogatepass"), headers=json_header)
                assert set(error) == {"detail"} and error["detail"].startswith("JSON parse error"), error
        # JSON of the wrong shape: the service's field errors (422 for a proposal, as Safe's service; 400 for a confirmation).
        deep = ('{"a": ' * 2_000 + "1" + "}" * 2_000).encode()
        assert refused("POST", post_tx, 422, data=deep, headers=json_header)["to"] == ["This field is required."]
        assert refused("POST", post_confirm, 400, data=deep, headers=json_header)["signature"]
        deep_list = ("[" * 30_000 + "]" * 30_000).encode()  # parsed without recursion trouble, then refused by shape
        assert "Expected a dictionary" in refused("POST", post_tx, 422, data=deep_list, headers=json_header)["nonFieldErrors"][0]
        refused("POST", post_confirm, 400, data=deep_list, headers=json_header)
        assert refused("POST", post_confirm, 400, json=["0x00"])
        assert refused("POST", post_confirm, 400, json={"signature": 12})["signature"]
        assert refused("POST", post_tx, 422, json={"to": treasury.safe})
        # Bodies over the cap: declared, and streamed without a length.
        huge = b'{"signature": "0x' + b"ab" * (64 * 1024) + b'"}'
        for target in (post_tx, post_confirm):
            assert "larger than" in refused("POST", target, 413, data=huge, headers=json_header)["detail"]
            streamed = (huge[i:i + 8192] for i in range(0, len(huge), 8192))
            assert "larger than" in refused("POST", target, 413, data=streamed, headers=json_header)["detail"]
        # Addresses with a wrong checksum: in the path, and in the body.
        wrong_case = treasury.safe[:2] + (treasury.safe[2:].swapcase() if treasury.safe[2:].swapcase() != treasury.safe[2:]
                                          else treasury.safe[2:])
        if wrong_case != treasury.safe:
            assert refused("POST", txs_url(url, wrong_case), 422, json=proposal_body(safe_tx, owners[0]))["code"] == 1
            assert refused("GET", f"{url}/api/v1/safes/{wrong_case}/", 422)["code"] == 1
        bad_to = {**proposal_body(safe_tx, owners[0]), "to": safe_tx.to.lower().replace("0x", "0X")}
        assert "checksum" in refused("POST", post_tx, 422, json=bad_to)["to"][0]
        mixed = safe_tx.to[:-1] + ("a" if safe_tx.to[-1] != "a" else "b")  # a checksum that no longer matches
        assert "checksum" in refused("POST", post_tx, 422, json={**proposal_body(safe_tx, owners[0]), "to": mixed})["to"][0]
        # Signatures of a non-owner, and of an owner for another chain or another nonce.
        assert refused("POST", post_confirm, 400, json={"signature": signature_hex(outsider, safe_tx)})["signature"]
        other_chain = transfer_tx(treasury, token, 2, chain_id=1)
        assert "chain id 1" in refused("POST", post_confirm, 400,
                                       json={"signature": signature_hex(owners[1], other_chain)})["signature"][0]
        other_nonce = transfer_tx(treasury, token, 2, nonce=safe_tx.safe_nonce + 1)
        refused("POST", post_confirm, 400, json={"signature": signature_hex(owners[1], other_nonce)})
        refused("POST", post_confirm, 400, json={"signature": "0x" + "00" * 65})
        refused("POST", post_confirm, 400, json={"signature": "0x" + "11" * 64 + "1b" + "11" * 65})  # two, the second junk
        stranger = transfer_tx(treasury, token, 9)
        refused("POST", post_tx, 422, json=proposal_body(stranger, outsider))
        refused("POST", post_tx, 422, json={**proposal_body(stranger, owners[0]),
                                            "signature": signature_hex(owners[0], transfer_tx(treasury, token, 9, chain_id=1))})
        # Safe addresses that are not Safes: a token contract, an account with no code.
        for not_a_safe in (token.address, outsider.address):
            fake = build_safe_tx(not_a_safe, safe_tx.to, 0, bytes(safe_tx.data), 0, nonce=0, chain_id=treasury.chain_id,
                                 version=treasury.version)
            answer = refused("POST", txs_url(url, not_a_safe), 422, json=proposal_body(fake, owners[0]))
            assert answer["code"] == 50
            assert refused("GET", f"{url}/api/v1/safes/{not_a_safe}/", 404) == {"detail": "Not found."}
        # An unknown safeTxHash, and one that is not a hash.
        assert refused("POST", confirmations_url(url, "0x" + "ab" * 32), 404, json={"signature": "0x" + "00" * 65})
        refused("POST", confirmations_url(url, "0x1234"), 404, json={"signature": "0x" + "00" * 65})
    with Store.open(store_url) as store:
        assert_whole(store)

