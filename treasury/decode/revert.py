"""Why a Safe transaction reverted, in one line a treasury team can act on.

Revert data reaches us as bytes: a TreasuryGuard custom error, the Safe's `Error("GSxxx")`, a
Solidity `Panic(uint256)`, or something we do not know. Signers should not have to decode ABI words
or divide by 10**6 in their head, so each case becomes a short sentence with amounts in token
terms (through the treasury's TokenBook) and times in UTC. A guard sentence keeps the raw error
name in brackets, because that name is what support and the contract's NatSpec are indexed by.

Formatting only: nothing here touches the chain, so it works on data from any source (an
eth_call, a receipt trace, a log line pasted into a ticket).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector, is_address, to_checksum_address

from treasury.amounts import Token, TokenBook, format_units
from treasury.chain.guard_abi import guard_errors
from treasury.decode.calls import KNOWN_FUNCTIONS
from treasury.errors import InvalidInput
from treasury.safe_codes import SAFE_CODES

ERROR_STRING = function_signature_to_4byte_selector("Error(string)")  # 0x08c379a0
PANIC = function_signature_to_4byte_selector("Panic(uint256)")  # 0x4e487b71
# Revert data longer than this is cut in the sentence: a selector and two words identify it.
RAW_SHOWN = 68
MESSAGE_SHOWN = 200
WORD = 32  # bytes in an ABI word

# Solidity's Panic(uint256) codes.
PANIC_CODES: dict[int, str] = {
    0x00: "generic compiler panic",
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "corrupt storage byte array",
    0x31: "pop from an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialised function pointer",
}

# Functions a treasury's allowlist is usually about: the decoder's list, and a few more that only
# matter when naming a refused call; anything else is shown by its selector. ERC-721
# approve/transferFrom share ERC-20's selectors, so one name covers both.
WELL_KNOWN_FUNCTIONS = (
    *KNOWN_FUNCTIONS,
    "safeTransferFrom(address,address,uint256,bytes)",
    "increaseAllowance(address,uint256)",
    "decreaseAllowance(address,uint256)",
    "approve(address,address,uint160,uint48)",  # Permit2
    "checkTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes,address)",
    "checkAfterExecution(bytes32,bool)",
    "schedule(address,uint256,bytes,uint8,bytes)",
    "cancel(uint256,bytes)",
    "cancelAsGuardian(uint256)",
    "setArgumentRules(address,bytes4,uint256[])",
    "setNft(address,bool)",
    "setTier(address,uint256,uint256)",
    "setCancelThreshold(uint256)",
    "setGuardian(address,bool)",
    "approveMessage(bytes32)",
    "revokeMessage(bytes32)",
    "setTypedDataAllowed(bytes32,bytes32,bool)",
    "setApprovalForAll(address,bool)",
    "safeTransferFrom(address,address,uint256,uint256,bytes)",
    "safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)",
    "deposit()",
    "withdraw(uint256)",
    "approveHash(bytes32)",
)
KNOWN_SELECTORS: dict[bytes, str] = {function_signature_to_4byte_selector(s): s for s in WELL_KNOWN_FUNCTIONS}


# --- entry points -------------------------------------------------------------------------------


def explain_revert(revert_data: str | bytes | None, book: TokenBook | None = None) -> str:
    """One line saying why a call reverted, from its raw revert data.

    Never raises on bad input: data that does not decode as what its selector promises (cut
    short, dirty padding) is shown raw, since a wrong explanation is worse than none.
    """
    raw = _as_bytes(revert_data)
    if raw is None:
        return f"reverted with data that is not hex: {_clip(str(revert_data), MESSAGE_SHOWN)}"
    if not raw:
        return "reverted without a reason"
    selector, body = raw[:4], raw[4:]
    explained = None
    if selector == ERROR_STRING:
        explained = _explain_error_string(body)
    elif selector == PANIC:
        explained = _explain_panic(body)
    elif selector in guard_errors():
        explained = _explain_guard_data(selector, body, book)
    return explained or _raw_sentence(raw)


def explain_guard_error(name: str, fields: Mapping[str, Any], book: TokenBook | None = None) -> str:
    """The sentence for a decoded TreasuryGuard error, ending with `[name]` for support.

    `fields` maps the error's ABI input names to values as eth_abi or ape decode them (addresses
    as hex strings, bytes4/bytes32 as bytes or 0x strings). Without a book only the native
    currency has a symbol; other tokens are shown in base units of their address.
    """
    book = book or TokenBook.of()
    fixed = GUARD_FIXED.get(name)
    if fixed is not None:
        return f"{fixed} [{name}]"
    worded = GUARD_WORDED.get(name)
    try:
        sentence = worded(fields, book) if worded else None
    except (KeyError, TypeError, ValueError):
        sentence = None  # fields not shaped as the guard's ABI says: show them as they are
    return f"{sentence or _generic(name, fields)} [{name}]"


# --- guard errors ---------------------------------------------------------------------------------

# Errors without fields: the sentence is all there is to say.
GUARD_FIXED: dict[str, str] = {
    "CheckInProgress": "a guard check is already running: a Safe transaction and a module transaction cannot nest",
    "NoCheckInProgress": "the guard's after-execution hook ran without a matching check",
    "RefundsNotAllowed": "gas refunds are not allowed (the caps cannot see them): set gasPrice to 0",
    "InvalidMultiSend": "the batch is not a canonical multiSend(bytes) delegatecall with value 0",
    "EmptyBatch": "the batch has no transactions",
    "SafeConfigChanged": "the Safe's owners, threshold, modules, guard or fallback handler changed in a "
                         "transaction that was not a scheduled configuration change",
    "SnapshotFailed": "the guard could not read the Safe's configuration: the Safe did not answer as a Safe does",
    "InvalidAddress": "invalid guard setup: the Safe or the MultiSendCallOnly is the zero address, or they are the same",
}


def _exceeds_budget(fields: Mapping[str, Any], book: TokenBook) -> str:
    token = _address(fields["token"])
    requested = _amount(book, token, fields["total"])
    return f"cap exceeded: {requested} requested, {_bare_amount(book, token, fields['left'])} left"


def _exceeds_per_tx_limit(fields: Mapping[str, Any], book: TokenBook) -> str:
    token = _address(fields["token"])
    requested, limit = _amount(book, token, fields["total"]), _amount(book, token, fields["limit"])
    return f"per-transaction limit exceeded: {requested} requested, limit {limit}"


def _cap_not_set(fields: Mapping[str, Any], book: TokenBook) -> str:
    token = _address(fields["token"])
    known = _token(book, token)
    label = known.symbol if known else f"token {token}"
    return f"{label} has no spending cap, so it cannot be spent"


def _recipient_not_allowed(fields: Mapping[str, Any], book: TokenBook) -> str:
    return f"recipient {_address(fields['recipient'])} is not on the allowlist"


def _call_not_allowed(fields: Mapping[str, Any], book: TokenBook) -> str:
    target = _target(book, _address(fields["target"]))
    return f"call not allowed: {_function(fields['selector'])} on {target} is not on the allowlist"


def _malformed_calldata(fields: Mapping[str, Any], book: TokenBook) -> str:
    return (f"malformed calldata to {_target(book, _address(fields['to']))}: 1 to 3 bytes, a token call that is "
            "not exactly its ABI encoding (length, dirty address or bool, offsets, padding, ids and amounts of "
            "different lengths), or too short for an argument rule")


def _guard_call_not_allowed(fields: Mapping[str, Any], book: TokenBook) -> str:
    selector = bytes(fields["selector"]) if isinstance(fields["selector"], (bytes, bytearray)) else None
    what = "calldata without a selector" if selector == bytes(4) else _function(fields["selector"])
    return (f"a Safe transaction may call only the guard's settings, without value: not {what} "
            "(hooks, schedule, cancel and views never)")


def _argument_not_allowed(fields: Mapping[str, Any], book: TokenBook) -> str:
    target = _target(book, _address(fields["target"]))
    return (f"argument word {int(fields['index'])} of {_function(fields['selector'])} on {target} breaks its rule "
            "(not an allowlisted recipient, or above its bound)")


def _approval_outstanding(fields: Mapping[str, Any], book: TokenBook) -> str:
    token, spender = _address(fields["token"]), _address(fields["spender"])
    outstanding = int(fields["outstanding"])
    left = "an unknown amount (the allowance could not be read)" if outstanding == 2**256 - 1 else \
        _amount(book, token, outstanding)
    return (f"the Safe still allows {spender} to spend {left}: a new approval is refused while an older one is "
            "unspent; revoke it first (approve to 0)")


def _not_enough_signatures(fields: Mapping[str, Any], book: TokenBook) -> str:
    return (f"this transaction is above a tier: it needs {int(fields['required'])} valid owner signatures "
            "(a module transaction above a tier is always refused)")


def _not_guardian(fields: Mapping[str, Any], book: TokenBook) -> str:
    return f"{_address(fields['caller'])} is not a guardian of this guard"


def _already_cancelled_by(fields: Mapping[str, Any], book: TokenBook) -> str:
    return (f"{_address(fields['canceller'])} already cancelled this intent since it last ran: each owner and "
            "guardian cancels an intent once until it executes; other owners (or guardians) can still cancel")


def _reschedule_too_early(fields: Mapping[str, Any], book: TokenBook) -> str:
    return (f"intent {_hex(fields['intentId'])} was cancelled: it can be scheduled again from "
            f"{_utc(fields['notBefore'])}")


def _invalid_cancel_threshold(fields: Mapping[str, Any], book: TokenBook) -> str:
    return f"cancel threshold {int(fields['threshold'])} is invalid: it must be at least 1"


def _invalid_tier(fields: Mapping[str, Any], book: TokenBook) -> str:
    return f"a tier of {int(fields['signers'])} signers is invalid: at most 255"


def _invalid_argument_rule(fields: Mapping[str, Any], book: TokenBook) -> str:
    return f"argument rule 0x{int(fields['rule']):064x} has an unknown kind (1 recipient, 2 max)"


def _delegatecall_not_allowed(fields: Mapping[str, Any], book: TokenBook) -> str:
    return (f"delegatecall to {_address(fields['to'])} is not allowed: only the guard's MultiSendCallOnly "
            "may be delegatecalled")


def _invalid_operation(fields: Mapping[str, Any], book: TokenBook) -> str:
    return f"operation {int(fields['operation'])} is neither a call (0) nor a delegatecall (1)"


def _invalid_batch_entry(fields: Mapping[str, Any], book: TokenBook) -> str:
    return (f"batch entry at byte {int(fields['offset'])} is cut short, is not a plain call, "
            "or is sent to the zero address")


def _not_scheduled(fields: Mapping[str, Any], book: TokenBook) -> str:
    return f"needs the time-lock delay: schedule intent {_hex(fields['intentId'])} first"


def _not_yet_due(fields: Mapping[str, Any], book: TokenBook) -> str:
    return f"scheduled entry {int(fields['entryId'])} is not due yet: it can run from {_utc(fields['eta'])}"


def _entry_expired(fields: Mapping[str, Any], book: TokenBook) -> str:
    return (f"scheduled entry {int(fields['entryId'])} expired at {_utc(fields['expiry'])}: "
            "schedule the transaction again")


def _already_scheduled(fields: Mapping[str, Any], book: TokenBook) -> str:
    return f"this intent is already scheduled as entry {int(fields['entryId'])}: wait for it or cancel it"


def _entry_not_pending(fields: Mapping[str, Any], book: TokenBook) -> str:
    return f"entry {int(fields['entryId'])} is not pending: it is unknown, already executed or cancelled"


def _not_safe(fields: Mapping[str, Any], book: TokenBook) -> str:
    return f"only the Safe may call the guard here, not {_address(fields['caller'])}"


def _invalid_period(fields: Mapping[str, Any], book: TokenBook) -> str:
    return f"cap period of {_duration(fields['period'])} is outside the allowed 1 minute to 365 days"


def _amount_too_large(fields: Mapping[str, Any], book: TokenBook) -> str:
    return f"amount {int(fields['amount'])} (base units) is above the guard's maximum of 2**104 - 1"


def _invalid_delay(fields: Mapping[str, Any], book: TokenBook) -> str:
    return f"delay of {_duration(fields['delay'])} is outside the allowed 1 hour to 30 days"


def _invalid_window(fields: Mapping[str, Any], book: TokenBook) -> str:
    return f"execution window of {_duration(fields['window'])} is outside the allowed 1 hour to 30 days"


GUARD_WORDED: dict[str, Callable[[Mapping[str, Any], TokenBook], str]] = {
    "ExceedsBudget": _exceeds_budget,
    "ExceedsPerTxLimit": _exceeds_per_tx_limit,
    "CapNotSet": _cap_not_set,
    "RecipientNotAllowed": _recipient_not_allowed,
    "CallNotAllowed": _call_not_allowed,
    "MalformedCalldata": _malformed_calldata,
    "DelegateCallNotAllowed": _delegatecall_not_allowed,
    "InvalidOperation": _invalid_operation,
    "InvalidBatchEntry": _invalid_batch_entry,
    "NotScheduled": _not_scheduled,
    "NotYetDue": _not_yet_due,
    "EntryExpired": _entry_expired,
    "AlreadyScheduled": _already_scheduled,
    "EntryNotPending": _entry_not_pending,
    "NotSafe": _not_safe,
    "InvalidPeriod": _invalid_period,
    "AmountTooLarge": _amount_too_large,
    "InvalidDelay": _invalid_delay,
    "InvalidWindow": _invalid_window,
    "GuardCallNotAllowed": _guard_call_not_allowed,
    "ArgumentNotAllowed": _argument_not_allowed,
    "ApprovalOutstanding": _approval_outstanding,
    "NotEnoughSignatures": _not_enough_signatures,
    "NotGuardian": _not_guardian,
    "AlreadyCancelledBy": _already_cancelled_by,
    "RescheduleTooEarly": _reschedule_too_early,
    "InvalidCancelThreshold": _invalid_cancel_threshold,
    "InvalidTier": _invalid_tier,
    "InvalidArgumentRule": _invalid_argument_rule,
}


def _generic(name: str, fields: Mapping[str, Any]) -> str:
    """For an error this module has no sentence for (a newer guard): at least show its fields."""
    shown = ", ".join(f"{key}={_hex(value) if isinstance(value, (bytes, str)) else value}"
                      for key, value in fields.items())
    return f"the guard refused: {name}({shown})"


# --- decoding -----------------------------------------------------------------------------------


def _as_bytes(revert_data: str | bytes | None) -> bytes | None:
    """Revert data as bytes (b"" for nothing), or None if a string is not hex."""
    if revert_data is None:
        return b""
    if isinstance(revert_data, (bytes, bytearray, memoryview)):
        return bytes(revert_data)
    text = str(revert_data).strip()
    if text[:2].lower() == "0x":
        text = text[2:]
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def _explain_error_string(body: bytes) -> str | None:
    """Error(string): the Safe's GSxxx codes get their meaning, any other message is quoted."""
    message = _decode_string(body)
    if message is None:
        return None
    if message in SAFE_CODES:
        return f"{message}: {SAFE_CODES[message]}"
    if not message:
        return "reverted without a reason"
    return f'reverted: "{_clip(_printable(message), MESSAGE_SHOWN)}"'


def _explain_panic(body: bytes) -> str | None:
    """Panic(uint256): a compiler-inserted check failed; name the common ones."""
    if len(body) != WORD:
        return None
    code = int.from_bytes(body, "big")
    return f"{PANIC_CODES.get(code, 'panic')} (Panic 0x{code:02x})"


def _explain_guard_data(selector: bytes, body: bytes, book: TokenBook | None) -> str | None:
    """A TreasuryGuard custom error, decoded strictly with the shipped ABI."""
    name, names, types = guard_errors()[selector]
    # Every guard error has static fields only: exactly one word each. The length is checked here
    # because ape pads short uint words instead of letting eth_abi refuse them.
    if len(body) != WORD * len(types):
        return None
    try:
        values = abi_decode(types, body)
    except DecodingError:
        return None
    return explain_guard_error(name, dict(zip(names, values, strict=True)), book)


def _decode_string(body: bytes) -> str | None:
    """The ABI-encoded string argument of Error(string), or None if the data is cut or malformed.

    Decoded by hand rather than with eth_abi: under ape, eth_abi pads a short uint word instead
    of refusing it, which would turn a truncated revert into a made-up message.
    """
    if len(body) < 2 * WORD or int.from_bytes(body[:WORD], "big") != WORD:
        return None
    length = int.from_bytes(body[WORD:2 * WORD], "big")
    if len(body) < 2 * WORD + length:
        return None
    try:
        return body[2 * WORD:2 * WORD + length].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _raw_sentence(raw: bytes) -> str:
    if len(raw) <= RAW_SHOWN:
        return f"reverted with data 0x{raw.hex()}"
    return f"reverted with data 0x{raw[:RAW_SHOWN].hex()}… ({len(raw)} bytes)"


# --- formatting helpers ---------------------------------------------------------------------------


def _address(value: Any) -> str:
    """A checksummed address from eth_abi's lowercase hex, 20 raw bytes or an ape value."""
    if isinstance(value, (bytes, bytearray)) and len(value) == 20:
        value = "0x" + bytes(value).hex()
    text = str(getattr(value, "address", value))
    return to_checksum_address(text) if is_address(text) else text


def _hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text.lower() if text[:2].lower() == "0x" else text


def _token(book: TokenBook, address: str) -> Token | None:
    try:
        return book.by_address(address)
    except InvalidInput:
        return None


def _amount(book: TokenBook, token: str, amount: Any) -> str:
    """'12,000 USDC', or the book's wording for a token it does not know."""
    if _token(book, token) is None and not is_address(token):
        return f"{int(amount)} base units of {token}"
    return book.format(token, int(amount))


def _bare_amount(book: TokenBook, token: str, amount: Any) -> str:
    """An amount of a token already named in the sentence: '10,000', or '10000000000 base units'."""
    known = _token(book, token)
    if known is None:
        return f"{int(amount)} base units"
    return format_units(int(amount), known.decimals)


def _target(book: TokenBook, address: str) -> str:
    """A call target by its token symbol if the book has it (the native 'token' is no contract)."""
    known = _token(book, address)
    return known.symbol if known and not known.is_native else address


def _function(selector: Any) -> str:
    raw = bytes(selector) if isinstance(selector, (bytes, bytearray)) else bytes.fromhex(_hex(selector)[2:])
    return KNOWN_SELECTORS.get(raw, f"function 0x{raw.hex()}")


def _utc(timestamp: Any) -> str:
    """A block timestamp as a UTC date-time: teams across time zones read the same instant."""
    try:
        return datetime.fromtimestamp(int(timestamp), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"timestamp {int(timestamp)}"


def _duration(seconds: Any) -> str:
    """Seconds in the largest unit that divides them exactly: '2 days', '90 seconds'."""
    seconds = int(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


def _printable(text: str) -> str:
    """Keep a revert message on one line: control characters are shown escaped."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
