"""What the proposal page hands the wallet: EIP-712 typed data for `eth_signTypedData_v4`.

The SafeTx typed data is exactly what the Safe hashes (its version's domain: chainId from 1.3.0 on,
and the Safe as verifyingContract), so the wallet shows and signs the proposal's safeTxHash. When the
policy verdict says the guard's delay is needed first, the page also offers the guard's Schedule
message, and for a queued entry its Cancel message (treasury.signatures.guard_messages: both are
EIP-712 typed data in the guard's domain, so a wallet shows their fields too, not a blind hash).

Every uint256 is a decimal string, as Safe's own SDK sends it: the page's JavaScript never turns a
value above 2**53 into a float, and wallets (MetaMask, anvil) read decimal strings. The hashes are
computed here on the server from the stored proposal; the server checks any signature posted back
against its own recomputation, never against what the page sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils import keccak

from treasury.errors import InvalidInput
from treasury.signatures.guard_messages import GuardMessage
from treasury.types import OPEN_STATUS_VALUES

if TYPE_CHECKING:
    from safe_eth.safe.safe_tx import SafeTx

    from treasury.store import ProposalRecord
    from treasury.treasury import Treasury

_UINT = "uint256"


@dataclass(frozen=True)
class GuardSigning:
    """A Schedule or Cancel message the page offers: its typed data and what to POST with the signature."""

    purpose: str  # "schedule" or "cancel"
    typed_data: dict[str, Any]
    signed_hash: str  # 0x-hex: the guard's scheduleHash / cancelHash (checked by the server again)
    intent_nonce: int | None
    entry_id: int | None
    describe: str  # "schedule nonce 0", "cancel of entry 3"

    def post_fields(self) -> dict[str, Any]:
        """The guard-signatures POST body without `signature` and `owner` (sign.js adds only `signature`: the server recovers the owner)."""
        fields: dict[str, Any] = {"purpose": self.purpose, "signedHash": self.signed_hash}
        if self.purpose == "schedule":
            fields["intentNonce"] = self.intent_nonce
        else:
            fields["entryId"] = self.entry_id
        return fields


@dataclass(frozen=True)
class SigningData:
    """Everything the signing panel embeds for one proposal."""

    safe_tx: dict[str, Any]  # typed data of the SafeTx
    safe_tx_hash: str  # 0x-hex
    domain_hash: str  # the Safe's domain separator, as a hardware wallet shows it
    message_hash: str  # the SafeTx struct hash ("message hash" on a Ledger/Trezor screen)
    schedule: GuardSigning | None = None
    cancel: GuardSigning | None = None


def _strings(values: dict[str, Any], types: list[dict[str, str]]) -> dict[str, Any]:
    """The message with exactly the typed fields, uint256 as decimal strings and bytes as 0x-hex."""
    out: dict[str, Any] = {}
    for field in types:
        value = values[field["name"]]
        if field["type"] == _UINT:
            value = str(int(value))
        elif field["type"] == "bytes":
            value = value if isinstance(value, str) else "0x" + bytes(value).hex()
        elif field["type"] == "uint8":
            value = int(value)
        out[field["name"]] = value
    return out


def typed_data_for_wallet(typed: dict[str, Any]) -> dict[str, Any]:
    """`typed` as eth_signTypedData_v4 takes it as JSON: only typed fields, JSON-safe numbers."""
    types = typed["types"]
    primary = typed["primaryType"]
    domain = dict(typed["domain"])
    if "chainId" in domain:
        domain["chainId"] = int(domain["chainId"])  # a number: chain ids are small, and wallets compare it
    return {
        "types": {name: [dict(f) for f in fields] for name, fields in types.items()},
        "primaryType": primary,
        "domain": domain,
        "message": _strings(typed["message"], types[primary]),
    }


def safe_tx_typed_data(safe_tx: SafeTx) -> dict[str, Any]:
    """The SafeTx as the Safe of its version hashes it (safe-eth-py's structured data, cleaned: its
    message carries both `baseGas` and the legacy `dataGas`; a strict wallet refuses the extra key)."""
    return typed_data_for_wallet(safe_tx.eip712_structured_data)


def guard_signing(message: GuardMessage) -> GuardSigning:
    return GuardSigning(message.purpose, typed_data_for_wallet(message.typed_data), message.hash_hex,
                        message.intent_nonce, message.entry_id, message.describe())


def _hashes(safe_tx: SafeTx) -> tuple[str, str, str]:
    preimage = bytes(safe_tx.safe_tx_hash_preimage)  # 0x1901 || domain separator || struct hash
    digest = keccak(preimage)
    return "0x" + digest.hex(), "0x" + preimage[2:34].hex(), "0x" + preimage[34:66].hex()


def guard_messages(treasury: Treasury, record: ProposalRecord) -> tuple[GuardMessage | None, GuardMessage | None]:
    """(schedule, cancel): the guard message the proposal needs signed now, as `treasury show` counts
    them (schedule while the verdict needs the delay and the proposal is open and not queued; cancel
    while its entry is queued and pending on chain). Both None without a guard."""
    if record.status not in OPEN_STATUS_VALUES or treasury.guard() is None:
        return None, None
    if record.status == "scheduled":
        try:
            _guard, stored = treasury.queued_entry(record)
        except InvalidInput:
            return None, None
        return None, treasury.cancel_message(stored.entry_id)
    return treasury.schedule_message_needed(record), None


def signing_data(treasury: Treasury, record: ProposalRecord) -> SigningData:
    """The typed data the page embeds for `record` (reads the chain: the guard's state and verdict).

    Raises treasury.store.errors.TamperedRecord when the stored fields no longer hash to the stored
    safeTxHash (nothing to sign then)."""
    safe_tx = treasury.safe_tx(record)
    safe_tx_hash, domain_hash, message_hash = _hashes(safe_tx)
    schedule, cancel = guard_messages(treasury, record)
    return SigningData(
        safe_tx=safe_tx_typed_data(safe_tx), safe_tx_hash=safe_tx_hash, domain_hash=domain_hash, message_hash=message_hash,
        schedule=guard_signing(schedule) if schedule is not None else None,
        cancel=guard_signing(cancel) if cancel is not None else None,
    )
