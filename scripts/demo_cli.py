"""`make demo`: the treasury story through the `treasury` command line, on one local anvil.

Every step is a separate `treasury ...` process, so the chain must outlive them: this driver starts
the pinned anvil on a free localhost port and points ape-foundry at it (APE_FOUNDRY_HOST); the
network stays `ethereum:local:foundry`, a development network, so the TEST::N accounts sign.
The demo works in a temporary ape project (its ape-config.yaml holds the `treasury:` section) and
stops anvil at the end, also on failure or Ctrl-C.

Two steps are not treasury commands, and say so: the test token is deployed and minted, and the
clock is moved forward, with plain JSON-RPC calls to the local node.

Exit status: 0 when every step did what it should (the refused transfer must be refused with exit
code 3, the delayed one must wait), 1 otherwise.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from treasury.chain.localnode import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NETWORK = "ethereum:local:foundry"
ETHER = 10**18
USDC = 10**6
# anvil's (and ape's) default test mnemonic: TEST::0 pays, TEST::1-3 own the Safe, TEST::4 is the vendor.
ACCOUNTS = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
]
DEPLOYER, ALICE, BOB, CAROL, VENDOR, STRANGER = ACCOUNTS
BOLD, DIM, GREEN, RED, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m") if sys.stdout.isatty() else ("",) * 5


class DemoFailed(Exception):
    pass


class Node:
    """The pinned anvil, started in the background; plain JSON-RPC for the two non-treasury steps."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}"
        anvil = ROOT / ".tools" / "bin" / "anvil"
        if not anvil.exists():
            raise DemoFailed(f"{anvil} is missing: run `make setup`")
        self.process = subprocess.Popen([str(anvil), "--port", str(port), "--silent", "--steps-tracing",
                                         "--block-base-fee-per-gas", "0", "--gas-price", "0"], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.rpc("eth_chainId")
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise DemoFailed("anvil did not start") from None
                time.sleep(0.1)

    def rpc(self, method: str, *params):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        if "error" in answer:
            raise DemoFailed(f"{method}: {answer['error']}")
        return answer["result"]

    def send(self, sender: str, to: str | None = None, data: bytes = b"", value: int = 0) -> dict:
        """eth_sendTransaction from an unlocked anvil account; the receipt, checked."""
        tx = {"from": sender, "data": "0x" + data.hex(), "value": hex(value)}
        if to:
            tx["to"] = to
        tx_hash = self.rpc("eth_sendTransaction", tx)
        deadline = time.monotonic() + 10
        while (receipt := self.rpc("eth_getTransactionReceipt", tx_hash)) is None and time.monotonic() < deadline:
            time.sleep(0.05)  # anvil mines each transaction as it arrives, a moment later
        if receipt is None or receipt["status"] != "0x1":
            raise DemoFailed(f"transaction {tx_hash} failed: {receipt}")
        return receipt

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Demo:
    def __init__(self, node: Node, workdir: Path):
        self.node = node
        self.workdir = workdir
        self.env = {**os.environ, "APE_FOUNDRY_HOST": node.url, "PATH": f"{ROOT / '.tools' / 'bin'}{os.pathsep}{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                    "SOLCX_BINARY_PATH": str(ROOT / ".tools" / "solcx"), "COLUMNS": os.environ.get("COLUMNS", "120")}

    def step(self, title: str) -> None:
        print(f"\n{BOLD}== {title}{RESET}", flush=True)

    def note(self, text: str) -> None:
        print(f"   {text}", flush=True)

    def treasury(self, *args: str, expect: int = 0, as_json: bool = False, chain: bool = True, show: bool = True):
        """Run `treasury ARGS` in the demo project; the exit code must be `expect`."""
        words = ["treasury", *args] + (["--network", NETWORK] if chain else []) + (["--json"] if as_json else [])
        print(f"{DIM}$ {shlex.join(words)}{RESET}", flush=True)
        done = subprocess.run([str(BIN / "treasury"), *words[1:]], cwd=self.workdir, env=self.env, capture_output=True, text=True)
        if show and not as_json:
            print(done.stdout.rstrip("\n"))
        if done.stderr.strip() and (done.returncode != 0 or not as_json):
            print(done.stderr.rstrip("\n"))
        if done.returncode != expect:
            raise DemoFailed(f"`{shlex.join(words)}` exited {done.returncode}, expected {expect}:\n{done.stdout}{done.stderr}")
        if as_json and expect == 0:
            try:
                return json.loads(done.stdout)
            except ValueError:
                raise DemoFailed(f"`{shlex.join(words)}` printed no JSON:\n{done.stdout}{done.stderr}") from None
        return done

    def write_config(self, safe: str, token: str, guard: str | None = None) -> None:
        import yaml

        entry = {
            "safe": safe, "chain_id": 31337, "version": "1.4.1",
            "tokens": {"USDC": {"address": token, "decimals": 6}},
            "policy": {
                "recipients": [VENDOR],
                "calls": [{"target": "USDC", "function": "transfer(address,uint256)"}],
                "caps": [{"token": "USDC", "amount": "10,000", "period": "1d", "max_per_tx": "8,000", "delay_threshold": "5,000"},
                         {"token": "ETH", "amount": "2", "period": "1d"}],
                "delay": "48h", "window": "7d",
            },
        }
        if guard:
            entry["guard"] = guard
        config = {
            "name": "treasury-demo",
            "ethereum": {"default_network": "local", "local": {"default_provider": "foundry"}},
            "treasury": {"store": str(self.workdir / "treasury.db"), "treasuries": {"ops": entry}},
        }
        (self.workdir / "ape-config.yaml").write_text(
            "# Written by scripts/demo_cli.py: a 2-of-3 Safe whose guard enforces the policy below.\n" + yaml.safe_dump(config, sort_keys=False))

    def deploy_token(self) -> str:
        """The test token (TestToken, shipped compiled in treasury/data/) by plain JSON-RPC: not a treasury step."""
        from eth_abi import encode

        artifact = json.loads((ROOT / "treasury" / "data" / "TestToken.json").read_text())
        code = bytes.fromhex(artifact["deploymentBytecode"]["bytecode"][2:]) + encode(["string", "string", "uint8"], ["Demo USD", "USDC", 6])
        return self.node.send(DEPLOYER, data=code)["contractAddress"]

    def mint(self, token: str, to: str, amount: int) -> None:
        from eth_abi import encode

        self.node.send(DEPLOYER, token, bytes.fromhex("40c10f19") + encode(["address", "uint256"], [to, amount]))

    def run(self) -> None:
        self.step("1. Safe contracts at their canonical addresses (v1.4.1)")
        self.treasury("deploy", "--version", "1.4.1", "--account", "TEST::0", "--manifest-dir", "deployments")

        self.step("2. A 2-of-3 Safe: Alice (TEST::1), Bob (TEST::2), Carol (TEST::3)")
        created = self.treasury("create-safe", "--owner", ALICE, "--owner", BOB, "--owner", CAROL, "--threshold", "2",
                                "--account", "TEST::0", "--manifest-dir", "deployments")
        safe = next(line.split()[-1] for line in created.stdout.splitlines() if line.startswith("predicted address:"))

        self.step("3. Fund it (not a treasury step: a test token and ETH, by plain JSON-RPC to the local node)")
        token = self.deploy_token()
        self.mint(token, safe, 1_000_000 * USDC)
        self.node.send(DEPLOYER, safe, value=10 * ETHER)
        self.note(f"test token USDC (6 decimals) at {token}; Safe {safe} holds 1,000,000 USDC and 10 ETH")

        self.step("4. The treasury config, then TreasuryGuard deployed from its policy and installed")
        self.write_config(safe, token)
        self.note(f"wrote {self.workdir / 'ape-config.yaml'} (treasury `ops`, store treasury.db)")
        self.treasury("policy", "show", chain=False)
        installed = self.treasury("deploy-guard", "--treasury", "ops", "--signer", "TEST::1", "--signer", "TEST::2",
                                  "--account", "TEST::0")
        guard = next(line.split()[1] for line in installed.stdout.splitlines() if line.startswith("guard "))
        self.write_config(safe, token, guard)
        self.note(f"added guard: {guard} to the config")
        self.treasury("policy", "check")

        self.step("5. Move 1.5 ETH out of the Safe with two owner signatures")
        vendor_before = int(self.node.rpc("eth_getBalance", VENDOR, "latest"), 16)
        eth = self.treasury("propose", "transfer", VENDOR, "1.5 ETH", "--title", "gas money", as_json=True)
        for owner in ("TEST::1", "TEST::2"):
            self.treasury("sign", eth["id"], "--account", owner, "--yes", show=False)
            self.note(f"signed {eth['id']} as {owner}")
        paid = self.treasury("execute", eth["id"], "--account", "TEST::3", "--yes", as_json=True)
        if paid["status"] != "executed" or not paid["execution"]["success"]:
            raise DemoFailed(f"the ETH transfer did not execute: {paid}")
        received = int(self.node.rpc("eth_getBalance", VENDOR, "latest"), 16) - vendor_before
        if received != 15 * ETHER // 10:
            raise DemoFailed(f"the vendor received {received} wei, expected 1.5 ETH")
        self.note(f"{GREEN}executed{RESET} {eth['id']} in {paid['execution']['tx_hash']}: the vendor received 1.5 ETH")

        self.step("6. Three proposals: the policy answers at once, before anyone signs")
        allowed = self.treasury("propose", "transfer", VENDOR, "4000 USDC", "--title", "invoice 1001", as_json=True)
        delayed = self.treasury("propose", "transfer", VENDOR, "6000 USDC", "--title", "invoice 1002", as_json=True)
        refused = self.treasury("propose", "transfer", VENDOR, "9000 USDC", "--title", "invoice 1003", as_json=True)
        expected = {allowed["id"]: "allow", delayed["id"]: "needs-delay", refused["id"]: "deny"}
        for p in (allowed, delayed, refused):
            v = p["verdict"]
            colour = GREEN if v["outcome"] == "allow" else RED
            self.note(f"{p['id']}  nonce {p['nonce']}  {p['title']}: {colour}{v['outcome']}{RESET} {v['reason']}")
            if v["outcome"] != expected[p["id"]]:
                raise DemoFailed(f"proposal {p['id']}: verdict {v['outcome']}, expected {expected[p['id']]}")
        self.treasury("list", chain=False)

        self.step("7. Alice and Bob sign the allowed and the delayed payment (each sees the decoded intent and the hashes)")
        self.treasury("sign", allowed["id"], "--account", "TEST::1", "--yes")
        for pid, owner in ((allowed["id"], "TEST::2"), (delayed["id"], "TEST::1"), (delayed["id"], "TEST::2")):
            self.treasury("sign", pid, "--account", owner, "--yes", show=False)
            self.note(f"signed {pid} as {owner}")

        self.step("8. Rehearse on a snapshot of the chain (a fork, on a live network): balance changes, events, gas")
        self.treasury("rehearse", allowed["id"], "--account", "TEST::3")
        self.step("   ... the refused one fails there too, the guard's reason in words (exit code 3)")
        self.treasury("rehearse", refused["id"], "--account", "TEST::3", expect=3)

        self.step("9. Execute: the allowed payment goes through")
        self.treasury("execute", allowed["id"], "--account", "TEST::3", "--yes", show=False)
        self.note(f"{GREEN}executed{RESET} {allowed['id']}: 4,000 USDC to the vendor")

        self.step("10. The payment above the per-transaction cap is refused (exit code 3)")
        self.treasury("execute", refused["id"], "--account", "TEST::3", "--yes", expect=3, show=False)
        self.step("   ... and the one above the delay threshold must wait in the guard's queue (exit code 3)")
        self.treasury("execute", delayed["id"], "--account", "TEST::3", "--yes", expect=3, show=False)
        self.treasury("schedule", delayed["id"], "--signer", "TEST::1", "--signer", "TEST::2", "--account", "TEST::3")

        self.step("11. 48 hours pass (not a treasury step: evm_increaseTime + evm_mine on the local node)")
        self.node.rpc("evm_increaseTime", 48 * 3600 + 60)
        self.node.rpc("evm_mine")
        executed = self.treasury("execute", delayed["id"], "--account", "TEST::3", "--yes", as_json=True)
        if executed["status"] != "executed" or not executed["execution"]["success"]:
            raise DemoFailed(f"the delayed payment did not execute: {executed}")
        self.note(f"{GREEN}executed{RESET} {delayed['id']} after the delay in {executed['execution']['tx_hash']}")

        self.step("12. The refused proposal still holds its nonce: reject it (a no-op at that nonce, two signatures)")
        rejection = self.treasury("reject", refused["id"], as_json=True)
        for owner in ("TEST::1", "TEST::2"):
            self.treasury("sign", rejection["id"], "--account", owner, "--yes", show=False)
        self.treasury("execute", rejection["id"], "--account", "TEST::3", "--yes", show=False)
        superseded = self.treasury("show", refused["id"], as_json=True)
        if superseded["status"] != "superseded":
            raise DemoFailed(f"the refused proposal is {superseded['status']}, expected superseded")
        self.note(f"{refused['id']} is now superseded: it can never execute")

        self.step("13. Where the treasury stands, and what happened")
        self.treasury("info")
        self.treasury("list", chain=False)
        self.treasury("log", chain=False)


def main() -> int:
    started = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below on `kill` too
    node = None
    try:
        with tempfile.TemporaryDirectory(prefix="treasury-demo-") as workdir:
            node = Node(free_port())
            print(f"{BOLD}ape-treasury demo{RESET}: anvil at {node.url}, project in {workdir}")
            Demo(node, Path(workdir)).run()
    except DemoFailed as failure:
        print(f"\n{RED}demo failed{RESET}: {failure}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if node is not None:
            node.stop()
    print(f"\n{GREEN}demo finished{RESET} in {time.monotonic() - started:.0f} s; anvil stopped")
    print(f"Review and sign in the browser: {BOLD}make demo-web{RESET} serves the signing page and prints its URL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
