"""Key ceremonies: recovery drills, the small-amount smoke test, the setup sheet and owner liveness.

`challenge` is the drill's EIP-712 message (pure data); `drill` issues drills, signs and verifies
owners' proofs of control and reports on them; `liveness` says which owners proved control lately
and what that leaves of the threshold. The names below load their module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from treasury._lazy import lazy_exports

_EXPORTS = {
    "treasury.ceremony.challenge": ("DrillChallenge",),
    "treasury.ceremony.drill": (
        "DrillProof", "DrillReport", "drill_report", "record_drill_proof", "sign_drill", "sign_drill_as_contract_owner",
        "start_drill", "verify_drill_proof",
    ),
}
__all__ = [
    "DrillChallenge", "DrillProof", "DrillReport", "drill_report", "record_drill_proof", "sign_drill",
    "sign_drill_as_contract_owner", "start_drill", "verify_drill_proof",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from treasury.ceremony.challenge import DrillChallenge
    from treasury.ceremony.drill import (
        DrillProof,
        DrillReport,
        drill_report,
        record_drill_proof,
        sign_drill,
        sign_drill_as_contract_owner,
        start_drill,
        verify_drill_proof,
    )
