"""The signature bundle document: a whole proposal and its signatures as JSON, for a signer with no network.

Built from plain fields, so the same bytes come out whether the bundle is written from verified
SafeSignatures (treasury.signatures.exchange.export_bundle) or from the store alone
(treasury.records, `treasury export` without --network: no web3, no safe-eth-py).

A bundle is self-contained: besides every field the safeTxHash is computed from (chain id, Safe,
Safe version, the SafeTx), it states the proposal's title, description and proposer and, when it
was exported with a chain, the Safe's owners and threshold at export time. So a machine that never
saw the proposal, and has no node, can create it and check each ECDSA signature by recovery
against those owners (treasury.records.TreasuryRecords.import_bundle); the chain re-checks them
later (treasury.treasury.Treasury.reverify). The added keys are optional, so bundles written
before them still read, as format version 1.

Reading is `read_bundle`: shape-checked field by field, the hashes recomputed here from the fields
(treasury.decode.hashes, no chain stack) and compared with the stated ones. It verifies no
signature: that is the importer's, against whichever owners it trusts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from treasury.addresses import parse_address
from treasury.decode.hashes import SafeTxHashes, safe_tx_hashes
from treasury.errors import InvalidInput
from treasury.files import MAX_BYTES, load_json, read_text

BUNDLE_FORMAT = "ape-treasury/signature-bundle"
BUNDLE_FORMAT_VERSION = 1
SIGNATURE_KINDS = ("eip712", "eth_sign", "approved_hash", "contract")
SUPPORTED_SAFE_VERSIONS = ("1.3.0", "1.4.1", "1.5.0")  # treasury.chain.artifacts.SUPPORTED_VERSIONS, without its imports
MAX_SIGNATURES = 1_000  # a Safe with more owners than this is not one a bundle is for
MAX_GUARD_SIGNATURES = 1_000


class InvalidBundle(InvalidInput):
    """A signature bundle that is malformed, altered, or for another transaction."""


def hex_of(data: bytes) -> str:
    """0x-prefixed lowercase hex, as bundles and messages show bytes."""
    return "0x" + bytes(data).hex()


# --- writing ----------------------------------------------------------------------------------------


def tx_fields(
    *, to: str, value: int, data: bytes, operation: int, safe_tx_gas: int, base_gas: int, gas_price: int,
    gas_token: str, refund_receiver: str,
) -> dict[str, Any]:
    """The SafeTx fields as a bundle states them (uint256 value as a decimal string, calldata as hex)."""
    return {
        "to": to,
        "value": str(value),
        "data": hex_of(data),
        "operation": operation,
        "safe_tx_gas": safe_tx_gas,
        "base_gas": base_gas,
        "gas_price": gas_price,
        "gas_token": gas_token,
        "refund_receiver": refund_receiver,
    }


def signature_entries(signatures: Iterable[tuple[str, str, bytes]]) -> list[dict[str, str]]:
    """(owner, kind, signature bytes) as bundle entries, sorted by owner; one signature per owner."""
    entries, seen = [], set()
    for owner, kind, signature in sorted(signatures, key=lambda item: item[0].lower()):
        if owner in seen:
            raise InvalidInput(f"owner {owner} appears twice; a bundle holds one signature per owner")
        seen.add(owner)
        entries.append({"owner": owner, "kind": kind, "signature": hex_of(signature)})
    return entries


# (purpose, owner, kind, signature bytes, guard, signed hash as 0x-hex, schedule nonce or entry id)
GuardSignatureFields = tuple[str, str, str, bytes, str, str, int]


def guard_signature_entries(signatures: Iterable[GuardSignatureFields]) -> list[dict[str, str]]:
    """Schedule and cancel signatures as bundle entries: what each is over (guard, signed hash, the
    schedule nonce or entry id, uint256 as decimal strings), sorted by purpose, subject and owner."""
    entries = []
    for purpose, owner, kind, signature, guard, signed_hash, subject in signatures:
        entry = {"purpose": purpose, "owner": owner, "kind": kind, "signature": hex_of(signature), "guard": guard,
                 "signed_hash": signed_hash, ("intent_nonce" if purpose == "schedule" else "entry_id"): str(subject)}
        entries.append(entry)
    return sorted(entries, key=lambda e: (e["purpose"] != "schedule", int(e.get("intent_nonce", e.get("entry_id", "0"))),
                                          e["owner"].lower()))


@dataclass(frozen=True)
class ProposalFacts:
    """What a bundle says beyond the SafeTx: the proposal's words, and the Safe's owners and
    threshold when the exporter read them from the chain (None: exported without one)."""

    title: str = ""
    description: str = ""
    proposer: str = ""
    owners: tuple[str, ...] | None = None
    threshold: int | None = None

    def fields(self) -> dict[str, Any]:
        owned = {} if self.owners is None else {"owners": list(self.owners), "threshold": self.threshold}
        return {"title": self.title, "description": self.description, "proposer": self.proposer, **owned}


def bundle_document(
    *, chain_id: int, safe: str, version: str, nonce: int, tx: dict[str, Any], domain_hash: str,
    message_hash: str, safe_tx_hash: str, signatures: Iterable[tuple[str, str, bytes]],
    guard_signatures: Iterable[GuardSignatureFields] = (), facts: ProposalFacts | None = None,
) -> dict[str, Any]:
    """The bundle as a JSON-ready dict, keys in the order they are written.

    Every field the safeTxHash is computed from is included, so an importer recomputes the hash and
    never needs to trust the stated one; the domain and message hashes are there for people
    comparing with a hardware wallet's screen. `facts` (title, description, proposer, owners and
    threshold) go after the hashes when given. `guard_signatures` (schedule and cancel signatures
    for TreasuryGuard's queue) go under "guard_signatures", present only when there are any, so a
    bundle without them reads exactly as before.
    """
    guard_entries = guard_signature_entries(guard_signatures)
    return {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "chain_id": chain_id,
        "safe": safe,
        "version": version,
        "nonce": nonce,
        **tx,
        "domain_hash": domain_hash,
        "message_hash": message_hash,
        "safe_tx_hash": safe_tx_hash,
        **(facts.fields() if facts is not None else {}),
        "signatures": signature_entries(signatures),
        **({"guard_signatures": guard_entries} if guard_entries else {}),
    }


def write_bundle(bundle: dict[str, Any], path: str | Path) -> None:
    """Write the bundle as indented JSON (the one on-disk form)."""
    Path(path).write_text(json.dumps(bundle, indent=2) + "\n")


# --- reading: shape checks, one line each --------------------------------------------------------------


def load_bundle(data_or_path: dict | str | Path) -> dict:
    """The bundle as a dict: given as one, as JSON text, or as a path (read bounded in size and depth)."""
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


def require(data: dict, key: str, kind: type | tuple, what: str, where: str = "bundle") -> Any:
    """data[key], of type `kind` (never a bool standing in for an int)."""
    if key not in data:
        raise InvalidBundle(f"{where} is missing field {key!r} ({what})")
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InvalidBundle(f"{where} field {key!r} must be {what}, not {json.dumps(value)[:60]}")
    return value


def uint_field(data: dict, key: str, *, decimal_string: bool = False, where: str = "bundle") -> int:
    """A uint256: a JSON integer, or (`decimal_string`) ASCII digits as a string."""
    if decimal_string:
        text = require(data, key, str, "a decimal string", where)
        if not (text.isascii() and text.isdigit()) or len(text) > 78:  # "²" is a digit to Python; uint256 has 78
            raise InvalidBundle(f"{where} field {key!r} must be a decimal string, not {text[:60]!r}")
        value = int(text)
    else:
        value = require(data, key, int, "a non-negative integer", where)
    if not 0 <= value < 2**256:
        raise InvalidBundle(f"{where} field {key!r} is {value}, not a uint256")
    return value


def address_field(data: dict, key: str, where: str = "bundle") -> str:
    """A 0x address, checksummed (a mixed-case one must carry a valid EIP-55 checksum)."""
    text = require(data, key, str, "a 0x address", where)
    try:
        return parse_address(text, f"{where} field {key!r}")
    except InvalidInput as error:
        raise InvalidBundle(str(error)) from None


def hex_field(data: dict, key: str, where: str = "bundle", *, length: int | None = None) -> bytes:
    """0x-prefixed hex bytes (of exactly `length` bytes if given)."""
    text = require(data, key, str, "0x-prefixed hex", where)
    body = text[2:] if text.startswith("0x") else None
    try:
        value = bytes.fromhex(body) if body is not None and len(body) % 2 == 0 else None
    except ValueError:
        value = None
    if value is None or (length is not None and len(value) != length):
        size = f"{length} bytes of " if length else ""
        raise InvalidBundle(f"{where} field {key!r} must be {size}0x-prefixed hex, not {text[:40]!r}")
    return value


def kind_field(data: dict, where: str) -> str:
    kind = require(data, "kind", str, f"one of {', '.join(SIGNATURE_KINDS)}", where)
    if kind not in SIGNATURE_KINDS:
        raise InvalidBundle(f"{where} has unknown kind {kind[:30]!r} (one of {', '.join(SIGNATURE_KINDS)})")
    return kind


def check_format(data: dict) -> None:
    """The bundle's format marker and version (this ape-treasury reads version 1, with or without the
    self-contained keys)."""
    if data.get("format") != BUNDLE_FORMAT:
        raise InvalidBundle(f"not an ape-treasury signature bundle (format {str(data.get('format'))[:60]!r}, expected {BUNDLE_FORMAT!r})")
    format_version = require(data, "format_version", int, "an integer")
    if format_version != BUNDLE_FORMAT_VERSION:
        raise InvalidBundle(f"bundle format version {format_version} is not supported (this ape-treasury reads {BUNDLE_FORMAT_VERSION})")


# --- reading: the whole bundle, hashes recomputed, signatures not yet verified ----------------------------


@dataclass(frozen=True)
class BundledSignature:
    """A SafeTx signature as a bundle states it: shape-checked, not yet verified."""

    owner: str  # claimed: the importer's verification must agree
    kind: str
    signature: bytes


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


@dataclass(frozen=True)
class Bundle:
    """A bundle read back: every field checked for shape, the three hashes recomputed from the fields
    and equal to the stated ones. Signatures are as stated, not verified."""

    chain_id: int
    safe: str
    version: str
    nonce: int
    to: str
    value: int
    data: bytes
    operation: int
    safe_tx_gas: int
    base_gas: int
    gas_price: int
    gas_token: str
    refund_receiver: str
    hashes: SafeTxHashes
    facts: ProposalFacts
    signatures: tuple[BundledSignature, ...]
    guard_signatures: tuple[BundledGuardSignature, ...]

    @property
    def safe_tx_hash(self) -> str:
        return self.hashes.safe_tx_hash

    def safe_tx_fields(self) -> dict[str, Any]:
        """The SafeTx as keyword arguments of `Store.add_proposal` / `build_safe_tx` (gas fields included)."""
        return {"to": self.to, "value": self.value, "data": self.data, "operation": self.operation,
                "safe_tx_gas": self.safe_tx_gas, "base_gas": self.base_gas, "gas_price": self.gas_price,
                "gas_token": self.gas_token, "refund_receiver": self.refund_receiver}


def read_bundle(data_or_path: dict | str | Path) -> Bundle:
    """The bundle, shape-checked and with its hashes recomputed (no chain stack: a store-only import
    reads it). Refused in one line (InvalidBundle) when malformed or when its fields do not hash to
    what it states."""
    data = load_bundle(data_or_path)
    check_format(data)
    operation = uint_field(data, "operation")
    if operation not in (0, 1):
        raise InvalidBundle(f"bundle field 'operation' is {operation}, neither CALL (0) nor DELEGATECALL (1)")
    version = require(data, "version", str, "a Safe version string")
    if version not in SUPPORTED_SAFE_VERSIONS:
        raise InvalidBundle(f"bundle Safe version {version[:20]!r} is not one of {', '.join(SUPPORTED_SAFE_VERSIONS)}")
    fields = {
        "chain_id": uint_field(data, "chain_id"), "safe": address_field(data, "safe"), "version": version,
        "nonce": uint_field(data, "nonce"), "to": address_field(data, "to"),
        "value": uint_field(data, "value", decimal_string=True), "data": hex_field(data, "data"), "operation": operation,
        "safe_tx_gas": uint_field(data, "safe_tx_gas"), "base_gas": uint_field(data, "base_gas"),
        "gas_price": uint_field(data, "gas_price"), "gas_token": address_field(data, "gas_token"),
        "refund_receiver": address_field(data, "refund_receiver"),
    }
    if fields["chain_id"] == 0:
        raise InvalidBundle("bundle field 'chain_id' is 0, not a chain")
    stated = hex_field(data, "safe_tx_hash", length=32)
    hashes = safe_tx_hashes(**fields)
    if hashes.safe_tx_hash != hex_of(stated):
        raise InvalidBundle(f"bundle altered: its fields hash to safeTxHash {hashes.safe_tx_hash}, but it states {hex_of(stated)}")
    for key, part in (("domain_hash", hashes.domain_hash), ("message_hash", hashes.message_hash)):
        if key in data and hex_of(hex_field(data, key, length=32)) != part:
            raise InvalidBundle(f"bundle altered: its fields give {key} {part}, but it states {data[key]}")
    return Bundle(**fields, hashes=hashes, facts=_facts(data), signatures=tuple(_signatures(data)),
                  guard_signatures=tuple(read_guard_signatures(data)))


def _text(data: dict, key: str) -> str:
    return require(data, key, str, "a string") if key in data else ""


def _facts(data: dict) -> ProposalFacts:
    """Title, description, proposer, and the owners and threshold if the bundle records them (both or neither)."""
    if ("owners" in data) != ("threshold" in data):
        raise InvalidBundle("bundle records owners and threshold together, or neither")
    owners: tuple[str, ...] | None = None
    threshold = None
    if "owners" in data:
        listed = require(data, "owners", list, "a list of owner addresses")
        if not 1 <= len(listed) <= MAX_SIGNATURES:
            raise InvalidBundle(f"bundle field 'owners' lists {len(listed)} owners, not 1 to {MAX_SIGNATURES}")
        owners = tuple(address_field({"owner": item}, "owner", f"bundle owner #{i}") for i, item in enumerate(listed, start=1))
        if len(set(owners)) != len(owners):
            raise InvalidBundle("bundle field 'owners' lists an owner twice")
        threshold = uint_field(data, "threshold")
        if not 1 <= threshold <= len(owners):
            raise InvalidBundle(f"bundle field 'threshold' is {threshold}, not 1 to its {len(owners)} owners")
    return ProposalFacts(title=_text(data, "title"), description=_text(data, "description"),
                         proposer=_text(data, "proposer"), owners=owners, threshold=threshold)


def _signatures(data: dict) -> list[BundledSignature]:
    entries = require(data, "signatures", list, "a list of {owner, kind, signature}")
    if len(entries) > MAX_SIGNATURES:
        raise InvalidBundle(f"bundle holds {len(entries)} signatures; at most {MAX_SIGNATURES} are read")
    found, seen = [], set()
    for index, entry in enumerate(entries, start=1):
        where = f"bundle signature #{index}"
        if not isinstance(entry, dict):
            raise InvalidBundle(f"{where} must be an object {{owner, kind, signature}}, not {json.dumps(entry)[:60]}")
        owner = address_field(entry, "owner", where)
        if owner in seen:
            raise InvalidBundle(f"{where}: owner {owner} already signed earlier in the bundle")
        seen.add(owner)
        found.append(BundledSignature(owner=owner, kind=kind_field(entry, where), signature=hex_field(entry, "signature", where)))
    return found


def read_guard_signatures(data_or_path: dict | str | Path) -> list[BundledGuardSignature]:
    """The bundle's schedule and cancel signatures (none if it has no "guard_signatures"), each
    shape-checked; verifying them (recomputed hash, recovery against the owners) is the importer's."""
    data = load_bundle(data_or_path)
    if "guard_signatures" not in data:
        return []
    entries = require(data, "guard_signatures", list, "a list of {purpose, owner, kind, signature, guard, signed_hash, ...}")
    if len(entries) > MAX_GUARD_SIGNATURES:
        raise InvalidBundle(f"bundle holds {len(entries)} guard signatures; at most {MAX_GUARD_SIGNATURES} are read")
    found = []
    for index, entry in enumerate(entries, start=1):
        where = f"bundle guard signature #{index}"
        if not isinstance(entry, dict):
            raise InvalidBundle(f"{where} must be an object, not {json.dumps(entry)[:60]}")
        purpose = require(entry, "purpose", str, "schedule or cancel", where)
        if purpose not in ("schedule", "cancel"):
            raise InvalidBundle(f"{where} has unknown purpose {purpose[:30]!r} (schedule or cancel)")
        kind = kind_field(entry, where)
        key = "intent_nonce" if purpose == "schedule" else "entry_id"
        text = require(entry, key, str, "a decimal string", where)
        if not (text.isascii() and text.isdigit()) or len(text) > 78 or int(text) >= 2**256:
            raise InvalidBundle(f"{where} field {key!r} must be a uint256 as a decimal string, not {text[:60]!r}")
        found.append(BundledGuardSignature(
            purpose=purpose, owner=address_field(entry, "owner", where), kind=kind, signature=hex_field(entry, "signature", where),
            guard=address_field(entry, "guard", where), signed_hash=hex_field(entry, "signed_hash", where, length=32),
            subject=int(text),
        ))
    return found

