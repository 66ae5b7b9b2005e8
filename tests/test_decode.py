"""The decoded view: what moves where in token units, every call named, delegatecalls flagged, hashes."""

from eth_account.messages import encode_typed_data

from treasury.proposal import build
from treasury.amounts import TokenBook
from treasury.decode.calls import decode_safe_tx, hashes
from treasury.signatures.sign import build_safe_tx

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
