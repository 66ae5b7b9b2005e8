"""The server core: about and safes, Safe-style errors, read token, body cap, write limits, TLS rules.

Each test serves the session's anvil through `running_server` (uvicorn in a thread, a port bound
before it starts) and talks to it with `requests`, as any client would. Time in rate-limit tests is
a counter the test steps, never the wall clock.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from fastapi import APIRouter, Request
from pydantic import BaseModel
from server_helpers import running_server, serve_process

from treasury.addresses import ZERO_ADDRESS
from treasury.server.context import actor_of

TREASURY = Path(sys.executable).parent / "treasury"
TOKEN = "s3cret-read-token"


class Note(BaseModel):
    text: str
    count: int


def probe_router() -> APIRouter:
    """Endpoints of the test's own: a write with a typed body, a failure, the audit actor."""
    router = APIRouter()

    @router.post("/api/test/notes/")
    def add_note(note: Note, request: Request) -> dict:
        return {"actor": actor_of(request, "0xAbc"), "text": note.text}

    @router.get("/api/test/boom/")
    def boom() -> dict:
        raise RuntimeError("a bug with a secret path /etc/x")

    return router


@pytest.fixture
def safe(make_safe, owners):
    return make_safe(owners, 2, salt_nonce=77_001)


@pytest.fixture
def serve(tmp_path):
    """`serve(**settings)`: running_server over a fresh SQLite store, with the probe endpoints."""

    def start(**settings):
        return running_server(tmp_path / "server.db", routers=[probe_router()], **settings)

    return start


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_about_and_safe_info_have_the_services_shapes(serve, safe, chain):
    from ape_safe.client.types import SafeDetails

    with serve() as url:
        about = requests.get(f"{url}/api/v1/about/", timeout=10)
        info = requests.get(f"{url}/api/v1/safes/{safe.address}/", timeout=10)
        unslashed = requests.get(f"{url}/api/v1/safes/{safe.address}", timeout=10)  # ape-safe's spelling
    assert about.status_code == 200
    assert {"name", "version", "api_version", "secure", "settings"} <= set(about.json())
    assert about.json()["treasury"]["chainId"] == chain.chain_id and about.json()["secure"] is False
    assert info.status_code == 200, info.text
    body = info.json()
    assert body == {"address": safe.address, "nonce": "0", "threshold": 2, "owners": list(safe.owners),
                    "masterCopy": safe.singleton, "modules": [], "fallbackHandler": safe.fallback_handler,
                    "guard": ZERO_ADDRESS, "version": "1.4.1"}
    assert unslashed.json() == body
    details = SafeDetails.model_validate(body)  # what ape-safe's client parses
    assert details.nonce == 0 and details.threshold == 2


def test_path_addresses_must_be_checksummed_and_be_safes(serve, safe, outsider):
    index = next(i for i, c in enumerate(safe.address) if c.isalpha() and i > 1)
    bad = safe.address[:index] + safe.address[index].swapcase() + safe.address[index + 1:]  # one letter's case
    with serve() as url:
        for address in (bad, safe.address.lower(), "0x1234", "0x" + "g" * 40):
            answer = requests.get(f"{url}/api/v1/safes/{address}/", timeout=10)
            assert answer.status_code == 422, (address, answer.text)
            assert answer.json() == {"code": 1, "message": "Checksum address validation failed", "arguments": [address]}
        for not_a_safe in (outsider.address, safe.singleton):  # no code; a contract with no owners
            answer = requests.get(f"{url}/api/v1/safes/{not_a_safe}/", timeout=10)
            assert answer.status_code == 404 and answer.json() == {"detail": "Not found."}


def test_reads_need_the_bearer_token_when_one_is_set_and_writes_do_not(serve, safe):
    with serve(read_token=TOKEN) as url:
        path = f"{url}/api/v1/safes/{safe.address}/"
        missing = requests.get(path, timeout=10)
        wrong = requests.get(path, headers={"Authorization": "Bearer nope"}, timeout=10)
        basic = requests.get(path, headers={"Authorization": f"Basic {TOKEN}"}, timeout=10)
        right = requests.get(path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        write = requests.post(f"{url}/api/test/notes/", json={"text": "hi", "count": 1}, timeout=10)
    assert missing.status_code == 401 and missing.json() == {"detail": "Authentication credentials were not provided."}
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert wrong.status_code == 401 and basic.status_code == 401 and wrong.json() == {"detail": "Invalid token."}
    assert right.status_code == 200 and right.json()["address"] == safe.address
    assert write.status_code == 200 and write.json()["actor"] == "server:0xAbc from 127.0.0.1"
    assert TOKEN not in missing.text + wrong.text


def test_bodies_over_the_limit_are_refused_before_parsing(serve):
    with serve(max_body=1024) as url:
        fits = requests.post(f"{url}/api/test/notes/", json={"text": "x" * 900, "count": 1}, timeout=10)
        declared = requests.post(f"{url}/api/test/notes/", json={"text": "x" * 2000, "count": 1}, timeout=10)
        chunked = requests.post(f"{url}/api/test/notes/", data=(b"x" * 512 for _ in range(4)),
                                headers={"Content-Type": "application/json"}, timeout=10)
    assert fits.status_code == 200
    assert "Transfer-Encoding" not in declared.request.headers and chunked.request.headers["Transfer-Encoding"] == "chunked"
    for answer in (declared, chunked):
        assert answer.status_code == 413 and answer.json() == {"detail": "Request body is larger than 1024 bytes."}


def test_writes_are_rate_limited_per_client_with_retry_after(serve):
    clock = Clock()
    with serve(write_rate=30, write_burst=2, clock=clock) as url:
        post = lambda: requests.post(f"{url}/api/test/notes/", json={"text": "a", "count": 1}, timeout=10)  # noqa: E731
        first, second, third = post(), post(), post()
        reads = [requests.get(f"{url}/api/v1/about/", timeout=10).status_code for _ in range(5)]
        clock.now += 1.0  # half a write's worth: still waiting
        fourth = post()
        clock.now += 1.0  # 30 a minute: one write every 2 s
        fifth = post()
    assert (first.status_code, second.status_code) == (200, 200)
    assert third.status_code == 429 and third.headers["Retry-After"] == "2"
    assert third.json() == {"detail": "Request was throttled. Expected available in 2 seconds."}
    assert reads == [200] * 5  # reads are not throttled
    assert fourth.status_code == 429 and fourth.headers["Retry-After"] == "1"
    assert fifth.status_code == 200


def test_malformed_and_invalid_bodies_get_the_services_error_style(serve):
    with serve() as url:
        garbage = requests.post(f"{url}/api/test/notes/", data=b"{not json", headers={"Content-Type": "application/json"}, timeout=10)
        wrong_type = requests.post(f"{url}/api/test/notes/", json={"text": "a", "count": "many"}, timeout=10)
        missing = requests.post(f"{url}/api/test/notes/", json={"text": "a"}, timeout=10)
        unknown = requests.get(f"{url}/api/v1/nothing-here/", timeout=10)
        boom = requests.get(f"{url}/api/test/boom/", timeout=10)
    assert garbage.status_code == 400 and garbage.json()["detail"].startswith("JSON parse error")
    assert wrong_type.status_code == 400 and list(wrong_type.json()) == ["count"]
    assert missing.status_code == 400 and list(missing.json()) == ["count"]
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Not found."}
    assert boom.status_code == 500 and boom.json() == {"detail": "Internal server error"}


def test_malformed_proposal_stores_nothing(serve, safe, tmp_path):
    from treasury.store import Store

    with serve() as url:
        answer = requests.post(f"{url}/api/v2/safes/{safe.address}/multisig-transactions/", data=b'{"to": ',
                               headers={"Content-Type": "application/json"}, timeout=10)
    assert answer.status_code == 400, answer.text
    with Store.open(tmp_path / "server.db") as store:
        assert store.list_proposals() == [] and store.audit_entries() == []


def test_behind_tls_every_request_must_have_come_over_https(serve, safe):
    with serve(behind_tls=True) as url:
        plain = requests.get(f"{url}/api/v1/about/", timeout=10)
        http = requests.get(f"{url}/api/v1/about/", headers={"X-Forwarded-Proto": "http"}, timeout=10)
        https = requests.get(f"{url}/api/v1/about/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}, timeout=10)
        write = requests.post(f"{url}/api/test/notes/", json={"text": "a", "count": 1},
                              headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.0.0.1, 203.0.113.9"}, timeout=10)
    assert plain.status_code == 403 and http.status_code == 403 and "HTTPS is required" in plain.json()["detail"]
    assert https.status_code == 200 and https.json()["secure"] is True
    assert write.json()["actor"] == "server:0xAbc from 203.0.113.9"  # the proxy's entry, not the client's claim


def test_behind_tls_only_the_trusted_proxies_headers_count(serve):
    """A peer that is not a --trusted-proxy cannot claim HTTPS nor another address: refused (403)."""
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    with serve(behind_tls=True, trusted_proxies=("10.9.9.9", "2001:db8::/64")) as url:  # this test's peer is 127.0.0.1
        read = requests.get(f"{url}/api/v1/about/", headers=https, timeout=10)
        write = requests.post(f"{url}/api/test/notes/", json={"text": "a", "count": 1}, headers=https, timeout=10)
    assert read.status_code == 403 and write.status_code == 403 and "trusted TLS proxy" in read.json()["detail"]
    with serve(trusted_proxies=("10.9.9.9",)) as url:  # not behind TLS: the header is never taken
        write = requests.post(f"{url}/api/test/notes/", json={"text": "a", "count": 1}, headers=https, timeout=10)
    assert write.json()["actor"] == "server:0xAbc from 127.0.0.1"


def test_trusted_proxies_on_the_command_line_and_ipv6_rate_buckets():
    from treasury.cli.serve import _settings
    from treasury.errors import InvalidInput
    from treasury.server.context import client_host
    from treasury.server.ratelimit import client_key

    base = {"host": "127.0.0.1", "port": 0, "read_token_file": None, "tls_cert": None, "tls_key": None, "behind_tls": True,
            "insecure_remote": False, "refuse_denied": False, "write_rate": 60.0, "max_body": 1024}
    assert _settings(**base).trusted_proxies == ("127.0.0.1", "::1")
    settings = _settings(**base, trusted_proxy=("10.0.0.2", "fd00::/8"))
    assert settings.trusted_proxies == ("10.0.0.2", "fd00::/8")
    assert settings.trusts("10.0.0.2") and settings.trusts("fd00::7") and not settings.trusts("127.0.0.1")
    with pytest.raises(InvalidInput, match="not an IP"):
        _settings(**base, trusted_proxy=("proxy.example",))
    forwarded = [(b"x-forwarded-for", b"198.51.100.7")]
    assert client_host({"client": ("10.0.0.2", 1), "headers": forwarded}, settings) == "198.51.100.7"
    assert client_host({"client": ("10.0.0.3", 1), "headers": forwarded}, settings) == "10.0.0.3"
    # One IPv6 host holds a /64: one bucket for all of it; IPv4 (also mapped into IPv6) per address.
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff:ffff:ffff:fffe") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1" and client_key("192.0.2.1") != client_key("192.0.2.2")


def test_the_owner_cache_rereads_after_its_ttl_or_when_asked(safe, chain):
    from treasury.server.chain_view import ApeChainView

    clock = Clock()
    view = ApeChainView(ttl=5.0, clock=clock)
    reads: list[str] = []
    read = view.read
    view.read = lambda address: reads.append(address) or read(address)  # type: ignore[method-assign]
    first = view.safe(safe.address)
    assert view.safe(safe.address) is first
    # A flood of fresh reads (proposals, GET safes/) within FRESH_WITHIN of a read gets that read.
    assert all(view.safe(safe.address, fresh=True) is first for _ in range(100)) and len(reads) == 1
    clock.now += 0.5
    assert view.safe(safe.address, fresh=True) is first
    chain.mine()  # a new block (an execution, an owner added) is always seen
    assert view.safe(safe.address, fresh=True) is not first and len(reads) == 2
    first = view.safe(safe.address)
    clock.now += 1.0
    assert view.safe(safe.address, fresh=True) is not first and len(reads) == 3  # never older than FRESH_WITHIN
    first = view.safe(safe.address)
    cached = view.safe(safe.address)
    clock.now += 5.0
    assert view.safe(safe.address) is not cached and view.safe(safe.address) == first
    view.invalidate(safe.address)
    assert view.safe(safe.address) == first


@pytest.mark.parametrize("flags", [["--host", "0.0.0.0"], ["--host", "192.0.2.10", "--read-token-file", "/nonexistent"]])
def test_serve_refuses_plain_http_beyond_loopback(flags, chain, tmp_path):
    done = subprocess.run([str(TREASURY), "serve", *flags, "--store", str(tmp_path / "s.db"), "--network", chain.provider.uri],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert "--tls-cert" in lines[0] or "token file" in lines[0]
    assert not (tmp_path / "s.db").exists()  # refused before anything was opened


def test_serve_process_starts_prints_one_line_and_hides_the_token(safe, tmp_path):
    with serve_process(tmp_path / "s.db", cwd=tmp_path, read_token=TOKEN) as served:
        open_read = requests.get(f"{served.url}/api/v1/safes/{safe.address}/", timeout=10)
        read = requests.get(f"{served.url}/api/v1/safes/{safe.address}/", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert open_read.status_code == 401 and read.json()["owners"] == list(safe.owners)
    text = "".join(served.output)
    assert TOKEN not in text and f"listening on {served.url} (store: sqlite" in text


def test_exposure_rules_and_the_token_never_shown():
    from treasury.errors import InvalidInput
    from treasury.server.settings import ServerSettings

    for host in ("127.0.0.1", "127.0.0.9", "::1", "[::1]", "localhost"):
        assert ServerSettings(host=host).check_exposure() == []
    for host in ("0.0.0.0", "192.0.2.10", "::", "example.org"):
        with pytest.raises(InvalidInput, match="refusing to listen"):
            ServerSettings(host=host).check_exposure()
    warned = ServerSettings(host="0.0.0.0", insecure_remote=True).check_exposure()
    assert len(warned) == 1 and "read token" in warned[0]
    assert ServerSettings(host="0.0.0.0", behind_tls=True, read_token=TOKEN).check_exposure() == []
    assert TOKEN not in repr(ServerSettings(read_token=TOKEN))
    with pytest.raises(InvalidInput, match="go together"):
        ServerSettings(tls_cert=Path("cert.pem"))


def test_without_a_read_token_any_authorization_header_is_ignored(serve):
    with serve() as url:  # ape-safe always sends its gateway key, "Bearer None" when unset
        assert requests.get(f"{url}/api/v1/about", headers={"Authorization": "Bearer None"}, timeout=10).status_code == 200


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls_with_a_certificate_of_our_own(serve, safe, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    with serve(tls_cert=cert, tls_key=key) as url:
        assert url.startswith("https://")
        answer = requests.get(f"{url}/api/v1/safes/{safe.address}/", verify=str(cert), timeout=10)
        about = requests.get(f"{url}/api/v1/about/", verify=str(cert), timeout=10)
        with pytest.raises(requests.ConnectionError):
            requests.get(url.replace("https://", "http://") + "/api/v1/about/", timeout=10)
    assert answer.status_code == 200 and about.json()["secure"] is True


class DownChain:
    """A ChainView whose node never answers."""

    chain_id = 1

    def safe(self, address, *, fresh=False):
        from treasury.chain.rpc import RPCUnavailable

        raise RPCUnavailable("eth_call", "https://node.example/v3/APIKEY", "timed out", 3, 1.5)

    def invalidate(self, address):
        pass


def test_a_node_that_does_not_answer_is_a_503_without_its_url(tmp_path):
    safe = "0x" + "11" * 20
    with running_server(tmp_path / "s.db", chain=DownChain()) as url:
        answer = requests.get(f"{url}/api/v1/safes/{safe}/", timeout=10)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert "APIKEY" not in answer.text and answer.json() == {"detail": "The chain's node is unavailable; try again later."}
