"""`treasury drill start|sign|import|status|list`: a recovery drill, in which every owner proves control of
their key by signing a challenge that is valid for nothing else. Nothing is sent on chain.

A thin layer over treasury.ceremony.drill: `start` issues the challenge (and can write it to a file
for owners without the team's store), `sign` has an ape account sign it (from a drill id: recorded in
the store at once; from a challenge file: a proof file to hand back), `import` verifies and records a
proof file, `status` says who proved control and which M-of-N combinations are live, `list` the drills,
`close` ends a drill early (it takes no more proofs).
With --server (or $TREASURY_SERVER, or the treasury's `server:`) the drill lives on `treasury serve`,
which verifies every proof against the chain itself (treasury.remote.drills); no local store is opened.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from treasury.cli.chain import chain_command
from treasury.cli.common import (
    account,
    console,
    emit_json,
    local_command,
    open_records,
    open_treasury,
    passphrase_option,
    printable,
    remote_store,
    server_options,
    treasury_name,
    unlocked,
)
from treasury.errors import InvalidInput

NOTHING_SENT = "Nothing is sent on chain."
_DRILL_ID = re.compile(r"drill-[0-9a-fA-F]{12}")


@click.group(short_help="Recovery drill: every owner proves control of their key (nothing is sent on chain)")
def drill():
    """Recovery drill: each owner signs a fresh challenge bound to the Safe, the chain and a nonce.

    \b
    The challenge is an EIP-712 message of our own ("ape-treasury drill"): never valid as a Safe
    transaction or as a message the Safe would vouch for. Each signature is verified against the
    Safe's current owners (by recovery, or EIP-1271 for a contract owner) and recorded as that
    owner's latest proof of control. Nothing is sent on chain.

    \b
      treasury drill start --require-device alice -o challenge.json
      treasury drill sign DRILL_ID --account alice
      treasury drill sign challenge.json --account carol -o carol-proof.json   (no store needed)
      treasury drill import carol-proof.json
      treasury drill status
      treasury drill close DRILL_ID
    """


def _server(name: str | None, config_path: Path | None) -> tuple[Any, Any] | None:
    """(HTTP client, treasury config entry) when the command works against a server, else None."""
    from treasury.config import load_config

    entry = load_config(config_path).treasury(treasury_name(name, config_path))
    remote = remote_store(config_path, entry)
    if remote is None:
        return None
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(remote.close)
    return remote.http, entry


def _print_lines(lines: list[str]) -> None:
    """Lines that may carry a server's or an address book's text: printed as they are, never as rich markup."""
    out = console()
    for line in lines:
        out.print(printable(line), highlight=False, markup=False)


def _say(line: str) -> None:
    _print_lines([line])


def _write_json(path: Path, data: Any) -> None:
    import json

    try:
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    except OSError as error:
        raise InvalidInput(f"cannot write {path}: {error.strerror or type(error).__name__}") from None


@chain_command("start")
@click.option("--require-device", "devices", multiple=True, metavar="NAME|ADDR",
              help="an owner who must sign through their hardware wallet (repeatable)")
@click.option("--expires", default="7d", show_default=True, metavar="DURATION", help="how long the challenge is valid: 48h, 7d, 2w")
@click.option("--purpose", default=None, help="the sentence owners see in the challenge (one line)")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="also write the challenge to this file, for owners who sign without the team's store")
@click.option("--account", "alias", default=None, metavar="ALIAS",
              help="with a server: the owner (or delegate) whose signature of the new challenge the server asks for")
@passphrase_option
@server_options
def start(name, config_path, as_json, verbose, devices, expires, purpose, output, alias, passphrase_file):
    """Issue a drill for the treasury's Safe: a fresh challenge every owner signs. Nothing is sent on chain."""
    from treasury.ceremony.challenge import DEFAULT_PURPOSE
    from treasury.config import parse_duration

    ttl = parse_duration(expires)
    server = _server(name, config_path)
    if server is not None:
        _start_remote(server, devices, ttl, purpose or DEFAULT_PURPOSE, output, alias, passphrase_file, as_json)
        return
    from treasury.ceremony.drill import drill_challenge, start_drill

    treasury = open_treasury(name, config_path)
    record = start_drill(treasury, require_device=devices, ttl=ttl, purpose=purpose or DEFAULT_PURPOSE)
    challenge = drill_challenge(record)
    if output is not None:
        _write_json(output, challenge.to_json())
    if as_json:
        emit_json({**_drill_dict(record), "digest": "0x" + challenge.digest().hex(), "challenge": challenge.to_json(),
                   "file": str(output) if output else None})
        return
    from treasury.wording import when

    out = console()
    out.print(f"drill [bold]{record.id}[/] started for Safe {record.safe} (chain {record.chain_id}); "
              f"expires {when(record.expires_at)}", highlight=False)
    out.print(f"challenge digest {'0x' + challenge.digest().hex()}", highlight=False)
    if record.require_device:
        label = treasury.addresses.label
        out.print("hardware wallet required for: " + ", ".join(label(o) for o in record.require_device), highlight=False)
    if output is not None:
        out.print(f"challenge written to {output}", highlight=False)
    out.print(f"each owner: treasury drill sign {record.id} --account ALIAS   (a contract owner: --owner-safe NAME "
              f"with its owners' --account). {NOTHING_SENT}", highlight=False)


def _start_remote(server: tuple[Any, Any], devices: tuple[str, ...], ttl: int, purpose: str, output: Path | None,
                  alias: str | None, passphrase_file: Path | None, as_json: bool) -> None:
    """`drill start --server`: the starter signs the new challenge, the server keeps the drill."""
    from treasury.remote.drills import challenge_of, start_drill

    http, entry = server
    if alias is None:
        raise InvalidInput("a server takes a new drill only with a signature: start it with --account ALIAS")
    starter = account(alias)
    unlocked([starter], passphrase_file)
    book = entry.address_book()
    required = [book.resolve(text, "owner") for text in devices]
    made = start_drill(http, entry.safe, entry.chain_id, starter, require_device=required, ttl=ttl, purpose=purpose)
    challenge = challenge_of(made)
    if output is not None:
        _write_json(output, challenge.to_json())
    if as_json:
        emit_json({**made, "digest": "0x" + challenge.digest().hex(), "file": str(output) if output else None})
        return
    _say(f"drill {made.get('id')} started on server {http.url}; challenge digest "
         f"{'0x' + challenge.digest().hex()}. {NOTHING_SENT}")


@chain_command("sign")
@click.argument("source")
@click.option("--account", "aliases", multiple=True, required=True, metavar="ALIAS",
              help="ape account of the owner (with --owner-safe: of the owner Safe's own owners, repeatable)")
@click.option("--owner-safe", default=None, metavar="NAME|ADDR", help="prove control for this contract owner (a Safe)")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="write the proof file here (default with a challenge file: print it)")
@passphrase_option
@server_options
def sign(name, config_path, as_json, verbose, source, aliases, owner_safe, output, passphrase_file):
    """Sign drill SOURCE (a drill id, or a challenge file) with an ape account. Nothing is sent on chain.

    With a drill id the proof is verified and recorded in the treasury's store at once. With a
    challenge file (`drill start -o`) no store is needed: the proof is written to --output (or
    printed) for `treasury drill import`.
    """
    from treasury.ceremony.drill import drill_challenge, sign_drill, sign_drill_as_contract_owner

    from_file = not _DRILL_ID.fullmatch(source)
    if not from_file and (len(aliases) > 1 and owner_safe is None):
        raise InvalidInput("one --account signs for a key owner; several only with --owner-safe")
    server = None if from_file else _server(name, config_path)
    treasury = None if from_file or server is not None else open_treasury(name, config_path)
    if server is not None:
        from treasury.remote.drills import challenge_of, get_drill

        challenge = challenge_of(get_drill(server[0], source))
    elif treasury is None:
        challenge = _read_challenge(Path(source))
    else:
        challenge = drill_challenge(treasury.store.get_drill(source))
    _check_window(challenge)  # its proof would be refused: say so before anyone signs
    signers = [account(alias) for alias in aliases]
    unlocked(signers, passphrase_file)
    if owner_safe is not None:
        owner = _owner_address(treasury if server is None else server[1].address_book(), name, config_path, owner_safe)
        proof = sign_drill_as_contract_owner(challenge, owner, signers)
    else:
        if len(signers) != 1:
            raise InvalidInput("one --account signs for a key owner; several only with --owner-safe")
        proof = sign_drill(challenge, signers[0])
    recorded: Any = None
    if server is not None:
        from treasury.remote.drills import send_proof

        recorded = send_proof(server[0], source, proof)
    elif treasury is not None:
        from treasury.ceremony.drill import record_drill_proof

        recorded = record_drill_proof(treasury, source, proof)
    if output is not None:
        _write_json(output, proof.to_json())
    if as_json or (from_file and output is None):
        emit_json({**proof.to_json(), "recorded": None if recorded is None else source,
                   "digest": "0x" + challenge.digest().hex(), "file": str(output) if output else None})
        return
    what = f"recorded in drill {source}" if recorded is not None else f"proof written to {output}"
    _say(f"{proof.owner} signed the drill challenge via {proof.via}: {what}. {NOTHING_SENT}")


def _read_challenge(path: Path) -> Any:
    from treasury.ceremony.challenge import DrillChallenge
    from treasury.files import read_json

    if not path.is_file():
        raise InvalidInput(f"{printable(str(path))} is neither a drill id (drill- and 12 hex digits) nor a challenge file")
    return DrillChallenge.from_json(read_json(path, "drill challenge"))


def _check_window(challenge: Any) -> None:
    from treasury.ceremony.challenge import wall_clock
    from treasury.ceremony.drill import check_window

    check_window(challenge, wall_clock())


def _owner_address(treasury: Any, name: str | None, config_path: Path | None, text: str) -> str:
    """An owner Safe from an address, or a name in the treasury's address book (read without a store if need be)."""
    from treasury.addresses import parse_address

    if text.lower().startswith("0x"):
        return parse_address(text, "owner Safe")
    if treasury is not None:
        resolve = getattr(treasury, "resolve_address", None) or treasury.resolve  # a Treasury, or an address book
        return resolve(text, "owner Safe")
    from treasury.config import load_config

    return load_config(config_path).treasury(treasury_name(name, config_path)).address_book().resolve(text, "owner Safe")


@chain_command("import")
@click.argument("proof_file", type=click.Path(path_type=Path, dir_okay=False))
@server_options
def import_proof(name, config_path, as_json, verbose, proof_file):
    """Verify a proof file against the Safe's current owners and record it. Nothing is sent on chain."""
    from treasury.ceremony.drill import DrillProof, find_drill, record_drill_proof
    from treasury.files import read_json

    proof = DrillProof.from_json(read_json(proof_file, "drill proof"))
    server = _server(name, config_path)
    if server is not None:
        _import_remote(server, proof, as_json)
        return
    treasury = open_treasury(name, config_path)
    record = find_drill(treasury, proof)
    stored = record_drill_proof(treasury, record.id, proof)
    if as_json:
        emit_json({"drill": record.id, "owner": stored.owner, "via": stored.via, "proved_at": stored.proved_at, "id": stored.id})
        return
    _say(f"{treasury.addresses.label(stored.owner)} proved control in drill {record.id} (via {stored.via}). "
         f"{NOTHING_SENT}")


def _import_remote(server: tuple[Any, Any], proof: Any, as_json: bool) -> None:
    """`drill import --server`: find the drill by the proof's nonce; the server verifies and keeps it."""
    from treasury.remote.drills import list_drills, send_proof

    http, entry = server
    if (proof.chain_id, proof.safe) != (entry.chain_id, entry.safe):
        raise InvalidInput(f"the proof is for Safe {proof.safe} on chain {proof.chain_id}, not Safe {entry.safe} "
                           f"on chain {entry.chain_id}")
    found = next((d for d in list_drills(http, entry.safe) if str(d.get("nonce", "")).lower() == proof.nonce), None)
    if found is None:
        raise InvalidInput(f"no drill with nonce {proof.nonce} on server {http.url}")
    stored = send_proof(http, str(found["id"]), proof)
    if as_json:
        emit_json({"drill": found["id"], **stored})
        return
    _say(f"{proof.owner} proved control in drill {found['id']} (via {proof.via}) on server {http.url}. "
         f"{NOTHING_SENT}")


@chain_command("status")
@click.argument("drill_id", required=False)
@server_options
def status(name, config_path, as_json, verbose, drill_id):
    """Who proved control in drill DRILL_ID (default: the latest), and which M-of-N combinations are live."""
    from treasury.ceremony.drill import drill_report

    server = _server(name, config_path)
    if server is not None:
        _status_remote(server, drill_id, as_json)
        return
    report = drill_report(open_treasury(name, config_path), drill_id)
    if as_json:
        emit_json(report.as_dict())
        return
    _print_lines(report.lines())


def _status_remote(server: tuple[Any, Any], drill_id: str | None, as_json: bool) -> None:
    from treasury.remote.drills import get_drill, list_drills, status_lines

    http, entry = server
    if drill_id is None:
        latest = next(iter(list_drills(http, entry.safe)), None)
        if latest is None:
            raise InvalidInput(f"no drill of Safe {entry.safe} on server {http.url}: start one with `treasury drill start`")
        drill_id = str(latest["id"])
    found = get_drill(http, drill_id)
    if as_json:
        emit_json(found)
        return
    book = entry.address_book()
    names = {o: n for o in found.get("owners", []) if (n := book.name_of(o)) is not None}
    _print_lines(status_lines(found, names))


@chain_command("list")
@server_options
def list_drills(name, config_path, as_json, verbose):
    """The treasury's drills, newest first, with how many of today's owners (read from chain) proved control in each."""
    server = _server(name, config_path)
    if server is not None:
        from treasury.remote.drills import list_drills as remote_drills

        found = remote_drills(server[0], server[1].safe)
        if as_json:
            emit_json(found)
            return
        _print_lines([f"{d.get('id')}  {d.get('status')}  {len(d.get('proven', []))} of {len(d.get('owners', []))} "
                      "owners proved control" for d in found] or ["no drills yet: `treasury drill start`"])
        return
    from treasury.ceremony.drill import proven_counts

    records = open_treasury(name, config_path)
    drills = records.store.drills(records.chain_id, records.safe)
    proofs = proven_counts(records.store.owner_proofs(records.chain_id, records.safe), records.owners())
    if as_json:
        emit_json([{**_drill_dict(d), "proofs": proofs.get(d.id, 0)} for d in drills])
        return
    from rich.markup import escape
    from rich.table import Table

    from treasury.wording import when

    table = Table(title=f"Drills of {escape(records.name)}", title_justify="left")
    for column in ("id", "status", "started", "expires", "proofs", "device required"):
        table.add_column(column, overflow="fold")
    for d in drills:
        table.add_row(d.id, d.status, when(d.created_at), when(d.expires_at), str(proofs.get(d.id, 0)),
                      escape(", ".join(records.addresses.label(o) for o in d.require_device)))
    console().print(table)
    if not drills:
        console().print("no drills yet: `treasury drill start`")


@local_command("close")
@click.argument("drill_id")
@server_options
def close(name, config_path, as_json, verbose, drill_id):
    """Close drill DRILL_ID early: it takes no more proofs (those it has keep counting). No chain needed."""
    if _server(name, config_path) is not None:
        raise InvalidInput("closing a drill on a server is not supported: it closes itself when it expires")
    records = open_records(name, config_path)
    closed = records.store.close_drill(drill_id, actor=_actor())
    if as_json:
        emit_json(_drill_dict(closed))
        return
    _say(f"drill {closed.id} closed: it takes no more proofs. {NOTHING_SENT}")


def _actor() -> str:
    """The audit actor, as a Treasury names the local user."""
    import getpass

    from treasury.wording import local_actor

    return local_actor(getpass.getuser())


def _drill_dict(record: Any) -> dict[str, Any]:
    return {"id": record.id, "chain_id": record.chain_id, "safe": record.safe, "nonce": record.nonce,
            "status": record.status, "created_at": record.created_at, "expires_at": record.expires_at,
            "require_device": list(record.require_device)}


for _command in (start, sign, import_proof, status, list_drills, close):
    drill.add_command(_command)
