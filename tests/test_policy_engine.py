"""The Python verdict (treasury.policy.engine) rule by rule, and its reads of a real guard.

The first part needs no chain: a GuardState is written by hand and evaluate() must name the
guard's error for each rule and pick the same first failure when several rules fail. The second
part deploys guards on anvil for read_guard_state, intent_id and policy_drift. The agreement
with the guard over many generated transactions is tests/test_policy_differential.py.
"""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as selector
from guard_helpers import approve, transfer, transfer_from

from treasury.chain.guard import deploy_guard, install_guard, predict_verdict, schedule_intent
from treasury.errors import InvalidInput
from treasury.execution.send import execute_with_owners
from treasury.policy.engine import (
    MULTI_SEND,
    SET_GUARD,
    TRANSFER,
    TRANSFER_FROM,
    GuardState,
    PolicyViolation,
    charges,
    evaluate,
    intent_id,
    policy_drift,
    read_guard_state,
)
from treasury.policy.model import NATIVE, Policy
from treasury.proposal.multisend import multisend_call_only

SAFE = "0x5afe5afE5afE5afE5afE5aFe5aFe5Afe5Afe5AfE"
GUARD = "0x6000000000000000000000000000000000000006"
MULTISEND = multisend_call_only("1.4.1")
TOKEN = "0x7000000000000000000000000000000000000007"
TOKEN2 = "0x7200000000000000000000000000000000000072"
UNCAPPED = "0x7300000000000000000000000000000000000073"
R1 = "0x1111111111111111111111111111111111111111"
R2 = "0x2222222222222222222222222222222222222222"
STRANGER = "0x3333333333333333333333333333333333333333"
CUSTOM = bytes.fromhex("deadbeef")
ADD_OWNER = selector("addOwnerWithThreshold(address,uint256)")
NOW = 1_000_000
DELAY, WINDOW = 3600, 7200

POLICY = Policy(
    recipients=[R1, R2],
    calls=[
        {"target": TOKEN, "selector": "transfer(address,uint256)"},
        {"target": TOKEN, "selector": "approve(address,uint256)"},
        {"target": TOKEN, "selector": "transferFrom(address,address,uint256)"},
        {"target": TOKEN2, "selector": "transfer(address,uint256)"},
        {"target": UNCAPPED, "selector": "transfer(address,uint256)"},
        {"target": R1, "selector": "0xdeadbeef"},
    ],
    caps=[
        {"token": NATIVE, "amount": 1000, "period": 3600, "max_per_tx": 600, "delay_threshold": 300},
        {"token": TOKEN, "amount": 10_000, "period": 7200, "max_per_tx": 6000, "delay_threshold": 3000},
        {"token": TOKEN2, "amount": 5000, "period": 600},
    ],
    delay=DELAY,
    window=WINDOW,
)


def state(**changes) -> GuardState:
    fields = dict(
        now=NOW, budget_left={NATIVE: 1000, TOKEN: 10_000, TOKEN2: 5000}, pending={}, allow_refunds=False,
        safe=SAFE, guard=GUARD, multisend_call_only=MULTISEND,
    )
    return GuardState(**{**fields, **changes})


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def entry(to: str, value: int = 0, data: bytes = b"", operation: int = 0) -> bytes:
    return bytes([operation]) + bytes.fromhex(to[2:]) + word(value) + word(len(data)) + data


def multisend(*entries: bytes, offset: int = 32, length: int | None = None, padding: bytes = b"") -> bytes:
    packed = b"".join(entries)
    return MULTI_SEND + word(offset) + word(len(packed) if length is None else length) + packed + padding


def check(expected_error: str, *args, at: GuardState | None = None, **kwargs):
    """evaluate() and assert the error name (\"\" for allowed); returns the verdict."""
    verdict = evaluate(POLICY, at or state(), *args, **kwargs)
    assert verdict.error == expected_error, verdict
    assert verdict.outcome == ("allow" if not expected_error else "needs-delay" if expected_error in
                               {"NotScheduled", "NotYetDue", "EntryExpired"} else "deny")
    return verdict


def scheduled(to, value=0, data=b"", operation=0, entry_id=4, eta=NOW - 10, expiry=NOW + 10) -> GuardState:
    return state(pending={intent_id(to, value, data, operation): (entry_id, eta, expiry)})


# --- plain calls -------------------------------------------------------------------------------


def test_native_value_to_a_recipient_is_allowed_and_charged():
    verdict = check("", R1, 250)
    # Without a token book the native currency is still ETH (its decimals are known): never a bare number.
    assert "0.00000000000000025 ETH (0.00000000000000075 ETH left after)" in verdict.reason
    assert charges(POLICY, state(), R1, 250) == {NATIVE: 250}


def test_native_value_to_a_stranger_is_denied_with_the_guard_words():
    verdict = check("RecipientNotAllowed", STRANGER, 1)
    assert f"RecipientNotAllowed(recipient={STRANGER.lower()})" in verdict.detail
    assert STRANGER in verdict.reason and "native value" in verdict.reason


def test_empty_calldata_needs_an_allowlisted_recipient_even_without_value():
    check("", R2, 0)
    check("RecipientNotAllowed", STRANGER, 0)


def test_value_is_checked_before_the_calldata():
    check("RecipientNotAllowed", STRANGER, 5, CUSTOM)  # value first, although the call is not allowlisted either
    check("CallNotAllowed", STRANGER, 0, CUSTOM)
    check("", R1, 5, CUSTOM)  # allowlisted (target, selector) and recipient: value charged
    check("RecipientNotAllowed", STRANGER, 5, b"\x01")


@pytest.mark.parametrize("size", [1, 2, 3])
def test_one_to_three_bytes_of_calldata_are_malformed(size):
    check("MalformedCalldata", R1, 0, b"\xde" * size)


def test_selectors_not_allowlisted():
    verdict = check("CallNotAllowed", TOKEN, 0, selector("mint(address,uint256)") + bytes(64))
    assert "selector=0x40c10f19" in verdict.detail
    check("CallNotAllowed", TOKEN2, 0, approve(R1, 1))  # ERC-20 selectors are per token
    check("CallNotAllowed", R2, 0, CUSTOM)


def test_erc20_recipient_and_spender_must_be_allowlisted():
    check("", TOKEN, 0, transfer(R1, 10))
    check("RecipientNotAllowed", TOKEN, 0, transfer(STRANGER, 10))
    check("", TOKEN, 0, approve(R2, 10))
    check("ExceedsPerTxLimit", TOKEN, 0, approve(R2, 10**30))  # approvals are charged like transfers
    check("RecipientNotAllowed", TOKEN, 0, approve(STRANGER, 1))
    check("", TOKEN, 0, transfer_from(STRANGER, R1, 5))  # `from` is anyone, the amount is still charged
    assert charges(POLICY, state(), TOKEN, 0, transfer_from(STRANGER, R1, 5)) == {TOKEN: 5}
    check("RecipientNotAllowed", TOKEN, 0, transfer_from(R1, STRANGER, 5))


@pytest.mark.parametrize("data", ids=["short", "long", "transferFrom-short", "dirty-to", "dirty-from", "dirty-to-tf"], argvalues=[
    transfer(R1, 1)[:-1], transfer(R1, 1) + b"\x00", transfer_from(R1, R1, 1)[:68],
    TRANSFER + word(1 << 160 | int(R1, 16)) + word(1),
    TRANSFER_FROM + word(1 << 200) + transfer(R1, 1)[4:],
    TRANSFER_FROM + word(int(R2, 16)) + word(1 << 255 | int(R1, 16)) + word(1),
])
def test_erc20_calldata_is_decoded_strictly(data):
    """Wrong lengths and address words with dirty upper bytes (recipient or `from`)."""
    check("MalformedCalldata", TOKEN, 0, data)


def test_a_token_without_cap_has_no_budget():
    verdict = check("CapNotSet", UNCAPPED, 0, transfer(R1, 1))
    assert f"CapNotSet(token={UNCAPPED.lower()})" in verdict.detail
    check("", UNCAPPED, 0, transfer(R1, 0))  # nothing to charge


def test_per_transaction_limit():
    check("", TOKEN2, 0, transfer(R1, 5000))
    verdict = check("ExceedsPerTxLimit", TOKEN, 0, transfer(R1, 6001))
    assert f"6001 base units of {TOKEN} requested, limit 6000 base units of {TOKEN}" in verdict.reason
    assert f"ExceedsPerTxLimit(token={TOKEN.lower()}, total=6001, limit=6000)" in verdict.detail
    check("ExceedsPerTxLimit", R1, 601)


def test_budget_left_in_token_terms():
    verdict = check("ExceedsBudget", TOKEN, 0, transfer(R1, 2500), at=state(budget_left={NATIVE: 0, TOKEN: 2000, TOKEN2: 0}))
    assert f"cap of token {TOKEN} exceeded: 2500 base units of {TOKEN} requested, 2000 base units of {TOKEN} left" \
        in verdict.reason
    check("", TOKEN, 0, transfer(R1, 2000), at=state(budget_left={NATIVE: 0, TOKEN: 2000, TOKEN2: 0}))


def test_missing_budget_is_a_usage_error():
    with pytest.raises(InvalidInput, match="no budget"):
        evaluate(POLICY, state(budget_left={}), R1, 1)


# --- the delay queue ---------------------------------------------------------------------------


def test_above_the_delay_threshold_needs_scheduling():
    check("", TOKEN, 0, transfer(R1, 3000))
    data = transfer(R1, 3001)
    verdict = check("NotScheduled", TOKEN, 0, data)
    assert intent_id(TOKEN, 0, data, 0) in verdict.reason and "1 h delay" in verdict.reason
    assert f"3001 base units of {TOKEN} is above the delay threshold of 3000 base units of {TOKEN}" in verdict.reason


def test_a_scheduled_entry_runs_from_eta_until_before_expiry():
    data = transfer(R1, 3001)
    eta, expiry = NOW + 100, NOW + 100 + WINDOW
    pending = {intent_id(TOKEN, 0, data, 0): (7, eta, expiry)}
    assert check("NotYetDue", TOKEN, 0, data, at=state(pending=pending)).detail == f"NotYetDue(entryId=7, eta={eta})"
    assert "consumes scheduled entry 7" in check("", TOKEN, 0, data, at=state(pending=pending, now=eta)).reason
    check("", TOKEN, 0, data, at=state(pending=pending, now=expiry - 1))
    check("EntryExpired", TOKEN, 0, data, at=state(pending=pending, now=expiry))


def test_limits_and_budget_are_checked_before_the_queue():
    over = state(budget_left={NATIVE: 1000, TOKEN: 3000, TOKEN2: 0})
    check("ExceedsBudget", TOKEN, 0, transfer(R1, 3001), at=over)
    check("ExceedsPerTxLimit", TOKEN, 0, transfer(R1, 6001), at=scheduled(TOKEN, 0, transfer(R1, 6001)))


def test_intents_are_read_lazily_through_the_callback():
    data = transfer(R1, 3001)
    asked = []

    def lookup(intent):
        asked.append(intent)
        return (9, NOW, NOW + WINDOW)

    check("", TOKEN, 0, data, at=state(lookup=lookup))
    assert asked == [intent_id(TOKEN, 0, data, 0)]


def test_state_keys_are_normalised():
    data = transfer(R1, 3001)
    raw_intent = bytes.fromhex(intent_id(TOKEN, 0, data, 0)[2:])
    at = state(budget_left={NATIVE: 1000, TOKEN.lower(): 5000, TOKEN2: 0}, pending={raw_intent: (1, NOW, NOW + 1)})
    check("", TOKEN, 0, data, at=at)


# --- the Safe itself and the guard -------------------------------------------------------------


def test_configuration_calls_to_the_safe_need_the_delay():
    data = ADD_OWNER + encode(["address", "uint256"], [STRANGER, 2])
    assert "calls the Safe itself" in check("NotScheduled", SAFE, 0, data).reason
    check("", SAFE, 0, data, at=scheduled(SAFE, 0, data))


def test_an_empty_call_to_the_safe_is_the_rejection_no_op():
    check("", SAFE)
    check("", SAFE, 10**21)  # not charged: it stays in the Safe
    assert charges(POLICY, state(), SAFE, 10**21) == {}


def test_calls_to_the_guard_are_settings_only_and_need_the_delay():
    check("GuardCallNotAllowed", GUARD)
    check("NotScheduled", GUARD, 0, selector("setAllowRefunds(bool)") + word(1))


def test_scheduled_guard_removal_escapes_every_other_rule():
    data = SET_GUARD + word(0)
    check("NotScheduled", SAFE, 0, data)
    at = scheduled(SAFE, 0, data)
    check("", SAFE, 0, data, at=state(**{**at.__dict__, "budget_left": {}}))  # no budget needed
    check("EntryExpired", SAFE, 0, data, at=scheduled(SAFE, 0, data, eta=NOW - 10, expiry=NOW))
    check("RefundsNotAllowed", SAFE, 0, data, gas_price=1, at=at)  # refunds are checked before the escape
    other = SET_GUARD + word(int(R1, 16))
    check("NotScheduled", SAFE, 0, other)
    check("DelegateCallNotAllowed", SAFE, 0, data, 1)


def test_refunds_follow_the_guard_setting():
    check("RefundsNotAllowed", R1, 1, gas_price=1)
    check("", R1, 1, gas_price=1, at=state(allow_refunds=True))


# --- delegatecalls and batches -----------------------------------------------------------------


def test_operations_other_than_call_and_multisend():
    check("InvalidOperation", R1, 0, b"", 2)
    check("DelegateCallNotAllowed", TOKEN, 0, transfer(R1, 1), 1)
    batch = multisend(entry(R1, 1))
    check("InvalidMultiSend", MULTISEND, 1, batch, 1)
    check("", MULTISEND, 0, batch, 1)
    with pytest.raises(InvalidInput):
        evaluate(POLICY, state(), R1, 0, b"", 256)
    with pytest.raises(InvalidInput):
        evaluate(POLICY, state(), R1, -1)


def test_batch_totals_are_summed_per_token_in_first_seen_order():
    batch = multisend(entry(TOKEN, 0, transfer(R1, 2000)), entry(R1, 100), entry(TOKEN, 0, transfer(R2, 2000)))
    assert list(charges(POLICY, state(), MULTISEND, 0, batch, 1).items()) == [(TOKEN, 4000), (NATIVE, 100)]
    check("NotScheduled", MULTISEND, 0, batch, 1)  # 4000 > 3000 although each transfer is below
    two = multisend(entry(TOKEN, 0, transfer(R1, 6001)), entry(R1, 601))
    check("ExceedsPerTxLimit", MULTISEND, 0, two, 1).detail.index(TOKEN.lower())
    second = multisend(entry(TOKEN, 0, transfer(R1, 10)), entry(TOKEN2, 0, transfer(R1, 100)))
    verdict = check("ExceedsBudget", MULTISEND, 0, second, 1, at=state(budget_left={NATIVE: 0, TOKEN: 10, TOKEN2: 99}))
    assert TOKEN2.lower() in verdict.detail


def test_the_first_bad_entry_decides():
    good = entry(TOKEN, 0, transfer(R1, 1))
    verdict = check("MalformedCalldata", MULTISEND, 0, multisend(good, entry(R1, 0, b"\x01\x02")), 1)
    assert f"to={R1.lower()}" in verdict.detail
    assert check("InvalidBatchEntry", MULTISEND, 0, multisend(good, entry(R1, 0, b"", 1)), 1).detail == (
        f"InvalidBatchEntry(offset={len(good)})")
    check("RecipientNotAllowed", MULTISEND, 0, multisend(entry(STRANGER, 1), entry(R1, 0, b"", 1)), 1)
    # Per-call rules of later entries come before caps and the queue of earlier ones.
    check("CallNotAllowed", MULTISEND, 0, multisend(entry(SAFE, 0, ADD_OWNER + bytes(64)), entry(TOKEN, 0, b"\xaa" * 4)), 1)
    check("RecipientNotAllowed", MULTISEND, 0, multisend(entry(TOKEN, 0, transfer(R1, 10**9)), entry(STRANGER, 1)), 1)


def test_batch_self_calls_and_rejection():
    check("GuardCallNotAllowed", MULTISEND, 0, multisend(entry(R1, 1), entry(GUARD)), 1)
    refunds_on = selector("setAllowRefunds(bool)") + word(1)
    check("NotScheduled", MULTISEND, 0, multisend(entry(R1, 1), entry(GUARD, 0, refunds_on)), 1)
    check("", MULTISEND, 0, multisend(entry(R1, 1), entry(SAFE, 5)), 1)


BATCH_CASES = [
    (MULTI_SEND, "InvalidMultiSend"),
    (selector("multiSend(bytes[])") + word(32) + word(85) + entry(R1, 1), "InvalidMultiSend"),
    (multisend(entry(R1, 1), offset=64), "InvalidMultiSend"),
    (multisend(entry(R1, 1), length=86), "InvalidMultiSend"),
    (multisend(entry(R1, 1), length=2**256 - 1), "InvalidMultiSend"),
    (multisend(entry(R1, 1), padding=bytes(32)), "InvalidMultiSend"),
    (multisend(entry(R1, 1), padding=bytes(30) + b"\x01"), "InvalidMultiSend"),
    (multisend(entry(R1, 1), padding=bytes(31)), ""),
    (multisend(), "EmptyBatch"),
    (multisend(padding=bytes(31)), "EmptyBatch"),
    (multisend(padding=b"\x01"), "InvalidMultiSend"),
    (multisend(entry(R1, 1)[:84]), "InvalidBatchEntry"),
    (multisend(entry(R1, 1), entry(R1, 1)[:50]), "InvalidBatchEntry"),
    (multisend(entry("0x0000000000000000000000000000000000000000", 1)), "InvalidBatchEntry"),
    (multisend(entry(R1, 0, CUSTOM)[:-1]), "InvalidBatchEntry"),
    (multisend(entry(R1, 0, CUSTOM, operation=2)), "InvalidBatchEntry"),
]
BATCH_IDS = ["no-argument", "other-selector", "offset-64", "length-too-long", "length-huge", "32-bytes-padding",
             "dirty-padding", "31-bytes-padding", "empty", "empty-padded", "empty-dirty-padding", "truncated-header",
             "truncated-second", "zero-target", "data-past-end", "operation-2"]


@pytest.mark.parametrize("data, error", BATCH_CASES, ids=BATCH_IDS)
def test_batch_encoding_is_strict(data, error):
    check(error, MULTISEND, 0, data, 1)


def test_totals_saturate_like_the_guard():
    # A total past 2**256 - 1 saturates: the walk goes on, and the cap refuses the total.
    half = entry(TOKEN, 0, transfer(R1, 2**255))
    check("RecipientNotAllowed", MULTISEND, 0, multisend(half, half, entry(STRANGER, 1)), 1)
    verdict = check("ExceedsPerTxLimit", MULTISEND, 0, multisend(half, half, half), 1)
    assert f"total={2**256 - 1}, limit=6000" in verdict.detail
    assert charges(POLICY, state(), MULTISEND, 0, multisend(half, half, half), 1) == {TOKEN: 2**256 - 1}


def test_policy_violation_words_match_decode_guard_error():
    violation = PolicyViolation("CallNotAllowed", "x", target=TOKEN, selector=CUSTOM)
    assert violation.guard_style == f"CallNotAllowed(target={TOKEN.lower()}, selector=0xdeadbeef)"
    assert PolicyViolation("EmptyBatch", "x").guard_style == "EmptyBatch()"


# --- against a deployed guard ------------------------------------------------------------------


@pytest.fixture(scope="module")
def deployed(make_safe, owners, safe_deployer, project, chain):
    """A 1.4.1 Safe with a real token and an installed guard, configured from a policy."""
    created = make_safe(owners, 2, version="1.4.1", salt_nonce=4141)
    token = safe_deployer.deploy(project.TestToken, "Test", "TST", 6)
    token.mint(created.address, 10**9, sender=safe_deployer)
    policy = Policy(
        recipients=[R1, R2],
        calls=[{"target": token.address, "selector": "transfer(address,uint256)"}, {"target": R1, "selector": "0xdeadbeef"}],
        caps=[{"token": token.address, "amount": 10_000, "period": 7200, "max_per_tx": 6000, "delay_threshold": 3000},
              {"token": NATIVE, "amount": 1000, "period": 3600}],
        delay=DELAY, window=WINDOW,
    )
    guard = deploy_guard(created.address, "1.4.1", policy, safe_deployer)
    install_guard(created.address, "1.4.1", guard.address, signers=owners[:2], sender=safe_deployer)
    return created, token, policy, guard


def test_intent_id_is_the_guards(deployed):
    _, token, _, guard = deployed
    for args in [(R1, 5, b"", 0), (token.address, 0, transfer(R1, 7), 0), (MULTISEND, 0, multisend(entry(R1, 1)), 1)]:
        assert intent_id(*args) == "0x" + bytes(guard.intentId(*args)).hex()


def test_read_guard_state_reads_budgets_schedule_and_addresses(deployed, owners, safe_deployer, chain):
    created, token, policy, guard = deployed
    data = transfer(R1, 4000)
    entry_id = schedule_intent(guard, token.address, 0, data, 0, signers=owners[:2], sender=safe_deployer)
    read = read_guard_state(guard, policy, intents=[(token.address, 0, data, 0)])
    assert read.pending == {intent_id(token.address, 0, data, 0): (entry_id, *guard.getEntry(entry_id)[1:3])}
    assert read.budget_left == {token.address: 10_000, NATIVE: 1000}
    assert (read.safe, read.guard, read.multisend_call_only) == (created.address, guard.address, MULTISEND)
    assert read.allow_refunds is False and read.now == chain.pending_timestamp  # the next block's (a pinned clock)
    lazy = read_guard_state(guard.address, policy)
    assert lazy.pending == {} and lazy.entry_of(intent_id(token.address, 0, data, 0)) == read.pending[intent_id(token.address, 0, data, 0)]
    assert lazy.entry_of(intent_id(token.address, 0, transfer(R1, 1), 0)) is None
    assert evaluate(policy, read, token.address, 0, data).error == "NotYetDue"


def test_policy_drift_is_empty_when_in_sync(deployed):
    _, _, policy, guard = deployed
    assert policy_drift(policy, guard) == []
    assert policy_drift(policy, guard.address) == []


def test_policy_drift_names_each_difference(deployed, safe_deployer):
    created, token, policy, _ = deployed
    other = Policy(
        recipients=[R1],
        calls=[{"target": token.address, "selector": "transfer(address,uint256)"}, {"target": UNCAPPED, "selector": "transfer(address,uint256)"}],
        caps=[{"token": token.address, "amount": 9_000, "period": 7200, "max_per_tx": 6000, "delay_threshold": 3000},
              {"token": UNCAPPED, "amount": 1, "period": 60}],
        delay=2 * DELAY, window=WINDOW,
    )
    guard = deploy_guard(created.address, "1.4.1", other, safe_deployer)
    drift = policy_drift(policy, guard)

    def units(n, of=token.address):  # a token without a book: its base units, never a bare number
        return f"{n} base units of {of}"

    assert drift == [
        f"call selector 0xdeadbeef on {R1} is allowed by the policy but not by the guard",
        f"recipient {R2} is allowed by the policy but not by the guard",
        (f"cap of token {token.address}: policy amount={units(10000)} period=2 h max_per_tx={units(6000)} "
         f"delay_threshold={units(3000)}, guard amount={units(9000)} period=2 h max_per_tx={units(6000)} "
         f"delay_threshold={units(3000)}"),
        ("cap of ETH: policy amount=0.000000000000001 ETH period=1 h max_per_tx=0.000000000000001 ETH "
         "delay_threshold=none, guard amount=0 ETH period=0 s max_per_tx=0 ETH delay_threshold=0 ETH"),
        "delay: policy 1 h, guard 2 h",
    ]
    # The other way round: a token the guard caps but the policy does not.
    assert (f"token {UNCAPPED} has no cap in the policy but the guard has amount={units(1, UNCAPPED)} period=1 min "
            f"max_per_tx={units(1, UNCAPPED)} delay_threshold=none") in policy_drift(
        other.model_copy(update={"caps": other.caps[:1]}), guard)


def test_read_guard_state_reads_allowances_and_the_threshold(deployed):
    created, token, policy, guard = deployed
    read = read_guard_state(guard, policy, signatures=1)
    assert (read.safe_threshold, read.signatures) == (2, 1)
    assert read.allowance_of(token.address, R1) == 0
    # As the guard reads them: no code, or no answer (the guard's own empty fallback), is outstanding.
    assert read.allowance_of(R1, R2) == 2**256 - 1
    assert read.allowance_of(guard.address, R2) == 2**256 - 1
    assert read.permit2_allowance_of(R2, token.address, R1) == (2**256 - 1, 2**256 - 1)
    verdict = evaluate(policy, read, token.address, 0, transfer(R1, 2))
    assert verdict.allowed and read.allowances == {}  # read lazily: nothing asked for a transfer


def test_policy_drift_covers_the_v2_settings(deployed, safe_deployer):
    created, token, policy, guard = deployed
    deposit = "deposit(address,uint256)"
    v2 = Policy(
        recipients=policy.recipients,
        calls=[*policy.calls, {"target": R2, "selector": deposit,
                               "arguments": [{"index": 0, "kind": "recipient"}, {"index": 1, "kind": "max", "bound": 9}]}],
        caps=[policy.caps[0].model_dump() | {"nft": True, "tier_above": 500, "tier_signers": 3}, policy.caps[1]],
        delay=DELAY, window=WINDOW, cancel_threshold=2, guardians=[R2],
    )
    v2_guard = deploy_guard(created.address, "1.4.1", v2, safe_deployer)
    assert policy_drift(v2, v2_guard) == []
    word0, word1 = "word 0 recipient", "word 1 max <= 9"
    assert policy_drift(v2, guard) == [
        f"call selector 0x{selector(deposit).hex()} on {R2} is allowed by the policy but not by the guard",
        f"argument rules of selector 0x{selector(deposit).hex()} on {R2}: policy [{word0}, {word1}], guard none",
        f"token {token.address}: policy an NFT collection, guard fungible",
        f"tier of token {token.address}: policy 3 signatures above 500 base units of {token.address}, guard no tier",
        "cancel_threshold: policy 2, guard 1",
        f"guardian {R2} is named by the policy but is not a guardian of the guard",
    ]
    assert policy_drift(policy, v2_guard) == [
        f"token {token.address}: policy fungible, guard an NFT collection",
        f"tier of token {token.address}: policy no tier, guard 3 signatures above 500 base units of {token.address}",
        "cancel_threshold: policy 1, guard 2",
    ]


@pytest.mark.parametrize("data, error", BATCH_CASES, ids=BATCH_IDS)
def test_batch_cases_match_the_deployed_guard(deployed, data, error):
    """The hand-written batch encodings give the same error from the real guard."""
    _, _, policy, guard = deployed
    verdict = evaluate(policy, read_guard_state(guard, policy), MULTISEND, 0, data, 1)
    predicted = predict_verdict(guard, MULTISEND, 0, data, 1)
    assert (verdict.error, predicted.error) == (error, error)
    assert predicted.detail in verdict.detail


@pytest.fixture
def one_second_before_eta(deployed, owners, safe_deployer, chain):
    """A scheduled transfer whose eta is the next block's timestamp, the latest block one second earlier."""
    _, token, _, guard = deployed
    data = transfer(R1, 3500)
    entry_id = schedule_intent(guard, token.address, 0, data, 0, signers=owners[:2], sender=safe_deployer)
    eta = guard.getEntry(entry_id)[1]
    chain.pending_timestamp = eta - 1
    chain.mine()
    chain.pending_timestamp = eta
    return token.address, 0, data


def test_the_verdict_is_for_the_next_block(deployed, one_second_before_eta, owners, safe_deployer):
    created, _, policy, guard = deployed
    verdict = evaluate(policy, read_guard_state(guard, policy), *one_second_before_eta)
    assert verdict.allowed, verdict
    execute_with_owners(created.address, "1.4.1", *one_second_before_eta, signers=owners[:2], sender=safe_deployer)


def test_predict_verdict_is_for_the_next_block(deployed, one_second_before_eta):
    assert predict_verdict(deployed[3], *one_second_before_eta).allowed
