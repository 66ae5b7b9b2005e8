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

import getpass
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from treasury.addresses import keccak, to_checksum
from treasury.decode.hashes import SafeTxHashes, safe_tx_hashes
from treasury.errors import InvalidInput
from treasury.signatures.bundle import (
    Bundle,
    InvalidBundle,
    ProposalFacts,
    bundle_document,
    read_bundle,
    tx_fields,
    write_bundle,
)
from treasury.store import (
    AuditEntry,
    AuditReport,
    DuplicateSignature,
    ProposalRecord,
    SignatureRecord,
    Store,
    TamperedRecord,
)
from treasury.types import OPEN_STATUS_VALUES

if TYPE_CHECKING:
    from treasury.addressbook import AddressBook
    from treasury.amounts import TokenBook
    from treasury.config import TreasuryConfig, TreasuryEntry
    from treasury.decode.calls import DecodedProposal
    from treasury.policy.model import Policy

MAX_PROPOSER = 200  # the store's label width

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
    def load(cls, name: str | None = None, config_path: Path | None = None, store: Store | str | None = None,
             *, create: bool = False) -> TreasuryRecords:
        """The treasury `name` (default: the only one configured) of the ape project's config or of
        `config_path`. A store that does not exist yet reads as empty and is not created, unless
        `create` (a command that writes, such as `treasury import`)."""
        from treasury.config import load_config

        config = load_config(config_path)
        name = only_treasury(config) if name is None else name
        entry = config.treasury(name)
        if isinstance(store, Store):
            return cls(name, entry, store)
        location = str(store or config.store)
        return cls(name, entry, Store.open(location) if create else _open_existing(location))

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
    def addresses(self) -> AddressBook:
        """The address book (owners, vendors, token symbols): names shown beside addresses."""
        return self.entry.address_book()

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

    def bundle(self, proposal_id: str, *, owners: tuple[str, ...] | None = None, threshold: int | None = None) -> dict[str, Any]:
        """The proposal and its stored signatures as a bundle, exactly as `Treasury.export_bundle` writes it.

        `owners` and `threshold`: the Safe's, from whoever knows them (the server's cached chain
        view); without them the bundle is importable only where a chain checks it.
        """
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
            facts=facts_of(record, owners, threshold),
        )

    def export_bundle(self, proposal_id: str, path: str | Path | None = None) -> dict[str, Any]:
        """The bundle, written to `path` if given."""
        bundle = self.bundle(proposal_id)
        if path is not None:
            write_bundle(bundle, path)
        return bundle

    def import_bundle(self, source: dict | str | Path, actor: str | None = None) -> BundleImport:
        """Take in a bundle with no chain: create its proposal if this store never saw it, and add its
        signatures, each verified offline against the owners the bundle records.

        The safeTxHash is recomputed from the bundle's fields exactly as the Safe hashes them (any
        gas fields and refund receiver: a proposal made by another tool is taken in as it is). Each
        eip712 / eth_sign signature must recover to its stated owner over that hash, and that owner
        must be one of the bundle's owners; an approved_hash or contract signature can only be
        checked on chain, so it is stored unchecked (`BundleImport.unchecked`). Schedule and cancel
        signatures are checked over the configured guard's hash. Everything is checked before
        anything is stored: a bundle that fails any check changes nothing. Every signature is stored
        with verified_by="bundle", for `Treasury.reverify` to check against the chain's owners; the
        owners are the bundle's own word, so such a row never keeps out the owner's chain-verified
        signature (the store replaces it), and the proposer is stored as the bundle's claim.
        """
        bundle = read_bundle(source)
        self.check_ours(bundle)
        owners = bundle.facts.owners
        if owners is None:
            raise InvalidBundle("bundle records no owners (exported without a chain, or by an older ape-treasury): "
                                "import it with --network, where the Safe's current owners check it")
        digest = bytes.fromhex(bundle.safe_tx_hash[2:])
        wanted = [_offline_checked(f"bundle signature #{i}", "safe_tx", s.owner, s.kind, s.signature, digest, owners)
                  for i, s in enumerate(bundle.signatures, start=1)]
        wanted += self._guard_wanted(bundle, owners)
        existing = self.store.find_by_safe_tx_hash(self.chain_id, self.safe, bundle.safe_tx_hash)
        if existing is not None and existing.status not in OPEN_STATUS_VALUES:
            raise InvalidInput(f"proposal {existing.id} with safeTxHash {bundle.safe_tx_hash} is {existing.status}; it takes no more signatures")
        actor = actor or f"{getpass.getuser()} (bundle)"
        record = existing or self.store.add_proposal(
            chain_id=bundle.chain_id, safe=bundle.safe, nonce=bundle.nonce, safe_tx_hash=bundle.safe_tx_hash,
            title=bundle.facts.title, description=bundle.facts.description, proposer=bundle_proposer(bundle.facts.proposer),
            actor=actor, **bundle.safe_tx_fields(),
        )
        have = {(s.purpose, s.signed_hash, s.owner) for s in self.store.signatures(record.id, None)}
        added = []
        for item in wanted:
            signed_hash = bundle.safe_tx_hash if item.purpose == "safe_tx" else item.signed_hash
            if (item.purpose, signed_hash, item.owner) in have:
                continue
            try:
                added.append(self.store.add_signature(
                    record.id, item.owner, item.kind, item.signature, actor, purpose=item.purpose,
                    signed_hash=None if item.purpose == "safe_tx" else item.signed_hash, intent_nonce=item.intent_nonce,
                    entry_id=item.entry_id, verified_by="bundle"))
            except DuplicateSignature:
                continue  # stored meanwhile by another writer: kept once
        unchecked = tuple(s for s in added if not verified_offline(s))
        return BundleImport(record, existing is None, tuple(added), unchecked, owners, bundle.facts.threshold)

    def check_ours(self, bundle: Bundle) -> None:
        """The bundle is for this treasury: its chain, its Safe, the Safe version its hashes use."""
        if (bundle.chain_id, bundle.safe) != (self.chain_id, self.safe):
            raise InvalidBundle(f"bundle is for Safe {bundle.safe} on chain {bundle.chain_id}, not {self.name} "
                                f"(Safe {self.safe} on chain {self.chain_id})")
        if bundle.version != self.version:
            raise InvalidBundle(f"bundle hashes for Safe version {bundle.version}, but {self.name} is configured as {self.version}")

    def _guard_wanted(self, bundle: Bundle, owners: tuple[str, ...]) -> list[_Checked]:
        """The bundle's schedule and cancel signatures, each over the configured guard's hash and by a
        bundle owner. A cancel signature's entry cannot be tied to this proposal without a chain:
        `Treasury.reverify` checks that."""
        from treasury.signatures.guard_messages import cancel_message, schedule_message

        if not bundle.guard_signatures:
            return []
        if not self.entry.guard:
            raise InvalidBundle(f"bundle carries schedule and cancel signatures, but {self.name} has no guard configured")
        guard, checked = self.entry.guard, []
        for index, entry in enumerate(bundle.guard_signatures, start=1):
            where = f"bundle guard signature #{index}"
            if entry.guard != guard:
                raise InvalidBundle(f"{where} is for guard {entry.guard}, not {self.name}'s guard {guard}")
            if entry.purpose == "schedule":
                message = schedule_message(chain_id=bundle.chain_id, guard=guard, safe=bundle.safe, to=bundle.to,
                                           value=bundle.value, data=bundle.data, operation=bundle.operation, nonce=entry.subject)
            else:
                message = cancel_message(chain_id=bundle.chain_id, guard=guard, safe=bundle.safe, entry_id=entry.subject)
            if entry.signed_hash != message.hash:
                raise InvalidBundle(f"{where} states hash 0x{entry.signed_hash.hex()}, but the {message.describe()} hashes to {message.hash_hex}")
            item = _offline_checked(where, entry.purpose, entry.owner, entry.kind, entry.signature, message.hash, owners)
            checked.append(_Checked(item.purpose, item.owner, item.kind, item.signature, message.hash_hex,
                                    entry.subject if entry.purpose == "schedule" else None,
                                    entry.subject if entry.purpose == "cancel" else None))
        return checked

    # --- the audit log ------------------------------------------------------------------------

    def audit_log(self, proposal_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        """The audit log in order (one proposal's entries if given); with `limit`, the newest that many."""
        if proposal_id is not None:
            proposal_id = self.get(proposal_id).id  # unknown ids and other Safes' proposals are refused
        return self.store.audit_entries(proposal_id, limit=limit)

    def verify_log(self) -> AuditReport:
        return self.store.verify_audit_log()


@dataclass(frozen=True)
class BundleImport:
    """What `TreasuryRecords.import_bundle` did: the proposal (`created` if the store never saw it),
    the signatures it stored (all verified_by="bundle"), those of them no offline check can prove
    (approved_hash, contract), and the owners and threshold the bundle recorded."""

    record: ProposalRecord
    created: bool
    added: tuple[SignatureRecord, ...]
    unchecked: tuple[SignatureRecord, ...]
    owners: tuple[str, ...]
    threshold: int | None


@dataclass(frozen=True)
class _Checked:
    """A bundle signature that passed its offline check, ready for `Store.add_signature`."""

    purpose: str
    owner: str
    kind: str
    signature: bytes
    signed_hash: str | None = None
    intent_nonce: int | None = None
    entry_id: int | None = None


def _offline_checked(where: str, purpose: str, owner: str, kind: str, raw: bytes, digest: bytes,
                     owners: tuple[str, ...]) -> _Checked:
    """The signature is of its stated kind, is its stated owner's over `digest` (recovered for
    eip712 / eth_sign; merely named for approved_hash / contract), and that owner is one the bundle
    records. InvalidBundle in one line otherwise (not verification's InvalidSignature: that module
    loads safe-eth-py)."""
    actual = _KIND_OF_V.get(raw[64]) if len(raw) >= 65 else None
    if actual != kind or (kind != "contract" and len(raw) != 65):
        raise InvalidBundle(f"{where}: it is declared {kind} but its {len(raw)} bytes make {actual or 'no'} Safe signature")
    if kind == "approved_hash" and (any(raw[:12]) or any(raw[32:64])):
        raise InvalidBundle(f"{where}: an approved_hash signature is r = the owner left-padded, s = 0, v = 1")
    signer = _signer(kind, raw, digest)
    if signer != owner:
        verb = "recovers to" if kind in OFFLINE_VERIFIED_KINDS else "names"
        raise InvalidBundle(f"{where}: {kind} signature said to be by {owner} {verb} {signer or 'no address'} over this hash: "
                               "its bytes or its owner field were altered, or it was made over another transaction")
    if owner not in owners:
        raise InvalidBundle(f"{where}: {kind} signer {owner} is not one of the owners the bundle records ({', '.join(owners)})")
    return _Checked(purpose, owner, kind, raw)


def bundle_proposer(claimed: str) -> str:
    """The proposer label of a proposal a bundle created: `bundle:<what the bundle says>`. Whoever
    wrote the bundle chose that text, so it is never shown as if it were an address or an owner
    (a bundle exported from such a proposal keeps one prefix)."""
    claimed = "".join(c for c in claimed if c.isprintable()).strip()
    text = claimed if claimed.startswith("bundle:") else f"bundle:{claimed or 'unknown'}"
    return text[:MAX_PROPOSER]


def facts_of(record: ProposalRecord, owners: tuple[str, ...] | None = None, threshold: int | None = None) -> ProposalFacts:
    """What a bundle says about `record` beyond its SafeTx; owners and threshold go in together or not at all."""
    if (owners is None) != (threshold is None):
        raise InvalidInput("a bundle records the owners and the threshold together, or neither")
    return ProposalFacts(title=record.title, description=record.description, proposer=record.proposer,
                         owners=None if owners is None else tuple(owners), threshold=threshold)


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
