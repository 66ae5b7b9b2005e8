"""The store's records as JSON, one way for the server's extension and the remote client alike.

The server writes records with the `*_json` functions; the client reads them back with the `*_of`
functions into the very dataclasses the local store returns, so the facades (`Treasury`,
`TreasuryRecords`) cannot tell a remote store from a local one. uint256 values travel as decimal
strings and bytes as 0x-hex (exact in any JSON reader); keys are camelCase as in Safe's API.

What comes back from a server is input like any other: every field is type-checked here and a
malformed document is one `InvalidInput` line. Nothing read here is trusted beyond its shape: the
facades re-hash each proposal and re-verify each signature they use.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, cast

from treasury.errors import InvalidInput
from treasury.store import AuditEntry, AuditReport, ProposalRecord, ScheduleEntryRecord, SignatureRecord


def _hex(raw: bytes) -> str:
    return "0x" + bytes(raw).hex()


def proposal_json(record: ProposalRecord) -> dict[str, Any]:
    return {
        "id": record.id, "chainId": record.chain_id, "safe": record.safe, "nonce": str(record.nonce), "to": record.to,
        "value": str(record.value), "data": _hex(record.data), "operation": record.operation,
        "safeTxGas": str(record.safe_tx_gas), "baseGas": str(record.base_gas), "gasPrice": str(record.gas_price),
        "gasToken": record.gas_token, "refundReceiver": record.refund_receiver, "safeTxHash": record.safe_tx_hash,
        "title": record.title, "description": record.description, "proposer": record.proposer, "status": record.status,
        "createdAt": record.created_at.isoformat(), "contentHash": record.content_hash,
    }


def signature_json(record: SignatureRecord) -> dict[str, Any]:
    return {
        "proposalId": record.proposal_id, "owner": record.owner, "kind": record.kind, "signature": _hex(record.signature),
        "createdAt": record.created_at.isoformat(), "purpose": record.purpose, "signedHash": record.signed_hash,
        "intentNonce": record.intent_nonce, "entryId": record.entry_id,
        "verifiedBy": getattr(record, "verified_by", "chain"),
    }


def schedule_entry_json(record: ScheduleEntryRecord) -> dict[str, Any]:
    return {
        "id": record.id, "proposalId": record.proposal_id, "guard": record.guard, "entryId": record.entry_id,
        "eta": record.eta, "expiry": record.expiry, "status": record.status, "txHash": record.tx_hash,
        "createdAt": record.created_at.isoformat(),
    }


def audit_entry_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq, "at": entry.at.isoformat(), "actor": entry.actor, "action": entry.action,
        "proposalId": entry.proposal_id, "payload": entry.payload, "prevHash": entry.prev_hash, "entryHash": entry.entry_hash,
    }


def audit_report_json(report: AuditReport) -> dict[str, Any]:
    return {"ok": report.ok, "entries": report.entries, "firstBadSeq": report.first_bad_seq, "problem": report.problem}


def proposal_detail_json(record: ProposalRecord, signatures: list[SignatureRecord],
                         entries: list[ScheduleEntryRecord]) -> dict[str, Any]:
    """A proposal with every signature (all purposes) and its schedule entries: what the client's
    facades read in one request."""
    return {**proposal_json(record), "signatures": [signature_json(s) for s in signatures],
            "scheduleEntries": [schedule_entry_json(e) for e in entries]}


# --- reading ---------------------------------------------------------------------------------------


class _Reader:
    """Typed field access on one JSON object, naming the document in every complaint."""

    def __init__(self, data: Any, what: str) -> None:
        if not isinstance(data, dict):
            raise InvalidInput(f"{what}: expected a JSON object, got {type(data).__name__}")
        self.data, self.what = data, what

    def _get(self, key: str) -> Any:
        if key not in self.data:
            raise InvalidInput(f"{self.what}: missing {key!r}")
        return self.data[key]

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise InvalidInput(f"{self.what}: {key!r} must be a string")
        return value

    def integer(self, key: str) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise InvalidInput(f"{self.what}: {key!r} must be an integer")
        try:
            number = int(value)
        except ValueError:
            raise InvalidInput(f"{self.what}: {key!r} must be an integer, got {value!r:.40}") from None
        if number < 0:
            raise InvalidInput(f"{self.what}: {key!r} must not be negative")
        return number

    def optional_integer(self, key: str) -> int | None:
        return None if self.data.get(key) is None else self.integer(key)

    def raw(self, key: str) -> bytes:
        text = self.text(key)
        body = text[2:] if text.startswith(("0x", "0X")) else text
        try:
            return bytes.fromhex(body)
        except ValueError:
            raise InvalidInput(f"{self.what}: {key!r} is not hex") from None

    def when(self, key: str) -> datetime:
        try:
            return datetime.fromisoformat(self.text(key))
        except ValueError:
            raise InvalidInput(f"{self.what}: {key!r} is not an ISO timestamp") from None

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.text(key)
        if value not in allowed:
            raise InvalidInput(f"{self.what}: {key!r} is {value!r:.40}, not one of {', '.join(allowed)}")
        return value


def proposal_of(data: Any, what: str = "proposal") -> ProposalRecord:
    from treasury.store import PROPOSAL_STATUSES

    r = _Reader(data, what)
    operation = r.integer("operation")
    if operation not in (0, 1):
        raise InvalidInput(f"{what}: operation {operation} is neither 0 nor 1")
    return ProposalRecord(
        id=r.text("id"), chain_id=r.integer("chainId"), safe=r.text("safe"), nonce=r.integer("nonce"), to=r.text("to"),
        value=r.integer("value"), data=r.raw("data"), operation=cast(Any, operation), safe_tx_gas=r.integer("safeTxGas"),
        base_gas=r.integer("baseGas"), gas_price=r.integer("gasPrice"), gas_token=r.text("gasToken"),
        refund_receiver=r.text("refundReceiver"), safe_tx_hash=r.text("safeTxHash").lower(), title=r.text("title"),
        description=r.text("description"), proposer=r.text("proposer"),
        status=cast(Any, r.choice("status", PROPOSAL_STATUSES)), created_at=r.when("createdAt"),
        content_hash=r.text("contentHash"),
    )


_SIGNATURE_FIELDS = {f.name for f in dataclasses.fields(SignatureRecord)}


def signature_of(data: Any, what: str = "signature") -> SignatureRecord:
    from treasury.store import SIGNATURE_KINDS, SIGNATURE_PURPOSES

    r = _Reader(data, what)
    fields: dict[str, Any] = dict(
        proposal_id=r.text("proposalId"), owner=r.text("owner"), kind=r.choice("kind", SIGNATURE_KINDS),
        signature=r.raw("signature"), created_at=r.when("createdAt"), purpose=r.choice("purpose", SIGNATURE_PURPOSES),
        signed_hash=r.text("signedHash").lower(), intent_nonce=r.optional_integer("intentNonce"),
        entry_id=r.optional_integer("entryId"),
    )
    if "verified_by" in _SIGNATURE_FIELDS and isinstance(r.data.get("verifiedBy"), str):
        fields["verified_by"] = r.data["verifiedBy"]
    return SignatureRecord(**fields)


def schedule_entry_of(data: Any, what: str = "schedule entry") -> ScheduleEntryRecord:
    from treasury.store import SCHEDULE_STATUSES

    r = _Reader(data, what)
    tx_hash = r.data.get("txHash")
    return ScheduleEntryRecord(
        id=r.integer("id"), proposal_id=r.text("proposalId"), guard=r.text("guard"), entry_id=r.integer("entryId"),
        eta=r.integer("eta"), expiry=r.integer("expiry"), status=cast(Any, r.choice("status", SCHEDULE_STATUSES)),
        tx_hash=tx_hash if isinstance(tx_hash, str) else None, created_at=r.when("createdAt"),
    )


def audit_entry_of(data: Any, what: str = "audit entry") -> AuditEntry:
    r = _Reader(data, what)
    payload = r.data.get("payload")
    if not isinstance(payload, dict):
        raise InvalidInput(f"{what}: 'payload' must be an object")
    proposal_id = r.data.get("proposalId")
    return AuditEntry(
        seq=r.integer("seq"), at=r.when("at"), actor=r.text("actor"), action=r.text("action"),
        proposal_id=proposal_id if isinstance(proposal_id, str) else None, payload=payload,
        prev_hash=r.text("prevHash"), entry_hash=r.text("entryHash"),
    )


def audit_report_of(data: Any, what: str = "audit report") -> AuditReport:
    r = _Reader(data, what)
    ok = r.data.get("ok")
    if not isinstance(ok, bool):
        raise InvalidInput(f"{what}: 'ok' must be true or false")
    problem = r.data.get("problem")
    return AuditReport(ok=ok, entries=r.integer("entries"), first_bad_seq=r.optional_integer("firstBadSeq"),
                       problem=problem if isinstance(problem, str) else None)


def items_of(data: Any, what: str) -> list[Any]:
    """The items of a JSON list, or of a page (`{"results": [...]}`) as the server pages them."""
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        return list(data["results"])
    if isinstance(data, list):
        return data
    raise InvalidInput(f"{what}: expected a list")
