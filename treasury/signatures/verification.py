"""Reading and verifying owner signatures: what a Safe would accept, checked by recovery.

Kinds (the names used everywhere in this project, bundles and the store included):
- ``eip712``: an ECDSA signature over the SafeTx typed data (``v`` 27/28).
- ``eth_sign``: an ECDSA signature over the 32-byte safeTxHash as a personal message; the Safe
  expects it with ``v + 4`` (31/32).
- ``approved_hash``: the owner sent ``approveHash(safeTxHash)``; the signature is
  ``{r = owner}{s = 0}{v = 1}`` and its proof is on chain.
- ``contract``: an owner that is a contract (EIP-1271), typically a Safe owned by other accounts;
  the owner itself is asked, exactly as the outer Safe of that version will ask it.

Nothing here trusts a signature's own idea of its signer or hash: bytes are parsed strictly (exactly
one canonically encoded signature), and ``verify`` recovers (or, for approved hashes and contract
owners, asks the chain) against the hash recomputed from the transaction. When a signature was made
over another hash, the message says which field most likely differed (nonce, chain id, payload).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import cast

from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector
from safe_eth.safe.safe_signature import (
    SafeSignature,
    SafeSignatureContract,
    SafeSignatureType,
    uses_bytes32_eip1271,
)
from safe_eth.safe.safe_tx import SafeTx

from treasury.addresses import ZERO_ADDRESS, parse_address
from treasury.errors import InvalidInput
from treasury.proposal.safe_tx import build_safe_tx
from treasury.signatures.bundle import hex_of
from treasury.signatures.guard_messages import GuardMessage
from treasury.signatures.owners import code_at, is_approved
from treasury.types import SIGNATURE_KIND_VALUES, SignatureKind

KINDS: tuple[SignatureKind, ...] = SIGNATURE_KIND_VALUES
_KIND_OF_TYPE: dict[SafeSignatureType, SignatureKind] = {
    SafeSignatureType.EOA: "eip712",
    SafeSignatureType.ETH_SIGN: "eth_sign",
    SafeSignatureType.APPROVED_HASH: "approved_hash",
    SafeSignatureType.CONTRACT_SIGNATURE: "contract",
}

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


def kind_of(signature: SafeSignature) -> SignatureKind:
    """This project's name for the signature's kind: eip712, eth_sign, approved_hash or contract."""
    kind = _KIND_OF_TYPE.get(signature.signature_type)
    if kind is None:
        raise InvalidSignature(f"unsupported signature type {signature.signature_type.name} (v={signature.v})")
    return kind


def parse_exact(raw: bytes | str, safe_hash: bytes, preimage: bytes | None) -> SafeSignature:
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
        owner: str
        try:
            owner = signature.owner
        except Exception:  # noqa: BLE001 - out-of-range r/s
            owner = ZERO_ADDRESS
        if owner == ZERO_ADDRESS:
            raise InvalidSignature(f"malformed {kind_of(signature)} signature: it recovers to no address")
    return signature


def parse_signature(data: bytes | str, safe_tx: SafeTx) -> SafeSignature:
    """One signature (bytes or hex, as exported) read against `safe_tx`'s hash; not yet verified."""
    return parse_exact(data, bytes(safe_tx.safe_tx_hash), bytes(safe_tx.safe_tx_hash_preimage))


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


def why_other_hash(signed_hash: bytes, safe_tx: SafeTx) -> str:
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


def check_eip1271(owner: str, safe_hash: bytes, preimage: bytes, contract_sig: bytes, version: str, caller: str) -> None:
    """Ask `owner` the question the Safe of `version` asks it; raise InvalidSignature unless it agrees."""
    from ape import chain

    if not code_at(owner):
        raise InvalidSignature(f"contract signature names owner {owner}, which has no code: an EIP-1271 owner must be a contract")
    if uses_bytes32_eip1271(version):
        entrypoint, magic = "isValidSignature(bytes32,bytes)", _BYTES32_MAGIC
        calldata = _BYTES32_1271 + abi_encode(["bytes32", "bytes"], [bytes(safe_hash), bytes(contract_sig)])
    else:
        entrypoint, magic = "isValidSignature(bytes,bytes)", _LEGACY_MAGIC
        calldata = _LEGACY_1271 + abi_encode(["bytes", "bytes"], [bytes(preimage), bytes(contract_sig)])
    try:
        result = bytes(chain.provider.web3.eth.call({"from": caller, "to": owner, "data": hex_of(calldata)}))
    except Exception as error:  # noqa: BLE001 - any revert is a rejection; say what it said
        raise InvalidSignature(
            f"EIP-1271 owner {owner} rejected the signature: {entrypoint} reverted with {_explain_gs(_revert_reason(error))}"
        ) from None
    if not eip1271_accepted(result, magic):
        raise InvalidSignature(
            f"EIP-1271 owner {owner} rejected the signature: {entrypoint} returned {shown_answer(result)}, not {hex_of(magic)}"
        )


EIP1271_MAGIC = _BYTES32_MAGIC  # isValidSignature(bytes32,bytes)'s "yes"


def eip1271_accepted(result: bytes, magic: bytes = _BYTES32_MAGIC) -> bool:
    """Whether an isValidSignature answer is exactly `magic` ABI-encoded as bytes4: one 32-byte word, the
    magic then 28 zero bytes. Only the first four bytes is not enough: a contract whose fallback echoes
    its calldata answers with the call's own selector first (and the legacy call's next 28 bytes are zeros)."""
    return len(result) == 32 and result == magic + bytes(28)


def shown_answer(result: bytes) -> str:
    """An isValidSignature answer as one short piece of text for an error line."""
    if not result:
        return "nothing"
    return hex_of(result[:4]) if len(result) == 32 else f"{len(result)} bytes starting {hex_of(result[:4])}"


def verify_against(
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
    parsed = parse_exact(raw, safe_hash, preimage)
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
            hint = _which_owner_hash(raw, safe_tx, owners)
            if hint:
                raise InvalidSignature(f"{kind} signature recovers to {owner}, not an owner, over this safeTxHash: {hint}")
        raise InvalidSignature(f"{kind} signer {owner} is not an owner of Safe {safe_address} (current owners: {owners_text})")
    if kind == "approved_hash":
        if executor is not None and parse_address(executor, "executor") == owner:
            return parsed  # the Safe accepts v=1 from the owner that sends execTransaction
        if not is_approved(safe_address, version, owner, safe_hash):
            raise InvalidSignature(
                f"approved_hash signature for owner {owner}: the Safe {safe_address} has no approveHash({hex_of(safe_hash)}) from {owner} on chain"
            )
    elif kind == "contract":
        contract = cast(SafeSignatureContract, parsed)  # the bytes say v=0, which safe-eth-py parses as this class
        check_eip1271(owner, safe_hash, preimage, bytes(contract.contract_signature), version, safe_address)
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
        by: str
        try:
            by = signature.owner
        except Exception:  # noqa: BLE001
            by = "an unknown signer"
        raise InvalidSignature(
            f"{kind} signature by {by} is over hash {hex_of(signed)}, not this transaction's safeTxHash {hex_of(expected)}: "
            f"{why_other_hash(signed, safe_tx)}"
        )
    verify_against(
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
# Counting and encoding for execTransaction


def encode(signatures: Sequence[SafeSignature]) -> bytes:
    """The execTransaction `signatures` argument: one per owner, sorted by owner (export_signatures)."""
    seen: set[str] = set()
    for signature in signatures:
        if signature.owner in seen:
            raise InvalidSignature(f"owner {signature.owner} appears twice; the Safe would reject the set (GS026)")
        seen.add(signature.owner)
    return encode_signatures(signatures)


def encode_signatures(signatures: Sequence[SafeSignature]) -> bytes:
    """Sorted by owner address and concatenated, unchecked: what execTransaction receives.

    `encode` refuses a repeated owner first; this raw form is for callers that must hand the Safe
    exactly the set they were given (e.g. to show that the Safe itself refuses it).
    """
    return bytes(SafeSignature.export_signatures(list(signatures)))


def threshold_met(signatures: Sequence[SafeSignature], owners: Sequence[str], threshold: int) -> bool:
    """Whether `signatures` come from at least `threshold` distinct members of `owners`."""
    members = {parse_address(o, "owner") for o in owners}
    return len({s.owner for s in signatures} & members) >= threshold




# ---------------------------------------------------------------------------------------------
# TreasuryGuard's delay queue: Schedule and Cancel signatures


def verify_guard_signature(
    signature: SafeSignature | bytes | str,
    message: GuardMessage,
    owners: Sequence[str],
    version: str,
    *,
    claimed_owner: str | None = None,
) -> SafeSignature:
    """The signature re-read over `message`'s hash and checked as the Safe will check it for the
    guard (an owner's ECDSA signature, its approveHash on chain, or its EIP-1271 answer); raises
    InvalidSignature otherwise. Returns the parsed signature.

    A SafeSignature made over another hash is refused by name; raw bytes are read over this
    message's hash, so bytes made over another one recover to a stranger and are refused as such.
    """
    if isinstance(signature, SafeSignature):
        signed = bytes(signature.safe_hash)
        if signed != message.hash:
            raise InvalidSignature(
                f"{kind_of(signature)} signature is over hash {hex_of(signed)}, not the guard's hash for the "
                f"{message.describe()} ({message.hash_hex})"
            )
        raw: bytes | str = bytes(signature.export_signature())
    else:
        raw = signature
    parsed = parse_exact(raw, message.hash, message.preimage)
    try:
        return verify_against(
            parsed, safe_hash=message.hash, preimage=message.preimage, safe_address=message.safe, version=version,
            owners={parse_address(o, "owner") for o in owners}, executor=None, safe_tx=None, claimed_owner=claimed_owner,
        )
    except InvalidSignature as error:
        raise InvalidSignature(f"{message.purpose} signature for the {message.describe()}: {error}") from None
