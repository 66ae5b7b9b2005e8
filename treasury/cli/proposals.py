"""Proposal commands: propose, list, show, sign, export/import, schedule, cancel, execute, reject.

Each is a thin layer over `treasury.treasury.Treasury`; nothing here decides what the library
does not. Amounts are human ("250 USDC", "1.5 ETH"); accounts are ape aliases (TEST::N on a test
chain); proposal ids are the ids `treasury list` prints.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from treasury.cli.common import (
    PolicyRefused,
    account,
    chain_command,
    confirm,
    console,
    emit_json,
    local_command,
    open_treasury,
    print_records,
    print_view,
    proposal_dict,
    treasury_name,
    verdict_dict,
    view_dict,
)
from treasury.errors import InvalidInput

KINDS = ("eip712", "eth_sign", "approved_hash")
# "-5 TUSD" and "-1" are arguments (refused by the library with a clear reason), not unknown options.
NEGATIVE_OK = {"ignore_unknown_options": True}


def _proposed(treasury, record, as_json: bool) -> None:
    """After any propose: the new proposal and, at once, what the policy says about it."""
    verdict = treasury.verdict(record.id)
    if as_json:
        emit_json({**proposal_dict(record), "verdict": verdict_dict(verdict)})
        return
    from rich.markup import escape

    from treasury.cli.common import VERDICT_STYLE

    out = console()
    out.print(f"proposed [bold]{record.id}[/]: {escape(record.title)}")
    out.print(f"  Safe {record.safe}  nonce {record.nonce}  safeTxHash {record.safe_tx_hash}")
    out.print(f"  policy verdict: [{VERDICT_STYLE.get(verdict.outcome, '')}]{verdict.outcome}[/] {escape(verdict.reason)}")
    out.print(f"  next: treasury sign {record.id} --account ALIAS")


# --- propose ----------------------------------------------------------------------------------------


@click.group(short_help="Propose a transfer, a call or an owner/threshold change")
def propose():
    """Propose a Safe transaction. It is numbered with the next free nonce, stored, and checked
    against the policy at once; nothing is signed or sent.

    \b
    treasury propose transfer 0xRecipient "250 USDC"
    treasury propose call 0xTarget "setFee(uint256)" 30
    treasury propose add-owner 0xNewOwner --threshold 2
    treasury propose batch payroll.yaml
    """


def _parse_argument(kind: str, text: str):
    """A shell word as the ABI type wants it: ints (decimal or 0x), bools, bytes as hex, arrays as JSON."""
    try:
        if kind.endswith("]") or kind.startswith("("):
            return json.loads(text)
        if kind.startswith(("uint", "int")):
            return int(text, 0)
        if kind == "bool":
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        if kind.startswith("bytes"):
            return bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise InvalidInput(f"argument {text!r} is not a valid {kind}") from None
    return text


def _argument_types(signature: str) -> list[str]:
    from treasury.proposal.build import split_types

    match = re.match(r"^[A-Za-z_][A-Za-z0-9_]*\((.*)\)$", signature.replace(" ", ""))
    if not match:
        raise InvalidInput(f"{signature!r} is not a function signature like transfer(address,uint256)")
    return split_types(match[1])


def _title_option(fn):
    return click.option("--title", default="", help="a short title (default: a summary of the intent)")(fn)


@chain_command("transfer", context_settings=NEGATIVE_OK)
@click.argument("to")
@click.argument("amount")
@_title_option
def propose_transfer(name, config_path, as_json, verbose, to, amount, title):
    """Send AMOUNT ("1.5 ETH", "250000 USDC") from the Safe to TO.

    Tokens are those of the treasury's `tokens:` config; ETH is the native currency.
    """
    treasury = open_treasury(name, config_path)
    _proposed(treasury, treasury.propose_transfer(to, amount, title), as_json)


@chain_command("call", context_settings=NEGATIVE_OK)
@click.argument("target")
@click.argument("signature")
@click.argument("args", nargs=-1)
@click.option("--value", default=None, help='native value sent with the call, e.g. "0.1 ETH"')
@_title_option
def propose_call(name, config_path, as_json, verbose, target, signature, args, value, title):
    """Call SIGNATURE (e.g. "setFee(uint256)") on TARGET with ARGS.

    Integers may be decimal or 0x-hex, bools true/false, bytes 0x-hex, arrays and tuples JSON.
    """
    treasury = open_treasury(name, config_path)
    types = _argument_types(signature)
    if len(types) != len(args):
        raise InvalidInput(f"{signature} takes {len(types)} arguments, {len(args)} given")
    parsed = [_parse_argument(kind, text) for kind, text in zip(types, args)]
    wei = 0
    if value is not None:
        token, wei = treasury.book.parse(value, default_symbol="ETH")
        if not token.is_native:
            raise InvalidInput(f"--value {value!r} must be in the native currency")
    _proposed(treasury, treasury.propose_call(target, signature, parsed, wei, title), as_json)


@chain_command("add-owner", context_settings=NEGATIVE_OK)
@click.argument("owner")
@click.option("--threshold", type=int, required=True, help="the threshold after the change")
@_title_option
def propose_add_owner(name, config_path, as_json, verbose, owner, threshold, title):
    """Add OWNER to the Safe and set the threshold (a configuration change: it waits the delay)."""
    treasury = open_treasury(name, config_path)
    _proposed(treasury, treasury.propose_add_owner(owner, threshold, title), as_json)


@chain_command("remove-owner", context_settings=NEGATIVE_OK)
@click.argument("owner")
@click.option("--threshold", type=int, required=True, help="the threshold after the change")
@_title_option
def propose_remove_owner(name, config_path, as_json, verbose, owner, threshold, title):
    """Remove OWNER from the Safe and set the threshold."""
    treasury = open_treasury(name, config_path)
    _proposed(treasury, treasury.propose_remove_owner(owner, threshold, title), as_json)


@chain_command("swap-owner", context_settings=NEGATIVE_OK)
@click.argument("old")
@click.argument("new")
@_title_option
def propose_swap_owner(name, config_path, as_json, verbose, old, new, title):
    """Replace owner OLD with NEW."""
    treasury = open_treasury(name, config_path)
    _proposed(treasury, treasury.propose_swap_owner(old, new, title), as_json)


@chain_command("threshold", context_settings=NEGATIVE_OK)
@click.argument("threshold", type=int)
@_title_option
def propose_threshold(name, config_path, as_json, verbose, threshold, title):
    """Change the number of signatures the Safe requires to THRESHOLD."""
    treasury = open_treasury(name, config_path)
    _proposed(treasury, treasury.propose_threshold(threshold, title), as_json)


def _batch_items(path: Path) -> list:
    """The items of a batch file: a YAML/JSON list, or a mapping with a `calls:` list."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())  # JSON is YAML too
    except OSError as error:
        raise InvalidInput(f"cannot read batch file {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise InvalidInput(f"batch file {path} is not YAML or JSON: {str(error).splitlines()[0]}") from None
    if isinstance(data, dict) and set(data) == {"calls"}:
        data = data["calls"]
    if not isinstance(data, list) or not data:
        raise InvalidInput(f"batch file {path} must hold a non-empty list of {{to, amount}} or {{target, function, args}} items")
    return data


def batch_intents(treasury, items: list) -> list:
    """Intents from batch items: {to, amount} (a transfer) or {target, function, args, value} (a call)."""
    from treasury.proposal import build

    intents = []
    for number, item in enumerate(items, 1):
        where = f"batch item {number}"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where} is not a mapping")
        keys = set(item)
        if keys == {"to", "amount"}:
            intents.append(build.token_transfer(treasury.safe, treasury.book, str(item["to"]), str(item["amount"])))
        elif {"target", "function"} <= keys <= {"target", "function", "args", "value"}:
            signature = str(item["function"])
            args = item.get("args") or []
            if not isinstance(args, list):
                raise InvalidInput(f"{where}: args must be a list")
            types = _argument_types(signature)
            if len(types) != len(args):
                raise InvalidInput(f"{where}: {signature} takes {len(types)} arguments, {len(args)} given")
            parsed = [_parse_argument(kind, a) if isinstance(a, str) else a for kind, a in zip(types, args)]
            wei = 0
            if item.get("value") is not None:
                token, wei = treasury.book.parse(str(item["value"]), default_symbol="ETH")
                if not token.is_native:
                    raise InvalidInput(f"{where}: value {item['value']!r} must be in the native currency")
            target = str(item["target"])
            if not target.lower().startswith("0x"):  # a token of the book by symbol, as in the policy config
                token = treasury.book.by_symbol(target)
                if token.is_native:
                    raise InvalidInput(f"{where}: {target} is the native currency, not a contract")
                target = token.address
            try:
                intents.append(build.contract_call(target, signature, parsed, wei))
            except (TypeError, ValueError, OverflowError) as error:
                raise InvalidInput(f"{where}: arguments do not fit {signature}: {str(error).splitlines()[0]}") from None
        else:
            raise InvalidInput(f"{where} has keys {sorted(keys)}; expected {{to, amount}} or {{target, function, args[, value]}}")
    return intents


@chain_command("batch")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@_title_option
def propose_batch(name, config_path, as_json, verbose, file, title):
    """Several transfers and calls in one Safe transaction (through MultiSendCallOnly).

    \b
    FILE is YAML or JSON: a list of items, each a transfer or a call:
      - {to: "0xVendor", amount: "250 USDC"}
      - {to: "0xVendor", amount: "0.5 ETH"}
      - {target: "0xPool", function: "setFee(uint256)", args: [30]}
      - {target: USDC, function: "approve(address,uint256)", args: ["0xSpender", 1000000]}
    A target may be a token symbol of the book.
    """
    treasury = open_treasury(name, config_path)
    intents = batch_intents(treasury, _batch_items(file))
    _proposed(treasury, treasury.propose_batch(intents, title), as_json)


for _command in (propose_transfer, propose_call, propose_batch, propose_add_owner, propose_remove_owner, propose_swap_owner,
                 propose_threshold):
    propose.add_command(_command)


# --- reading ----------------------------------------------------------------------------------------

STATUSES = ("pending", "scheduled", "executed", "failed", "rejected", "superseded", "cancelled")


@local_command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="only proposals in this status")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="at most this many")
def list_proposals(name, config_path, as_json, verbose, status, limit):
    """List the treasury's proposals by nonce. Reads the store only: no chain, no network."""
    # The store and the config alone (Treasury.proposals does the same query), so listing does not
    # pay for importing web3 and safe-eth: `treasury list` stays well under a second.
    from treasury.config import load_config
    from treasury.store.repository import Store

    config = load_config(config_path)
    name = treasury_name(name, config_path)
    entry = config.treasury(name)
    records = []
    if "://" in config.store or Path(config.store).exists():  # no store yet: nothing proposed, nothing created
        store = Store.open(config.store)
        try:
            records = store.list_proposals(safe=entry.safe, chain_id=entry.chain_id, status=status, limit=limit)
        finally:
            store.close()
    if as_json:
        emit_json([proposal_dict(r) for r in records])
    else:
        print_records(records, f"{name}: Safe {entry.safe} on chain {entry.chain_id}" + (f" ({status})" if status else ""))


@chain_command("show")
@click.argument("proposal_id")
def show(name, config_path, as_json, verbose, proposal_id):
    """Show PROPOSAL_ID: the decoded intent, the policy verdict, the signatures, and the domain,
    message and safeTxHash hashes to compare with a hardware wallet's screen."""
    treasury = open_treasury(name, config_path)
    view = treasury.view(proposal_id)
    if as_json:
        emit_json(view_dict(view))
    else:
        print_view(treasury, view)


# --- signatures -------------------------------------------------------------------------------------


@chain_command("sign")
@click.argument("proposal_id")
@click.option("--account", "alias", required=True, help="ape account alias of the owner who signs")
@click.option("--kind", type=click.Choice(KINDS), default="eip712", show_default=True,
              help="EIP-712 typed data, eth_sign, or an on-chain approveHash")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation (for scripts)")
def sign(name, config_path, as_json, verbose, proposal_id, alias, kind, yes):
    """Sign PROPOSAL_ID as the owner ALIAS, after showing what it does and what the policy says.

    The signature is verified against the Safe's current owners before it is stored.
    """
    treasury = open_treasury(name, config_path)
    signer = account(alias)
    view = treasury.view(proposal_id)
    if not as_json:
        print_view(treasury, view)
    if view.verdict.outcome == "deny":
        click.secho(f"the policy denies this proposal: {view.verdict.reason}", fg="red", err=True)
    confirm(f"Sign proposal {view.record.id} as {signer.address}?", yes, default=view.verdict.outcome != "deny")
    stored = treasury.sign(view.record.id, signer, kind)
    signers = [s.owner for s in treasury.store.signatures(view.record.id)]
    if as_json:
        emit_json({**proposal_dict(view.record), "signer": stored.owner, "kind": stored.kind,
                   "signers": signers, "threshold": view.threshold})
    else:
        console().print(f"signed by {stored.owner} ({stored.kind}): {len(signers)} of {view.threshold}")


@chain_command("export")
@click.argument("proposal_id")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def export(name, config_path, as_json, verbose, proposal_id, file):
    """Write PROPOSAL_ID and its verified signatures to FILE (JSON), for an offline signer."""
    treasury = open_treasury(name, config_path)
    record = treasury.get(proposal_id)
    bundle = treasury.export_bundle(record.id, file)
    count = len(bundle.get("signatures", [])) if isinstance(bundle, dict) else 0
    if as_json:
        emit_json({**proposal_dict(record), "file": str(file), "signatures": count})
    else:
        console().print(f"wrote {file}: proposal {record.id} with {count} signature(s)")


@chain_command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def import_bundle(name, config_path, as_json, verbose, file):
    """Add the signatures in bundle FILE to its proposal; each is verified again first."""
    treasury = open_treasury(name, config_path)
    record, added = treasury.import_bundle(file)
    signers = [s.owner for s in treasury.store.signatures(record.id)]
    if as_json:
        emit_json({**proposal_dict(record), "added": added, "signers": signers})
    else:
        console().print(f"proposal {record.id}: {added} new signature(s), {len(signers)} in total")


# --- schedule, execute, reject ----------------------------------------------------------------------


@chain_command("schedule")
@click.argument("proposal_id")
@click.option("--signer", "signers", multiple=True, required=True, help="owner alias that signs the queue entry (repeat)")
@click.option("--account", "alias", default=None, help="ape account alias that pays (default on a local chain: test account 0)")
def schedule(name, config_path, as_json, verbose, proposal_id, signers, alias):
    """Queue PROPOSAL_ID in the guard's delay queue, when the policy says it must wait."""
    treasury = open_treasury(name, config_path)
    owners = [account(s) for s in signers]
    sender = account(alias)
    with console().status("scheduling: waiting for the receipt..."):
        entry = treasury.schedule(proposal_id, owners, sender)
    record = treasury.get(proposal_id)
    data = {**proposal_dict(record), "schedule": {"entry_id": entry.entry_id, "guard": entry.guard, "eta": entry.eta,
                                                  "expiry": entry.expiry, "status": entry.status}}
    if as_json:
        emit_json(data)
    else:
        from datetime import datetime, timezone

        when = lambda t: datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")  # noqa: E731
        console().print(f"proposal {record.id} queued as entry {entry.entry_id}: executable from {when(entry.eta)} "
                        f"until {when(entry.expiry)}")


@chain_command("cancel")
@click.argument("proposal_id")
@click.option("--signer", "signers", multiple=True, required=True, help="owner alias that signs the cancellation (repeat)")
@click.option("--account", "alias", default=None, help="ape account alias that pays (default on a local chain: test account 0)")
@click.option("--drop", is_flag=True, help="cancel the proposal for good (default: it goes back to pending)")
def cancel(name, config_path, as_json, verbose, proposal_id, signers, alias, drop):
    """Cancel the guard's queue entry of the scheduled PROPOSAL_ID, with owner signatures.

    The proposal goes back to pending (it can be scheduled again) or, with --drop, is cancelled.
    """
    treasury = open_treasury(name, config_path)
    owners = [account(s) for s in signers]
    sender = account(alias)
    with console().status("cancelling: waiting for the receipt..."):
        entry = treasury.cancel(proposal_id, owners, sender, reopen=not drop)
    record = treasury.get(proposal_id)
    if as_json:
        emit_json({**proposal_dict(record), "schedule": {"entry_id": entry.entry_id, "guard": entry.guard, "eta": entry.eta,
                                                         "expiry": entry.expiry, "status": entry.status}})
    else:
        console().print(f"guard entry {entry.entry_id} cancelled; proposal {record.id} is {record.status}")


@chain_command("execute")
@click.argument("proposal_id")
@click.option("--account", "alias", required=True, help="ape account alias that sends execTransaction")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation (for scripts)")
@click.option("--force", is_flag=True, help="send even if the policy verdict or the simulation says it fails")
@click.option("--skip-rehearsal", is_flag=True, help="on a live network, send without rehearsing on a fork first")
@click.option("--confirmations", type=click.IntRange(min=0), default=None,
              help="blocks to wait for after inclusion (default: the treasury's or the network's setting)")
def execute(name, config_path, as_json, verbose, proposal_id, alias, yes, force, skip_rehearsal, confirmations):
    """Execute PROPOSAL_ID: show it, check the verdict, rehearse (live networks), simulate, send, wait.

    Refuses (exit code 3) when the policy denies it, it must wait for the delay, or (on a live
    network) it fails on a fork of the current block, unless --force / --skip-rehearsal.
    """
    from treasury.cli.rehearsal import print_report, report_dict

    treasury = open_treasury(name, config_path)
    sender = account(alias)
    view = treasury.view(proposal_id)
    if not as_json:
        print_view(treasury, view)
    if view.verdict.outcome != "allow" and not force:
        raise PolicyRefused(f"policy verdict {view.verdict.outcome}: {view.verdict.reason}".rstrip(": "))
    rehearsal = None
    if treasury.is_live and not skip_rehearsal:
        with console().status("rehearsing on a fork of the current block..."):
            rehearsal = treasury.rehearse(view.record.id, executor=sender.address)
        if not as_json:
            print_report(rehearsal, treasury.book)
        if not rehearsal.success:
            raise PolicyRefused(f"rehearsal fails, nothing sent: {rehearsal.reason}")
    confirm(f"Execute proposal {view.record.id} from {sender.address}?", yes)
    with console().status("executing: waiting for the receipt..."):
        execution = treasury.execute(view.record.id, sender, force=force, confirmations=confirmations,
                                     skip_rehearsal=skip_rehearsal)
    record = treasury.get(view.record.id)
    if as_json:
        emit_json({**proposal_dict(record), "execution": {
            "tx_hash": execution.tx_hash, "block_number": execution.block_number, "gas_used": execution.gas_used,
            "success": execution.success, "executor": execution.executor},
            "rehearsal": report_dict(rehearsal, treasury.book) if rehearsal else None})
    else:
        outcome = "[green]executed[/]" if execution.success else "[red]failed (the Safe reported ExecutionFailure)[/]"
        console().print(f"proposal {record.id} {outcome} in {execution.tx_hash} (block {execution.block_number}, "
                        f"gas {execution.gas_used:,})")
    if not execution.success:
        raise click.ClickException(f"proposal {record.id}: the inner call failed (recorded as {record.status})")


@chain_command("reject")
@click.argument("proposal_id")
def reject(name, config_path, as_json, verbose, proposal_id):
    """Propose the no-op at PROPOSAL_ID's nonce; once executed, PROPOSAL_ID can never run."""
    treasury = open_treasury(name, config_path)
    _proposed(treasury, treasury.reject(proposal_id), as_json)
