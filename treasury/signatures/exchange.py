"""Exchanging signatures by bundle file: verified signatures out, every signature verified again on the way in.

The bundle's JSON shape is treasury.signatures.bundle (shared with `treasury export` from the store
alone). A bundle carries every field the safeTxHash is computed from, so whoever imports it
recomputes the hash and trusts neither the stated hash nor any signature's stated owner: each
signature is parsed strictly and verified again (recovery, the chain's approvals, EIP-1271) against
the transaction the importer expected, and the bundle's `owner` field must merely agree. A
co-signer's file is hostile input: a malformed, altered or foreign bundle is refused in one line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from safe_eth.safe.safe_signature import SafeSignature
from safe_eth.safe.safe_tx import SafeTx

from treasury.chain.artifacts import SUPPORTED_VERSIONS
from treasury.errors import InvalidInput
from treasury.proposal.safe_tx import build_safe_tx
from treasury.signatures.bundle import (
    BundledGuardSignature,
    GuardSignatureFields,
    InvalidBundle,
    ProposalFacts,
    address_field as _address,
    bundle_document,
    check_format,
    hex_field as _hex_field,
    load_bundle as _load_bundle,
    read_guard_signatures,
    require as _require,
    tx_fields,
    uint_field as _uint,
    write_bundle,
)
from treasury.signatures.signature_set import SignatureSet
from treasury.signatures.verification import (
    KINDS,
    InvalidSignature,
    hex_of,
    kind_of,
    parse_exact,
    verify_against,
    why_other_hash,
)

# Shape checks live in treasury.signatures.bundle (the store-only import reads bundles too); these
# names stay importable from here, where they always were.
__all__ = ["BundledGuardSignature", "InvalidBundle", "ProposalFacts", "bundle_safe_tx_hash", "export_bundle",
           "import_bundle", "read_guard_signatures"]

_TX_FIELDS = ("to", "value", "data", "operation", "safe_tx_gas", "base_gas", "gas_price", "gas_token", "refund_receiver")


def _tx_fields(safe_tx: SafeTx) -> dict[str, Any]:
    return tx_fields(
        to=safe_tx.to, value=safe_tx.value, data=bytes(safe_tx.data), operation=safe_tx.operation,
        safe_tx_gas=safe_tx.safe_tx_gas, base_gas=safe_tx.base_gas, gas_price=safe_tx.gas_price,
        gas_token=safe_tx.gas_token, refund_receiver=safe_tx.refund_receiver,
    )


def export_bundle(
    safe_tx: SafeTx, version: str | None, signatures: Sequence[SafeSignature], path: str | Path | None = None,
    guard_signatures: Sequence[GuardSignatureFields] = (), facts: ProposalFacts | None = None,
) -> dict:
    """The transaction and its signatures as a JSON-ready dict (written to `path` if given).

    Every field the safeTxHash is computed from is included, so an importer recomputes the hash
    and never needs to trust the stated one. Signatures over another hash are refused.
    `guard_signatures`: schedule and cancel signatures, already verified by the caller. `facts`:
    the proposal's title, description, proposer and the owners and threshold read from the chain,
    which make the bundle self-contained (importable where the proposal was never seen).
    """
    version = version or safe_tx.safe_version
    if version != safe_tx.safe_version:
        raise InvalidInput(f"version {version} differs from the transaction's Safe version {safe_tx.safe_version}")
    safe_tx_hash = bytes(safe_tx.safe_tx_hash)
    preimage = bytes(safe_tx.safe_tx_hash_preimage)
    seen = set()
    for signature in signatures:
        if bytes(signature.safe_hash) != safe_tx_hash:
            raise InvalidSignature(
                f"{kind_of(signature)} signature by {signature.owner} is over {hex_of(signature.safe_hash)}, "
                f"not this transaction's safeTxHash {hex_of(safe_tx_hash)}: {why_other_hash(bytes(signature.safe_hash), safe_tx)}"
            )
        if signature.owner in seen:
            raise InvalidSignature(f"owner {signature.owner} appears twice; a bundle holds one signature per owner")
        seen.add(signature.owner)
    bundle = bundle_document(
        chain_id=safe_tx.chain_id, safe=safe_tx.safe_address, version=version, nonce=safe_tx.safe_nonce,
        tx=_tx_fields(safe_tx),
        # For people comparing with a hardware wallet's screen: the preimage is 0x1901 || domain || message.
        domain_hash=hex_of(preimage[2:34]), message_hash=hex_of(preimage[34:66]), safe_tx_hash=hex_of(safe_tx_hash),
        signatures=[(s.owner, kind_of(s), bytes(s.export_signature())) for s in signatures],
        guard_signatures=guard_signatures, facts=facts,
    )
    if path is not None:
        write_bundle(bundle, path)
    return bundle


def bundle_safe_tx_hash(data_or_path: dict | str | Path) -> str:
    """The safeTxHash a bundle says it is for: only to find the proposal; import_bundle checks it."""
    return "0x" + _hex_field(_load_bundle(data_or_path), "safe_tx_hash", length=32).hex()


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
    check_format(data)
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
            f"bundle altered: its fields hash to safeTxHash {hex_of(recomputed)}, but it states {hex_of(stated)}"
        )
    preimage = bytes(bundle_tx.safe_tx_hash_preimage)
    for key, part in (("domain_hash", preimage[2:34]), ("message_hash", preimage[34:66])):
        if key in data and _hex_field(data, key, length=32) != part:
            raise InvalidBundle(f"bundle altered: its fields give {key} {hex_of(part)}, but it states {data[key]}")
    expected = bytes(expected_safe_tx.safe_tx_hash)
    if recomputed != expected:
        raise InvalidBundle(
            f"bundle is for another transaction (safeTxHash {hex_of(recomputed)}, expected {hex_of(expected)}): "
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
            parsed = parse_exact(raw, expected, preimage)
            if kind_of(parsed) != kind:
                raise InvalidSignature(f"it is declared {kind} but its bytes make an {kind_of(parsed)} signature (v={parsed.v})")
            checked = verify_against(
                parsed, safe_hash=expected, preimage=preimage, safe_address=expected_safe_tx.safe_address,
                version=expected_safe_tx.safe_version, owners=current, executor=executor,
                safe_tx=expected_safe_tx, claimed_owner=claimed,
            )
            collected._keep(checked)  # verified just above, with the bundle's claimed owner
        except InvalidSignature as error:
            raise InvalidSignature(f"{where}: {error}") from None
    return collected.signatures
