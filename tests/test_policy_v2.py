"""TreasuryGuard v2's rules in the Python verdict, one by one, without a chain.

Calls to the guard (settings only), the standard token calls decoded strictly (ERC-20, ERC-721,
ERC-1155, Permit2) with the approvals rule, argument rules on other calls, setApprovalForAll's
delay, tiered thresholds, the verdict's notes and warnings, drift against a guard that lacks the
v2 views, the config keys and the revert words. The agreement with the deployed guard is
tests/test_policy_differential.py.
"""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as selector
from hypothesis import given, settings, strategies as st
from pydantic import ValidationError

from treasury.amounts import TokenBook
from treasury.config import load_config
from treasury.decode.revert import explain_guard_error
from treasury.errors import InvalidInput
from treasury.policy.engine import (
    MODULE_WARNING,
    MULTI_SEND,
    TOKEN_CALLS,
    GuardState,
    _strict_decode,
    charges,
    evaluate,
    intent_id,
    policy_drift,
)
from treasury.policy.model import NATIVE, AllowedCall, ArgumentRule, Policy
from treasury.proposal.multisend import multisend_call_only

SAFE = "0x5afe5afE5afE5afE5afE5aFe5aFe5Afe5Afe5AfE"
GUARD = "0x6000000000000000000000000000000000000006"
MULTISEND = multisend_call_only("1.4.1")
USDC = "0x7000000000000000000000000000000000000007"
NFT = "0x7400000000000000000000000000000000000074"
ITEMS = "0x7500000000000000000000000000000000000075"  # ERC-1155
PERMIT2 = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
VAULT = "0x7600000000000000000000000000000000000076"
R1 = "0x1111111111111111111111111111111111111111"
R2 = "0x2222222222222222222222222222222222222222"
STRANGER = "0x3333333333333333333333333333333333333333"
ZERO = "0x0000000000000000000000000000000000000000"
NOW = 1_000_000
BOOK = TokenBook.of({"USDC": {"address": USDC, "decimals": 6}})
E6 = 10**6

DEPOSIT = "deposit(address,uint256)"
WITHDRAW = "withdraw(uint256,address)"
POLICY = Policy(
    recipients=[R1, R2],
    calls=[
        *({"target": USDC, "selector": s} for s in (
            "transfer(address,uint256)", "approve(address,uint256)", "transferFrom(address,address,uint256)",
            "increaseAllowance(address,uint256)", "decreaseAllowance(address,uint256)")),
        *({"target": NFT, "selector": s} for s in (
            "transfer(address,uint256)", "approve(address,uint256)", "transferFrom(address,address,uint256)",
            "safeTransferFrom(address,address,uint256)", "safeTransferFrom(address,address,uint256,bytes)",
            "setApprovalForAll(address,bool)")),
        *({"target": ITEMS, "selector": s} for s in (
            "safeTransferFrom(address,address,uint256,uint256,bytes)",
            "safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)", "setApprovalForAll(address,bool)")),
        {"target": PERMIT2, "selector": "approve(address,address,uint160,uint48)"},
        {"target": VAULT, "selector": DEPOSIT,
         "arguments": [{"index": 0, "kind": "recipient"}, {"index": 1, "kind": "max", "bound": 500 * E6}]},
        {"target": VAULT, "selector": WITHDRAW,
         "arguments": [{"index": 1, "kind": "recipient"}, {"index": 0, "kind": "max", "bound": 10}]},
        {"target": VAULT, "selector": "harvest()"},
    ],
    caps=[
        {"token": NATIVE, "amount": 1000, "period": 3600, "tier_above": 300, "tier_signers": 3},
        {"token": USDC, "amount": 20_000 * E6, "period": 7200, "delay_threshold": 15_000 * E6,
         "tier_above": 5000 * E6, "tier_signers": 4},
        {"token": NFT, "amount": 3, "period": 3600, "nft": True},
        {"token": ITEMS, "amount": 100, "period": 3600},
    ],
    delay=3600, window=7200,
)


def state(**changes) -> GuardState:
    fields = dict(now=NOW, budget_left={NATIVE: 1000, USDC: 20_000 * E6, NFT: 3, ITEMS: 100}, pending={},
                  allow_refunds=False, safe=SAFE, guard=GUARD, multisend_call_only=MULTISEND)
    return GuardState(**{**fields, **changes})


def abi(signature: str, *args) -> bytes:
    types = signature[signature.index("(") + 1: -1]
    return selector(signature) + encode([t for t in _split(types) if t], list(args))


def _split(types: str) -> list[str]:
    return types.split(",") if types else []


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def entry(to: str, value: int = 0, data: bytes = b"") -> bytes:
    return b"\x00" + bytes.fromhex(to[2:]) + word(value) + word(len(data)) + data


def multisend(*entries: bytes) -> bytes:
    packed = b"".join(entries)
    return MULTI_SEND + word(32) + word(len(packed)) + packed


def check(expected: str, *args, at: GuardState | None = None, **kwargs):
    """evaluate() and assert the error name ("" for allowed); returns the verdict."""
    verdict = evaluate(POLICY, at or state(), *args, **kwargs)
    assert verdict.error == expected, verdict
    delay = {"NotScheduled", "NotYetDue", "EntryExpired"}
    assert verdict.outcome == ("allow" if not expected else "needs-delay" if expected in delay else "deny")
    return verdict


def scheduled(to, value=0, data=b"", operation=0, **changes) -> GuardState:
    return state(pending={intent_id(to, value, data, operation): (7, NOW - 10, NOW + 10)}, **changes)


# --- rule 2: the guard itself ---------------------------------------------------------------------

HOOKS = [
    abi("checkTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes,address)",
        R1, 0, b"", 0, 0, 0, 0, ZERO, ZERO, b"", ZERO),
    abi("checkAfterExecution(bytes32,bool)", bytes(32), False),
    abi("checkModuleTransaction(address,uint256,bytes,uint8,address)", R1, 0, b"", 0, ZERO),
    abi("checkAfterModuleExecution(bytes32,bool)", bytes(32), False),
    abi("schedule(address,uint256,bytes,uint8,bytes)", R1, 0, b"", 0, b""),
    abi("cancel(uint256,bytes)", 1, b""),
    abi("cancelAsGuardian(uint256)", 1),
    selector("delay()"),
    selector("budgetLeft(address)") + word(0),
    bytes.fromhex("12345678"),
]


@pytest.mark.parametrize("data", HOOKS)
def test_hooks_queue_functions_views_and_unknown_selectors_on_the_guard_are_refused(data):
    verdict = check("GuardCallNotAllowed", GUARD, 0, data)
    assert f"GuardCallNotAllowed(selector=0x{data[:4].hex()})" in verdict.detail
    # Always: scheduled or not, top-level or in a batch.
    check("GuardCallNotAllowed", GUARD, 0, data, at=scheduled(GUARD, 0, data))
    check("GuardCallNotAllowed", MULTISEND, 0, multisend(entry(R1, 1), entry(GUARD, 0, data)), 1)


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x01\x02\x03"])
def test_guard_calls_without_a_selector_name_the_zero_selector(data):
    verdict = check("GuardCallNotAllowed", GUARD, 0, data)
    assert verdict.detail == "GuardCallNotAllowed(selector=0x00000000)" and verdict.reason.endswith("[GuardCallNotAllowed]")


def test_settings_need_the_delay_but_revoke_message_runs_at_once():
    refunds = abi("setAllowRefunds(bool)", True)
    assert "changes a guard setting (setAllowRefunds)" in check("NotScheduled", GUARD, 0, refunds).reason
    check("", GUARD, 0, refunds, at=scheduled(GUARD, 0, refunds))
    for data in (abi("setGuardian(address,bool)", R1, True), abi("approveMessage(bytes32)", bytes(32)),
                 abi("setTier(address,uint256,uint256)", USDC, 1, 2), abi("setNft(address,bool)", NFT, False),
                 abi("setArgumentRules(address,bytes4,uint256[])", VAULT, b"\x00" * 4, []),
                 abi("setCancelThreshold(uint256)", 2), abi("setTypedDataAllowed(bytes32,bytes32,bool)",
                                                             bytes(32), bytes(32), True)):
        check("NotScheduled", GUARD, 0, data)
    revoke = abi("revokeMessage(bytes32)", b"\x01" * 32)
    check("", GUARD, 0, revoke)
    check("", MULTISEND, 0, multisend(entry(GUARD, 0, revoke), entry(R1, 1)), 1)


def test_native_value_to_the_guard_is_refused_even_with_a_setting():
    revoke = abi("revokeMessage(bytes32)", b"\x01" * 32)
    verdict = check("GuardCallNotAllowed", GUARD, 1, revoke)
    assert "GuardCallNotAllowed(selector=0xe3b2b8b3)" in verdict.detail
    check("GuardCallNotAllowed", GUARD, 5, b"")


# --- rule 4: the standard token calls ---------------------------------------------------------------


def test_transfers_of_an_nft_collection_charge_one_per_token():
    for data in (abi("transfer(address,uint256)", R1, 10**30),
                 abi("transferFrom(address,address,uint256)", SAFE, R1, 77),
                 abi("safeTransferFrom(address,address,uint256)", SAFE, R1, 77),
                 abi("safeTransferFrom(address,address,uint256,bytes)", SAFE, R1, 77, b"hello")):
        assert charges(POLICY, state(), NFT, 0, data) == {NFT: 1}
        check("", NFT, 0, data)
    check("RecipientNotAllowed", NFT, 0, abi("safeTransferFrom(address,address,uint256)", SAFE, STRANGER, 1))
    three = multisend(*(entry(NFT, 0, abi("transfer(address,uint256)", R1, i)) for i in range(3)))
    assert charges(POLICY, state(), MULTISEND, 0, three, 1) == {NFT: 3}
    four = multisend(*(entry(NFT, 0, abi("transfer(address,uint256)", R1, i)) for i in range(4)))
    check("ExceedsPerTxLimit", MULTISEND, 0, four, 1)


def test_fungible_transfers_charge_the_amount():
    assert charges(POLICY, state(), USDC, 0, abi("transferFrom(address,address,uint256)", STRANGER, R1, 9)) == {USDC: 9}
    assert charges(POLICY, state(), USDC, 0, abi("transfer(address,uint256)", R2, 4)) == {USDC: 4}


def test_an_approval_is_charged_in_full_and_says_so():
    data = abi("approve(address,uint256)", R1, 500 * E6)
    assert charges(POLICY, state(), USDC, 0, data) == {USDC: 500 * E6}
    verdict = evaluate(POLICY, state(), USDC, 0, data, book=BOOK)
    assert verdict.allowed
    note = f"approval charged in full now: 500 USDC; a new approval to {R1} is refused while this one is unspent"
    assert note in verdict.notes and note in verdict.reason
    assert verdict.reason.startswith("allowed: charges 500 USDC (19,500 USDC left after); approval charged")
    increase = abi("increaseAllowance(address,uint256)", R1, 7)
    assert charges(POLICY, state(), USDC, 0, increase) == {USDC: 7}


def test_a_new_approval_is_refused_while_an_older_one_is_unspent():
    data = abi("approve(address,uint256)", R1, 5)
    verdict = check("ApprovalOutstanding", USDC, 0, data, at=state(allowances={(USDC, R1): 3}))
    assert f"ApprovalOutstanding(token={USDC.lower()}, spender={R1.lower()}, outstanding=3)" in verdict.detail
    check("ApprovalOutstanding", USDC, 0, abi("increaseAllowance(address,uint256)", R1, 5),
          at=state(allowances={(USDC, R1): 1}))
    check("", USDC, 0, data, at=state(allowances={(USDC, R2): 3}))  # another spender's allowance does not matter
    # The recipient rule comes first: a stranger is refused as such, whatever the allowance.
    check("RecipientNotAllowed", USDC, 0, abi("approve(address,uint256)", STRANGER, 5),
          at=state(allowances={(USDC, STRANGER): 3}))


def test_allowances_are_read_lazily_only_for_the_approvals_made():
    asked = []

    def allowance(token, spender):
        asked.append((token, spender))
        return 2**256 - 1 if spender == R2 else 0  # R2: the token's allowance() failed

    at = state(allowance_lookup=allowance)
    check("", USDC, 0, abi("transfer(address,uint256)", R1, 5), at=at)
    assert asked == []
    check("", USDC, 0, abi("approve(address,uint256)", R1, 5), at=at)
    verdict = check("ApprovalOutstanding", USDC, 0, abi("approve(address,uint256)", R2, 5), at=at)
    assert f"outstanding={2**256 - 1}" in verdict.detail
    assert asked == [(USDC, R1), (USDC, R2)]


def test_revocations_and_decreases_are_always_allowed():
    for data in (abi("approve(address,uint256)", STRANGER, 0), abi("increaseAllowance(address,uint256)", STRANGER, 0),
                 abi("decreaseAllowance(address,uint256)", STRANGER, 10**30)):
        verdict = check("", USDC, 0, data, at=state(allowances={(USDC, STRANGER): 10}))
        assert "no charge" in verdict.reason
        assert charges(POLICY, state(), USDC, 0, data) == {}
    check("", NFT, 0, abi("approve(address,uint256)", ZERO, 5))  # NFT: approving the zero address revokes


def test_an_nft_approval_charges_one_and_needs_a_recipient():
    assert charges(POLICY, state(), NFT, 0, abi("approve(address,uint256)", R1, 10**40)) == {NFT: 1}
    # No outstanding-allowance check for a collection: each token id has its own approval.
    check("", NFT, 0, abi("approve(address,uint256)", R1, 3), at=state(allowances={(NFT, R1): 1}))
    check("RecipientNotAllowed", NFT, 0, abi("approve(address,uint256)", STRANGER, 3))


def test_approval_for_all_needs_the_delay_and_a_recipient_revoking_it_does_not():
    grant = abi("setApprovalForAll(address,bool)", R1, True)
    assert "approves" in check("NotScheduled", NFT, 0, grant).reason
    assert "hands 0x1111111111111111111111111111111111111111 every token" in check(
        "", NFT, 0, grant, at=scheduled(NFT, 0, grant)).reason
    check("RecipientNotAllowed", ITEMS, 0, abi("setApprovalForAll(address,bool)", STRANGER, True))
    check("", ITEMS, 0, abi("setApprovalForAll(address,bool)", STRANGER, False))
    batch = multisend(entry(R1, 1), entry(ITEMS, 0, abi("setApprovalForAll(address,bool)", R2, True)))
    check("NotScheduled", MULTISEND, 0, batch, 1)


def test_erc1155_transfers_charge_amounts_to_the_collection():
    single = abi("safeTransferFrom(address,address,uint256,uint256,bytes)", SAFE, R1, 5, 40, b"")
    assert charges(POLICY, state(), ITEMS, 0, single) == {ITEMS: 40}
    ids, amounts = [1, 2, 3], [10, 20, 30]
    batch = abi("safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)", SAFE, R2, ids, amounts, b"\x01")
    assert charges(POLICY, state(), ITEMS, 0, batch) == {ITEMS: 60}
    check("ExceedsBudget", ITEMS, 0, batch, at=state(budget_left={NATIVE: 0, USDC: 0, NFT: 0, ITEMS: 59}))
    stranger = abi("safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)", SAFE, STRANGER, [1], [1], b"")
    check("RecipientNotAllowed", ITEMS, 0, stranger)
    uneven = abi("safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)", SAFE, R1, [1, 2], [1], b"")
    check("MalformedCalldata", ITEMS, 0, uneven)
    # The guard's sums saturate (the cap refuses them anyway), in a call and over the transaction.
    huge = abi("safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)", SAFE, R1, [1, 2],
               [2**255, 2**255], b"")
    assert charges(POLICY, state(), ITEMS, 0, huge) == {ITEMS: 2**256 - 1}
    check("ExceedsPerTxLimit", ITEMS, 0, huge)
    both = multisend(entry(ITEMS, 0, huge), entry(ITEMS, 0, single))
    assert charges(POLICY, state(), MULTISEND, 0, both, 1) == {ITEMS: 2**256 - 1}


def test_permit2_approvals_follow_the_approvals_rule():
    def permit(token, spender, amount, expiration=NOW + 100):
        return abi("approve(address,address,uint160,uint48)", token, spender, amount, expiration)

    assert charges(POLICY, state(), PERMIT2, 0, permit(USDC, R1, 700)) == {USDC: 700}
    verdict = evaluate(POLICY, state(), PERMIT2, 0, permit(USDC, R1, 700 * E6), book=BOOK)
    assert "approval charged in full now: 700 USDC" in verdict.reason
    check("", PERMIT2, 0, permit(USDC, STRANGER, 0))  # a revocation
    check("RecipientNotAllowed", PERMIT2, 0, permit(USDC, STRANGER, 1))
    check("CapNotSet", PERMIT2, 0, permit(VAULT, R1, 1))  # charged to the approved token's cap
    live = state(permit2_allowances={(PERMIT2, USDC, R1): (9, NOW)})
    verdict = check("ApprovalOutstanding", PERMIT2, 0, permit(USDC, R1, 1), at=live)
    assert f"ApprovalOutstanding(token={USDC.lower()}, spender={R1.lower()}, outstanding=9)" in verdict.detail
    check("", PERMIT2, 0, permit(USDC, R1, 1), at=state(permit2_allowances={(PERMIT2, USDC, R1): (9, NOW - 1)}))
    check("", PERMIT2, 0, permit(USDC, R1, 1), at=state(permit2_allowances={(PERMIT2, USDC, R1): (0, NOW + 9)}))
    asked = []
    lazy = state(permit2_lookup=lambda *key: asked.append(key) or (5, NOW + 1))
    check("ApprovalOutstanding", PERMIT2, 0, permit(USDC, R2, 1), at=lazy)
    assert asked == [(PERMIT2, USDC, R2)]


# --- strict decoding ------------------------------------------------------------------------------

DIRTY = 1 << 200


def _set_word(data: bytes, index: int, value: int) -> bytes:
    at = 4 + 32 * index
    return data[:at] + word(value) + data[at + 32:]


BYTES_721 = abi("safeTransferFrom(address,address,uint256,bytes)", SAFE, R1, 1, b"\xaa" * 33)
BATCH_1155 = abi("safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)", SAFE, R1, [1, 2], [3, 4], b"\xbb")
MALFORMED = [
    ("transfer: dirty address", USDC, _set_word(abi("transfer(address,uint256)", R1, 1), 0, int(R1, 16) | DIRTY)),
    ("transfer: one byte more", USDC, abi("transfer(address,uint256)", R1, 1) + b"\x00"),
    ("transfer: one byte less", USDC, abi("transfer(address,uint256)", R1, 1)[:-1]),
    ("transferFrom: dirty from", USDC,
     _set_word(abi("transferFrom(address,address,uint256)", SAFE, R1, 1), 0, int(SAFE, 16) | DIRTY)),
    ("decreaseAllowance: dirty spender", USDC,
     _set_word(abi("decreaseAllowance(address,uint256)", R1, 1), 0, int(R1, 16) | DIRTY)),
    ("setApprovalForAll: bool 2", NFT, _set_word(abi("setApprovalForAll(address,bool)", R1, True), 1, 2)),
    ("setApprovalForAll: false but dirty", ITEMS, _set_word(abi("setApprovalForAll(address,bool)", R1, False), 1, 256)),
    ("721 bytes: offset 0xa0", NFT, _set_word(BYTES_721, 3, 0xA0)),
    ("721 bytes: dirty padding", NFT, BYTES_721[:-1] + b"\x01"),
    ("721 bytes: length past the end", NFT, _set_word(BYTES_721, 4, 65)),
    ("721 bytes: extra word", NFT, BYTES_721 + bytes(32)),
    ("1155 batch: amounts offset moved", ITEMS, _set_word(BATCH_1155, 3, 0xA0)),
    ("1155 batch: ids offset 0", ITEMS, _set_word(BATCH_1155, 2, 0)),
    ("1155 batch: huge length", ITEMS, _set_word(BATCH_1155, 5, 2**255)),
    ("1155 batch: cut", ITEMS, BATCH_1155[:-32]),
    ("1155 single: short", ITEMS, abi("safeTransferFrom(address,address,uint256,uint256,bytes)", SAFE, R1, 1, 1,
                                      b"")[:-32]),
    ("permit2: dirty uint160", PERMIT2,
     _set_word(abi("approve(address,address,uint160,uint48)", USDC, R1, 1, NOW), 2, 2**160)),
    ("permit2: dirty uint48", PERMIT2,
     _set_word(abi("approve(address,address,uint160,uint48)", USDC, R1, 1, NOW), 3, 2**48)),
    ("permit2: dirty token", PERMIT2,
     _set_word(abi("approve(address,address,uint160,uint48)", USDC, R1, 1, NOW), 0, int(USDC, 16) | DIRTY)),
]


@pytest.mark.parametrize("label, target, data", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_standard_token_calls_are_decoded_strictly(label, target, data):
    verdict = check("MalformedCalldata", target, 0, data)
    assert f"MalformedCalldata(to={target.lower()})" in verdict.detail


def test_the_allowlist_comes_before_the_decoding_and_the_decoding_before_the_recipient():
    short = abi("safeTransferFrom(address,address,uint256)", SAFE, STRANGER, 1)[:-1]
    check("CallNotAllowed", USDC, 0, short)  # not allowlisted on USDC: decoding never starts
    check("MalformedCalldata", NFT, 0, short)
    dirty_stranger = _set_word(abi("transfer(address,uint256)", STRANGER, 1), 0, int(STRANGER, 16) | DIRTY)
    check("MalformedCalldata", USDC, 0, dirty_stranger)


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(data=st.data())
def test_the_strict_decoder_reads_exactly_what_eth_abi_writes(data):
    sel = data.draw(st.sampled_from(sorted(TOKEN_CALLS)))
    _, types = TOKEN_CALLS[sel]
    values = []
    for kind in types:
        if kind == "address":
            values.append(data.draw(st.integers(0, 2**160 - 1)).to_bytes(20, "big"))
        elif kind == "bool":
            values.append(data.draw(st.booleans()))
        elif kind == "bytes":
            values.append(data.draw(st.binary(max_size=70)))
        elif kind == "uint256[]":
            values.append(data.draw(st.lists(st.integers(0, 2**256 - 1), max_size=3)))
        else:
            top = {"uint160": 2**160 - 1, "uint48": 2**48 - 1}.get(kind, 2**256 - 1)
            values.append(data.draw(st.integers(0, top)))
    encoded = sel + encode(list(types), values)
    decoded = _strict_decode(types, encoded)
    expected = [int.from_bytes(v, "big") if isinstance(v, bytes) and k == "address" else int(v)
                if k == "bool" else v for k, v in zip(types, values, strict=True)]
    assert decoded == expected
    assert _strict_decode(types, encoded + bytes(data.draw(st.integers(1, 64)))) is None
    assert _strict_decode(types, encoded[:-data.draw(st.integers(1, len(encoded) - 4))]) is None


# --- rule 5: argument rules --------------------------------------------------------------------------


def test_argument_rules_check_recipients_and_bounds_in_order():
    check("", VAULT, 0, abi(DEPOSIT, R1, 500 * E6))
    verdict = check("ArgumentNotAllowed", VAULT, 0, abi(DEPOSIT, STRANGER, 1))
    deposit = "0x" + selector(DEPOSIT).hex()
    assert f"ArgumentNotAllowed(target={VAULT.lower()}, selector={deposit}, index=0)" in verdict.detail
    assert f"{STRANGER} is not an allowlisted recipient" in verdict.reason
    verdict = check("ArgumentNotAllowed", VAULT, 0, abi(DEPOSIT, R1, 500 * E6 + 1))
    assert "index=1" in verdict.detail and "above the bound" in verdict.reason
    dirty = _set_word(abi(DEPOSIT, R1, 1), 0, int(R1, 16) | DIRTY)
    assert "not a clean address" in check("ArgumentNotAllowed", VAULT, 0, dirty).reason
    # Storage order, not word order: withdraw's first rule is on word 1.
    assert "index=1" in check("ArgumentNotAllowed", VAULT, 0, abi(WITHDRAW, 11, STRANGER)).detail
    assert "index=0" in check("ArgumentNotAllowed", VAULT, 0, abi(WITHDRAW, 11, R1)).detail
    check("", VAULT, 0, abi(WITHDRAW, 10, R2) + b"extra bytes are not the rule's business")
    check("", VAULT, 0, selector("harvest()") + b"anything")  # no rules: the allowlist alone


def test_calldata_too_short_for_a_rule_is_malformed():
    check("MalformedCalldata", VAULT, 0, abi(DEPOSIT, R1, 1)[:-1])
    check("MalformedCalldata", VAULT, 0, selector(DEPOSIT))
    # The first rule (word 1) already needs the whole calldata.
    check("MalformedCalldata", VAULT, 0, abi(WITHDRAW, 1, R1)[:36])
    check("CallNotAllowed", VAULT, 0, selector("withdraw(uint256)"))


def test_argument_rules_on_standard_token_calls_are_refused_by_the_model():
    with pytest.raises(ValidationError, match="would never apply"):
        AllowedCall(target=USDC, selector="transfer(address,uint256)", arguments=[{"index": 0, "kind": "recipient"}])
    assert ArgumentRule(index=3, kind="max", bound=9).word == (2 << 248) | (3 << 240) | 9


# --- rules 8 and 9: the delay and the tiers ------------------------------------------------------------


def test_enable_module_warns_that_a_module_bypasses_the_guard():
    data = abi("enableModule(address)", R1)
    verdict = check("NotScheduled", SAFE, 0, data)
    assert verdict.warnings == (MODULE_WARNING,)
    assert "bypasses the transaction guard on Safe 1.3.0/1.4.1" in MODULE_WARNING
    assert check("", SAFE, 0, data, at=scheduled(SAFE, 0, data)).warnings == (MODULE_WARNING,)
    assert check("NotScheduled", SAFE, 0, abi("changeThreshold(uint256)", 1)).warnings == ()


def test_a_tier_states_the_signatures_it_needs_when_they_are_unknown():
    data = abi("transfer(address,uint256)", R1, 5001 * E6)
    verdict = evaluate(POLICY, state(safe_threshold=3), USDC, 0, data, book=BOOK)
    assert verdict.allowed
    assert "needs 4 owner signatures (tier above 5,000 USDC); the Safe's threshold is 3" in verdict.notes
    assert evaluate(POLICY, state(), USDC, 0, abi("transfer(address,uint256)", R1, 5000 * E6)).notes == ()
    # A tier at or below the Safe's threshold: the guard does not ask, the Safe already does.
    verdict = evaluate(POLICY, state(safe_threshold=4, signatures=0), USDC, 0, data, book=BOOK)
    assert verdict.allowed and "the Safe's threshold of 4 already asks for them" in verdict.reason


def test_a_tier_refuses_too_few_signatures_with_the_largest_requirement():
    usdc = entry(USDC, 0, abi("transfer(address,uint256)", R1, 5001 * E6))
    batch = multisend(usdc, entry(R2, 301))
    verdict = check("NotEnoughSignatures", MULTISEND, 0, batch, 1, at=state(signatures=3, safe_threshold=2))
    assert verdict.reason.endswith("the Safe's threshold is 2; the proposal has 3 [NotEnoughSignatures]")
    assert verdict.detail == "NotEnoughSignatures(required=4)"
    check("", MULTISEND, 0, batch, 1, at=state(signatures=4))
    assert check("NotEnoughSignatures", R2, 301, at=state(signatures=2)).detail.endswith("(required=3)")
    check("", R2, 300, at=state(signatures=0))


def test_the_tier_comes_after_the_charges_and_the_queue():
    big = abi("transfer(address,uint256)", R1, 15_001 * E6)  # above the delay threshold and the tier
    check("NotScheduled", USDC, 0, big, at=state(signatures=1))
    check("NotEnoughSignatures", USDC, 0, big, at=scheduled(USDC, 0, big, signatures=1))
    low = state(signatures=1, budget_left={NATIVE: 1000, USDC: 5001 * E6 - 1, NFT: 3, ITEMS: 100})
    check("ExceedsBudget", USDC, 0, abi("transfer(address,uint256)", R1, 5001 * E6), at=low)


# --- drift against a guard without the v2 views ----------------------------------------------------------


class V1Guard:
    """A guard that answers the v1 views in sync with POLICY and lacks the v2 ones."""

    def isAllowedCall(self, target, sel):
        return True

    def isRecipient(self, recipient):
        return True

    def capConfig(self, token):
        cap = POLICY.cap_for(token)
        return (cap.amount, cap.period, cap.per_tx_limit, cap.delay_above) if cap else (0, 0, 0, 0)

    def delay(self):
        return POLICY.delay

    def window(self):
        return POLICY.window

    def allowRefunds(self):
        return False

    def __getattr__(self, name):
        def missing(*args):
            raise RuntimeError(f"{name}: the call returned no data")  # what the v1 guard's empty fallback gives
        return missing


class V2Guard(V1Guard):
    """The v2 views, with one difference of each kind from POLICY."""

    def argumentRules(self, target, sel):
        call = next(c for c in POLICY.calls if (c.target, c.selector) == (target, sel))
        return [rule.word for rule in call.arguments][:1]

    def isNft(self, token):
        return token == ITEMS

    def tierConfig(self, token):
        cap = POLICY.cap_for(token)
        return (cap.tier_amount, 2) if token == USDC else (0, cap.tier_signers) if cap.tier_signers == 0 else \
            (cap.tier_amount, cap.tier_signers)

    def cancelThreshold(self):
        return 2

    def isGuardian(self, guardian):
        return False


def test_drift_against_a_v1_guard_is_lines_not_a_crash():
    policy = POLICY.model_copy(update={"guardians": (R1,)})
    lines = policy_drift(policy, V1Guard())
    assert lines == [
        "the guard has no argumentRules view (a v1 guard?): argument rules cannot be compared",
        "the guard has no isNft view (a v1 guard?): NFT kinds cannot be compared",
        "the guard has no tierConfig view (a v1 guard?): tiers cannot be compared",
        "the guard has no cancelThreshold view (a v1 guard?): the cancel threshold cannot be compared",
        "the guard has no isGuardian view (a v1 guard?): guardians cannot be compared",
    ]


def test_drift_names_each_v2_setting_that_differs():
    policy = POLICY.model_copy(update={"guardians": (R2,)})
    lines = policy_drift(policy, V2Guard())
    deposit, withdraw = selector(DEPOSIT).hex(), selector(WITHDRAW).hex()
    assert lines == [
        (f"argument rules of selector 0x{deposit} on {VAULT}: policy [word 0 recipient, word 1 max <= {500 * E6}], "
         "guard [word 0 recipient]"),
        (f"argument rules of selector 0x{withdraw} on {VAULT}: policy [word 1 recipient, word 0 max <= 10], "
         "guard [word 1 recipient]"),
        (f"tier of token {USDC}: policy 4 signatures above {5000 * E6} base units of {USDC}, guard 2 signatures above "
         f"{5000 * E6} base units of {USDC}"),
        f"token {NFT}: policy an NFT collection, guard fungible",
        f"token {ITEMS}: policy fungible, guard an NFT collection",
        "cancel_threshold: policy 1, guard 2",
        f"guardian {R2} is named by the policy but is not a guardian of the guard",
    ]


# --- config and words ------------------------------------------------------------------------------------

CONFIG = f"""
treasury:
  store: {{store}}
  treasuries:
    ops:
      safe: "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762"
      chain_id: 1
      tokens:
        USDC: {{{{address: "{USDC}", decimals: 6}}}}
        PUNKS: {{{{address: "{NFT}", decimals: 0}}}}
      policy:
        recipients: ["{R1}"]
        calls:
          - {{{{target: USDC, function: "transfer(address,uint256)"}}}}
          - target: "{VAULT}"
            function: "{DEPOSIT}"
            arguments: [{{{{index: 0, kind: recipient}}}}, {{{{index: 1, kind: max, amount: "500 USDC"}}}}]
          - {{{{target: "{VAULT}", function: "{WITHDRAW}", arguments: [{{{{index: 0, kind: max, amount: 10}}}}]}}}}
        caps:
          - {{{{token: USDC, amount: "200,000", period: 1d, tier_above: "100,000 USDC", tier_signers: 4}}}}
          - {{{{token: PUNKS, amount: 2, period: 7d, nft: true}}}}
        cancel_threshold: 2
        guardians: ["{R2}"]
"""


def write_config(tmp_path, *change):
    path = tmp_path / "ape-config.yaml"
    text = CONFIG.format(store=tmp_path / "s.db")
    if change:
        assert change[0] in text
        text = text.replace(*change)
    path.write_text(text)
    return path


def test_config_keys_for_the_v2_policy(tmp_path):
    policy = load_config(write_config(tmp_path)).treasury("ops").to_policy()
    deposit, withdraw = policy.calls[1], policy.calls[2]
    assert [r.model_dump() for r in deposit.arguments] == [
        {"index": 0, "kind": "recipient", "bound": 0, "token": None},
        {"index": 1, "kind": "max", "bound": 500 * E6, "token": USDC}]  # the token: for the words of a verdict
    assert withdraw.arguments[0].bound == 10
    usdc, punks = policy.cap_for(USDC), policy.cap_for(NFT)
    assert (usdc.tier_above, usdc.tier_signers, usdc.nft) == (100_000 * E6, 4, False)
    assert (punks.nft, punks.amount, punks.tier_signers) == (True, 2, 0)
    assert (policy.cancel_threshold, policy.guardians) == (2, (R2,))


@pytest.mark.parametrize("old, new, message", [
    ("{index: 1, kind: max, amount: \"500 USDC\"}", "{index: 1, kind: max}", "a max rule needs an amount"),
    ("{index: 0, kind: recipient}", "{index: 0, kind: recipient, amount: 5}", "a recipient rule has none"),
    ("{index: 0, kind: recipient}", "{index: 0, kind: payee}", "kind"),
    ("{index: 0, kind: recipient}", "{index: 256, kind: recipient}", "index"),
    ("amount: \"500 USDC\"", "amount: \"500\"", "needs a token symbol"),
    ("amount: \"500 USDC\"", "amount: 0.5", "must be quoted"),
    ("tier_signers: 4", "tier_signers: 256", "tier_signers"),
    ("tier_signers: 4", "tier_signers: \"4\"", "tier_signers"),
    (", tier_signers: 4", "", "a tier needs both tier_above and tier_signers"),
    ("tier_above: \"100,000 USDC\"", "tier_above: \"1 PUNKS\"", "tier_above '1 PUNKS' is not in USDC"),
    ("nft: true", "nft: yes please", "nft"),
    ("cancel_threshold: 2", "cancel_threshold: 0", "cancel_threshold"),
    (f'guardians: ["{R2}"]', 'guardians: ["0x1234"]', "guardian"),
    (f'guardians: ["{R2}"]', f'guardians: ["{R2}", "{R2}"]', "a guardian is listed more than once"),
    ('function: "transfer(address,uint256)"}',
     'function: "transfer(address,uint256)", arguments: [{index: 0, kind: recipient}]}', "would never apply"),
])
def test_bad_v2_config_is_one_clear_error(tmp_path, old, new, message):
    with pytest.raises(InvalidInput) as error:
        load_config(write_config(tmp_path, old, new)).treasury("ops").to_policy()
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("name, fields, words", [
    ("GuardCallNotAllowed", {"selector": selector("checkAfterExecution(bytes32,bool)")},
     "not checkAfterExecution(bytes32,bool)"),
    ("GuardCallNotAllowed", {"selector": bytes(4)}, "not calldata without a selector"),
    ("ArgumentNotAllowed", {"target": VAULT, "selector": selector("deposit()"), "index": 1},
     f"argument word 1 of deposit() on {VAULT}"),
    ("ApprovalOutstanding", {"token": USDC, "spender": R1, "outstanding": 2_500_000},
     f"the Safe still allows {R1} to spend 2.5 USDC"),
    ("ApprovalOutstanding", {"token": USDC, "spender": R1, "outstanding": 2**256 - 1}, "could not be read"),
    ("NotEnoughSignatures", {"required": 4}, "needs 4 valid owner signatures"),
    ("NotGuardian", {"caller": R1}, f"{R1} is not a guardian"),
    ("AlreadyCancelledBy", {"canceller": R1}, f"{R1} already cancelled this intent"),
    ("RescheduleTooEarly", {"intentId": b"\x01" * 32, "notBefore": 1_999_987_200},
     "scheduled again from 2033-05-18 00:00:00 UTC"),
    ("InvalidCancelThreshold", {"threshold": 0}, "at least 1"),
    ("InvalidTier", {"signers": 256}, "at most 255"),
])
def test_the_new_guard_errors_in_words(name, fields, words):
    sentence = explain_guard_error(name, fields, BOOK)
    assert words in sentence and sentence.endswith(f"[{name}]")
