"""Batches: several calls in one Safe transaction, as a delegatecall to MultiSendCallOnly.

MultiSendCallOnly refuses inner delegatecalls, so a batch can never run foreign code in the
Safe's context; it is also the only delegatecall target TreasuryGuard accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector
from safe_eth.safe.multi_send import MultiSendOperation, MultiSendTx

from treasury.addresses import parse_address
from treasury.chain.artifacts import DEFAULT_VERSION, safe_contract
from treasury.errors import InvalidInput

MULTI_SEND = function_signature_to_4byte_selector("multiSend(bytes)")


@dataclass(frozen=True)
class Call:
    """One plain call: `to`, native `value` in wei, calldata."""

    to: str
    value: int = 0
    data: bytes = b""


def multisend_call_only(version: str = DEFAULT_VERSION) -> str:
    return safe_contract(version, "multi_send_call_only").canonical_address


def encode_batch(calls: Sequence[Call], version: str = DEFAULT_VERSION) -> tuple[str, bytes]:
    """(MultiSendCallOnly address, calldata of multiSend(bytes)) for the Safe to delegatecall."""
    if not calls:
        raise InvalidInput("a batch needs at least one call")
    entries = []
    for call in calls:
        if call.value < 0:
            raise InvalidInput(f"value {call.value} is negative")
        entries.append(MultiSendTx(MultiSendOperation.CALL, parse_address(call.to, "call target"), call.value, call.data))
    # safe-eth-py packs each entry; the outer ABI encoding is done here (its own builder needs a node).
    packed = b"".join(entry.encoded_data for entry in entries)
    return multisend_call_only(version), MULTI_SEND + encode(["bytes"], [packed])
