"""TreasuryGuard v2's minority veto: cancelThreshold owners (or a guardian) stop a queue entry.

The threat: a threshold of owners is compromised and schedules a drain. The honest minority must be
able to stop it, each round costing the attacker a full delay, and the attacker's cancels of its own
entries must not spend the honest owners' or the guardians' cancels; yet a single rogue owner (or
guardian) must not be able to block an honest change forever: each cancels an intent once per epoch
(until the intent executes). Everything here is sent
raw, as an attacker would: direct guard calls and threshold-signed execTransaction, on Safe 1.3.0,
1.4.1 and 1.5.0, all 2-of-3 with cancelThreshold 1 unless said otherwise.
"""

import pytest
from eth_abi import encode
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from guard_helpers import *
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError

from treasury.chain.guard import (
    GuardError,
    cancel_as_guardian,
    cancel_entry,
    cancel_hash,
    cancel_typed_data,
    deploy_guard,
    entries,
    install_guard,
    intent_state,
    schedule_hash,
    schedule_typed_data,
    sign_typed_data,
)
from treasury.chain.safe import safe_instance
from treasury.policy.model import AllowedCall, Policy, TokenCap

BIG = 300 * UNIT  # above the 100 delay threshold, within the 500 per-transaction limit


@pytest.fixture(scope="session")
def guardian(accounts):
    """A security-council account: may cancel, owns nothing, is no recipient."""
    return accounts[6]


@pytest.fixture(scope="module", params=VERSIONS)
def vetoed(request, make_safe, owners, safe_deployer, relayer, project, guardian):
    """A guarded 2-of-3 Safe (standard policy) with `guardian` as guardian, per Safe version."""
    def policy_for(*addresses):
        return standard_policy(*addresses).model_copy(update={"guardians": (guardian.address,), "cancel_threshold": 1})

    return build_guarded_safe(
        version=request.param, salt_nonce=module_salt(request), make_safe=make_safe, owners=owners,
        deployer=safe_deployer, relayer=relayer, project=project, policy_for=policy_for,
    )


def drain(g, amount=BIG, to=PAYEE):
    return g.token.address, 0, transfer(to, amount), 0


def status(g, entry_id):
    return next(e.status for e in entries(g.guard) if e.entry_id == entry_id)


def state(g, intent):
    s = intent_state(g.guard, *intent)
    return s.schedule_nonce, s.cancels, s.not_before


def cancel_signatures(g, entry_id, signers):
    expected = bytes(g.guard.cancelHash(entry_id))
    return sign_typed_data(signers, cancel_typed_data(g.guard, entry_id), expected)


def raw_cancel(g, entry_id, signatures) -> str:
    """A cancel that must be refused; returns the refusal's name."""
    return send_expecting_revert(g.relayer.address, g.guard.address, g.encode_guard("cancel", entry_id, signatures))


def signed_over(signers, typed) -> bytes:
    """Signatures over arbitrary typed data (e.g. another Safe's or chain's cancel message)."""
    signable = encode_typed_data(full_message=typed)
    digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    return sign_typed_data(signers, typed, digest)


# --- owners ---------------------------------------------------------------------------------------


def test_one_owner_cancels_a_drain_scheduled_by_a_threshold(vetoed):
    g = vetoed
    intent = drain(g)
    entry = g.schedule(*intent)  # the compromised threshold (owners 0 and 1)
    assert g.guard.cancelSignaturesRequired(entry) == 1
    honest = g.owners[2]
    cancel_entry(g.guard, entry, signers=[honest], sender=g.relayer)
    eta = g.eta(entry)
    assert status(g, entry) == "cancelled"
    assert state(g, intent) == (1, 1, eta)
    wait_until(eta)
    assert g.attack(*intent) == "NotScheduled"


def has_cancelled(g, intent, who) -> bool:
    return bool(g.guard.hasCancelled(g.guard.intentId(*intent), who.address))


def test_a_cancelled_intent_waits_a_full_delay_and_each_owner_cancels_it_once(vetoed):
    g = vetoed
    intent = drain(g, 301 * UNIT)
    first = g.schedule(*intent)
    cancel_entry(g.guard, first, signers=[g.owners[2]], sender=g.relayer)
    eta = g.eta(first)
    # fresh, valid threshold signatures for the next nonce: refused until the cancelled entry's eta
    nonce, expected = schedule_hash(g.guard, *intent)
    assert nonce == 1
    signatures = sign_typed_data(g.signers, schedule_typed_data(g.guard, *intent, nonce), expected)
    schedule_call = g.encode_guard("schedule", *intent, signatures)
    assert send_expecting_revert(g.relayer.address, g.guard.address, schedule_call, at=eta - 1) == "RescheduleTooEarly"
    pin_next_block(eta)
    (scheduled,) = g.guard.Scheduled.from_receipt(g.guard.schedule(*intent, signatures, sender=g.relayer))
    second = scheduled.entryId
    assert g.guard.cancelSignaturesRequired(second) == 1  # the bar does not rise
    assert has_cancelled(g, intent, g.owners[2]) and not has_cancelled(g, intent, g.owners[0])
    assert raw_cancel(g, second, cancel_signatures(g, second, [g.owners[2]])) == "AlreadyCancelledBy"
    assert status(g, second) == "pending"
    cancel_entry(g.guard, second, signers=[g.owners[2], g.owners[0]], sender=g.relayer)  # owner 2 is left out
    assert state(g, intent)[:2] == (2, 2)
    assert has_cancelled(g, intent, g.owners[0]) and not has_cancelled(g, intent, g.owners[1])


def test_a_rogue_owner_cannot_block_an_honest_change_forever(vetoed):
    g = vetoed
    intent = drain(g, 302 * UNIT)
    first = g.schedule(*intent)
    rogue = g.owners[2]
    cancel_entry(g.guard, first, signers=[rogue], sender=g.relayer)
    wait_until(g.eta(first))
    second = g.schedule(*intent)  # the honest threshold tries again, after notBefore
    assert raw_cancel(g, second, cancel_signatures(g, second, [rogue])) == "AlreadyCancelledBy"
    with pytest.raises(GuardError, match="already cancelled"):  # the toolkit says so before sending
        cancel_entry(g.guard, second, signers=[rogue], sender=g.relayer)
    g.wait_until_due(second)
    g.execute(*intent)
    assert g.token_balance(PAYEE) >= 302 * UNIT
    assert state(g, intent)[:2] == (2, 0)  # executing starts a new epoch
    assert not has_cancelled(g, intent, rogue)


def test_each_new_intent_is_cancellable_by_one_owner(vetoed):
    """Cancels are counted per intent: cancelling one intent does not raise the bar for others."""
    g = vetoed
    intents = [drain(g, amount * UNIT) for amount in (310, 320, 330)]
    ids = [g.schedule(*intent) for intent in intents]
    for entry, intent in zip(ids, intents, strict=True):
        assert g.guard.cancelSignaturesRequired(entry) == 1
        cancel_entry(g.guard, entry, signers=[g.owners[2]], sender=g.relayer)
        assert state(g, intent)[1] == 1
    assert [status(g, entry) for entry in ids] == ["cancelled"] * 3


def test_execution_resets_the_cancel_count(vetoed):
    g = vetoed
    intent = drain(g, 340 * UNIT)
    first = g.schedule(*intent)
    cancel_entry(g.guard, first, signers=[g.owners[1]], sender=g.relayer)
    wait_until(g.eta(first))
    second = g.schedule(*intent)
    assert raw_cancel(g, second, cancel_signatures(g, second, [g.owners[1]])) == "AlreadyCancelledBy"
    g.wait_until_due(second)
    g.execute(*intent)
    assert state(g, intent)[1] == 0 and not has_cancelled(g, intent, g.owners[1])
    third = g.schedule(*intent)
    assert g.guard.cancelSignaturesRequired(third) == 1
    cancel_entry(g.guard, third, signers=[g.owners[1]], sender=g.relayer)  # the same owner, a new epoch
    assert state(g, intent)[1] == 1 and has_cancelled(g, intent, g.owners[1])


@pytest.mark.parametrize(
    "case", ["a non-owner", "an owner who cancelled", "another entry", "another Safe", "another chain", "another guard"],
)
def test_cancel_signatures_must_be_owner_signatures_of_this_entry(vetoed, case):
    g = vetoed
    intent = drain(g, 350 * UNIT)
    entry = g.schedule(*intent)
    other = g.schedule(*drain(g, 351 * UNIT))
    if case == "an owner who cancelled":  # cancel once, let it come due, schedule again
        cancel_entry(g.guard, entry, signers=[g.owners[2]], sender=g.relayer)
        wait_until(g.eta(entry))
        entry = g.schedule(*intent)
    typed = cancel_typed_data(g.guard, entry)
    signatures = {
        "a non-owner": lambda: cancel_signatures(g, entry, [g.relayer]),
        "an owner who cancelled": lambda: cancel_signatures(g, entry, [g.owners[2]]),
        "another entry": lambda: cancel_signatures(g, other, [g.owners[2]]),
        "another Safe": lambda: signed_over([g.owners[2]], {**typed, "message": {**typed["message"], "safe": ATTACKER}}),
        "another chain": lambda: signed_over([g.owners[2]], {**typed, "domain": {**typed["domain"], "chainId": typed["domain"]["chainId"] + 1}}),
        "another guard": lambda: signed_over([g.owners[2]], {**typed, "domain": {**typed["domain"], "verifyingContract": ATTACKER}}),
    }[case]()
    expected = {"AlreadyCancelledBy"} if case == "an owner who cancelled" else {"GS026", "GS025"}
    assert raw_cancel(g, entry, signatures) in expected
    assert status(g, entry) == "pending"
    # control: the right signature from the same owner works
    cancel_entry(g.guard, entry, signers=[g.owners[2], g.owners[0]], sender=g.relayer)


def test_only_pending_unexpired_entries_can_be_cancelled(vetoed, guardian):
    g = vetoed
    intent = drain(g, 360 * UNIT)
    expired = g.schedule(*intent)
    wait_until(g.expiry(expired))
    one = cancel_signatures(g, expired, [g.owners[2]])
    assert raw_cancel(g, expired, one) == "EntryExpired"
    refused = send_expecting_revert(guardian.address, g.guard.address, g.encode_guard("cancelAsGuardian", expired))
    assert refused == "EntryExpired"
    assert state(g, intent)[1] == 0  # an expired entry raises no count
    executed = g.schedule(*intent)
    g.wait_until_due(executed)
    g.execute(*intent)
    assert raw_cancel(g, executed, cancel_signatures(g, executed, [g.owners[2]])) == "EntryNotPending"
    assert raw_cancel(g, 10**6, cancel_signatures(g, 10**6, [g.owners[2]])) == "EntryNotPending"


def test_a_compromised_threshold_cancelling_its_own_drain_spends_only_its_own_cancels(vetoed, guardian):
    """The attack the epoch record stops: the threshold (owners 0 and 1) schedules its drain and cancels
    it itself, right away, to use up the veto. Each self-cancel spends one of its own owners' cancels
    (and costs it a full delay); the honest owner's and the guardian's cancels stay whole."""
    g = vetoed
    intent = drain(g, 305 * UNIT)
    entry = g.schedule(*intent)
    for attacker in g.owners[:2]:
        cancel_entry(g.guard, entry, signers=[attacker], sender=g.relayer)  # right after scheduling it
        wait_until(g.eta(entry))
        entry = g.schedule(*intent)
        assert g.guard.cancelSignaturesRequired(entry) == 1
    assert state(g, intent)[1] == 2
    assert not has_cancelled(g, intent, g.owners[2]) and not has_cancelled(g, intent, guardian)
    cancel_entry(g.guard, entry, signers=[g.owners[2]], sender=g.relayer)  # the honest owner's veto
    assert status(g, entry) == "cancelled"
    wait_until(g.eta(entry))
    entry = g.schedule(*intent)
    cancel_as_guardian(g.guard, entry, guardian=guardian)  # and the guardian's, whatever the owners did
    assert status(g, entry) == "cancelled" and state(g, intent)[1] == 4
    wait_until(g.eta(entry))
    entry = g.schedule(*intent)
    for who in g.owners:  # every cancel of this epoch is spent now
        assert raw_cancel(g, entry, cancel_signatures(g, entry, [who])) == "AlreadyCancelledBy"
    assert status(g, entry) == "pending"


@pytest.mark.parametrize("kind", ["eth_sign", "approved_hash"])
def test_eth_sign_and_approved_hash_cancels_name_their_owner(vetoed, kind):
    """The guard names the owner of each cancel signature as the Safe does, whatever its form."""
    from ape import chain

    from treasury.signatures.guard_messages import cancel_message
    from treasury.signatures.signing import sign_guard_message

    g = vetoed
    intent = drain(g, 306 * UNIT if kind == "eth_sign" else 307 * UNIT)
    entry = g.schedule(*intent)
    owner = g.owners[1]
    message = cancel_message(chain_id=chain.chain_id, guard=g.guard.address, safe=g.address, entry_id=entry)
    assert message.hash == cancel_hash(g.guard, entry)
    raw = bytes(sign_guard_message(owner, message, g.version, kind).export_signature())
    assert (raw[64] > 30) if kind == "eth_sign" else (raw[64] == 1)
    g.guard.cancel(entry, raw, sender=g.relayer)
    assert [who for who in g.owners if has_cancelled(g, intent, who)] == [owner]
    wait_until(g.eta(entry))
    again = g.schedule(*intent)
    message = cancel_message(chain_id=chain.chain_id, guard=g.guard.address, safe=g.address, entry_id=again)
    raw = bytes(sign_guard_message(owner, message, g.version, kind).export_signature())
    assert raw_cancel(g, again, raw) == "AlreadyCancelledBy"


# --- guardians --------------------------------------------------------------------------------------


def test_a_guardian_cancels_once_per_intent_and_epoch(vetoed, guardian):
    g = vetoed
    intent = drain(g, 370 * UNIT)
    entry = g.schedule(*intent)
    receipt = g.guard.cancelAsGuardian(entry, sender=guardian)
    (log,) = g.guard.Cancelled.from_receipt(receipt)
    assert (log.entryId, log.guardian, log.cancels, log.notBefore) == (entry, guardian.address, 1, g.eta(entry))
    assert status(g, entry) == "cancelled"
    wait_until(g.eta(entry))
    again = g.schedule(*intent)
    refused = send_expecting_revert(guardian.address, g.guard.address, g.encode_guard("cancelAsGuardian", again))
    assert refused == "AlreadyCancelledBy"
    with pytest.raises(GuardError, match="already cancelled"):
        cancel_as_guardian(g.guard, again, guardian=guardian)
    # the owners still can (one is enough)
    receipt = g.guard.cancel(again, cancel_signatures(g, again, g.owners[2:]), sender=g.relayer)
    (log,) = g.guard.Cancelled.from_receipt(receipt)
    assert (log.guardian, log.cancels) == (ZERO_ADDRESS, 2)  # by owners
    # and on another intent the guardian has its one cancel again, even after the owners cancelled it
    other_intent = drain(g, 371 * UNIT)
    other = g.schedule(*other_intent)
    cancel_entry(g.guard, other, signers=[g.owners[0]], sender=g.relayer)
    wait_until(g.eta(other))
    other = g.schedule(*other_intent)
    cancel_as_guardian(g.guard, other, guardian=guardian)
    assert status(g, other) == "cancelled" and has_cancelled(g, other_intent, guardian)


def test_a_guardian_can_only_cancel(vetoed, guardian):
    g = vetoed
    intent = drain(g, 380 * UNIT)
    entry = g.schedule(*intent)
    # not an owner: its schedule signature counts for nothing, alone or next to an owner's
    other = drain(g, 381 * UNIT)
    nonce, expected = schedule_hash(g.guard, *other)
    for signers, error in (([guardian], "GS020"), ([g.owners[0], guardian], "GS026")):
        signatures = sign_typed_data(signers, schedule_typed_data(g.guard, *other, nonce), expected)
        call = g.encode_guard("schedule", *other, signatures)
        assert send_expecting_revert(guardian.address, g.guard.address, call) == error
    # no settings, not even its own
    for data in (g.encode_guard("setGuardian", guardian.address, False), g.encode_guard("setCancelThreshold", 5)):
        assert send_expecting_revert(guardian.address, g.guard.address, data) == "NotSafe"
    # a non-guardian cannot use the guardian path
    refused = send_expecting_revert(g.relayer.address, g.guard.address, g.encode_guard("cancelAsGuardian", entry))
    assert refused == "NotGuardian"
    assert status(g, entry) == "pending"
    assert g.guard.pendingEntryOf(g.guard.intentId(*other)) == 0


def test_guardians_and_cancel_threshold_change_only_through_the_queue(vetoed, guardian):
    g = vetoed
    guard = g.guard.address
    assert g.guard.isGuardian(guardian.address) and g.guard.cancelThreshold() == 1
    assert call_error(g.address, guard, g.encode_guard("setCancelThreshold", 0)) == "InvalidCancelThreshold"
    assert call_error(g.address, guard, g.encode_guard("setCancelThreshold", 256)) == "InvalidCancelThreshold"
    assert call_error(g.address, guard, g.encode_guard("setGuardian", ZERO_ADDRESS, True)) == "InvalidAddress"
    target, data = g.batch(
        Call(guard, 0, g.encode_guard("setCancelThreshold", 2)),
        Call(guard, 0, g.encode_guard("setGuardian", guardian.address, False)),
    )
    assert g.attack(target, 0, data, 1) == "NotScheduled"
    entry = g.schedule(target, 0, data, 1)
    g.wait_until_due(entry)
    g.execute(target, 0, data, 1)
    assert not g.guard.isGuardian(guardian.address) and g.guard.cancelThreshold() == 2
    victim = g.schedule(*drain(g, 390 * UNIT))
    assert g.guard.cancelSignaturesRequired(victim) == 2
    assert raw_cancel(g, victim, cancel_signatures(g, victim, [g.owners[2]])) == "GS020"
    refused = send_expecting_revert(guardian.address, guard, g.encode_guard("cancelAsGuardian", victim))
    assert refused == "NotGuardian"


# --- schedule signatures: per-intent nonce ---------------------------------------------------------------


def test_schedule_signatures_survive_other_schedules_and_die_once_used(vetoed):
    g = vetoed
    intent = drain(g, 400 * UNIT)
    nonce, expected = schedule_hash(g.guard, *intent)
    assert nonce == 0
    # collected one owner at a time, while other intents get scheduled and run
    first_half = sign_typed_data(g.owners[:1], schedule_typed_data(g.guard, *intent, nonce), expected)
    other = g.schedule(*drain(g, 401 * UNIT))
    g.wait_until_due(other)
    g.execute(*drain(g, 401 * UNIT))
    second_half = sign_typed_data(g.owners[1:2], schedule_typed_data(g.guard, *intent, nonce), expected)
    from safe_eth.safe.safe_signature import SafeSignature

    both = SafeSignature.parse_signature(first_half + second_half, expected)
    signatures = bytes(SafeSignature.export_signatures(both))
    schedule_call = g.encode_guard("schedule", *intent, signatures)
    g.guard.schedule(*intent, signatures, sender=g.relayer)
    assert state(g, intent)[0] == 1
    # not again: the nonce moved on, whether the entry runs, is cancelled, or expires
    entry = g.guard.pendingEntryOf(g.guard.intentId(*intent))
    wait_until(g.expiry(entry))
    assert send_expecting_revert(g.relayer.address, g.guard.address, schedule_call) == "GS026"
    entry = g.schedule(*intent)
    cancel_entry(g.guard, entry, signers=[g.owners[2]], sender=g.relayer)
    wait_until(g.eta(entry))
    assert send_expecting_revert(g.relayer.address, g.guard.address, schedule_call) == "GS026"


# --- a larger Safe: an honest minority of h owners stops an intent floor(h / cancelThreshold) times ----------


@pytest.mark.parametrize("version", ["1.3.0", "1.5.0"])
def test_on_a_3_of_5_safe_two_honest_owners_stop_a_drain_twice(version, make_safe, owners, accounts, safe_deployer, relayer, project, request):
    five = [*owners, accounts[7], accounts[8]]
    created = make_safe(five, 3, version=version, salt_nonce=module_salt(request))
    token = safe_deployer.deploy(project.TestToken, "Treasury Token", "TT", 18)
    token.mint(created.address, 10**6 * UNIT, sender=safe_deployer)
    policy = Policy(
        recipients=(PAYEE,), calls=(AllowedCall(target=token.address, selector="transfer(address,uint256)"),),
        caps=(TokenCap(token=token.address, amount=1000 * UNIT, period=DAY, max_per_tx=500 * UNIT, delay_threshold=100 * UNIT),),
        delay=DELAY, window=WINDOW,
    )
    guard = deploy_guard(created.address, version, policy, safe_deployer)
    install_guard(created.address, version, guard.address, signers=five[:3], sender=relayer)
    g = GuardedSafe(version=version, address=created.address, safe=safe_instance(created.address, version), guard=guard,
                    policy=policy, token=token, empty_token=token, stray_token=token, callback=token, owners=five,
                    relayer=relayer)
    intent = drain(g)
    attackers, honest = five[:3], five[3:]
    needed = []
    for canceller in [*attackers, *honest]:  # the attackers burn their own cancels first: no effect on the honest
        entry = schedule_intent_by(g, intent, attackers)
        needed.append(int(guard.cancelSignaturesRequired(entry)))
        cancel_entry(guard, entry, signers=[canceller], sender=relayer)
        wait_until(g.eta(entry))
    assert needed == [1] * 5  # the bar never rises
    entry = schedule_intent_by(g, intent, attackers)
    with pytest.raises(GuardError, match="already cancelled"):  # floor(2 / 1) rounds were the honest minority's
        cancel_entry(guard, entry, signers=five, sender=relayer)


def schedule_intent_by(g, intent, signers) -> int:
    from treasury.chain.guard import schedule_intent

    return schedule_intent(g.guard, *intent, signers=signers, sender=g.relayer)


# --- the constructor ------------------------------------------------------------------------------------------


def deployment_error(args) -> str | None:
    """What deploying a TreasuryGuard with `args` would revert with (eth_call of the creation), or None."""
    from ape import chain

    from treasury.chain.guard import guard_contract_type

    types = ["address", "address", "(uint256,uint256,uint256,address[])", "(address,bytes4)[]", "(address,bytes4,uint256[])[]",
             "address[]", "(address,uint256,uint256,uint256,uint256,bool,uint256,uint256)[]"]
    w3 = chain.provider.web3
    data = bytes.fromhex(guard_contract_type().deployment_bytecode.bytecode[2:]) + encode(types, args)
    try:
        w3.eth.call({"from": ATTACKER, "data": HexBytes(data)})
    except ContractLogicError as error:
        return revert_name(error.data)
    return None


def test_the_constructor_sets_the_queue_from_the_policy(vetoed, accounts, safe_deployer):
    from treasury.chain.guard import constructor_args

    policy = vetoed.policy.model_copy(update={"cancel_threshold": 2, "guardians": (accounts[6].address, accounts[7].address)})
    guard = deploy_guard(vetoed.address, vetoed.version, policy, safe_deployer)
    assert guard.cancelThreshold() == 2 and (guard.delay(), guard.window()) == (DELAY, WINDOW)
    assert guard.isGuardian(accounts[6].address) and guard.isGuardian(accounts[7].address)
    assert not guard.isGuardian(accounts[8].address)
    args = constructor_args(vetoed.address, vetoed.version, policy)
    assert deployment_error(args) is None  # control
    for queue, error in (
        ((DELAY, WINDOW, 0, []), "InvalidCancelThreshold"),
        ((DELAY, WINDOW, 256, []), "InvalidCancelThreshold"),
        ((DELAY, WINDOW, 1, [ZERO_ADDRESS]), "InvalidAddress"),
        ((DELAY - 1, WINDOW, 1, []), "InvalidDelay"),
    ):
        assert deployment_error([*args[:2], queue, *args[3:]]) == error
