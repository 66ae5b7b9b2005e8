"""The setup sheet: what a successor needs to find and run the treasury, read from the chain, no secrets.

Everything on the sheet that the chain decides (Safe, version, singleton, owners and what kind of key
each is, threshold, modules, fallback handler, guard and every setting the guard holds) is read from
the chain now, never from the config: the sheet must describe the Safe as it is, not as the team
meant it to be. Every read is pinned to one block, so the sheet is one moment of the chain, not a
mix of two. Those facts are written as canonical JSON (sorted keys, no spaces) and the sheet
carries their keccak-256, so a reader can recompute it (`treasury setup-sheet --check`) and learn
whether the paper in the drawer is still current, and if not, what changed. The Safe's nonce, the
balances and the address book's names are left out of the checksum: they change without the setup
changing. How the Safe was deployed (factory, salt nonce, creation transaction) is history, found on
chain from the factory's ProxyCreation event (or in the deployment manifest) and shown beside the
facts, also outside the checksum, so a machine without the manifest still agrees on "current".

The guard cannot list its allowlists, so the keys it ever set are taken from its own events (each
setter emits one, the constructor included) together with what the config's policy names, and each
key's current value is then read from the guard's views: a setting the config forgot still shows.
Events are read in chunks from the block the guard's code appeared (found by bisection), because
nodes refuse wide log ranges; when they cannot be read the facts are *incomplete*: the sheet says so
and carries no checksum, since a checksum over a partial allowlist would vouch for what nobody read.

What the sheet shows beside the facts (names, the reading's block and time, the deployment, notes) is
embedded with them (the "context"), so `--check` can render the sheet again and compare every line a
person reads, not only the JSON a machine reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_abi import decode as abi_decode, encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

from treasury.addresses import ZERO_ADDRESS
from treasury.errors import InvalidInput, TreasuryError

if TYPE_CHECKING:
    from ape.api import ProviderAPI

    from treasury.treasury import Treasury

SHEET_FORMAT = 1
# The markers around the facts in the Markdown sheet and the PDF's keywords: what `--check` reads back.
FACTS_BEGIN = "<!-- setup-sheet facts: keccak-256 of the JSON below, as written -->"
FACTS_END = "<!-- end of setup-sheet facts -->"
CONTEXT_BEGIN = "<!-- setup-sheet context: what the text above shows beside the facts (not checksummed) -->"
CONTEXT_END = "<!-- end of setup-sheet context -->"
PDF_FACTS_PREFIX = "setup-sheet-facts:"
PDF_CONTEXT_PREFIX = "setup-sheet-context:"

_GET_THRESHOLD = function_signature_to_4byte_selector("getThreshold()")
_GET_OWNERS = function_signature_to_4byte_selector("getOwners()")
_GET_MODULES = function_signature_to_4byte_selector("getModulesPaginated(address,uint256)")
_NONCE = function_signature_to_4byte_selector("nonce()")
_VERSION = function_signature_to_4byte_selector("VERSION()")
_CREATE_PROXY = function_signature_to_4byte_selector("createProxyWithNonce(address,bytes,uint256)")
_SETUP_TYPES = ["address[]", "uint256", "address", "bytes", "address", "address", "uint256", "address"]
_PROXY_CREATION = keccak(text="ProxyCreation(address,address)")
_SENTINEL = "0x0000000000000000000000000000000000000001"
MODULE_PAGE = 100
MAX_MODULE_PAGES = 100  # 10,000 modules: past that the Safe is not one a sheet can describe
# Logs are read in chunks (nodes refuse wide ranges); a refused chunk is retried ten times smaller,
# down to one block, and the whole scan stops after MAX_LOG_REQUESTS requests (facts then incomplete).
LOG_CHUNK = 10_000
MAX_LOG_REQUESTS = 2_000
# The guard's setting events, by the keys they name (see the module docstring).
_GUARD_EVENTS = {
    "calls": ("AllowedCallSet(address,bytes4,bool)", "ArgumentRulesSet(address,bytes4,uint256[])"),
    "recipients": ("RecipientSet(address,bool)",),
    "guardians": ("GuardianSet(address,bool)",),
    "caps": ("CapSet(address,uint256,uint256,uint256,uint256)", "CapRemoved(address)", "NftSet(address,bool)",
             "TierSet(address,uint256,uint256)"),
    "typed_data": ("TypedDataAllowedSet(bytes32,bytes32,bool)",),
}
# EIP-3770 short names Safe{Wallet} uses in its URLs, for the chains it serves.
SAFE_WALLET_SHORT_NAMES = {1: "eth", 10: "oeth", 56: "bnb", 100: "gno", 137: "matic", 324: "zksync", 1101: "zkevm",
                           8453: "base", 42161: "arb1", 42220: "celo", 43114: "avax", 59144: "linea",
                           534352: "scr", 11155111: "sep", 84532: "basesep"}
MAX_AMOUNT = 2**256 - 1


class LogsUnavailable(TreasuryError):
    """The node would not give the logs a fact depends on (range refused, too many requests, no history)."""


@dataclass(frozen=True)
class SetupSheet:
    """One reading of the treasury's setup. `facts` is the checksummed part (see the module docstring)."""

    treasury: str
    facts: dict[str, Any]
    names: dict[str, str]  # address -> its name in the address book, or what known contract it is
    network: str  # ape's "ecosystem:network" the reading was made on
    block: int  # every read was made at this block
    nonce: int  # the Safe's nonce at `block`: shown, not checksummed
    generated_at: int  # unix seconds (the block's timestamp unless told)
    deployment: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()
    tokens: dict[str, tuple[str, int]] = field(default_factory=dict)  # token address -> (symbol, decimals)
    incomplete: tuple[str, ...] = ()  # why some facts could not be read: then no checksum

    @property
    def complete(self) -> bool:
        return not self.incomplete

    @property
    def checksum(self) -> str | None:
        """keccak-256 of the canonical facts; None when they are incomplete (nothing to vouch for)."""
        return facts_checksum(self.facts) if self.complete else None

    @property
    def safe(self) -> str:
        return self.facts["safe"]

    @property
    def chain_id(self) -> int:
        return self.facts["chain_id"]

    def name(self, address: str) -> str | None:
        return self.names.get(address)

    def label(self, address: str) -> str:
        """"name (0x...)" or the address alone."""
        name = self.names.get(address)
        return f"{name} ({address})" if name else address


def canonical_json(facts: Mapping[str, Any]) -> str:
    """The one text of `facts` the checksum is taken over: sorted keys, no spaces, ASCII."""
    return json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def facts_checksum(facts: Mapping[str, Any]) -> str:
    return "0x" + keccak(text=canonical_json(facts)).hex()


def eip681_uri(safe: str, chain_id: int) -> str:
    """What the QR code holds: the Safe's address on its chain (EIP-681), so a phone wallet reads both."""
    return f"ethereum:{safe}@{chain_id}"


def sheet_context(sheet: SetupSheet) -> dict[str, Any]:
    """Everything the rendered sheet shows that is not a fact: embedded so `--check` can re-render it."""
    return {"format": SHEET_FORMAT, "treasury": sheet.treasury, "names": sheet.names, "network": sheet.network,
            "block": sheet.block, "nonce": sheet.nonce, "generated_at": sheet.generated_at,
            "deployment": sheet.deployment, "notes": list(sheet.notes),
            "tokens": {token: [symbol, decimals] for token, (symbol, decimals) in sheet.tokens.items()},
            "incomplete": list(sheet.incomplete)}


def sheet_from_parts(facts: dict[str, Any], context: Mapping[str, Any]) -> SetupSheet:
    """The sheet a written file describes (its facts and context); refused in one line when malformed."""
    try:
        return SetupSheet(
            treasury=str(context["treasury"]), facts=facts, names=dict(context["names"]), network=str(context["network"]),
            block=int(context["block"]), nonce=int(context["nonce"]), generated_at=int(context["generated_at"]),
            deployment=context["deployment"], notes=tuple(context["notes"]),
            tokens={token: (str(symbol), int(decimals)) for token, (symbol, decimals) in context["tokens"].items()},
            incomplete=tuple(context["incomplete"]))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InvalidInput("the sheet's context block is malformed: the sheet was edited or cut") from None


# --- reading the chain, at one block ------------------------------------------------------------------


@dataclass(frozen=True)
class ChainReader:
    """eth_getCode / eth_getStorageAt / eth_call pinned to `block`, so every fact is of the same moment."""

    provider: ProviderAPI
    block: int

    def code(self, address: str, block: int | None = None) -> bytes:
        at = self.block if block is None else block
        return bytes(self.provider.web3.eth.get_code(address, block_identifier=at))

    def address_slot(self, address: str, slot: int) -> str:
        word = bytes(self.provider.web3.eth.get_storage_at(address, slot, block_identifier=self.block))
        return to_checksum_address(word[-20:])

    def call(self, to: str, data: bytes) -> bytes | None:
        """An eth_call's answer, or None when it reverts or answers nothing."""
        try:
            answer = bytes(self.provider.web3.eth.call({"to": to, "data": "0x" + data.hex()}, block_identifier=self.block))
        except Exception:  # noqa: BLE001 - a contract without the function: not that kind of contract
            return None
        return answer or None

    def text(self, to: str, data: bytes) -> str | None:
        answer = self.call(to, data)
        try:
            return None if answer is None else str(abi_decode(["string"], answer)[0])
        except Exception:  # noqa: BLE001 - not an ABI string
            return None

    def decoded(self, to: str, data: bytes, types: list[str]) -> tuple[Any, ...]:
        """A view's decoded answer; a revert or a short answer is an error (the caller knows the contract)."""
        answer = self.call(to, data)
        if answer is None:
            raise TreasuryError(f"{to} did not answer 0x{data[:4].hex()} at block {self.block}")
        return tuple(abi_decode(types, answer))


def read_setup(treasury: Treasury, *, now: int | None = None, manifest_dir: Path | None = None) -> SetupSheet:
    """The treasury's setup as the connected chain has it now (the treasury's chain, checked)."""
    from ape import chain

    treasury.owners()  # connects, and refuses another chain than the treasury's
    provider = chain.provider
    head = provider.web3.eth.get_block("latest")
    reader = ChainReader(provider, int(head["number"]))
    facts, notes, incomplete = onchain_facts(treasury, reader)
    deployment = find_deployment(reader, facts["safe"], facts["version"], manifest_dir, notes)
    if deployment is None:
        notes.append("the Safe's creation (factory, salt nonce) was found neither on chain nor in a deployment manifest")
    (nonce,) = reader.decoded(facts["safe"], _NONCE, ["uint256"])
    sheet = SetupSheet(
        treasury=treasury.name, facts=facts, names={}, network=f"{provider.network.ecosystem.name}:{provider.network.name}",
        block=reader.block, nonce=int(nonce), generated_at=int(head["timestamp"] if now is None else now),
        deployment=deployment, notes=tuple(notes), tokens=_tokens(treasury), incomplete=tuple(incomplete),
    )
    return replace(sheet, names=known_names(treasury, sheet))


def onchain_facts(treasury: Treasury, reader: ChainReader) -> tuple[dict[str, Any], list[str], list[str]]:
    """(the checksummed facts, notes, why the facts are incomplete if they are). Every value is read
    from the chain at `reader.block`; none from the config."""
    from treasury.chain.guard import GUARD_STORAGE_SLOT, MODULE_GUARD_STORAGE_SLOT
    from treasury.chain.handler import FALLBACK_HANDLER_STORAGE_SLOT

    safe = treasury.safe
    version = reader.text(safe, _VERSION) or "unknown"
    guard = reader.address_slot(safe, GUARD_STORAGE_SLOT)
    (owners,) = reader.decoded(safe, _GET_OWNERS, ["address[]"])
    (threshold,) = reader.decoded(safe, _GET_THRESHOLD, ["uint256"])
    notes: list[str] = []
    incomplete: list[str] = []
    facts: dict[str, Any] = {
        "format": SHEET_FORMAT,
        "chain_id": int(reader.provider.chain_id),
        "safe": safe,
        "version": version,
        "singleton": reader.address_slot(safe, 0),
        "owners": [owner_fact(reader, to_checksum_address(owner)) for owner in owners],
        "threshold": int(threshold),
        "modules": safe_modules(reader, safe),
        "fallback_handler": reader.address_slot(safe, FALLBACK_HANDLER_STORAGE_SLOT),
        "guard": guard,
        "guard_settings": None if guard == ZERO_ADDRESS else guard_settings(treasury, reader, guard, notes, incomplete),
    }
    if version == "1.5.0":
        facts["module_guard"] = reader.address_slot(safe, MODULE_GUARD_STORAGE_SLOT)
    return facts, notes, incomplete


def safe_modules(reader: ChainReader, safe: str) -> list[str]:
    """Every enabled module, page by page (Treasury.modules reads only the first page of 100)."""
    found: list[str] = []
    start = _SENTINEL
    for _page in range(MAX_MODULE_PAGES):
        data = _GET_MODULES + abi_encode(["address", "uint256"], [start, MODULE_PAGE])
        page, following = reader.decoded(safe, data, ["address[]", "address"])
        found += [to_checksum_address(module) for module in page]
        if not page or to_checksum_address(following) in (_SENTINEL, ZERO_ADDRESS):
            return found
        # `start` is exclusive; 1.3.0 answers the next module as `next`, 1.4.1 the last one returned:
        # continuing after the last one returned is right for both.
        start = found[-1]
    raise TreasuryError(f"the Safe lists more than {MODULE_PAGE * MAX_MODULE_PAGES} modules: not a setup a sheet can hold")


def owner_fact(reader: ChainReader, owner: str) -> dict[str, Any]:
    """An owner and its kind of key: "key" (no code), "safe" (answers getOwners/getThreshold, with
    its own owners, who sign for it) or "contract" (some other EIP-1271 signer)."""
    if not reader.code(owner):
        return {"address": owner, "kind": "key"}
    threshold = reader.call(owner, _GET_THRESHOLD)
    inner = reader.call(owner, _GET_OWNERS)
    if threshold is None or inner is None:
        return {"address": owner, "kind": "contract"}
    try:
        (addresses,) = abi_decode(["address[]"], inner)
        (count,) = abi_decode(["uint256"], threshold)
    except Exception:  # noqa: BLE001 - a contract that answers with something else is "some contract"
        return {"address": owner, "kind": "contract"}
    return {"address": owner, "kind": "safe", "owners": [to_checksum_address(a) for a in addresses],
            "threshold": int(count), "version": reader.text(owner, _VERSION) or "unknown"}


def owner_kind_text(fact: Mapping[str, Any]) -> str:
    if fact["kind"] == "safe":
        return f"Safe {fact['threshold']}-of-{len(fact['owners'])} (v{fact['version']})"
    return {"key": "key", "contract": "contract"}.get(fact["kind"], str(fact["kind"]))


class _GuardViews:
    """The guard's views, ABI-encoded by hand so they can be pinned to the reader's block."""

    def __init__(self, reader: ChainReader, guard: str) -> None:
        from treasury.chain.guard_abi import guard_contract_type

        self.reader, self.guard = reader, guard
        self.methods = {m.name: m for m in guard_contract_type().view_methods}

    def __call__(self, name: str, *args: Any) -> Any:
        method = self.methods[name]
        types = [i.canonical_type for i in method.inputs]
        values = [bytes.fromhex(a[2:]) if t.startswith("bytes") and isinstance(a, str) else a for t, a in zip(types, args, strict=True)]
        data = function_signature_to_4byte_selector(method.selector) + abi_encode(types, values)
        answer = self.reader.decoded(self.guard, data, [o.canonical_type for o in method.outputs])
        return answer[0] if len(answer) == 1 else answer


def guard_settings(treasury: Treasury, reader: ChainReader, guard: str, notes: list[str],
                   incomplete: list[str]) -> dict[str, Any]:
    """Every setting the installed guard holds at the reader's block, from its own views (keys: its events and the config)."""
    view = _GuardViews(reader, guard)
    try:
        bound = to_checksum_address(view("SAFE"))
    except TreasuryError:  # not a TreasuryGuard: say so rather than guess its settings
        notes.append(f"the guard {guard} is not a TreasuryGuard (no SAFE() view): its settings are not listed")
        return {"kind": "unknown"}
    keys = _config_keys(treasury)
    try:
        _merge(keys, _event_keys(reader, guard))
    except LogsUnavailable as error:
        incomplete.append(f"the guard's events could not be read ({error}): its allowlists may hold entries the config "
                          "does not name")
    return {
        "kind": "TreasuryGuard",
        "safe": bound,
        "multisend_call_only": to_checksum_address(view("MULTISEND_CALL_ONLY")),
        "delay": int(view("delay")),
        "window": int(view("window")),
        "cancel_threshold": int(view("cancelThreshold")),
        "allow_refunds": bool(view("allowRefunds")),
        "max_amount": str(int(view("MAX_AMOUNT"))),  # a cap's "no limit" (e.g. never delayed for size)
        "calls": _calls(view, keys["calls"]),
        "recipients": sorted(a for a in keys["recipients"] if view("isRecipient", a)),
        "guardians": sorted(a for a in keys["guardians"] if view("isGuardian", a)),
        "caps": [cap for token in sorted(keys["caps"]) if (cap := _cap(view, token)) is not None],
        "typed_data": [{"domain_separator": d, "type_hash": t} for d, t in sorted(keys["typed_data"])
                       if view("isTypedDataAllowed", d, t)],
    }


def _calls(view: _GuardViews, keys: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    found = []
    for target, selector in sorted(keys):
        if view("isAllowedCall", target, selector):
            rules = [str(int(word)) for word in view("argumentRules", target, selector)]
            found.append({"target": target, "selector": selector, "argument_rules": rules})
    return found


def _cap(view: _GuardViews, token: str) -> dict[str, Any] | None:
    amount, period, per_tx, delay_above = (int(v) for v in view("capConfig", token))
    if not (amount or period):
        return None
    tier_amount, tier_signers = (int(v) for v in view("tierConfig", token))
    # Amounts as decimal strings: JSON readers that use doubles would round a uint256.
    return {"token": token, "amount": str(amount), "period": period, "max_per_tx": str(per_tx),
            "delay_above": str(delay_above), "nft": bool(view("isNft", token)),
            "tier_amount": str(tier_amount), "tier_signers": tier_signers}


def _config_keys(treasury: Treasury) -> dict[str, set]:
    from treasury.policy.model import NATIVE

    policy = treasury.policy
    return {
        "calls": {(call.target, "0x" + call.selector.hex()) for call in policy.calls},
        "recipients": set(policy.recipients),
        "guardians": set(policy.guardians),
        "caps": {cap.token for cap in policy.caps} | {NATIVE} | {t.address for t in treasury.book.tokens.values()},
        "typed_data": set(),
    }


def _event_keys(reader: ChainReader, guard: str) -> dict[str, set]:
    """The keys every setting event of the guard ever named: its whole life, from the block its code appeared."""
    topics = {"0x" + keccak(text=signature).hex(): kind for kind, signatures in _GUARD_EVENTS.items()
              for signature in signatures}
    logs = scan_logs(reader, {"address": guard, "topics": [list(topics)]}, code_since(reader, guard))
    keys: dict[str, set] = {kind: set() for kind in _GUARD_EVENTS}
    for log in logs:
        words = [bytes(topic) for topic in log["topics"]]
        kind = topics.get("0x" + words[0].hex())
        if kind is None or len(words) < 2:
            continue
        if kind == "calls" and len(words) >= 3:
            keys[kind].add((to_checksum_address(words[1][-20:]), "0x" + words[2][:4].hex()))
        elif kind == "typed_data" and len(words) >= 3:
            keys[kind].add(("0x" + words[1].hex(), "0x" + words[2].hex()))
        elif kind in ("recipients", "guardians", "caps"):
            keys[kind].add(to_checksum_address(words[1][-20:]))
    return keys


def _merge(into: dict[str, set], extra: Mapping[str, set]) -> None:
    for kind, values in extra.items():
        into.setdefault(kind, set()).update(values)


def code_since(reader: ChainReader, address: str) -> int:
    """The first block at which `address` has code, by bisection over eth_getCode (log2(head) reads).

    A node keeps state only so far back (a full node prunes it; anvil drops old states in a long
    session): a block it cannot read is taken as older than the creation when the answer lies in the
    readable range, and LogsUnavailable when the block just before the answer cannot be read."""
    try:
        if not reader.code(address):
            raise LogsUnavailable(f"{address} has no code at block {reader.block}")
    except LogsUnavailable:
        raise
    except Exception as error:  # noqa: BLE001 - the node's refusal, in one line
        raise LogsUnavailable(f"the node did not say when {address} was created: {type(error).__name__}") from None
    low, high = 0, reader.block  # code at `high`; none (or no state) before `low`
    unreadable_below = False  # whether block low - 1 could not be read (rather than read without code)
    while low < high:
        middle = (low + high) // 2
        try:
            has_code = bool(reader.code(address, middle))
        except Exception:  # noqa: BLE001 - no state kept that far back: the creation is later, or unknowable
            low, unreadable_below = middle + 1, True
            continue
        if has_code:
            high = middle
        else:
            low, unreadable_below = middle + 1, False
    if unreadable_below:
        raise LogsUnavailable(f"the node keeps no state old enough to say when {address} was created")
    return low


def scan_logs(reader: ChainReader, query: Mapping[str, Any], start: int) -> list[Any]:
    """The logs matching `query` from `start` to the reader's block, LOG_CHUNK blocks at a time; a refused
    chunk is retried ten times smaller down to one block. Too many requests or a refused single block:
    LogsUnavailable."""
    found: list[Any] = []
    block, chunk, requests = start, LOG_CHUNK, 0
    while block <= reader.block:
        last = min(reader.block, block + chunk - 1)
        if requests >= MAX_LOG_REQUESTS:
            raise LogsUnavailable(f"more than {MAX_LOG_REQUESTS} log requests from block {start}")
        requests += 1
        try:
            found += reader.provider.web3.eth.get_logs({**query, "fromBlock": block, "toBlock": last})
        except Exception as error:  # noqa: BLE001 - a refused range: smaller ranges, or give up in one line
            if chunk == 1:
                raise LogsUnavailable(f"the node refused eth_getLogs at block {block}: {type(error).__name__}") from None
            chunk = max(1, chunk // 10)
            continue
        block = last + 1
    return found


# --- the deployment (history, outside the checksum) ---------------------------------------------


def find_deployment(reader: ChainReader, safe: str, version: str, manifest_dir: Path | None,
                    notes: list[str]) -> dict[str, Any] | None:
    """How the Safe was created: from its creation transaction on chain, else from the deployment manifest."""
    manifest = _creation_in_manifest(reader.provider, safe, manifest_dir) if manifest_dir is not None else None
    try:
        found = _creation_on_chain(reader, safe, version, _creation_block(reader, safe, manifest))
    except LogsUnavailable as error:
        notes.append(f"the Safe's creation could not be read on chain ({error})")
        found = None
    found = found or manifest
    if found is not None:
        found.update(_infrastructure(reader, found.get("singleton"), version))
    return found


def _creation_block(reader: ChainReader, safe: str, manifest: Mapping[str, Any] | None) -> int:
    """The block the Safe was created in: the manifest's creation transaction when it names one, else bisection."""
    transaction = (manifest or {}).get("transaction")
    if transaction:
        try:
            receipt = reader.provider.web3.eth.get_transaction_receipt(transaction)
            if receipt is not None and int(receipt["blockNumber"]) <= reader.block:
                return int(receipt["blockNumber"])
        except Exception:  # noqa: BLE001 - an unknown transaction (another chain's manifest): bisect instead
            pass
    return code_since(reader, safe)


def _creation_on_chain(reader: ChainReader, safe: str, version: str, block: int) -> dict[str, Any] | None:
    """The ProxyCreation event for `safe` in its creation block and the createProxyWithNonce call that
    emitted it, checked by recomputing the CREATE2 address from the decoded (singleton, initializer, salt nonce).
    1.4.1 and 1.5.0 index the proxy, 1.3.0 carries it in the data: any factory's event is read and matched."""
    web3 = reader.provider.web3
    query = {"topics": [["0x" + _PROXY_CREATION.hex()]]}
    logs = [log for log in scan_logs(replace(reader, block=block), query, block) if _proxy_of(log) == safe]
    if not logs:
        return None
    log = logs[0]
    factory = to_checksum_address(log["address"])
    found: dict[str, Any] = {"source": "creation transaction on chain", "factory": factory,
                             "transaction": "0x" + bytes(log["transactionHash"]).hex(), "block": int(log["blockNumber"])}
    tx = web3.eth.get_transaction(log["transactionHash"])
    data = bytes(tx["input"])
    if tx.get("to") and to_checksum_address(tx["to"]) == factory and data[:4] == _CREATE_PROXY:
        singleton, initializer, salt_nonce = abi_decode(["address", "bytes", "uint256"], data[4:])
        found.update(_decoded_creation(safe, version, factory, to_checksum_address(singleton), bytes(initializer), int(salt_nonce)))
    else:
        found["note"] = "created through another contract: the salt nonce is not decoded"
    return found


def _proxy_of(log: Any) -> str | None:
    topics = log["topics"]
    word = bytes(topics[1]) if len(topics) > 1 else bytes(log["data"])[:32]
    return to_checksum_address(word[-20:]) if len(word) >= 20 else None


def _decoded_creation(safe: str, version: str, factory: str, singleton: str, initializer: bytes, salt_nonce: int) -> dict[str, Any]:
    from treasury.chain.artifacts import create2_address, proxy_creation_code

    salt = keccak(keccak(initializer) + salt_nonce.to_bytes(32, "big"))
    found: dict[str, Any] = {"singleton": singleton, "salt_nonce": str(salt_nonce), "salt": "0x" + salt.hex(),
                             "initializer_hash": "0x" + keccak(initializer).hex()}
    try:
        init_code = proxy_creation_code(version) + bytes(12) + bytes.fromhex(singleton[2:])
        found["address_verified"] = create2_address(factory, salt, init_code) == safe
    except Exception:  # noqa: BLE001 - no proxy artifact for this version here: shown unverified
        found["address_verified"] = False
    if initializer[:4] == function_signature_to_4byte_selector(
            "setup(address[],uint256,address,bytes,address,address,uint256,address)"):
        owners, threshold, _to, _data, handler, *_rest = abi_decode(_SETUP_TYPES, initializer[4:])
        found.update({"initial_owners": [to_checksum_address(o) for o in owners], "initial_threshold": int(threshold),
                      "initial_fallback_handler": to_checksum_address(handler)})
    return found


def _creation_in_manifest(provider: ProviderAPI, safe: str, manifest_dir: Path) -> dict[str, Any] | None:
    from treasury.chain.manifest import load_manifest

    try:
        entry = load_manifest(manifest_dir, provider).get("safes", {}).get(safe)
    except (OSError, ValueError):
        return None
    if not entry:
        return None
    keys = ("factory", "singleton", "salt_nonce", "transaction")
    found = {key: entry[key] for key in keys if entry.get(key) is not None}
    found["salt_nonce"] = str(found.get("salt_nonce", "unknown"))
    return {"source": f"deployment manifest {Path(manifest_dir) / f'{provider.chain_id}.json'}", **found}


def _infrastructure(reader: ChainReader, singleton: str | None, version: str) -> dict[str, Any]:
    """Whether the singleton is the canonical one (deployed with salt zero through the version's
    deterministic factory) and its code is the one safe-deployments publishes."""
    from treasury.chain.artifacts import safe_contract

    if singleton is None:
        return {}
    for role in ("safe", "safe_l2"):
        try:
            contract = safe_contract(version, role)
        except Exception:  # noqa: BLE001 - artifacts absent (no node_modules): nothing to compare with
            return {}
        if contract.canonical_address == singleton:
            code_hash = "0x" + keccak(reader.code(singleton)).hex()
            return {"singleton_contract": f"Safe {version} {contract.name}",
                    "singleton_deployer": contract.deployer, "singleton_salt": "0x" + bytes(32).hex(),
                    "singleton_code_matches": code_hash == contract.canonical_code_hash}
    return {"singleton_contract": "not a canonical Safe singleton"}


# --- names (off chain: shown beside the facts, never checksummed) ---------------------------------


def _tokens(treasury: Treasury) -> dict[str, tuple[str, int]]:
    return {token.address: (token.symbol, token.decimals) for token in treasury.book.tokens.values()}


def facts_addresses(facts: Mapping[str, Any]) -> set[str]:
    """Every address the facts mention."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
            found.add(value)
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(facts)
    return found


def known_names(treasury: Treasury, sheet: SetupSheet) -> dict[str, str]:
    """Address book names, and what well-known contract an address is (Safe's, ours)."""
    from treasury.chain.handler import classify_handler

    book = treasury.addresses
    addresses = facts_addresses(sheet.facts) | facts_addresses(sheet.deployment or {})
    names: dict[str, str] = {}
    contracts = _known_contracts()
    for address in sorted(addresses):
        name = book.name_of(address) or contracts.get(address)
        if name is None and address == sheet.facts.get("fallback_handler"):
            info = classify_handler(address)
            name = None if info.kind == "unknown" else info.name
        if address == sheet.facts.get("guard") and name is None:
            name = "TreasuryGuard" if (sheet.facts.get("guard_settings") or {}).get("kind") == "TreasuryGuard" else None
        if address == ZERO_ADDRESS:
            name = "none / native currency"
        if name:
            names[address] = name
    names[sheet.safe] = treasury.name if book.name_of(sheet.safe) is None else str(book.name_of(sheet.safe))
    return names


def _known_contracts() -> dict[str, str]:
    from treasury.chain.artifacts import ROLES, SUPPORTED_VERSIONS, canonical_address

    known: dict[str, str] = {}
    for version in SUPPORTED_VERSIONS:
        for role in ROLES:
            try:
                known.setdefault(canonical_address(version, role), f"Safe {version} {role.replace('_', ' ')}")
            except Exception:  # noqa: BLE001 - safe-deployments absent or lacks the role: the address stays unnamed
                continue
    return known


# --- checking a sheet -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SheetCheck:
    """`--check`: whether a written sheet still describes the chain."""

    written: str | None  # the checksum the sheet carries (None: its facts were incomplete)
    current: str | None  # the checksum of the chain's facts now (None: they cannot all be read now)
    changes: tuple[str, ...]
    incomplete: tuple[str, ...] = ()  # why neither side can be vouched for: never "current" then

    @property
    def is_current(self) -> bool:
        return not self.incomplete and self.written is not None and self.written == self.current


def parse_markdown(text: str) -> SetupSheet:
    """The sheet a Markdown file describes (facts and context), its facts checked against its printed
    checksum; refused in one line when absent or edited. The renderer's `read_markdown` also compares
    every visible line with a re-rendering: use that to check a file."""
    import re

    body = _between(text, FACTS_BEGIN, FACTS_END, "facts")
    sheet = sheet_from_parts(_load_facts(body), _load_json(_between(text, CONTEXT_BEGIN, CONTEXT_END, "context")))
    if canonical_json(sheet.facts) != body:
        raise InvalidInput("the sheet's facts are not in canonical form: the sheet was edited")
    printed = re.search(r"Checksum \(keccak-256\): `(0x[0-9a-f]{64})`", text)
    if sheet.complete and printed is None:
        raise InvalidInput("this is not a setup sheet: its checksum line is missing")
    if printed is not None and printed.group(1) != facts_checksum(sheet.facts):
        raise InvalidInput(f"the sheet's facts do not hash to its printed checksum {printed.group(1)}: the sheet was edited")
    return sheet


def parse_pdf(data: bytes) -> SetupSheet:
    """The sheet a PDF describes, from its keywords (base64 of the facts' canonical JSON and of the
    context); the renderer's `read_pdf` also compares the pages with a re-rendering."""
    import base64
    import binascii
    import re

    def keyword(prefix: str) -> str:
        match = re.search(rb"/Keywords \(.*?" + re.escape(prefix.encode()) + rb"([A-Za-z0-9+/=]+)", data)
        if match is None:
            raise InvalidInput("this PDF is not a setup sheet: its facts are missing")
        try:
            return base64.b64decode(match.group(1), validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidInput("the PDF's facts are not readable: the sheet was edited or cut") from None

    body = keyword(PDF_FACTS_PREFIX)
    sheet = sheet_from_parts(_load_facts(body), _load_json(keyword(PDF_CONTEXT_PREFIX)))
    if canonical_json(sheet.facts) != body:
        raise InvalidInput("the PDF's facts are not in canonical form: the sheet was edited")
    return sheet


def _between(text: str, begin: str, end: str, what: str) -> str:
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise InvalidInput(f"this is not a setup sheet: its {what} block is missing")
    block = text[start + len(begin):stop].strip()
    return block.removeprefix("```json").removesuffix("```").strip()


def _load_json(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise InvalidInput("the sheet's facts are not JSON: the sheet was edited or cut") from None


def _load_facts(body: str) -> dict[str, Any]:
    facts = _load_json(body)
    if not isinstance(facts, dict) or facts.get("format") != SHEET_FORMAT:
        raise InvalidInput(f"the sheet's facts are not setup-sheet format {SHEET_FORMAT}")
    return facts


def check_sheet(written: SetupSheet, now: SetupSheet) -> SheetCheck:
    """What changed between a written sheet and a reading now. Incomplete facts on either side are never
    "current": a checksum over a partial allowlist would vouch for entries nobody read."""
    facts = written.facts
    if facts.get("safe") != now.safe or facts.get("chain_id") != now.chain_id:
        raise TreasuryError(f"the sheet describes Safe {facts.get('safe')} on chain {facts.get('chain_id')}, "
                            f"not {now.safe} on chain {now.chain_id}")
    incomplete = tuple(f"the sheet: {reason}" for reason in written.incomplete)
    incomplete += tuple(f"the chain now: {reason}" for reason in now.incomplete)
    return SheetCheck(written.checksum, now.checksum, tuple(fact_changes(facts, now.facts, now.label)), incomplete)


def fact_changes(old: Mapping[str, Any], new: Mapping[str, Any], label: Callable[[str], str] = str) -> list[str]:
    """What differs between two readings, one line each, addresses labelled."""
    lines: list[str] = []
    _diff("", old, new, label, lines)
    return lines


def _diff(path: str, old: Any, new: Any, label: Callable[[str], str], lines: list[str]) -> None:
    if old == new:
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new)):
            _diff(f"{path}.{key}" if path else str(key), old.get(key), new.get(key), label, lines)
        return
    if isinstance(old, list) and isinstance(new, list):
        before, after = [_item_key(i) for i in old], [_item_key(i) for i in new]
        old_by, new_by = dict(zip(before, old, strict=True)), dict(zip(after, new, strict=True))
        lines += [f"{path}: removed {_show(key, label)}" for key in before if key not in new_by]
        lines += [f"{path}: added {_show(key, label)}" for key in after if key not in old_by]
        kept = [key for key in before if key in new_by]
        if kept != [key for key in after if key in old_by]:
            lines.append(f"{path}: same entries, new order")
        for key in kept:
            _diff(f"{path}[{_show(key, label)}]", old_by[key], new_by[key], label, lines)
        return
    lines.append(f"{path}: {_show(old, label)} -> {_show(new, label)}")


def _item_key(item: Any) -> str:
    """What identifies a list entry: an owner or cap by its address, a call by target and selector."""
    if isinstance(item, Mapping):
        for keys in (("address",), ("token",), ("target", "selector"), ("domain_separator", "type_hash")):
            if all(k in item for k in keys):
                return " ".join(str(item[k]) for k in keys)
        return canonical_json(item)
    return str(item)


def _show(value: Any, label: Callable[[str], str]) -> str:
    if value is None:
        return "none"
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return label(value)
    if isinstance(value, str) and " " in value and value.split(" ")[0].startswith("0x"):
        first, _, rest = value.partition(" ")
        return f"{label(first)} {rest}"
    if isinstance(value, (dict, list)):
        return canonical_json(value) if isinstance(value, dict) else json.dumps(value)
    return str(value)
