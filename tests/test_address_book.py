"""The address book (issue 14, item 2): names from the config wherever an address goes, ENS names on
a chain that has ENS (a real registry on anvil), one clear line everywhere else."""

import pytest
import yaml
from test_cli import Cli

from treasury.addressbook import AddressBook, looks_like_ens
from treasury.amounts import TokenBook
from treasury.chain.ens import ENS_REGISTRY, namehash
from treasury.config import TreasuryConfig
from treasury.errors import InvalidInput

TOKEN = "0x" + "11" * 20
ACME = "0x" + "ab" * 20


def book(entries=None):
    return AddressBook.of(entries if entries is not None else {"acme": ACME}, TokenBook.of({"USDC": {"address": TOKEN, "decimals": 6}}))


# --- the book alone (no chain) ------------------------------------------------------------------------


def test_names_resolve_case_insensitively_and_label_addresses():
    names = book({"acme": ACME})
    checksummed = names.resolve(ACME)
    assert names.resolve("ACME") == names.resolve(" acme ") == checksummed
    assert names.name_of(ACME.upper().replace("0X", "0x")) == "acme"
    assert names.label(ACME) == f"acme ({checksummed})"
    assert names.label(TOKEN) == f"USDC ({TOKEN})"  # token symbols name their contracts too
    assert names.label("0x" + "22" * 20) == "0x" + "22" * 20 and names.name_of("not an address") is None


@pytest.mark.parametrize(("typed", "message"), [
    ("bob", "'bob' is neither an address nor a name in the address book (names: acme)"),
    ("vitalik.eth", "is an ENS name: resolving it needs a chain with ENS"),
    ("0x1234", "is not a 0x-prefixed 20-byte hex address"),
    ("0x" + "aB" * 20, "invalid EIP-55 checksum"),
])
def test_what_the_book_cannot_resolve_is_one_line(typed, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        book().resolve(typed, "recipient")


@pytest.mark.parametrize(("entries", "message"), [
    ({"usdc": ACME}, "'usdc' is a token symbol"),
    ({"acme.eth": ACME}, "no dots: it must not read as an ENS name"),
    ({"0xabc": ACME}, "starting with a letter"),
    ({"acme": ACME, "ACME": "0x" + "cd" * 20}, "listed twice"),
    ({"acme": "0x" + "00" * 20}, "zero address"),
    ({"acme": int(ACME, 16)}, "must be a quoted string"),
    ({"acme": "0x1234"}, "not a 0x-prefixed"),
])
def test_bad_names_are_refused(entries, message):
    with pytest.raises(InvalidInput, match=message):
        book(entries)


def test_looks_like_ens():
    assert looks_like_ens("vitalik.eth") and looks_like_ens("pay.acme.xyz")
    assert not looks_like_ens("acme") and not looks_like_ens("a..eth") and not looks_like_ens("a b.eth")
    assert not looks_like_ens("0xab.cd")


def entry(**fields):
    section = {"treasuries": {"ops": {"safe": "0x" + "12" * 20, "chain_id": 1, **fields}}}
    return TreasuryConfig.from_section(section).treasury("ops")


def test_config_names_in_the_allowlist_guardians_and_call_targets():
    alice = "0x" + "cd" * 20
    ops = entry(vendors={"acme": ACME}, owners={"alice": alice},
                policy={"recipients": ["acme", "0x" + "ef" * 20], "guardians": ["Alice"],
                        "calls": [{"target": "acme", "function": "deposit(address,uint256)"}]})
    policy = ops.to_policy()
    names = ops.address_book()
    assert policy.recipients[0] == names.resolve("acme") and policy.guardians == (names.resolve("alice"),)
    assert policy.calls[0].target == names.resolve("acme")
    assert sorted(names.names) == ["acme", "alice"]


@pytest.mark.parametrize(("fields", "message"), [
    ({"policy": {"recipients": ["bob"]}}, "recipient 'bob' is neither an address nor a name"),
    ({"policy": {"guardians": ["bob.eth"]}}, "guardian 'bob.eth' is an ENS name: the policy takes addresses and address book names only"),
    ({"policy": {"calls": [{"target": "pool.eth", "function": "f()"}]}}, "call target 'pool.eth' is an ENS name"),
    ({"policy": {"calls": [{"target": "nope", "function": "f()"}]}}, "call target 'nope' is neither an address, a token symbol \\(ETH\\) nor an address book name \\(none configured\\)"),
    ({"vendors": {"a": ACME}, "owners": {"A": "0x" + "cd" * 20}}, "'a' is both a vendor and an owner"),
])
def test_config_errors_are_one_line(fields, message):
    with pytest.raises(InvalidInput, match=message):
        entry(**fields)


# --- through the CLI, on anvil ------------------------------------------------------------------------


@pytest.fixture
def named(safe_infrastructure, owners, safe_deployer, tmp_path, chain, accounts):
    """A guarded treasury whose config names its vendor (the only allowed recipient) and its owners."""
    from treasury.testing.fixtures import make_test_treasury

    vendor = accounts[4]
    policy = {"recipients": ["acme"], "guardians": ["carol"],
              "calls": [{"target": "TUSD", "function": "transfer(address,uint256)"},
                        {"target": "TUSD", "function": "approve(address,uint256)"},
                        {"target": "acme", "function": "pay(address[])"}],  # a call target by name
              "caps": [{"token": "TUSD", "amount": "10000", "period": "1d"}]}
    treasury, token = make_test_treasury(
        tmp_path, owners, safe_deployer, policy=policy, salt_nonce=1400,
        vendors={"acme": vendor.address}, named_owners={"alice": owners[0].address, "carol": accounts[7].address})
    return treasury, token, vendor, Cli(tmp_path / "ape-config.yaml", chain)


def word(address):
    return address.lower()[2:].rjust(64, "0")


def test_propose_transfer_to_a_book_name(named):
    treasury, token, vendor, run = named
    proposed = run.json("propose", "transfer", "acme", "250 TUSD")
    assert proposed["to"] == token.address and word(vendor.address) in proposed["data"]
    assert proposed["verdict"]["outcome"] == "allow"  # the allowlist was written as "acme"
    assert treasury.policy.guardians == (treasury.addresses.resolve("carol"),)
    assert "ACME" != treasury.addresses.name_of(vendor.address) == "acme"


def test_an_unknown_name_is_one_line_and_stores_nothing(named):
    treasury, token, vendor, run = named
    result = run("propose", "transfer", "bob", "250 TUSD")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: recipient 'bob' is neither an address nor a name in the address book "
                                     "(names: acme, alice, carol)")
    assert treasury.store.list_proposals() == []


def test_owners_and_call_targets_by_name(named, accounts):
    treasury, token, vendor, run = named
    added = run.json("propose", "add-owner", "carol", "--threshold", "2")
    assert word(accounts[7].address) in added["data"]
    swapped = run.json("propose", "swap-owner", "alice", "carol")
    assert word(accounts[7].address) in swapped["data"] and word(accounts[0].address) in swapped["data"]
    called = run.json("propose", "call", "TUSD", "approve(address,uint256)", "acme", "5")  # a symbol and a name
    assert called["to"] == token.address and word(vendor.address) in called["data"]
    listed = run.json("propose", "call", "acme", "pay(address[])", '["alice", "carol"]')  # names inside JSON too
    assert listed["to"] == vendor.address and word(accounts[7].address) in listed["data"]
    assert listed["verdict"]["outcome"] == "allow"  # the config allowlists the call on "acme"
    unknown = run("propose", "call", "TUSD", "approve(address,uint256)", "bob", "5")
    assert unknown.exit_code == 1 and unknown.stderr.startswith("Error: address argument 'bob' is neither an address nor")
    assert len(treasury.store.list_proposals()) == 4


def test_a_bad_address_book_in_the_config_is_one_line(named):
    treasury, token, vendor, run = named
    path = run.config
    with open(path) as file:
        config = yaml.safe_load(file)
    config["treasury"]["treasuries"]["ops"]["vendors"]["tusd"] = vendor.address
    with open(path, "w") as file:
        yaml.safe_dump(config, file)
    result = run("list", chain=False)
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: treasury config: treasuries.ops: address book name 'tusd' is a token symbol: "
                                     "name the address something else")


# --- ENS, for real: a registry at the ENS registry's address on anvil ------------------------------------


@pytest.fixture
def ens(chain, project, accounts):
    """TestENS's code at the ENS registry address (anvil_setCode); removed again afterwards."""
    deployed = accounts[9].deploy(project.TestENS)
    code = chain.provider.get_code(deployed.address)
    chain.provider.make_request("anvil_setCode", [ENS_REGISTRY, "0x" + bytes(code).hex()])
    registry = project.TestENS.at(ENS_REGISTRY)
    try:
        yield lambda name, address: registry.setAddr(namehash(name), address, sender=accounts[9])
    finally:
        chain.provider.make_request("anvil_setCode", [ENS_REGISTRY, "0x"])


def test_ens_name_without_ens_on_the_chain_is_one_line(named, chain):
    treasury, token, vendor, run = named
    assert len(bytes(chain.provider.get_code(ENS_REGISTRY))) == 0
    result = run("propose", "transfer", "vitalik.eth", "1 TUSD")
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"Error: recipient 'vitalik.eth' is an ENS name, but chain {chain.chain_id} has no "
                                     "ENS registry: use an address or an address book name")
    assert treasury.store.list_proposals() == []


def test_ens_names_resolve_on_a_chain_with_ens(named, ens, accounts):
    treasury, token, vendor, run = named
    ens("vitalik.eth", vendor.address)
    proposed = run.json("propose", "transfer", "Vitalik.ETH", "1 TUSD")  # ENSIP-15 normalizes the case
    assert proposed["to"] == token.address and word(vendor.address) in proposed["data"]
    assert proposed["verdict"]["outcome"] == "allow"  # the same address as the allowlist's "acme"
    assert proposed["title"].endswith(f"{vendor.address} (vitalik.eth via ENS)")  # the name resolved, normalized

    unknown = run("propose", "transfer", "nobody.eth", "1 TUSD")
    assert unknown.exit_code == 1 and unknown.stderr.strip().startswith("Error: ENS name 'nobody.eth' has no resolver")
    invalid = run("propose", "transfer", "a_b.eth", "1 TUSD")
    assert invalid.exit_code == 1 and "Error: recipient 'a_b.eth' is not a valid ENS name" in invalid.stderr
    assert [p.id for p in treasury.store.list_proposals()] == [proposed["id"]]  # the refused ones stored nothing

    ens("vitaiik.eth", vendor.address)  # a look-alike: typed with a capital I, "vitaIik.eth" reads as vitalik
    spoof = run.json("propose", "transfer", "vitaIik.eth", "1 TUSD")
    assert spoof["title"].endswith(f"{vendor.address} (vitaiik.eth via ENS)"), spoof["title"]
    assert "vitaIik" not in treasury.store.get_proposal(spoof["id"]).description  # the name resolved, not the one typed

    ens("carol.eth", accounts[7].address)
    assert treasury.resolve_address("carol.eth", "owner") == accounts[7].address
    added = run.json("propose", "add-owner", "carol.eth", "--threshold", "2")
    assert word(accounts[7].address) in added["data"] and "(carol.eth via ENS)" in added["title"]
    assert treasury.resolve_address("acme") == vendor.address  # the book first, no chain needed


def test_policy_show_names_the_allowlist(named, accounts):
    treasury, token, vendor, run = named
    shown = run.json("policy", "show", chain=False)
    assert shown["recipients"] == [vendor.address] and shown["guardians"] == [accounts[7].address]
    assert shown["names"] == {vendor.address: "acme", accounts[7].address: "carol", token.address: "TUSD"}
    text = " ".join(run.ok("policy", "show", chain=False).stdout.split())
    assert f"Allowed recipients: acme ({vendor.address})" in text
    assert f"Guardians (may cancel a queued intent once): carol ({accounts[7].address})" in text


def test_init_writes_the_address_book(tmp_path):
    from treasury.config import load_config

    run = Cli(tmp_path / "unused.yaml", None)
    target = tmp_path / "ape-config.yaml"
    written = run.json("init", "--safe", "0x" + "12" * 20, "--chain-id", "1", "--vendor", f"acme={ACME}",
                       "--owner", "alice=0x" + "cd" * 20, "--config", target, chain=False, config=False)
    names = load_config(target).treasury("ops").address_book()
    assert written["address_book"] == dict(names.names) and names.lookup("ACME") == names.resolve(ACME)
    assert names.name_of("0x" + "cd" * 20) == "alice"
    for bad in (["--vendor", "acme"], ["--vendor", "a.eth=" + ACME], ["--vendor", f"acme={ACME}", "--owner", f"Acme={ACME}"]):
        other = tmp_path / "bad.yaml"
        result = run("init", "--safe", "0x" + "12" * 20, "--chain-id", "1", *bad, "--config", other, chain=False, config=False)
        assert result.exit_code == 1 and result.stderr.startswith("Error:") and len(result.stderr.splitlines()) == 1, bad
        assert not other.exists(), bad
