// Drive a page of `treasury serve` in headless Chromium with a test wallet, for tests/test_browser.py.
//
//   node tests/browser/drive.mjs < plan.json        (or: node tests/browser/drive.mjs plan.json)
//
// The wallet is an EIP-1193 provider injected as `window.ethereum` before any script of the page runs
// (page.addInitScript). Its `request({method, params})` goes through an exposed function
// (page.exposeFunction) to this node process, which answers the account and chain questions from
// the plan and forwards everything else to anvil's JSON-RPC: anvil signs `eth_signTypedData_v4`
// for its own unlocked dev accounts, so every signature comes from a real node, never from test
// code. No private key ever passes through here.
//
// The plan (JSON):
//   rpc        anvil's JSON-RPC URL
//   account    the address the wallet reports (eth_requestAccounts / eth_accounts)
//   wallet     optional behaviours: {chainId: "0x.." reported instead of anvil's own,
//              refuseSwitch: true (wallet_switchEthereumChain fails with 4001),
//              reject: ["eth_signTypedData_v4", ...] (these fail with 4001, as a user's "Reject")}
//   timeout    seconds for the whole run (default 60); stepTimeout seconds per wait (default 20)
//   viewport   {width, height}; headers: extra HTTP headers for every request of the page
//   steps      in order, each one of:
//     {"goto": url}                        open a page, wait until loaded
//     {"reload": true}
//     {"connect": true}                    click #connect, wait for #sign-status to settle
//     {"sign": "safe-tx"|"schedule"|"cancel"}  click #sign-<kind>, wait for #sign-status to settle
//     {"click": selector}
//     {"waitFor": selector, "state": "attached"|"visible"|"detached"}
//     {"expect": {"selector": "#sign-status", "class": "ok", "text": "substring",
//                 "count": n (number of matches)}}      waits until true, else the run fails
//     {"eval": "js expression"}            its (JSON) value is in the step's result
//     {"screenshot": path, "fullPage": true}
//     {"account": "0x.."} / {"wallet": {...}}   the wallet's account or behaviours from now on
//                                          (merged into the plan's: "chainId": null is anvil's again)
//     {"pause": label}                     print {"paused": label}, go on after a line on stdin
//                                          (then pass the plan as a file argument)
//   "Settle": the status line is emptied (text and the ok/error classes) before the click, and the
//   step waits until it has the class ok or error again; its text and classes are the result.
//
// Output: one JSON line on stdout (the last line, after any pause lines): {ok, error, steps: [{step, result}], wallet: [{method, params,
// outcome, error}], requests: [{method, url, status}], console: [...], pageErrors: [...],
// dialogs: [...], status: {text, classes}}. Exit code 0 when ok, 1 when a step failed, 2 on the
// hard timeout.

import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import chromium from "@sparticuz/chromium";
import pw from "playwright-core";

const REJECTED = { code: 4001, message: "User rejected the request." };
// Flags of @sparticuz/chromium that would weaken the page's security model: the tests must see the
// browser enforce the same-origin policy and the page's CSP as a user's browser does.
const DROPPED_FLAGS = new Set(["--disable-web-security", "--allow-running-insecure-content"]);
// The machine may have no network at all: nothing may wait on it.
const EXTRA_FLAGS = ["--disable-background-networking", "--disable-component-update", "--no-first-run",
  "--disable-sync", "--metrics-recording-only", "--disable-default-apps"];

const PROVIDER = () => {
  const listeners = {};
  const provider = {
    isMetaMask: false,
    isTreasuryTestWallet: true,
    async request(args) {
      if (!args || typeof args.method !== "string") {
        const error = new Error("Invalid request");
        error.code = -32600;
        throw error;
      }
      const answer = JSON.parse(await window.__treasuryTestWallet(JSON.stringify({ method: args.method, params: args.params ?? [] })));
      if (answer.event) {
        for (const listener of listeners[answer.event.name] || []) {
          try { listener(answer.event.value); } catch (e) { /* a listener's failure is not the wallet's */ }
        }
      }
      if (answer.error) {
        const error = new Error(answer.error.message);
        error.code = answer.error.code;
        if (answer.error.data !== undefined) error.data = answer.error.data;
        throw error;
      }
      return answer.result;
    },
    on(name, listener) { (listeners[name] ||= []).push(listener); return provider; },
    removeListener(name, listener) {
      listeners[name] = (listeners[name] || []).filter((l) => l !== listener);
      return provider;
    },
  };
  provider.off = provider.removeListener;
  Object.defineProperty(window, "ethereum", { value: provider, configurable: false, writable: false });
  window.dispatchEvent(new Event("ethereum#initialized"));
};

async function readPlan() {
  if (process.argv[2]) return JSON.parse(await readFile(process.argv[2], "utf8"));
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

let rpcId = 0;
async function rpc(url, method, params) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++rpcId, method, params }),
  });
  const body = await response.json();
  return body; // {result} or {error}
}

const out = {
  ok: false, error: null, steps: [], wallet: [], requests: [], console: [], pageErrors: [], dialogs: [], status: null,
};
let finished = false;
function finish(code) {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(code));
}

const plan = await readPlan();
const wallet = { ...(plan.wallet || {}) };
const stepTimeout = (plan.stepTimeout ?? 20) * 1000;
const hardTimer = setTimeout(() => {
  out.error = `hard timeout after ${plan.timeout ?? 60} s`;
  finish(2);
}, (plan.timeout ?? 60) * 1000);

let account = plan.account;
let walletChainId = wallet.chainId ?? null; // null: anvil's own
let rejected = new Set(wallet.reject || []);

// A step {"wallet": {...}} or {"account": "0x.."} changes the wallet between steps, as a user would.
function rewire(step) {
  if (step.account !== undefined) account = step.account;
  if (step.wallet) {
    Object.assign(wallet, step.wallet);
    if ("chainId" in step.wallet) walletChainId = step.wallet.chainId ?? null;
    if ("reject" in step.wallet) rejected = new Set(step.wallet.reject || []);
  }
}

// A step {"pause": label} prints {"paused": label} and waits for a line on stdin (the plan then
// comes from a file): the test changes the world (executes the proposal...) while the page is open.
let stdinLines = null;
async function pause(label) {
  if (!stdinLines) {
    const { createInterface } = await import("node:readline");
    stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  }
  process.stdout.write(JSON.stringify({ paused: label }) + "\n");
  const line = await stdinLines.next();
  if (line.done) throw new Error(`stdin closed during the pause ${label}`);
}

async function answer(method, params) {
  if (rejected.has(method)) return { error: REJECTED };
  switch (method) {
    case "eth_requestAccounts":
    case "eth_accounts":
      return { result: account ? [account] : [] };
    case "eth_chainId":
      return walletChainId !== null ? { result: walletChainId } : rpc(plan.rpc, method, []);
    case "net_version": {
      if (walletChainId === null) return rpc(plan.rpc, method, []);
      return { result: String(BigInt(walletChainId)) };
    }
    case "wallet_switchEthereumChain": {
      if (wallet.refuseSwitch) return { error: REJECTED };
      const wanted = params?.[0]?.chainId;
      const own = (await rpc(plan.rpc, "eth_chainId", [])).result;
      if (!wanted || BigInt(wanted) !== BigInt(own)) {
        return { error: { code: 4902, message: `Unrecognized chain ID "${wanted}".` } };
      }
      walletChainId = null;
      return { result: null, event: { name: "chainChanged", value: own } };
    }
    case "eth_sendTransaction":
      // Sending is the user's explicit choice: the plan must allow it (wallet.allowSend).
      return wallet.allowSend ? rpc(plan.rpc, method, params) : { error: REJECTED };
    case "wallet_addEthereumChain":
    case "wallet_watchAsset":
    case "wallet_requestPermissions":
      return { error: { code: 4200, message: `${method} is not supported by the test wallet` } };
    case "eth_sign":
    case "personal_sign":
    case "eth_signTypedData":
    case "eth_signTypedData_v3":
      return { error: { code: 4200, message: `${method} is not offered by the test wallet` } };
    default:
      return rpc(plan.rpc, method, params);
  }
}

let context;
let userDataDir;
try {
  userDataDir = await mkdtemp(join(tmpdir(), "treasury-browser-"));
  const args = chromium.args.filter((flag) => !DROPPED_FLAGS.has(flag)).concat(EXTRA_FLAGS);
  context = await pw.chromium.launchPersistentContext(userDataDir, {
    executablePath: await chromium.executablePath(),
    args,
    headless: true,
    viewport: plan.viewport || { width: 1280, height: 900 },
    extraHTTPHeaders: plan.headers || undefined,
    offline: false,
  });
  await context.exposeFunction("__treasuryTestWallet", async (raw) => {
    const { method, params } = JSON.parse(raw);
    const entry = { method, params };
    out.wallet.push(entry);
    try {
      const response = await answer(method, params);
      entry.outcome = response.error ? "error" : "result";
      if (response.error) entry.error = response.error;
      return JSON.stringify(response);
    } catch (e) {
      entry.outcome = "error";
      entry.error = { code: -32603, message: String(e?.message || e) };
      return JSON.stringify({ error: entry.error });
    }
  });
  await context.addInitScript(PROVIDER);
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(stepTimeout);
  page.on("console", (m) => out.console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => out.pageErrors.push(String(e?.message || e)));
  page.on("dialog", async (d) => {
    out.dialogs.push({ type: d.type(), message: d.message() });
    await (plan.dialogs === "dismiss" ? d.dismiss() : d.accept());
  });
  page.on("requestfinished", async (r) => {
    const response = await r.response().catch(() => null);
    out.requests.push({ method: r.method(), url: r.url(), status: response ? response.status() : null });
  });
  page.on("requestfailed", (r) => out.requests.push({ method: r.method(), url: r.url(), status: null, failure: r.failure()?.errorText }));

  // page.waitForFunction evaluates its predicate with eval() inside the page, which the page's CSP
  // (rightly) refuses: poll page.evaluate from here instead (the DevTools protocol is not under CSP).
  const poll = async (predicate, arg, timeout = stepTimeout) => {
    const deadline = Date.now() + timeout;
    for (;;) {
      if (await page.evaluate(predicate, arg).catch(() => false)) return true;
      if (Date.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const statusOf = () => page.evaluate(() => {
    const el = document.querySelector("#sign-status");
    return el ? { text: el.textContent.trim(), classes: [...el.classList] } : null;
  });

  const settle = async (selector) => {
    await page.waitForSelector(selector, { state: "visible" });
    await page.evaluate(() => {
      const el = document.querySelector("#sign-status");
      if (el) { el.textContent = ""; el.classList.remove("ok", "error"); }
    });
    await page.click(selector);
    const settled = await poll(() => {
      const el = document.querySelector("#sign-status");
      return Boolean(el && (el.classList.contains("ok") || el.classList.contains("error")) && el.textContent.trim() !== "");
    });
    const status = await statusOf();
    if (!settled) throw new Error(`#sign-status did not settle after clicking ${selector}: ${JSON.stringify(status)}`);
    return status;
  };

  const expectation = async (want) => {
    const ok = await poll((w) => {
      const all = [...document.querySelectorAll(w.selector)];
      if (w.count !== undefined) return all.length === w.count;
      const el = all[0];
      if (!el) return false;
      if (w.class && !el.classList.contains(w.class)) return false;
      if (w.notClass && el.classList.contains(w.notClass)) return false;
      if (w.text !== undefined && !el.textContent.toLowerCase().includes(String(w.text).toLowerCase())) return false;
      return true;
    }, want);
    const seen = await page.evaluate((w) => [...document.querySelectorAll(w.selector)].map((el) => ({
      text: el.textContent.trim().slice(0, 500), classes: [...el.classList],
    })), want);
    if (!ok) throw new Error(`expectation not met: ${JSON.stringify(want)}; found ${JSON.stringify(seen)}`);
    return seen;
  };

  for (const step of plan.steps || []) {
    const record = { step };
    out.steps.push(record);
    if (step.goto !== undefined) {
      const response = await page.goto(step.goto, { waitUntil: "load" });
      record.result = { status: response ? response.status() : null, headers: response ? response.headers() : {} };
    } else if (step.reload) {
      const response = await page.reload({ waitUntil: "load" });
      record.result = { status: response ? response.status() : null };
    } else if (step.account !== undefined || step.wallet !== undefined) {
      rewire(step);
      record.result = null;
    } else if (step.pause !== undefined) {
      await pause(step.pause);
      record.result = null;
    } else if (step.connect) {
      record.result = await settle("#connect");
    } else if (step.sign !== undefined) {
      record.result = await settle(`#sign-${step.sign}`);
    } else if (step.click !== undefined) {
      await page.click(step.click);
      record.result = null;
    } else if (step.waitFor !== undefined) {
      await page.waitForSelector(step.waitFor, { state: step.state || "attached" });
      record.result = null;
    } else if (step.expect !== undefined) {
      record.result = await expectation(step.expect);
    } else if (step.eval !== undefined) {
      // A string is evaluated as an expression through the DevTools protocol: the page's CSP does not apply.
      record.result = await page.evaluate(`(() => { const v = (${step.eval}); return v === undefined ? null : v; })()`);
    } else if (step.screenshot !== undefined) {
      await page.screenshot({ path: step.screenshot, fullPage: step.fullPage !== false });
      record.result = step.screenshot;
    } else {
      throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
  }
  out.status = await statusOf().catch(() => null);
  out.ok = true;
} catch (e) {
  out.error = String(e?.stack || e);
}
clearTimeout(hardTimer);
try {
  if (context) await context.close();
} catch (e) { /* closing is best effort */ }
if (userDataDir) await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
finish(out.ok ? 0 : 1);
