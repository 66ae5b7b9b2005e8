"""The small-amount rehearsal of a new Safe (`treasury smoke-test`): prove every key works with pocket money.

Teams are told to test a new Safe with a small amount before trusting it with a large one. Done by
hand, "it executed" is usually the only check, and the owners who did not sign it are never tested.
Here a funder sends a small amount in, a transfer of the same amount out is proposed (back to the
funder by default), EVERY owner signs it in turn (a contract owner through its own owners, checked
by EIP-1271), it is rehearsed, executed, and the balances are checked to have moved by exactly the
amounts. The run is kept as an audit entry, so on a live network a second run is refused unless
asked for (`again`): it would send money once more. There the run is written down as started
("smoke-test.started", Store.begin_smoke_test) before the funding is sent, in the same store
transaction that checks for earlier runs: a run that dies half-way, or two runs at once, still
count, so money is never sent twice by accident.

Each step is named; a failure raises SmokeTestFailed naming the step where it happened. The checks
(`plan_smoke_test`) send nothing, so a denied recipient or an empty funder costs nothing.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from treasury.addresses import parse_address
from treasury.errors import TreasuryError, one_line
from treasury.store.repository import SMOKE_TEST_ACTIONS

if TYPE_CHECKING:
    from ape.api import AccountAPI

    from treasury.amounts import Token
    from treasury.proposal.build import Intent
    from treasury.treasury import Treasury

DEFAULT_AMOUNT = "0.001 ETH"
RUN_ACTIONS = SMOKE_TEST_ACTIONS  # started (live networks), passed, failed


class SmokeTestFailed(TreasuryError):
    """A step of the smoke test failed; `step` names it, `sent` says whether anything reached the chain."""

    def __init__(self, step: str, reason: str, *, sent: bool = False, proposal_id: str | None = None):
        self.step, self.reason, self.sent, self.proposal_id = step, reason, sent, proposal_id
        left = f" (proposal {proposal_id} is left open)" if proposal_id else ""
        nothing = "" if sent else "; nothing was sent"
        super().__init__(f"smoke test failed at step {step!r}: {reason}{left}{nothing}")


@dataclass(frozen=True)
class ContractOwnerSigner:
    """A contract owner of the Safe (an owner Safe, by address or book name) and the accounts that sign for it."""

    owner_safe: str
    inner_signers: tuple[Any, ...]


@dataclass(frozen=True)
class Step:
    """One step done: its name ("fund", "sign alice", ...), what it did, and its transaction if it sent one."""

    name: str
    detail: str
    tx_hash: str | None = None


@dataclass(frozen=True)
class SmokeTestPlan:
    """What a run will do, checked before anything is sent (see `plan_smoke_test`)."""

    treasury: Treasury
    token: Token
    amount: int  # base units, in and out
    funder: Any  # ape account
    recipient: str
    executor: Any  # ape account that sends execTransaction
    signers: tuple[tuple[str, Any], ...]  # (owner, ape account or ContractOwnerSigner), in the Safe's owner order
    intent: Intent
    live: bool
    nonce: int = 0  # the Safe's nonce on chain at planning: the proposal takes it, or the run stops before funding
    steps: tuple[Step, ...] = ()
    again: bool = False  # a live network runs although an earlier run is on record

    def describe(self) -> str:
        label = self.treasury.addresses.label
        what = self.treasury.book.format(self.token.address, self.amount)
        return (f"send {what} from {label(self.funder.address)} to Safe {self.treasury.safe}, then out to "
                f"{label(self.recipient)}, signed by all {len(self.signers)} owners, executed by {label(self.executor.address)}")


@dataclass(frozen=True)
class SmokeTestReport:
    """A passed run: what moved, who signed, every step, and the audit entry that records it."""

    safe: str
    chain_id: int
    token: str
    amount: int
    funder: str
    recipient: str
    executor: str
    proposal_id: str
    signers: tuple[str, ...]
    fund_tx: str
    execute_tx: str
    audit_seq: int
    steps: tuple[Step, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Stable JSON: amounts as decimal strings."""
        return {"passed": True, "safe": self.safe, "chain_id": self.chain_id, "token": self.token, "amount": str(self.amount),
                "funder": self.funder, "recipient": self.recipient, "executor": self.executor,
                "proposal_id": self.proposal_id, "signers": list(self.signers), "fund_tx": self.fund_tx,
                "execute_tx": self.execute_tx, "audit_seq": self.audit_seq,
                "steps": [{"name": s.name, "detail": s.detail, "tx_hash": s.tx_hash} for s in self.steps]}


OnStep = Callable[[Step], None]


@contextlib.contextmanager
def _step(name: str, *, sent: bool = False, proposal_id: str | None = None) -> Iterator[None]:
    """Any failure inside becomes SmokeTestFailed naming `name` (one line)."""
    try:
        yield
    except SmokeTestFailed:
        raise
    except Exception as error:  # noqa: BLE001 - whatever broke, the user learns which step and why, in one line
        raise SmokeTestFailed(name, one_line(error), sent=sent, proposal_id=proposal_id) from None


def _fail(name: str, reason: str) -> SmokeTestFailed:
    return SmokeTestFailed(name, reason)


# --- the checks: nothing is sent ---------------------------------------------------------------------


def previous_runs(treasury: Treasury) -> list[Any]:
    """The audit entries of earlier smoke tests of this Safe on this chain: started (on a live
    network, before funding), passed, or failed after sending. An outcome of a run that was started
    carries `started_seq`: `run_count` counts such a run once."""
    return [e for e in treasury.store.audit_entries() if e.action in RUN_ACTIONS
            and e.payload.get("safe") == treasury.safe and e.payload.get("chain_id") == treasury.chain_id]


def run_count(entries: Sequence[Any]) -> int:
    """How many runs `previous_runs` entries stand for (a started run and its outcome are one)."""
    return sum(1 for e in entries if e.action == "smoke-test.started" or "started_seq" not in e.payload)


def plan_smoke_test(
    treasury: Treasury, *, funder: AccountAPI, owners: Sequence[AccountAPI | ContractOwnerSigner],
    amount: str = DEFAULT_AMOUNT, to: str | None = None, executor: AccountAPI | None = None, again: bool = False,
) -> SmokeTestPlan:
    """Check everything that can be checked before sending: the once-only rule on a live network,
    that the signers are exactly the Safe's owners (every key must sign), the amount, the policy
    verdict on the transfer out, and the funder's balance. Raises SmokeTestFailed naming the step."""
    from treasury.proposal import build

    steps = [_once(treasury, again)]
    with _step("owners"):
        signers = _signers_by_owner(treasury, owners)
    steps.append(Step("owners", f"all {len(signers)} owners have a signer; the Safe's threshold is {treasury.threshold()}"))
    with _step("amount"):
        token, units = treasury.book.parse(amount)
    nonce = _free_nonce(treasury)
    steps.append(Step("nonce", f"the proposal will take the Safe's nonce {nonce}"))
    with _step("policy"):
        recipient = treasury.resolve_address(to, "recipient") if to else parse_address(funder.address, "funder")
        if recipient == treasury.safe:
            raise _fail("policy", "the transfer out must go to someone else than the Safe itself")
        intent = build.token_transfer(treasury.safe, treasury.book, recipient, amount)
        verdict = treasury.verdict_for(intent.to, intent.value, intent.data, intent.operation)
    if not verdict.allowed:
        raise _fail("policy", f"the policy verdict on the transfer out is {verdict.outcome}: {verdict.reason}")
    steps.append(Step("policy", f"verdict on the transfer out: {verdict.reason or verdict.outcome}"))
    with _step("fund"):
        held = _balance(token, funder.address)
    if held < units:
        what = treasury.book.format(token.address, units)
        raise _fail("fund", f"funder {treasury.addresses.label(funder.address)} holds "
                            f"{treasury.book.format(token.address, held)}, less than the {what} to send in")
    return SmokeTestPlan(treasury, token, units, funder, recipient, executor or funder, signers, intent,
                         treasury.is_live, nonce, tuple(steps), again)


def _free_nonce(treasury: Treasury) -> int:
    """The Safe's nonce on chain, which the smoke test's proposal must take: an open proposal already
    holding it would run first or block ours, so the run would fail after the money went in."""
    with _step("nonce"):
        chain_nonce = treasury.onchain_nonce()
        free = treasury.next_nonce(chain_nonce)
    if free != chain_nonce:
        held = [r.id for r in treasury.store.list_proposals(safe=treasury.safe, chain_id=treasury.chain_id)
                if r.nonce == chain_nonce and r.status in ("pending", "scheduled")]
        raise _fail("nonce", f"open proposal {', '.join(held) or '?'} holds the Safe's nonce {chain_nonce}: execute "
                             "or drop it first (`treasury drop ID`), or the smoke test would fail after funding")
    return chain_nonce


def _once(treasury: Treasury, again: bool) -> Step:
    if getattr(treasury.store, "is_remote", False):
        raise _fail("once", "a smoke test is recorded in the local store, which the once-only rule reads: run it "
                            "without --server")
    with _step("once"):
        live = treasury.is_live
        runs = previous_runs(treasury)
    if not live:
        return Step("once", f"a development chain: runs are not limited ({run_count(runs)} before)")
    if runs and not again:
        last = runs[-1]
        outcome = last.action.removeprefix("smoke-test.")
        raise _fail("once", f"a smoke test of Safe {treasury.safe} already ran on chain {treasury.chain_id} "
                            f"({outcome} at {last.at.isoformat()}, audit entry {last.seq}){AGAIN}")
    return Step("once", f"a live network: {run_count(runs)} earlier run(s)" + (", running again as asked" if runs else ""))


AGAIN = "; pass --again to run it once more"


def _begin(plan: SmokeTestPlan) -> int | None:
    """On a live network, write the run down as started before any money moves (Store.begin_smoke_test
    re-checks the once-only rule in the same transaction); None on a development chain."""
    from treasury.store import InvalidTransition

    if not plan.live:
        return None
    treasury = plan.treasury
    try:
        return treasury.store.begin_smoke_test(treasury.chain_id, treasury.safe, _payload(plan, None, None),
                                               treasury.actor, again=plan.again)
    except InvalidTransition as refused:
        raise SmokeTestFailed("once", f"{one_line(refused)}{AGAIN}") from None
    except Exception as error:  # noqa: BLE001 - a store that cannot record the start: nothing is sent
        raise SmokeTestFailed("once", f"the run could not be recorded as started: {one_line(error)}") from None


def _signers_by_owner(treasury: Treasury, given: Sequence[Any]) -> tuple[tuple[str, Any], ...]:
    """Map every current owner to its signer, in the Safe's owner order; each signer must be an owner
    and each owner must have one (the point is that every key signs)."""
    owners = treasury.owners()
    by_owner: dict[str, Any] = {}
    for signer in given:
        if isinstance(signer, ContractOwnerSigner):
            owner = treasury.resolve_address(signer.owner_safe, "owner Safe")
            if not signer.inner_signers:
                raise _fail("owners", f"contract owner {treasury.addresses.label(owner)} needs its own signers (--inner)")
        else:
            owner = parse_address(signer.address, "owner")
        if owner not in owners:
            raise _fail("owners", f"{treasury.addresses.label(owner)} is not an owner of Safe {treasury.safe}")
        if owner in by_owner:
            raise _fail("owners", f"owner {treasury.addresses.label(owner)} is given twice")
        by_owner[owner] = signer
    missing = [treasury.addresses.label(o) for o in owners if o not in by_owner]
    if missing:
        raise _fail("owners", f"every owner must sign; no signer for {', '.join(missing)} (--owner, or --owner-safe "
                              "with --inner for a contract owner)")
    return tuple((owner, by_owner[owner]) for owner in owners)


# --- the run -------------------------------------------------------------------------------------------


def run_smoke_test(treasury: Treasury, *, on_step: OnStep | None = None, **options: Any) -> SmokeTestReport:
    """`plan_smoke_test(treasury, **options)`, then `carry_out` the plan."""
    return carry_out(plan_smoke_test(treasury, **options), on_step=on_step)


def carry_out(plan: SmokeTestPlan, on_step: OnStep | None = None) -> SmokeTestReport:
    """Fund, propose, sign as every owner, rehearse, execute, check the balances exactly, record.

    On a live network the run is first recorded as started (`_begin`: the once-only rule checked
    again, atomically). A failure after the funding was sent is recorded as a "smoke-test.failed"
    audit entry (it counts as a run for the once-only rule: money moved) and raised as
    SmokeTestFailed naming the step; a run killed outright is still blocked by its started entry.
    """
    done: list[Step] = []

    def report(step: Step) -> None:
        done.append(step)
        if on_step is not None:
            on_step(step)

    for step in plan.steps:
        report(step)
    started = _begin(plan)
    proposal_id = None
    try:
        fund = _fund(plan)
        report(fund.step)
        proposal_id = _propose(plan, report)
        _sign_all(plan, proposal_id, report)
        _check_threshold_sets(plan, proposal_id, report)
        _rehearse(plan, proposal_id, report)
        execution = _execute(plan, proposal_id, report)
        _check_balances(plan, fund, execution, report)
    except SmokeTestFailed as failure:
        if not failure.sent:
            raise
        _record_failure(plan, failure, proposal_id, started)
        raise SmokeTestFailed(failure.step, failure.reason, sent=True, proposal_id=_left_open(plan, proposal_id)) from None
    with _step("record", sent=True):
        seq = plan.treasury.store.add_smoke_test(plan.treasury.chain_id, plan.treasury.safe, "passed",
                                                 _payload(plan, fund.tx_hash, execution.tx_hash, started),
                                                 plan.treasury.actor, proposal_id=proposal_id)
    report(Step("record", f"recorded as audit entry {seq} (smoke-test.passed)"))
    return SmokeTestReport(plan.treasury.safe, plan.treasury.chain_id, plan.token.symbol, plan.amount, plan.funder.address,
                           plan.recipient, plan.executor.address, proposal_id, tuple(o for o, _ in plan.signers),
                           fund.tx_hash, execution.tx_hash, seq, tuple(done))


@dataclass(frozen=True)
class _Funded:
    step: Step
    tx_hash: str
    block: int
    fee: int  # what the funder paid for gas, in wei


def _fund(plan: SmokeTestPlan) -> _Funded:
    """The funder sends the amount to the Safe; the Safe's and funder's balances are checked to have
    moved by exactly the amount (the funder's by the gas too) in that block."""
    from eth_abi import encode
    from eth_utils import function_signature_to_4byte_selector

    treasury = plan.treasury
    with _step("fund"):
        if plan.token.is_native:
            receipt = plan.funder.transfer(treasury.safe, plan.amount)
        else:
            data = function_signature_to_4byte_selector("transfer(address,uint256)") + encode(
                ["address", "uint256"], [treasury.safe, plan.amount])
            receipt = plan.funder.transfer(plan.token.address, 0, data=data)
    tx_hash, block, fee, ok = _mined(receipt)
    if not ok:
        raise SmokeTestFailed("fund", f"the funding transaction {tx_hash} failed", sent=True)
    with _step("fund", sent=True):
        _expect_moved(plan, "fund", treasury.safe, block, plan.amount, "the Safe")
        _expect_moved(plan, "fund", plan.funder.address, block, -plan.amount, "the funder", native_fee=fee)
    what = treasury.book.format(plan.token.address, plan.amount)
    fees = " (the funder's check includes its gas fee, any L1 data fee too)" if plan.token.is_native else ""
    return _Funded(Step("fund", f"{what} sent in by {treasury.addresses.label(plan.funder.address)}, exactly{fees}", tx_hash),
                   tx_hash, block, fee)


def _propose(plan: SmokeTestPlan, report: OnStep) -> str:
    with _step("propose", sent=True):
        what = plan.treasury.book.format(plan.token.address, plan.amount)
        record = plan.treasury.propose(plan.intent, f"smoke test: {what} back to {plan.treasury.addresses.label(plan.recipient)}",
                                       nonce=plan.nonce, if_denied="refuse")
    report(Step("propose", f"proposal {record.id} (nonce {record.nonce}): {record.title}"))
    return record.id


def _sign_all(plan: SmokeTestPlan, proposal_id: str, report: OnStep) -> None:
    """Every owner signs in turn, in the Safe's owner order; each signature is verified before it is stored."""
    treasury = plan.treasury
    for owner, signer in plan.signers:
        name = treasury.addresses.name_of(owner) or owner
        with _step(f"sign {name}", sent=True, proposal_id=proposal_id):
            if isinstance(signer, ContractOwnerSigner):
                treasury.sign_as_contract_owner(proposal_id, owner, signer.inner_signers)
                through = ", ".join(treasury.addresses.label(a.address) for a in signer.inner_signers)
                detail = f"{treasury.addresses.label(owner)} signed as a contract owner through {through} (EIP-1271 checked)"
            else:
                stored = treasury.sign(proposal_id, signer)
                detail = f"{treasury.addresses.label(owner)} signed ({stored.kind}, verified by recovery)"
        report(Step(f"sign {name}", detail))


def threshold_sets(owners: Sequence[str], threshold: int) -> list[tuple[str, ...]]:
    """Sets of `threshold` owners that together cover every owner, in order: 3-of-5 gives (1, 2, 3)
    and (3, 4, 5). The Safe checks only `threshold` signatures of an execution, so one execution
    alone would leave some owners' signatures unchecked by the Safe itself."""
    ordered = list(owners)
    sets = []
    for start in range(0, len(ordered), threshold):
        chunk = ordered[start:start + threshold]
        sets.append(tuple(ordered[start - (threshold - len(chunk)):start] + chunk))
    return sets


def _check_threshold_sets(plan: SmokeTestPlan, proposal_id: str, report: OnStep) -> None:
    """execTransaction simulated (eth_call, nothing sent) with threshold-sized sets of the stored
    signatures covering every owner: the Safe itself, its guard included, accepts each owner's
    signature, the contract owner's through its EIP-1271 check inside execTransaction."""
    from treasury.decode.revert import explain_revert
    from treasury.execution.send import simulate

    treasury, step = plan.treasury, "threshold sets"
    label = treasury.addresses.name_of
    with _step(step, sent=True, proposal_id=proposal_id):
        safe_tx = treasury.safe_tx(treasury.get(proposal_id))
        by_owner: dict[str, Any] = {s.owner: s for s in treasury.collected_signatures(proposal_id)}
        missing = [label(o) or o for o, _ in plan.signers if o not in by_owner]
        if missing:
            raise SmokeTestFailed(step, f"no verified signature of {', '.join(missing)}", sent=True)
        sets = threshold_sets([o for o, _ in plan.signers], treasury.threshold())
        for chosen in sets:
            outcome = simulate(safe_tx, [by_owner[o] for o in chosen], plan.executor.address, treasury.version)
            if not outcome.succeeds:
                why = explain_revert(outcome.revert_data, treasury.book) if outcome.revert_data else (
                    outcome.message or "the inner call fails (ExecutionFailure)")
                names = ", ".join(label(o) or o for o in chosen)
                raise SmokeTestFailed(step, f"execTransaction signed by {names} would fail: {why}", sent=True)
    shown = "; ".join(", ".join(label(o) or o for o in chosen) for chosen in sets)
    report(Step(step, f"the Safe accepts every owner's signature: execTransaction simulated with {shown}"))


def _rehearse(plan: SmokeTestPlan, proposal_id: str, report: OnStep) -> None:
    with _step("rehearse", sent=True, proposal_id=proposal_id):
        rehearsal = plan.treasury.rehearse(proposal_id, executor=plan.executor.address)
    if not rehearsal.success:
        raise SmokeTestFailed("rehearse", rehearsal.reason, sent=True)
    report(Step("rehearse", f"succeeds on {rehearsal.network}"))


def _execute(plan: SmokeTestPlan, proposal_id: str, report: OnStep) -> Any:
    with _step("execute", sent=True, proposal_id=proposal_id):
        execution = plan.treasury.execute(proposal_id, plan.executor)
    if not execution.success:
        raise SmokeTestFailed("execute", f"the Safe reported ExecutionFailure in {execution.tx_hash}", sent=True)
    by = plan.treasury.addresses.label(plan.executor.address)
    report(Step("execute", f"executed by {by} in block {execution.block_number}", execution.tx_hash))
    return execution


def _check_balances(plan: SmokeTestPlan, fund: _Funded, execution: Any, report: OnStep) -> None:
    """In the execution's block the Safe lost exactly the amount (a SafeTx with gas price 0: the
    Safe pays no gas) and the recipient gained it (less its gas if it also executed)."""
    with _step("balances", sent=True):
        _tx_hash, block, fee, _ok = _mined(execution.tx_hash)
        _expect_moved(plan, "balances", plan.treasury.safe, block, -plan.amount, "the Safe")
        paid = fee if plan.recipient == parse_address(plan.executor.address, "executor") else 0
        _expect_moved(plan, "balances", plan.recipient, block, plan.amount, "the recipient", native_fee=paid)
    what = plan.treasury.book.format(plan.token.address, plan.amount)
    report(Step("balances", f"exact: the Safe +{what} then -{what}; the recipient +{what}"
                            + (" (less its execution fee, any L1 data fee included)" if paid and plan.token.is_native else "")))


# --- chain reads -----------------------------------------------------------------------------------------


def _mined(receipt_or_hash: Any) -> tuple[str, int, int, bool]:
    """(tx hash, block number, fee in wei (see `paid_fee`), succeeded) from an ape receipt or a transaction hash."""
    from eth_utils import to_hex

    value = receipt_or_hash if isinstance(receipt_or_hash, str) else receipt_or_hash.txn_hash
    tx_hash = value if isinstance(value, str) else to_hex(bytes(value))
    receipt = _receipt(tx_hash)
    return tx_hash, int(receipt["blockNumber"]), paid_fee(receipt), int(receipt["status"]) == 1


def _receipt(tx_hash: str) -> Any:
    from ape import chain

    return chain.provider.web3.eth.get_transaction_receipt(tx_hash)


def paid_fee(receipt: Any) -> int:
    """What the sender paid for a transaction, in wei: gasUsed x effectiveGasPrice, plus the L1 data
    fee an OP-stack chain (Optimism, Base, ...) charges on top and reports as the receipt's `l1Fee`."""
    fee = int(receipt["gasUsed"]) * _quantity(receipt.get("effectiveGasPrice"))
    return fee + _quantity(receipt.get("l1Fee"))


def _quantity(value: Any) -> int:
    """A receipt quantity: an int, a 0x-hex string (fields web3 does not know stay hex), or absent (0)."""
    if value is None or value == "":
        return 0
    return int(value, 16) if isinstance(value, str) else int(value)


def _balance(token: Token, holder: str, block: int | str = "latest") -> int:
    """`holder`'s balance of `token` (native or ERC-20, by a plain eth_call) at `block`."""
    from ape import chain
    from eth_abi import decode, encode
    from eth_utils import function_signature_to_4byte_selector

    web3 = chain.provider.web3
    if token.is_native:
        return int(web3.eth.get_balance(holder, block_identifier=block))
    data = function_signature_to_4byte_selector("balanceOf(address)") + encode(["address"], [holder])
    raw = web3.eth.call({"to": token.address, "data": "0x" + data.hex()}, block_identifier=block)
    return int(decode(["uint256"], bytes(raw))[0]) if len(raw) >= 32 else 0


def _expect_moved(plan: SmokeTestPlan, step: str, holder: str, block: int, delta: int, who: str, *, native_fee: int = 0) -> None:
    """`holder`'s balance of the plan's token changed by exactly `delta` in `block` (less `native_fee`
    for the native token: the gas `holder` paid in that block)."""
    expected = delta - (native_fee if plan.token.is_native else 0)
    moved = _balance(plan.token, holder, block) - _balance(plan.token, holder, block - 1)
    if moved != expected:
        book = plan.treasury.book
        raise SmokeTestFailed(step, f"{who} ({holder}) moved by {_signed(book, plan.token, moved)} in block {block}, "
                                    f"not by exactly {_signed(book, plan.token, expected)}", sent=True)


def _signed(book: Any, token: Token, units: int) -> str:
    return ("-" if units < 0 else "+") + book.format(token.address, abs(units))


# --- the record --------------------------------------------------------------------------------------------


def _payload(plan: SmokeTestPlan, fund_tx: str | None, execute_tx: str | None, started: int | None = None) -> dict[str, Any]:
    payload = {"token": plan.token.symbol, "amount": str(plan.amount), "funder": plan.funder.address,
               "recipient": plan.recipient, "executor": plan.executor.address, "live": plan.live,
               "signers": [owner for owner, _ in plan.signers], "fund_tx": fund_tx, "execute_tx": execute_tx}
    return payload if started is None else {**payload, "started_seq": started}


def _record_failure(plan: SmokeTestPlan, failure: SmokeTestFailed, proposal_id: str | None, started: int | None) -> None:
    """Money moved (the funding), so the failed run is recorded. A store error must not hide the
    failure being raised, but it is said on stderr: the once-only rule may not see this run."""
    payload = {**_payload(plan, None, None, started), "step": failure.step, "reason": failure.reason[:1000]}
    try:
        plan.treasury.store.add_smoke_test(plan.treasury.chain_id, plan.treasury.safe, "failed", payload,
                                           plan.treasury.actor, proposal_id=proposal_id)
    except Exception as error:  # noqa: BLE001 - reported, then the step's own failure is raised
        kept = "its started entry still counts" if started is not None else "a later run will not see it"
        print(f"warning: the failed smoke test could not be recorded ({one_line(error)}); {kept}", file=sys.stderr)


def _left_open(plan: SmokeTestPlan, proposal_id: str | None) -> str | None:
    """The proposal, if the failure left it open (pending): the user decides to execute or drop it."""
    if proposal_id is None:
        return None
    with contextlib.suppress(Exception):
        if plan.treasury.get(proposal_id).status in ("pending", "scheduled"):
            return proposal_id
    return None
