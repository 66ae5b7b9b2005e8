"""The HTML pages of `treasury serve`: a Safe, its proposals, one proposal with the signing panel.

GET only; pages exist for the configured treasuries of the served chain (anything else is a 404
page). The read token, when the server has one, guards pages as every GET (`Authorization: Bearer`,
header only: a `?token=` would end up in logs and browser history), so pages are for loopback or
for a TLS proxy that adds the header. Static files (sign.js, page.css) are public code, not data.

Every response outside `/api/` carries a strict Content-Security-Policy (`PageHeaders`): scripts,
styles and connections from this server only, nothing inline, no frames, no forms. Templates are
Jinja2 with autoescape on: every string from the store, the config or the chain is text.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from treasury.addresses import parse_address
from treasury.errors import InvalidInput, TreasuryError
from treasury.server.context import Ctx, ServerContext
from treasury.server.pages import drill as drill_view, views
from treasury.store import PROPOSAL_STATUSES

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

router = APIRouter()
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True)


def install(app: FastAPI) -> None:
    """The pages and their static files under /static, on `app` (create_app adds `PageHeaders` outermost)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def headers_for(path: str) -> dict[str, str]:
    """The page security headers for a response to `path` (none for the API)."""
    return {} if path.startswith("/api/") else dict(HEADERS)


class PageHeaders:
    """ASGI middleware: the CSP and the other security headers on every response outside `/api/`
    (pages, static files, and a page's refusals such as the read token's 401)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith("/api/"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items() if k.lower().encode() not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def render(template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    html = _env.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status_code, headers=HEADERS)


def not_found_page(what: str) -> HTMLResponse:
    return render("not_found.html", 404, title="Not found", what=what)


@contextlib.contextmanager
def chain_lock(ctx: ServerContext) -> Iterator[None]:
    """Hold the chain view's lock while this thread uses ape (ape is not thread-safe)."""
    lock = getattr(ctx.chain, "lock", None) or getattr(ctx.chain, "_lock", None)
    if lock is None:
        yield
        return
    with lock:
        yield


def configured(ctx: ServerContext) -> list[tuple[str, str]]:
    """(name, Safe) of every configured treasury on the served chain."""
    if ctx.config is None:
        return []
    return [(name, entry.safe) for name, entry in ctx.config.treasuries.items() if entry.chain_id == ctx.chain.chain_id]


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(ctx: Ctx) -> Response:
    """The only configured treasury's Safe page, or the list of them."""
    treasuries = configured(ctx)
    if len(treasuries) == 1:
        return RedirectResponse(f"/safes/{treasuries[0][1]}", status_code=303, headers=HEADERS)
    return render("index.html", title="Treasuries", treasuries=treasuries, chain_id=ctx.chain.chain_id)


def _treasury(ctx: ServerContext, address: str) -> Any:
    try:
        safe = parse_address(address, "Safe")
    except InvalidInput:
        return None
    return ctx.treasury_for(safe, actor="server:page")


@router.get("/safes/{address}", response_class=HTMLResponse, include_in_schema=False)
def safe(address: str, ctx: Ctx) -> Response:
    treasury = _treasury(ctx, address)
    if treasury is None:
        return not_found_page("No configured treasury has this Safe on this chain.")
    with chain_lock(ctx):
        page = views.safe_page(treasury, int(ctx.clock()))  # the server's one clock (drills use it too)
    return render("safe.html", title=f"Treasury {page.name}", page=page)


@router.get("/safes/{address}/proposals", response_class=HTMLResponse, include_in_schema=False)
def proposals(address: str, ctx: Ctx, status: str | None = None) -> Response:
    treasury = _treasury(ctx, address)
    if treasury is None:
        return not_found_page("No configured treasury has this Safe on this chain.")
    if status in ("", "all"):
        status = None
    if status is not None and status not in PROPOSAL_STATUSES:
        return render("not_found.html", 400, title="Bad request",
                      what=f"The status must be one of {', '.join(PROPOSAL_STATUSES)}.")
    page = views.list_page(treasury, status, tuple(PROPOSAL_STATUSES))
    return render("proposals.html", title=f"Proposals of {page.name}", page=page)


@router.get("/proposals/{proposal_id}", response_class=HTMLResponse, include_in_schema=False)
def proposal(proposal_id: str, ctx: Ctx, request: Request) -> Response:
    try:
        record = ctx.store.get_proposal(proposal_id)
    except InvalidInput:  # UnknownProposal, or an id that is no id
        return not_found_page("There is no proposal with this id.")
    except TreasuryError as error:  # a stored row edited outside the store (TamperedRecord)
        return render("not_found.html", 409, title="Proposal unreadable", what=str(error))
    treasury = ctx.treasury_for(record.safe, actor="server:page") if record.chain_id == ctx.chain.chain_id else None
    if treasury is None:
        return not_found_page("There is no proposal with this id.")
    try:
        with chain_lock(ctx):
            page = views.proposal_page(treasury, record)
    except TreasuryError as error:  # a tampered row, or a guard that does not answer as TreasuryGuard v2
        return render("not_found.html", 409, title="Proposal unreadable", what=str(error))
    return render("proposal.html", title=f"Proposal {page.id}", page=page, sign_script=True)


@router.get("/drills/{drill_id}", response_class=HTMLResponse, include_in_schema=False)
def drill(drill_id: str, ctx: Ctx) -> Response:
    """A key-ceremony drill: who has proved control, and the challenge an owner signs with a browser wallet."""
    try:
        record = ctx.store.get_drill(drill_id)
    except InvalidInput:
        return not_found_page("There is no drill with this id.")
    treasury = ctx.treasury_for(record.safe, actor="server:page") if record.chain_id == ctx.chain.chain_id else None
    if treasury is None:
        return not_found_page("There is no drill with this id.")
    with chain_lock(ctx):
        page = drill_view.drill_page(treasury, record, int(ctx.clock()))
    return render("drill.html", title=f"Drill {page.id}", page=page, sign_script=True)


@router.get("/safes/{address}/drills", response_class=HTMLResponse, include_in_schema=False)
def drills(address: str, ctx: Ctx) -> Response:
    """The treasury's key-ceremony drills, newest first."""
    treasury = _treasury(ctx, address)
    if treasury is None:
        return not_found_page("No configured treasury has this Safe on this chain.")
    with chain_lock(ctx):
        page = drill_view.drills_page(treasury, int(ctx.clock()))
    return render("drills.html", title=f"Drills of {page.name}", page=page)
