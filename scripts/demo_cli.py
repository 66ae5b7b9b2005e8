"""`make demo`: the treasury story through the `treasury` command line, on one local anvil.

Every step is a separate `treasury ...` process, so the chain must outlive them: this driver starts
the pinned anvil on a free localhost port and points ape-foundry at it (APE_FOUNDRY_HOST); the
network stays `ethereum:local:foundry`, a development network, so the TEST::N accounts sign.
The demo works in a temporary ape project (its ape-config.yaml holds the `treasury:` section) and
stops anvil at the end, also on failure or Ctrl-C.

Two steps are not treasury commands, and say so: the Safe gets its ETH, and the clock is moved
forward, with plain JSON-RPC calls to the local node. The test token is `treasury dev-token`'s.

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
BOLT, CORA = "0x976EA74026E726554dB657fA54763abd0C3a0aa9", "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"  # TEST::6, TEST::7
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

    def treasury(self, *args: str, expect: int = 0, as_json: bool = False, chain: bool = True, show: bool = True,
                 notes: bool = False):
        """Run `treasury ARGS` in the demo project; the exit code must be `expect`."""
        words = ["treasury", *args] + (["--network", NETWORK] if chain else []) + (["--json"] if as_json else [])
        if os.environ.get("DEMO_VERBOSE") and args[0] not in ("deploy", "create-safe", "deploy-guard"):
            words.append("--verbose")  # a failing step shows its traceback
        print(f"{DIM}$ {shlex.join(words)}{RESET}", flush=True)
        done = subprocess.run([str(BIN / "treasury"), *words[1:]], cwd=self.workdir, env=self.env, capture_output=True, text=True)
        if show and not as_json:
            print(done.stdout.rstrip("\n"))
        if done.stderr.strip() and (done.returncode != 0 or not as_json or notes):  # notes: what --json puts on stderr
            print("\n".join(line for line in done.stderr.splitlines() if not line.startswith("INFO:")))
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
            # The address book: every command takes these names where it takes an address, and shows them.
            "owners": {"alice": ALICE, "bob": BOB, "carol": CAROL},
            "vendors": {"acme": VENDOR, "bolt": BOLT, "cora": CORA},
            "policy": {
                "recipients": ["acme", "bolt", "cora"],
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

    def fund(self, safe: str) -> str:
        """A test USDC minted to the Safe (`treasury dev-token`, before any treasury is configured) and
        10 ETH by plain JSON-RPC; the token's address."""
        (self.workdir / "ape-config.yaml").write_text(
            "name: treasury-demo\nethereum: {default_network: local, local: {default_provider: foundry}}\n")
        minted = self.treasury("dev-token", "USDC", "--decimals", "6", "--mint", "1,000,000", "--to", safe,
                               "--account", "TEST::0", as_json=True)
        self.node.send(DEPLOYER, safe, value=10 * ETHER)
        return minted["address"]

    def write_payroll(self) -> Path:
        """This month's payroll as the ops person keeps it: a spreadsheet saved as CSV, names from the book."""
        path = self.workdir / "payroll.csv"
        path.write_text("to,amount,token,memo\n"
                        "acme,\"1,200\",USDC,December retainer\n"
                        "bolt,950.50,USDC,invoice B-77\n"
                        "cora,600,USDC,design sprint\n")
        return path

    def run(self) -> None:
        self.step("1. Safe contracts at their canonical addresses (v1.4.1)")
        self.treasury("deploy", "--version", "1.4.1", "--account", "TEST::0", "--manifest-dir", "deployments")

        self.step("2. A 2-of-3 Safe: Alice (TEST::1), Bob (TEST::2), Carol (TEST::3)")
        created = self.treasury("create-safe", "--owner", ALICE, "--owner", BOB, "--owner", CAROL, "--threshold", "2",
                                "--account", "TEST::0", "--manifest-dir", "deployments")
        safe = next(line.split()[-1] for line in created.stdout.splitlines() if line.startswith("predicted address:"))

        self.step("3. Fund it: a test token minted to the Safe (treasury dev-token), and ETH by plain JSON-RPC")
        token = self.fund(safe)
        self.note(f"test token USDC (6 decimals) at {token}; Safe {safe} holds 1,000,000 USDC and 10 ETH")

        self.step("4. The treasury config (an address book, a policy), then TreasuryGuard deployed from it and installed")
        self.write_config(safe, token)
        self.note(f"wrote {self.workdir / 'ape-config.yaml'} (treasury `ops`, store treasury.db, vendors acme, bolt, cora)")
        self.treasury("policy", "show", chain=False)
        installed = self.treasury("deploy-guard", "--treasury", "ops", "--signer", "TEST::1", "--signer", "TEST::2",
                                  "--account", "TEST::0")
        guard = next(line.split()[1] for line in installed.stdout.splitlines() if line.startswith("guard "))
        self.write_config(safe, token, guard)
        self.note(f"added guard: {guard} to the config")
        self.treasury("policy", "check")

        self.step("5. Move 1.5 ETH out of the Safe to acme (a name from the address book) with two owner signatures")
        vendor_before = int(self.node.rpc("eth_getBalance", VENDOR, "latest"), 16)
        eth = self.treasury("propose", "transfer", "acme", "1.5 ETH", "--title", "gas money", "--account", "TEST::1",
                            as_json=True)
        self.note(f"proposed {eth['id']} as alice (TEST::1): her signature came with the proposal")
        self.treasury("sign", eth["id"], "--account", "TEST::2", "--yes", show=False)
        self.note(f"signed {eth['id']} as bob (TEST::2)")
        paid = self.treasury("execute", eth["id"], "--account", "TEST::3", "--yes", as_json=True)
        if paid["status"] != "executed" or not paid["execution"]["success"]:
            raise DemoFailed(f"the ETH transfer did not execute: {paid}")
        received = int(self.node.rpc("eth_getBalance", VENDOR, "latest"), 16) - vendor_before
        if received != 15 * ETHER // 10:
            raise DemoFailed(f"the vendor received {received} wei, expected 1.5 ETH")
        self.note(f"{GREEN}executed{RESET} {eth['id']} in {paid['execution']['tx_hash']}: acme received 1.5 ETH")

        self.step("6. Invoices: the policy answers at once, before anyone signs")
        allowed = self.treasury("propose", "transfer", "acme", "1,200 USDC", "--title", "invoice 1001", "--account", "TEST::1",
                                as_json=True)
        for p, expected in ((allowed, "allow"),):
            v = p["verdict"]
            colour = GREEN if v["outcome"] == "allow" else RED
            self.note(f"{p['id']}  nonce {p['nonce']}  {p['title']}: {colour}{v['outcome']}{RESET} {v['reason']}")
            if v["outcome"] != expected:
                raise DemoFailed(f"proposal {p['id']}: verdict {v['outcome']}, expected {expected}")
        self.step("   ... the one above the per-transaction cap is refused: nothing stored, no nonce taken (exit code 3)")
        self.treasury("propose", "transfer", "acme", "9000 USDC", "--title", "invoice 1003", expect=3)
        self.step("   ... --force keeps it as a draft without a nonce, for when the policy allows it")
        kept = self.treasury("propose", "transfer", "acme", "9000 USDC", "--title", "invoice 1003", "--force", as_json=True)
        draft = kept["draft"]["id"]
        self.note(f"draft {draft}: {kept['verdict']['reason']}")

        self.step("7. The month's payroll from a spreadsheet (CSV): one Safe transaction, totals shown before it is stored")
        payroll_file = self.write_payroll()
        print(payroll_file.read_text().rstrip("\n"))
        payroll = self.treasury("propose", "batch", str(payroll_file), "--yes", "--account", "TEST::1", as_json=True,
                                notes=True)
        if payroll["verdict"]["outcome"] != "allow":
            raise DemoFailed(f"the payroll is not allowed: {payroll['verdict']}")
        self.note(f"{payroll['id']}  nonce {payroll['nonce']}  {payroll['title']}: {GREEN}allow{RESET} "
                  f"{payroll['verdict']['reason']}")
        self.step("   ... and an invoice above the delay threshold: allowed only after the guard's 48 h delay")
        delayed = self.treasury("propose", "transfer", "acme", "6000 USDC", "--title", "invoice 1002", "--account", "TEST::1",
                                as_json=True)
        self.note(f"{delayed['id']}  nonce {delayed['nonce']}  {delayed['title']}: {RED}{delayed['verdict']['outcome']}{RESET} "
                  f"{delayed['verdict']['reason']}")
        if delayed["verdict"]["outcome"] != "needs-delay":
            raise DemoFailed(f"proposal {delayed['id']}: verdict {delayed['verdict']['outcome']}, expected needs-delay")
        self.treasury("list", chain=False)
        self.step("   ... a second pair of eyes before anyone signs: what is unusual about each proposal (the rules;"
                  " with an API key a language model adds an advisory summary, left out here)")
        for p in (allowed, payroll, delayed):
            self.treasury("review", p["id"], "--no-model")

        self.step("8. Bob signs the invoices and the payroll (he sees the decoded intent and the hashes); Alice signed as proposer")
        self.treasury("sign", payroll["id"], "--account", "TEST::2", "--yes")
        for pid in (allowed["id"], delayed["id"]):
            self.treasury("sign", pid, "--account", "TEST::2", "--yes", show=False)
            self.note(f"signed {pid} as bob (TEST::2)")

        self.step("9. Rehearse on a snapshot of the chain (a fork, on a live network): balance changes, events, gas")
        self.treasury("rehearse", payroll["id"], "--account", "TEST::3")

        self.step("10. Execute: the invoice and the payroll go through")
        for pid, what in ((allowed["id"], "1,200 USDC to acme"), (payroll["id"], "2,750.5 USDC to acme, bolt and cora")):
            self.treasury("execute", pid, "--account", "TEST::3", "--yes", show=False)
            self.note(f"{GREEN}executed{RESET} {pid}: {what}")

        self.step("11. The invoice above the delay threshold must wait in the guard's queue (exit code 3), so it is scheduled")
        self.treasury("execute", delayed["id"], "--account", "TEST::3", "--yes", expect=3, show=False)
        self.treasury("schedule", delayed["id"], "--signer", "TEST::1", "--signer", "TEST::2", "--account", "TEST::3")

        self.step("12. 48 hours pass (not a treasury step: evm_increaseTime + evm_mine on the local node)")
        self.node.rpc("evm_increaseTime", 48 * 3600 + 60)
        self.node.rpc("evm_mine")
        executed = self.treasury("execute", delayed["id"], "--account", "TEST::3", "--yes", as_json=True)
        if executed["status"] != "executed" or not executed["execution"]["success"]:
            raise DemoFailed(f"the delayed payment did not execute: {executed}")
        self.note(f"{GREEN}executed{RESET} {delayed['id']} after the delay in {executed['execution']['tx_hash']}")

        self.step("13. The draft is not needed after all: drop it (local, no transaction)")
        self.treasury("drop", draft, "--reason", "paid in two parts next month", chain=False)

        self.step("14. Where the treasury stands, and what happened")
        self.treasury("info")
        self.treasury("list", chain=False)
        self.treasury("log", chain=False)
        self.step("15. The accounting export: every executed payment with its block time, fee and signers (CSV)")
        history = self.treasury("history", "--csv")
        rows = [line for line in history.stdout.splitlines() if line.strip()]
        if len(rows) != 1 + 6:  # the header, 1.5 ETH, invoice 1001, three payroll rows, invoice 1002
            raise DemoFailed(f"history has {len(rows) - 1} rows, expected 6:\n{history.stdout}")

        self.step("16. Key ceremonies: a recovery drill (each owner signs a challenge; nothing is sent on chain)")
        drill = self.treasury("drill", "start", "--expires", "2d", as_json=True)["id"]
        for alias in ("TEST::1", "TEST::2", "TEST::3"):
            self.treasury("drill", "sign", drill, "--account", alias)
        status = self.treasury("drill", "status", drill, as_json=True)
        self.treasury("drill", "status", drill)
        proved = [owner for owner, proof in status["proofs"].items() if proof]
        if len(proved) != 3:
            raise DemoFailed(f"{len(proved)} owners proved control in the drill, expected 3: {status}")
        self.step("   ... and the setup sheet a successor can recover from (Markdown and PDF, no secrets), checked against the chain")
        self.treasury("setup-sheet", "-o", "setup-sheet.md", "--pdf", "setup-sheet.pdf")
        self.treasury("setup-sheet", "--check", "setup-sheet.md")
        sheet = (self.workdir / "setup-sheet.md").read_text().splitlines()
        print("\n".join(sheet[:22]) + f"\n   ... ({len(sheet)} lines; the PDF has the same, and both go with the demo's folder)")


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
