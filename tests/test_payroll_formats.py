"""Payroll CSV and Safe{Wallet} Transaction Builder files through the CLI, on anvil.

`propose batch` takes a payroll CSV (header row, names from the address book, a token column,
memos), shows the count and the total per token before asking, and refuses a bad row with its
line number and nothing stored. `export --format tx-builder` writes the file Safe{Wallet}'s
Transaction Builder loads, and `propose batch` reads such a file back: the same calls, chain id
checked, checksum verified.
"""

import json

import pytest
from test_cli import Cli, snapshot

from treasury.formats.tx_builder import checksum
from treasury.testing.fixtures import make_test_treasury

# A batch file Safe{Wallet}'s Transaction Builder wrote (published in BalancerMaxis/multisig-ops,
# BIPs/2024-W16/BIP-518-5.json), with the checksum it computed: ours must agree with theirs.
SAFE_WALLET_FILE = {
    "version": "1.0", "chainId": "1", "createdAt": 1703107040104,
    "meta": {"name": "Transactions Batch", "description": "", "txBuilderVersion": "1.16.3",
             "createdFromSafeAddress": "0x10A19e7eE7d7F8a52822f6817de8ea18204F2e4f", "createdFromOwnerAddress": "",
             "checksum": "0x1f440bb1b31ed23dce797e5957ac2a5749add1074f8540f0ff0a158e4b248003"},
    "transactions": [{
        "to": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "value": "0", "data": None,
        "contractMethod": {"inputs": [{"name": "to", "type": "address", "internalType": "address"},
                                      {"name": "value", "type": "uint256", "internalType": "uint256"}],
                           "name": "transfer", "payable": False},
        "contractInputsValues": {"to": "0x811912c19eEF91b9Dc3cA52fc426590cFB84FC86", "value": "29000000000"},
    }],
}


def test_our_checksum_is_the_one_safe_wallet_writes():
    assert checksum(SAFE_WALLET_FILE) == SAFE_WALLET_FILE["meta"]["checksum"]
    renamed = {**SAFE_WALLET_FILE, "meta": {**SAFE_WALLET_FILE["meta"], "name": "payroll"}}
    assert checksum(renamed) == SAFE_WALLET_FILE["meta"]["checksum"]  # the name is not covered, as in Safe{Wallet}
    edited = json.loads(json.dumps(SAFE_WALLET_FILE))
    edited["transactions"][0]["contractInputsValues"]["value"] = "29000000001"
    assert checksum(edited) != SAFE_WALLET_FILE["meta"]["checksum"]


@pytest.fixture
def setup(safe_infrastructure, owners, safe_deployer, tmp_path, chain, accounts):
    vendor, staff = accounts[4], accounts[5]
    policy = {
        "recipients": [vendor.address, staff.address],
        "calls": [{"target": "TUSD", "function": "transfer(address,uint256)"},
                  {"target": "TUSD", "function": "approve(address,uint256)"}],
        "caps": [{"token": "TUSD", "amount": "10000", "period": "1d", "delay_threshold": "5000"},
                 {"token": "ETH", "amount": "5", "period": "1d"}],
    }
    treasury, token = make_test_treasury(tmp_path, owners, safe_deployer, threshold=2, policy=policy,
                                         version="1.4.1", salt_nonce=500, guarded=True, name="ops",
                                         vendors={"acme": vendor.address})
    return treasury, token, vendor, staff, Cli(tmp_path / "ape-config.yaml", chain)


def _newest(treasury):
    """The id of the proposal proposed last (the highest nonce)."""
    return max(treasury.store.list_proposals(safe=treasury.safe), key=lambda p: p.nonce).id


def _one_error_line(result, *needles):
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 1 and len(errors) == 1, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def test_payroll_csv_shows_totals_then_proposes_and_pays(setup, tmp_path, chain):
    treasury, token, vendor, staff, run = setup
    payroll = tmp_path / "payroll.csv"
    # Excel's byte order mark, columns in another order and case, a name, a quoted amount, a blank line.
    payroll.write_text("\ufeffMemo,TO,Amount,token\n"
                       "invoice 7,acme,250,TUSD\n"
                       f"\"November, salary\",{staff.address},\"1,000.5\",TUSD\n"
                       "\n"
                       f",{staff.address},0.5,ETH\n", encoding="utf-8")
    shown = run.ok("propose", "batch", payroll, "--yes")
    assert "3 payments in one Safe transaction" in shown.stdout
    assert "total 1,250.5 TUSD" in shown.stdout and "total 0.5 ETH" in shown.stdout
    pid = _newest(treasury)
    view = run.json("show", pid)
    assert view["title"] == "payroll: 3 payments" and view["operation"] == 1
    record = treasury.store.get_proposal(pid)
    assert "(invoice 7)" in record.description and "(November, salary)" in record.description
    assert view["verdict"]["outcome"] == "allow"

    for owner in ("TEST::0", "TEST::1"):
        run.ok("sign", pid, "--account", owner, "--yes")
    before = (token.balanceOf(vendor.address), token.balanceOf(staff.address), staff.balance)
    assert run.json("execute", pid, "--account", "TEST::9", "--yes", "--skip-rehearsal")["execution"]["success"] is True
    assert token.balanceOf(vendor.address) - before[0] == 250 * 10**6  # "acme" is the vendor, by name
    assert token.balanceOf(staff.address) - before[1] == 1_000_500_000
    assert staff.balance - before[2] == 5 * 10**17

    # --json keeps stdout for the JSON: the count and totals go to stderr.
    payroll.write_text("to,amount\nacme,10 TUSD\n")
    quiet = run("propose", "batch", payroll, "--yes", "--json")
    assert quiet.exit_code == 0 and json.loads(quiet.stdout)["title"] == "payroll: 1 payment"
    assert "total 10 TUSD" in quiet.stderr


def test_a_bad_payroll_row_is_refused_with_its_line_and_nothing_stored(setup, tmp_path):
    treasury, token, vendor, staff, run = setup
    good = f"{vendor.address},100,TUSD,ok\n"
    cases = {
        "bad amount": ("to,amount,token,memo\n" + good + "\n" + f"{staff.address},\"1,5\",TUSD,x\n", "line 4:", "ambiguous"),
        "unknown name": ("to,amount,token,memo\n" + good + "nobody,5,TUSD,\n", "line 3:", "nobody"),
        "unknown token": ("to,amount,token,memo\n" + good + f"{staff.address},5,NOPE,\n", "line 3:", "NOPE"),
        "bad checksum": ("to,amount,token,memo\n" + good + f"{staff.address.lower()[:-1]}G,5,TUSD,\n", "line 3:", ""),
        "too few cells": ("to,amount,token,memo\n" + good + f"{staff.address},5\n", "line 3:", "header row has 4"),
        "two symbols": ("to,amount,token\n" + f"{staff.address},5 ETH,TUSD\n", "line 2:", "one place"),
        "no symbol": ("to,amount\n" + f"{staff.address},5\n", "line 2:", "needs a token symbol"),
        "empty to": ("to,amount,token\n" + good.rsplit(",", 1)[0] + "\n" + ",5,TUSD\n", "line 3:", "to is empty"),
        "no header": (good, "line 1:", "header row"),
        "unknown column": ("to,amount,colour\n" + good, "line 1:", "unknown column 'colour'"),
        "header only": ("to,amount\n", "", "no payments"),
    }
    before = snapshot(treasury)
    for name, (text, line, problem) in cases.items():
        path = tmp_path / "payroll.csv"
        path.write_text(text)
        error = _one_error_line(run("propose", "batch", path, "--yes"), problem)
        assert f"payroll.csv {line}" in error or not line, (name, error)
        assert snapshot(treasury) == before, name

    # A good file still asks, after the count and totals: "no" stores nothing.
    path = tmp_path / "payroll.csv"
    path.write_text("to,amount,token\n" + good.rsplit(",", 1)[0] + "\n")
    refused = run("propose", "batch", path, input="n\n")
    assert refused.exit_code == 1 and "Error: not confirmed: nothing done" in refused.stderr
    assert "1 payment in one Safe transaction" in refused.stdout and "total 100 TUSD" in refused.stdout
    assert snapshot(treasury) == before


def _same_safe_tx(run, first, second):
    keys = ("to", "value", "data", "operation")
    one, two = run.json("show", first, chain=False), run.json("show", second, chain=False)
    assert [one[k] for k in keys] == [two[k] for k in keys]


def test_tx_builder_export_and_import_round_trip(setup, tmp_path, chain):
    treasury, token, vendor, staff, run = setup
    (tmp_path / "pay.yaml").write_text(f"- {{to: acme, amount: \"100 TUSD\"}}\n- {{to: \"{staff.address}\", amount: \"0.25 ETH\"}}\n"
                                       f"- {{target: TUSD, function: \"approve(address,uint256)\", args: [acme, 5]}}\n")  # a name as an argument too
    batch = run.json("propose", "batch", tmp_path / "pay.yaml", "--yes", "--title", "mixed")["id"]
    exported = run.json("export", batch, "--format", "tx-builder", "-o", tmp_path / "batch.json", chain=False)
    assert exported["format"] == "tx-builder" and exported["transactions"] == 3
    data = json.loads((tmp_path / "batch.json").read_text())
    assert data["version"] == "1.0" and data["chainId"] == str(chain.chain_id)
    assert data["meta"]["createdFromSafeAddress"] == treasury.safe and data["meta"]["name"] == "mixed"
    assert data["meta"]["checksum"] == checksum(data)
    assert [tx["to"] for tx in data["transactions"]] == [token.address, staff.address, token.address]
    assert data["transactions"][1]["value"] == str(25 * 10**16) and data["transactions"][1]["data"] == "0x"
    # Without a file it goes to stdout, the same bytes.
    assert json.loads(run.ok("export", batch, "--format", "tx-builder", chain=False).stdout) == data
    # An existing file is not replaced without --force.
    _one_error_line(run("export", batch, "--format", "tx-builder", "-o", tmp_path / "batch.json", chain=False), "--force")

    shown = run.ok("propose", "batch", tmp_path / "batch.json", "--yes")
    assert "2 payments and 1 other call in one Safe transaction" in shown.stdout and "total 100 TUSD" in shown.stdout
    again = _newest(treasury)
    _same_safe_tx(run, batch, again)
    assert run.json("show", again, chain=False)["title"] == "mixed"

    # A single call is exported as one transaction and comes back as that call, not as a batch of one.
    single = run.json("propose", "transfer", "acme", "7 TUSD")["id"]
    run.ok("export", single, tmp_path / "single.json", "--format", "tx-builder", chain=False)
    assert len(json.loads((tmp_path / "single.json").read_text())["transactions"]) == 1
    back = run.json("propose", "batch", tmp_path / "single.json", "--yes")
    assert back["operation"] == 0
    _same_safe_tx(run, single, back["id"])


def test_a_safe_wallet_file_with_contract_methods_is_proposed(setup, tmp_path, chain):
    treasury, token, vendor, staff, run = setup
    transfer = {"inputs": [{"name": "to", "type": "address", "internalType": "address"},
                           {"name": "amount", "type": "uint256", "internalType": "uint256"}],
                "name": "transfer", "payable": False}
    data = {"version": "1.0", "chainId": str(chain.chain_id), "createdAt": 1_999_987_200_000,
            "meta": {"name": "Transactions Batch", "description": "", "txBuilderVersion": "1.16.3",
                     "createdFromSafeAddress": treasury.safe, "createdFromOwnerAddress": ""},
            "transactions": [
                {"to": token.address, "value": "0", "data": None, "contractMethod": transfer,
                 "contractInputsValues": {"to": vendor.address, "amount": "300000000"}},
                {"to": staff.address, "value": "1000000000000000000", "data": "0x", "contractMethod": None,
                 "contractInputsValues": None}]}
    data["meta"]["checksum"] = checksum(data)
    (tmp_path / "safe.json").write_text(json.dumps(data, indent=2))
    shown = run.ok("propose", "batch", tmp_path / "safe.json", "--yes")
    assert "total 300 TUSD" in shown.stdout and "total 1 ETH" in shown.stdout
    pid = _newest(treasury)
    view = run.json("show", pid)
    assert view["verdict"]["outcome"] == "allow"
    inner = [c for c in view["decoded"]["calls"] if c["function"] != "multiSend"]
    assert [c["to"] for c in inner] == [token.address, staff.address]
    # Without a checksum (hand-written files) it is read too; with one, it must hold.
    del data["meta"]["checksum"]
    (tmp_path / "plain.json").write_text(json.dumps(data))
    run.ok("propose", "batch", tmp_path / "plain.json", "--yes")


def test_tx_builder_chain_id_mismatch_tampering_and_disagreement_are_refused(setup, tmp_path, chain):
    treasury, token, vendor, staff, run = setup
    pid = run.json("propose", "transfer", "acme", "5 TUSD")["id"]
    run.ok("export", pid, "--format", "tx-builder", "-o", tmp_path / "one.json", chain=False)
    original = json.loads((tmp_path / "one.json").read_text())
    before = snapshot(treasury)

    other_chain = {**original, "chainId": "1"}
    other_chain["meta"] = {**original["meta"], "checksum": checksum(other_chain)}  # a well-formed file for chain 1
    (tmp_path / "chain1.json").write_text(json.dumps(other_chain))
    _one_error_line(run("propose", "batch", tmp_path / "chain1.json", "--yes"), "is for chain 1",
                    f"on chain {chain.chain_id}", "nothing proposed")

    other_safe = json.loads(json.dumps(original))
    other_safe["meta"]["createdFromSafeAddress"] = vendor.address  # made (and checksummed) for another Safe
    other_safe["meta"]["checksum"] = checksum(other_safe)
    (tmp_path / "other-safe.json").write_text(json.dumps(other_safe))
    _one_error_line(run("propose", "batch", tmp_path / "other-safe.json", "--yes"),
                    f"made for Safe {vendor.address}", f"this treasury's Safe is {treasury.safe}", "nothing proposed")

    tampered = json.loads(json.dumps(original))
    tampered["transactions"][0]["to"] = staff.address  # redirected by hand, checksum left as it was
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    _one_error_line(run("propose", "batch", tmp_path / "tampered.json", "--yes"), "checksum does not match")

    disagree = json.loads(json.dumps(original))
    disagree["transactions"][0]["contractMethod"] = {
        "name": "transfer", "payable": False,
        "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}]}
    disagree["transactions"][0]["contractInputsValues"] = {"to": staff.address, "amount": "5000000"}
    disagree["meta"]["checksum"] = checksum(disagree)  # a consistent file whose method is not its data
    (tmp_path / "disagree.json").write_text(json.dumps(disagree))
    _one_error_line(run("propose", "batch", tmp_path / "disagree.json", "--yes"), "transaction 1", "not the encoding")

    delegate = json.loads(json.dumps(original))
    delegate["transactions"][0]["operation"] = 1
    delegate["meta"]["checksum"] = checksum(delegate)
    (tmp_path / "delegate.json").write_text(json.dumps(delegate))
    _one_error_line(run("propose", "batch", tmp_path / "delegate.json", "--yes"), "delegatecall")
    assert snapshot(treasury) == before
