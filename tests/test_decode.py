"""The decoded view: what moves where in token units, every call named, delegatecalls flagged, hashes."""

import pytest
from eth_account.messages import encode_typed_data
from guard_helpers import multisend_calldata, packed_entry
from safe_eth.safe.multi_send import MultiSend

from treasury.amounts import TokenBook
from treasury.chain.guard import deploy_guard, predict_verdict
from treasury.decode.calls import decode_safe_tx, hashes
from treasury.policy.engine import GuardState, evaluate
from treasury.policy.model import Policy
from treasury.proposal import build
from treasury.proposal.multisend import MalformedBatch, decode_batch, encode_batch, iter_batch, multisend_call_only
from treasury.proposal.safe_tx import build_safe_tx

SAFE = "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
BOB = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
BOOK = TokenBook.of({"USDC": {"address": USDC, "decimals": 6}})


def decoded(intent, nonce=7, chain_id=1):
    tx = build_safe_tx(SAFE, intent.to, intent.value, intent.data, intent.operation, nonce=nonce, chain_id=chain_id, version="1.4.1")
    return tx, decode_safe_tx(tx, BOOK)


def test_erc20_transfer_in_token_units():
    _, view = decoded(build.token_transfer(SAFE, BOOK, ALICE, "250,000.5 USDC"))
    (call,) = view.calls
    assert call.function == "transfer" and call.arguments == (ALICE, "250,000.5 USDC")
    assert view.warnings == ()


def test_batch_is_unwrapped_and_flagged():
    intent = build.batch([build.token_transfer(SAFE, BOOK, ALICE, "10 USDC"), build.native_transfer(SAFE, BOOK, BOB, "1.5 ETH")], "1.4.1")
    _, view = decoded(intent)
    assert view.is_batch
    assert [c.description for c in view.calls] == [f"transfer({ALICE}, 10 USDC) on USDC", f"send 1.5 ETH to {BOB}"]
    assert view.warnings[0].startswith("batch of 2 calls through 0x9641d764fc13c8B624c04430C7356C1C7C8102e2")


def test_a_delegatecall_stands_out():
    intent = build.Intent("0x000000000000000000000000000000000000dEaD", 0, b"\x12\x34\x56\x78", 1)
    _, view = decoded(intent)
    assert any(w.startswith("DELEGATECALL to 0x000000000000000000000000000000000000dEaD") for w in view.warnings)


def test_safe_administration_is_named():
    owners = [ALICE, BOB]
    _, view = decoded(build.remove_owner(SAFE, owners, BOB, 1))
    call = view.calls[0]
    assert call.function == "removeOwner" and call.arguments == (ALICE, BOB, "1")
    assert "Safe administration: removeOwner" in view.warnings
    assert "call to the Safe itself: changes its configuration" in view.warnings


def test_rejection_is_a_no_op():
    _, view = decoded(build.rejection(SAFE))
    assert view.calls[0].to == SAFE and "no-op (rejection)" in view.warnings


def test_unknown_calldata_is_shown_raw():
    _, view = decoded(build.contract_call(BOB, "doSomething(uint256)", [5]))
    assert view.calls[0].function is None and "is not one we can decode" in view.warnings[0]


def test_hashes_are_what_a_hardware_wallet_shows():
    tx, view = decoded(build.token_transfer(SAFE, BOOK, ALICE, "1 USDC"), nonce=3, chain_id=137)
    signable = encode_typed_data(full_message=tx.eip712_structured_data)
    assert view.domain_hash == "0x" + bytes(signable.header).hex()
    assert view.message_hash == "0x" + bytes(signable.body).hex()
    assert view.safe_tx_hash == tx.safe_tx_hash.to_0x_hex()
    assert hashes(tx)[2] != decoded(build.token_transfer(SAFE, BOOK, ALICE, "1 USDC"), nonce=4, chain_id=137)[1].safe_tx_hash


def test_refunds_are_flagged():
    tx = build_safe_tx(SAFE, ALICE, 1, b"", 0, nonce=1, chain_id=1, version="1.4.1", gas_price=10, safe_tx_gas=50000)
    assert any(w.startswith("refund: gasPrice 10") for w in decode_safe_tx(tx, BOOK).warnings)


def test_nft_and_ape_method_calls_encode_correctly(project, accounts):
    token = accounts[0].deploy(project.TestToken, "T", "T", 0)
    intent = build.method_call(token.mint, ALICE, 5)
    assert intent.to == token.address and intent.data == bytes(token.mint.encode_input(ALICE, 5))
    nft = build.nft_transfer(SAFE, BOB, ALICE, 42)
    _, view = decoded(nft)
    assert view.calls[0].function == "safeTransferFrom" and view.calls[0].arguments == (SAFE, ALICE, "42")


# --- batches: one strict decoder for the signer, the policy engine and the guard -------------------

MULTISEND = multisend_call_only("1.4.1")
GUARD = "0x6000000000000000000000000000000000000006"
NATIVE_CAP = {"token": "0x0000000000000000000000000000000000000000", "amount": 10**18, "period": 3600}
POLICY = Policy(recipients=[ALICE, BOB], caps=[NATIVE_CAP], delay=3600, window=7200)
GOOD = packed_entry(ALICE, 5) + packed_entry(BOB, 7)


def nested_batch() -> bytes:
    """A batch whose one entry calls MultiSendCallOnly.multiSend itself, as a plain call, with a batch inside."""
    return multisend_calldata(packed_entry(MULTISEND, 0, multisend_calldata(packed_entry(ALICE, 5))))


# (calldata of the Safe's delegatecall to MultiSendCallOnly, the guard's error for it)
MALFORMED = {
    "trailing garbage": (multisend_calldata(GOOD, padding=bytes(-len(GOOD) % 32) + b"\xff" * 32), "InvalidMultiSend"),
    "dirty padding": (multisend_calldata(GOOD, padding=bytes(-len(GOOD) % 32 - 1) + b"\x01"), "InvalidMultiSend"),
    "a whole zero word of padding": (multisend_calldata(GOOD, padding=bytes(-len(GOOD) % 32 + 32)), "InvalidMultiSend"),
    "declared length cutting the last entry": (multisend_calldata(GOOD, length=len(GOOD) - 10, padding=b""), "InvalidBatchEntry"),
    "declared length past the end": (multisend_calldata(GOOD, length=len(GOOD) + 1, padding=b""), "InvalidMultiSend"),
    "declared length into the padding": (multisend_calldata(GOOD, length=len(GOOD) + 1), "InvalidBatchEntry"),
    "declared length overflowing": (multisend_calldata(GOOD, length=2**256 - 1), "InvalidMultiSend"),
    "truncated entry": (multisend_calldata(GOOD[:-1]), "InvalidBatchEntry"),
    "entry data length past the end": (multisend_calldata(packed_entry(ALICE, 5, b"\xaa" * 4, data_length=5)), "InvalidBatchEntry"),
    "entry data length overflowing": (multisend_calldata(packed_entry(ALICE, 5, b"", data_length=2**256 - 1)), "InvalidBatchEntry"),
    "inner delegatecall": (multisend_calldata(packed_entry(ALICE, 0, b"", operation=1)), "InvalidBatchEntry"),
    "operation 2": (multisend_calldata(packed_entry(ALICE, 5, operation=2)), "InvalidBatchEntry"),
    "call to address 0": (multisend_calldata(packed_entry("0x" + "00" * 20, 5)), "InvalidBatchEntry"),
    "no entries": (multisend_calldata(b""), "EmptyBatch"),
    "offset not 32": (multisend_calldata(GOOD, offset=0x40), "InvalidMultiSend"),
}


def guard_state() -> GuardState:
    return GuardState(now=1_000_000, budget_left={NATIVE_CAP["token"]: 10**18}, pending={}, allow_refunds=False,
                      safe=SAFE, guard=GUARD, multisend_call_only=MULTISEND)


def test_a_batch_decodes_back_to_its_calls():
    intents = [build.token_transfer(SAFE, BOOK, ALICE, "10 USDC"), build.native_transfer(SAFE, BOOK, BOB, "1.5 ETH")]
    target, data = encode_batch([i.as_call() for i in intents], "1.4.1")
    entries = decode_batch(data)
    assert target == MULTISEND
    assert [(e.operation, e.to, e.value, e.data) for e in entries] == [(0, i.to, i.value, i.data) for i in intents]
    # safe-eth-py, an independent implementation, reads the same calls out of our encoding.
    theirs = MultiSend.from_transaction_data(data)
    assert [(t.operation.value, t.to, t.value, bytes(t.data)) for t in theirs] == [(0, i.to, i.value, i.data) for i in intents]


@pytest.mark.parametrize("case", MALFORMED)
def test_the_decoder_and_the_engine_refuse_a_malformed_batch_alike(case):
    data, error = MALFORMED[case]
    with pytest.raises(MalformedBatch) as refused:
        decode_batch(data)
    assert refused.value.error == error and "\n" not in str(refused.value)
    assert evaluate(POLICY, guard_state(), MULTISEND, 0, data, 1).error == error
    tx = build_safe_tx(SAFE, MULTISEND, 0, data, 1, nonce=1, chain_id=1, version="1.4.1")
    view = decode_safe_tx(tx, BOOK)
    assert len(view.calls) == 1 and view.calls[0].to == MULTISEND  # shown as one opaque delegatecall, no made-up calls
    assert any(w.startswith("the batch does not decode") and w.endswith(f"[{error}]") for w in view.warnings)
    assert any(w.startswith("DELEGATECALL") for w in view.warnings)


def test_trailing_garbage_was_shown_as_a_clean_batch_by_the_lenient_parser():
    """The regression: safe-eth-py's parser ignores trailing bytes, so a signer saw two clean calls."""
    data, _ = MALFORMED["trailing garbage"]
    assert len(MultiSend.from_transaction_data(data)) == 2
    assert len(decode_safe_tx(build_safe_tx(SAFE, MULTISEND, 0, data, 1, nonce=1, chain_id=1, version="1.4.1"), BOOK).calls) == 1


def test_an_entry_is_checked_only_after_the_ones_before_it():
    """The decoder yields entries one by one, so the engine meets a bad entry where the guard does."""
    stranger = "0x3333333333333333333333333333333333333333"
    first_is_refused = multisend_calldata(packed_entry(stranger, 1) + packed_entry(ALICE, 5, operation=2))
    assert evaluate(POLICY, guard_state(), MULTISEND, 0, first_is_refused, 1).error == "RecipientNotAllowed"
    entries = iter_batch(first_is_refused)
    assert next(entries).to == stranger
    with pytest.raises(MalformedBatch, match="batch entry at byte 85 is not a call"):
        next(entries)


def test_a_nested_multisend_is_one_plain_call_that_is_flagged():
    data = nested_batch()
    (inner,) = decode_batch(data)
    assert inner.to == MULTISEND and inner.operation == 0
    view = decode_safe_tx(build_safe_tx(SAFE, MULTISEND, 0, data, 1, nonce=1, chain_id=1, version="1.4.1"), BOOK)
    assert view.calls[0].function == "multiSend"
    assert f"multiSend as a plain call: the calls inside would run from {MULTISEND}, not from the Safe" in view.warnings
    assert evaluate(POLICY, guard_state(), MULTISEND, 0, data, 1).error == "CallNotAllowed"


def test_a_plain_multisend_may_carry_delegatecalls_but_they_are_flagged():
    """Only MultiSendCallOnly refuses inner delegatecalls; another batch contract is shown as it is."""
    other = "0x38869bf66a61cF6bDB996A6aE40D5853Fd43B526"  # MultiSend 1.4.1 (not call-only)
    data = multisend_calldata(packed_entry(ALICE, 0, b"\x12\x34\x56\x78", operation=1))
    assert decode_batch(data, call_only=False)[0].operation == 1
    view = decode_safe_tx(build_safe_tx(SAFE, other, 0, data, 1, nonce=1, chain_id=1, version="1.4.1"), BOOK)
    assert any(w.startswith(f"DELEGATECALL to {ALICE}") for w in view.warnings)
    assert any(w.startswith(f"DELEGATECALL to {other}") for w in view.warnings)


@pytest.fixture(scope="module")
def policed_guard(make_safe, owners, safe_deployer):
    """A real TreasuryGuard for a 1.4.1 Safe, allowing native payments to ALICE and BOB."""
    created = make_safe(owners, 2, version="1.4.1", salt_nonce=7301)
    return deploy_guard(created.address, "1.4.1", POLICY, safe_deployer)


UNWRAPPED = {"well-formed": (multisend_calldata(GOOD), ""), "nested multiSend": (nested_batch(), "CallNotAllowed")}


@pytest.mark.parametrize("case", [*MALFORMED, *UNWRAPPED])
def test_the_guard_refuses_exactly_what_the_decoder_refuses(policed_guard, case):
    """The guard itself (an eth_call of checkTransaction from the Safe) on every case above."""
    data, error = {**MALFORMED, **UNWRAPPED}[case]
    assert predict_verdict(policed_guard, MULTISEND, 0, data, 1).error == error
    if case in UNWRAPPED:
        assert len(decode_batch(data)) >= 1  # the guard unwraps it: so does the decoder
    else:
        with pytest.raises(MalformedBatch):
            decode_batch(data)
