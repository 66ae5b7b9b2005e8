"""Owner liveness (treasury.ceremony.liveness): the combination arithmetic, what counts as a proof of
control, and where it is shown (`treasury info`, `policy show`, the server's Safe page).

The arithmetic is checked against a brute-force count over itertools.combinations, with hypothesis
(derandomized: the same examples every run). The chain tests use the key-ceremony Safe (3-of-5, one
contract owner): owners sign a proposal, another owner executes it, and the report counts exactly
those proofs. The store stamps proofs with its own clock, so every `now` here is passed explicitly,
counted from the proofs' own times, and the CLI and page tests pin the clock the library reads.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from treasury.ceremony import liveness as live_module
from treasury.ceremony.challenge import DrillChallenge
from treasury.ceremony.liveness import (
    DAY,
    DEFAULT_PERIOD,
    ProofOfControl,
    last_proofs,
    liveness_report,
    treasury_liveness,
    warn_ahead,
)
from treasury.config import TreasuryConfig
from treasury.errors import InvalidInput

NOW = 1_800_000_000
OWNERS = ("alice", "bob", "carol", "dave", "vault")


def proof(owner: str, age: int, kind: str = "drill") -> ProofOfControl:
    return ProofOfControl(owner, NOW - age, kind, f"{kind} ref")  # type: ignore[arg-type]


# --- the arithmetic, against brute force --------------------------------------------------------------


def brute_force(owners, threshold, live):
    """Count signing sets and test every loss of k owners by enumeration: no formula."""
    count = sum(all(o in live for o in group) for group in combinations(owners, threshold))

    def survives(k):
        if k > len(owners):
            return False  # more owners lost than there are: nothing is left to sign
        return all(any(all(o in live for o in group) for group in combinations([o for o in owners if o not in lost], threshold))
                   for lost in combinations(owners, k))

    return count, {1: survives(1), 2: survives(2)}


@st.composite
def situations(draw):
    n = draw(st.integers(1, 8))
    owners = [f"0x{i:040x}" for i in range(1, n + 1)]
    threshold = draw(st.integers(1, n))
    period = draw(st.one_of(st.none(), st.sampled_from([DAY, 30 * DAY, 90 * DAY, 365 * DAY]), st.integers(1, 400 * DAY)))
    ages = draw(st.lists(st.one_of(st.none(), st.integers(-2 * DAY, 400 * DAY)), min_size=n, max_size=n))
    proofs = {o: None if age is None else ProofOfControl(o, NOW - age, "signature", "p") for o, age in zip(owners, ages, strict=True)}
    return owners, threshold, period, proofs


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(situations())
def test_combinations_and_survival_match_a_brute_force_count(situation):
    owners, threshold, period, proofs = situation
    report = liveness_report(proofs, owners, threshold, NOW, period)
    window = DEFAULT_PERIOD if period is None else period
    live = {o for o, p in proofs.items() if p is not None and NOW - p.at <= window}
    count, survives = brute_force(owners, threshold, live)
    assert report.live == live
    assert report.live_combinations == count
    assert report.total_combinations == len(list(combinations(owners, threshold)))
    assert report.survives_loss == survives
    # Lapsing: exactly the live owners within the warning window, soonest first.
    expected = sorted((proofs[o].at + window - NOW, o) for o in live if proofs[o].at + window - NOW <= warn_ahead(window))
    assert [(left, o) for o, left in report.lapsing] == [(min(left, window), o) for left, o in expected]
    assert report.lines()[0].startswith(f"{threshold}-of-{len(owners)}: {count} of {report.total_combinations} combinations live")
    assert (f"only {len(live)} owner(s)" in " ".join(report.warnings())) == (len(live) < threshold)


def test_the_issue_example_three_of_five_with_bob_unproven_for_97_days():
    proofs = {o: proof(o, 3 * DAY) for o in OWNERS} | {"bob": proof("bob", 97 * DAY, "signature")}
    report = liveness_report(proofs, OWNERS, 3, NOW, 90 * DAY)
    assert report.live == {"alice", "carol", "dave", "vault"}
    assert report.lines()[:2] == ["3-of-5: 4 of 10 combinations live; bob unproven for 97 days",
                                  "the threshold survives the loss of any one owner: yes; of any two: no"]
    assert report.owner_line("bob").startswith("lapsed: signature 97 d ago (")
    assert report.owner_line("alice").startswith("live: drill 3 d ago (")
    everyone = liveness_report({o: proof(o, DAY) for o in OWNERS}, OWNERS, 3, NOW)
    assert everyone.lines()[:2] == ["3-of-5: 10 of 10 combinations live",
                                    "the threshold survives the loss of any one owner: yes; of any two: yes"]
    assert everyone.warnings() == [] and everyone.period is None and everyone.window == DEFAULT_PERIOD


def test_names_never_proven_and_an_unreachable_threshold():
    report = liveness_report({"0xA": proof("0xA", DAY)}, ["0xA", "0xB", "0xC"], 2, NOW, names={"0xB": "bob"})
    assert report.lines()[0] == "2-of-3: 0 of 3 combinations live; bob never proven, 0xC never proven"
    assert report.lines()[1] == "the threshold survives the loss of any one owner: no; of any two: no"
    assert report.warnings() == ["only 1 owner(s) proved control within 90 d: the threshold of 2 is not provably reachable"]
    assert report.owner_line("0xB") == "never proven: no drill, signature or execution on record"
    assert report.as_dict()["proofs"]["0xB"] is None and report.as_dict()["live"] == ["0xA"]


def test_the_period_boundary_and_the_warning_window():
    period = 90 * DAY
    at_edge = liveness_report({"a": proof("a", period)}, ["a"], 1, NOW, period)
    past_edge = liveness_report({"a": proof("a", period + 1)}, ["a"], 1, NOW, period)
    assert at_edge.live == {"a"} and at_edge.lapsing == [("a", 0)]
    assert past_edge.live == frozenset() and past_edge.lapsing == []
    # 14 days ahead for a long period; a sixth of a shorter one (30 d -> 5 d).
    assert warn_ahead(90 * DAY) == 14 * DAY and warn_ahead(30 * DAY) == 5 * DAY
    long = liveness_report({"a": proof("a", 76 * DAY), "b": proof("b", 76 * DAY - 1)}, ["a", "b"], 1, NOW, period)
    assert long.lapsing == [("a", 14 * DAY)]
    assert long.warnings() == ["a's proof of control lapses in 14 d (liveness period 90 d): run a drill (`treasury drill start`)"]
    short = liveness_report({"a": proof("a", 25 * DAY), "b": proof("b", 26 * DAY)}, ["a", "b"], 1, NOW, 30 * DAY)
    assert short.lapsing == [("b", 4 * DAY), ("a", 5 * DAY)]  # soonest first
    assert short.lines()[2].startswith("warning: b's proof of control lapses in 4 d")


def test_a_proof_stamped_after_now_counts_as_fresh_not_as_extra_time():
    report = liveness_report({"a": proof("a", -10 * DAY)}, ["a"], 1, NOW, 30 * DAY)
    assert report.live == {"a"} and report.age("a") == 0 and report.lapsing == []


@pytest.mark.parametrize(("owners", "threshold", "now", "period", "words"), [
    ([], 1, NOW, None, "at least one owner"),
    (["a", "A"], 1, NOW, None, "more than once"),
    (["a", "b"], 0, NOW, None, "threshold 0"),
    (["a", "b"], 3, NOW, None, "threshold 3"),
    (["a", "b"], True, NOW, None, "threshold True"),
    (["a"], 1, -1, None, "unix time"),
    (["a"], 1, NOW, 0, "liveness period 0"),
])
def test_bad_shapes_are_one_line_errors(owners, threshold, now, period, words):
    with pytest.raises(InvalidInput, match=words):
        liveness_report({}, owners, threshold, now, period)


# --- the policy setting (off chain only) ----------------------------------------------------------------


def entry_with(policy: dict) -> dict:
    return {"treasuries": {"ops": {"safe": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "chain_id": 1, "policy": policy}}}


@pytest.mark.parametrize(("value", "seconds"), [("90d", 90 * DAY), ("2w", 14 * DAY), (86_400, DAY), ("3650d", 3650 * DAY)])
def test_the_liveness_setting_parses_and_leaves_the_guard_policy_unchanged(value, seconds):
    entry = TreasuryConfig.from_section(entry_with({"delay": "48h", "liveness": value})).treasury("ops")
    plain = TreasuryConfig.from_section(entry_with({"delay": "48h"})).treasury("ops")
    assert entry.policy.liveness_period() == seconds and plain.policy.liveness_period() is None
    assert entry.to_policy() == plain.to_policy()  # the guard's settings (and their encoding) do not see it
    assert "liveness" not in entry.to_policy().model_dump()


@pytest.mark.parametrize(("value", "words"), [
    ("1h", "between 1 day and 10 years"), ("3651d", "between 1 day and 10 years"), ("soon", "is not like"),
    (1.5, "policy.liveness"), (0, "must be positive"),
])
def test_a_bad_liveness_setting_is_refused_on_load(value, words):
    with pytest.raises(InvalidInput, match=words):
        TreasuryConfig.from_section(entry_with({"liveness": value}))


# --- what counts as a proof: the store's verified records only ------------------------------------------

SAFE = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
OTHER_SAFE = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
TO = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"
A, B, C, D = (f"0x{i:040x}" for i in (0x1001, 0x1002, 0x1003, 0x1004))


def test_only_verified_records_of_this_safe_by_current_owners_count(tmp_path):
    from treasury.addresses import parse_address
    from treasury.store import Store

    a, b, c, d = (parse_address(x) for x in (A, B, C, D))
    with Store.open(tmp_path / "store.db") as store:
        ours = store.add_proposal(chain_id=1, safe=SAFE, nonce=0, to=TO, safe_tx_hash="0x" + "11" * 32, proposer="t", actor="t")
        theirs = store.add_proposal(chain_id=1, safe=OTHER_SAFE, nonce=0, to=TO, safe_tx_hash="0x" + "22" * 32, proposer="t", actor="t")
        other_chain = store.add_proposal(chain_id=5, safe=SAFE, nonce=0, to=TO, safe_tx_hash="0x" + "33" * 32, proposer="t", actor="t")
        signed_a = store.add_signature(ours.id, a, "eip712", b"\x01" * 65, actor="t")
        store.add_signature(ours.id, b, "eip712", b"\x02" * 65, actor="t", verified_by="bundle")  # a file's word only
        store.add_signature(theirs.id, c, "eip712", b"\x03" * 65, actor="t")  # another Safe's proposal
        store.add_signature(other_chain.id, c, "eip712", b"\x03" * 65, actor="t")  # the same Safe on another chain
        store.add_signature(ours.id, d, "eip712", b"\x04" * 65, actor="t")  # not an owner (any more)
        executed = store.record_execution(ours.id, tx_hash="0x" + "44" * 32, block_number=7, gas_used=1, success=True,
                                          executor=c, actor="t")
        mined_at = int(executed.recorded_at.timestamp()) - 40 * DAY  # found late: its block is older than the record
        proofs = last_proofs(store, 1, SAFE, [a, b, c], block_time={7: mined_at}.get)
        assert set(proofs) == {a, b, c}
        assert proofs[a] == ProofOfControl(a, int(signed_a.created_at.timestamp()), "signature", f"proposal {ours.id}")
        assert proofs[b] is None
        assert proofs[c] == ProofOfControl(c, mined_at, "execution", f"execution {executed.tx_hash}")
        # A block that cannot be read (or no chain to ask: a bare store) leaves the execution uncounted.
        assert last_proofs(store, 1, SAFE, [c], block_time=lambda number: None)[c] is None
        assert last_proofs(store, 1, SAFE, [c])[c] is None
        # The owners' case does not matter; the report keeps the addresses as given.
        assert last_proofs(store, 1, SAFE, [a.lower()])[a.lower()].kind == "signature"
        with pytest.raises(InvalidInput, match="chain id and the Safe"):
            last_proofs(store)


def test_imported_signatures_do_not_count_and_own_ones_do(tmp_path):
    """Bundle, offline or online, and sync: the audit log says how a signature arrived; an imported one
    may be years old, so it proves nothing about today. Re-checking it against the chain changes nothing;
    the owner's own signature replacing it counts."""
    from treasury.addresses import parse_address
    from treasury.store import Store

    a, b, c, d = (parse_address(x) for x in (A, B, C, D))
    with Store.open(tmp_path / "store.db") as store:
        ours = store.add_proposal(chain_id=1, safe=SAFE, nonce=0, to=TO, safe_tx_hash="0x" + "11" * 32, proposer="t", actor="t")
        store.add_signature(ours.id, a, "eip712", b"\x01" * 65, actor="bob (sync from safe.example)")
        store.add_signature(ours.id, b, "eip712", b"\x02" * 65, actor="bob (bundle)")  # Treasury.import_bundle, online
        offline = store.add_signature(ours.id, c, "eip712", b"\x03" * 65, actor="bob (bundle)", verified_by="bundle")
        store.mark_verified(offline.id, "bob")  # `treasury reverify`: the chain agrees, the date does not get younger
        store.add_signature(ours.id, d, "eip712", b"\x04" * 65, actor="bob (bundle)", verified_by="bundle")
        mine = store.add_signature(ours.id, d, "eip712", b"\x05" * 65, actor="dave")  # replaces the bundle's row
        assert {s.verified_by for s in store.signatures(ours.id)} == {"chain"}
        proofs = last_proofs(store, 1, SAFE, [a, b, c, d])
        assert proofs == {a: None, b: None, c: None, d: ProofOfControl(d, int(mine.created_at.timestamp()), "signature",
                                                                        f"proposal {ours.id}")}


def test_an_old_signature_imported_by_bundle_does_not_make_an_owner_live(ceremony, tmp_path):
    """carol signed long ago in another store; her bundle is imported now (verified against the chain)."""
    from treasury.store import Store
    from treasury.treasury import Treasury

    treasury, carol = ceremony.treasury, ceremony.eoas[2]
    elsewhere = Treasury(treasury.name, treasury.entry, Store.open(tmp_path / "laptop.db"))
    record = elsewhere.propose_transfer("treasurer", "0.01 ETH", title="signed on a laptop")
    elsewhere.sign(record.id, carol)
    bundle = elsewhere.export_bundle(record.id)
    imported, added = treasury.import_bundle(bundle)
    assert added == 1 and [s.owner for s in treasury.store.signatures(imported.id)] == [carol.address]
    assert last_proofs(treasury)[carol.address] is None
    treasury.sign(imported.id, ceremony.eoas[0])  # signed here: counts
    assert last_proofs(treasury)[ceremony.eoas[0].address].reference == f"proposal {imported.id}"


def test_a_drill_proof_is_dated_at_the_drills_issue_not_when_it_was_recorded(tmp_path):
    from treasury.addresses import parse_address
    from treasury.ceremony.challenge import DrillChallenge
    from treasury.store import Store

    a = parse_address(A)
    issued = DrillChallenge(SAFE, 1, "0x" + "cd" * 32, NOW - 80 * DAY, NOW - 73 * DAY)
    with Store.open(tmp_path / "store.db") as store:
        drill = store.add_drill(1, SAFE, issued.nonce, issued.typed_data(), (), created_at=issued.issued_at,
                                expires_at=issued.expires_at, actor="t")
        store.add_owner_proof(drill.id, a, "test", b"\x05" * 65, proved_at=NOW - 74 * DAY, actor="t")  # on its last day
        [proof] = last_proofs(store, 1, SAFE, [a]).values()
        assert proof == ProofOfControl(a, NOW - 80 * DAY, "drill", f"drill {drill.id}")
        report = liveness_report({a: proof}, [a], 1, NOW, 90 * DAY)
        assert report.lapsing == [(a, 10 * DAY)]  # 90 days from the issue, not from the recording


class FakeStore:
    """The store's bulk reads, audit entries, drills and owner_proofs over in-memory records (one Safe
    on one chain). A record is (kind, owner, at, ok): an ok signature was made here; a not-ok one came
    in by a sync, an online bundle import or an offline one (verified by the bundle, re-checked since);
    an execution is mined in block i at `at` (recorded a day later); a drill proof is recorded at `at`, its drill issued a day earlier."""

    def __init__(self, records):
        from types import SimpleNamespace as NS

        stamp = lambda at: NS(timestamp=lambda: at)  # noqa: E731 - a datetime's one method used
        origins = [("t (sync from host)", {}), ("t (bundle)", {}), ("t", {"verified_by": "bundle"})]
        self.sigs, self.audit = {}, {}
        for i, (kind, o, at, ok) in enumerate(records):
            if kind == "signature":  # each on its own proposal: one signature per owner and proposal
                actor, extra = ("t", {}) if ok else origins[i % 3]
                self.sigs[f"p{i}"] = [NS(owner=o, created_at=stamp(at), verified_by="chain", purpose="safe_tx", signed_hash="")]
                self.audit[f"p{i}"] = [NS(action="signature.added", actor=actor, payload={"owner": o, **extra})]
        self.execs = [NS(executor=o, block_number=i, tx_hash=f"0x{i:064x}", recorded_at=stamp(at + DAY))
                      for i, (kind, o, at, _) in enumerate(records) if kind == "execution"]
        self.blocks = {i: at for i, (kind, o, at, _) in enumerate(records) if kind == "execution"}
        self.msgs = [NS(owner=o, created_at=stamp(at)) for kind, o, at, _ in records if kind == "message"]
        self.proofs = [NS(owner=o, proved_at=at, drill_id=f"drill-{i}") for i, (kind, o, at, _) in enumerate(records) if kind == "drill"]
        self.issued = [NS(id=f"drill-{i}", created_at=at - DAY) for i, (kind, o, at, _) in enumerate(records) if kind == "drill"]

    def list_proposals(self, safe, chain_id):
        from types import SimpleNamespace as NS

        return [NS(id=pid) for pid in self.sigs] + [NS(id="p-exec")]

    def signatures_of(self, pids, purpose=None):
        return {pid: self.sigs.get(pid, []) for pid in pids}

    def audit_entries(self, pid):
        return self.audit.get(pid, [])

    def executions_of(self, pids):
        return {"p-exec": self.execs}

    def messages(self, chain_id, safe):
        from types import SimpleNamespace as NS

        return [NS(message_hash="0x" + "00" * 32, signatures=tuple(self.msgs))]

    def drills(self, chain_id, safe):
        return self.issued

    def owner_proofs(self, chain_id, safe):
        return self.proofs


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["signature", "execution", "message", "drill"]), st.sampled_from(["a", "b", "c", "x"]),
                          st.integers(DAY, 10**7), st.booleans()), max_size=25))
def test_the_latest_verified_record_of_each_owner_wins(records):
    store = FakeStore(records)
    proofs = last_proofs(store, 1, SAFE, ["a", "b", "c"], block_time=store.blocks.get)
    for owner in ("a", "b", "c"):
        counted = [at - (DAY if kind == "drill" else 0) for kind, o, at, ok in records
                   if o == owner and (ok or kind != "signature")]
        assert (proofs[owner] and proofs[owner].at) == (max(counted) if counted else None)
    assert "x" not in proofs  # not an owner


def test_a_store_without_bulk_reads_is_one_line():
    class Remote:  # what a server's RemoteStore offers: no bulk reads
        def list_proposals(self, **kwargs):
            return []

    with pytest.raises(InvalidInput, match="against a server, its Safe page"):
        last_proofs(Remote(), 1, SAFE, [A])


# --- on the key-ceremony Safe: signatures and an execution are proofs ------------------------------------


def sign_and_execute(ceremony, signers=("alice", "bob"), executor="dave", with_vault=True):
    """Owners sign a small transfer to the treasurer (the vault through its own signer), another executes it."""
    from treasury.signatures.signing import sign_as_contract_owner
    from treasury.signatures.verification import verify

    treasury = ceremony.treasury
    by_name = dict(zip(("alice", "bob", "carol", "dave"), ceremony.eoas, strict=True))
    record = treasury.propose_transfer("treasurer", "0.01 ETH", title="liveness: every key")
    for name in signers:
        treasury.sign(record.id, by_name[name])
    if with_vault:
        safe_tx = treasury.safe_tx(record)
        signature = sign_as_contract_owner(ceremony.vault, [ceremony.vault_signer], safe_tx)
        verify(signature, safe_tx, treasury.owners())
        treasury.store.add_signature(record.id, ceremony.vault, "contract", bytes(signature.export_signature()), actor="test")
    treasury.execute(record.id, by_name[executor])
    return record


def test_signers_and_the_executor_are_proven_and_the_silent_owner_is_not(ceremony):
    treasury = ceremony.treasury
    alice, bob, carol, dave = (a.address for a in ceremony.eoas)
    record = sign_and_execute(ceremony)
    proofs = last_proofs(treasury)  # the chain's current owners, from the Treasury itself
    assert set(proofs) == set(treasury.owners())
    assert {o: p and p.kind for o, p in proofs.items()} == {alice: "signature", bob: "signature", ceremony.vault: "signature",
                                                           dave: "execution", carol: None}
    assert proofs[alice].reference == f"proposal {record.id}"
    execution = treasury.store.executions(record.id)[0]
    assert proofs[dave].reference == f"execution {execution.tx_hash}" and execution.executor == dave

    latest = max(p.at for p in proofs.values() if p)
    report = treasury_liveness(treasury, now=latest + DAY)
    assert report.live == {alice, bob, dave, ceremony.vault}
    assert report.lines()[:2] == ["3-of-5: 4 of 10 combinations live; carol never proven",
                                  "the threshold survives the loss of any one owner: yes; of any two: no"]
    # 91 days on, without a new proof, nobody is provably live any more.
    later = treasury_liveness(treasury, now=latest + 91 * DAY)
    assert later.live == frozenset() and later.live_combinations == 0
    assert "carol never proven" in later.lines()[0] and "alice unproven for 9" in later.lines()[0]
    # 80 days on: the four proven owners lapse within the 14-day warning window.
    soon = treasury_liveness(treasury, now=latest + 80 * DAY)
    assert {o for o, _ in soon.lapsing} == {alice, bob, dave, ceremony.vault}
    assert all("lapses in" in w for w in soon.warnings())


def test_a_later_signature_replaces_an_earlier_proof(ceremony):
    treasury = ceremony.treasury
    alice, bob = ceremony.eoas[0], ceremony.eoas[1]
    sign_and_execute(ceremony, signers=("alice", "bob"), executor="carol")
    first = last_proofs(treasury)[alice.address]
    again = treasury.propose_transfer("treasurer", "0.01 ETH", title="second")
    treasury.sign(again.id, alice)
    second = last_proofs(treasury)[alice.address]
    assert second.reference == f"proposal {again.id}" and second.at >= first.at
    assert last_proofs(treasury)[ceremony.eoas[2].address].kind == "execution"
    assert last_proofs(treasury)[bob.address].reference != f"proposal {again.id}"


def test_drill_proofs_count_when_the_store_has_them(ceremony):
    """Store.owner_proofs (the recovery drill, schema 6): a drill proof makes the silent owner live."""
    treasury = ceremony.treasury
    store = treasury.store
    carol = ceremony.eoas[2].address
    sign_and_execute(ceremony)
    latest = max(p.at for p in last_proofs(treasury).values() if p)
    # The store keeps only a challenge that matches its columns.
    issued = DrillChallenge(treasury.safe, treasury.chain_id, "0x" + "ab" * 32, latest, latest + 7 * DAY)
    drill = store.add_drill(treasury.chain_id, treasury.safe, issued.nonce, issued.typed_data(), (),
                            created_at=latest, expires_at=latest + 7 * DAY, actor="test")
    store.add_owner_proof(drill.id, carol, "test", b"\x05" * 65, proved_at=latest + 2 * DAY, actor="test")
    proofs = last_proofs(treasury)
    assert proofs[carol] == ProofOfControl(carol, drill.created_at, "drill", f"drill {drill.id}")  # dated at its issue
    report = treasury_liveness(treasury, now=latest + 3 * DAY)
    assert report.lines()[:2] == ["3-of-5: 10 of 10 combinations live",
                                  "the threshold survives the loss of any one owner: yes; of any two: yes"]


# --- where it is shown ---------------------------------------------------------------------------------


@pytest.fixture
def cli_run(ceremony, chain):
    from click.testing import CliRunner

    from treasury.cli import cli

    config = Path(ceremony.treasury.config_path)

    def run(*words, network=True):
        args = [*map(str, words), "--config", str(config)] + (["--network", chain.provider.uri] if network else [])
        result = CliRunner(mix_stderr=False).invoke(cli, args)
        assert result.exit_code == 0, f"{words}: {result.stdout}\n{result.stderr}\n{result.exception!r}"
        return result.stdout

    return run


def set_liveness(config: Path, value: str) -> None:
    data = yaml.safe_load(config.read_text())
    data["treasury"]["treasuries"]["ops"]["policy"]["liveness"] = value
    config.write_text(yaml.safe_dump(data))


def test_info_policy_show_and_check_with_a_liveness_period(ceremony, cli_run, monkeypatch):
    import json

    treasury = ceremony.treasury
    sign_and_execute(ceremony)
    latest = max(p.at for p in last_proofs(treasury).values() if p)
    monkeypatch.setattr(live_module, "wall_clock", lambda: latest + 26 * DAY)  # the clock `info` reads
    set_liveness(Path(treasury.config_path), "30d")

    info = json.loads(cli_run("info", "--json"))["liveness"]
    assert info["period"] == 30 * DAY and info["threshold"] == 3 and info["live_combinations"] == 4
    assert info["survives_loss"] == {"1": True, "2": False}
    assert {item["owner"] for item in info["lapsing"]} == set(info["live"])  # 4 days left: inside the 5-day window
    assert info["proofs"][ceremony.eoas[2].address] is None
    shown = cli_run("info")
    for words in ("Owner liveness", "3-of-5: 4 of 10 combinations live; carol never proven",
                  "the threshold survives the loss of any one owner: yes; of any two: no", "proof of control lapses in 4 d",
                  "never proven"):
        assert words in shown, words

    shown = cli_run("policy", "show", network=False)
    assert "Owner liveness" in shown and "30 d" in shown and "off-chain only" in shown
    policy = json.loads(cli_run("policy", "show", "--json", network=False))
    assert policy["liveness"] == {"period": 30 * DAY, "default": DEFAULT_PERIOD, "on_chain": False}
    assert "in sync" in cli_run("policy", "check")  # the guard never sees the setting: no drift


def test_the_safe_page_shows_each_owners_last_proof(ceremony, monkeypatch):
    import requests
    from server_helpers import running_server

    from treasury.server.pages.views import safe_page

    treasury = ceremony.treasury
    sign_and_execute(ceremony)
    latest = max(p.at for p in last_proofs(treasury).values() if p)
    page = safe_page(treasury, liveness_now=latest + DAY)
    assert page.liveness.error == "" and page.liveness.period == "90 d"
    assert page.liveness.summary == ("3-of-5: 4 of 10 combinations live; carol never proven",
                                     "the threshold survives the loss of any one owner: yes; of any two: no")
    states = {row.name: row.state for row in page.liveness.owners}
    assert states == {"alice": "live", "bob": "live", "carol": "never-proven", "dave": "live", "vault": "live"}

    monkeypatch.setattr(live_module, "wall_clock", lambda: latest + 85 * DAY)  # the server thread reads it too
    with running_server(treasury.store, config_path=treasury.config_path, clock=lambda: latest + 85 * DAY) as url:
        response = requests.get(f"{url}/safes/{treasury.safe}", timeout=60)  # the page reads the server's clock
    assert response.status_code == 200, response.text
    html = response.text
    assert 'id="owner-liveness"' in html and 'id="liveness-warnings"' in html
    assert "3-of-5: 4 of 10 combinations live; carol never proven" in html
    assert "dave&#39;s proof of control lapses in 5 d" in html  # the executor: the latest proof
    # One CSS token per state: "never proven" would also be read as the class `proven`.
    assert html.count('class="liveness live"') == 4 and html.count('class="liveness never-proven"') == 1
    assert 'class="liveness never proven"' not in html


def test_the_page_section_is_one_line_when_the_store_cannot_say():
    from types import SimpleNamespace

    from treasury.server.pages.views import liveness_section

    section = liveness_section(SimpleNamespace(store=object(), chain_id=1, safe=SAFE), (A,), 1, NOW)  # type: ignore[arg-type]
    assert section.error == ("owner liveness unavailable: owner liveness needs the proposal store itself (against a "
                             "server, its Safe page shows each owner's last proof of control)")
    assert section.owners == () and section.summary == ()
    broken = SimpleNamespace(store=SimpleNamespace(list_proposals=None), chain_id=1, safe=SAFE)
    assert liveness_section(broken, (A,), 1, NOW).error.startswith("owner liveness unavailable")  # type: ignore[arg-type]
