"""`treasury sync --to URL | --from URL`: with a Safe Transaction Service (Safe's, or a `treasury serve`).

A thin layer over treasury.remote.sync: push our open proposals and their signatures so Safe{Wallet}
shows them, or pull the service's pending transactions in, each re-hashed and every confirmation
verified against the Safe's owners on chain (hence --network). The service's key comes from
$SAFE_TRANSACTION_SERVICE_API_KEY and is never printed.
"""

from __future__ import annotations

import click

from treasury.cli.chain import chain_command
from treasury.cli.common import console, emit_json, open_treasury
from treasury.errors import InvalidInput


def _check_direction(to, source, **_):
    if (to is None) == (source is None):
        raise InvalidInput("give exactly one of --to URL (push our proposals) or --from URL (pull the service's)")


@chain_command("sync", check_input=_check_direction)
@click.option("--to", "to", default=None, metavar="URL", help="push our open proposals and signatures to this service")
@click.option("--from", "source", default=None, metavar="URL", help="pull this service's pending transactions (verified)")
def sync(name, config_path, as_json, verbose, to, source):
    """Push to (--to) or pull from (--from) a Safe Transaction Service for the treasury's Safe.

    \b
    treasury sync --to https://safe-transaction-mainnet.safe.global
    treasury sync --from http://treasury.internal:8000

    Pulled transactions are never trusted: a hash that does not match its fields, or a confirmation
    that is not an owner's signature on chain now, is skipped and reported, and so is a transaction
    no current owner signed; exit code 1 if any was. A pull reads at most 1,000 transactions.
    """
    from treasury.remote.sync import pull, push, service

    treasury = open_treasury(name, config_path)
    api = service(to or source)
    try:
        report = push(treasury, api) if to is not None else pull(treasury, api)
    finally:
        api.http.close()
    if as_json:
        emit_json(report.as_dict())
    else:
        from rich.markup import escape

        out = console()
        for line in report.notes:
            out.print(f"not pushed: {escape(line)}", highlight=False)
        for line in report.skipped:
            out.print(f"[yellow]skipped[/] {escape(line)}", highlight=False)
        if to is not None:
            out.print(f"pushed to {report.url}: {report.proposed} proposal(s) proposed, {report.confirmed} confirmation(s) "
                      f"added, {report.unchanged} already there, {len(report.skipped)} skipped")
        else:
            out.print(f"pulled from {report.url}: {report.pulled} new proposal(s), {report.signatures} verified signature(s), "
                      f"{report.unchanged} already here, {len(report.skipped)} skipped")
    if report.skipped:
        raise click.ClickException(f"{len(report.skipped)} item(s) skipped (listed above)")
