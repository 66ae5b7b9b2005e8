"""`treasury history` through the CLI: executed ETH, token and batch proposals as rows (CSV and JSON),
date and token filters, the fee from the receipt, formula-safe cells, one-line refusals."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from builders import sign_by
from test_cli import Cli

from treasury.proposal import build

DAY = 86_400
EVIL_TITLE = '=HYPERLINK("http://evil.example","pay")'


def history_policy(*recipients):
    return {
        "recipients": list(recipients),
        "calls": [{"target": "TUSD", "function": "transfer(address,uint256)"},
                  {"target": "TUSD", "function": "approve(address,uint256)"}],
        "caps": [{"token": "TUSD", "amount": "100000", "period": "1d"}, {"token": "ETH", "amount": "5", "period": "1d"}],
    }


@pytest.fixture
def executed(make_treasury, tmp_path, chain, accounts, owners):
    """Four executed proposals on three UTC days: ETH, token (a formula-looking title), a batch, an approve."""
    vendor, other, executor = accounts[4], accounts[6], accounts[9]
    treasury, token = make_treasury(history_policy(vendor.address, other.address))
    day = (chain.pending_timestamp // DAY + 10) * DAY  # midnight, ten days ahead: dates the test knows
    days = [day + 3600, day + 3600 + 10, day + DAY + 7200, day + 2 * DAY + 60]

    def run(record, at):
        sign_by(treasury, record, owners)
        chain.pending_timestamp = at
        return treasury.execute(record.id, executor)

    proposals = [
        treasury.propose_transfer(vendor.address, "1.5 ETH", title="rent"),
        treasury.propose_transfer(vendor.address, "250 TUSD", title=EVIL_TITLE),
        treasury.propose_batch([build.token_transfer(treasury.safe, treasury.book, vendor.address, "100 TUSD"),
                                build.native_transfer(treasury.safe, treasury.book, other.address, "0.25 ETH")],
                               title="payroll"),
        treasury.propose_call(token.address, "approve(address,uint256)", [vendor.address, 5], title="allow vendor"),
    ]
    executions = [run(p, at) for p, at in zip(proposals, days, strict=True)]
    return treasury, Cli(tmp_path / "ape-config.yaml", chain), proposals, executions, day, (vendor, other)


def test_history_json_has_one_row_per_movement_with_the_receipts_fee(executed, chain, owners):
    treasury, run, proposals, executions, day, (vendor, other) = executed
    rows = run.json("history")
    assert [r["proposal_id"] for r in rows] == [proposals[0].id, proposals[1].id, proposals[2].id, proposals[2].id,
                                                 proposals[3].id]
    eth, tusd, batch_tusd, batch_eth, approve = rows
    assert (eth["token"], eth["amount"], eth["units"], eth["recipient"]) == ("ETH", "1.5", str(15 * 10**17), vendor.address)
    assert (tusd["token"], tusd["amount"], tusd["title"]) == ("TUSD", "250", EVIL_TITLE)
    assert (batch_tusd["token"], batch_tusd["amount"], batch_tusd["recipient"]) == ("TUSD", "100", vendor.address)
    assert (batch_eth["token"], batch_eth["amount"], batch_eth["recipient"]) == ("ETH", "0.25", other.address)
    assert batch_tusd["tx_hash"] == batch_eth["tx_hash"] == executions[2].tx_hash
    # A call that moves nothing is one row with an empty amount, so its fee is still counted once.
    assert approve["amount"] is None and approve["token"] is None and approve["recipient"] == treasury.book.by_symbol("TUSD").address
    assert approve["recipient_name"] == "TUSD"
    for row, execution in zip([eth, tusd, batch_tusd, approve], [executions[0], executions[1], executions[2], executions[3]],
                              strict=True):
        receipt = chain.provider.web3.eth.get_transaction_receipt(execution.tx_hash)
        assert int(row["fee_wei"]) == receipt["gasUsed"] * receipt["effectiveGasPrice"] > 0
        assert Decimal(row["fee_eth"]) * 10**18 == int(row["fee_wei"])
        assert row["block"] == execution.block_number and row["status"] == "executed"
        block_time = chain.provider.web3.eth.get_block(execution.block_number)["timestamp"]
        assert row["date"] == datetime.fromtimestamp(block_time, UTC).isoformat().replace("+00:00", "Z")
        assert row["signers"] == sorted((o.address for o in owners[:2]), key=str.lower)
    assert eth["date"] == datetime.fromtimestamp(day + 3600, UTC).isoformat().replace("+00:00", "Z")


def test_history_csv_is_rfc4180_and_neutralises_a_formula_title(executed, tmp_path):
    treasury, run, proposals, executions, day, _ = executed
    text = run.ok("history", "--csv").stdout_bytes.decode()  # .stdout would fold CRLF
    assert text.startswith("date,block,tx_hash,status,token,amount,units,recipient,recipient_name,fee_eth,proposal_id,"
                           "title,signers\r\n")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == 5
    evil = next(r for r in rows if r["proposal_id"] == proposals[1].id)
    assert evil["title"] == "'" + EVIL_TITLE  # a spreadsheet shows it as text instead of running it
    assert '"\'=HYPERLINK(""http://evil.example"",""pay"")"' in text  # quotes doubled (RFC 4180)
    assert evil["amount"] == "250" and evil["token"] == "TUSD"
    assert rows[-1]["amount"] == "" and rows[-1]["title"] == "allow vendor"

    out = tmp_path / "history.csv"
    written = run("history", "--csv", "-o", out)
    assert written.exit_code == 0 and written.stdout == "" and "5 rows written" in written.stderr
    assert out.read_bytes().decode() == text


def test_history_filters_by_date_and_token(executed):
    treasury, run, proposals, executions, day, _ = executed
    first = datetime.fromtimestamp(day, UTC).date()
    second = datetime.fromtimestamp(day + DAY, UTC).date()
    assert {r["proposal_id"] for r in run.json("history", "--until", first)} == {proposals[0].id, proposals[1].id}
    assert {r["proposal_id"] for r in run.json("history", "--since", second)} == {proposals[2].id, proposals[3].id}
    only_second = run.json("history", "--since", second, "--until", second)
    assert [r["proposal_id"] for r in only_second] == [proposals[2].id, proposals[2].id]
    tusd = run.json("history", "--token", "tusd")
    assert [(r["proposal_id"], r["amount"]) for r in tusd] == [(proposals[1].id, "250"), (proposals[2].id, "100")]
    eth = run.json("history", "--token", "ETH", "--since", f"{second}T00:00:00+00:00")
    assert [(r["proposal_id"], r["amount"]) for r in eth] == [(proposals[2].id, "0.25")]
    table = run.ok("history").stdout
    assert "1.5 ETH" in table and "250 TUSD" in table and "payroll" in table


@pytest.fixture
def bare(make_treasury, tmp_path, chain, accounts):
    """A treasury with nothing executed: enough for what is refused before connecting."""
    treasury, _ = make_treasury(history_policy(accounts[4].address), guarded=False)
    return treasury, Cli(tmp_path / "ape-config.yaml", chain)


@pytest.mark.parametrize("words, message", [
    (["--since", "yesterday"], "--since 'yesterday' is not a date"),
    (["--until", "2026-13-01"], "--until '2026-13-01' is not a date"),
    (["--since", "2026-12-02", "--until", "2026-12-01"], "is not before --until"),
    (["--token", "DOGE"], "unknown token 'DOGE'"),
    (["--token", "0x123"], "--token"),
])
def test_history_refuses_a_bad_filter_in_one_line(bare, words, message):
    treasury, run = bare
    result = run("history", "--csv", *words)
    assert result.exit_code == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


@pytest.mark.parametrize("words", [["--csv", "--json"], ["-o", "out.csv"]])
def test_history_refuses_conflicting_output_options_as_usage_errors(bare, words):
    treasury, run = bare
    result = run("history", *words)
    assert result.exit_code == 2 and result.stdout == "" and "--" in result.stderr


def test_history_of_a_treasury_with_no_executions_is_just_the_header(bare):
    treasury, run = bare
    assert run.ok("history", "--csv").stdout_bytes.decode() == ("date,block,tx_hash,status,token,amount,units,recipient,recipient_name,"
                                                 "fee_eth,proposal_id,title,signers\r\n")
    assert run.json("history") == []


def test_an_execution_another_tool_made_appears_once_reconciled(make_treasury, tmp_path, chain, accounts, owners):
    vendor = accounts[4]
    treasury, _ = make_treasury(history_policy(vendor.address))
    run = Cli(tmp_path / "ape-config.yaml", chain)
    ours = treasury.propose_transfer(vendor.address, "40 TUSD", title="invoice 7")  # unsigned here
    other_tool = treasury.__class__.load("ops", tmp_path / "ape-config.yaml", store=str(tmp_path / "elsewhere.db"))
    twin = sign_by(other_tool, other_tool.propose_transfer(vendor.address, "40 TUSD"), owners)
    assert twin.safe_tx_hash == ours.safe_tx_hash
    executed = other_tool.execute(twin.id, accounts[9])
    other_tool.store.close()

    [row] = run.json("history")
    assert (row["proposal_id"], row["title"], row["tx_hash"]) == (ours.id, "invoice 7", executed.tx_hash)
    assert (row["token"], row["amount"], row["recipient"]) == ("TUSD", "40", vendor.address)
    # Our store holds no signature: the signers are read from the execTransaction the Safe checked.
    assert row["signers"] == sorted((o.address for o in owners[:2]), key=str.lower)
    assert treasury.store.get_proposal(ours.id).status == "executed"
