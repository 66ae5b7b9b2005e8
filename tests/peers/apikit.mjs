// Safe's own TypeScript clients against a `treasury serve`: @safe-global/api-kit for the HTTP API and
// @safe-global/protocol-kit for the Safe transaction and its signature. No private key: the signer is an
// address the node holds unlocked (anvil's dev accounts), so signatures come from eth_signTypedData_v4.
//
//   node tests/peers/apikit.mjs request.json   ->  one JSON object on stdout (exit 0), or the error on stderr (exit 1)
//
// request: {"action": "propose" | "confirm" | "read" | "delegate" | "message", "rpcUrl", "serviceUrl" (…/api),
//           "chainId", "safe", "contracts"?: {ContractNetworkConfig}, "signer"?, "tx"?: {to, value, data, nonce},
//           "safeTxHash"?, "estimate"?, "delegate"?, "label"?, "remove"?, "message"?, "add"?, "apiKey"?}
// The script stops itself after TIMEOUT_MS (exit 2), so a hung request never hangs the test suite.
import { readFileSync } from "node:fs";
import SafeApiKit from "@safe-global/api-kit";
import Safe, { hashSafeMessage } from "@safe-global/protocol-kit";
import { createWalletClient, http } from "viem";

const TIMEOUT_MS = 90_000;
const TYPED_DATA_V4 = "eth_signTypedData_v4"; // types-kit's SigningMethod.ETH_SIGN_TYPED_DATA_V4: the node signs

setTimeout(() => {
  process.stderr.write(`timeout: no answer within ${TIMEOUT_MS} ms\n`);
  process.exit(2);
}, TIMEOUT_MS).unref();

const request = JSON.parse(readFileSync(process.argv[2], "utf8"));
// apiKey: sent as `Authorization: Bearer <key>`, which is how a read token reaches `treasury serve`
const apiKit = new SafeApiKit({ chainId: BigInt(request.chainId), txServiceUrl: request.serviceUrl, apiKey: request.apiKey });

/** protocol-kit over the node, signing as `signer` (an unlocked account of the node). */
async function protocolKit(signer) {
  return Safe.init({
    provider: request.rpcUrl,
    signer,
    safeAddress: request.safe,
    contractNetworks: { [String(request.chainId)]: request.contracts },
  });
}

/** Propose a Safe transaction built and signed by protocol-kit, through api-kit. */
async function propose() {
  const kit = await protocolKit(request.signer);
  const { to, value, data, nonce } = request.tx;
  const safeTx = await kit.createTransaction({ transactions: [{ to, value: String(value), data }], options: { nonce } });
  const safeTxHash = await kit.getTransactionHash(safeTx);
  const signed = await kit.signTransaction(safeTx, TYPED_DATA_V4);
  const signature = signed.getSignature(request.signer).data;
  await apiKit.proposeTransaction({
    safeAddress: request.safe,
    safeTransactionData: signed.data,
    safeTxHash,
    senderAddress: request.signer,
    senderSignature: signature,
    origin: "api-kit peer test",
  });
  return { safeTxHash, signature, data: signed.data };
}

/** Read the proposal back from the server, rebuild it with protocol-kit, sign it and confirm it. */
async function confirm() {
  const kit = await protocolKit(request.signer);
  const served = await apiKit.getTransaction(request.safeTxHash);
  const safeTx = await kit.toSafeTransactionType(served);
  const rebuiltHash = await kit.getTransactionHash(safeTx);
  if (rebuiltHash.toLowerCase() !== request.safeTxHash.toLowerCase()) {
    throw new Error(`the served transaction hashes to ${rebuiltHash}, not ${request.safeTxHash}`);
  }
  const signed = await kit.signTransaction(safeTx, TYPED_DATA_V4);
  const signature = signed.getSignature(request.signer).data;
  const answer = await apiKit.confirmTransaction(request.safeTxHash, signature);
  return { signature, answer: answer ?? null };
}

/** Every read api-kit offers for what the server implements, returned raw for the test to check. */
async function read() {
  const out = {};
  out.serviceInfo = await apiKit.getServiceInfo();
  out.safeInfo = await apiKit.getSafeInfo(request.safe);
  out.multisig = await apiKit.getMultisigTransactions(request.safe);
  out.pending = await apiKit.getPendingTransactions(request.safe);
  out.nextNonce = await apiKit.getNextNonce(request.safe);
  if (request.safeTxHash) {
    out.transaction = await apiKit.getTransaction(request.safeTxHash);
    out.confirmations = await apiKit.getTransactionConfirmations(request.safeTxHash);
    if (request.contracts) {
      // protocol-kit turns the served JSON back into a SafeTransaction: its hash must be the same
      const kit = await protocolKit(undefined);
      out.rebuiltHash = await kit.getTransactionHash(await kit.toSafeTransactionType(out.transaction));
    }
  }
  if (request.estimate) {
    out.estimate = await apiKit.estimateSafeTransaction(request.safe, request.estimate);
  }
  return out;
}

/** Delegates through api-kit: `signer` delegates `delegate` for the Safe, or with `remove` takes it
 * back (the node signs api-kit's EIP-712 Delegate message); then the Safe's delegates as listed. */
async function delegate() {
  const signer = createWalletClient({ account: request.signer, transport: http(request.rpcUrl) });
  const who = { delegateAddress: request.delegate, delegatorAddress: request.signer, signer };
  const out = {};
  if (request.remove) {
    out.removed = (await apiKit.removeSafeDelegate(who)) ?? null;
  } else {
    out.added = await apiKit.addSafeDelegate({ ...who, safeAddress: request.safe, label: request.label });
  }
  out.listed = await apiKit.getSafeDelegates({ safeAddress: request.safe });
  out.byDelegator = await apiKit.getSafeDelegates({ delegatorAddress: request.signer, limit: 10 });
  return out;
}

/** A Safe message through api-kit: protocol-kit hashes it and the node signs it as `signer`; the
 * first signature creates it (addMessage), a later one adds to it (addMessageSignature). */
async function message() {
  const kit = await protocolKit(request.signer);
  const signed = await kit.signMessage(kit.createMessage(request.message), TYPED_DATA_V4);
  const signature = signed.getSignature(request.signer).data;
  const messageHash = await kit.getSafeMessageHash(hashSafeMessage(request.message));
  if (request.add) {
    await apiKit.addMessageSignature(messageHash, signature);
  } else {
    await apiKit.addMessage(request.safe, { message: request.message, signature });
  }
  return {
    messageHash, signature, served: await apiKit.getMessage(messageHash), listed: await apiKit.getMessages(request.safe),
  };
}

const actions = { propose, confirm, read, delegate, message };

try {
  const result = await actions[request.action]();
  process.stdout.write(JSON.stringify(result, (_key, value) => (typeof value === "bigint" ? value.toString() : value)));
  process.exit(0);
} catch (error) {
  const detail = error?.statusCode ? ` (HTTP ${error.statusCode}: ${JSON.stringify(error.data)})` : "";
  process.stderr.write(`${error?.stack ?? error}${detail}\n`);
  process.exit(1);
}
