"""Commands for the live chain: `treasury rehearse` (run a proposal on a fork) and `treasury reconcile`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from treasury.cli.chain import chain_command
from treasury.cli.common import PolicyRefused, account, console, emit_json, open_treasury

if TYPE_CHECKING:
    from treasury.amounts import TokenBook
    from treasury.execution.rehearsal import RehearsalReport


def report_dict(report: RehearsalReport, book: TokenBook) -> dict[str, Any]:
    """The stable JSON shape of a rehearsal; balances are decimal strings of base units."""
    return {
        "proposal_id": report.proposal_id,
        "safe_tx_hash": report.safe_tx_hash,
        "network": report.network,
        "block_number": report.block_number,
        "block_hash": report.block_hash,
        "success": report.success,
        "reason": report.reason,
        "gas_used": report.gas_used,
        "executor": report.executor,
        "filled": list(report.filled),
        "notes": list(report.notes),
        "balance_changes": [
            {"holder": c.holder, "role": c.role, "token": c.token, "before": str(c.before), "after": str(c.after),
             "change": c.describe(book)}
            for c in report.balance_changes
        ],
        "events": list(report.events),
    }


def print_report(report: RehearsalReport, book: TokenBook) -> None:
    """What a signer or executor wants to see before the real thing: outcome, money moved, events, gas."""
    from rich.markup import escape
    from rich.table import Table

    out = console()
    verdict = "[green]succeeds[/]" if report.success else "[bold red]fails[/]"
    out.print(f"rehearsal of {report.proposal_id} on {escape(report.network)}: {verdict}")
    if report.reason:
        out.print(f"  reason: {escape(report.reason)}")
    out.print(f"  block {report.block_number} {report.block_hash}")
    out.print(f"  executor {report.executor}" + (f", gas used {report.gas_used:,}" if report.gas_used else ""))
    for owner in report.filled:
        out.print(f"  [yellow]approval simulated on the fork only[/] for owner {owner}")
    for note in report.notes:
        out.print(f"  [yellow]note[/] {escape(note)}")
    if report.balance_changes:
        table = Table(title="Balance changes", title_justify="left")
        for column in ("holder", "role", "token", "change"):
            table.add_column(column, overflow="fold")
        for change in report.balance_changes:
            token = book.by_address(change.token)
            table.add_row(change.holder, change.role, token.symbol if token else change.token, change.describe(book))
        out.print(table)
    if report.events:
        out.print("Events:")
        for event in report.events:
            out.print(f"  {escape(event)}")


@chain_command("rehearse")
@click.argument("proposal_id")
@click.option("--account", "alias", default=None,
              help="ape account alias that will execute (default: the first owner); nothing is signed")
def rehearse(name, config_path, as_json, verbose, proposal_id, alias):
    """Execute PROPOSAL_ID on a fork of the current block and report what would happen.

    On a live network the fork is an anvil started by ape-foundry with the live node as upstream;
    on a local chain, a snapshot reverted afterwards. Missing signatures are simulated on the fork
    only. Exits 3 if the proposal would fail.
    """
    treasury = open_treasury(name, config_path)
    executor = account(alias).address if alias else None
    with console().status("rehearsing on a fork..."):
        report = treasury.rehearse(proposal_id, executor=executor)
    if as_json:
        emit_json(report_dict(report, treasury.book))
    else:
        print_report(report, treasury.book)
    if not report.success:
        raise PolicyRefused(f"rehearsal fails: {report.reason}")


@chain_command("reconcile")
def reconcile(name, config_path, as_json, verbose):
    """Record what the chain says happened: executions a crash did not record, nonces used by others.

    Every command that connects does this first; this command does only that, and shows it.
    """
    treasury = open_treasury(name, config_path)
    treasury.reconcile()  # the automatic pass on connecting has run; this one finds what came since
    found = treasury.reconciled
    if as_json:
        emit_json([{"proposal_id": r.proposal_id, "outcome": r.outcome, "detail": r.detail} for r in found])
        return
    for item in found:
        console().print(f"{item.proposal_id}: {item.outcome} ({item.detail})")
    if not found:
        console().print("the store agrees with the chain")
