"""The pytest plugin in a project that is not this one: a temporary ape project with no contracts
uses `treasury_factory`, `safe_owners` and `safe_infrastructure` under `ape test` on its own anvil."""

import sys
import textwrap
from pathlib import Path

from treasury.chain.localnode import free_local_url

pytest_plugins = ["pytester"]

APE_CONFIG = """\
name: plugin-user
ethereum:
  default_network: local
  local:
    default_provider: foundry
foundry:
  host: {host}
"""

USER_TESTS = '''
def test_factory_makes_a_guarded_funded_treasury(treasury_factory, safe_owners, safe_infrastructure, accounts, chain):
    vendor, relayer = accounts[4], accounts[5]
    assert any(c.version == "1.4.1" and c.role == "proxy_factory" for c in safe_infrastructure)
    ops, token = treasury_factory(policy={
        "recipients": [vendor.address],
        "calls": [{"target": "TUSD", "function": "transfer(address,uint256)"}],
        "caps": [{"token": "TUSD", "amount": "1000", "period": "1d"}],
    })
    assert ops.owners() == [o.address for o in safe_owners] and ops.threshold() == 2
    assert ops.entry.guard is not None
    assert token.symbol() == "TUSD" and token.balanceOf(ops.safe) == 1_000_000 * 10**6
    assert chain.provider.get_balance(ops.safe) == 10 * 10**18

    too_much = ops.propose_transfer(vendor.address, "2000 TUSD")
    assert ops.verdict(too_much.id).outcome == "deny"
    paid = ops.propose_transfer(vendor.address, "100 TUSD")  # the next free nonce
    assert paid.nonce == too_much.nonce + 1 and ops.verdict(paid.id).outcome == "allow"
    rejection = ops.reject(too_much.id)
    for proposal in (rejection, paid):
        for owner in safe_owners[:2]:
            ops.sign(proposal.id, owner)
        ops.execute(proposal.id, sender=relayer)
    assert token.balanceOf(vendor.address) == 100 * 10**6
    assert ops.get(paid.id).status == "executed" and ops.get(too_much.id).status == "superseded"


def test_each_call_makes_a_new_safe(treasury_factory, safe_owners):
    first, first_token = treasury_factory(guarded=False)
    second, second_token = treasury_factory(owners=safe_owners[:2], threshold=1, guarded=False, token_amount=5)
    assert first.safe != second.safe and first_token.address != second_token.address
    assert second.threshold() == 1 and second.entry.guard is None
    assert second_token.balanceOf(second.safe) == 5 * 10**6
'''


def test_plugin_fixtures_work_in_another_ape_project(pytester):
    # The project's anvil gets a port the kernel says is free (with `host: auto` ape-foundry draws one
    # that may be taken; see treasury.chain.localnode).
    pytester.makefile(".yaml", **{"ape-config": APE_CONFIG.format(host=free_local_url())})
    tests = pytester.mkdir("tests")
    (tests / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    assert not (pytester.path / "contracts").exists()  # nothing of ours but the installed package
    ape = Path(sys.executable).parent / "ape"
    result = pytester.run(str(ape), "test", "tests", "-p", "no:cacheprovider", "-q", timeout=300)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    result.assert_outcomes(passed=2)
