"""TreasuryGuard's delay queue: schedule with owner signatures, wait, run once; cancel; expire.

What the queue must guarantee even to a compromised quorum: nothing big or structural runs before
`delay` has passed (time to notice it and cancel), an entry runs at most once, signatures bind to
one entry, scheduling never bypasses the other rules, a stuck entry blocks nothing, and a
scheduled `setGuard(address(0))` always works so the guard can never brick the Safe.
"""

import pytest
from eth_utils import to_checksum_address
from guard_helpers import *

from treasury.chain.guard import (
    cancel_entry,
    cancel_typed_data,
    entries,
    installed_guard,
    schedule_typed_data,
    sign_typed_data,
)
from treasury.execution.send import ExecutionFailed
from treasury.policy.model import Policy

BIG = 300 * UNIT  # above the 100 delay threshold, within the 500 per-transaction limit
NEW_OWNER = to_checksum_address("0x" + "0b" * 20)
NEW_PAYEE = to_checksum_address("0x" + "a3" * 20)


def big_transfer(guarded, amount=BIG):
    return guarded.token.address, 0, transfer(PAYEE, amount), 0


def status(guarded, entry_id):
    return next(e.status for e in entries(guarded.guard) if e.entry_id == entry_id)


def schedule_signatures(guarded, to, value, data, operation, nonce=None, signers=None):
    """Owner signatures scheduling the intent at its schedule `nonce` (by default the current one)."""
    if nonce is None:
        nonce = guarded.guard.intentState(guarded.guard.intentId(to, value, data, operation))[0]
    expected = bytes(guarded.guard.scheduleHash(to, value, data, operation, nonce))
    typed = schedule_typed_data(guarded.guard, to, value, data, operation, nonce)
    return sign_typed_data(signers or guarded.signers, typed, expected)


def cancel_signatures(guarded, entry_id, signers=None):
    expected = bytes(guarded.guard.cancelHash(entry_id))
    return sign_typed_data(signers or guarded.signers, cancel_typed_data(guarded.guard, entry_id), expected)


# --- schedule, wait, run once ------------------------------------------------------------------------


def test_scheduled_transfer_runs_once_due_and_consumes_its_entry(guarded):
    intent = big_transfer(guarded)
    assert guarded.predict(*intent).error == "NotScheduled"
    entry = guarded.schedule(*intent)
    assert status(guarded, entry) == "pending"
    assert guarded.predict(*intent).error == "NotYetDue"
    assert guarded.attack(*intent) == "NotYetDue"

    guarded.wait_until_due(entry)
    assert guarded.predict(*intent).allowed
    guarded.execute(*intent)
    assert guarded.token_balance(PAYEE) == BIG
    assert guarded.budget() == 1000 * UNIT - BIG
    assert status(guarded, entry) == "executed"
    assert guarded.guard.pendingEntryOf(guarded.guard.intentId(*intent)) == 0

    # the same intent again needs a new entry
    assert guarded.attack(*intent) == "NotScheduled"
    again = guarded.schedule(*intent)
    assert again == entry + 1
    guarded.wait_until_due(again)
    guarded.execute(*intent)
    assert guarded.token_balance(PAYEE) == 2 * BIG


@pytest.mark.parametrize("guarded", ["1.4.1"], indirect=True)
def test_an_entry_runs_from_its_eta_and_not_one_second_earlier(guarded):
    intent = big_transfer(guarded)
    entry = guarded.schedule(*intent)
    eta = guarded.eta(entry)
    assert eta - head_timestamp() == DELAY
    assert guarded.attack(*intent, at=eta - 1) == "NotYetDue"
    guarded.execute(*intent, at=eta)
    assert guarded.token_balance(PAYEE) == BIG


def test_an_expired_entry_cannot_run_and_can_be_scheduled_again(guarded):
    intent = big_transfer(guarded)
    entry = guarded.schedule(*intent)
    expiry = guarded.expiry(entry)
    assert expiry - guarded.eta(entry) == WINDOW
    assert guarded.attack(*intent, at=expiry) == "EntryExpired"
    assert status(guarded, entry) == "expired"
    again = guarded.schedule(*intent)  # replaces the expired entry
    assert guarded.guard.pendingEntryOf(guarded.guard.intentId(*intent)) == again
    guarded.wait_until_due(again)
    guarded.execute(*intent)
    assert guarded.token_balance(PAYEE) == BIG


def test_a_cancelled_entry_cannot_run(guarded):
    intent = big_transfer(guarded)
    entry = guarded.schedule(*intent)
    cancel_entry(guarded.guard, entry, signers=guarded.signers, sender=guarded.relayer)
    assert status(guarded, entry) == "cancelled"
    guarded.wait_until_due(entry)
    assert guarded.attack(*intent) == "NotScheduled"


def test_a_cancel_cannot_be_replayed(guarded):
    entry = guarded.schedule(*big_transfer(guarded))
    signatures = cancel_signatures(guarded, entry)
    guarded.guard.cancel(entry, signatures, sender=guarded.relayer)
    replay = guarded.encode_guard("cancel", entry, signatures)
    assert send_expecting_revert(guarded.relayer.address, guarded.guard.address, replay) == "EntryNotPending"


def test_old_cancel_signatures_cannot_cancel_a_rescheduled_entry(guarded):
    intent = big_transfer(guarded)
    first = guarded.schedule(*intent)
    old_signatures = cancel_signatures(guarded, first)
    guarded.guard.cancel(first, old_signatures, sender=guarded.relayer)
    wait_until(guarded.eta(first))  # a cancelled intent waits out the cancelled entry's delay
    second = guarded.schedule(*intent)
    refused = send_expecting_revert(guarded.relayer.address, guarded.guard.address, guarded.encode_guard("cancel", second, old_signatures))
    assert refused == "GS026"  # the signatures recover to no owner for the second entry's hash
    assert status(guarded, second) == "pending"
    guarded.wait_until_due(second)
    guarded.execute(*intent)
    assert guarded.token_balance(PAYEE) == BIG


@pytest.mark.parametrize(
    "case, error",
    [
        ("one signature", "GS020"),
        ("a non-owner co-signs", "GS026"),
        ("the same owner twice", "GS026"),
        ("signed for another intent", "GS026"),
        ("signed for the next nonce", "GS026"),
    ],
)
def test_schedule_needs_threshold_owner_signatures_of_this_intent_and_nonce(guarded, case, error):
    to, value, data, operation = big_transfer(guarded)
    entry_id = guarded.guard.nextEntryId()
    nonce = guarded.guard.intentState(guarded.guard.intentId(to, value, data, operation))[0]
    signed = {
        "one signature": lambda: schedule_signatures(guarded, to, value, data, operation, nonce, guarded.signers[:1]),
        "a non-owner co-signs": lambda: schedule_signatures(guarded, to, value, data, operation, nonce, [guarded.owners[0], guarded.relayer]),
        "the same owner twice": lambda: 2 * schedule_signatures(guarded, to, value, data, operation, nonce, guarded.signers[:1]),
        "signed for another intent": lambda: schedule_signatures(guarded, to, value, transfer(PAYEE, 1), operation, nonce),
        "signed for the next nonce": lambda: schedule_signatures(guarded, to, value, data, operation, nonce + 1),
    }[case]()
    schedule_call = guarded.encode_guard("schedule", to, value, data, operation, signed)
    assert send_expecting_revert(guarded.relayer.address, guarded.guard.address, schedule_call) == error
    assert guarded.guard.nextEntryId() == entry_id
    assert guarded.guard.pendingEntryOf(guarded.guard.intentId(to, value, data, operation)) == 0


def test_schedule_signatures_cannot_be_replayed(guarded):
    to, value, data, operation = big_transfer(guarded)
    entry = guarded.guard.nextEntryId()
    signatures = schedule_signatures(guarded, to, value, data, operation)
    schedule_call = guarded.encode_guard("schedule", to, value, data, operation, signatures)
    guarded.guard.schedule(to, value, data, operation, signatures, sender=guarded.relayer)
    assert send_expecting_revert(guarded.relayer.address, guarded.guard.address, schedule_call) == "AlreadyScheduled"
    guarded.wait_until_due(entry)
    guarded.execute(to, value, data, operation)
    # once the entry is used, the same signatures cannot queue the intent again
    assert send_expecting_revert(guarded.relayer.address, guarded.guard.address, schedule_call) == "GS026"
    assert guarded.guard.nextEntryId() == entry + 1


def test_a_stuck_entry_blocks_nothing(guarded):
    stuck = guarded.schedule(*big_transfer(guarded, 400 * UNIT))
    other = guarded.schedule(*big_transfer(guarded, 200 * UNIT))
    guarded.execute(guarded.token.address, 0, transfer(PAYEE2, UNIT))  # unscheduled traffic flows
    guarded.wait_until_due(other)
    guarded.execute(*big_transfer(guarded, 200 * UNIT))
    assert status(guarded, stuck) == "pending"
    wait_until(guarded.expiry(stuck))
    assert status(guarded, stuck) == "expired"
    later = guarded.schedule(*big_transfer(guarded, 150 * UNIT))
    guarded.wait_until_due(later)
    guarded.execute(*big_transfer(guarded, 150 * UNIT))
    guarded.execute(guarded.token.address, 0, transfer(PAYEE2, UNIT))
    assert guarded.token_balance(PAYEE) == 350 * UNIT
    assert guarded.token_balance(PAYEE2) == 2 * UNIT


@pytest.mark.parametrize(
    "case, error",
    [
        ("a stranger as recipient", "RecipientNotAllowed"),
        ("a Bybit-style delegatecall", "DelegateCallNotAllowed"),
        ("above the per-transaction limit", "ExceedsPerTxLimit"),
        ("above the budget left", "ExceedsBudget"),
    ],
)
def test_scheduling_does_not_bypass_the_rules(guarded, project, safe_deployer, case, error):
    if case == "a Bybit-style delegatecall":
        overwriter = safe_deployer.deploy(project.SingletonOverwriter)
        intent = (overwriter.address, 0, transfer(ATTACKER, 0), 1)
    elif case == "above the budget left":
        for _ in range(7):
            guarded.execute(guarded.token.address, 0, transfer(PAYEE, 100 * UNIT))
        intent = big_transfer(guarded, 301 * UNIT)
    else:
        intent = {
            "a stranger as recipient": (guarded.token.address, 0, transfer(ATTACKER, BIG), 0),
            "above the per-transaction limit": big_transfer(guarded, 501 * UNIT),
        }[case]
    entry = guarded.schedule(*intent)
    guarded.wait_until_due(entry)
    assert guarded.attack(*intent) == error
    assert status(guarded, entry) == "pending"


# --- configuration changes through the queue -------------------------------------------------------


@pytest.fixture(scope="module", params=VERSIONS)
def locked(request, make_safe, owners, safe_deployer, relayer, project):
    """A guarded Safe whose policy allows nothing at all: no recipient, no call, no cap."""
    return build_guarded_safe(
        version=request.param, salt_nonce=module_salt(request), make_safe=make_safe, owners=owners,
        deployer=safe_deployer, relayer=relayer, project=project,
        policy_for=lambda *_: Policy(delay=DELAY, window=WINDOW),
    )


def test_a_scheduled_guard_removal_always_works(locked):
    remove = (locked.address, 0, locked.encode_safe("setGuard", ZERO_ADDRESS), 0)
    assert locked.attack(PAYEE, UNIT) == "RecipientNotAllowed"
    assert locked.attack(*remove) == "NotScheduled"
    entry = locked.schedule(*remove)
    assert locked.attack(*remove) == "NotYetDue"
    locked.wait_until_due(entry)
    # refunds stay off even on the way out: a transaction without one is always possible
    assert locked.attack(*remove, gas_price=1) == "RefundsNotAllowed"
    locked.execute(*remove)
    assert installed_guard(locked.address) == ZERO_ADDRESS
    assert status(locked, entry) == "executed"
    # on 1.5.0 the guard stays the module guard: removing that is a configuration change of its own
    module_guard = storage_word(locked.address, MODULE_GUARD_STORAGE_SLOT)
    assert module_guard == (int(locked.guard.address, 16) if locked.version == "1.5.0" else 0)
    # unguarded now: the owners can do what the policy never allowed
    locked.execute(ATTACKER, UNIT)
    assert locked.eth_balance(ATTACKER) == UNIT


def test_the_removal_escape_covers_exactly_set_guard_zero(locked):
    """A scheduled batch that removes the guard and pays a stranger gets no escape."""
    target, data = locked.batch(Call(locked.address, 0, locked.encode_safe("setGuard", ZERO_ADDRESS)), Call(ATTACKER, UNIT))
    entry = locked.schedule(target, 0, data, 1)
    locked.wait_until_due(entry)
    assert locked.attack(target, 0, data, 1) == "RecipientNotAllowed"


def test_a_scheduled_owner_addition_runs_after_the_delay(guarded):
    add = (guarded.address, 0, guarded.encode_safe("addOwnerWithThreshold", NEW_OWNER, 2), 0)
    entry = guarded.schedule(*add)
    assert guarded.attack(*add, at=guarded.eta(entry) - 1) == "NotYetDue"
    guarded.execute(*add, at=guarded.eta(entry))
    config = guarded.config()
    assert NEW_OWNER in config["owners"] and len(config["owners"]) == 4
    assert config["threshold"] == 2
    assert config["guard"] == int(guarded.guard.address, 16)


def test_a_scheduled_cap_change_takes_effect(guarded):
    token = guarded.token.address
    raise_cap = (guarded.guard.address, 0, guarded.encode_guard("setCap", token, 2000 * UNIT, DAY, 1000 * UNIT, 600 * UNIT), 0)
    guarded.execute(token, 0, transfer(PAYEE, 100 * UNIT))
    assert guarded.attack(*big_transfer(guarded, 550 * UNIT)) == "ExceedsPerTxLimit"
    entry = guarded.schedule(*raise_cap)
    guarded.wait_until_due(entry)
    guarded.execute(*raise_cap)
    assert tuple(guarded.guard.capConfig(token)) == (2000 * UNIT, DAY, 1000 * UNIT, 600 * UNIT)
    assert guarded.budget() == 1900 * UNIT  # what was spent still counts
    guarded.execute(token, 0, transfer(PAYEE, 550 * UNIT))  # no longer above the limit, nor above the threshold
    assert guarded.token_balance(PAYEE) == 650 * UNIT


def test_a_scheduled_batch_of_settings_takes_effect(guarded):
    stray = guarded.stray_token.address
    calls = (
        Call(guarded.guard.address, 0, guarded.encode_guard("setRecipient", NEW_PAYEE, True)),
        Call(guarded.guard.address, 0, guarded.encode_guard("setAllowedCall", stray, TRANSFER, True)),
        Call(guarded.guard.address, 0, guarded.encode_guard("setCap", stray, 50 * UNIT, DAY, 50 * UNIT, 50 * UNIT)),
    )
    target, data = guarded.batch(*calls)
    assert guarded.attack(stray, 0, transfer(NEW_PAYEE, UNIT)) == "CallNotAllowed"
    entry = guarded.schedule(target, 0, data, 1)
    guarded.wait_until_due(entry)
    guarded.execute(target, 0, data, 1)
    guarded.execute(stray, 0, transfer(NEW_PAYEE, 50 * UNIT))
    assert guarded.token_balance(NEW_PAYEE, guarded.stray_token) == 50 * UNIT
    assert guarded.attack(stray, 0, transfer(NEW_PAYEE, 1)) == "ExceedsBudget"


# --- the off-chain verdict matches the chain ------------------------------------------------------


VERDICT_CASES = {
    "allowed transfer": ("allow", ""),
    "allowed batch": ("allow", ""),
    "over the delay threshold": ("needs-delay", "NotScheduled"),
    "configuration change": ("needs-delay", "NotScheduled"),
    "scheduled, not yet due": ("needs-delay", "NotYetDue"),
    "scheduled and due": ("allow", ""),
    "stranger": ("deny", "RecipientNotAllowed"),
    "over the per-transaction limit": ("deny", "ExceedsPerTxLimit"),
    "over the budget left": ("deny", "ExceedsBudget"),
    "smuggled delegatecall": ("deny", "InvalidBatchEntry"),
}


@pytest.mark.parametrize("case", list(VERDICT_CASES))
def test_predict_verdict_agrees_with_execution(guarded, case):
    token = guarded.token.address
    intent = {
        "allowed transfer": (token, 0, transfer(PAYEE, 50 * UNIT), 0),
        "allowed batch": (guarded.multisend, 0, guarded.batch(Call(token, 0, transfer(PAYEE, 50 * UNIT)), Call(PAYEE2, UNIT // 2))[1], 1),
        "over the delay threshold": big_transfer(guarded),
        "configuration change": (guarded.address, 0, guarded.encode_safe("changeThreshold", 1), 0),
        "scheduled, not yet due": big_transfer(guarded),
        "scheduled and due": big_transfer(guarded),
        "stranger": (token, 0, transfer(ATTACKER, UNIT), 0),
        "over the per-transaction limit": big_transfer(guarded, 501 * UNIT),
        "over the budget left": (token, 0, transfer(PAYEE, 60 * UNIT), 0),
        "smuggled delegatecall": (guarded.multisend, 0, multisend_calldata(packed_entry(token, 0, transfer(PAYEE, 1), operation=1)), 1),
    }[case]
    if case.startswith("scheduled"):
        entry = guarded.schedule(*intent)
        if case == "scheduled and due":
            guarded.wait_until_due(entry)
    if case == "over the budget left":  # 950 of 1000 spent
        for _ in range(9):
            guarded.execute(token, 0, transfer(PAYEE, 100 * UNIT))
        guarded.execute(token, 0, transfer(PAYEE, 50 * UNIT))
    expected_outcome, expected_error = VERDICT_CASES[case]
    verdict = guarded.predict(*intent)
    assert (verdict.outcome, verdict.error) == (expected_outcome, expected_error)
    if verdict.allowed:
        guarded.execute(*intent)
    else:
        assert guarded.attack(*intent) == verdict.error


# --- refunds of charges when the inner call fails -----------------------------------------------------


def test_a_failed_inner_call_gives_its_charge_back(guarded):
    """safeTxGas > 0 lets the Safe complete a transaction whose call failed: the charge is refunded."""
    empty = guarded.empty_token.address
    assert guarded.budget(empty) == 1000 * UNIT
    with pytest.raises(ExecutionFailed):  # mined, ExecutionFailure: the Safe holds none of that token
        guarded.execute(empty, 0, transfer(PAYEE, 60 * UNIT), safe_tx_gas=100_000)
    assert guarded.budget(empty) == 1000 * UNIT
    # a batch that fails half-way gives back every token's charge
    target, data = guarded.batch(Call(guarded.token.address, 0, transfer(PAYEE, 10 * UNIT)), Call(empty, 0, transfer(PAYEE, 60 * UNIT)))
    with pytest.raises(ExecutionFailed):
        guarded.execute(target, 0, data, 1, safe_tx_gas=200_000)
    assert guarded.budget() == 1000 * UNIT and guarded.budget(empty) == 1000 * UNIT
    assert guarded.token_balance(PAYEE) == 0
    # control: a successful call with safeTxGas > 0 is charged
    guarded.execute(guarded.token.address, 0, transfer(PAYEE, 10 * UNIT), safe_tx_gas=100_000)
    assert guarded.budget() == 990 * UNIT


# --- modules (Safe 1.5.0: TreasuryGuard is the module guard too) ---------------------------------------


@pytest.fixture
def module(guarded, project, safe_deployer):
    """A TestModule enabled on the guarded 1.5.0 Safe through the delay queue."""
    module = safe_deployer.deploy(project.TestModule)
    enable = (guarded.address, 0, guarded.encode_safe("enableModule", module.address), 0)
    entry = guarded.schedule(*enable)
    guarded.wait_until_due(entry)
    guarded.execute(*enable)
    assert guarded.safe.isModuleEnabled(module.address)
    return module


def module_tx(module, guarded, to, value=0, data=b"", operation=0) -> bytes:
    return bytes(module.exec.encode_input(guarded.address, to, value, data, operation))


@pytest.mark.parametrize("guarded", ["1.5.0"], indirect=True)
def test_a_module_cannot_bypass_the_guard(guarded, module, project, safe_deployer):
    token = guarded.token.address
    overwriter = safe_deployer.deploy(project.SingletonOverwriter)
    attempts = [
        ("RecipientNotAllowed", (token, 0, transfer(ATTACKER, UNIT), 0)),
        ("NotScheduled", (token, 0, transfer(PAYEE, BIG), 0)),
        ("NotScheduled", (guarded.address, 0, guarded.encode_safe("addOwnerWithThreshold", ATTACKER, 1), 0)),
        ("DelegateCallNotAllowed", (overwriter.address, 0, transfer(overwriter.address, 0), 1)),
    ]
    for error, intent in attempts:
        before = guarded.state()
        assert send_expecting_revert(guarded.relayer.address, module.address, module_tx(module, guarded, *intent)) == error
        assert guarded.state() == before
    # an allowed module transaction is charged like any other
    guarded.relayer.transfer(module.address, 0, data=module_tx(module, guarded, token, 0, transfer(PAYEE, 10 * UNIT)))
    assert guarded.token_balance(PAYEE) == 10 * UNIT
    assert guarded.budget() == 990 * UNIT


@pytest.mark.parametrize("guarded", ["1.5.0"], indirect=True)
def test_a_module_cannot_act_inside_a_guarded_transaction(guarded, module):
    """The allowlisted callback drives the module mid-transaction: the nested check refuses."""
    guarded.callback.arm(module_tx(module, guarded, guarded.token.address, 0, transfer(PAYEE, UNIT)), sender=guarded.relayer)
    guarded.execute(guarded.callback.address, 0, bytes(guarded.callback.callback.encode_input(module.address)))
    assert not guarded.callback.lastSuccess()
    assert revert_name(guarded.callback.lastReturnData()) == "CheckInProgress"
    assert guarded.token_balance(PAYEE) == 0


@pytest.mark.parametrize("guarded", ["1.5.0"], indirect=True)
def test_a_module_runs_a_scheduled_intent_once(guarded, module):
    intent = big_transfer(guarded)
    entry = guarded.schedule(*intent)
    assert send_expecting_revert(guarded.relayer.address, module.address, module_tx(module, guarded, *intent)) == "NotYetDue"
    guarded.wait_until_due(entry)
    guarded.relayer.transfer(module.address, 0, data=module_tx(module, guarded, *intent))
    assert status(guarded, entry) == "executed"
    assert guarded.token_balance(PAYEE) == BIG
    assert send_expecting_revert(guarded.relayer.address, module.address, module_tx(module, guarded, *intent)) == "NotScheduled"
