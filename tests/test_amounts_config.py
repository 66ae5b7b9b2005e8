"""Human amounts are exact; the treasury config turns into the same Policy the guard is built from."""

import pytest

from treasury.amounts import TokenBook, format_units
from treasury.config import load_config, parse_duration
from treasury.errors import InvalidInput

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
BOOK = TokenBook.of({"USDC": {"address": USDC, "decimals": 6}})


@pytest.mark.parametrize("text,symbol,units", [
    ("1.5 ETH", "ETH", 1_500_000_000_000_000_000),
    ("250000 USDC", "USDC", 250_000_000_000),
    ("1,000.25 usdc", "USDC", 1_000_250_000),
    ("0.000001 USDC", "USDC", 1),
    ("0.000000000000000001 ETH", "ETH", 1),
    ("115792089237316195423570985008687907853269984665640564039457.584007913129639935 ETH", "ETH", 2**256 - 1),
    ("10,000.5 USDC", "USDC", 10_000_500_000),
    ("1,000,000 USDC", "USDC", 10**12),
    ("1_000_000 USDC", "USDC", 10**12),
    (".5 USDC", "USDC", 500_000),
    ("1.5000000 USDC", "USDC", 1_500_000),  # trailing zeros are not decimals the token lacks
])
def test_amounts_parse_exactly(text, symbol, units):
    token, parsed = BOOK.parse(text)
    assert token.symbol == symbol and parsed == units


@pytest.mark.parametrize("text,message", [
    ("1e-30 ETH", "scientific notation"),
    ("-1 ETH", "is negative"),
    ("0 USDC", "is zero"),
    ("0.0000001 USDC", "more than 6 decimals"),
    ("1 DAI", "unknown token 'DAI'"),
    ("one ETH", "is not a number"),
    ("1.5", "needs a token symbol"),
    ("115792089237316195423570985008687907853269984665640564039457.584007913129639936 ETH", "does not fit"),
])
def test_bad_amounts_are_one_clear_error(text, message):
    with pytest.raises(InvalidInput) as error:
        BOOK.parse(text)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("text", ["1,5 USDC", "1,,,5 USDC", "10,00 USDC", ",5 USDC", "1,0000 USDC", "1,000_000 USDC",
                                  "1_5 USDC", "1,000.000,5 USDC"])
def test_a_thousands_separator_outside_groups_of_three_is_ambiguous(text):
    # "1,5" was stored as 15 USDC: ten times a European 1.5, while the title said "1,5".
    with pytest.raises(InvalidInput, match="is ambiguous") as error:
        BOOK.parse(text)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("text,message", [
    ("5. USDC", "not a decimal number"),
    ("1.2.3 USDC", "not a decimal number"),
    ("\u0661\u0662 USDC", "is not a number"),  # Arabic-Indic digits are digits to Python, not to us
    ("1" * 300 + " USDC", "longer than"),
    ("1.0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001 ETH",
     "more than 18 decimals"),  # exact: no 28-digit (or 200-digit) context rounds the tail away
])
def test_malformed_amounts(text, message):
    with pytest.raises(InvalidInput, match=message):
        BOOK.parse(text)


def test_formatting_round_trips():
    for units in (0, 1, 10**6, 1_234_567_891, 2**104 - 1):
        text = format_units(units, 6)
        assert BOOK.parse(f"{text} USDC", allow_zero=True)[1] == units


def test_durations():
    assert [parse_duration(v) for v in (3600, "90m", "48h", "7d", "2w")] == [3600, 5400, 172800, 604800, 1209600]
    for bad in ("0h", "-1d", "soon", "1.5h"):
        with pytest.raises(InvalidInput):
            parse_duration(bad)


CONFIG = f"""
treasury:
  store: {{store}}
  treasuries:
    ops:
      safe: "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762"
      chain_id: 1
      tokens:
        USDC: {{{{address: "{USDC}", decimals: 6}}}}
      policy:
        recipients: ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]
        calls: [{{{{target: USDC, function: "transfer(address,uint256)"}}}}]
        caps:
          - {{{{token: USDC, amount: "10,000", period: 1d, max_per_tx: 8000 USDC, delay_threshold: 5000}}}}
          - {{{{token: ETH, amount: "2.5", period: 12h}}}}
        delay: 48h
        window: 7d
"""


def test_config_becomes_the_guard_policy(tmp_path):
    path = tmp_path / "ape-config.yaml"
    path.write_text(CONFIG.format(store=tmp_path / "s.db"))
    entry = load_config(path).treasury("ops")
    policy = entry.to_policy()
    usdc = policy.cap_for(USDC)
    assert (usdc.amount, usdc.period, usdc.max_per_tx, usdc.delay_threshold) == (10_000 * 10**6, 86400, 8_000 * 10**6, 5_000 * 10**6)
    native = policy.cap_for("0x0000000000000000000000000000000000000000")
    assert (native.amount, native.period) == (25 * 10**17, 43200)
    assert policy.calls[0].target == USDC and policy.calls[0].selector == bytes.fromhex("a9059cbb")
    assert (policy.delay, policy.window) == (172800, 604800)


@pytest.mark.parametrize("change,message", [
    (("chain_id: 1", "chain_id: one"), "chain_id"),
    (('safe: "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762"', 'safe: "0x29fcb43b46531BcA003ddC8FCB67FFE91900C762"'), "checksum"),
    (("amount: \"10,000\"", "amount: \"10,000.0000001\""), "more than 6 decimals"),
    (("token: ETH", "token: DAI"), "unknown token 'DAI'"),
    (("period: 12h", "period: soon"), "duration 'soon'"),
    (("delay: 48h", "delay: 10m"), "delay 600s must be between one hour and 30 days"),
    (("window: 7d", "colour: blue"), "colour"),
    (('amount: "2.5"', "amount: 2.5"), 'must be quoted ("2.5")'),
])
def test_bad_config_is_one_clear_error(tmp_path, change, message):
    path = tmp_path / "ape-config.yaml"
    path.write_text(CONFIG.format(store=tmp_path / "s.db").replace(*change))
    with pytest.raises(InvalidInput) as error:
        load_config(path).treasury("ops").to_policy()
    assert message in str(error.value) and "\n" not in str(error.value)


def test_unreadable_config(tmp_path):
    with pytest.raises(InvalidInput, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("treasury: [unclosed")
    with pytest.raises(InvalidInput, match="cannot read config"):
        load_config(tmp_path / "bad.yaml")


def test_unknown_treasury_names_the_known_ones(tmp_path):
    path = tmp_path / "ape-config.yaml"
    path.write_text(CONFIG.format(store=tmp_path / "s.db"))
    with pytest.raises(InvalidInput, match=r"unknown treasury 'payroll' \(known: ops\)"):
        load_config(path).treasury("payroll")


def test_retry_settings_from_the_config(tmp_path):
    path = tmp_path / "ape-config.yaml"
    path.write_text("treasury:\n  rpc: {attempts: 3, timeout: 5}\n")
    policy = load_config(path).rpc.policy()
    assert (policy.attempts, policy.timeout, policy.max_delay) == (3, 5.0, 8.0)
    path.write_text("treasury:\n  rpc: {attempts: 0}\n")
    with pytest.raises(InvalidInput, match=r"rpc.attempts"):
        load_config(path)
