"""`make demo-web`: the signing page of `treasury serve`, on a local anvil, to open in a browser.

Like scripts/demo_cli.py (whose pieces it reuses): the pinned anvil on a free localhost port, ape
pointed at it (APE_FOUNDRY_HOST, network `ethereum:local:foundry`), and every step a `treasury ...`
process in a temporary ape project. It sets up a 2-of-3 Safe with TreasuryGuard, funds it with a test
token, proposes payments (one the policy allows, one that needs the guard's delay, one already in the
delay queue), has Alice sign two of them from the command line, then starts `treasury serve` on a free loopback
port and prints the URL of the Safe page and of a proposal page. It serves until Ctrl-C.

`--once` (or DEMO_WEB_ONCE=1): check that the pages answer 200 with their signing panels, then stop (a test runs it so).
anvil and the server are stopped on exit, also on failure, Ctrl-C or `kill`.

Exit status: 0 when every step did what it should, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_cli import (
    ALICE,
    BIN,
    BOB,
    BOLD,
    CAROL,
    DIM,
    GREEN,
    NETWORK,
    RED,
    RESET,
    VENDOR,
    Demo,
    DemoFailed,
    Node,
)

from treasury.chain.localnode import free_port

PAGES_TIMEOUT = 30  # seconds for the server to answer its first page


class Server:
    """`treasury serve --port 0` in the demo project; its URL from the JSON line it prints at start."""

    def __init__(self, demo: Demo):
        words = ["serve", "--host", "127.0.0.1", "--port", "0", "--network", NETWORK, "--json"]
        print(f"{DIM}$ treasury {' '.join(words)}{RESET}", flush=True)
        self.process = subprocess.Popen([str(BIN / "treasury"), *words], cwd=demo.workdir, env=demo.env, stdout=subprocess.PIPE,
                                        text=True, start_new_session=True)
        try:
            self.url = self._started()
        except BaseException:
            self.stop()  # failed or interrupted before the caller holds it: stop it here
            raise
        # anything it prints later goes to our stdout (a full pipe would stall the server)
        threading.Thread(target=self._relay, daemon=True).start()

    def _started(self) -> str:
        """The URL from the server's start line."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + 60
        line = ""
        while not line:
            if self.process.poll() is not None:
                raise DemoFailed(f"`treasury serve` exited {self.process.returncode} before listening")
            if time.monotonic() > deadline:
                raise DemoFailed("`treasury serve` did not say where it listens within 60 s")
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline().strip()
                if not line and self.process.poll() is not None:
                    raise DemoFailed(f"`treasury serve` exited {self.process.returncode} before listening")
        try:
            return str(json.loads(line)["url"])
        except (ValueError, KeyError):
            raise DemoFailed(f"`treasury serve` printed {line!r}, expected its JSON start line") from None

    def _relay(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            print(line, end="", flush=True)

    def get(self, path: str, timeout: float = PAGES_TIMEOUT) -> tuple[int, str]:
        """GET a page (retrying until the server accepts connections); its status and the HTML."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + path, timeout=10) as response:
                    return response.status, response.read().decode("utf-8", "replace")
            except urllib.error.HTTPError as error:
                return error.code, error.read().decode("utf-8", "replace")
            except OSError:
                if self.process.poll() is not None:
                    raise DemoFailed(f"`treasury serve` exited {self.process.returncode}") from None
                if time.monotonic() > deadline:
                    raise DemoFailed(f"{self.url}{path} did not answer within {timeout:.0f} s") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class WebDemo(Demo):
    def prepare(self) -> dict[str, str]:
        """The Safe, its guard and the proposals the pages show; the ids and addresses, by name."""
        self.step("1. Safe contracts, a 2-of-3 Safe (Alice TEST::1, Bob TEST::2, Carol TEST::3), funded")
        self.treasury("deploy", "--version", "1.4.1", "--account", "TEST::0", "--manifest-dir", "deployments", show=False)
        created = self.treasury("create-safe", "--owner", ALICE, "--owner", BOB, "--owner", CAROL, "--threshold", "2",
                                "--account", "TEST::0", "--manifest-dir", "deployments", show=False)
        safe = next(line.split()[-1] for line in created.stdout.splitlines() if line.startswith("predicted address:"))
        token = self.fund(safe)
        self.note(f"Safe {safe} holds 1,000,000 USDC (a test token at {token}) and 10 ETH")

        self.step("2. TreasuryGuard deployed from the policy in the config, and installed")
        self.write_config(safe, token)
        installed = self.treasury("deploy-guard", "--treasury", "ops", "--signer", "TEST::1", "--signer", "TEST::2",
                                  "--account", "TEST::0", show=False)
        guard = next(line.split()[1] for line in installed.stdout.splitlines() if line.startswith("guard "))
        self.write_config(safe, token, guard)
        self.note(f"guard {guard}: up to 5,000 USDC at once, above that a 48 h delay, at most 8,000 per payment")

        self.step("3. Proposals for the pages; Alice signs from the command line, Bob is left for the browser")
        allowed = self.treasury("propose", "transfer", VENDOR, "4000 USDC", "--title", "invoice 2001", as_json=True)
        delayed = self.treasury("propose", "transfer", VENDOR, "6000 USDC", "--title", "invoice 2002", as_json=True)
        queued = self.treasury("propose", "transfer", VENDOR, "7000 USDC", "--title", "invoice 2003", as_json=True)
        for p, expected in ((allowed, "allow"), (delayed, "needs-delay"), (queued, "needs-delay")):
            v = p["verdict"]
            colour = GREEN if v["outcome"] == "allow" else RED
            self.note(f"{p['id']}  nonce {p['nonce']}  {p['title']}: {colour}{v['outcome']}{RESET} {v['reason']}")
            if v["outcome"] != expected:
                raise DemoFailed(f"proposal {p['id']}: verdict {v['outcome']}, expected {expected}")
        for pid, owner in ((allowed["id"], "TEST::1"), (delayed["id"], "TEST::1")):
            self.treasury("sign", pid, "--account", owner, "--yes", show=False)
            self.note(f"signed {pid} as {owner}")
        self.step("   ... and the third goes into the guard's delay queue (Alice's and Bob's schedule signatures; the Safe page counts it down)")
        self.treasury("schedule", queued["id"], "--signer", "TEST::1", "--signer", "TEST::2", "--account", "TEST::3", show=False)
        return {"safe": safe, "allowed": allowed["id"], "delayed": delayed["id"], "queued": queued["id"]}

    def serve(self, ids: dict[str, str], once: bool) -> None:
        self.step("4. `treasury serve` on a free loopback port")
        server = Server(self)
        try:
            pages = {
                "Safe page": f"/safes/{ids['safe']}",
                "proposal page (allowed, Bob's signature missing)": f"/proposals/{ids['allowed']}",
                "proposal page (needs the delay)": f"/proposals/{ids['delayed']}",
                "proposal page (in the delay queue)": f"/proposals/{ids['queued']}",
            }
            width = max(map(len, pages))
            print()
            for label, path in pages.items():
                print(f"   {label + ':':<{width + 1}} {BOLD}{server.url}{path}{RESET}", flush=True)
            if once:
                # each page answers, and carries what the signing flow needs (the DOM contract of the pages)
                expected = {"/": (), pages["Safe page"]: ('id="queue"',),
                            f"/proposals/{ids['allowed']}": ('id="sign"', 'id="safe-tx-typed-data"'),
                            f"/proposals/{ids['delayed']}": ('id="sign"', 'id="schedule-typed-data"'),
                            f"/proposals/{ids['queued']}": ('id="sign"', 'id="cancel-typed-data"')}
                for path, marks in expected.items():
                    status, html = server.get(path)
                    if status != 200:
                        raise DemoFailed(f"GET {server.url}{path} answered {status}, expected 200")
                    if missing := [mark for mark in marks if mark not in html]:
                        raise DemoFailed(f"{server.url}{path} lacks {', '.join(missing)}")
                self.note(f"{GREEN}every page answered 200{RESET}")
                return
            print(f"""
   To sign in the browser, in a wallet profile kept for testing (never one that holds real funds):
   add the network {self.node.url} (chain id 31337) and import anvil's well-known test account #2
   (Bob, {BOB}), then open a proposal page, connect and sign. Alice (TEST::1) has signed already.
   The CLI sees what the page collects: cd {self.workdir} && treasury show ID --network {NETWORK}
   {DIM}Serving until Ctrl-C.{RESET}""", flush=True)
            server.process.wait()
            raise DemoFailed(f"`treasury serve` exited {server.process.returncode}")
        finally:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--once", action="store_true", help="check that the pages answer 200, then stop (also DEMO_WEB_ONCE=1)")
    args = parser.parse_args(argv)
    once = args.once or os.environ.get("DEMO_WEB_ONCE", "") not in ("", "0")
    started = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below on `kill` too
    node = None
    try:
        with tempfile.TemporaryDirectory(prefix="treasury-demo-web-") as workdir:
            node = Node(free_port())
            print(f"{BOLD}ape-treasury signing page demo{RESET}: anvil at {node.url}, project in {workdir}")
            demo = WebDemo(node, Path(workdir))
            demo.serve(demo.prepare(), once)
    except DemoFailed as failure:
        print(f"\n{RED}demo-web failed{RESET}: {failure}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{GREEN}stopped{RESET}: server and anvil stopped")
        return 0
    finally:
        if node is not None:
            node.stop()
    print(f"\n{GREEN}demo-web finished{RESET} in {time.monotonic() - started:.0f} s; server and anvil stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
