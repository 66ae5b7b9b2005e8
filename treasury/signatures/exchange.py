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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safe_eth.safe.safe_signature import SafeSignature
from safe_eth.safe.safe_tx import SafeTx

from treasury.addresses import parse_address
from treasury.chain.artifacts import SUPPORTED_VERSIONS
from treasury.errors import InvalidInput
from treasury.files import MAX_BYTES, load_json, read_text
from treasury.proposal.safe_tx import build_safe_tx
from treasury.signatures.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_VERSION,
    GuardSignatureFields,
    bundle_document,
    tx_fields,
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


class InvalidBundle(InvalidInput):
    """A signature bundle that is malformed, altered, or for another transaction."""


_TX_FIELDS = ("to", "value", "data", "operation", "safe_tx_gas", "base_gas", "gas_price", "gas_token", "refund_receiver")


def _tx_fields(safe_tx: SafeTx) -> dict[str, Any]:
    return tx_fields(
        to=safe_tx.to, value=safe_tx.value, data=bytes(safe_tx.data), operation=safe_tx.operation,
        safe_tx_gas=safe_tx.safe_tx_gas, base_gas=safe_tx.base_gas, gas_price=safe_tx.gas_price,
        gas_token=safe_tx.gas_token, refund_receiver=safe_tx.refund_receiver,
    )


def export_bundle(
    safe_tx: SafeTx, version: str | None, signatures: Sequence[SafeSignature], path: str | Path | None = None,
    guard_signatures: Sequence[GuardSignatureFields] = (),
) -> dict:
    """The transaction and its signatures as a JSON-ready dict (written to `path` if given).

    Every field the safeTxHash is computed from is included, so an importer recomputes the hash
    and never needs to trust the stated one. Signatures over another hash are refused.
    `guard_signatures`: schedule and cancel signatures, already verified by the caller.
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
        guard_signatures=guard_signatures,
    )
    if path is not None:
        write_bundle(bundle, path)
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
                text = read_text(path, "bundle")  # bounded: a co-signer's file must never exhaust the tool
            except InvalidInput as error:
                raise InvalidBundle(str(error)) from None
        elif isinstance(data_or_path, (str, bytes)):
            text = data_or_path.decode() if isinstance(data_or_path, bytes) else data_or_path
        else:
            raise InvalidBundle(f"a bundle is a dict, JSON text or a path, not {type(data_or_path).__name__}")
        if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:  # as bounded as a file
            raise InvalidBundle(f"{where} is larger than {MAX_BYTES // 1024} KiB")
        try:  # depth-checked before parsing (deep nesting overflows the C stack), one-line errors
            data = load_json(text, where)
        except InvalidInput as error:
            raise InvalidBundle(str(error)) from None
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
        if not (text.isascii() and text.isdigit()) or len(text) > 78:  # "²" is a digit to Python; uint256 has 78
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


@dataclass(frozen=True)
class BundledGuardSignature:
    """A schedule or cancel signature as a bundle states it: shape-checked, not yet verified."""

    purpose: str
    owner: str  # claimed: the importer's verification must agree
    kind: str
    signature: bytes
    guard: str
    signed_hash: bytes  # stated: the importer recomputes it
    subject: int  # the schedule nonce or the guard entry id


MAX_GUARD_SIGNATURES = 1_000


def read_guard_signatures(data_or_path: dict | str | Path) -> list[BundledGuardSignature]:
    """The bundle's schedule and cancel signatures (none if it has no "guard_signatures"), each
    shape-checked; verifying them (recomputed hash, recovery against the owners) is the importer's."""
    data = _load_bundle(data_or_path)
    if "guard_signatures" not in data:
        return []
    entries = _require(data, "guard_signatures", list, "a list of {purpose, owner, kind, signature, guard, signed_hash, ...}")
    if len(entries) > MAX_GUARD_SIGNATURES:
        raise InvalidBundle(f"bundle holds {len(entries)} guard signatures; at most {MAX_GUARD_SIGNATURES} are read")
    found = []
    for index, entry in enumerate(entries, start=1):
        where = f"bundle guard signature #{index}"
        if not isinstance(entry, dict):
            raise InvalidBundle(f"{where} must be an object, not {json.dumps(entry)[:60]}")
        purpose = _require(entry, "purpose", str, "schedule or cancel", where)
        if purpose not in ("schedule", "cancel"):
            raise InvalidBundle(f"{where} has unknown purpose {purpose[:30]!r} (schedule or cancel)")
        kind = _require(entry, "kind", str, f"one of {', '.join(KINDS)}", where)
        if kind not in KINDS:
            raise InvalidBundle(f"{where} has unknown kind {kind[:30]!r} (one of {', '.join(KINDS)})")
        key = "intent_nonce" if purpose == "schedule" else "entry_id"
        text = _require(entry, key, str, "a decimal string", where)
        if not (text.isascii() and text.isdigit()) or len(text) > 78 or int(text) >= 2**256:
            raise InvalidBundle(f"{where} field {key!r} must be a uint256 as a decimal string, not {text[:60]!r}")
        found.append(BundledGuardSignature(
            purpose=purpose, owner=_address(entry, "owner", where), kind=kind, signature=_hex_field(entry, "signature", where),
            guard=_address(entry, "guard", where), signed_hash=_hex_field(entry, "signed_hash", where, length=32),
            subject=int(text),
        ))
    return found
