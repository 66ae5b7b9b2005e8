"""What every `treasury` command shares: options, one-line errors, JSON and rich output.

Errors: a `TreasuryError` (or anything unexpected) becomes one line `Error: ...` on stderr and exit
code 1; `--verbose` adds the traceback. Click's usage errors keep exit code 2. A refusal by the
policy or the guard exits with 3 (`PolicyRefused`).
"""

from __future__ import annotations

import json
import sys
import traceback
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click
from ape.cli import ConnectedProviderCommand, network_option

from treasury.errors import InvalidInput, one_line

if TYPE_CHECKING:
    from treasury.store.repository import ProposalRecord
    from treasury.treasury import ProposalView, Treasury


class PolicyRefused(click.ClickException):
    """The policy engine or the guard says no (deny, needs the delay, drift): exit code 3."""

    exit_code = 3


class _OneLineErrors:
    """Turn every failure inside the command (connecting included) into one line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        verbose = bool(ctx.params.get("verbose"))
        if ctx.params.get("as_json"):
            _ape_log_to_stderr()  # stdout carries the JSON only
        try:
            self.before_connecting(ctx)
            return super().invoke(ctx)  # type: ignore[misc]
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as error:  # noqa: BLE001 - the user gets one line; --verbose gets the rest
            if verbose:
                traceback.print_exc(file=sys.stderr)
            raise click.ClickException(one_line(error)) from None

    def before_connecting(self, ctx: click.Context) -> None:
        """Checks that need no chain; they run before ape connects (if the command connects)."""


def _ape_log_to_stderr() -> None:
    """ape logs ("INFO: Confirmed 0x...") with click.echo to stdout; send every level to stderr."""
    import logging

    from ape.logging import ClickHandler, logger

    for handler in logger._logger.handlers:
        if isinstance(handler, ClickHandler):
            levels = set(handler.echo_kwargs) | {name.lower() for name in logging.getLevelNamesMapping()} | {"success"}
            handler.echo_kwargs = {level: {**handler.echo_kwargs.get(level, {}), "err": True} for level in levels}


class ChainCommand(_OneLineErrors, ConnectedProviderCommand):
    """A command that connects to the network chosen with --network (ape's option).

    `check_input`, given the parsed options, rejects bad input before any connection is made: the
    user hears about a wrong threshold even when the node is down, and no RPC is spent on it.
    """

    def __init__(self, *args: Any, check_input: Callable[..., Any] | None = None, **kwargs: Any) -> None:
        self.check_input = check_input
        super().__init__(*args, **kwargs)

    def before_connecting(self, ctx: click.Context) -> None:
        if self.check_input is not None:
            self.check_input(**{k: v for k, v in ctx.params.items() if k not in _CONNECTION_PARAMS})


_CONNECTION_PARAMS = ("network", "provider_settings")


class LocalCommand(_OneLineErrors, click.Command):
    """A command that reads the config and the store only: no chain, no network option."""


def treasury_options(fn: Callable) -> Callable:
    """--treasury, --config, --json and --verbose, in that order on every treasury command."""
    fn = click.option("--verbose", "-v", is_flag=True, help="on error, show the full traceback")(fn)
    fn = click.option("--json", "as_json", is_flag=True, help="print JSON (stable keys) instead of tables")(fn)
    fn = click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
                      help="ape-config.yaml holding the `treasury:` section (default: the ape project's)")(fn)
    fn = click.option("--treasury", "name", default=None, metavar="NAME",
                      help="treasury name from the config (default: the only one configured)")(fn)
    return fn


def chain_command(name: str | None = None, **kwargs) -> Callable:
    """A command with --network, as in `ape run` / `ape safe`: `--network ethereum:local:foundry`."""

    def decorate(fn: Callable) -> click.Command:
        return click.command(name, cls=ChainCommand, **kwargs)(network_option()(treasury_options(fn)))

    return decorate


def local_command(name: str | None = None, **kwargs) -> Callable:
    def decorate(fn: Callable) -> click.Command:
        return click.command(name, cls=LocalCommand, **kwargs)(treasury_options(fn))

    return decorate


# --- loading ----------------------------------------------------------------------------------------


def treasury_name(name: str | None, config_path: Path | None) -> str:
    """The given name, or the only configured treasury's."""
    if name is not None:
        return name
    from treasury.config import load_config

    names = sorted(load_config(config_path).treasuries)
    if len(names) == 1:
        return names[0]
    raise InvalidInput("choose a treasury with --treasury NAME (configured: " + (", ".join(names) or "none") + ")")


def open_treasury(name: str | None, config_path: Path | None) -> "Treasury":
    from treasury.treasury import Treasury

    treasury = Treasury.load(treasury_name(name, config_path), config_path)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(treasury.store.close)
    return treasury


def account(alias: str | None) -> Any:
    from treasury.signatures.accounts import resolve_account

    return resolve_account(alias)


# --- output -----------------------------------------------------------------------------------------


def console():
    from treasury.chain.report import console as shared

    return shared


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def proposal_dict(record: "ProposalRecord") -> dict[str, Any]:
    """The stable JSON shape of a proposal. uint256 values are decimal strings (exact in any JSON reader)."""
    return {
        "id": record.id,
        "chain_id": record.chain_id,
        "safe": record.safe,
        "nonce": record.nonce,
        "to": record.to,
        "value": str(record.value),
        "data": "0x" + bytes(record.data).hex(),
        "operation": record.operation,
        "safe_tx_hash": record.safe_tx_hash,
        "status": record.status,
        "title": record.title,
        "proposer": record.proposer,
        "created_at": record.created_at.isoformat(),
    }


def verdict_dict(verdict: Any) -> dict[str, str]:
    return {"outcome": verdict.outcome, "reason": verdict.reason, "error": verdict.error}


def view_dict(view: "ProposalView") -> dict[str, Any]:
    decoded = view.decoded
    return {
        **proposal_dict(view.record),
        "decoded": {
            "calls": [{"to": c.to, "value": str(c.value), "operation": c.operation, "function": c.function,
                       "arguments": list(c.arguments), "description": c.description, "warnings": list(c.warnings)}
                      for c in decoded.calls],
            "warnings": list(decoded.warnings),
            "domain_hash": decoded.domain_hash,
            "message_hash": decoded.message_hash,
            "safe_tx_hash": decoded.safe_tx_hash,
        },
        "verdict": verdict_dict(view.verdict),
        "signers": list(view.signers),
        "threshold": view.threshold,
    }


VERDICT_STYLE = {"allow": "green", "needs-delay": "yellow", "deny": "bold red"}
STATUS_STYLE = {"pending": "cyan", "scheduled": "yellow", "executed": "green", "failed": "red",
                "rejected": "magenta", "superseded": "dim", "cancelled": "dim"}


def _allowlisted(treasury: "Treasury", to: str, data: bytes) -> bool:
    """Whether the policy's allowlist names this call (calls to the Safe itself go through the delay)."""
    policy = treasury.policy
    if to.lower() == treasury.safe.lower():
        return True
    if not data:
        return to in policy.recipients
    return any(call.target == to and call.selector == bytes(data[:4]) for call in policy.calls)


def print_view(treasury: "Treasury", view: "ProposalView") -> None:
    """Everything a signer must see before signing: intent, verdict, warnings, the three hashes."""
    from rich.markup import escape
    from rich.table import Table

    out = console()
    record, decoded, verdict = view.record, view.decoded, view.verdict
    table = Table(title=f"Proposal {record.id}: {escape(record.title)}", show_header=False, title_justify="left")
    table.add_row("treasury", f"{treasury.name}: Safe {record.safe} (chain {record.chain_id})")
    table.add_row("nonce", str(record.nonce))
    table.add_row("status", f"[{STATUS_STYLE.get(record.status, '')}]{record.status}[/]")
    table.add_row("proposer", escape(record.proposer))
    table.add_row("to", record.to)
    table.add_row("value", f"{record.value} wei" if record.value else "0")
    table.add_row("operation", "[bold red]DELEGATECALL[/]" if record.operation == 1 else "call")
    table.add_row("signatures", f"{len(view.signers)} of {view.threshold}" + ("".join(f"\n  {s}" for s in view.signers)))
    out.print(table)

    calls = Table(title="What it does", title_justify="left")
    for column in ("#", "to", "action", "notes"):
        calls.add_column(column, overflow="fold")  # addresses and amounts are never cut short
    police = bool(treasury.entry.guard or treasury.policy.calls or treasury.policy.recipients)
    for index, call in enumerate(decoded.calls, 1):
        notes = [f"[bold red]{escape(w)}[/]" for w in call.warnings]
        if police and not _allowlisted(treasury, call.to, call.data) and call.function != "multiSend":
            notes.append("[bold red]target not on the allowlist[/]")
        to = f"[bold red]{call.to}[/]" if call.operation == 1 else call.to
        calls.add_row(str(index), to, escape(call.description), "\n".join(notes))
    out.print(calls)
    for warning in decoded.warnings:
        out.print(f"[bold red]warning[/] {escape(warning)}")
    style = VERDICT_STYLE.get(verdict.outcome, "")
    out.print(f"policy verdict: [{style}]{verdict.outcome}[/] {escape(verdict.reason)}")
    out.print(f"domain hash     {decoded.domain_hash}")
    out.print(f"message hash    {decoded.message_hash}")
    out.print(f"safeTxHash      {decoded.safe_tx_hash}")


TABLE_ROWS = 200  # above this, plain aligned lines: rich's table layout costs ~1 ms a row


def print_records(records: list["ProposalRecord"], title: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    if len(records) > TABLE_ROWS:
        out.print(f"[bold]{escape(title)}[/]: {len(records):,} proposals")
        lines = [f"{'id':16}  {'nonce':>7}  {'status':10}  {'safeTxHash':66}  title"]
        lines += [f"{r.id:16}  {r.nonce:>7}  {r.status:10}  {r.safe_tx_hash:66}  {r.title}" for r in records]
        out.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
        return
    table = Table(title=title, title_justify="left")
    for column in ("id", "nonce", "status", "title", "safeTxHash"):
        table.add_column(column, overflow="fold")
    for r in records:
        table.add_row(r.id, str(r.nonce), f"[{STATUS_STYLE.get(r.status, '')}]{r.status}[/]", escape(r.title), r.safe_tx_hash)
    out.print(table)
    if not records:
        out.print("no proposals")


def confirm(question: str, yes: bool, default: bool = True) -> None:
    """Ask on stderr (stdout stays clean for --json); --yes answers for scripts. No answer aborts."""
    if not yes:
        click.confirm(question, default=default, abort=True, err=True)
