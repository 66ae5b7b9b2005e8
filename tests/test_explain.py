"""explain_revert: guard errors, Safe codes, panics and raw data in one readable line each."""

import json

import pytest
from builders import sign_by, tusd_policy
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from treasury.amounts import TokenBook
from treasury.chain.guard import GUARD_ARTIFACT
from treasury.decode.revert import explain_guard_error, explain_revert

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
UNKNOWN_TOKEN = "0x1111111111111111111111111111111111111111"
VENDOR = "0x2222222222222222222222222222222222222222"
ZERO = "0x0000000000000000000000000000000000000000"
INTENT = bytes.fromhex("ab" * 32)
BOOK = TokenBook.of({"USDC": {"address": USDC, "decimals": 6}})


def _guard_abi_errors():
    """The guard's errors straight from the shipped ABI, independently of treasury.guard's table."""
    abi = json.loads(GUARD_ARTIFACT.read_text())["abi"]
    return {item["name"]: [i["type"] for i in item["inputs"]] for item in abi if item["type"] == "error"}


def guard_error(name, *args):
    """Revert data exactly as the guard produces it: selector of Name(types) + ABI-encoded args."""
    types = _guard_abi_errors()[name]
    return function_signature_to_4byte_selector(f"{name}({','.join(types)})") + encode(types, list(args))


def error_string(message):
    return function_signature_to_4byte_selector("Error(string)") + encode(["string"], [message])


def panic(code):
    return function_signature_to_4byte_selector("Panic(uint256)") + encode(["uint256"], [code])


# --- guard errors ---------------------------------------------------------------------------------


def test_the_issue_example_exactly():
    data = guard_error("ExceedsBudget", USDC, 12_000 * 10**6, 10_000 * 10**6)
    assert explain_revert(data, BOOK) == "cap exceeded: 12,000 USDC requested, 10,000 left [ExceedsBudget]"
    assert explain_revert("0x" + data.hex(), BOOK) == explain_revert(data, BOOK)


@pytest.mark.parametrize(("name", "args", "expected"), [
    ("ExceedsBudget", (USDC, 1_234_500_000, 0),
     "cap exceeded: 1,234.5 USDC requested, 0 left"),
    ("ExceedsBudget", (ZERO, 3 * 10**18, 5 * 10**17),
     "cap exceeded: 3 ETH requested, 0.5 left"),
    ("ExceedsPerTxLimit", (USDC, 9_000 * 10**6, 8_000 * 10**6),
     "per-transaction limit exceeded: 9,000 USDC requested, limit 8,000 USDC"),
    ("CapNotSet", (USDC,), "USDC has no spending cap, so it cannot be spent"),
    ("CapNotSet", (ZERO,), "ETH has no spending cap, so it cannot be spent"),
    ("RecipientNotAllowed", (VENDOR,), f"recipient {VENDOR} is not on the allowlist"),
    ("CallNotAllowed", (USDC, bytes.fromhex("a9059cbb")),
     "call not allowed: transfer(address,uint256) on USDC is not on the allowlist"),
    ("CallNotAllowed", (USDC, bytes.fromhex("095ea7b3")),
     "call not allowed: approve(address,uint256) on USDC is not on the allowlist"),
    ("CallNotAllowed", (UNKNOWN_TOKEN, bytes.fromhex("42842e0e")),
     f"call not allowed: safeTransferFrom(address,address,uint256) on {UNKNOWN_TOKEN} is not on the allowlist"),
    ("CallNotAllowed", (VENDOR, bytes.fromhex("deadbeef")),
     f"call not allowed: function 0xdeadbeef on {VENDOR} is not on the allowlist"),
    ("MalformedCalldata", (USDC,),
     ("malformed calldata to USDC: 1 to 3 bytes, a token call that is not exactly its ABI encoding (length, dirty "
      "address or bool, offsets, padding, ids and amounts of different lengths), or too short for an argument rule")),
    ("DelegateCallNotAllowed", (VENDOR,),
     f"delegatecall to {VENDOR} is not allowed: only the guard's MultiSendCallOnly may be delegatecalled"),
    ("InvalidOperation", (2,), "operation 2 is neither a call (0) nor a delegatecall (1)"),
    ("InvalidMultiSend", (), "the batch is not a canonical multiSend(bytes) delegatecall with value 0"),
    ("EmptyBatch", (), "the batch has no transactions"),
    ("InvalidBatchEntry", (85,),
     "batch entry at byte 85 is cut short, is not a plain call, or is sent to the zero address"),
    ("RefundsNotAllowed", (), "gas refunds are not allowed (the caps cannot see them): set gasPrice to 0"),
    ("NotScheduled", (INTENT,), f"needs the time-lock delay: schedule intent 0x{'ab' * 32} first"),
    ("NotYetDue", (3, 1_700_000_000),
     "scheduled entry 3 is not due yet: it can run from 2023-11-14 22:13:20 UTC"),
    ("EntryExpired", (4, 1_704_067_200),
     "scheduled entry 4 expired at 2024-01-01 00:00:00 UTC: schedule the transaction again"),
    ("AlreadyScheduled", (5,), "this intent is already scheduled as entry 5: wait for it or cancel it"),
    ("EntryNotPending", (6,), "entry 6 is not pending: it is unknown, already executed or cancelled"),
    ("SafeConfigChanged", (),
     ("the Safe's owners, threshold, modules, guard or fallback handler changed in a transaction that was not "
      "a scheduled configuration change")),
    ("SnapshotFailed", (), "the guard could not read the Safe's configuration: the Safe did not answer as a Safe does"),
    ("NotSafe", (VENDOR,), f"only the Safe may call the guard here, not {VENDOR}"),
    ("CheckInProgress", (),
     "a guard check is already running: a Safe transaction and a module transaction cannot nest"),
    ("NoCheckInProgress", (), "the guard's after-execution hook ran without a matching check"),
    ("InvalidAddress", (),
     "invalid guard setup: the Safe or the MultiSendCallOnly is the zero address, or they are the same"),
    ("InvalidPeriod", (30,), "cap period of 30 seconds is outside the allowed 1 minute to 365 days"),
    ("AmountTooLarge", (2**104,), f"amount {2**104} (base units) is above the guard's maximum of 2**104 - 1"),
    ("InvalidDelay", (600,), "delay of 10 minutes is outside the allowed 1 hour to 30 days"),
    ("InvalidWindow", (31 * 86400,), "execution window of 31 days is outside the allowed 1 hour to 30 days"),
])
def test_guard_error_sentences(name, args, expected):
    assert explain_revert(guard_error(name, *args), BOOK) == f"{expected} [{name}]"


def test_every_guard_error_has_its_own_sentence():
    samples = {"address": VENDOR, "uint256": 7, "uint8": 2, "bytes4": b"\x12\x34\x56\x78", "bytes32": INTENT}
    for name, types in _guard_abi_errors().items():
        sentence = explain_revert(guard_error(name, *[samples[t] for t in types]), BOOK)
        assert sentence.endswith(f" [{name}]"), sentence
        assert "the guard refused" not in sentence and "reverted with data" not in sentence, sentence


def test_unknown_token_falls_back_to_base_units_of_the_address():
    data = guard_error("ExceedsBudget", UNKNOWN_TOKEN, 12_000_000_000, 10_000_000_000)
    assert explain_revert(data, BOOK) == (
        f"cap exceeded: 12000000000 base units of {UNKNOWN_TOKEN} requested, 10000000000 base units left [ExceedsBudget]")
    limit = guard_error("ExceedsPerTxLimit", UNKNOWN_TOKEN, 9, 8)
    assert explain_revert(limit, BOOK) == (f"per-transaction limit exceeded: 9 base units of {UNKNOWN_TOKEN} requested, "
                                           f"limit 8 base units of {UNKNOWN_TOKEN} [ExceedsPerTxLimit]")
    assert explain_revert(guard_error("CapNotSet", UNKNOWN_TOKEN), BOOK) == (
        f"token {UNKNOWN_TOKEN} has no spending cap, so it cannot be spent [CapNotSet]")


def test_without_a_book_only_the_native_currency_has_a_symbol():
    assert explain_revert(guard_error("ExceedsBudget", ZERO, 2 * 10**18, 10**18)) == (
        "cap exceeded: 2 ETH requested, 1 left [ExceedsBudget]")
    assert explain_revert(guard_error("ExceedsBudget", USDC, 5, 4)) == (
        f"cap exceeded: 5 base units of {USDC} requested, 4 base units left [ExceedsBudget]")


def test_explain_guard_error_takes_already_decoded_fields():
    # eth_abi decodes addresses as lowercase hex; ape may hand over checksummed ones and 0x strings
    assert explain_guard_error("ExceedsBudget", {"token": USDC.lower(), "total": 12_000 * 10**6, "left": 10**10}, BOOK) == (
        "cap exceeded: 12,000 USDC requested, 10,000 left [ExceedsBudget]")
    assert explain_guard_error("CallNotAllowed", {"target": USDC, "selector": "0x23b872dd"}, BOOK) == (
        "call not allowed: transferFrom(address,address,uint256) on USDC is not on the allowlist [CallNotAllowed]")
    assert explain_guard_error("NotScheduled", {"intentId": "0x" + "CD" * 32}) == (
        f"needs the time-lock delay: schedule intent 0x{'cd' * 32} first [NotScheduled]")


def test_a_guard_error_this_module_does_not_know_still_shows_its_fields():
    assert explain_guard_error("NewError", {"who": VENDOR, "n": 3}) == (
        f"the guard refused: NewError(who={VENDOR.lower()}, n=3) [NewError]")
    # fields that do not match the error's ABI do not raise either
    assert explain_guard_error("ExceedsBudget", {"token": USDC}) == (
        f"the guard refused: ExceedsBudget(token={USDC.lower()}) [ExceedsBudget]")


def test_an_eta_beyond_the_calendar_is_shown_as_a_timestamp():
    assert explain_revert(guard_error("NotYetDue", 1, 2**64 - 1)) == (
        f"scheduled entry 1 is not due yet: it can run from timestamp {2**64 - 1} [NotYetDue]")


# --- the Safe, Solidity and everything else ----------------------------------------------------------


def test_safe_codes_are_explained():
    assert explain_revert(error_string("GS026")) == (
        "GS026: a signature is not from an owner (or is over another hash), or signatures repeat or are not "
        "sorted by owner address")
    assert explain_revert(error_string("GS020")) == (
        "GS020: not enough signatures for the threshold (the signature data is too short)")
    assert explain_revert(error_string("GS031")) == (
        "GS031: only the Safe itself may call this function, through a Safe transaction")


@pytest.mark.parametrize("code", [f"GS{n:03d}" for n in (0, 1, 2, 10, 11, 12, 13, 20, 21, 22, 23, 24, 25, 26, 27, 30, 31,
                                                         100, 101, 102, 103, 104, 200, 201, 202, 203, 204, 205, 300, 301)])
def test_every_safe_code_has_a_meaning(code):
    sentence = explain_revert(error_string(code))
    assert sentence.startswith(f"{code}: ") and len(sentence) > len(code) + 10


def test_other_revert_strings_are_quoted():
    assert explain_revert(error_string("ERC20: transfer amount exceeds balance")) == (
        'reverted: "ERC20: transfer amount exceeds balance"')
    assert explain_revert(error_string("GS999")) == 'reverted: "GS999"'
    assert explain_revert(error_string("")) == "reverted without a reason"
    assert explain_revert(error_string("line one\nline two")) == 'reverted: "line one\\nline two"'
    long = explain_revert(error_string("x" * 1000))
    assert long.endswith('…"') and len(long) < 250


@pytest.mark.parametrize(("code", "expected"), [
    (0x11, "arithmetic overflow or underflow (Panic 0x11)"),
    (0x12, "division or modulo by zero (Panic 0x12)"),
    (0x01, "assertion failed (Panic 0x01)"),
    (0x32, "array index out of bounds (Panic 0x32)"),
    (0x99, "panic (Panic 0x99)"),
])
def test_panics(code, expected):
    assert explain_revert(panic(code)) == expected


@pytest.mark.parametrize("empty", [None, b"", "", "0x"])
def test_no_data_means_no_reason(empty):
    assert explain_revert(empty) == "reverted without a reason"


def test_unknown_selectors_are_shown_raw_and_long_data_is_cut():
    assert explain_revert("0xdeadbeef0001") == "reverted with data 0xdeadbeef0001"
    assert explain_revert(b"\x01\x02") == "reverted with data 0x0102"
    long = bytes.fromhex("cafebabe") + bytes(range(256)) * 4
    sentence = explain_revert(long)
    assert sentence == f"reverted with data 0x{long[:68].hex()}… ({len(long)} bytes)"
    assert explain_revert("not hex at all") == "reverted with data that is not hex: not hex at all"


@pytest.mark.parametrize("data", [
    guard_error("ExceedsBudget", USDC, 1, 2)[:40],  # selector + too few bytes
    guard_error("CallNotAllowed", USDC, b"\xa9\x05\x9c\xbb")[:4],  # selector alone
    error_string("GS026")[:40],  # Error(string) cut inside the length word
    error_string("GS026")[:-32],  # Error(string) without its characters
    panic(0x11)[:20],
    # a dirty address word: not what the guard would ever produce
    guard_error("RecipientNotAllowed", VENDOR)[:4] + b"\xff" * 12 + bytes.fromhex(VENDOR[2:]),
])
def test_truncated_or_malformed_error_data_falls_back_to_the_raw_sentence(data):
    assert explain_revert(data, BOOK) == f"reverted with data 0x{data.hex()}"


# --- end to end on the chain ---------------------------------------------------------------------------


def test_a_real_guard_revert_from_exec_transaction(make_treasury, owners, accounts, chain):
    from web3.exceptions import ContractCustomError, ContractLogicError

    from treasury.chain.safe import safe_instance
    from treasury.signatures import encode_signatures

    vendor = accounts[6]
    # max_per_tx above the cap so that 12,000 TUSD passes the per-transaction limit and hits the budget
    treasury, _ = make_treasury(tusd_policy(vendor.address, max_per_tx=20_000))
    record = sign_by(treasury, treasury.propose_transfer(vendor.address, "12,000 TUSD"), owners)
    tx = treasury.safe_tx(treasury.get(record.id))
    calldata = safe_instance(treasury.safe, treasury.version).execTransaction.encode_input(
        tx.to, tx.value, tx.data, tx.operation, tx.safe_tx_gas, tx.base_gas, tx.gas_price, tx.gas_token,
        tx.refund_receiver, encode_signatures(treasury.collected_signatures(record.id)),
    )
    with pytest.raises((ContractCustomError, ContractLogicError)) as refused:
        chain.provider.web3.eth.call({"from": owners[0].address, "to": treasury.safe, "data": calldata}, "pending")
    data = refused.value.data
    assert isinstance(data, str) and data.startswith("0x")
    assert explain_revert(data, treasury.book) == "cap exceeded: 12,000 TUSD requested, 10,000 left [ExceedsBudget]"
