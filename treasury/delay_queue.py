"""The guard's delay queue as people read it: each entry with its proposal and its waits in words.

What `treasury info` and the Safe page show. Kept apart from treasury.wording (plain words for
durations, times and amounts, which the policy engine uses) because matching an entry to its
proposal needs the engine's intent id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from treasury.wording import due, eta, expires, when

if TYPE_CHECKING:
    from treasury.store import ProposalRecord


@dataclass(frozen=True)
class QueueLine:
    """One guard queue entry with the proposal it belongs to (if this store scheduled it) and its
    times in words: what `treasury info` and the Safe page show."""

    entry_id: int
    intent_id: str
    status: str
    eta: int
    expiry: int
    proposal_id: str | None
    title: str
    wait: str  # a pending entry's "due in 1 d 23 h, at …" / "due now, since …"; else its eta's time
    until: str  # a pending entry's "expires in …, at …"; else its expiry's time

    def as_dict(self) -> dict[str, Any]:
        return {"entry_id": self.entry_id, "intent_id": self.intent_id, "eta": self.eta, "expiry": self.expiry,
                "status": self.status, "proposal_id": self.proposal_id, "title": self.title or None,
                "due": self.wait, "until": self.until}


def queue_lines(entries: Iterable[Any], now: int, proposals: Iterable[ProposalRecord], store: Any,
                guard: str | None = None) -> list[QueueLine]:
    """The guard's queue `entries` (treasury.chain.guard.ScheduledEntry) matched to `proposals`.

    An entry belongs to the proposal whose stored schedule record names its entry id (on this
    guard); an entry this store never scheduled (another tool's) is matched by its intent id,
    which is what the guard queues, else it has no proposal.
    """
    from treasury.policy.engine import intent_id

    entries = list(entries)
    records = list(proposals)
    by_entry: dict[int, ProposalRecord] = {}
    by_intent: dict[str, ProposalRecord] = {}
    for record in records:
        if record.status in ("scheduled", "executed", "cancelled", "pending", "failed"):
            for stored in store.schedule_entries(record.id):
                if guard is None or stored.guard.lower() == guard.lower():
                    by_entry[stored.entry_id] = record
    wanted = {e.intent_id.lower() for e in entries if e.entry_id not in by_entry}
    if wanted:
        for record in records:
            key = intent_id(record.to, record.value, bytes(record.data), record.operation)
            if key in wanted and (key not in by_intent or _rank(record) > _rank(by_intent[key])):
                by_intent[key] = record
    lines = []
    for e in entries:
        match = by_entry.get(e.entry_id) or by_intent.get(e.intent_id.lower())
        pending = e.status == "pending"
        lines.append(QueueLine(
            e.entry_id, e.intent_id, e.status, e.eta, e.expiry, match.id if match else None,
            match.title if match else "", due(now, e.eta) if pending else eta(e.eta),
            expires(now, e.expiry) if pending else when(e.expiry)))
    return lines


def _rank(record: ProposalRecord) -> tuple[bool, int]:
    """Which of the proposals of one intent an entry another tool queued belongs to: an open one
    (pending or scheduled: what can still run) before any other, then the newest (highest nonce),
    never merely the first listed (possibly an old executed one)."""
    return record.status in ("pending", "scheduled"), record.nonce
