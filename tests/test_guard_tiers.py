"""TreasuryGuard v2's tiered thresholds: above a token's tier amount, more owner signatures.

The policy here gives TOKEN a tier: a transaction whose TOKEN total exceeds 50 needs 3 valid owner
signatures on a 2-of-3 Safe (the Safe itself only checks 2). The guard asks the Safe to verify the
SafeTx signatures (checkNSignatures at the nonce just used), so only distinct owners count, in
every format the Safe accepts. Module transactions carry no signatures and are refused above a
tier. Attacks are raw execTransaction calls on Safe 1.3.0, 1.4.1 and 1.5.0.
"""

import pytest
from eth_abi import encode
from guard_helpers import *

from treasury.chain.safe import safe_nonce
from treasury.execution.send import execute_safe_tx, execute_with_owners
from treasury.proposal.safe_tx import build_safe_tx
from treasury.signatures import encode_signatures, sign_safe_tx
from treasury.signatures.signing import sign

TIER = 50 * UNIT
TIER_SIGNERS = 3


def tier_policy(token, empty_token, callback):
    policy = standard_policy(token, empty_token, callback)
    caps = tuple(
        cap.model_copy(update={"tier_above": TIER, "tier_signers": TIER_SIGNERS}) if cap.token == token else cap
        for cap in policy.caps
    )
    return policy.model_copy(update={"caps": caps})


@pytest.fixture(scope="module", params=VERSIONS)
def tiered(request, make_safe, owners, safe_deployer, relayer, project):
    """A guarded 2-of-3 Safe whose TOKEN transfers above 50 need all three owners."""
    return build_guarded_safe(
        version=request.param, salt_nonce=module_salt(request), make_safe=make_safe, owners=owners,
        deployer=safe_deployer, relayer=relayer, project=project, policy_for=tier_policy,
    )


def pay(g, amount, to=PAYEE):
    return g.token.address, 0, transfer(to, amount), 0


def attack_signed(g, to, value, data, operation, signers) -> str:
    """A raw execTransaction signed by `signers` (any list, duplicates kept) that must be refused."""
    calldata = g.exec_calldata(to, value, data, operation, signers=signers)
    before = g.state()
    name = send_expecting_revert(g.relayer.address, g.address, calldata)
    assert g.state() == before
    return name


def test_the_tier_is_configured_from_the_policy(tiered):
    assert tuple(tiered.guard.tierConfig(tiered.token.address)) == (TIER, TIER_SIGNERS)
    assert tiered.guard.tierConfig(NATIVE)[1] == 0  # no tier on the native currency


def test_above_the_tier_the_threshold_is_not_enough(tiered):
    assert tiered.attack(*pay(tiered, TIER + 1)) == "NotEnoughSignatures"
    assert tiered.guard.tierConfig(tiered.token.address)[1] == TIER_SIGNERS


def test_above_the_tier_the_tier_signers_suffice(tiered):
    before = tiered.token_balance(PAYEE)
    execute_with_owners(tiered.address, tiered.version, *pay(tiered, TIER + 1), signers=tiered.owners, sender=tiered.relayer)
    assert tiered.token_balance(PAYEE) == before + TIER + 1


def test_at_or_below_the_tier_the_threshold_suffices(tiered):
    before = tiered.token_balance(PAYEE)
    tiered.execute(*pay(tiered, TIER))
    assert tiered.token_balance(PAYEE) == before + TIER


@pytest.mark.parametrize("case", ["the same owner twice", "a non-owner as third", "only two of three"])
def test_signatures_that_do_not_make_the_tier(tiered, accounts, case):
    """The Safe checks the first two signatures (sorted by signer), the tier all three: the bad one
    sorts last so that the Safe's own check passes and only the guard's can refuse."""
    first, second = sorted(tiered.owners, key=lambda a: int(a.address, 16))[:2]
    owners = {o.address for o in tiered.owners}
    stranger = next(a for a in (accounts[i] for i in range(10))
                    if int(a.address, 16) > int(second.address, 16) and a.address not in owners)
    signers = {
        "the same owner twice": [first, second, second],
        "a non-owner as third": [first, second, stranger],
        "only two of three": [first, second],
    }[case]
    assert attack_signed(tiered, *pay(tiered, TIER + 1), signers) == "NotEnoughSignatures"


def test_the_tier_applies_to_the_total_of_a_batch(tiered):
    half = (tiered.token.address, 0, transfer(PAYEE, TIER // 2 + 1))
    target, data = tiered.batch(Call(*half), Call(*half))
    assert tiered.attack(target, 0, data, 1) == "NotEnoughSignatures"
    execute_with_owners(tiered.address, tiered.version, target, 0, data, 1, signers=tiered.owners, sender=tiered.relayer)


def test_a_scheduled_transfer_above_the_tier_still_needs_the_tier(tiered):
    """Order of the checks: the delay entry is consumed only if the tier holds too (all or nothing)."""
    intent = pay(tiered, 150 * UNIT)  # above the delay threshold too
    entry = tiered.schedule(*intent)
    tiered.wait_until_due(entry)
    assert tiered.attack(*intent) == "NotEnoughSignatures"
    assert tiered.guard.getEntry(entry)[3] == 1  # still pending
    execute_with_owners(tiered.address, tiered.version, *intent, signers=tiered.owners, sender=tiered.relayer)
    assert tiered.guard.getEntry(entry)[3] == 2  # executed


def test_an_approved_hash_counts_towards_the_tier(tiered):
    """The Safe's own rules decide what counts: an owner's on-chain approveHash is a signature."""
    from ape import chain

    intent = pay(tiered, TIER + 2)
    safe_tx = build_safe_tx(tiered.address, *intent, nonce=safe_nonce(tiered.address, tiered.version),
                            chain_id=chain.chain_id, version=tiered.version)
    signatures = [sign_safe_tx(o, safe_tx) for o in tiered.owners[:2]] + [sign(tiered.owners[2], safe_tx, "approved_hash")]
    before = tiered.token_balance(PAYEE)
    execute_safe_tx(safe_tx, signatures, sender=tiered.relayer, version=tiered.version)
    assert tiered.token_balance(PAYEE) == before + TIER + 2


def test_the_executors_own_pre_validated_signature(tiered):
    """An owner executing with v = 1 for itself (no approveHash): Safe 1.5.0 tells the guard who the
    executor is, so it counts; 1.3.0 and 1.4.1 only know the guard as caller, so the tier refuses
    (fail closed; that owner must approveHash first)."""
    from ape import chain

    intent = pay(tiered, TIER + 3)
    executor = tiered.owners[2]
    safe_tx = build_safe_tx(tiered.address, *intent, nonce=safe_nonce(tiered.address, tiered.version),
                            chain_id=chain.chain_id, version=tiered.version)
    signed = {o.address: sign_safe_tx(o, safe_tx) for o in tiered.owners[:2]}
    pre_validated = encode(["uint256", "uint256"], [int(executor.address, 16), 0]) + b"\x01"
    parts = sorted([*((address, encode_signatures([s])) for address, s in signed.items()), (executor.address, pre_validated)],
                   key=lambda item: int(item[0], 16))
    signatures = b"".join(raw for _, raw in parts)
    calldata = bytes(tiered.safe.execTransaction.encode_input(
        safe_tx.to, safe_tx.value, safe_tx.data, safe_tx.operation, safe_tx.safe_tx_gas, safe_tx.base_gas,
        safe_tx.gas_price, safe_tx.gas_token, safe_tx.refund_receiver, signatures,
    ))
    before = tiered.token_balance(PAYEE)
    if tiered.version == "1.5.0":
        executor.transfer(tiered.address, 0, data=calldata)
        assert tiered.token_balance(PAYEE) == before + TIER + 3
    else:
        assert send_expecting_revert(executor.address, tiered.address, calldata) == "NotEnoughSignatures"
        assert tiered.token_balance(PAYEE) == before


# --- modules (Safe 1.5.0: the guard is the module guard too) -------------------------------------------


@pytest.fixture
def module(tiered, project, safe_deployer):
    module = safe_deployer.deploy(project.TestModule)
    enable = (tiered.address, 0, tiered.encode_safe("enableModule", module.address), 0)
    entry = tiered.schedule(*enable)
    tiered.wait_until_due(entry)
    tiered.execute(*enable)
    return module


@pytest.mark.parametrize("tiered", ["1.5.0"], indirect=True)
def test_a_module_transaction_over_a_tier_is_refused(tiered, module):
    def module_tx(amount):
        return bytes(module.exec.encode_input(tiered.address, *pay(tiered, amount)))

    before = tiered.state()
    assert send_expecting_revert(tiered.relayer.address, module.address, module_tx(TIER + 1)) == "NotEnoughSignatures"
    assert tiered.state() == before
    tiered.relayer.transfer(module.address, 0, data=module_tx(TIER))  # at the tier: as any module transaction
    assert tiered.token_balance(PAYEE) >= TIER
