"""The treasury extension of the API (`/api/treasury/v1/`): what Safe's API has no place for.

Proposal ids, the records whole (every signature with what it is over, schedule entries), the
guard's schedule and cancel signatures, the audit log and its verification, and a proposal's bundle.
`treasury.remote.RemoteStore` reads and writes through these, so the CLI's remote commands see the
server's store as they would see a local one. JSON shapes: treasury.remote.wire.

Reads are guarded app-wide like every GET (the read token). A write carries its own authority: a
schedule or cancel signature is stored only once the server has recomputed the guard's hash from
the stored proposal (or queue entry) and recovered an owner of the Safe now; anything refused
stores nothing.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse

from treasury.addresses import ZERO_ADDRESS
from treasury.remote import wire
from treasury.server.context import Ctx, SafeFacts, ServerContext, actor_of
from treasury.server.errors import bad_request, not_found, path_address
from treasury.store import PROPOSAL_STATUSES, DuplicateSignature, ProposalRecord, SignatureRecord

PREFIX = "/api/treasury/v1"
DEFAULT_LIMIT = 100  # as the transactions list (treasury.server.wire): one request reads a bounded page
MAX_LIMIT = 1000
UINT256_MAX = 2**256 - 1

router = APIRouter()
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=2**63 - 1)]


class GuardSignatureIn(BaseModel):
    """A schedule or cancel signature as a client sends it; `owner` is a claim checked by recovery."""

    model_config = ConfigDict(extra="ignore")

    purpose: Literal["schedule", "cancel"]
    signedHash: str
    signature: str
    intentNonce: int | None = None
    entryId: int | None = None
    owner: str | None = None


def _proposal(ctx: ServerContext, proposal_id: str) -> ProposalRecord:
    """The stored proposal, if it is on the chain this server serves (else 404, as if unknown)."""
    record = ctx.store.get_proposal(proposal_id)
    if record.chain_id != ctx.chain.chain_id:
        raise not_found()
    return record


def _page(items: list[dict[str, Any]], request: Request | None = None, more: bool = False, offset: int = 0) -> dict[str, Any]:
    """A page: `count` items here; `next` the URL of the following page when there is one."""
    following = str(request.url.include_query_params(offset=offset + len(items))) if more and request is not None else None
    return {"count": len(items), "next": following, "previous": None, "results": items}


@router.get(PREFIX + "/safes/{address}/proposals/")
def safe_proposals(address: str, ctx: Ctx, request: Request,
                   status: str | None = None, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0,
                   safeTxHash: str | None = None) -> dict[str, Any]:
    """A Safe's proposals with their ids, by nonce, `limit` from `offset`; one of them by `safeTxHash`."""
    safe = path_address(address)
    if status is not None and status not in PROPOSAL_STATUSES:
        raise bad_request(f"status must be one of {', '.join(PROPOSAL_STATUSES)}", "status")
    if safeTxHash is not None:
        found = ctx.store.find_by_safe_tx_hash(ctx.chain.chain_id, safe, safeTxHash)
        records = [found] if found is not None and (status is None or found.status == status) else []
        return _page([wire.proposal_json(r) for r in records])
    records = ctx.store.list_proposals(safe=safe, chain_id=ctx.chain.chain_id, status=status, limit=offset + limit + 1)
    shown = records[offset:offset + limit]
    return _page([wire.proposal_json(r) for r in shown], request, len(records) > offset + limit, offset)


@router.get(PREFIX + "/proposals/{proposal_id}/")
def proposal(proposal_id: str, ctx: Ctx) -> dict[str, Any]:
    """A proposal's record, every signature (SafeTx, schedule, cancel) and its schedule entries."""
    record = _proposal(ctx, proposal_id)
    return wire.proposal_detail_json(record, ctx.store.signatures(record.id, None), ctx.store.schedule_entries(record.id))


@router.get(PREFIX + "/proposals/{proposal_id}/schedule-entries/")
def schedule_entries(proposal_id: str, ctx: Ctx) -> dict[str, Any]:
    record = _proposal(ctx, proposal_id)
    return _page([wire.schedule_entry_json(e) for e in ctx.store.schedule_entries(record.id)])


@router.get(PREFIX + "/proposals/{proposal_id}/guard-signatures/")
def guard_signatures(proposal_id: str, ctx: Ctx) -> dict[str, Any]:
    record = _proposal(ctx, proposal_id)
    stored = [s for s in ctx.store.signatures(record.id, None) if s.purpose != "safe_tx"]
    return _page([wire.signature_json(s) for s in stored])


@router.post(PREFIX + "/proposals/{proposal_id}/guard-signatures/", status_code=201)
def add_guard_signature(proposal_id: str, body: GuardSignatureIn, request: Request,
                        ctx: Ctx) -> JSONResponse:
    """Verify a schedule or cancel signature over the hash recomputed here, then store it once."""
    record = _proposal(ctx, proposal_id)
    stored = store_guard_signature(ctx, record, body, lambda owner: actor_of(request, owner))
    return JSONResponse(wire.signature_json(stored), status_code=201)


def store_guard_signature(ctx: ServerContext, record: ProposalRecord, body: GuardSignatureIn, actor: Any) -> SignatureRecord:
    """The library function behind the POST: recompute, verify against the owners now, store once.

    A resend of a stored signature (a client retrying after a lost answer) returns the stored one.
    """
    from treasury.signatures.verification import InvalidSignature, kind_of, verify_guard_signature

    facts = ctx.chain.safe(record.safe)
    message = _guard_message(ctx, record, body, facts)
    if body.signedHash.lower() != message.hash_hex:
        raise bad_request(f"signedHash {body.signedHash[:66]} is not the guard's hash for the {message.describe()} of "
                          f"proposal {record.id} ({message.hash_hex})", "signedHash")
    try:
        with _chain_lock(ctx):
            parsed = _verified(ctx, record.safe, facts, lambda f: verify_guard_signature(
                body.signature, message, f.owners, f.version, claimed_owner=body.owner))
    except InvalidSignature as error:
        raise bad_request(str(error), "signature") from None
    try:
        return ctx.store.add_signature(
            record.id, parsed.owner, kind_of(parsed), bytes(parsed.export_signature()), actor=actor(parsed.owner),
            purpose=message.purpose, signed_hash=message.hash, intent_nonce=message.intent_nonce, entry_id=message.entry_id,
        )
    except DuplicateSignature:
        return next(s for s in ctx.store.signatures(record.id, message.purpose, message.hash) if s.owner == parsed.owner)


def _verified(ctx: ServerContext, safe: str, facts: SafeFacts, check: Any) -> Any:
    """`check(facts)`, once more against freshly read owners if it fails on cached ones (an owner
    added a moment ago must not be refused)."""
    from treasury.signatures.verification import InvalidSignature

    try:
        return check(facts)
    except InvalidSignature:
        return check(ctx.chain.safe(safe, fresh=True))


def _guard_message(ctx: ServerContext, record: ProposalRecord, body: GuardSignatureIn, facts: SafeFacts) -> Any:
    """The Schedule or Cancel message for this proposal and the Safe's guard, from stored fields only."""
    from treasury.signatures.guard_messages import cancel_message, schedule_message

    guard = _guard_of(ctx, record.safe, facts)
    if body.purpose == "schedule":
        if body.intentNonce is None or body.entryId is not None:
            raise bad_request("a schedule signature needs intentNonce (and no entryId)", "intentNonce")
        if not 0 <= body.intentNonce <= UINT256_MAX:
            raise bad_request("intentNonce must be a uint256 (0 to 2**256 - 1)", "intentNonce")
        return schedule_message(chain_id=ctx.chain.chain_id, guard=guard, safe=record.safe, to=record.to, value=record.value,
                                data=bytes(record.data), operation=record.operation, nonce=body.intentNonce)
    if body.entryId is None or body.intentNonce is not None:
        raise bad_request("a cancel signature needs entryId (and no intentNonce)", "entryId")
    queued = [e for e in ctx.store.schedule_entries(record.id)
              if e.entry_id == body.entryId and e.status == "queued" and e.guard.lower() == guard.lower()]
    if not queued:
        raise bad_request(f"guard entry {body.entryId} is not a queued entry of proposal {record.id}", "entryId")
    return cancel_message(chain_id=ctx.chain.chain_id, guard=guard, safe=record.safe, entry_id=body.entryId)


def _guard_of(ctx: ServerContext, safe: str, facts: SafeFacts) -> str:
    """The guard whose queue the signatures are for: the configured treasury's, else the installed one."""
    treasury = ctx.treasury_for(safe)
    guard = (treasury.entry.guard if treasury is not None else None) or facts.guard
    if not guard or guard == ZERO_ADDRESS:
        raise bad_request(f"Safe {safe} has no guard: there is no schedule or cancel to sign")
    return guard


def _chain_lock(ctx: ServerContext) -> Any:
    """The chain view's lock around checks that may call the chain (approved hashes, EIP-1271)."""
    lock = getattr(ctx.chain, "lock", None) or getattr(ctx.chain, "_lock", None)
    return lock if lock is not None else contextlib.nullcontext()


@router.get(PREFIX + "/audit-log/")
def audit_log(ctx: Ctx, request: Request, proposalId: str | None = None,
              limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> dict[str, Any]:
    """The store's audit log (one proposal's entries): the newest `limit` after skipping the newest
    `offset`, in order; `next` pages back to older entries."""
    if proposalId is not None:
        _proposal(ctx, proposalId)
    newest = ctx.store.audit_entries(proposalId, limit=offset + limit + 1)  # oldest first
    shown = newest[max(0, len(newest) - offset - limit):max(0, len(newest) - offset)]
    return _page([wire.audit_entry_json(e) for e in shown], request, len(newest) > offset + limit, offset)


@dataclass
class _VerifiedLog:
    """The last verification report, the audit head (seq) and the time it was made at."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    report: tuple[int, float, dict[str, Any]] | None = None


VERIFY_REUSE_SECONDS = 10.0  # a report is reused this long at most, even if the log did not grow


@router.get(PREFIX + "/audit-log/verify/")
def verify_audit_log(ctx: Ctx, request: Request) -> dict[str, Any]:
    """The hash chain and every row checked against it, as `treasury log` reports it.

    A verification reads the whole store, so a flood of requests must not repeat it: its report is
    kept (per app) and made again when the log has grown (a new head seq) or the report is older than
    VERIFY_REUSE_SECONDS, so an edit made behind the store's back shows within those seconds."""
    memo = getattr(request.app.state, "verified_log", None)
    if memo is None:
        memo = request.app.state.verified_log = _VerifiedLog()
    with memo.lock:
        head, now = ctx.store.audit_head_seq(), ctx.clock()
        if memo.report is None or memo.report[0] != head or now - memo.report[1] >= VERIFY_REUSE_SECONDS:
            memo.report = (head, now, wire.audit_report_json(ctx.store.verify_audit_log()))
        return memo.report[2]


@router.get(PREFIX + "/proposals/{proposal_id}/bundle/")
def bundle(proposal_id: str, ctx: Ctx) -> dict[str, Any]:
    """The proposal and its stored signatures as a bundle file (`treasury import` reads it)."""
    from treasury.config import TreasuryEntry
    from treasury.records import TreasuryRecords

    record = _proposal(ctx, proposal_id)
    treasury = ctx.treasury_for(record.safe)
    if treasury is not None:
        name, entry = treasury.name, treasury.entry
    else:
        facts = ctx.chain.safe(record.safe)
        guard = facts.guard if facts.guard and facts.guard != ZERO_ADDRESS else None
        name, entry = "server", TreasuryEntry(safe=record.safe, chain_id=record.chain_id, version=facts.version, guard=guard)
    facts = ctx.chain.safe(record.safe)  # the owners and threshold now: a laptop with no node imports the bundle offline
    return TreasuryRecords(name, entry, ctx.store).bundle(record.id, owners=facts.owners, threshold=facts.threshold)
