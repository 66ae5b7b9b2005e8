"""The signature bundle document: a proposal and its signatures as JSON, for a signer with no network.

Built from plain fields, so the same bytes come out whether the bundle is written from verified
SafeSignatures (treasury.signatures.exchange.export_bundle) or from the store alone
(treasury.records, `treasury export` without --network: no web3, no safe-eth-py). Reading a bundle
back, and verifying everything in it, is treasury.signatures.exchange.import_bundle.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from treasury.errors import InvalidInput

BUNDLE_FORMAT = "ape-treasury/signature-bundle"
BUNDLE_FORMAT_VERSION = 1


def hex_of(data: bytes) -> str:
    """0x-prefixed lowercase hex, as bundles and messages show bytes."""
    return "0x" + bytes(data).hex()


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


# (purpose, owner, kind, signature bytes, guard, signed hash as 0x-hex, schedule nonce or entry id)
GuardSignatureFields = tuple[str, str, str, bytes, str, str, int]


def bundle_document(
    *, chain_id: int, safe: str, version: str, nonce: int, tx: dict[str, Any], domain_hash: str,
    message_hash: str, safe_tx_hash: str, signatures: Iterable[tuple[str, str, bytes]],
    guard_signatures: Iterable[GuardSignatureFields] = (),
) -> dict[str, Any]:
    """The bundle as a JSON-ready dict, keys in the order they are written.

    Every field the safeTxHash is computed from is included, so an importer recomputes the hash and
    never needs to trust the stated one; the domain and message hashes are there for people
    comparing with a hardware wallet's screen. `guard_signatures` (schedule and cancel signatures
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
        "signatures": signature_entries(signatures),
        **({"guard_signatures": guard_entries} if guard_entries else {}),
    }


def write_bundle(bundle: dict[str, Any], path: str | Path) -> None:
    """Write the bundle as indented JSON (the one on-disk form)."""
    Path(path).write_text(json.dumps(bundle, indent=2) + "\n")
