"""`treasury smoke-test`: the small-amount rehearsal of a new Safe, every owner's key exercised.

A thin layer over treasury.ceremony.smoke_test: aliases become ape accounts, each step is printed as
it is done, a failure is one line naming its step (exit 3 when the policy refuses, else 1).
"""

from __future__ import annotations

import click

from treasury.ceremony.smoke_test import DEFAULT_AMOUNT, SmokeTestFailed
from treasury.cli.chain import chain_command
from treasury.cli.common import (
    PolicyRefused,
    account,
    confirm,
    console,
    emit_json,
    open_treasury,
    passphrase_option,
    unlocked,
)
from treasury.errors import InvalidInput


def _check_input(owner_safe, inner_aliases, owner_aliases, **_):
    if bool(owner_safe) != bool(inner_aliases):
        raise InvalidInput("--owner-safe and --inner go together: the contract owner signs through its own owners (--inner)")
    if not owner_aliases and not owner_safe:
        raise InvalidInput("name every owner's signer: --owner ALIAS for each key owner (and --owner-safe with --inner)")


@chain_command("smoke-test", check_input=_check_input)
@click.option("--funder", "funder_alias", required=True, metavar="ALIAS",
              help="ape account alias that sends the small amount in (and, by default, gets it back)")
@click.option("--owner", "owner_aliases", multiple=True, metavar="ALIAS",
              help="ape account alias of an owner; repeat for every key owner: every owner must sign")
@click.option("--owner-safe", default=None, metavar="NAME|ADDR", help="a contract owner (a Safe owning this one)")
@click.option("--inner", "inner_aliases", multiple=True, metavar="ALIAS",
              help="ape account alias of an owner of --owner-safe that signs for it (repeat up to its threshold)")
@click.option("--amount", default=DEFAULT_AMOUNT, show_default=True, help="what goes in and comes back out")
@click.option("--to", "recipient", default=None, metavar="NAME|ADDR", help="who gets the transfer out (default: the funder)")
@click.option("--executor", "executor_alias", default=None, metavar="ALIAS",
              help="ape account alias that sends execTransaction (default: the funder)")
@click.option("--again", is_flag=True, help="on a live network, run although a smoke test of this Safe already ran")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation (for scripts)")
@passphrase_option
def smoke_test(name, config_path, as_json, verbose, funder_alias, owner_aliases, owner_safe, inner_aliases, amount,
               recipient, executor_alias, again, yes, passphrase_file):
    """Send a small amount into the Safe and back out, signed by EVERY owner in turn.

    Steps: once (a live network refuses a second run unless --again), owners, nonce (no open proposal
    may hold the Safe's nonce), policy, fund (on a live network the run is first recorded as started,
    so even a run that dies later counts), propose, sign (each owner; a contract owner through its
    --inner signers, checked by EIP-1271), threshold sets (execTransaction simulated with
    threshold-sized sets covering every owner's signature), rehearse, execute, balances (the Safe and
    the recipient moved by exactly the amount; the Safe pays no gas; whoever paid gas is checked with
    its fee, an OP-stack L1 data fee included), record (an audit entry). The checks before `fund` send
    nothing. A failure names its step.
    """
    from treasury.ceremony.smoke_test import ContractOwnerSigner, carry_out, plan_smoke_test

    treasury = open_treasury(name, config_path)
    funder = account(funder_alias)
    owners: list = [account(a) for a in owner_aliases]
    inner = [account(a) for a in inner_aliases]
    if owner_safe:
        owners.append(ContractOwnerSigner(owner_safe, tuple(inner)))
    executor = account(executor_alias) if executor_alias else None
    try:
        plan = plan_smoke_test(treasury, funder=funder, owners=owners, amount=amount, to=recipient, executor=executor,
                               again=again)
        confirm(f"Smoke test: {plan.describe()}?", yes)
        unlocked([funder, *owners[:len(owner_aliases)], *inner, *([executor] if executor else [])], passphrase_file, yes)
        report = carry_out(plan, on_step=None if as_json else _print_step)
    except SmokeTestFailed as failure:
        if failure.step == "policy":
            raise PolicyRefused(str(failure)) from None
        raise click.ClickException(str(failure)) from None
    if as_json:
        emit_json(report.to_dict())
    else:
        console().print(f"[green]smoke test passed[/]: proposal {report.proposal_id}, {len(report.signers)} owners signed")


def _print_step(step) -> None:
    from rich.markup import escape

    tx = f" [dim]{step.tx_hash}[/]" if step.tx_hash else ""
    console().print(f"[green]ok[/] {escape(step.name):<14} {escape(step.detail)}{tx}", soft_wrap=True)  # a line per step
