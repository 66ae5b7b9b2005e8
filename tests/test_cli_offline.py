"""Store-only commands (list, show, export, log): what they print from the store alone, and that
they import no chain stack (ape, web3, safe-eth-py), each run as a fresh `treasury` process.

No chain here: proposals are hashed by safe-eth-py (the reference the offline hashes must equal)
and signed by ape's test accounts, which sign without a node.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from treasury.cli import cli
from treasury.decode.hashes import safe_tx_hashes

TREASURY = Path(sys.executable).with_name("treasury")
HEAVY = ("ape", "web3", "safe_eth")
TOKEN = "0x" + "00" * 18 + "0200"
VENDOR = "0x" + "00" * 18 + "0300"
TRANSFER = function_signature_to_4byte_selector("transfer(address,uint256)")


def _safe_tx(safe, to, data=b"", *, value=0, operation=0, nonce=0, chain_id=31337, version="1.4.1", **gas):
    from treasury.proposal.safe_tx import build_safe_tx

    return build_safe_tx(safe, to, value, data, operation, nonce=nonce, chain_id=chain_id, version=version, **gas)


@pytest.mark.parametrize("version", ["1.3.0", "1.4.1", "1.5.0"])
def test_offline_hashes_equal_safe_eth_py(version):
    rng = random.Random(version)  # deterministic cases, different for each version

    def address():
        return to_checksum_address(rng.randbytes(20))

    cases = [{"value": 0, "data": b"", "operation": 0, "nonce": 0, "chain_id": 1, "gas": {}}]
    for _ in range(25):
        gas = {"safe_tx_gas": rng.randrange(2**32), "base_gas": rng.randrange(2**32), "gas_price": rng.randrange(2**64),
               "gas_token": address(), "refund_receiver": address()}
        cases.append({"value": rng.randrange(2**256), "data": rng.randbytes(rng.randrange(300)), "operation": rng.randrange(2),
                      "nonce": rng.randrange(2**64), "chain_id": rng.randrange(1, 2**64), "gas": gas})
    for case in cases:
        safe, to = address(), address()
        reference = _safe_tx(safe, to, case["data"], value=case["value"], operation=case["operation"], nonce=case["nonce"],
                             chain_id=case["chain_id"], version=version, **case["gas"])
        preimage = bytes(reference.safe_tx_hash_preimage)
        mine = safe_tx_hashes(safe=safe, chain_id=case["chain_id"], version=version, to=to, value=case["value"],
                              data=case["data"], operation=case["operation"], nonce=case["nonce"], **case["gas"])
        assert (mine.domain_hash, mine.message_hash, mine.safe_tx_hash) == (
            "0x" + preimage[2:34].hex(), "0x" + preimage[34:66].hex(), reference.safe_tx_hash.to_0x_hex())


@pytest.fixture
def offline_store(tmp_path):
    """A treasury config and a store holding a signed transfer (eip712, eth_sign and approved_hash),
    a bare one and a batch, for the Safe `ops` on chain 31337. Returns (config, ids, safe_txs)."""
    from ape import accounts
    from safe_eth.safe.safe_signature import SafeSignatureApprovedHash

    from treasury.proposal.multisend import Call, encode_batch
    from treasury.signatures import sign
    from treasury.store import Store

    owners = accounts.test_accounts
    safe = "0x" + "00" * 18 + "0100"
    config = tmp_path / "ape-config.yaml"
    config.write_text(yaml.safe_dump({"treasury": {"store": str(tmp_path / "store.db"), "treasuries": {"ops": {
        "safe": safe, "chain_id": 31337, "tokens": {"TUSD": {"address": TOKEN, "decimals": 6}},
        "policy": {"recipients": [VENDOR], "calls": [{"target": "TUSD", "function": "transfer(address,uint256)"}]}}}}}))
    store = Store.open(tmp_path / "store.db")
    ids, txs = {}, {}
    for name, nonce, amount in (("signed", 0, 100), ("bare", 1, 7)):
        data = TRANSFER + encode(["address", "uint256"], [VENDOR, amount * 10**6])
        tx = _safe_tx(safe, TOKEN, data, nonce=nonce)
        ids[name] = store.add_proposal(chain_id=31337, safe=safe, nonce=nonce, to=TOKEN, data=data, title=f"pay {amount} TUSD",
                                       safe_tx_hash=tx.safe_tx_hash.to_0x_hex(), proposer="test", actor="test").id
        txs[name] = tx
    multisend, batch = encode_batch([Call(TOKEN, 0, TRANSFER + encode(["address", "uint256"], [VENDOR, 10**6])), Call(VENDOR, 5)])
    txs["batch"] = _safe_tx(safe, multisend, batch, operation=1, nonce=2)
    ids["batch"] = store.add_proposal(chain_id=31337, safe=safe, nonce=2, to=multisend, data=batch, operation=1, title="batch",
                                      safe_tx_hash=txs["batch"].safe_tx_hash.to_0x_hex(), proposer="test", actor="test").id
    tx = txs["signed"]
    made = [sign(owners[0], tx), sign(owners[1], tx, "eth_sign"),
            SafeSignatureApprovedHash.build_for_owner(owners[2].address, tx.safe_tx_hash.to_0x_hex())]
    for signature, kind in zip(made, ("eip712", "eth_sign", "approved_hash"), strict=True):
        store.add_signature(ids["signed"], signature.owner, kind, bytes(signature.export_signature()), actor="test")
    store.close()
    return config, ids, txs


def run(*args):
    result = CliRunner(mix_stderr=False).invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result


def test_show_without_network_prints_the_store_view(offline_store):
    config, ids, txs = offline_store
    pid, tx = ids["signed"], txs["signed"]
    preimage = bytes(tx.safe_tx_hash_preimage)
    text = run("show", pid, "--config", config).stdout
    for expected in ("100 TUSD", "pass --network to evaluate the policy verdict", "2 stored", "(eth_sign)", "(approved_hash)",
                     "0x" + preimage[2:34].hex(), "0x" + preimage[34:66].hex(), tx.safe_tx_hash.to_0x_hex()):
        assert expected in text, expected
    view = json.loads(run("show", pid, "--config", config, "--json").stdout)
    assert view["verdict"] is None and view["threshold"] is None and "--network" in view["verdict_note"]
    assert sorted(s["kind"] for s in view["signatures"]) == ["approved_hash", "eip712", "eth_sign"]
    assert view["decoded"]["safe_tx_hash"] == view["safe_tx_hash"] == tx.safe_tx_hash.to_0x_hex()
    assert view["decoded"]["calls"][0]["arguments"] == [VENDOR, "100 TUSD"]


def test_the_library_decodes_from_the_store_as_from_a_safe_tx(offline_store):
    """TreasuryRecords (no chain stack) shows exactly what decode_safe_tx shows from safe-eth-py's SafeTx."""
    from treasury import TreasuryRecords
    from treasury.decode.calls import decode_safe_tx

    config, ids, txs = offline_store
    records = TreasuryRecords.load(config_path=config)
    try:
        for name, pid in ids.items():
            assert records.decode(pid) == decode_safe_tx(txs[name], records.book)
        assert [c.description for c in records.decode(ids["batch"]).calls] == [
            f"transfer({VENDOR}, 1 TUSD) on TUSD", f"send 0.000000000000000005 ETH to {VENDOR}"]
        view = records.view(ids["signed"])
        assert view.verdict is None and view.threshold is None and len(view.signers) == 2  # approved_hash: unverified offline
    finally:
        records.close()


def test_export_from_the_store_writes_the_bundle_exchange_writes(offline_store, tmp_path):
    """Byte for byte what treasury.signatures.exchange.export_bundle writes from the parsed signatures."""
    from treasury.signatures import export_bundle, parse_signature
    from treasury.store import Store

    config, ids, txs = offline_store
    pid, tx = ids["signed"], txs["signed"]
    out = json.loads(run("export", pid, tmp_path / "offline.json", "--config", config, "--json").stdout)
    assert out["signatures"] == 2 and out["id"] == pid  # the approved_hash is in the file, unverified
    assert out["unverified"] == [{"owner": out["unverified"][0]["owner"], "kind": "approved_hash", "verified": False}]
    from treasury.records import facts_of

    with Store.open(tmp_path / "store.db") as store:
        parsed = [parse_signature(s.signature, tx) for s in store.signatures(pid)]
        facts = facts_of(store.get_proposal(pid))  # title, description, proposer; no owners without a chain
    export_bundle(tx, "1.4.1", parsed, tmp_path / "reference.json", facts=facts)
    assert (tmp_path / "offline.json").read_bytes() == (tmp_path / "reference.json").read_bytes()
    assert json.loads(run("export", ids["bare"], tmp_path / "bare.json", "--config", config, "--json").stdout)["signatures"] == 0


def test_a_signature_that_is_not_its_owners_is_refused(offline_store, tmp_path):
    """The store does not check signatures; reading them without a chain still does (recovery)."""
    from ape import accounts

    from treasury.signatures import sign
    from treasury.store import Store

    config, ids, txs = offline_store
    forged = sign(accounts.test_accounts[3], txs["bare"])
    with Store.open(tmp_path / "store.db") as store:
        store.add_signature(ids["bare"], accounts.test_accounts[4].address, "eip712", bytes(forged.export_signature()), actor="x")
    for args in (["show", ids["bare"]], ["export", ids["bare"], tmp_path / "forged.json"]):
        result = CliRunner(mix_stderr=False).invoke(cli, [str(a) for a in args] + ["--config", str(config)])
        assert result.exit_code == 1 and result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
        assert "not its signature" in result.stderr
    assert not (tmp_path / "forged.json").exists()


def test_an_approved_hash_of_a_non_owner_is_shown_unverified_offline(offline_store, tmp_path):
    """Without a chain an approved_hash only names an owner: it is marked unverified and not counted."""
    from ape import accounts
    from safe_eth.safe.safe_signature import SafeSignatureApprovedHash

    from treasury.store import Store

    config, ids, txs = offline_store
    stranger = accounts.test_accounts[4].address  # not an owner of anything
    forged = SafeSignatureApprovedHash.build_for_owner(stranger, txs["bare"].safe_tx_hash.to_0x_hex())
    with Store.open(tmp_path / "store.db") as store:
        store.add_signature(ids["bare"], stranger, "approved_hash", bytes(forged.export_signature()), actor="x")
    text = run("show", ids["bare"], "--config", config).stdout
    assert "0 stored" in text and "unverified" in text and "owner status not checked offline" in text
    view = json.loads(run("show", ids["bare"], "--config", config, "--json").stdout)
    assert view["signers"] == [] and [(s["owner"], s["verified"]) for s in view["signatures"]] == [(stranger, False)]
    assert "owner status not checked offline" in view["signatures_note"]
    signed = json.loads(run("show", ids["signed"], "--config", config, "--json").stdout)
    assert sorted((s["kind"], s["verified"]) for s in signed["signatures"]) == [
        ("approved_hash", False), ("eip712", True), ("eth_sign", True)]
    out = json.loads(run("export", ids["bare"], tmp_path / "forged.json", "--config", config, "--json").stdout)
    assert out["signatures"] == 0 and out["unverified"] == [{"owner": stranger, "kind": "approved_hash", "verified": False}]
    text = run("export", ids["bare"], tmp_path / "forged.json", "--force", "--config", config).stdout
    assert "0 signature(s) verified offline" in text and "unverified without --network" in " ".join(text.split())


def test_bad_input_to_store_only_commands_is_one_line_and_changes_nothing(offline_store, tmp_path):
    from treasury.store import Store

    config, ids, _ = offline_store
    with Store.open(tmp_path / "store.db") as store:
        other = store.add_proposal(chain_id=31337, safe="0x" + "ab" * 20, nonce=0, to=VENDOR, safe_tx_hash="0x" + "cd" * 32,
                                   proposer="someone", actor="someone").id
        before = [(e.seq, e.entry_hash) for e in store.audit_entries()]
    (tmp_path / "taken.json").write_text("{}")
    cases = [["show", "nope"], ["show", other], ["show", "x" * 300], ["export", "nope", tmp_path / "out.json"],
             ["export", other, tmp_path / "out.json"], ["export", ids["signed"], tmp_path / "taken.json"],
             ["log", "--proposal", "nope"], ["log", "--proposal", other], ["list", "--treasury", "payroll"]]
    for args in cases:
        result = CliRunner(mix_stderr=False).invoke(cli, [str(a) for a in args] + ["--config", str(config)])
        assert result.exit_code == 1 and result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, (args, result.stderr)
    assert not (tmp_path / "out.json").exists() and (tmp_path / "taken.json").read_text() == "{}"
    with Store.open(tmp_path / "store.db") as store:
        assert [(e.seq, e.entry_hash) for e in store.audit_entries()] == before


def test_a_title_cannot_drive_the_terminal(offline_store, tmp_path):
    """Escape sequences and newlines in stored text are shown, not obeyed, in the table and the plain list."""
    from treasury.store import Store

    config, _, _ = offline_store
    hostile = "pay\x1b[2J\x1b[32m approved\nfake row"
    with Store.open(tmp_path / "store.db") as store:
        for nonce in range(3, 3 + 201):  # more than TABLE_ROWS: the plain listing, too
            store.add_proposal(chain_id=31337, safe="0x" + "00" * 18 + "0100", nonce=nonce, to=VENDOR, value=nonce,
                               safe_tx_hash="0x" + nonce.to_bytes(32, "big").hex(), title=hostile, proposer="x", actor="x")
    for args in (["list"], ["list", "--limit", "5"]):
        out = run(*args, "--config", config).stdout
        assert "\x1b" not in out and "fake row" not in out.replace("\\x0afake row", "")
        assert "\\x1b[2J" in out


def test_list_and_log_without_a_store_create_nothing(tmp_path):
    config = tmp_path / "ape-config.yaml"
    config.write_text(yaml.safe_dump({"treasury": {"store": str(tmp_path / "none" / "store.db"), "treasuries": {
        "ops": {"safe": "0x" + "00" * 18 + "0100", "chain_id": 1}}}}))
    assert json.loads(run("list", "--json", "--config", config).stdout) == []
    assert json.loads(run("log", "--json", "--config", config).stdout)["verified"] is True
    assert not (tmp_path / "none").exists()


def test_log_shows_the_newest_entries_and_verifies_them_all(offline_store):
    config, ids, _ = offline_store
    log = json.loads(run("log", "--json", "--config", config).stdout)
    assert log["verified"] is True and log["entries"] == 6  # three proposals, three signatures
    assert [e["seq"] for e in json.loads(run("log", "--json", "--limit", "2", "--config", config).stdout)["log"]] == [5, 6]
    mine = json.loads(run("log", "--json", "--proposal", ids["bare"], "--config", config).stdout)["log"]
    assert [e["action"] for e in mine] == ["proposal.added"]
    assert "hash chain intact" in run("log", "--config", config).stdout


@pytest.mark.parametrize("as_json", [False, True])
def test_log_with_a_deeply_nested_payload_reports_a_broken_chain(offline_store, as_json):
    import sqlite3

    config, _, _ = offline_store
    with sqlite3.connect(config.parent / "store.db") as con:
        con.execute("UPDATE audit_log SET payload = ? WHERE seq = 3", ("[" * 200_000,))
    done = subprocess.run([str(TREASURY), "log", *(["--json"] if as_json else []), "--config", str(config)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    (line,) = done.stderr.strip().splitlines()
    assert "audit log broken at entry 3" in line and "not JSON" in line
    if as_json:
        assert json.loads(done.stdout)["verified"] is False


def _imported(args: list[str], cwd: Path) -> set[str]:
    """Top-level packages a fresh `treasury ARGS` process imported (from PYTHONPROFILEIMPORTTIME)."""
    command = [str(TREASURY), *args] if args[0] != "-c" else [sys.executable, *args]
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=120, check=False,
                          env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert done.returncode == 0, f"{args}: {done.stderr[-2000:]}"
    names = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {name.split(".")[0] for name in names}


def test_store_only_commands_import_no_chain_stack(offline_store, tmp_path):
    config, ids, _ = offline_store
    where = ["--config", str(config)]
    runs = [["-c", "import treasury.cli"], ["--help"], ["list", *where], ["list", "--json", *where],
            ["show", ids["signed"], *where], ["show", ids["signed"], "--json", *where],
            ["export", ids["signed"], str(tmp_path / "b.json"), *where], ["log", *where], ["log", "--json", *where]]
    heavy = {" ".join(args[:2]): sorted(_imported(args, tmp_path) & set(HEAVY)) for args in runs}
    assert heavy == {" ".join(args[:2]): [] for args in runs}
    assert {"web3", "eth_utils"} <= _imported(["-c", "import web3"], tmp_path)  # the probe does see imports
