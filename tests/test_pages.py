"""The HTML pages of `treasury serve` (treasury.server.pages): the Safe, its proposals, one proposal.

Each page is requested over HTTP from the server running on the session's anvil, for a guarded
treasury with proposals, and checked for what a signer must see: amounts in token units, the
verdict in words, the three hashes equal to the library's, highlights in words, the delay queue's
countdown from the chain's clock. Every page carries the exact Content-Security-Policy; markup in
stored data (a proposal's title) comes back as text, never as an element.
"""

from __future__ import annotations

import re
import sqlite3

import pytest
import requests
from builders import tusd_policy
from server_helpers import running_server

from treasury.server.pages.routes import CSP
from treasury.server.pages.views import countdown

HOSTILE = "<img src=x onerror=alert(1)>"
UNIT = 10**6


def policy_for(vendor: str) -> dict:
    return tusd_policy(vendor, amount="100000", delay_threshold="5000", cancel_threshold=1)


@pytest.fixture
def vendor(accounts):
    return accounts[6]


@pytest.fixture
def ops(make_treasury, vendor, owners):
    """A guarded treasury with a TUSD payment (signed by one owner, title with markup in it)."""
    treasury, token = make_treasury(policy_for(vendor.address), salt_nonce=13_101)
    record = treasury.propose_transfer(vendor.address, "1,500 TUSD", title=f"pay the vendor {HOSTILE}")
    treasury.sign(record.id, owners[0])
    yield treasury, record
    treasury.store.close()


@pytest.fixture
def served(ops):
    treasury, record = ops
    with running_server(treasury.store, config_path=treasury.config_path, write_burst=1000) as url:
        yield treasury, record, url


def get(url: str, **kwargs) -> requests.Response:
    return requests.get(url, timeout=60, allow_redirects=False, **kwargs)


def assert_page_headers(response: requests.Response) -> None:
    assert response.headers["Content-Security-Policy"] == CSP
    assert CSP == ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
                   "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def assert_inert(html: str) -> None:
    """No element, inline script or inline style comes from data: only our own tags are there."""
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert " style=" not in html and "<style" not in html
    scripts = re.findall(r"<script([^>]*)>", html)
    assert all('type="application/json"' in attrs or attrs.strip() == 'src="/static/sign.js" defer' for attrs in scripts), scripts


def text(html: str) -> str:
    """The page's text, tags dropped and whitespace folded (for phrases split by markup)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_index_redirects_to_the_only_treasury(served):
    treasury, _record, url = served
    response = get(url + "/")
    assert response.status_code == 303
    assert response.headers["location"] == f"/safes/{treasury.safe}"


def test_safe_page(served, owners):
    treasury, _record, url = served
    response = get(f"{url}/safes/{treasury.safe}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert_page_headers(response)
    html = response.text
    for owner in treasury.owners():
        assert owner in html
    assert "2 of 3" in html
    assert f"{treasury.entry.guard} (installed)" in html
    assert "1,000,000 TUSD" in html  # the balance in token units
    assert "10 ETH" in html
    assert re.search(r'<meter min="0" max="100"[^>]* value="100"', html)  # nothing spent yet: the whole budget
    assert "100,000 TUSD per 1 d" in html
    assert "any 1 owner(s)" in html  # who can cancel
    assert '<link rel="stylesheet" href="/static/page.css">' in html
    assert "sign.js" not in html  # the signing script is on the proposal page only


def test_proposal_list_escapes_titles(served):
    treasury, record, url = served
    response = get(f"{url}/safes/{treasury.safe}/proposals?status=pending")
    assert response.status_code == 200
    assert_page_headers(response)
    assert f'href="/proposals/{record.id}"' in response.text
    assert_inert(response.text)
    assert get(f"{url}/safes/{treasury.safe}/proposals?status=executed").text.count("/proposals/") == 0
    refused = get(f"{url}/safes/{treasury.safe}/proposals?status=<b>")
    assert refused.status_code == 400 and "<b>" not in refused.text


def test_proposal_page(served, owners):
    treasury, record, url = served
    response = get(f"{url}/proposals/{record.id}")
    assert response.status_code == 200, response.text
    assert_page_headers(response)
    html = response.text
    assert_inert(html)
    words = text(html)
    assert "transfer(" in html and "1,500 TUSD" in html  # the decoded amount in token units
    assert "allow — allowed: the guard lets it execute now" in words  # the verdict in words
    decoded = treasury.decode(record.id)
    hashes = treasury.records.hashes(treasury.get(record.id))
    assert (decoded.domain_hash, decoded.message_hash, decoded.safe_tx_hash) == (
        hashes.domain_hash, hashes.message_hash, hashes.safe_tx_hash)
    assert f'<code class="hash" id="domain-hash">{hashes.domain_hash}</code>' in html
    assert f'<code class="hash" id="message-hash">{hashes.message_hash}</code>' in html
    assert f'<code class="hash" id="safe-tx-hash">{hashes.safe_tx_hash}</code>' in html
    # the DOM contract of the signing panel (sign.js)
    assert (f'<section id="sign" data-safe="{treasury.safe}" data-chain-id="{treasury.chain_id}" '
            f'data-safe-tx-hash="{record.safe_tx_hash}" data-proposal-id="{record.id}">') in html
    assert '<script src="/static/sign.js" defer></script>' in html
    for element in ('id="owners"', 'id="safe-tx-typed-data"', 'id="connect"', 'id="sign-safe-tx"', 'id="sign-status"',
                    'id="signatures"', 'id="missing"'):
        assert element in html, element
    assert f'<li data-owner="{owners[0].address}">' in html
    assert re.search(r'id="missing">1<', html)
    assert "Sign: 1 more SafeTx signature(s) needed (1 of 2)" in words  # what happens next
    assert "token TUSD" in html  # the address book's name for the call's target
    treasury.sign(record.id, owners[1])
    treasury.execute(record.id, owners[0])
    html = get(f"{url}/proposals/{record.id}").text
    assert 'id="proposal-status">executed<' in html
    assert "This proposal is executed: nothing more to sign or do." in html
    assert 'id="sign"' not in html and 'id="safe-tx-typed-data"' not in html  # nothing to sign any more
    assert re.search(r'id="missing">0<', html)


def test_highlights_and_delay_queue(make_treasury, vendor, owners, accounts, chain):
    """Safe administration and a target off the allowlist are marked in words; a delayed payment,
    once scheduled, is in the queue with a countdown from the chain's clock."""
    treasury, _token = make_treasury(policy_for(vendor.address), salt_nonce=13_102)
    try:
        admin = treasury.propose_threshold(1, title="lower the threshold")
        stranger = treasury.propose_transfer(accounts[7].address, "1 ETH", title="pay a stranger")
        big = treasury.propose_transfer(vendor.address, "6,000 TUSD", title="a big payment")
        with running_server(treasury.store, config_path=treasury.config_path, write_burst=1000) as url:
            html = get(f"{url}/proposals/{admin.id}").text
            assert re.search(r'<tr class="call [^"]*safe-admin', html)
            assert '<span class="badge">Safe administration</span>' in html
            html = get(f"{url}/proposals/{stranger.id}").text
            assert re.search(r'<tr class="call [^"]*off-allowlist', html)
            assert '<span class="badge">target not on the allowlist</span>' in html
            html = get(f"{url}/proposals/{big.id}").text
            assert "must wait in the delay queue first" in text(html)
            assert 'id="schedule-typed-data"' in html and 'id="sign-schedule"' in html
            assert '<ul class="plain" id="schedule-signers"></ul>' in html  # rendered empty: sign.js fills it
            for owner in owners[:2]:
                treasury.sign(big.id, owner)
            treasury.schedule(big.id, sender=owners[0])
            html = get(f"{url}/safes/{treasury.safe}").text
            assert f'<a href="/proposals/{big.id}">{big.id}</a>' in html
            assert re.search(r'class="countdown">due in (1 d 23 h|2 d)<', html), html  # zero hours are not said
            html = get(f"{url}/proposals/{big.id}").text
            assert "Wait until" in html and 'id="cancel-typed-data"' in html and 'id="sign-cancel"' in html
            assert "can be cancelled until then by any 1 owner(s)" in html
    finally:
        treasury.store.close()


def test_unknown_pages_are_404_pages(served):
    treasury, _record, url = served
    for path in ("/proposals/no-such-proposal", f"/safes/{'0x' + '12' * 20}", "/safes/not-an-address"):
        response = get(url + path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert_page_headers(response)


def test_static_files(served):
    _treasury, _record, url = served
    response = get(f"{url}/static/page.css")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/css")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_read_token_guards_pages(ops):
    treasury, record = ops
    with running_server(treasury.store, config_path=treasury.config_path, read_token="t0ken") as url:
        for path in (f"/safes/{treasury.safe}", f"/proposals/{record.id}", f"/safes/{treasury.safe}/proposals"):
            refused = get(url + path)
            assert refused.status_code == 401, path
            assert record.safe_tx_hash not in refused.text
            assert get(url + path + "?token=t0ken").status_code == 401  # header only: a token in the URL is refused
            assert get(url + path, headers={"Authorization": "Bearer t0ken"}).status_code == 200, path


def test_countdown_words():
    assert countdown(1_000 + 86_400 + 23 * 3_600 + 59, 1_000) == "due in 2 d"  # rounded up: never sooner than it is
    assert countdown(1_000 + 86_400 + 23 * 3_600, 1_000) == "due in 1 d 23 h"
    assert countdown(1_000 + 3 * 3_600 + 5 * 60, 1_000) == "due in 3 h 5 min"
    assert countdown(1_000 + 30, 1_000) == "due in 30 s"
    assert countdown(1_000, 1_000) == "due now"


def test_index_without_configured_treasuries(tmp_path):
    with running_server(tmp_path / "bare.db") as url:
        response = get(url + "/")
        assert response.status_code == 200
        assert_page_headers(response)
        assert "No treasury is configured for this chain" in response.text
        assert get(f"{url}/safes/{'0x' + '12' * 20}").status_code == 404


def test_a_tampered_proposal_gets_an_error_page_with_the_page_headers(served):
    """A row edited behind the store's back is a 409 page saying so (not a bare 500), CSP included;
    a request that fails outright still carries the page headers."""
    treasury, record, url = served
    with sqlite3.connect(treasury.store.url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE proposals SET title = 'edited' WHERE id = ?", (record.id,))
    response = get(f"{url}/proposals/{record.id}")
    assert response.status_code == 409
    assert_page_headers(response)
    assert f"proposal {record.id} was modified outside" in text(response.text)
