"""Safe Transaction Service delegates (v2 paths, v1 too): who may propose for a Safe without owning it.

A delegation is asked for with the delegator's signature of a time-based message, so a captured
request is worth one hour at most. The three clients sign it two ways, both accepted:
- EIP-712 (api-kit `signDelegate`, safe-eth-py `get_delegate_message`): `Delegate(address
  delegateAddress, uint256 totp)` in the domain {name "Safe Transaction Service", version "1.0",
  chainId}, no verifying contract;
- Safe's v1 message (ape-safe): keccak256(text = checksummed delegate + decimal totp), signed as a
  raw hash (or with the EIP-191 prefix, as eth_sign wallets do). It names no chain.
totp = floor(now / 3600); the current and the previous period are accepted, as Safe's service does.
`now` is the context's clock, so tests pin it.

Stricter than Safe's service, on purpose: adding a delegate needs a Safe (`safe` may not be null)
and the delegator must be one of that Safe's owners now, read from the chain; the service accepts a
delegator that owns any Safe it has indexed, which a server with no index cannot check. Removing
needs the delegator's (or the delegate's own) signature and no ownership: it only takes power away.
Contract (EIP-1271) delegators are not supported.

The message names neither the Safe nor the expiry (nor, in the v1 form, the chain), so each accepted
signature is remembered (the store's delegate proofs) and never accepted again except as a retry of
the same request: it cannot move a delegation to another Safe, lift its expiry, or bring back a
removed one; after a removal only a signature of a later hour adds the delegation again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_keys import keys
from eth_keys.exceptions import BadSignature
from eth_utils import keccak
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from treasury.addresses import to_checksum
from treasury.server import wire
from treasury.server.bodies import audit_actor, json_body, read_fields
from treasury.server.context import ServerContext, get_context
from treasury.server.errors import bad_request, not_found, path_address
from treasury.store import DelegateRecord

router = APIRouter()
VERSIONS = ("v1", "v2")
TOTP_PERIOD = 3600
MAX_LABEL = 50  # Safe's service: label is a CharField(max_length=50)

_DOMAIN_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId)")
_DELEGATE_TYPEHASH = keccak(text="Delegate(address delegateAddress,uint256 totp)")


# --- the signed message ----------------------------------------------------------------------------


def totp(now: float) -> int:
    """The delegate message's time step: whole hours since the epoch."""
    return int(now) // TOTP_PERIOD


def eip712_hash(delegate: str, step: int, chain_id: int) -> bytes:
    """The EIP-712 digest of Delegate(delegateAddress, totp) in the service's domain on `chain_id`."""
    domain = keccak(_DOMAIN_TYPEHASH + keccak(text="Safe Transaction Service") + keccak(text="1.0") + chain_id.to_bytes(32, "big"))
    struct = keccak(_DELEGATE_TYPEHASH + bytes(12) + bytes.fromhex(delegate[2:]) + step.to_bytes(32, "big"))
    return keccak(b"\x19\x01" + domain + struct)


def v1_hash(delegate: str, step: int) -> bytes:
    """Safe's v1 delegate message (ape-safe signs it): keccak256 of the checksummed delegate and the totp as text."""
    return keccak(text=delegate + str(step))


def _eip191(digest: bytes) -> bytes:
    return keccak(b"\x19Ethereum Signed Message:\n32" + digest)


def _candidates(delegate: str, chain_id: int, now: float) -> Iterator[tuple[int, bytes]]:
    """Every (totp, hash) a valid signature may be over: both schemes, this period and the previous one."""
    for step in (totp(now), totp(now) - 1):
        for digest in (eip712_hash(delegate, step, chain_id), v1_hash(delegate, step)):
            yield step, digest
            yield step, _eip191(digest)


def recover(digest: bytes, signature: bytes) -> str | None:
    """The address whose ECDSA signature of `digest` this is (v 27/28, 0/1, or eth_sign's 31/32)."""
    if len(signature) != 65:
        return None
    v = signature[64]
    v = v - 4 if v in (31, 32) else v
    v = v - 27 if v in (27, 28) else v
    if v not in (0, 1):
        return None
    try:
        key = keys.Signature(signature[:64] + bytes([v])).recover_public_key_from_msg_hash(digest)
    except (BadSignature, ValueError):
        return None
    return to_checksum(key.to_canonical_address().hex())


@dataclass(frozen=True)
class Signed:
    """A valid delegate signature: who signed, in which totp hour, and its proof (what the store remembers).

    proof = keccak256(signer + signed digest): the same for every encoding of one signature (v as
    27/28, 0/1 or 31/32, s high or low), so a re-encoded signature is still the used one.
    """

    signer: str
    hour: int
    proof: str


def signed_by(signature: bytes, signers: tuple[str, ...], delegate: str, chain_id: int, now: float) -> Signed | None:
    """Which of `signers` signed the delegate message for `delegate` (now or in the previous hour), or None."""
    wanted = set(signers)
    for step, digest in _candidates(delegate, chain_id, now):
        signer = recover(digest, signature)
        if signer is not None and signer in wanted:
            return Signed(signer, step, "0x" + keccak(bytes.fromhex(signer[2:]) + digest).hex())
    return None


# --- requests --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DelegateBody:
    """POST delegates/: who delegates to whom for which Safe, until when, with what proof."""

    safe: str | None
    delegate: str
    delegator: str
    label: str
    signature: bytes
    expiry: int | None


@dataclass(frozen=True)
class RemovalBody:
    """DELETE delegates/{delegate}/: the delegator, optionally one Safe, and the proof."""

    delegate: str
    delegator: str
    safe: str | None
    signature: bytes


def _signature(body: Mapping[str, Any]) -> bytes:
    raw = wire.hex_bytes(body, "signature")
    if raw is None:
        raise wire.FieldError("signature", "This field is required.")
    if len(raw) != 65:
        raise wire.FieldError("signature", f"{len(raw)} bytes: a delegate signature is one 65-byte ECDSA signature (r, s, v)")
    return raw


def _expiry(body: Mapping[str, Any]) -> int | None:
    """expiryDate: an ISO 8601 date-time (a date alone means its midnight UTC), or null."""
    value = body.get("expiryDate")
    if value is None:
        return None
    if not isinstance(value, str):
        raise wire.FieldError("expiryDate", "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].")
    try:
        moment = datetime.fromisoformat(value.strip())  # Python 3.11 reads a trailing Z
    except ValueError:
        raise wire.FieldError("expiryDate", "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0, int(moment.timestamp()))


def read_delegate(body: Any) -> DelegateBody:
    fields = wire.require_object(body)
    label = fields.get("label")
    if not isinstance(label, str) or not label.strip():
        raise wire.FieldError("label", "This field is required." if label is None else "This field may not be blank.")
    if len(label) > MAX_LABEL:
        raise wire.FieldError("label", f"Ensure this field has no more than {MAX_LABEL} characters.")
    safe = fields.get("safe")
    return DelegateBody(
        safe=None if safe is None else wire.address(fields, "safe"),
        delegate=wire.address(fields, "delegate"),
        delegator=wire.address(fields, "delegator"),
        label=label.strip(),
        signature=_signature(fields),
        expiry=_expiry(fields),
    )


def read_removal(delegate: str, body: Any) -> RemovalBody:
    fields = wire.require_object(body)
    safe = fields.get("safe")
    return RemovalBody(
        delegate=delegate,
        delegator=wire.address(fields, "delegator"),
        safe=None if safe is None else wire.address(fields, "safe"),
        signature=_signature(fields),
    )


# --- the logic (callable without HTTP) ---------------------------------------------------------------


def add_delegate(ctx: ServerContext, body: DelegateBody, actor: Callable[[str], str]) -> DelegateRecord:
    """Store the delegation once the delegator's signature and ownership check out; else ApiError, store unchanged."""
    if body.safe is None:
        raise bad_request("This server needs `safe`: it checks the delegator against that Safe's current owners", "safe")
    if body.delegate == body.delegator:
        raise bad_request(f"Delegate {body.delegate} cannot be its own delegator")
    now = ctx.clock()
    if body.expiry is not None and body.expiry <= now:
        raise bad_request("expiryDate is in the past", "expiryDate")
    facts = ctx.chain.safe(body.safe)
    if body.delegator not in facts.owners:
        raise bad_request(f"Provided delegator={body.delegator} is not an owner of Safe={body.safe}")
    signed = signed_by(body.signature, (body.delegator,), body.delegate, ctx.chain.chain_id, now)
    if signed is None:
        raise bad_request(_not_signed(body.delegator, body.delegate, ctx.chain.chain_id))
    return ctx.store.add_delegate(chain_id=ctx.chain.chain_id, safe=body.safe, delegate=body.delegate,
                                  delegator=body.delegator, label=body.label, expiry=body.expiry,
                                  actor=actor(body.delegator), proof=signed.proof, hour=signed.hour)


def remove_delegate(ctx: ServerContext, body: RemovalBody, actor: Callable[[str], str]) -> int:
    """Remove the delegation(s) when the delegator or the delegate signed for it; 404 when there was none."""
    now = ctx.clock()
    signed = signed_by(body.signature, (body.delegator, body.delegate), body.delegate, ctx.chain.chain_id, now)
    if signed is None:
        raise bad_request(_not_signed(f"{body.delegator} (or the delegate)", body.delegate, ctx.chain.chain_id))
    removed = ctx.store.remove_delegate(chain_id=ctx.chain.chain_id, delegate=body.delegate, delegator=body.delegator,
                                        safe=body.safe, actor=actor(signed.signer), proof=signed.proof, hour=totp(now))
    if removed == 0:
        raise not_found()
    return removed


def active_delegates(ctx: ServerContext, **filters: str | None) -> list[DelegateRecord]:
    """Delegations on this server's chain matching `filters` that have not expired by ctx.clock()."""
    now = ctx.clock()
    return [d for d in ctx.store.delegates(chain_id=ctx.chain.chain_id, **filters) if d.active_at(now)]


def _not_signed(delegator: str, delegate: str, chain_id: int) -> str:
    return (f"Signature does not match provided delegator={delegator}: expected a signature of the delegate message "
            f"for delegate {delegate} on chain {chain_id} (EIP-712 Delegate(delegateAddress, totp), or Safe's v1 "
            f"message) made in this hour or the previous one")


def delegate_json(record: DelegateRecord) -> dict[str, Any]:
    expiry = None if record.expiry is None else wire.iso(datetime.fromtimestamp(record.expiry, UTC))
    return {"safe": record.safe, "delegate": record.delegate, "delegator": record.delegator, "label": record.label,
            "expiryDate": expiry}


# --- routes ----------------------------------------------------------------------------------------

_FILTERS = ("safe", "delegate", "delegator", "label")








async def list_delegates(request: Request) -> dict[str, Any]:
    query = dict(request.query_params)
    filters: dict[str, str | None] = {name: query.get(name) or None for name in _FILTERS}
    if not any(filters[name] for name in ("safe", "delegate", "delegator")):
        raise bad_request("At least one of safe, delegate or delegator must be provided")
    for name in ("safe", "delegate", "delegator"):
        if filters[name] is not None and not wire.is_checksummed(filters[name]):
            raise bad_request(f"Address {str(filters[name])[:64]} is not checksumed", name)
    ctx = get_context(request)
    found = await run_in_threadpool(active_delegates, ctx, **filters)
    page = wire.page_of(query)
    results = [delegate_json(d) for d in found[page.offset:page.offset + page.limit]]
    return wire.page_json(str(request.url), page, len(found), results)


async def post_delegate(request: Request) -> dict[str, Any]:
    body = read_fields(read_delegate, await json_body(request))
    record = await run_in_threadpool(add_delegate, get_context(request), body, audit_actor(request))
    return {**delegate_json(record), "signature": wire.hex0x(body.signature)}


async def delete_delegate(delegate_address: str, request: Request) -> Response:
    delegate = path_address(delegate_address)
    body = read_fields(read_removal, delegate, await json_body(request, empty={}))
    await run_in_threadpool(remove_delegate, get_context(request), body, audit_actor(request))
    return Response(status_code=204)


for _version in VERSIONS:
    router.add_api_route(f"/api/{_version}/delegates/", list_delegates, methods=["GET"])
    router.add_api_route(f"/api/{_version}/delegates/", post_delegate, methods=["POST"], status_code=201)
    router.add_api_route(f"/api/{_version}/delegates/{{delegate_address}}/", delete_delegate, methods=["DELETE"],
                         status_code=204)
