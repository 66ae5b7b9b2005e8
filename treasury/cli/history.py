"""`treasury history`: every executed transaction, one row per value movement, for accounting.

A chain command: the block times and fees come from the node (receipts, not estimates), and
connecting reconciles first, so an execution another tool made appears once the chain shows it.
The rows themselves are built by treasury.history; this module only reads options and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from treasury.cli.chain import chain_command
from treasury.cli.common import console, open_treasury, printable

if TYPE_CHECKING:
    from treasury.history import HistoryRow


def _check_filters(name: str | None, config_path: Path | None, since: str | None, until: str | None,
                   token: str | None, as_csv: bool, as_json: bool, output: Path | None, **_ignored: Any) -> None:
    """Refuse bad filters before connecting: a typo in a date costs no RPC call."""
    from treasury.cli.common import treasury_name
    from treasury.config import load_config
    from treasury.history import history_filter

    if as_csv and as_json:
        raise click.UsageError("--csv and --json exclude each other")
    if output is not None and not (as_csv or as_json):
        raise click.UsageError("--output needs --csv or --json")
    entry = load_config(config_path).treasury(treasury_name(name, config_path))
    history_filter(entry.token_book(), since, until, token)


@chain_command("history", check_input=_check_filters)
@click.option("--csv", "as_csv", is_flag=True, help="print CSV (RFC 4180, a header row, formula-safe cells)")
@click.option("--since", default=None, metavar="DATE", help="keep rows from this UTC date or time on (2026-12-01, 2026-12-01T14:05)")
@click.option("--until", default=None, metavar="DATE", help="keep rows before this UTC time; a bare date includes its whole day")
@click.option("--token", default=None, metavar="SYMBOL", help="keep only movements of this token (a symbol of the book, ETH, or an address)")
@click.option("--output", "-o", "output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="write the CSV or JSON to FILE instead of printing it")
def history(name, config_path, as_json, verbose, as_csv, since, until, token, output):
    """Every executed transaction: date (block time, UTC), block, tx hash, token, amount,
    recipient and its name, fee paid in ETH (gasUsed x effectiveGasPrice from the receipt),
    proposal id and title, signers. A batch gives one row per transfer; a call that moves
    nothing gives one row with an empty amount."""
    from treasury.history import Web3Reader, csv_text, history as read_history, history_filter

    treasury = open_treasury(name, config_path)
    selection = history_filter(treasury.book, since, until, token)
    provider = treasury._connected().provider  # connects, and reconciles first
    book = treasury.entry.address_book()
    rows = read_history(treasury.records, Web3Reader(provider.web3), selection, book.name_of)
    if as_csv or as_json:
        _deliver(csv_text(rows) if as_csv else _json_text(rows), output, len(rows))
    else:
        _print_table(rows)


def _json_text(rows: list[HistoryRow]) -> str:
    import json

    return json.dumps([row.as_dict() for row in rows], indent=2, sort_keys=True) + "\n"


def _deliver(text: str, output: Path | None, count: int) -> None:
    """Print the text, or write it to `output` whole (a temporary file renamed: never half a report)."""
    if output is None:
        click.echo(text, nl=False)
        return
    import os

    partial = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(text, encoding="utf-8", newline="")
        os.replace(partial, output)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {output}: {error.strerror or error}") from None
    click.echo(f"{count} rows written to {output}", err=True)


def _print_table(rows: list[HistoryRow]) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    table = Table(title="History", title_justify="left")
    for column in ("date", "block", "tx", "amount", "recipient", "fee (ETH)", "proposal", "signers"):
        table.add_column(column, overflow="fold")
    for row in rows:
        amount = f"{row.amount} {row.token}" if row.amount else (f"{row.units} base units of {row.token}" if row.token else "")
        recipient = f"{row.recipient_name} ({row.recipient})" if row.recipient_name else row.recipient
        title = f"{row.proposal_id} {escape(printable(row.title))}"
        status = "" if row.status == "executed" else f" [red]{row.status}[/]"
        table.add_row(row.date, str(row.block), row.tx_hash + status, amount, escape(recipient), row.fee_eth, title,
                      "\n".join(row.signers))
    out.print(table)
    if not rows:
        out.print("no executed transactions match")
