"""The Safe may call its TreasuryGuard only for the guard's settings (v2 rule 2).

A Safe transaction (or a batch entry) to the guard that calls a hook, the queue's schedule / cancel,
a view, an unknown selector, or sends value is refused with GuardCallNotAllowed, whether it was
scheduled or not: otherwise a batch could call checkAfterExecution(..., false) on its way and have
the guard refund its own charges, or replay checkTransaction to burn the budget. Every setting
needs the delay queue, except revokeMessage, which only takes power away. The list of settings the
guard accepts is checked against its ABI, so a new setting cannot silently fall outside the rule.
"""

import pytest
from eth_abi import encode
from guard_helpers import *

from treasury.chain.guard import guard_contract_type

REFUSED = {"checkTransaction", "checkAfterExecution", "checkModuleTransaction", "checkAfterModuleExecution",
           "schedule", "cancel", "cancelAsGuardian"}
AT_ONCE = {"revokeMessage"}
DUMMY = {"address": PAYEE, "bool": True, "uint256": 1, "uint8": 0, "bytes32": b"\x11" * 32, "bytes4": TRANSFER,
         "bytes": b"", "uint256[]": []}


def _functions(*, views: bool) -> list[dict]:
    return [item for item in guard_contract_type().model_dump(mode="json")["abi"]
            if item["type"] == "function" and (item["stateMutability"] in ("view", "pure")) == views]


def _encode(item: dict, overrides: dict | None = None) -> bytes:
    types = [i["type"] for i in item["inputs"]]
    args = [(overrides or {}).get(i["name"], DUMMY[t]) for i, t in zip(item["inputs"], types, strict=True)]
    return selector(f"{item['name']}({','.join(types)})") + encode(types, args)


def _hook_call(guarded, name: str) -> bytes:
    g = guarded
    return {
        # the batch would ask the guard to give back what it was just charged
        "checkAfterExecution": g.encode_guard("checkAfterExecution", b"\x00" * 32, False),
        "checkAfterModuleExecution": g.encode_guard("checkAfterModuleExecution", b"\x00" * 32, False),
        "checkTransaction": g.encode_guard("checkTransaction", g.token.address, 0, transfer(PAYEE, 100 * UNIT), 0, 0, 0, 0,
                                           ZERO_ADDRESS, ZERO_ADDRESS, b"", ZERO_ADDRESS),
        "checkModuleTransaction": g.encode_guard("checkModuleTransaction", g.token.address, 0, transfer(PAYEE, UNIT), 0, ATTACKER),
        "schedule": g.encode_guard("schedule", g.token.address, 0, transfer(ATTACKER, UNIT), 0, b""),
        "cancel": g.encode_guard("cancel", 1, b""),
        "cancelAsGuardian": selector("cancelAsGuardian(uint256)") + encode(["uint256"], [1]),
        "a view": g.encode_guard("budgetLeft", g.token.address),
        "an unknown selector": bytes.fromhex("deadbeef") + encode(["uint256"], [1]),
        "3 bytes": bytes.fromhex("c0ffee"),
        "empty calldata": b"",
    }[name]


CALLS = ["checkAfterExecution", "checkAfterModuleExecution", "checkTransaction", "checkModuleTransaction", "schedule",
         "cancel", "cancelAsGuardian", "a view", "an unknown selector", "3 bytes", "empty calldata"]


@pytest.mark.parametrize("how", ["directly", "inside a batch"])
@pytest.mark.parametrize("name", CALLS)
def test_calls_to_the_guard_other_than_settings_are_refused(guarded, name, how):
    data = _hook_call(guarded, name)
    if how == "directly":
        assert guarded.attack(guarded.guard.address, 0, data) == "GuardCallNotAllowed"
    else:
        pay = Call(guarded.token.address, 0, transfer(PAYEE, 10 * UNIT))
        assert guarded.attack_batch(pay, Call(guarded.guard.address, 0, data)) == "GuardCallNotAllowed"


@pytest.mark.parametrize("data", ["a setting", "revokeMessage", "empty calldata"])
def test_value_sent_to_the_guard_is_refused(guarded, data):
    g = guarded
    payload = {
        "a setting": g.encode_guard("setRecipient", PAYEE, True),
        "revokeMessage": g.encode_guard("revokeMessage", b"\x22" * 32),
        "empty calldata": b"",
    }[data]
    assert g.attack(g.guard.address, 1, payload) == "GuardCallNotAllowed"


@pytest.mark.parametrize("name", ["checkAfterExecution", "checkTransaction", "an unknown selector"])
def test_the_delay_queue_does_not_make_a_hook_call_allowed(guarded, name):
    """Schedule the batch that calls the hook, wait until it is due: still refused."""
    g = guarded
    pay = Call(g.token.address, 0, transfer(PAYEE, 100 * UNIT))
    target, data = g.batch(pay, Call(g.guard.address, 0, _hook_call(g, name)))
    entry = g.schedule(target, 0, data, 1)
    g.wait_until_due(entry)
    assert g.attack(target, 0, data, 1) == "GuardCallNotAllowed"
    assert g.guard.pendingEntryOf(g.guard.intentId(target, 0, data, 1)) == entry  # not consumed either


def test_every_setting_in_the_abi_needs_the_delay_and_nothing_else_reaches_the_guard(guarded):
    """Drift check: each state-changing function of the guard is either a setting the Safe may call
    through the queue (revokeMessage at once) or refused outright."""
    g = guarded
    seen = set()
    for item in _functions(views=False):
        name = item["name"]
        seen.add(name)
        data = _encode(item)
        if name in REFUSED:
            assert g.attack(g.guard.address, 0, data) == "GuardCallNotAllowed", name
        elif name in AT_ONCE:
            g.execute(g.guard.address, 0, data)
        else:
            assert g.attack(g.guard.address, 0, data) == "NotScheduled", name
    assert REFUSED | AT_ONCE <= seen
    for item in _functions(views=True):
        assert g.attack(g.guard.address, 0, _encode(item)) == "GuardCallNotAllowed", item["name"]


def test_revoke_message_runs_at_once_and_in_a_batch(guarded):
    g = guarded
    revoke = g.encode_guard("revokeMessage", b"\x33" * 32)
    g.execute(g.guard.address, 0, revoke)
    target, data = g.batch(Call(g.token.address, 0, transfer(PAYEE, UNIT)), Call(g.guard.address, 0, revoke))
    before = g.token_balance(PAYEE)
    g.execute(target, 0, data, 1)
    assert g.token_balance(PAYEE) == before + UNIT
