"""Owner signatures of every kind, verified against the Safe's current owners, executed on anvil.

Safes are the canonical contracts (treasury.chain.infrastructure); owners are ape test accounts. A Safe
owned by another Safe checks its owner's signature through EIP-1271, the owner Safe's
CompatibilityFallbackHandler answering with its own owners' signatures.
"""

import json
from types import SimpleNamespace

import pytest
from builders import ONE_ETH, fund, safe_transfer_tx
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector
from safe_eth.safe.safe_signature import SafeSignatureApprovedHash

from treasury.addresses import SENTINEL_ADDRESS
from treasury.chain.artifacts import SUPPORTED_VERSIONS, safe_contract
from treasury.chain.safe import safe_instance, safe_nonce
from treasury.errors import InvalidInput
from treasury.execution.send import ExecutionReverted, execute_safe_tx, simulate_execution
from treasury.proposal.safe_tx import build_safe_tx
from treasury.signatures import (
    BUNDLE_FORMAT_VERSION,
    InvalidBundle,
    InvalidSignature,
    SignatureSet,
    contract_owner_message,
    contract_signature,
    current_owners,
    encode,
    export_bundle,
    import_bundle,
    kind_of,
    parse_signature,
    sign,
    sign_as_contract_owner,
    sign_owner_message,
    threshold_met,
    verify,
)

ECDSA_KINDS = ("eip712", "eth_sign", "approved_hash")


def one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message and message.strip() == message
    return message


@pytest.fixture(scope="module")
def relayer(accounts):
    """Sends execTransaction and owns nothing; not the recipient, so balances stay exact."""
    return accounts[4]


@pytest.fixture(scope="module")
def inner_owners(accounts):
    """Owners of the Safe that owns another Safe (accounts 6-8; 0-2 own the outer Safes)."""
    return [accounts[6], accounts[7], accounts[8]]


@pytest.fixture(params=SUPPORTED_VERSIONS)
def safe(request, make_safe, owners, safe_deployer):
    """A funded 2-of-3 Safe of each version."""
    return fund(make_safe(owners, 2, version=request.param, salt_nonce=700), safe_deployer)


@pytest.fixture
def safe141(make_safe, owners, safe_deployer):
    return fund(make_safe(owners, 2, version="1.4.1", salt_nonce=700), safe_deployer)


def nested_safes(make_safe, owners, inner_owners, safe_deployer, outer_version, inner_version):
    """(outer, inner): a funded 2-of-3 Safe owned by owners 0, 1 and a 2-of-3 inner Safe.

    The inner Safe signs as a contract owner through Safe's CompatibilityFallbackHandler: the toolkit's
    default handler (TreasuryFallbackHandler) signs only messages its guard approved."""
    compatibility = safe_contract(inner_version, "compatibility_fallback_handler").canonical_address
    inner = make_safe(inner_owners, 2, version=inner_version, salt_nonce=710, fallback_handler=compatibility)
    outer = make_safe([owners[0], owners[1], SimpleNamespace(address=inner.address)], 2, version=outer_version, salt_nonce=711)
    return fund(outer, safe_deployer), inner


@pytest.fixture
def nested141(make_safe, owners, inner_owners, safe_deployer):
    return nested_safes(make_safe, owners, inner_owners, safe_deployer, "1.4.1", "1.4.1")


def execute_and_check(chain, tx, signatures, sender, recipient):
    """Execute from `sender`; `recipient` (the transaction's `to`) gains exactly the value."""
    assert tx.to == recipient.address and sender.address != recipient.address
    before, safe_before = recipient.balance, chain.provider.get_balance(tx.safe_address)
    assert simulate_execution(tx, signatures, sender, tx.safe_version) is None
    execute_safe_tx(tx, signatures, sender=sender, version=tx.safe_version)
    assert recipient.balance - before == tx.value
    assert safe_before - chain.provider.get_balance(tx.safe_address) == tx.value
    assert safe_nonce(tx.safe_address, tx.safe_version) == tx.safe_nonce + 1


# --- every kind is accepted by the Safe -------------------------------------------------------


@pytest.mark.parametrize("kind", ECDSA_KINDS)
def test_two_signatures_of_each_kind_execute(relayer, safe, owners, outsider, chain, kind):
    tx = safe_transfer_tx(chain, safe, outsider.address)
    collected = SignatureSet(tx)
    assert set(collected.owners) == {o.address for o in owners}
    for owner in (owners[2], owners[0]):
        signature = collected.sign(owner, kind)
        assert kind_of(signature) == kind and signature.owner == owner.address
    assert collected.signers == sorted((owners[0].address, owners[2].address), key=str.lower)
    assert collected.threshold_met() and not collected.threshold_met(threshold=3)
    assert collected.encode() == encode(collected.signatures[::-1])
    execute_and_check(chain, tx, collected.signatures, sender=relayer, recipient=outsider)


def test_the_public_api_adds_no_unchecked_signature(safe, owners, outsider, chain):
    tx = safe_transfer_tx(chain, safe, outsider.address)
    collected = SignatureSet(tx)
    forged = [SafeSignatureApprovedHash.build_for_owner(o, bytes(tx.safe_tx_hash).hex()) for o in (outsider.address, owners[0].address)]
    # Every public method that takes a signature verifies it; none keeps it unchecked.
    public = {name for name in dir(SignatureSet) if not name.startswith("_")}
    assert public == {"add", "add_contract_owner", "encode", "remove", "sign", "signatures", "signers", "threshold_met"}
    for signature in forged:
        with pytest.raises(InvalidSignature):
            collected.add(signature)
    assert len(collected) == 0 and collected.encode() == b"" and not collected.threshold_met(threshold=1)


def test_eip712_and_eth_sign_mix(relayer, safe, owners, outsider, chain):
    tx = safe_transfer_tx(chain, safe, outsider.address)
    collected = SignatureSet(tx)
    collected.sign(owners[1], "eth_sign")
    collected.sign(owners[0], "eip712")
    assert sorted(kind_of(s) for s in collected) == ["eip712", "eth_sign"]
    execute_and_check(chain, tx, collected.signatures, sender=relayer, recipient=outsider)


def test_the_executing_owner_needs_no_on_chain_approval(safe141, owners, outsider, chain):
    """v=1 from the owner that sends execTransaction is accepted by the Safe without approveHash."""
    tx = safe_transfer_tx(chain, safe141, outsider.address)
    own = SafeSignatureApprovedHash.build_for_owner(owners[1].address, "0x" + tx.safe_tx_hash.hex())
    with pytest.raises(InvalidSignature, match=f"no approveHash.* from {owners[1].address} on chain"):
        verify(own, tx, current_owners(safe141.address, "1.4.1"))
    collected = SignatureSet(tx, executor=owners[1].address)
    collected.add(own)
    collected.sign(owners[0])
    execute_and_check(chain, tx, collected.signatures, sender=owners[1], recipient=outsider)


@pytest.mark.parametrize(
    "outer_version,inner_version",
    [("1.4.1", "1.4.1"), ("1.3.0", "1.3.0"), ("1.5.0", "1.5.0"), ("1.5.0", "1.4.1"), ("1.4.1", "1.3.0"), ("1.5.0", "1.3.0")],
)
def test_a_safe_owned_by_a_safe_signs_through_eip1271(relayer,
    make_safe, owners, inner_owners, outsider, safe_deployer, chain, outer_version, inner_version
):
    outer, inner = nested_safes(make_safe, owners, inner_owners, safe_deployer, outer_version, inner_version)
    tx = safe_transfer_tx(chain, outer, outsider.address)

    # The message the inner owners sign is the one the inner Safe's fallback handler computes.
    message = contract_owner_message(inner.address, tx)
    handed = abi_encode(["bytes32"], [bytes(tx.safe_tx_hash)]) if outer_version == "1.5.0" else bytes(tx.safe_tx_hash_preimage)
    assert message.message == (bytes(tx.safe_tx_hash) if outer_version == "1.5.0" else handed)
    get_message_hash = function_signature_to_4byte_selector("getMessageHash(bytes)") + abi_encode(["bytes"], [handed])
    assert bytes(chain.provider.web3.eth.call({"to": inner.address, "data": "0x" + get_message_hash.hex()})) == message.hash

    collected = SignatureSet(tx)
    collected.sign(owners[0], "eip712")
    contract = collected.add_contract_owner(inner.address, [inner_owners[2], inner_owners[0]])
    assert kind_of(contract) == "contract" and contract.owner == inner.address
    execute_and_check(chain, tx, collected.signatures, sender=relayer, recipient=outsider)


@pytest.mark.parametrize("inner_kind", ["eth_sign", "approved_hash"])
def test_inner_owners_may_sign_with_other_kinds(relayer, nested141, owners, inner_owners, outsider, chain, inner_kind):
    outer, inner = nested141
    tx = safe_transfer_tx(chain, outer, outsider.address)
    contract = sign_as_contract_owner(inner.address, inner_owners[:2], tx, kind=inner_kind)
    signatures = [sign(owners[1], tx), contract]
    for signature in signatures:
        verify(signature, tx, current_owners(outer.address, outer.version))
    execute_and_check(chain, tx, signatures, sender=relayer, recipient=outsider)


def test_approved_hash_and_contract_owner_mix(relayer, nested141, owners, inner_owners, outsider, chain):
    outer, inner = nested141
    tx = safe_transfer_tx(chain, outer, outsider.address)
    collected = SignatureSet(tx)
    collected.sign(owners[0], "approved_hash")
    collected.add_contract_owner(inner.address, inner_owners[1:])
    assert sorted(kind_of(s) for s in collected) == ["approved_hash", "contract"]
    execute_and_check(chain, tx, collected.signatures, sender=relayer, recipient=outsider)


def test_a_1_5_0_owner_safe_cannot_sign_for_an_older_safe(make_safe, owners, inner_owners, outsider, safe_deployer, chain):
    """The 1.5.0 handler has no isValidSignature(bytes,bytes), the check a Safe 1.4.1 makes."""
    outer, inner = nested_safes(make_safe, owners, inner_owners, safe_deployer, "1.4.1", "1.5.0")
    tx = safe_transfer_tx(chain, outer, outsider.address)
    with pytest.raises(InvalidSignature, match=r"1.5.0 CompatibilityFallbackHandler, which has no isValidSignature") as error:
        sign_as_contract_owner(inner.address, inner_owners[:2], tx)
    one_line(error)
    message = contract_owner_message(inner.address, tx)
    contract = contract_signature(inner.address, tx, [sign_owner_message(a, message) for a in inner_owners[:2]])
    with pytest.raises(InvalidSignature, match=f"EIP-1271 owner {inner.address} rejected"):
        verify(contract, tx, current_owners(outer.address, outer.version))
    assert simulate_execution(tx, [sign(owners[0], tx), contract], outsider, outer.version) is not None


# --- adversarial --------------------------------------------------------------------------------


def test_a_non_owner_signature_is_refused(safe, owners, outsider, chain):
    tx = safe_transfer_tx(chain, safe, outsider.address)
    foreign = sign(outsider, tx)
    with pytest.raises(InvalidSignature, match=f"eip712 signer {outsider.address} is not an owner of Safe {safe.address}") as error:
        verify(foreign, tx, current_owners(safe.address, safe.version))
    one_line(error)
    with pytest.raises(InvalidSignature, match="is not an owner"):
        SignatureSet(tx).add(foreign)
    assert simulate_execution(tx, [sign(owners[0], tx), foreign], outsider, safe.version) == "GS026"
    with pytest.raises(InvalidSignature, match=r"not an owner of Safe .*GS030"):
        sign(outsider, tx, "approved_hash")


@pytest.mark.parametrize(
    "tamper,expected",
    [
        ("chain_id", r"made for chain id 1 \(this transaction is for chain id"),
        ("nonce", r"made for nonce \d+ \(this transaction has nonce"),
        ("payload", "made over a different payload"),
    ],
)
@pytest.mark.parametrize("kind", ["eip712", "eth_sign"])
def test_a_signature_over_another_hash_is_refused(safe141, owners, outsider, chain, tamper, expected, kind):
    tx = safe_transfer_tx(chain, safe141, outsider.address)
    other = {
        "chain_id": lambda: safe_transfer_tx(chain, safe141, outsider.address, chain_id=1),
        "nonce": lambda: safe_transfer_tx(chain, safe141, outsider.address, nonce=tx.safe_nonce + 1),
        "payload": lambda: safe_transfer_tx(chain, safe141, outsider.address, value=2 * ONE_ETH),
    }[tamper]()
    signed = sign(owners[0], other, kind)
    owners_now = current_owners(safe141.address, "1.4.1")
    with pytest.raises(InvalidSignature, match=f"{kind} signature by {owners[0].address} is over hash .*{expected}") as error:
        verify(signed, tx, owners_now)
    one_line(error)
    # The same bytes read as if made for this transaction recover to a stranger; where the field
    # that differs can be found, the owner and that field are named.
    reread = parse_signature(signed.export_signature(), tx)
    found = {"chain_id": "chain id 1", "nonce": f"nonce {tx.safe_nonce + 1}"}.get(tamper)
    match = f"it is owner {owners[0].address}'s signature for {found}" if found else "is not an owner of Safe"
    with pytest.raises(InvalidSignature, match=match):
        verify(reread, tx, owners_now)
    assert simulate_execution(tx, [reread, sign(owners[1], tx)], outsider, "1.4.1") in ("GS026", "GS025")


def test_a_second_signature_of_the_same_owner_is_refused(safe141, owners, outsider, chain):
    tx = safe_transfer_tx(chain, safe141, outsider.address)
    collected = SignatureSet(tx)
    first = collected.sign(owners[0], "eip712")
    with pytest.raises(InvalidSignature, match=f"owner {owners[0].address} already signed this transaction \\(eip712\\); a second signature \\(eth_sign\\) is refused"):
        collected.sign(owners[0], "eth_sign")
    with pytest.raises(InvalidSignature, match="already signed"):
        collected.add(first)
    assert collected.signatures == [first] and not collected.threshold_met()
    with pytest.raises(InvalidSignature, match="appears twice"):
        encode([first, sign(owners[0], tx, "eth_sign")])


def test_an_approved_hash_claim_without_approval_is_refused(safe141, owners, outsider, chain):
    tx = safe_transfer_tx(chain, safe141, outsider.address)
    claim = SafeSignatureApprovedHash.build_for_owner(owners[1].address, "0x" + tx.safe_tx_hash.hex())
    with pytest.raises(InvalidSignature, match=f"approved_hash signature for owner {owners[1].address}: .* no approveHash") as error:
        SignatureSet(tx).add(claim)
    one_line(error)
    signatures = [sign(owners[0], tx), claim]
    with pytest.raises(ExecutionReverted, match="GS025"):
        execute_safe_tx(tx, signatures, sender=outsider, version="1.4.1")
    # Approved for another transaction does not count either.
    sign(owners[1], safe_transfer_tx(chain, safe141, outsider.address, nonce=tx.safe_nonce + 1), "approved_hash")
    with pytest.raises(InvalidSignature, match="no approveHash"):
        verify(claim, tx, current_owners(safe141.address, "1.4.1"))


@pytest.mark.parametrize("outer_version,inner_version", [("1.4.1", "1.4.1"), ("1.5.0", "1.5.0"), ("1.3.0", "1.3.0")])
def test_an_owner_safe_below_its_threshold_is_refused(
    make_safe, owners, inner_owners, outsider, safe_deployer, chain, outer_version, inner_version
):
    outer, inner = nested_safes(make_safe, owners, inner_owners, safe_deployer, outer_version, inner_version)
    tx = safe_transfer_tx(chain, outer, outsider.address)
    with pytest.raises(InvalidSignature, match=f"EIP-1271 owner {inner.address} rejected the signature: .*GS020") as error:
        sign_as_contract_owner(inner.address, [inner_owners[0]], tx)
    one_line(error)
    message = contract_owner_message(inner.address, tx)
    weak = contract_signature(inner.address, tx, [sign_owner_message(inner_owners[0], message)])
    with pytest.raises(InvalidSignature, match="GS020"):
        verify(weak, tx, current_owners(outer.address, outer.version))
    signatures = [sign(owners[0], tx), weak]
    with pytest.raises(ExecutionReverted):
        execute_safe_tx(tx, signatures, sender=outsider, version=outer.version)
    assert safe_nonce(outer.address, outer.version) == tx.safe_nonce


def test_an_owner_safe_signature_by_a_stranger_is_refused(nested141, owners, inner_owners, outsider, chain):
    outer, inner = nested141
    tx = safe_transfer_tx(chain, outer, outsider.address)
    with pytest.raises(InvalidSignature, match=f"signer {outsider.address} is not an owner of Safe {inner.address}"):
        sign_as_contract_owner(inner.address, [inner_owners[0], outsider], tx)
    with pytest.raises(InvalidSignature, match="signed twice"):
        sign_as_contract_owner(inner.address, [inner_owners[0], inner_owners[0]], tx)


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("0x" + "11" * 10, "10 bytes, a Safe signature has at least 65"),
        ("0x" + "11" * 64 + "05", "v=5 is none of"),
        ("0x" + "11" * 64 + "1b" + "00", "66 bytes that are not exactly one eip712 signature"),
        ("0x" + "00" * 12 + "22" * 20 + "00" * 31 + "41" + "00", "not exactly one canonically encoded contract"),
        ("0xzz", "is not hex"),
        ("0x" + "00" * 64 + "1b", "recovers to no address"),
    ],
)
def test_malformed_signature_bytes_are_refused(safe141, outsider, chain, raw, expected):
    tx = safe_transfer_tx(chain, safe141, outsider.address)
    with pytest.raises(InvalidSignature, match=f"malformed.*{expected}") as error:
        parse_signature(raw, tx)
    one_line(error)


def test_threshold_met_counts_distinct_current_owners(safe141, owners, outsider, chain):
    tx = safe_transfer_tx(chain, safe141, outsider.address)
    signatures = [sign(owners[0], tx), sign(outsider, tx)]
    members = current_owners(safe141.address, "1.4.1")
    assert not threshold_met(signatures, members, 2)
    assert threshold_met([*signatures, sign(owners[2], tx, "eth_sign")], members, 2)


# --- bundles for air-gapped signers -------------------------------------------------------------


@pytest.fixture
def signed_bundle(safe141, owners, outsider, chain, tmp_path):
    tx = safe_transfer_tx(chain, safe141, outsider.address)
    signatures = [sign(owners[0], tx, "eip712"), sign(owners[2], tx, "eth_sign")]
    return tx, export_bundle(tx, "1.4.1", signatures, tmp_path / "bundle.json"), tmp_path / "bundle.json"


def test_bundle_round_trip_through_a_file(relayer, signed_bundle, owners, outsider, chain):
    tx, bundle, path = signed_bundle
    on_disk = json.loads(path.read_text())
    assert on_disk == bundle
    assert on_disk["format_version"] == BUNDLE_FORMAT_VERSION and on_disk["chain_id"] == chain.chain_id
    assert on_disk["value"] == str(ONE_ETH) and on_disk["data"] == "0x" and on_disk["nonce"] == tx.safe_nonce
    assert on_disk["safe_tx_hash"] == "0x" + tx.safe_tx_hash.hex()
    assert [(e["owner"], e["kind"]) for e in on_disk["signatures"]] == sorted(
        [(owners[0].address, "eip712"), (owners[2].address, "eth_sign")], key=lambda p: p[0].lower()
    )
    imported = import_bundle(path, tx)
    assert [s.owner for s in imported] == [e["owner"] for e in on_disk["signatures"]]
    assert import_bundle(str(path), tx)[0].signature == imported[0].signature
    assert import_bundle(path.read_text(), tx)[1].signature == imported[1].signature
    execute_and_check(chain, tx, imported, sender=relayer, recipient=outsider)


def test_bundle_round_trip_with_approved_hash_and_contract_owner(relayer, nested141, owners, inner_owners, outsider, chain, tmp_path):
    outer, inner = nested141
    tx = safe_transfer_tx(chain, outer, outsider.address)
    signatures = [sign(owners[1], tx, "approved_hash"), sign_as_contract_owner(inner.address, inner_owners[:2], tx)]
    export_bundle(tx, None, signatures, tmp_path / "b.json")
    imported = import_bundle(tmp_path / "b.json", tx)
    assert sorted(kind_of(s) for s in imported) == ["approved_hash", "contract"]
    execute_and_check(chain, tx, imported, sender=relayer, recipient=outsider)


def _tamper(bundle, how, other_address):
    data = json.loads(json.dumps(bundle))
    if how == "value":
        data["value"] = str(int(data["value"]) * 2)
    elif how == "to":
        data["to"] = other_address
    elif how == "signature_byte":
        sig = bytearray.fromhex(data["signatures"][0]["signature"][2:])
        sig[40] ^= 0x01  # in s: any s recovers to some address (a changed r may be no curve point at all)
        data["signatures"][0]["signature"] = "0x" + sig.hex()
    elif how == "swapped_owner":
        first, second = data["signatures"]
        first["owner"], second["owner"] = second["owner"], first["owner"]
    elif how == "stated_hash":
        data["safe_tx_hash"] = "0x" + "ab" * 32
    elif how == "kind":
        data["signatures"][0]["kind"] = "eth_sign" if data["signatures"][0]["kind"] == "eip712" else "eip712"
    elif how == "consistent_value":  # the attacker also restates the hashes: still not the proposal
        data["value"] = str(int(data["value"]) * 2)
        tx = build_safe_tx(data["safe"], data["to"], int(data["value"]), nonce=data["nonce"], chain_id=data["chain_id"], version=data["version"])
        data["safe_tx_hash"] = "0x" + tx.safe_tx_hash.hex()
        data["message_hash"] = "0x" + bytes(tx.safe_tx_hash_preimage)[34:].hex()
    elif how == "duplicate":
        data["signatures"].append(dict(data["signatures"][0]))
    return data


@pytest.mark.parametrize(
    "how,error_type,expected",
    [
        ("value", InvalidBundle, "bundle altered: its fields hash to safeTxHash"),
        ("to", InvalidBundle, "bundle altered"),
        ("stated_hash", InvalidBundle, "bundle altered: .* but it states 0xabab"),
        ("consistent_value", InvalidBundle, f"bundle is for another transaction .*: value {2 * ONE_ETH} instead of {ONE_ETH}"),
        ("signature_byte", InvalidSignature, "bundle signature #1: (eip712|eth_sign) signature said to be by 0x.* recovers to 0x.*altered"),
        ("swapped_owner", InvalidSignature, "bundle signature #1: .* said to be by 0x.* is by owner 0x.*: the owner field was swapped"),
        ("kind", InvalidSignature, "bundle signature #1: it is declared"),
        ("duplicate", InvalidSignature, "bundle signature #3: owner 0x.* already signed"),
    ],
)
def test_a_tampered_bundle_is_refused(signed_bundle, owners, how, error_type, expected):
    tx, bundle, _ = signed_bundle
    assert import_bundle(bundle, tx)  # the untouched bundle imports
    with pytest.raises(error_type, match=expected) as error:
        import_bundle(_tamper(bundle, how, owners[1].address), tx)
    one_line(error)


def test_a_bundle_for_another_proposal_is_refused(signed_bundle, outsider, chain, safe141):
    tx, bundle, _ = signed_bundle
    later = safe_transfer_tx(chain, safe141, outsider.address, nonce=tx.safe_nonce + 1)
    with pytest.raises(InvalidBundle, match=f"for another transaction .*: nonce {tx.safe_nonce} instead of {tx.safe_nonce + 1}"):
        import_bundle(bundle, later)


def test_a_bundle_signed_by_an_owner_since_removed_is_refused(make_safe, owners, relayer, outsider, safe_deployer, chain, tmp_path):
    """Import re-verifies against the owners on chain now, not those at signing time."""
    created = fund(make_safe(owners, 2, version="1.4.1", salt_nonce=720), safe_deployer)
    later = safe_transfer_tx(chain, created, outsider.address, nonce=safe_nonce(created.address, "1.4.1") + 1)
    export_bundle(later, "1.4.1", [sign(owners[0], later), sign(owners[1], later, "eth_sign")], tmp_path / "later.json")
    assert len(import_bundle(tmp_path / "later.json", later)) == 2

    safe = safe_instance(created.address, "1.4.1")
    listed = list(safe.getOwners())
    index = listed.index(owners[0].address)
    previous = SENTINEL_ADDRESS if index == 0 else listed[index - 1]
    removal = build_safe_tx(
        created.address, created.address, 0, safe.removeOwner.encode_input(previous, owners[0].address, 2),
        nonce=later.safe_nonce - 1, chain_id=chain.chain_id, version="1.4.1",
    )
    execute_safe_tx(removal, [sign(owners[1], removal), sign(owners[2], removal)], sender=relayer, version="1.4.1")
    assert owners[0].address not in current_owners(created.address, "1.4.1")

    with pytest.raises(InvalidSignature, match=f"bundle signature #.: eip712 signer {owners[0].address} is not an owner") as error:
        import_bundle(tmp_path / "later.json", later)
    one_line(error)


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (lambda text, data: text[:-5], "bundle .*broken.json: not valid JSON: .* at line \\d+ column \\d+"),
        (lambda text, data: "[1, 2]", "a bundle is a JSON object, not a list"),
        (lambda text, data: json.dumps({k: v for k, v in data.items() if k != "nonce"}), "bundle is missing field 'nonce'"),
        (lambda text, data: json.dumps({**data, "value": int(data["value"])}), "field 'value' must be a decimal string"),
        (lambda text, data: json.dumps({**data, "value": "-1"}), "field 'value' must be a decimal string"),
        (lambda text, data: json.dumps({**data, "nonce": str(data["nonce"])}), "field 'nonce' must be a non-negative integer"),
        (lambda text, data: json.dumps({**data, "operation": 2}), "'operation' is 2, neither CALL"),
        (lambda text, data: json.dumps({**data, "data": "0x1"}), "field 'data' must be 0x-prefixed hex"),
        (lambda text, data: json.dumps({**data, "to": "0x1234"}), "field 'to' .* is not a 0x-prefixed 20-byte hex address"),
        (lambda text, data: json.dumps({**data, "format_version": 9}), "format version 9 is not supported"),
        (lambda text, data: json.dumps({**data, "format": "something"}), "not an ape-treasury signature bundle"),
        (lambda text, data: json.dumps({**data, "signatures": [{"owner": data["safe"], "kind": "eip712"}]}), "bundle signature #1 is missing field 'signature'"),
        (lambda text, data: json.dumps({**data, "signatures": ["0x00"]}), "bundle signature #1 must be an object"),
    ],
)
def test_a_malformed_bundle_gives_one_line(signed_bundle, tmp_path, mutate, expected):
    tx, bundle, path = signed_bundle
    broken = tmp_path / "broken.json"
    broken.write_text(mutate(path.read_text(), bundle))
    with pytest.raises(InvalidInput, match=expected) as error:
        import_bundle(broken, tx)
    one_line(error)


def test_a_missing_bundle_file_gives_one_line(safe141, outsider, chain, tmp_path):
    tx = safe_transfer_tx(chain, safe141, outsider.address)
    with pytest.raises(InvalidBundle, match=r"cannot read bundle .*nope.json: No such file") as error:
        import_bundle(tmp_path / "nope.json", tx)
    one_line(error)


def test_exporting_a_signature_over_another_hash_is_refused(safe141, owners, outsider, chain):
    tx = safe_transfer_tx(chain, safe141, outsider.address)
    stale = sign(owners[0], safe_transfer_tx(chain, safe141, outsider.address, nonce=tx.safe_nonce + 1))
    with pytest.raises(InvalidSignature, match="made for nonce"):
        export_bundle(tx, "1.4.1", [stale])
