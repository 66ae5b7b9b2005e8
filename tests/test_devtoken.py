"""`treasury dev-token` through the CLI: a test ERC-20 deployed and minted on the local anvil, and
refused (one line, nothing sent) on the stand-in live chain."""

import json

import pytest
from click.testing import CliRunner

from treasury.cli import cli


@pytest.fixture
def local(chain, monkeypatch):
    """The session's anvil as the README's newcomer reaches their own: APE_FOUNDRY_HOST names the
    running node and the network is ethereum:local:foundry (a development network)."""
    monkeypatch.setenv("APE_FOUNDRY_HOST", chain.provider.uri)
    return "ethereum:local:foundry"


def run(*words):
    return CliRunner(mix_stderr=False).invoke(cli, [str(w) for w in words])


def test_dev_token_deploys_and_mints_to_the_safe_on_anvil(make_treasury, tmp_path, local, Contract):
    treasury, _ = make_treasury(guarded=False)
    config = tmp_path / "ape-config.yaml"
    result = run("dev-token", "DUSD", "--decimals", "6", "--mint", "1,000,000", "--config", config, "--network", local,
                 "--json")
    assert result.exit_code == 0, result.stderr
    made = json.loads(result.stdout)
    assert made["symbol"] == "DUSD" and made["decimals"] == 6 and made["to"] == treasury.safe
    assert made["minted"] == str(1_000_000 * 10**6)
    assert made["config_line"] == f'DUSD: {{address: "{made["address"]}", decimals: 6}}'
    token = Contract(made["address"])
    assert token.symbol() == "DUSD" and token.decimals() == 6
    assert token.balanceOf(treasury.safe) == 1_000_000 * 10**6
    assert made["added_to"] is None


def test_dev_token_adds_itself_to_the_config_keeping_the_rest(make_treasury, tmp_path, local, Contract):
    from treasury.config import load_config

    treasury, _ = make_treasury(guarded=False)
    config = tmp_path / "ape-config.yaml"
    config.write_text("# my project's notes\n" + config.read_text())
    before = config.read_text().splitlines()
    result = run("dev-token", "DUSD", "--mint", "500", "--add-to-config", "--config", config, "--network", local)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"added DUSD to the ops treasury's `tokens:` in {config}"
    after = config.read_text().splitlines()
    [added] = [line for line in after if line not in before]
    assert len(after) == len(before) + 1 and added.strip().startswith('"DUSD": {address: "0x')
    book = load_config(config).treasury("ops").token_book()
    assert Contract(book.by_symbol("DUSD").address).balanceOf(treasury.safe) == 500 * 10**6
    # Twice is refused before anything is deployed: the symbol is taken.
    again = run("dev-token", "DUSD", "--add-to-config", "--config", config, "--network", local)
    assert again.exit_code == 1 and "already has a token DUSD" in again.stderr
    assert config.read_text().splitlines() == after


def test_dev_token_prints_the_config_line_and_mints_to_an_address(local, accounts, Contract):
    receiver = accounts[7].address
    result = run("dev-token", "GLD", "--decimals", "18", "--mint", "2.5", "--to", receiver, "--network", local)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    address = lines[0].split(" deployed at ")[1]
    assert lines[1] == f"minted 2.5 GLD to {receiver}"
    assert lines[-1].strip() == f'GLD: {{address: "{address}", decimals: 18}}'
    assert Contract(address).balanceOf(receiver) == 25 * 10**17


@pytest.mark.parametrize("words, message", [
    (["dev-token", "1X"], "token symbol"),
    (["dev-token", "DUSD", "--mint", "1,5"], "ambiguous"),
    (["dev-token", "DUSD", "--mint", "10 USDC"], "names USDC"),
    (["dev-token", "DUSD", "--decimals", "2", "--mint", "1.005"], "more than 2 decimals"),
])
def test_dev_token_refuses_bad_input_in_one_line(words, message, local):
    result = run(*words, "--network", local)
    assert result.exit_code == 1 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_dev_token_is_refused_on_a_live_network(standin):
    before = standin.rpc("eth_getTransactionCount", ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"])
    result = run("dev-token", "DUSD", "--to", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "--account", "TEST::0",
                 "--network", standin.url)
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: dev-token deploys a token anyone can mint: development networks only")
    assert "(chain 1)" in line and line.endswith("nothing deployed")
    after = standin.rpc("eth_getTransactionCount", ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"])
    assert before == after


INIT_SECTION = """treasury:
  store: .treasury/treasury.db
  treasuries:
    ops:
      safe: '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65'
      chain_id: 31337
      tokens: {}   # none yet
      policy:
        delay: 48h
"""
NEW_TOKEN = ("DUSD", "0x976EA74026E726554dB657fA54763abd0C3a0aa9", 6)


def test_add_token_fills_the_empty_tokens_that_init_writes(tmp_path):
    from treasury.config_writer import add_token

    config = tmp_path / "ape-config.yaml"
    config.write_text("# notes\n" + INIT_SECTION)
    entry = add_token(config, "ops", *NEW_TOKEN)
    assert entry.token_book().by_symbol("DUSD").address == NEW_TOKEN[1]
    assert config.read_text() == "# notes\n" + INIT_SECTION.replace(
        "      tokens: {}   # none yet\n",
        '      tokens:   # none yet\n        "DUSD": {address: "0x976EA74026E726554dB657fA54763abd0C3a0aa9", decimals: 6}\n')


@pytest.mark.parametrize("tokens, message", [
    ('      tokens: {USDC: {address: "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc", decimals: 6}}\n', "add it by hand"),
    ('      tokens: {dusd: {address: "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc", decimals: 6}}\n', "already has a token"),
])
def test_add_token_writes_nothing_where_it_cannot_place_the_line_safely(tmp_path, tokens, message):
    from treasury.config_writer import add_token
    from treasury.errors import InvalidInput

    config = tmp_path / "ape-config.yaml"
    text = INIT_SECTION.replace("      tokens: {}   # none yet\n", tokens)
    config.write_text(text)
    with pytest.raises(InvalidInput, match=message):
        add_token(config, "ops", *NEW_TOKEN)
    assert config.read_text() == text
