"""Ride out transient JSON-RPC failures on a live network, and report the rest in one line.

ape reaches a live node through a web3 `HTTPProvider` (wrapped in web3's `AutoProvider` by ape's
node provider). Out of the box that path waits up to 30 minutes for an answer (ape's request
timeout) and web3's own retry repeats *every* HTTP error, including permanent ones such as 401 for
a wrong API key, while a 502 from a load balancer or a short rate-limit window fails the command.
`harden` replaces that with one policy on the HTTPProvider instance itself, so every call that
goes through `HTTPProvider._make_request` (web3 calls and `provider.make_request` alike) gets it:

- transient failures (connection errors, timeouts, cut-off answers, HTTP 408/429/5xx, JSON-RPC
  rate-limit errors) are retried with bounded exponential backoff, then raise `RPCUnavailable`;
- permanent HTTP refusals (400/401/403/404/405...) raise `RPCRefused` at once;
- other JSON-RPC errors (reverts, invalid params) are answers, returned unchanged.

Sending is the delicate part. A connection lost after `eth_sendRawTransaction` reached the node
leaves the transaction in flight; retrying the same signed bytes is safe (they can land only once)
but the retry then hears "already known" or "nonce too low". We confirm such an answer by looking
the transaction's hash up, and only then report success. `eth_sendTransaction` (signed by the node)
is not idempotent, so it is retried only when the node refused it before processing (rate limits).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import ProviderConnectionError
from web3.providers import AutoProvider, HTTPProvider
from web3.types import RPCEndpoint

from treasury.errors import InvalidInput, TreasuryError

logger = logging.getLogger("treasury.chain.rpc")

_STATE = "_treasury_rpc_hardening"  # attribute holding a hardened provider's state
_TRANSIENT_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))
_RATE_LIMIT_CODE = -32005
_RATE_LIMIT_WORDS = ("rate limit", "too many requests")
_ALREADY_KNOWN_WORDS = (
    "already known",
    "known transaction",
    "already imported",
    "nonce too low",
    "transaction already exists",
)
_RETRY_ADVICE = "check that the node is up and reachable, then try again"
_SEND_ADVICE = (
    "not retried: eth_sendTransaction is not idempotent and the node may have sent it; "
    "check the sender's nonce before sending again"
)
_REFUSED_ADVICE = "not retried: check the RPC URL and its API key"


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying before telling the user the node is unavailable.

    The defaults wait 0.25 + 0.5 + 1 + 2 + 4 s between six tries (about 8 s): enough to ride out a
    node restart, a load-balancer hiccup or a rate-limit window, short enough that a dead node is
    reported while the user is still watching. `timeout` bounds each HTTP request, so a hung
    connection becomes a retry instead of ape's 30-minute wait. `jitter` spreads the retries of
    several processes sharing one rate limit (set it to 0 for reproducible delays); `sleep` is
    injectable so tests can record the delays instead of waiting.
    """

    attempts: int = 6
    first_delay: float = 0.25
    factor: float = 2.0
    max_delay: float = 8.0
    timeout: float = 30.0
    jitter: float = 0.1
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise InvalidInput(f"a retry policy needs at least one attempt, not {self.attempts}")
        if min(self.first_delay, self.max_delay) < 0 or self.factor < 1:
            raise InvalidInput("retry delays must be non-negative and the backoff factor at least 1")
        if self.timeout <= 0 or not 0 <= self.jitter < 1:
            raise InvalidInput("the request timeout must be positive and the jitter within [0, 1)")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1 is the first retry, i.e. the 2nd attempt).

        A server's Retry-After is honoured, but capped at max_delay: a node that asks for an hour
        is better reported as unavailable than waited for.
        """
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        base = self.first_delay * self.factor ** min(retry - 1, 64)  # the cap keeps ** finite
        spread = 1 + random.uniform(-self.jitter, self.jitter) if self.jitter else 1.0
        return min(base * spread, self.max_delay)


class RPCUnavailable(TreasuryError):
    """The node did not answer: transient failures persisted through every allowed attempt."""

    def __init__(self, method: str, node: str, cause: str, attempts: int, elapsed: float,
                 advice: str = _RETRY_ADVICE) -> None:
        self.method, self.node, self.cause = method, node, cause
        self.attempts, self.elapsed = attempts, elapsed
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        super().__init__(f"The RPC node {node} did not answer {method}: {cause}, after {tries} "
                         f"in {elapsed:.1f} s ({advice})")


class RPCRefused(TreasuryError):
    """The node refused the request for a reason retrying cannot fix (bad URL, key or request)."""

    def __init__(self, method: str, node: str, cause: str) -> None:
        self.method, self.node, self.cause = method, node, cause
        super().__init__(f"The RPC node {node} refused {method}: {cause} ({_REFUSED_ADVICE})")


@dataclass(frozen=True)
class _Failure:
    """One failed attempt: why (safe to show), whether retrying can help, and how soon."""

    cause: str
    transient: bool
    before_processing: bool = False  # the node refused it unread: safe to retry anything
    retry_after: float | None = None


@dataclass
class _Hardening:
    """What `harden` attached to one provider: the current policy and the original request call."""

    policy: RetryPolicy
    send: Callable[[RPCEndpoint, bytes], bytes] | None = None


class _HasWeb3(Protocol):
    @property
    def web3(self) -> Web3: ...


def harden(target: Web3 | _HasWeb3, policy: RetryPolicy | None = None) -> None:
    """Give the HTTP provider behind `target` (an ape provider or a Web3) the retry policy.

    Call it after connecting: ape builds a new Web3 on every (re)connect. Calling it again only
    replaces the policy. IPC and WebSocket providers are left alone (no HTTP status, no proxies).
    """
    policy = policy or RetryPolicy()
    web3 = target if isinstance(target, Web3) else target.web3
    provider = web3.provider
    if isinstance(provider, AutoProvider):
        _harden_auto(provider, policy)
    elif isinstance(provider, HTTPProvider):
        _harden_http(provider, policy)


def _harden_auto(auto: AutoProvider, policy: RetryPolicy) -> None:
    """Harden whichever HTTPProvider the AutoProvider uses, now or when it picks one.

    AutoProvider chooses its provider on the first request, and builds a fresh one whenever a
    request raises OSError; patching its resolver hardens each choice without a request now.
    """
    state = vars(auto).get(_STATE)
    if state is None:
        state = _Hardening(policy)
        resolve = auto._get_active_provider

        def resolve_hardened(use_cache: bool) -> Any:
            chosen = resolve(use_cache)
            if isinstance(chosen, HTTPProvider):
                _harden_http(chosen, state.policy)
            return chosen

        auto._get_active_provider = resolve_hardened  # type: ignore[method-assign]
        setattr(auto, _STATE, state)
    state.policy = policy
    if isinstance(auto._active_provider, HTTPProvider):
        _harden_http(auto._active_provider, policy)


def _harden_http(provider: HTTPProvider, policy: RetryPolicy) -> None:
    """Install (once) the retry loop on this instance, and apply the policy's timeout."""
    # Ours replaces it; it also retried 4xx. None turns it off (web3 checks for None; its setter's type omits it).
    provider.exception_retry_configuration = None  # type: ignore[assignment]
    provider._request_kwargs = {**(provider._request_kwargs or {}), "timeout": policy.timeout}
    state = vars(provider).get(_STATE)
    if state is not None:
        state.policy = policy
        return
    state = _Hardening(policy, send=provider._make_request)
    setattr(provider, _STATE, state)
    probe = provider.is_connected

    def make_request(method: RPCEndpoint, request_data: bytes) -> bytes:
        return _request_with_retries(provider, state, method, request_data)

    def is_connected(show_traceback: bool = False) -> bool:
        # web3's contract: "no" is False (an OSError inside), not an exception.
        try:
            return probe(show_traceback)
        except (RPCUnavailable, RPCRefused) as exc:
            if show_traceback:
                raise ProviderConnectionError(str(exc)) from exc
            return False

    provider._make_request = make_request  # type: ignore[method-assign]
    provider.is_connected = is_connected  # type: ignore[method-assign]


def _request_with_retries(provider: HTTPProvider, state: _Hardening, method: RPCEndpoint,
                          request_data: bytes) -> bytes:
    """Send one JSON-RPC request under the policy; return the raw answer or raise RPC errors."""
    policy, node, started = state.policy, node_label(str(provider.endpoint_uri)), time.monotonic()
    for attempt in range(1, policy.attempts + 1):
        outcome = _attempt(state, method, request_data, policy.timeout)
        if isinstance(outcome, bytes):
            if attempt > 1 and method == "eth_sendRawTransaction":
                return _settle_duplicate(provider, request_data, outcome)
            return outcome
        elapsed = time.monotonic() - started
        if not outcome.transient:
            raise RPCRefused(method, node, outcome.cause)
        if method == "eth_sendTransaction" and not outcome.before_processing:
            raise RPCUnavailable(method, node, outcome.cause, attempt, elapsed, _SEND_ADVICE)
        if attempt == policy.attempts:
            raise RPCUnavailable(method, node, outcome.cause, attempt, elapsed)
        delay = policy.delay(attempt, outcome.retry_after)
        logger.warning("%s failed (%s): attempt %d of %d in %.2f s",
                       method, outcome.cause, attempt + 1, policy.attempts, delay)
        policy.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _attempt(state: _Hardening, method: RPCEndpoint, request_data: bytes, timeout: float) -> bytes | _Failure:
    """One try: the raw answer, or a _Failure describing why there is none (no URL in it)."""
    assert state.send is not None
    try:
        raw = state.send(method, request_data)
    except requests.HTTPError as exc:
        return _http_failure(exc)
    except requests.RequestException as exc:
        return _transport_failure(exc, timeout)
    return _rate_limit_failure(raw) or raw


def _http_failure(exc: requests.HTTPError) -> bytes | _Failure:
    """Classify an HTTP error status. A 400 carrying a JSON-RPC error is the node's answer."""
    response = exc.response
    if response is None:
        return _Failure("HTTP error without a status", transient=True)
    status = response.status_code
    cause = _one_line(f"HTTP {status} {response.reason or ''}", 80)
    if status == 400 and _json_rpc_error(response.content) is not None:
        # Some nodes answer reverts and invalid params with 400: that is the node's answer.
        return _rate_limit_failure(response.content) or response.content
    if status in _TRANSIENT_STATUS:
        return _Failure(cause, transient=True, before_processing=status == 429,
                        retry_after=_retry_after(response) if status == 429 else None)
    message = _json_rpc_error(response.content)
    if message is not None:
        cause = f"{cause}: {_one_line(str(message.get('message', '')), 120)}"
    return _Failure(cause, transient=False)


def _transport_failure(exc: requests.RequestException, timeout: float) -> _Failure:
    """Classify a failure below HTTP; the description never quotes the exception (it has the URL)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return _Failure("TLS handshake failed", transient=False)  # a certificate does not heal
    if isinstance(exc, requests.ConnectTimeout):
        return _Failure(f"no connection within {timeout:g} s", transient=True)
    if isinstance(exc, requests.Timeout):
        return _Failure(f"no answer within {timeout:g} s", transient=True)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return _Failure("the answer was cut off", transient=True)
    if isinstance(exc, requests.ConnectionError):
        return _Failure(_socket_cause(exc), transient=True)
    return _Failure(f"request failed ({type(exc).__name__})", transient=False)


_SOCKET_CAUSES: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (ConnectionResetError, "connection reset"),
    (http.client.RemoteDisconnected, "connection closed without an answer"),
    (socket.gaierror, "host name not resolved"),
    (TimeoutError, "timed out"),
)


def _socket_cause(exc: BaseException) -> str:
    """Name the root cause of a connection error (requests nests urllib3 and socket errors)."""
    seen: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending and len(seen) < 32:
        current = pending.pop(0)
        seen.append(current)
        nested = [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args]
        pending += [e for e in nested if isinstance(e, BaseException) and e not in seen]
    for kind, text in _SOCKET_CAUSES:
        if any(isinstance(e, kind) for e in seen):
            return text
    return f"connection failed ({type(exc).__name__})"


def _retry_after(response: requests.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


def _rate_limit_failure(raw: bytes) -> _Failure | None:
    """A 200 whose JSON-RPC error is a rate limit: the node refused it unread, so retry."""
    error = _json_rpc_error(raw)
    if error is None:
        return None
    message = str(error.get("message", ""))
    if error.get("code") != _RATE_LIMIT_CODE and not any(w in message.lower() for w in _RATE_LIMIT_WORDS):
        return None
    cause = _one_line(f"JSON-RPC error {error.get('code')}: {message}", 160)
    return _Failure(cause, transient=True, before_processing=True)


def _json_rpc_error(raw: bytes) -> dict[str, Any] | None:
    """The error object of a single JSON-RPC response, if it is one (cheap check first)."""
    if b'"error"' not in raw:
        return None
    try:
        response = json.loads(raw)
    except ValueError:
        return None
    error = response.get("error") if isinstance(response, dict) else None
    return error if isinstance(error, dict) else None


def _settle_duplicate(provider: HTTPProvider, request_data: bytes, raw: bytes) -> bytes:
    """Turn a retried broadcast's "already known" into success, if the node has *that* transaction.

    "nonce too low" also follows when a different transaction took the nonce; only a lookup of our
    own hash tells the two apart, and the second must stay an error.
    """
    error = _json_rpc_error(raw)
    if error is None or not any(w in str(error.get("message", "")).lower() for w in _ALREADY_KNOWN_WORDS):
        return raw
    request = json.loads(request_data)
    tx_hash = "0x" + keccak(hexstr=request["params"][0]).hex()
    known = provider.make_request("eth_getTransactionByHash", [tx_hash]).get("result")
    if not known or str(known.get("hash", "")).lower() != tx_hash:
        return raw
    logger.warning("eth_sendRawTransaction: the node already has %s from an earlier attempt", tx_hash)
    return json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": tx_hash}).encode()


def node_label(uri: str) -> str:
    """scheme://host:port of a node URL: never its path, query or userinfo, where API keys live."""
    parts = urlsplit(uri)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}"


def _one_line(text: str, limit: int) -> str:
    """Collapse whitespace and bound the length of text a server sent, for a one-line message."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- before connecting: is anyone there? ------------------------------------------------------------

NODE_HELP = 'treasury never starts a node itself: start one (e.g. anvil) and point ape at it, see the README, "Getting started on your own anvil"'


class NodeNotFound(TreasuryError):
    """Nobody answers at the node URL the chosen network names: nothing was started in its place."""

    def __init__(self, network: str, failure: RPCUnavailable) -> None:
        self.network, self.node, self.cause = network, failure.node, failure.cause
        tries = "1 attempt" if failure.attempts == 1 else f"{failure.attempts} attempts"
        super().__init__(f"no node answers at {failure.node} (network {network}): {failure.cause}, after {tries} "
                         f"in {failure.elapsed:.1f} s; {NODE_HELP}")


def node_url(provider: Any) -> str | None:
    """The HTTP URL an ape provider is about to connect to, or None when there is nothing to probe.

    None for providers that need no node (ape's in-process test chain), for IPC/WebSocket nodes and
    for fork networks, whose anvil ape starts on purpose (the user asked for a fork). ape-foundry's
    `host: auto` on a local network names no node: it means "start a fresh anvil", which treasury
    refuses (NodeNotFound is raised by check_node).
    """
    if getattr(provider, "_web3", None) is not None or str(provider.network.name).endswith("-fork"):
        return None  # already connected (e.g. the test session's own node), or a fork ape starts
    if provider.name == "foundry":
        host = os.environ.get("APE_FOUNDRY_HOST") or provider.settings.host
        if host == "auto":
            return "auto"
        host = host or provider.uri  # unset: ape-foundry's default, http://127.0.0.1:8545
        return host if "://" in host else f"http://{host}"
    if not hasattr(provider, "http_uri"):
        return None  # not a node provider (ape's EthTester, an in-process chain)
    try:
        uri = provider.http_uri
    except Exception:  # noqa: BLE001 - a provider without a configured URL: let ape say so when it connects
        return None
    return uri if isinstance(uri, str) and uri.startswith(("http://", "https://")) else None


def check_node(provider: Any, policy: RetryPolicy | None = None) -> None:
    """Before ape connects: make sure a node answers at the URL, under the retry policy.

    ape-foundry starts a fresh anvil when nobody answers on a loopback URL (so a typo in the port, or
    a stopped anvil, silently becomes an empty chain), and ape's own first request (its connection
    probe) is not retried: one 503 there ends the command with "No (supported) node found". Asking
    eth_chainId here first, through a hardened client, fixes both: transient failures are retried
    like every later call, and a node that stays silent is one line naming it (scheme, host and
    port only: never an API key in a path or a password in the URL).

    Only silence (no answer, or transient faults through every retry) is "no node". This probe is a
    bare HTTPProvider without ape's configured request headers, so a node that wants an
    Authorization header refuses it (401/403): any HTTP answer, refusal or JSON-RPC error, means a
    node is there, and ape (which sends the headers) connects and reports for itself.
    """
    url = node_url(provider)
    if url is None:
        return
    network = str(getattr(provider.network, "choice", None) or provider.network.name)
    if url == "auto":
        raise TreasuryError(f"network {network} names no node (ape-foundry `host: auto` would start a fresh, empty "
                            f"anvil); {NODE_HELP}")
    web3 = Web3(HTTPProvider(url))
    harden(web3, policy or RetryPolicy())
    level = logger.level
    logger.setLevel(logging.ERROR)  # the outcome is one line, attempts counted in it: no line per retry
    try:
        _ = web3.eth.chain_id  # the cheapest question every node answers
    except RPCUnavailable as failure:
        raise NodeNotFound(network, failure) from None
    except Exception:  # noqa: BLE001 - any answer (401/403 without ape's configured headers, a JSON-RPC error) is a node
        return  # a node is there: ape connects with its own settings and reports what it hears
    finally:
        logger.setLevel(level)
