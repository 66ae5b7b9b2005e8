"""Builders the test modules share: treasury policies, funded Safes, Safe transactions, signed proposals.

Plain functions (fixtures live in conftest.py); pytest puts tests/ on sys.path, so a module imports
them with `from builders import ...`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

ONE_ETH = 10**18
TUSD_TRANSFER = {"target": "TUSD", "function": "transfer(address,uint256)"}


def tusd_policy(*recipients: str, amount: Any = 10_000, period: str = "1d", max_per_tx: Any = None,
                delay_threshold: Any = None, more_caps: Iterable[dict] = (), **settings: Any) -> dict:
    """A treasury policy (config syntax) that may pay `recipients` in TUSD, `amount` per `period`.

    The cap's `max_per_tx` and `delay_threshold` are set only when given; `more_caps` are further caps;
    other keywords (delay, window) are policy settings.
    """
    cap = {"token": "TUSD", "amount": amount, "period": period}
    if max_per_tx is not None:
        cap["max_per_tx"] = max_per_tx
    if delay_threshold is not None:
        cap["delay_threshold"] = delay_threshold
    policy: dict = {"recipients": list(recipients)} if recipients else {}
    return {**policy, "calls": [dict(TUSD_TRANSFER)], "caps": [cap, *more_caps], **settings}


def sign_by(treasury, record, owners: Sequence[Any], count: int = 2):
    """`record` signed by the first `count` owners (the test Safes are 2-of-3)."""
    for owner in owners[:count]:
        treasury.sign(record.id, owner)
    return record


def signed_transfer(treasury, owners: Sequence[Any], recipient: str, amount: str = "10 TUSD"):
    """A transfer proposal signed by the first two owners."""
    return sign_by(treasury, treasury.propose_transfer(recipient, amount), owners)


def fund(created, deployer, amount: int = 2 * ONE_ETH):
    """Send `amount` wei to a created Safe; returns the Safe."""
    deployer.transfer(created.address, amount)
    return created


def safe_transfer_tx(chain, created, to: str, value: int = ONE_ETH, nonce: int | None = None, chain_id: int | None = None):
    """A SafeTx paying `value` wei to `to` from `created`, at the Safe's current nonce by default."""
    from treasury.chain.safe import safe_nonce
    from treasury.proposal.safe_tx import build_safe_tx

    return build_safe_tx(
        created.address, to, value,
        nonce=safe_nonce(created.address, created.version) if nonce is None else nonce,
        chain_id=chain.chain_id if chain_id is None else chain_id, version=created.version,
    )
