"""Resolve ape accounts by alias: signers are always ape accounts, never raw keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from treasury.errors import InvalidInput

if TYPE_CHECKING:
    from ape.api import AccountAPI


def resolve_account(alias: str | None) -> AccountAPI:
    """The ape account named `alias`; on a local chain, the first test account by default."""
    from ape import accounts, chain

    if alias is None:
        if chain.provider.network.is_dev:
            return accounts.test_accounts[0]
        raise InvalidInput("choose the paying account with --account ALIAS (see `ape accounts list`)")
    if alias.startswith("TEST::"):
        index = alias.removeprefix("TEST::")
        if not index.isdigit():
            raise InvalidInput(f"unknown test account {alias!r}")
        return accounts.test_accounts[int(index)]
    try:
        return accounts.load(alias)
    except Exception:  # noqa: BLE001 - ape raises several kinds for an unknown or unreadable alias: one message for all
        raise InvalidInput(f"unknown account alias {alias!r} (see `ape accounts list`)") from None
