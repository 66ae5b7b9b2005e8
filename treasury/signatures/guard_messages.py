"""What owners sign for TreasuryGuard's delay queue: the Schedule and Cancel EIP-712 messages.

TreasuryGuard (contracts/guard/DelayQueue.sol) takes a transaction's intent into its queue with the
Safe's threshold of owner signatures over scheduleHash(to, value, data, operation, nonce), where
`nonce` is the intent's schedule nonce (intentState(intentId)[0]), and cancels an entry with
cancelSignaturesRequired(entryId) owner signatures over cancelHash(entryId). Both are EIP-712
hashes in the domain EIP712Domain(uint256 chainId, address verifyingContract = the guard).

Computed here from plain fields, with no chain and no web3 (the store-only commands check stored
signatures with it); with a chain, `Treasury` compares each hash with the guard's own answer. The
signatures themselves are the Safe's formats and are checked as the Safe checks them
(treasury.signatures.verification.verify_against): the guard hands them to the Safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from treasury.addresses import keccak, parse_address

GuardPurpose = Literal["schedule", "cancel"]
GUARD_PURPOSES: tuple[GuardPurpose, ...] = ("schedule", "cancel")

DOMAIN_TYPEHASH = keccak(b"EIP712Domain(uint256 chainId,address verifyingContract)")
SCHEDULE_TYPEHASH = keccak(b"Schedule(address safe,address to,uint256 value,bytes data,uint8 operation,uint256 nonce)")
CANCEL_TYPEHASH = keccak(b"Cancel(address safe,uint256 entryId)")

_DOMAIN_FIELDS = [{"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]
_SCHEDULE_FIELDS = [
    {"name": "safe", "type": "address"}, {"name": "to", "type": "address"}, {"name": "value", "type": "uint256"},
    {"name": "data", "type": "bytes"}, {"name": "operation", "type": "uint8"}, {"name": "nonce", "type": "uint256"},
]
_CANCEL_FIELDS = [{"name": "safe", "type": "address"}, {"name": "entryId", "type": "uint256"}]


def _word(value: int | str | bytes) -> bytes:
    """One ABI word: an unsigned integer, an address (0x text) or 32 bytes."""
    if isinstance(value, bytes):
        if len(value) != 32:
            raise ValueError("a bytes32 word must be 32 bytes")
        return value
    if isinstance(value, str):
        return bytes(12) + bytes.fromhex(value[2:])
    return value.to_bytes(32, "big")


@dataclass(frozen=True)
class GuardMessage:
    """One Schedule or Cancel message: its EIP-712 hash, the preimage the guard hands the Safe
    (0x1901 || domain separator || struct hash), and the typed data a wallet shows."""

    purpose: GuardPurpose
    chain_id: int
    guard: str
    safe: str
    hash: bytes
    preimage: bytes
    typed_data: dict[str, Any]
    intent_nonce: int | None = None
    entry_id: int | None = None

    @property
    def hash_hex(self) -> str:
        return "0x" + self.hash.hex()

    def describe(self) -> str:
        """What the signature commits to, in words ("schedule nonce 0", "cancel of entry 3")."""
        if self.purpose == "schedule":
            return f"schedule nonce {self.intent_nonce}"
        return f"cancel of entry {self.entry_id}"


def _message(purpose: GuardPurpose, chain_id: int, guard: str, safe: str, struct: bytes, typed: dict[str, Any],
             **subject: int) -> GuardMessage:
    domain = keccak(DOMAIN_TYPEHASH + _word(chain_id) + _word(guard))
    preimage = b"\x19\x01" + domain + keccak(struct)
    return GuardMessage(purpose, chain_id, guard, safe, keccak(preimage), preimage, typed, **subject)


def _typed(primary: str, fields: list[dict[str, str]], chain_id: int, guard: str, message: dict[str, Any]) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": _DOMAIN_FIELDS, primary: fields},
        "primaryType": primary,
        "domain": {"chainId": chain_id, "verifyingContract": guard},
        "message": message,
    }


def schedule_message(
    *, chain_id: int, guard: str, safe: str, to: str, value: int, data: bytes, operation: int, nonce: int
) -> GuardMessage:
    """Schedule(safe, to, value, data, operation, nonce) in the guard's domain: what owners sign so
    that the guard queues this intent for the `nonce`-th time."""
    guard, safe, to = parse_address(guard, "guard"), parse_address(safe, "Safe"), parse_address(to, "recipient")
    data = bytes(data)
    struct = SCHEDULE_TYPEHASH + _word(safe) + _word(to) + _word(value) + keccak(data) + _word(operation) + _word(nonce)
    message = {"safe": safe, "to": to, "value": value, "data": "0x" + data.hex(), "operation": operation, "nonce": nonce}
    return _message("schedule", chain_id, guard, safe, struct, _typed("Schedule", _SCHEDULE_FIELDS, chain_id, guard, message),
                    intent_nonce=nonce)


def cancel_message(*, chain_id: int, guard: str, safe: str, entry_id: int) -> GuardMessage:
    """Cancel(safe, entryId) in the guard's domain: what owners sign to cancel queue entry `entry_id`."""
    guard, safe = parse_address(guard, "guard"), parse_address(safe, "Safe")
    struct = CANCEL_TYPEHASH + _word(safe) + _word(entry_id)
    typed = _typed("Cancel", _CANCEL_FIELDS, chain_id, guard, {"safe": safe, "entryId": entry_id})
    return _message("cancel", chain_id, guard, safe, struct, typed, entry_id=entry_id)
