"""A loopback stand-in for the language-model providers' HTTP APIs, for the review advisor's tests.

The advisor talks to Anthropic and OpenAI only through their official SDKs, so the tests run those SDKs
unchanged against this server (ANTHROPIC_BASE_URL / OPENAI_BASE_URL point here): no key, no network.
It speaks each provider's documented wire format, not a simplification of it:
- POST /v1/messages (Anthropic Messages): the key (x-api-key or a Bearer token) and anthropic-version, a body with model,
  max_tokens and messages; a `message` object back, errors as {"type": "error", "error": {type, message}}.
- POST /v1/chat/completions (OpenAI Chat Completions): a Bearer key, a body with model and messages; a
  `chat.completion` object back, errors as {"error": {message, type, param, code}}.
Each request is recorded (path, headers, raw body) so a test can check what left the machine. What the
next request meets is queued with `then(...)`: an answer, a 429 with retry-after, a slow answer (for the
client's timeout), an answer trickled a byte at a time (each read quick, the whole far too slow) or an
error status; with nothing queued, the default answer.

The server binds port 0 itself and keeps the socket, so its port is reserved for its whole life.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"
CREATED = 1_764_547_200  # a pinned `created` time for chat.completion objects (deterministic answers)


@dataclass(frozen=True)
class Answer:
    text: str


@dataclass(frozen=True)
class RateLimited:
    retry_after: str  # the header's value, as the provider sends it ("1", "3600")


@dataclass(frozen=True)
class Slow:
    seconds: float
    text: str = "a late answer"


@dataclass(frozen=True)
class Trickle:
    """A 200 whose body comes one byte every `interval` seconds: no single read is slow, the answer is."""

    interval: float
    text: str = "a trickled answer"


@dataclass(frozen=True)
class Failure:
    status: int
    kind: str  # the provider's error type, e.g. "overloaded_error", "server_error"
    message: str


Behaviour = Answer | RateLimited | Slow | Trickle | Failure


@dataclass(frozen=True)
class Recorded:
    """One request as it arrived: headers lower-cased, the body as raw bytes."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class ProviderStandin:
    """The stand-in server; `url` is its base (for ANTHROPIC_BASE_URL; OPENAI_BASE_URL takes url + "/v1")."""

    def __init__(self, key: str, answer: str = "This pays a known vendor; nothing else stands out.") -> None:
        self.key = key
        self.default: Behaviour = Answer(answer)
        self.requests: list[Recorded] = []
        self._plan: list[Behaviour] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.stopping = threading.Event()
        self._server = _Server((LOOPBACK, 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="provider-standin",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def then(self, *behaviours: Behaviour) -> None:
        """What the next requests meet, in order; the default answer after them."""
        with self._lock:
            self._plan.extend(behaviours)

    def next_behaviour(self) -> Behaviour:
        with self._lock:
            return self._plan.pop(0) if self._plan else self.default

    def record(self, request: Recorded) -> int:
        with self._lock:
            self.requests.append(request)
            return next(self._ids)

    def stop(self) -> None:
        self.stopping.set()  # a slow answer still waiting gives up at once
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> ProviderStandin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (its timeout) leaves a broken pipe behind: expected, not worth a traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


# --- the two dialects ---------------------------------------------------------------------------------


class Anthropic:
    path = "/v1/messages"

    @staticmethod
    def authorized(headers: dict[str, str], key: str) -> bool:
        """The key as x-api-key or, as anthropic 2.15 sends it, a Bearer token; and an API version."""
        given = headers.get("x-api-key") == key or headers.get("authorization") == f"Bearer {key}"
        return given and bool(headers.get("anthropic-version"))

    @staticmethod
    def invalid(body: Any) -> str | None:
        """What the Messages API would refuse with a 400, None for a well-formed request."""
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return "model: Field required"
        if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
            return "max_tokens: Field required"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or messages[0].get("role") != "user":
            return "messages: first message must use the \"user\" role"
        if any(m.get("role") not in ("user", "assistant") or "content" not in m for m in messages):
            return "messages: roles must be \"user\" or \"assistant\", each with content"
        system = body.get("system")
        if system is not None and not isinstance(system, str | list):
            return "system: Input should be a valid string or list of text blocks"
        return None

    @staticmethod
    def answer(number: int, model: str, text: str, prompt_bytes: int) -> dict[str, Any]:
        return {"id": f"msg_standin{number:04d}", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": prompt_bytes // 4, "output_tokens": len(text.split())}}

    @staticmethod
    def error(status: int, kind: str, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_standin"}

    rate_limit = ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit")
    unauthorized = ("authentication_error", "invalid x-api-key")
    bad_request = "invalid_request_error"
    not_found = ("not_found_error", "Not Found")


class OpenAI:
    path = "/v1/chat/completions"

    @staticmethod
    def authorized(headers: dict[str, str], key: str) -> bool:
        return headers.get("authorization") == f"Bearer {key}"

    @staticmethod
    def invalid(body: Any) -> str | None:
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return "you must provide a model parameter"
        messages = body.get("messages")
        roles = ("system", "developer", "user", "assistant", "tool")
        if not isinstance(messages, list) or not messages or any(m.get("role") not in roles for m in messages):
            return "'messages' must be a non-empty array of messages with a valid role"
        return None

    @staticmethod
    def answer(number: int, model: str, text: str, prompt_bytes: int) -> dict[str, Any]:
        prompt, completion = prompt_bytes // 4, len(text.split())
        return {"id": f"chatcmpl-standin{number:04d}", "object": "chat.completion", "created": CREATED,
                "model": model, "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None, "message": {
                    "role": "assistant", "content": text, "refusal": None, "annotations": []}}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion},
                "service_tier": "default", "system_fingerprint": None}

    @staticmethod
    def error(status: int, kind: str, message: str) -> dict[str, Any]:
        return {"error": {"message": message, "type": kind, "param": None, "code": kind}}

    rate_limit = ("rate_limit_exceeded", "Rate limit reached for requests per min. Please try again later.")
    unauthorized = ("invalid_api_key", "Incorrect API key provided.")
    bad_request = "invalid_request_error"
    not_found = ("not_found", "Unknown request URL")


DIALECTS: dict[str, type[Anthropic] | type[OpenAI]] = {Anthropic.path: Anthropic, OpenAI.path: OpenAI}


# --- the handler ----------------------------------------------------------------------------------------


def _handler_for(standin: ProviderStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        owner = standin

    return Handler


class _Handler(BaseHTTPRequestHandler):
    owner: ProviderStandin
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' HTTP client expects; every answer has a length

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        number = self.owner.record(Recorded(self.path, headers, body))
        dialect = DIALECTS.get(self.path)
        if dialect is None:
            self._send(404, {"error": {"type": "not_found_error", "message": f"no route {self.path}"}})
            return
        if not dialect.authorized(headers, self.owner.key):
            self._send(401, dialect.error(401, *dialect.unauthorized))
            return
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        problem = dialect.invalid(request)
        if problem is not None:
            self._send(400, dialect.error(400, dialect.bad_request, problem))
            return
        self._behave(dialect, number, request, len(body))

    def _behave(self, dialect: type[Anthropic] | type[OpenAI], number: int, request: dict, size: int) -> None:
        behaviour = self.owner.next_behaviour()
        if isinstance(behaviour, RateLimited):
            self._send(429, dialect.error(429, *dialect.rate_limit), {"retry-after": behaviour.retry_after})
        elif isinstance(behaviour, Failure):
            self._send(behaviour.status, dialect.error(behaviour.status, behaviour.kind, behaviour.message))
        elif isinstance(behaviour, Trickle):
            self._send(200, dialect.answer(number, request["model"], behaviour.text, size), every=behaviour.interval)
        else:
            if isinstance(behaviour, Slow) and self.owner.stopping.wait(behaviour.seconds):
                return  # the stand-in is stopping: no one is waiting any more
            self._send(200, dialect.answer(number, request["model"], behaviour.text, size))

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None,
              every: float | None = None) -> None:
        """The answer, at once or (`every` seconds a byte) trickled until done or the stand-in stops."""
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_standin")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if every is None:
            self.wfile.write(data)
            return
        for byte in data:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            if self.owner.stopping.wait(every):
                self.close_connection = True  # the client's reader sees the end at once, not after its timeout
                return

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read `requests`, not a log."""
