"""Issue 14 item 3, readable output, through the CLI on anvil: verdicts in token units with names,
waits as durations and UTC times, the delay queue with its proposals, the proposer as the signing
account (or plainly a local user), names beside addresses in show/info/log, and `show --json`'s
execution. The wording itself (treasury.wording, the engine's sentences) is checked without a chain.
"""

import json
import re

import pytest
from test_cli import Cli

from treasury import wording
from treasury.amounts import TokenBook
from treasury.policy.engine import GuardState, evaluate, intent_id
from treasury.policy.model import Policy

TOKEN = "0x7000000000000000000000000000000000000007"
UNKNOWN = "0x7100000000000000000000000000000000000071"
ACME = "0x00000000000000000000000000000000000000A1"
SAFE = "0x5000000000000000000000000000000000000005"
MULTISEND = "0x9000000000000000000000000000000000000009"
BOOK = TokenBook.of({"USDC": {"address": TOKEN, "decimals": 6}})
E6 = 10**6


def flat(text: str) -> str:
    """Rich wraps long lines at spaces: compare with the whitespace folded."""
    return " ".join(text.split())


# --- the words, without a chain ---------------------------------------------------------------------


def test_durations_times_and_waits():
    assert wording.duration(86_400 + 23 * 3_600 + 59) == "1 d 23 h"  # truncated, unless told to round up
    assert [wording.duration(s) for s in (0, 30, 60, 3_600, 3 * 3_600 + 5 * 60, 2 * 86_400)] == [
        "0 s", "30 s", "1 min", "1 h", "3 h 5 min", "2 d"]
    assert wording.duration(86_401, exact=True) == "1 d 1 s" and wording.duration(86_401) == "1 d"
    at = 1_796_306_700  # 2026-12-03 14:05 UTC
    assert wording.when(at) == "2026-12-03 14:05 UTC"
    assert wording.due(at - 171_000, at) == "due in 2 d, at 2026-12-03 14:05 UTC"  # 1 d 23 h 30 min: rounded up
    assert wording.due(at - 169_200, at) == "due in 1 d 23 h, at 2026-12-03 14:05 UTC"  # exactly 1 d 23 h
    assert wording.expires(at - 171_000, at) == "expires in 1 d 23 h, at 2026-12-03 14:05 UTC"  # truncated
    assert wording.due(at + 5, at) == "due now, since 2026-12-03 14:05 UTC"
    assert wording.expires(at + 7_200, at) == "expired 2 h ago, at 2026-12-03 14:05 UTC"
    assert wording.when(2**70) == f"timestamp {2**70}"


def test_a_remaining_wait_and_an_eta_are_rounded_up_never_early():
    """"due in …, at …" must not promise a time before the guard allows it; expiry wording truncates."""
    at = 1_796_306_700  # 2026-12-03 14:05:00 UTC
    two_days_29_min = 2 * 86_400 + 29 * 60
    assert wording.duration(two_days_29_min) == "2 d" and wording.duration(two_days_29_min, up=True) == "2 d 1 h"
    assert [wording.duration(s, up=True) for s in (0, 59, 60, 61, 3_601, 86_370, 2 * 86_400)] == [
        "0 s", "59 s", "1 min", "1 min 1 s", "1 h 1 min", "1 d", "2 d"]
    assert wording.when(at + 59) == "2026-12-03 14:05 UTC"  # an instant past: seconds dropped
    assert wording.eta(at + 59) == wording.eta(at + 1) == "2026-12-03 14:06 UTC"  # 14:05:59 is not "14:05"
    assert wording.eta(at) == "2026-12-03 14:05 UTC"  # a whole minute stays
    assert wording.due(at + 59 - two_days_29_min, at + 59) == "due in 2 d 1 h, at 2026-12-03 14:06 UTC"
    assert wording.countdown(at - 1, at) == "due in 1 s"
    assert wording.due(at + 120, at + 59) == "due now, since 2026-12-03 14:05 UTC"
    assert wording.expires(at + 59 - two_days_29_min, at + 59) == "expires in 2 d, at 2026-12-03 14:05 UTC"


def test_amounts_and_people():
    assert wording.amount(BOOK, TOKEN, 12_000 * E6) == "12,000 USDC"
    assert wording.amount(None, "0x" + "0" * 40, 15 * 10**17) == "1.5 ETH"
    assert wording.amount(BOOK, UNKNOWN, 5) == f"5 base units of {UNKNOWN}"
    assert wording.units_of(BOOK, "USDC", 2_500_500_000) == "2,500.5 USDC"
    assert wording.proposer("alice-laptop") == "local user alice-laptop"
    assert wording.proposer(ACME.lower(), lambda a: f"acme ({a})") == f"acme ({ACME})"
    assert wording.proposer("bundle:whoever") == "bundle:whoever"
    assert wording.labelled(f"pay {ACME} now", lambda a: f"acme ({a})") == f"pay acme ({ACME}) now"


def test_a_foreign_queue_entry_belongs_to_the_open_then_newest_proposal_of_its_intent():
    """An entry another tool queued is matched by intent: an open proposal first, then the highest nonce."""
    from types import SimpleNamespace

    from treasury.delay_queue import queue_lines

    def record(id, status, nonce):
        return SimpleNamespace(id=id, status=status, nonce=nonce, to=ACME, value=1, data=b"", operation=0, title=id)

    store = SimpleNamespace(schedule_entries=lambda _pid: [])
    key = intent_id(ACME, 1, b"", 0)
    entry = SimpleNamespace(entry_id=7, intent_id=key.upper().replace("0X", "0x"), status="pending",
                            eta=1_000_100, expiry=1_700_000)

    def matched(*records):
        [line] = queue_lines([entry], 1_000_000, list(records), store)
        return line.proposal_id

    old, open_, newer = record("old", "executed", 1), record("open", "pending", 2), record("newer", "cancelled", 3)
    assert matched(old, open_, newer) == "open"  # open first, though listed after an executed one
    assert matched(old, newer) == "newer"  # none open: the highest nonce
    assert matched(newer, old) == "newer"
    assert matched(record("s", "scheduled", 4), record("p", "pending", 5)) == "p"


def _state(**overrides):
    fields = dict(now=1_000_000, budget_left={TOKEN: 10_000 * E6}, pending={}, allow_refunds=False, safe=SAFE,
                  guard="0x" + "6" * 40, multisend_call_only=MULTISEND)
    return GuardState(**{**fields, **overrides})


def _transfer(to: str, units: int) -> bytes:
    return bytes.fromhex("a9059cbb") + int(to, 16).to_bytes(32, "big") + units.to_bytes(32, "big")


POLICY = Policy.model_validate({
    "recipients": [ACME], "delay": 48 * 3600,
    "calls": [{"target": TOKEN, "selector": "transfer(address,uint256)"},
              {"target": UNKNOWN, "selector": "transfer(address,uint256)"},
              {"target": ACME, "selector": "deposit(uint256)",
               "arguments": [{"index": 0, "kind": "max", "bound": 500 * E6, "token": TOKEN}]}],
    "caps": [{"token": TOKEN, "amount": 20_000 * E6, "period": 86_400, "max_per_tx": 15_000 * E6,
              "delay_threshold": 5_000 * E6}],
})


def _label(address: str) -> str:
    return f"acme ({address})" if address == ACME else address


def test_verdict_reasons_in_token_units_with_names():
    def reason(data, to=TOKEN, **state):
        return evaluate(POLICY, _state(**state), to, 0, data, book=BOOK, label=_label).reason

    assert reason(_transfer(ACME, 12_000 * E6)).endswith(
        "cap of USDC exceeded: 12,000 USDC requested, 10,000 USDC left [ExceedsBudget]")  # no base units, no raw token
    assert "per-transaction limit of USDC exceeded: 16,000 USDC requested, limit 15,000 USDC" in reason(
        _transfer(ACME, 16_000 * E6), budget_left={TOKEN: 20_000 * E6})
    assert "6,000 USDC is above the delay threshold of 5,000 USDC" in reason(_transfer(ACME, 6_000 * E6))
    assert "needs a 2 d delay" in reason(_transfer(ACME, 6_000 * E6))
    assert f"token {UNKNOWN} has no cap, so no budget: 7 base units of {UNKNOWN} requested" in reason(
        _transfer(ACME, 7), to=UNKNOWN)
    stranger = "0x" + "b" * 40
    denied = reason(_transfer(stranger, 1))
    assert "is not an allowlisted recipient" in denied and "base units" not in denied
    deposit = bytes.fromhex("b6b55f25") + (600 * E6).to_bytes(32, "big")
    assert "600 USDC is above the bound 500 USDC" in reason(deposit, to=ACME)
    assert "on acme (0x00000000000000000000000000000000000000A1)" in reason(deposit, to=ACME)
    # Allowed: what it charges and what is left, in USDC, never in base units.
    assert reason(_transfer(ACME, 250 * E6)).startswith("allowed: charges 250 USDC (9,750 USDC left after)")


def test_the_queue_words_say_when_in_durations_and_utc():
    data = _transfer(ACME, 6_000 * E6)
    key = intent_id(TOKEN, 0, data, 0)
    at = 1_796_306_700
    early = evaluate(POLICY, _state(now=at - 171_000, pending={key: (7, at, at + 86_400)}), TOKEN, 0, data, book=BOOK)
    assert "entry 7 is due in 2 d, at 2026-12-03 14:05 UTC" in early.reason  # 1 d 23 h 30 min, rounded up
    late = evaluate(POLICY, _state(now=at + 90_000, pending={key: (7, at - 86_400, at + 3_600)}), TOKEN, 0, data,
                    book=BOOK)
    assert "entry 7 expired 1 d ago, at 2026-12-03 15:05 UTC; schedule it again" in late.reason


# --- through the CLI --------------------------------------------------------------------------------


@pytest.fixture
def named(safe_infrastructure, owners, safe_deployer, tmp_path, chain, accounts):
    """A guarded treasury whose config names its vendor and its owners (the address book)."""
    from treasury.testing.fixtures import make_test_treasury

    vendor, other = accounts[4], accounts[6]
    policy = {
        "recipients": ["acme"],
        "calls": [{"target": "TUSD", "function": "transfer(address,uint256)"}],
        "caps": [{"token": "TUSD", "amount": "10000", "period": "1d", "max_per_tx": "8000", "delay_threshold": "5000"}],
    }
    treasury, token = make_test_treasury(
        tmp_path, owners, safe_deployer, policy=policy, salt_nonce=1414,
        vendors={"acme": vendor.address, "bob": other.address},
        named_owners={name: o.address for name, o in zip(("alice", "bea", "carl"), owners, strict=False)})
    yield treasury, token, vendor, Cli(tmp_path / "ape-config.yaml", chain)
    treasury.store.close()


def test_verdicts_in_token_units_and_names_through_the_cli(named, accounts):
    treasury, token, vendor, run = named
    over = run("propose", "transfer", "acme", "9000 TUSD")
    assert over.exit_code == 3, over.output
    said = flat(over.stderr)
    assert "per-transaction limit of TUSD exceeded: 9,000 TUSD requested, limit 8,000 TUSD" in said
    assert str(9000 * 10**6) not in said.split("[")[0]  # base units only in the guard's raw error, if at all

    stranger = run("propose", "transfer", "bob", "1 TUSD")
    assert stranger.exit_code == 3
    assert f"bob ({accounts[6].address}) (the token recipient) is not an allowlisted recipient" in flat(stranger.stderr)
    assert treasury.store.list_proposals() == []  # refused: nothing stored


def test_proposer_is_the_signing_account_or_a_local_user(named, owners):
    treasury, token, vendor, run = named
    signed = run.json("propose", "transfer", "acme", "250 TUSD", "--account", "TEST::0")
    assert signed["proposer"] == owners[0].address
    assert run.json("show", signed["id"], chain=False)["names"][owners[0].address] == "alice"
    assert re.search(rf"proposer\W+alice \({owners[0].address}\)", run.ok("show", signed["id"], chain=False).stdout)

    policy = flat(run.ok("policy", "show", chain=False).stdout)
    assert "Delay 2 d, window 7 d" in policy and "10,000 TUSD" in policy and "8,000 TUSD" in policy

    local = run.ok("propose", "transfer", "acme", "1 TUSD")
    assert "proposer: local user " in flat(local.stdout)
    stored = treasury.store.list_proposals()[-1]
    assert not stored.proposer.startswith("0x")
    assert f"local user {stored.proposer}" in flat(run.ok("show", stored.id, chain=False).stdout)


def test_an_address_shaped_user_name_never_passes_for_an_account(named, owners, monkeypatch):
    """USER=0x<alice's address> without --account: the proposer and the log's actor are that local
    user, never "alice (0x…)"."""
    treasury, token, vendor, run = named
    alice = owners[0].address
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):  # getpass.getuser's order
        monkeypatch.setenv(variable, alice)
    proposed = run.ok("propose", "transfer", "acme", "1 TUSD")
    said = flat(proposed.stdout)
    assert f"proposer: local user {alice}" in said and "alice (" not in said, said
    stored = treasury.store.list_proposals()[-1]
    assert stored.proposer == f"local user {alice}"
    shown = flat(run.ok("show", stored.id, chain=False).stdout)
    assert re.search(rf"proposer\W+local user {alice}", shown) and "alice (" not in shown, shown
    log = flat(run.ok("log", "--proposal", stored.id, chain=False).stdout)
    assert "local user" in log and "alice (" not in log, log  # (the table wraps the actor column)
    assert {e["actor"] for e in run.json("log", "--proposal", stored.id, chain=False)["log"]} == {f"local user {alice}"}
    assert wording.proposer(f"local user {alice}", lambda a: f"alice ({a})") == f"local user {alice}"
    assert wording.local_actor("bob") == "bob"


def test_show_names_addresses_and_json_has_the_execution(named, owners):
    treasury, token, vendor, run = named
    proposed = run.json("propose", "transfer", "acme", "100 TUSD")
    pid = proposed["id"]
    shown = run.json("show", pid)
    assert shown["execution"] is None
    assert shown["names"][treasury.book.by_symbol("TUSD").address] == "TUSD"
    text = flat(run.ok("show", pid).stdout)
    assert f"acme ({vendor.address})" in text and "100 TUSD" in text
    assert "allowed: charges 100 TUSD (9,900 TUSD left after)" in text

    for owner in ("TEST::0", "TEST::1"):
        run.ok("sign", pid, "--account", owner, "--yes")
    executed = run.json("execute", pid, "--account", "TEST::9", "--yes", "--skip-rehearsal")
    after = run.json("show", pid, chain=False)
    assert after["execution"] == executed["execution"]
    assert set(after["execution"]) == {"tx_hash", "block_number", "gas_used", "success", "executor"}
    assert after["execution"]["success"] is True and after["execution"]["block_number"] > 0
    assert {after["names"].get(a) for a in after["signers"]} == {"alice", "bea"}

    log = flat(run.ok("log", "--proposal", pid, chain=False).stdout)
    assert "alice (" in log or "bea (" in log


def test_schedule_and_info_show_the_queue_with_proposals_and_waits(named, chain):
    treasury, token, vendor, run = named
    proposed = run.json("propose", "transfer", "acme", "6000 TUSD", "--title", "October retainer")
    assert proposed["verdict"]["outcome"] == "needs-delay"
    assert "needs a 2 d delay" in proposed["verdict"]["reason"]
    assert "6,000 TUSD is above the delay threshold of 5,000 TUSD" in proposed["verdict"]["reason"]
    pid = proposed["id"]
    queued = run.ok("schedule", pid, "--signer", "TEST::0", "--signer", "TEST::1", "--account", "TEST::9")
    entry = treasury.store.schedule_entries(pid)[-1]
    head = chain.blocks.head.timestamp
    said = flat(queued.stdout)
    assert f"queued as entry {entry.entry_id}: {wording.due(head, entry.eta)}" in said
    assert re.search(r"due in (1 d 23 h|2 d), at \d{4}-\d\d-\d\d \d\d:\d\d UTC; expires in", said), said

    info = run.json("info")
    [line] = info["entries"]
    assert (line["entry_id"], line["proposal_id"], line["title"]) == (entry.entry_id, pid, "October retainer")
    assert line["due"].startswith("due in ") and line["until"].startswith("expires in ")
    assert {info["names"][o] for o in info["owners"]} == {"alice", "bea", "carl"}
    text = run.ok("info").stdout
    assert "October retainer" in text and pid in text and "due in" in text
    assert "alice (" in text and "10,000 TUSD" in text

    # Before the eta the execution waits: the verdict says how long, and at what UTC time.
    not_yet = run.json("show", pid)["verdict"]["reason"]
    assert f"entry {entry.entry_id} is due in" in not_yet and ", at " in not_yet and " UTC" in not_yet
    assert json.dumps(not_yet).count("base units") == 0
