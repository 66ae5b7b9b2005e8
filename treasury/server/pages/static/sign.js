// Sign a proposal with the browser's wallet (EIP-1193: MetaMask, Rabby, a Ledger behind MetaMask...).
//
// The page embeds the EIP-712 typed data the server computed (script blocks of type application/json);
// this script only asks the wallet to sign it and posts the signature back. The server recomputes
// every hash from its stored proposal and verifies the signature like any other, so nothing here is
// trusted. Text from the server or the wallet is only ever set with textContent.
"use strict";

(function () {
  const panel = document.getElementById("sign");
  if (!panel) {
    return;
  }
  const status = document.getElementById("sign-status");
  const chainId = Number(panel.dataset.chainId);
  const safeTxHash = panel.dataset.safeTxHash;
  const proposalId = panel.dataset.proposalId;
  let account = null;

  function show(text, kind) {
    if (!status) {
      return;
    }
    status.textContent = text;
    status.classList.remove("ok", "error");
    if (kind) {
      status.classList.add(kind);
    }
  }

  function jsonBlock(id) {
    const element = document.getElementById(id);
    return element ? { element: element, data: JSON.parse(element.textContent) } : null;
  }

  function ownerEntries() {
    const block = jsonBlock("owners");
    return (block ? block.data : []).map(function (owner) {
      return typeof owner === "string" ? { address: owner } : owner;
    });
  }

  function isOwner(address) {
    const wanted = address.toLowerCase();
    return ownerEntries().some(function (owner) {
      return owner.address.toLowerCase() === wanted;
    });
  }

  // Errors: a wallet's (EIP-1193 `code`), the server's (DRF-style body) or the network's, as one line.
  class Refusal extends Error {}

  function walletError(error, doing) {
    if (error && error.code === 4001) {
      return new Refusal("You rejected the request in your wallet: nothing was signed or sent.");
    }
    if (error && error.code === -32002) {
      return new Refusal("Your wallet already has a request waiting: answer it in the wallet first.");
    }
    const why = error && error.message ? error.message : String(error);
    return new Refusal("The wallet could not " + doing + ": " + why);
  }

  async function ask(method, params, doing) {
    try {
      return await window.ethereum.request(params ? { method: method, params: params } : { method: method });
    } catch (error) {
      throw walletError(error, doing);
    }
  }

  function serverMessage(body) {
    if (!body || typeof body !== "object") {
      return null;
    }
    if (Array.isArray(body.nonFieldErrors) && body.nonFieldErrors.length) {
      return String(body.nonFieldErrors[0]);
    }
    for (const key of ["detail", "message"]) {
      if (typeof body[key] === "string") {
        return body[key];
      }
    }
    for (const key of Object.keys(body)) {
      if (Array.isArray(body[key]) && body[key].length) {
        return key + ": " + String(body[key][0]);
      }
    }
    return null;
  }

  async function send(method, url, body) {
    let answer;
    try {
      answer = await fetch(url, {
        method: method,
        headers: body ? { "Content-Type": "application/json", Accept: "application/json" } : { Accept: "application/json" },
        body: body ? JSON.stringify(body) : undefined,
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (error) {
      throw new Refusal("Could not reach the server (" + (error && error.message ? error.message : error) + "): nothing was stored.");
    }
    let parsed = null;
    try {
      parsed = await answer.json();
    } catch (error) {
      parsed = null;
    }
    if (!answer.ok) {
      const why = serverMessage(parsed) || "HTTP " + answer.status;
      throw new Refusal("The server refused it: " + why);
    }
    return parsed;
  }

  async function connect() {
    if (!window.ethereum || typeof window.ethereum.request !== "function") {
      throw new Refusal("No browser wallet found: install MetaMask or another EIP-1193 wallet, then reload.");
    }
    const accounts = await ask("eth_requestAccounts", null, "connect");
    if (!accounts || !accounts.length) {
      throw new Refusal("Your wallet shared no account.");
    }
    account = accounts[0];
    if (!isOwner(account)) {
      const stranger = account;
      account = null;
      throw new Refusal(stranger + " is not an owner of this Safe: switch to an owner's account in your wallet. Nothing was signed.");
    }
    return account;
  }

  async function ensureChain() {
    const current = parseInt(await ask("eth_chainId", null, "tell its chain"), 16);
    if (current === chainId) {
      return;
    }
    try {
      await window.ethereum.request({ method: "wallet_switchEthereumChain", params: [{ chainId: "0x" + chainId.toString(16) }] });
    } catch (error) {
      const why = error && error.code === 4001 ? "you refused the switch" : error && error.code === 4902
        ? "your wallet does not know that chain" : (error && error.message) || String(error);
      throw new Refusal("Your wallet is on chain " + current + ", this Safe is on chain " + chainId + " (" + why + "). Nothing was signed.");
    }
    const now = parseInt(await ask("eth_chainId", null, "tell its chain"), 16);
    if (now !== chainId) {
      throw new Refusal("Your wallet is still on chain " + now + ", not " + chainId + ". Nothing was signed.");
    }
  }

  // A wallet may answer v as 0/1; the Safe reads 27/28 (0 and 1 mean other signature kinds there).
  function normalized(signature) {
    if (typeof signature !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(signature)) {
      throw new Refusal("The wallet returned no valid signature.");
    }
    const v = parseInt(signature.slice(130), 16);
    return v < 27 ? signature.slice(0, 130) + (v + 27).toString(16) : signature;
  }

  async function signTyped(typedData) {
    const signature = await ask("eth_signTypedData_v4", [account, JSON.stringify(typedData)], "sign");
    return normalized(signature);
  }

  function ownerLabel(address) {
    const known = ownerEntries().find(function (owner) {
      return owner.address.toLowerCase() === address.toLowerCase();
    });
    return known && known.name ? known.name + " (" + address + ")" : address;
  }

  function renderList(list, owners) {
    if (!list) {
      return;
    }
    list.replaceChildren();
    for (const owner of owners) {
      const item = document.createElement("li");
      const code = document.createElement("code");
      item.dataset.owner = owner;
      code.className = "address";
      code.textContent = ownerLabel(owner);
      item.appendChild(code);
      list.appendChild(item);
    }
  }

  async function refresh() {
    const tx = await send("GET", "/api/v1/multisig-transactions/" + safeTxHash + "/");
    const owners = (tx.confirmations || []).map(function (c) {
      return c.owner;
    });
    renderList(document.getElementById("signatures"), owners);
    setText("signed-count", String(owners.length));
    setText("missing", String(Math.max(0, Number(tx.confirmationsRequired) - owners.length)));
    return owners.length;
  }

  function setText(id, text) {
    const element = document.getElementById(id);
    if (element) {
      element.textContent = text;
    }
  }

  // The page may list a guard message's signers in <ul id="schedule-signers"> (or cancel-signers),
  // with their number in #schedule-signed-count: both are refreshed when present.
  async function refreshGuard(purpose, signedHash) {
    const list = document.getElementById(purpose + "-signers");
    const count = document.getElementById(purpose + "-signed-count");
    if (!list && !count) {
      return;
    }
    const page = await send("GET", "/api/treasury/v1/proposals/" + proposalId + "/guard-signatures/");
    const owners = (page.results || []).filter(function (s) {
      return s.purpose === purpose && String(s.signedHash || s.signed_hash || "").toLowerCase() === signedHash.toLowerCase();
    }).map(function (s) {
      return s.owner;
    });
    renderList(list, owners);
    setText(purpose + "-signed-count", String(owners.length));
  }

  async function signSafeTx() {
    const block = jsonBlock("safe-tx-typed-data");
    show("Check the transaction in your wallet and sign it.", null);
    const signature = await signTyped(block.data);
    show("Sending your signature to the server...", null);
    await send("POST", "/api/v1/multisig-transactions/" + safeTxHash + "/confirmations/", { signature: signature });
    let count = null;
    try {
      count = await refresh();
    } catch (error) {
      count = null; // stored all the same; the list shows after a reload
    }
    show("Your signature is stored" + (count === null ? "." : ": " + count + " collected."), "ok");
  }

  async function signGuard(purpose) {
    const block = jsonBlock(purpose + "-typed-data");
    const signedHash = block.element.dataset.signedHash;
    show("Check the " + purpose + " message in your wallet and sign it.", null);
    const signature = await signTyped(block.data);
    // No `owner` claim: the server recovers the signer (wallets report lowercase addresses).
    const body = { purpose: purpose, signedHash: signedHash, signature: signature };
    if (purpose === "schedule") {
      body.intentNonce = block.data.message.nonce;
    } else {
      body.entryId = block.data.message.entryId;
    }
    show("Sending your " + purpose + " signature to the server...", null);
    await send("POST", "/api/treasury/v1/proposals/" + proposalId + "/guard-signatures/", body);
    try {
      await refreshGuard(purpose, signedHash);
    } catch (error) {
      // stored all the same
    }
    show("Your " + purpose + " signature is stored.", "ok");
  }

  // A key-ceremony drill: the owner signs the drill's challenge (typed data in its own domain, never a
  // transaction); the server verifies it against the owners on chain before keeping it as a proof.
  const drillId = panel.dataset.drillId;

  function markProven(owner, via) {
    const rows = document.querySelectorAll("#proofs tr[data-owner]");
    let proven = 0;
    rows.forEach(function (row) {
      if (row.dataset.owner.toLowerCase() === owner.toLowerCase() && row.classList.contains("unproven")) {
        row.classList.replace("unproven", "proven");
        const cell = row.querySelector(".proof");
        if (cell) {
          cell.textContent = "proved (" + via + ") just now";
        }
      }
      if (row.classList.contains("proven")) {
        proven += 1;
      }
    });
    setText("proven-count", String(proven));
  }

  function deviceRequired(owner) {
    const devices = jsonBlock("device-owners");
    return Boolean(devices && owner && devices.data.some(function (address) {
      return address.toLowerCase() === owner.toLowerCase();
    }));
  }

  async function signDrill() {
    if (deviceRequired(account)) {
      // The server would refuse a browser proof for this owner: say what works instead of asking the wallet.
      throw new Refusal("This drill requires " + ownerLabel(account) + " to sign with their hardware wallet: run " +
        "`treasury drill sign " + drillId + " --account ALIAS` with the device's account. Nothing was signed.");
    }
    const block = jsonBlock("drill-typed-data");
    show("Check the drill challenge in your wallet and sign it: it moves nothing.", null);
    const signature = await signTyped(block.data);
    show("Sending your proof to the server...", null);
    const stored = await send("POST", "/api/treasury/v1/drills/" + drillId + "/proofs/", { signature: signature, via: "browser" });
    markProven(stored && stored.owner ? stored.owner : account, "browser");
    show("Your proof of control is stored for " + ownerLabel(stored && stored.owner ? stored.owner : account) + ".", "ok");
  }

  const buttons = [];

  function whenClicked(id, action) {
    const button = document.getElementById(id);
    if (!button) {
      return;
    }
    buttons.push(button);
    button.addEventListener("click", async function () {
      buttons.forEach(function (b) {
        b.disabled = true;
      });
      try {
        await action();
      } catch (error) {
        show(error instanceof Refusal ? error.message : "Something went wrong: " + (error && error.message ? error.message : error), "error");
      } finally {
        buttons.forEach(function (b) {
          b.disabled = false;
        });
      }
    });
  }

  async function ready() {
    await connect();
    await ensureChain();
  }

  whenClicked("connect", async function () {
    await ready();
    show("Connected as " + ownerLabel(account) + ", an owner, on chain " + chainId + ".", "ok");
  });
  whenClicked("sign-safe-tx", async function () {
    await ready();
    await signSafeTx();
  });
  whenClicked("sign-schedule", async function () {
    await ready();
    await signGuard("schedule");
  });
  whenClicked("sign-cancel", async function () {
    await ready();
    await signGuard("cancel");
  });
  whenClicked("sign-drill", async function () {
    await ready();
    await signDrill();
  });
})();
