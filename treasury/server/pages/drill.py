"""What the drill page shows: a key-ceremony drill, who has proved control, and the challenge to sign.

Plain data built from the store and the chain (no FastAPI, no HTML): the caller holds the chain lock.
The typed data handed to the wallet is the stored challenge, the one the server verifies proofs
against; the page also shows its domain and message hashes, as a hardware wallet shows them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_account.messages import encode_typed_data

from treasury import wording
from treasury.addresses import keccak
from treasury.ceremony.drill import current_proofs, proven_counts
from treasury.server.pages.views import address_names
from treasury.signatures.owners import code_at

if TYPE_CHECKING:
    from treasury.store.records import DrillRecord
    from treasury.treasury import Treasury


@dataclass(frozen=True)
class OwnerRow:
    address: str
    name: str  # what the treasury calls it ("" when unknown)
    contract: bool  # a contract owner proves through its own owners, not from a browser wallet
    device: bool  # the drill asks this owner to sign with a hardware device: `treasury drill sign`, not the page
    proven: bool
    via: str
    at: str


@dataclass(frozen=True)
class DrillPage:
    name: str
    safe: str
    chain_id: int
    id: str
    purpose: str
    status: str
    issued: str
    expires: str
    expired: bool
    can_sign: bool  # open and not expired
    owners: tuple[OwnerRow, ...]
    proven: int
    typed_data: dict[str, Any]
    digest: str
    domain_hash: str
    message_hash: str


def hashes(typed_data: dict[str, Any]) -> tuple[str, str, str]:
    """(digest, domain hash, message hash) of the typed data, after the JSON round trip the wallet sees."""
    signable = encode_typed_data(full_message=json.loads(json.dumps(typed_data)))
    domain, struct = bytes(signable.header), bytes(signable.body)
    return "0x" + keccak(b"\x19\x01" + domain + struct).hex(), "0x" + domain.hex(), "0x" + struct.hex()


def drill_page(treasury: Treasury, record: DrillRecord, now: int) -> DrillPage:
    """The drill as of `now` (the server's clock, unix s), with the owners the chain has now."""
    owners = tuple(treasury.owners())
    names = address_names(treasury, owners)
    proofs = current_proofs(treasury.store.owner_proofs(record.chain_id, record.safe, record.id), owners)
    rows = tuple(OwnerRow(address=o, name=names.get(o.lower(), ""), contract=bool(code_at(o)),
                          device=o in record.require_device, proven=o in proofs,
                          via=proofs[o].via if o in proofs else "", at=wording.when(proofs[o].proved_at) if o in proofs else "")
                 for o in owners)
    message = record.challenge["message"]
    digest, domain_hash, message_hash = hashes(record.challenge)
    expired = now > record.expires_at
    return DrillPage(
        name=treasury.name, safe=record.safe, chain_id=record.chain_id, id=record.id, purpose=str(message["purpose"]),
        status="expired" if expired and record.status == "open" else record.status,
        issued=wording.when(int(message["issuedAt"])), expires=wording.when(record.expires_at), expired=expired,
        can_sign=record.status == "open" and not expired, owners=rows, proven=sum(r.proven for r in rows),
        typed_data=record.challenge, digest=digest, domain_hash=domain_hash, message_hash=message_hash,
    )


@dataclass(frozen=True)
class DrillRow:
    id: str
    purpose: str
    status: str  # "open", "expired" or "closed"
    issued: str
    expires: str
    proven: int


@dataclass(frozen=True)
class DrillsPage:
    name: str
    safe: str
    chain_id: int
    owners: int
    rows: tuple[DrillRow, ...]


def drills_page(treasury: Treasury, now: int, limit: int = 200) -> DrillsPage:
    """The treasury's drills, newest first, with how many of today's owners proved control in each."""
    store = treasury.store
    owners = treasury.owners()
    proofs = proven_counts(store.owner_proofs(treasury.chain_id, treasury.safe), owners)  # current owners only
    rows = tuple(DrillRow(d.id, str(d.challenge["message"]["purpose"]),
                          "expired" if d.status == "open" and now > d.expires_at else d.status,
                          wording.when(int(d.challenge["message"]["issuedAt"])), wording.when(d.expires_at),
                          proofs.get(d.id, 0))
                 for d in store.drills(treasury.chain_id, treasury.safe)[:limit])
    return DrillsPage(treasury.name, treasury.safe, treasury.chain_id, len(owners), rows)
