"""`treasury info`: the treasury on chain now (Safe, guard, handler, balances, budgets, delay queue, warnings)."""

from __future__ import annotations

from treasury.cli.chain import chain_command
from treasury.cli.common import console, emit_json, open_treasury


def status_dict(treasury, status) -> dict:
    return {
        "treasury": status.name, "safe": status.safe, "chain_id": status.chain_id, "version": status.version,
        "owners": list(status.owners), "threshold": status.threshold, "nonce": status.nonce,
        "guard": status.guard, "installed_guard": status.installed_guard, "modules": list(status.modules),
        "balances": {symbol: str(units) for symbol, units in status.balances.items()},
        "budgets": {symbol: str(units) for symbol, units in status.budgets.items()},
        "entries": [{"entry_id": e.entry_id, "intent_id": e.intent_id, "eta": e.eta, "expiry": e.expiry, "status": e.status}
                    for e in status.entries],
        "fallback_handler": status.fallback_handler.as_dict() if status.fallback_handler else None,
        "module_guard": status.module_guard,
        "warnings": status.warnings(),
    }


def _units(treasury, symbol: str, units: int) -> str:
    from treasury.amounts import format_units

    token = treasury.book.tokens.get(symbol)
    return f"{format_units(units, token.decimals)} {symbol}" if token else f"{units} (base units of {symbol})"


def _module_line(status, module: str) -> str:
    """A module, marked when it can act without the guard's checks (see treasury.chain.handler.module_warnings)."""
    from treasury.chain.handler import module_warnings

    bypass = module_warnings(status.version, (module,), status.installed_guard, status.module_guard)
    return f"[bold red]{module} (bypasses the guard)[/]" if bypass else f"{module} (checked by the module guard)"


@chain_command("info")
def info(name, config_path, as_json, verbose):
    """The Safe (version, owners, threshold, nonce, modules), its guard and fallback handler, its
    balances of ETH and of every token in the book, the budget left per capped token and the guard's
    delay queue. Warns about modules that bypass the guard and about a fallback handler that signs
    arbitrary messages as a guarded Safe."""
    from datetime import UTC, datetime

    from rich.table import Table

    treasury = open_treasury(name, config_path)
    status = treasury.status()
    if as_json:
        emit_json(status_dict(treasury, status))
        return
    out = console()
    table = Table(title=f"Treasury {status.name}", show_header=False, title_justify="left")
    table.add_row("Safe", f"{status.safe} (v{status.version}, chain {status.chain_id})")
    table.add_row("owners", "\n".join(status.owners))
    table.add_row("threshold", f"{status.threshold} of {len(status.owners)}")
    table.add_row("nonce", str(status.nonce))
    zero = "0x" + "0" * 40
    if status.guard and status.guard == status.installed_guard:
        guard = f"{status.guard} (installed)"
    elif status.guard:
        guard = f"[bold red]{status.guard} configured, but the Safe has {status.installed_guard}[/]"
    else:
        guard = "none" if status.installed_guard == zero else f"[yellow]{status.installed_guard} (not in the config)[/]"
    table.add_row("guard", guard)
    table.add_row("modules", "\n".join(_module_line(status, m) for m in status.modules) or "none")
    if status.fallback_handler is not None:
        handler = status.fallback_handler
        line = f"{handler.address} ({handler.name})"
        table.add_row("fallback handler", f"[bold red]{line}[/]" if handler.warning and status.installed_guard != zero else line)
    table.add_row("balances", "\n".join(_units(treasury, s, u) for s, u in status.balances.items()))
    if status.guard:
        table.add_row("budget left", "\n".join(_units(treasury, s, u) for s, u in status.budgets.items()) or "no caps")
    out.print(table)
    for warning in status.warnings():
        out.print(f"[bold red]warning[/] {warning}")
    if status.guard:
        queue = Table(title="Delay queue", title_justify="left")
        for column in ("entry", "intent", "executable from", "until", "status"):
            queue.add_column(column, overflow="fold")
        when = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")  # noqa: E731
        for e in status.entries:
            queue.add_row(str(e.entry_id), e.intent_id, when(e.eta), when(e.expiry), e.status)
        out.print(queue)
        if not status.entries:
            out.print("no scheduled entries")
