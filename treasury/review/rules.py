"""The review rules: what is unusual about a proposal, each as a pure function of ReviewFacts.

Every rule returns findings with a severity and a one-line reason a signer can act on. Rules never
read the chain or the store themselves (treasury.review.facts gathers that), so each is tested with
facts written by hand, and a review is the same whoever runs it with the same facts.

Severities: "danger" is what has emptied treasuries (delegatecall, Safe administration, unlimited
approvals, look-alike addresses, a title that lies); "warning" is unusual and worth a second look;
"info" is context (first use of a token the team configured).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

from treasury.addresses import ZERO_ADDRESS, to_checksum
from treasury.amounts import format_units, to_base_units
from treasury.decode.calls import SAFE_ADMIN
from treasury.errors import InvalidInput
from treasury.review.facts import UNDERSTOOD, Approval, ReviewFacts
from treasury.review.findings import SEVERITIES, Finding, Review, Severity
from treasury.types import DELEGATE_CALL

OUTLIER_FACTOR = 5  # an amount above 5x the largest previous one is an outlier...
OUTLIER_MIN_HISTORY = 3  # ...once there are at least 3 previous payments to compare with
DRAIN_PERCENT = 80  # a proposal moving this share of a balance or more empties it
LOOKALIKE_CHARS = 4  # hex characters compared at each end (what a wallet's shortened address shows)
UNLIMITED = 2**255  # approvals at or above this are "infinite" (max uint256 and its usual neighbours)
UNBOUNDED_UNITS = 10**30  # ...and so, in effect, is anything this large (10^12 tokens of 18 decimals)
TITLE_NAME_MIN = 4  # address book names shorter than this ("ops", "eu") are ordinary words in titles
REVIEW_FAILED = "review-failed"
PERMIT2_UNLIMITED = 2**160 - 1
PERMIT2_NEVER = 2**48 - 1
# Safe settings whose change can hand the Safe to someone else; owner and threshold changes are warnings.
ADMIN_DANGER = {"enableModule", "disableModule", "setGuard", "setModuleGuard", "setFallbackHandler"}
GUARD_SETTINGS = {"setAllowedCall", "setRecipient", "setCap", "removeCap", "setDelay", "setAllowRefunds"}
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")

Rule = Callable[[ReviewFacts], Iterable[Finding]]


def review_rules(facts: ReviewFacts) -> list[Finding]:
    """Every rule's findings, most serious first (rule order kept within a severity)."""
    found = [finding for rule in RULES for finding in rule(facts)]
    return sorted(found, key=lambda f: -SEVERITIES.index(f.severity))


def failed_review_finding(error: BaseException) -> Finding:
    """The "danger" finding that stands in for a review that could not run.

    Says which step failed (ReviewStepFailed) or only the error's type: the text of an error may be a
    revert message written by whoever deployed the contract being reviewed."""
    from treasury.review.facts import ReviewStepFailed

    step = f" ({error.step} failed)" if isinstance(error, ReviewStepFailed) else f" ({type(error).__name__})"
    return Finding(REVIEW_FAILED, "danger", f"the review could not run{step}; read the calls yourself")


def review_of(facts: ReviewFacts) -> Review:
    """The rules' Review of the proposal (no advice: treasury.review.advisor adds that separately)."""
    return Review(facts.proposal_id, tuple(review_rules(facts)))


# --- recipients and amounts -------------------------------------------------------------------------


def first_time_recipient(facts: ReviewFacts) -> Iterator[Finding]:
    """A payment to an address no executed proposal ever paid: the usual shape of a redirected payment."""
    past = facts.past_recipients
    for recipient in dict.fromkeys(p.recipient for p in facts.payments):
        if recipient in past or recipient == facts.safe:
            continue
        named = facts.name_of(recipient)
        severity: Severity = "info" if named else "warning"
        also = f" (it is {named} in the address book)" if named else " (not in the address book)"
        yield Finding("first-time-recipient", severity, f"first payment to {recipient}: never paid before{also}")


def outlier_amount(facts: ReviewFacts) -> Iterator[Finding]:
    """An amount far above what this recipient, or anyone, was paid in this token before."""
    for payment in (p for p in facts.payments if not p.nft):
        same_token = [p for p in facts.past_payments if p.token == payment.token and not p.nft]
        to_recipient = [p.units for p in same_token if p.recipient == payment.recipient]
        for previous, whom in ((to_recipient, f"to {facts.label(payment.recipient)}"), ([p.units for p in same_token], "")):
            if len(previous) >= OUTLIER_MIN_HISTORY and payment.units > OUTLIER_FACTOR * max(previous):
                where = f" {whom}" if whom else " of this token"
                yield Finding("outlier-amount", "warning",
                              f"{facts.amount(payment.token, payment.units)} is more than {OUTLIER_FACTOR}x the largest of the "
                              f"{len(previous)} previous payments{where} ({facts.amount(payment.token, max(previous))})")
                break  # the recipient's own history says it; the token's would repeat it


def drains_balance(facts: ReviewFacts) -> Iterator[Finding]:
    """A proposal that moves most (>= DRAIN_PERCENT %) of the Safe's balance of a token."""
    totals: dict[str, int] = defaultdict(int)
    for payment in (p for p in facts.payments if not p.nft):
        totals[payment.token] += payment.units
    for token, total in totals.items():
        balance = facts.balances.get(token)
        if not balance or total * 100 < DRAIN_PERCENT * balance:
            continue
        share = "all" if total >= balance else f"{total * 100 // balance}%"
        severity: Severity = "danger" if total >= balance else "warning"
        yield Finding("drains-balance", severity, f"moves {share} of the Safe's balance: {facts.amount(token, total)} "
                                                  f"of {facts.amount(token, balance)}")


# --- tokens and contracts ---------------------------------------------------------------------------


def new_token_or_contract(facts: ReviewFacts) -> Iterator[Finding]:
    """The first call to a token or contract: a new token may be a fake, a new contract does unknown things."""
    tokens = {p.token for p in facts.payments} | {a.token for a in facts.approvals}
    called: dict[str, bool] = {to_checksum(c.to): bool(c.data) for c in facts.calls}
    if not facts.multisend_call_only:  # the transaction's own target (a batch's MultiSend) runs code too
        called.setdefault(facts.to, True)
    for target, has_data in called.items():
        if target in facts.past_targets or target == facts.safe or not (has_data or facts.code_size.get(target)):
            continue
        yield _first_use(facts, target, target in tokens)


def _first_use(facts: ReviewFacts, target: str, is_token: bool) -> Finding:
    book = facts.tokens.by_address(target)
    if book is not None:
        return Finding("new-token", "info", f"first use of token {book.symbol} ({target}) by this Safe")
    if is_token:
        return Finding("new-token", "warning", f"token {target} is not in the token book and was never used by this Safe")
    recent = " and was created recently" if target in facts.recent_code else _age_unknown(facts, target)
    return Finding("new-contract", "danger" if target in facts.recent_code else "warning",
                   f"first call to contract {facts.label(target)}: this Safe never called it before{recent}")


def _age_unknown(facts: ReviewFacts, address: str) -> str:
    """Words for a contract whose age the chain cannot tell (a young chain or a pruned node)."""
    if facts.code_age_known or not facts.code_size.get(address):
        return ""
    return "; whether it was created recently is unknown (the chain's history here is younger than 7 days)"


def contract_without_history(facts: ReviewFacts) -> Iterator[Finding]:
    """Funds or an allowance going to a contract the Safe never dealt with (a drainer is a fresh contract)."""
    known = facts.past_targets | facts.past_recipients
    receivers = [p.recipient for p in facts.payments] + [a.spender for a in facts.approvals]
    for address in dict.fromkeys(receivers):
        if address in known or address == facts.safe or not facts.code_size.get(address):
            continue
        if address in facts.recent_code:
            yield Finding("contract-recipient", "danger",
                          f"{facts.label(address)} is a contract created recently that this Safe never sent a transaction to")
        else:
            yield Finding("contract-recipient", "warning",
                          f"{facts.label(address)} is a contract this Safe never sent a transaction to"
                          f"{_age_unknown(facts, address)}")


# --- what the transaction does to the Safe ------------------------------------------------------------


def delegatecall(facts: ReviewFacts) -> Iterator[Finding]:
    """A delegatecall other than a batch through MultiSendCallOnly: someone else's code runs as the Safe."""
    targets = [facts.to] if facts.operation == DELEGATE_CALL and not facts.multisend_call_only else []
    targets += [to_checksum(c.to) for c in facts.calls if c.operation == DELEGATE_CALL
                and not (facts.multisend_call_only and to_checksum(c.to) == facts.to)]
    for target in dict.fromkeys(targets):
        yield Finding("delegatecall", "danger", f"delegatecall to {facts.label(target)}{_canonical_words(facts, target)}: "
                                                "its code runs with the Safe's storage and funds and can change owners "
                                                "or take everything")


def _canonical_words(facts: ReviewFacts, target: str) -> str:
    """Whether a delegatecall target is this Safe version's canonical MultiSendCallOnly (in words)."""
    version = f"Safe {facts.safe_version}" if facts.safe_version else "this Safe's version"
    if facts.canonical_multisend is None:
        return f" (the canonical MultiSendCallOnly of {version} is not known here: compare it yourself)"
    if target == facts.canonical_multisend:
        return f" (the canonical MultiSendCallOnly of {version})"
    return f" (not the canonical MultiSendCallOnly of {version}, {facts.canonical_multisend})"


def undecoded_call(facts: ReviewFacts) -> Iterator[Finding]:
    """Calldata to a contract whose function this treasury cannot decode: never "nothing unusual" about it."""
    for call in facts.calls:
        target = to_checksum(call.to)
        if target == facts.safe or not call.data or call.function is not None or bytes(call.data[:4]) in UNDERSTOOD:
            continue  # the Safe's own undecoded calldata is safe_admin's (danger)
        yield Finding("undecoded-call", "warning", f"calls {facts.label(target)} with a function this treasury "
                                                   f"cannot decode (selector 0x{bytes(call.data[:4]).hex()}): "
                                                   "check what it does before signing")


def gas_refund(facts: ReviewFacts) -> Iterator[Finding]:
    """A SafeTx that pays its executor back out of the Safe (gasPrice or a refund receiver set)."""
    if facts.gas_price or facts.refund_receiver != ZERO_ADDRESS:
        receiver = facts.label(facts.refund_receiver) if facts.refund_receiver != ZERO_ADDRESS else "the executor"
        token = "the native currency" if facts.gas_token == ZERO_ADDRESS else facts.label(facts.gas_token)
        yield Finding("refund", "warning", f"the Safe pays a gas refund in {token} to {receiver} (gasPrice "
                                           f"{facts.gas_price}): an executor can inflate it")


def safe_admin(facts: ReviewFacts) -> Iterator[Finding]:
    """Changes to who controls the Safe (owners, threshold, modules, guard, fallback handler) or to its policy."""
    for call in facts.calls:
        if call.function in SAFE_ADMIN:
            severity: Severity = "danger" if call.function in ADMIN_DANGER else "warning"
            yield Finding("safe-admin", severity, f"Safe administration: {_admin_text(call.function, call.arguments)}")
        elif call.function in GUARD_SETTINGS:
            yield Finding("safe-admin", "warning", f"changes the guard's policy: {call.function}({', '.join(call.arguments)})")
        elif to_checksum(call.to) == facts.safe and call.data and call.function is None:
            yield Finding("safe-admin", "danger", f"calls the Safe itself with calldata that does not decode "
                                                  f"(0x{bytes(call.data[:4]).hex()})")


def _admin_text(function: str | None, arguments: tuple[str, ...]) -> str:
    """What an administration call does, in words (arguments as decode_call shows them)."""
    args = list(arguments) + [""] * 3
    if function in ("setGuard", "setModuleGuard") and args[0] == ZERO_ADDRESS:
        return f"{function}(0x0) removes the guard: the policy is no longer enforced on chain"
    words = {
        "setGuard": f"replaces the transaction guard with {args[0]}",
        "setModuleGuard": f"replaces the module guard with {args[0]}",
        "enableModule": f"enables module {args[0]} (a module can move funds without owner signatures)",
        "disableModule": f"disables module {args[1]}",
        "setFallbackHandler": f"replaces the fallback handler (it answers signature checks for the Safe) with {args[0]}",
        "changeThreshold": f"changes the signature threshold to {args[0]}",
        "addOwnerWithThreshold": f"adds owner {args[0]} (threshold {args[1]})",
        "removeOwner": f"removes owner {args[1]} (threshold {args[2]})",
        "swapOwner": f"replaces owner {args[1]} with {args[2]}",
    }
    return f"{function} {words.get(function or '', 'changes the Safe')}"


def unbounded_approval(facts: ReviewFacts) -> Iterator[Finding]:
    """An allowance without an end: an unlimited amount, no expiry, or every NFT of a collection."""
    for approval in facts.approvals:
        finding = _approval_finding(facts, approval)
        if finding is not None:
            yield finding


def _approval_finding(facts: ReviewFacts, approval: Approval) -> Finding | None:
    spender = facts.label(approval.spender)
    if approval.kind == "operator":
        return Finding("unbounded-approval", "danger", f"setApprovalForAll lets {spender} move every NFT of "
                                                       f"{facts.label(approval.token)} held by the Safe, with no end")
    units = approval.units or 0
    if units >= (PERMIT2_UNLIMITED if approval.kind == "permit2" else UNLIMITED) or units >= UNBOUNDED_UNITS:
        return Finding("unbounded-approval", "danger", f"unlimited approval of {_token_name(facts, approval.token)} "
                                                       f"to {spender}: it can take every one the Safe holds, at any time")
    balance = facts.balances.get(approval.token)
    if balance is not None and units >= balance:
        return Finding("unbounded-approval", "danger", f"approval of {facts.amount(approval.token, units)} to {spender} "
                                                       f"covers the Safe's whole balance "
                                                       f"({facts.amount(approval.token, balance)}): it can take all of it")
    if approval.kind == "permit2":
        if approval.expiration is not None and approval.expiration >= PERMIT2_NEVER:
            return Finding("unbounded-approval", "warning", f"Permit2 approval of {facts.amount(approval.token, units)} "
                                                            f"to {spender} never expires")
        return None
    return Finding("unbounded-approval", "info", f"approval of {facts.amount(approval.token, units)} to {spender} has "
                                                 "no expiry: it stays until spent or revoked")


def _token_name(facts: ReviewFacts, token: str) -> str:
    found = facts.tokens.by_address(token)
    return found.symbol if found is not None else token


# --- addresses and words ----------------------------------------------------------------------------


def lookalike_address(facts: ReviewFacts) -> Iterator[Finding]:
    """An address that shares its first and last hex characters with a known one (address poisoning)."""
    known = set(facts.names.values()) | facts.past_recipients | facts.past_targets | facts.owners | facts.modules
    known |= {facts.safe} | ({facts.guard} if facts.guard else set())
    known |= {t.address for t in facts.tokens.tokens.values() if not t.is_native}
    for address in _addresses_in(facts):
        if address in known:
            continue
        for twin in sorted(known):
            if _looks_alike(address, twin):
                yield Finding("lookalike-address", "danger",
                              f"{address} looks like {facts.label(twin)} (same first and last {LOOKALIKE_CHARS} hex "
                              "characters) but is a different address: possible address poisoning")
                break


def _looks_alike(one: str, other: str) -> bool:
    a, b = one.lower()[2:], other.lower()[2:]
    return a != b and a[:LOOKALIKE_CHARS] == b[:LOOKALIKE_CHARS] and a[-LOOKALIKE_CHARS:] == b[-LOOKALIKE_CHARS:]


def _addresses_in(facts: ReviewFacts) -> list[str]:
    """Every address the proposal touches or names in a call's arguments, once each."""
    found = list(facts.touched)
    for call in facts.calls:
        found += [to_checksum(a) for a in call.arguments if _ADDRESS.fullmatch(a)]
    return [a for a in dict.fromkeys(found) if a not in (facts.safe, ZERO_ADDRESS)]


def title_mismatch(facts: ReviewFacts) -> Iterator[Finding]:
    """The title names an address, amount, token or address book name that the calls do not match.

    Signers read the title first; a title that says "5,000 USDC to acme" over calldata that pays
    someone else is how a signer is led to approve what they did not mean to.
    """
    if not facts.title.strip():
        return
    yield from _title_addresses(facts)
    yield from _title_amounts(facts)
    yield from _title_tokens(facts)
    yield from _title_names(facts)


def _title_addresses(facts: ReviewFacts) -> Iterator[Finding]:
    involved = {a.lower() for a in _addresses_in(facts)}
    for written in dict.fromkeys(_ADDRESS.findall(facts.title)):
        if written.lower() not in involved:
            yield Finding("title-mismatch", "danger", f"the title names {to_checksum(written)} but no call sends to, "
                                                      "calls or names that address")


def _title_amounts(facts: ReviewFacts) -> Iterator[Finding]:
    for symbol, token in facts.tokens.tokens.items():
        for number in _numbers_before(facts.title, symbol):
            try:
                units = to_base_units(number, token, allow_zero=True)
            except InvalidInput:
                continue
            moved = _amounts_of(facts, token.address)
            if units not in moved:
                shown = ", ".join(format_units(u, token.decimals) for u in sorted(moved)[:3]) or "none"
                yield Finding("title-mismatch", "danger", f"the title says {number} {symbol} but the calls move or "
                                                          f"approve {shown} {symbol}")


def _numbers_before(title: str, symbol: str) -> list[str]:
    """The numbers written just before a token symbol ("5,000 USDC", "1.5eth"), as written."""
    pattern = r"(?<![\w.,])(\d[\d,_]*(?:\.\d+)?)\s*" + re.escape(symbol) + r"(?![\w])"
    return re.findall(pattern, title, flags=re.IGNORECASE)


def _amounts_of(facts: ReviewFacts, token: str) -> set[int]:
    """Each amount of the token paid or approved, and their total (a batch's title states the sum)."""
    each = [p.units for p in facts.payments if p.token == token and not p.nft]
    each += [a.units for a in facts.approvals if a.token == token and a.units is not None]
    return set(each) | ({sum(p.units for p in facts.payments if p.token == token and not p.nft)} if each else set())


def _title_tokens(facts: ReviewFacts) -> Iterator[Finding]:
    used = {p.token for p in facts.payments} | {a.token for a in facts.approvals} | {to_checksum(c.to) for c in facts.calls}
    for symbol, token in facts.tokens.tokens.items():
        if _mentions(facts.title, symbol) and token.address not in used and not _numbers_before(facts.title, symbol):
            yield Finding("title-mismatch", "warning", f"the title names {symbol} but the calls neither move nor "
                                                       f"approve {symbol}")


def _title_names(facts: ReviewFacts) -> Iterator[Finding]:
    involved = set(_addresses_in(facts))
    for name, address in facts.names.items():
        if len(name) < TITLE_NAME_MIN or not _mentions(facts.title, name, exact_case=True) or address in involved:
            continue  # a short name ("ops") or another case ("Acme Corp" vs "acme") is a word, not the entry
        yield Finding("title-mismatch", "warning", f"the title names {name} ({address}) but no call pays, calls "
                                                   f"or names {name}")


def _mentions(title: str, word: str, *, exact_case: bool = False) -> bool:
    flags = 0 if exact_case else re.IGNORECASE
    return re.search(r"(?<![\w.])" + re.escape(word) + r"(?![\w])", title, flags=flags) is not None


RULES: tuple[Rule, ...] = (
    delegatecall, safe_admin, lookalike_address, title_mismatch, unbounded_approval, drains_balance,
    contract_without_history, new_token_or_contract, undecoded_call, gas_refund, first_time_recipient, outlier_amount,
)
