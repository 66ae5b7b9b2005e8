"""One write transaction of the store: its session, the locked audit head, its timestamp.

Every mutating method of the Store runs as one of these and ends with one `audit(...)` per change
(a migration or a message posted with its first signature writes several), so a change and its
audit entry land in the same database transaction: both or neither.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from treasury.store.integrity import audit_hash, canonical
from treasury.store.schema import AuditHeadRow, AuditRow
from treasury.store.validation import now


@dataclass
class WriteTx:
    """A write transaction after its first act, locking the audit head (see Store._write)."""

    session: Session
    head: AuditHeadRow
    now: str = field(default_factory=lambda: now())

    def audit(self, actor: str, action: str, proposal_id: str | None, payload: Mapping[str, Any]) -> None:
        """Append the audit entry for this transaction's change, after the current head."""
        body = json.loads(canonical(dict(payload)))  # exactly what will be read back
        seq = self.head.seq + 1
        entry_hash = audit_hash(seq, self.now, actor, action, proposal_id, body, self.head.entry_hash)
        self.session.add(
            AuditRow(
                seq=seq,
                at=self.now,
                actor=actor,
                action=action,
                proposal_id=proposal_id,
                payload=canonical(body),
                prev_hash=self.head.entry_hash,
                entry_hash=entry_hash,
            )
        )
        self.head.seq = seq
        self.head.entry_hash = entry_hash
        self.session.flush()
