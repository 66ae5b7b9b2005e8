"""`treasury setup-sheet` on the ceremony Safe (guarded 3-of-5, one contract owner): every fact read from
the chain, the Markdown and the PDF carry them with names, the QR code holds the Safe's EIP-681 address,
and `--check` says "current" until a real on-chain change, then names what changed."""

import json
import math
import re
import zlib
from dataclasses import replace

import pytest
import segno
from click.testing import CliRunner
from eth_utils import keccak

from treasury.ceremony import setup_sheet
from treasury.ceremony.setup_sheet import (
    ChainReader,
    LogsUnavailable,
    canonical_json,
    check_sheet,
    code_since,
    eip681_uri,
    fact_changes,
    facts_checksum,
    onchain_facts,
    parse_markdown,
    read_setup,
)
from treasury.ceremony.setup_sheet_render import (
    markdown,
    page_streams,
    pdf,
    qr_from_text,
    qr_matrix,
    qr_text,
    read_markdown,
    read_pdf,
)
from treasury.chain.artifacts import safe_contract
from treasury.chain.guard import installed_guard
from treasury.chain.handler import handler_address, installed_handler
from treasury.cli import cli
from treasury.errors import InvalidInput, TreasuryError

DAY = 24 * 3600
NAMES = ("alice", "bob", "carol", "dave")


def run(ceremony, *words):
    config = ceremony.treasury.config_path
    from ape import chain

    return CliRunner(mix_stderr=False).invoke(cli, ["setup-sheet", *map(str, words), "--config", str(config),
                                                    "--network", chain.provider.uri])


def execute_scheduled(treasury, records, signers, sender, chain):
    """Owner changes wait the guard's delay: sign, schedule, wait, execute (as an owner team would)."""
    for record in records:
        for signer in signers:
            treasury.sign(record.id, signer)
        treasury.schedule(record.id, signers=signers, sender=sender)
    chain.pending_timestamp += 2 * DAY + 60
    chain.mine()
    for record in records:
        treasury.execute(record.id, sender=sender)


# --- the facts, from the chain ------------------------------------------------------------------


def test_every_fact_is_read_from_the_chain(ceremony, chain):
    treasury, vault = ceremony.treasury, ceremony.vault
    sheet = read_setup(treasury)
    f = sheet.facts
    assert (f["safe"], f["chain_id"], f["version"], f["threshold"]) == (treasury.safe, chain.chain_id, "1.4.1", 3)
    slot0 = bytes(chain.provider.get_storage(treasury.safe, 0))[-20:].hex()
    assert f["singleton"].lower() == "0x" + slot0
    assert f["singleton"] == safe_contract("1.4.1", "safe_l2").canonical_address
    kinds = {o["address"]: o for o in f["owners"]}
    assert [o["address"] for o in f["owners"]] == treasury.owners()
    assert {kinds[a.address]["kind"] for a in ceremony.eoas} == {"key"}
    assert kinds[vault] == {"address": vault, "kind": "safe", "owners": [ceremony.vault_signer.address],
                            "threshold": 1, "version": "1.4.1"}
    assert f["fallback_handler"] == installed_handler(treasury.safe) == handler_address()
    assert f["guard"] == installed_guard(treasury.safe) == treasury.entry.guard
    assert f["modules"] == []
    settings = f["guard_settings"]
    assert (settings["safe"], settings["delay"], settings["window"], settings["cancel_threshold"]) == (
        treasury.safe, 48 * 3600, 7 * DAY, 1)
    assert settings["recipients"] == [ceremony.funder.address]
    caps = {c["token"]: (c["amount"], c["period"]) for c in settings["caps"]}
    assert caps == {"0x" + "0" * 40: (str(10**18), DAY), ceremony.token.address: (str(1000 * 10**6), DAY)}
    assert "nonce" not in f


def test_names_from_the_address_book_stand_beside_the_addresses(ceremony):
    sheet = read_setup(ceremony.treasury)
    for name, account in zip(NAMES, ceremony.eoas, strict=True):
        assert sheet.names[account.address] == name
    assert sheet.names[ceremony.vault] == "vault"
    assert sheet.names[ceremony.funder.address] == "treasurer"
    assert sheet.names[ceremony.token.address] == "TUSD"
    assert sheet.names[sheet.facts["singleton"]] == "Safe 1.4.1 safe l2"


def test_the_deployment_is_found_from_the_creation_transaction(ceremony):
    sheet = read_setup(ceremony.treasury)
    d = sheet.deployment
    assert d["source"] == "creation transaction on chain"
    assert d["factory"] == safe_contract("1.4.1", "proxy_factory").canonical_address
    assert d["salt_nonce"] == "15501"  # the fixture's
    assert d["address_verified"] is True  # CREATE2 recomputed from factory, singleton, initializer and salt
    assert d["initial_threshold"] == 3 and d["initial_owners"] == ceremony.treasury.owners()
    assert d["singleton_code_matches"] is True


def test_the_checksum_is_keccak_of_the_canonical_facts_and_ignores_the_nonce(ceremony, safe_deployer):
    treasury = ceremony.treasury
    before = read_setup(treasury)
    assert before.checksum == "0x" + keccak(text=json.dumps(before.facts, sort_keys=True, separators=(",", ":"))).hex()
    record = treasury.propose_transfer("treasurer", "0.01 ETH")  # allowed by the policy: no delay
    for owner in ceremony.eoas[:3]:
        treasury.sign(record.id, owner)
    treasury.execute(record.id, sender=safe_deployer)
    after = read_setup(treasury)
    assert after.nonce == before.nonce + 1
    assert after.checksum == before.checksum


# --- the documents ------------------------------------------------------------------------------------


def test_the_markdown_has_every_field(ceremony, accounts):
    treasury = ceremony.treasury
    sheet = read_setup(treasury)
    text = markdown(sheet)
    f = sheet.facts
    for name, account in zip(NAMES, ceremony.eoas, strict=True):
        assert f"{name}: `{account.address}`, key" in text
    assert f"vault: `{ceremony.vault}`, Safe 1-of-1 (v1.4.1)" in text
    assert f"its owners (1 sign for it, EIP-1271): `{ceremony.vault_signer.address}`" in text
    for line in (f"Chain: {f['chain_id']}", "Version: 1.4.1", f"Singleton (storage slot 0): `{f['singleton']}`",
                 "Threshold: 3 of 5 owners", f"Fallback handler: `{f['fallback_handler']}` (TreasuryFallbackHandler)",
                 "Modules: none", f"Guard: `{f['guard']}` (TreasuryGuard)",
                 f"Allowed recipients: `{ceremony.funder.address}` (treasurer)", "Cap on ETH (native): 1 ETH per 1 d, at most 1 ETH per transaction, never delayed for size",
                 "Cap on TUSD: 1000 TUSD per 1 d", "Delay 2 d, then a window of 7 d", "Salt nonce: `15501`",
                 f"`{eip681_uri(treasury.safe, f['chain_id'])}`", f"Checksum (keccak-256): `{sheet.checksum}`",
                 f"`safe-cli {treasury.safe} RPC_URL`", "Safe{Wallet}: chain 31337 is not one it serves",
                 "`schedule(to, value, data, operation, signatures)`"):
        assert line in text, line
    # No secrets: none of the accounts' private keys appears, in any spelling.
    for account in [*ceremony.eoas, ceremony.vault_signer, ceremony.funder]:
        key = account.private_key.removeprefix("0x").lower()
        assert key not in text.lower()


def test_the_qr_code_holds_the_safes_eip681_address(ceremony):
    sheet = read_setup(ceremony.treasury)
    uri = f"ethereum:{ceremony.treasury.safe}@{sheet.chain_id}"
    assert eip681_uri(sheet.safe, sheet.chain_id) == uri
    block = markdown(sheet).split("```text\n", 1)[1].split("\n```", 1)[0].splitlines()
    # Read the printed code back module by module: it is segno's code for exactly this payload.
    expected = [[bool(m) for m in row] for row in segno.make(uri, error="m", micro=False).matrix]
    assert qr_from_text(block) == expected
    other = [[bool(m) for m in row] for row in segno.make(uri.replace("@", "@1"), error="m").matrix]
    assert qr_from_text(block) != other
    assert qr_from_text(qr_text(qr_matrix(uri))) == expected


def _pdf_text(data: bytes) -> str:
    """The page text: the strings of the text operators, joined."""
    strings = [s for stream in page_streams(data) for s in re.findall(rb"\((.*?)(?<!\\)\) Tj", stream)]
    return b"".join(strings).decode("latin-1").replace("\\(", "(").replace("\\)", ")")


def test_the_pdf_parses_and_carries_the_sheet(ceremony):
    sheet = read_setup(ceremony.treasury)
    data = pdf(sheet)
    assert data.startswith(b"%PDF-1.") and data.rstrip().endswith(b"%%EOF")
    assert re.search(rb"startxref\s+(\d+)\s+%%EOF", data)
    (count,) = re.findall(rb"/Count (\d+)", data)  # the page tree's
    pages = len(re.findall(rb"/Type /Page\b(?!s)", data))
    assert int(count) == pages and 1 <= pages <= 4
    text = _pdf_text(data)
    for expected in (ceremony.treasury.safe, sheet.checksum, "alice", "vault", "treasurer", "Safe 1-of-1",
                     "Threshold: 3 of 5 owners", "Salt nonce: 15501"):
        assert expected in text, expected
    assert canonical_json(sheet.facts) in text  # the facts, printed whole for a reader to hash
    assert read_pdf(data) == sheet  # facts and context round-trip, and the pages are what they render to
    # The QR code is drawn as one filled square per dark module.
    content = b"".join(page_streams(data))
    dark = sum(sum(row) for row in qr_matrix(eip681_uri(sheet.safe, sheet.chain_id)))
    assert len(re.findall(rb" re f", content)) == dark


# --- --check ------------------------------------------------------------------------------------------


def test_check_says_current_for_a_fresh_sheet(ceremony, tmp_path):
    md, paper = tmp_path / "sheet.md", tmp_path / "sheet.pdf"
    written = run(ceremony, "-o", md, "--pdf", paper)
    assert written.exit_code == 0, written.stderr
    assert "checksum 0x" in written.stdout and md.exists() and paper.exists()
    for path in (md, paper):
        result = run(ceremony, "--check", path)
        assert result.exit_code == 0, result.stderr
        assert "current" in result.stdout
    printed = run(ceremony)
    assert printed.exit_code == 0 and read_markdown(printed.stdout).checksum == read_markdown(md.read_text()).checksum
    refused = run(ceremony, "--check", md, "-o", tmp_path / "other.md")
    assert refused.exit_code == 1 and "--check reads a sheet; it writes none" in refused.stderr
    data = json.loads(run(ceremony, "--json").stdout)
    assert data["checksum"] == facts_checksum(data["facts"]) == read_markdown(md.read_text()).checksum
    assert data["names"][ceremony.vault] == "vault" and data["deployment"]["salt_nonce"] == "15501"
    report = json.loads(run(ceremony, "--check", md, "--json").stdout)
    assert report["current"] is True and report["changes"] == []
    assert report["written_checksum"] == read_markdown(md.read_text()).checksum and report["incomplete"] == []


def test_check_names_what_changed_after_real_owner_threshold_and_guard_changes(ceremony, accounts, safe_deployer, chain,
                                                                              tmp_path):
    treasury, signers = ceremony.treasury, ceremony.eoas[:3]
    md, paper = tmp_path / "sheet.md", tmp_path / "sheet.pdf"
    assert run(ceremony, "-o", md, "--pdf", paper).exit_code == 0
    newcomer, dave = accounts[5], ceremony.eoas[3]
    outsider = accounts[7]
    # Executed in nonce order, the threshold last: after it, every transaction needs four signatures.
    records = [treasury.propose_swap_owner(dave.address, newcomer.address, title="dave leaves"),
               # Not in the config: the sheet must still list it (the guard's events name it).
               treasury.propose_guard_setting("setRecipient(address,bool)", [outsider.address, True], title="recipient"),
               treasury.propose_threshold(4, title="four of five")]
    execute_scheduled(treasury, records, signers, safe_deployer, chain)
    assert treasury.threshold() == 4 and newcomer.address in treasury.owners()

    result = run(ceremony, "--check", md)
    assert result.exit_code == 1
    assert "the sheet is stale: " in result.stderr
    shown = " ".join(result.stdout.split())
    assert "threshold: 3 -> 4" in shown
    assert f"owners: removed dave ({dave.address})" in shown
    assert f"owners: added {newcomer.address}" in shown
    assert f"guard_settings.recipients: added {outsider.address}" in shown
    from_pdf = run(ceremony, "--check", paper)  # the printed copy carries the same facts
    assert from_pdf.exit_code == 1 and from_pdf.stdout == result.stdout

    fresh = read_setup(treasury)
    assert outsider.address in fresh.facts["guard_settings"]["recipients"]
    written = read_markdown(md.read_text())
    assert check_sheet(written, fresh).changes == tuple(fact_changes(written.facts, fresh.facts, fresh.label))
    # Every fact is read at one block: read again at the old sheet's block, the chain gives the old facts
    # exactly (an unpinned read would show the new owner, threshold or recipient).
    assert onchain_facts(treasury, ChainReader(chain.provider, written.block))[0] == written.facts
    md.write_text(markdown(fresh))
    assert run(ceremony, "--check", md).exit_code == 0


def test_an_edited_sheet_is_refused(ceremony, tmp_path):
    sheet = read_setup(ceremony.treasury)
    text = markdown(sheet)
    assert read_markdown(text) == sheet
    forged = text.replace('"threshold":3', '"threshold":2')
    with pytest.raises(InvalidInput, match="do not hash to its printed checksum"):
        read_markdown(forged)
    # Rewriting both the facts and the checksum hashes, but the visible text no longer renders from them.
    facts = {**sheet.facts, "threshold": 2}
    rewritten = forged.replace(sheet.checksum, facts_checksum(facts))
    with pytest.raises(InvalidInput, match=r"Threshold: 3 of 5 owners.*the sheet was edited"):
        read_markdown(rewritten)
    # Edited consistently everywhere it is a sheet of another setup: --check then compares with the chain.
    other = markdown(replace(sheet, facts=facts))
    result = check_sheet(read_markdown(other), sheet)
    assert not result.is_current and result.changes == ("threshold: 2 -> 3",)
    with pytest.raises(InvalidInput, match="not a setup sheet"):
        read_markdown("# some notes\n")
    path = tmp_path / "notes.md"
    path.write_text("# notes\n")
    failed = run(ceremony, "--check", path)
    assert failed.exit_code == 1 and "not a setup sheet" in failed.stderr


def test_a_safe_without_guard_or_modules_says_so(make_treasury):
    treasury, _ = make_treasury(guarded=False, salt_nonce=15_600)
    sheet = read_setup(treasury)
    assert sheet.facts["guard"] == "0x" + "0" * 40 and sheet.facts["guard_settings"] is None
    assert sheet.facts["threshold"] == 2 and len(sheet.facts["owners"]) == 3
    text = markdown(sheet)
    assert "- Guard: none" in text and "## Guard settings" not in text and "schedule(" not in text
    assert read_markdown(text) == sheet and sheet.complete  # no guard: no events to read


def test_a_sheet_of_another_safe_is_refused(ceremony):
    sheet = read_setup(ceremony.treasury)
    other = {**sheet.facts, "safe": ceremony.vault}
    with pytest.raises(TreasuryError, match="describes Safe"):
        check_sheet(replace(sheet, facts=other), sheet)


def test_fact_changes_word_each_difference():
    old = {"threshold": 3, "owners": [{"address": "0x" + "1" * 40, "kind": "key"}, {"address": "0x" + "2" * 40, "kind": "key"}],
           "guard_settings": {"delay": 3600, "recipients": ["0x" + "3" * 40]}}
    new = {"threshold": 2, "owners": [{"address": "0x" + "2" * 40, "kind": "key"}, {"address": "0x" + "1" * 40, "kind": "safe"}],
           "guard_settings": {"delay": 7200, "recipients": []}}
    label = {"0x" + "1" * 40: "alice (0x111)"}.get
    lines = fact_changes(old, new, lambda a: label(a) or a)
    assert lines == ["guard_settings.delay: 3600 -> 7200", f"guard_settings.recipients: removed 0x{'3' * 40}",
                     "owners: same entries, new order", "owners[alice (0x111)].kind: key -> safe", "threshold: 3 -> 2"]
    assert fact_changes(old, old) == []
    assert canonical_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'


def test_the_deployment_manifest_is_the_fallback_when_the_chain_cannot_say(ceremony, chain, tmp_path, monkeypatch):
    from treasury.ceremony import setup_sheet
    from treasury.chain.manifest import record_safe
    from treasury.chain.safe import CreatedSafe

    treasury = ceremony.treasury
    record_safe(tmp_path, chain.provider, CreatedSafe(
        address=treasury.safe, version="1.4.1", singleton=safe_contract("1.4.1", "safe_l2").canonical_address,
        factory=safe_contract("1.4.1", "proxy_factory").canonical_address, fallback_handler=handler_address(),
        owners=tuple(treasury.owners()), threshold=3, salt_nonce=15_501, action="created", transaction="0x" + "ab" * 32))
    monkeypatch.setattr(setup_sheet, "_creation_on_chain", lambda *args: None)  # a node that refuses the log range
    sheet = read_setup(treasury, manifest_dir=tmp_path)
    assert sheet.deployment["source"].startswith("deployment manifest")
    assert (sheet.deployment["salt_nonce"], sheet.deployment["transaction"]) == ("15501", "0x" + "ab" * 32)
    assert "Salt nonce: `15501`" in markdown(sheet)
    missing = read_setup(treasury, manifest_dir=tmp_path / "none")
    assert missing.deployment is None
    assert any("found neither on chain nor in a deployment manifest" in note for note in missing.notes)
    assert missing.checksum == sheet.checksum  # history is not part of the checksum


def test_owner_kinds_key_contract_and_safe():
    from eth_abi import encode

    from treasury.ceremony.setup_sheet import owner_fact, owner_kind_text

    safe_owner, inner = "0x" + "5" * 40, "0x" + "6" * 40
    answers = {"0xe75235b8": encode(["uint256"], [2]), "0xa0e67e2b": encode(["address[]"], [[inner, "0x" + "7" * 40]]),
               "0xffa1ad74": encode(["string"], ["1.3.0"])}

    class Node:  # the two calls owner_fact makes: eth_getCode, and eth_call for the Safe's views, at one block
        def __init__(self):
            self.web3 = self
            self.eth = self

        def get_code(self, address, block_identifier):
            assert block_identifier == 9
            return b"" if address.endswith("1") else b"\x60"

        def call(self, tx, block_identifier):
            assert block_identifier == 9
            if tx["to"] != safe_owner:
                raise ValueError("execution reverted")
            return answers[tx["data"]]

    node = ChainReader(Node(), 9)
    assert owner_fact(node, "0x" + "1" * 40) == {"address": "0x" + "1" * 40, "kind": "key"}
    assert owner_fact(node, "0x" + "2" * 40) == {"address": "0x" + "2" * 40, "kind": "contract"}
    fact = owner_fact(node, safe_owner)
    assert fact["kind"] == "safe" and fact["threshold"] == 2 and fact["owners"][0].lower() == inner
    assert owner_kind_text(fact) == "Safe 2-of-2 (v1.3.0)"
    assert [owner_kind_text(owner_fact(node, "0x" + c * 40)) for c in "12"] == ["key", "contract"]


# --- what a person reads is checked, not only the JSON -----------------------------------------------


def test_check_refuses_a_sheet_whose_visible_text_was_edited(ceremony, tmp_path):
    treasury = ceremony.treasury
    sheet = read_setup(treasury)
    text = markdown(sheet)
    alice, bob = (account.address for account in ceremony.eoas[:2])
    qr = text.split("```text\n", 1)[1].split("\n```", 1)[0]
    url = f"https://app.safe.global/home?safe=SHORTNAME:{treasury.safe}"
    edits = {
        "owner swapped in the owners list": text.replace(f"alice: `{alice}`", f"alice: `{bob}`"),
        "QR code": text.replace(qr, qr.replace("█", " ", 1)),
        "Safe{Wallet} URL": text.replace(url, url.replace(treasury.safe, ceremony.funder.address)),
        "Safe address": text.replace(f"Safe: `{treasury.safe}`", f"Safe: `{ceremony.vault}`"),
    }
    for what, edited in edits.items():
        assert edited != text, what
        # The JSON facts and the checksum line are untouched: a check of those alone said "current".
        assert parse_markdown(edited).checksum == sheet.checksum, what
        with pytest.raises(InvalidInput, match=r"is not what its facts say.*the sheet was edited"):
            read_markdown(edited)
    path = tmp_path / "edited.md"
    path.write_text(edits["owner swapped in the owners list"])
    result = run(ceremony, "--check", path)
    assert result.exit_code == 1 and "is not what its facts say" in result.stderr and "current" not in result.stdout
    # Trailing spaces an editor trims (the QR code's quiet zone) and CRLF line ends are no edit.
    assert read_markdown("\r\n".join(line.rstrip() for line in text.split("\n"))) == sheet


def _edit_pdf_page(data: bytes, old: bytes, new: bytes) -> bytes:
    """`data` with `old` replaced in the page content (inflated, edited, deflated again)."""
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.DOTALL):
        raw = match.group(1)
        if raw[:1] == b"x" and old in (content := zlib.decompress(raw)):
            return data.replace(raw, zlib.compress(content.replace(old, new, 1)))
    raise AssertionError(f"{old!r} is on no page")


def test_check_refuses_a_pdf_whose_pages_were_edited(ceremony, tmp_path):
    from treasury.ceremony.setup_sheet import parse_pdf

    sheet = read_setup(ceremony.treasury)
    data = pdf(sheet)
    alice, bob = (account.address for account in ceremony.eoas[:2])
    square = re.search(rb"[-\d.]+ [-\d.]+ [-\d.]+ [-\d.]+ re f", b"".join(page_streams(data))).group(0)
    for edited in (_edit_pdf_page(data, f"alice: {alice}".encode(), f"alice: {bob}".encode()),
                   _edit_pdf_page(data, square, b""),  # one QR module gone
                   _edit_pdf_page(data, ceremony.treasury.safe.encode(), ceremony.vault.encode())):
        assert parse_pdf(edited) == sheet  # the keywords (facts and context) are untouched
        with pytest.raises(InvalidInput, match="the PDF's pages are not what its facts say"):
            read_pdf(edited)
    path = tmp_path / "edited.pdf"
    path.write_bytes(_edit_pdf_page(data, f"alice: {alice}".encode(), f"alice: {bob}".encode()))
    result = run(ceremony, "--check", path)
    assert result.exit_code == 1 and "the PDF's pages are not what its facts say" in result.stderr


# --- reading logs a node will serve ------------------------------------------------------------------------


def _no_config_keys(treasury):
    return {kind: set() for kind in ("calls", "recipients", "guardians", "caps", "typed_data")}


def test_the_creation_block_is_found_by_bisection(ceremony, chain, monkeypatch):
    safe = ceremony.treasury.safe
    topic = "0x" + keccak(text="ProxyCreation(address,address)").hex()
    (log,) = chain.provider.web3.eth.get_logs({"fromBlock": 0, "toBlock": "latest",
                                               "topics": [[topic], ["0x" + "00" * 12 + safe[2:].lower()]]})
    reader = ChainReader(chain.provider, chain.blocks.head.number)
    asked = []
    real = ChainReader.code
    monkeypatch.setattr(ChainReader, "code", lambda self, address, block=None: asked.append(block) or real(self, address, block))
    assert code_since(reader, safe) == log["blockNumber"] > 0
    assert len(asked) <= math.ceil(math.log2(reader.block + 1)) + 1  # log2(head) reads, not a scan
    assert reader.code(safe, log["blockNumber"]) and not reader.code(safe, log["blockNumber"] - 1)


def test_a_node_that_keeps_only_recent_state_still_finds_a_recent_creation(ceremony, chain, monkeypatch):
    """A full node (or anvil late in a long session) refuses eth_getCode at old blocks: the bisection
    reads only what is kept, and says the creation is unknowable when it lies before that."""
    safe = ceremony.treasury.safe
    reader = ChainReader(chain.provider, chain.blocks.head.number)
    born = code_since(reader, safe)
    real = ChainReader.code

    def kept_from(first):
        def code(self, address, block=None):
            if block is not None and block < first:
                raise ValueError("state not available")
            return real(self, address, block)
        return code

    monkeypatch.setattr(ChainReader, "code", kept_from(born - 1))  # the block before the creation is still kept
    assert code_since(reader, safe) == born
    monkeypatch.setattr(ChainReader, "code", kept_from(born))  # the block before it is not: no answer
    with pytest.raises(LogsUnavailable, match="keeps no state old enough"):
        code_since(reader, safe)


def test_a_node_refusing_wide_log_ranges_is_read_in_chunks_from_the_guards_creation(ceremony, chain, monkeypatch):
    chain.mine(12)  # the guard's life is now wider than the node serves
    full = read_setup(ceremony.treasury)
    eth = chain.provider.web3.eth
    real, asked = eth.get_logs, []

    def narrow(self, query):
        asked.append((query["fromBlock"], query["toBlock"]))
        if query["toBlock"] - query["fromBlock"] + 1 > 4:
            raise ValueError("block range is too wide")
        return real(query)

    monkeypatch.setattr(type(eth), "get_logs", narrow)
    monkeypatch.setattr(setup_sheet, "_config_keys", _no_config_keys)  # every allowlist key must come from the events
    sheet = read_setup(ceremony.treasury)
    assert sheet.complete and sheet.facts == full.facts and sheet.checksum == full.checksum
    assert sheet.deployment == full.deployment and sheet.deployment["salt_nonce"] == "15501"
    assert ceremony.funder.address in sheet.facts["guard_settings"]["recipients"]
    served = [(start, end) for start, end in asked if end - start + 1 <= 4]
    assert len(served) > 10 and len(asked) > len(served)  # refused wide, then read narrow
    assert all(isinstance(end, int) and end <= sheet.block for _, end in asked)  # pinned to the sheet's block
    guard_born = code_since(ChainReader(chain.provider, sheet.block), full.facts["guard"])
    safe_born = full.deployment["block"]
    assert min(start for start, _ in asked) == safe_born > 0  # the Safe's creation block, never genesis
    assert min(start for start, _ in served if start != safe_born) == guard_born


def test_a_node_refusing_all_logs_gives_incomplete_facts_and_no_checksum(ceremony, chain, monkeypatch, tmp_path):
    def refuse(self, query):
        raise ValueError("eth_getLogs is disabled on this node")

    monkeypatch.setattr(type(chain.provider.web3.eth), "get_logs", refuse)
    sheet = read_setup(ceremony.treasury)
    assert sheet.checksum is None and not sheet.complete
    assert "the guard's events could not be read" in sheet.incomplete[0]
    text = markdown(sheet)
    assert "Checksum: none. The facts are INCOMPLETE" in text and "Checksum (keccak-256)" not in text
    assert "## Incomplete facts (no checksum)" in text
    assert read_markdown(text) == sheet and read_pdf(pdf(sheet)) == sheet
    md = tmp_path / "partial.md"
    written = run(ceremony, "-o", md)
    assert written.exit_code == 0 and "no checksum: the facts are incomplete" in written.stdout
    monkeypatch.undo()

    now = read_setup(ceremony.treasury)
    assert now.complete and now.facts == sheet.facts  # same facts, but only one reading could vouch for them
    result = check_sheet(read_markdown(md.read_text()), now)
    assert not result.is_current and result.changes == () and result.incomplete
    refused = run(ceremony, "--check", md)
    assert refused.exit_code == 1 and "cannot be called current: the facts are incomplete" in refused.stderr
    assert "current:" not in refused.stdout


def test_modules_are_read_page_by_page():
    from eth_abi import decode
    from eth_utils import to_checksum_address

    from treasury.ceremony.setup_sheet import safe_modules

    sentinel = "0x" + "0" * 39 + "1"
    modules = [to_checksum_address(f"0x{i + 16:040x}") for i in range(250)]

    class Safe141:  # getModulesPaginated as Safe 1.4.1 answers it: `next` is the last module returned
        def decoded(self, to, data, types):
            start, size = decode(["address", "uint256"], data[4:])
            first = 0 if int(start, 16) == 1 else modules.index(to_checksum_address(start)) + 1
            page = modules[first:first + size]
            return page, (page[-1] if first + size < len(modules) else sentinel)

    assert safe_modules(Safe141(), "0x" + "9" * 40) == modules  # Treasury.modules() stops at the first 100
