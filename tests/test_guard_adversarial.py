"""TreasuryGuard holds when a threshold of owners is compromised or the tooling is bypassed.

Every attack below is a raw execTransaction carrying VALID signatures of two of the three owners.
The guard must refuse it with its specific custom error, and nothing may move: `attack()` checks
the balances of the Safe, the payees and the attacker, the Safe's configuration (singleton slot 0,
guard, fallback handler, module guard, owners, threshold, modules, nonce) and the guard's budgets,
queue and settings before and after the mined, reverted transaction (see tests/guard_helpers.py).
"""

import pytest
from ape.contracts import ContractContainer
from eth_abi import encode
from guard_helpers import *

from treasury.chain.artifacts import safe_contract
from treasury.chain.guard import budgets, constructor_args, deploy_guard, guard_contract_type, install_guard
from treasury.chain.safe import safe_instance, safe_nonce
from treasury.execution.send import ExecutionReverted, execute_with_owners
from treasury.policy.model import MAX_AMOUNT, Policy

MULTI_SEND_SELECTOR = selector("multiSend(bytes)")
STEPS_TO_EXHAUST = 10  # ten transfers of 100 (the delay threshold) exhaust the 1000-per-day TOKEN budget


def fill_token_budget(guarded, first_at=None, amount=100 * UNIT, times=STEPS_TO_EXHAUST):
    """Spend the TOKEN budget with transfers that are each within every per-transaction rule
    (one a second from `first_at`, if given)."""
    for i in range(times):
        guarded.execute(guarded.token.address, 0, transfer(PAYEE, amount), at=None if first_at is None else first_at + i)


# --- caps -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, error",
    [
        ("token transfer above the per-transaction limit", "ExceedsPerTxLimit"),
        ("unlimited approval", "ExceedsPerTxLimit"),
        ("transferFrom another holder above the limit", "ExceedsPerTxLimit"),
        ("native value above the per-transaction limit", "ExceedsPerTxLimit"),
        ("token transfer above the delay threshold", "NotScheduled"),
        ("native value above the delay threshold", "NotScheduled"),
    ],
)
def test_one_transaction_cannot_exceed_the_cap(guarded, case, error):
    token = guarded.token.address
    to, value, data = {
        "token transfer above the per-transaction limit": (token, 0, transfer(PAYEE, 500 * UNIT + 1)),
        "unlimited approval": (token, 0, approve(PAYEE, 2**256 - 1)),
        # charged whoever `from` is: the Safe could pull from anyone who approved it
        "transferFrom another holder above the limit": (token, 0, transfer_from(PAYEE2, PAYEE, 501 * UNIT)),
        "native value above the per-transaction limit": (PAYEE, 5 * UNIT + 1, b""),
        "token transfer above the delay threshold": (token, 0, transfer(PAYEE, 100 * UNIT + 1)),
        "native value above the delay threshold": (PAYEE, UNIT + 1, b""),
    }[case]
    assert guarded.attack(to, value, data) == error


def test_budget_cannot_be_drained_in_small_steps(guarded):
    fill_token_budget(guarded)
    assert guarded.token_balance(PAYEE) == 1000 * UNIT
    assert budgets(guarded.guard, guarded.policy) == {
        guarded.token.address: 0, guarded.empty_token.address: 1000 * UNIT, NATIVE: 10 * UNIT,
    }
    assert guarded.attack(guarded.token.address, 0, transfer(PAYEE, 1)) == "ExceedsBudget"
    assert guarded.attack(guarded.token.address, 0, approve(PAYEE2, 1)) == "ExceedsBudget"


def test_native_budget_cannot_be_drained_in_small_steps(guarded):
    for _ in range(10):
        guarded.execute(PAYEE, UNIT)
    assert guarded.eth_balance(PAYEE) == 10 * UNIT
    assert guarded.attack(PAYEE2, 1) == "ExceedsBudget"


def test_sliding_window_refuses_just_past_a_period_edge(guarded):
    """Spend everything in the last seconds before a day boundary: a budget that resets at the
    boundary would pay again at once; the sliding window must refuse for a whole period."""
    day_edge = (head_timestamp() // DAY + 2) * DAY
    fill_token_budget(guarded, first_at=day_edge - STEPS_TO_EXHAUST)  # the last one at day_edge - 1
    assert guarded.token_balance(PAYEE) == 1000 * UNIT
    token, small = guarded.token.address, transfer(PAYEE, UNIT)
    assert guarded.attack(token, 0, small, at=day_edge) == "ExceedsBudget"
    assert guarded.attack(token, 0, small, at=day_edge + 1) == "ExceedsBudget"
    assert guarded.attack(token, 0, small, at=day_edge + HOUR) == "ExceedsBudget"
    # [day_edge - 1, day_edge - 1 + DAY] is a closed window of one period: still nothing to spend
    assert guarded.attack(token, 0, small, at=day_edge - 1 + DAY) == "ExceedsBudget"
    guarded.execute(token, 0, transfer(PAYEE, 100 * UNIT), at=day_edge + DAY)
    assert guarded.budget() == 900 * UNIT


def test_batch_of_small_transfers_cannot_exceed_the_per_transaction_limit(guarded):
    six_times_90 = [Call(guarded.token.address, 0, transfer(PAYEE, 90 * UNIT)) for _ in range(6)]
    assert guarded.attack_batch(*six_times_90) == "ExceedsPerTxLimit"
    six_times_09_eth = [Call(PAYEE if i % 2 else PAYEE2, 9 * UNIT // 10) for i in range(6)]
    assert guarded.attack_batch(*six_times_09_eth) == "ExceedsPerTxLimit"


def test_batch_cannot_exceed_the_budget_left(guarded):
    fill_token_budget(guarded, times=9)
    guarded.execute(guarded.token.address, 0, transfer(PAYEE, 50 * UNIT))
    assert guarded.budget() == 50 * UNIT
    two_times_30 = [Call(guarded.token.address, 0, transfer(PAYEE, 30 * UNIT)), Call(guarded.token.address, 0, transfer(PAYEE2, 30 * UNIT))]
    assert guarded.attack_batch(*two_times_30) == "ExceedsBudget"


def test_batch_above_the_delay_threshold_needs_the_delay(guarded):
    four_times_30 = [Call(guarded.token.address, 0, transfer(PAYEE, 30 * UNIT)) for _ in range(4)]
    target, data = guarded.batch(*four_times_30)
    assert guarded.attack(target, 0, data, 1) == "NotScheduled"
    assert guarded.attack_batch(Call(PAYEE, 6 * UNIT // 10), Call(PAYEE2, 6 * UNIT // 10)) == "NotScheduled"
    # the same batch, once scheduled and due, goes through
    entry = guarded.schedule(target, 0, data, 1)
    guarded.wait_until_due(entry)
    guarded.execute(target, 0, data, 1)
    assert guarded.token_balance(PAYEE) == 120 * UNIT


# --- allowlists ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        "transfer",
        "approve",
        "transferFrom the Safe",
        "transferFrom a third party",
        "native value",
        "empty call",
        "native value along an allowlisted call",
        "transfer inside a batch",
        "native value inside a batch",
    ],
)
def test_paying_a_stranger_is_refused(guarded, case):
    token = guarded.token.address
    if case.endswith("inside a batch"):
        stray = Call(token, 0, transfer(ATTACKER, UNIT)) if case.startswith("transfer") else Call(ATTACKER, UNIT)
        assert guarded.attack_batch(Call(token, 0, transfer(PAYEE, UNIT)), stray) == "RecipientNotAllowed"
        return
    to, value, data = {
        "transfer": (token, 0, transfer(ATTACKER, UNIT)),
        "approve": (token, 0, approve(ATTACKER, UNIT)),
        "transferFrom the Safe": (token, 0, transfer_from(guarded.address, ATTACKER, UNIT)),
        "transferFrom a third party": (token, 0, transfer_from(PAYEE, ATTACKER, UNIT)),
        "native value": (ATTACKER, UNIT, b""),
        "empty call": (ATTACKER, 0, b""),
        # the token is an allowlisted target but no recipient of native value
        "native value along an allowlisted call": (token, 1, transfer(PAYEE, UNIT)),
    }[case]
    assert guarded.attack(to, value, data) == "RecipientNotAllowed"


@pytest.mark.parametrize("case", ["selector", "target", "selector of a token", "plain call to MultiSendCallOnly"])
def test_calls_outside_the_allowlist_are_refused(guarded, case):
    if case == "plain call to MultiSendCallOnly":
        to, data = guarded.batch(Call(guarded.token.address, 0, transfer(PAYEE, UNIT)))
    else:
        to, data = {
            "selector": (guarded.token.address, selector("mint(address,uint256)") + encode(["address", "uint256"], [ATTACKER, UNIT])),
            "target": (guarded.stray_token.address, transfer(PAYEE, UNIT)),  # allowlisted recipient, unlisted token
            "selector of a token": (guarded.empty_token.address, approve(PAYEE, UNIT)),  # only transfer is listed there
        }[case]
    assert guarded.attack(to, 0, data) == "CallNotAllowed"


def _dirty(data: bytes, at: int) -> bytes:
    """`data` with a non-zero byte in the 12 high-order bytes of the address word at `at`."""
    return data[:at] + b"\x01" + data[at + 1:]


@pytest.mark.parametrize(
    "case",
    [
        "one extra byte", "an extra word", "one byte short", "dirty recipient word", "dirty spender word",
        "dirty transferFrom source", "dirty transferFrom recipient", "1-byte calldata", "2-byte calldata",
        "3-byte transfer prefix",
    ],
)
def test_malformed_erc20_calldata_is_refused(guarded, case):
    token = guarded.token.address
    good = transfer(PAYEE, UNIT)
    to, data = {
        "one extra byte": (token, good + b"\x00"),
        "an extra word": (token, good + encode(["address"], [ATTACKER])),
        "one byte short": (token, good[:-1]),
        "dirty recipient word": (token, _dirty(good, 4)),
        "dirty spender word": (token, _dirty(approve(PAYEE, UNIT), 4)),
        "dirty transferFrom source": (token, _dirty(transfer_from(guarded.address, PAYEE, UNIT), 4)),
        "dirty transferFrom recipient": (token, _dirty(transfer_from(guarded.address, PAYEE, UNIT), 36)),
        "1-byte calldata": (PAYEE, b"\x01"),
        "2-byte calldata": (PAYEE, b"\x01\x02"),
        "3-byte transfer prefix": (token, TRANSFER[:3]),
    }[case]
    assert guarded.attack(to, 0, data) == "MalformedCalldata"


# --- delegatecall ------------------------------------------------------------------------------------


def test_bybit_style_singleton_overwrite_is_refused(guarded, project, safe_deployer):
    """The February 2025 Bybit drain: signers approved a delegatecall to a contract whose
    `transfer(address,uint256)` rewrote the Safe's slot 0. The guard refuses the delegatecall."""
    overwriter = safe_deployer.deploy(project.SingletonOverwriter)
    singleton = storage_word(guarded.address, 0)
    guard_word = storage_word(guarded.address, GUARD_STORAGE_SLOT)
    assert guarded.attack(overwriter.address, 0, transfer(overwriter.address, 0), 1) == "DelegateCallNotAllowed"
    assert guarded.attack(overwriter.address, 0, multisend_calldata(packed_entry(PAYEE)), 1) == "DelegateCallNotAllowed"
    assert storage_word(guarded.address, 0) == singleton == int(safe_contract(guarded.version, "safe_l2").canonical_address, 16)
    assert storage_word(guarded.address, GUARD_STORAGE_SLOT) == guard_word == int(guarded.guard.address, 16)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_singleton_overwriter_does_drain_an_unguarded_safe(version, make_safe, owners, relayer, safe_deployer, project):
    """Control: without the guard, the same signed delegatecall replaces the singleton."""
    overwriter = safe_deployer.deploy(project.SingletonOverwriter)
    unguarded = make_safe(owners, 2, version=version, salt_nonce=7_000_001)
    assert storage_word(unguarded.address, 0) == int(unguarded.singleton, 16)
    execute_with_owners(unguarded.address, version, overwriter.address, 0, transfer(ATTACKER, 0), 1, signers=owners[:2], sender=relayer)
    assert storage_word(unguarded.address, 0) == int(ATTACKER, 16)


@pytest.mark.parametrize(
    "target", ["MultiSend (not call-only)", "MultiSendCallOnly of another version", "an allowlisted token", "EvilMultiSend"]
)
def test_delegatecall_to_anything_but_the_configured_multisend_call_only_is_refused(guarded, target, project, safe_deployer):
    calls = [Call(guarded.token.address, 0, transfer(PAYEE, UNIT))]
    _, batch_data = guarded.batch(*calls)
    if target == "MultiSend (not call-only)":
        to = safe_contract(guarded.version, "multi_send").canonical_address
    elif target == "MultiSendCallOnly of another version":
        other = next(v for v in VERSIONS if safe_contract(v, "multi_send_call_only").canonical_address != guarded.multisend)
        to = safe_contract(other, "multi_send_call_only").canonical_address
    elif target == "an allowlisted token":
        to, batch_data = guarded.token.address, transfer(PAYEE, UNIT)
    else:
        evil = safe_deployer.deploy(project.EvilMultiSend)
        evil.arm(guarded.encode_safe("addOwnerWithThreshold", ATTACKER, 1), False, 0, 0, sender=safe_deployer)
        to = evil.address
    assert guarded.attack(to, 0, batch_data, 1) == "DelegateCallNotAllowed"


@pytest.mark.parametrize("version", VERSIONS)
def test_the_evil_multisend_does_take_over_an_unguarded_safe(version, make_safe, owners, relayer, safe_deployer, project):
    """Control: without the guard, a delegatecall to EvilMultiSend adds the attacker as sole signer."""
    evil = safe_deployer.deploy(project.EvilMultiSend)
    unguarded = make_safe(owners, 2, version=version, salt_nonce=7_000_001)
    safe = safe_instance(unguarded.address, version)
    evil.arm(bytes(safe.addOwnerWithThreshold.encode_input(ATTACKER, 1)), False, 0, 0, sender=safe_deployer)
    execute_with_owners(unguarded.address, version, evil.address, 0, multisend_calldata(packed_entry(PAYEE)), 1,
                        signers=owners[:2], sender=relayer)
    assert ATTACKER in safe.getOwners() and safe.getThreshold() == 1


@pytest.mark.parametrize("operation", [1, 2])
def test_delegatecall_smuggled_into_a_batch_is_refused(guarded, project, safe_deployer, operation):
    overwriter = safe_deployer.deploy(project.SingletonOverwriter)
    packed = packed_entry(guarded.token.address, 0, transfer(PAYEE, UNIT)) + packed_entry(
        overwriter.address, 0, transfer(ATTACKER, 0), operation=operation
    )
    assert guarded.attack(guarded.multisend, 0, multisend_calldata(packed), 1) == "InvalidBatchEntry"


def _entries(guarded):
    return packed_entry(guarded.token.address, 0, transfer(PAYEE, UNIT)) + packed_entry(PAYEE2, UNIT // 10)


# case: (error, builder of (outer value, multiSend calldata))
MALFORMED_BATCHES = {
    "truncated entry": ("InvalidBatchEntry", lambda g: (0, multisend_calldata(_entries(g)[:-1]))),
    "trailing garbage": ("InvalidBatchEntry", lambda g: (0, multisend_calldata(_entries(g) + b"\x00" * 10))),
    "trailing entry-sized garbage": ("InvalidBatchEntry", lambda g: (0, multisend_calldata(_entries(g) + b"\xff" * 85))),
    "non-zero padding": ("InvalidMultiSend", lambda g: (0, multisend_calldata(_entries(g), padding=b"\x00" * 5 + b"\x01"))),
    "a whole word of padding": (
        "InvalidMultiSend", lambda g: (0, multisend_calldata(_entries(g), padding=b"\x00" * (-len(_entries(g)) % 32 + 32)))
    ),
    "length word too long": ("InvalidMultiSend", lambda g: (0, multisend_calldata(_entries(g), length=len(_entries(g)) + 40))),
    # the byte cut off is zero, so it passes as padding; the last entry is then one byte short
    "length word one short": ("InvalidBatchEntry", lambda g: (0, multisend_calldata(_entries(g), length=len(_entries(g)) - 1))),
    # an ABI decoder follows the offset: MultiSendCallOnly would run the entries found at 0x40
    "wrong offset word": (
        "InvalidMultiSend",
        lambda g: (0, MULTI_SEND_SELECTOR + (0x40).to_bytes(32, "big") + bytes(32) + encode(["bytes"], [_entries(g)])[32:]),
    ),
    "entry data longer than the batch": (
        "InvalidBatchEntry", lambda g: (0, multisend_calldata(packed_entry(PAYEE, 0, b"", data_length=2**256 - 1)))
    ),
    # MultiSendCallOnly 1.5.0 sends a call to address(0) to the Safe itself
    "entry to address zero": (
        "InvalidBatchEntry",
        lambda g: (0, multisend_calldata(packed_entry(ZERO_ADDRESS, 0, g.encode_safe("addOwnerWithThreshold", ATTACKER, 1)))),
    ),
    "empty batch": ("EmptyBatch", lambda g: (0, multisend_calldata(b""))),
    "value on the outer delegatecall": ("InvalidMultiSend", lambda g: (1, multisend_calldata(_entries(g)))),
    "wrong selector": ("InvalidMultiSend", lambda g: (0, bytes.fromhex("deadbeef") + multisend_calldata(_entries(g))[4:])),
    "shorter than a bytes argument": ("InvalidMultiSend", lambda g: (0, MULTI_SEND_SELECTOR + (0x20).to_bytes(32, "big") + bytes(31))),
}


@pytest.mark.parametrize("case", list(MALFORMED_BATCHES))
def test_malformed_batch_encodings_are_refused(guarded, case):
    error, build = MALFORMED_BATCHES[case]
    value, data = build(guarded)
    assert guarded.attack(guarded.multisend, value, data, 1) == error


def test_hand_built_batch_encodings_are_accepted_when_well_formed(guarded):
    """Control for the malformed cases: the same builder, unbroken, produces batches that run."""
    guarded.execute(guarded.multisend, 0, multisend_calldata(_entries(guarded)), 1)
    guarded.execute(guarded.multisend, 0, multisend_calldata(_entries(guarded), padding=b""), 1)
    assert guarded.token_balance(PAYEE) == 2 * UNIT
    assert guarded.eth_balance(PAYEE2) == 2 * UNIT // 10


# --- the Safe's configuration and the guard's settings need the delay ------------------------------------


def _configuration_change(guarded, change, attacker_guard):
    owners = list(guarded.safe.getOwners())
    big = MAX_AMOUNT
    return {
        "remove the guard": (guarded.address, guarded.encode_safe("setGuard", ZERO_ADDRESS)),
        "replace the guard": (guarded.address, guarded.encode_safe("setGuard", attacker_guard)),
        "add an owner": (guarded.address, guarded.encode_safe("addOwnerWithThreshold", ATTACKER, 1)),
        "swap an owner": (guarded.address, guarded.encode_safe("swapOwner", SENTINEL_ADDRESS, owners[0], ATTACKER)),
        "remove an owner": (guarded.address, guarded.encode_safe("removeOwner", SENTINEL_ADDRESS, owners[0], 1)),
        "lower the threshold": (guarded.address, guarded.encode_safe("changeThreshold", 1)),
        "enable a module": (guarded.address, guarded.encode_safe("enableModule", ATTACKER)),
        "change the fallback handler": (guarded.address, guarded.encode_safe("setFallbackHandler", ATTACKER)),
        "raise a cap": (guarded.guard.address, guarded.encode_guard("setCap", guarded.token.address, big, DAY, big, big)),
        "add a recipient": (guarded.guard.address, guarded.encode_guard("setRecipient", ATTACKER, True)),
        "allowlist a call": (guarded.guard.address, guarded.encode_guard("setAllowedCall", guarded.stray_token.address, TRANSFER, True)),
        "allow refunds": (guarded.guard.address, guarded.encode_guard("setAllowRefunds", True)),
        "remove a cap": (guarded.guard.address, guarded.encode_guard("removeCap", guarded.token.address)),
        "shorten the delay": (guarded.guard.address, guarded.encode_guard("setDelay", HOUR, HOUR)),
        # the Safe calling its guard's hook itself, to burn or refill the budget
        "call the guard's hook": (guarded.guard.address, guarded.encode_guard(*HOOKS_AND_SETTINGS["checkTransaction"](guarded))),
    }[change]


CONFIGURATION_CHANGES = [
    "remove the guard", "replace the guard", "add an owner", "swap an owner", "remove an owner", "lower the threshold",
    "enable a module", "change the fallback handler", "raise a cap", "add a recipient", "allowlist a call",
    "allow refunds", "remove a cap", "shorten the delay", "call the guard's hook",
]


@pytest.fixture(scope="module")
def attacker_guard(guarded, safe_deployer):
    """A permissive guard the attacker would like to swap in (valid, deployed for the same Safe)."""
    return deploy_guard(guarded.address, guarded.version, Policy(recipients=[ATTACKER], delay=HOUR, window=HOUR), safe_deployer).address


@pytest.mark.parametrize("how", ["directly", "inside a batch"])
@pytest.mark.parametrize("change", CONFIGURATION_CHANGES)
def test_configuration_change_without_the_delay_is_refused(guarded, attacker_guard, change, how):
    to, data = _configuration_change(guarded, change, attacker_guard)
    # A hook is never a call the Safe may make, scheduled or not (tests/test_guard_hooks.py).
    expected = "GuardCallNotAllowed" if change == "call the guard's hook" else "NotScheduled"
    if how == "directly":
        assert guarded.attack(to, 0, data) == expected
    else:
        assert guarded.attack_batch(Call(guarded.token.address, 0, transfer(PAYEE, UNIT)), Call(to, 0, data)) == expected


@pytest.mark.parametrize("guarded", ["1.5.0"], indirect=True)
@pytest.mark.parametrize("how", ["directly", "inside a batch"])
def test_removing_the_module_guard_without_the_delay_is_refused(guarded, how):
    data = guarded.encode_safe("setModuleGuard", ZERO_ADDRESS)
    assert storage_word(guarded.address, MODULE_GUARD_STORAGE_SLOT) == int(guarded.guard.address, 16)
    if how == "directly":
        assert guarded.attack(guarded.address, 0, data) == "NotScheduled"
    else:
        assert guarded.attack_batch(Call(guarded.address, 0, data)) == "NotScheduled"


# --- a misconfigured batch library: the post-execution configuration check ----------------------------------


@pytest.fixture(scope="module")
def evil_multisend(safe_deployer, project):
    return safe_deployer.deploy(project.EvilMultiSend)


@pytest.fixture(scope="module")
def misconfigured(request, guarded, evil_multisend, make_safe, owners, safe_deployer, relayer):
    """A guarded Safe whose guard was deployed with EvilMultiSend as its MULTISEND_CALL_ONLY."""
    created = make_safe(owners, 2, version=guarded.version, salt_nonce=module_salt(request))
    safe_deployer.transfer(created.address, 10 * UNIT)
    guarded.token.mint(created.address, 1000 * UNIT, sender=safe_deployer)
    args = constructor_args(created.address, guarded.version, guarded.policy)
    args[1] = evil_multisend.address
    guard = safe_deployer.deploy(ContractContainer(guard_contract_type()), *args)
    assert not guard.MULTISEND_IS_CANONICAL()
    install_guard(created.address, guarded.version, guard.address, signers=owners[:2], sender=relayer)
    return GuardedSafe(
        version=guarded.version, address=created.address, safe=safe_instance(created.address, guarded.version),
        guard=guard, policy=guarded.policy, token=guarded.token, empty_token=guarded.empty_token,
        stray_token=guarded.stray_token, callback=guarded.callback, owners=list(owners), relayer=relayer,
    )


EVIL_CHANGES = [
    "add an owner", "lower the threshold", "remove the guard", "enable a module", "change the fallback handler",
    "overwrite the singleton",
]


@pytest.mark.parametrize("change", EVIL_CHANGES)
def test_configuration_changed_by_a_non_canonical_multisend_is_caught(misconfigured, evil_multisend, safe_deployer, change):
    self_call = {
        "add an owner": ("addOwnerWithThreshold", ATTACKER, 1),
        "lower the threshold": ("changeThreshold", 1),
        "remove the guard": ("setGuard", ZERO_ADDRESS),
        "enable a module": ("enableModule", ATTACKER),
        "change the fallback handler": ("setFallbackHandler", ATTACKER),
        "overwrite the singleton": None,  # a raw write of slot 0 instead
    }[change]
    self_call = misconfigured.encode_safe(*self_call) if self_call else b""
    evil_multisend.arm(self_call, change == "overwrite the singleton", 0, int(ATTACKER, 16), sender=safe_deployer)
    _, data = misconfigured.batch(Call(misconfigured.token.address, 0, transfer(PAYEE, UNIT)))
    assert misconfigured.attack(evil_multisend.address, 0, data, 1) == "SafeConfigChanged"


@pytest.mark.parametrize("guarded", ["1.5.0"], indirect=True)
def test_module_guard_removed_by_a_non_canonical_multisend_is_caught(misconfigured, evil_multisend, safe_deployer):
    evil_multisend.arm(misconfigured.encode_safe("setModuleGuard", ZERO_ADDRESS), False, 0, 0, sender=safe_deployer)
    _, data = misconfigured.batch(Call(misconfigured.token.address, 0, transfer(PAYEE, UNIT)))
    assert misconfigured.attack(evil_multisend.address, 0, data, 1) == "SafeConfigChanged"


def test_a_non_canonical_multisend_that_changes_nothing_still_runs(misconfigured, evil_multisend, safe_deployer):
    """Control: the evil library is a working batch library; only its side effects are refused."""
    evil_multisend.arm(b"", False, 0, 0, sender=safe_deployer)
    _, data = misconfigured.batch(Call(misconfigured.token.address, 0, transfer(PAYEE, UNIT)))
    misconfigured.execute(evil_multisend.address, 0, data, 1)
    assert misconfigured.token_balance(PAYEE) == UNIT


# --- refunds, re-entrancy, callers other than the Safe ------------------------------------------------------


REFUNDS = {
    "gas price 1": lambda g: {"gas_price": 1},
    "ETH refund to the attacker": lambda g: {
        "safe_tx_gas": 100_000, "base_gas": 10**6, "gas_price": 10**12, "refund_receiver": ATTACKER,
    },
    "token refund to the attacker": lambda g: {
        "safe_tx_gas": 100_000, "base_gas": 10**6, "gas_price": 10**18, "gas_token": g.token.address, "refund_receiver": ATTACKER,
    },
}


@pytest.mark.parametrize("refund", list(REFUNDS))
def test_refunds_are_refused(guarded, refund):
    """gasPrice > 0 makes the Safe pay the relayer (or any refund receiver) from its funds."""
    gas_fields = REFUNDS[refund](guarded)
    assert guarded.attack(guarded.token.address, 0, transfer(PAYEE, UNIT), **gas_fields) == "RefundsNotAllowed"


def test_nested_exec_transaction_through_a_callback_fails(guarded):
    """An allowlisted contract re-enters execTransaction with a fully signed, otherwise allowed
    transaction: the nested guard check refuses (CheckInProgress), the outer one completes."""
    nonce = safe_nonce(guarded.address, guarded.version)
    nested = guarded.exec_calldata(guarded.token.address, 0, transfer(PAYEE, UNIT), nonce=nonce + 1)
    guarded.callback.arm(nested, sender=guarded.relayer)
    guarded.execute(guarded.callback.address, 0, bytes(guarded.callback.callback.encode_input(guarded.address)))
    assert guarded.callback.calls() == 1
    assert not guarded.callback.lastSuccess()
    assert revert_name(guarded.callback.lastReturnData()) == "CheckInProgress"
    assert guarded.token_balance(PAYEE) == 0
    assert safe_nonce(guarded.address, guarded.version) == nonce + 1
    # control: the very same signed payload runs when nothing is being checked
    guarded.callback.callback(guarded.address, sender=guarded.relayer)
    assert guarded.callback.lastSuccess()
    assert guarded.token_balance(PAYEE) == UNIT


HOOKS_AND_SETTINGS = {
    "checkTransaction": lambda g: ("checkTransaction", g.token.address, 0, transfer(PAYEE, 1000 * UNIT), 0, 0, 0, 0, ZERO_ADDRESS, ZERO_ADDRESS, b"", ZERO_ADDRESS),
    "checkAfterExecution": lambda g: ("checkAfterExecution", b"\x00" * 32, False),
    "checkModuleTransaction": lambda g: ("checkModuleTransaction", g.token.address, 0, transfer(PAYEE, 1000 * UNIT), 0, ATTACKER),
    "checkAfterModuleExecution": lambda g: ("checkAfterModuleExecution", b"\x00" * 32, False),
    "setCap": lambda g: ("setCap", g.token.address, MAX_AMOUNT, DAY, MAX_AMOUNT, MAX_AMOUNT),
    "removeCap": lambda g: ("removeCap", g.token.address),
    "setRecipient": lambda g: ("setRecipient", ATTACKER, True),
    "setAllowedCall": lambda g: ("setAllowedCall", g.stray_token.address, TRANSFER, True),
    "setDelay": lambda g: ("setDelay", HOUR, HOUR),
    "setAllowRefunds": lambda g: ("setAllowRefunds", True),
}


@pytest.mark.parametrize("guarded", ["1.4.1"], indirect=True)
@pytest.mark.parametrize("method", list(HOOKS_AND_SETTINGS))
def test_only_the_safe_can_call_hooks_and_settings(guarded, method):
    name, *args = HOOKS_AND_SETTINGS[method](guarded)
    before = guarded.state()
    refused = send_expecting_revert(guarded.relayer.address, guarded.guard.address, guarded.encode_guard(name, *args))
    assert refused == "NotSafe"
    assert guarded.state() == before  # in particular the budget was not burnt
    assert guarded.budget() == 1000 * UNIT


@pytest.mark.parametrize("guarded", ["1.4.1"], indirect=True)
def test_an_after_execution_hook_without_a_check_is_refused(guarded):
    """Even the Safe's address cannot claim a refund for a transaction that was never checked."""
    guarded.execute(guarded.token.address, 0, transfer(PAYEE, 100 * UNIT))
    for hook in ("checkAfterExecution", "checkAfterModuleExecution"):
        assert call_error(guarded.address, guarded.guard.address, guarded.encode_guard(hook, b"\x00" * 32, False)) == "NoCheckInProgress"
    assert guarded.budget() == 900 * UNIT


@pytest.mark.parametrize("guarded", ["1.4.1"], indirect=True)
def test_the_toolkit_reports_the_guard_error(guarded):
    """execute_with_owners surfaces the guard's custom error in words before anything is sent."""
    with pytest.raises(ExecutionReverted, match=rf"recipient {ATTACKER} is not on the allowlist \[RecipientNotAllowed\]"):
        guarded.execute(guarded.token.address, 0, transfer(ATTACKER, UNIT))
    assert guarded.token_balance(ATTACKER) == 0
