"""Safe Transaction Service messages: off-chain messages a Safe's owners sign (EIP-1271), with the policy in front.

A message is EIP-191 text or EIP-712 typed data. Its SafeMessage hash is what Safe's handlers (and
the service) have owners sign: keccak256(0x1901 || the Safe's domain separator || keccak256(
abi.encode(SafeMessage typehash, keccak256(message hash)))), where the message hash is the
EIP-191 hash of the text or the EIP-712 digest of the typed data. Every signature must be by one
of the Safe's current owners (read from the chain) over that hash; an approved-hash "signature"
is refused, as the service refuses it.

The policy: TreasuryFallbackHandler answers EIP-1271 "yes" only for a hash the Safe's TreasuryGuard
approved (approveMessage, through the delay queue) or for typed data of a (domain separator, type
hash) the guard allows, so collecting owner signatures for anything else would collect signatures
no verifier will accept. For a Safe with our handler the server asks the guard (isMessageApproved,
isTypedDataAllowed: one or two eth_calls) before storing, and refuses a message it would not
honour: 422, code 71, the reason in words. For any other handler the message is stored as the
service would, and the JSON's "treasury" key says what the handler means (Safe's compatibility
handler honours whatever a threshold of owners signs, outside the guard: a warning when guarded).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_account.messages import defunct_hash_message
from fastapi import APIRouter, Request, Response
from safe_eth.eth.eip712 import eip712_encode, hash_type
from starlette.concurrency import run_in_threadpool

from treasury.addresses import ZERO_ADDRESS, keccak
from treasury.chain.handler import classify_handler
from treasury.errors import InvalidInput
from treasury.server import wire
from treasury.server.auth import opaque_refusals
from treasury.server.bodies import audit_actor, json_body, read_fields
from treasury.server.context import SafeFacts, ServerContext, get_context
from treasury.server.errors import bad_request, not_found, path_address, unprocessable
from treasury.signatures.guard_messages import DOMAIN_TYPEHASH
from treasury.signatures.verification import InvalidSignature, kind_of, parse_exact, verify_against
from treasury.store import DuplicateSignature, MessageRecord, MessageSignatureRecord, UnknownProposal

router = APIRouter()
SAFE_MESSAGE_TYPEHASH = keccak(b"SafeMessage(bytes message)")
POLICY_REFUSED = 71  # our code in the service's numbered 422 errors: the treasury policy refuses the message
MAX_MESSAGE_CHARS = 100_000

_IS_MESSAGE_APPROVED = keccak(b"isMessageApproved(bytes32)")[:4]
_IS_TYPED_DATA_ALLOWED = keccak(b"isTypedDataAllowed(bytes32,bytes32)")[:4]


# --- hashes ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A message as posted, with the hashes the handlers and the policy work from."""

    content: str | dict[str, Any]
    message_hash: bytes  # EIP-191 hash of the text, or the EIP-712 digest: what a verifier asks the Safe about
    domain_separator: bytes | None = None  # typed data only
    type_hash: bytes | None = None  # typed data only: of the primary type

    def stored(self) -> str:
        """How the store keeps it: JSON (a string or an object), read back with json.loads."""
        return json.dumps(self.content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def read_message(content: Any) -> Message:
    """The message field: EIP-191 text, or EIP-712 typed data (types, primaryType, domain, message)."""
    if isinstance(content, str):
        if not content or len(content) > MAX_MESSAGE_CHARS or "\x00" in content:
            raise wire.FieldError("message", "Provide a non-empty message without NUL of at most "
                                  f"{MAX_MESSAGE_CHARS} characters")
        return Message(content, bytes(defunct_hash_message(text=content)))
    if isinstance(content, dict):
        try:
            _, domain, _ = eip712_encode(content)
            type_hash = hash_type(content["primaryType"], content["types"])
            digest = keccak(b"".join(eip712_encode(content)))
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError) as error:
            raise wire.FieldError("message", f"Provided dictionary is not a valid EIP712 message: {' '.join(str(error).split())[:160]}") from None
        return Message(content, digest, bytes(domain), bytes(type_hash))
    raise wire.FieldError("message", "Provide a string (EIP-191) or an EIP-712 typed data object")


def safe_message_hash(safe: str, chain_id: int, message_hash: bytes) -> tuple[bytes, bytes]:
    """(hash, preimage) of the SafeMessage the owners sign, as Safe >= 1.3.0's handlers compute it."""
    domain = keccak(abi_encode(["bytes32", "uint256", "address"], [DOMAIN_TYPEHASH, chain_id, safe]))
    struct = keccak(abi_encode(["bytes32", "bytes32"], [SAFE_MESSAGE_TYPEHASH, keccak(message_hash)]))
    preimage = b"\x19\x01" + domain + struct
    return keccak(preimage), preimage


# --- the policy ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """Whether the Safe's fallback handler would honour the message (None: the owners' signatures decide)."""

    handler: dict[str, Any]
    honoured: bool | None
    reason: str | None

    def as_json(self) -> dict[str, Any]:
        return {"handler": self.handler, "honoured": self.honoured, "reason": self.reason}


def _chain_lock(ctx: ServerContext) -> Any:
    lock = getattr(ctx.chain, "lock", None)
    return lock if lock is not None else contextlib.nullcontext()


def _guard_says(ctx: ServerContext, guard: str, calldata: bytes) -> bool:
    """A view of the guard answering exactly true; any failure is a "no" (the handler treats it so)."""
    from ape import chain

    with _chain_lock(ctx):
        try:
            answer = bytes(chain.provider.web3.eth.call({"to": guard, "data": "0x" + calldata.hex()}))
        except Exception:  # noqa: BLE001 - a reverting or absent guard approves nothing
            return False
    return len(answer) == 32 and int.from_bytes(answer, "big") == 1


def verdict(ctx: ServerContext, facts: SafeFacts, message: Message) -> Verdict:
    """What the Safe's fallback handler will make of `message` (asking the guard when the handler is ours)."""
    info = classify_handler(facts.fallback_handler)
    handler = {"address": info.address, "kind": info.kind, "name": info.name}
    guarded = facts.guard != ZERO_ADDRESS
    if info.kind != "treasury":
        if info.kind in ("none", "token-callbacks"):
            return Verdict(handler, False, f"the Safe's fallback handler ({info.name}) validates no signatures: "
                                           "no verifier will accept this message as signed by the Safe")
        return Verdict(handler, None, info.warning if guarded else None)
    if not guarded:
        return Verdict(handler, False, "the Safe has no guard, and TreasuryFallbackHandler signs only what the guard approved")
    digest = "0x" + message.message_hash.hex()
    if _guard_says(ctx, facts.guard, _IS_MESSAGE_APPROVED + message.message_hash):
        return Verdict(handler, True, f"the guard approved {digest} (approveMessage): the Safe honours it as signed")
    if message.domain_separator is not None and message.type_hash is not None:
        if _guard_says(ctx, facts.guard, _IS_TYPED_DATA_ALLOWED + message.domain_separator + message.type_hash):
            return Verdict(handler, True, "the guard allows typed data of this domain and type (setTypedDataAllowed): "
                                          "TreasuryFallbackHandler accepts a threshold of owner signatures of the "
                                          "EIP-712 digest itself")
        return Verdict(handler, False, f"TreasuryFallbackHandler would not sign this message: the guard {facts.guard} "
                                       f"has not approved {digest} (approveMessage) nor allowed typed data of domain "
                                       f"0x{message.domain_separator.hex()} and type 0x{message.type_hash.hex()} "
                                       "(setTypedDataAllowed), both through its delay queue")
    return Verdict(handler, False, f"TreasuryFallbackHandler would not sign this message: the guard {facts.guard} has "
                                   f"not approved {digest} (approveMessage, through its delay queue)")


# --- signatures ------------------------------------------------------------------------------------


def checked_signature(ctx: ServerContext, facts: SafeFacts, raw: bytes, safe_hash: bytes, preimage: bytes) -> tuple[str, str]:
    """(owner, kind) of one signature of the SafeMessage hash by a current owner; else 400, nothing stored."""
    try:
        parsed = parse_exact(raw, safe_hash, preimage)
        kind = kind_of(parsed)
        if kind == "approved_hash":
            raise InvalidSignature("an approved-hash signature cannot sign a message")
        with _chain_lock(ctx):  # a contract owner is asked through the chain (EIP-1271)
            checked = verify_against(parsed, safe_hash=safe_hash, preimage=preimage, safe_address=facts.address,
                                     version=facts.version, owners=set(facts.owners), executor=None, safe_tx=None)
    except InvalidSignature as error:
        raise bad_request(str(error), "signature") from None
    return checked.owner, kind


# --- the logic (callable without HTTP) -----------------------------------------------------------------


@dataclass(frozen=True)
class MessageBody:
    message: Message
    safe_app_id: int | None
    signature: bytes


def read_body(body: Any) -> MessageBody:
    fields = wire.require_object(body)
    if "message" not in fields:
        raise wire.FieldError("message", "This field is required.")
    app = fields.get("safeAppId")
    app_id = None if app is None else wire.uint(fields, "safeAppId")
    return MessageBody(read_message(fields["message"]), app_id, read_signature(fields))


def read_signature(body: Any) -> bytes:
    raw = wire.hex_bytes(wire.require_object(body), "signature")
    if raw is None:
        raise wire.FieldError("signature", "This field is required.")
    return raw


def add_message(ctx: ServerContext, safe: str, body: MessageBody, actor: Callable[[str], str]) -> MessageRecord:
    """Store a message with its proposer's signature, once the signature and the policy check out."""
    facts = ctx.chain.safe(safe)
    safe_hash, preimage = safe_message_hash(facts.address, ctx.chain.chain_id, body.message.message_hash)
    owner, kind = checked_signature(ctx, facts, body.signature, safe_hash, preimage)
    judged = verdict(ctx, facts, body.message)
    if judged.honoured is False and judged.handler["kind"] == "treasury":
        raise unprocessable(judged.reason or "refused by the treasury policy", POLICY_REFUSED, [facts.address])
    return ctx.store.add_message(chain_id=ctx.chain.chain_id, safe=facts.address, message_hash=safe_hash,
                                 message=body.message.stored(), safe_app_id=body.safe_app_id, proposed_by=owner,
                                 actor=actor(owner), kind=kind, signature=body.signature)


def add_signature(ctx: ServerContext, message_hash: str, raw: bytes, actor: Callable[[str], str]) -> MessageSignatureRecord | None:
    """Add one owner's signature; the same owner's same signature again is accepted once (None: already kept)."""
    record = find(ctx, message_hash)
    facts = ctx.chain.safe(record.safe)
    safe_hash = bytes.fromhex(record.message_hash[2:])
    stored = json.loads(record.message)
    _, preimage = safe_message_hash(record.safe, record.chain_id, read_message(stored).message_hash)
    owner, kind = checked_signature(ctx, facts, raw, safe_hash, preimage)
    for existing in record.signatures:
        if existing.owner == owner:
            if existing.signature == raw:
                return None  # a retried request whose answer was lost
            raise bad_request(f"Signature for owner {owner} already exists", "signature")
    try:
        return ctx.store.add_message_signature(chain_id=record.chain_id, message_hash=record.message_hash, owner=owner,
                                               kind=kind, signature=raw, actor=actor(owner))
    except DuplicateSignature:  # another request of the same owner got in first
        return None


def find(ctx: ServerContext, message_hash: str) -> MessageRecord:
    """The message with this SafeMessage hash on this server's chain, or 404."""
    try:
        return ctx.store.get_message(ctx.chain.chain_id, message_hash)
    except (UnknownProposal, InvalidInput):
        raise not_found() from None


def message_json(ctx: ServerContext, record: MessageRecord, facts: SafeFacts | None = None) -> dict[str, Any]:
    """The service's SafeMessage shape, plus our "treasury" key (what the handler makes of it)."""
    facts = facts or ctx.chain.safe(record.safe)
    content = json.loads(record.message)
    ordered = sorted(record.signatures, key=lambda s: int(s.owner, 16))
    prepared = None
    if len(ordered) >= facts.threshold:
        prepared = wire.hex0x(b"".join(s.signature for s in ordered))
    created = wire.iso(record.created_at)
    return {
        "created": created,
        "modified": wire.iso(ordered[-1].created_at) if ordered else created,
        "safe": record.safe,
        "messageHash": record.message_hash,
        "message": content,
        "proposedBy": record.proposed_by,
        "safeAppId": record.safe_app_id,
        "confirmations": [
            {"created": wire.iso(s.created_at), "modified": wire.iso(s.created_at), "owner": s.owner,
             "signature": wire.hex0x(s.signature), "signatureType": wire.SIGNATURE_TYPES[s.kind]}
            for s in sorted(record.signatures, key=lambda s: s.created_at)
        ],
        "preparedSignature": prepared,
        "origin": "",
        "treasury": verdict(ctx, facts, read_message(content)).as_json(),
    }


# --- routes ----------------------------------------------------------------------------------------








def _listing(ctx: ServerContext, safe: str, page: wire.Page) -> tuple[int, list[dict[str, Any]]]:
    """(count, the page's messages): the verdicts (eth_calls) are made for the page only."""
    facts = ctx.chain.safe(safe)
    records = ctx.store.messages(ctx.chain.chain_id, safe)
    return len(records), [message_json(ctx, record, facts) for record in records[page.offset:page.offset + page.limit]]


@router.get("/api/v1/safes/{address}/messages/")
async def list_messages(address: str, request: Request) -> dict[str, Any]:
    safe = path_address(address)
    ctx = get_context(request)
    page = wire.page_of(dict(request.query_params))
    count, shown = await run_in_threadpool(_listing, ctx, safe, page)
    return wire.page_json(str(request.url), page, count, shown)


@router.post("/api/v1/safes/{address}/messages/", status_code=201)
async def post_message(address: str, request: Request) -> Response:
    safe = path_address(address)
    body = read_fields(read_body, await json_body(request))
    await run_in_threadpool(add_message, get_context(request), safe, body, audit_actor(request))
    return Response(status_code=201)


@router.get("/api/v1/messages/{message_hash}/")
async def get_message(message_hash: str, request: Request) -> dict[str, Any]:
    ctx = get_context(request)
    record = await run_in_threadpool(find, ctx, message_hash)
    return await run_in_threadpool(message_json, ctx, record)


@router.post("/api/v1/messages/{message_hash}/signatures/", status_code=201)
async def post_signature(message_hash: str, request: Request) -> Response:
    raw = read_fields(read_signature, await json_body(request))
    with opaque_refusals(request):
        await run_in_threadpool(add_signature, get_context(request), message_hash, raw, audit_actor(request))
    return Response(status_code=201)
