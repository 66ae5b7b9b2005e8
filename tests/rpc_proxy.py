"""A JSON-RPC proxy that injects the faults a live network produces, between a client and anvil.

The fault model (`FaultProxy.inject(kind, ...)`), each one a failure seen on hosted nodes:

- "429": rate limited by HTTP status, with `Retry-After` (0 s unless told); nothing forwarded.
- "500", "502", "503": a failing node or load balancer; nothing forwarded.
- "401", "400": permanent refusals (bad API key, malformed request); nothing forwarded.
- "rate_limit_rpc": HTTP 200 carrying JSON-RPC error -32005 "rate limit exceeded"; nothing forwarded.
- "drop": the connection closes without any answer; nothing forwarded.
- "delay": wait `delay` seconds, then forward (to outlast the client's timeout).
- "reset_after_forward": forward, then reset the connection without answering: the node has the
  request (e.g. a broadcast transaction) but the client never hears so.
- "hold": forward, then keep the connection open without answering until the proxy closes: lets
  a test stop a client between "the node has it" and "the client recorded it".

Faults are consumed in the order injected, the first one matching the request's method (or any
method) applying. The request path is ignored, so a client can use `proxy.url + "/v3/SECRETKEY"`
like a hosted node's URL. With `strict=True` the proxy answers methods outside eth_, net_ and web3_
with -32601 "method not found", like a hosted node does for anvil_/evm_/debug_ methods.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

KINDS = ("429", "500", "502", "503", "401", "400", "rate_limit_rpc", "drop", "delay",
         "reset_after_forward", "hold")
PUBLIC_NAMESPACES = ("eth_", "net_", "web3_")
_REASONS = {"400": "Bad Request", "401": "Unauthorized", "429": "Too Many Requests",
            "500": "Internal Server Error", "502": "Bad Gateway", "503": "Service Unavailable"}


@dataclass
class _Fault:
    kind: str
    method: str | None
    times: int
    delay: float
    retry_after: str


class FaultProxy:
    """Forward JSON-RPC over HTTP to `upstream_url`, recording methods and injecting faults."""

    def __init__(self, upstream_url: str, strict: bool = False) -> None:
        self.upstream_url = upstream_url
        self.strict = strict
        self.methods: list[str] = []  # every method received, in order, faulted or not
        self.forwarded: list[str] = []  # the methods upstream answered
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._forwarded_events: dict[str, threading.Event] = {}
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def inject(self, kind: str, method: str | None = None, times: int = 1, delay: float = 0.0,
               retry_after: str = "0") -> None:
        """Fail the next `times` requests for `method` (None: any method) in the way `kind` says."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
        with self._lock:
            self._faults.append(_Fault(kind, method, times, delay, retry_after))

    def wait_forwarded(self, method: str, timeout: float = 30.0) -> bool:
        """Block until upstream has answered a `method` request (True), or `timeout` passes."""
        return self._event(method).wait(timeout)

    def close(self) -> None:
        self._closing.set()  # releases "hold" connections
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _event(self, method: str) -> threading.Event:
        with self._lock:
            return self._forwarded_events.setdefault(method, threading.Event())

    def _receive(self, methods: list[str]) -> _Fault | None:
        """Record the methods and take the first matching fault, if any."""
        with self._lock:
            self.methods.extend(methods)
            for fault in self._faults:
                if fault.method is None or fault.method in methods:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _forward(self, body: bytes, methods: list[str]) -> tuple[int, bytes]:
        response = requests.post(self.upstream_url, data=body, timeout=60,
                                 headers={"Content-Type": "application/json"})
        with self._lock:
            self.forwarded.extend(methods)
        for method in methods:
            self._event(method).set()
        return response.status_code, response.content


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as with a real node: a drop hits a reused connection
    server: ThreadingHTTPServer

    def do_POST(self) -> None:  # http.server's naming
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        payload = json.loads(body)
        calls = payload if isinstance(payload, list) else [payload]
        fault = proxy._receive([call.get("method", "") for call in calls])
        if fault is not None and self._fault(proxy, fault, body, calls):
            return
        if proxy.strict and any(not _public(call) for call in calls):
            self._answer_strict(proxy, payload, calls)
            return
        self._reply(*proxy._forward(body, [call.get("method", "") for call in calls]))

    def _fault(self, proxy: FaultProxy, fault: _Fault, body: bytes, calls: list[dict]) -> bool:
        """Act out a fault; True when the request is finished (answered, dropped or held)."""
        methods = [call.get("method", "") for call in calls]
        if fault.kind in _REASONS:
            headers = {"Retry-After": fault.retry_after} if fault.kind == "429" else {}
            self._reply(int(fault.kind), f"{_REASONS[fault.kind]}\n".encode(), "text/plain", headers)
        elif fault.kind == "rate_limit_rpc":
            error = {"code": -32005, "message": "rate limit exceeded"}
            self._reply(200, json.dumps({"jsonrpc": "2.0", "id": calls[0].get("id"), "error": error}).encode())
        elif fault.kind == "drop":
            self.close_connection = True
        elif fault.kind == "delay":
            time.sleep(fault.delay)
            return False
        elif fault.kind == "reset_after_forward":
            proxy._forward(body, methods)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()  # linger 0: the close is a TCP reset
            self.close_connection = True
        elif fault.kind == "hold":
            proxy._forward(body, methods)
            proxy._closing.wait()
            self.close_connection = True
        return True

    def _answer_strict(self, proxy: FaultProxy, payload: dict | list, calls: list[dict]) -> None:
        """Refuse non-public methods like a hosted node; a batch's public calls are still forwarded."""
        public = [call for call in calls if _public(call)]
        answers = {}
        if public:
            _, raw = proxy._forward(json.dumps(public).encode(), [call["method"] for call in public])
            answers = {answer.get("id"): answer for answer in json.loads(raw)}
        refused = {"code": -32601, "message": "method not found"}
        replies = [answers.get(call.get("id")) or {"jsonrpc": "2.0", "id": call.get("id"), "error": refused}
                   for call in calls]
        self._reply(200, json.dumps(replies if isinstance(payload, list) else replies[0]).encode())

    def _reply(self, status: int, body: bytes, content_type: str = "application/json",
               headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (e.g. timed out during a "delay")
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # http.server's naming
        pass


def _public(call: dict) -> bool:
    return str(call.get("method", "")).startswith(PUBLIC_NAMESPACES)
