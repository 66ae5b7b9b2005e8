"""TreasuryFallbackHandler: a guarded Safe signs (EIP-1271) only what its guard approved.

Safe's CompatibilityFallbackHandler validates owner signatures over any message as the Safe's own,
so a threshold of owners can sign an EIP-2612 permit or an EIP-3009 transferWithAuthorization "as
the Safe" and a stranger drains the token: no Safe transaction, so no cap, no allowlist, no delay.
The first test shows that hole on a guarded Safe; the others show that the toolkit's handler
closes it (owner signatures alone never validate anything), that a message approved through the
delay queue is accepted and withdrawn at once, that the typed-data path needs both an allowed
(domain, type) and a threshold of owners, that token receivers and `simulate` still work, and that
the toolkit installs the handler and `treasury info` warns when a guarded Safe lacks it.
"""

from __future__ import annotations

import json

import pytest
from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from guard_helpers import *
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError

from treasury.chain.artifacts import safe_contract
from treasury.chain.guard import deploy_guard, install_guard, installed_guard
from treasury.chain.handler import (
    HANDLER_ARTIFACT,
    classify_handler,
    handler_address,
    handler_contract_type,
    handler_runtime_code,
    installed_handler,
    module_warnings,
)
from treasury.chain.infrastructure import deploy_handler
from treasury.chain.safe import safe_nonce
from treasury.execution.send import execute_with_owners
from treasury.policy.model import Policy
from treasury.signatures import encode_signatures
from treasury.signatures.signing import sign_digest

MAGIC = bytes.fromhex("1626ba7e")
LEGACY_MAGIC = bytes.fromhex("20c13b0b")
INVALID = bytes.fromhex("ffffffff")
SAFE_MSG_TYPEHASH = keccak(text="SafeMessage(bytes message)")
AMOUNT = 1000 * UNIT
DEADLINE = 2**40
STRANGER = to_checksum_address("0x" + "5e" * 20)


def compatibility_handler(version: str) -> str:
    return safe_contract(version, "compatibility_fallback_handler").canonical_address


def raw_call(to: str, data: bytes, sender: str | None = None) -> bytes:
    from ape import chain

    call = {"to": to, "data": HexBytes(data)}
    if sender:
        call["from"] = sender
    return bytes(chain.provider.web3.eth.call(call))


def is_valid_signature(safe: str, digest: bytes, signature: bytes) -> bytes:
    """What a verifier gets from the Safe for (digest, signature): the first 4 bytes of the answer."""
    answer = raw_call(safe, selector("isValidSignature(bytes32,bytes)") + encode(["bytes32", "bytes"], [digest, signature]))
    return answer[:4]


def legacy_is_valid_signature(safe: str, data: bytes, signature: bytes = b"") -> bytes:
    return raw_call(safe, selector("isValidSignature(bytes,bytes)") + encode(["bytes", "bytes"], [data, signature]))[:4]


def safe_message_hash(safe: str, digest: bytes) -> bytes:
    """The hash Safe's CompatibilityFallbackHandler has owners sign for `digest` (its SafeMessage)."""
    domain = raw_call(safe, selector("domainSeparator()"))
    inner = keccak(encode(["bytes32", "bytes32"], [SAFE_MSG_TYPEHASH, keccak(encode(["bytes32"], [digest]))]))
    return keccak(b"\x19\x01" + domain + inner)


def owner_signatures(owners, safe: str, version: str, digest: bytes) -> bytes:
    """A threshold of owners' signatures over `digest`, sorted for the Safe (eth_sign: works on every version)."""
    return encode_signatures([sign_digest(owner, "eth_sign", digest, {}, safe, version) for owner in owners])


def revert_selector(to: str, data: bytes, sender: str) -> bytes:
    try:
        raw_call(to, data, sender)
    except ContractLogicError as error:
        return bytes.fromhex(str(error.data)[2:10]) if error.data else b""
    pytest.fail("the call succeeded; expected a revert")


INVALID_SIGNATURE = selector("InvalidSignature(address)")


@pytest.fixture(scope="module")
def permit_token(project, safe_deployer):
    return safe_deployer.deploy(project.PermitToken)


def permit_call(token, safe: str, spender: str, signature: bytes, nonce: int = 0) -> tuple[bytes, bytes]:
    """(digest, calldata) of a permit of AMOUNT from the Safe to `spender`."""
    digest = bytes(token.permitDigest(safe, spender, AMOUNT, nonce, DEADLINE))
    return digest, bytes(token.permit.encode_input(safe, spender, AMOUNT, DEADLINE, signature))


def authorization(token, safe: str, to: str, nonce: bytes) -> tuple[bytes, tuple]:
    args = (safe, to, AMOUNT, 0, DEADLINE, nonce)
    return bytes(token.authorizationDigest(*args)), args


# --- the hole, with Safe's handler ------------------------------------------------------------------


@pytest.fixture(scope="module", params=VERSIONS)
def legacy(request, make_safe, owners, safe_deployer, relayer):
    """A Safe guarded the way v1 of the toolkit left it: TreasuryGuard installed, Safe's compatibility handler."""
    version = request.param
    created = make_safe(owners, 2, version=version, salt_nonce=module_salt(request),
                        fallback_handler=compatibility_handler(version))
    guard = deploy_guard(created.address, version, Policy(recipients=(PAYEE,), delay=DELAY, window=WINDOW), safe_deployer)
    word = bytes(12) + bytes.fromhex(guard.address[2:])
    calls = ([selector("setModuleGuard(address)") + word] if version == "1.5.0" else []) + [selector("setGuard(address)") + word]
    for data in calls:
        execute_with_owners(created.address, version, created.address, 0, data, signers=owners[:2], sender=relayer)
    assert installed_guard(created.address) == guard.address
    return created, guard


def test_with_safes_handler_owners_sign_a_permit_as_the_guarded_safe_and_a_stranger_drains_it(
        legacy, permit_token, owners, safe_deployer, accounts):
    created, guard = legacy
    stranger = accounts[6]
    permit_token.mint(created.address, AMOUNT, sender=safe_deployer)
    digest, _ = permit_call(permit_token, created.address, stranger.address, b"")
    message = safe_message_hash(created.address, digest)
    # the hash owners sign is the one the handler computes itself
    assert raw_call(created.address, selector("getMessageHash(bytes)") + encode(["bytes"], [encode(["bytes32"], [digest])])) == message
    signatures = owner_signatures(owners[:2], created.address, created.version, message)
    assert is_valid_signature(created.address, digest, signatures) == MAGIC
    nonce = safe_nonce(created.address, created.version)
    permit_token.permit(created.address, stranger.address, AMOUNT, DEADLINE, signatures, sender=stranger)
    permit_token.transferFrom(created.address, stranger.address, AMOUNT, sender=stranger)
    assert permit_token.balanceOf(stranger.address) == AMOUNT and permit_token.balanceOf(created.address) == 0
    # no Safe transaction, so the guard never saw it
    assert safe_nonce(created.address, created.version) == nonce
    assert classify_handler(installed_handler(created.address)).kind == "compatibility"


# --- the toolkit's handler --------------------------------------------------------------------------


def test_owner_signatures_never_validate_a_permit_or_an_authorization(guarded, permit_token, safe_deployer, accounts):
    safe, version, signers = guarded.address, guarded.version, guarded.signers
    assert installed_handler(safe) == handler_address()
    stranger = accounts[6]
    permit_token.mint(safe, AMOUNT, sender=safe_deployer)
    digest, _ = permit_call(permit_token, safe, stranger.address, b"")
    auth_digest, auth_args = authorization(permit_token, safe, stranger.address, b"\x01" * 32)
    for signed in (digest, auth_digest):
        # every way owners could sign it: the SafeMessage (what Safe's handler wants), the digest itself, all owners
        for signatures in (
            owner_signatures(signers, safe, version, safe_message_hash(safe, signed)),
            owner_signatures(signers, safe, version, signed),
            owner_signatures(guarded.owners, safe, version, signed),
            b"",
        ):
            assert is_valid_signature(safe, signed, signatures) == INVALID
        assert legacy_is_valid_signature(safe, encode(["bytes32"], [signed]),
                                         owner_signatures(signers, safe, version, signed)) == INVALID
    signatures = owner_signatures(signers, safe, version, safe_message_hash(safe, digest))
    _, permit_data = permit_call(permit_token, safe, stranger.address, signatures)
    assert revert_selector(permit_token.address, permit_data, stranger.address) == INVALID_SIGNATURE
    auth_signatures = owner_signatures(signers, safe, version, safe_message_hash(safe, auth_digest))
    auth_data = bytes(permit_token.transferWithAuthorization.encode_input(*auth_args, auth_signatures))
    assert revert_selector(permit_token.address, auth_data, stranger.address) == INVALID_SIGNATURE
    assert permit_token.balanceOf(safe) == AMOUNT


def test_a_message_approved_through_the_queue_is_accepted_and_revoked_at_once(guarded, permit_token, safe_deployer, accounts):
    safe = guarded.address
    stranger = accounts[6]
    permit_token.mint(safe, AMOUNT, sender=safe_deployer)
    digest, permit_data = permit_call(permit_token, safe, PAYEE, b"")
    approve = (guarded.guard.address, 0, guarded.encode_guard("approveMessage", digest), 0)
    entry = guarded.schedule(*approve)
    assert guarded.attack(*approve, at=guarded.eta(entry) - 1) == "NotYetDue"
    assert is_valid_signature(safe, digest, b"") == INVALID
    guarded.execute(*approve, at=guarded.eta(entry))
    assert guarded.guard.isMessageApproved(digest)
    assert is_valid_signature(safe, digest, b"") == MAGIC
    assert is_valid_signature(safe, digest, b"anything") == MAGIC  # the approval is the signature
    # the approved permit works, for the spender it names and nothing else
    stranger.transfer(permit_token.address, 0, data=permit_data)
    assert permit_token.allowance(safe, PAYEE) == AMOUNT
    other, _ = permit_call(permit_token, safe, stranger.address, b"", nonce=1)
    assert is_valid_signature(safe, other, b"") == INVALID

    # revoking needs no delay and takes effect at once
    auth_digest, auth_args = authorization(permit_token, safe, PAYEE, b"\x02" * 32)
    entry = guarded.schedule(guarded.guard.address, 0, guarded.encode_guard("approveMessage", auth_digest), 0)
    guarded.wait_until_due(entry)
    guarded.execute(guarded.guard.address, 0, guarded.encode_guard("approveMessage", auth_digest), 0)
    assert is_valid_signature(safe, auth_digest, b"") == MAGIC
    guarded.execute(guarded.guard.address, 0, guarded.encode_guard("revokeMessage", auth_digest), 0)
    assert is_valid_signature(safe, auth_digest, b"") == INVALID
    auth_data = bytes(permit_token.transferWithAuthorization.encode_input(*auth_args, b""))
    assert revert_selector(permit_token.address, auth_data, stranger.address) == INVALID_SIGNATURE


def test_the_legacy_entry_point_answers_for_approved_data_only(guarded):
    data = b"the Safe agrees to these terms"
    approve = (guarded.guard.address, 0, guarded.encode_guard("approveMessage", keccak(data)), 0)
    guarded.wait_until_due(guarded.schedule(*approve))
    guarded.execute(*approve)
    assert legacy_is_valid_signature(guarded.address, data) == LEGACY_MAGIC
    assert legacy_is_valid_signature(guarded.address, data + b".") == INVALID
    assert is_valid_signature(guarded.address, keccak(data), b"") == MAGIC


def test_approving_a_message_without_the_delay_is_refused(guarded):
    digest = keccak(b"unscheduled")
    assert guarded.attack(guarded.guard.address, 0, guarded.encode_guard("approveMessage", digest)) == "NotScheduled"
    assert guarded.attack(guarded.guard.address, 0, guarded.encode_guard(
        "setTypedDataAllowed", digest, digest, True)) == "NotScheduled"
    assert not guarded.guard.isMessageApproved(digest)
    # nor directly: only the Safe may approve
    assert call_error(guarded.relayer.address, guarded.guard.address, guarded.encode_guard("approveMessage", digest)) == "NotSafe"


VOTE_TYPEHASH = keccak(text="Vote(uint256 proposal,bool support)")


def typed(domain: bytes, type_hash: bytes, *fields) -> tuple[bytes, bytes]:
    """(hash, encodedStruct) of an EIP-712 message whose struct is type_hash followed by uint256 fields."""
    encoded = type_hash + b"".join(f.to_bytes(32, "big") for f in fields)
    return keccak(b"\x19\x01" + domain + keccak(encoded)), encoded


def test_typed_data_needs_an_allowed_domain_and_type_and_a_threshold_of_owners(guarded):
    safe, version, signers = guarded.address, guarded.version, guarded.signers
    domain = keccak(b"a governance domain")
    digest, struct = typed(domain, VOTE_TYPEHASH, 7, 1)

    def signature(owners, d=domain, s=struct, h=digest):
        return encode(["bytes32", "bytes", "bytes"], [d, s, owner_signatures(owners, safe, version, h)])

    assert is_valid_signature(safe, digest, signature(signers)) == INVALID  # not allowed yet
    allow = (guarded.guard.address, 0, guarded.encode_guard("setTypedDataAllowed", domain, VOTE_TYPEHASH, True), 0)
    guarded.wait_until_due(guarded.schedule(*allow))
    guarded.execute(*allow)
    assert guarded.guard.isTypedDataAllowed(domain, VOTE_TYPEHASH)
    assert is_valid_signature(safe, digest, signature(signers)) == MAGIC
    assert is_valid_signature(safe, digest, signature(signers[:1])) == INVALID  # below the threshold
    other_digest, other_struct = typed(keccak(b"another domain"), VOTE_TYPEHASH, 7, 1)
    assert is_valid_signature(safe, other_digest, signature(signers, keccak(b"another domain"), other_struct, other_digest)) == INVALID
    permit_type = keccak(text="Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)")
    permit_digest, permit_struct = typed(domain, permit_type, 1, 2, 3, 4, 5)
    assert is_valid_signature(safe, permit_digest, signature(signers, domain, permit_struct, permit_digest)) == INVALID
    # the signed hash must be the one the struct gives
    assert is_valid_signature(safe, keccak(b"else"), signature(signers)) == INVALID
    # malformed encodings are a plain "no", never a revert
    good = signature(signers)
    for bad in (good[:100], good[:-1][:159], b"\x00" * 160, encode(["bytes32", "uint256", "uint256"], [domain, 2**255, 0]),
                good[:32] + (2**200).to_bytes(32, "big") + good[64:]):
        assert is_valid_signature(safe, digest, bad) == INVALID
    # disallowing is a setting too (only revokeMessage skips the delay)
    disallow = (guarded.guard.address, 0, guarded.encode_guard("setTypedDataAllowed", domain, VOTE_TYPEHASH, False), 0)
    guarded.wait_until_due(guarded.schedule(*disallow))
    guarded.execute(*disallow)
    assert is_valid_signature(safe, digest, signature(signers)) == INVALID


def test_the_handler_changes_nothing(guarded, permit_token, relayer):
    abi = json.loads(HANDLER_ARTIFACT.read_text())["abi"]
    writers = {item["name"] for item in abi if item["type"] == "function" and item["stateMutability"] not in ("view", "pure")}
    assert writers == {"simulate"}
    handler = handler_address()
    simulate = selector("simulate(address,bytes)")
    mint = bytes(permit_token.mint.encode_input(ATTACKER, AMOUNT))
    # called directly, not through a Safe: refused
    assert revert_selector(handler, simulate + encode(["address", "bytes"], [permit_token.address, mint]), relayer.address) == \
        selector("SimulationFailed()")
    # through the Safe it runs the payload in the Safe's context and answers, then reverts it
    threshold = raw_call(guarded.address, simulate + encode(
        ["address", "bytes"], [safe_contract(guarded.version, "safe").canonical_address, selector("getThreshold()")]))
    from eth_abi import decode

    assert decode(["uint256"], decode(["bytes"], threshold)[0])[0] == 2
    before = guarded.state()
    relayer.transfer(guarded.address, 0, data=simulate + encode(["address", "bytes"], [permit_token.address, mint]))
    assert guarded.state() == before
    assert permit_token.balanceOf(ATTACKER) == 0
    # a reverting payload reverts with its own data
    transfer_data = bytes(permit_token.transfer.encode_input(ATTACKER, 1))
    assert revert_selector(guarded.address, simulate + encode(["address", "bytes"], [permit_token.address, transfer_data]),
                           relayer.address) == selector("Insufficient()")


# --- receivers --------------------------------------------------------------------------------------


def test_nfts_and_erc1155_reach_the_safe(guarded, project, safe_deployer):
    tokens = safe_deployer.deploy(project.ReceiverTokens)
    tokens.mint(1, 10, sender=safe_deployer)
    tokens.mint(2, 5, sender=safe_deployer)
    tokens.safeTransferFrom(safe_deployer.address, guarded.address, 1, sender=safe_deployer)
    assert tokens.ownerOf(1) == guarded.address
    tokens.safeTransferFrom(safe_deployer.address, guarded.address, 1, 4, b"", sender=safe_deployer)
    tokens.safeBatchTransferFrom(safe_deployer.address, guarded.address, [1, 2], [6, 5], b"", sender=safe_deployer)
    assert (tokens.balanceOf(guarded.address, 1), tokens.balanceOf(guarded.address, 2)) == (10, 5)
    erc777 = selector("tokensReceived(address,address,address,uint256,bytes,bytes)")
    raw_call(guarded.address, erc777 + encode(["address"] * 3 + ["uint256", "bytes", "bytes"],
                                              [safe_deployer.address] * 3 + [1, b"", b""]))
    for interface, supported in (("01ffc9a7", True), ("150b7a02", True), ("4e2312e0", True), ("ffffffff", False),
                                 ("1626ba7e", False)):
        answer = raw_call(guarded.address, selector("supportsInterface(bytes4)") + bytes.fromhex(interface).ljust(32, b"\0"))
        assert answer == (1 if supported else 0).to_bytes(32, "big"), interface


# --- the toolkit ------------------------------------------------------------------------------------


def test_the_handler_lives_at_its_deterministic_address(safe_infrastructure, safe_deployer, chain):
    status = next(s for s in safe_infrastructure if s.role == "treasury_fallback_handler")
    assert status.address == handler_address() and status.canonical
    assert bytes(chain.provider.get_code(handler_address())) == handler_runtime_code()
    again = deploy_handler(chain.provider, safe_deployer)
    assert again.action == "present" and again.code_hash == status.code_hash


@pytest.mark.parametrize("version", VERSIONS)
def test_create_safe_gives_the_handler_and_install_guard_sets_it(make_safe, owners, safe_deployer, relayer, chain, version):
    created = make_safe(owners, 2, version=version, salt_nonce=31_000)
    assert created.fallback_handler == handler_address() == installed_handler(created.address)
    # no guard, or a "guard" that cannot answer isMessageApproved: nothing is approved, and no revert
    digest = keccak(b"anything")
    signatures = owner_signatures(owners[:2], created.address, version, digest)
    assert is_valid_signature(created.address, digest, signatures) == INVALID
    for not_a_guard in (handler_address(), STRANGER):
        _set_address(chain, created.address, GUARD_STORAGE_SLOT, not_a_guard)
        assert is_valid_signature(created.address, digest, signatures) == INVALID
        assert legacy_is_valid_signature(created.address, b"anything") == INVALID
    _set_address(chain, created.address, GUARD_STORAGE_SLOT, ZERO_ADDRESS)
    older = make_safe(owners, 2, version=version, salt_nonce=31_001, fallback_handler=compatibility_handler(version))
    assert installed_handler(older.address) == compatibility_handler(version)
    guard = deploy_guard(older.address, version, Policy(delay=DELAY, window=WINDOW), safe_deployer)
    install_guard(older.address, version, guard.address, signers=owners[:2], sender=relayer)
    assert installed_handler(older.address) == handler_address()
    assert installed_guard(older.address) == guard.address


def test_handlers_are_classified():
    for version in VERSIONS:
        info = classify_handler(compatibility_handler(version))
        assert info.kind == "compatibility" and "signs any message" in info.warning
    assert classify_handler(safe_contract("1.3.0", "compatibility_fallback_handler").canonical_address).name.startswith("Safe 1.3.0")
    assert classify_handler("0x017062a1dE2FE6b99BE3d9d37841FeD19F573804").kind == "compatibility"  # 1.3.0 eip155
    assert classify_handler("0x85a8ca358D388530ad0fB95D0cb89Dd44Fc242c3").kind == "compatibility"  # 1.5.0 extensible
    assert classify_handler("0x54e86d004d71a8D2112ec75FaCE57D730b0433F3").warning is None  # 1.5.0 token callbacks
    assert classify_handler(handler_address()).is_ours and classify_handler(handler_address()).warning is None
    assert classify_handler(ZERO_ADDRESS).kind == "none"
    unknown = classify_handler("0x" + "12" * 20)
    assert unknown.kind == "unknown" and "may sign arbitrary messages" in unknown.warning


def test_module_warnings_follow_the_safe_version():
    module, guard = "0x" + "0d" * 20, "0x" + "0e" * 20
    assert "does not show module transactions" in module_warnings("1.4.1", (module,), guard, None)[0]
    assert "does not show module transactions" in module_warnings("1.3.0", (module,), guard, None)[0]
    assert module_warnings("1.5.0", (module,), guard, guard) == []
    assert "module guard is" in module_warnings("1.5.0", (module,), guard, ZERO_ADDRESS)[0]
    assert module_warnings("1.4.1", (), guard, None) == []


def test_shipped_handler_artifact_is_plain_json():
    assert json.loads(HANDLER_ARTIFACT.read_text())["contractName"] == "TreasuryFallbackHandler"
    assert handler_contract_type().name == "TreasuryFallbackHandler"


# --- the CLI: info, propose handler, propose guard-install -------------------------------------------


def _mapping_slot(key: str, slot: int) -> int:
    return int.from_bytes(keccak(bytes.fromhex(key[2:]).rjust(32, b"\0") + slot.to_bytes(32, "big")), "big")


def _set_address(chain, address: str, slot: int, value: str) -> None:
    chain.provider.set_storage(address, slot, HexBytes(bytes.fromhex(value[2:]).rjust(32, b"\0")))


def _cli(tmp_path, chain):
    from test_cli import Cli

    return Cli(tmp_path / "ape-config.yaml", chain)


@pytest.mark.parametrize("version", ["1.4.1", "1.5.0"])
def test_info_warns_about_modules_and_a_signing_handler_on_a_guarded_safe(make_treasury, tmp_path, chain, version):
    treasury, _token = make_treasury(version=version)
    run = _cli(tmp_path, chain)
    info = run.json("info")
    assert info["fallback_handler"]["kind"] == "treasury" and info["warnings"] == []
    # A Safe guarded before v2: Safe's handler still installed, and a module enabled (written to storage directly,
    # as the guard would make both wait the delay).
    module = to_checksum_address("0x" + "0d" * 20)
    _set_address(chain, treasury.safe, FALLBACK_HANDLER_SLOT, compatibility_handler(version))
    _set_address(chain, treasury.safe, _mapping_slot(SENTINEL_ADDRESS, 1), module)
    _set_address(chain, treasury.safe, _mapping_slot(module, 1), SENTINEL_ADDRESS)
    info = run.json("info")
    assert info["modules"] == [module]
    assert info["fallback_handler"]["kind"] == "compatibility"
    handler_warning, *module_warnings_shown = info["warnings"]
    assert "signs any message its owners sign" in handler_warning and compatibility_handler(version) in handler_warning
    if version == "1.5.0":
        # the guard is also the module guard: that module's transactions are checked, no warning
        assert info["module_guard"] == treasury.entry.guard and module_warnings_shown == []
    else:
        assert len(module_warnings_shown) == 1 and module in module_warnings_shown[0]
    shown = " ".join(run.ok("info").stdout.split())
    for text in ("fallback handler", "signs any message its owners sign", module):
        assert text in shown, text
    # switching to the toolkit's handler is a configuration change: it waits the delay
    proposed = run.json("propose", "handler")
    assert proposed["to"] == treasury.safe and proposed["verdict"]["outcome"] == "needs-delay"
    assert any("signs any message" in w for w in treasury.verdict(proposed["id"]).warnings)


def test_info_lists_modules_with_the_bypass_warning_on_1_4_1(make_treasury, tmp_path, chain):
    treasury, _token = make_treasury(version="1.4.1")
    module = to_checksum_address("0x" + "0d" * 20)
    _set_address(chain, treasury.safe, _mapping_slot(SENTINEL_ADDRESS, 1), module)
    _set_address(chain, treasury.safe, _mapping_slot(module, 1), SENTINEL_ADDRESS)
    info = _cli(tmp_path, chain).json("info")
    assert info["warnings"] == [(f"module {module} can execute any transaction from the Safe: Safe 1.4.1 does not "
                                 "show module transactions to the guard")]


@pytest.mark.parametrize("version", VERSIONS)
def test_guard_installation_is_one_proposal_owners_sign(make_treasury, tmp_path, chain, safe_deployer, owners, version):
    treasury, _token = make_treasury(version=version, guarded=False)
    execute_with_owners(treasury.safe, version, treasury.safe, 0,
                        selector("setFallbackHandler(address)") + bytes(12) + bytes.fromhex(compatibility_handler(version)[2:]),
                        signers=owners[:2], sender=safe_deployer)
    guard = deploy_guard(treasury.safe, version, treasury.policy, safe_deployer)
    run = _cli(tmp_path, chain)
    proposed = run.json("propose", "guard-install", guard.address)
    assert proposed["operation"] == 1 and proposed["verdict"]["outcome"] == "allow"
    for signer in ("TEST::0", "TEST::1"):
        run.ok("sign", proposed["id"], "--account", signer, "--yes")
    run.ok("execute", proposed["id"], "--account", "TEST::9", "--yes", "--skip-rehearsal")
    assert installed_guard(treasury.safe) == guard.address
    assert installed_handler(treasury.safe) == handler_address()
    module_guard = int.from_bytes(bytes(chain.provider.get_storage(treasury.safe, MODULE_GUARD_STORAGE_SLOT)), "big")
    assert module_guard == (int(guard.address, 16) if version == "1.5.0" else 0)
    # once guarded, a second installation is refused
    refused = run("propose", "guard-install", guard.address)
    assert refused.exit_code != 0 and "already has guard" in refused.stderr


def test_a_safe_with_the_handler_cannot_sign_as_an_owner_of_another_safe(make_safe, owners, accounts, chain):
    """Its owners' signatures are no signature of the Safe: the toolkit says so before anything is sent."""
    from types import SimpleNamespace

    from builders import safe_transfer_tx

    from treasury.signatures import sign_as_contract_owner
    from treasury.signatures.verification import InvalidSignature

    inner_owners = [accounts[6], accounts[7], accounts[8]]
    inner = make_safe(inner_owners, 2, version="1.4.1", salt_nonce=31_100)
    outer = make_safe([owners[0], owners[1], SimpleNamespace(address=inner.address)], 2, version="1.4.1", salt_nonce=31_101)
    tx = safe_transfer_tx(chain, outer, STRANGER)
    with pytest.raises(InvalidSignature, match="uses TreasuryFallbackHandler"):
        sign_as_contract_owner(inner.address, inner_owners[:2], tx)


def test_guard_installation_batch_sets_the_handler_only_when_needed():
    from treasury.errors import InvalidInput
    from treasury.proposal import build
    from treasury.proposal.multisend import multisend_call_only

    safe, guard, ours = "0x" + "5a" * 20, "0x" + "6b" * 20, handler_address()
    to_safe = lambda signature, address: selector(signature) + bytes(12) + bytes.fromhex(address[2:].lower())  # noqa: E731
    for version, current, expected in (
        ("1.4.1", compatibility_handler("1.4.1"), [to_safe("setFallbackHandler(address)", ours), to_safe("setGuard(address)", guard)]),
        ("1.4.1", ours, [to_safe("setGuard(address)", guard)]),
        ("1.5.0", ours, [to_safe("setModuleGuard(address)", guard), to_safe("setGuard(address)", guard)]),
    ):
        intent = build.guard_installation(safe, version, guard, current_guard=ZERO_ADDRESS, current_handler=current, handler=ours)
        assert (intent.to, intent.operation) == (multisend_call_only(version), 1)
        packed = b"".join(packed_entry(to_checksum_address(safe), 0, data) for data in expected)
        assert intent.data == multisend_calldata(packed)
    with pytest.raises(InvalidInput, match="already has guard"):
        build.guard_installation(safe, "1.4.1", guard, current_guard=guard, current_handler=ours, handler=ours)
    change = build.fallback_handler_change(safe, ours)
    assert change.to == to_checksum_address(safe) and change.data == to_safe("setFallbackHandler(address)", ours)
