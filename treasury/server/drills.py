"""Key-ceremony drills through the team server: start a drill, read its challenge, post owners' proofs.

A drill asks every owner of a Safe to prove they still control their key by signing the drill's
EIP-712 challenge (treasury.ceremony.challenge: a domain of its own, so the signature is never a
SafeTx or a SafeMessage the Safe accepts). Nothing is sent on chain.

Writes carry their own authority, as every write of this server does:
- starting a drill: whoever may propose (a current owner, or an active delegate of one) signs the
  challenge it sends; the server rebuilds the challenge from the fields, recovers the signer and
  checks it against the owners the chain has now.
- a proof: treasury.ceremony.drill.verify_drill_proof against the owners read fresh from the chain
  (an owner that is a contract is asked through EIP-1271), the drill open and not expired by the
  server's clock (the wall clock, as the library's drills and owner liveness use). A second proof of the same owner for the same drill is refused.
Anything refused stores nothing and answers in the API's own error style (treasury.server.errors).
`via` is the sender's own claim of how the key signed ("browser" from the signing page); the
signature does not cover it and the server cannot check it, so "hardware" is recorded as said by
whoever posts the proof (the owner or anyone else holding the signature).

A drill's nonce and issuedAt come from its starter (the server takes writes only as signed data):
issuedAt must be within MAX_SKEW of the server's clock, and a nonce already used by any drill in the
server's store is refused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from treasury.ceremony.challenge import DAY, DEFAULT_PURPOSE, MAX_PROOF_BYTES, MAX_PURPOSE, MAX_TTL, VIA, DrillChallenge
from treasury.ceremony.drill import DrillProof, recover_drill_signer, verify_drill_proof
from treasury.errors import InvalidInput
from treasury.server import wire
from treasury.server.auth import opaque_refusals
from treasury.server.bodies import audit_actor, json_body, read_fields
from treasury.server.context import ServerContext, get_context
from treasury.server.errors import bad_request, not_found, path_address
from treasury.server.extension import PREFIX
from treasury.signatures.owners import code_at
from treasury.signatures.verification import InvalidSignature
from treasury.wording import when

if TYPE_CHECKING:
    from treasury.store.records import DrillRecord, OwnerProofRecord

router = APIRouter()

MAX_SKEW = 600  # seconds issuedAt may differ from the server's clock (a signer's clock is not exact)
MAX_REQUIRED = 64  # owners named in requireDevice (a Safe has far fewer)


# --- bodies ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrillBody:
    """POST safes/{address}/drills/: the challenge's fields, and the starter's signature of it."""

    nonce: str  # 0x + 64 hex
    issued_at: int
    expires_at: int
    purpose: str
    require_device: tuple[str, ...]
    sender: str
    signature: bytes


@dataclass(frozen=True)
class ProofBody:
    """POST drills/{id}/proofs/: an owner's signature of the challenge; `owner` needed for a contract owner."""

    signature: bytes
    via: str
    owner: str | None


def _signature_field(fields: Mapping[str, Any]) -> bytes:
    raw = wire.hex_bytes(fields, "signature", limit=MAX_PROOF_BYTES)
    if raw is None:
        raise wire.FieldError("signature", "This field is required.")
    return raw


def _purpose(fields: Mapping[str, Any]) -> str:
    value = fields.get("purpose", DEFAULT_PURPOSE)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_PURPOSE or not value.isprintable():
        raise wire.FieldError("purpose", f"Provide one printable line of at most {MAX_PURPOSE} characters")
    return value


def _addresses(fields: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = fields.get(name, [])
    if not isinstance(value, list) or len(value) > MAX_REQUIRED:
        raise wire.FieldError(name, f"Provide a list of at most {MAX_REQUIRED} checksummed addresses")
    return tuple(wire.address({name: item}, name) for item in value)


def read_drill(body: Any) -> DrillBody:
    fields = wire.require_object(body)
    nonce = wire.hash32(fields, "nonce")
    return DrillBody(nonce=nonce, issued_at=wire.uint(fields, "issuedAt"), expires_at=wire.uint(fields, "expiresAt"),
                     purpose=_purpose(fields), require_device=_addresses(fields, "requireDevice"),
                     sender=wire.address(fields, "sender"), signature=_signature_field(fields))


def read_proof(body: Any) -> ProofBody:
    fields = wire.require_object(body)
    via = fields.get("via")
    if not isinstance(via, str) or not VIA.fullmatch(via):
        raise wire.FieldError("via", "Say how the key signed: browser, keyfile, hardware, contract, ...")
    owner = wire.address(fields, "owner") if fields.get("owner") is not None else None
    return ProofBody(_signature_field(fields), via, owner)


# --- the challenge ---------------------------------------------------------------------------------


def challenge_of(record: DrillRecord) -> Any:
    """The stored drill's challenge (treasury.ceremony.challenge.DrillChallenge), rebuilt from its fields."""
    return DrillChallenge.from_json(record.challenge)


def recover_signer(digest: bytes, signature: bytes) -> str | None:
    """The EOA whose one strict ECDSA signature of `digest` this is (the drill library's recoverer: 65
    bytes, v 27/28, low s), or None."""
    try:
        return recover_drill_signer(digest, signature)
    except InvalidSignature:
        return None


def _chain_lock(ctx: ServerContext) -> Any:
    lock = getattr(ctx.chain, "lock", None) or getattr(ctx.chain, "_lock", None)
    return lock if lock is not None else contextlib.nullcontext()


# --- the logic (callable without HTTP) -----------------------------------------------------------------


def _delegates_of(ctx: ServerContext, safe: str, owners: Sequence[str]) -> set[str]:
    """Who may start a drill besides the owners: active delegates of current owners (as for proposals)."""
    now = ctx.clock()
    return {d.delegate for d in ctx.store.delegates(chain_id=ctx.chain.chain_id)
            if (d.safe is None or d.safe == safe) and d.delegator in owners and d.active_at(now)}


def _check_times(body: DrillBody, now: int) -> None:
    if abs(body.issued_at - now) > MAX_SKEW:
        raise bad_request(f"issuedAt {body.issued_at} is more than {MAX_SKEW} s from the server's time {now}", "issuedAt")
    if body.expires_at <= now or body.expires_at <= body.issued_at:
        raise bad_request(f"expiresAt {body.expires_at} is not after the server's time {now}", "expiresAt")
    if body.expires_at - body.issued_at > MAX_TTL:
        raise bad_request(f"a drill may stay open at most {MAX_TTL // DAY} days", "expiresAt")


def _check_devices(ctx: ServerContext, required: Sequence[str], owners: Sequence[str]) -> None:
    """Every owner the drill wants on a hardware device is a current owner, and a key (a contract has no device)."""
    for address in required:
        if address not in owners:
            raise bad_request(f"{address} is not an owner of this Safe", "requireDevice")
        with _chain_lock(ctx):
            contract = bool(code_at(address))
        if contract:
            raise bad_request(f"{address} is a contract owner: it signs through its own owners, not a device", "requireDevice")


def start_drill(ctx: ServerContext, safe: str, body: DrillBody, actor: Callable[[str], str]) -> DrillRecord:
    """Store a drill once its starter's signature of the challenge recovers to an owner or delegate now."""
    facts = ctx.chain.safe(safe, fresh=True)
    _check_times(body, int(ctx.clock()))
    _check_devices(ctx, body.require_device, facts.owners)
    challenge = DrillChallenge(safe=facts.address, chain_id=ctx.chain.chain_id, nonce=body.nonce,
                               issued_at=body.issued_at, expires_at=body.expires_at, purpose=body.purpose)
    signer = recover_signer(challenge.digest(), body.signature)
    if signer is None or signer != body.sender:
        raise bad_request(f"The signature is not sender {body.sender}'s signature of this drill's challenge", "signature")
    if signer not in facts.owners and signer not in _delegates_of(ctx, facts.address, facts.owners):
        raise bad_request(f"Sender={signer} is not an owner or delegate. Current owners={list(facts.owners)}", "sender")
    try:  # the store refuses a nonce any drill in it has used
        return ctx.store.add_drill(ctx.chain.chain_id, facts.address, body.nonce, challenge.typed_data(),
                                   body.require_device, created_at=body.issued_at, expires_at=body.expires_at,
                                   actor=actor(signer))
    except InvalidInput as error:
        raise bad_request(f"A drill with nonce {body.nonce} cannot be started: {error}", "nonce") from None


def find_drill(ctx: ServerContext, drill_id: str) -> DrillRecord:
    """The drill with this id on this server's chain, or 404."""
    try:
        record = ctx.store.get_drill(drill_id)
    except InvalidInput:
        raise not_found() from None
    if record.chain_id != ctx.chain.chain_id:
        raise not_found()
    return record


def _claimed_owner(challenge: Any, body: ProofBody) -> str:
    """Who the proof is of: the claim (a contract owner must say), else the EOA the signature recovers to."""
    if body.owner is not None:
        return body.owner
    signer = recover_signer(challenge.digest(), body.signature)
    if signer is None:
        raise bad_request("The signature is no single ECDSA signature of this drill's challenge; "
                          "a contract owner's proof must name its owner", "signature")
    return signer


def add_proof(ctx: ServerContext, drill_id: str, body: ProofBody, actor: Callable[[str], str]) -> OwnerProofRecord:
    """Verify an owner's proof against the owners now and store it once; a refusal stores nothing."""
    record = find_drill(ctx, drill_id)
    now = int(ctx.clock())
    if record.status != "open":
        raise bad_request(f"Drill {record.id} is {record.status}: it takes no more proofs")
    if now > record.expires_at:
        raise bad_request(f"Drill {record.id} expired at {when(record.expires_at)}: it takes no more proofs; "
                          "start a new drill")
    challenge = challenge_of(record)
    owner = _claimed_owner(challenge, body)
    facts = ctx.chain.safe(record.safe, fresh=True)
    proof = DrillProof(owner=owner, via=body.via, signature=body.signature, safe=record.safe, chain_id=record.chain_id,
                       nonce=record.nonce)
    try:
        with _chain_lock(ctx):  # a contract owner is asked through the chain (EIP-1271)
            verify_drill_proof(record, proof, facts.owners, now=now)
    except InvalidSignature as error:
        raise bad_request(str(error), "signature") from None
    if any(p.owner == owner for p in ctx.store.owner_proofs(record.chain_id, record.safe, record.id)):
        raise bad_request(f"Owner {owner} has already proved control in drill {record.id}", "signature")
    try:
        return ctx.store.add_owner_proof(record.id, owner, body.via, body.signature, proved_at=now, actor=actor(owner))
    except InvalidInput as error:  # another request of the same owner got in first
        raise bad_request(str(error), "signature") from None


# --- JSON ------------------------------------------------------------------------------------------


def proof_json(record: OwnerProofRecord) -> dict[str, Any]:
    return {"id": record.id, "drillId": record.drill_id, "safe": record.safe, "chainId": record.chain_id,
            "owner": record.owner, "via": record.via, "signature": _hex(record.signature), "provedAt": record.proved_at}


def _hex(signature: str | bytes) -> str:
    return signature.lower() if isinstance(signature, str) else wire.hex0x(signature)


def drill_json(record: DrillRecord, proofs: Sequence[OwnerProofRecord], owners: Sequence[str], now: int) -> dict[str, Any]:
    """A drill with its challenge (typed data to sign), its digest, and who has proved control so far."""
    proven = [p.owner for p in proofs if p.owner in owners]  # a removed owner's proof counts for nothing
    message = record.challenge["message"]
    return {
        "id": record.id, "safe": record.safe, "chainId": record.chain_id, "nonce": record.nonce,
        "issuedAt": int(message["issuedAt"]), "expiresAt": record.expires_at, "createdAt": record.created_at,
        "purpose": message["purpose"], "requireDevice": list(record.require_device), "status": record.status,
        "expired": now > record.expires_at, "typedData": record.challenge,
        "digest": wire.hex0x(challenge_of(record).digest()),
        "owners": list(owners), "proven": proven, "missing": [o for o in owners if o not in proven],
        "proofs": [proof_json(p) for p in proofs],
    }


def drill_detail(ctx: ServerContext, record: DrillRecord) -> dict[str, Any]:
    facts = ctx.chain.safe(record.safe)
    proofs = ctx.store.owner_proofs(record.chain_id, record.safe, record.id)
    return drill_json(record, proofs, facts.owners, int(ctx.clock()))


def _listing(ctx: ServerContext, safe: str, page: wire.Page) -> tuple[int, list[dict[str, Any]]]:
    records = ctx.store.drills(ctx.chain.chain_id, safe)
    return len(records), [drill_detail(ctx, r) for r in records[page.offset:page.offset + page.limit]]


def _proof_listing(ctx: ServerContext, drill_id: str) -> list[dict[str, Any]]:
    record = find_drill(ctx, drill_id)
    return [proof_json(p) for p in ctx.store.owner_proofs(record.chain_id, record.safe, record.id)]


# --- routes ----------------------------------------------------------------------------------------


@router.post(PREFIX + "/safes/{address}/drills/", status_code=201)
async def post_drill(address: str, request: Request) -> JSONResponse:
    safe = path_address(address)
    body = read_fields(read_drill, await json_body(request))
    ctx = get_context(request)
    record = await run_in_threadpool(start_drill, ctx, safe, body, audit_actor(request))
    return JSONResponse(await run_in_threadpool(drill_detail, ctx, record), status_code=201)


@router.get(PREFIX + "/safes/{address}/drills/")
async def list_drills(address: str, request: Request) -> dict[str, Any]:
    safe = path_address(address)
    page = wire.page_of(dict(request.query_params))
    count, shown = await run_in_threadpool(_listing, get_context(request), safe, page)
    return wire.page_json(str(request.url), page, count, shown)


@router.get(PREFIX + "/drills/{drill_id}/")
async def get_drill(drill_id: str, request: Request) -> dict[str, Any]:
    ctx = get_context(request)
    record = await run_in_threadpool(find_drill, ctx, drill_id)
    return await run_in_threadpool(drill_detail, ctx, record)


@router.get(PREFIX + "/drills/{drill_id}/proofs/")
async def list_proofs(drill_id: str, request: Request) -> dict[str, Any]:
    shown = await run_in_threadpool(_proof_listing, get_context(request), drill_id)
    return {"count": len(shown), "next": None, "previous": None, "results": shown}


@router.post(PREFIX + "/drills/{drill_id}/proofs/", status_code=201)
async def post_proof(drill_id: str, request: Request) -> JSONResponse:
    body = read_fields(read_proof, await json_body(request))
    with opaque_refusals(request):
        stored = await run_in_threadpool(add_proof, get_context(request), drill_id, body, audit_actor(request))
    return JSONResponse(proof_json(stored), status_code=201)
