"""treasury.chain.rpc against the session anvil, through a FaultProxy that plays a flaky hosted node.

Each test uses a plain web3 client hardened by `harden`, with a recording `sleep`: the backoff
delays are asserted, never waited for (only the client-timeout test waits, 0.5 s).
"""

import logging

import pytest
import requests
from rpc_proxy import FaultProxy
from web3 import HTTPProvider, Web3
from web3.exceptions import Web3RPCError
from web3.providers import AutoProvider

from treasury.chain.rpc import RetryPolicy, RPCRefused, RPCUnavailable, harden

SECRET_PATH = "/v3/SECRETKEY?apikey=SECRETKEY"


@pytest.fixture
def proxy(chain):
    with FaultProxy(chain.provider.uri) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def direct(chain):
    """A client straight to anvil, to check what really happened on chain."""
    return Web3(HTTPProvider(chain.provider.uri))


# Long enough that only an injected delay outlasts it, never a loaded machine's ordinary answer.
SLOW_ANSWER_TIMEOUT = 2.0


def hardened_client(url, **policy):
    """A Web3 on `url` hardened with a jitter-free policy; returns it and its recorded delays."""
    delays = []
    web3 = Web3(HTTPProvider(url))
    harden(web3, RetryPolicy(**{"jitter": 0.0, "sleep": delays.append, **policy}))
    return web3, delays


def signed_transfer(chain, sender, receiver, nonce, value):
    """Raw bytes and hash of a value transfer signed by an ape test account (no key handling here)."""
    txn = chain.provider.network.ecosystem.create_transaction(receiver=receiver.address, value=value, nonce=nonce)
    signed = sender.sign_transaction(sender.prepare_transaction(txn))
    return signed.serialize_transaction(), signed.txn_hash.to_0x_hex()


def assert_one_line_without_secret(error):
    message = str(error)
    assert "\n" not in message
    assert "SECRETKEY" not in message and "/v3" not in message and "apikey" not in message


@pytest.mark.parametrize("kind", ["500", "502", "503", "rate_limit_rpc", "drop"])
def test_transient_fault_is_retried_with_exponential_backoff(proxy, direct, kind, caplog):
    web3, delays = hardened_client(proxy.url)
    proxy.inject(kind, "eth_blockNumber", times=2)

    with caplog.at_level(logging.WARNING, logger="treasury.chain.rpc"):
        assert web3.eth.block_number == direct.eth.block_number

    assert proxy.methods.count("eth_blockNumber") == 3
    assert delays == [0.25, 0.5]
    retries = [r.getMessage() for r in caplog.records if r.name == "treasury.chain.rpc"]
    assert len(retries) == 2 and "eth_blockNumber" in retries[0] and "attempt 2 of 6" in retries[0]


@pytest.mark.parametrize(("retry_after", "expected"), [("0", 0.0), ("1.5", 1.5), ("3600", 8.0)])
def test_429_honours_retry_after_capped_at_max_delay(proxy, direct, retry_after, expected):
    web3, delays = hardened_client(proxy.url)
    proxy.inject("429", "eth_blockNumber", times=2, retry_after=retry_after)

    assert web3.eth.block_number == direct.eth.block_number
    assert proxy.methods.count("eth_blockNumber") == 3
    assert delays == [expected, expected]


def test_backoff_is_bounded_by_max_delay(proxy):
    web3, delays = hardened_client(proxy.url, attempts=6, first_delay=0.25, factor=3.0, max_delay=2.0)
    proxy.inject("503", "eth_chainId", times=5)

    assert web3.eth.chain_id == 31337
    assert proxy.methods.count("eth_chainId") == 6
    assert delays == [0.25, 0.75, 2.0, 2.0, 2.0]


def test_answer_slower_than_the_timeout_is_retried(proxy, direct):
    web3, delays = hardened_client(proxy.url, timeout=SLOW_ANSWER_TIMEOUT)
    proxy.inject("delay", "eth_blockNumber", delay=2 * SLOW_ANSWER_TIMEOUT)

    assert web3.eth.block_number == direct.eth.block_number
    assert proxy.methods.count("eth_blockNumber") == 2
    assert delays == [0.25]


@pytest.mark.parametrize(("kind", "status"), [("401", "HTTP 401 Unauthorized"), ("400", "HTTP 400 Bad Request")])
def test_permanent_refusal_is_not_retried(proxy, kind, status):
    web3, delays = hardened_client(proxy.url + SECRET_PATH)
    proxy.inject(kind, "eth_blockNumber", times=5)

    with pytest.raises(RPCRefused) as refused:
        web3.eth.block_number

    assert proxy.methods.count("eth_blockNumber") == 1 and delays == []
    assert f"refused eth_blockNumber: {status} (not retried: check the RPC URL and its API key)" in str(refused.value)
    assert proxy.url in str(refused.value)
    assert_one_line_without_secret(refused.value)


def test_http_400_carrying_a_json_rpc_error_is_the_nodes_answer(monkeypatch):
    """Some nodes answer a revert with HTTP 400 and a JSON-RPC error: web3 must see the error."""
    web3, delays = hardened_client("http://127.0.0.1:9" + SECRET_PATH)
    answer = requests.Response()
    answer.status_code, answer.reason = 400, "Bad Request"
    answer._content = b'{"jsonrpc":"2.0","id":0,"error":{"code":3,"message":"execution reverted: cap"}}'

    def post(*args, **kwargs):
        raise requests.HTTPError("400 Client Error", response=answer)

    monkeypatch.setattr(web3.provider._request_session_manager, "make_post_request", post)
    with pytest.raises(Web3RPCError, match="execution reverted: cap"):
        web3.eth.block_number
    assert delays == []


def test_exhausted_retries_name_the_method_and_attempts(proxy):
    web3, delays = hardened_client(proxy.url + SECRET_PATH, attempts=3)
    proxy.inject("503", "eth_blockNumber", times=10)

    with pytest.raises(RPCUnavailable) as unavailable:
        web3.eth.block_number

    message = str(unavailable.value)
    assert proxy.methods.count("eth_blockNumber") == 3 and delays == [0.25, 0.5]
    expected = f"The RPC node {proxy.url} did not answer eth_blockNumber: HTTP 503 Service Unavailable, after 3 attempts"
    assert message.startswith(expected)
    assert unavailable.value.attempts == 3
    assert_one_line_without_secret(unavailable.value)


def test_dead_node_is_reported_without_the_url_path(chain):
    closed = FaultProxy(chain.provider.uri)
    closed.close()
    web3, delays = hardened_client(closed.url + SECRET_PATH, attempts=2)

    with pytest.raises(RPCUnavailable) as unavailable:
        web3.eth.chain_id

    assert "eth_chainId: connection refused, after 2 attempts" in str(unavailable.value)
    assert delays == [0.25]
    assert_one_line_without_secret(unavailable.value)
    assert web3.is_connected() is False  # web3's contract for a probe: False, not an exception


def test_broadcast_lost_after_forwarding_lands_once(chain, accounts, proxy, direct):
    sender, receiver = accounts[7], accounts[6]
    nonce, balance = direct.eth.get_transaction_count(sender.address), direct.eth.get_balance(receiver.address)
    raw, tx_hash = signed_transfer(chain, sender, receiver, nonce, value=12345)
    web3, delays = hardened_client(proxy.url)
    proxy.inject("reset_after_forward", "eth_sendRawTransaction")

    assert web3.eth.send_raw_transaction(raw).to_0x_hex() == tx_hash

    assert proxy.forwarded.count("eth_sendRawTransaction") == 2  # the node got it twice...
    assert "eth_getTransactionByHash" in proxy.methods  # ...and the "already known" was checked
    assert direct.eth.wait_for_transaction_receipt(tx_hash, timeout=30).status == 1
    assert direct.eth.get_transaction_count(sender.address) == nonce + 1  # ...and it landed once
    assert direct.eth.get_balance(receiver.address) == balance + 12345
    assert delays == [0.25]


def test_broadcast_held_past_the_timeout_is_settled_by_the_retry(chain, accounts, proxy, direct):
    sender, receiver = accounts[7], accounts[6]
    nonce = direct.eth.get_transaction_count(sender.address)
    raw, tx_hash = signed_transfer(chain, sender, receiver, nonce, value=1)
    web3, delays = hardened_client(proxy.url, timeout=SLOW_ANSWER_TIMEOUT)
    proxy.inject("hold", "eth_sendRawTransaction")  # the node has it; the answer never comes

    assert web3.eth.send_raw_transaction(raw).to_0x_hex() == tx_hash

    assert proxy.wait_forwarded("eth_sendRawTransaction", timeout=0)
    assert proxy.forwarded.count("eth_sendRawTransaction") == 2 and delays == [0.25]
    assert direct.eth.wait_for_transaction_receipt(tx_hash, timeout=30).status == 1
    assert direct.eth.get_transaction_count(sender.address) == nonce + 1


def test_nonce_taken_by_another_transaction_is_not_masked(chain, accounts, proxy, direct):
    sender, receiver = accounts[7], accounts[6]
    nonce = direct.eth.get_transaction_count(sender.address)
    first, first_hash = signed_transfer(chain, sender, receiver, nonce, value=1)
    rival, rival_hash = signed_transfer(chain, sender, receiver, nonce, value=2)  # same nonce, other payload
    web3, _ = hardened_client(proxy.url)
    web3.eth.send_raw_transaction(first)
    direct.eth.wait_for_transaction_receipt(first_hash, timeout=30)
    proxy.inject("503", "eth_sendRawTransaction")  # so that the rival's answer comes on a retry

    with pytest.raises(Web3RPCError, match=r"(?i)nonce too low|already"):
        web3.eth.send_raw_transaction(rival)

    assert proxy.methods.count("eth_getTransactionByHash") == 1  # the hash was looked up: not ours
    assert direct.eth.get_transaction(first_hash)["nonce"] == nonce
    assert direct.eth.get_transaction_count(sender.address) == nonce + 1


@pytest.mark.parametrize(("kind", "sent"), [("reset_after_forward", 1), ("drop", 0)])
def test_node_signed_send_is_not_retried_after_a_lost_answer(accounts, proxy, direct, kind, sent):
    sender = accounts[8]
    nonce = direct.eth.get_transaction_count(sender.address)
    web3, delays = hardened_client(proxy.url)
    proxy.inject(kind, "eth_sendTransaction")

    with pytest.raises(RPCUnavailable, match="not retried: eth_sendTransaction is not idempotent") as unavailable:
        web3.eth.send_transaction({"from": sender.address, "to": accounts[9].address, "value": 1})

    assert proxy.methods.count("eth_sendTransaction") == 1 and delays == []
    assert unavailable.value.attempts == 1
    assert proxy.forwarded.count("eth_sendTransaction") == sent  # a retry would have sent it twice
    assert direct.eth.get_transaction_count(sender.address, "pending") == nonce + sent


def test_node_signed_send_is_retried_after_429(accounts, proxy, direct):
    sender = accounts[8]
    nonce = direct.eth.get_transaction_count(sender.address)
    web3, delays = hardened_client(proxy.url)
    proxy.inject("429", "eth_sendTransaction")

    tx_hash = web3.eth.send_transaction({"from": sender.address, "to": accounts[9].address, "value": 1})

    assert proxy.methods.count("eth_sendTransaction") == 2 and delays == [0.0]
    assert direct.eth.wait_for_transaction_receipt(tx_hash, timeout=30).status == 1
    assert direct.eth.get_transaction_count(sender.address) == nonce + 1


def test_strict_proxy_refuses_non_public_methods(chain, accounts):
    with FaultProxy(chain.provider.uri, strict=True) as strict:
        web3, _ = hardened_client(strict.url)
        response = web3.provider.make_request("anvil_setBalance", [accounts[9].address, "0x1"])

        assert response["error"] == {"code": -32601, "message": "method not found"}
        assert web3.eth.chain_id == 31337  # public methods still pass
        assert strict.methods == ["anvil_setBalance", "eth_chainId"]
        assert strict.forwarded == ["eth_chainId"]
    assert Web3(HTTPProvider(chain.provider.uri)).eth.get_balance(accounts[9].address) > 1


def test_harden_again_replaces_the_policy_without_stacking(proxy):
    web3, _ = hardened_client(proxy.url, attempts=2)
    delays = []
    harden(web3, RetryPolicy(attempts=3, jitter=0.0, sleep=delays.append))
    proxy.inject("502", "eth_blockNumber", times=10)

    with pytest.raises(RPCUnavailable, match="after 3 attempts"):
        web3.eth.block_number

    assert proxy.methods.count("eth_blockNumber") == 3  # stacked wrappers would multiply attempts
    assert delays == [0.25, 0.5]
    assert web3.provider.exception_retry_configuration is None


def test_auto_provider_is_hardened_when_it_picks_its_provider(proxy, direct):
    web3 = Web3(AutoProvider([lambda: HTTPProvider(proxy.url, request_kwargs={"timeout": 1800})]))
    delays = []
    harden(web3, RetryPolicy(timeout=7.0, jitter=0.0, sleep=delays.append))
    assert proxy.methods == []  # hardening made no request: the choice is still to come
    proxy.inject("503", "eth_blockNumber")

    assert web3.eth.block_number == direct.eth.block_number

    assert delays == [0.25]
    chosen = web3.provider._active_provider
    assert chosen.exception_retry_configuration is None and chosen.get_request_kwargs()["timeout"] == 7.0


def test_policy_delays_with_jitter_stay_within_bounds():
    policy = RetryPolicy(first_delay=1.0, factor=2.0, max_delay=3.0, jitter=0.2)
    for _ in range(200):
        assert 0.8 <= policy.delay(1) <= 1.2
        assert 1.6 <= policy.delay(2) <= 2.4
        assert policy.delay(3) <= 3.0 and policy.delay(500) <= 3.0


def test_ape_node_provider_is_hardened(chain, networks, proxy):
    """ape's node provider reaches the node through web3's AutoProvider: harden finds the HTTPProvider."""
    with networks.parse_network_choice(f"ethereum:local:{proxy.url}") as provider:
        assert isinstance(provider.web3.provider, AutoProvider)
        delays = []
        harden(provider, RetryPolicy(attempts=3, jitter=0.0, sleep=delays.append))
        proxy.inject("503", "eth_blockNumber")
        proxy.inject("401", "eth_chainId")

        assert int(provider.make_request("eth_blockNumber", []), 16) == chain.blocks.head.number
        with pytest.raises(RPCRefused, match="refused eth_chainId: HTTP 401"):
            provider.make_request("eth_chainId", [])

    assert delays == [0.25]
    assert proxy.methods.count("eth_blockNumber") == 2 and proxy.methods.count("eth_chainId") == 1
