"""Safe creation: predicted address, canonical factory and singleton, owners, threshold, bad input."""

import pytest
from click.testing import CliRunner
from safe_eth.eth import EthereumClient
from safe_eth.safe.proxy_factory import ProxyFactory

from treasury.addresses import SENTINEL_ADDRESS, ZERO_ADDRESS
from treasury.chain.artifacts import SUPPORTED_VERSIONS, safe_contract
from treasury.chain.safe import predict_safe_address, safe_instance, safe_spec
from treasury.errors import InvalidInput


def singleton_of(chain, safe_address):
    """The proxy's storage slot 0 holds the singleton it delegates to."""
    return "0x" + bytes(chain.provider.get_storage(safe_address, 0))[-20:].hex()


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_created_safe_matches_prediction_and_spec(make_safe, owners, chain, version):
    spec = safe_spec(owners=[o.address for o in owners], threshold=2, version=version, salt_nonce=42)
    predicted = predict_safe_address(spec, chain.chain_id)
    created = make_safe(owners, 2, version=version, salt_nonce=42)
    assert created.address == predicted and created.action == "created"
    safe = safe_instance(created.address, version)
    assert list(safe.getOwners()) == [o.address for o in owners]
    assert safe.getThreshold() == 2 and safe.VERSION() == version
    assert singleton_of(chain, created.address).lower() == safe_contract(version, "safe_l2").canonical_address.lower()
    assert created.factory == safe_contract(version, "proxy_factory").canonical_address


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_prediction_agrees_with_safe_eth_py(safe_infrastructure, owners, chain, version):
    """An independent implementation of the CREATE2 derivation must give the same address."""
    spec = safe_spec(owners=[o.address for o in owners], threshold=2, version=version, salt_nonce=7)
    factory = ProxyFactory(spec.factory(), EthereumClient(chain.provider.uri), version)
    expected = factory.calculate_proxy_address(spec.singleton(chain.chain_id), spec.initializer(), 7)
    assert predict_safe_address(spec, chain.chain_id) == expected


def test_l1_singleton_on_request_and_distinct_address(make_safe, owners, chain):
    l2 = make_safe(owners, 2, salt_nonce=5)
    l1 = make_safe(owners, 2, salt_nonce=5, l2=False)
    assert l1.address != l2.address
    assert singleton_of(chain, l1.address).lower() == safe_contract("1.4.1", "safe").canonical_address.lower()


def test_salt_nonce_changes_address(owners, chain):
    a = safe_spec(owners=[o.address for o in owners], threshold=2, salt_nonce=1)
    b = safe_spec(owners=[o.address for o in owners], threshold=2, salt_nonce=2)
    assert predict_safe_address(a, chain.chain_id) != predict_safe_address(b, chain.chain_id)


def test_creating_twice_changes_nothing(make_safe, owners, chain):
    first = make_safe(owners, 2, salt_nonce=9)
    block = chain.blocks.height
    again = make_safe(owners, 2, salt_nonce=9)
    assert again.action == "present" and again.address == first.address
    assert chain.blocks.height == block


GOOD = ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]
BAD_CHECKSUM = "0x70997970c51812dc3A010C7d01b50e0d17dc79C8"
BAD_INPUT = [
    (dict(owners=GOOD, threshold=0), "threshold 0 must be between 1 and the number of owners (2)"),
    (dict(owners=GOOD, threshold=3), "threshold 3 must be between 1 and the number of owners (2)"),
    (dict(owners=GOOD + GOOD[:1], threshold=1), f"owner {GOOD[0]} is listed more than once"),
    (dict(owners=[GOOD[0], ZERO_ADDRESS], threshold=1), f"owner {ZERO_ADDRESS} is reserved"),
    (dict(owners=[GOOD[0], SENTINEL_ADDRESS], threshold=1), f"owner {SENTINEL_ADDRESS} is reserved"),
    (dict(owners=[GOOD[0], BAD_CHECKSUM], threshold=1), f"owner {BAD_CHECKSUM} has an invalid EIP-55 checksum"),
    (dict(owners=[GOOD[0], "0x1234"], threshold=1), "is not a 0x-prefixed 20-byte hex address"),
    (dict(owners=GOOD, threshold=1, version="1.2.0"), "unknown Safe version '1.2.0'"),
    (dict(owners=[], threshold=1), "a Safe needs at least one owner"),
    (dict(owners=GOOD, threshold=1, salt_nonce=-1), "salt nonce -1 is not a uint256"),
]


@pytest.mark.parametrize("fields,message", BAD_INPUT)
def test_bad_input_is_one_clear_error(fields, message):
    with pytest.raises(InvalidInput) as error:
        safe_spec(**fields)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("fields,message", BAD_INPUT[:8])
def test_create_safe_script_exits_non_zero_and_deploys_nothing(safe_infrastructure, chain, fields, message, tmp_path, load_script):
    args = [arg for owner in fields["owners"] for arg in ("--owner", owner)]
    args += ["--threshold", str(fields["threshold"]), "--version", fields.get("version", "1.4.1")]
    args += ["--manifest-dir", str(tmp_path)]
    block = chain.blocks.height
    result = CliRunner().invoke(load_script("create_safe"), args)
    assert result.exit_code != 0, result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and message in error_lines[0], (result.output, repr(result.exception))
    assert chain.blocks.height == block
    assert not list(tmp_path.iterdir())
