"""`treasury sync`: our proposals to a Safe Transaction Service, and its transactions into our store.

Push (`--to`): every open proposal of the treasury with at least one SafeTx signature is proposed
with one owner's signature as the sender (Safe's rule), then the other signatures are added as
confirmations. A proposal or a signature the service already holds is left as it is, so pushing
twice changes nothing. A proposal nobody has signed yet cannot be proposed there and is reported.

Pull (`--from`): every pending transaction of the treasury's Safe is taken as untrusted input: its
safeTxHash is recomputed from its fields (our chain id, the Safe's version) and must equal the one
stated, and every confirmation must verify against the Safe's owners on chain now. A transaction
whose hash does not match is skipped whole; a confirmation that does not verify is skipped alone;
a transaction no current owner's confirmation verifies for is skipped whole (anyone can hash a
transaction: only an owner's signature makes it a proposal worth showing); each skip is one line
in the report and counted. A transaction is verified in full before anything of it is stored, and
a new one is stored with its verified signatures in one transaction. Its proposer is recorded as
the verified signer (`sync:<owner>`), never the service's claim; its title is the service's text,
and its description and audit actor say which service it came from. At most `PULL_LIMIT`
transactions are read per run (a service could list without end); the report says when it stopped.

The service's key (Safe's hosted service) is read from $SAFE_TRANSACTION_SERVICE_API_KEY, as
safe-eth-py reads it, and sent as `Authorization: Bearer`; it is never printed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from treasury.addresses import ZERO_ADDRESS, parse_address
from treasury.errors import InvalidInput, TreasuryError
from treasury.remote.http import HttpClient, ServerError
from treasury.remote.safe_api import API_KEY_ENV, PageLimit, SafeServiceApi
from treasury.types import OPEN_STATUS_VALUES

if TYPE_CHECKING:
    from safe_eth.safe.safe_signature import SafeSignature
    from safe_eth.safe.safe_tx import SafeTx

    from treasury.store import ProposalRecord
    from treasury.treasury import Treasury

TITLE_LIMIT = 200
PULL_LIMIT = 1_000  # transactions read from a service per pull (ten pages of 100)


@dataclass
class SyncReport:
    """What a sync did; `skipped` holds one line per proposal, transaction or signature left out."""

    direction: str  # "to" or "from"
    url: str
    proposed: int = 0  # push: proposals the service did not have
    confirmed: int = 0  # push: signatures added there as confirmations
    pulled: int = 0  # pull: proposals new to our store
    signatures: int = 0  # pull: verified signatures new to our store
    unchanged: int = 0  # proposals both sides already had with these signatures
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # left out by design (e.g. not signed yet), not refused

    def as_dict(self) -> dict[str, Any]:
        return {"direction": self.direction, "url": self.url, "proposed": self.proposed, "confirmed": self.confirmed,
                "pulled": self.pulled, "signatures": self.signatures, "unchanged": self.unchanged,
                "skipped": len(self.skipped), "skipped_lines": list(self.skipped), "notes": list(self.notes)}


def service(url: str, token: str | None = None, *, http: HttpClient | None = None) -> SafeServiceApi:
    """The service at `url` (e.g. https://safe-transaction-mainnet.safe.global, or a `treasury
    serve`); the bearer key from $SAFE_TRANSACTION_SERVICE_API_KEY unless `token` is given."""
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(f"service URL {url!r} must start with http:// or https://")
    return SafeServiceApi(http or HttpClient(url, token or os.environ.get(API_KEY_ENV) or None, label="service"))


# --- push ------------------------------------------------------------------------------------------


def push(treasury: Treasury, api: SafeServiceApi) -> SyncReport:
    """Propose our open proposals (with their SafeTx signatures) to the service."""
    report = SyncReport("to", api.url)
    for record in treasury.proposals():
        if record.status not in OPEN_STATUS_VALUES:
            continue
        try:
            _push_one(treasury, api, record, report)
        except (ServerError, TreasuryError) as error:
            report.skipped.append(f"proposal {record.id} (nonce {record.nonce}): {error}")
    return report


def _push_one(treasury: Treasury, api: SafeServiceApi, record: ProposalRecord, report: SyncReport) -> None:
    treasury.safe_tx(record)  # our own row re-hashed first: a tampered one is not spread further
    signatures = treasury.store.signatures(record.id)
    if not signatures:
        report.notes.append(f"proposal {record.id} (nonce {record.nonce}): no signature yet; the service takes a "
                              "proposal only with its proposer's (run `treasury sign` first)")
        return
    remote = api.transaction(record.safe_tx_hash)
    if remote is None:
        first = signatures[0]
        api.propose(record, first.owner, bytes(first.signature))
        report.proposed += 1
        have = {first.owner.lower()}
    else:
        have = {str(c.get("owner", "")).lower() for c in remote.get("confirmations") or [] if isinstance(c, dict)}
    added = 0
    for signature in signatures:
        if signature.owner.lower() not in have:
            api.confirm(record.safe_tx_hash, bytes(signature.signature))
            added += 1
    report.confirmed += added
    if remote is not None and not added:
        report.unchanged += 1


# --- pull ------------------------------------------------------------------------------------------


def pull(treasury: Treasury, api: SafeServiceApi, *, limit: int = PULL_LIMIT) -> SyncReport:
    """Take the service's pending transactions of our Safe into our store, verified, never trusted;
    at most `limit` of them are read."""
    report = SyncReport("from", api.url)
    chain_nonce = treasury.onchain_nonce()
    owners = treasury.owners()
    try:
        for index, item in enumerate(api.transactions(treasury.safe)):
            if index >= limit:
                report.notes.append(f"stopped after {limit} transactions: the service lists more than one pull reads; "
                                    "the rest were not read")
                break
            where = f"transaction #{index + 1} ({str(item.get('safeTxHash', '?'))[:66]})"
            try:
                _pull_one(treasury, api, item, chain_nonce, owners, report, where)
            except TreasuryError as error:
                report.skipped.append(f"{where}: {error}")
    except PageLimit as error:
        report.notes.append(f"{error}; the rest were not read")
    return report


def _pull_one(treasury: Treasury, api: SafeServiceApi, item: dict[str, Any], chain_nonce: int, owners: list[str],
              report: SyncReport, where: str) -> None:
    from treasury.signatures.verification import kind_of
    from treasury.store import new_signature

    if item.get("isExecuted"):
        return  # history: the chain says what happened, reconciling records it
    safe_tx, fields = _recomputed(treasury, item)
    if fields["nonce"] < chain_nonce:
        return  # its nonce is spent: it can never execute
    verified: dict[str, SafeSignature] = {}
    for position, confirmation in enumerate(item.get("confirmations") or []):
        try:
            signature = _verified_confirmation(confirmation, safe_tx, owners)
        except TreasuryError as error:
            report.skipped.append(f"{where}: confirmation #{position + 1}: {error}")
            continue
        verified.setdefault(signature.owner, signature)
    if not verified:
        raise InvalidInput("no confirmation verifies against the Safe's current owners: not taken in")
    store = treasury.store
    record = store.find_by_safe_tx_hash(treasury.chain_id, treasury.safe, fields["safe_tx_hash"])
    origin = _origin(api.url)
    actor = f"{treasury.actor} (sync from {origin})"[:200]
    signatures = [new_signature(owner, kind_of(sig), bytes(sig.export_signature())) for owner, sig in verified.items()]
    if record is None:
        claimed = str(item.get("proposer") or "").lower()
        signer = next((owner for owner in verified if owner.lower() == claimed), next(iter(verified)))
        store.add_proposal(**fields, proposer=f"sync:{signer}", description=f"synced from {origin} (title as it gave it)"[:200],
                           actor=actor, signatures=signatures)
        report.pulled += 1
        report.signatures += len(signatures)
        return
    if record.status not in OPEN_STATUS_VALUES:
        return
    have = {s.owner for s in store.signatures(record.id) if s.verified_by == "chain"}  # a bundle's row is replaced
    added = 0
    for new in signatures:
        if new.owner not in have:
            store.add_signature(record.id, new.owner, new.kind, new.raw, actor=actor)
            added += 1
    report.signatures += added
    if not added:
        report.unchanged += 1


def _recomputed(treasury: Treasury, item: dict[str, Any]) -> tuple[SafeTx, dict[str, Any]]:
    """The transaction's SafeTx hashed here, and the store fields; InvalidInput unless its stated
    safeTxHash is the one its fields hash to on our chain for our Safe."""
    from treasury.proposal.safe_tx import build_safe_tx

    try:
        safe = parse_address(item.get("safe"), "safe")
        to = parse_address(item.get("to"), "to")
        gas_token = parse_address(item.get("gasToken") or ZERO_ADDRESS, "gasToken")
        refund = parse_address(item.get("refundReceiver") or ZERO_ADDRESS, "refundReceiver")
        numbers = {key: _uint(item.get(key), key) for key in ("value", "nonce", "safeTxGas", "baseGas", "gasPrice")}
        data = _bytes(item.get("data"))
        operation = _uint(item.get("operation"), "operation")
        stated = str(item.get("safeTxHash") or "").lower()
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"malformed transaction: {error}") from None
    if safe != treasury.safe:
        raise InvalidInput(f"it is a transaction of Safe {safe}, not of {treasury.safe}")
    if operation not in (0, 1):
        raise InvalidInput(f"operation {operation} is neither CALL nor DELEGATECALL")
    safe_tx = build_safe_tx(safe, to, numbers["value"], data, operation, nonce=numbers["nonce"], chain_id=treasury.chain_id,
                            version=treasury.version, safe_tx_gas=numbers["safeTxGas"], base_gas=numbers["baseGas"],
                            gas_price=numbers["gasPrice"], gas_token=gas_token, refund_receiver=refund)
    computed = safe_tx.safe_tx_hash.to_0x_hex()
    if stated != computed:
        raise InvalidInput(f"its fields hash to {computed} on chain {treasury.chain_id}, not to the stated safeTxHash "
                           f"{stated[:66] or '(none)'}: skipped")
    fields = {
        "chain_id": treasury.chain_id, "safe": safe, "nonce": numbers["nonce"], "to": to, "value": numbers["value"],
        "data": data, "operation": operation, "safe_tx_gas": numbers["safeTxGas"], "base_gas": numbers["baseGas"],
        "gas_price": numbers["gasPrice"], "gas_token": gas_token, "refund_receiver": refund, "safe_tx_hash": computed,
        "title": _title(item),
    }
    return safe_tx, fields


def _verified_confirmation(confirmation: Any, safe_tx: SafeTx, owners: list[str]) -> SafeSignature:
    """One confirmation's signature re-read over our hash and verified against the owners now."""
    from treasury.signatures.verification import InvalidSignature, parse_signature, verify

    if not isinstance(confirmation, dict):
        raise InvalidInput("not a JSON object")
    claimed = confirmation.get("owner")
    raw = confirmation.get("signature")
    if raw is None and confirmation.get("signatureType") == "APPROVED_HASH" and isinstance(claimed, str):
        owner = parse_address(claimed, "owner")  # an on-chain approval: its proof is the chain's
        raw = "0x" + bytes(12).hex() + owner[2:].lower() + bytes(32).hex() + "01"
    if not isinstance(raw, str):
        raise InvalidInput("no signature")
    signature = parse_signature(raw if raw.startswith("0x") else "0x" + raw, safe_tx)
    verify(signature, safe_tx, owners)
    if isinstance(claimed, str) and claimed.lower() != signature.owner.lower():
        raise InvalidSignature(f"said to be by {claimed[:42]} but made by owner {signature.owner}")
    return signature


def _uint(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{what} must be an integer")
    number = int(value)
    if number < 0 or number >= 2**256:
        raise ValueError(f"{what} is out of range")
    return number


def _bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise ValueError("data must be hex text")
    return bytes.fromhex(value[2:] if value.startswith(("0x", "0X")) else value)


def _title(item: dict[str, Any]) -> str:
    """A title from the service's `origin` (a JSON app descriptor, or plain text), printable and short."""
    origin = item.get("origin")
    text = ""
    if isinstance(origin, str):
        try:
            parsed = json.loads(origin)
        except ValueError:
            parsed = origin
        if isinstance(parsed, dict):
            text = str(parsed.get("name") or parsed.get("url") or "")
        elif isinstance(parsed, str):
            text = parsed
    text = "".join(c for c in text if c.isprintable()).strip()
    return (text or "pulled from a Safe Transaction Service")[:TITLE_LIMIT]


def _origin(url: str) -> str:
    """scheme://host[:port] of a service URL: what its records say they came from (never a
    user:password part or a query a URL may carry)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
