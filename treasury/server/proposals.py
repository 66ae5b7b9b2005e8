"""Multisig transactions through the server: propose, confirm, list, show and estimate, without HTTP.

The rules are the Safe Transaction Service's, checked against the chain before anything is written:
the safeTxHash is recomputed from the fields (chain id from the node, EIP-712 domain from the Safe's
version), the sender must be a current owner or one of their delegates and must have signed, every
signature must recover (or, for approved hashes and contract owners, be confirmed on chain) to a
current owner. Owners come from the chain view's short cache and are read again once before anyone
is refused, so an owner added a moment ago is not turned away. A refusal raises ApiError and leaves
the store as it was; a repeat (same proposal, same confirmation) is accepted and stored once.

The store is the toolkit's own (the same proposals `treasury list` shows); the policy verdict comes
from the configured Treasury and what the chain says happened is learned by the toolkit's reconcile.
ape is not thread-safe, so every direct use of it here holds the chain view's lock.

Reads are served from what the last read learned while the store has not changed: the audit log
grows with every write, so its last sequence number names the store's state. A Safe's proposals are
brought up to date by re-reading only those the new audit entries name, each transaction's JSON is
encoded once per state, and a whole page is reused until the store, the Safe's nonce or threshold,
or the verdicts' period changes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from safe_eth.safe.safe_signature import SafeSignature
from safe_eth.safe.safe_tx import SafeTx

from treasury.errors import InvalidInput
from treasury.proposal.safe_tx import build_safe_tx
from treasury.server import wire
from treasury.server.errors import ApiError, not_found, unprocessable
from treasury.signatures.verification import InvalidSignature, kind_of, parse_exact, verify_against
from treasury.store import (
    DuplicateProposal,
    DuplicateSignature,
    ExecutionRecord,
    ProposalRecord,
    SignatureRecord,
    new_signature,
)
from treasury.types import OPEN_STATUS_VALUES

if TYPE_CHECKING:
    from treasury.server.context import SafeFacts, ServerContext
    from treasury.treasury import Treasury

log = logging.getLogger("treasury.server")

OPEN = OPEN_STATUS_VALUES
POLICY_DENIED = 70  # our code in the service's numbered 422s: the treasury policy denies the transaction
GAS_ESTIMATION_FAILED = 30  # the service's own code
# Safe's service adds these to eth_estimateGas of the inner call when the Safe cannot estimate itself
# (requiredTxGas is gone since Safe 1.4.0): proxy routing, the 1/64 rule of nested calls, web3's underestimate.
ESTIMATION_OVERHEAD = 1_000 + 35_000 + 23_000
ESTIMATION_GAS_CAP = 30_000_000  # about a block: an estimation costs the node no more than one block's execution
VERDICT_TTL = 30.0  # seconds a verdict is shown before it is computed again (it follows live guard state)
ROWS_KEPT = 50_000  # encoded transactions kept (about 1.5 kB each)
CATCH_UP = 200  # audit entries read to bring a Safe's cached proposals up to date; beyond, all are read
PAGES_KEPT = 32  # rendered pages kept (a page of 1,000 is ~1.5 MB); all go when more are needed

Actor = Callable[[str], str]  # the audit actor for a verified signer (treasury.server.context.actor_of)


def _refused(message: str) -> ApiError:
    """A proposal refused as the service refuses one: 422 with the serializer's non-field error."""
    return ApiError(422, {"nonFieldErrors": [message]})


def _bad_signature(message: str) -> ApiError:
    """A confirmation refused as the service refuses one: 400 on its `signature` field."""
    return ApiError(400, {"signature": [message]})


def _require_new_or_repeat(record: ProposalRecord, signature: SafeSignature, stored: Mapping[str, bytes]) -> None:
    """Refuse a signature of an owner whose stored confirmation has other bytes: answering 201 for
    it would tell the client it was stored when it was not."""
    have = stored.get(signature.owner)
    if have is not None and have != bytes(signature.export_signature()):
        raise _bad_signature(f"Owner {signature.owner} has already confirmed safe-tx-hash={record.safe_tx_hash} "
                             "with another signature")


def confirmed(signatures: Sequence[SignatureRecord]) -> list[SignatureRecord]:
    """The confirmations to show: signatures verified against the chain (a bundle's wait until they are)."""
    return [s for s in signatures if getattr(s, "verified_by", "chain") == "chain"]


@dataclass(frozen=True)
class SafeRecords:
    """One Safe's proposals and SafeTx signatures as of audit sequence number `seq` (never mutated)."""

    seq: int
    records: dict[str, ProposalRecord]
    signatures: dict[str, list[SignatureRecord]]

    def confirmations(self, proposal_id: str) -> list[SignatureRecord]:
        return confirmed(self.signatures.get(proposal_id, []))


@dataclass(frozen=True)
class Row:
    """One transaction's JSON inputs; `key` changes whenever its JSON would."""

    record: ProposalRecord
    confirmations: list[SignatureRecord]
    threshold: int
    execution: wire.Execution | None
    verdict: dict[str, Any] | None

    @property
    def key(self) -> tuple:
        # A proposal's row changes only in its status; signatures are only ever added (or verified).
        return (self.record.id, self.record.status, self.threshold, tuple((c.owner, c.kind) for c in self.confirmations),
                self.execution, None if self.verdict is None else (self.verdict["checkedAt"], self.verdict["outcome"]))


@dataclass
class Memo:
    """What the server keeps between requests: verdicts (for VERDICT_TTL), executions' chain facts (for
    good), and the listing caches described in the module docstring."""

    verdicts: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    executions: dict[str, wire.Execution] = field(default_factory=dict)
    pages: dict[tuple, bytes] = field(default_factory=dict)
    rows: dict[tuple, bytes] = field(default_factory=dict)
    safes: dict[str, SafeRecords] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    building: threading.Lock = field(default_factory=threading.Lock)  # one cold listing at a time


@dataclass(frozen=True)
class CheckedSignatures:
    """A body's signatures, verified: those of owners (stored as confirmations), and a delegate's (not stored)."""

    owners: tuple[SafeSignature, ...]
    delegate: str | None
    facts: SafeFacts


class SafeLedger:
    """One Safe's proposals as treasury.execution.reconcile needs them (its Ledger protocol)."""

    def __init__(self, ctx: ServerContext, safe: str, actor: str) -> None:
        self.store = ctx.store
        self.actor = actor
        self._ctx = ctx
        self._safe = safe

    @property
    def safe(self) -> str:
        return self._safe

    def onchain_nonce(self) -> int:
        return self._ctx.chain.safe(self._safe, fresh=True).nonce

    def proposals(self) -> list[ProposalRecord]:
        return self._ctx.store.list_proposals(safe=self._safe, chain_id=self._ctx.chain.chain_id)


class Transactions:
    """The multisig-transaction endpoints' logic over one ServerContext."""

    def __init__(self, ctx: ServerContext, memo: Memo | None = None) -> None:
        self.ctx = ctx
        self.memo = memo or Memo()

    # --- chain access ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _ape(self) -> Iterator[None]:
        """Hold the chain view's lock while this thread uses ape directly."""
        lock = getattr(self.ctx.chain, "lock", None) or getattr(self.ctx.chain, "_lock", None)
        if lock is None:
            yield
            return
        with lock:
            yield

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.ctx.clock(), UTC)

    def safe_tx(self, safe: str, version: str, *, to: str, value: int, data: bytes, operation: int, nonce: int,
                safe_tx_gas: int = 0, base_gas: int = 0, gas_price: int = 0, gas_token: str = wire.ZERO_ADDRESS,
                refund_receiver: str = wire.ZERO_ADDRESS) -> SafeTx:
        """The SafeTx hashed as this Safe hashes it: chain id from the node, domain from the Safe's version."""
        return build_safe_tx(safe, to, value, data, operation, nonce=nonce, chain_id=self.ctx.chain.chain_id,
                             version=version, safe_tx_gas=safe_tx_gas, base_gas=base_gas, gas_price=gas_price,
                             gas_token=gas_token, refund_receiver=refund_receiver)

    def _record_tx(self, record: ProposalRecord, version: str) -> SafeTx:
        return self.safe_tx(record.safe, version, to=record.to, value=record.value, data=record.data,
                            operation=record.operation, nonce=record.nonce, safe_tx_gas=record.safe_tx_gas,
                            base_gas=record.base_gas, gas_price=record.gas_price, gas_token=record.gas_token,
                            refund_receiver=record.refund_receiver)

    # --- signatures --------------------------------------------------------------------------------

    @staticmethod
    def parse_signatures(raw: bytes, safe_tx: SafeTx) -> list[SafeSignature]:
        """One or several concatenated signatures over `safe_tx`'s hash, split but not yet recovered
        (recovery is the costly part: `verify_against` does it once, strictly, per signature)."""
        digest, preimage = bytes(safe_tx.safe_tx_hash), bytes(safe_tx.safe_tx_hash_preimage)
        try:
            found = SafeSignature.parse_signature(raw, digest, preimage)
        except Exception as error:  # noqa: BLE001 - safe-eth-py raises several types for bad bytes
            raise InvalidSignature(f"malformed signature: {' '.join(str(error).split())[:120]}") from None
        if not found:
            raise InvalidSignature("malformed signature: no signature in it")
        if all(s.v != 0 for s in found) and len(raw) != 65 * len(found):
            raise InvalidSignature(f"malformed signature: {len(raw)} bytes are not whole 65-byte signatures")
        return found

    def _delegates_of(self, safe: str, owners: Sequence[str]) -> set[str]:
        """Who may propose for `safe` besides its owners: active delegates of its current owners."""
        now = self.ctx.clock()
        return {d.delegate for d in self.ctx.store.delegates(chain_id=self.ctx.chain.chain_id)
                if (d.safe is None or d.safe == safe) and d.delegator in owners and d.active_at(now)}

    def _verify_owner(self, signature: SafeSignature, safe_tx: SafeTx, preimage: bytes, owners: Sequence[str]) -> SafeSignature:
        """The signature re-read strictly and verified as the Safe would count it (treasury.signatures.verification)."""
        with self._ape():  # approved hashes and contract owners are checked on chain
            return verify_against(signature, safe_hash=bytes(safe_tx.safe_tx_hash), preimage=preimage,
                                  safe_address=safe_tx.safe_address, version=safe_tx.safe_version, owners=set(owners),
                                  executor=None, safe_tx=safe_tx)

    def check_signatures(self, safe: str, raw: bytes, safe_tx: SafeTx, *, sender: str | None) -> CheckedSignatures:
        """Verify every signature in `raw` against the Safe's current owners (read again once before
        refusing); with a `sender` (a proposal), a delegate's lone signature is allowed too.

        Raises InvalidSignature with the reason; returns the owners' signatures to store.
        """
        facts = self.ctx.chain.safe(safe)
        parsed = self.parse_signatures(raw, safe_tx)
        preimage = bytes(safe_tx.safe_tx_hash_preimage)
        for attempt in (0, 1):
            try:
                return self._check(safe, parsed, safe_tx, preimage, facts, sender)
            except InvalidSignature:
                if attempt == 1:
                    raise
                facts = self.ctx.chain.safe(safe, fresh=True)
        raise AssertionError("unreachable")  # pragma: no cover

    def _check(self, safe: str, parsed: Sequence[SafeSignature], safe_tx: SafeTx, preimage: bytes, facts: SafeFacts,
               sender: str | None) -> CheckedSignatures:
        owners = facts.owners
        delegates = self._delegates_of(safe, owners) if sender is not None else set()
        if sender is not None and sender not in owners and sender not in delegates:
            raise InvalidSignature(f"Sender={sender} is not an owner or delegate. Current owners={list(owners)}")
        seen: list[str] = []
        verified: list[SafeSignature] = []
        delegate = None
        for signature in parsed:
            try:
                checked = self._verify_owner(signature, safe_tx, preimage, owners)
            except InvalidSignature:
                delegate = self._delegate_signer(signature, safe_tx, preimage, delegates, owners, len(parsed))
                if delegate is None:
                    raise
                seen.append(delegate)
                continue
            if checked.owner in seen:
                raise InvalidSignature(f"Signature for owner={checked.owner} is duplicated")
            seen.append(checked.owner)
            verified.append(checked)
        if sender is not None and sender not in seen:
            raise InvalidSignature(f"Signature does not match sender={sender}. Calculated owners={seen}")
        return CheckedSignatures(tuple(verified), delegate, facts)

    @staticmethod
    def _delegate_signer(signature: SafeSignature, safe_tx: SafeTx, preimage: bytes, delegates: set[str],
                         owners: Sequence[str], count: int) -> str | None:
        """The delegate whose key made this (not an owner's) signature, or None if no delegate made it."""
        if not delegates or kind_of(signature) not in ("eip712", "eth_sign"):
            return None
        signer = parse_exact(bytes(signature.export_signature()), bytes(safe_tx.safe_tx_hash), preimage).owner
        if signer not in delegates or signer in owners:
            return None
        if count > 1:
            raise InvalidSignature("Just one signature is expected if using delegates")
        return signer

    # --- propose -----------------------------------------------------------------------------------

    def propose(self, safe: str, body: wire.ProposalBody, actor: Actor) -> ProposalRecord:
        """Store a proposal (or add its new signatures to the same one), after every check passed.

        The Safe's facts are read fresh: a nonce cached from before an execution would let a proposal
        in for a nonce already spent."""
        facts = self.ctx.chain.safe(safe, fresh=True)
        try:
            safe_tx = self.safe_tx(safe, facts.version, to=body.to, value=body.value, data=body.data,
                                   operation=body.operation, nonce=body.nonce, safe_tx_gas=body.safe_tx_gas,
                                   base_gas=body.base_gas, gas_price=body.gas_price, gas_token=body.gas_token,
                                   refund_receiver=body.refund_receiver)
        except InvalidInput as error:
            raise _refused(str(error)) from None
        computed = "0x" + bytes(safe_tx.safe_tx_hash).hex()
        if computed != body.contract_transaction_hash.lower():
            raise _refused(f"Contract-transaction-hash={computed} does not match provided "
                           f"contract-tx-hash={body.contract_transaction_hash}")
        if body.nonce < facts.nonce:
            raise _refused(f"Tx with nonce={body.nonce} for safe={safe} already executed: the Safe is at nonce {facts.nonce}")
        if body.signature is None:
            raise _refused(f"A proposal must carry the signature of its sender={body.sender} over the safeTxHash")
        try:
            checked = self.check_signatures(safe, body.signature, safe_tx, sender=body.sender)
        except InvalidSignature as error:
            raise _refused(str(error)) from None
        verdict = self._judge(safe, body)
        record, created = self._stored(safe, body, computed, checked.owners, actor)
        if not created:
            self._add_signatures(record, checked.owners, actor)
        if verdict is not None:
            with self.memo.lock:
                self.memo.verdicts[record.safe_tx_hash.lower()] = (self.ctx.clock(), verdict)
        return record

    def _judge(self, safe: str, body: wire.ProposalBody) -> dict[str, Any] | None:
        """The policy verdict on the proposal before it is stored; refused when the settings say so."""
        treasury = self.ctx.treasury_for(safe)
        if treasury is None:
            return None
        try:
            verdict = self._verdicts_now(treasury, [(body.to, body.value, body.data, body.operation, body.gas_price)])[0]
        except Exception as error:  # noqa: BLE001 - the node failed us: refuse only if the policy must be enforced
            log.warning("verdict of a proposal for %s: %s", safe, error)
            if self.ctx.settings.refuse_denied:
                raise ApiError(503, {"detail": "The policy verdict cannot be computed now; try again."},
                               {"Retry-After": "1"}) from None
            return None
        if verdict.outcome == "deny" and self.ctx.settings.refuse_denied:
            raise unprocessable(f"The treasury policy denies this transaction: {verdict.reason}", POLICY_DENIED,
                                [verdict.error or "deny", verdict.reason])
        return wire.verdict_json(verdict, self._now())

    def _stored(self, safe: str, body: wire.ProposalBody, safe_tx_hash: str, signatures: Sequence[SafeSignature],
                actor: Actor) -> tuple[ProposalRecord, bool]:
        """The proposal of this safeTxHash, and whether it is new: the stored one, or stored now together
        with the owners' `signatures` in one transaction (never a proposal without its proposer's)."""
        chain_id = self.ctx.chain.chain_id
        record = self.ctx.store.find_by_safe_tx_hash(chain_id, safe, safe_tx_hash)
        created = False
        if record is None:
            title = wire.title_of(body.origin)
            first = [new_signature(sig.owner, kind_of(sig), bytes(sig.export_signature())) for sig in signatures]
            try:
                record = self.ctx.store.add_proposal(
                    chain_id=chain_id, safe=safe, nonce=body.nonce, to=body.to, safe_tx_hash=safe_tx_hash,
                    proposer=body.sender, actor=actor(body.sender), value=body.value, data=body.data,
                    operation=body.operation, safe_tx_gas=body.safe_tx_gas, base_gas=body.base_gas,
                    gas_price=body.gas_price, gas_token=body.gas_token, refund_receiver=body.refund_receiver,
                    title=title, description=(body.origin or "")[:wire.MAX_ORIGIN], signatures=first,
                )
                created = True
            except DuplicateProposal:  # proposed by another client at the same moment
                record = self.ctx.store.find_by_safe_tx_hash(chain_id, safe, safe_tx_hash)
                assert record is not None
        if record.status not in OPEN:
            raise _refused(self._closed(record))
        return record, created

    @staticmethod
    def _closed(record: ProposalRecord) -> str:
        if record.status in wire.EXECUTED_STATUSES:
            return f"Transaction with safe-tx-hash={record.safe_tx_hash} was already executed"
        return f"Transaction with safe-tx-hash={record.safe_tx_hash} is {record.status}: it takes no more signatures"

    def _add_signatures(self, record: ProposalRecord, signatures: Sequence[SafeSignature], actor: Actor) -> None:
        """Store each owner's signature. A true repeat (these very bytes stored already, verified by
        the chain) changes nothing and is answered as a success; an owner who confirmed with other
        bytes is refused, checked for all before anything is written. A bundle's row is no obstacle:
        the store replaces it with the owner's chain-verified signature."""
        stored = self._confirmed_bytes(record)
        for signature in signatures:
            _require_new_or_repeat(record, signature, stored)
        for signature in signatures:
            raw = bytes(signature.export_signature())
            if stored.get(signature.owner) == raw:
                continue
            try:
                self.ctx.store.add_signature(record.id, signature.owner, kind_of(signature), raw, actor=actor(signature.owner))
            except DuplicateSignature:  # stored by another request meanwhile: fine only if the very same
                _require_new_or_repeat(record, signature, self._confirmed_bytes(record))

    def _confirmed_bytes(self, record: ProposalRecord) -> dict[str, bytes]:
        """Each owner's chain-verified SafeTx signature as stored."""
        return {s.owner: bytes(s.signature) for s in confirmed(self.ctx.store.signatures(record.id))}

    # --- confirm -----------------------------------------------------------------------------------

    def find(self, safe_tx_hash: str) -> ProposalRecord:
        """The proposal with this safeTxHash on the server's chain, or 404."""
        digest = _hash_or_404(safe_tx_hash)
        record = self.ctx.store.find_by_safe_tx_hash(self.ctx.chain.chain_id, None, digest)
        if record is None:
            raise not_found(f"Multisig transaction with safe-tx-hash={digest} was not found")
        return record

    def confirm(self, safe_tx_hash: str, raw: bytes, actor: Actor) -> list[SafeSignature]:
        """Add owners' confirmations (one or several signatures) to an open proposal; the verified signatures."""
        record = self.settled(self.find(safe_tx_hash))
        if record.status not in OPEN:
            raise _bad_signature(self._closed(record))
        facts = self.ctx.chain.safe(record.safe)
        safe_tx = self._record_tx(record, facts.version)
        try:
            checked = self.check_signatures(record.safe, raw, safe_tx, sender=None)
        except InvalidSignature as error:
            raise _bad_signature(str(error)) from None
        self._add_signatures(record, checked.owners, actor)
        return list(checked.owners)

    # --- reading -----------------------------------------------------------------------------------

    def settled(self, record: ProposalRecord) -> ProposalRecord:
        """The record after reconciling, if the Safe's nonce passed it while it was open."""
        if record.status in OPEN and record.nonce < self.ctx.chain.safe(record.safe).nonce:
            self.reconcile(record.safe)
            return self.ctx.store.get_proposal(record.id)
        return record

    def reconcile(self, safe: str) -> list:
        """Learn from the chain what happened to open proposals the Safe's nonce passed (executed by
        another tool, or superseded), with the toolkit's own reconcile."""
        from treasury.execution.reconcile import reconcile

        with self._ape():
            found = reconcile(SafeLedger(self.ctx, safe, "server:reconcile"))
        for item in found:
            log.info("reconciled proposal %s: %s (%s)", item.proposal_id, item.outcome, item.detail)
        return found

    def transaction(self, safe_tx_hash: str, *, v2: bool) -> dict[str, Any]:
        record = self.settled(self.find(safe_tx_hash))
        return self.render([record], v2=v2)[0]

    def confirmations(self, safe_tx_hash: str) -> list[dict[str, Any]]:
        """A transaction's confirmations; none for an unknown hash (the service lists an empty page)."""
        try:
            record = self.find(safe_tx_hash)
        except ApiError:
            return []
        return [wire.confirmation_json(s) for s in self._signatures_of([record.id]).get(record.id, [])]

    def listing(self, safe: str, query: Mapping[str, str], url: str, *, v2: bool) -> dict[str, Any]:
        """A page of the Safe's transactions with the service's filters and ordering."""
        shown, signatures, head = self._page(safe, query, url)
        return {**head, "results": self.render(shown, v2=v2, signatures=signatures)}

    def _page(self, safe: str, query: Mapping[str, str], url: str) -> tuple[
            list[ProposalRecord], dict[str, list[SignatureRecord]], dict[str, Any]]:
        """The page's proposals, their confirmations, and the page's other keys (count, links, countUniqueNonce)."""
        facts = self.ctx.chain.safe(safe)
        known = self.safe_records(safe)
        if any(r.status in OPEN and r.nonce < facts.nonce for r in known.records.values()):
            self.reconcile(safe)
            known = self.safe_records(safe)
        records = list(known.records.values())
        unique = len({r.nonce for r in records})
        chosen = select(records, query)
        confirmed = _flag(query, "has_confirmations")
        if confirmed is not None:
            chosen = [r for r in chosen if bool(known.confirmations(r.id)) == confirmed]
        chosen = order(chosen, query.get("ordering"))
        page = wire.page_of(query)
        shown = chosen[page.offset:page.offset + page.limit]
        signatures = {r.id: known.confirmations(r.id) for r in shown}
        return shown, signatures, wire.page_json(url, page, len(chosen), [], countUniqueNonce=unique)

    def safe_records(self, safe: str) -> SafeRecords:
        """The Safe's proposals and signatures, brought up to date from the audit log: after a few
        writes only the proposals they name are read again (a write to one of a thousand proposals
        costs a few rows, not a thousand integrity-checked ones); otherwise all are read."""
        seq = self._store_version()  # first: what is read after it is at least this new
        with self.memo.lock:
            known = self.memo.safes.get(safe)
        if known is not None and known.seq == seq:
            return known
        updated = self._caught_up(safe, known, seq) if known is not None and 0 < seq - known.seq <= CATCH_UP else None
        if updated is None:
            records = {r.id: r for r in self.ctx.store.list_proposals(safe=safe, chain_id=self.ctx.chain.chain_id)}
            updated = SafeRecords(seq, records, self.ctx.store.signatures_of(list(records)))
        with self.memo.lock:
            current = self.memo.safes.get(safe)
            if current is None or current.seq <= updated.seq:
                self.memo.safes[safe] = updated
        return updated

    def _caught_up(self, safe: str, known: SafeRecords, seq: int) -> SafeRecords | None:
        """`known` with the proposals named by the audit entries after it re-read; None if the entries
        read do not follow on from it (more writes came meanwhile: read everything instead)."""
        entries = self.ctx.store.audit_entries(limit=seq - known.seq)
        if not entries or entries[0].seq != known.seq + 1:
            return None
        named = {e.proposal_id for e in entries if e.proposal_id is not None}
        fresh = [record for pid in sorted(named)
                 if (record := self.ctx.store.get_proposal(pid)).safe == safe and record.chain_id == self.ctx.chain.chain_id]
        records = {**known.records, **{r.id: r for r in fresh}}
        signatures = {**known.signatures, **self.ctx.store.signatures_of([r.id for r in fresh])}
        return SafeRecords(entries[-1].seq, records, signatures)

    def listing_json(self, safe: str, query: Mapping[str, str], url: str, *, v2: bool) -> bytes:
        """`listing` encoded, reused while nothing it shows can have changed: the store (its audit log
        grows with every write, so its last sequence number names its state), the Safe's nonce and
        threshold, and the period of the verdicts. Reading a thousand pending proposals again is then
        one small query instead of a thousand integrity-checked rows."""
        version = self._store_version()  # first: a write after this read only makes the next request miss
        facts = self.ctx.chain.safe(safe)
        epoch = int(self.ctx.clock() // VERDICT_TTL) if self._configured(safe) else 0
        key = (safe, v2, tuple(sorted(query.items())), url, version, facts.nonce, facts.threshold, epoch)
        with self.memo.lock:
            page = self.memo.pages.get(key)
        if page is not None:
            return page
        with self.memo.building:  # fifty clients missing at once: one builds the page, the others reuse it
            with self.memo.lock:
                page = self.memo.pages.get(key)
            if page is None:
                shown, signatures, head = self._page(safe, query, url)
                page = wire.encode_page(head, self._encoded(shown, v2=v2, signatures=signatures))
                with self.memo.lock:
                    if len(self.memo.pages) >= PAGES_KEPT:
                        self.memo.pages.clear()
                    self.memo.pages[key] = page
        return page

    def _store_version(self) -> int:
        last = self.ctx.store.audit_entries(limit=1)
        return last[-1].seq if last else 0

    def _configured(self, safe: str) -> bool:
        """Whether the Safe is a configured treasury on this chain (ctx.treasury_for, without building one)."""
        config = self.ctx.config
        return config is not None and any(
            entry.chain_id == self.ctx.chain.chain_id and entry.safe.lower() == safe.lower()
            for entry in config.treasuries.values())

    def render(self, records: Sequence[ProposalRecord], *, v2: bool,
               signatures: Mapping[str, list[SignatureRecord]] | None = None) -> list[dict[str, Any]]:
        """Transactions as JSON, with one read of their signatures (unless given) and cached chain facts."""
        return [wire.transaction_json(row.record, row.confirmations, threshold=row.threshold, execution=row.execution,
                                      verdict=row.verdict, v2=v2) for row in self._rows(records, signatures)]

    def _encoded(self, records: Sequence[ProposalRecord], *, v2: bool,
                 signatures: Mapping[str, list[SignatureRecord]]) -> list[bytes]:
        """`render` encoded, each transaction's JSON reused while what it shows is the same."""
        encoded = []
        for row in self._rows(records, signatures):
            key = (v2, *row.key)
            with self.memo.lock:
                found = self.memo.rows.get(key)
            if found is None:
                found = json.dumps(wire.transaction_json(row.record, row.confirmations, threshold=row.threshold,
                                                         execution=row.execution, verdict=row.verdict, v2=v2),
                                   separators=(",", ":")).encode()
                with self.memo.lock:
                    if len(self.memo.rows) >= ROWS_KEPT:
                        self.memo.rows.clear()
                    self.memo.rows[key] = found
            encoded.append(found)
        return encoded

    def _rows(self, records: Sequence[ProposalRecord],
              signatures: Mapping[str, list[SignatureRecord]] | None) -> list[Row]:
        """What each transaction's JSON is made of, with one read of signatures and executions."""
        if not records:
            return []
        if signatures is None:
            signatures = self._signatures_of([r.id for r in records])
        executions = self.ctx.store.executions_of([r.id for r in records if r.status in wire.EXECUTED_STATUSES])
        verdicts = self._verdicts(records)
        thresholds: dict[str, int] = {}
        rows = []
        for record in records:
            if record.safe not in thresholds:
                thresholds[record.safe] = self.ctx.chain.safe(record.safe).threshold
            rows.append(Row(record, signatures.get(record.id, []), thresholds[record.safe],
                            self._execution(record, executions.get(record.id, [])), verdicts.get(record.id)))
        return rows

    def _signatures_of(self, ids: Sequence[str]) -> dict[str, list[SignatureRecord]]:
        """SafeTx signatures verified against the chain (not bundle-imported ones still to verify), per proposal."""
        return {pid: confirmed(sigs) for pid, sigs in self.ctx.store.signatures_of(ids).items()}

    def _execution(self, record: ProposalRecord, runs: Sequence[ExecutionRecord]) -> wire.Execution | None:
        """An executed proposal's transaction, block time and gas price (read once from the chain)."""
        if record.status not in wire.EXECUTED_STATUSES or not runs:
            return None
        run = runs[-1]
        with self.memo.lock:
            known = self.memo.executions.get(run.tx_hash)
        if known is not None:
            return known
        executed_at, gas_price = run.recorded_at, None
        try:
            with self._ape():
                from ape import chain

                web3 = chain.provider.web3
                receipt = web3.eth.get_transaction_receipt(run.tx_hash)
                gas_price = int(receipt.get("effectiveGasPrice") or web3.eth.get_transaction(run.tx_hash)["gasPrice"])
                executed_at = datetime.fromtimestamp(int(web3.eth.get_block(run.block_number)["timestamp"]), UTC)
        except Exception as error:  # noqa: BLE001 - a node without the transaction: show what the store knows
            log.warning("transaction %s of proposal %s: %s", run.tx_hash, record.id, error)
        facts = wire.Execution(run.tx_hash, run.block_number, executed_at, run.executor, run.success, run.gas_used, gas_price)
        if gas_price is not None:
            with self.memo.lock:
                self.memo.executions[run.tx_hash] = facts
        return facts

    def _verdicts(self, records: Sequence[ProposalRecord]) -> dict[str, dict[str, Any] | None]:
        """Each proposal's policy verdict, reused for VERDICT_TTL (a closed proposal's for good); the
        missing and stale ones of each Safe computed together, against one read of its guard."""
        now = self.ctx.clock()
        found: dict[str, dict[str, Any] | None] = {}
        due: dict[str, list[ProposalRecord]] = {}
        for record in records:
            with self.memo.lock:
                cached = self.memo.verdicts.get(record.safe_tx_hash.lower())
            found[record.id] = cached[1] if cached else None
            if cached is None or (record.status in OPEN and now - cached[0] >= VERDICT_TTL):
                due.setdefault(record.safe, []).append(record)
        for safe, stale in due.items():
            treasury = self.ctx.treasury_for(safe)
            if treasury is not None:
                found.update(self._judged(treasury, stale, now))
        return found

    def _verdicts_now(self, treasury: Treasury, transactions: Sequence[tuple[str, int, bytes, int, int]]) -> list[Any]:
        """Treasury.verdicts_for under the chain lock, tried twice: a node mining a block can answer
        one view call at the pending block with nothing (seen on anvil with interval mining)."""
        for attempt in (0, 1):
            try:
                with self._ape():
                    return treasury.verdicts_for(transactions)
            except Exception:  # the second failure is the caller's
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _judged(self, treasury: Treasury, records: Sequence[ProposalRecord], now: float) -> dict[str, dict[str, Any]]:
        try:
            verdicts = self._verdicts_now(treasury, [(r.to, r.value, r.data, r.operation, r.gas_price) for r in records])
        except Exception as error:  # noqa: BLE001 - a verdict is advisory on reads: show the rest
            log.warning("verdicts of %d proposals of %s: %s", len(records), treasury.safe, error)
            return {}
        shown = {}
        with self.memo.lock:
            for record, verdict in zip(records, verdicts, strict=True):
                shown[record.id] = wire.verdict_json(verdict, datetime.fromtimestamp(now, UTC))
                self.memo.verdicts[record.safe_tx_hash.lower()] = (now, shown[record.id])
        return shown

    # --- estimate ----------------------------------------------------------------------------------

    def estimate(self, safe: str, body: wire.EstimationBody) -> int:
        """safeTxGas for a call from the Safe, as Safe's service estimates it without requiredTxGas:
        eth_estimateGas of the inner call sent from the Safe, plus ESTIMATION_OVERHEAD. A delegatecall
        is estimated as the same call (the service's fallback does the same; Safe >= 1.3.0 accepts
        safeTxGas 0, which clients use)."""
        self.ctx.chain.safe(safe)  # 422 (code 50) if it is not a Safe
        call = {"from": safe, "to": body.to, "value": body.value, "data": wire.hex0x(body.data), "gas": ESTIMATION_GAS_CAP}
        try:
            with self._ape():
                from ape import chain

                gas = int(chain.provider.web3.eth.estimate_gas(call))
        except Exception as error:  # noqa: BLE001 - a revert or a node refusal: the service's code 30
            log.info("gas estimation for %s failed: %s", safe, " ".join(str(error).split())[:300])
            raise unprocessable("Gas estimation failed", GAS_ESTIMATION_FAILED, []) from None  # the node's words stay here
        return gas + ESTIMATION_OVERHEAD


# --- filters and ordering of a listing ----------------------------------------------------------------

_TRUE = frozenset({"true", "True", "1"})
_FALSE = frozenset({"false", "False", "0"})
_NONCE_FILTERS: dict[str, Callable[[int, int], bool]] = {
    "nonce": lambda n, v: n == v, "nonce__lt": lambda n, v: n < v, "nonce__lte": lambda n, v: n <= v,
    "nonce__gt": lambda n, v: n > v, "nonce__gte": lambda n, v: n >= v,
}
_ORDER_KEYS: dict[str, Callable[[ProposalRecord], Any]] = {
    "nonce": lambda r: r.nonce, "created": lambda r: r.created_at, "modified": lambda r: r.created_at,
}


def _flag(query: Mapping[str, str], name: str) -> bool | None:
    value = query.get(name)
    return True if value in _TRUE else False if value in _FALSE else None  # anything else: no filter (django-filter)


def select(records: Sequence[ProposalRecord], query: Mapping[str, str]) -> list[ProposalRecord]:
    """The records matching the service's filters (executed, failed, nonce and its lookups,
    safe_tx_hash, to); `trusted` changes nothing, every proposal here was signed or made locally."""
    chosen = list(records)
    executed = _flag(query, "executed")
    if executed is not None:
        chosen = [r for r in chosen if (r.status in wire.EXECUTED_STATUSES) == executed]
    failed = _flag(query, "failed")
    if failed is not None:
        chosen = [r for r in chosen if (r.status == "failed") == failed]
    for name, test in _NONCE_FILTERS.items():
        if name in query:
            text = query[name].strip()
            if not text.isascii() or not text.lstrip("-").isdigit() or len(text) > wire.MAX_INT_TEXT:
                raise ApiError(400, {name: ["Enter a number."]})
            chosen = [r for r in chosen if test(r.nonce, int(text))]
    if query.get("safe_tx_hash"):
        chosen = [r for r in chosen if r.safe_tx_hash.lower() == query["safe_tx_hash"].strip().lower()]
    if query.get("to"):
        chosen = [r for r in chosen if r.to.lower() == query["to"].strip().lower()]
    return chosen


def order(records: list[ProposalRecord], ordering: str | None) -> list[ProposalRecord]:
    """Sorted as the service sorts: by default newest nonce first, then newest first; `ordering`
    takes nonce, created, modified (comma-separated, `-` for descending; unknown fields ignored)."""
    fields = [f.strip() for f in (ordering or "").split(",") if f.strip().lstrip("-") in _ORDER_KEYS]
    chosen = fields or ["-nonce", "-created"]
    result = list(records)
    for name in reversed(chosen):  # stable sorts, least significant key first
        result.sort(key=_ORDER_KEYS[name.lstrip("-")], reverse=name.startswith("-"))
    return result


def _hash_or_404(text: str) -> str:
    """A safeTxHash from a path; anything that is not 32 bytes of hex is simply not found."""
    raw = text[2:] if text.startswith(("0x", "0X")) else text
    if len(raw) != 64 or not all(c in "0123456789abcdefABCDEF" for c in raw):
        raise not_found()
    return "0x" + raw.lower()
