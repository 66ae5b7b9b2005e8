"""The ASGI app of `treasury serve`: the routers, Safe-style errors, and the guards in front of them.

Requests pass, outermost first: HTTPS check (--behind-tls), the per-client write limit, the body
cap, the read-token dependency, then a router. Every refusal is an error body Safe's clients parse
(treasury.server.errors); an unexpected failure is logged here and answered with a bare 500.
"""

from __future__ import annotations

import json
import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import requests
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from web3.exceptions import ProviderConnectionError

from treasury.chain.rpc import RPCRefused, RPCUnavailable
from treasury.errors import InvalidInput
from treasury.server import delegates, drills, extension, messages, transactions
from treasury.server.auth import HttpsOnly, require_reader
from treasury.server.context import NotASafe, ServerContext, client_host, get_context
from treasury.server.errors import ApiError, internal_error, invalid_input, not_found, path_address, unprocessable
from treasury.server.pages import routes as pages
from treasury.server.ratelimit import BodyLimit, TokenBuckets, WriteLimit, client_key
from treasury.store import StoreBusy, UnknownProposal

log = logging.getLogger("treasury.server")
core = APIRouter()


def create_app(context: ServerContext) -> FastAPI:
    app = FastAPI(title="treasury serve", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(require_reader)])
    app.state.context = context
    for router in (core, transactions.router, delegates.router, messages.router, extension.router, drills.router):
        app.include_router(router)
    pages.install(app)  # the HTML pages and /static (treasury.server.pages.routes)
    for kind, handler in _HANDLERS.items():
        app.add_exception_handler(kind, handler)
    settings = context.settings
    app.add_middleware(BodyLimit, limit=settings.max_body)  # added first: innermost
    app.add_middleware(WriteLimit, buckets=TokenBuckets(settings.write_rate, settings.write_burst, lambda: context.clock()),
                       client_of=lambda scope: client_key(client_host(scope, settings)))
    if settings.behind_tls:
        app.add_middleware(HttpsOnly, settings=settings)
    app.add_middleware(TrailingSlash)  # before anything looks at the path
    app.add_middleware(pages.PageHeaders)  # outermost of ours: every page response, refusals included
    return app


class TrailingSlash:
    """ASGI middleware: `/api/...` without its trailing slash is served as with it, as Safe's service does.

    ape-safe never sends the slash and api-kit omits it on some calls; rewriting the path (instead
    of FastAPI's 307 redirect) costs no round trip and keeps a POST's body where it was sent.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/api/") and not path.endswith("/"):
            scope = {**scope, "path": path + "/", "raw_path": scope.get("raw_path", path.encode()) + b"/"}
        await self.app(scope, receive, send)


# --- the two core endpoints ---------------------------------------------------------------------------


@core.get("/api/v1/about/")
def about(request: Request) -> dict[str, Any]:
    """What Safe's service says about itself, plus what our clients (treasury --server) check."""
    ctx = get_context(request)
    return {
        "name": "treasury serve",
        "version": _version(),
        "api_version": "v1",
        "secure": request.url.scheme == "https" or ctx.settings.behind_tls,
        "host": request.headers.get("host", ""),
        "headers": [],
        "settings": {},
        "treasury": {"chainId": ctx.chain.chain_id, "store": ctx.store.backend,
                     "readToken": ctx.settings.read_token is not None, "refuseDenied": ctx.settings.refuse_denied},
    }


@core.get("/api/v1/safes/{address}/")
def safe_info(address: str, request: Request) -> dict[str, Any]:
    """A Safe as the chain says now (the service's SafeInfo; nonce a string, as in its v5 API).

    Read fresh, never from the owner cache: clients take the next nonce from here."""
    ctx = get_context(request)
    try:
        facts = ctx.chain.safe(path_address(address), fresh=True)
    except NotASafe:
        raise not_found() from None
    return {
        "address": facts.address, "nonce": str(facts.nonce), "threshold": facts.threshold, "owners": list(facts.owners),
        "masterCopy": facts.master_copy, "modules": list(facts.modules), "fallbackHandler": facts.fallback_handler,
        "guard": facts.guard, "version": facts.version,
    }


def _version() -> str:
    try:
        return version("ape-treasury")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "0"


# --- errors in the service's style ---------------------------------------------------------------------


def _respond(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body, status_code=error.status, headers=error.headers)


async def _api_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return _respond(error)


async def _not_a_safe(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, NotASafe)
    return _respond(unprocessable(str(error), 50, [error.address]))


async def _invalid_input(_: Request, error: Exception) -> JSONResponse:
    if isinstance(error, UnknownProposal):
        return _respond(not_found())
    assert isinstance(error, InvalidInput)
    return _respond(invalid_input(error))


async def _validation(_: Request, error: Exception) -> JSONResponse:
    """FastAPI's and pydantic's reports as DRF's: a parse error's `detail`, or `{field: [message]}`."""
    problems = list(error.errors()) if isinstance(error, RequestValidationError | ValidationError) else []
    if any(p.get("type") == "json_invalid" for p in problems):
        return _respond(ApiError(400, {"detail": "JSON parse error"}))
    body: dict[str, list[str]] = {}
    for problem in problems:
        names = [str(part) for part in problem.get("loc", ()) if isinstance(part, str) and part not in ("body", "query", "path")]
        body.setdefault(names[-1] if names else "nonFieldErrors", []).append(str(problem.get("msg", "invalid")))
    return _respond(ApiError(400, body or {"nonFieldErrors": ["Invalid data"]}))


async def _json_error(_: Request, error: Exception) -> JSONResponse:
    return _respond(ApiError(400, {"detail": f"JSON parse error - {error}"}))


async def _http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    if error.status_code == 404:
        return _respond(not_found())
    if error.status_code == 405:
        return _respond(ApiError(405, {"detail": "Method not allowed."}))
    detail = error.detail if isinstance(error.detail, str) else "Bad request."
    return _respond(ApiError(error.status_code, {"detail": detail}, dict(error.headers or {})))


async def _busy(_: Request, error: Exception) -> JSONResponse:
    return _respond(ApiError(503, {"detail": "The store is busy; try again."}, {"Retry-After": "1"}))


async def _node_down(request: Request, error: Exception) -> JSONResponse:
    """The node failed us: 503 (retry later). Its URL stays in the log: it may carry an API key."""
    log.warning("%s %s: the node is unavailable: %s", request.method, request.url.path, error)
    return _respond(ApiError(503, {"detail": "The chain's node is unavailable; try again later."}, {"Retry-After": "5"}))


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    """A bare 500. Starlette answers it from outside every middleware, so a page's security headers
    are added here."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=error)
    failed = internal_error()
    return JSONResponse(failed.body, status_code=failed.status, headers={**failed.headers, **pages.headers_for(request.url.path)})


_HANDLERS: dict[Any, Any] = {
    ApiError: _api_error,
    NotASafe: _not_a_safe,
    InvalidInput: _invalid_input,
    RequestValidationError: _validation,
    ValidationError: _validation,
    json.JSONDecodeError: _json_error,
    HTTPException: _http_error,
    StoreBusy: _busy,
    RPCUnavailable: _node_down,
    RPCRefused: _node_down,
    requests.ConnectionError: _node_down,
    requests.Timeout: _node_down,
    ProviderConnectionError: _node_down,
    Exception: _unexpected,
}
