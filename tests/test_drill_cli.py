"""`treasury drill` on anvil for the 3-of-5 ceremony Safe: start, sign (from the store and from a file,
a contract owner through its own owner), import, status and list; nothing is sent on chain; every
refusal is one `Error:` line, exit code 1, and leaves the store as it was."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner
from test_cli import Cli

from treasury.ceremony.challenge import DrillChallenge
from treasury.cli import cli


@pytest.fixture
def run(ceremony, chain):
    return Cli(ceremony.treasury.config_path, chain)


def test_help_lists_the_drill_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "drill" in result.output
    for sub in ("start", "sign", "import", "status", "list"):
        assert CliRunner().invoke(cli, ["drill", sub, "--help"]).exit_code == 0, sub


def store_state(treasury):
    store = treasury.store
    return ([(e.seq, e.entry_hash) for e in store.audit_entries()],
            store.owner_proofs(treasury.chain_id, treasury.safe), store.drills(treasury.chain_id, treasury.safe))


def refused(run, *args, match: str, **kwargs) -> str:
    result = run(*args, **kwargs)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1, (args, result.stdout, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("Error: ") and match in lines[0], (args, result.stderr)
    return lines[0]


def test_a_whole_drill_from_the_command_line(ceremony, run, chain, tmp_path):
    treasury = ceremony.treasury
    nonces = [chain.provider.get_nonce(a.address) for a in (*ceremony.eoas, ceremony.vault_signer)]
    safe_nonce = treasury.onchain_nonce()
    challenge_file = tmp_path / "challenge.json"
    started = run.json("drill", "start", "-o", challenge_file, "--expires", "2d")
    drill_id = started["id"]
    assert started["expires_at"] - started["created_at"] == 2 * 86_400 and started["status"] == "open"
    challenge = DrillChallenge.from_json(json.loads(challenge_file.read_text()))
    assert challenge.nonce == started["nonce"] and "0x" + challenge.digest().hex() == started["digest"]
    # alice and bob sign against the store: recorded at once.
    for alias in ("TEST::0", "TEST::1"):
        out = run.ok("drill", "sign", drill_id, "--account", alias).stdout
        assert "recorded in drill" in out and "Nothing is sent on chain" in out
    # carol signs the file on her own machine (no store), then the proof is imported.
    carol_file = tmp_path / "carol.json"
    run.ok("drill", "sign", challenge_file, "--account", "TEST::2", "-o", carol_file, chain=True)
    carol = json.loads(carol_file.read_text())
    assert (carol["owner"], carol["via"]) == (ceremony.eoas[2].address, "test")
    assert "proved control" in run.ok("drill", "import", carol_file).stdout
    # The vault (a contract owner) proves control through its own owner.
    vault_file = tmp_path / "vault.json"
    run.ok("drill", "sign", challenge_file, "--owner-safe", "vault", "--account", "TEST::6", "-o", vault_file)
    assert run.json("drill", "import", vault_file)["via"] == "contract"
    status = run.json("drill", "status")
    assert status["drill"]["id"] == drill_id and status["missing"] == [ceremony.eoas[3].address]
    assert any("4 of 5 owners proved control" in line for line in status["lines"])
    assert status["liveness"] is not None
    assert "3-of-5: 4 of 10 combinations live; dave never proven" in status["lines"]
    text = run.ok("drill", "status", drill_id).stdout
    assert "dave: not yet proved" in text
    listed = run.json("drill", "list")
    assert [(d["id"], d["proofs"]) for d in listed] == [(drill_id, 4)]
    assert "drill-" in run.ok("drill", "list").stdout
    # Nothing was sent: no account's nonce moved, nor the Safe's.
    assert [chain.provider.get_nonce(a.address) for a in (*ceremony.eoas, ceremony.vault_signer)] == nonces
    assert treasury.onchain_nonce() == safe_nonce
    assert treasury.store.verify_audit_log()


def test_every_refusal_is_one_line_and_changes_nothing(ceremony, run, tmp_path):
    treasury = ceremony.treasury
    challenge_file = tmp_path / "challenge.json"
    drill_id = run.json("drill", "start", "--require-device", "alice", "-o", challenge_file)["id"]
    run.ok("drill", "sign", drill_id, "--account", "TEST::1")
    bob_file = tmp_path / "bob.json"
    run.ok("drill", "sign", challenge_file, "--account", "TEST::1", "-o", bob_file)
    stranger_file = tmp_path / "stranger.json"
    run.ok("drill", "sign", challenge_file, "--account", "TEST::8", "-o", stranger_file)
    expired = tmp_path / "expired.json"
    expired.write_text(json.dumps(DrillChallenge.create(treasury.safe, treasury.chain_id, int(time.time()) - 100, 10).to_json()))
    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"type": "ape-treasury drill proof", "version": 1, "owner": "0x12"}')
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**json.loads(bob_file.read_text()), "owner": ceremony.eoas[2].address}))
    before = store_state(treasury)
    refused(run, "drill", "sign", drill_id, "--account", "TEST::0", match="hardware wallet")  # alice: device required
    refused(run, "drill", "sign", drill_id, "--account", "TEST::1", match="already proved control")
    refused(run, "drill", "sign", "drill-000000000000", "--account", "TEST::1", match="no drill")
    refused(run, "drill", "sign", tmp_path / "missing.json", "--account", "TEST::1", match="neither a drill id")
    refused(run, "drill", "sign", expired, "--account", "TEST::1", match="expired")
    refused(run, "drill", "sign", drill_id, "--account", "TEST::8", match="not a current owner")
    refused(run, "drill", "sign", drill_id, "--account", "TEST::1", "--account", "TEST::2", match="several only with --owner-safe")
    refused(run, "drill", "sign", drill_id, "--owner-safe", "vault", "--account", "TEST::8", match="not an owner of owner Safe")
    refused(run, "drill", "import", bob_file, match="already proved control")
    refused(run, "drill", "import", stranger_file, match="not a current owner")
    refused(run, "drill", "import", garbage, match="missing signature")
    refused(run, "drill", "import", forged, match="recovers to")
    refused(run, "drill", "start", "--require-device", "treasurer", match="not an owner")
    refused(run, "drill", "start", "--expires", "soon", match="duration")
    refused(run, "drill", "status", "drill-000000000000", match="no drill")
    assert store_state(treasury) == before


def test_a_drill_against_the_team_server_keeps_no_laptop_store(ceremony, chain, tmp_path):
    """`--server`: the drill lives on `treasury serve` (its own store), which verifies each proof itself."""
    from server_helpers import running_server
    from test_remote_cli import laptop

    from treasury.store import Store

    treasury = ceremony.treasury
    server_store = Store.open(str(tmp_path / "server.db"))
    try:
        with running_server(server_store, config_path=treasury.config_path, write_rate=1_000_000.0,
                            write_burst=10_000) as url:
            folder, config = laptop(tmp_path, "laptop", treasury.config_path, server=url)
            run = Cli(config, chain)
            challenge_file = tmp_path / "challenge.json"
            refused(run, "drill", "start", match="--account")
            started = run.json("drill", "start", "--account", "TEST::0", "-o", challenge_file)
            drill_id = started["id"]
            assert server_store.get_drill(drill_id).nonce == DrillChallenge.from_json(json.loads(challenge_file.read_text())).nonce
            for alias in ("TEST::0", "TEST::1"):
                assert "recorded in drill" in run.ok("drill", "sign", drill_id, "--account", alias).stdout
            carol_file = tmp_path / "carol.json"
            run.ok("drill", "sign", challenge_file, "--account", "TEST::2", "-o", carol_file)
            assert "proved control" in run.ok("drill", "import", carol_file).stdout
            refused(run, "drill", "sign", drill_id, "--account", "TEST::8", match="not a current owner")  # the server says no
            refused(run, "drill", "import", carol_file, match="already proved control")  # carol again
            status = run.json("drill", "status")
            assert status["id"] == drill_id and len(status["proofs"]) == 3
            text = run.ok("drill", "status", drill_id).stdout
            assert "3 of 5 owners proved control" in text and "dave: not yet proved" in text
            assert [d["id"] for d in run.json("drill", "list")] == [drill_id]
            assert "3 of 5 owners proved control" in run.ok("drill", "list").stdout
            assert {p.owner for p in server_store.owner_proofs(treasury.chain_id, treasury.safe, drill_id)} == {
                a.address for a in ceremony.eoas[:3]}
            assert sorted(p.name for p in folder.iterdir()) == ["ape-config.yaml"]  # no laptop store
            assert treasury.store.drills(treasury.chain_id, treasury.safe) == []  # nor the team's local one
    finally:
        server_store.close()


def test_a_drill_is_closed_from_the_command_line(ceremony, run):
    treasury = ceremony.treasury
    drill_id = run.json("drill", "start")["id"]
    run.ok("drill", "sign", drill_id, "--account", "TEST::0")
    assert "closed" in run.ok("drill", "close", drill_id, chain=False).stdout
    assert treasury.store.get_drill(drill_id).status == "closed"
    assert [e.action for e in treasury.store.audit_entries()][-1] == "drill.closed"
    refused(run, "drill", "sign", drill_id, "--account", "TEST::1", match="closed")
    refused(run, "drill", "close", drill_id, match="final", chain=False)
    refused(run, "drill", "close", "drill-000000000000", match="no drill", chain=False)
    assert len(treasury.store.owner_proofs(treasury.chain_id, treasury.safe, drill_id)) == 1


def test_text_from_a_server_or_an_address_book_is_printed_as_it_is():
    """Rich markup in a server's answer (a drill id, a status) must not style or hide anything."""
    import click

    from treasury.cli.drill import _print_lines

    @click.command()
    def show():
        _print_lines(["drill [bold]x[/bold] [link=https://evil.example]here[/link] [red"])

    result = CliRunner().invoke(show)
    assert result.exit_code == 0, result.output
    assert "drill [bold]x[/bold] [link=https://evil.example]here[/link] [red" in result.output
