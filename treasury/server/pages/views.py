"""What the signing pages show, as plain data built from the library (no FastAPI, no HTML here).

Three pages: a Safe (`safe_page`), its proposals by status (`list_page`), one proposal with what a
signer needs (`proposal_page`), the review rules' findings included (`review_section`). Every builder
reads the chain through ape: the caller holds the chain lock around it (treasury.server.pages.routes).
Amounts are in token units, addresses carry the name the treasury knows them by, and every string is
data: the templates escape it all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from treasury import delay_queue, wording
from treasury.errors import TreasuryError
from treasury.types import DELEGATE_CALL, OPEN_STATUS_VALUES

if TYPE_CHECKING:
    from treasury.review.findings import Finding
    from treasury.store import ProposalRecord
    from treasury.treasury import Treasury

ZERO = "0x" + "0" * 40
VERDICT_WORDS = {
    "allow": "allowed: the guard lets it execute now",
    "needs-delay": "must wait in the delay queue first",
    "deny": "denied: the guard will refuse it",
}


# --- small pieces -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Named:
    """An address and what the treasury calls it ("" when it is not known)."""

    address: str
    name: str = ""


@dataclass(frozen=True)
class Budget:
    token: str
    left: str  # in token units, with the symbol
    cap: str
    period: str
    percent: int  # of the cap left, 0..100 (the <meter>'s value)


@dataclass(frozen=True)
class QueueRow:
    entry_id: int
    intent_id: str
    proposal_id: str | None
    eta: str
    expiry: str
    status: str
    countdown: str  # "due in 1 d 23 h", "due now", "expired", "executed"
    title: str = ""  # the proposal's title ("" when the entry is not this store's)


@dataclass(frozen=True)
class CallRow:
    index: int
    to: Named
    description: str
    operation: str  # "call" or "DELEGATECALL"
    warnings: tuple[str, ...]
    delegatecall: bool
    admin: bool
    off_allowlist: bool

    @property
    def classes(self) -> str:
        return " ".join(name for name, on in (("delegatecall", self.delegatecall), ("safe-admin", self.admin),
                                              ("off-allowlist", self.off_allowlist)) if on)

    @property
    def flags(self) -> tuple[str, ...]:
        """The highlights in words (never colour alone)."""
        return tuple(words for words, on in (("DELEGATECALL", self.delegatecall), ("Safe administration", self.admin),
                                             ("target not on the allowlist", self.off_allowlist)) if on)


@dataclass(frozen=True)
class ReviewSection:
    """The review rules' findings on an open proposal, most serious first (treasury.review.rules).

    Rules only: the server never calls a language model (that needs a key and sends the proposal out;
    `treasury review` does it on a signer's own machine). `error` is why the rules could not run: the
    rest of the page stands without them, and `findings` holds the "review-failed" danger finding.
    """

    findings: tuple[Finding, ...] = ()
    error: str = ""

    @property
    def worst(self) -> str:
        """"danger", "warning", "info", or "" when the rules found nothing (a CSS class and words)."""
        from treasury.review.findings import SEVERITIES

        return max((f.severity for f in self.findings), key=SEVERITIES.index, default="")

    @property
    def summary(self) -> str:
        """"1 danger, 2 warning" (most serious first), in words beside the colours."""
        counts = {s: sum(f.severity == s for f in self.findings) for s in ("danger", "warning", "info")}
        return ", ".join(f"{n} {s}" for s, n in counts.items() if n)


@dataclass(frozen=True)
class SignatureSet:
    purpose: str  # "safe_tx", "schedule", "cancel"
    over: str
    signed_hash: str
    signers: tuple[str, ...]
    required: int
    missing: int


@dataclass(frozen=True)
class OwnerLiveness:
    """One owner's last proof of control (treasury.ceremony.liveness), in words."""

    owner: str
    name: str  # the address book's name, "" when there is none
    state: str  # "live", "lapsed" or "never-proven": one CSS class token (the words are in `last`)
    last: str  # "live: drill 3 d ago (2026-11-28 10:00 UTC, drill drill-…)"


@dataclass(frozen=True)
class LivenessSection:
    """Owner liveness on the Safe page: who proved control lately and what that leaves of the threshold.

    Advisory, off chain: `error` is why it could not be built; the rest of the page stands without it.
    """

    owners: tuple[OwnerLiveness, ...] = ()
    summary: tuple[str, ...] = ()  # "3-of-5: 4 of 10 combinations live; …", the survival line
    warnings: tuple[str, ...] = ()  # proofs about to lapse, a threshold out of provable reach
    period: str = ""  # the liveness period in words
    error: str = ""


# --- the pages ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SafePage:
    name: str
    safe: str
    chain_id: int
    version: str
    owners: tuple[str, ...]
    threshold: int
    nonce: int
    guard: str  # in words
    guard_ok: bool
    modules: tuple[tuple[str, bool], ...]  # (address, bypasses the guard)
    warnings: tuple[str, ...]
    balances: tuple[tuple[str, str], ...]  # (symbol, amount in units)
    budgets: tuple[Budget, ...]
    queue: tuple[QueueRow, ...]
    cancel_by: tuple[str, ...]  # who can cancel a queue entry, in words
    guardians: tuple[str, ...]
    counts: tuple[tuple[str, int], ...]  # proposals per status
    now: str
    liveness: LivenessSection = LivenessSection()  # owners' last proofs of control


@dataclass(frozen=True)
class ListRow:
    id: str
    nonce: int
    title: str
    status: str
    safe_tx_hash: str
    created: str


@dataclass(frozen=True)
class ListPage:
    name: str
    safe: str
    chain_id: int
    status: str | None
    statuses: tuple[str, ...]
    rows: tuple[ListRow, ...]


@dataclass(frozen=True)
class ProposalPage:
    name: str
    safe: str
    chain_id: int
    id: str
    title: str
    description: str
    status: str
    open: bool
    nonce: int
    chain_nonce: int
    proposer: str
    to: Named
    value: str
    operation: str
    delegatecall: bool
    calls: tuple[CallRow, ...]
    warnings: tuple[str, ...]  # the decoder's
    verdict_outcome: str
    verdict_words: str
    verdict_reason: str
    verdict_notes: tuple[str, ...]
    verdict_warnings: tuple[str, ...]
    domain_hash: str
    message_hash: str
    safe_tx_hash: str
    owners: tuple[str, ...]
    threshold: int
    signatures: tuple[SignatureSet, ...]
    signed: tuple[str, ...]  # owners whose SafeTx signature counts now
    missing: int  # SafeTx signatures still missing
    next_steps: tuple[str, ...]
    signing: Any = None  # treasury.server.pages.signing.SigningData (None: nothing to sign)
    signing_error: str = ""  # why there is nothing to sign in the browser, when it should be
    review: ReviewSection | None = None  # the rules' findings (None: the proposal is no longer open)


# --- building them --------------------------------------------------------------------------------------


def countdown(eta: int, now: int) -> str:
    """"due in 1 d 23 h", or "due now" once `eta` is reached (treasury.wording words it for every surface)."""
    return wording.countdown(now, eta)


def latest_timestamp() -> int:
    """The chain's latest block timestamp (countdowns are from the chain's clock, not the server's)."""
    from ape import chain

    return int(chain.blocks.head.timestamp)


def address_names(treasury: Treasury, owners: tuple[str, ...] = ()) -> dict[str, str]:
    """What the treasury calls the addresses it knows: its Safe, guard, tokens, address book names,
    owners, guardians, recipients."""
    names: dict[str, str] = {}
    for address in treasury.policy.recipients:
        names[address.lower()] = "allowlisted recipient"
    for address in treasury.policy.guardians:
        names[address.lower()] = "guardian"
    for address in owners:
        names[address.lower()] = "owner"
    book = treasury.addresses
    for address, name in ((a, book.name_of(a)) for a in book.names.values()):
        if name is not None:  # the address book's name first: "acme, allowlisted recipient"
            role = names.get(address.lower())
            names[address.lower()] = f"{name}, {role}" if role else name
    for symbol, token in treasury.book.tokens.items():
        if not token.is_native:
            names[token.address.lower()] = f"token {symbol}"
    if treasury.entry.guard:
        names[treasury.entry.guard.lower()] = "the treasury's guard"
    names[treasury.safe.lower()] = f"this Safe ({treasury.name})"
    return names


def _named(address: str, names: dict[str, str]) -> Named:
    return Named(address, names.get(address.lower(), ""))


def allowlisted(treasury: Treasury, to: str, data: bytes) -> bool:
    """Whether the policy's allowlist names this call (a call to the Safe itself goes through the delay)."""
    policy = treasury.policy
    if to.lower() == treasury.safe.lower():
        return True
    if not data:
        return to.lower() in {r.lower() for r in policy.recipients}
    return any(call.target.lower() == to.lower() and call.selector == bytes(data[:4]) for call in policy.calls)


def _cancel_by(treasury: Treasury) -> tuple[str, ...]:
    policy = treasury.policy
    ways = [f"any {policy.cancel_threshold} owner(s), each once per intent, signing its cancel hash"]
    if policy.guardians:
        ways.append(f"any guardian ({len(policy.guardians)} configured), each once per intent")
    return tuple(ways)


def liveness_section(treasury: Treasury, owners: tuple[str, ...], threshold: int, now: int | None = None) -> LivenessSection:
    """Each owner's last proof of control and the M-of-N combinations it leaves live (`now`: the store's
    clock, which stamped the proofs, unless given). A failure is one line in the section, never the page's."""
    from treasury.ceremony.liveness import treasury_liveness

    try:
        report = treasury_liveness(treasury, owners, threshold, now)
    except TreasuryError as error:  # our one-line errors are meant for people
        return LivenessSection(error=f"owner liveness unavailable: {error}")
    except Exception as error:  # noqa: BLE001 - advisory: a store failure must not hide the Safe page (nor its text)
        return LivenessSection(error=f"owner liveness unavailable ({type(error).__name__})")
    rows = tuple(OwnerLiveness(o, report.names.get(o, ""), _state(report, o), report.owner_line(o)) for o in report.owners)
    return LivenessSection(rows, tuple(report.lines()[:2]), tuple(report.warnings()), wording.duration(report.window, exact=True))


def _state(report: Any, owner: str) -> str:
    if report.proofs.get(owner) is None:
        return "never-proven"  # one token: "never proven" in a class attribute would also be the class `proven`
    return "live" if owner in report.live else "lapsed"


def safe_page(treasury: Treasury, liveness_now: int | None = None) -> SafePage:
    """The Safe now: owners, threshold, nonce, guard, modules, balances, budgets, delay queue, owner
    liveness (as of `liveness_now`, default the store's clock: proofs are stamped by it, not by the chain)."""
    from treasury.chain.handler import module_warnings

    status = treasury.status()
    now = latest_timestamp()
    if status.guard and status.guard == status.installed_guard:
        guard, guard_ok = f"{status.guard} (installed)", True
    elif status.guard:
        guard, guard_ok = f"{status.guard} configured, but the Safe has {status.installed_guard}", False
    elif status.installed_guard == ZERO:
        guard, guard_ok = "none", False
    else:
        guard, guard_ok = f"{status.installed_guard} (not in the config)", False
    modules = tuple((m, bool(module_warnings(status.version, (m,), status.installed_guard, status.module_guard)))
                    for m in status.modules)
    balances = tuple((symbol, wording.units_of(treasury.book, symbol, units)) for symbol, units in status.balances.items())
    budgets = []
    for cap in treasury.policy.caps:
        token = treasury.book.by_address(cap.token)
        key = token.symbol if token else cap.token
        if key not in status.budgets:
            continue
        left = status.budgets[key]
        percent = max(0, min(100, left * 100 // cap.amount)) if cap.amount else 0
        budgets.append(Budget(key, wording.amount(treasury.book, cap.token, left),
                              wording.amount(treasury.book, cap.token, cap.amount),
                              wording.duration(cap.period, exact=True), percent))
    lines = delay_queue.queue_lines(status.entries, now, treasury.proposals(), treasury.store, status.guard)
    queue = [QueueRow(line.entry_id, line.intent_id, line.proposal_id, wording.eta(line.eta), wording.when(line.expiry),
                      line.status, countdown(line.eta, now) if line.status == "pending" else line.status, line.title)
             for line in lines]
    counts: dict[str, int] = {}
    for record in treasury.proposals():
        counts[record.status] = counts.get(record.status, 0) + 1
    return SafePage(
        name=treasury.name, safe=status.safe, chain_id=status.chain_id, version=status.version, owners=status.owners,
        threshold=status.threshold, nonce=status.nonce, guard=guard, guard_ok=guard_ok, modules=modules,
        warnings=tuple(status.warnings()), balances=balances, budgets=tuple(budgets), queue=tuple(reversed(queue)),
        cancel_by=_cancel_by(treasury) if status.guard else (), guardians=treasury.policy.guardians,
        counts=tuple(sorted(counts.items())), now=wording.when(now),
        liveness=liveness_section(treasury, status.owners, status.threshold, liveness_now),
    )


def list_page(treasury: Treasury, status: str | None, statuses: tuple[str, ...], limit: int = 500) -> ListPage:
    """The treasury's proposals by nonce (newest first), in one status or all. Reads the store only."""
    records = treasury.proposals(status=status)  # type: ignore[arg-type]
    rows = tuple(ListRow(r.id, r.nonce, r.title, r.status, r.safe_tx_hash, r.created_at.strftime("%Y-%m-%d %H:%M UTC"))
                 for r in reversed(records[-limit:]))
    return ListPage(treasury.name, treasury.safe, treasury.chain_id, status, statuses, rows)


def _calls(treasury: Treasury, decoded: Any, names: dict[str, str]) -> tuple[CallRow, ...]:
    from treasury.decode.calls import SAFE_ADMIN

    police = bool(treasury.entry.guard or treasury.policy.calls or treasury.policy.recipients)
    rows = []
    for index, call in enumerate(decoded.calls, 1):
        off = police and call.function != "multiSend" and not allowlisted(treasury, call.to, call.data)
        rows.append(CallRow(
            index=index, to=_named(call.to, names), description=call.description,
            operation="DELEGATECALL" if call.operation == DELEGATE_CALL else "call", warnings=tuple(call.warnings),
            delegatecall=call.operation == DELEGATE_CALL, admin=call.function in SAFE_ADMIN, off_allowlist=off,
        ))
    return tuple(rows)


def _signature_sets(needs: list[Any]) -> tuple[SignatureSet, ...]:
    return tuple(SignatureSet(n.purpose, n.over, n.signed_hash, tuple(n.signers), n.required, n.missing) for n in needs)


def next_steps(treasury: Treasury, record: ProposalRecord, verdict: Any, needs: tuple[SignatureSet, ...],
               chain_nonce: int, now: int) -> tuple[str, ...]:
    """What happens next, in words: sign, schedule, wait until the eta, execute (or why nothing will)."""
    from treasury.treasury import SCHEDULE_ERRORS

    if record.status not in OPEN_STATUS_VALUES:
        return (f"This proposal is {record.status}: nothing more to sign or do.",)
    steps = []
    safe_tx = next(n for n in needs if n.purpose == "safe_tx")
    if record.nonce < chain_nonce:
        return (f"Nonce {record.nonce} was already used on chain (the Safe is at {chain_nonce}): this proposal can never execute.",)
    if verdict.outcome == "deny":
        steps.append(f"The policy denies it ({verdict.reason}): the guard will refuse it. Owners may reject it instead.")
    if safe_tx.missing:
        steps.append(f"Sign: {safe_tx.missing} more SafeTx signature(s) needed ({len(safe_tx.signers)} of {safe_tx.required}).")
    schedule = next((n for n in needs if n.purpose == "schedule"), None)
    if verdict.error in SCHEDULE_ERRORS:
        if schedule is not None and schedule.missing:
            steps.append(f"Schedule: {schedule.missing} more schedule signature(s) needed for the {schedule.over} "
                         f"({len(schedule.signers)} of {schedule.required}), then `treasury schedule {record.id}` queues it.")
        else:
            steps.append(f"Schedule: enough schedule signatures; `treasury schedule {record.id}` queues it for the delay.")
    queued = [e for e in treasury.store.schedule_entries(record.id) if e.status == "queued"]
    if record.status == "scheduled" and queued:
        entry = queued[-1]
        if now < entry.eta:
            steps.append(f"Wait until {wording.eta(entry.eta)} ({countdown(entry.eta, now)}): queue entry {entry.entry_id} "
                         f"can be cancelled until then by {' or by '.join(_cancel_by(treasury))}.")
        steps.append(f"Execute from {wording.eta(entry.eta)} until {wording.when(entry.expiry)}: "
                     f"`treasury execute {record.id}`.")
    elif verdict.allowed and not safe_tx.missing:
        if record.nonce > chain_nonce:
            steps.append(f"Execute after the proposals of nonces {chain_nonce} to {record.nonce - 1}: "
                         f"`treasury execute {record.id}`.")
        else:
            steps.append(f"Execute: enough signatures and the policy allows it; `treasury execute {record.id}`.")
    elif verdict.allowed:
        steps.append(f"Then execute: `treasury execute {record.id}`.")
    return tuple(steps)


def review_section(treasury: Treasury, proposal_id: str) -> ReviewSection:
    """The review rules over the proposal's facts (store history, book, chain code and balances).

    Read only: nothing is stored (a page view is not a review a signer asked for; `treasury review`
    stores those) and no model is asked. A failure becomes a "review-failed" danger finding (which
    step failed, never the error's text: it may be an attacker's revert message), so the signing
    panel warns too; it never hides the verdict, the hashes or the signing panel.
    """
    from treasury.review.facts import gather_facts
    from treasury.review.rules import failed_review_finding, review_rules

    try:
        return ReviewSection(tuple(review_rules(gather_facts(treasury, proposal_id))))
    except Exception as error:  # noqa: BLE001 - advisory: a chain or decode failure must not hide the page
        failed = failed_review_finding(error)
        return ReviewSection((failed,), error=failed.reason)


def proposal_page(treasury: Treasury, record: ProposalRecord) -> ProposalPage:
    """One proposal: decoded calls, verdict in words, the review's findings, highlights, the three hashes,
    signatures, next steps."""
    view = treasury.view(record.id)  # reconciles first, so the status shown is the chain's
    record = view.record
    decoded, verdict = view.decoded, view.verdict
    owners = tuple(treasury.owners())
    names = address_names(treasury, owners)
    needs = _signature_sets(treasury.signature_needs(record.id))
    safe_tx = next(n for n in needs if n.purpose == "safe_tx")
    chain_nonce = treasury.onchain_nonce()
    now = latest_timestamp()
    signing, signing_error = None, ""
    if record.status in OPEN_STATUS_VALUES and record.nonce >= chain_nonce:
        from treasury.server.pages.signing import signing_data

        try:
            signing = signing_data(treasury, record)
        except TreasuryError as error:  # e.g. a guard that hashes otherwise: say so, offer nothing to sign
            signing_error = str(error)
    value = wording.amount(treasury.book, ZERO, record.value) if record.value else "0"
    review = review_section(treasury, record.id) if record.status in OPEN_STATUS_VALUES else None
    return ProposalPage(
        name=treasury.name, safe=treasury.safe, chain_id=treasury.chain_id, id=record.id, title=record.title,
        description=record.description, status=record.status, open=record.status in OPEN_STATUS_VALUES, nonce=record.nonce,
        chain_nonce=chain_nonce, proposer=wording.proposer(record.proposer, treasury.addresses.label), to=_named(record.to, names), value=value,
        operation="DELEGATECALL" if record.operation == DELEGATE_CALL else "call", delegatecall=record.operation == DELEGATE_CALL,
        calls=_calls(treasury, decoded, names), warnings=tuple(decoded.warnings), verdict_outcome=verdict.outcome,
        verdict_words=VERDICT_WORDS.get(verdict.outcome, verdict.outcome), verdict_reason=verdict.reason,
        verdict_notes=tuple(n for n in verdict.notes if n not in verdict.reason), verdict_warnings=tuple(verdict.warnings),
        domain_hash=decoded.domain_hash, message_hash=decoded.message_hash, safe_tx_hash=decoded.safe_tx_hash,
        owners=owners, threshold=view.threshold, signatures=needs, signed=safe_tx.signers, missing=safe_tx.missing,
        next_steps=next_steps(treasury, record, verdict, needs, chain_nonce, now), signing=signing,
        signing_error=signing_error, review=review,
    )
