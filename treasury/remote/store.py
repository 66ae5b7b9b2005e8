"""`RemoteStore`: the part of `treasury.store.Store` the facades use, served by a `treasury serve`.

`Treasury` and `TreasuryRecords` call a handful of Store methods to propose, sign (SafeTx, schedule
and cancel signatures), list, show, export and read the log. This class answers exactly those over
HTTP, so a signer's laptop needs its keys, a node and the server's URL, and no store of its own:

- reads go to the treasury extension (`/api/treasury/v1/`), which returns the store's records
  whole (treasury.remote.wire), so the facades check them as they check local rows (every proposal
  re-hashed, every signature recovered);
- a SafeTx signature is a confirmation on Safe's standard endpoint; a schedule or cancel signature
  goes to the extension, which verifies it against the Safe's current owners before storing it;
- a proposal goes to Safe's standard propose endpoint with its proposer's signature
  (`add_signed_proposal`): the service takes no unsigned proposal, so `add_proposal` refuses.

Writes the facades make only while executing (broadcasts, executions, statuses) are not here:
`execute`, `schedule` and `cancel` run where the store is. Nothing is cached: every call reads the
server's state at that moment, as a local store would.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from treasury.errors import InvalidInput
from treasury.remote import wire
from treasury.remote.http import HttpClient, NotFound, ServerError
from treasury.remote.safe_api import SafeServiceApi
from treasury.store import (
    AuditEntry,
    AuditReport,
    ProposalRecord,
    ScheduleEntryRecord,
    SignatureRecord,
    UnknownProposal,
)

EXTENSION = "/api/treasury/v1"
PAGE_LIMIT = 1000  # the most items the server sends in one page of its extension listings
TOKEN_ENV = "TREASURY_SERVER_TOKEN"
SERVER_ENV = "TREASURY_SERVER"
_PURPOSE_ORDER = {"safe_tx": 0, "schedule": 1, "cancel": 2}


def read_token(token_file: Path | str | None = None) -> str | None:
    """The read token: from `token_file` (its first line), else $TREASURY_SERVER_TOKEN, else none."""
    if token_file is not None:
        from treasury.files import read_text

        lines = read_text(Path(token_file), "token file").strip().splitlines()
        if not lines or not lines[0].strip():
            raise InvalidInput(f"token file {token_file} is empty")
        return lines[0].strip()
    return os.environ.get(TOKEN_ENV) or None


class RemoteStore:
    """The Store methods of the propose/sign/list/show/export/log paths, against a server."""

    is_remote = True

    def __init__(self, url: str, token: str | None = None, *, http: HttpClient | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidInput(f"server URL {url!r} must start with http:// or https://")
        self.http = http or HttpClient(url, token)
        self.api = SafeServiceApi(self.http)

    @property
    def url(self) -> str:
        return self.http.url

    def __repr__(self) -> str:
        return f"<RemoteStore {self.url}>"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RemoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- proposals ------------------------------------------------------------------------------

    def add_proposal(self, **fields: Any) -> ProposalRecord:
        raise InvalidInput(f"server {self.url} takes a proposal only with its proposer's signature: "
                           "propose with an account (--account ALIAS)")

    def add_signed_proposal(self, *, sender: str, signature: bytes, **fields: Any) -> ProposalRecord:
        """Propose on Safe's endpoint with the sender's signature of the safeTxHash (the title goes as
        `origin`); returns the server's record of it, read back by its hash."""
        draft = _draft(fields)
        self.api.propose(draft, sender, signature)
        found = self.find_by_safe_tx_hash(draft.chain_id, draft.safe, draft.safe_tx_hash)
        if found is None:
            raise ServerError(f"server {self.url} accepted proposal {draft.safe_tx_hash} but does not list it")
        return found

    def _detail(self, proposal_id: str) -> dict[str, Any]:
        try:
            detail = self.http.get(f"{EXTENSION}/proposals/{proposal_id}/")
        except NotFound:
            raise UnknownProposal(f"no proposal {proposal_id} on server {self.url}") from None
        if not isinstance(detail, dict):
            raise InvalidInput(f"server {self.url}: proposal {proposal_id}: expected a JSON object")
        return detail

    def get_proposal(self, proposal_id: str) -> ProposalRecord:
        record = wire.proposal_of(self._detail(proposal_id), f"server {self.url}: proposal {proposal_id}")
        if record.id != proposal_id:
            raise InvalidInput(f"server {self.url} answered proposal {record.id} when asked for {proposal_id}")
        return record

    def list_proposals(self, safe: str | None = None, chain_id: int | None = None, status: str | None = None,
                       limit: int | None = None, *, safe_tx_hash: str | None = None) -> list[ProposalRecord]:
        if safe is None:
            raise InvalidInput(f"server {self.url}: proposals are listed per Safe")
        params: dict[str, Any] = {k: v for k, v in (("status", status), ("safeTxHash", safe_tx_hash)) if v is not None}
        what = f"server {self.url}: proposals of {safe}"
        items = self._paged(f"{EXTENSION}/safes/{safe}/proposals/", params, limit, what, newest_first=False)
        records = [wire.proposal_of(item, what) for item in items]
        return [r for r in records if (chain_id is None or r.chain_id == chain_id) and r.safe == safe]

    def find_by_safe_tx_hash(self, chain_id: int, safe: str, safe_tx_hash: str | bytes) -> ProposalRecord | None:
        digest = safe_tx_hash if isinstance(safe_tx_hash, str) else "0x" + bytes(safe_tx_hash).hex()
        found = [r for r in self.list_proposals(safe, chain_id, safe_tx_hash=digest.lower())
                 if r.safe_tx_hash == digest.lower()]
        return found[0] if found else None

    # --- signatures -----------------------------------------------------------------------------

    def signatures(self, proposal_id: str, purpose: str | None = "safe_tx",
                   signed_hash: str | bytes | None = None) -> list[SignatureRecord]:
        """As Store.signatures: by purpose (None: all), optionally over one hash, sorted by owner."""
        detail = self._detail(proposal_id)
        what = f"server {self.url}: signature of proposal {proposal_id}"
        records = [wire.signature_of(item, what) for item in _list(detail, "signatures", what)]
        digest = None if signed_hash is None else (
            signed_hash.lower() if isinstance(signed_hash, str) else "0x" + bytes(signed_hash).hex())
        chosen = [r for r in records if r.proposal_id == proposal_id and (purpose is None or r.purpose == purpose)
                  and (digest is None or r.signed_hash == digest)]
        return sorted(chosen, key=lambda r: (_PURPOSE_ORDER.get(r.purpose, 9), int(r.owner, 16)))

    def add_signature(self, proposal_id: str, owner: str, kind: str, signature: bytes | str, actor: str = "", *,
                      purpose: str = "safe_tx", signed_hash: str | bytes | None = None, intent_nonce: int | None = None,
                      entry_id: int | None = None, **_: Any) -> SignatureRecord:
        """Send one signature; the server verifies it against the chain and stores it (once)."""
        raw = bytes.fromhex(signature.removeprefix("0x")) if isinstance(signature, str) \
            else bytes(signature)
        if purpose == "safe_tx":
            record = self.get_proposal(proposal_id)
            self.api.confirm(record.safe_tx_hash, raw)
        else:
            digest = signed_hash if isinstance(signed_hash, str) or signed_hash is None else "0x" + bytes(signed_hash).hex()
            body = {"purpose": purpose, "signedHash": digest, "signature": "0x" + raw.hex(), "owner": owner,
                    "intentNonce": intent_nonce, "entryId": entry_id}
            self.http.post(f"{EXTENSION}/proposals/{proposal_id}/guard-signatures/", body, idempotent=True)
        stored = [s for s in self.signatures(proposal_id, purpose, signed_hash) if s.owner == owner]
        if not stored:
            raise ServerError(f"server {self.url} accepted the {purpose} signature of {owner} but does not list it")
        return stored[0]

    # --- schedule entries and the audit log -----------------------------------------------------

    def schedule_entries(self, proposal_id: str) -> list[ScheduleEntryRecord]:
        detail = self._detail(proposal_id)
        what = f"server {self.url}: schedule entry of proposal {proposal_id}"
        return [wire.schedule_entry_of(item, what) for item in _list(detail, "scheduleEntries", what)]

    def audit_entries(self, proposal_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        params = {"proposalId": proposal_id} if proposal_id is not None else {}
        what = f"server {self.url}: audit entry"
        return [wire.audit_entry_of(item, what) for item in self._paged(f"{EXTENSION}/audit-log/", params, limit, what,
                                                                          newest_first=True)]

    def _paged(self, path: str, params: dict[str, Any], limit: int | None, what: str, *, newest_first: bool) -> list[Any]:
        """The first `limit` items (None: all) of a paged extension listing, page by page (the server
        caps a page at PAGE_LIMIT). `newest_first`: each page is older than the one before it (the
        audit log), so pages are put in front; the items come back in order either way."""
        items: list[Any] = []
        while limit is None or len(items) < limit:
            want = PAGE_LIMIT if limit is None else min(PAGE_LIMIT, limit - len(items))
            page = self.http.get(path, params={**params, "limit": want, "offset": len(items)})
            got = wire.items_of(page, what)
            items = got + items if newest_first else items + got
            if not got or not isinstance(page, dict) or page.get("next") is None:
                break
        return items

    def verify_audit_log(self) -> AuditReport:
        return wire.audit_report_of(self.http.get(f"{EXTENSION}/audit-log/verify/"), f"server {self.url}: audit report")

    def bundle(self, proposal_id: str) -> dict[str, Any]:
        """The server's bundle of a proposal (the facades build their own from the records)."""
        found = self.http.get(f"{EXTENSION}/proposals/{proposal_id}/bundle/")
        if not isinstance(found, dict):
            raise InvalidInput(f"server {self.url}: bundle of {proposal_id}: expected a JSON object")
        return found


def _list(detail: dict[str, Any], key: str, what: str) -> list[Any]:
    items = detail.get(key)
    if not isinstance(items, list):
        raise InvalidInput(f"{what}: {key!r} must be a list")
    return items


def _draft(fields: dict[str, Any]) -> ProposalRecord:
    """The proposal a facade would store, as a record (no id yet), for the propose request."""
    from datetime import UTC, datetime

    from treasury.addresses import ZERO_ADDRESS

    digest = fields["safe_tx_hash"]
    return ProposalRecord(
        id="", chain_id=fields["chain_id"], safe=fields["safe"], nonce=fields["nonce"], to=fields["to"],
        value=fields.get("value", 0), data=bytes(fields.get("data", b"")), operation=fields.get("operation", 0),
        safe_tx_gas=fields.get("safe_tx_gas", 0), base_gas=fields.get("base_gas", 0), gas_price=fields.get("gas_price", 0),
        gas_token=fields.get("gas_token", ZERO_ADDRESS), refund_receiver=fields.get("refund_receiver", ZERO_ADDRESS),
        safe_tx_hash=(digest if isinstance(digest, str) else "0x" + bytes(digest).hex()).lower(),
        title=fields.get("title", ""), description=fields.get("description", ""), proposer=fields.get("proposer", ""),
        status="pending", created_at=datetime.now(UTC), content_hash="",
    )
