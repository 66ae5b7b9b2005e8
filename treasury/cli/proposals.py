"""Proposal commands that connect: propose, sign, schedule, cancel, execute, reject.

(list, show, export and import read the store only unless given --network: treasury.cli.records.)

Each is a thin layer over `treasury.treasury.Treasury`; nothing here decides what the library
does not. Amounts are human ("250 USDC", "1.5 ETH"); accounts are ape aliases (TEST::N on a test
chain); proposal ids are the ids `treasury list` prints.
"""

from __future__ import annotations

from pathlib import Path

import click

from treasury.cli.chain import chain_command
from treasury.cli.common import (
    PolicyRefused,
    account,
    confirm,
    console,
    emit_json,
    open_treasury,
    passphrase_option,
    print_view,
    proposal_dict,
    proposer_option,
    server_options,
    unlocked,
    verdict_dict,
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

    from treasury.cli.common import VERDICT_STYLE, labeller
    from treasury.wording import proposer

    out = console()
    out.print(f"proposed [bold]{record.id}[/]: {escape(record.title)}")
    out.print(f"  Safe {record.safe}  nonce {record.nonce}  safeTxHash {record.safe_tx_hash}")
    out.print(f"  proposer: {escape(proposer(record.proposer, labeller(treasury)))}")
    out.print(f"  policy verdict: [{VERDICT_STYLE.get(verdict.outcome, '')}]{verdict.outcome}[/] {escape(verdict.reason)}")
    out.print(f"  next: treasury sign {record.id} --account ALIAS")


# --- propose ----------------------------------------------------------------------------------------


@click.group(short_help="Propose a transfer, a call or an owner/threshold change")
def propose():
    """Propose a Safe transaction. It is checked against the policy, numbered with the next free
    nonce and stored; nothing is signed or sent. One the policy denies is refused (exit 3, nothing
    stored) unless --force keeps it as a draft without a nonce (`treasury propose draft ID` later).

    \b
    treasury propose transfer 0xRecipient "250 USDC"
    treasury propose call 0xTarget "setFee(uint256)" 30
    treasury propose add-owner 0xNewOwner --threshold 2
    treasury propose batch payroll.yaml
    """


def _check_call(signature, args, **_):
    """Before connecting: the ABI arguments parse (a mistyped address is refused with no RPC spent;
    a name in an address's place is the treasury's to resolve, once connected)."""
    from treasury.addresses import ZERO_ADDRESS
    from treasury.proposal.arguments import parse_arguments

    parse_arguments(signature, args, resolve=lambda _name, _what: ZERO_ADDRESS)


def _check_batch(file, **_):
    """Before connecting: the batch file reads (bounded) and has a batch's shape (CSV rows, items, or
    a Transaction Builder file whose checksum holds)."""
    from treasury.proposal.batchfile import load_batch

    load_batch(file)


def _title_option(fn):
    return click.option("--title", default="", help="a short title (default: a summary of the intent)")(fn)


@chain_command("transfer", context_settings=NEGATIVE_OK)
@click.argument("to")
@click.argument("amount")
@_title_option
def propose_transfer(name, config_path, as_json, verbose, to, amount, title):
    """Send AMOUNT ("1.5 ETH", "250000 USDC") from the Safe to TO.

    TO is an address, a name of the address book (`vendors:` / `owners:` in the config) or an ENS
    name on a chain with ENS. Tokens are those of the treasury's `tokens:` config; ETH is the native currency.
    """
    treasury = open_treasury(name, config_path)
    _proposed(treasury, treasury.propose_transfer(to, amount, title), as_json)


@chain_command("call", context_settings=NEGATIVE_OK, check_input=_check_call)
@click.argument("target")
@click.argument("signature")
@click.argument("args", nargs=-1)
@click.option("--value", default=None, help='native value sent with the call, e.g. "0.1 ETH"')
@_title_option
def propose_call(name, config_path, as_json, verbose, target, signature, args, value, title):
    """Call SIGNATURE (e.g. "setFee(uint256)") on TARGET with ARGS.

    Integers may be decimal or 0x-hex, bools true/false, bytes 0x-hex, arrays and tuples JSON;
    a mixed-case address must carry a valid EIP-55 checksum. TARGET and address arguments may also
    be address book names or ENS names; TARGET may be a token symbol of the book.
    """
    from treasury.proposal.arguments import parse_arguments

    treasury = open_treasury(name, config_path)
    parsed = parse_arguments(signature, args, resolve=treasury.resolve_address)
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
    """Add OWNER to the Safe and set the threshold (a configuration change: it waits the delay).

    OWNER (here and in remove-owner, swap-owner) is an address, an address book name or an ENS name."""
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


@chain_command("batch", check_input=_check_batch)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@_title_option
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation after the count and totals (for scripts)")
def propose_batch(name, config_path, as_json, verbose, file, title, yes):
    """Several transfers and calls in one Safe transaction (through MultiSendCallOnly).

    \b
    FILE is YAML or JSON: a list of items, each a transfer or a call:
      - {to: "0xVendor", amount: "250 USDC", memo: "invoice 7"}
      - {to: acme, amount: "0.5 ETH"}
      - {target: "0xPool", function: "setFee(uint256)", args: [30]}
      - {target: USDC, function: "approve(address,uint256)", args: ["0xSpender", 1000000]}
    or a payroll CSV (*.csv) with a header row: to,amount[,token][,memo]
    or a Safe{Wallet} Transaction Builder JSON file (its chainId must be the treasury's).
    A recipient may be an address book name or an ENS name, a target a token symbol of the book.
    The count and the total per token are shown before anything is stored.
    """
    from treasury.proposal.batchfile import load_batch, plan_batch

    treasury = open_treasury(name, config_path)
    plan = plan_batch(load_batch(file), treasury.safe, treasury.book, chain_id=treasury.chain_id,
                      version=treasury.version, resolve=treasury.resolve_address)
    for line in plan.summary(treasury.book):
        click.echo(line, err=as_json)  # with --json, stdout carries the JSON only
    confirm(f"Propose these {len(plan.calls)} transaction(s) as one Safe transaction?", yes)
    _proposed(treasury, treasury.propose(plan.intent, title or plan.title), as_json)


@chain_command("handler")
@click.argument("handler", required=False)
@_title_option
def propose_handler(name, config_path, as_json, verbose, handler, title):
    """Set the Safe's fallback handler to HANDLER (default: TreasuryFallbackHandler, which signs as the
    Safe only messages its guard approved). On a guarded Safe this waits the delay."""
    treasury = open_treasury(name, config_path)
    _proposed(treasury, treasury.propose_fallback_handler(handler, title), as_json)


@chain_command("guard-install")
@click.argument("guard", required=False)
@_title_option
def propose_guard_install(name, config_path, as_json, verbose, guard, title):
    """Install the deployed TreasuryGuard GUARD (default: the configured guard) on a Safe without a
    guard, as one transaction the owners sign like any other: TreasuryFallbackHandler first if the Safe
    has another handler, the module guard on Safe 1.5.0, then the guard."""
    treasury = open_treasury(name, config_path)
    _proposed(treasury, treasury.propose_guard_install(guard, title), as_json)


@chain_command("draft")
@click.argument("draft_id")
def propose_draft(name, config_path, as_json, verbose, draft_id):
    """Turn the draft DRAFT_ID (a denied proposal kept with --force) into a proposal with the next
    free nonce, if the policy allows it now; still denied: exit 3 and the draft is kept."""
    treasury = open_treasury(name, config_path)
    _proposed(treasury, treasury.propose_draft(draft_id), as_json)


def _drafted(drafted, as_json: bool) -> None:
    """After `propose --force` of a denied intent: the draft kept, and how to go on."""
    draft = drafted.draft
    if as_json:
        from treasury.cli.records import draft_dict

        emit_json({"draft": draft_dict(draft), "verdict": verdict_dict(drafted.verdict)})
        return
    from rich.markup import escape

    out = console()
    out.print(f"[red]the policy denies this proposal[/]: {escape(drafted.verdict.reason)}")
    out.print(f"kept as draft [bold]{draft.id}[/]: {escape(draft.title)} (no nonce taken, nothing to sign)")
    out.print(f"  next: treasury propose draft {draft.id}  (once the policy allows it), or treasury drop {draft.id}")


def _with_denial_handling(command: click.Command) -> click.Command:
    """--force on a propose command, and what the policy's deny becomes: exit 3 with nothing stored and
    no nonce taken (a denied proposal would hold its nonce and block every later one), or with --force
    a draft without a nonce (exit 0)."""
    import functools

    from treasury.cli.common import IF_DENIED
    from treasury.treasury import Drafted, PolicyRefusal

    def remember(ctx: click.Context, _param: click.Parameter, force: bool) -> bool:
        ctx.meta[IF_DENIED] = "draft" if force else "refuse"
        return force

    inner = command.callback
    assert inner is not None

    @functools.wraps(inner)
    def callback(*args, **kwargs):
        try:
            return inner(*args, **kwargs)
        except Drafted as drafted:
            _drafted(drafted, bool(kwargs.get("as_json")))
        except PolicyRefusal as refusal:
            hint = "; the draft is kept" if command.name == "draft" else "; --force keeps it as a draft"
            raise PolicyRefused(f"the policy denies this proposal, nothing stored: {refusal.verdict.reason}{hint}") from None

    command.callback = callback
    if command.name != "draft":
        command.params.append(click.Option(["--force"], is_flag=True, expose_value=False, callback=remember,
                                           help="when the policy denies it, keep it as a draft (no nonce) instead of refusing"))
    return command


for _command in (propose_transfer, propose_call, propose_batch, propose_add_owner, propose_remove_owner, propose_swap_owner,
                 propose_threshold, propose_handler, propose_guard_install, propose_draft):
    propose.add_command(server_options(proposer_option(_with_denial_handling(_command))))


@chain_command("drop")
@server_options
@click.argument("item_id", metavar="ID")
@click.option("--reason", default="", help="why, for the audit log")
@click.option("--force", is_flag=True, help="drop a proposal even though the store holds SafeTx signatures of it")
def drop(name, config_path, as_json, verbose, item_id, reason, force):
    """Drop the pending proposal or the draft ID locally: no chain transaction.

    A proposal whose nonce the chain has not used is marked cancelled (audited, with --reason) and
    its nonce is free for the next proposal. Refused when the nonce was used, the proposal executed,
    or it has a live guard queue entry (then: `treasury cancel ID --drop`), and, unless --force, when
    the store holds SafeTx signatures of it. Signatures held elsewhere still run it until its nonce
    is used: to make sure it can never run, spend its nonce with `treasury reject ID` instead.
    """
    treasury = open_treasury(name, config_path)
    dropped = treasury.drop(item_id, reason, force=force)
    if as_json:
        emit_json({"kind": dropped.kind, "id": dropped.id, "nonce": dropped.nonce, "freed": dropped.freed,
                   "waiting": list(dropped.waiting), "warning": dropped.warning})
        return
    from rich.markup import escape

    out = console()
    if dropped.kind == "draft":
        out.print(f"draft {dropped.id} dropped")
        return
    out.print(f"proposal {dropped.id} dropped locally (marked cancelled; no transaction sent)")
    if not dropped.freed:
        out.print(f"  another open proposal still holds nonce {dropped.nonce}")
    elif dropped.waiting:
        out.print(f"  nonce {dropped.nonce} is free again and the next proposal takes it; "
                  f"{', '.join(dropped.waiting)} wait until nonce {dropped.nonce} is used")
    else:
        out.print(f"  nonce {dropped.nonce} is free again: the next proposal takes it")
    out.print(f"  [yellow]{escape(dropped.warning or '')}[/]")


# list, show and export (store-only commands) are in treasury.cli.records.

# --- signatures -------------------------------------------------------------------------------------


@chain_command("sign")
@server_options
@click.argument("proposal_id")
@click.option("--account", "alias", required=True, help="ape account alias of the owner who signs")
@click.option("--kind", type=click.Choice(KINDS), default="eip712", show_default=True,
              help="EIP-712 typed data, eth_sign, or an on-chain approveHash")
@click.option("--cancel", "for_cancel", is_flag=True,
              help="sign the cancellation of the proposal's queued guard entry instead (a minority of owners cancels)")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation (for scripts)")
@click.option("--review-model", is_flag=True,
              help="also ask the language model (ANTHROPIC_API_KEY / OPENAI_API_KEY) for an advisory summary")
@passphrase_option
def sign(name, config_path, as_json, verbose, proposal_id, alias, kind, for_cancel, yes, review_model, passphrase_file):
    """Sign PROPOSAL_ID as the owner ALIAS, after showing what it does and what the policy says.

    One confirmation signs everything the proposal needs from this owner: the SafeTx and, when the
    policy says it must first wait in the guard's delay queue, the guard's schedule hash too (so
    `treasury schedule` needs no owner present later). With --cancel, a signature cancelling the
    proposal's queued guard entry. Each signature is verified against the Safe's current owners
    before it is stored. Just above the confirmation: the review's findings (`treasury review`;
    rules only, no model unless --review-model).
    """
    from treasury.treasury import SCHEDULE_ERRORS

    treasury = open_treasury(name, config_path)
    signer = account(alias)
    view = treasury.view(proposal_id)
    pid = view.record.id
    if not as_json:
        print_view(treasury, view)
    if for_cancel:
        confirm(f"Sign the cancellation of proposal {pid}'s queued guard entry as {signer.address}?", yes)
        unlocked([signer], passphrase_file, yes)
        stored = treasury.sign_cancel(pid, signer, kind)
        need = next((n for n in treasury.signature_needs(pid) if n.purpose == "cancel"), None)
        signed = [_signed_dict(stored)]
        if as_json:
            emit_json({**proposal_dict(view.record), "signer": stored.owner, "kind": stored.kind, "signed": signed,
                       "already": [], "needs": [_need_dict(n) for n in treasury.signature_needs(pid)]})
        else:
            count = f": {len(need.signers)} of {need.required}" if need is not None else ""
            console().print(f"signed the cancel of guard entry {stored.entry_id} by {stored.owner} ({stored.kind}){count}")
        return
    if view.verdict.outcome == "deny":
        click.secho(f"the policy denies this proposal: {view.verdict.reason}", fg="red", err=True)
    from treasury.cli.review import print_review, review_blocks_default, review_dict, review_for_signer

    reviewed, unavailable = review_for_signer(treasury, pid, use_model=review_model)
    if not as_json:
        print_review(reviewed, unavailable)
    delayed = treasury.entry.guard and view.verdict.error in SCHEDULE_ERRORS
    what = " (the SafeTx and the guard's schedule hash)" if delayed else ""
    default = view.verdict.outcome != "deny" and not review_blocks_default(reviewed)  # danger or failed: No
    confirm(f"Sign proposal {pid} as {signer.address}{what}?", yes, default=default)
    unlocked([signer], passphrase_file, yes)  # at most one passphrase prompt, and no "Sign:" per signature
    done = treasury.sign_all(pid, signer, kind)
    signers = [s.owner for s in treasury.store.signatures(pid)]
    needs = treasury.signature_needs(pid)
    if as_json:
        emit_json({**proposal_dict(view.record), "signer": signer.address, "kind": kind, "signers": signers,
                   "threshold": view.threshold, "signed": [_signed_dict(r) for r in done.records], "already": list(done.already),
                   "needs": [_need_dict(n) for n in needs], **review_dict(reviewed, unavailable)})
        return
    out = console()
    if done.safe_tx is not None:
        out.print(f"signed the SafeTx by {signer.address} ({kind}): {len(signers)} of {view.threshold}")
    if done.schedule is not None:
        need = next((n for n in needs if n.purpose == "schedule"), None)
        count = f": {len(need.signers)} of {need.required}" if need is not None else ""
        out.print(f"signed the guard's schedule hash (schedule nonce {done.schedule.intent_nonce}) by {signer.address}{count}")
    for purpose in done.already:
        out.print(f"already signed before: {'the SafeTx' if purpose == 'safe_tx' else 'the schedule hash'}")


def _signed_dict(record) -> dict:
    """A stored signature as the sign commands report it: what it is over."""
    return {"purpose": record.purpose, "owner": record.owner, "kind": record.kind, "signed_hash": record.signed_hash,
            "intent_nonce": record.intent_nonce, "entry_id": record.entry_id}


def _need_dict(need) -> dict:
    return {"purpose": need.purpose, "over": need.over, "signed_hash": need.signed_hash, "signers": list(need.signers),
            "required": need.required, "missing": need.missing}


# import (store-only unless given --network) is in treasury.cli.records.


# --- schedule, execute, reject ----------------------------------------------------------------------


@chain_command("schedule")
@click.argument("proposal_id")
@click.option("--signer", "signers", multiple=True,
              help="owner alias that signs the queue entry now (repeat); default: only the stored signatures")
@click.option("--account", "alias", default=None, help="ape account alias that pays (default on a local chain: test account 0)")
@passphrase_option
def schedule(name, config_path, as_json, verbose, proposal_id, signers, alias, passphrase_file):
    """Queue PROPOSAL_ID in the guard's delay queue, when the policy says it must wait.

    Uses the schedule signatures owners stored with `treasury sign` (plus those of any --signer),
    so no owner needs to be present: the paying account only sends the transaction.
    """
    treasury = open_treasury(name, config_path)
    owners = [account(s) for s in signers]
    sender = account(alias)
    unlocked([*owners, sender], passphrase_file)  # prompts, if any, before the spinner
    with console().status("scheduling: waiting for the receipt..."):
        entry = treasury.schedule(proposal_id, sender, owners)
    record = treasury.get(proposal_id)
    from ape import chain

    from treasury.wording import due, expires

    now = int(chain.blocks.head.timestamp)  # the chain's clock (the block that queued it), not this machine's
    words = {"due": due(now, entry.eta), "until": expires(now, entry.expiry)}
    data = {**proposal_dict(record), "schedule": {**_schedule_dict(entry), **words}}
    if as_json:
        emit_json(data)
    else:
        console().print(f"proposal {record.id} queued as entry {entry.entry_id}: {words['due']}; {words['until']}")


def _schedule_dict(entry) -> dict:
    return {"entry_id": entry.entry_id, "guard": entry.guard, "eta": entry.eta, "expiry": entry.expiry, "status": entry.status}


def _check_cancel(signers, guardian, **_):
    if guardian is not None and signers:
        raise InvalidInput("--guardian cancels alone: do not combine it with --signer")


@chain_command("cancel", check_input=_check_cancel)
@click.argument("proposal_id")
@click.option("--signer", "signers", multiple=True,
              help="owner alias that signs the cancellation now (repeat); default: only the stored cancel signatures")
@click.option("--guardian", default=None, help="ape account alias of a guardian of the guard, who cancels alone (and pays)")
@click.option("--account", "alias", default=None, help="ape account alias that pays (default on a local chain: test account 0)")
@click.option("--drop", is_flag=True, help="cancel the proposal for good (default: it goes back to pending)")
@passphrase_option
def cancel(name, config_path, as_json, verbose, proposal_id, signers, guardian, alias, drop, passphrase_file):
    """Cancel the guard's queue entry of the scheduled PROPOSAL_ID.

    A minority veto: the guard needs only its cancelSignaturesRequired of owner signatures, the ones
    stored with `treasury sign ID --cancel` plus those of any --signer. With --guardian, a guardian
    of the guard cancels on its own. Each owner and guardian cancels an intent once until it runs.
    The proposal goes back to pending (it can be scheduled again) or, with --drop, is cancelled.
    """
    treasury = open_treasury(name, config_path)
    payers = [account(guardian)] if guardian is not None else [account(alias)]
    owners = [account(s) for s in signers] if guardian is None else []
    unlocked([*owners, *payers], passphrase_file)  # prompts, if any, before the spinner
    with console().status("cancelling: waiting for the receipt..."):
        if guardian is not None:
            entry = treasury.cancel_as_guardian(proposal_id, payers[0], reopen=not drop)
        else:
            entry = treasury.cancel(proposal_id, payers[0], owners, reopen=not drop)
    record = treasury.get(proposal_id)
    if as_json:
        emit_json({**proposal_dict(record), "schedule": _schedule_dict(entry), "guardian": guardian is not None})
    else:
        by = " by a guardian" if guardian is not None else ""
        console().print(f"guard entry {entry.entry_id} cancelled{by}; proposal {record.id} is {record.status}")


@chain_command("execute")
@click.argument("proposal_id")
@click.option("--account", "alias", required=True, help="ape account alias that sends execTransaction")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation (for scripts)")
@click.option("--force", is_flag=True, help="send even if the policy verdict or the simulation says it fails")
@click.option("--skip-rehearsal", is_flag=True, help="on a live network, send without rehearsing on a fork first")
@click.option("--confirmations", type=click.IntRange(min=0), default=None,
              help="blocks to wait for after inclusion (default: the treasury's or the network's setting)")
@passphrase_option
def execute(name, config_path, as_json, verbose, proposal_id, alias, yes, force, skip_rehearsal, confirmations,
            passphrase_file):
    """Execute PROPOSAL_ID: show it, check the verdict, rehearse (live networks), simulate, send, wait.

    Refuses (exit code 3) when the policy denies it, it must wait for the delay, or (on a live
    network) it fails on a fork of the current block, unless --force / --skip-rehearsal.
    """
    from treasury.cli.rehearsal import print_report, report_dict
    from treasury.treasury import PolicyRefusal

    treasury = open_treasury(name, config_path)
    sender = account(alias)
    view = treasury.view(proposal_id)
    if not as_json:
        print_view(treasury, view)
    try:
        if not force:  # refused before rehearsing or asking: on the verdict just shown
            treasury.require_allowed(view.record.id, view.verdict)
        rehearsal = None
        if treasury.is_live and not skip_rehearsal:
            with console().status("rehearsing on a fork of the current block..."):
                rehearsal = treasury.rehearse(view.record.id, executor=sender.address)
            if not as_json:
                print_report(rehearsal, treasury.book)
            if not rehearsal.success:
                raise PolicyRefused(f"rehearsal fails, nothing sent: {rehearsal.reason}")
        confirm(f"Execute proposal {view.record.id} from {sender.address}?", yes)
        unlocked([sender], passphrase_file, yes)  # the passphrase prompt, if any, before the spinner
        with console().status("executing: waiting for the receipt..."):
            execution = treasury.execute(view.record.id, sender, force=force, confirmations=confirmations,
                                         skip_rehearsal=skip_rehearsal)
    except PolicyRefusal as refusal:  # the library's refusal is the CLI's exit code 3
        raise PolicyRefused(str(refusal)) from None
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
@server_options
@proposer_option
@click.argument("proposal_id")
def reject(name, config_path, as_json, verbose, proposal_id):
    """Propose the no-op at PROPOSAL_ID's nonce; once executed, PROPOSAL_ID can never run."""
    treasury = open_treasury(name, config_path)
    _proposed(treasury, treasury.reject(proposal_id), as_json)
