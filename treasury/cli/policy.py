"""`treasury policy show|check`: what the rules are, and whether the guard enforces them."""

from __future__ import annotations

import click

from treasury.cli.chain import chain_command
from treasury.cli.common import PolicyRefused, console, emit_json, local_command, open_treasury
from treasury.errors import InvalidInput


@click.group(short_help="Show the configured policy, or check it against the guard")
def policy():
    """The treasury's policy: `show` prints it from the config, `check` compares it with the
    settings of the guard installed on chain (exit code 3 when they differ)."""


def _token_name(treasury, address: str) -> str:
    token = treasury.book.by_address(address)
    return token.symbol if token else treasury.addresses.label(address)


def _amount(treasury, address: str, units: int | None) -> str | None:
    from treasury.wording import amount

    return None if units is None else amount(treasury.book, address, units)


def policy_dict(treasury) -> dict:
    from treasury.ceremony.liveness import DEFAULT_PERIOD

    p = treasury.policy
    return {
        "treasury": treasury.name,
        "safe": treasury.safe,
        "chain_id": treasury.chain_id,
        "guard": treasury.entry.guard,
        "recipients": list(p.recipients),
        "guardians": list(p.guardians),
        "names": {a: treasury.addresses.name_of(a) for a in (*p.recipients, *p.guardians, *(c.target for c in p.calls))
                  if treasury.addresses.name_of(a)},  # the address book's names of the addresses above
        "calls": [{"target": c.target, "selector": "0x" + c.selector.hex()} for c in p.calls],
        "caps": [{"token": c.token, "symbol": _token_name(treasury, c.token), "amount": str(c.amount), "period": c.period,
                  "max_per_tx": None if c.max_per_tx is None else str(c.max_per_tx),
                  "delay_threshold": None if c.delay_threshold is None else str(c.delay_threshold)} for c in p.caps],
        "delay": p.delay,
        "window": p.window,
        "allow_refunds": p.allow_refunds,
        # Off-chain only: owner liveness warnings (treasury.ceremony.liveness); never part of the guard's settings.
        "liveness": {"period": treasury.entry.policy.liveness_period(), "default": DEFAULT_PERIOD, "on_chain": False},
    }


@local_command("show")
def show(name, config_path, as_json, verbose):
    """Print the policy of the treasury's config, amounts in token units. No chain needed."""
    from rich.table import Table

    from treasury.ceremony.liveness import DEFAULT_PERIOD
    from treasury.wording import duration

    treasury = open_treasury(name, config_path)
    if as_json:
        emit_json(policy_dict(treasury))
        return
    p = treasury.policy
    out = console()
    out.print(f"[bold]{treasury.name}[/]: Safe {treasury.safe} on chain {treasury.chain_id}, "
              f"guard {treasury.entry.guard or '[yellow]none installed[/]'}")
    caps = Table(title="Spending caps", title_justify="left")
    for column in ("token", "per period", "period", "max per tx", "waits the delay above"):
        caps.add_column(column)
    for c in p.caps:
        caps.add_row(_token_name(treasury, c.token), _amount(treasury, c.token, c.amount), duration(c.period, exact=True),
                     _amount(treasury, c.token, c.max_per_tx) or "the cap", _amount(treasury, c.token, c.delay_threshold) or "never")
    out.print(caps)
    calls = Table(title="Allowed calls", title_justify="left")
    calls.add_column("target")
    calls.add_column("selector")
    for call in p.calls:  # not `c`: that name is a TokenCap above
        calls.add_row(f"{_token_name(treasury, call.target)}", "0x" + call.selector.hex())
    out.print(calls)
    out.print("Allowed recipients: " + (", ".join(map(treasury.addresses.label, p.recipients)) or "none"))
    if p.guardians:
        out.print("Guardians (may cancel a queued intent once): " + ", ".join(map(treasury.addresses.label, p.guardians)))
    out.print(f"Delay {duration(p.delay, exact=True)}, window {duration(p.window, exact=True)}, "
              f"gas refunds {'allowed' if p.allow_refunds else 'refused'}")
    period = treasury.entry.policy.liveness_period()
    out.print(f"Owner liveness: {duration(period or DEFAULT_PERIOD, exact=True)}{'' if period else ' (the default)'}, "
              "off-chain only: `treasury info` and the server warn before a proof of control lapses; the guard never sees it")


@chain_command("check")
def check(name, config_path, as_json, verbose):
    """Compare the config's policy with the installed guard's settings (exit code 3 on drift)."""
    from treasury.policy.engine import policy_drift

    treasury = open_treasury(name, config_path)
    guard = treasury.guard()
    if guard is None:
        raise InvalidInput(f"treasury {treasury.name} has no guard configured: nothing to check")
    drift = policy_drift(treasury.policy, guard, book=treasury.book, label=treasury.addresses.label)
    if as_json:
        emit_json({"treasury": treasury.name, "safe": treasury.safe, "guard": guard.address, "in_sync": not drift,
                   "drift": drift})
    else:
        for line in drift:
            console().print(f"[bold red]drift[/] {line}")
        if not drift:
            console().print(f"[green]in sync[/]: guard {guard.address} enforces the configured policy")
    if drift:
        raise PolicyRefused(f"the guard differs from the policy in {len(drift)} setting(s)")


policy.add_command(show)
policy.add_command(check)
# `treasury log` (store-only) is in treasury.cli.records.
