"""A stand-in for a live chain: anvil as a separate process with chain id 1, reached as ethereum:mainnet:node.

It mines a block every second (no automine), as a real chain does, so transactions wait in the
mempool, receipts take time and the submitting account can have pending transactions. The tool
reaches it only through ape's node provider (optionally through a FaultProxy), so every call it
makes is a plain JSON-RPC call a hosted node would answer.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from treasury.chain.localnode import free_port

CHAIN_ID = 1
BLOCK_TIME = 1
HARDFORK = "prague"  # the same as ape-config.yaml's foundry.fork.ethereum.mainnet.evm_version


class StandinChain:
    """The anvil process; `url` is its JSON-RPC endpoint."""

    def __init__(self, block_time: int = BLOCK_TIME) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        binary = shutil.which("anvil")
        assert binary, "anvil is not on PATH (make setup links it into .tools/bin)"
        command = [binary, "--chain-id", str(CHAIN_ID), "--port", str(port), "--block-time", str(block_time),
                   "--hardfork", HARDFORK, "--silent"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if self.rpc("eth_chainId") == hex(CHAIN_ID):
                    return
            time.sleep(0.1)
        raise RuntimeError("the stand-in anvil did not start")

    def rpc(self, method: str, params: list | None = None):
        """A direct call for the test harness (never on the tool's path)."""
        answer = requests.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}, timeout=30)
        body = answer.json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@contextlib.contextmanager
def live(url: str, confirmations: int = 0) -> Iterator:
    """Connect ape to `url` as ethereum:mainnet:node, the way a user reaches a live network."""
    from ape import networks

    network = networks.ethereum.mainnet
    saved = network.config.required_confirmations
    network.config.required_confirmations = confirmations
    try:
        with networks.parse_network_choice("ethereum:mainnet:node", provider_settings={"uri": url}) as provider:
            yield provider
    finally:
        network.config.required_confirmations = saved


def cli_project(treasury, node_url: str, directory: Path) -> Path:
    """A user's ape project (for `treasury ...` in a subprocess) whose mainnet is `node_url`, holding `treasury`."""
    import yaml

    section = yaml.safe_load(Path(treasury.config_path).read_text())["treasury"]
    directory.mkdir(parents=True, exist_ok=True)
    project_config(directory, node_url, section)
    return directory


def project_config(directory: Path, node_url: str, treasury_section: dict, foundry_host: str = "auto") -> Path:
    """An ape project whose mainnet is the stand-in (through `node_url`), for CLI runs in a subprocess.

    `foundry_host` is where an anvil ape starts for this project listens (a fork in `ape test`)."""
    import yaml

    config = {
        "name": "standin-treasury",
        "plugins": [{"name": "foundry"}],
        "node": {"ethereum": {"mainnet": {"uri": node_url}}},
        "ethereum": {"mainnet": {"required_confirmations": 0, "default_provider": "node"}},
        "foundry": {"host": foundry_host, "fork": {"ethereum": {"mainnet": {"upstream_provider": "node", "evm_version": HARDFORK}}}},
        "treasury": treasury_section,
    }
    path = Path(directory) / "ape-config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
