"""Store-only commands: list, show, export, import, log. They read the config and the store, nothing else.

None of them imports ape, web3 or safe-eth-py unless given --network (show and export accept it:
show then adds the live policy verdict, export verifies every signature against the Safe's current
owners first). tests/test_cli_offline.py holds them to that; bench/cli_speed.py times them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from treasury.cli.common import (
    console,
    emit_json,
    labeller,
    local_command,
    open_records,
    open_treasury,
    optional_network,
    print_records,
    print_view,
    proposal_dict,
    server_options,
    view_dict,
)
from treasury.errors import InvalidInput
from treasury.store.errors import TamperedRecord

STATUSES = ("pending", "scheduled", "executed", "failed", "rejected", "superseded", "cancelled")


@local_command("list")
@server_options
@click.option("--status", type=click.Choice((*STATUSES, "draft")), default=None,
              help="only proposals in this status (draft: only the drafts)")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="at most this many")
def list_proposals(name, config_path, as_json, verbose, status, limit):
    """List the treasury's proposals by nonce, then its open drafts (denied proposals kept with
    `propose --force`, no nonce). Reads the store only: no chain, no network.

    --json: the proposals only, or with --status draft the drafts only (each with "kind": "draft").
    """
    records = open_records(name, config_path)
    found = [] if status == "draft" else records.proposals(status=status, limit=limit)
    if as_json:  # one kind of record per array: scripts reading proposals never meet a draft
        emit_json([draft_dict(d) for d in open_drafts(records)] if status == "draft" else [proposal_dict(r) for r in found])
        return
    drafts = open_drafts(records) if status in (None, "draft") else []
    title = f"{records.name}: Safe {records.safe} on chain {records.chain_id}" + (f" ({status})" if status else "")
    if status != "draft":
        print_records(found, title)
    if drafts or status == "draft":
        _print_drafts(drafts)


def open_drafts(records: Any) -> list[Any]:
    """The treasury's open drafts, oldest first; none against a server (drafts are local only)."""
    if getattr(records.store, "is_remote", False) or not hasattr(records.store, "drafts"):
        return []
    return list(records.store.drafts(safe=records.safe, chain_id=records.chain_id))


def draft_dict(draft: Any) -> dict[str, Any]:
    """A draft as JSON: what it would do, why it was denied, where it stands (`kind` tells it from a proposal)."""
    return {"id": draft.id, "kind": "draft", "status": draft.status, "chain_id": draft.chain_id, "safe": draft.safe,
            "to": draft.to, "value": str(draft.value), "data": "0x" + draft.data.hex(), "operation": draft.operation,
            "title": draft.title, "description": draft.description, "proposer": draft.proposer, "reason": draft.reason,
            "proposal_id": draft.proposal_id, "created_at": draft.created_at.isoformat()}


def _print_drafts(drafts: list[Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="drafts (denied, no nonce: `treasury propose draft ID` or `treasury drop ID`)", title_justify="left")
    for column in ("id", "title", "denied because"):
        table.add_column(column, overflow="fold")
    for d in drafts:
        table.add_row(d.id, escape(d.title), escape(d.reason))
    console().print(table)
    if not drafts:
        console().print("no drafts")


@local_command("show")
@server_options
@click.argument("proposal_id")
@optional_network("connect (as ape's --network) to add the live policy verdict and the Safe's threshold")
def show(name, config_path, as_json, verbose, proposal_id, network):
    """Show PROPOSAL_ID: the decoded intent, the signatures, and the domain, message and safeTxHash
    hashes to compare with a hardware wallet's screen. With --network, the policy verdict and the
    review's findings too (rules only: `treasury review ID` asks the model and keeps the review)."""
    if network is not None:
        from treasury.cli.chain import connected

        with connected(network, as_json):
            treasury = open_treasury(name, config_path)
            _show(treasury, treasury.view(proposal_id), as_json, reviewed=True)
        return
    records = open_records(name, config_path)
    _show(records, records.view(proposal_id), as_json)


def _show(treasury: Any, view: Any, as_json: bool, reviewed: bool = False) -> None:
    """The view and its signature sets; connected (`reviewed`), the review's findings too (rules only, not stored)."""
    sets = signature_sets(treasury, view.record)
    review: dict[str, Any] = {}
    if reviewed:
        from treasury.cli.review import print_review, review_dict, review_for_signer

        done, unavailable = review_for_signer(treasury, view.record.id)
        review = review_dict(done, unavailable)
    if as_json:
        emit_json({**view_dict(view, treasury), "signature_sets": sets, **review})
    else:
        print_view(treasury, view)
        _print_sets(sets, labeller(treasury))
        if reviewed:
            print_review(done, unavailable)


def _over(purpose: str, signature: Any) -> str:
    if purpose == "safe_tx":
        return "the SafeTx"
    if purpose == "schedule":
        return f"schedule nonce {signature.intent_nonce}"
    return f"cancel of entry {signature.entry_id}"


def signature_sets(treasury: Any, record: Any) -> list[dict[str, Any]]:
    """The SafeTx, schedule and cancel signatures stored for a proposal, one set per signed hash,
    with how many each needs now. `treasury` is a Treasury (connected: the requirements come from
    the Safe and the guard, and a set no longer needed says so) or a TreasuryRecords (store only:
    each signature checked to be its owner's over its hash, the requirements unknown)."""
    needs = {n.signed_hash: n for n in treasury.signature_needs(record.id)} if hasattr(treasury, "signature_needs") else None
    if needs is None:
        stored = list(treasury.signatures(record.id)) + list(treasury.guard_signatures(record.id))
    else:
        stored = list(treasury.store.signatures(record.id, None))
    sets: dict[str, dict[str, Any]] = {}
    for signature in stored:
        entry = sets.setdefault(signature.signed_hash, {
            "purpose": signature.purpose, "over": _over(signature.purpose, signature), "signed_hash": signature.signed_hash,
            "signers": [], "required": None, "missing": None, "needed_now": None,
        })
        entry["signers"].append({"owner": signature.owner, "kind": signature.kind})
    for digest, need in (needs or {}).items():
        entry = sets.setdefault(digest, {"purpose": need.purpose, "over": need.over, "signed_hash": digest, "signers": []})
        # Counted as the chain counts them now: a stored signature of a removed owner does not count.
        entry.update(required=need.required, missing=need.missing, needed_now=True, valid_signers=list(need.signers))
    if needs is not None:
        for entry in sets.values():
            if entry["needed_now"] is None:
                entry["needed_now"] = False  # a spent schedule nonce, a cancelled entry's cancel, or not needed yet
    order = {"safe_tx": 0, "schedule": 1, "cancel": 2}
    return sorted(sets.values(), key=lambda e: (order[e["purpose"]], e["over"]))


def _print_sets(sets: list[dict[str, Any]], label: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Signatures by what they are over", title_justify="left")
    for column in ("purpose", "over", "signed by", "needed"):
        table.add_column(column, overflow="fold")
    for entry in sets:
        signers = "\n".join(f"{escape(label(s['owner']))} ({s['kind']})" for s in entry["signers"]) or "none yet"
        if entry["required"] is not None:
            valid = len(entry.get("valid_signers", entry["signers"]))
            needed = f"{valid} of {entry['required']}" + (f", {entry['missing']} missing" if entry["missing"] else ", enough")
        elif entry["needed_now"] is False:
            needed = "not needed now"
        else:
            needed = "pass --network to count"
        table.add_row(entry["purpose"], f"{entry['over']}\n{entry['signed_hash']}", signers, needed)
    console().print(table)


@local_command("export")
@server_options
@click.argument("proposal_id")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False), required=False)
@optional_network("connect (as ape's --network) to verify each signature against the Safe's current owners first")
@click.option("--force", is_flag=True, help="overwrite FILE if it exists")
@click.option("--format", "file_format", type=click.Choice(("bundle", "tx-builder")), default="bundle", show_default=True,
              help="bundle: the proposal and its signatures, for `treasury import`; tx-builder: its calls as a "
                   "Safe{Wallet} Transaction Builder file (no nonce, no signatures)")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="the file to write (instead of FILE); a tx-builder file without one goes to stdout")
def export(name, config_path, as_json, verbose, proposal_id, file, network, force, file_format, output):
    """Write PROPOSAL_ID and its signatures to FILE (JSON), for an offline signer.

    From the store alone, every signature is checked to be its owner's over the proposal's
    safeTxHash; with --network, also that each signer is still an owner (and on-chain approvals).
    An existing FILE is never replaced without --force.

    With --format tx-builder, the proposal's calls (a batch's inner calls, or the one call) are
    written as a file Safe{Wallet}'s Transaction Builder app loads; `treasury propose batch` reads it back.
    """
    if file is not None and output is not None:
        raise InvalidInput("give the file once: as FILE or as -o FILE")
    file = file or output
    if file is not None and file.exists() and not force:
        raise InvalidInput(f"{file} exists: nothing written (use --force to overwrite it)")
    if file_format == "tx-builder":
        _export_tx_builder(name, config_path, as_json, proposal_id, file, network)
        return
    if file is None:
        raise InvalidInput("a bundle needs a file to write: treasury export ID FILE (or -o FILE)")
    if network is not None:
        from treasury.cli.chain import connected

        with connected(network, as_json):
            treasury = open_treasury(name, config_path)
            record = treasury.get(proposal_id)
            bundle = treasury.export_bundle(record.id, file)
    else:
        from treasury.records import OFFLINE_VERIFIED_KINDS, OWNER_STATUS_NOTE, UNVERIFIED_NOTE

        records = open_records(name, config_path)
        record = records.get(proposal_id)
        bundle = records.export_bundle(record.id, file)
        # The bundle carries every stored signature (its importer verifies each against the chain);
        # offline only the EOA ones are verified, and only as their key's signature.
        unverified = [s for s in bundle["signatures"] if s["kind"] not in OFFLINE_VERIFIED_KINDS]
        count = len(bundle["signatures"]) - len(unverified)
        if as_json:
            emit_json({**proposal_dict(record), "file": str(file), "signatures": count,
                       "unverified": [{"owner": s["owner"], "kind": s["kind"], "verified": False} for s in unverified],
                       "signatures_note": OWNER_STATUS_NOTE, "guard_signatures": len(bundle.get("guard_signatures", []))})
        else:
            out = console()
            queue = len(bundle.get("guard_signatures", []))
            also = f" and {queue} schedule/cancel signature(s)" if queue else ""
            out.print(f"wrote {file}: proposal {record.id} with {count} signature(s){also} verified offline ({OWNER_STATUS_NOTE})")
            for s in unverified:
                out.print(f"  also in the file: {s['owner']} ({s['kind']}) [yellow]{UNVERIFIED_NOTE}[/]")
        return
    count, queue = len(bundle["signatures"]), len(bundle.get("guard_signatures", []))
    if as_json:
        emit_json({**proposal_dict(record), "file": str(file), "signatures": count, "guard_signatures": queue})
    else:
        also = f" and {queue} schedule/cancel signature(s)" if queue else ""
        console().print(f"wrote {file}: proposal {record.id} with {count} signature(s){also}")


def _export_tx_builder(name, config_path, as_json, proposal_id, file, network) -> None:
    """`export --format tx-builder`: the proposal's calls as a Safe{Wallet} Transaction Builder file."""
    from rich.markup import escape

    from treasury.formats.tx_builder import proposal_file, tx_builder_text, write_tx_builder

    if network is not None:
        raise InvalidInput("--network verifies signatures, and a Transaction Builder file carries none: leave it out")
    records = open_records(name, config_path)
    record = records.get(proposal_id)
    records.hashes(record)  # a record whose fields no longer hash to its safeTxHash is never exported
    data = proposal_file(record)
    if file is None:
        click.echo(tx_builder_text(data), nl=False)
        return
    write_tx_builder(data, file)
    count = len(data["transactions"])
    if as_json:
        emit_json({**proposal_dict(record), "file": str(file), "format": "tx-builder", "transactions": count,
                   "checksum": data["meta"]["checksum"]})
        return
    console().print(f"wrote {escape(str(file))}: proposal {record.id} as a Safe{{Wallet}} Transaction Builder file "
                    f"with {count} transaction(s) for chain {record.chain_id}", highlight=False)
    console().print("  Safe{Wallet} numbers it with a nonce of its own; signatures are not part of this format "
                    "(--format bundle carries them)", highlight=False)


@local_command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@optional_network("connect (as ape's --network) to verify every signature against the Safe's current owners instead")
def import_bundle(name, config_path, as_json, verbose, file, network):
    """Take in bundle FILE: its proposal (created if this store never saw it) and its signatures.

    Without --network, no node is needed: the safeTxHash is recomputed from the bundle's fields and
    each eip712 / eth_sign signature must recover to one of the owners the bundle records (approved
    hash and contract signatures cannot be checked offline: stored, and said so). They are marked to
    be verified again by the chain, which happens with --network and before sign or execute count
    them. Anything that does not check refuses the whole bundle: nothing is stored.
    """
    from treasury.signatures.bundle import read_bundle

    read_bundle(file)  # refused before a store is opened or a node contacted
    if network is not None:
        from treasury.cli.chain import connected

        with connected(network, as_json):
            treasury = open_treasury(name, config_path)
            record, added = treasury.import_bundle(file)
            checked = treasury.reverify(record.id)
            signers = [s.owner for s in treasury.store.signatures(record.id)]
        rejected = [{"owner": s.owner, "purpose": s.purpose, "reason": why} for s, why in checked.rejected]
        if as_json:
            emit_json({**proposal_dict(record), "added": added, "signers": signers, "verified_by": "chain",
                       "reverified": len(checked.confirmed), "rejected": rejected})
            return
        out = console()
        out.print(f"proposal {record.id}: {added} new signature(s), {len(signers)} in total, verified against the chain")
        for item in rejected:
            out.print(f"  [red]not counted[/]: {item['owner']} ({item['purpose']}): {item['reason']}")
        return
    _import_offline(name, config_path, as_json, file)


def _import_offline(name: str | None, config_path: Path | None, as_json: bool, file: Path) -> None:
    from treasury.records import TreasuryRecords

    records = TreasuryRecords.load(name, config_path, create=True)  # importing may make the store's first proposal
    click.get_current_context().call_on_close(records.close)
    done = records.import_bundle(file)
    signers = [s.owner for s in records.store.signatures(done.record.id)]
    unchecked = [{"owner": s.owner, "kind": s.kind, "verified": False} for s in done.unchecked]
    if as_json:
        emit_json({**proposal_dict(done.record), "created": done.created, "added": len(done.added), "signers": signers,
                   "verified_by": "bundle", "unchecked": unchecked, "bundle_owners": list(done.owners),
                   "bundle_threshold": done.threshold})
        return
    out = console()
    made = "created" if done.created else "already stored"
    out.print(f"proposal {done.record.id} ({made}): {len(done.added)} new signature(s), {len(signers)} in total, "
              f"verified offline against the {len(done.owners)} owners the bundle records (threshold {done.threshold}); "
              "they are checked again against the chain with --network and before sign or execute count them")
    for item in unchecked:
        out.print(f"  {item['owner']} ({item['kind']}): [yellow]cannot be checked offline[/] (its proof is on chain)")


@local_command("log")
@server_options
@click.option("--proposal", "proposal_id", default=None, help="only this proposal's entries")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="the newest this many entries")
def log(name, config_path, as_json, verbose, proposal_id, limit):
    """The store's append-only audit log, newest last, and whether its hash chain verifies.

    The whole chain is verified; the newest --limit entries are shown.
    Exit code 1 when the chain is broken (an entry was edited, removed or reordered).
    """
    records = open_records(name, config_path)
    report = records.verify_log()  # first: a broken log is reported as broken, whatever its entries hold
    try:
        entries = records.audit_log(proposal_id, limit=limit)
    except TamperedRecord:
        if report.ok:
            raise
        entries = []  # an entry that cannot be read back: the report below says which
    if as_json:
        emit_json({"verified": report.ok, "entries": report.entries, "first_bad_seq": report.first_bad_seq,
                   "problem": report.problem, "log": [
                       {"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                        "proposal_id": e.proposal_id, "payload": e.payload, "entry_hash": e.entry_hash} for e in entries]})
    else:
        _print_log(entries, report, labeller(records))
    if not report.ok:
        raise click.ClickException(f"audit log broken at entry {report.first_bad_seq}: {report.problem}")


def _print_log(entries: list, report: Any, label: Any) -> None:
    """The log as a table, with the address book's name beside every address an entry mentions."""
    from rich.markup import escape
    from rich.table import Table

    from treasury.wording import actor, labelled

    table = Table(title="Audit log", title_justify="left")
    for column in ("seq", "at", "actor", "action", "proposal", "details"):
        table.add_column(column, overflow="fold")
    for e in entries:
        details = ", ".join(f"{k}={v}" for k, v in sorted(e.payload.items()) if k not in ("data", "content_hash"))
        details = labelled(details, label)  # before clipping: an address cut in half would get no name
        details = details if len(details) <= 200 else details[:200] + "…"
        table.add_row(str(e.seq), e.at.strftime("%Y-%m-%d %H:%M:%S"), escape(actor(e.actor, label)), e.action,
                      e.proposal_id or "", escape(details))
    console().print(table)
    if report.ok:
        console().print(f"[green]verified[/]: {report.entries} entries, hash chain intact")
