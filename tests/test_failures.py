"""Clear failures (issue 14, item 6), each through the CLI.

- A node that does not answer is one `Error:` line naming it (scheme, host and port: never the path
  or userinfo where keys live), exit 1, nothing stored; treasury never starts an anvil in its place.
  The "node" is a reserved port: bound by this test (so nothing else takes it) but not listening,
  so every connection is refused at once.
- ape's connection probe is the first request: one transient failure there is retried under the
  configured policy like every later call (the fault proxy fails exactly that request).
- Two `execute`s of one proposal: the other process reconciles our broadcast before we record it;
  the process whose transaction executed still reports its own success, and nothing is sent twice.
- Every command and option explains itself in --help.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml
from builders import signed_transfer
from rpc_proxy import FaultProxy
from test_cli import Cli, policy_for

from treasury.cli import cli

TREASURY_CLI = str(Path(sys.executable).parent / "treasury")


@pytest.fixture
def closed_port():
    """A loopback port held by a bound socket that never listens: connections are refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.fixture
def setup(make_treasury, tmp_path, chain, accounts):
    vendor = accounts[4]
    treasury, token = make_treasury(policy_for(vendor.address))
    config = tmp_path / "ape-config.yaml"
    text = yaml.safe_load(config.read_text())
    text["treasury"]["rpc"] = {"attempts": 2, "max_delay": 0.1}  # a dead node is reported in well under a second
    config.write_text(yaml.safe_dump(text))
    return treasury, vendor, Cli(config, chain)


def one_error_line(result):
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error:"), (result.exit_code, result.stderr)
    return lines[0]


def test_a_silent_node_is_one_line_naming_it_without_its_key(setup, closed_port):
    treasury, vendor, run = setup
    node = f"http://127.0.0.1:{closed_port}"
    before = treasury.store.list_proposals()
    for words in (["info"], ["propose", "transfer", vendor.address, "10 TUSD"]):
        result = run(*words, "--network", f"{node}/v3/SECRETKEY", chain=False)
        line = one_error_line(result)
        assert node in line and "SECRETKEY" not in line and "README" in line, line
        assert "connection refused" in line
    assert treasury.store.list_proposals() == before


def test_a_local_network_with_no_node_starts_no_anvil(setup, closed_port, tmp_path):
    """ape-foundry would start a fresh anvil on the named port (or, with `host: auto`, anywhere)."""
    treasury, _vendor, run = setup
    section = yaml.safe_load(Path(run.config).read_text())["treasury"]
    project = tmp_path / "project"
    project.mkdir()
    node = f"http://127.0.0.1:{closed_port}"
    # ape-foundry runs the `anvil` it finds on PATH: put first on PATH one that only records that it
    # was run (a real anvil could not bind the held port, so "nobody listens there" would prove nothing)
    bin_dir, ran = tmp_path / "bin", tmp_path / "anvil-ran"
    bin_dir.mkdir()
    fake = bin_dir / "anvil"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> '{ran}'\nexit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    for host in (node, "auto"):
        config = {"name": "no-node", "plugins": [{"name": "foundry"}], "foundry": {"host": host}, "treasury": section}
        (project / "ape-config.yaml").write_text(yaml.safe_dump(config))
        done = subprocess.run([TREASURY_CLI, "info", "--network", "ethereum:local:foundry"], cwd=project, env=env,
                              capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("Error:"), done.stderr
        assert "never starts a node" in lines[0] and (node in lines[0] if host == node else "auto" in lines[0])
    assert not ran.exists(), ran.read_text()  # no anvil was run in its place (not even asked its version)


@pytest.mark.parametrize("kind", ["401", "400"])
def test_a_node_that_refuses_the_bare_probe_is_still_a_node(setup, chain, kind):
    """The probe sends none of ape's configured request headers: a node wanting an Authorization
    header refuses it (401), yet it answered. ape (with the headers) connects and the command runs."""
    _treasury, _vendor, run = setup
    with FaultProxy(chain.provider.uri) as proxy:
        proxy.inject(kind, method="eth_chainId")  # the probe only: ape's own requests are answered
        result = run.ok("info", "--json", "--network", proxy.url, chain=False)
    assert proxy.methods[0] == "eth_chainId" and proxy.methods[1] != "eth_chainId"  # refused once, not retried
    assert result.stdout.strip().startswith("{")


def test_a_node_that_refuses_everything_is_not_reported_as_silent(setup, chain):
    _treasury, _vendor, run = setup
    with FaultProxy(chain.provider.uri) as proxy:
        proxy.inject("401", times=1000)  # a wrong API key: every request refused
        result = run("info", "--network", proxy.url, chain=False)
    assert result.exit_code != 0
    assert "no node answers" not in result.stderr and "connection refused" not in result.stderr, result.stderr


@pytest.mark.parametrize("kind", ["503", "500", "429", "drop"])
def test_a_transient_fault_on_the_very_first_request_is_retried(setup, chain, kind):
    _treasury, _vendor, run = setup
    with FaultProxy(chain.provider.uri) as proxy:
        proxy.inject(kind)  # the next request, whichever it is: the connection probe
        result = run.ok("info", "--json", "--network", proxy.url, chain=False)
    assert proxy.methods[:2] == ["eth_chainId", "eth_chainId"]  # failed once, then answered
    assert result.stdout.strip().startswith("{")


def test_the_execute_whose_transaction_ran_reports_success_when_another_reconciled_first(
        setup, owners, monkeypatch, chain):
    """A second `execute` (another process: its own Treasury and store connection) reconciles our
    broadcast between the broadcast and our own record of it."""
    import treasury.execution.send as send
    from treasury.treasury import Treasury

    treasury, vendor, run = setup
    record = signed_transfer(treasury, owners, vendor.address, "10 TUSD")
    real_broadcast = send.broadcast
    reconciled = []

    def broadcast_then_the_other_reconciles(signed):
        receipt = real_broadcast(signed)
        other = Treasury.load(treasury.name, Path(run.config))
        try:
            other.reconcile()  # (its first chain access reconciles too: both land in other.reconciled)
            reconciled.extend(item.outcome for item in other.reconciled)
        finally:
            other.store.close()
        return receipt

    monkeypatch.setattr(send, "broadcast", broadcast_then_the_other_reconciles)
    nonce = treasury.onchain_nonce()
    result = run.json("execute", record.id, "--account", "TEST::3", "--yes", "--skip-rehearsal")
    assert reconciled == ["executed"]  # the other process did record it first
    assert result["status"] == "executed" and result["execution"]["success"] is True
    [execution] = treasury.store.executions(record.id)
    assert result["execution"]["tx_hash"] == execution.tx_hash
    assert treasury.onchain_nonce() == nonce + 1  # sent once
    again = run("execute", record.id, "--account", "TEST::3", "--yes", "--skip-rehearsal")
    assert again.exit_code == 1 and treasury.onchain_nonce() == nonce + 1  # and never again


def test_safe_codes_are_given_in_words(setup, accounts):
    from treasury.errors import worded_safe_codes

    treasury, vendor, run = setup
    pid = run.json("propose", "transfer", vendor.address, "10 TUSD")["id"]
    refused = run("sign", pid, "--account", "TEST::5", "--kind", "approved_hash", "--yes")  # not an owner
    line = one_error_line(refused)
    assert "GS030: only an owner can approve a hash" in line, line
    assert worded_safe_codes("execution reverted: GS026").startswith("execution reverted: GS026: a signature is not")
    explained = "GS020: not enough signatures for the threshold (the signature data is too short)"
    assert worded_safe_codes(explained) == explained  # already in words: unchanged
    assert treasury.store.signatures(pid) == []


def _walk(command, path=()):
    """Every command of the tree: groups (lazy ones included) and their subcommands."""
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            yield from _walk(command.get_command(ctx, name), (*path, name))


def test_every_command_and_option_has_help_text():
    missing = []
    for path, command in _walk(cli):
        name = " ".join(("treasury", *path))
        if not (command.help or command.short_help):
            missing.append(f"{name}: no help")
        missing += [f"{name} {p.opts[0]}: no help" for p in command.params if isinstance(p, click.Option) and not p.help]
    assert missing == []
