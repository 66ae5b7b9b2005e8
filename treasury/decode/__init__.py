"""Decode: what a Safe transaction does and why one reverted, in words a signer can check.

`calls` names every call (batches unwrapped by the one strict batch decoder, amounts in token
units, delegatecalls flagged); `hashes` computes the three hashes a hardware wallet shows
(domain, message, safeTxHash) from the fields alone, with no chain stack; `revert` turns revert
data (guard errors, the Safe's GSxxx codes, panics) into one actionable line.
The names below are importable from here and load their module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from treasury._lazy import lazy_exports

_EXPORTS = {
    "treasury.decode.calls": ("DecodedCall", "DecodedProposal", "decode_call", "decode_safe_tx"),
    "treasury.decode.hashes": ("SafeTxHashes", "safe_tx_hashes"),
    "treasury.decode.revert": ("explain_guard_error", "explain_revert"),
}
__all__ = [
    "DecodedCall",
    "DecodedProposal",
    "SafeTxHashes",
    "decode_call",
    "decode_safe_tx",
    "explain_guard_error",
    "explain_revert",
    "safe_tx_hashes",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from treasury.decode.calls import DecodedCall, DecodedProposal, decode_call, decode_safe_tx
    from treasury.decode.hashes import SafeTxHashes, safe_tx_hashes
    from treasury.decode.revert import explain_guard_error, explain_revert
