"""The library and CLI as clients of a `treasury serve` (or any Safe Transaction Service).

`RemoteStore(url, token=None)` stands in for the local store in `Treasury` and `TreasuryRecords`
(propose, sign, list, show, export, log); `treasury.remote.sync` pushes to and pulls from a Safe
Transaction Service; `treasury.remote.wire` is the JSON both ends share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from treasury.remote.store import RemoteStore

__all__ = ["RemoteStore"]


def __getattr__(name: str) -> Any:
    if name == "RemoteStore":  # imported on use: the CLI's store-only commands stay light without --server
        from treasury.remote.store import RemoteStore

        return RemoteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
