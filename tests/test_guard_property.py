"""Property: whatever the sequence of transfers and time jumps, TreasuryGuard's budget is an exact
sliding window, and spent budget comes back on its own.

Hypothesis drives random sequences of (amount, time jump) against a guarded Safe on anvil. Only
the budget binds (no per-transaction limit, no delay threshold). Each attempt is a raw
execTransaction signed by a threshold of owners, mined at an exact timestamp. We record every
accepted transfer and check, against that record alone (not against the contract's bookkeeping):

- safety: for every accepted transfer at t, the accepted total in the closed window
  [t - period, t] is at most the cap amount. The contract promises any window of length `period`,
  open or closed; a closed window of length `period` spans period + 1 seconds.
- refill: an attempt of x is accepted whenever x fits in the amount minus what was accepted in
  the last refill(period) seconds (3 sub-slots of ceil(period / 2): 1.5 periods when the period
  is even), and refill(period) seconds after the last transfer the whole amount is back.
- the off-chain verdict (predict_verdict) agrees with the on-chain outcome before every attempt,
  and budgetLeft stays between the two bounds above.

Each example starts from the same freshly installed guard: a chain snapshot is restored after it.
"""


import pytest
from guard_helpers import *
from hypothesis import HealthCheck, given, settings, strategies as st

from treasury.policy.model import MAX_AMOUNT, AllowedCall, Policy, TokenCap

AMOUNT = 1000
# (Safe version, cap period). 61 s is the shortest odd period: sub-slots of ceil(61 / 2) = 31 s.
CASES = [("1.4.1", 3600), ("1.5.0", 600), ("1.3.0", 61)]


def sub_slot(period: int) -> int:
    return (period + 1) // 2


def refill(period: int) -> int:
    """Seconds after which a spend no longer counts. The contract documents "between period and
    1.5 * period"; its sub-slots of ceil(period / 2) seconds make that 3 * ceil(period / 2), which
    is 1.5 * period for even periods (see test_budget_comes_back_after_one_and_a_half_periods)."""
    return 3 * sub_slot(period)


def budget_policy(period):
    def policy(token, *_):
        return Policy(
            recipients=(PAYEE,),
            calls=(AllowedCall(target=token, selector="transfer(address,uint256)"),),
            caps=(TokenCap(token=token, amount=AMOUNT, period=period, max_per_tx=MAX_AMOUNT),),
            delay=DELAY,
            window=WINDOW,
        )

    return policy


@pytest.fixture(scope="module", params=CASES, ids=[f"{v}-period {p}s" for v, p in CASES])
def windowed(request, make_safe, owners, safe_deployer, relayer, project):
    version, period = request.param
    guarded = build_guarded_safe(
        version=version, salt_nonce=module_salt(request), make_safe=make_safe, owners=owners, deployer=safe_deployer,
        relayer=relayer, project=project, policy_for=budget_policy(period),
    )
    return guarded, period


def attempt(guarded, amount: int, at: int) -> tuple[bool, object]:
    """Predict for a block at exactly `at`, then mine a transfer of `amount` in that block; (accepted, verdict).

    The prediction is an eth_call at "pending" with the next block's timestamp set to `at`, so the
    verdict and the execution see the same time whatever the wall clock does in between.
    """
    from ape import chain

    data = transfer(PAYEE, amount)
    wait_until(at)
    verdict = guarded.predict(guarded.token.address, 0, data, at=at)
    calldata = guarded.exec_calldata(guarded.token.address, 0, data)
    pin_next_block(at)
    w3 = chain.provider.web3
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": guarded.relayer.address, "to": guarded.address, "data": calldata, "gas": 1_000_000})
    )
    assert w3.eth.get_block(receipt.blockNumber).timestamp == at
    return receipt.status == 1, verdict


# One step: how much to try (relative to what the guard says is left, or absolute) and how far to
# jump first (a few seconds, up to a sub-slot, up to two periods, or onto a sub-slot edge).
amounts = st.one_of(
    st.tuples(st.just("left"), st.integers(0, 1)),  # exactly what is left, or one more
    st.tuples(st.just("fixed"), st.integers(1, AMOUNT)),
)
jumps = st.one_of(
    st.tuples(st.just("seconds"), st.integers(0, 3)),
    st.tuples(st.just("sub-slot"), st.floats(0, 1)),
    st.tuples(st.just("periods"), st.floats(0, 2)),
    st.tuples(st.just("edge"), st.integers(-1, 1)),  # next sub-slot boundary, +-1 s
)


@settings(max_examples=35, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(jumps, amounts), min_size=1, max_size=12))
def test_budget_is_a_sliding_window_that_refills(windowed, steps):
    from ape import chain

    guarded, period = windowed
    length = sub_slot(period)
    snapshot = chain.snapshot()
    try:
        accepted: list[tuple[int, int]] = []
        now = head_timestamp() + 1
        for (jump_kind, jump), (amount_kind, amount) in steps:
            # The chosen lambda runs at once, in this iteration: no late binding of jump or now (B023).
            now += {
                "seconds": lambda: jump,  # noqa: B023
                "sub-slot": lambda: int(jump * length),  # noqa: B023
                "periods": lambda: int(jump * period),  # noqa: B023
                "edge": lambda: max(0, (now // length + 1) * length + jump - now),  # noqa: B023
            }[jump_kind]()
            wait_until(now)
            if amount_kind == "left":
                amount = guarded.budget() + amount
            if amount == 0:
                continue
            counted_in_window = sum(a for t, a in accepted if t >= now - period)
            counted_at_most = sum(a for t, a in accepted if t > now - refill(period))
            left = guarded.budget()
            assert AMOUNT - counted_at_most <= left <= AMOUNT - counted_in_window

            ok, verdict = attempt(guarded, amount, now)

            assert ok == verdict.allowed, f"predict_verdict said {verdict} but the chain {'accepted' if ok else 'refused'}"
            if ok:
                assert counted_in_window + amount <= AMOUNT, "accepted beyond the budget of the last period"
                accepted.append((now, amount))
            else:
                assert verdict.error == "ExceedsBudget"
                assert amount > AMOUNT - counted_at_most, "refused although the budget should have come back"

        for t, _ in accepted:  # every closed window of one period ending at an accepted transfer
            assert sum(a for u, a in accepted if t - period <= u <= t) <= AMOUNT
        assert guarded.token_balance(PAYEE) == sum(a for _, a in accepted)

        if accepted:  # refill(period) after the last transfer (or now, if that is already later)
            wait_until(max(now, accepted[-1][0] + refill(period)))
            assert guarded.budget() == AMOUNT
    finally:
        chain.restore(snapshot)


@pytest.mark.parametrize("windowed", [CASES[0], CASES[2]], indirect=True, ids=["period 3600s", "period 61s"])
def test_budget_comes_back_after_one_and_a_half_periods(windowed):
    """The NatSpec: "Spent budget comes back on its own between `period` and 3 * L (1.5 * `period`,
    rounded up for an odd period)". Worst case: spend at the very start of a sub-slot, wait 3 * L."""
    guarded, period = windowed
    length = sub_slot(period)
    start = (head_timestamp() // length + 2) * length
    guarded.execute(guarded.token.address, 0, transfer(PAYEE, AMOUNT), at=start)
    wait_until(start + period)
    assert guarded.budget() == 0  # not before one period
    wait_until(start + 3 * length - 1)
    assert guarded.budget() == 0  # not a second before 3 * L
    wait_until(start + 3 * length)
    assert guarded.budget() == AMOUNT
