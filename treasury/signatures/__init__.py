"""Signatures: collect owners' signatures from anywhere and verify each by recovery against the current owners.

The data-flow stage between policy and rehearsal. `verification` reads signature bytes strictly and
decides whether the Safe would count them (recovery, on-chain approvals, EIP-1271 owners);
`signing` has ape accounts sign (every kind, contract owners included); `signature_set` gathers
one verified signature per owner; `exchange` carries a proposal and its signatures to an offline
signer and back (in the JSON shape of `bundle`, which needs no chain stack); `owners` reads the
live owners and threshold; `accounts` resolves ape aliases.
The names below are importable from here and load their module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from treasury._lazy import lazy_exports

_EXPORTS = {
    "treasury.signatures.verification": (
        "KINDS", "InvalidSignature", "encode", "encode_signatures", "kind_of", "parse_signature", "threshold_met", "verify",
        "verify_guard_signature",
    ),
    "treasury.signatures.signing": (
        "OwnerSafeMessage", "contract_owner_message", "contract_signature", "sign", "sign_as_contract_owner",
        "sign_guard_message", "sign_owner_message", "sign_safe_tx",
    ),
    "treasury.signatures.guard_messages": ("GuardMessage", "cancel_message", "schedule_message"),
    "treasury.signatures.signature_set": ("SignatureSet",),
    "treasury.signatures.bundle": ("BUNDLE_FORMAT", "BUNDLE_FORMAT_VERSION"),
    "treasury.signatures.exchange": (
        "InvalidBundle", "bundle_safe_tx_hash", "export_bundle", "import_bundle", "read_guard_signatures",
    ),
    "treasury.signatures.owners": ("current_owners", "current_threshold"),
    "treasury.signatures.accounts": ("resolve_account",),
}
__all__ = [
    "BUNDLE_FORMAT", "BUNDLE_FORMAT_VERSION", "KINDS", "GuardMessage", "InvalidBundle", "InvalidSignature", "OwnerSafeMessage",
    "SignatureSet", "bundle_safe_tx_hash", "cancel_message", "contract_owner_message", "contract_signature", "current_owners",
    "current_threshold", "encode", "encode_signatures", "export_bundle", "import_bundle", "kind_of", "parse_signature",
    "read_guard_signatures", "resolve_account", "schedule_message", "sign", "sign_as_contract_owner", "sign_guard_message",
    "sign_owner_message", "sign_safe_tx", "threshold_met", "verify", "verify_guard_signature",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from treasury.signatures.accounts import resolve_account
    from treasury.signatures.bundle import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION
    from treasury.signatures.exchange import (
        InvalidBundle,
        bundle_safe_tx_hash,
        export_bundle,
        import_bundle,
        read_guard_signatures,
    )
    from treasury.signatures.guard_messages import GuardMessage, cancel_message, schedule_message
    from treasury.signatures.owners import current_owners, current_threshold
    from treasury.signatures.signature_set import SignatureSet
    from treasury.signatures.signing import (
        OwnerSafeMessage,
        contract_owner_message,
        contract_signature,
        sign,
        sign_as_contract_owner,
        sign_guard_message,
        sign_owner_message,
        sign_safe_tx,
    )
    from treasury.signatures.verification import (
        KINDS,
        InvalidSignature,
        encode,
        encode_signatures,
        kind_of,
        parse_signature,
        threshold_met,
        verify,
        verify_guard_signature,
    )
