"""The signing pages in a real browser: headless Chromium (npm's @sparticuz/chromium, driven by
playwright-core from tests/browser/drive.mjs) against `treasury serve` and the session's anvil.

The wallet is an EIP-1193 provider injected into the page; it forwards to anvil, which signs
`eth_signTypedData_v4` for its own unlocked dev accounts (the ape test accounts): every signature
comes from a real node. A test's refusals (wrong account, wrong chain, a rejection in the wallet, a
proposal executed meanwhile) must show on the page and store nothing.

Screenshots of every page go to the test's tmp_path; with TREASURY_WRITE_SCREENSHOTS=1 the proposal
page with two signatures collected is also written to docs/signing-page.png (for the README).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from server_helpers import running_server
from test_cli import Cli

from treasury.proposal import build

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "browser" / "drive.mjs"
DOCS_SCREENSHOT = ROOT / "docs" / "signing-page.png"
# Hostile strings a proposer or a token could bring: rendered as text, they must stay inert.
HOSTILE_SYMBOL = "<img src=x onerror=window.__pwned=1>"
HOSTILE_TITLE = "<img src=x onerror=window.__pwned=2> pay <b>now</b>"
NOT_SIGNED = "eth_signTypedData_v4"


class Browser:
    """Runs tests/browser/drive.mjs with a plan; the run's JSON result (see the driver's header)."""

    def __init__(self, rpc: str, shots: Path):
        node = shutil.which("node")
        assert node, "node is needed for the browser tests (make setup installs the npm packages)"
        self.node = node
        self.rpc = rpc
        self.shots = shots

    def plan(self, account: str, steps: list[dict], **options: Any) -> dict:
        return {"rpc": self.rpc, "account": account, "timeout": 60, "stepTimeout": 20, "steps": steps, **options}

    def run(self, account: str, steps: list[dict], **options: Any) -> dict:
        completed = subprocess.run([self.node, str(DRIVER)], input=json.dumps(self.plan(account, steps, **options)),
                                   capture_output=True, text=True, timeout=90, cwd=ROOT, check=False)
        return self._result(completed.stdout, completed.stderr)

    def run_with_pauses(self, account: str, steps: list[dict], on_pause: dict[str, Any], **options: Any) -> dict:
        """A run whose {"pause": label} steps call on_pause[label]() while the page stays open."""
        plan_file = self.shots / "plan.json"
        plan_file.write_text(json.dumps(self.plan(account, steps, **options)))
        errors = (self.shots / "driver-stderr.txt").open("w+")
        process = subprocess.Popen([self.node, str(DRIVER), str(plan_file)], cwd=ROOT, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=errors, text=True)
        assert process.stdin is not None and process.stdout is not None
        try:
            lines = []
            for line in process.stdout:
                lines.append(line)
                paused = json.loads(line).get("paused") if line.startswith('{"paused"') else None
                if paused is not None:
                    on_pause[paused]()
                    process.stdin.write("go\n")
                    process.stdin.flush()
            process.wait(timeout=90)
            errors.seek(0)
            stderr = errors.read()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            errors.close()
        return self._result("".join(lines), stderr)

    @staticmethod
    def _result(stdout: str, stderr: str) -> dict:
        lines = [line for line in stdout.splitlines() if line.strip()]
        assert lines, f"the driver printed nothing:\n{stderr[-4000:]}"
        result = json.loads(lines[-1])
        assert result["ok"], (f"browser run failed: {result['error']}\nstatus: {result['status']}\n"
                              f"console: {result['console']}\npage errors: {result['pageErrors']}\n"
                              f"wallet: {[(w['method'], w.get('outcome')) for w in result['wallet']]}\n{stderr[-2000:]}")
        assert result["pageErrors"] == [], result["pageErrors"]
        return result


# --- what a run shows -------------------------------------------------------------------------------


def signer_item(address: str) -> str:
    return f'#signatures li[data-owner="{address}" i]'


def wallet_methods(result: dict) -> list[str]:
    return [w["method"] for w in result["wallet"]]


def posts(result: dict) -> list[dict]:
    return [r for r in result["requests"] if r["method"] != "GET"]


def step_result(result: dict, key: str) -> Any:
    return next(s["result"] for s in result["steps"] if key in s["step"])


def stored_signers(treasury, proposal_id: str) -> set[str]:
    return {s.owner for s in treasury.store.signatures(proposal_id)}


def assert_nothing_sent(result: dict, treasury, proposal_id: str, *, signed: bool = False) -> None:
    """The page refused before the server stored anything (and, unless `signed`, before the wallet signed)."""
    if not signed:
        assert NOT_SIGNED not in wallet_methods(result), result["wallet"]
    assert posts(result) == [], posts(result)
    assert stored_signers(treasury, proposal_id) == set()


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def browser(chain, tmp_path) -> Browser:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    return Browser(chain.provider.uri, shots)


def policy_for(vendor: str, symbol: str = "TUSD") -> dict:
    return {"recipients": [vendor], "calls": [{"target": symbol, "function": "transfer(address,uint256)"}],
            "caps": [{"token": symbol, "amount": "10000", "period": "1d", "delay_threshold": "5000"}]}


@pytest.fixture
def pay_vendor(make_treasury, accounts):
    """`make(salt_nonce, threshold)`: a guarded treasury of owners 0-2 and a proposal to pay the vendor
    100 TUSD (allowed, no delay); returns (treasury, proposal)."""

    def make(salt_nonce: int, threshold: int = 2):
        treasury, _token = make_treasury(policy_for(accounts[4].address), threshold=threshold, salt_nonce=salt_nonce)
        return treasury, treasury.propose_transfer(accounts[4].address, "100 TUSD", title="Pay the vendor")

    return make


# --- the tests --------------------------------------------------------------------------------------


def test_two_owners_sign_in_the_browser_a_third_with_the_cli_and_it_executes(pay_vendor, browser, owners, chain):
    treasury, proposal = pay_vendor(salt_nonce=1301, threshold=3)
    safe, pid = treasury.safe, proposal.id
    shots = browser.shots
    with running_server(treasury.store, config_path=treasury.config_path) as url:
        first = browser.run(owners[0].address, [
            {"goto": f"{url}/"},
            {"expect": {"selector": "body", "text": safe}},
            {"screenshot": str(shots / "safe.png")},
            {"goto": f"{url}/safes/{safe}/proposals?status=pending"},
            {"expect": {"selector": "body", "text": "Pay the vendor"}},
            {"screenshot": str(shots / "proposals.png")},
            {"goto": f"{url}/proposals/{pid}"},
            {"expect": {"selector": "#safe-tx-hash", "text": proposal.safe_tx_hash}},
            {"expect": {"selector": "#proposal-status", "text": "pending"}},
            {"connect": True},
            {"expect": {"selector": "#sign-status", "class": "ok", "text": owners[0].address}},
            {"sign": "safe-tx"},
            {"expect": {"selector": "#sign-status", "class": "ok", "text": "stored"}},
            {"expect": {"selector": signer_item(owners[0].address), "count": 1}},
            {"expect": {"selector": "#missing", "text": "2"}},
        ])
        assert step_result(first, "goto")["headers"]["content-security-policy"].startswith("default-src 'none'")
        assert stored_signers(treasury, pid) == {owners[0].address}

        docs = os.environ.get("TREASURY_WRITE_SCREENSHOTS") == "1"
        second = browser.run(owners[1].address, [
            {"goto": f"{url}/proposals/{pid}"},
            {"expect": {"selector": signer_item(owners[0].address), "count": 1}},
            {"sign": "safe-tx"},
            {"expect": {"selector": "#sign-status", "class": "ok", "text": "stored"}},
            {"expect": {"selector": "#signatures li", "count": 2}},
            {"expect": {"selector": "#missing", "text": "1"}},
            {"screenshot": str(shots / "proposal-signed.png")},
            {"reload": True},  # what the server renders agrees with what the script showed
            {"expect": {"selector": "#signatures li", "count": 2}},
            {"expect": {"selector": "#missing", "text": "1"}},
            {"screenshot": str(shots / "proposal.png")},
            *([{"screenshot": str(DOCS_SCREENSHOT), "fullPage": True}] if docs else []),
        ])
        assert wallet_methods(second).count(NOT_SIGNED) == 1 and len(posts(second)) == 1
        assert stored_signers(treasury, pid) == {owners[0].address, owners[1].address}

        # The third owner signs from the terminal; the proposal then executes.
        cli = Cli(treasury.config_path, chain)
        assert cli.json("sign", pid, "--account", "TEST::2", "--yes")["signer"] == owners[2].address
        cli.json("execute", pid, "--account", "TEST::9", "--yes", "--skip-rehearsal")
        assert treasury.store.get_proposal(pid).status == "executed"

        browser.run(owners[0].address, [
            {"goto": f"{url}/proposals/{pid}"},
            {"expect": {"selector": "#proposal-status", "text": "executed"}},
            {"expect": {"selector": "#sign", "count": 0}},  # nothing left to sign
            {"expect": {"selector": "#signatures li", "count": 3}},
            {"screenshot": str(shots / "executed.png")},
        ])
    for name in ("safe", "proposals", "proposal-signed", "proposal", "executed"):
        assert (shots / f"{name}.png").stat().st_size > 1000, name


def test_a_wrong_account_is_told_and_nothing_is_signed(pay_vendor, browser, outsider):
    treasury, proposal = pay_vendor(salt_nonce=1302)
    with running_server(treasury.store, config_path=treasury.config_path) as url:
        result = browser.run(outsider.address, [
            {"goto": f"{url}/proposals/{proposal.id}"},
            {"sign": "safe-tx"},
            {"expect": {"selector": "#sign-status", "class": "error", "text": "not an owner"}},
            {"connect": True},
            {"expect": {"selector": "#sign-status", "class": "error", "text": outsider.address}},
            {"screenshot": str(browser.shots / "wrong-account.png")},
        ])
    assert_nothing_sent(result, treasury, proposal.id)


def test_a_wrong_chain_whose_switch_is_refused_is_told_and_nothing_is_signed(pay_vendor, browser, owners):
    treasury, proposal = pay_vendor(salt_nonce=1303)
    with running_server(treasury.store, config_path=treasury.config_path) as url:
        refused = browser.run(owners[0].address, [
            {"goto": f"{url}/proposals/{proposal.id}"},
            {"sign": "safe-tx"},
            {"expect": {"selector": "#sign-status", "class": "error", "text": "chain 1,"}},
            {"expect": {"selector": "#sign-status", "class": "error", "text": "refused the switch"}},
            {"screenshot": str(browser.shots / "wrong-chain.png")},
        ], wallet={"chainId": "0x1", "refuseSwitch": True})
        assert "wallet_switchEthereumChain" in wallet_methods(refused)
        assert_nothing_sent(refused, treasury, proposal.id)

        # Accepting the switch lets the owner sign.
        accepted = browser.run(owners[0].address, [
            {"goto": f"{url}/proposals/{proposal.id}"},
            {"sign": "safe-tx"},
            {"expect": {"selector": "#sign-status", "class": "ok", "text": "stored"}},
        ], wallet={"chainId": "0x1"})
    assert wallet_methods(accepted).index("wallet_switchEthereumChain") < wallet_methods(accepted).index(NOT_SIGNED)
    assert stored_signers(treasury, proposal.id) == {owners[0].address}


def test_a_rejection_in_the_wallet_is_told_and_nothing_is_stored(pay_vendor, browser, owners):
    treasury, proposal = pay_vendor(salt_nonce=1304)
    with running_server(treasury.store, config_path=treasury.config_path) as url:
        result = browser.run(owners[0].address, [
            {"goto": f"{url}/proposals/{proposal.id}"},
            {"sign": "safe-tx"},
            {"expect": {"selector": "#sign-status", "class": "error", "text": "You rejected the request in your wallet"}},
            {"expect": {"selector": "#signatures li", "count": 0}},
        ], wallet={"reject": [NOT_SIGNED]})
    rejected = [w for w in result["wallet"] if w["method"] == NOT_SIGNED]
    assert [w["error"]["code"] for w in rejected] == [4001]
    assert_nothing_sent(result, treasury, proposal.id, signed=True)


def test_a_proposal_executed_meanwhile_shows_the_servers_refusal(pay_vendor, browser, owners):
    treasury, proposal = pay_vendor(salt_nonce=1305)

    def execute_meanwhile():
        for owner in owners[:2]:
            treasury.sign(proposal.id, owner)
        treasury.execute(proposal.id, owners[0], skip_rehearsal=True)

    with running_server(treasury.store, config_path=treasury.config_path) as url:
        result = browser.run_with_pauses(owners[2].address, [
            {"goto": f"{url}/proposals/{proposal.id}"},
            {"expect": {"selector": "#sign-safe-tx", "count": 1}},
            {"pause": "execute"},
            {"sign": "safe-tx"},
            {"expect": {"selector": "#sign-status", "class": "error", "text": "The server refused it"}},
            {"expect": {"selector": "#sign-status", "class": "error", "text": "executed"}},
            {"screenshot": str(browser.shots / "executed-meanwhile.png")},
        ], {"execute": execute_meanwhile})
    assert [400 <= p["status"] < 500 for p in posts(result)] == [True]  # the signature was sent, and refused
    assert stored_signers(treasury, proposal.id) == {owners[0].address, owners[1].address}
    assert treasury.store.get_proposal(proposal.id).status == "executed"


def test_a_hostile_token_symbol_and_title_are_inert_text(monkeypatch, safe_infrastructure, owners, safe_deployer,
                                                          accounts, browser, tmp_path):
    # A symbol the book would refuse, as if it had come from a token's own symbol(): let it through
    # validation to see that the pages still show it as text.
    import re

    import treasury.amounts as amounts
    from treasury.testing.fixtures import make_test_treasury

    monkeypatch.setattr(amounts, "_SYMBOL", re.compile(r".{1,64}", re.DOTALL))
    vendor = accounts[4].address
    treasury, token = make_test_treasury(tmp_path / "hostile", owners, safe_deployer, salt_nonce=1306,
                                         token_symbol=HOSTILE_SYMBOL, policy=policy_for(vendor, HOSTILE_SYMBOL))
    proposal = treasury.propose(build.contract_call(token.address, "transfer(address,uint256)", [vendor, 100 * 10**6]),
                                title=HOSTILE_TITLE)
    inert = {"eval": "[window.__pwned === undefined, document.querySelectorAll('img[src=\"x\"], [onerror]').length,"
                     f" document.body.textContent.includes({json.dumps(HOSTILE_SYMBOL)}),"
                     f" document.body.textContent.includes({json.dumps(HOSTILE_TITLE)})]"}
    pages = {"safe": f"/safes/{treasury.safe}", "proposals": f"/safes/{treasury.safe}/proposals",
             "proposal": f"/proposals/{proposal.id}"}
    with running_server(treasury.store, config_path=treasury.config_path) as url:
        steps = []
        for name, path in pages.items():
            steps += [{"goto": url + path}, {"screenshot": str(browser.shots / f"hostile-{name}.png")}, inert]
        result = browser.run(owners[0].address, steps)
    seen = [s["result"] for s in result["steps"] if "eval" in s["step"]]
    assert [row[:2] for row in seen] == [[True, 0]] * 3  # no flag set, no element made
    assert seen[0][2] and seen[2][2]  # the symbol, as text, on the Safe's page (balances, caps) and the proposal's
    assert seen[1][3] and seen[2][3]  # the title, as text, on the list and the proposal
    # Had an element been made, the CSP would have had to block its handler: it never had to.
    assert not [line for line in result["console"] if "inline event handler" in line], result["console"]
    assert not [r for r in result["requests"] if r["url"].endswith("/x")]


def test_schedule_and_cancel_signatures_from_the_browser(make_treasury, browser, owners, accounts):
    # 6,000 TUSD is above the cap's delay threshold: the guard queues it, with owners' schedule signatures.
    treasury, _token = make_treasury(policy_for(accounts[4].address), salt_nonce=1307)
    proposal = treasury.propose_transfer(accounts[4].address, "6000 TUSD", title="A large payment")
    pid = proposal.id
    stored = "signature is stored"

    def queue():
        assert {s.owner for s in treasury.store.signatures(pid, "schedule")} == {owners[0].address, owners[1].address}
        treasury.schedule(pid, accounts[9])  # with the two schedule signatures the browser collected

    with running_server(treasury.store, config_path=treasury.config_path) as url:
        result = browser.run_with_pauses(owners[0].address, [
            {"goto": f"{url}/proposals/{pid}"},
            {"sign": "schedule"},
            {"expect": {"selector": "#sign-status", "class": "ok", "text": "schedule " + stored}},
            {"sign": "safe-tx"},
            {"expect": {"selector": "#sign-status", "class": "ok", "text": stored}},
            {"account": owners[1].address},  # the other owner's account in the same browser
            {"sign": "schedule"},
            {"expect": {"selector": "#sign-status", "class": "ok", "text": "schedule " + stored}},
            {"expect": {"selector": "#schedule-signers li[data-owner]", "count": 2}},
            {"screenshot": str(browser.shots / "schedule.png")},
            {"pause": "queue"},
            {"reload": True},
            {"expect": {"selector": "#proposal-status", "text": "scheduled"}},
            {"expect": {"selector": "#sign-schedule", "count": 0}},
            {"account": owners[2].address},
            {"sign": "cancel"},
            {"expect": {"selector": "#sign-status", "class": "ok", "text": "cancel " + stored}},
            {"expect": {"selector": f'#cancel-signers li[data-owner="{owners[2].address}" i]', "count": 1}},
            {"screenshot": str(browser.shots / "cancel.png")},
        ], {"queue": queue})
    assert wallet_methods(result).count(NOT_SIGNED) == 4
    assert [p["status"] for p in posts(result)] == [201] * 4
    assert {s.owner for s in treasury.store.signatures(pid)} == {owners[0].address}
    assert {s.owner for s in treasury.store.signatures(pid, "cancel")} == {owners[2].address}
