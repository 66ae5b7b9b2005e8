"""Safe Transaction Service endpoints for multisig transactions (v1 and v2 paths, trailing slashes).

Thin on purpose: each handler reads the path and body, hands them to treasury.server.proposals in a
worker thread (the store and the chain block) and answers with the service's status codes: 201 with
no body for a proposal, 201 with the signature for a confirmation, pages for lists.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from treasury.server import wire
from treasury.server.auth import opaque_refusals, require_token
from treasury.server.bodies import audit_actor, json_body, read_fields
from treasury.server.context import get_context
from treasury.server.errors import path_address
from treasury.server.proposals import Memo, Transactions

router = APIRouter()
T = TypeVar("T")
VERSIONS = ("v1", "v2")


def service(request: Request) -> Transactions:
    """The logic over this app's context, with the app's memo of verdicts and executions."""
    state = request.app.state
    memo = getattr(state, "transactions_memo", None)
    if memo is None:
        memo = state.transactions_memo = Memo()
    return Transactions(get_context(request), memo)








async def list_transactions(address: str, request: Request) -> Response:
    safe = path_address(address)
    query = dict(request.query_params)
    v2 = request.url.path.startswith("/api/v2/")
    page = await run_in_threadpool(service(request).listing_json, safe, query, str(request.url), v2=v2)
    return Response(page, media_type="application/json")  # encoded once and reused while nothing changed


async def propose(address: str, request: Request) -> Response:
    safe = path_address(address)
    body = read_fields(wire.read_proposal, await json_body(request), status=422)
    await run_in_threadpool(service(request).propose, safe, body, audit_actor(request))
    return Response(status_code=201)


async def transaction(safe_tx_hash: str, request: Request) -> dict[str, Any]:
    v2 = request.url.path.startswith("/api/v2/")
    return await run_in_threadpool(service(request).transaction, safe_tx_hash, v2=v2)


for _version in VERSIONS:
    router.add_api_route(f"/api/{_version}/safes/{{address}}/multisig-transactions/", list_transactions, methods=["GET"])
    router.add_api_route(f"/api/{_version}/safes/{{address}}/multisig-transactions/", propose, methods=["POST"],
                         status_code=201)
    router.add_api_route(f"/api/{_version}/multisig-transactions/{{safe_tx_hash}}/", transaction, methods=["GET"])


@router.get("/api/v1/multisig-transactions/{safe_tx_hash}/confirmations/")
async def confirmations(safe_tx_hash: str, request: Request) -> dict[str, Any]:
    found = await run_in_threadpool(service(request).confirmations, safe_tx_hash)
    page = wire.page_of(dict(request.query_params))
    return wire.page_json(str(request.url), page, len(found), found[page.offset:page.offset + page.limit])


@router.post("/api/v1/multisig-transactions/{safe_tx_hash}/confirmations/", status_code=201)
async def confirm(safe_tx_hash: str, request: Request) -> dict[str, Any]:
    raw = read_fields(wire.read_confirmation, await json_body(request))
    with opaque_refusals(request):
        await run_in_threadpool(service(request).confirm, safe_tx_hash, raw, audit_actor(request))
    return {"signature": wire.hex0x(raw)}


@router.post("/api/v1/safes/{address}/multisig-transactions/estimations/", dependencies=[Depends(require_token)])
async def estimate(address: str, request: Request) -> dict[str, str]:
    safe = path_address(address)
    body = read_fields(wire.read_estimation, await json_body(request))
    gas = await run_in_threadpool(service(request).estimate, safe, body)
    return {"safeTxGas": str(gas)}
