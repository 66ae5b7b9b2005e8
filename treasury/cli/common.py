"""What every `treasury` command shares: options, one-line errors, JSON and rich output.

Errors: a `TreasuryError` (or anything unexpected) becomes one line `Error: ...` on stderr and exit
code 1; `--verbose` adds the traceback. Click's usage errors keep exit code 2. A refusal by the
policy or the guard exits with 3 (`PolicyRefused`).

This module imports neither ape nor web3: the store-only commands (treasury.cli.records) are built
from it alone and start in a fraction of a second. What connects to a chain (ape's
ConnectedProviderCommand and --network) lives in treasury.cli.chain, imported by chain commands only.
"""

from __future__ import annotations

import atexit
import gc
import json
import sys
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from treasury.addresses import ZERO_ADDRESS
from treasury.errors import InvalidInput, one_line

if TYPE_CHECKING:
    from treasury.records import TreasuryRecords
    from treasury.store import ProposalRecord
    from treasury.treasury import Treasury

class PolicyRefused(click.ClickException):
    """The policy engine or the guard says no (deny, needs the delay, drift): exit code 3."""

    exit_code = 3


class OneLineErrors:
    """Turn every failure inside the command (connecting included) into one line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        verbose = bool(ctx.params.get("verbose"))
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


class LocalCommand(OneLineErrors, click.Command):
    """A command that reads the config and the store only: no chain unless it is given --network."""


def treasury_options(fn: Callable) -> Callable:
    """--treasury, --config, --json and --verbose, in that order on every treasury command."""
    fn = click.option("--verbose", "-v", is_flag=True, help="on error, show the full traceback")(fn)
    fn = click.option("--json", "as_json", is_flag=True, help="print JSON (stable keys) instead of tables")(fn)
    fn = click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
                      help="ape-config.yaml holding the `treasury:` section (default: the ape project's)")(fn)
    fn = click.option("--treasury", "name", default=None, metavar="NAME",
                      help="treasury name from the config (default: the only one configured)")(fn)
    return fn


def local_command(name: str | None = None, **kwargs: Any) -> Callable[[Callable], click.Command]:
    """A store-only command: the treasury options, one-line errors, no ape."""

    def decorate(fn: Callable) -> click.Command:
        return click.command(name, cls=LocalCommand, **kwargs)(treasury_options(fn))

    return decorate


def optional_network(help_text: str) -> Callable[[Callable], Callable]:
    """--network as ape spells it, but optional: without it the command reads the store only.

    The value is handed to ape (treasury.cli.chain.connected) only when given, so the command
    imports ape only then.
    """
    return click.option("--network", default=None, metavar="[ECOSYSTEM:][NETWORK:][PROVIDER]", help=help_text)


# --- loading ----------------------------------------------------------------------------------------


def treasury_name(name: str | None, config_path: Path | None) -> str:
    """The given name, or the only configured treasury's."""
    if name is not None:
        return name
    from treasury.config import load_config
    from treasury.records import only_treasury

    return only_treasury(load_config(config_path))


# --- a server instead of the local store (--server, TREASURY_SERVER, `server:` in the config) ------

SERVER = "treasury.server"  # click ctx.meta keys set by server_options / proposer_option
SERVER_TOKEN_FILE = "treasury.server_token_file"
PROPOSER = "treasury.proposer"
IF_DENIED = "treasury.if_denied"  # set by treasury.cli.proposals' --force handling: Treasury.if_denied


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def keep(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        ctx.meta[key] = value  # set (None when not given): the command takes a server
        return value

    return keep


_Decorated = TypeVar("_Decorated", bound=Callable[..., Any] | click.Command)


def server_options(command: _Decorated) -> _Decorated:
    """--server URL and --server-token-file FILE on a command that can work against a server (also
    on an already built click.Command). The values go to ctx.meta: the command's function keeps its
    parameters, and open_treasury / open_records pick the server up."""
    command = click.option("--server-token-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
                           expose_value=False, callback=_remember(SERVER_TOKEN_FILE),
                           help="file holding the server's read token (default: $TREASURY_SERVER_TOKEN)")(command)
    return click.option("--server", default=None, metavar="URL", expose_value=False, callback=_remember(SERVER),
                        help="work against this `treasury serve` (default: $TREASURY_SERVER, else the treasury's "
                             "`server:`); no local store is opened")(command)


def proposer_option(command: _Decorated) -> _Decorated:
    """--account on a propose command: who signs the new proposal (required against a server)."""
    return click.option("--account", default=None, metavar="ALIAS", expose_value=False, callback=_remember(PROPOSER),
                        help="ape account alias of the owner (or delegate) who signs the proposal as its proposer; "
                             "required with a server")(command)


def remote_store(config_path: Path | None, entry: Any) -> Any:
    """The RemoteStore this command works against, or None (a local store): --server, then
    $TREASURY_SERVER, then the treasury's `server:`; only on commands that take --server."""
    import os

    ctx = click.get_current_context(silent=True)
    if ctx is None or SERVER not in ctx.meta:
        return None
    url = ctx.meta.get(SERVER) or os.environ.get("TREASURY_SERVER") or entry.server
    if not url:
        return None
    from treasury.remote.store import RemoteStore, read_token

    return RemoteStore(url, read_token(ctx.meta.get(SERVER_TOKEN_FILE)))


def open_treasury(name: str | None, config_path: Path | None) -> Treasury:
    """The full Treasury (chain included); its store is closed when the command ends. Against a
    server (server_options) the store is the server's: nothing local is opened or created."""
    from treasury.treasury import Treasury

    name = treasury_name(name, config_path)
    treasury = _remote_treasury(name, config_path) or Treasury.load(name, config_path)
    _close_on_exit(treasury.store.close)
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(IF_DENIED):  # a propose command: refuse a denied proposal, or draft it
        treasury.if_denied = ctx.meta[IF_DENIED]
    if ctx is not None and ctx.meta.get(PROPOSER):
        from treasury.signatures.accounts import unlock

        # The proposer signs (to a server, and locally as the first signature): unlocked once here, like
        # sign/execute do, so ape's own prompts ("Sign:", its passphrase, "Leave unlocked?") never appear:
        # ape's passphrase variable runs it unattended, else one passphrase prompt of ours at most.
        treasury.proposer = unlock(account(ctx.meta[PROPOSER]))
    return treasury


def _remote_treasury(name: str, config_path: Path | None) -> Treasury | None:
    from treasury.config import load_config
    from treasury.treasury import Treasury

    config = load_config(config_path)
    entry = config.treasury(name)
    remote = remote_store(config_path, entry)
    if remote is None:
        return None
    treasury = Treasury(name, entry, remote)
    treasury.config_path = config_path
    treasury.retry_policy = config.rpc.policy()
    return treasury


def open_records(name: str | None, config_path: Path | None) -> TreasuryRecords:
    """The treasury's store and config only (no chain, no ape); closed when the command ends.

    Run as the `treasury` command itself, the cyclic garbage collector is paused while the config
    and store libraries load (SQLAlchemy, pydantic: a few hundred thousand objects), which are then
    frozen (gc.freeze) and never traversed again: they live until the process ends, and on a
    store-only command re-scanning them during the work and once more at exit costs about a third
    of its time. Reference counting still frees everything as usual. A program that runs the
    command in-process (ape's `ape treasury`, click's CliRunner in tests) keeps its collector as is.
    """
    settle = _is_the_process() and gc.isenabled()
    if settle:
        gc.disable()
    try:
        from treasury.records import TreasuryRecords

        records = _remote_records(name, config_path) or TreasuryRecords.load(name, config_path)
    finally:
        if settle:
            gc.freeze()
            gc.enable()
            atexit.register(gc.freeze)  # nor scan at exit what the command made since
    _close_on_exit(records.close)
    return records


def _remote_records(name: str | None, config_path: Path | None) -> TreasuryRecords | None:
    """The records over the server's store when the command works against one (server_options), else None."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or SERVER not in ctx.meta:
        return None
    from treasury.config import load_config
    from treasury.records import TreasuryRecords, only_treasury

    config = load_config(config_path)
    name = only_treasury(config) if name is None else name
    entry = config.treasury(name)
    remote = remote_store(config_path, entry)
    return None if remote is None else TreasuryRecords(name, entry, remote)


def _is_the_process() -> bool:
    """Whether this process is the `treasury` command (its console script imported `cli` into __main__)."""
    ours = getattr(sys.modules.get("treasury.cli"), "cli", None)
    return ours is not None and getattr(sys.modules.get("__main__"), "cli", None) is ours


def _close_on_exit(close: Callable[[], None]) -> None:
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(close)


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


def proposal_dict(record: ProposalRecord) -> dict[str, Any]:
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


def verdict_dict(verdict: Any) -> dict[str, Any] | None:
    if verdict is None:
        return None
    return {"outcome": verdict.outcome, "reason": verdict.reason, "error": verdict.error,
            "detail": getattr(verdict, "detail", ""), "warnings": list(getattr(verdict, "warnings", ())), "notes": list(getattr(verdict, "notes", ()))}


NO_VERDICT = "pass --network to evaluate the policy verdict"


def labeller(treasury: Any) -> Callable[[str], str]:
    """How `treasury` (a Treasury or a TreasuryRecords) shows an address: its address book's
    "acme (0x…)", or the address itself where there is no book (a test double, an old object)."""
    from treasury.wording import plain

    book = getattr(treasury, "addresses", None)
    return book.label if book is not None else plain


def execution_dict(treasury: Any, record: ProposalRecord) -> dict[str, Any] | None:
    """The proposal's last mined execTransaction as JSON (null if none, or if the store cannot say:
    a server's store does not list executions)."""
    read = getattr(getattr(treasury, "store", None), "executions", None)
    found = read(record.id) if read is not None else []
    if not found:
        return None
    run = found[-1]
    return {"tx_hash": run.tx_hash, "block_number": run.block_number, "gas_used": run.gas_used,
            "success": run.success, "executor": run.executor}


def view_dict(view: Any, treasury: Any = None) -> dict[str, Any]:
    """A proposal view as JSON: `verdict` and `threshold` are null when it was read from the store
    only; with `treasury`, `execution` is the mined execTransaction (null if none) and `names` the
    address book's name of each address it knows in the proposal."""
    decoded = view.decoded
    data = {
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
    stored = getattr(view, "signatures", None)
    if stored is not None:
        from treasury.records import OWNER_STATUS_NOTE, verified_offline

        data["signatures"] = [{"owner": s.owner, "kind": s.kind, "signature": "0x" + bytes(s.signature).hex(),
                               "created_at": s.created_at.isoformat(), "verified": verified_offline(s)} for s in stored]
        data["signatures_note"] = OWNER_STATUS_NOTE
    if view.verdict is None:
        data["verdict_note"] = NO_VERDICT
    if treasury is not None:
        data["execution"] = execution_dict(treasury, view.record)
        data["names"] = _names(treasury, [view.record.safe, view.record.to, view.record.proposer,
                                          *(c.to for c in decoded.calls), *view.signers])
    return data


def _names(treasury: Any, addresses: list[str]) -> dict[str, str]:
    """{address: name} for the addresses the treasury's address book names (JSON readers get the names too)."""
    book = getattr(treasury, "addresses", None)
    if book is None:
        return {}
    found = {}
    for address in addresses:
        name = book.name_of(address) if address.startswith("0x") else None
        if name is not None:
            found[address] = name
    return found


VERDICT_STYLE = {"allow": "green", "needs-delay": "yellow", "deny": "bold red"}
STATUS_STYLE = {"pending": "cyan", "scheduled": "yellow", "executed": "green", "failed": "red",
                "rejected": "magenta", "superseded": "dim", "cancelled": "dim"}


def _allowlisted(treasury: Any, to: str, data: bytes) -> bool:
    """Whether the policy's allowlist names this call (calls to the Safe itself go through the delay)."""
    policy = treasury.policy
    if to.lower() == treasury.safe.lower():
        return True
    if not data:
        return to in policy.recipients
    return any(call.target == to and call.selector == bytes(data[:4]) for call in policy.calls)


def _signature_rows(view: Any, label: Callable[[str], str]) -> str:
    """"2 of 3" and the signers (with the chain's threshold), or what the store holds (without it)."""
    from rich.markup import escape

    stored = getattr(view, "signatures", None)
    if view.threshold is not None:
        head = f"{len(view.signers)} of {view.threshold}"
    else:
        head = f"{len(view.signers)} stored (the threshold needs --network)"
    if stored is not None:
        from treasury.records import OWNER_STATUS_NOTE, UNVERIFIED_NOTE, verified_offline

        rows = "".join(f"\n  {escape(label(s.owner))} ({s.kind})"
                       + ("" if verified_offline(s) else f" [yellow]{UNVERIFIED_NOTE}[/]") for s in stored)
        return head + rows + (f"\n  [dim]{OWNER_STATUS_NOTE}[/]" if stored else "")
    return head + "".join(f"\n  {escape(label(s))}" for s in view.signers)


def print_view(treasury: Any, view: Any) -> None:
    """Everything a signer must see before signing: intent, verdict, warnings, the three hashes.

    `treasury` is a Treasury or a TreasuryRecords (name, safe, entry, policy); `view` a ProposalView
    (with the live verdict) or a records.StoredView (verdict None: read from the store only).
    """
    from rich.markup import escape
    from rich.table import Table

    from treasury.wording import amount, labelled, proposer

    out = console()
    label = labeller(treasury)
    record, decoded, verdict = view.record, view.decoded, view.verdict
    table = Table(title=f"Proposal {record.id}: {escape(printable(record.title))}", show_header=False, title_justify="left")
    table.add_row("treasury", f"{treasury.name}: Safe {record.safe} (chain {record.chain_id})")
    table.add_row("nonce", str(record.nonce))
    table.add_row("status", f"[{STATUS_STYLE.get(record.status, '')}]{record.status}[/]")
    table.add_row("proposer", escape(printable(proposer(record.proposer, label))))
    table.add_row("to", escape(label(record.to)))
    table.add_row("value", amount(treasury.book, ZERO_ADDRESS, record.value) if record.value else "0")
    table.add_row("operation", "[bold red]DELEGATECALL[/]" if record.operation == 1 else "call")
    table.add_row("signatures", _signature_rows(view, label))
    out.print(table)

    calls = Table(title="What it does", title_justify="left")
    for column in ("#", "to", "action", "notes"):
        calls.add_column(column, overflow="fold")  # addresses and amounts are never cut short
    police = bool(treasury.entry.guard or treasury.policy.calls or treasury.policy.recipients)
    for index, call in enumerate(decoded.calls, 1):
        notes = [f"[bold red]{escape(w)}[/]" for w in call.warnings]
        if police and not _allowlisted(treasury, call.to, call.data) and call.function != "multiSend":
            notes.append("[bold red]target not on the allowlist[/]")
        to = f"[bold red]{escape(label(call.to))}[/]" if call.operation == 1 else escape(label(call.to))
        calls.add_row(str(index), to, escape(labelled(call.description, label)), "\n".join(notes))
    out.print(calls)
    for warning in decoded.warnings:
        out.print(f"[bold red]warning[/] {escape(warning)}")
    if verdict is None:
        out.print(f"policy verdict: [dim]not evaluated[/] ({NO_VERDICT})")
    else:
        style = VERDICT_STYLE.get(verdict.outcome, "")
        out.print(f"policy verdict: [{style}]{verdict.outcome}[/] {escape(verdict.reason)}")
        for note in getattr(verdict, "notes", ()):
            if note not in verdict.reason:
                out.print(f"[bold]note[/] {escape(note)}")
        for warning in getattr(verdict, "warnings", ()):
            out.print(f"[bold red]warning[/] {escape(warning)}")
    out.print(f"domain hash     {decoded.domain_hash}")
    out.print(f"message hash    {decoded.message_hash}")
    out.print(f"safeTxHash      {decoded.safe_tx_hash}")


def printable(text: str) -> str:
    """Stored text as shown on a terminal: control characters (escape sequences, newlines) made
    visible as \\xNN, so a proposal's title can neither restyle the screen nor fake extra rows."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


TABLE_ROWS = 200  # above this, plain aligned lines: rich's table layout costs ~1 ms a row


def print_records(records: list[ProposalRecord], title: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    if len(records) > TABLE_ROWS:
        out.print(f"[bold]{escape(title)}[/]: {len(records):,} proposals")
        lines = [f"{'id':16}  {'nonce':>7}  {'status':10}  {'safeTxHash':66}  title"]
        lines += [f"{r.id:16}  {r.nonce:>7}  {r.status:10}  {r.safe_tx_hash:66}  {printable(r.title)}" for r in records]
        out.file.flush()
        click.echo("\n".join(lines))  # plain text: rich would measure and split every line (~0.1 ms each)
        return
    table = Table(title=title, title_justify="left")
    for column in ("id", "nonce", "status", "title", "safeTxHash"):
        table.add_column(column, overflow="fold")
    for r in records:
        table.add_row(r.id, str(r.nonce), f"[{STATUS_STYLE.get(r.status, '')}]{r.status}[/]", escape(printable(r.title)),
                      r.safe_tx_hash)
    out.print(table)
    if not records:
        out.print("no proposals")


def confirm(question: str, yes: bool, default: bool = True) -> None:
    """Ask on stderr (stdout stays clean for --json); --yes answers for scripts.

    No answer (stdin closed: no terminal) and "no" are refusals like any other: one `Error:` line
    and exit code 1, where click's own abort would print only "Aborted!".
    """
    if yes:
        return
    try:
        answer = click.confirm(question, default=default, err=True)
    except click.Abort:
        click.echo(err=True)  # end the prompt's line: the error is a line of its own
        raise InvalidInput("no answer to the confirmation (no terminal?): pass --yes to confirm; nothing done") from None
    if not answer:
        raise InvalidInput("not confirmed: nothing done")


# --- unattended signing (ape keystore accounts) ------------------------------------------------------


def passphrase_option(fn: Callable) -> Callable:
    """--passphrase-file on a command that signs or sends with ape keystore accounts."""
    return click.option("--passphrase-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
                        help="file whose first line is the passphrase of the ape keystore account(s) this command "
                             "uses (chmod 600); default: $APE_ACCOUNTS_<alias>_PASSPHRASE, else one prompt")(fn)


def unlocked(accounts: Any, passphrase_file: Path | None, yes: bool = False) -> None:
    """Unlock every keystore account in `accounts` once, before any spinner is drawn.

    ape's keystore asks "Sign:", the passphrase and "Leave unlocked?" for every signature; after
    this, treasury's own confirmation is the only question, and the passphrase is asked at most once
    per account (or read from the file or ape's environment variable for scripts; with --yes
    nothing is asked, so a missing passphrase is one line at once).
    """
    from treasury.signatures.accounts import read_passphrase_file, unlock

    passphrase = read_passphrase_file(passphrase_file) if passphrase_file is not None else None
    for item in accounts:
        unlock(item, passphrase, ask=not yes)
