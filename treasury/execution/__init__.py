"""Execution: rehearse, send and reconcile, the last stages of the data flow.

`rehearsal` runs a proposal on a throw-away copy of the chain (a fork or a snapshot) with the guard
active and reports what would happen; `send` simulates, signs and broadcasts execTransaction and
reads the Safe's outcome; `reconcile` brings the store up to date with what the chain says
happened (crashed broadcasts, executions made elsewhere, nonces spent).
The names below are importable from here and load their module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from treasury._lazy import lazy_exports

_EXPORTS = {
    "treasury.execution.send": (
        "ExecutionFailed", "ExecutionReverted", "SignedExecution", "Simulation", "broadcast", "execute_safe_tx",
        "execute_with_owners", "safe_outcome", "sign_execution", "simulate",
    ),
    "treasury.execution.reconcile": ("Ledger", "Reconciled"),
    "treasury.execution.rehearsal": ("BalanceChange", "Rehearsal", "RehearsalReport", "RehearsalUnavailable", "run_rehearsal"),
}
__all__ = [
    "BalanceChange", "ExecutionFailed", "ExecutionReverted", "Ledger", "Reconciled", "Rehearsal", "RehearsalReport",
    "RehearsalUnavailable", "SignedExecution", "Simulation", "broadcast", "execute_safe_tx", "execute_with_owners",
    "run_rehearsal", "safe_outcome", "sign_execution", "simulate",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from treasury.execution.reconcile import Ledger, Reconciled
    from treasury.execution.rehearsal import (
        BalanceChange,
        Rehearsal,
        RehearsalReport,
        RehearsalUnavailable,
        run_rehearsal,
    )
    from treasury.execution.send import (
        ExecutionFailed,
        ExecutionReverted,
        SignedExecution,
        Simulation,
        broadcast,
        execute_safe_tx,
        execute_with_owners,
        safe_outcome,
        sign_execution,
        simulate,
    )
