"""A 2-of-3 Safe moves ETH only with two valid owner signatures (EIP-712, encoded by safe-eth-py)."""

import pytest
from builders import ONE_ETH, fund, safe_transfer_tx

from treasury.chain.artifacts import SUPPORTED_VERSIONS
from treasury.chain.safe import safe_nonce
from treasury.execution.send import ExecutionReverted, execute_safe_tx
from treasury.proposal.safe_tx import build_safe_tx
from treasury.signatures import encode_signatures, sign_safe_tx


@pytest.fixture(params=SUPPORTED_VERSIONS)
def funded_safe(request, make_safe, owners, safe_deployer):
    return fund(make_safe(owners, 2, version=request.param, salt_nonce=100), safe_deployer, 5 * ONE_ETH)


def test_two_owner_signatures_move_eth(funded_safe, owners, outsider, chain):
    tx = safe_transfer_tx(chain, funded_safe, outsider.address)
    before = outsider.balance
    execute_safe_tx(tx, [sign_safe_tx(owners[0], tx), sign_safe_tx(owners[2], tx)], sender=owners[1], version=funded_safe.version)
    assert outsider.balance - before == ONE_ETH
    assert chain.provider.get_balance(funded_safe.address) == 4 * ONE_ETH
    assert safe_nonce(funded_safe.address, funded_safe.version) == tx.safe_nonce + 1


def test_signature_order_does_not_matter(funded_safe, owners, outsider, chain):
    tx = safe_transfer_tx(chain, funded_safe, outsider.address)
    signatures = [sign_safe_tx(owners[2], tx), sign_safe_tx(owners[0], tx)]
    assert encode_signatures(signatures) == encode_signatures(signatures[::-1])
    execute_safe_tx(tx, signatures, sender=owners[1], version=funded_safe.version)
    assert chain.provider.get_balance(funded_safe.address) == 4 * ONE_ETH


def test_one_signature_is_not_enough(funded_safe, owners, outsider, chain):
    tx = safe_transfer_tx(chain, funded_safe, outsider.address)
    with pytest.raises(ExecutionReverted, match="GS020"):
        execute_safe_tx(tx, [sign_safe_tx(owners[0], tx)], sender=owners[0], version=funded_safe.version)
    assert chain.provider.get_balance(funded_safe.address) == 5 * ONE_ETH


def test_the_same_owner_twice_is_not_two_signatures(funded_safe, owners, outsider, chain):
    tx = safe_transfer_tx(chain, funded_safe, outsider.address)
    signature = sign_safe_tx(owners[0], tx)
    with pytest.raises(ExecutionReverted, match="GS026"):
        execute_safe_tx(tx, [signature, signature], sender=owners[0], version=funded_safe.version)
    assert chain.provider.get_balance(funded_safe.address) == 5 * ONE_ETH


def test_a_non_owner_signature_does_not_count(funded_safe, owners, outsider, chain):
    tx = safe_transfer_tx(chain, funded_safe, outsider.address)
    with pytest.raises(ExecutionReverted, match="GS026"):
        execute_safe_tx(tx, [sign_safe_tx(owners[0], tx), sign_safe_tx(outsider, tx)], sender=outsider, version=funded_safe.version)
    assert chain.provider.get_balance(funded_safe.address) == 5 * ONE_ETH


@pytest.mark.parametrize("tamper", ["value", "recipient", "nonce", "chain_id"])
def test_signatures_over_another_payload_do_not_execute(funded_safe, owners, outsider, chain, tamper):
    """Signatures made for one transaction must not authorise a different one."""
    signed = safe_transfer_tx(chain, funded_safe, outsider.address)
    if tamper == "nonce":  # signed for a later nonce, sent now
        signed = safe_transfer_tx(chain, funded_safe, outsider.address, nonce=signed.safe_nonce + 1)
    if tamper == "chain_id":
        signed = build_safe_tx(funded_safe.address, outsider.address, ONE_ETH, nonce=signed.safe_nonce,
                               chain_id=chain.chain_id + 1, version=funded_safe.version)
    signatures = [sign_safe_tx(owners[0], signed), sign_safe_tx(owners[1], signed)]
    sent = {
        "value": safe_transfer_tx(chain, funded_safe, outsider.address, value=2 * ONE_ETH),
        "recipient": safe_transfer_tx(chain, funded_safe, owners[2].address),
        "nonce": safe_transfer_tx(chain, funded_safe, outsider.address),
        "chain_id": safe_transfer_tx(chain, funded_safe, outsider.address),
    }[tamper]
    with pytest.raises(ExecutionReverted, match=r"GS026|GS025|GS020"):
        execute_safe_tx(sent, signatures, sender=outsider, version=funded_safe.version)
    assert chain.provider.get_balance(funded_safe.address) == 5 * ONE_ETH
