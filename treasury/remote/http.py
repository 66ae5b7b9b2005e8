"""One HTTP client for every remote call: timeouts, retries, bearer tokens, one-line errors.

Why retries only where they are safe: a GET, or a write the server treats as idempotent (a
confirmation or guard signature sent twice is stored once), may be repeated after a dropped
connection or a 502/503/504/429 without changing what ends up stored; any other write is sent once.
Every failure is a `ServerError` line that names the server and says what it answered (Safe's
services answer in Django REST framework's shapes: `detail`, `message`, `nonFieldErrors`, fields).
The token is sent as `Authorization: Bearer <token>` and never appears in an error or a repr.
A server is not trusted with more than that: an answer is read up to MAX_RESPONSE bytes (streamed,
so a huge one is never held whole), and a link it hands out (a page's `next`) is followed only to
the same scheme, host and port, so the token never goes anywhere else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from treasury.errors import TreasuryError

TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
DEFAULT_TIMEOUT = 15.0
DEFAULT_ATTEMPTS = 4
MAX_WAIT = 8.0
MAX_RESPONSE = 16 * 1024 * 1024  # bytes of one answer; a page of 100 Safe transactions is well under 1 MiB
CHUNK = 64 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}


class ServerError(TreasuryError):
    """A server refused or failed a request; `status` is its HTTP status (None: no answer at all)."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class NotFound(ServerError):
    """404: the server has no such resource."""


def error_text(body: Any) -> str:
    """The first human message in a DRF-style error body, as api-kit reads it."""
    if isinstance(body, dict):
        for key in ("detail", "message"):
            if isinstance(body.get(key), str):
                return body[key]
        for key, value in body.items():
            if isinstance(value, list) and value:
                first = value[0]
                text = first if isinstance(first, str) else error_text(first)
                return text if key == "nonFieldErrors" else f"{key}: {text}"
            if isinstance(value, dict):
                return f"{key}: {error_text(value)}"
    if isinstance(body, list) and body:
        return error_text(body[0])
    if isinstance(body, str):
        return " ".join(body.split())[:200]
    return "no details"


class HttpClient:
    """Requests to one base URL. `sleep` is injectable so tests never wait on the wall clock."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 attempts: int = DEFAULT_ATTEMPTS, session: Any = None, sleep: Callable[[float], None] = time.sleep,
                 label: str = "server") -> None:
        import requests

        self.url = url.rstrip("/")
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.sleep = sleep
        self.label = label
        self.session = session or requests.Session()
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:
        return f"<HttpClient {self.url}>"

    def close(self) -> None:
        self.session.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params, retry=True)

    def post(self, path: str, body: Any, *, idempotent: bool = False) -> Any:
        return self.request("POST", path, json=body, retry=idempotent)

    def get_url(self, url: str) -> Any:
        """A link the server handed out (a page's `next`): followed only if it is an absolute URL of
        this very server (scheme, host and port), else refused in one line. A relative link such as
        `@evil.host/x`, appended to the base URL, would send the request and the token elsewhere."""
        from urllib.parse import urlsplit

        parts, base = urlsplit(url), urlsplit(self.url)
        if _origin(parts) != _origin(base) or parts.username is not None or parts.password is not None:
            shown = "".join(c for c in url[:120] if c.isprintable())
            raise ServerError(f"{self.label} {self.url} handed out a link to another place ({shown!r}): not followed")
        prefix = base.path
        path = parts.path[len(prefix):] if prefix and parts.path.startswith(prefix + "/") else parts.path
        return self.request("GET", path + (f"?{parts.query}" if parts.query else ""), retry=True)

    def request(self, method: str, path: str, *, retry: bool, **kwargs: Any) -> Any:
        import requests

        where = f"{self.label} {self.url}"
        attempts = self.attempts if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                response = self.session.request(method, self.url + path, timeout=self.timeout, stream=True, **kwargs)
                content = _read_capped(response, f"{where} answered {method} {path}")
            except requests.RequestException as error:
                if attempt < attempts:
                    self.sleep(_backoff(attempt))
                    continue
                raise ServerError(f"{where} did not answer {method} {path}: {_reason(error)}") from None
            if response.status_code in TRANSIENT_STATUSES and attempt < attempts:
                self.sleep(_retry_after(response, attempt))
                continue
            return self._answer(response, content, method, path)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _answer(self, response: Any, content: bytes, method: str, path: str) -> Any:
        import json

        try:
            body = json.loads(content) if content else None
        except ValueError:  # UnicodeDecodeError included
            body = content.decode("utf-8", "replace")
        if response.status_code < 300:
            return body
        kind = NotFound if response.status_code == 404 else ServerError
        raise kind(f"{self.label} {self.url} refused {method} {path}: {response.status_code} {error_text(body)}",
                   response.status_code, body)


def _origin(parts: Any) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a split URL, the scheme's default port filled in; ValueError-free."""
    try:
        port = parts.port
    except ValueError:
        port = -1
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or ""), port if port is not None else DEFAULT_PORTS.get(scheme)


def _read_capped(response: Any, what: str) -> bytes:
    """The answer's body, read in chunks and refused past MAX_RESPONSE bytes (the connection is
    closed then, not drained)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE:
        response.close()
        raise ServerError(f"{what} with {int(declared)} bytes, more than the {MAX_RESPONSE} a client reads: refused")
    body = bytearray()
    for chunk in response.iter_content(CHUNK):
        body += chunk
        if len(body) > MAX_RESPONSE:
            response.close()
            raise ServerError(f"{what} with more than {MAX_RESPONSE} bytes, more than a client reads: refused")
    return bytes(body)


def _backoff(attempt: int) -> float:
    return min(MAX_WAIT, 0.25 * 2 ** (attempt - 1))


def _retry_after(response: Any, attempt: int) -> float:
    try:
        return min(MAX_WAIT, max(0.0, float(response.headers.get("Retry-After", ""))))
    except ValueError:
        return _backoff(attempt)


def _reason(error: Exception) -> str:
    """A connection failure in a few words (requests' messages repeat the whole URL and pool state)."""
    name = type(error).__name__
    text = " ".join(str(error).split())
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower() or "Timeout" in name:
        return "timed out"
    return f"{name}: {text[:120]}"
