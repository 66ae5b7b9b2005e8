"""The CLI as a remote client (issue 12): signers' laptops with keys, a node and a server URL, no store.

One `treasury serve` (in a thread of the test, over the session's anvil) holds the only store.
Laptop 1 proposes with `--server` (its account signs as proposer, as Safe's service requires),
laptops 2 and 3 sign with their own ape accounts and only `server:` in their config, laptop 1 also
finds it in $TREASURY_SERVER, and everyone lists, shows, exports and reads the log from the server. No laptop store file ever
appears. Schedule and cancel signatures (TreasuryGuard's delay queue) travel the same way, and the
server refuses what it cannot verify, storing nothing.
"""

from __future__ import annotations

import json

import pytest
import requests
import yaml
from builders import tusd_policy
from server_helpers import running_server
from test_cli import Cli

from treasury.remote.store import RemoteStore
from treasury.store import Store


def policy_for(vendor: str) -> dict:
    return tusd_policy(vendor, amount="100000", delay_threshold="5000", cancel_threshold=1)


def laptop(tmp_path, name: str, config_path, server: str | None = None):
    """A signer's config: the treasury's entry (optionally with `server:`) and a store path that must never be created."""
    folder = tmp_path / name
    folder.mkdir()
    config = yaml.safe_load(config_path.read_text())
    config["treasury"]["store"] = str(folder / "store.db")
    if server is not None:
        for entry in config["treasury"]["treasuries"].values():
            entry["server"] = server
    path = folder / "ape-config.yaml"
    path.write_text(yaml.safe_dump(config))
    return folder, path


@pytest.fixture
def team(make_treasury, tmp_path, chain, accounts):
    """The server (its own store, the treasury's config for verdicts) and three laptops."""
    vendor = accounts[4]
    treasury, _token = make_treasury(policy_for(vendor.address))
    config = tmp_path / "ape-config.yaml"
    server_store = Store.open(str(tmp_path / "server.db"))
    with running_server(server_store, config_path=config) as url:
        laptops = [laptop(tmp_path, f"laptop{i}", config, server=url if i else None) for i in range(3)]
        yield {"url": url, "treasury": treasury, "store": server_store, "vendor": vendor, "chain": chain,
               "runs": [Cli(path, chain) for _folder, path in laptops], "folders": [folder for folder, _path in laptops]}
    server_store.close()


def no_laptop_store(team) -> None:
    for folder in team["folders"]:
        assert sorted(p.name for p in folder.iterdir()) == ["ape-config.yaml"], folder


def test_propose_on_one_laptop_sign_on_two_others_read_everywhere(team, accounts, tmp_path, monkeypatch):
    url, store, vendor = team["url"], team["store"], team["vendor"]
    one, two, three = team["runs"]

    proposed = one.json("propose", "transfer", vendor.address, "100 TUSD", "--account", "TEST::0", "--server", url)
    pid = proposed["id"]
    assert proposed["verdict"]["outcome"] == "allow" and proposed["title"]
    stored = store.get_proposal(pid)
    assert stored.safe_tx_hash == proposed["safe_tx_hash"]
    assert [s.owner for s in store.signatures(pid)] == [accounts[0].address]  # the proposer's signature, verified

    # Laptop 2 knows the server from its config (`server:`), laptop 3 from the environment.
    signed = two.json("sign", pid, "--account", "TEST::1", "--yes")
    assert signed["signer"] == accounts[1].address and len(signed["signers"]) == 2
    monkeypatch.setenv("TREASURY_SERVER", url)
    listed = one.json("list", chain=False)
    assert [p["id"] for p in listed] == [pid]
    monkeypatch.delenv("TREASURY_SERVER")

    again = three("sign", pid, "--account", "TEST::1", "--yes")  # the same owner again: refused, nothing new
    assert again.exit_code == 1 and "already signed" in again.stderr
    assert len(store.signatures(pid)) == 2

    shown = three.json("show", pid, chain=False)
    assert {s["owner"] for s in shown["signatures"]} == {accounts[0].address, accounts[1].address}
    assert all(s["verified"] for s in shown["signatures"])
    live = three.json("show", pid)  # with --network: the verdict and the threshold, from the chain
    assert live["verdict"]["outcome"] == "allow" and live["threshold"] == 2

    bundle = tmp_path / "bundle.json"
    exported = three.json("export", pid, bundle, chain=False)
    assert exported["signatures"] == 2 and len(json.loads(bundle.read_text())["signatures"]) == 2

    log = two.json("log", chain=False)
    assert log["verified"] is True
    actions = [(e["action"], e["proposal_id"]) for e in log["log"]]
    assert ("proposal.added", pid) in actions and actions.count(("signature.added", pid)) == 2
    assert all(e["actor"].startswith("server:") for e in log["log"] if e["proposal_id"] == pid)
    assert two.json("log", "--proposal", pid, chain=False)["log"][0]["proposal_id"] == pid

    no_laptop_store(team)


def test_propose_to_a_server_needs_the_proposers_account_and_a_live_server(team):
    url, vendor = team["url"], team["vendor"]
    one = team["runs"][0]
    unsigned = one("propose", "transfer", vendor.address, "100 TUSD", "--server", url)
    assert unsigned.exit_code == 1 and "--account" in unsigned.stderr
    assert team["store"].list_proposals() == []

    from treasury.chain.localnode import free_local_url

    nobody = free_local_url()  # a port nothing listens on
    down = one("list", "--server", nobody, chain=False)
    assert down.exit_code == 1 and nobody in down.stderr and len(down.stderr.strip().splitlines()) == 1
    unknown = one("show", "0123456789abcdef", "--server", url, chain=False)
    assert unknown.exit_code == 1 and "0123456789abcdef" in unknown.stderr
    no_laptop_store(team)


def test_schedule_and_cancel_signatures_travel_through_the_server(team, accounts):
    url, store, vendor, treasury = team["url"], team["store"], team["vendor"], team["treasury"]
    one, two, _three = team["runs"]

    proposed = one.json("propose", "transfer", vendor.address, "6000 TUSD", "--account", "TEST::0", "--server", url)
    pid = proposed["id"]
    assert proposed["verdict"]["error"] == "NotScheduled"
    # The proposer's SafeTx signature came with the proposal; its schedule signature comes with `sign`.
    first = one.json("sign", pid, "--account", "TEST::0", "--yes", "--server", url)
    assert [s["purpose"] for s in first["signed"]] == ["schedule"] and first["already"] == ["safe_tx"]
    second = two.json("sign", pid, "--account", "TEST::1", "--yes")
    assert [s["purpose"] for s in second["signed"]] == ["safe_tx", "schedule"]
    schedule = store.signatures(pid, "schedule")
    assert [s.owner for s in schedule] == sorted([accounts[0].address, accounts[1].address], key=lambda a: int(a, 16))
    assert schedule[0].signed_hash == first["signed"][0]["signed_hash"]

    # Whoever runs the server queues it with the stored signatures: no owner present.
    at_server = type(treasury)(treasury.name, treasury.entry, store)
    entry = at_server.schedule(pid, accounts[9])
    shown = two.json("show", pid)
    assert shown["status"] == "scheduled"
    cancel = two.json("sign", pid, "--account", "TEST::2", "--cancel", "--yes")
    assert cancel["signed"][0]["purpose"] == "cancel" and cancel["signed"][0]["entry_id"] == entry.entry_id
    assert [s.owner for s in store.signatures(pid, "cancel")] == [accounts[2].address]
    sets = {s["purpose"]: s for s in two.json("show", pid, chain=False)["signature_sets"]}
    assert set(sets) == {"safe_tx", "schedule", "cancel"}
    no_laptop_store(team)


def test_the_server_refuses_guard_signatures_it_cannot_verify_and_stores_nothing(team, accounts):
    url, store, vendor, treasury = team["url"], team["store"], team["vendor"], team["treasury"]
    one = team["runs"][0]
    pid = one.json("propose", "transfer", vendor.address, "6000 TUSD", "--account", "TEST::0", "--server", url)["id"]
    at_server = type(treasury)(treasury.name, treasury.entry, store)
    message = at_server.schedule_message(pid)
    from treasury.signatures.signing import sign_guard_message

    stranger = sign_guard_message(accounts[5], message, treasury.version)  # not an owner
    owner = sign_guard_message(accounts[1], message, treasury.version)
    before = [(e.seq, e.entry_hash) for e in store.audit_entries()]
    endpoint = f"{url}/api/treasury/v1/proposals/{pid}/guard-signatures/"
    good = {"purpose": "schedule", "signedHash": message.hash_hex, "intentNonce": 0,
            "signature": "0x" + bytes(owner.export_signature()).hex()}
    cases = [
        ({**good, "signature": "0x" + bytes(stranger.export_signature()).hex()}, "not an owner"),
        ({**good, "signedHash": "0x" + "11" * 32}, "signedHash"),
        ({**good, "intentNonce": 1}, "signedHash"),  # a hash over another schedule nonce than the one stated
        ({**good, "purpose": "cancel", "entryId": 0, "intentNonce": None}, "entryId"),
        ({**good, "signature": "0xdeadbeef"}, "malformed"),
        ({**good, "owner": accounts[2].address}, "said to be by"),
    ]
    for body, match in cases:
        answer = requests.post(endpoint, json=body, timeout=30)
        assert answer.status_code == 400, (body, answer.text)
        assert match in answer.text, (match, answer.text)
    assert [(e.seq, e.entry_hash) for e in store.audit_entries()] == before
    assert store.signatures(pid, "schedule") == []

    for _ in range(2):  # a client retrying after a lost answer: stored once
        answer = requests.post(endpoint, json=good, timeout=30)
        assert answer.status_code == 201 and answer.json()["owner"] == accounts[1].address
    assert [s.owner for s in store.signatures(pid, "schedule")] == [accounts[1].address]

    remote = RemoteStore(url)
    assert remote.bundle(pid)["safe_tx_hash"] == store.get_proposal(pid).safe_tx_hash
    assert remote.verify_audit_log().ok
    assert requests.get(f"{url}/api/treasury/v1/proposals/{pid}/guard-signatures/", timeout=30).json()["count"] == 1


def test_reads_need_the_servers_token_from_a_file_or_the_environment(make_treasury, tmp_path, chain, accounts,
                                                                      monkeypatch):
    treasury, _token = make_treasury(policy_for(accounts[4].address))
    config = tmp_path / "ape-config.yaml"
    folder, laptop_config = laptop(tmp_path, "laptop", config)
    run = Cli(laptop_config, chain)
    token_file = tmp_path / "token"
    token_file.write_text("r3ad-t0ken\n")
    monkeypatch.delenv("TREASURY_SERVER_TOKEN", raising=False)
    with running_server(str(tmp_path / "server.db"), config_path=config, read_token="r3ad-t0ken") as url:
        refused = run("list", "--server", url, chain=False)
        assert refused.exit_code == 1 and "401" in refused.stderr and url in refused.stderr
        assert run.json("list", "--server", url, "--server-token-file", token_file, chain=False) == []
        monkeypatch.setenv("TREASURY_SERVER_TOKEN", "r3ad-t0ken")
        assert run.json("log", "--server", url, chain=False)["verified"] is True
    for result in (refused,):
        assert "r3ad-t0ken" not in result.stderr + result.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["ape-config.yaml"]


# --- the wire format and the HTTP client, without a server -----------------------------------------


def test_records_round_trip_through_the_wire_format_and_bad_documents_are_one_line():
    from datetime import UTC, datetime

    from treasury.errors import InvalidInput
    from treasury.remote import wire
    from treasury.store import AuditEntry, AuditReport, ProposalRecord, SignatureRecord

    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    record = ProposalRecord(id="0123456789abcdef", chain_id=31337, safe="0x" + "12" * 20, nonce=3, to="0x" + "34" * 20,
                            value=2**255, data=b"\x01\x02", operation=1, safe_tx_gas=0, base_gas=0, gas_price=0,
                            gas_token="0x" + "00" * 20, refund_receiver="0x" + "00" * 20, safe_tx_hash="0x" + "ab" * 32,
                            title="pay", description="", proposer="me", status="pending", created_at=now, content_hash="c")
    assert wire.proposal_of(json.loads(json.dumps(wire.proposal_json(record)))) == record
    signature = SignatureRecord(proposal_id=record.id, owner="0x" + "56" * 20, kind="eip712", signature=b"\x07" * 65,
                                created_at=now, purpose="schedule", signed_hash="0x" + "cd" * 32, intent_nonce=0)
    back = wire.signature_of(json.loads(json.dumps(wire.signature_json(signature))))
    assert (back.owner, back.signature, back.purpose, back.intent_nonce, back.entry_id) == (
        signature.owner, signature.signature, "schedule", 0, None)
    entry = AuditEntry(seq=1, at=now, actor="a", action="proposal.added", proposal_id=record.id, payload={"k": "v"},
                       prev_hash="0", entry_hash="1")
    assert wire.audit_entry_of(wire.audit_entry_json(entry)) == entry
    assert wire.audit_report_of(wire.audit_report_json(AuditReport(False, 3, 2, "edited"))) == AuditReport(False, 3, 2, "edited")
    for bad in ([], {**wire.proposal_json(record), "nonce": "-1"}, {**wire.proposal_json(record), "status": "done"},
                {**wire.proposal_json(record), "data": "0xzz"}, {**wire.proposal_json(record), "operation": 2}):
        with pytest.raises(InvalidInput):
            wire.proposal_of(bad)


class FakeResponse:
    def __init__(self, status, body=None, headers=None, chunks=None):
        self.status_code, self.headers = status, headers or {}
        self.content = json.dumps(body).encode() if body is not None else b""
        self._body = body
        self.text = self.content.decode()
        self.chunks = chunks  # an iterator of byte chunks (a streamed answer), else `content` at once
        self.closed = False

    def json(self):
        return self._body

    def iter_content(self, size):
        return self.chunks if self.chunks is not None else iter([self.content] if self.content else [])

    def close(self):
        self.closed = True


class FakeSession:
    def __init__(self, answers):
        self.answers, self.sent, self.headers = list(answers), [], {}

    def request(self, method, url, **kwargs):
        self.sent.append((method, url))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self):
        pass


def test_the_client_reads_a_capped_answer_and_follows_links_only_to_its_own_server():
    """A hostile service: an endless answer is cut at MAX_RESPONSE (streamed, never held whole), and a
    page's `next` naming another place (a relative `@host` one would turn the base URL's host into
    userinfo) is refused in one line, nothing sent there and so no token either."""
    import itertools

    from treasury.remote.http import MAX_RESPONSE, HttpClient, ServerError
    from treasury.remote.safe_api import SafeServiceApi

    served = itertools.count()
    endless = (bytes(1 << 20) for _ in served)  # 1 MiB chunks without end
    big = FakeResponse(200, chunks=endless)
    client = HttpClient("http://server.test", "tok", session=FakeSession([big]), sleep=lambda _: None)
    with pytest.raises(ServerError, match=r"more than 16777216 bytes") as raised:
        client.get("/api/v2/safes/x/multisig-transactions/")
    assert "\n" not in str(raised.value) and big.closed and next(served) <= MAX_RESPONSE // (1 << 20) + 2
    declared = FakeResponse(200, {"results": []}, headers={"Content-Length": str(MAX_RESPONSE + 1)})
    with pytest.raises(ServerError, match="more than the 16777216"):
        HttpClient("http://server.test", session=FakeSession([declared])).get("/a/")

    for link in ("@evil.test/api/x", "http://evil.test/api/x?offset=100", "https://server.test/api/x",
                 "http://server.test:8080/api/x", "//evil.test/api/x", "http://tok@server.test/api/x", "/api/x?offset=1"):
        session = FakeSession([])
        with pytest.raises(ServerError, match="handed out a link to another place") as raised:
            HttpClient("http://server.test", "tok", session=session).get_url(link)
        assert session.sent == [] and "\n" not in str(raised.value) and "tok" not in str(raised.value).replace(link, "")

    page = {"results": [{"n": 1}], "next": "http://SERVER.test:80/base/api/v2/safes/x/multisig-transactions/?offset=1"}
    session = FakeSession([FakeResponse(200, page), FakeResponse(200, {"results": [{"n": 2}], "next": "@evil.test/p"})])
    api = SafeServiceApi(HttpClient("http://server.test/base", "tok", session=session))
    items = api.transactions("x")
    assert [next(items), next(items)] == [{"n": 1}, {"n": 2}]
    with pytest.raises(ServerError, match="another place"):
        next(items)
    assert [url for _, url in session.sent] == ["http://server.test/base/api/v2/safes/x/multisig-transactions/",
                                                 "http://server.test/base/api/v2/safes/x/multisig-transactions/?offset=1"]


def test_the_client_retries_only_what_is_safe_to_repeat_and_errors_name_the_server():
    from treasury.remote.http import HttpClient, NotFound, ServerError

    waits: list[float] = []
    session = FakeSession([requests.ConnectionError("refused"), FakeResponse(503, {"detail": "busy"}),
                           FakeResponse(429, {"detail": "slow down"}, {"Retry-After": "2"}), FakeResponse(200, {"ok": 1})])
    client = HttpClient("http://server.test", "tok", session=session, sleep=waits.append)
    assert client.get("/api/x/") == {"ok": 1} and len(session.sent) == 4 and waits[-1] == 2.0
    assert session.headers["Authorization"] == "Bearer tok" and "tok" not in repr(client)

    once = HttpClient("http://server.test", session=FakeSession([FakeResponse(503, {"detail": "busy"})]), sleep=waits.append)
    with pytest.raises(ServerError, match=r"server http://server\.test refused POST /api/y/: 503 busy"):
        once.post("/api/y/", {})  # not idempotent: sent once
    idempotent = HttpClient("http://server.test", session=FakeSession([FakeResponse(502), FakeResponse(201, {"a": 1})]),
                            sleep=waits.append)
    assert idempotent.post("/api/z/", {}, idempotent=True) == {"a": 1}

    errors = HttpClient("http://server.test", session=FakeSession([FakeResponse(400, {"signature": ["not an owner"]}),
                                                                  FakeResponse(404, {"detail": "Not found."})]))
    with pytest.raises(ServerError, match="400 signature: not an owner"):
        errors.get("/a/")
    with pytest.raises(NotFound, match=r"404 Not found\."):
        errors.get("/b/")
    down = HttpClient("http://server.test", attempts=2, sleep=waits.append,
                      session=FakeSession([requests.ConnectionError("x"), requests.ConnectionError("Connection refused")]))
    with pytest.raises(ServerError, match=r"server http://server\.test did not answer GET /c/: connection refused"):
        down.get("/c/")
