"""The JSON of Safe's Transaction Service for multisig transactions, confirmations and pages.

Three independent clients (ape-safe, safe-eth-py's TransactionServiceApi, Safe's api-kit) parse
these bodies, so field names, types and nulls follow the service's serializers exactly: `value` and
`gasPrice` are decimal strings; `safeTxGas`, `baseGas` and `nonce` are integers in v1 and strings in
v2; `data` is "0x" when empty (ape-safe cannot take null); a confirmation's `signatureType` is EOA, ETH_SIGN, APPROVED_HASH or
CONTRACT_SIGNATURE. Our own facts go under one extra key, `treasury`, which every client ignores.

Incoming bodies are read here too, field by field as the service's serializers read them
(checksummed addresses, non-negative integers given as numbers or decimal strings, 0x-hex bytes),
and a refusal is a `{field: [message]}` body. Nothing here touches the store or the chain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from treasury.addresses import ZERO_ADDRESS, checksum
from treasury.server.errors import ApiError
from treasury.store import ProposalRecord, SignatureRecord

UINT256_MAX = 2**256 - 1
MAX_INT_TEXT = 100  # digits: a uint256 has 78, anything longer is refused before int() sees it
MAX_SIGNATURE_BYTES = 65_536  # a contract owner's signature may be long; the body cap bounds the rest
MAX_ORIGIN = 200  # the service's limit on `origin`

SIGNATURE_TYPES = {"eip712": "EOA", "eth_sign": "ETH_SIGN", "approved_hash": "APPROVED_HASH", "contract": "CONTRACT_SIGNATURE"}
EXECUTED_STATUSES = frozenset({"executed", "failed"})


# --- reading request bodies ------------------------------------------------------------------------


class FieldError(Exception):
    """One field of a request body is wrong, in the serializer's words; `as_api(status)` answers it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def as_api(self, status: int) -> ApiError:
        return ApiError(status, {self.field: [self.message]})


@dataclass(frozen=True)
class ProposalBody:
    """A proposal as POSTed to safes/{address}/multisig-transactions/ (v1 and v2 alike)."""

    to: str
    value: int
    data: bytes
    operation: int
    safe_tx_gas: int
    base_gas: int
    gas_price: int
    gas_token: str
    refund_receiver: str
    nonce: int
    contract_transaction_hash: str
    sender: str
    signature: bytes | None
    origin: str | None


@dataclass(frozen=True)
class EstimationBody:
    """What safes/{address}/multisig-transactions/estimations/ takes."""

    to: str
    value: int
    data: bytes
    operation: int


def require_object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise FieldError("nonFieldErrors", f"Invalid data. Expected a dictionary, but got {type(body).__name__}.")
    return body


def _required(body: Mapping[str, Any], name: str) -> Any:
    if name not in body:
        raise FieldError(name, "This field is required.")
    return body[name]


def uint(body: Mapping[str, Any], name: str, *, default: int | None = None) -> int:
    """A non-negative integer up to 2**256 - 1, given as a JSON number or a decimal string."""
    if name not in body and default is not None:
        return default
    value = _required(body, name)
    if value is None:
        raise FieldError(name, "This field may not be null.")
    if isinstance(value, bool):
        raise FieldError(name, "A valid integer is required.")
    if isinstance(value, float):
        if not value.is_integer():
            raise FieldError(name, "A valid integer is required.")
        value = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_INT_TEXT:
            raise FieldError(name, "String value too large.")
        if not (text.isascii() and text.lstrip("-").isdigit()):
            raise FieldError(name, "A valid integer is required.")
        value = int(text)
    elif not isinstance(value, int):
        raise FieldError(name, "A valid integer is required.")
    if value < 0:
        raise FieldError(name, "Ensure this value is greater than or equal to 0.")
    if value > UINT256_MAX:
        raise FieldError(name, f"Ensure this value is less than or equal to {UINT256_MAX}.")
    return value


def address(body: Mapping[str, Any], name: str, *, nullable: bool = False, allow_zero: bool = True) -> str:
    """A checksummed (EIP-55) address; lower-case is refused, as the service refuses it."""
    value = body.get(name) if nullable else _required(body, name)
    if value is None:
        if nullable:
            return ZERO_ADDRESS
        raise FieldError(name, "This field may not be null.")
    if not is_checksummed(value):
        raise FieldError(name, f"Address {str(value)[:64]} is not checksumed")
    if not allow_zero and int(value, 16) == 0:
        raise FieldError(name, "0x0 address is not allowed")
    return value


def is_checksummed(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        return False
    digits = value[2:]
    if not all(c in "0123456789abcdefABCDEF" for c in digits):
        return False
    return checksum(digits) == value


def hex_bytes(body: Mapping[str, Any], name: str, *, limit: int | None = None) -> bytes | None:
    """0x-hex bytes; null, "" and "0x" are None (no bytes)."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError(name, f"{str(value)[:64]} is not a hexadecimal value.")
    text = value.strip()
    text = text[2:] if text.startswith(("0x", "0X")) else text
    if not text:
        return None
    if limit is not None and len(text) > 2 * limit:
        raise FieldError(name, f"Ensure this field has no more than {limit} hexadecimal chars (not counting 0x).")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise FieldError(name, f"{value[:64]} is not a hexadecimal value.") from None


def hash32(body: Mapping[str, Any], name: str) -> str:
    raw = hex_bytes(body, name)
    if raw is None:
        raise FieldError(name, "This field is required.")
    if len(raw) != 32:
        raise FieldError(name, f"{len(raw)} bytes is not a 32-byte keccak hash")
    return "0x" + raw.hex()


def operation(body: Mapping[str, Any]) -> int:
    value = uint(body, "operation")
    if value == 2:
        raise FieldError("nonFieldErrors", "Operation CREATE not supported. Please use Safe CreateLib")
    if value not in (0, 1):
        raise FieldError("operation", "Unknown operation")
    return value


def read_proposal(body: Any) -> ProposalBody:
    """The proposal's fields as the service's SafeMultisigTransactionSerializer reads them."""
    fields = require_object(body)
    origin = fields.get("origin")
    if origin is not None and not isinstance(origin, str):
        raise FieldError("origin", "Not a valid string.")
    if origin is not None and len(origin) > MAX_ORIGIN:
        raise FieldError("origin", f"Ensure this field has no more than {MAX_ORIGIN} characters.")
    signature = hex_bytes(fields, "signature", limit=MAX_SIGNATURE_BYTES)
    if signature is not None and len(signature) < 65:
        raise FieldError("signature", "Ensure this field has at least 65 hexadecimal chars (not counting 0x).")
    return ProposalBody(
        to=address(fields, "to"), value=uint(fields, "value"), data=hex_bytes(fields, "data") or b"",
        operation=operation(fields), safe_tx_gas=uint(fields, "safeTxGas"), base_gas=uint(fields, "baseGas"),
        gas_price=uint(fields, "gasPrice"), gas_token=address(fields, "gasToken", nullable=True),
        refund_receiver=address(fields, "refundReceiver", nullable=True), nonce=uint(fields, "nonce"),
        contract_transaction_hash=hash32(fields, "contractTransactionHash"),
        sender=address(fields, "sender", allow_zero=False), signature=signature, origin=origin,
    )


def read_estimation(body: Any) -> EstimationBody:
    fields = require_object(body)
    return EstimationBody(to=address(fields, "to"), value=uint(fields, "value"),
                          data=hex_bytes(fields, "data") or b"", operation=operation(fields))


def read_confirmation(body: Any) -> bytes:
    """The `signature` of a confirmation POST: one or several concatenated signatures."""
    fields = require_object(body)
    raw = hex_bytes(fields, "signature", limit=MAX_SIGNATURE_BYTES)
    if raw is None:
        raise FieldError("signature", "This field is required." if "signature" not in fields else "This field may not be blank.")
    if len(raw) < 65:
        raise FieldError("signature", "Ensure this field has at least 65 hexadecimal chars (not counting 0x).")
    return raw


def title_of(origin: str | None) -> str:
    """A proposal title from the client's `origin`: its `name` when it is JSON ({"url", "name"}, as
    Safe{Wallet} sends), else the text itself; one line, at most the store's 200 characters."""
    if not origin:
        return ""
    text = origin
    try:
        parsed = json.loads(origin)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        text = str(parsed.get("name") or "")
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text[:MAX_ORIGIN]


# --- writing responses -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Execution:
    """An executed proposal as the chain says: the transaction, its block and what it cost."""

    transaction_hash: str
    block_number: int
    executed_at: datetime
    executor: str
    successful: bool
    gas_used: int
    gas_price: int | None  # the transaction's effective gas price (None: the node no longer has it)


def iso(moment: datetime) -> str:
    """A timestamp as DRF's DateTimeField writes it in UTC: 2026-12-01T11:52:17.123456Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def hex0x(raw: bytes) -> str:
    return "0x" + bytes(raw).hex()


def confirmation_json(signature: SignatureRecord) -> dict[str, Any]:
    return {
        "owner": signature.owner,
        "submissionDate": iso(signature.created_at),
        "transactionHash": None,
        "signature": hex0x(signature.signature),
        "signatureType": SIGNATURE_TYPES[signature.kind],
    }


def _proposer_address(proposer: str) -> str | None:
    """The proposer as an address (the clients checksum it), or None for a local user's name."""
    return proposer if is_checksummed(proposer) else None


def transaction_json(
    record: ProposalRecord,
    confirmations: Sequence[SignatureRecord],
    *,
    threshold: int,
    execution: Execution | None,
    verdict: dict[str, Any] | None,
    v2: bool,
) -> dict[str, Any]:
    """One multisig transaction as the service's SafeMultisigTransactionResponseSerializer(V2) writes it."""
    modified = max([record.created_at, *(c.created_at for c in confirmations),
                    *((execution.executed_at,) if execution else ())])
    executed = record.status in EXECUTED_STATUSES
    number = str if v2 else int
    # ape-safe needs integers here for an executed transaction: 0 when the node no longer has its gas price
    gas_price = (execution.gas_price or 0) if execution else None
    return {
        "safe": record.safe,
        "to": record.to,
        "value": str(record.value),
        "data": hex0x(record.data),  # "0x" when empty: ape-safe cannot rebuild a SafeTx from null data
        "operation": int(record.operation),
        "gasToken": record.gas_token,
        "safeTxGas": number(record.safe_tx_gas),
        "baseGas": number(record.base_gas),
        "gasPrice": str(record.gas_price),
        "refundReceiver": record.refund_receiver,
        "nonce": number(record.nonce),
        "executionDate": iso(execution.executed_at) if execution else None,
        "submissionDate": iso(record.created_at),
        "modified": iso(modified),
        "blockNumber": execution.block_number if execution else None,
        "transactionHash": execution.transaction_hash if execution else None,
        "safeTxHash": record.safe_tx_hash,
        "proposer": _proposer_address(record.proposer),
        "proposedByDelegate": None,
        "executor": execution.executor if execution else None,
        "isExecuted": executed,
        "isSuccessful": (record.status == "executed") if executed else None,
        "ethGasPrice": str(gas_price) if execution else None,
        "maxFeePerGas": None,
        "maxPriorityFeePerGas": None,
        "gasUsed": execution.gas_used if execution else None,
        "fee": str(execution.gas_used * (gas_price or 0)) if execution else None,
        "payment": None,
        "origin": record.title or "{}",
        "dataDecoded": None,
        "confirmationsRequired": threshold,
        "confirmations": [confirmation_json(c) for c in confirmations],
        "trusted": True,
        "signatures": None,
        "treasury": {"proposalId": record.id, "title": record.title, "status": record.status, "verdict": verdict},
    }


def verdict_json(verdict: Any, checked_at: datetime) -> dict[str, Any]:
    """A treasury.policy.verdict.Verdict, and when it was computed (verdicts follow the guard's live state)."""
    return {
        "outcome": verdict.outcome, "allowed": verdict.allowed, "reason": verdict.reason, "error": verdict.error or None,
        "warnings": list(verdict.warnings), "notes": list(verdict.notes), "checkedAt": iso(checked_at),
    }


# --- pages -------------------------------------------------------------------------------------------


DEFAULT_LIMIT = 100  # the service's DefaultPagination
MAX_LIMIT = 1000  # the service stops at 200; one page of a thousand pending proposals is what a team reads here


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def page_of(query: Mapping[str, str]) -> Page:
    """limit/offset as DRF's LimitOffsetPagination reads them: bad values fall back, limit is capped."""
    return Page(min(_positive(query.get("limit"), DEFAULT_LIMIT, strict=True), MAX_LIMIT),
                _positive(query.get("offset"), 0, strict=False))


def _positive(text: str | None, default: int, *, strict: bool) -> int:
    if text is None or not text.isascii() or not text.strip().isdigit() or len(text) > MAX_INT_TEXT:
        return default
    value = int(text)
    return default if (strict and value == 0) else value


def _with_query(url: str, **changes: int | None) -> str:
    """`url` with query parameters set (None: removed), sorted as DRF's replace_query_param writes them."""
    parts = urlsplit(url)
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    for key, change in changes.items():
        if change is None:
            query.pop(key, None)
        else:
            query[key] = [str(change)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(sorted(query.items()), doseq=True), parts.fragment))


def page_json(url: str, page: Page, count: int, results: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """{"count", "next", "previous", "results"} with DRF's absolute next/previous links."""
    following: str | None = None
    if page.offset + page.limit < count:
        following = _with_query(url, limit=page.limit, offset=page.offset + page.limit)
    previous: str | None = None
    if page.offset > 0:
        back = page.offset - page.limit
        previous = _with_query(url, limit=page.limit, offset=None if back <= 0 else back)
    return {"count": count, "next": following, "previous": previous, "results": results, **extra}


def encode_page(page: dict[str, Any], rows: Sequence[bytes]) -> bytes:
    """`page` (from page_json) as compact JSON with `results` spliced in from already encoded rows."""
    parts = []
    for key, value in page.items():
        encoded = b"[" + b",".join(rows) + b"]" if key == "results" else json.dumps(value).encode()
        parts.append(json.dumps(key).encode() + b":" + encoded)
    return b"{" + b",".join(parts) + b"}"
