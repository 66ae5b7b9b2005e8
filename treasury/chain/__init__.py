"""Chain: everything that touches contracts and nodes, below the data-flow stages that use it.

`artifacts` reads the Safe team's published builds and canonical addresses; `infrastructure`
deploys them at those addresses; `safe` creates a Safe at a predicted address; `guard_abi` is
TreasuryGuard's shipped interface (no chain needed) and `guard` deploys, installs, reads and
queues through it; `rpc` hardens a live node connection; `toolchain` links the pinned npm tools;
`handler` is TreasuryFallbackHandler (deploy, address, what a Safe's handler signs);
`manifest` and `report` record and print deployments; `localnode` picks free local ports.
The names below are importable from here and load their module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from treasury._lazy import lazy_exports

_EXPORTS = {
    "treasury.chain.artifacts": ("DEFAULT_VERSION", "SUPPORTED_VERSIONS", "check_version", "safe_contract"),
    "treasury.chain.guard_abi": ("GUARD_ARTIFACT", "decode_guard_error", "guard_contract_type"),
    "treasury.chain.guard": (
        "GuardError", "ScheduledEntry", "budgets", "cancel_entry", "deploy_guard", "entries", "guard_at", "install_guard",
        "installed_guard", "predict_verdict", "schedule_intent",
    ),
    "treasury.chain.safe": ("CreatedSafe", "SafeSpec", "create_safe", "predict_safe_address", "safe_instance", "safe_spec"),
    "treasury.chain.infrastructure": ("ContractStatus", "deploy_handler", "deploy_infrastructure", "is_dev_chain"),
    "treasury.chain.handler": ("HandlerInfo", "classify_handler", "handler_address", "installed_handler"),
    "treasury.chain.rpc": ("RPCRefused", "RPCUnavailable", "RetryPolicy", "harden"),
}
__all__ = [
    "DEFAULT_VERSION", "GUARD_ARTIFACT", "SUPPORTED_VERSIONS", "ContractStatus", "CreatedSafe", "GuardError", "HandlerInfo",
    "RPCRefused", "RPCUnavailable", "RetryPolicy", "SafeSpec", "ScheduledEntry", "budgets", "cancel_entry", "check_version",
    "classify_handler", "create_safe", "decode_guard_error", "deploy_guard", "deploy_handler", "deploy_infrastructure",
    "entries", "guard_at", "guard_contract_type", "handler_address", "harden", "install_guard", "installed_guard",
    "installed_handler", "is_dev_chain", "predict_safe_address", "predict_verdict", "safe_contract", "safe_instance",
    "safe_spec", "schedule_intent",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from treasury.chain.artifacts import (
        DEFAULT_VERSION,
        SUPPORTED_VERSIONS,
        check_version,
        safe_contract,
    )
    from treasury.chain.guard import (
        GuardError,
        ScheduledEntry,
        budgets,
        cancel_entry,
        deploy_guard,
        entries,
        guard_at,
        install_guard,
        installed_guard,
        predict_verdict,
        schedule_intent,
    )
    from treasury.chain.guard_abi import (
        GUARD_ARTIFACT,
        decode_guard_error,
        guard_contract_type,
    )
    from treasury.chain.handler import (
        HandlerInfo,
        classify_handler,
        handler_address,
        installed_handler,
    )
    from treasury.chain.infrastructure import (
        ContractStatus,
        deploy_handler,
        deploy_infrastructure,
        is_dev_chain,
    )
    from treasury.chain.rpc import RetryPolicy, RPCRefused, RPCUnavailable, harden
    from treasury.chain.safe import (
        CreatedSafe,
        SafeSpec,
        create_safe,
        predict_safe_address,
        safe_instance,
        safe_spec,
    )
