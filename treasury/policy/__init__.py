"""Policy: the treasury's rules as data, and the off-chain verdict that mirrors TreasuryGuard.

`model` is the Policy (allowlists with argument rules, caps with NFT kinds and signature tiers,
the delay queue with its cancel threshold and guardians) that both configures the guard and feeds
the engine; `engine` answers allow / needs-delay / deny before anyone signs, in the guard's order and
with the guard's error names; `verdict` is the answer's type, shared with the guard's own
prediction (treasury.chain.guard.predict_verdict).
The names below are importable from here and load their module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from treasury._lazy import lazy_exports

_EXPORTS = {
    "treasury.policy.model": ("NATIVE", "AllowedCall", "ArgumentRule", "Policy", "TokenCap"),
    "treasury.policy.verdict": ("DELAY_ERRORS", "Verdict"),
    "treasury.policy.engine": (
        "GuardState", "PolicyViolation", "charges", "evaluate", "intent_id", "policy_drift", "read_guard_state",
    ),
}
__all__ = [
    "DELAY_ERRORS", "NATIVE", "AllowedCall", "ArgumentRule", "GuardState", "Policy", "PolicyViolation", "TokenCap", "Verdict", "charges",
    "evaluate", "intent_id", "policy_drift", "read_guard_state",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from treasury.policy.engine import (
        GuardState,
        PolicyViolation,
        charges,
        evaluate,
        intent_id,
        policy_drift,
        read_guard_state,
    )
    from treasury.policy.model import NATIVE, AllowedCall, ArgumentRule, Policy, TokenCap
    from treasury.policy.verdict import DELAY_ERRORS, Verdict
