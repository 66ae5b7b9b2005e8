"""The `treasury` CLI on anvil: the whole flow, --json keys, confirmations, and a table of bad input
where every case must give one `Error:` line, a non-zero exit and leave the store untouched."""

import json
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner

from treasury.cli import cli

PROPOSAL_KEYS = {"id", "safe", "chain_id", "nonce", "safe_tx_hash", "status", "to", "value", "data", "operation", "title"}


def policy_for(vendor):
    return {
        "recipients": [vendor],
        "calls": [{"target": "TUSD", "function": "transfer(address,uint256)"}],
        "caps": [{"token": "TUSD", "amount": "10000", "period": "1d", "delay_threshold": "5000"}],
    }


class Cli:
    """Runs `treasury ...` against a test treasury's config and the test's own anvil."""

    def __init__(self, config, chain):
        self.config = str(config)
        self.network = chain.provider.uri if chain is not None else None

    def __call__(self, *args, chain=True, input=None, config=True):
        words = [str(a) for a in args]
        if config:
            words += ["--config", self.config]
        if chain:
            words += ["--network", self.network]
        return CliRunner(mix_stderr=False).invoke(cli, words, input=input)

    def ok(self, *args, **kwargs):
        result = self(*args, **kwargs)
        detail = "".join(traceback.format_exception(result.exc_info[1])) if result.exc_info and result.exc_info[0] is not SystemExit else ""
        assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}\n{detail}"
        return result

    def json(self, *args, **kwargs):
        return json.loads(self.ok(*args, "--json", **kwargs).stdout)


@pytest.fixture
def setup(make_treasury, tmp_path, chain, accounts):
    vendor = accounts[4]
    treasury, token = make_treasury(policy_for(vendor.address))
    return treasury, token, vendor, Cli(tmp_path / "ape-config.yaml", chain)


def snapshot(treasury):
    store = treasury.store
    proposals = store.list_proposals()
    return (
        [(p.id, p.status, p.nonce, p.safe_tx_hash) for p in proposals],
        {p.id: [(s.owner, s.kind, s.signature) for s in store.signatures(p.id)] for p in proposals},
        [(e.seq, e.entry_hash) for e in store.audit_entries()],
    )


def test_help_is_fast_to_load_and_lists_every_command():
    code = ("import sys, treasury.cli; heavy = [m for m in ('ape', 'web3', 'safe_eth', 'sqlalchemy') if m in sys.modules];"
            "print(heavy)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("propose", "list", "show", "sign", "export", "import", "schedule", "execute", "reject", "policy",
                    "log", "deploy", "create-safe", "deploy-guard", "info", "cancel", "init", "Exit codes"):
        assert command in result.output
    for sub in (["propose", "--help"], ["propose", "transfer", "--help"], ["policy", "check", "--help"], ["sign", "--help"],
                ["propose", "batch", "--help"], ["info", "--help"], ["cancel", "--help"], ["init", "--help"]):
        assert CliRunner().invoke(cli, sub).exit_code == 0, sub


def test_the_whole_flow_through_the_cli(setup, tmp_path, accounts):
    treasury, token, vendor, run = setup
    proposed = run.json("propose", "transfer", vendor.address, "100 TUSD")
    assert PROPOSAL_KEYS <= set(proposed)
    assert proposed["status"] == "pending" and proposed["safe"] == treasury.safe
    assert proposed["verdict"]["outcome"] == "allow"
    pid = proposed["id"]

    listed = run.json("list", chain=False)
    assert [p["id"] for p in listed] == [pid] and PROPOSAL_KEYS <= set(listed[0])
    assert run.json("list", "--status", "executed", chain=False) == []

    shown = run.ok("show", pid).stdout
    for text in ("policy verdict", "allow", "domain hash", "message hash", "safeTxHash", proposed["safe_tx_hash"], "100 TUSD"):
        assert text in shown, text

    # No answer at the confirmation prompt: nothing is signed.
    refused = run("sign", pid, "--account", "TEST::0", input="n\n")
    assert refused.exit_code == 1 and treasury.store.signatures(pid) == []

    signed = run.json("sign", pid, "--account", "TEST::0", "--yes")
    assert signed["id"] == pid and signed["signer"] == accounts[0].address and signed["threshold"] == 2

    # Owner 1 signs offline from an exported bundle; importing it adds the signature.
    bundle = tmp_path / "bundle.json"
    exported = run.json("export", pid, bundle)
    assert exported["signatures"] == 1 and bundle.exists()
    offline = treasury.__class__.load("ops", Path(run.config), store=str(tmp_path / "offline.db"))
    twin = offline.propose_transfer(vendor.address, "100 TUSD")
    assert twin.safe_tx_hash == proposed["safe_tx_hash"]
    offline.sign(twin.id, accounts[1])
    offline.export_bundle(twin.id, tmp_path / "offline.json")
    imported = run.json("import", tmp_path / "offline.json")
    assert imported["added"] == 1 and len(imported["signers"]) == 2

    view = run.json("show", pid)
    assert view["verdict"]["outcome"] == "allow" and len(view["signers"]) == 2
    assert {"domain_hash", "message_hash", "safe_tx_hash"} <= set(view["decoded"])

    before = token.balanceOf(vendor.address)
    # The harness reaches its anvil by URL: an ad-hoc network, which counts as live and cannot be forked.
    refused = run("execute", pid, "--account", "TEST::9", "--yes")
    assert refused.exit_code == 1 and "cannot fork" in refused.stderr and "--skip-rehearsal" in refused.stderr
    assert token.balanceOf(vendor.address) == before
    executed = run.json("execute", pid, "--account", "TEST::9", "--yes", "--skip-rehearsal")
    assert executed["status"] == "executed" and executed["execution"]["success"] is True
    assert token.balanceOf(vendor.address) - before == 100 * 10**6

    log = run.json("log", chain=False)
    assert (log["verified"] is True and {"propose", "execute"} & {e["action"] for e in log["log"]}) or log["log"]
    assert "verified" in run.ok("log", chain=False).stdout


def test_policy_show_check_and_a_refusal_exit_code(setup, accounts):
    treasury, token, vendor, run = setup
    shown = run.json("policy", "show", chain=False)
    assert shown["recipients"] == [vendor.address] and shown["caps"][0]["symbol"] == "TUSD"
    assert run.json("policy", "check")["in_sync"] is True

    # Paying a stranger is denied by the policy: the proposer hears it at once (exit 3, nothing stored).
    refused = run("propose", "transfer", accounts[6].address, "10 TUSD")
    assert refused.exit_code == 3 and "denies" in refused.stderr and treasury.proposals() == []
    # One stored anyway (the library stores what it is given): execute exits 3.
    denied = treasury.propose_transfer(accounts[6].address, "10 TUSD")
    assert run.json("show", denied.id)["verdict"]["outcome"] == "deny"
    for owner in ("TEST::0", "TEST::1"):
        run.ok("sign", denied.id, "--account", owner, "--yes")
    result = run("execute", denied.id, "--account", "TEST::9", "--yes")
    assert result.exit_code == 3 and result.stderr.startswith("Error: policy verdict deny")
    assert treasury.get(denied.id).status == "pending"


def test_owner_change_is_flagged_and_rejection_spends_the_nonce(setup, accounts):
    treasury, token, vendor, run = setup
    proposed = run.json("propose", "add-owner", accounts[7].address, "--threshold", "2")
    shown = run.ok("show", proposed["id"]).stdout
    assert "Safe administration: addOwnerWithThreshold" in shown
    assert "Safe administration" in " ".join(run.json("show", proposed["id"])["decoded"]["warnings"])
    rejection = run.json("reject", proposed["id"])
    assert rejection["nonce"] == proposed["nonce"] and rejection["to"] == treasury.safe


def test_info_shows_safe_guard_balances_budgets_and_queue(setup, accounts):
    treasury, token, vendor, run = setup
    info = run.json("info")
    assert info["safe"] == treasury.safe and info["version"] == "1.4.1" and info["threshold"] == 2
    assert info["owners"] == [a.address for a in accounts[:3]] and info["nonce"] == treasury.onchain_nonce()
    assert info["guard"] == info["installed_guard"] == treasury.entry.guard and info["modules"] == []
    assert info["balances"] == {"ETH": str(10 * 10**18), "TUSD": str(1_000_000 * 10**6)}
    assert info["budgets"] == {"TUSD": str(10_000 * 10**6)} and info["entries"] == []
    shown = run.ok("info").stdout
    for text in (treasury.safe, "2 of 3", "1,000,000 TUSD", "10 ETH", "10,000 TUSD", "Delay queue", "(installed)"):
        assert text in shown, text


def test_schedule_cancel_and_schedule_again(setup, chain):
    treasury, token, vendor, run = setup
    proposed = run.json("propose", "transfer", vendor.address, "6000 TUSD")  # above the 5,000 delay threshold
    assert proposed["verdict"]["outcome"] == "needs-delay"
    pid = proposed["id"]
    queued = run.json("schedule", pid, "--signer", "TEST::0", "--signer", "TEST::1", "--account", "TEST::9")
    assert queued["status"] == "scheduled"
    assert [e["status"] for e in run.json("info")["entries"]] == ["pending"]

    cancelled = run.json("cancel", pid, "--signer", "TEST::0", "--signer", "TEST::1", "--account", "TEST::9")
    assert cancelled["status"] == "pending" and cancelled["schedule"]["status"] == "cancelled"
    assert [e.status for e in treasury.store.schedule_entries(pid)] == ["cancelled"]
    assert [e["status"] for e in run.json("info")["entries"]] == ["cancelled"]
    assert "schedule.status" in {e["action"] for e in run.json("log", "--proposal", pid, chain=False)["log"]}
    # A cancelled entry does not run; the proposal can be queued again, and dropped for good.
    assert run.json("show", pid)["verdict"]["outcome"] == "needs-delay"
    chain.pending_timestamp = treasury.store.schedule_entries(pid)[0].eta  # guard v2: not before the cancelled eta
    chain.mine()
    again = run.json("schedule", pid, "--signer", "TEST::1", "--signer", "TEST::2", "--account", "TEST::9")
    assert again["schedule"]["entry_id"] == queued["schedule"]["entry_id"] + 1
    dropped = run.json("cancel", pid, "--signer", "TEST::0", "--signer", "TEST::2", "--drop", "--account", "TEST::9")
    assert dropped["status"] == "cancelled"
    assert [e["status"] for e in run.json("info")["entries"]] == ["cancelled", "cancelled"]


def test_propose_batch_from_yaml_and_json_files(setup, tmp_path, accounts):
    treasury, token, vendor, run = setup
    (tmp_path / "pay.yaml").write_text(
        f"# two invoices in one transaction\n- {{to: \"{vendor.address}\", amount: \"100 TUSD\"}}\n"
        f"- {{target: TUSD, function: \"transfer(address,uint256)\", args: [\"{vendor.address}\", \"200000000\"]}}\n")
    proposed = run.json("propose", "batch", tmp_path / "pay.yaml", "--yes", "--title", "two invoices")
    assert proposed["operation"] == 1 and proposed["title"] == "two invoices"
    assert proposed["verdict"]["outcome"] == "allow"
    view = run.json("show", proposed["id"])
    inner = [c for c in view["decoded"]["calls"] if c["function"] != "multiSend"]
    assert len(inner) == 2 and all(c["to"] == token.address for c in inner)
    for owner in ("TEST::0", "TEST::1"):
        run.ok("sign", proposed["id"], "--account", owner, "--yes")
    before = token.balanceOf(vendor.address)
    assert run.json("execute", proposed["id"], "--account", "TEST::9", "--yes", "--skip-rehearsal")["execution"]["success"] is True
    assert token.balanceOf(vendor.address) - before == 300 * 10**6

    (tmp_path / "pay.json").write_text(json.dumps({"calls": [{"to": vendor.address, "amount": "1 TUSD"},
                                                             {"to": accounts[6].address, "amount": "1 TUSD"}]}))
    mixed = run("propose", "batch", tmp_path / "pay.json")
    assert mixed.exit_code == 3 and "denies" in mixed.stderr  # one inner call pays a stranger: the whole batch is refused
    drafted = run.json("propose", "batch", tmp_path / "pay.json", "--force")
    assert drafted["verdict"]["outcome"] == "deny" and drafted["draft"]["operation"] == 1


def test_init_writes_a_commented_section_and_never_overwrites(tmp_path, monkeypatch):
    safe, token = "0x" + "12" * 20, "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
    project = tmp_path / "project"
    project.mkdir()
    (project / "ape-config.yaml").write_text("name: mine\n")
    monkeypatch.chdir(project)
    run = Cli(project / "unused.yaml", None)
    written = run.json("init", "--safe", safe, "--chain-id", "1", "--token", f"USDC={token}:6", "--treasury", "main",
                       chain=False, config=False)
    assert written["config"] == str(project / "ape-config.yaml") and written["tokens"] == ["USDC"]
    text = (project / "ape-config.yaml").read_text()
    assert text.startswith("name: mine\n") and "# guard:" in text and "treasury deploy-guard" in text
    from treasury.config import load_config

    entry = load_config(project / "ape-config.yaml").treasury("main")
    assert (entry.safe, entry.chain_id, entry.version) == (safe, 1, "1.4.1")
    assert entry.token_book().by_symbol("USDC").decimals == 6

    refused = run("init", "--safe", safe, "--chain-id", "1", chain=False, config=False)
    assert refused.exit_code == 1 and "already has a `treasury:` section" in refused.stderr
    assert (project / "ape-config.yaml").read_text() == text

    elsewhere = tmp_path / "other" / "treasury.yaml"
    elsewhere.parent.mkdir()
    assert run.json("init", "--safe", safe, "--chain-id", "5", "--config", elsewhere, chain=False, config=False)["chain_id"] == 5
    assert load_config(elsewhere).treasury("ops").chain_id == 5
    for bad in (["--safe", "0x12"], ["--safe", safe, "--token", "USDC=0x12:6"], ["--safe", safe, "--token", "USDC"],
                ["--safe", safe, "--version", "9.9.9"]):
        target = tmp_path / "other" / "bad.yaml"
        result = run("init", *bad, "--chain-id", "1", "--config", target, chain=False, config=False)
        assert result.exit_code == 1 and result.stderr.startswith("Error:") and len(result.stderr.splitlines()) == 1, bad
        assert not target.exists(), bad


@pytest.fixture
def bad_input_setup(setup, tmp_path, accounts):
    treasury, token, vendor, run = setup
    pid = run.json("propose", "transfer", vendor.address, "10 TUSD")["id"]
    run.ok("sign", pid, "--account", "TEST::0", "--yes")
    other = treasury.store.add_proposal(
        chain_id=treasury.chain_id, safe="0x" + "ab" * 20, nonce=0, to=vendor.address, value=1,
        safe_tx_hash="0x" + "cd" * 32, proposer="someone", actor="someone")
    bundle = tmp_path / "good.json"
    run.ok("export", pid, bundle)
    tampered = json.loads(bundle.read_text())
    _tamper(tampered)
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    (tmp_path / "garbage.json").write_text("{not json")
    (tmp_path / "broken.yaml").write_text("treasury: [unclosed\n")
    (tmp_path / "invalid.yaml").write_text("treasury:\n  treasuries:\n    ops:\n      safe: 0x12\n")
    batches = {
        "empty": "[]", "mapping": "{to: x}", "scalar": "42", "broken": "- [unclosed",
        "badkeys": "- {to: %s, amount: '1 TUSD', extra: 1}" % vendor.address,
        "badaddress": "- {to: '0x12345', amount: '1 TUSD'}",
        "badtoken": "- {to: %s, amount: '1 NOPE'}" % vendor.address,
        "badargs": "- {target: TUSD, function: 'transfer(address,uint256)', args: [1]}",
        "badargtype": "- {target: TUSD, function: 'transfer(address,uint256)', args: ['%s', 'ten']}" % vendor.address,
        "notalist": "- 7",
    }
    for stem, text in batches.items():
        (tmp_path / f"batch-{stem}.yaml").write_text(text + "\n")
    return treasury, token, vendor, run, pid, other.id


def _tamper(bundle):
    """Change what the bundle says is being paid, keeping its stated safeTxHash."""
    for key in ("value", "nonce"):
        for container in (bundle, bundle.get("tx", {}) if isinstance(bundle.get("tx"), dict) else {}):
            if key in container:
                container[key] = str(int(container[key]) + 1) if isinstance(container[key], str) else container[key] + 1
                return
    bundle["signatures"] = [{"owner": "0x" + "11" * 20, "signature": "0x" + "00" * 65}]


BAD = "0x12345"
STRANGER = "0x" + "99" * 20

# (case name, arguments; {pid} a pending proposal, {other} a proposal of another Safe, {tmp} tmp_path)
BAD_INPUT = [
    ("bad address", ["propose", "transfer", BAD, "1 TUSD"]),
    ("address with bad checksum", ["propose", "transfer", "0x" + "aB" * 20, "1 TUSD"]),
    ("tiny amount", ["propose", "transfer", "{vendor}", "1e-30 TUSD"]),
    ("too many decimals", ["propose", "transfer", "{vendor}", "0.0000001 TUSD"]),
    ("negative amount", ["propose", "transfer", "{vendor}", "-5 TUSD"]),
    ("negative amount, two words", ["propose", "transfer", "{vendor}", "-5", "TUSD"]),
    ("zero amount", ["propose", "transfer", "{vendor}", "0 TUSD"]),
    ("unknown token", ["propose", "transfer", "{vendor}", "5 NOPE"]),
    ("amount is text", ["propose", "transfer", "{vendor}", "lots"]),
    ("missing amount", ["propose", "transfer", "{vendor}"]),
    ("bad call target", ["propose", "call", BAD, "setFee(uint256)", "1"]),
    ("malformed signature", ["propose", "call", STRANGER, "transfer(address", "1"]),
    ("wrong argument count", ["propose", "call", STRANGER, "setFee(uint256)"]),
    ("argument of the wrong type", ["propose", "call", STRANGER, "setFee(uint256)", "ten"]),
    ("hostile argument", ["propose", "call", STRANGER, "f(address)", "'; DROP TABLE proposals; --"]),
    ("threshold too high", ["propose", "threshold", "9"]),
    ("threshold zero", ["propose", "threshold", "0"]),
    ("threshold negative", ["propose", "threshold", "-1"]),
    ("threshold not a number", ["propose", "threshold", "two"]),
    ("add a bad owner", ["propose", "add-owner", BAD, "--threshold", "2"]),
    ("remove a non-owner", ["propose", "remove-owner", STRANGER, "--threshold", "1"]),
    ("unknown proposal (show)", ["show", "nope"]),
    ("another Safe's proposal (show)", ["show", "{other}"]),
    ("unknown account alias", ["sign", "{pid}", "--account", "nobody-here", "--yes"]),
    ("bad test account", ["sign", "{pid}", "--account", "TEST::x", "--yes"]),
    ("unknown signature kind", ["sign", "{pid}", "--account", "TEST::1", "--kind", "magic", "--yes"]),
    ("signing twice", ["sign", "{pid}", "--account", "TEST::0", "--yes"]),
    ("a non-owner signs", ["sign", "{pid}", "--account", "TEST::6", "--yes"]),
    ("unknown proposal (sign)", ["sign", "nope", "--account", "TEST::1", "--yes"]),
    ("another Safe's proposal (sign)", ["sign", "{other}", "--account", "TEST::1", "--yes"]),
    ("too few signatures", ["execute", "{pid}", "--account", "TEST::9", "--yes"]),
    ("unknown proposal (execute)", ["execute", "nope", "--account", "TEST::9", "--yes"]),
    ("execute without account", ["execute", "{pid}", "--yes"]),
    ("unknown proposal (export)", ["export", "nope", "{tmp}/out.json"]),
    ("tampered bundle", ["import", "{tmp}/tampered.json"]),
    ("bundle is not JSON", ["import", "{tmp}/garbage.json"]),
    ("missing bundle", ["import", "{tmp}/missing.json"]),
    ("nothing to schedule", ["schedule", "{pid}", "--signer", "TEST::0", "--account", "TEST::9"]),
    ("unknown proposal (reject)", ["reject", "nope"]),
    ("another Safe's proposal (reject)", ["reject", "{other}"]),
    ("unknown status", ["list", "--status", "lost"]),
    ("unknown proposal (log)", ["log", "--proposal", "nope"]),
    ("unknown treasury", ["list", "--treasury", "payroll"]),
    ("unknown command", ["transmogrify"]),
    ("info for an unknown treasury", ["info", "--treasury", "payroll"]),
    ("cancel a proposal that is not scheduled", ["cancel", "{pid}", "--signer", "TEST::0", "--signer", "TEST::1", "--account", "TEST::9"]),
    ("unknown proposal (cancel)", ["cancel", "nope", "--signer", "TEST::0", "--account", "TEST::9"]),
    ("another Safe's proposal (cancel)", ["cancel", "{other}", "--signer", "TEST::0", "--account", "TEST::9"]),
    ("cancel without signers", ["cancel", "{pid}"]),
    ("cancel with an unknown signer", ["cancel", "{pid}", "--signer", "nobody-here"]),
    ("cancel signature for an unscheduled proposal", ["sign", "{pid}", "--cancel", "--account", "TEST::1", "--yes"]),
    ("guardian cancel of an unscheduled proposal", ["cancel", "{pid}", "--guardian", "TEST::6"]),
    ("guardian together with signers", ["cancel", "{pid}", "--guardian", "TEST::6", "--signer", "TEST::0"]),
    ("cancel with an unknown guardian", ["cancel", "{pid}", "--guardian", "nobody-here"]),
    ("missing batch file", ["propose", "batch", "{tmp}/no-such-batch.yaml"]),
    ("batch file is a directory", ["propose", "batch", "{tmp}"]),
    ("empty batch", ["propose", "batch", "{tmp}/batch-empty.yaml"]),
    ("batch is a mapping", ["propose", "batch", "{tmp}/batch-mapping.yaml"]),
    ("batch is a number", ["propose", "batch", "{tmp}/batch-scalar.yaml"]),
    ("batch is not YAML", ["propose", "batch", "{tmp}/batch-broken.yaml"]),
    ("batch item with unknown keys", ["propose", "batch", "{tmp}/batch-badkeys.yaml"]),
    ("batch item with a bad address", ["propose", "batch", "{tmp}/batch-badaddress.yaml"]),
    ("batch item with an unknown token", ["propose", "batch", "{tmp}/batch-badtoken.yaml"]),
    ("batch item with too few arguments", ["propose", "batch", "{tmp}/batch-badargs.yaml"]),
    ("batch item with a bad argument", ["propose", "batch", "{tmp}/batch-badargtype.yaml"]),
    ("batch item is not a mapping", ["propose", "batch", "{tmp}/batch-notalist.yaml"]),
    ("init over an existing treasury section", ["init", "--safe", STRANGER, "--chain-id", "1"]),
    ("init with a bad Safe address", ["init", "--safe", BAD, "--chain-id", "1"]),
    ("init without a chain id", ["init", "--safe", STRANGER]),
]
LOCAL = {"list", "log", "transmogrify", "init"}
CONFIG_CASES = [
    ("unparseable config", ["list", "--config", "{tmp}/broken.yaml"]),
    ("invalid config", ["list", "--config", "{tmp}/invalid.yaml"]),
    ("missing config", ["show", "{pid}", "--config", "{tmp}/nowhere.yaml"]),
    ("config is a directory", ["list", "--config", "{tmp}"]),
]


def test_bad_input_gives_one_line_a_nonzero_exit_and_no_change(bad_input_setup, tmp_path, chain):
    treasury, token, vendor, run, pid, other = bad_input_setup
    values = {"pid": pid, "other": other, "tmp": tmp_path, "vendor": vendor.address}
    before = snapshot(treasury)
    failures = []
    cases = [(name, args, True) for name, args in BAD_INPUT] + [(name, args, False) for name, args in CONFIG_CASES]
    for name, args, with_config in cases:
        words = [a.format(**values) for a in args]
        chain_needed = (words[0] not in LOCAL and "--config" not in args[1:]) or words[0] == "show"
        result = run(*words, chain=chain_needed, config=with_config)
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        if result.exit_code == 0:
            failures.append(f"{name}: exit 0")
        elif len(errors) != 1 or "Traceback" in result.stderr + result.stdout:
            failures.append(f"{name}: stderr {result.stderr!r}")
        elif result.exit_code == 1 and len(result.stderr.strip().splitlines()) != 1:
            failures.append(f"{name}: more than one line: {result.stderr!r}")
        if snapshot(treasury) != before:
            failures.append(f"{name}: the store changed")
            before = snapshot(treasury)
    assert not failures, "\n".join(failures)


def test_verbose_shows_the_traceback(setup):
    treasury, token, vendor, run = setup
    quiet = run("show", "nope")
    loud = run("show", "nope", "--verbose")
    assert quiet.exit_code == loud.exit_code == 1
    assert "Traceback" not in quiet.stderr and "Traceback" in loud.stderr


def test_console_object_loads_the_treasury_and_prints_readably(setup, tmp_path, capsys):
    import importlib.util

    from treasury.console import TreasuryConsole

    treasury, token, vendor, run = setup
    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("extras", root / "ape_console_extras.py")
    extras = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extras)
    assert set(extras.ape_init_extras()) == {"treasury"}

    console = TreasuryConsole(tmp_path / "ape-config.yaml")
    assert repr(console) == "<treasury: ops; treasury.load('ops')>"
    ops = console.load()
    assert repr(ops).startswith("<Treasury ops: Safe ")
    proposal = console.propose_transfer(vendor.address, "5 TUSD")  # the only treasury's methods, directly
    assert repr(proposal).startswith(f"<Proposal {proposal.id} nonce ") and "pending" in repr(proposal)
    assert repr(ops.proposals()) == repr(proposal)
    assert ops.get(proposal).id == proposal.id  # a proposal object where an id is wanted
    ops.show(proposal)
    assert "safeTxHash" in capsys.readouterr().out


# --- setup commands: bad input is refused before connecting; a dead node is one line too -----------

DEAD_NODE = "ethereum:mainnet:http://127.0.0.1:9"  # port 9 (discard): nothing listens on loopback


def test_create_safe_refuses_bad_input_before_connecting():
    owner = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    result = CliRunner().invoke(cli, ["create-safe", "--owner", owner, "--threshold", "2", "--network", DEAD_NODE])
    assert result.exit_code == 1, result.output
    assert result.output == "Error: threshold 2 must be between 1 and the number of owners (1)\n"


def test_deploy_guard_refuses_an_unknown_treasury_before_connecting(tmp_path):
    config = tmp_path / "ape-config.yaml"
    config.write_text("treasury:\n  treasuries: {}\n")
    result = CliRunner().invoke(cli, ["deploy-guard", "--treasury", "nope", "--config", str(config),
                                      "--signer", "a", "--network", DEAD_NODE])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: unknown treasury 'nope'") and result.output.count("\n") == 1


def test_create_safe_on_a_dead_node_is_one_line():
    owner = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    result = CliRunner().invoke(cli, ["create-safe", "--owner", owner, "--threshold", "1", "--network", DEAD_NODE])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
