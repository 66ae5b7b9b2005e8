"""Batches: several calls in one Safe transaction, as a delegatecall to MultiSendCallOnly.

MultiSendCallOnly refuses inner delegatecalls, so a batch can never run foreign code in the
Safe's context; it is also the only delegatecall target TreasuryGuard accepts.

Encoding and decoding live together so there is exactly one reading of a batch: `iter_batch`
unpacks `multiSend(bytes)` calldata as strictly as TreasuryGuard does (canonical offset, a length
that fits, zero padding, whole entries, plain calls, no address 0) and refuses anything else. The
decoder that shows a signer the calls and the policy engine that judges them both read batches
through it, so what a signer is shown is exactly what the policy checked and the guard will see.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, NoReturn

from treasury.addresses import parse_address, to_checksum
from treasury.chain.artifacts import (
    DEFAULT_VERSION,
    SUPPORTED_VERSIONS,
    canonical_address,
)
from treasury.decode.hashes import function_selector
from treasury.errors import InvalidInput
from treasury.types import CALL, DELEGATE_CALL, Operation

MULTI_SEND = function_selector("multiSend(bytes)")
HEADER = 68  # selector (4) | offset word (32) | length word (32)
ENTRY_HEADER = 85  # operation (1) | to (20) | value (32) | data length (32)
WORD = 32

# The guard's error for each way a batch can be malformed (see TreasuryGuard._checkBatch).
BatchError = Literal["InvalidMultiSend", "EmptyBatch", "InvalidBatchEntry"]


class MalformedBatch(InvalidInput):
    """Calldata that is not a batch TreasuryGuard would unwrap; `error` is the guard's error name."""

    def __init__(self, error: BatchError, sentence: str, offset: int | None = None):
        self.error, self.sentence, self.offset = error, sentence, offset
        super().__init__(sentence)


@dataclass(frozen=True)
class Call:
    """One plain call: `to`, native `value` in wei, calldata."""

    to: str
    value: int = 0
    data: bytes = b""


@dataclass(frozen=True)
class BatchEntry:
    """One unpacked entry of a batch; `offset` counts from the start of the packed entries, as the guard does."""

    operation: Operation
    to: str
    value: int
    data: bytes
    offset: int


def multisend_call_only(version: str = DEFAULT_VERSION) -> str:
    """The canonical MultiSendCallOnly of `version`: the only delegatecall target TreasuryGuard accepts."""
    return canonical_address(version, "multi_send_call_only")


def is_multisend_call_only(address: str) -> bool:
    """Whether `address` is the canonical MultiSendCallOnly of a supported Safe version.

    False when the published deployments cannot be read (no node_modules): a reader then accepts
    inner delegatecalls and shows each one flagged, rather than failing to show the batch.
    """
    try:
        known = {canonical_address(version, "multi_send_call_only").lower() for version in SUPPORTED_VERSIONS}
    except OSError:
        return False
    return address.lower() in known


def encode_batch(calls: Sequence[Call], version: str = DEFAULT_VERSION) -> tuple[str, bytes]:
    """(MultiSendCallOnly address, calldata of multiSend(bytes)) for the Safe to delegatecall."""
    if not calls:
        raise InvalidInput("a batch needs at least one call")
    from eth_abi import encode  # here: decoding a batch (treasury show) needs no ABI library

    packed = b"".join(_pack(call) for call in calls)
    return multisend_call_only(version), MULTI_SEND + encode(["bytes"], [packed])


def _pack(call: Call) -> bytes:
    if call.value < 0:
        raise InvalidInput(f"value {call.value} is negative")
    if call.value >= 2**256:
        raise InvalidInput(f"value {call.value} does not fit a uint256")
    to = parse_address(call.to, "call target")
    data = bytes(call.data)
    return bytes([CALL]) + bytes.fromhex(to[2:]) + call.value.to_bytes(WORD, "big") + len(data).to_bytes(WORD, "big") + data


def decode_batch(data: bytes, *, call_only: bool = True) -> tuple[BatchEntry, ...]:
    """Every entry of `multiSend(bytes)` calldata, or MalformedBatch for the first problem found."""
    return tuple(iter_batch(data, call_only=call_only))


def iter_batch(data: bytes, *, call_only: bool = True) -> Iterator[BatchEntry]:
    """The entries one by one, each checked just before it is yielded, in the guard's order.

    A consumer that checks each entry as it comes (the policy engine) therefore meets a bad entry
    exactly where the guard does: after every earlier entry was checked. `call_only` (the
    default, MultiSendCallOnly) refuses inner delegatecalls; otherwise operation 1 is accepted too.
    """
    data = bytes(data)
    end = _entries_end(data)
    start = HEADER
    while start < end:
        entry = _entry(data, start, end, call_only)
        yield entry
        start += ENTRY_HEADER + len(entry.data)


def _entries_end(data: bytes) -> int:
    """Where the packed entries end, after checking the canonical multiSend(bytes) encoding."""
    size = len(data)
    if size < HEADER or data[:4] != MULTI_SEND:
        _invalid("not a multiSend(bytes) call")
    if _word(data, 4) != WORD:
        _invalid(f"the bytes argument is at offset {_word(data, 4)}, not 32")
    length = _word(data, 36)
    if length > size - HEADER or size - HEADER - length > WORD - 1:
        _invalid(f"declared length {length} does not fit the {size - HEADER} bytes after the header")
    if any(data[HEADER + length:]):
        _invalid("the padding after the entries is not zero")
    if length == 0:
        raise MalformedBatch("EmptyBatch", "the batch has no entries")
    return HEADER + length


def _entry(data: bytes, start: int, end: int, call_only: bool) -> BatchEntry:
    offset = start - HEADER
    if end - start < ENTRY_HEADER:
        raise MalformedBatch("InvalidBatchEntry", f"batch entry at byte {offset} is cut short", offset)
    operation, target, length = data[start], data[start + 1: start + 21], _word(data, start + 53)
    allowed = (CALL,) if call_only else (CALL, DELEGATE_CALL)
    problem = ("is not a call" if operation not in allowed else "targets address 0" if not any(target)
               else "runs past the end" if length > end - start - ENTRY_HEADER else "")
    if problem:
        raise MalformedBatch("InvalidBatchEntry", f"batch entry at byte {offset} {problem}", offset)
    body = start + ENTRY_HEADER
    return BatchEntry(operation, to_checksum(target), _word(data, start + 21), data[body: body + length], offset)  # type: ignore[arg-type]


def _invalid(problem: str) -> NoReturn:
    raise MalformedBatch("InvalidMultiSend", f"not a canonical multiSend(bytes) delegatecall: {problem}")


def _word(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset: offset + WORD].ljust(WORD, b"\0"), "big")
