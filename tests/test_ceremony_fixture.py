"""The key-ceremony Safe every ceremony test uses is what it says: 3-of-5, one contract owner that answers EIP-1271."""


def test_the_ceremony_safe_is_three_of_five_with_one_contract_owner(ceremony, chain):
    treasury = ceremony.treasury
    assert treasury.threshold() == 3
    assert sorted(treasury.owners()) == sorted([a.address for a in ceremony.eoas] + [ceremony.vault])
    assert len(bytes(chain.provider.get_code(ceremony.vault))) > 0
    assert treasury.guard() is not None
    assert treasury.resolve_address("vault") == ceremony.vault
