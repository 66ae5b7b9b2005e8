"""Signing a Safe transaction with ape accounts: every kind a Safe accepts, contract owners included.

Owners are ape accounts (keystores, hardware wallets, test accounts); this module never sees a
private key and never asks for a raw-hash signature. Each signature is checked to come from the
account that made it (recovery, or the on-chain approval) before it is returned; whether that
account is an owner is `treasury.signatures.verification.verify`'s question.

A Safe that owns another Safe signs through EIP-1271: its own owners sign the SafeMessage of its
CompatibilityFallbackHandler over what the outer Safe hands it (the whole EIP-712 preimage of the
safeTxHash for an outer Safe below 1.5.0, the safeTxHash itself from 1.5.0 on), and the encoded
result is put to the owner Safe's own check exactly as the outer Safe will put it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_abi import encode as abi_encode
from eth_account.messages import encode_defunct, encode_typed_data
from eth_utils import keccak
from hexbytes import HexBytes
from safe_eth.safe.safe_signature import (
    SafeSignature,
    SafeSignatureApprovedHash,
    SafeSignatureContract,
    uses_bytes32_eip1271,
)
from safe_eth.safe.safe_tx import SafeTx
from safe_eth.safe.signatures import signature_to_bytes

from treasury.addresses import ZERO_ADDRESS, parse_address
from treasury.chain.artifacts import DEFAULT_VERSION, SUPPORTED_VERSIONS, safe_contract
from treasury.errors import InvalidInput
from treasury.signatures.guard_messages import GuardMessage
from treasury.signatures.owners import current_owners, is_approved, safe_at
from treasury.signatures.verification import (
    KINDS,
    InvalidSignature,
    check_eip1271,
    hex_of,
    kind_of,
    verify_against,
)
from treasury.types import SignatureKind

if TYPE_CHECKING:
    from ape.api import AccountAPI

# keccak256("EIP712Domain(uint256 chainId,address verifyingContract)"), Safe >= 1.3.0.
_DOMAIN_TYPEHASH = keccak(text="EIP712Domain(uint256 chainId,address verifyingContract)")
# keccak256("SafeMessage(bytes message)"), the CompatibilityFallbackHandler's SAFE_MSG_TYPEHASH.
_SAFE_MSG_TYPEHASH = keccak(text="SafeMessage(bytes message)")
# The Safe's FallbackManager keeps its handler at keccak256("fallback_manager.handler.address").
_FALLBACK_HANDLER_SLOT = int.from_bytes(keccak(text="fallback_manager.handler.address"), "big")


# ---------------------------------------------------------------------------------------------
# Signing


def _check_account_signature(raw: bytes, digest: bytes, account_address: str, kind: str) -> SafeSignature:
    (signature,) = SafeSignature.parse_signature(raw, digest)
    if signature.owner != account_address:
        raise InvalidSignature(f"{kind} signature recovers to {signature.owner}, not to the signing account {account_address}")
    return signature


def _vrs(signed: Any) -> tuple[int, int, int]:
    v = int(signed.v)
    if v < 27:
        v += 27
    return v, int.from_bytes(bytes(signed.r), "big"), int.from_bytes(bytes(signed.s), "big")


def sign_digest(
    account: AccountAPI, kind: str, digest: bytes, typed_data: dict, safe_address: str, version: str
) -> SafeSignature:
    """Sign `digest` (the EIP-712 hash of `typed_data` for the Safe at `safe_address`) as `kind`."""
    if kind == "eip712":
        signed = account.sign_message(encode_typed_data(full_message=typed_data))
        if signed is None:
            raise InvalidSignature(f"account {account.address} declined to sign")
        v, r, s = _vrs(signed)
        return _check_account_signature(signature_to_bytes(v, r, s), digest, account.address, kind)
    if kind == "eth_sign":
        signed = account.sign_message(encode_defunct(primitive=bytes(digest)))
        if signed is None:
            raise InvalidSignature(f"account {account.address} declined to sign")
        v, r, s = _vrs(signed)
        return _check_account_signature(signature_to_bytes(v + 4, r, s), digest, account.address, kind)
    if kind == "approved_hash":
        owners = current_owners(safe_address, version)
        if account.address not in owners:
            raise InvalidSignature(
                f"account {account.address} is not an owner of Safe {safe_address}: its approveHash would revert (GS030)"
            )
        if not is_approved(safe_address, version, account.address, digest):
            safe_at(safe_address, version).approveHash(bytes(digest), sender=account)
            if not is_approved(safe_address, version, account.address, digest):
                raise InvalidSignature(f"approveHash({hex_of(digest)}) from {account.address} did not register on Safe {safe_address}")
        return SafeSignatureApprovedHash.build_for_owner(account.address, hex_of(digest))
    if kind == "contract":
        raise InvalidInput("a contract owner signs through sign_as_contract_owner (or contract_signature), not sign")
    raise InvalidInput(f"unknown signature kind {kind!r}: use one of {', '.join(KINDS)}")


def sign_safe_tx(account: AccountAPI, safe_tx: SafeTx) -> SafeSignature:
    """Have `account` sign the transaction's EIP-712 typed data; the signer is checked by recovery."""
    return sign_digest(account, "eip712", bytes(safe_tx.safe_tx_hash), safe_tx.eip712_structured_data,
                       safe_tx.safe_address, safe_tx.safe_version)


def sign(account: AccountAPI, safe_tx: SafeTx, kind: SignatureKind = "eip712") -> SafeSignature:
    """Have the ape `account` sign `safe_tx` as `kind` (eip712, eth_sign or approved_hash).

    The result is checked to come from `account` (recovery, or the on-chain approval), not yet
    against the Safe's owners: that is `verify`'s job (or `SignatureSet.add`'s).
    approved_hash sends approveHash from `account` (a transaction), unless already approved.
    """
    return sign_digest(
        account, kind, bytes(safe_tx.safe_tx_hash), safe_tx.eip712_structured_data, safe_tx.safe_address, safe_tx.safe_version
    )


# ---------------------------------------------------------------------------------------------
# Contract owners (EIP-1271), in particular a Safe owned by other accounts


@dataclass(frozen=True)
class OwnerSafeMessage:
    """What the owners of an owner Safe sign so that it vouches for an outer Safe transaction."""

    owner_safe: str
    chain_id: int
    message: bytes  # what the outer Safe passes to the owner's isValidSignature (per outer version)
    hash: bytes  # the owner Safe's getMessageHash(message): what its owners' signatures are over
    typed_data: dict  # the SafeMessage EIP-712 typed data whose hash is `hash`


def owner_safe_message(owner_safe: str, chain_id: int, message: bytes) -> OwnerSafeMessage:
    """The SafeMessage (owner Safe's domain) over `message`: what its owners sign so that its
    isValidSignature vouches for `message` (a Safe transaction's, or a drill challenge's digest)."""
    domain_separator = keccak(abi_encode(["bytes32", "uint256", "address"], [_DOMAIN_TYPEHASH, chain_id, owner_safe]))
    struct_hash = keccak(abi_encode(["bytes32", "bytes32"], [_SAFE_MSG_TYPEHASH, keccak(message)]))
    digest = keccak(b"\x19\x01" + domain_separator + struct_hash)
    typed_data = {
        "types": {
            "EIP712Domain": [{"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "SafeMessage": [{"name": "message", "type": "bytes"}],
        },
        "primaryType": "SafeMessage",
        "domain": {"chainId": chain_id, "verifyingContract": owner_safe},
        "message": {"message": HexBytes(message)},
    }
    signable = encode_typed_data(full_message=typed_data)
    if keccak(b"\x19" + signable.version + signable.header + signable.body) != digest:  # the two derivations agree
        raise InvalidSignature(f"internal error: SafeMessage typed data of {owner_safe} does not hash to its message hash")
    return OwnerSafeMessage(owner_safe, chain_id, bytes(message), digest, typed_data)


_owner_safe_message = owner_safe_message  # the earlier private name


def contract_owner_message(owner_safe: str, safe_tx: SafeTx) -> OwnerSafeMessage:
    """The SafeMessage the owners of `owner_safe` sign for `safe_tx` of the outer Safe.

    The outer Safe's version decides what its check hands the owner: below 1.5.0 the whole
    EIP-712 preimage of the safeTxHash (legacy isValidSignature(bytes,bytes)); from 1.5.0 the
    safeTxHash (isValidSignature(bytes32,bytes), which the handler wraps as abi.encode(hash)).
    """
    owner_safe = parse_address(owner_safe, "owner Safe")
    if uses_bytes32_eip1271(safe_tx.safe_version):
        message = bytes(safe_tx.safe_tx_hash)
    else:
        message = bytes(safe_tx.safe_tx_hash_preimage)
    return owner_safe_message(owner_safe, safe_tx.chain_id, message)


def sign_owner_message(account: AccountAPI, message: OwnerSafeMessage, kind: SignatureKind = "eip712") -> SafeSignature:
    """One owner of an owner Safe signs its SafeMessage (eip712 typed data, eth_sign, or approveHash
    on the owner Safe). Checked to come from `account`, not yet against the owner Safe's owners."""
    version = _safe_version_at(message.owner_safe)
    return sign_digest(account, kind, message.hash, message.typed_data, message.owner_safe, version)


def contract_signature(owner: str, safe_tx: SafeTx, signature_data: bytes | Sequence[SafeSignature]) -> SafeSignatureContract:
    """Encode (no checks) a contract owner's signature: `signature_data` is what the owner's
    isValidSignature receives; a list of the owner Safe's own signatures is encoded for it."""
    if not isinstance(signature_data, (bytes, bytearray, HexBytes)):
        signature_data = bytes(SafeSignature.export_signatures(list(signature_data)))
    return SafeSignatureContract.from_values(
        parse_address(owner, "contract owner"), bytes(safe_tx.safe_tx_hash), bytes(safe_tx.safe_tx_hash_preimage), bytes(signature_data)
    )


def _safe_version_at(address: str) -> str:
    try:
        version = str(safe_at(address, DEFAULT_VERSION).VERSION())
    except Exception:  # noqa: BLE001
        raise InvalidSignature(
            f"owner {address} is not a Safe (no VERSION()); for another EIP-1271 contract use contract_signature"
        ) from None
    if version not in SUPPORTED_VERSIONS:
        raise InvalidSignature(f"owner Safe {address} is version {version}; supported are {', '.join(SUPPORTED_VERSIONS)}")
    return version


def _check_handler_entrypoint(owner_safe: str, owner_version: str, outer_version: str) -> None:
    """A Safe below 1.5.0 calls isValidSignature(bytes,bytes), which the 1.5.0 handler dropped; and
    TreasuryFallbackHandler ignores owner signatures altogether."""
    from ape import chain

    from treasury.chain.handler import handler_address

    slot = bytes(chain.provider.get_storage(owner_safe, _FALLBACK_HANDLER_SLOT))
    handler = parse_address("0x" + slot[-20:].hex(), "fallback handler")
    if handler == handler_address():
        raise InvalidSignature(
            f"owner Safe {owner_safe} uses TreasuryFallbackHandler, which signs as that Safe only hashes its guard "
            "approved (approveMessage through its delay queue), never what its owners sign"
        )
    if uses_bytes32_eip1271(outer_version):
        return
    if handler == ZERO_ADDRESS:
        raise InvalidSignature(f"owner Safe {owner_safe} has no fallback handler, so it cannot answer EIP-1271 checks")
    if handler == safe_contract("1.5.0", "compatibility_fallback_handler").canonical_address:
        raise InvalidSignature(
            f"owner Safe {owner_safe} (version {owner_version}) uses the 1.5.0 CompatibilityFallbackHandler, which has no "
            f"isValidSignature(bytes,bytes), the only EIP-1271 check a Safe {outer_version} makes"
        )


def sign_as_contract_owner(
    owner_safe_address: str,
    inner_signers: Sequence[AccountAPI | SafeSignature],
    safe_tx: SafeTx,
    *,
    kind: SignatureKind = "eip712",
) -> SafeSignatureContract:
    """A Safe that owns the outer Safe signs `safe_tx`: its owners (`inner_signers`) sign its SafeMessage.

    `inner_signers` are ape accounts (they sign as `kind`: eip712, eth_sign or approved_hash on the
    owner Safe) or SafeSignatures already made over `contract_owner_message(...).hash`. Each is
    checked against the owner Safe's current owners; duplicates are refused; the encoded result is
    then put to the owner Safe's own EIP-1271 check exactly as the outer Safe will (raises
    InvalidSignature, e.g. when the owner Safe's threshold is not met).
    """
    owner_safe = parse_address(owner_safe_address, "owner Safe")
    outer_version = safe_tx.safe_version
    owner_version = _safe_version_at(owner_safe)
    _check_handler_entrypoint(owner_safe, owner_version, outer_version)
    message = contract_owner_message(owner_safe, safe_tx)
    inner_owners = set(current_owners(owner_safe, owner_version))
    collected: dict[str, SafeSignature] = {}
    for signer in inner_signers:
        if isinstance(signer, SafeSignature):
            if bytes(signer.safe_hash) != message.hash:
                raise InvalidSignature(
                    f"{kind_of(signer)} signature for owner Safe {owner_safe} is over {hex_of(signer.safe_hash)}, "
                    f"not its message hash {hex_of(message.hash)} for this transaction"
                )
            signature = signer
        else:
            signature = sign_digest(signer, kind, message.hash, message.typed_data, owner_safe, owner_version)
        if kind_of(signature) != "contract":  # nested contract signatures are left to the on-chain check
            signature = verify_against(
                signature, safe_hash=message.hash, preimage=message.message, safe_address=owner_safe,
                version=owner_version, owners=inner_owners, executor=None, safe_tx=None,
            )
        if signature.owner in collected:
            raise InvalidSignature(f"owner {signature.owner} of owner Safe {owner_safe} signed twice; a second signature is refused")
        collected[signature.owner] = signature
    result = contract_signature(owner_safe, safe_tx, list(collected.values()))
    check_eip1271(
        owner_safe, bytes(safe_tx.safe_tx_hash), bytes(safe_tx.safe_tx_hash_preimage),
        bytes(result.contract_signature), outer_version, safe_tx.safe_address,
    )
    return result



# ---------------------------------------------------------------------------------------------
# TreasuryGuard's delay queue: Schedule and Cancel messages


def sign_guard_message(account: AccountAPI, message: GuardMessage, version: str, kind: SignatureKind = "eip712") -> SafeSignature:
    """Have `account` sign a guard Schedule or Cancel message as `kind` (eip712, eth_sign, or
    approveHash of its hash on the Safe, which is what the Safe checks for the guard).

    Checked to come from `account` (recovery, or the on-chain approval), not yet against the
    Safe's owners: that is `verify_guard_signature`'s job.
    """
    if kind == "contract":
        raise InvalidInput("a contract owner's signature of a guard message is imported from a bundle, not signed here")
    return sign_digest(account, kind, message.hash, message.typed_data, message.safe, version)
