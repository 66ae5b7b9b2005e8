"""Rich tables for what deployment and creation did; shared by scripts, CLI and demo."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from treasury.chain.infrastructure import ContractStatus
    from treasury.chain.safe import CreatedSafe

# Addresses and hashes must never be cut short: give pipes and CI logs a wide page.
console = Console(width=None if sys.stdout.isatty() else 160)


def print_infrastructure(statuses: Iterable[ContractStatus]) -> None:
    table = Table(title="Safe infrastructure")
    for column in ("version", "contract", "address", "code hash", "status"):
        table.add_column(column)
    for s in statuses:
        status = s.action if s.canonical else f"[yellow]{s.action} (non-canonical)[/yellow]"
        table.add_row(s.version, s.name, s.address, s.code_hash[:12] + "…" if s.code_hash else "-", status)
    console.print(table)
    for s in statuses:
        if s.note:
            console.print(f"[yellow]note[/yellow] {s.name} {s.version}: {s.note}")


def print_safe(safe: CreatedSafe) -> None:
    table = Table(title=f"Safe {safe.address} ({safe.action})", show_header=False)
    table.add_row("version", safe.version)
    table.add_row("singleton", safe.singleton)
    table.add_row("proxy factory", safe.factory)
    table.add_row("fallback handler", safe.fallback_handler)
    table.add_row("owners", "\n".join(safe.owners))
    table.add_row("threshold", f"{safe.threshold} of {len(safe.owners)}")
    table.add_row("salt nonce", str(safe.salt_nonce))
    console.print(table)
