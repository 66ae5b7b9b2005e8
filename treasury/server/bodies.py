"""Reading a write request: its JSON body, its fields, and who the audit log names for it.

Every router parses bodies the same way, so a malformed body gets the same DRF-style 400 whichever
endpoint it was sent to, and a field error reads the same everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request

from treasury.server import wire
from treasury.server.context import actor_of
from treasury.server.errors import ApiError

T = TypeVar("T")


async def json_body(request: Request, *, empty: Any = None) -> Any:
    """The body as JSON, or DRF's 400 parse error (huge numbers, bad encodings and deep nesting included).

    `empty`: what an empty body stands for (DELETE bodies may be empty); None means it is a parse error.
    """
    raw = await request.body()
    if empty is not None and not raw.strip():
        return empty
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise ApiError(400, {"detail": f"JSON parse error - {' '.join(str(error).split())[:200]}"}) from None


def read_fields(reader: Callable[..., T], *args: Any, status: int = 400) -> T:
    """`reader(*args)`, with a field error answered as the service does (`{field: [message]}`)."""
    try:
        return reader(*args)
    except wire.FieldError as error:
        raise error.as_api(status) from None


def audit_actor(request: Request) -> Callable[[str], str]:
    """The audit actor label for a write of this request, once the signer `who` is known."""
    return lambda who: actor_of(request, who)
