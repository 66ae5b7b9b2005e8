"""The ape scripts (and their CLI twins) on the test chain: thin layers with one-line errors."""

import traceback

from click.testing import CliRunner

from treasury.chain.guard import guard_at, installed_guard


def test_deploy_guard_installs_the_configured_policy(make_treasury, tmp_path, chain, load_script):
    treasury, token = make_treasury({"caps": [{"token": "TUSD", "amount": "100", "period": "1d"}]}, guarded=False)
    result = CliRunner().invoke(load_script("deploy_guard"), [
        "--treasury", "ops", "--config", str(tmp_path / "ape-config.yaml"), "--signer", "TEST::0", "--signer", "TEST::1",
        "--network", chain.provider.uri, "--account", "TEST::9",  # the test's own anvil (seen as a live node)
    ])
    assert result.exit_code == 0, "".join(traceback.format_exception(result.exc_info[1]))
    guard = installed_guard(treasury.safe)
    assert f"guard {guard} installed" in result.output
    assert guard_at(guard).capConfig(token.address)[0] == 100 * 10**6


def test_deploy_guard_with_an_unknown_treasury_is_one_line(make_treasury, tmp_path, load_script):
    make_treasury(guarded=False)
    result = CliRunner().invoke(load_script("deploy_guard"), [
        "--treasury", "payroll", "--config", str(tmp_path / "ape-config.yaml"), "--signer", "TEST::0",
    ])
    assert result.exit_code != 0
    assert [line for line in result.output.splitlines() if line.startswith("Error:")] == [
        "Error: unknown treasury 'payroll' (known: ops)"
    ]
