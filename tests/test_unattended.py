"""Scriptable signing with real ape keystore accounts (issue 14, item 5).

The keystores hold test-mnemonic keys imported into the session's temporary APE_DATA_FOLDER, so the
accounts own the test Safe; their passphrases are test values. A run is "unattended" when stdin is
closed (CliRunner's default: no input): any prompt then ends the command, so an exit code of 0 proves
nothing was asked. Without --yes, a person answers exactly one confirmation and at most one
passphrase prompt per command, where ape alone would ask "Sign:", the passphrase and "Leave
unlocked?" for each of the two signatures a delayed proposal needs.
"""

import os
import uuid

import pytest
from test_cli import Cli, policy_for

PASSPHRASE = "correct horse battery staple"
KEY_HINTS: dict[str, str] = {}  # alias -> a slice of its private key, to prove it is never printed


@pytest.fixture
def keystore(accounts):
    """Import test account `index` as a fresh ape keystore account; removed (and locked) afterwards."""
    from ape_accounts import import_account_from_private_key
    from ape_accounts.accounts import AccountContainer

    made = []

    def make(index):
        alias = f"h5-{uuid.uuid4().hex[:8]}"
        key = accounts[index].private_key
        account = import_account_from_private_key(alias, PASSPHRASE, key)
        KEY_HINTS[alias] = str(key).removeprefix("0x")[:16]
        made.append(account)
        return account

    yield make
    for account in made:
        loaded = AccountContainer.loaded_accounts.pop(account.alias, None)
        if loaded is not None:
            loaded.set_autosign(False)  # never leave a key unlocked for the next test
        account.keyfile_path.unlink(missing_ok=True)


@pytest.fixture
def setup(make_treasury, tmp_path, chain, accounts):
    vendor = accounts[4]
    treasury, token = make_treasury(policy_for(vendor.address))
    return treasury, vendor, Cli(tmp_path / "ape-config.yaml", chain)


def variable(account):
    return f"APE_ACCOUNTS_{account.alias}_PASSPHRASE"


def secrets_absent(result, account):
    """Neither the passphrase nor any part of the key is ever printed."""
    out = result.stdout + result.stderr
    assert PASSPHRASE not in out and KEY_HINTS[account.alias] not in out


def all_signatures(treasury, pid):
    return treasury.store.signatures(pid, "safe_tx") + treasury.store.signatures(pid, "schedule")


def delayed_proposal(run, vendor):
    """6,000 TUSD is above the 5,000 TUSD delay threshold: signing covers the SafeTx and the schedule hash."""
    proposed = run.json("propose", "transfer", vendor.address, "6000 TUSD")
    assert proposed["verdict"]["outcome"] == "needs-delay"
    return proposed["id"]


def test_sign_yes_with_apes_passphrase_variable_runs_with_stdin_closed(setup, keystore, monkeypatch):
    treasury, vendor, run = setup
    alice = keystore(1)
    pid = delayed_proposal(run, vendor)
    monkeypatch.setenv(variable(alice), PASSPHRASE)
    result = run.ok("sign", pid, "--account", alice.alias, "--yes")
    purposes = sorted(s.purpose for s in all_signatures(treasury, pid))
    assert purposes == ["safe_tx", "schedule"]
    assert {s.owner for s in all_signatures(treasury, pid)} == {alice.address}
    assert "Sign:" not in result.stdout and "Leave" not in result.stdout
    secrets_absent(result, alice)


def test_propose_with_a_keystore_and_apes_passphrase_variable_runs_with_stdin_closed(setup, keystore, monkeypatch):
    """Locally the proposer signs too (its signature is stored as the first one): unlocked up front."""
    treasury, vendor, run = setup
    alice = keystore(1)
    monkeypatch.setenv(variable(alice), PASSPHRASE)
    result = run.ok("propose", "transfer", vendor.address, "10 TUSD", "--account", alice.alias, "--json")
    [stored] = treasury.store.list_proposals()
    assert stored.proposer == alice.address
    assert [s.owner for s in treasury.store.signatures(stored.id, "safe_tx")] == [alice.address]
    assert "Sign:" not in result.stdout + result.stderr and "Leave" not in result.stdout + result.stderr
    secrets_absent(result, alice)


def test_sign_yes_with_a_passphrase_file(setup, keystore, tmp_path):
    treasury, vendor, run = setup
    alice = keystore(1)
    pid = delayed_proposal(run, vendor)
    secret = tmp_path / "alice.pass"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o600)
    result = run.ok("sign", pid, "--account", alice.alias, "--yes", "--json", "--passphrase-file", secret)
    assert len(all_signatures(treasury, pid)) == 2
    secrets_absent(result, alice)


@pytest.mark.parametrize("case", ["no-passphrase", "wrong-variable", "wrong-file", "readable-file"])
def test_sign_refusals_are_one_line_and_store_nothing(setup, keystore, tmp_path, monkeypatch, case):
    treasury, vendor, run = setup
    alice = keystore(1)
    pid = delayed_proposal(run, vendor)
    words = ["sign", pid, "--account", alice.alias, "--yes"]
    secret = tmp_path / "alice.pass"
    if case == "wrong-variable":
        monkeypatch.setenv(variable(alice), "not it")
    elif case in ("wrong-file", "readable-file"):
        secret.write_text("not it\n" if case == "wrong-file" else PASSPHRASE)
        secret.chmod(0o600 if case == "wrong-file" else 0o644)
        words += ["--passphrase-file", secret]
    result = run(*words)
    assert result.exit_code == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    expected = {"no-passphrase": variable(alice), "wrong-variable": "wrong passphrase", "wrong-file": "wrong passphrase",
                "readable-file": "chmod 600"}[case]
    assert expected in lines[0]
    assert all_signatures(treasury, pid) == []
    secrets_absent(result, alice)


def test_sign_without_yes_asks_one_confirmation_and_one_passphrase(setup, keystore):
    treasury, vendor, run = setup
    alice = keystore(1)
    pid = delayed_proposal(run, vendor)
    result = run.ok("sign", pid, "--account", alice.alias, input=f"y\n{PASSPHRASE}\n")
    out = result.stdout + result.stderr
    assert out.count(f"Sign proposal {pid}") == 1
    assert out.count("passphrase") == 1  # ape's prompt, once for both signatures
    assert "Sign:" not in out and "Leave" not in out  # ape's own per-signature questions are gone
    assert len(all_signatures(treasury, pid)) == 2
    secrets_absent(result, alice)


def test_execute_yes_with_keystores_runs_unattended(setup, keystore, monkeypatch, tmp_path, accounts):
    treasury, vendor, run = setup
    alice, bob, relayer = keystore(0), keystore(1), keystore(3)
    pid = run.json("propose", "transfer", vendor.address, "100 TUSD")["id"]
    for owner in (alice, bob):
        monkeypatch.setenv(variable(owner), PASSPHRASE)
        run.ok("sign", pid, "--account", owner.alias, "--yes")
    secret = tmp_path / "relayer.pass"
    secret.write_text(PASSPHRASE)
    secret.chmod(0o600)
    executed = run.json("execute", pid, "--account", relayer.alias, "--yes", "--skip-rehearsal", "--passphrase-file", secret)
    assert executed["status"] == "executed" and executed["execution"]["executor"] == relayer.address
    assert os.environ.get(variable(relayer)) is None  # the file alone unlocked it
