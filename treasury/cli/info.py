"""`treasury info`: the treasury on chain now (Safe, guard, handler, balances, budgets, delay queue, warnings).

Amounts are in token units, addresses carry their address book names and the delay queue says which
proposal each entry is and when it may run (treasury.wording): what a person checks at a glance.
"""

from __future__ import annotations

from typing import Any

from treasury.cli.chain import chain_command
from treasury.cli.common import console, emit_json, open_treasury

ZERO = "0x" + "0" * 40


def liveness_of(treasury: Any, status: Any) -> tuple[Any, str]:
    """The owners' liveness report (treasury.ceremony.liveness), or why there is none (one line)."""
    from treasury.ceremony.liveness import treasury_liveness
    from treasury.errors import TreasuryError

    try:
        return treasury_liveness(treasury, status.owners, status.threshold), ""
    except TreasuryError as error:  # e.g. against a server: its Safe page shows liveness instead
        return None, str(error)


def status_dict(treasury: Any, status: Any, queue: list | None = None, liveness: Any = None, why: str = "") -> dict:
    """`treasury info --json`: amounts in base units (exact, as decimal strings); the queue's entries
    with their proposal (id, title) and waits in words when `queue` (delay_queue.QueueLine) is given;
    `names` maps every address shown that the address book names."""
    entries = [line.as_dict() for line in queue] if queue is not None else [
        {"entry_id": e.entry_id, "intent_id": e.intent_id, "eta": e.eta, "expiry": e.expiry, "status": e.status}
        for e in status.entries]
    book = treasury.addresses
    shown = [status.safe, *status.owners, status.guard or "", *status.modules]
    return {
        "treasury": status.name, "safe": status.safe, "chain_id": status.chain_id, "version": status.version,
        "owners": list(status.owners), "threshold": status.threshold, "nonce": status.nonce,
        "guard": status.guard, "installed_guard": status.installed_guard, "modules": list(status.modules),
        "balances": {symbol: str(units) for symbol, units in status.balances.items()},
        "budgets": {symbol: str(units) for symbol, units in status.budgets.items()},
        "entries": entries,
        "names": {a: name for a in shown if a and (name := book.name_of(a)) is not None},
        "fallback_handler": status.fallback_handler.as_dict() if status.fallback_handler else None,
        "module_guard": status.module_guard,
        "warnings": status.warnings(),
        "liveness": liveness.as_dict() if liveness is not None else {"unavailable": why},
    }


def queue_of(treasury: Any, status: Any) -> list:
    """The guard's queue entries matched to this store's proposals, waits counted from the chain's clock."""
    from ape import chain

    from treasury.delay_queue import queue_lines

    now = int(chain.blocks.head.timestamp)
    return queue_lines(status.entries, now, treasury.proposals(), treasury.store, status.guard)


def _module_line(status: Any, module: str, label: Any) -> str:
    """A module, marked when it can act without the guard's checks (see treasury.chain.handler.module_warnings)."""
    from treasury.chain.handler import module_warnings

    bypass = module_warnings(status.version, (module,), status.installed_guard, status.module_guard)
    shown = label(module)
    return f"[bold red]{shown} (bypasses the guard)[/]" if bypass else f"{shown} (checked by the module guard)"


def _guard_line(status: Any, label: Any) -> str:
    if status.guard and status.guard == status.installed_guard:
        return f"{label(status.guard)} (installed)"
    if status.guard:
        return f"[bold red]{label(status.guard)} configured, but the Safe has {label(status.installed_guard)}[/]"
    return "none" if status.installed_guard == ZERO else f"[yellow]{label(status.installed_guard)} (not in the config)[/]"


@chain_command("info")
def info(name, config_path, as_json, verbose):
    """The Safe (version, owners, threshold, nonce, modules), its guard and fallback handler, its
    balances of ETH and of every token in the book, the budget left per capped token and the guard's
    delay queue (each entry's proposal and when it may run), and each owner's last proof of control
    (drill, signature or execution) with the M-of-N combinations it leaves live. Warns about modules
    that bypass the guard, a fallback handler that signs arbitrary messages as a guarded Safe, and
    owners whose proof of control lapses (the policy's `liveness` period, 90 days by default)."""
    from rich.markup import escape
    from rich.table import Table

    from treasury.wording import units_of

    treasury = open_treasury(name, config_path)
    status = treasury.status()
    queue = queue_of(treasury, status) if status.guard else []
    liveness, why = liveness_of(treasury, status)
    if as_json:
        emit_json(status_dict(treasury, status, queue, liveness, why))
        return

    def label(address: str) -> str:
        return escape(treasury.addresses.label(address))

    out = console()
    table = Table(title=f"Treasury {status.name}", show_header=False, title_justify="left")
    table.add_row("Safe", f"{status.safe} (v{status.version}, chain {status.chain_id})")
    table.add_row("owners", "\n".join(label(owner) for owner in status.owners))
    table.add_row("threshold", f"{status.threshold} of {len(status.owners)}")
    table.add_row("nonce", str(status.nonce))
    table.add_row("guard", _guard_line(status, label))
    table.add_row("modules", "\n".join(_module_line(status, m, label) for m in status.modules) or "none")
    if status.fallback_handler is not None:
        handler = status.fallback_handler
        line = f"{label(handler.address)} ({handler.name})"
        table.add_row("fallback handler", f"[bold red]{line}[/]" if handler.warning and status.installed_guard != ZERO else line)
    table.add_row("balances", "\n".join(units_of(treasury.book, s, u) for s, u in status.balances.items()))
    if status.guard:
        budgets = "\n".join(units_of(treasury.book, s, u) for s, u in status.budgets.items())
        table.add_row("budget left", budgets or "no caps")
    out.print(table)
    for warning in status.warnings():
        out.print(f"[bold red]warning[/] {escape(warning)}")
    if status.guard:
        _print_queue(queue)
    _print_liveness(liveness, why, label)


def _print_liveness(report: Any, why: str, label: Any) -> None:
    """Each owner's last proof of control, what it leaves of the threshold, and lapse warnings."""
    from rich.markup import escape
    from rich.table import Table

    out = console()
    if report is None:
        out.print(f"owner liveness: {escape(why)}")
        return
    table = Table(title="Owner liveness (last proof of control)", title_justify="left")
    table.add_column("owner", overflow="fold")
    table.add_column("last proof", overflow="fold")
    for owner in report.owners:
        table.add_row(label(owner), escape(report.owner_line(owner)))
    out.print(table)
    for line in report.lines()[:2]:
        out.print(escape(line))
    for warning in report.warnings():
        out.print(f"[bold red]warning[/] {escape(warning)}")


def _print_queue(queue: list) -> None:
    from rich.markup import escape
    from rich.table import Table

    from treasury.cli.common import printable

    out = console()
    table = Table(title="Delay queue", title_justify="left")
    table.add_column("entry")
    table.add_column("proposal", overflow="fold")  # the title may be long: it folds, the times stay whole
    for column in ("when", "until", "status"):
        table.add_column(column, no_wrap=True)
    for line in queue:
        # An entry this store never scheduled (another tool's) is shown by the intent the guard queued.
        proposal = (f"{line.proposal_id}: {escape(printable(line.title))}" if line.proposal_id
                    else f"not in this store: intent {line.intent_id}")
        table.add_row(str(line.entry_id), proposal, line.wait, line.until, line.status)
    out.print(table)
    if not queue:
        out.print("no scheduled entries")
