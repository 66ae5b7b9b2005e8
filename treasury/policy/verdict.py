"""A verdict: what the guard does (or would do) with a Safe transaction right now.

Both judges produce one: the policy engine off chain (treasury.policy.engine) and the guard itself
through an eth_call (treasury.chain.guard.predict_verdict), so the type lives here, below both.
"""

from __future__ import annotations

from dataclasses import dataclass

from treasury.types import VerdictOutcome

# Guard errors that mean "wait in the delay queue" rather than "never".
DELAY_ERRORS = frozenset({"NotScheduled", "NotYetDue", "EntryExpired"})


@dataclass(frozen=True)
class Verdict:
    """What the guard would do with a transaction right now."""

    outcome: VerdictOutcome
    reason: str = ""
    error: str = ""  # the guard's custom error name, if it refused
    warnings: tuple[str, ...] = ()  # what the guard cannot hold (e.g. an enabled module bypasses it)
    notes: tuple[str, ...] = ()  # rules worth stating on this transaction (approvals charged in full, a tier)
    # The guard's error with its raw fields ("ExceedsBudget(token=0x…, total=…, left=…)"), for tools and for
    # comparing with what the guard itself reverts with; `reason` is for people (token units, names).
    detail: str = ""

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"

    @classmethod
    def refused(cls, error: str, reason: str, *, warnings: tuple[str, ...] = (), notes: tuple[str, ...] = (),
                detail: str = "") -> Verdict:
        """The verdict for a guard error: needs-delay for the queue's errors, deny for the rest."""
        return cls("needs-delay" if error in DELAY_ERRORS else "deny", reason, error, warnings, notes, detail)
