"""The standard Safe Transaction Service endpoints this project writes and reads as a client.

Used against `treasury serve` (RemoteStore) and against Safe's hosted service (`treasury sync`):
the same paths and JSON as safe-eth-py's TransactionServiceApi and Safe's api-kit (propose with v2,
confirm with v1, list and detail with v2). Nothing received here is trusted: `treasury.remote.sync`
re-hashes every transaction and verifies every confirmation before storing anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from treasury.remote.http import HttpClient, NotFound, ServerError
from treasury.store import ProposalRecord

API_KEY_ENV = "SAFE_TRANSACTION_SERVICE_API_KEY"  # safe-eth-py's name for Safe's hosted service key
MAX_PAGES = 11  # pages followed per listing: a pull reads 1,000 transactions (ten pages of 100) and no more


class PageLimit(ServerError):
    """The service had more pages after MAX_PAGES (or kept answering empty ones with a `next`)."""


def proposal_body(record: ProposalRecord, sender: str, signature: bytes, origin: str | None = None) -> dict[str, Any]:
    """A propose request (v2) for a stored proposal, carrying the sender's signature of its safeTxHash."""
    return {
        "to": record.to, "value": str(record.value), "data": "0x" + bytes(record.data).hex() if record.data else None,
        "operation": record.operation, "safeTxGas": str(record.safe_tx_gas), "baseGas": str(record.base_gas),
        "gasPrice": str(record.gas_price), "gasToken": record.gas_token, "refundReceiver": record.refund_receiver,
        "nonce": str(record.nonce), "contractTransactionHash": record.safe_tx_hash, "sender": sender,
        "signature": "0x" + bytes(signature).hex(), "origin": origin if origin is not None else record.title,
    }


class SafeServiceApi:
    """Safe's transaction endpoints on one service (ours or Safe's)."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    @property
    def url(self) -> str:
        return self.http.url

    def propose(self, record: ProposalRecord, sender: str, signature: bytes, origin: str | None = None) -> None:
        """POST the proposal; a resend of one the service already holds is fine (the service
        checks the same hash and signature again and keeps one)."""
        self.http.post(f"/api/v2/safes/{record.safe}/multisig-transactions/", proposal_body(record, sender, signature, origin),
                       idempotent=True)

    def confirm(self, safe_tx_hash: str, signature: bytes) -> None:
        """POST one owner's signature; the service stores a repeat once, so it is retried safely."""
        self.http.post(f"/api/v1/multisig-transactions/{safe_tx_hash}/confirmations/",
                       {"signature": "0x" + bytes(signature).hex()}, idempotent=True)

    def transaction(self, safe_tx_hash: str) -> dict[str, Any] | None:
        """The service's transaction with this hash, or None if it has none."""
        try:
            found = self.http.get(f"/api/v2/multisig-transactions/{safe_tx_hash}/")
        except NotFound:
            return None
        return found if isinstance(found, dict) else None

    def transactions(self, safe: str, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every transaction of `safe` on up to MAX_PAGES pages (following `next` on the same server);
        PageLimit if the service lists more."""
        page = self.http.get(f"/api/v2/safes/{safe}/multisig-transactions/", params={"limit": 100, **filters})
        for number in range(1, MAX_PAGES + 1):
            if not isinstance(page, dict):
                return
            for item in page.get("results") or []:
                if isinstance(item, dict):
                    yield item
            following = page.get("next")
            if not isinstance(following, str) or not following:
                return
            if number == MAX_PAGES:
                raise PageLimit(f"{self.url} lists more than {MAX_PAGES} pages of transactions: stopped there")
            page = self.http.get_url(following)
