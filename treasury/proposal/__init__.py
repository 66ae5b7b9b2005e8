"""Proposal: from intent to Safe transaction, the first stage of the data flow.

`build` turns what the treasury wants ("pay 1.5 ETH to X", an owner change, a contract call) into
an `Intent` (to, value, data, operation); `multisend` packs several calls into one
MultiSendCallOnly batch and is the one strict reader of batches every later stage uses;
`safe_tx` numbers an intent and makes the SafeTx whose hash owners sign.
The names below are importable from here and load their module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from treasury._lazy import lazy_exports

_EXPORTS = {
    "treasury.proposal.build": ("Intent", "encode_call"),
    "treasury.proposal.multisend": (
        "BatchEntry", "Call", "MalformedBatch", "decode_batch", "encode_batch", "iter_batch", "multisend_call_only",
    ),
    "treasury.proposal.safe_tx": ("build_safe_tx",),
}
__all__ = [
    "BatchEntry", "Call", "Intent", "MalformedBatch", "build_safe_tx", "decode_batch", "encode_batch", "encode_call",
    "iter_batch", "multisend_call_only",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from treasury.proposal.build import Intent, encode_call
    from treasury.proposal.multisend import (
        BatchEntry,
        Call,
        MalformedBatch,
        decode_batch,
        encode_batch,
        iter_batch,
        multisend_call_only,
    )
    from treasury.proposal.safe_tx import build_safe_tx
