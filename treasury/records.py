"""A treasury as its store and config know it: proposals, what they do, their hashes and signatures,
bundles and the audit log, with no chain.

`TreasuryRecords.load("ops")` opens what `Treasury.load("ops")` opens minus the chain: nothing here
imports ape, web3 or safe-eth-py, so `treasury list`, `show`, `export` and `log` start in a
fraction of a second. What needs the chain (the live policy verdict, the current owners and
threshold, on-chain approvals) stays with `treasury.treasury.Treasury`.

Integrity without a chain: every stored row is checked against its content hash by the store,
each proposal's fields are re-hashed here to its safeTxHash, and every EOA signature must still
recover to its owner over that hash. The content hashes are unkeyed: they catch rows edited outside
the store's code (a slip, a broken tool), not a deliberate writer with access to the database, who
can re-seal what they write. Offline, an eip712 / eth_sign signature proves only that the key
signed this safeTxHash, not that the key is (still) an owner; an approved_hash or contract
signature proves nothing at all (its bytes merely name an owner: the approval or EIP-1271 answer
lives on chain), so it is reported as unverified and not counted (`verified_offline`). Whether an
owner is still an owner, and the on-chain approvals, are the chain's to say
(`Treasury.collected_signatures`); an importer of a bundle checks all of it again in any case.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from treasury.addresses import keccak, to_checksum
from treasury.decode.hashes import SafeTxHashes, safe_tx_hashes
from treasury.errors import InvalidInput
from treasury.signatures.bundle import bundle_document, tx_fields, write_bundle
from treasury.store import (
    AuditEntry,
    AuditReport,
    ProposalRecord,
    SignatureRecord,
    Store,
    TamperedRecord,
)

if TYPE_CHECKING:
    from treasury.amounts import TokenBook
    from treasury.config import TreasuryConfig, TreasuryEntry
    from treasury.decode.calls import DecodedProposal
    from treasury.policy.model import Policy

# A signature's kind follows from its v byte (the Safe's own convention).
_KIND_OF_V = {27: "eip712", 28: "eip712", 31: "eth_sign", 32: "eth_sign", 1: "approved_hash", 0: "contract"}


@dataclass(frozen=True)
class StoredView:
    """A proposal as the store knows it: what it does, its hashes and signatures. No verdict: that
    needs the guard's live state (`Treasury.view`); `verdict` and `threshold` are None here."""

    record: ProposalRecord
    decoded: DecodedProposal
    signatures: tuple[SignatureRecord, ...]
    verdict: None = None
    threshold: None = None

    @property
    def signers(self) -> tuple[str, ...]:
        """The owners whose signatures verify offline (eip712 / eth_sign); owner status unchecked."""
        return tuple(s.owner for s in self.signatures if verified_offline(s))


# What the store alone can verify: an EOA signature recovers to its key. An approved_hash or
# contract signature only names its owner in its bytes; the proof is on chain.
OFFLINE_VERIFIED_KINDS = ("eip712", "eth_sign")
UNVERIFIED_NOTE = "unverified without --network"
OWNER_STATUS_NOTE = "owner status not checked offline: a signature verified here proves its key signed, not that the key is (still) an owner"


def verified_offline(signature: SignatureRecord) -> bool:
    """Whether a stored signature (already checked by `TreasuryRecords.signatures`) is verified without a chain."""
    return signature.kind in OFFLINE_VERIFIED_KINDS


class TreasuryRecords:
    """A named treasury's config and store, read without a chain."""

    def __init__(self, name: str, entry: TreasuryEntry, store: Store):
        self.name = name
        self.entry = entry
        self.store = store

    @classmethod
    def load(cls, name: str | None = None, config_path: Path | None = None, store: Store | str | None = None) -> TreasuryRecords:
        """The treasury `name` (default: the only one configured) of the ape project's config or of
        `config_path`. A store that does not exist yet reads as empty and is not created."""
        from treasury.config import load_config

        config = load_config(config_path)
        name = only_treasury(config) if name is None else name
        entry = config.treasury(name)
        return cls(name, entry, store if isinstance(store, Store) else _open_existing(store or config.store))

    def close(self) -> None:
        self.store.close()

    def __repr__(self) -> str:
        return f"<TreasuryRecords {self.name}: Safe {self.safe} on chain {self.chain_id}>"

    # --- the configured treasury --------------------------------------------------------------

    @property
    def safe(self) -> str:
        return self.entry.safe

    @property
    def chain_id(self) -> int:
        return self.entry.chain_id

    @property
    def version(self) -> str:
        return self.entry.version

    @cached_property
    def book(self) -> TokenBook:
        return self.entry.token_book()

    @cached_property
    def policy(self) -> Policy:
        return self.entry.to_policy()

    # --- proposals ----------------------------------------------------------------------------

    def get(self, proposal_id: str) -> ProposalRecord:
        """The proposal, refused if it belongs to another Safe or chain than this treasury's."""
        record = self.store.get_proposal(proposal_id)
        if (record.chain_id, record.safe) != (self.chain_id, self.safe):
            raise InvalidInput(f"proposal {proposal_id} belongs to Safe {record.safe} on chain {record.chain_id}, not to {self.name}")
        return record

    def proposals(self, status: str | None = None, limit: int | None = None) -> list[ProposalRecord]:
        return self.store.list_proposals(safe=self.safe, chain_id=self.chain_id, status=status, limit=limit)

    def hashes(self, record: ProposalRecord) -> SafeTxHashes:
        """Domain, message and safeTxHash re-computed from the stored fields; a mismatch is tampering."""
        hashes = safe_tx_hashes(
            safe=record.safe, chain_id=record.chain_id, version=self.version, to=record.to, value=record.value,
            data=record.data, operation=record.operation, nonce=record.nonce, safe_tx_gas=record.safe_tx_gas,
            base_gas=record.base_gas, gas_price=record.gas_price, gas_token=record.gas_token,
            refund_receiver=record.refund_receiver,
        )
        if hashes.safe_tx_hash != record.safe_tx_hash.lower():
            raise TamperedRecord(f"proposal {record.id}: its fields no longer hash to its safeTxHash {record.safe_tx_hash}")
        return hashes

    def decode(self, proposal_id: str) -> DecodedProposal:
        """What the proposal does, in words (the same decoding `Treasury.decode` shows)."""
        from treasury.decode.calls import decode_transaction

        record = self.get(proposal_id)
        hashes = self.hashes(record)
        return decode_transaction(
            record.safe, record.chain_id, record.nonce, record.to, record.value, bytes(record.data), record.operation,
            self.book, hashes=(hashes.domain_hash, hashes.message_hash, hashes.safe_tx_hash),
            gas_price=record.gas_price, refund_receiver=record.refund_receiver,
        )

    def signatures(self, proposal_id: str) -> list[SignatureRecord]:
        """The stored signatures, each checked to be over this proposal's safeTxHash by its owner."""
        record = self.get(proposal_id)
        digest = bytes.fromhex(self.hashes(record).safe_tx_hash[2:])
        stored = self.store.signatures(record.id)
        for signature in stored:
            _check_signature(record.id, signature, digest)
        return stored

    def guard_signatures(self, proposal_id: str, *, for_configured_guard: bool = False) -> list[SignatureRecord]:
        """The stored schedule and cancel signatures, each checked to be its owner's over its stored
        hash. `for_configured_guard`: only those whose hash is the configured guard's for their
        schedule nonce or entry id (what a bundle carries: one made for a former guard is useless)."""
        from treasury.signatures.guard_messages import cancel_message, schedule_message

        record = self.get(proposal_id)
        stored = [s for s in self.store.signatures(record.id, None) if s.purpose != "safe_tx"]
        for signature in stored:
            _check_signature(record.id, signature, bytes.fromhex(signature.signed_hash[2:]))
        if not for_configured_guard:
            return stored
        if not self.entry.guard:
            return []
        guard = self.entry.guard

        def current(signature: SignatureRecord) -> bool:
            if signature.purpose == "schedule":
                message = schedule_message(chain_id=record.chain_id, guard=guard, safe=record.safe, to=record.to,
                                           value=record.value, data=bytes(record.data), operation=record.operation,
                                           nonce=signature.intent_nonce or 0)
            else:
                message = cancel_message(chain_id=record.chain_id, guard=guard, safe=record.safe, entry_id=signature.entry_id or 0)
            return message.hash_hex == signature.signed_hash

        return [s for s in stored if current(s)]

    def view(self, proposal_id: str) -> StoredView:
        """Everything the store says about a proposal, for `treasury show` without --network."""
        record = self.get(proposal_id)
        return StoredView(record, self.decode(record.id), tuple(self.signatures(record.id)))

    # --- bundles ------------------------------------------------------------------------------

    def bundle(self, proposal_id: str) -> dict[str, Any]:
        """The proposal and its stored signatures as a bundle, exactly as `Treasury.export_bundle` writes it."""
        record = self.get(proposal_id)
        hashes = self.hashes(record)
        return bundle_document(
            chain_id=record.chain_id, safe=record.safe, version=self.version, nonce=record.nonce,
            tx=tx_fields(to=record.to, value=record.value, data=bytes(record.data), operation=record.operation,
                         safe_tx_gas=record.safe_tx_gas, base_gas=record.base_gas, gas_price=record.gas_price,
                         gas_token=record.gas_token, refund_receiver=record.refund_receiver),
            domain_hash=hashes.domain_hash, message_hash=hashes.message_hash, safe_tx_hash=hashes.safe_tx_hash,
            signatures=[(s.owner, s.kind, bytes(s.signature)) for s in self.signatures(record.id)],
            guard_signatures=[(s.purpose, s.owner, s.kind, bytes(s.signature), str(self.entry.guard), s.signed_hash,
                               int((s.intent_nonce if s.purpose == "schedule" else s.entry_id) or 0))
                              for s in self.guard_signatures(record.id, for_configured_guard=True)],
        )

    def export_bundle(self, proposal_id: str, path: str | Path | None = None) -> dict[str, Any]:
        """The bundle, written to `path` if given."""
        bundle = self.bundle(proposal_id)
        if path is not None:
            write_bundle(bundle, path)
        return bundle

    # --- the audit log ------------------------------------------------------------------------

    def audit_log(self, proposal_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        """The audit log in order (one proposal's entries if given); with `limit`, the newest that many."""
        if proposal_id is not None:
            proposal_id = self.get(proposal_id).id  # unknown ids and other Safes' proposals are refused
        return self.store.audit_entries(proposal_id, limit=limit)

    def verify_log(self) -> AuditReport:
        return self.store.verify_audit_log()


def only_treasury(config: TreasuryConfig) -> str:
    """The name of the only configured treasury; with several (or none) the caller must choose."""
    names = sorted(config.treasuries)
    if len(names) == 1:
        return names[0]
    raise InvalidInput("choose a treasury with --treasury NAME (configured: " + (", ".join(names) or "none") + ")")


def _open_existing(location: str) -> Store:
    """The store at `location`; a store file that does not exist yet reads as an empty store (nothing
    proposed) and is not created by reading it."""
    from treasury.config import is_url

    if not is_url(location) and location != ":memory:" and not Path(location).expanduser().exists():
        return Store.open(":memory:")
    return Store.open(location)


def _check_signature(proposal_id: str, signature: SignatureRecord, safe_tx_hash: bytes) -> None:
    """The stored bytes are of the stored kind and name (or recover to) the stored owner over this hash."""
    raw = bytes(signature.signature)
    kind = _KIND_OF_V.get(raw[64]) if len(raw) >= 65 else None
    if kind != signature.kind:
        raise TamperedRecord(f"proposal {proposal_id}: the {signature.kind} signature of {signature.owner} has the bytes of a {kind or 'malformed'} one")
    if _signer(kind, raw, safe_tx_hash) != signature.owner:
        raise TamperedRecord(f"proposal {proposal_id}: the {kind} signature said to be by {signature.owner} is not its signature over the safeTxHash")


def _signer(kind: str, raw: bytes, safe_tx_hash: bytes) -> str:
    """Who made the signature: recovered for eip712/eth_sign, named in `r` for approved_hash/contract."""
    r, s, v = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    if kind in ("approved_hash", "contract"):
        return to_checksum(raw[12:32])
    from eth_keys import keys
    from eth_keys.exceptions import BadSignature, ValidationError

    digest = safe_tx_hash
    if kind == "eth_sign":  # the owner signed the hash as a personal message; the Safe marks it with v + 4
        digest, v = keccak(b"\x19Ethereum Signed Message:\n32" + safe_tx_hash), v - 4
    try:
        return keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest).to_checksum_address()
    except (BadSignature, ValidationError):
        return ""
