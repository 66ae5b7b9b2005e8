"""The drill page of `treasury serve`: owners prove control of their keys from a browser wallet.

Headless Chromium with the test wallet of tests/browser/drive.mjs (an injected EIP-1193 provider
that forwards to anvil, which signs `eth_signTypedData_v4` for its own dev accounts): the owner
clicks "Sign drill challenge", the page posts the signature with via "browser", and the server
verifies it against the Safe's owners before keeping it. A stranger, a rejection in the wallet and
an owner the drill wants on a hardware device are told on the page, and nothing is stored. The
server's own rendering (no browser) is checked too: hashes, escaping, an expired drill, a 404.
"""

from __future__ import annotations

import html
import json

import pytest
import requests
from server_helpers import running_server
from test_browser import NOT_SIGNED, Browser, posts, wallet_methods
from test_drill_server import UNTHROTTLED, Clock, drill_body

from treasury.ceremony.challenge import DrillChallenge

HOSTILE_PURPOSE = "<img src=x onerror=window.__pwned=1> drill"


@pytest.fixture
def browser(chain, tmp_path) -> Browser:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    return Browser(chain.provider.uri, shots)


def start(url: str, ceremony, chain, signer, **options) -> dict:
    answer = requests.post(f"{url}/api/treasury/v1/safes/{ceremony.treasury.safe}/drills/",
                           json=drill_body(ceremony, chain, signer, **options), timeout=60)
    assert answer.status_code == 201, answer.text
    return answer.json()


def proven_row(address: str) -> str:
    return f'#proofs tr.proven[data-owner="{address}" i]'


def stored(ceremony, drill_id: str) -> dict[str, str]:
    treasury = ceremony.treasury
    return {p.owner: p.via for p in treasury.store.owner_proofs(treasury.chain_id, treasury.safe, drill_id)}


def test_two_owners_prove_control_from_the_page(ceremony, chain, browser):
    alice, bob, _carol, dave = ceremony.eoas
    treasury = ceremony.treasury
    with running_server(treasury.store, config_path=treasury.config_path, clock=Clock(), **UNTHROTTLED) as url:
        drill = start(url, ceremony, chain, alice, label="page")
        page = f"{url}/drills/{drill['id']}"
        result = browser.run(bob.address, [
            {"goto": page},
            {"expect": {"selector": "#drill-status", "text": "open"}},
            {"expect": {"selector": "#drill-digest", "text": drill["digest"]}},
            {"expect": {"selector": "#proven-count", "text": "0"}},
            {"connect": True},
            {"expect": {"selector": "#sign-status", "class": "ok", "text": bob.address}},
            {"sign": "drill"},
            {"expect": {"selector": "#sign-status", "class": "ok", "text": "proof of control is stored"}},
            {"expect": {"selector": proven_row(bob.address), "count": 1}},
            {"expect": {"selector": "#proven-count", "text": "1"}},
            {"account": dave.address},  # another owner in the same browser
            {"sign": "drill"},
            {"expect": {"selector": "#sign-status", "class": "ok", "text": "stored"}},
            {"expect": {"selector": "#proven-count", "text": "2"}},
            {"reload": True},  # what the server renders agrees with what the script showed
            {"expect": {"selector": "#proofs tr.proven", "count": 2}},
            {"expect": {"selector": proven_row(dave.address), "text": "browser"}},
            {"screenshot": str(browser.shots / "drill.png")},
        ])
    assert result["steps"][0]["result"]["headers"]["content-security-policy"].startswith("default-src 'none'")
    assert wallet_methods(result).count(NOT_SIGNED) == 2
    assert [p["status"] for p in posts(result)] == [201, 201]
    # The wallet was handed the stored challenge, exactly.
    signed = [w["params"] for w in result["wallet"] if w["method"] == NOT_SIGNED]
    assert [json.loads(p[1]) for p in signed] == [drill["typedData"]] * 2
    assert DrillChallenge.from_json(json.loads(signed[0][1])).digest().hex() == drill["digest"][2:]
    assert stored(ceremony, drill["id"]) == {bob.address: "browser", dave.address: "browser"}
    assert (browser.shots / "drill.png").stat().st_size > 1000


def test_a_stranger_a_rejection_and_a_device_rule_store_nothing(ceremony, chain, browser, outsider):
    alice, bob, carol, _dave = ceremony.eoas
    treasury = ceremony.treasury
    with running_server(treasury.store, config_path=treasury.config_path, clock=Clock(), **UNTHROTTLED) as url:
        drill = start(url, ceremony, chain, alice, label="refusals", require_device=(carol.address,))
        page = f"{url}/drills/{drill['id']}"
        stranger = browser.run(outsider.address, [
            {"goto": page},
            {"sign": "drill"},
            {"expect": {"selector": "#sign-status", "class": "error", "text": "not an owner"}},
        ])
        assert NOT_SIGNED not in wallet_methods(stranger) and posts(stranger) == []
        rejected = browser.run(bob.address, [
            {"goto": page},
            {"sign": "drill"},
            {"expect": {"selector": "#sign-status", "class": "error", "text": "You rejected the request in your wallet"}},
            {"expect": {"selector": "#proofs tr.proven", "count": 0}},
        ], wallet={"reject": [NOT_SIGNED]})
        assert posts(rejected) == []
        device = browser.run(carol.address, [
            {"goto": page},
            {"expect": {"selector": f'#proofs tr[data-owner="{carol.address}" i]', "text": "hardware device required"}},
            {"expect": {"selector": f'#proofs tr[data-owner="{carol.address}" i]', "text": "treasury drill sign"}},
            {"expect": {"selector": "#device-rule", "text": "hardware wallet"}},
            {"sign": "drill"},  # the page does not offer a browser proof the server would refuse
            {"expect": {"selector": "#sign-status", "class": "error", "text": "hardware wallet"}},
            {"expect": {"selector": "#sign-status", "class": "error", "text": f"treasury drill sign {drill['id']}"}},
            {"expect": {"selector": "#proofs tr.proven", "count": 0}},
        ])
        assert NOT_SIGNED not in wallet_methods(device) and posts(device) == []
    assert stored(ceremony, drill["id"]) == {}


def test_the_page_as_the_server_renders_it(ceremony, chain):
    alice = ceremony.eoas[0]
    treasury = ceremony.treasury
    clock = Clock()
    with running_server(treasury.store, config_path=treasury.config_path, clock=clock, **UNTHROTTLED) as url:
        drill = start(url, ceremony, chain, alice, label="rendered", purpose=HOSTILE_PURPOSE)
        answer = requests.get(f"{url}/drills/{drill['id']}", timeout=60)
        assert answer.status_code == 200 and answer.headers["content-security-policy"].startswith("default-src 'none'")
        text = answer.text
        assert html.escape(HOSTILE_PURPOSE, quote=False) in text and "<img src=x" not in text.replace("\\u003c", "")
        assert drill["digest"] in text and 'id="sign-drill"' in text and "/static/sign.js" in text
        for owner in (*[a.address for a in ceremony.eoas], ceremony.vault):
            assert f'data-owner="{owner}"' in text
        assert "contract owner" in text and "--owner-safe" in text  # the vault proves through its own owners
        listing = requests.get(f"{url}/safes/{treasury.safe}/drills", timeout=60)
        assert listing.status_code == 200 and f'href="/drills/{drill["id"]}"' in listing.text
        assert "0 of 5" in listing.text and html.escape(HOSTILE_PURPOSE, quote=False) in listing.text
        assert requests.get(f"{url}/safes/{ceremony.vault}/drills", timeout=60).status_code == 404
        clock.now = drill["expiresAt"] + 1
        expired = requests.get(f"{url}/drills/{drill['id']}", timeout=60).text
        assert 'id="sign-drill"' not in expired and "expired" in expired
        missing = requests.get(f"{url}/drills/drill-000000000000", timeout=60)
        assert missing.status_code == 404 and "no drill" in missing.text
        assert requests.get(f"{url}/drills/not-a-drill", timeout=60).status_code == 404


def test_the_safe_page_reads_owner_liveness_by_the_servers_clock(ceremony, chain):
    """One clock per server: the Safe page's liveness is as of the server's clock, like its drills."""
    from test_drill_server import NOW, typed_signature

    alice, bob = ceremony.eoas[:2]
    treasury = ceremony.treasury
    clock = Clock()
    with running_server(treasury.store, config_path=treasury.config_path, clock=clock, **UNTHROTTLED) as url:
        drill = start(url, ceremony, chain, alice, label="liveness clock")
        answer = requests.post(f"{url}/api/treasury/v1/drills/{drill['id']}/proofs/", timeout=60,
                               json={"signature": typed_signature(bob, drill["typedData"]), "via": "test"})
        assert answer.status_code == 201, answer.text
        clock.now = NOW + 1
        fresh = requests.get(f"{url}/safes/{treasury.safe}", timeout=60).text
        clock.now = NOW + 200 * 86_400  # past any liveness period
        late = requests.get(f"{url}/safes/{treasury.safe}", timeout=60).text
    assert 'id="owner-liveness"' in fresh and fresh.count('class="liveness live"') >= 1
    assert 'class="liveness live"' not in late and 'class="liveness lapsed"' in late
