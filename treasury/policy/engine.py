"""TreasuryGuard's verdict computed in Python: allow, needs-delay or deny, before anyone signs.

The guard is the backstop; this module answers the same question off chain, so a proposer hears
"denied" or "needs a 48 h delay" at proposal time. The rules come from the Policy (allowlists,
argument rules, caps, limits, thresholds, tiers, delay) and the moving parts from a GuardState
snapshot (budgets left, the delay queue, the Safe's current allowances, the signatures collected,
the clock), so a verdict can be recomputed from stored state without a node.

The checks run in the guard's order (calls, then charges, then the delay queue, then the tiers),
so the first rule that fails, and therefore the error name, is the one the guard would revert
with. tests/test_policy_differential.py holds the two together by running generated proposals
through both on anvil.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

from treasury.addresses import ZERO_ADDRESS, parse_address
from treasury.chain.guard import guard_at
from treasury.errors import InvalidInput
from treasury.policy.model import MAX_AMOUNT, NATIVE, ArgumentRule, Policy, TokenCap
from treasury.policy.verdict import Verdict
from treasury.proposal.multisend import MULTI_SEND, MalformedBatch, iter_batch
from treasury.wording import Labeller, amount, default_book, due, duration, plain, when

if TYPE_CHECKING:
    from ape.contracts import ContractInstance

    from treasury.amounts import TokenBook

U256_MAX = 2**256 - 1


def _sel(signature: str) -> bytes:
    return function_signature_to_4byte_selector(signature)


TRANSFER = _sel("transfer(address,uint256)")
APPROVE = _sel("approve(address,uint256)")
TRANSFER_FROM = _sel("transferFrom(address,address,uint256)")
INCREASE_ALLOWANCE = _sel("increaseAllowance(address,uint256)")
DECREASE_ALLOWANCE = _sel("decreaseAllowance(address,uint256)")
SAFE_TRANSFER_FROM = _sel("safeTransferFrom(address,address,uint256)")  # ERC-721
SAFE_TRANSFER_FROM_DATA = _sel("safeTransferFrom(address,address,uint256,bytes)")  # ERC-721
SET_APPROVAL_FOR_ALL = _sel("setApprovalForAll(address,bool)")  # ERC-721 and ERC-1155
SAFE_TRANSFER_FROM_1155 = _sel("safeTransferFrom(address,address,uint256,uint256,bytes)")
SAFE_BATCH_TRANSFER_FROM = _sel("safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)")
PERMIT2_APPROVE = _sel("approve(address,address,uint160,uint48)")  # 0x87517c45
ERC20_NAMES = {TRANSFER: "transfer", APPROVE: "approve", TRANSFER_FROM: "transferFrom"}
# The standard token calls the guard decodes strictly: name and ABI argument types.
TOKEN_CALLS: dict[bytes, tuple[str, tuple[str, ...]]] = {
    TRANSFER: ("transfer", ("address", "uint256")),
    APPROVE: ("approve", ("address", "uint256")),
    TRANSFER_FROM: ("transferFrom", ("address", "address", "uint256")),
    INCREASE_ALLOWANCE: ("increaseAllowance", ("address", "uint256")),
    DECREASE_ALLOWANCE: ("decreaseAllowance", ("address", "uint256")),
    SAFE_TRANSFER_FROM: ("safeTransferFrom", ("address", "address", "uint256")),
    SAFE_TRANSFER_FROM_DATA: ("safeTransferFrom", ("address", "address", "uint256", "bytes")),
    SET_APPROVAL_FOR_ALL: ("setApprovalForAll", ("address", "bool")),
    SAFE_TRANSFER_FROM_1155: ("safeTransferFrom", ("address", "address", "uint256", "uint256", "bytes")),
    SAFE_BATCH_TRANSFER_FROM: ("safeBatchTransferFrom", ("address", "address", "uint256[]", "uint256[]", "bytes")),
    PERMIT2_APPROVE: ("Permit2 approve", ("address", "address", "uint160", "uint48")),
}
# Largest value of each static ABI type the strict decoder accepts (anything above is dirty).
_STATIC_TOP = {"address": 2**160 - 1, "uint160": 2**160 - 1, "uint48": 2**48 - 1, "bool": 1, "uint256": U256_MAX}

SET_GUARD = _sel("setGuard(address)")
ENABLE_MODULE = _sel("enableModule(address)")
# The guard's settings a Safe transaction may call (all through the delay queue but revokeMessage).
GUARD_SETTINGS: dict[bytes, str] = {_sel(s): s.split("(")[0] for s in (
    "setAllowedCall(address,bytes4,bool)", "setArgumentRules(address,bytes4,uint256[])", "setRecipient(address,bool)",
    "setCap(address,uint256,uint256,uint256,uint256)", "setNft(address,bool)", "setTier(address,uint256,uint256)",
    "removeCap(address)", "setDelay(uint256,uint256)", "setAllowRefunds(bool)", "setCancelThreshold(uint256)",
    "setGuardian(address,bool)", "approveMessage(bytes32)", "revokeMessage(bytes32)",
    "setTypedDataAllowed(bytes32,bytes32,bool)",
)}
REVOKE_MESSAGE = _sel("revokeMessage(bytes32)")
ALLOWANCE = _sel("allowance(address,address)")  # ERC-20: allowance(owner, spender)
PERMIT2_ALLOWANCE = _sel("allowance(address,address,address)")  # Permit2: allowance(owner, token, spender)
MODULE_WARNING = ("an enabled module bypasses the transaction guard on Safe 1.3.0/1.4.1 (on 1.5.0, module "
                  "transactions are checked only while this guard is also the module guard)")

# (entry id, eta, expiry) of an intent's pending entry in the guard's delay queue.
PendingEntry = tuple[int, int, int]
# A Permit2 allowance: (amount, expiration).
Permit2Allowance = tuple[int, int]


@dataclass(frozen=True)
class GuardState:
    """What a verdict needs from chain besides the Policy, read at one moment.

    `now` is the timestamp the transaction's block will have; `budget_left` is guard.budgetLeft
    per capped token at that time; `pending` maps intent ids (0x hex) to their pending entry.
    Intents missing from `pending` are asked of `lookup` if one is set (read_guard_state sets a
    view-call reader), else they count as not scheduled.

    `allowances` maps (token, spender) to the Safe's current ERC-20 allowance, and
    `permit2_allowances` maps (permit2, token, spender) to Permit2's (amount, expiration) for the
    Safe; both are consulted only for approvals a transaction makes, missing keys are asked of
    `allowance_lookup` / `permit2_lookup` if set, else count as no allowance. `signatures` is the
    number of valid owner signatures the proposal has (None: unknown, then a tier is stated,
    not enforced); `safe_threshold` the Safe's threshold, for the words (None: unknown).
    """

    now: int
    budget_left: Mapping[str, int]
    pending: Mapping[str, PendingEntry]
    allow_refunds: bool
    safe: str
    guard: str
    multisend_call_only: str
    lookup: Callable[[str], PendingEntry | None] | None = field(default=None, compare=False, repr=False)
    allowances: Mapping[tuple[str, str], int] = field(default_factory=dict)
    permit2_allowances: Mapping[tuple[str, str, str], Permit2Allowance] = field(default_factory=dict)
    signatures: int | None = None
    safe_threshold: int | None = None
    allowance_lookup: Callable[[str, str], int] | None = field(default=None, compare=False, repr=False)
    permit2_lookup: Callable[[str, str, str], Permit2Allowance] | None = field(default=None, compare=False,
                                                                                 repr=False)

    def __post_init__(self) -> None:
        # Normalised once, so lookups by checksummed address or lowercase 0x intent always hit.
        normalised = {
            "safe": parse_address(self.safe, "Safe"),
            "guard": parse_address(self.guard, "guard"),
            "multisend_call_only": parse_address(self.multisend_call_only, "MultiSendCallOnly"),
            "budget_left": {parse_address(t, "token"): int(v) for t, v in self.budget_left.items()},
            "pending": {_intent_key(k): _entry_tuple(v) for k, v in self.pending.items()},
            "allowances": {(parse_address(t, "token"), parse_address(s, "spender")): int(v)
                           for (t, s), v in self.allowances.items()},
            "permit2_allowances": {
                (parse_address(p, "Permit2"), parse_address(t, "token"), parse_address(s, "spender")):
                    (int(v[0]), int(v[1]))
                for (p, t, s), v in self.permit2_allowances.items()},
        }
        for name, value in normalised.items():
            object.__setattr__(self, name, value)
        if self.signatures is not None and self.signatures < 0:
            raise InvalidInput(f"signatures {self.signatures} must not be negative")

    def entry_of(self, intent: str) -> PendingEntry | None:
        if intent in self.pending:
            return self.pending[intent]
        return self.lookup(intent) if self.lookup is not None else None

    def budget_of(self, token: str) -> int:
        if token not in self.budget_left:
            raise InvalidInput(f"the guard state has no budget for capped token {token}; use read_guard_state")
        return self.budget_left[token]

    def allowance_of(self, token: str, spender: str) -> int:
        """The Safe's current ERC-20 allowance to `spender` on `token` (2**256 - 1 if unreadable)."""
        if (token, spender) in self.allowances:
            return self.allowances[(token, spender)]
        return self.allowance_lookup(token, spender) if self.allowance_lookup is not None else 0

    def permit2_allowance_of(self, permit2: str, token: str, spender: str) -> Permit2Allowance:
        """Permit2's (amount, expiration) of the Safe's allowance to `spender` on `token`."""
        key = (permit2, token, spender)
        if key in self.permit2_allowances:
            return self.permit2_allowances[key]
        return self.permit2_lookup(permit2, token, spender) if self.permit2_lookup is not None else (0, 0)


class PolicyViolation(Exception):
    """The first rule a transaction breaks: the guard's error name and fields, and a sentence."""

    def __init__(self, error: str, sentence: str, **fields: Any):
        self.error, self.sentence, self.fields = error, sentence, tuple(fields.items())
        super().__init__(self.reason)

    @property
    def guard_style(self) -> str:
        """The error as treasury.guard.decode_guard_error words it, e.g. 'CapNotSet(token=0x..)'."""
        return f"{self.error}({', '.join(f'{name}={_word_text(value)}' for name, value in self.fields)})"

    @property
    def reason(self) -> str:
        """The sentence and the error's name, as explain_revert words a guard revert; the raw fields
        (base units, token addresses) are in `guard_style`, a verdict's `detail`."""
        return f"{self.sentence} [{self.error}]"


def intent_id(to: str, value: int, data: bytes, operation: int) -> str:
    """The guard's intentId: what the delay queue schedules, independent of the Safe nonce."""
    word = encode(["address", "uint256", "bytes32", "uint8"], [parse_address(to, "to"), value, keccak(data), operation])
    return "0x" + keccak(word).hex()


def evaluate(
    policy: Policy, state: GuardState, to: str, value: int = 0, data: bytes | str = b"",
    operation: int = 0, gas_price: int = 0, *, book: TokenBook | None = None, label: Labeller | None = None,
) -> Verdict:
    """The guard's verdict on a Safe transaction: allow, needs-delay (NotScheduled, NotYetDue,
    EntryExpired) or deny, with the guard's error name and a sentence a person reads: amounts in
    token units through `book` (a token it lacks: "N base units of 0x…"), addresses through
    `label` (the address book's "acme (0x…)"; default: the plain address), waits as durations
    and UTC times. Notes state the approvals rule and the tier; warnings what the guard cannot
    hold (an enabled module). The verdict's `detail` keeps the guard error's raw fields, as the guard says them."""
    to, data = parse_address(to, "to"), _as_bytes(data)
    _check_ranges(value, operation, gas_price)
    check = _Check(policy, state, book, label)
    try:
        entry = check.run(to, value, data, operation, gas_price)
    except PolicyViolation as violation:
        return Verdict.refused(violation.error, violation.reason, warnings=tuple(check.warnings),
                               notes=tuple(check.notes), detail=violation.guard_style)
    return Verdict("allow", check.allowed_reason(entry), warnings=tuple(check.warnings), notes=tuple(check.notes))


def charges(
    policy: Policy, state: GuardState, to: str, value: int = 0, data: bytes | str = b"", operation: int = 0
) -> dict[str, int]:
    """What the transaction would charge per token, in the guard's order (raises PolicyViolation
    if a per-call rule already fails). Caps and budgets are not checked here: see evaluate."""
    to, data = parse_address(to, "to"), _as_bytes(data)
    _check_ranges(value, operation, 0)
    check = _Check(policy, state)
    if not check.is_guard_removal(to, data, operation):
        check.calls_of(to, value, data, operation)
    return dict(check.totals)


class _Check:
    """One evaluation: walks the calls, collects per-token totals and why a delay is needed."""

    def __init__(self, policy: Policy, state: GuardState, book: TokenBook | None = None, label: Labeller | None = None):
        self.policy, self.state = policy, state
        self.book = book if book is not None else default_book()
        self.label: Labeller = label or plain
        self.recipients = frozenset(policy.recipients)
        self.allowed_calls = frozenset((call.target, call.selector) for call in policy.calls)
        self.rules: dict[tuple[str, bytes], tuple[ArgumentRule, ...]] = {
            (call.target, call.selector): call.arguments for call in policy.calls if call.arguments}
        self.totals: dict[str, int] = {}
        self.delay_reasons: list[str] = []
        self.notes: list[str] = []
        self.warnings: list[str] = []

    def run(self, to: str, value: int, data: bytes, operation: int, gas_price: int) -> PendingEntry | None:
        """Every rule in the guard's order; returns the entry the transaction consumes, if any."""
        if gas_price != 0 and not self.state.allow_refunds:
            raise PolicyViolation("RefundsNotAllowed", f"gasPrice {gas_price} asks for a refund the caps cannot see")
        intent = intent_id(to, value, data, operation)
        if self.is_guard_removal(to, data, operation):
            self.delay_reasons.append("it removes the guard")
            return self.consume(intent)
        self.calls_of(to, value, data, operation)
        for token, total in self.totals.items():
            self.charge(token, total)
        entry = self.consume(intent) if self.delay_reasons else None
        self.tier()
        return entry

    def is_guard_removal(self, to: str, data: bytes, operation: int) -> bool:
        """setGuard(address(0)) on the Safe: always possible once scheduled, whatever the policy."""
        return (to == self.state.safe and operation == 0 and len(data) == 36
                and data[:4] == SET_GUARD and not any(data[4:]))

    def calls_of(self, to: str, value: int, data: bytes, operation: int) -> None:
        if operation == 0:
            self.call(to, value, data)
        elif operation == 1:
            self.delegatecall(to, value, data)
        else:
            raise PolicyViolation("InvalidOperation", f"operation {operation} is neither call (0) nor delegatecall (1)",
                                  operation=operation)

    # --- one call ----------------------------------------------------------------------------

    def call(self, to: str, value: int, data: bytes) -> None:
        """A top-level call or one batch entry: the Safe, the guard, native value, then the allowlists."""
        if to == self.state.safe:
            if data:  # empty calldata only reaches receive(): the rejection no-op, allowed at once
                self.delay_reasons.append(f"it calls the Safe itself ({_selector_text(data[:4])})")
                if data[:4] == ENABLE_MODULE:
                    self.warnings.append(MODULE_WARNING)
            return
        if to == self.state.guard:
            self.guard_call(value, data)
            return
        if value != 0 or not data:
            self.require_recipient(to, "native value" if value else "a call without calldata")
            self.add(NATIVE, value)
            if not data:
                return
        if len(data) < 4:
            raise PolicyViolation("MalformedCalldata", f"calldata to {self.label(to)} is {len(data)} bytes: no selector", to=to)
        selector = data[:4]
        if (to, selector) not in self.allowed_calls:
            raise PolicyViolation("CallNotAllowed", f"{_selector_text(selector)} on {self.label(to)} is not an allowlisted call",
                                  target=to, selector=selector)
        if selector in TOKEN_CALLS:
            self.token_call(to, selector, data)
        else:
            self.argument_rules(to, selector, data)

    def guard_call(self, value: int, data: bytes) -> None:
        """Only the guard's settings, without value; all but revokeMessage need the delay."""
        selector = data[:4] if len(data) >= 4 else bytes(4)
        setting = GUARD_SETTINGS.get(selector) if len(data) >= 4 else None
        if value != 0:
            raise PolicyViolation("GuardCallNotAllowed", f"a call to the guard carries native value {self.amount_text(NATIVE, value)}",
                                  selector=selector)
        if setting is None:
            what = f"{len(data)} bytes of calldata" if len(data) < 4 else _selector_text(selector)
            raise PolicyViolation("GuardCallNotAllowed", f"the Safe may call only the guard's settings, not {what} "
                                  "(hooks, queue functions and views are never callable from a Safe transaction)",
                                  selector=selector)
        if selector != REVOKE_MESSAGE:
            self.delay_reasons.append(f"it changes a guard setting ({setting})")

    def argument_rules(self, target: str, selector: bytes, data: bytes) -> None:
        """An allowlisted call's argument rules, in order: recipient words and bounded words."""
        for rule in self.rules.get((target, selector), ()):
            end = 4 + 32 * (rule.index + 1)
            if len(data) < end:
                raise PolicyViolation("MalformedCalldata", f"{_selector_text(selector)} calldata to {self.label(target)} is "
                                      f"{len(data)} bytes: argument word {rule.index} needs {end}", to=target)
            value = int.from_bytes(data[end - 32:end], "big")
            if rule.kind == "recipient":
                if value >> 160 == 0 and to_checksum_address(value.to_bytes(20, "big")) in self.recipients:
                    continue
                problem = (f"is not a clean address (0x{value:064x})" if value >> 160 else
                           f"{self.label(_addr(value))} is not an allowlisted recipient")
            else:
                if value <= rule.bound:
                    continue
                problem = self.bound_text(rule, value)
            raise PolicyViolation("ArgumentNotAllowed", f"argument word {rule.index} of {_selector_text(selector)} on "
                                  f"{self.label(target)}: {problem}", target=target, selector=selector, index=rule.index)

    def token_call(self, token: str, selector: bytes, data: bytes) -> None:
        """The standard token calls, decoded strictly; recipients checked, approvals ruled, amounts charged."""
        name, types = TOKEN_CALLS[selector]
        args = _strict_decode(types, data)
        if args is None:
            raise PolicyViolation("MalformedCalldata", f"{name} calldata to {self.token_text(token)} does not decode strictly as "
                                  f"{name}({','.join(types)}) (length, dirty words, offsets or padding)", to=token)
        cap = self.policy.cap_for(token)
        nft = cap is not None and cap.nft
        if selector in (TRANSFER, TRANSFER_FROM):
            self.require_recipient(_addr(args[-2]), "the token recipient")
            self.add(token, 1 if nft else args[-1])
        elif selector in (APPROVE, INCREASE_ALLOWANCE):
            self.approval(token, name, _addr(args[0]), args[1], nft and selector == APPROVE)
        elif selector == DECREASE_ALLOWANCE:
            self.notes.append(f"decreaseAllowance of {self.label(_addr(args[0]))} on {self.token_text(token)}: decreases "
                              "are always allowed, "
                              "no charge")
        elif selector in (SAFE_TRANSFER_FROM, SAFE_TRANSFER_FROM_DATA):
            self.require_recipient(_addr(args[1]), "the token recipient")
            self.add(token, 1)
        elif selector == SET_APPROVAL_FOR_ALL:
            operator = _addr(args[0])
            if args[1]:
                self.require_recipient(operator, "the operator")
                self.delay_reasons.append(f"it approves {self.label(operator)} for all of {self.token_text(token)} "
                                          "(setApprovalForAll)")
                self.notes.append(f"setApprovalForAll hands {self.label(operator)} every token of "
                                  f"{self.token_text(token)}, now and later, "
                                  "without a charge: hence the delay; revoking it (false) is always allowed at once")
        elif selector == SAFE_TRANSFER_FROM_1155:
            self.require_recipient(_addr(args[1]), "the token recipient")
            self.add(token, args[3])
        elif selector == SAFE_BATCH_TRANSFER_FROM:
            if len(args[2]) != len(args[3]):
                raise PolicyViolation("MalformedCalldata", f"safeBatchTransferFrom calldata to {self.token_text(token)} has "
                                      f"{len(args[2])} ids but {len(args[3])} amounts", to=token)
            self.require_recipient(_addr(args[1]), "the token recipient")
            self.add(token, sum(args[3]))
        else:  # PERMIT2_APPROVE
            self.permit2_approval(token, _addr(args[0]), _addr(args[1]), args[2])

    def approval(self, token: str, name: str, spender: str, amount: int, nft: bool) -> None:
        """approve / increaseAllowance: charged in full when made, refused while an older one is unspent."""
        if nft:
            if spender == ZERO_ADDRESS:
                self.notes.append(f"{name} to the zero address on {self.token_text(token)}: a revocation, always allowed, "
                                  "no charge")
                return
            self.require_recipient(spender, "the spender")
            self.add(token, 1)
            self.notes.append(f"approval charged in full now: {self.amount_text(token, 1)} (one NFT); "
                              f"revoking it later gives nothing back")
            return
        if amount == 0:
            self.notes.append(f"{name} of 0 to {self.label(spender)} on {self.token_text(token)}: a revocation, always "
                              "allowed, no charge")
            return
        self.require_recipient(spender, "the spender")
        outstanding = self.state.allowance_of(token, spender)
        if outstanding != 0:
            raise PolicyViolation("ApprovalOutstanding", f"the Safe's allowance to {self.label(spender)} is still "
                                  f"{self.amount_text(token, outstanding)}: a new approval is refused while an older one is unspent (revoke it "
                                  "with approve(spender, 0) first)", token=token, spender=spender,
                                  outstanding=outstanding)
        self.add(token, amount)
        self.notes.append(self.approval_note(token, spender, amount))

    def permit2_approval(self, permit2: str, token: str, spender: str, amount: int) -> None:
        if amount == 0:
            self.notes.append(f"Permit2 approval of 0 to {self.label(spender)} on {self.token_text(token)}: a "
                              "revocation, always allowed, no charge")
            return
        self.require_recipient(spender, "the spender")
        current, expiration = self.state.permit2_allowance_of(permit2, token, spender)
        if current != 0 and expiration >= self.state.now:
            raise PolicyViolation("ApprovalOutstanding", f"the Safe's Permit2 allowance to {self.label(spender)} is "
                                  f"still {self.amount_text(token, current)} until {when(expiration)}: a new approval is refused while an older one "
                                  "is live", token=token, spender=spender, outstanding=current)
        self.add(token, amount)
        self.notes.append(self.approval_note(token, spender, amount))

    def approval_note(self, token: str, spender: str, amount: int) -> str:
        return (f"approval charged in full now: {self.amount_text(token, amount)}; a new approval to {self.label(spender)} "
                "is refused while this one is unspent")

    def require_recipient(self, address: str, role: str) -> None:
        if address not in self.recipients:
            raise PolicyViolation("RecipientNotAllowed", f"{self.label(address)} ({role}) is not an allowlisted recipient",
                                  recipient=address)

    def add(self, token: str, amount: int) -> None:
        """The guard's totals saturate at 2**256 - 1: a total that large is refused by the cap, not a panic."""
        if amount == 0:
            return
        self.totals[token] = min(self.totals.get(token, 0) + amount, U256_MAX)

    # --- batches -------------------------------------------------------------------------------

    def delegatecall(self, to: str, value: int, data: bytes) -> None:
        """A batch: every entry is unpacked by the one strict decoder and checked as a call, in order.

        The decoder yields each entry only once it is well-formed, so a malformed entry is met
        after every earlier entry was checked, exactly where the guard reverts.
        """
        if to != self.state.multisend_call_only:
            raise PolicyViolation("DelegateCallNotAllowed", f"delegatecall to {self.label(to)}: only MultiSendCallOnly "
                                  f"{self.state.multisend_call_only} may be delegatecalled", to=to)
        if value != 0:
            self.invalid_multisend(f"the delegatecall carries value {value}")
        try:
            for entry in iter_batch(data, call_only=True):
                self.call(entry.to, entry.value, entry.data)
        except MalformedBatch as malformed:
            fields = {} if malformed.offset is None else {"offset": malformed.offset}
            raise PolicyViolation(malformed.error, malformed.sentence, **fields) from None

    @staticmethod
    def invalid_multisend(problem: str) -> NoReturn:
        raise PolicyViolation("InvalidMultiSend", f"not a canonical multiSend(bytes) delegatecall: {problem}")

    # --- caps, the queue and the tiers -----------------------------------------------------------

    def charge(self, token: str, total: int) -> None:
        """The cap's rules in the guard's order, worded in token units ("12,000 USDC requested")."""
        cap = self.policy.cap_for(token)
        name, spent = self.token_text(token), self.amount_text(token, total)
        if cap is None:
            raise PolicyViolation("CapNotSet", f"{name} has no cap, so no budget: {spent} requested", token=token)
        if total > cap.per_tx_limit:
            raise PolicyViolation("ExceedsPerTxLimit", f"per-transaction limit of {name} exceeded: {spent} requested, "
                                  f"limit {self.amount_text(token, cap.per_tx_limit)}", token=token, total=total,
                                  limit=cap.per_tx_limit)
        if total > cap.delay_above:
            self.delay_reasons.append(f"{spent} is above the delay threshold of {self.amount_text(token, cap.delay_above)}")
        left = self.state.budget_of(token)
        if total > left:
            raise PolicyViolation("ExceedsBudget", f"cap of {name} exceeded: {spent} requested, "
                                  f"{self.amount_text(token, left)} left", token=token, total=total, left=left)

    def consume(self, intent: str) -> PendingEntry:
        """The due, unexpired pending entry a delayed transaction must consume."""
        why, wait = "; ".join(self.delay_reasons), duration(self.policy.delay, exact=True)
        entry = self.state.entry_of(intent)
        if entry is None:
            raise PolicyViolation("NotScheduled", f"needs a {wait} delay ({why}): schedule intent {intent} first",
                                  intentId=bytes.fromhex(intent[2:]))
        entry_id, eta, expiry = entry
        if self.state.now < eta:
            raise PolicyViolation("NotYetDue", f"needs the delay ({why}): entry {entry_id} is "
                                  f"{due(self.state.now, eta)}", entryId=entry_id, eta=eta)
        if self.state.now >= expiry:
            raise PolicyViolation("EntryExpired", f"needs the delay ({why}): entry {entry_id} expired "
                                  f"{duration(self.state.now - expiry)} ago, at {when(expiry)}; schedule it again",
                                  entryId=entry_id, expiry=expiry)
        return entry

    def tier(self) -> None:
        """Tiered thresholds: the most owner signatures any token total above its tier asks for."""
        reached = [(cap.tier_signers, cap) for token, total in self.totals.items()
                   if (cap := self.policy.cap_for(token)) is not None and cap.tier_signers and total > cap.tier_amount]
        if not reached:
            return
        required, cap = max(reached, key=lambda pair: pair[0])
        threshold, have = self.state.safe_threshold, self.state.signatures
        words = f"needs {required} owner signatures (tier above {self.amount_text(cap.token, cap.tier_amount)})"
        if threshold is not None and required <= threshold:
            # The guard asks the Safe only for a tier above its threshold: the Safe already asks for as many.
            self.notes.append(f"{words}; the Safe's threshold of {threshold} already asks for them")
            return
        if threshold is not None:
            words += f"; the Safe's threshold is {threshold}"
        if have is not None and have < required:
            raise PolicyViolation("NotEnoughSignatures", f"{words}; the proposal has {have}", required=required)
        self.notes.append(words if have is None else f"{words}; the proposal has {have}")

    def allowed_reason(self, entry: PendingEntry | None) -> str:
        spent = [self.spent_text(token, total) for token, total in self.totals.items()]
        parts = [f"charges {', '.join(spent)}" if spent else "charges nothing"]
        if entry is not None:
            parts.append(f"consumes scheduled entry {entry[0]} ({'; '.join(self.delay_reasons)})")
        parts += self.notes
        return "allowed: " + "; ".join(parts)

    def spent_text(self, token: str, total: int) -> str:
        left = self.state.budget_of(token) - total
        return f"{self.amount_text(token, total)} ({self.amount_text(token, left)} left after)"

    def amount_text(self, token: str, units: int) -> str:
        """'500 USDC' through the book, else '500 base units of 0x..' (never a bare number)."""
        return amount(self.book, token, units)

    def token_text(self, token: str) -> str:
        """A token as a sentence names it: its symbol ('USDC', 'ETH'), else 'token <label>'."""
        known = self.book.by_address(token)
        return known.symbol if known is not None else f"token {self.label(token)}"

    def bound_text(self, rule: ArgumentRule, value: int) -> str:
        """A 'max' rule broken: in the rule's token when the config named one ('600 USDC is above the bound
        500 USDC'), else the raw words."""
        if rule.token is not None:
            return f"{self.amount_text(rule.token, value)} is above the bound {self.amount_text(rule.token, rule.bound)}"
        return f"{value} is above the bound {rule.bound}"


def _strict_decode(types: tuple[str, ...], data: bytes) -> list[Any] | None:
    """The arguments of `data` (selector first) if they are the canonical ABI encoding of `types`:
    exact length, static words in range (clean addresses, bools 0/1), dynamic arguments at the
    canonical offsets in order, zero padding. None for anything else."""
    body = data[4:]
    tail = 32 * len(types)
    if len(body) < tail:
        return None
    values: list[Any] = []
    for i, kind in enumerate(types):
        word = int.from_bytes(body[32 * i:32 * i + 32], "big")
        if kind in _STATIC_TOP:
            if word > _STATIC_TOP[kind]:
                return None
            values.append(word)
            continue
        if word != tail or len(body) < tail + 32:
            return None
        count = int.from_bytes(body[tail:tail + 32], "big")
        size = 32 * count if kind == "uint256[]" else (count + 31) // 32 * 32
        if len(body) < tail + 32 + size:
            return None
        payload = body[tail + 32:tail + 32 + size]
        if kind == "uint256[]":
            values.append([int.from_bytes(payload[32 * j:32 * j + 32], "big") for j in range(count)])
        else:
            if any(payload[count:]):
                return None
            values.append(payload[:count])
        tail += 32 + size
    return values if len(body) == tail else None


def _addr(word: int) -> str:
    return to_checksum_address(word.to_bytes(20, "big"))


# --- reading the chain ---------------------------------------------------------------------------


def read_guard_state(
    guard: ContractInstance | str, policy: Policy, intents: Iterable[Any] = (), *, block: str | int = "pending",
    signatures: int | None = None,
) -> GuardState:
    """Read the guard's moving parts with view calls, all at `block` (default: the pending block,
    whose timestamp the next transaction will have). `intents` are intent ids or
    (to, value, data, operation) tuples read now; any other intent is read when first asked, and
    so are the Safe's allowances, only for the approvals a transaction makes. `signatures`: the
    valid owner signatures the proposal has, for the tiers (None: unknown)."""
    from ape import chain

    contract = guard_at(guard) if isinstance(guard, str) else guard
    web3 = chain.provider.web3

    def view(name: str, *args: Any) -> Any:
        return getattr(contract, name)(*args, block_id=block)

    def lookup(intent: str) -> PendingEntry | None:
        entry_id = view("pendingEntryOf", bytes.fromhex(intent[2:]))
        if entry_id == 0:
            return None
        _, eta, expiry, _ = view("getEntry", entry_id)
        return int(entry_id), int(eta), int(expiry)

    def raw_call(to: str, data: bytes) -> bytes | None:
        """A view call as the guard makes it: None if it reverts."""
        try:
            return bytes(web3.eth.call({"to": to, "data": "0x" + data.hex()}, block))
        except Exception:  # noqa: BLE001 - any failure of the token's view is what the guard sees as a failed call
            return None

    def allowance_lookup(token: str, spender: str) -> int:
        # As the guard reads it: a failing call or a short answer counts as outstanding 2**256 - 1.
        answer = raw_call(token, ALLOWANCE + encode(["address", "address"], [safe, spender]))
        return U256_MAX if answer is None or len(answer) < 32 else int.from_bytes(answer[:32], "big")

    def permit2_lookup(permit2: str, token: str, spender: str) -> Permit2Allowance:
        answer = raw_call(permit2, PERMIT2_ALLOWANCE + encode(["address", "address", "address"], [safe, token, spender]))
        if answer is None or len(answer) < 96:  # (amount, expiration, nonce), as the guard reads it
            return U256_MAX, U256_MAX  # unreadable: counted as a live allowance
        return int.from_bytes(answer[:32], "big"), int.from_bytes(answer[32:64], "big")

    safe = parse_address(view("SAFE"), "Safe")
    threshold_answer = raw_call(safe, _sel("getThreshold()"))
    keys = [_intent_key(intent) for intent in intents]
    return GuardState(
        now=int(web3.eth.get_block(block)["timestamp"]),
        budget_left={cap.token: int(view("budgetLeft", cap.token)) for cap in policy.caps},
        pending={key: found for key in keys if (found := lookup(key)) is not None},
        allow_refunds=bool(view("allowRefunds")),
        safe=safe,
        guard=contract.address,
        multisend_call_only=view("MULTISEND_CALL_ONLY"),
        lookup=lookup,
        signatures=signatures,
        safe_threshold=int.from_bytes(threshold_answer[:32], "big") if threshold_answer else None,
        allowance_lookup=allowance_lookup,
        permit2_lookup=permit2_lookup,
    )


def policy_drift(policy: Policy, guard: ContractInstance | str, *, book: TokenBook | None = None,
                 label: Labeller | None = None) -> list[str]:
    """Where the guard's settings differ from the policy, one line each ([] when in sync).

    The guard cannot list its allowlists, so what the policy names is checked: each allowed call
    (and its argument rules) and recipient, each cap (with its NFT kind and tier), that tokens
    the policy leaves uncapped have no cap on chain, the queue's settings and each guardian. A
    guard without one of the views (a v1 guard) gets a line saying what cannot be compared.
    Amounts are worded through `book` and addresses through `label`, as in a verdict.
    """
    contract = guard_at(guard) if isinstance(guard, str) else guard
    named = label or plain
    lines = [f"call {_selector_text(call.selector)} on {named(call.target)} is allowed by the policy but not by the guard"
             for call in policy.calls if not contract.isAllowedCall(call.target, call.selector)]
    lines += _argument_drift(policy, contract)
    lines += [f"recipient {named(recipient)} is allowed by the policy but not by the guard"
              for recipient in policy.recipients if not contract.isRecipient(recipient)]
    lines += _cap_drift(policy, contract, book)
    windows = (("delay", policy.delay, int(contract.delay())), ("window", policy.window, int(contract.window())))
    lines += [f"{name}: policy {duration(wanted, exact=True)}, guard {duration(actual, exact=True)}"
              for name, wanted, actual in windows if wanted != actual]
    if policy.allow_refunds != contract.allowRefunds():
        lines.append(f"allow_refunds: policy {policy.allow_refunds}, guard {contract.allowRefunds()}")
    lines += _queue_drift(policy, contract)
    return lines


class _MissingView(Exception):
    """The guard does not answer a v2 view (an older guard)."""


def _read(contract: Any, name: str, *args: Any) -> Any:
    try:
        return getattr(contract, name)(*args)
    except Exception as error:  # a v1 guard lacks the view: its fallback answers nothing and ape raises
        raise _MissingView(name) from error


def _missing(name: str, what: str) -> str:
    return f"the guard has no {name} view (a v1 guard?): {what} cannot be compared"


def _argument_drift(policy: Policy, contract: Any) -> list[str]:
    lines = []
    for call in policy.calls:
        if call.selector in TOKEN_CALLS:
            continue  # standard token calls have their own rules: argument rules never apply to them
        try:
            actual = [int(word) for word in _read(contract, "argumentRules", call.target, call.selector)]
        except _MissingView:
            if call.arguments:
                return [_missing("argumentRules", "argument rules")]
            continue
        wanted = [rule.word for rule in call.arguments]
        if actual != wanted:
            lines.append(f"argument rules of {_selector_text(call.selector)} on {call.target}: policy "
                         f"{_rules_text(wanted)}, guard {_rules_text(actual)}")
    return lines


def _cap_drift(policy: Policy, contract: ContractInstance, book: TokenBook | None) -> list[str]:
    lines = []
    for cap in policy.caps:
        wanted = (cap.amount, cap.period, cap.per_tx_limit, cap.delay_above)
        actual = tuple(int(v) for v in contract.capConfig(cap.token))
        if actual != wanted:
            lines.append(f"cap of {_token_text(cap.token, book)}: policy {_cap_text(wanted, cap.token, book)}, guard "
                         f"{_cap_text(actual, cap.token, book)}")
    capped = {cap.token for cap in policy.caps}
    uncapped = {NATIVE} | {call.target for call in policy.calls if call.selector in TOKEN_CALLS}
    for token in sorted(uncapped - capped):
        actual = tuple(int(v) for v in contract.capConfig(token))
        if any(actual):
            lines.append(f"{_token_text(token, book)} has no cap in the policy but the guard has "
                         f"{_cap_text(actual, token, book)}")
    lines += _kind_and_tier_drift(policy.caps, contract, book)
    return lines


def _kind_and_tier_drift(caps: Iterable[TokenCap], contract: Any, book: TokenBook | None) -> list[str]:
    lines: list[str] = []
    nft_view = tier_view = True
    for cap in caps:
        label = _token_text(cap.token, book)
        if nft_view:
            try:
                nft = bool(_read(contract, "isNft", cap.token))
                if nft != cap.nft:
                    lines.append(f"{label}: policy {'an NFT collection' if cap.nft else 'fungible'}, guard "
                                 f"{'an NFT collection' if nft else 'fungible'}")
            except _MissingView:
                nft_view = False
                lines.append(_missing("isNft", "NFT kinds"))
        if tier_view:
            try:
                amount, signers = (int(v) for v in _read(contract, "tierConfig", cap.token))
                if (signers, amount if signers else 0) != (cap.tier_signers, cap.tier_amount if cap.tier_signers else 0):
                    lines.append(f"tier of {label}: policy {_tier_text(cap.tier_signers, cap.tier_amount, cap.token, book)}, "
                                 f"guard {_tier_text(signers, amount, cap.token, book)}")
            except _MissingView:
                tier_view = False
                lines.append(_missing("tierConfig", "tiers"))
    return lines


def _queue_drift(policy: Policy, contract: Any) -> list[str]:
    lines = []
    try:
        threshold = int(_read(contract, "cancelThreshold"))
        if threshold != policy.cancel_threshold:
            lines.append(f"cancel_threshold: policy {policy.cancel_threshold}, guard {threshold}")
    except _MissingView:
        lines.append(_missing("cancelThreshold", "the cancel threshold"))
    try:
        lines += [f"guardian {guardian} is named by the policy but is not a guardian of the guard"
                  for guardian in policy.guardians if not _read(contract, "isGuardian", guardian)]
    except _MissingView:
        lines.append(_missing("isGuardian", "guardians"))
    return lines


# --- small helpers -------------------------------------------------------------------------------


def _as_bytes(data: bytes | str) -> bytes:
    if isinstance(data, str):
        return bytes.fromhex(data.removeprefix("0x"))
    return bytes(data)


def _check_ranges(value: int, operation: int, gas_price: int) -> None:
    """Values the guard's ABI cannot carry are the caller's mistake, not a verdict."""
    ranges = (("value", value, U256_MAX), ("operation", operation, 255), ("gas_price", gas_price, U256_MAX))
    for name, number, top in ranges:
        if not 0 <= number <= top:
            raise InvalidInput(f"{name} {number} is outside 0..{top}")


def _intent_key(intent: Any) -> str:
    if isinstance(intent, tuple):
        to, value, data, operation = intent
        return intent_id(to, value, _as_bytes(data), operation)
    raw = bytes.fromhex(intent[2:]) if isinstance(intent, str) else bytes(intent)
    if len(raw) != 32:
        raise InvalidInput(f"intent id {intent!r} is not 32 bytes")
    return "0x" + raw.hex()


def _entry_tuple(entry: Any) -> PendingEntry:
    entry_id, eta, expiry = entry
    return int(entry_id), int(eta), int(expiry)


def _word_text(value: Any) -> str:
    """A field as decode_guard_error shows it: lowercase addresses, 0x bytes, decimal numbers."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and value.startswith("0x"):
        return value.lower()
    return str(value)


def _token_text(token: str, book: TokenBook | None = None) -> str:
    known = (book if book is not None else default_book()).by_address(token)
    return known.symbol if known is not None else f"token {token}"


def _selector_text(selector: bytes) -> str:
    known = {MULTI_SEND: "multiSend", SET_GUARD: "setGuard", ENABLE_MODULE: "enableModule", **GUARD_SETTINGS}
    name = TOKEN_CALLS[selector][0] if selector in TOKEN_CALLS else known.get(selector)
    return f"{name} (0x{selector.hex()})" if name else f"selector 0x{selector.hex()}"


def _cap_text(config: tuple[int, ...], token: str, book: TokenBook | None) -> str:
    """A cap as the guard stores it, in the token's units; the guard's "none" (2**104 - 1) said as such."""
    cap, period, max_per_tx, threshold = config

    def units(value: int) -> str:
        return "none" if value >= MAX_AMOUNT else amount(book, token, value)

    return (f"amount={units(cap)} period={duration(period, exact=True)} max_per_tx={units(max_per_tx)} "
            f"delay_threshold={units(threshold)}")


def _tier_text(signers: int, units: int, token: str, book: TokenBook | None) -> str:
    return f"{signers} signatures above {amount(book, token, units)}" if signers else "no tier"


def _rules_text(words: list[int]) -> str:
    if not words:
        return "none"
    kinds = {1: "recipient", 2: "max"}
    shown = []
    for word in words:
        kind, index, bound = word >> 248, (word >> 240) & 0xFF, word & (2**240 - 1)
        name = kinds.get(kind, f"kind {kind}")
        shown.append(f"word {index} {name}" + (f" <= {bound}" if kind == 2 else ""))
    return "[" + ", ".join(shown) + "]"

