"""Real peer clients against `treasury serve`: Safe's TypeScript api-kit (with protocol-kit, run by node),
safe-eth-py's TransactionServiceApi and ape-safe's client, never stand-ins of them.

Each scenario proposes from one client, confirms from another and executes with a third; along the way
every client reads the list and the detail back, and its parsed values must be the chain's and the
proposal's (the extra "treasury" key ignored):
1. api-kit proposes, safe-eth-py confirms, our CLI executes (the session's anvil);
2. ape-safe's SafeAccount proposes, api-kit confirms, the `treasury` command rehearses and executes (live);
3. safe-eth-py proposes, our library signs through the server (RemoteStore), ape-safe executes (live);
4. ape-safe's client proposes, our CLI signs with --server, another laptop pulls (sync --from) and executes.
Then delegates and messages through each client that has them, and the read token as each client's API key.
What each client sends and parses is written up in /work/shared/server/CLIENTS.md.

No private key anywhere: api-kit's signatures come from the node (anvil's eth_signTypedData_v4 for its
unlocked dev accounts, which are ape's test accounts), the Python clients' from ape test accounts.
ape-safe uses its real client only on a non-local network, so its SafeAccount scenarios run on the
stand-in live chain (tests/standin.py) with SAFE_TRANSACTION_SERVICE_URL pointing at the server; on the
session's anvil its client class is used directly (the class SAFE_TRANSACTION_SERVICE_URL selects).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from builders import tusd_policy
from click.testing import CliRunner
from server_helpers import running_server

from treasury.addresses import ZERO_ADDRESS

ROOT = Path(__file__).resolve().parent.parent
TREASURY_CLI = Path(sys.executable).parent / "treasury"
APIKIT_SCRIPT = ROOT / "tests" / "peers" / "apikit.mjs"
NODE_TIMEOUT = 150  # seconds; the script stops itself after 90 (a hung node never hangs the suite)
TUSD = 10**6
# The server caches the chain's owners/threshold/nonce for a few seconds (as Safe's service lags its
# indexer); these scenarios execute outside the server and read the new nonce at once, so no cache.
FRESH = {"owner_cache_seconds": 0}


# --- the peers ----------------------------------------------------------------------------------------


def apikit(tmp_path: Path, **request: Any) -> dict:
    """Run tests/peers/apikit.mjs with `request`; its JSON answer (a failure shows node's stderr)."""
    node = shutil.which("node")
    assert node, "node is not on PATH"
    path = tmp_path / f"apikit-{request['action']}-{len(list(tmp_path.glob('apikit-*')))}.json"
    path.write_text(json.dumps(request))
    done = subprocess.run([node, str(APIKIT_SCRIPT), str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=NODE_TIMEOUT, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"api-kit {request['action']} failed ({done.returncode}):\n{done.stderr}"
    return json.loads(done.stdout)


def served_store(treasury) -> str:
    """The SQLite file of the treasury's config: the server serves the team's own store."""
    import yaml

    return yaml.safe_load(Path(treasury.config_path).read_text())["treasury"]["store"]


def protocol_contracts(version: str, singleton: str) -> dict:
    """protocol-kit's ContractNetworkConfig for a chain safe-deployments does not list (anvil's 31337)."""
    from treasury.chain.artifacts import canonical_address

    roles = {"safeProxyFactoryAddress": "proxy_factory", "multiSendAddress": "multi_send",
             "multiSendCallOnlyAddress": "multi_send_call_only", "fallbackHandlerAddress": "compatibility_fallback_handler",
             "signMessageLibAddress": "sign_message_lib", "createCallAddress": "create_call",
             "simulateTxAccessorAddress": "simulate_tx_accessor"}
    return {"safeSingletonAddress": singleton, **{key: canonical_address(version, role) for key, role in roles.items()}}


def eth_py_api(url: str, node_url: str, chain_id: int, api_key: str | None = None):
    """safe-eth-py's TransactionServiceApi on our server (its EthereumClient only reads the Safe's version);
    `api_key` explicitly, so $SAFE_TRANSACTION_SERVICE_API_KEY (its default) never leaks in."""
    from safe_eth.eth import EthereumClient, EthereumNetwork
    from safe_eth.safe.api import TransactionServiceApi

    return TransactionServiceApi(EthereumNetwork(chain_id), ethereum_client=EthereumClient(node_url), base_url=url,
                                 api_key=api_key)


def ape_safe_client(url: str, safe: str):
    """ape-safe's real client class, as SafeAccount builds it from SAFE_TRANSACTION_SERVICE_URL."""
    from ape_safe.client import SafeClient

    return SafeClient(address=safe, override_url=f"{url}/api")


def ape_safe_account(tmp_path: Path, safe: str, chain_id: int):
    """ape-safe's SafeAccount for `safe` from a cache file of its own (no `ape safe add`, no global state)."""
    from ape_safe.accounts import SafeAccount

    path = tmp_path / "ape-safe" / f"peer-{safe[2:10].lower()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"address": safe, "deployed_chain_ids": [chain_id]}))
    return SafeAccount(account_file_path=path)


def offline_ape_safe(monkeypatch, version: str, singleton: str, handler: str) -> None:
    """What ape-safe's SafeAccount.contract needs, given as its own tests give it: it would fetch the
    singleton's address from safe-deployments on GitHub (offline here) and the fallback handler's ABI
    from an explorer (none on the stand-in)."""
    from ape import chain
    from ape_safe.factory import SafeFactory
    from ape_safe.packages import PackageType
    from packaging.version import Version

    from treasury.chain.handler import handler_contract_type

    monkeypatch.setitem(SafeFactory._singleton, Version(version), PackageType.SINGLETON(version).at(singleton))
    chain.contracts.cache_contract_type(handler, handler_contract_type())


def safe_tx_message(fields: dict, safe: str, version: str, chain_id: int):
    """The EIP-712 SafeTx (ape-safe's definition) of the service JSON `fields`: what ape accounts sign."""
    from eip712.common import create_safe_tx_def

    definition = create_safe_tx_def(version=version, contract_address=safe, chain_id=chain_id)
    return definition(to=fields["to"], value=int(fields["value"]), data=bytes.fromhex((fields["data"] or "0x")[2:]),
                      operation=int(fields["operation"]), safeTxGas=int(fields["safeTxGas"]),
                      baseGas=int(fields["baseGas"]), gasPrice=int(fields["gasPrice"]),
                      gasToken=fields["gasToken"], refundReceiver=fields["refundReceiver"], nonce=int(fields["nonce"]))


def sign_fields(account, fields: dict, safe: str, version: str, chain_id: int) -> bytes:
    """An ape test account's EIP-712 signature (r, s, v) of the Safe transaction `fields`."""
    signature = account.sign_message(safe_tx_message(fields, safe, version, chain_id))
    assert signature is not None
    return signature.encode_rsv()


def transfer_fields(token, recipient: str, amount: int, nonce: int) -> dict:
    """A TUSD transfer from the Safe as the service's JSON fields (api-kit's request shape)."""
    data = "0x" + bytes(token.transfer.encode_input(recipient, amount)).hex()
    return {"to": token.address, "value": "0", "data": data, "operation": 0, "safeTxGas": "0", "baseGas": "0",
            "gasPrice": "0", "gasToken": ZERO_ADDRESS, "refundReceiver": ZERO_ADDRESS, "nonce": nonce}


# --- what the clients parse must be the chain's and the proposal's -------------------------------------


def check_served_tx(tx: dict, *, safe: str, fields: dict, safe_tx_hash: str, threshold: int, signers: list[str],
                    executed: bool = False) -> None:
    """The service JSON of one transaction: Safe's names and types, our values, the treasury key extra."""
    assert tx["safe"] == safe and tx["to"] == fields["to"] and tx["safeTxHash"] == safe_tx_hash
    assert tx["data"] == fields["data"] and int(tx["value"]) == int(fields["value"])
    for name in ("value", "safeTxGas", "baseGas", "gasPrice", "nonce"):
        assert isinstance(tx[name], str), (name, tx[name])  # Safe's v2 sends these as decimal strings
    assert int(tx["nonce"]) == int(fields["nonce"]) and isinstance(tx["operation"], int)
    assert tx["confirmationsRequired"] == threshold and isinstance(tx["origin"], str)
    assert sorted(c["owner"] for c in tx["confirmations"]) == sorted(signers)
    assert all(c["signatureType"] in ("EOA", "ETH_SIGN", "APPROVED_HASH") for c in tx["confirmations"])
    assert tx["isExecuted"] is executed
    assert set(tx["treasury"]) >= {"proposalId", "title", "status", "verdict"}


def check_ape_safe_reads(url: str, safe: str, safe_tx_hash: str, *, nonce: int, threshold: int, owners: list[str],
                         signers: list[str], executed: bool) -> None:
    """ape-safe's client: safe details, the whole list walk (pydantic models) and the detail by hash."""
    from ape_safe.client.types import ExecutedTxData

    client = ape_safe_client(url, safe)
    details = client.safe_details
    assert details.owners == owners and details.threshold == threshold and details.nonce == nonce
    listed = [tx for tx in client.get_transactions() if tx.safe_tx_hash == safe_tx_hash]
    assert len(listed) == 1 and isinstance(listed[0], ExecutedTxData) is executed
    detail = client.get_safe_tx(safe_tx_hash)
    assert detail is not None and detail.safe_tx_hash == safe_tx_hash
    assert sorted(c.owner for c in client.get_confirmations(safe_tx_hash)) == sorted(signers)


def check_eth_py_reads(api, safe: str, safe_tx_hash: str, signers: list[str], executed: bool) -> None:
    """safe-eth-py rebuilds the SafeTx from our detail and checks its hash itself; the list parses too."""
    from hexbytes import HexBytes

    rebuilt, tx_hash = api.get_safe_transaction(HexBytes(safe_tx_hash))
    assert ("0x" + bytes(rebuilt.safe_tx_hash).hex()) == safe_tx_hash
    assert (tx_hash is not None) is executed
    assert sorted(rebuilt.signers) == sorted(signers)  # recovered from the confirmations we serve
    listed = api.get_transactions(safe)
    assert [tx["safeTxHash"] for tx in listed].count(safe_tx_hash) == 1


def check_apikit_reads(tmp_path: Path, url: str, node_url: str, chain_id: int, safe: str, contracts: dict,
                       safe_tx_hash: str, *, fields: dict, threshold: int, owners: list[str], signers: list[str],
                       nonce: int, executed: bool) -> dict:
    """api-kit's reads (service info, safe info, lists, pending, detail, confirmations, estimate) and
    protocol-kit's rebuild of the served transaction, all checked against the chain and the proposal."""
    out = apikit(tmp_path, action="read", rpcUrl=node_url, serviceUrl=f"{url}/api", chainId=chain_id, safe=safe,
                 contracts=contracts, safeTxHash=safe_tx_hash,
                 estimate={"to": fields["to"], "value": "0", "data": fields["data"], "operation": 0})
    assert {"name", "version", "api_version", "secure", "settings"} <= set(out["serviceInfo"])
    info = out["safeInfo"]
    assert info["owners"] == owners and info["threshold"] == threshold and int(info["nonce"]) == nonce
    assert info["singleton"] == contracts["safeSingletonAddress"]  # api-kit renames masterCopy
    listed = [tx for tx in out["multisig"]["results"] if tx["safeTxHash"] == safe_tx_hash]
    assert out["multisig"]["count"] >= 1 and len(listed) == 1
    pending = [tx["safeTxHash"] for tx in out["pending"]["results"]]
    assert (safe_tx_hash in pending) is not executed
    for tx in (listed[0], out["transaction"]):
        check_served_tx(tx, safe=safe, fields=fields, safe_tx_hash=safe_tx_hash, threshold=threshold,
                        signers=signers, executed=executed)
    assert sorted(c["owner"] for c in out["confirmations"]["results"]) == sorted(signers)
    assert out["rebuiltHash"].lower() == safe_tx_hash.lower()
    assert int(out["estimate"]["safeTxGas"]) >= 0
    if executed:
        assert int(out["nextNonce"]) == nonce
    return out


def laptop_config(treasury, directory: Path, store: str | None = None) -> Path:
    """The treasury's config with another store (`store`, else `directory/laptop.db`): a signer's laptop
    that never sees the team's file, or the team's server on another database."""
    import yaml

    config = yaml.safe_load(Path(treasury.config_path).read_text())
    config["treasury"]["store"] = store or str(directory / "laptop.db")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "ape-config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_cli(*words: str) -> dict:
    """`treasury WORDS... --json` in this process (CliRunner); its JSON answer."""
    from treasury.cli import cli

    result = CliRunner(mix_stderr=False).invoke(cli, [*words, "--json"])
    assert result.exit_code == 0, f"treasury {' '.join(words)}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


# --- scenario 1: api-kit proposes, safe-eth-py confirms, our CLI executes (the session's anvil) ----------


@pytest.fixture
def local_treasury(make_treasury, accounts):
    recipient = accounts[4]
    treasury, token = make_treasury(policy=tusd_policy(recipient.address), salt_nonce=90_101)
    yield treasury, token, recipient.address
    treasury.store.close()


def test_apikit_proposes_safe_eth_py_confirms_our_cli_executes(local_treasury, db, owners, chain, tmp_path):
    """On SQLite and on PostgreSQL: the team's server and our CLI share the store (`db`)."""
    from hexbytes import HexBytes

    from treasury.chain.safe import safe_nonce

    treasury, token, recipient = local_treasury
    safe, version, chain_id, node_url = treasury.safe, treasury.version, chain.chain_id, chain.provider.uri
    owner_addresses = [o.address for o in owners]
    nonce = safe_nonce(safe, version)
    fields = transfer_fields(token, recipient, 25 * TUSD, nonce)
    team = laptop_config(treasury, tmp_path / "team", store=db.url)
    with running_server(db.url, config_path=team, **FRESH) as url:
        info = requests.get(f"{url}/api/v1/safes/{safe}/", timeout=10).json()
        contracts = protocol_contracts(version, info["masterCopy"])

        # api-kit proposes: protocol-kit builds and hashes the SafeTx, the node signs it as owner 0
        proposed = apikit(tmp_path, action="propose", rpcUrl=node_url, serviceUrl=f"{url}/api", chainId=chain_id,
                          safe=safe, contracts=contracts, signer=owners[0].address,
                          tx={"to": fields["to"], "value": "0", "data": fields["data"], "nonce": nonce})
        safe_tx_hash = proposed["safeTxHash"]

        # safe-eth-py reads it back (checking the hash itself) and confirms with owner 1's signature
        api = eth_py_api(url, node_url, chain_id)
        check_eth_py_reads(api, safe, safe_tx_hash, [owners[0].address], executed=False)
        signature = sign_fields(owners[1], fields, safe, version, chain_id)
        assert api.post_signatures(HexBytes(safe_tx_hash), signature)
        assert api.post_signatures(HexBytes(safe_tx_hash), signature)  # a retried confirmation: stored once
        signers = [owners[0].address, owners[1].address]
        check_eth_py_reads(api, safe, safe_tx_hash, signers, executed=False)
        check_ape_safe_reads(url, safe, safe_tx_hash, nonce=nonce, threshold=2, owners=owner_addresses,
                             signers=signers, executed=False)
        pending = check_apikit_reads(tmp_path, url, node_url, chain_id, safe, contracts, safe_tx_hash, fields=fields,
                                     threshold=2, owners=owner_addresses, signers=signers, nonce=nonce, executed=False)
        proposal_id = pending["transaction"]["treasury"]["proposalId"]
        assert pending["transaction"]["treasury"]["verdict"] is not None  # a configured treasury: judged

        # our CLI executes the proposal the server holds (the server serves the team's own store)
        before = token.balanceOf(recipient)
        execution = run_cli("execute", proposal_id, "--account", "TEST::2", "--yes", "--skip-rehearsal",
                            "--config", str(team), "--network", node_url)["execution"]
        assert execution["success"] is True and token.balanceOf(recipient) - before == 25 * TUSD

        # every client parses the executed transaction (ape-safe validates its executed model strictly),
        # and what it says about the execution is the chain's
        check_ape_safe_reads(url, safe, safe_tx_hash, nonce=nonce + 1, threshold=2, owners=owner_addresses,
                             signers=signers, executed=True)
        check_eth_py_reads(api, safe, safe_tx_hash, signers, executed=True)
        done = check_apikit_reads(tmp_path, url, node_url, chain_id, safe, contracts, safe_tx_hash, fields=fields,
                                  threshold=2, owners=owner_addresses, signers=signers, nonce=nonce + 1, executed=True)
        served = done["transaction"]
        assert served["transactionHash"] == execution["tx_hash"] and served["blockNumber"] == execution["block_number"]
        assert served["executor"] == execution["executor"] == owners[2].address and served["isSuccessful"] is True
        assert served["gasUsed"] == execution["gas_used"] and int(served["fee"]) > 0
        assert served["treasury"]["status"] == "executed"


# --- scenario 4: ape-safe's client proposes, our CLI signs with --server, another laptop syncs and executes --


def test_ape_safe_client_proposes_our_cli_signs_via_server_then_executes_after_sync(
        local_treasury, owners, chain, tmp_path):
    from ape_safe.utils import get_safe_tx_hash

    from treasury.store import Store

    treasury, token, recipient = local_treasury
    safe, version, chain_id, node_url = treasury.safe, treasury.version, chain.chain_id, chain.provider.uri
    owner_addresses = [o.address for o in owners]
    with running_server(served_store(treasury), config_path=treasury.config_path, **FRESH) as url:
        nonce = int(requests.get(f"{url}/api/v1/safes/{safe}/", timeout=10).json()["nonce"])
        fields = transfer_fields(token, recipient, 30 * TUSD, nonce)

        # ape-safe's client proposes, as SafeAccount.propose_safe_tx calls it (owner 0's signature, no 0x)
        client = ape_safe_client(url, safe)
        safe_tx = safe_tx_message(fields, safe, version, chain_id)
        safe_tx_hash = get_safe_tx_hash(safe_tx)
        client.post_transaction(safe_tx, {owners[0].address: owners[0].sign_message(safe_tx)},
                                sender=owners[0].address, contractTransactionHash=safe_tx_hash)
        proposal_id = requests.get(f"{url}/api/v2/multisig-transactions/{safe_tx_hash}/", timeout=10).json()[
            "treasury"]["proposalId"]
        assert client.estimate_gas_cost(fields["to"], 0, bytes.fromhex(fields["data"][2:])) > 0

        # our CLI signs on a laptop with no store: --server sends owner 1's signature to the server
        laptop = laptop_config(treasury, tmp_path / "laptop-1")
        signed = run_cli("sign", proposal_id, "--server", url, "--account", "TEST::1", "--yes",
                         "--config", str(laptop), "--network", node_url)
        assert signed["id"] == proposal_id
        assert not (tmp_path / "laptop-1" / "laptop.db").exists()  # nothing local was opened
        signers = owner_addresses[:2]
        check_apikit_reads(tmp_path, url, node_url, chain_id, safe,
                           protocol_contracts(version, client.safe_details.master_copy), safe_tx_hash, fields=fields,
                           threshold=2, owners=owner_addresses, signers=signers, nonce=nonce, executed=False)

        # another laptop pulls it in (hash and signatures verified) and our CLI executes it there
        executor = laptop_config(treasury, tmp_path / "laptop-2")
        pulled = run_cli("sync", "--from", url, "--config", str(executor), "--network", node_url)
        assert pulled["pulled"] == 1 and pulled["signatures"] == 2 and pulled["skipped"] == 0
        with Store.open(str(tmp_path / "laptop-2" / "laptop.db")) as store:
            record = store.find_by_safe_tx_hash(chain_id, safe, safe_tx_hash)
            assert record is not None
            local_id = record.id
        before = token.balanceOf(recipient)
        executed = run_cli("execute", local_id, "--account", "TEST::2", "--yes", "--skip-rehearsal",
                           "--config", str(executor), "--network", node_url)
        assert executed["execution"]["success"] is True and token.balanceOf(recipient) - before == 30 * TUSD
        check_ape_safe_reads(url, safe, safe_tx_hash, nonce=nonce + 1, threshold=2, owners=owner_addresses,
                             signers=signers, executed=True)


# --- scenarios 2 and 3 on the stand-in live chain: ape-safe's SafeAccount reaches the server ------------


@pytest.fixture
def live_peer_treasury(standin_treasury_factory, accounts):
    recipient = accounts[4].address
    treasury, token = standin_treasury_factory(policy=tusd_policy(recipient))
    return treasury, token, recipient


def test_ape_safe_proposes_apikit_confirms_our_cli_executes(live_peer_treasury, standin, owners, tmp_path, monkeypatch):
    from ape_safe.client import SafeClient
    from ape_safe.utils import get_safe_tx_hash
    from standin import cli_project, live

    treasury, token, recipient = live_peer_treasury
    safe, version = treasury.safe, treasury.version
    owner_addresses = [o.address for o in owners]
    with live(standin.url), running_server(served_store(treasury), config_path=treasury.config_path, **FRESH) as url:
        monkeypatch.setenv("SAFE_TRANSACTION_SERVICE_URL", f"{url}/api")
        account = ape_safe_account(tmp_path, safe, 1)
        assert isinstance(account.client, SafeClient)  # the real client, on our server
        assert account.signers == owner_addresses and account.confirmations_required == 2
        nonce = account.next_nonce
        fields = transfer_fields(token, recipient, 40 * TUSD, nonce)

        # ape-safe proposes: its SafeAccount signs as owner 0 and posts v2 (no trailing slash, no 0x)
        safe_tx = safe_tx_message(fields, safe, version, 1)
        safe_tx_hash = account.propose_safe_tx(safe_tx, submitter=owners[0])
        assert isinstance(safe_tx_hash, str) and safe_tx_hash.startswith("0x")

        # api-kit confirms: it reads the transaction, protocol-kit rebuilds and hashes it, the node signs as owner 1
        info = requests.get(f"{url}/api/v1/safes/{safe}/", timeout=10).json()
        contracts = protocol_contracts(version, info["masterCopy"])
        apikit(tmp_path, action="confirm", rpcUrl=standin.url, serviceUrl=f"{url}/api", chainId=1, safe=safe,
               contracts=contracts, signer=owners[1].address, safeTxHash=safe_tx_hash)
        signers = owner_addresses[:2]
        [(pending_tx, confirmations)] = [
            (tx, conf) for tx, conf in account.pending_transactions() if tx.nonce == nonce]
        assert get_safe_tx_hash(pending_tx) == safe_tx_hash  # rebuilt by ape-safe from our list
        assert sorted(c.owner for c in confirmations) == sorted(signers)
        served = check_apikit_reads(tmp_path, url, standin.url, 1, safe, contracts, safe_tx_hash, fields=fields,
                                    threshold=2, owners=owner_addresses, signers=signers, nonce=nonce, executed=False)

        # our CLI (the `treasury` command, in a user's project on this network) rehearses the proposal
        # the server holds on a fork, then executes it and waits for the receipt
        proposal_id = served["transaction"]["treasury"]["proposalId"]
        project = cli_project(treasury, standin.url, tmp_path / "project")
        before = token.balanceOf(recipient)
        done = subprocess.run([str(TREASURY_CLI), "execute", proposal_id, "--account", "TEST::2", "--yes", "--json",
                               "--network", "ethereum:mainnet:node"], cwd=project, capture_output=True, text=True,
                              timeout=300, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["execution"]["success"] is True and result["rehearsal"]["success"] is True
        assert token.balanceOf(recipient) - before == 40 * TUSD
        check_ape_safe_reads(url, safe, safe_tx_hash, nonce=nonce + 1, threshold=2, owners=owner_addresses,
                             signers=signers, executed=True)


def test_safe_eth_py_proposes_our_library_signs_through_the_server_ape_safe_executes(
        live_peer_treasury, standin, owners, tmp_path, monkeypatch):
    from safe_eth.safe import SafeTx
    from standin import live

    treasury, token, recipient = live_peer_treasury
    safe, version = treasury.safe, treasury.version
    owner_addresses = [o.address for o in owners]
    with live(standin.url), running_server(served_store(treasury), config_path=treasury.config_path, **FRESH) as url:
        monkeypatch.setenv("SAFE_TRANSACTION_SERVICE_URL", f"{url}/api")
        api = eth_py_api(url, standin.url, 1)
        account = ape_safe_account(tmp_path, safe, 1)
        nonce = account.next_nonce
        fields = transfer_fields(token, recipient, 60 * TUSD, nonce)

        # safe-eth-py proposes, with owner 0's signature (its sender is the first recovered signer)
        signature = sign_fields(owners[0], fields, safe, version, 1)
        proposal = SafeTx(api.ethereum_client, safe, fields["to"], 0, bytes.fromhex(fields["data"][2:]), 0, 0, 0, 0,
                          ZERO_ADDRESS, ZERO_ADDRESS, signatures=signature, safe_nonce=nonce, safe_version=version,
                          chain_id=1)
        assert api.post_transaction(proposal)
        safe_tx_hash = "0x" + bytes(proposal.safe_tx_hash).hex()
        check_eth_py_reads(api, safe, safe_tx_hash, [owners[0].address], executed=False)

        # our library signs through the server: a Treasury whose store is the server (no local store)
        remote = remote_treasury(treasury, url)
        proposal_id = requests.get(f"{url}/api/v2/multisig-transactions/{safe_tx_hash}/", timeout=10).json()[
            "treasury"]["proposalId"]
        remote.sign(proposal_id, owners[1])
        signers = owner_addresses[:2]

        # ape-safe executes: it reads the transaction and its confirmations from the server, owner 2 sends
        info = requests.get(f"{url}/api/v1/safes/{safe}/", timeout=10).json()
        offline_ape_safe(monkeypatch, version, info["masterCopy"], info["fallbackHandler"])
        before = token.balanceOf(recipient)
        receipt = account.submit_safe_tx(safe_tx_hash, submitter=owners[2])
        assert not receipt.failed and token.balanceOf(recipient) - before == 60 * TUSD
        check_eth_py_reads(api, safe, safe_tx_hash, signers, executed=True)
        check_ape_safe_reads(url, safe, safe_tx_hash, nonce=nonce + 1, threshold=2, owners=owner_addresses,
                             signers=signers, executed=True)


def remote_treasury(treasury, url: str):
    """The treasury of `treasury`'s config over helper D's RemoteStore: proposals and signatures go to `url`."""
    from treasury.remote import RemoteStore
    from treasury.treasury import Treasury

    return Treasury(treasury.name, treasury.entry, RemoteStore(url))


# --- delegates: each client adds one its own way, a delegate proposes, each client removes its own ------


@pytest.fixture
def peer_safe(make_safe, owners, safe_deployer):
    """A plain funded 2-of-3 Safe (no treasury config: the server judges nothing, `verdict` is null)."""
    created = make_safe(owners, 2, salt_nonce=90_202)
    safe_deployer.transfer(created.address, 10**18)
    return created


def delegate_signature(account, delegate: str, chain_id: int) -> bytes:
    """An ape test account's signature of safe-eth-py's EIP-712 delegate message (this hour's totp)."""
    from eth_account.messages import encode_typed_data
    from safe_eth.safe.api.transaction_service_api.transaction_service_messages import get_delegate_message

    signature = account.sign_message(encode_typed_data(full_message=get_delegate_message(delegate, chain_id)))
    assert signature is not None
    return signature.encode_rsv()


def listed_delegates(url: str, safe: str) -> set[tuple[str, str]]:
    body = requests.get(f"{url}/api/v2/delegates/", params={"safe": safe}, timeout=10).json()
    return {(d["delegate"], d["delegator"]) for d in body["results"]}


def test_delegates_from_each_client_and_a_delegate_proposes(peer_safe, owners, accounts, chain, tmp_path):
    from ape_safe.utils import get_safe_tx_hash
    from safe_eth.safe import SafeTx
    from safe_eth.safe.api.base_api import SafeAPIException

    safe, chain_id, node_url = peer_safe.address, chain.chain_id, chain.provider.uri
    by_apikit, by_eth_py, by_ape_safe, stranger = accounts[6], accounts[7], accounts[8], accounts[9]
    with running_server(tmp_path / "server.db", **FRESH) as url:
        # api-kit: the node signs the EIP-712 Delegate message as owner 0
        added = apikit(tmp_path, action="delegate", rpcUrl=node_url, serviceUrl=f"{url}/api", chainId=chain_id,
                       safe=safe, signer=owners[0].address, delegate=by_apikit.address, label="api-kit")
        assert {(d["delegate"], d["label"]) for d in added["listed"]["results"]} == {(by_apikit.address, "api-kit")}
        assert added["listed"]["count"] == 1 and added["byDelegator"]["results"][0]["safe"] == safe

        # safe-eth-py: owner 1 signs its EIP-712 message with an ape account
        api = eth_py_api(url, node_url, chain_id)
        assert api.add_delegate(by_eth_py.address, owners[1].address, "safe-eth-py",
                                delegate_signature(owners[1], by_eth_py.address, chain_id), safe_address=safe)

        # ape-safe: owner 2 signs Safe's v1 message as a raw hash
        client = ape_safe_client(url, safe)
        client.add_delegate(by_ape_safe.address, "ape-safe", owners[2])
        expected = {(by_apikit.address, owners[0].address), (by_eth_py.address, owners[1].address),
                    (by_ape_safe.address, owners[2].address)}
        assert listed_delegates(url, safe) == expected
        assert {d["delegate"] for d in api.get_delegates(safe)} == {d for d, _ in expected}
        assert client.get_delegates() == {owner: [delegate] for delegate, owner in expected}

        # a delegate proposes through safe-eth-py (its sender is the delegate): stored, not a confirmation
        nonce = int(requests.get(f"{url}/api/v1/safes/{safe}/", timeout=10).json()["nonce"])
        fields = {"to": stranger.address, "value": "1000", "data": "0x", "operation": 0, "safeTxGas": "0",
                  "baseGas": "0", "gasPrice": "0", "gasToken": ZERO_ADDRESS, "refundReceiver": ZERO_ADDRESS,
                  "nonce": nonce}

        def proposal_by(account) -> SafeTx:
            signature = sign_fields(account, fields, safe, peer_safe.version, chain_id)
            return SafeTx(api.ethereum_client, safe, stranger.address, 1000, b"", 0, 0, 0, 0, ZERO_ADDRESS,
                          ZERO_ADDRESS, signatures=signature, safe_nonce=nonce, safe_version=peer_safe.version,
                          chain_id=chain_id)

        with pytest.raises(SafeAPIException):  # neither owner nor delegate: refused, nothing stored
            api.post_transaction(proposal_by(stranger))
        assert api.get_transactions(safe) == []
        by_delegate = proposal_by(by_eth_py)
        assert api.post_transaction(by_delegate)
        [served] = api.get_transactions(safe)
        assert served["safeTxHash"] == "0x" + bytes(by_delegate.safe_tx_hash).hex()
        assert served["confirmations"] == [] and served["confirmationsRequired"] == 2
        # empty calldata: ape-safe rebuilds the SafeTx it would execute from our detail ("0x", never null)
        rebuilt = client.get_safe_tx(served["safeTxHash"]).as_safe_tx(version=peer_safe.version, chain_id=chain_id)
        assert get_safe_tx_hash(rebuilt) == served["safeTxHash"]

        # each client removes the delegate it added
        removed = apikit(tmp_path, action="delegate", rpcUrl=node_url, serviceUrl=f"{url}/api", chainId=chain_id,
                         safe=safe, signer=owners[0].address, delegate=by_apikit.address, remove=True)
        assert by_apikit.address not in {d["delegate"] for d in removed["listed"]["results"]}
        assert api.remove_delegate(by_eth_py.address, owners[1].address,
                                   delegate_signature(owners[1], by_eth_py.address, chain_id), safe_address=safe)
        client.remove_delegate(by_ape_safe.address, owners[2])
        assert listed_delegates(url, safe) == set()


# --- messages: api-kit and safe-eth-py create and sign Safe messages through the server ----------------


@pytest.fixture
def compat_safe(make_safe, owners):
    """A 2-of-3 Safe with Safe's CompatibilityFallbackHandler: it honours any message its owners sign,
    so the server stores messages for it as Safe's service does."""
    from treasury.chain.artifacts import canonical_address

    return make_safe(owners, 2, salt_nonce=90_303,
                     fallback_handler=canonical_address("1.4.1", "compatibility_fallback_handler"))


def test_messages_created_and_signed_by_apikit_and_safe_eth_py(compat_safe, peer_safe, owners, chain, tmp_path):
    from eth_account.messages import defunct_hash_message
    from hexbytes import HexBytes
    from safe_eth.safe import Safe
    from safe_eth.safe.api.base_api import SafeAPIException

    safe, chain_id, node_url = compat_safe.address, chain.chain_id, chain.provider.uri
    with running_server(tmp_path / "server.db", **FRESH) as url:
        api = eth_py_api(url, node_url, chain_id)
        info = requests.get(f"{url}/api/v1/safes/{safe}/", timeout=10).json()
        peer = {"rpcUrl": node_url, "serviceUrl": f"{url}/api", "chainId": chain_id, "safe": safe,
                "contracts": protocol_contracts(compat_safe.version, info["masterCopy"])}

        def safe_message_hash(text: str, of: str = safe) -> bytes:
            return bytes(Safe(of, api.ethereum_client).get_message_hash(defunct_hash_message(text=text)))

        def owner_signature(account, text: str, of: str = safe) -> bytes:
            signature = account.sign_raw_msghash(HexBytes(safe_message_hash(text, of)))
            assert signature is not None
            return signature.encode_rsv()

        # the policy in front: our TreasuryFallbackHandler would not honour it, so the server refuses it
        refused = "treasury: sign me outside the guard"
        with pytest.raises(SafeAPIException, match="71"):
            api.post_message(peer_safe.address, refused, owner_signature(owners[0], refused, peer_safe.address))
        assert api.get_messages(peer_safe.address) == []

        # api-kit creates (protocol-kit hashes, the node signs as owner 0); safe-eth-py adds owner 1
        first = "treasury: api-kit says hello"
        created = apikit(tmp_path, action="message", signer=owners[0].address, message=first, **peer)
        message_hash = created["messageHash"]
        assert HexBytes(message_hash) == safe_message_hash(first)  # both clients hash it the same way
        assert created["served"]["message"] == first and created["served"]["safe"] == safe
        assert [c["owner"] for c in created["served"]["confirmations"]] == [owners[0].address]
        assert api.post_message_signature(HexBytes(message_hash), owner_signature(owners[1], first))

        # safe-eth-py creates one (owner 1's signature); api-kit adds owner 0's
        second = "treasury: safe-eth-py says hello"
        assert api.post_message(safe, second, owner_signature(owners[1], second))
        added = apikit(tmp_path, action="message", signer=owners[0].address, message=second, add=True, **peer)
        assert HexBytes(added["messageHash"]) == safe_message_hash(second)

        for text, hash_ in ((first, message_hash), (second, added["messageHash"])):
            served = api.get_message(HexBytes(hash_))
            assert served["message"] == text and served["messageHash"] == hash_ and served["safe"] == safe
            assert sorted(c["owner"] for c in served["confirmations"]) == sorted(o.address for o in owners[:2])
            assert all(c["signatureType"] == "EOA" for c in served["confirmations"])
            assert served["preparedSignature"] and len(HexBytes(served["preparedSignature"])) == 130
        assert {m["messageHash"] for m in api.get_messages(safe)} == {message_hash, added["messageHash"]}
        assert added["listed"]["count"] == 2


# --- a read token: each client's own API-key setting carries it ------------------------------------------


def test_each_clients_api_key_is_the_read_token(peer_safe, chain, tmp_path, monkeypatch):
    import ape_safe.client
    from ape_safe.exceptions import ClientResponseError
    from safe_eth.safe.api.base_api import SafeAPIException

    safe, chain_id, node_url = peer_safe.address, chain.chain_id, chain.provider.uri
    token = "peer-read-token"
    with running_server(tmp_path / "server.db", read_token=token, **FRESH) as url:
        peer = {"rpcUrl": node_url, "serviceUrl": f"{url}/api", "chainId": chain_id, "safe": safe}
        # without it: refused (ape-safe sends "Bearer None" when APE_SAFE_GATEWAY_API_KEY is unset)
        monkeypatch.setattr(ape_safe.client, "GATEWAY_API_KEY", None)
        with pytest.raises(ClientResponseError):
            _ = ape_safe_client(url, safe).safe_details
        with pytest.raises(SafeAPIException):
            eth_py_api(url, node_url, chain_id).get_transactions(safe)
        node = shutil.which("node")
        request = tmp_path / "no-key.json"
        request.write_text(json.dumps({"action": "read", **peer}))
        refused = subprocess.run([str(node), str(APIKIT_SCRIPT), str(request)], cwd=ROOT, capture_output=True,
                                 text=True, timeout=NODE_TIMEOUT, stdin=subprocess.DEVNULL)
        assert refused.returncode == 1 and "HTTP 401" in refused.stderr

        # with it: APE_SAFE_GATEWAY_API_KEY (read by ape-safe at import), safe-eth-py's api_key, api-kit's apiKey
        monkeypatch.setattr(ape_safe.client, "GATEWAY_API_KEY", token)
        assert ape_safe_client(url, safe).safe_details.address == safe
        assert eth_py_api(url, node_url, chain_id, api_key=token).get_transactions(safe) == []
        answered = apikit(tmp_path, action="read", apiKey=token, **peer)
        assert answered["safeInfo"]["address"] == safe and answered["multisig"]["count"] == 0
