"""Input is refused in one line before it is stored: the config model, the store location, `init`,
ABI arguments and batch files, bounded file reading, and the CLI's small refusals."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from treasury.config import MAX_CHAIN_ID, load_config
from treasury.errors import InvalidInput

SAFE = "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
VENDOR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
BAD_CHECKSUM = "0x70997970c51812dc3A010C7d01b50e0d17dc79C8"  # one letter's case changed
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def section(**entry):
    """A valid `treasury:` section; keyword arguments replace (or add) fields of the `ops` entry."""
    ops = {"safe": SAFE, "chain_id": 1, "tokens": {"USDC": {"address": USDC, "decimals": 6}},
           "policy": {"recipients": [VENDOR], "caps": [{"token": "USDC", "amount": "10,000", "period": "1d"}]}}
    ops.update(entry)
    return {"store": "store.db", "treasuries": {"ops": ops}}


def write_config(folder: Path, treasury: dict, name: str = "ape-config.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump({"treasury": treasury}))
    return path


def treasury_cli(*args, cwd, env=None, timeout=120):
    """`treasury ...` as a fresh process: the exit code is the process's own (a signal shows as negative)."""
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([str(BIN / "treasury"), *map(str, args)], cwd=cwd, env=environment, capture_output=True, check=False,
                          text=True, timeout=timeout)


def assert_one_error_line(result, *needles):
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# --- the config model: every limit the guard enforces, checked when the config is loaded ---------


def cap(**fields):
    return {"policy": {"recipients": [VENDOR], "caps": [{"token": "USDC", "amount": "10,000", "period": "1d", **fields}]}}


@pytest.mark.parametrize("entry,message", [
    (cap(amount="-5"), "negative"),
    (cap(amount="0"), "is zero"),
    (cap(amount="1,5"), "ambiguous"),
    (cap(amount=str(2**104)), "2**104 - 1"),
    (cap(period=0), "must be positive"),
    (cap(period="30s"), "between 60s and one year"),
    (cap(period=True), "period"),
    ({"tokens": {"USDC": {"address": USDC, "decimals": 99}}}, "decimals 99 must be between 0 and 77"),
    ({"tokens": {"USDC": {"address": USDC, "decimals": "6"}}}, "decimals"),
    ({"tokens": {"USDC": {"address": USDC, "decimals": 6, "colour": "blue"}}}, "colour"),
    ({"policy": {"delay": "1s"}}, "delay 1s must be between one hour and 30 days"),
    ({"policy": {"window": 31 * 86400}}, "window"),
    ({"chain_id": 0}, "chain_id"),
    ({"chain_id": -1}, "chain_id"),
    ({"chain_id": 2**64}, "chain_id"),
    ({"chain_id": MAX_CHAIN_ID + 1}, "chain_id"),
    ({"chain_id": True}, "chain_id"),
    ({"safe": "0x" + "00" * 20}, "zero address"),
    ({"safe": SAFE.lower()[:-1] + "C"}, "checksum"),
    ({"confirmations": -1}, "confirmations"),
    ({"colour": "blue"}, "colour"),
])
def test_a_config_the_guard_could_not_enforce_is_refused_on_load(tmp_path, entry, message):
    path = write_config(tmp_path, section(**entry))
    with pytest.raises(InvalidInput) as error:
        load_config(path)  # loading alone: no command has to build the policy to notice
    assert message in str(error.value) and "\n" not in str(error.value), str(error.value)


def test_top_level_limits(tmp_path):
    for bad, message in (({"store": ""}, "store"), ({"rpc": {"timeout": float("inf")}}, "rpc.timeout"),
                         ({"treasuries": {"a b": section()["treasuries"]["ops"]}}, "treasury name"),
                         ({"colour": "blue"}, "colour")):
        with pytest.raises(InvalidInput, match=message):
            load_config(write_config(tmp_path, {**section(), **bad}))
    assert load_config(write_config(tmp_path, section())).treasury("ops").chain_id == 1
    assert load_config(write_config(tmp_path, section(chain_id=MAX_CHAIN_ID))).treasury("ops").chain_id == MAX_CHAIN_ID


def test_store_only_commands_refuse_a_bad_config_in_one_line(tmp_path):
    config = write_config(tmp_path, section(policy={"delay": "1s"}))
    for command in (["list"], ["log"]):
        result = treasury_cli(*command, "--config", config, cwd=tmp_path)
        assert_one_error_line(result, "delay 1s")
    assert not (tmp_path / "store.db").exists()


# --- the config without ape: load_config() reads the project itself, as ape would ---------------


def test_loading_the_config_imports_neither_ape_nor_web3(tmp_path):
    write_config(tmp_path, section())
    code = ("import sys; from treasury.config import load_config; c = load_config(); "
            "print(c.treasury('ops').chain_id, sorted(m for m in sys.modules if m.split('.')[0] in ('ape', 'web3')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, check=False, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(None, 1) == ["1", "[]\n"]


def test_load_config_agrees_with_ape_and_the_environment_wins(tmp_path):
    data_folder = tmp_path / "data"
    data_folder.mkdir()
    (data_folder / "ape-config.yaml").write_text(yaml.safe_dump({"treasury": {"rpc": {"attempts": 3}}}))
    project = tmp_path / "project"
    project.mkdir()
    ops = section()["treasuries"]["ops"]
    (project / "ape-config.yml").write_text(  # .yml, a $VAR ape expands, and a store the environment replaces
        "name: demo\ntreasury:\n  store: $TREASURY_TEST_FOLDER/from-file.db\n  rpc: {timeout: 5}\n"
        f"  treasuries: {json.dumps({'ops': ops})}\n")
    env = {**os.environ, "APE_DATA_FOLDER": str(data_folder), "TREASURY_TEST_FOLDER": str(tmp_path),
           "APE_TREASURY_STORE": "postgresql://u:p@db.example/treasury"}
    code = ("import json; from treasury.config import load_config; "
            "ours = load_config().model_dump(mode='json'); "
            "from ape import config; theirs = config.get_config('treasury').model_dump(mode='json'); "
            "print(json.dumps([ours, theirs]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=project, env=env, capture_output=True, check=False, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    ours, theirs = json.loads(result.stdout.strip().splitlines()[-1])
    assert ours == theirs
    assert ours["store"] == "postgresql://u:p@db.example/treasury"
    assert (ours["rpc"]["attempts"], ours["rpc"]["timeout"]) == (3, 5.0)  # the global file, then the project's

    del env["APE_TREASURY_STORE"]
    result = subprocess.run([sys.executable, "-c", code], cwd=project, env=env, capture_output=True, check=False, text=True, timeout=300)
    ours, theirs = json.loads(result.stdout.strip().splitlines()[-1])
    assert ours == theirs and ours["store"] == f"{tmp_path}/from-file.db"


def test_load_config_finds_the_project_file_ape_would(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("APE_DATA_FOLDER", str(tmp_path / "no-global"))
    monkeypatch.delenv("APE_TREASURY_STORE", raising=False)
    assert load_config().treasuries == {}  # no file at all: the defaults, as ape gives them
    (tmp_path / "ape-config.json").write_text(json.dumps({"treasury": {"store": "from-json.db"}}))
    assert load_config().store == "from-json.db"
    (tmp_path / "ape-config.yml").write_text("treasury: {store: from-yml.db}\n")
    assert load_config().store == "from-yml.db"  # .yml before .json
    (tmp_path / "pyproject.toml").write_text('[tool.ape.treasury]\nstore = "from-pyproject.db"\n')
    assert load_config().store == "from-pyproject.db"  # [tool.ape] wins, as in ape


# --- the store location: a URL is passed through, the environment wins -------------------------


def test_a_store_url_is_not_turned_into_a_file_name(tmp_path, monkeypatch):
    from treasury.treasury import Treasury

    monkeypatch.chdir(tmp_path)
    target = tmp_path / "elsewhere" / "team.db"
    target.parent.mkdir()
    config = write_config(tmp_path, {**section(), "store": f"sqlite:///{target}"})
    treasury = Treasury.load("ops", config)
    treasury.store.close()
    assert target.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["ape-config.yaml", "elsewhere"]

    monkeypatch.setenv("APE_TREASURY_STORE", str(tmp_path / "from-env.db"))
    treasury = Treasury.load("ops", config)
    treasury.store.close()
    assert (tmp_path / "from-env.db").exists()

    monkeypatch.setenv("APE_TREASURY_STORE", "postgresql://u:secret@127.0.0.1:1/treasury")
    with pytest.raises(Exception):  # noqa: B017, PT011 - no server there (or no driver): what matters is what was created
        Treasury.load("ops", config)
    assert not [p for p in tmp_path.rglob("*") if "postgresql" in str(p) or "secret" in str(p)]


# --- init: values through the YAML emitter, validated before anything is written ---------------


@pytest.mark.parametrize("options,message", [
    (["--chain-id", "1", "--version", '1.4.1"\n      guard: "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762'], "Safe version"),
    (["--chain-id", "-1"], "chain_id"),
    (["--chain-id", "0"], "chain_id"),
    (["--chain-id", str(10**80)], "chain_id"),
    (["--chain-id", "1", "--token", "USDC=" + USDC + ":99"], "decimals 99"),
    (["--chain-id", "1", "--treasury", "ops\nguard: x"], "treasury name"),
    (["--chain-id", "1", "--store", ""], "store"),
])
def test_init_refuses_what_the_tool_would_refuse_and_writes_nothing(tmp_path, options, message):
    target = tmp_path / "ape-config.yaml"
    target.write_text("name: mine\n")
    result = CliRunner(mix_stderr=False).invoke(_cli(), ["init", "--safe", SAFE, "--config", str(target), *options])
    assert result.exit_code == 1 and result.stderr.startswith("Error:") and len(result.stderr.splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert target.read_text() == "name: mine\n"


def test_init_writes_values_only_through_the_yaml_emitter(tmp_path):
    target = tmp_path / "ape-config.yaml"
    target.write_text("name: mine")  # no final newline
    store = 'odd "store": # name\n.db'
    result = CliRunner(mix_stderr=False).invoke(_cli(), ["init", "--safe", SAFE.lower(), "--chain-id", "10", "--store", store,
                                                         "--token", f"USDC={USDC}:6", "--config", str(target), "--json"])
    assert result.exit_code == 0, result.stderr
    data = yaml.safe_load(target.read_text())
    assert data["name"] == "mine" and data["treasury"]["store"] == store
    assert data["treasury"]["treasuries"]["ops"]["safe"] == SAFE.lower()
    entry = load_config(target).treasury("ops")
    assert (entry.safe, entry.chain_id, entry.token_book().by_symbol("USDC").decimals) == (SAFE, 10, 6)


def _cli():
    from treasury.cli import cli

    return cli


# --- ABI arguments and batch files: the same address and amount parsers -------------------------


def test_an_address_argument_with_a_wrong_checksum_is_refused():
    from treasury.proposal.arguments import parse_arguments

    with pytest.raises(InvalidInput, match="invalid EIP-55 checksum"):
        parse_arguments("approve(address,uint256)", [BAD_CHECKSUM, "1"])
    with pytest.raises(InvalidInput, match="invalid EIP-55 checksum"):
        parse_arguments("pay((address,uint256)[])", [json.dumps([[VENDOR, 1], [BAD_CHECKSUM, 2]])])
    assert parse_arguments("approve(address,uint256)", [VENDOR.lower(), "0x10"]) == [VENDOR, 16]
    assert parse_arguments("f(bool,bytes2,int8[2])", ["true", "0xabcd", "[-1, 2]"]) == [True, b"\xab\xcd", [-1, 2]]
    for signature, args, message in (("f(uint256)", ["1,5"], "not a valid uint256"), ("f(bool)", ["yes"], "bool"),
                                     ("f(uint8[2])", ["[1]"], "1 items, not 2"), ("f(uint256)", [], "takes 1 arguments"),
                                     ("f(uint256[])", ["[" * 100_000], "nested deeper")):
        with pytest.raises(InvalidInput, match=message):
            parse_arguments(signature, args)


def test_the_address_parser_checksums_as_eip55_does():
    import random

    from eth_utils import to_checksum_address

    from treasury.addresses import parse_address

    generator = random.Random(55)
    for _ in range(300):
        lower = "0x" + bytes(generator.getrandbits(8) for _ in range(20)).hex()
        expected = to_checksum_address(lower)
        assert parse_address(lower) == parse_address("0x" + lower[2:].upper()) == parse_address(expected) == expected
        digits = expected[2:]
        first = next(i for i, c in enumerate(digits) if c.isalpha())
        flipped = digits[:first] + digits[first].swapcase() + digits[first + 1:]  # one letter's case: a typo
        if flipped not in (flipped.lower(), flipped.upper()):
            with pytest.raises(InvalidInput, match="invalid EIP-55 checksum"):
                parse_address("0x" + flipped)


def test_batch_items_use_the_same_parsers(tmp_path):
    from treasury.amounts import TokenBook
    from treasury.proposal.batchfile import batch_intents, read_batch_file

    book = TokenBook.of({"USDC": {"address": USDC, "decimals": 6}})
    path = tmp_path / "pay.yaml"
    path.write_text(f'- {{to: "{VENDOR}", amount: "1,000.5 USDC"}}\n'
                    f'- {{target: USDC, function: "approve(address,uint256)", args: ["{VENDOR}", 5]}}\n')
    transfer, approve = batch_intents(SAFE, book, read_batch_file(path))
    (tmp_path / "huge.json").write_text(json.dumps([{"to": VENDOR, "amount": "1 USDC"}] * 257))
    with pytest.raises(InvalidInput, match="257 items; at most 256"):
        read_batch_file(tmp_path / "huge.json")
    assert transfer.to == USDC and transfer.data.endswith((1_000_500_000).to_bytes(32, "big"))
    assert approve.to == USDC and approve.data[:4] == bytes.fromhex("095ea7b3")
    for item, message in (({"to": VENDOR, "amount": "1,5 USDC"}, "batch item 1: amount '1,5' is ambiguous"),
                          ({"target": "USDC", "function": "approve(address,uint256)", "args": [BAD_CHECKSUM, 5]},
                           "batch item 1: address argument .* invalid EIP-55 checksum"),
                          ({"to": int(VENDOR, 16), "amount": "1 USDC"}, "must be quoted"),
                          ({"target": "USDC", "function": "approve(address,uint256)", "args": [VENDOR, 5], "value": 0.1},
                           "must be quoted")):
        with pytest.raises(InvalidInput, match=message):
            batch_intents(SAFE, book, [item])


# --- bounded files: a 100,000-deep file is one line, never a crash ------------------------------


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("command", [["import", "deep.json"], ["propose", "batch", "deep.json"]])
def test_a_deeply_nested_file_is_one_error_line_not_a_crash(tmp_path, command):
    config = write_config(tmp_path, section())
    (tmp_path / "deep.json").write_text(DEEP)
    result = treasury_cli(*command, "--config", config, cwd=tmp_path, timeout=300)
    assert_one_error_line(result, "deep.json", "nested deeper than 64 levels")
    assert not (tmp_path / "store.db").exists()


def test_bounded_reading_in_the_library(tmp_path):
    import py_ecc  # noqa: F401 - what raises the recursion limit to 100,000 in the real tool

    from treasury.files import MAX_BYTES, read_json, read_yaml
    from treasury.signatures.exchange import InvalidBundle, bundle_safe_tx_hash

    deep = tmp_path / "deep.json"
    deep.write_text('{"a": "[[[[ a string is not nesting", "b": ' + DEEP + "}")
    with pytest.raises(InvalidBundle, match="nested deeper than 64 levels"):
        bundle_safe_tx_hash(deep)
    for read in (read_json, read_yaml):
        with pytest.raises(InvalidInput, match="nested deeper than 64 levels"):
            read(deep, "file")
    big = tmp_path / "big.json"
    big.write_text(" " * (MAX_BYTES + 1))
    with pytest.raises(InvalidInput, match="larger than"):
        read_json(big, "bundle")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)))
    with pytest.raises(InvalidInput, match="YAML aliases"):
        read_yaml(bomb, "batch file")


@pytest.mark.parametrize("text, load, problem", [
    ("when: 2001-13-45\n", "yaml", "month must be in 1..12"),
    ("n: " + "1" * 5000 + "\n", "yaml", "4300 digits"),
    ("[" + "1" * 5000 + "]", "json", "4300 digits"),
])
def test_a_value_the_parser_refuses_is_one_line_naming_the_file(tmp_path, text, load, problem):
    from treasury.files import read_json, read_yaml

    path = tmp_path / f"bad.{load}"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=f"cannot read batch file .*bad.{load}: not valid .*{problem}") as caught:
        (read_json if load == "json" else read_yaml)(path, "batch file")
    assert "\n" not in str(caught.value)


def test_bundle_text_is_bounded_like_a_bundle_file():
    from treasury.files import MAX_BYTES
    from treasury.signatures.exchange import InvalidBundle, bundle_safe_tx_hash

    with pytest.raises(InvalidBundle, match="larger than"):
        bundle_safe_tx_hash("{" + " " * MAX_BYTES + "}")
    with pytest.raises(InvalidBundle, match=r"not valid JSON.*4300 digits"):
        bundle_safe_tx_hash('{"nonce": ' + "1" * 5000 + "}")


def test_yaml_aliases_cannot_recurse_or_multiply_depth(tmp_path):
    from treasury.files import load_yaml, yaml_shape

    for text in ("a: &x [*x]\n", "a: &x {b: [1, {c: *x}]}\n"):
        with pytest.raises(InvalidInput, match="f: alias \\*x refers to a node that contains it"):
            load_yaml(text, "f")
    # 40 aliases, each nesting the previous anchor 60 levels deeper: 2,400 levels once expanded
    lines = [f"a0: &a0 {'[' * 60}1{']' * 60}"]
    lines += [f"a{i}: &a{i} {'[' * 59}*a{i - 1}{']' * 59}" for i in range(1, 40)]
    text = "\n".join(lines) + "\n"
    assert yaml_shape(text)[0] > 64
    with pytest.raises(InvalidInput, match="f: nested deeper than 64 levels"):
        load_yaml(text, "f")
    shallow = "a: &a [1, [2]]\nb: [*a, *a]\n"
    assert yaml_shape(shallow)[0] == 4 and load_yaml(shallow, "f") == {"a": [1, [2]], "b": [[1, [2]], [1, [2]]]}


# --- small CLI refusals, on a real treasury and anvil --------------------------------------------


def test_cli_refusals_leave_the_store_unchanged(make_treasury, chain, accounts, tmp_path):
    vendor = accounts[4].address
    treasury, token = make_treasury({"recipients": [vendor], "calls": [{"target": "TUSD", "function": "transfer(address,uint256)"}],
                                     "caps": [{"token": "TUSD", "amount": "1000", "period": "1d"}]})
    config = tmp_path / "ape-config.yaml"
    runner = CliRunner(mix_stderr=False)

    def run(*args):
        return runner.invoke(_cli(), [str(a) for a in args] + ["--config", str(config), "--network", chain.provider.uri])

    def refused(result, needle):
        assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], result.stderr

    refused(run("propose", "call", token.address, "approve(address,uint256)", BAD_CHECKSUM, "1"), "invalid EIP-55 checksum")
    assert treasury.store.list_proposals() == []

    pid = treasury.propose_transfer(vendor, "10 TUSD").id
    # No terminal (stdin closed) and no --yes: a process of its own, as a script would run it.
    signing = subprocess.run([str(BIN / "treasury"), "sign", pid, "--account", "TEST::0", "--config", str(config),
                              "--network", chain.provider.uri], cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, check=False,
                             text=True, timeout=300)
    assert signing.returncode == 1, (signing.returncode, signing.stderr)
    last = signing.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "--yes" in last, signing.stderr
    assert treasury.store.signatures(pid) == []

    bundle = tmp_path / "bundle.json"
    bundle.write_text("mine\n")
    refused(run("export", pid, bundle), "--force")
    assert bundle.read_text() == "mine\n"
    assert run("export", pid, bundle, "--force").exit_code == 0
    assert json.loads(bundle.read_text())["safe_tx_hash"] == treasury.get(pid).safe_tx_hash
