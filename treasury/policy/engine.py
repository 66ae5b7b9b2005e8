"""TreasuryGuard's verdict computed in Python: allow, needs-delay or deny, before anyone signs.

The guard is the backstop; this module answers the same question off chain, so a proposer hears
"denied" or "needs a 48 h delay" at proposal time. The rules come from the Policy (allowlists,
caps, limits, thresholds, delay) and the moving parts from a GuardState snapshot (budgets left,
the delay queue, the clock), so a verdict can be recomputed from stored state without a node.

The checks run in the guard's order, so the first rule that fails, and therefore the error name,
is the one the guard would revert with. tests/test_policy_differential.py holds the two together
by running generated proposals through both on anvil.
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
from treasury.policy.model import NATIVE, Policy
from treasury.policy.verdict import Verdict
from treasury.proposal.multisend import MULTI_SEND, MalformedBatch, iter_batch

if TYPE_CHECKING:
    from ape.contracts import ContractInstance

U256_MAX = 2**256 - 1
TRANSFER = function_signature_to_4byte_selector("transfer(address,uint256)")
APPROVE = function_signature_to_4byte_selector("approve(address,uint256)")
TRANSFER_FROM = function_signature_to_4byte_selector("transferFrom(address,address,uint256)")
ERC20_NAMES = {TRANSFER: "transfer", APPROVE: "approve", TRANSFER_FROM: "transferFrom"}
SET_GUARD = function_signature_to_4byte_selector("setGuard(address)")
# The guard's checked arithmetic reverts with Panic(0x11) when a token total overflows uint256.
PANIC_OVERFLOW = function_signature_to_4byte_selector("Panic(uint256)") + (0x11).to_bytes(32, "big")

# (entry id, eta, expiry) of an intent's pending entry in the guard's delay queue.
PendingEntry = tuple[int, int, int]


@dataclass(frozen=True)
class GuardState:
    """What a verdict needs from chain besides the Policy, read at one moment.

    `now` is the timestamp the transaction's block will have; `budget_left` is guard.budgetLeft
    per capped token at that time; `pending` maps intent ids (0x hex) to their pending entry.
    Intents missing from `pending` are asked of `lookup` if one is set (read_guard_state sets a
    view-call reader), else they count as not scheduled.
    """

    now: int
    budget_left: Mapping[str, int]
    pending: Mapping[str, PendingEntry]
    allow_refunds: bool
    safe: str
    guard: str
    multisend_call_only: str
    lookup: Callable[[str], PendingEntry | None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Normalised once, so lookups by checksummed address or lowercase 0x intent always hit.
        normalised = {
            "safe": parse_address(self.safe, "Safe"),
            "guard": parse_address(self.guard, "guard"),
            "multisend_call_only": parse_address(self.multisend_call_only, "MultiSendCallOnly"),
            "budget_left": {parse_address(t, "token"): int(v) for t, v in self.budget_left.items()},
            "pending": {_intent_key(k): _entry_tuple(v) for k, v in self.pending.items()},
        }
        for name, value in normalised.items():
            object.__setattr__(self, name, value)

    def entry_of(self, intent: str) -> PendingEntry | None:
        if intent in self.pending:
            return self.pending[intent]
        return self.lookup(intent) if self.lookup is not None else None

    def budget_of(self, token: str) -> int:
        if token not in self.budget_left:
            raise InvalidInput(f"the guard state has no budget for capped token {token}; use read_guard_state")
        return self.budget_left[token]


class PolicyViolation(Exception):
    """The first rule a transaction breaks: the guard's error name and fields, and a sentence."""

    def __init__(self, error: str, sentence: str, **fields: Any):
        self.error, self.sentence, self.fields = error, sentence, tuple(fields.items())
        super().__init__(self.reason)

    @property
    def guard_style(self) -> str:
        """The error as treasury.guard.decode_guard_error words it, e.g. 'CapNotSet(token=0x..)'."""
        if self.error == "Reverted":
            return f"reverted with data 0x{PANIC_OVERFLOW.hex()}"
        return f"{self.error}({', '.join(f'{name}={_word_text(value)}' for name, value in self.fields)})"

    @property
    def reason(self) -> str:
        return f"{self.sentence} [{self.guard_style}]"


def intent_id(to: str, value: int, data: bytes, operation: int) -> str:
    """The guard's intentId: what the delay queue schedules, independent of the Safe nonce."""
    word = encode(["address", "uint256", "bytes32", "uint8"], [parse_address(to, "to"), value, keccak(data), operation])
    return "0x" + keccak(word).hex()


def evaluate(
    policy: Policy, state: GuardState, to: str, value: int = 0, data: bytes | str = b"",
    operation: int = 0, gas_price: int = 0,
) -> Verdict:
    """The guard's verdict on a Safe transaction: allow, needs-delay (NotScheduled, NotYetDue,
    EntryExpired) or deny, with the guard's error name and a sentence in token terms."""
    to, data = parse_address(to, "to"), _as_bytes(data)
    _check_ranges(value, operation, gas_price)
    check = _Check(policy, state)
    try:
        entry = check.run(to, value, data, operation, gas_price)
    except PolicyViolation as violation:
        return Verdict.refused(violation.error, violation.reason)
    return Verdict("allow", check.allowed_reason(entry))


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

    def __init__(self, policy: Policy, state: GuardState):
        self.policy, self.state = policy, state
        self.recipients = frozenset(policy.recipients)
        self.allowed_calls = frozenset((call.target, call.selector) for call in policy.calls)
        self.totals: dict[str, int] = {}
        self.delay_reasons: list[str] = []

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
        return self.consume(intent) if self.delay_reasons else None

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
        """A top-level call or one batch entry: self-calls, native value, then the allowlists."""
        if to == self.state.safe:
            if data:  # empty calldata only reaches receive(): the rejection no-op, allowed at once
                self.delay_reasons.append(f"it calls the Safe itself ({_selector_text(data[:4])})")
            return
        if to == self.state.guard:
            self.delay_reasons.append("it calls the guard (settings)")
            return
        if value != 0 or not data:
            self.require_recipient(to, "native value" if value else "a call without calldata")
            self.add(NATIVE, value)
            if not data:
                return
        if len(data) < 4:
            raise PolicyViolation("MalformedCalldata", f"calldata to {to} is {len(data)} bytes: no selector", to=to)
        selector = data[:4]
        if (to, selector) not in self.allowed_calls:
            raise PolicyViolation("CallNotAllowed", f"{_selector_text(selector)} on {to} is not an allowlisted call",
                                  target=to, selector=selector)
        if selector in ERC20_NAMES:
            self.erc20(to, selector, data)

    def erc20(self, token: str, selector: bytes, data: bytes) -> None:
        """transfer/approve/transferFrom: exact length, clean address words, allowlisted recipient."""
        name = ERC20_NAMES[selector]
        words = 3 if selector == TRANSFER_FROM else 2
        if len(data) != 4 + 32 * words:
            raise PolicyViolation("MalformedCalldata", f"{name} calldata to {token} is {len(data)} bytes, "
                                  f"not {4 + 32 * words}", to=token)
        args = [int.from_bytes(data[4 + 32 * i: 36 + 32 * i], "big") for i in range(words)]
        if any(word >> 160 for word in args[:-1]):
            raise PolicyViolation("MalformedCalldata", f"{name} calldata to {token} has an address word with dirty "
                                  "upper bytes", to=token)
        recipient = to_checksum_address(args[-2].to_bytes(20, "big"))
        self.require_recipient(recipient, "the spender" if selector == APPROVE else "the token recipient")
        self.add(token, args[-1])

    def require_recipient(self, address: str, role: str) -> None:
        if address not in self.recipients:
            raise PolicyViolation("RecipientNotAllowed", f"{address} ({role}) is not an allowlisted recipient",
                                  recipient=address)

    def add(self, token: str, amount: int) -> None:
        if amount == 0:
            return
        total = self.totals.get(token, 0) + amount
        if total > U256_MAX:
            raise PolicyViolation("Reverted", f"the total of {_token_text(token)} overflows uint256 (the guard panics)")
        self.totals[token] = total

    # --- batches -------------------------------------------------------------------------------

    def delegatecall(self, to: str, value: int, data: bytes) -> None:
        """A batch: every entry is unpacked by the one strict decoder and checked as a call, in order.

        The decoder yields each entry only once it is well-formed, so a malformed entry is met
        after every earlier entry was checked, exactly where the guard reverts.
        """
        if to != self.state.multisend_call_only:
            raise PolicyViolation("DelegateCallNotAllowed", f"delegatecall to {to}: only MultiSendCallOnly "
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

    # --- caps and the queue --------------------------------------------------------------------

    def charge(self, token: str, total: int) -> None:
        cap = self.policy.cap_for(token)
        label = _token_text(token)
        if cap is None:
            raise PolicyViolation("CapNotSet", f"{label} has no cap, so no budget: {total} requested", token=token)
        if total > cap.per_tx_limit:
            raise PolicyViolation("ExceedsPerTxLimit", f"per-transaction limit of {label} exceeded: {total} requested, "
                                  f"limit {cap.per_tx_limit}", token=token, total=total, limit=cap.per_tx_limit)
        if total > cap.delay_above:
            self.delay_reasons.append(f"{total} of {label} is above the delay threshold {cap.delay_above}")
        left = self.state.budget_of(token)
        if total > left:
            raise PolicyViolation("ExceedsBudget", f"cap of {label} exceeded: {total} requested, {left} left",
                                  token=token, total=total, left=left)

    def consume(self, intent: str) -> PendingEntry:
        """The due, unexpired pending entry a delayed transaction must consume."""
        why, wait = "; ".join(self.delay_reasons), _duration(self.policy.delay)
        entry = self.state.entry_of(intent)
        if entry is None:
            raise PolicyViolation("NotScheduled", f"needs a {wait} delay ({why}): schedule intent {intent} first",
                                  intentId=bytes.fromhex(intent[2:]))
        entry_id, eta, expiry = entry
        if self.state.now < eta:
            raise PolicyViolation("NotYetDue", f"needs the delay ({why}): entry {entry_id} is due in "
                                  f"{_duration(eta - self.state.now)}, at {eta}", entryId=entry_id, eta=eta)
        if self.state.now >= expiry:
            raise PolicyViolation("EntryExpired", f"needs the delay ({why}): entry {entry_id} expired at {expiry}; "
                                  "schedule it again", entryId=entry_id, expiry=expiry)
        return entry

    def allowed_reason(self, entry: PendingEntry | None) -> str:
        spent = [f"{total} of {_token_text(token)} ({self.state.budget_of(token) - total} left after)"
                 for token, total in self.totals.items()]
        parts = [f"charges {', '.join(spent)}" if spent else "charges nothing"]
        if entry is not None:
            parts.append(f"consumes scheduled entry {entry[0]} ({'; '.join(self.delay_reasons)})")
        return "allowed: " + "; ".join(parts)


# --- reading the chain ---------------------------------------------------------------------------


def read_guard_state(
    guard: ContractInstance | str, policy: Policy, intents: Iterable[Any] = (), *, block: str | int = "pending"
) -> GuardState:
    """Read the guard's moving parts with view calls, all at `block` (default: the pending block,
    whose timestamp the next transaction will have). `intents` are intent ids or
    (to, value, data, operation) tuples read now; any other intent is read when first asked."""
    from ape import chain

    contract = guard_at(guard) if isinstance(guard, str) else guard

    def view(name: str, *args: Any) -> Any:
        return getattr(contract, name)(*args, block_id=block)

    def lookup(intent: str) -> PendingEntry | None:
        entry_id = view("pendingEntryOf", bytes.fromhex(intent[2:]))
        if entry_id == 0:
            return None
        _, eta, expiry, _ = view("getEntry", entry_id)
        return int(entry_id), int(eta), int(expiry)

    keys = [_intent_key(intent) for intent in intents]
    return GuardState(
        now=int(chain.provider.web3.eth.get_block(block)["timestamp"]),
        budget_left={cap.token: int(view("budgetLeft", cap.token)) for cap in policy.caps},
        pending={key: found for key in keys if (found := lookup(key)) is not None},
        allow_refunds=bool(view("allowRefunds")),
        safe=view("SAFE"),
        guard=contract.address,
        multisend_call_only=view("MULTISEND_CALL_ONLY"),
        lookup=lookup,
    )


def policy_drift(policy: Policy, guard: ContractInstance | str) -> list[str]:
    """Where the guard's settings differ from the policy, one line each ([] when in sync).

    The guard cannot list its allowlists, so what the policy names is checked: each allowed call
    and recipient, each cap, and that tokens the policy leaves uncapped have no cap on chain.
    """
    contract = guard_at(guard) if isinstance(guard, str) else guard
    lines = [f"call {_selector_text(call.selector)} on {call.target} is allowed by the policy but not by the guard"
             for call in policy.calls if not contract.isAllowedCall(call.target, call.selector)]
    lines += [f"recipient {recipient} is allowed by the policy but not by the guard"
              for recipient in policy.recipients if not contract.isRecipient(recipient)]
    lines += _cap_drift(policy, contract)
    settings = (("delay", policy.delay, contract.delay()), ("window", policy.window, contract.window()),
                ("allow_refunds", policy.allow_refunds, contract.allowRefunds()))
    lines += [f"{name}: policy {wanted}, guard {actual}" for name, wanted, actual in settings if wanted != actual]
    return lines


def _cap_drift(policy: Policy, contract: ContractInstance) -> list[str]:
    lines = []
    for cap in policy.caps:
        wanted = (cap.amount, cap.period, cap.per_tx_limit, cap.delay_above)
        actual = tuple(int(v) for v in contract.capConfig(cap.token))
        if actual != wanted:
            lines.append(f"cap of {_token_text(cap.token)}: policy {_cap_text(wanted)}, guard {_cap_text(actual)}")
    capped = {cap.token for cap in policy.caps}
    uncapped = {NATIVE} | {call.target for call in policy.calls if call.selector in ERC20_NAMES}
    for token in sorted(uncapped - capped):
        actual = tuple(int(v) for v in contract.capConfig(token))
        if any(actual):
            lines.append(f"{_token_text(token)} has no cap in the policy but the guard has {_cap_text(actual)}")
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


def _token_text(token: str) -> str:
    return "the native currency" if token == ZERO_ADDRESS else f"token {token}"


def _selector_text(selector: bytes) -> str:
    name = ERC20_NAMES.get(selector) or {MULTI_SEND: "multiSend", SET_GUARD: "setGuard"}.get(selector)
    return f"{name} (0x{selector.hex()})" if name else f"selector 0x{selector.hex()}"


def _cap_text(config: tuple[int, ...]) -> str:
    amount, period, max_per_tx, threshold = config
    return f"amount={amount} period={period} max_per_tx={max_per_tx} delay_threshold={threshold}"


def _duration(seconds: int) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds} s"
