"""Owner signatures of every kind a Safe accepts, checked against the Safe's current owners.

Kinds (the names used everywhere in this project, bundles included):
- ``eip712``: the owner's ape account signs the SafeTx typed data (``signing.sign_safe_tx``).
- ``eth_sign``: for accounts that cannot sign typed data: the account signs the 32-byte
  safeTxHash as a personal message; the Safe expects such a signature with ``v + 4``.
- ``approved_hash``: the owner sends ``approveHash(safeTxHash)`` from its ape account; the
  signature is then ``{r = owner}{s = 0}{v = 1}``.
- ``contract``: an owner that is a contract (EIP-1271), typically a Safe owned by other
  accounts. For a Safe owner, its own owners sign the SafeMessage of its
  CompatibilityFallbackHandler over what the outer Safe hands it: the whole EIP-712 preimage of
  the safeTxHash for an outer Safe below 1.5.0 (``isValidSignature(bytes,bytes)``), or the
  safeTxHash itself from 1.5.0 on (``isValidSignature(bytes32,bytes)``).

Encoding and parsing go through safe-eth-py's ``SafeSignature`` classes. Nothing here trusts a
signature's own idea of its signer or hash: ``verify`` recovers (or, for approved hashes and
contract owners, asks the chain) against the hash recomputed from the transaction. Signers are
ape accounts; this module never sees a private key and never asks for a raw-hash signature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from eth_abi import encode as abi_encode
from eth_account.messages import encode_defunct, encode_typed_data
from eth_utils import function_signature_to_4byte_selector, keccak
from hexbytes import HexBytes
from safe_eth.safe.safe_signature import (
    SafeSignature,
    SafeSignatureApprovedHash,
    SafeSignatureContract,
    SafeSignatureType,
    uses_bytes32_eip1271,
)
from safe_eth.safe.safe_tx import SafeTx
from safe_eth.safe.signatures import signature_to_bytes

from treasury.addresses import ZERO_ADDRESS, parse_address
from treasury.chain.artifacts import DEFAULT_VERSION, SUPPORTED_VERSIONS, safe_contract
from treasury.errors import InvalidInput
from treasury.signatures.sign import build_safe_tx, sign_safe_tx

if TYPE_CHECKING:
    from ape.api import AccountAPI

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_VERSION",
    "KINDS",
    "InvalidBundle",
    "InvalidSignature",
    "OwnerSafeMessage",
    "SignatureSet",
    "contract_owner_message",
    "contract_signature",
    "current_owners",
    "current_threshold",
    "encode",
    "export_bundle",
    "import_bundle",
    "kind_of",
    "parse_signature",
    "sign",
    "sign_as_contract_owner",
    "sign_owner_message",
    "threshold_met",
    "verify",
]

KINDS = ("eip712", "eth_sign", "approved_hash", "contract")
_KIND_OF_TYPE = {
    SafeSignatureType.EOA: "eip712",
    SafeSignatureType.ETH_SIGN: "eth_sign",
    SafeSignatureType.APPROVED_HASH: "approved_hash",
    SafeSignatureType.CONTRACT_SIGNATURE: "contract",
}

BUNDLE_FORMAT = "ape-treasury/signature-bundle"
BUNDLE_FORMAT_VERSION = 1

# keccak256("EIP712Domain(uint256 chainId,address verifyingContract)"), Safe >= 1.3.0.
_DOMAIN_TYPEHASH = keccak(text="EIP712Domain(uint256 chainId,address verifyingContract)")
# keccak256("SafeMessage(bytes message)"), the CompatibilityFallbackHandler's SAFE_MSG_TYPEHASH.
_SAFE_MSG_TYPEHASH = keccak(text="SafeMessage(bytes message)")
# The Safe's FallbackManager keeps its handler at keccak256("fallback_manager.handler.address").
_FALLBACK_HANDLER_SLOT = int.from_bytes(keccak(text="fallback_manager.handler.address"), "big")

_LEGACY_1271 = function_signature_to_4byte_selector("isValidSignature(bytes,bytes)")
_BYTES32_1271 = function_signature_to_4byte_selector("isValidSignature(bytes32,bytes)")
_LEGACY_MAGIC = bytes.fromhex("20c13b0b")
_BYTES32_MAGIC = bytes.fromhex("1626ba7e")

# What a Safe's revert codes mean when an owner Safe rejects an EIP-1271 check.
_GS_REASONS = {
    "GS020": "the owner's own threshold is not met (too few of its owners signed)",
    "GS021": "a contract signature points inside the static part",
    "GS022": "a contract signature is out of bounds",
    "GS023": "a contract signature's data is out of bounds",
    "GS024": "a nested contract signature was rejected",
    "GS025": "an approved hash was not approved on chain",
    "GS026": "a signer is not one of the owner's owners, or signers are repeated or unsorted",
    "GS027": "the data does not hash to the signed hash",
}

# Where to look when a signature was made over another hash, to say which field differed.
_NONCE_WINDOW = 10
_CHAIN_IDS = (1, 10, 56, 100, 137, 250, 324, 1101, 5000, 8453, 17000, 42161, 43114, 59144, 534352, 11155111, 1337, 31337)


class InvalidSignature(InvalidInput):
    """A signature that a Safe would not accept from this transaction; the message says why."""


class InvalidBundle(InvalidInput):
    """A signature bundle that is malformed, altered, or for another transaction."""


# ---------------------------------------------------------------------------------------------
# Chain reads


def _safe(address: str, version: str):
    from treasury.chain.safe import safe_instance

    return safe_instance(address, version)


def current_owners(safe_address: str, version: str = DEFAULT_VERSION) -> tuple[str, ...]:
    """The Safe's owners as the chain says now (getOwners), checksummed."""
    return tuple(parse_address(str(owner), "owner") for owner in _safe(parse_address(safe_address, "Safe"), version).getOwners())


def current_threshold(safe_address: str, version: str = DEFAULT_VERSION) -> int:
    """The Safe's threshold as the chain says now."""
    return int(_safe(parse_address(safe_address, "Safe"), version).getThreshold())


def _is_approved(safe_address: str, version: str, owner: str, safe_hash: bytes) -> bool:
    return int(_safe(safe_address, version).approvedHashes(owner, bytes(safe_hash))) != 0


def _code(address: str) -> bytes:
    from ape import chain

    return bytes(chain.provider.get_code(address))


def _revert_reason(error: Exception) -> str:
    from eth_abi import decode

    data = getattr(error, "data", None)
    if isinstance(data, (bytes, bytearray)):
        data = "0x" + bytes(data).hex()
    if isinstance(data, str) and data.startswith("0x08c379a0"):
        try:
            return decode(["string"], bytes.fromhex(data[10:]))[0]
        except Exception:  # noqa: BLE001 - an undecodable reason is still reported below
            pass
    if isinstance(data, str) and len(data) > 2:
        return f"custom error {data[:10]}"
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return " ".join(str(message).split())


def _explain_gs(reason: str) -> str:
    code = reason.strip()
    return f"{code}: {_GS_REASONS[code]}" if code in _GS_REASONS else code


# ---------------------------------------------------------------------------------------------
# Parsing and naming


def kind_of(signature: SafeSignature) -> str:
    """This project's name for the signature's kind: eip712, eth_sign, approved_hash or contract."""
    kind = _KIND_OF_TYPE.get(signature.signature_type)
    if kind is None:
        raise InvalidSignature(f"unsupported signature type {signature.signature_type.name} (v={signature.v})")
    return kind


def _hex(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def _parse_single(raw: bytes | str, safe_hash: bytes, preimage: bytes | None) -> SafeSignature:
    """Exactly one canonically encoded signature, or InvalidSignature('malformed ...')."""
    if isinstance(raw, str):
        text = raw[2:] if raw.startswith(("0x", "0X")) else raw
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InvalidSignature(f"malformed signature: {raw[:20]!r}... is not hex") from None
    raw = bytes(raw)
    if len(raw) < 65:
        raise InvalidSignature(f"malformed signature: {len(raw)} bytes, a Safe signature has at least 65")
    v = raw[64]
    if v == 2:
        raise InvalidSignature("unsupported signature type: v=2 (secp256r1 passkey) is not handled by this project")
    if v not in (0, 1, 27, 28, 31, 32):
        raise InvalidSignature(
            f"malformed signature: v={v} is none of 27/28 (eip712), 31/32 (eth_sign), 1 (approved hash), 0 (contract)"
        )
    if v != 0 and len(raw) != 65:
        raise InvalidSignature(
            f"malformed signature: {len(raw)} bytes that are not exactly one {_KIND_OF_TYPE[SafeSignatureType.from_v(v)]} signature (65 bytes)"
        )
    try:
        parsed = SafeSignature.parse_signature(raw, safe_hash, preimage)
    except Exception as error:  # noqa: BLE001 - safe-eth-py raises several types for bad bytes
        raise InvalidSignature(f"malformed signature: {' '.join(str(error).split())[:120]}") from None
    if len(parsed) != 1 or bytes(parsed[0].export_signature()) != raw:
        raise InvalidSignature(
            f"malformed signature: {len(raw)} bytes that are not exactly one canonically encoded {_KIND_OF_TYPE.get(SafeSignatureType.from_v(v), 'Safe')} signature"
        )
    signature = parsed[0]
    if signature.signature_type in (SafeSignatureType.EOA, SafeSignatureType.ETH_SIGN):
        try:
            owner = signature.owner
        except Exception:  # noqa: BLE001 - out-of-range r/s
            owner = ZERO_ADDRESS
        if owner == ZERO_ADDRESS:
            raise InvalidSignature(f"malformed {kind_of(signature)} signature: it recovers to no address")
    return signature


def parse_signature(data: bytes | str, safe_tx: SafeTx) -> SafeSignature:
    """One signature (bytes or hex, as exported) read against `safe_tx`'s hash; not yet verified."""
    return _parse_single(data, bytes(safe_tx.safe_tx_hash), bytes(safe_tx.safe_tx_hash_preimage))


# ---------------------------------------------------------------------------------------------
# Explaining a signature over another hash


def _variant(safe_tx: SafeTx, *, nonce: int | None = None, chain_id: int | None = None) -> SafeTx:
    return build_safe_tx(
        safe_tx.safe_address, safe_tx.to, safe_tx.value, bytes(safe_tx.data), safe_tx.operation,
        nonce=safe_tx.safe_nonce if nonce is None else nonce,
        chain_id=safe_tx.chain_id if chain_id is None else chain_id,
        version=safe_tx.safe_version,
        safe_tx_gas=safe_tx.safe_tx_gas, base_gas=safe_tx.base_gas, gas_price=safe_tx.gas_price,
        gas_token=safe_tx.gas_token, refund_receiver=safe_tx.refund_receiver,
    )


def _variants(safe_tx: SafeTx) -> Iterator[tuple[str, bytes]]:
    """(what differs, hash) for the same transaction at nearby nonces and on other chains."""
    nonce, chain_id = safe_tx.safe_nonce, safe_tx.chain_id
    for other in range(max(0, nonce - _NONCE_WINDOW), nonce + _NONCE_WINDOW + 1):
        if other != nonce:
            yield f"nonce {other} (this transaction has nonce {nonce})", bytes(_variant(safe_tx, nonce=other).safe_tx_hash)
    for other in dict.fromkeys((*_CHAIN_IDS, chain_id - 1, chain_id + 1)):
        if other != chain_id and other > 0:
            yield f"chain id {other} (this transaction is for chain id {chain_id})", bytes(_variant(safe_tx, chain_id=other).safe_tx_hash)


_OTHER_PAYLOAD = "a different payload (to, value, data, operation or gas fields) or for another Safe"


def _which_hash(signed_hash: bytes, safe_tx: SafeTx) -> str:
    """Why `signed_hash` differs from the transaction's safeTxHash, as far as can be told."""
    for label, candidate in _variants(safe_tx):
        if candidate == signed_hash:
            return f"it was made for {label}"
    return f"it was made over {_OTHER_PAYLOAD}"


def _which_owner_hash(raw: bytes, safe_tx: SafeTx, owners: set[str]) -> str | None:
    """For an ECDSA signature that does not recover to an owner here: an owner's, for what hash?"""
    for label, candidate in _variants(safe_tx):
        try:
            signer = SafeSignature.parse_signature(raw, candidate)[0].owner
        except Exception:  # noqa: BLE001
            continue
        if signer in owners:
            return f"it is owner {signer}'s signature for {label}"
    return None


# ---------------------------------------------------------------------------------------------
# Verification


def _check_eip1271(owner: str, safe_hash: bytes, preimage: bytes, contract_sig: bytes, version: str, caller: str) -> None:
    """Ask `owner` the question the Safe of `version` asks it; raise InvalidSignature unless it agrees."""
    from ape import chain

    if not _code(owner):
        raise InvalidSignature(f"contract signature names owner {owner}, which has no code: an EIP-1271 owner must be a contract")
    if uses_bytes32_eip1271(version):
        entrypoint, magic = "isValidSignature(bytes32,bytes)", _BYTES32_MAGIC
        calldata = _BYTES32_1271 + abi_encode(["bytes32", "bytes"], [bytes(safe_hash), bytes(contract_sig)])
    else:
        entrypoint, magic = "isValidSignature(bytes,bytes)", _LEGACY_MAGIC
        calldata = _LEGACY_1271 + abi_encode(["bytes", "bytes"], [bytes(preimage), bytes(contract_sig)])
    try:
        result = bytes(chain.provider.web3.eth.call({"from": caller, "to": owner, "data": _hex(calldata)}))
    except Exception as error:  # noqa: BLE001 - any revert is a rejection; say what it said
        raise InvalidSignature(
            f"EIP-1271 owner {owner} rejected the signature: {entrypoint} reverted with {_explain_gs(_revert_reason(error))}"
        ) from None
    if result[:4] != magic:
        raise InvalidSignature(
            f"EIP-1271 owner {owner} rejected the signature: {entrypoint} returned {_hex(result[:4]) if result else 'nothing'}, not {_hex(magic)}"
        )


def _verify_against(
    signature: SafeSignature,
    *,
    safe_hash: bytes,
    preimage: bytes,
    safe_address: str,
    version: str,
    owners: set[str],
    executor: str | None,
    safe_tx: SafeTx | None,
    claimed_owner: str | None = None,
) -> SafeSignature:
    """The common check for a signature over `safe_hash` on the Safe at `safe_address`.

    Re-parses the signature's bytes against `safe_hash` (its own recorded hash is not trusted),
    then checks the signer is an owner and, per kind, recovery / on-chain approval / EIP-1271.
    Returns the re-parsed signature.
    """
    kind = kind_of(signature)
    raw = bytes(signature.export_signature())
    parsed = _parse_single(raw, safe_hash, preimage)
    owner = parsed.owner
    owners_text = ", ".join(sorted(owners)) or "none"
    if claimed_owner is not None and owner != claimed_owner:
        if kind in ("eip712", "eth_sign"):
            if owner in owners:
                raise InvalidSignature(f"{kind} signature said to be by {claimed_owner} is by owner {owner}: the owner field was swapped or edited")
            why = (safe_tx and _which_owner_hash(raw, safe_tx, owners)) or "its bytes were altered, or it was made over another transaction"
            raise InvalidSignature(f"{kind} signature said to be by {claimed_owner} recovers to {owner} over this safeTxHash: {why}")
        raise InvalidSignature(f"{kind} signature said to be by {claimed_owner} names owner {owner}")
    if owner not in owners:
        if kind in ("eip712", "eth_sign") and safe_tx is not None:
            why = _which_owner_hash(raw, safe_tx, owners)
            if why:
                raise InvalidSignature(f"{kind} signature recovers to {owner}, not an owner, over this safeTxHash: {why}")
        raise InvalidSignature(f"{kind} signer {owner} is not an owner of Safe {safe_address} (current owners: {owners_text})")
    if kind == "approved_hash":
        if executor is not None and parse_address(executor, "executor") == owner:
            return parsed  # the Safe accepts v=1 from the owner that sends execTransaction
        if not _is_approved(safe_address, version, owner, safe_hash):
            raise InvalidSignature(
                f"approved_hash signature for owner {owner}: the Safe {safe_address} has no approveHash({_hex(safe_hash)}) from {owner} on chain"
            )
    elif kind == "contract":
        _check_eip1271(owner, safe_hash, preimage, bytes(parsed.contract_signature), version, safe_address)
    return parsed


def verify(
    signature: SafeSignature, safe_tx: SafeTx, owners: Sequence[str], *, executor: str | None = None
) -> None:
    """Raise InvalidSignature unless the Safe would count `signature` from one of `owners` for `safe_tx`.

    `owners` should be the Safe's current owners (`current_owners`). `executor`: the account that
    will send execTransaction, which needs no on-chain approval for its own approved_hash signature.
    """
    if not isinstance(signature, SafeSignature):
        raise InvalidSignature(f"not a SafeSignature: {type(signature).__name__}")
    expected = bytes(safe_tx.safe_tx_hash)
    signed = bytes(signature.safe_hash)
    if signed != expected:
        kind = kind_of(signature)
        try:
            by = signature.owner
        except Exception:  # noqa: BLE001
            by = "an unknown signer"
        raise InvalidSignature(
            f"{kind} signature by {by} is over hash {_hex(signed)}, not this transaction's safeTxHash {_hex(expected)}: "
            f"{_which_hash(signed, safe_tx)}"
        )
    _verify_against(
        signature,
        safe_hash=expected,
        preimage=bytes(safe_tx.safe_tx_hash_preimage),
        safe_address=safe_tx.safe_address,
        version=safe_tx.safe_version,
        owners={parse_address(o, "owner") for o in owners},
        executor=executor,
        safe_tx=safe_tx,
    )


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


def _sign_digest(
    account: "AccountAPI", kind: str, digest: bytes, typed_data: dict, safe_address: str, version: str
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
        if not _is_approved(safe_address, version, account.address, digest):
            _safe(safe_address, version).approveHash(bytes(digest), sender=account)
            if not _is_approved(safe_address, version, account.address, digest):
                raise InvalidSignature(f"approveHash({_hex(digest)}) from {account.address} did not register on Safe {safe_address}")
        return SafeSignatureApprovedHash.build_for_owner(account.address, _hex(digest))
    if kind == "contract":
        raise InvalidInput("a contract owner signs through sign_as_contract_owner (or contract_signature), not sign")
    raise InvalidInput(f"unknown signature kind {kind!r}: use one of {', '.join(KINDS)}")


def sign(account: "AccountAPI", safe_tx: SafeTx, kind: str = "eip712") -> SafeSignature:
    """Have the ape `account` sign `safe_tx` as `kind` (eip712, eth_sign or approved_hash).

    The result is checked to come from `account` (recovery, or the on-chain approval), not yet
    against the Safe's owners: that is `verify`'s job (or `SignatureSet.add`'s).
    approved_hash sends approveHash from `account` (a transaction), unless already approved.
    """
    if kind == "eip712":
        try:
            return sign_safe_tx(account, safe_tx)
        except InvalidSignature:
            raise
        except InvalidInput as error:
            raise InvalidSignature(str(error)) from None
    return _sign_digest(
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


def _owner_safe_message(owner_safe: str, chain_id: int, message: bytes) -> OwnerSafeMessage:
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
    return _owner_safe_message(owner_safe, safe_tx.chain_id, message)


def sign_owner_message(account: "AccountAPI", message: OwnerSafeMessage, kind: str = "eip712") -> SafeSignature:
    """One owner of an owner Safe signs its SafeMessage (eip712 typed data, eth_sign, or approveHash
    on the owner Safe). Checked to come from `account`, not yet against the owner Safe's owners."""
    version = _safe_version_at(message.owner_safe)
    return _sign_digest(account, kind, message.hash, message.typed_data, message.owner_safe, version)


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
        version = str(_safe(address, DEFAULT_VERSION).VERSION())
    except Exception:  # noqa: BLE001
        raise InvalidSignature(
            f"owner {address} is not a Safe (no VERSION()); for another EIP-1271 contract use contract_signature"
        ) from None
    if version not in SUPPORTED_VERSIONS:
        raise InvalidSignature(f"owner Safe {address} is version {version}; supported are {', '.join(SUPPORTED_VERSIONS)}")
    return version


def _check_handler_entrypoint(owner_safe: str, owner_version: str, outer_version: str) -> None:
    """A Safe below 1.5.0 calls isValidSignature(bytes,bytes), which the 1.5.0 handler dropped."""
    from ape import chain

    if uses_bytes32_eip1271(outer_version):
        return
    slot = bytes(chain.provider.get_storage(owner_safe, _FALLBACK_HANDLER_SLOT))
    handler = parse_address("0x" + slot[-20:].hex(), "fallback handler")
    if handler == ZERO_ADDRESS:
        raise InvalidSignature(f"owner Safe {owner_safe} has no fallback handler, so it cannot answer EIP-1271 checks")
    if handler == safe_contract("1.5.0", "compatibility_fallback_handler").canonical_address:
        raise InvalidSignature(
            f"owner Safe {owner_safe} (version {owner_version}) uses the 1.5.0 CompatibilityFallbackHandler, which has no "
            f"isValidSignature(bytes,bytes), the only EIP-1271 check a Safe {outer_version} makes"
        )


def sign_as_contract_owner(
    owner_safe_address: str,
    inner_signers: Sequence["AccountAPI | SafeSignature"],
    safe_tx: SafeTx,
    *,
    kind: str = "eip712",
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
                    f"{kind_of(signer)} signature for owner Safe {owner_safe} is over {_hex(signer.safe_hash)}, "
                    f"not its message hash {_hex(message.hash)} for this transaction"
                )
            signature = signer
        else:
            signature = _sign_digest(signer, kind, message.hash, message.typed_data, owner_safe, owner_version)
        if kind_of(signature) != "contract":  # nested contract signatures are left to the on-chain check
            signature = _verify_against(
                signature, safe_hash=message.hash, preimage=message.message, safe_address=owner_safe,
                version=owner_version, owners=inner_owners, executor=None, safe_tx=None,
            )
        if signature.owner in collected:
            raise InvalidSignature(f"owner {signature.owner} of owner Safe {owner_safe} signed twice; a second signature is refused")
        collected[signature.owner] = signature
    result = contract_signature(owner_safe, safe_tx, list(collected.values()))
    _check_eip1271(
        owner_safe, bytes(safe_tx.safe_tx_hash), bytes(safe_tx.safe_tx_hash_preimage),
        bytes(result.contract_signature), outer_version, safe_tx.safe_address,
    )
    return result


# ---------------------------------------------------------------------------------------------
# Collecting


def encode(signatures: Sequence[SafeSignature]) -> bytes:
    """The execTransaction `signatures` argument: one per owner, sorted by owner (export_signatures)."""
    seen: set[str] = set()
    for signature in signatures:
        if signature.owner in seen:
            raise InvalidSignature(f"owner {signature.owner} appears twice; the Safe would reject the set (GS026)")
        seen.add(signature.owner)
    return bytes(SafeSignature.export_signatures(list(signatures)))


def threshold_met(signatures: Sequence[SafeSignature], owners: Sequence[str], threshold: int) -> bool:
    """Whether `signatures` come from at least `threshold` distinct members of `owners`."""
    members = {parse_address(o, "owner") for o in owners}
    return len({s.owner for s in signatures} & members) >= threshold


class SignatureSet:
    """Signatures collected for one Safe transaction: each verified on entry, one per owner.

    `owners` defaults to the Safe's current owners, read from chain when the set is made.
    """

    def __init__(self, safe_tx: SafeTx, owners: Sequence[str] | None = None, *, executor: str | None = None):
        self.safe_tx = safe_tx
        self.owners: tuple[str, ...] = (
            current_owners(safe_tx.safe_address, safe_tx.safe_version) if owners is None
            else tuple(parse_address(o, "owner") for o in owners)
        )
        self.executor = executor
        self._by_owner: dict[str, SafeSignature] = {}

    def add(self, signature: SafeSignature) -> SafeSignature:
        """Verify and keep `signature`; a second signature from the same owner is refused."""
        verify(signature, self.safe_tx, self.owners, executor=self.executor)
        return self._keep(signature)

    def _keep(self, signature: SafeSignature) -> SafeSignature:
        owner = signature.owner
        if owner in self._by_owner:
            raise InvalidSignature(
                f"owner {owner} already signed this transaction ({kind_of(self._by_owner[owner])}); "
                f"a second signature ({kind_of(signature)}) is refused, remove the first to replace it"
            )
        self._by_owner[owner] = signature
        return signature

    def sign(self, account: "AccountAPI", kind: str = "eip712") -> SafeSignature:
        """`sign` with `account` and `add` the result."""
        return self.add(sign(account, self.safe_tx, kind))

    def add_contract_owner(self, owner_safe_address: str, inner_signers: Sequence, kind: str = "eip712") -> SafeSignature:
        """`sign_as_contract_owner` and `add` the result."""
        return self.add(sign_as_contract_owner(owner_safe_address, inner_signers, self.safe_tx, kind=kind))

    def remove(self, owner: str) -> SafeSignature:
        owner = parse_address(owner, "owner")
        if owner not in self._by_owner:
            raise InvalidInput(f"owner {owner} has not signed this transaction")
        return self._by_owner.pop(owner)

    @property
    def signatures(self) -> list[SafeSignature]:
        """Sorted by owner, as the Safe requires."""
        return [self._by_owner[o] for o in sorted(self._by_owner, key=str.lower)]

    @property
    def signers(self) -> list[str]:
        return [s.owner for s in self.signatures]

    def __len__(self) -> int:
        return len(self._by_owner)

    def __iter__(self) -> Iterator[SafeSignature]:
        return iter(self.signatures)

    def __contains__(self, owner: object) -> bool:
        return isinstance(owner, str) and owner.lower() in {o.lower() for o in self._by_owner}

    def encode(self) -> bytes:
        """The execTransaction `signatures` argument."""
        return encode(self.signatures)

    def threshold_met(self, owners: Sequence[str] | None = None, threshold: int | None = None) -> bool:
        """Whether enough owners signed; owners / threshold default to the Safe's current ones on chain."""
        if owners is None:
            owners = current_owners(self.safe_tx.safe_address, self.safe_tx.safe_version)
        if threshold is None:
            threshold = current_threshold(self.safe_tx.safe_address, self.safe_tx.safe_version)
        return threshold_met(self.signatures, owners, threshold)


# ---------------------------------------------------------------------------------------------
# Bundles for air-gapped signers

_TX_FIELDS = ("to", "value", "data", "operation", "safe_tx_gas", "base_gas", "gas_price", "gas_token", "refund_receiver")


def _tx_fields(safe_tx: SafeTx) -> dict[str, Any]:
    return {
        "to": safe_tx.to,
        "value": str(safe_tx.value),
        "data": _hex(safe_tx.data),
        "operation": safe_tx.operation,
        "safe_tx_gas": safe_tx.safe_tx_gas,
        "base_gas": safe_tx.base_gas,
        "gas_price": safe_tx.gas_price,
        "gas_token": safe_tx.gas_token,
        "refund_receiver": safe_tx.refund_receiver,
    }


def export_bundle(
    safe_tx: SafeTx, version: str | None, signatures: Sequence[SafeSignature], path: str | Path | None = None
) -> dict:
    """The transaction and its signatures as a JSON-ready dict (written to `path` if given).

    Every field the safeTxHash is computed from is included, so an importer recomputes the hash
    and never needs to trust the stated one. Signatures over another hash are refused.
    """
    version = version or safe_tx.safe_version
    if version != safe_tx.safe_version:
        raise InvalidInput(f"version {version} differs from the transaction's Safe version {safe_tx.safe_version}")
    safe_tx_hash = bytes(safe_tx.safe_tx_hash)
    preimage = bytes(safe_tx.safe_tx_hash_preimage)
    entries, seen = [], set()
    for signature in sorted(signatures, key=lambda s: s.owner.lower()):
        if bytes(signature.safe_hash) != safe_tx_hash:
            raise InvalidSignature(
                f"{kind_of(signature)} signature by {signature.owner} is over {_hex(signature.safe_hash)}, "
                f"not this transaction's safeTxHash {_hex(safe_tx_hash)}: {_which_hash(bytes(signature.safe_hash), safe_tx)}"
            )
        if signature.owner in seen:
            raise InvalidSignature(f"owner {signature.owner} appears twice; a bundle holds one signature per owner")
        seen.add(signature.owner)
        entries.append({"owner": signature.owner, "kind": kind_of(signature), "signature": _hex(signature.export_signature())})
    bundle = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "chain_id": safe_tx.chain_id,
        "safe": safe_tx.safe_address,
        "version": version,
        "nonce": safe_tx.safe_nonce,
        **_tx_fields(safe_tx),
        # For people comparing with a hardware wallet's screen: the preimage is 0x1901 || domain || message.
        "domain_hash": _hex(preimage[2:34]),
        "message_hash": _hex(preimage[34:66]),
        "safe_tx_hash": _hex(safe_tx_hash),
        "signatures": entries,
    }
    if path is not None:
        Path(path).write_text(json.dumps(bundle, indent=2) + "\n")
    return bundle


def _load_bundle(data_or_path: dict | str | Path) -> dict:
    if isinstance(data_or_path, dict):
        data = data_or_path
    else:
        text, where = None, "bundle"
        if isinstance(data_or_path, Path) or (isinstance(data_or_path, str) and not data_or_path.lstrip().startswith(("{", "["))):
            path = Path(data_or_path)
            where = f"bundle {path}"
            try:
                text = path.read_text()
            except (OSError, UnicodeDecodeError) as error:
                raise InvalidBundle(f"cannot read {where}: {error.strerror if isinstance(error, OSError) else error}") from None
        elif isinstance(data_or_path, (str, bytes)):
            text = data_or_path.decode() if isinstance(data_or_path, bytes) else data_or_path
        else:
            raise InvalidBundle(f"a bundle is a dict, JSON text or a path, not {type(data_or_path).__name__}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidBundle(f"{where} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    if not isinstance(data, dict):
        raise InvalidBundle(f"a bundle is a JSON object, not a {type(data).__name__}")
    return data


def bundle_safe_tx_hash(data_or_path: dict | str | Path) -> str:
    """The safeTxHash a bundle says it is for: only to find the proposal; import_bundle checks it."""
    return "0x" + _hex_field(_load_bundle(data_or_path), "safe_tx_hash", length=32).hex()


def _require(data: dict, key: str, kind: type | tuple, what: str, where: str = "bundle") -> Any:
    if key not in data:
        raise InvalidBundle(f"{where} is missing field {key!r} ({what})")
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InvalidBundle(f"{where} field {key!r} must be {what}, not {json.dumps(value)[:60]}")
    return value


def _uint(data: dict, key: str, *, decimal_string: bool = False) -> int:
    if decimal_string:
        text = _require(data, key, str, "a decimal string")
        if not text.isdigit():
            raise InvalidBundle(f"bundle field {key!r} must be a decimal string, not {text[:60]!r}")
        value = int(text)
    else:
        value = _require(data, key, int, "a non-negative integer")
    if not 0 <= value < 2**256:
        raise InvalidBundle(f"bundle field {key!r} is {value}, not a uint256")
    return value


def _address(data: dict, key: str, where: str = "bundle") -> str:
    text = _require(data, key, str, "a 0x address", where)
    try:
        return parse_address(text, f"{where} field {key!r}")
    except InvalidInput as error:
        raise InvalidBundle(str(error)) from None


def _hex_field(data: dict, key: str, where: str = "bundle", *, length: int | None = None) -> bytes:
    text = _require(data, key, str, "0x-prefixed hex", where)
    body = text[2:] if text.startswith("0x") else None
    try:
        value = bytes.fromhex(body) if body is not None and len(body) % 2 == 0 else None
    except ValueError:
        value = None
    if value is None or (length is not None and len(value) != length):
        size = f"{length} bytes of " if length else ""
        raise InvalidBundle(f"{where} field {key!r} must be {size}0x-prefixed hex, not {text[:40]!r}")
    return value


def _differences(bundle_tx: SafeTx, expected: SafeTx) -> str:
    pairs = [("Safe", bundle_tx.safe_address, expected.safe_address), ("chain id", bundle_tx.chain_id, expected.chain_id),
             ("nonce", bundle_tx.safe_nonce, expected.safe_nonce)]
    pairs += [(name, a, b) for name, a, b in ((n, _tx_fields(bundle_tx)[n], _tx_fields(expected)[n]) for n in _TX_FIELDS)]
    diffs = [f"{name} {str(a)[:42]} instead of {str(b)[:42]}" for name, a, b in pairs if a != b]
    return ", ".join(diffs) or "a field outside the hash"


def import_bundle(
    data_or_path: dict | str | Path,
    expected_safe_tx: SafeTx,
    *,
    owners: Sequence[str] | None = None,
    executor: str | None = None,
) -> list[SafeSignature]:
    """Signatures from a bundle, each re-verified for `expected_safe_tx` against the current owners.

    The safeTxHash is recomputed from the bundle's fields and must equal both the bundle's stated
    hash and the expected transaction's; each signature's owner comes from recovery (or the chain),
    never from the bundle's `owner` field, which must merely agree. Sorted by owner.
    """
    data = _load_bundle(data_or_path)
    if data.get("format") != BUNDLE_FORMAT:
        raise InvalidBundle(f"not an ape-treasury signature bundle (format {str(data.get('format'))[:60]!r}, expected {BUNDLE_FORMAT!r})")
    format_version = _require(data, "format_version", int, "an integer")
    if format_version != BUNDLE_FORMAT_VERSION:
        raise InvalidBundle(f"bundle format version {format_version} is not supported (this ape-treasury reads {BUNDLE_FORMAT_VERSION})")
    chain_id = _uint(data, "chain_id")
    safe = _address(data, "safe")
    version = _require(data, "version", str, "a Safe version string")
    if version not in SUPPORTED_VERSIONS:
        raise InvalidBundle(f"bundle Safe version {version[:20]!r} is not one of {', '.join(SUPPORTED_VERSIONS)}")
    nonce = _uint(data, "nonce")
    operation = _uint(data, "operation")
    if operation not in (0, 1):
        raise InvalidBundle(f"bundle field 'operation' is {operation}, neither CALL (0) nor DELEGATECALL (1)")
    tx_data = _hex_field(data, "data")
    stated = _hex_field(data, "safe_tx_hash", length=32)
    entries = _require(data, "signatures", list, "a list of {owner, kind, signature}")
    bundle_tx = build_safe_tx(
        safe, _address(data, "to"), _uint(data, "value", decimal_string=True), tx_data, operation,
        nonce=nonce, chain_id=chain_id, version=version,
        safe_tx_gas=_uint(data, "safe_tx_gas"), base_gas=_uint(data, "base_gas"), gas_price=_uint(data, "gas_price"),
        gas_token=_address(data, "gas_token"), refund_receiver=_address(data, "refund_receiver"),
    )
    recomputed = bytes(bundle_tx.safe_tx_hash)
    if recomputed != stated:
        raise InvalidBundle(
            f"bundle altered: its fields hash to safeTxHash {_hex(recomputed)}, but it states {_hex(stated)}"
        )
    preimage = bytes(bundle_tx.safe_tx_hash_preimage)
    for key, part in (("domain_hash", preimage[2:34]), ("message_hash", preimage[34:66])):
        if key in data and _hex_field(data, key, length=32) != part:
            raise InvalidBundle(f"bundle altered: its fields give {key} {_hex(part)}, but it states {data[key]}")
    expected = bytes(expected_safe_tx.safe_tx_hash)
    if recomputed != expected:
        raise InvalidBundle(
            f"bundle is for another transaction (safeTxHash {_hex(recomputed)}, expected {_hex(expected)}): "
            f"{_differences(bundle_tx, expected_safe_tx)}"
        )
    if version != expected_safe_tx.safe_version:
        raise InvalidBundle(f"bundle says Safe version {version}, the expected transaction is for {expected_safe_tx.safe_version}")

    collected = SignatureSet(expected_safe_tx, owners, executor=executor)
    current = set(collected.owners)
    for index, entry in enumerate(entries, start=1):
        where = f"bundle signature #{index}"
        if not isinstance(entry, dict):
            raise InvalidBundle(f"{where} must be an object {{owner, kind, signature}}, not {json.dumps(entry)[:60]}")
        claimed = _address(entry, "owner", where)
        kind = _require(entry, "kind", str, f"one of {', '.join(KINDS)}", where)
        if kind not in KINDS:
            raise InvalidBundle(f"{where} has unknown kind {kind[:30]!r} (one of {', '.join(KINDS)})")
        raw = _hex_field(entry, "signature", where)
        try:
            parsed = _parse_single(raw, expected, preimage)
            if kind_of(parsed) != kind:
                raise InvalidSignature(f"it is declared {kind} but its bytes make an {kind_of(parsed)} signature (v={parsed.v})")
            checked = _verify_against(
                parsed, safe_hash=expected, preimage=preimage, safe_address=expected_safe_tx.safe_address,
                version=expected_safe_tx.safe_version, owners=current, executor=executor,
                safe_tx=expected_safe_tx, claimed_owner=claimed,
            )
            collected._keep(checked)
        except InvalidSignature as error:
            raise InvalidSignature(f"{where}: {error}") from None
    return collected.signatures
