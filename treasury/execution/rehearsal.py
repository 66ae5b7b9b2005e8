"""Rehearsal: run a proposal on a throw-away copy of the chain before it runs for real.

On a live network the copy is an anvil fork of the current block (ape-foundry's `<network>-fork`,
upstream = the live provider); on a local chain or a fork it is a snapshot that is reverted after.
The guard is active there exactly as it is on chain, so the report says what would happen: success
or the revert reason in words, balance changes of the Safe and of every recipient, events and gas.
Signatures still missing are filled on the copy only, by approving the safeTxHash from each missing
owner's address (impersonation), which a fork allows and the real chain never does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from eth_utils import keccak, to_checksum_address
from safe_eth.safe.safe_signature import SafeSignature, SafeSignatureApprovedHash
from safe_eth.safe.safe_tx import SafeTx

from treasury.addresses import ZERO_ADDRESS
from treasury.amounts import TokenBook
from treasury.chain.localnode import free_local_url
from treasury.errors import TreasuryError, one_line, worded_safe_codes
from treasury.types import RehearsalOutcome

if TYPE_CHECKING:
    from ape.api import AccountAPI

TRANSFER = keccak(text="Transfer(address,address,uint256)")
APPROVAL = keccak(text="Approval(address,address,uint256)")
FUNDING = 10**18  # what an impersonated account gets on the copy to pay for gas
FORK_START_ATTEMPTS = 2  # ports tried for the fork's anvil


class RehearsalUnavailable(TreasuryError):
    """The connected network cannot be forked here (no `<network>-fork` network, or no foundry)."""


@dataclass(frozen=True)
class Rehearsal:
    """What to rehearse, read from the real chain and the store before the copy is made."""

    safe_tx: SafeTx
    version: str
    signatures: tuple[SafeSignature, ...]
    owners: tuple[str, ...]
    threshold: int
    safe_nonce: int
    executor: str
    block_number: int
    block_hash: str
    book: TokenBook
    guard: str | None
    fork: bool  # True: anvil fork of the live network; False: snapshot of this (local) chain


@dataclass(frozen=True)
class BalanceChange:
    holder: str
    role: str  # "Safe" or "recipient"
    token: str  # token address; the zero address for the native currency
    before: int
    after: int

    @property
    def delta(self) -> int:
        return self.after - self.before

    def describe(self, book: TokenBook) -> str:
        sign = "+" if self.delta > 0 else "-"
        return f"{sign}{book.format(self.token, abs(self.delta))}"


@dataclass(frozen=True)
class RehearsalReport:
    proposal_id: str
    safe_tx_hash: str
    network: str
    block_number: int
    block_hash: str
    success: bool
    reason: str
    gas_used: int | None
    executor: str
    filled: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    balance_changes: tuple[BalanceChange, ...] = ()
    events: tuple[str, ...] = field(default=())

    @property
    def outcome(self) -> RehearsalOutcome:
        return "succeeds" if self.success else "fails"


class _ReportContext(TypedDict):
    """The fields of a RehearsalReport that every outcome shares."""

    proposal_id: str
    safe_tx_hash: str
    network: str
    block_number: int
    block_hash: str
    executor: str
    notes: NotRequired[tuple[str, ...]]


def run_rehearsal(rehearsal: Rehearsal, proposal_id: str) -> RehearsalReport:
    """Make the copy, run the proposal there, report; the copy is gone afterwards.

    ape's "Confirmed 0x..." lines for the copy's transactions are silenced: nobody should read them
    as something sent to the real chain.
    """
    from ape.logging import logger

    with logger.at_level("WARNING"), _copy_of_chain(rehearsal) as network:
        return _rehearse(rehearsal, proposal_id, network)


@contextmanager
def _copy_of_chain(rehearsal: Rehearsal) -> Iterator[str]:
    from ape import chain

    name = chain.provider.network.choice
    if not rehearsal.fork:
        with chain.isolate():
            yield f"{name} (snapshot, reverted after)"
        return
    context, provider = _start_fork(rehearsal, name)
    try:
        yield f"{provider.network.choice} of block {rehearsal.block_number}"
    finally:
        context.__exit__(None, None, None)


def _start_fork(rehearsal: Rehearsal, name: str) -> tuple[Any, Any]:
    """An anvil fork of the rehearsed block, started on a port the kernel chose (see treasury.chain.localnode).

    A second port is tried if anvil did not come up on the first (taken between the kernel's pick
    and anvil's bind). The fork must be our own process and hold the rehearsed block, so that a
    passing rehearsal can never come from some other node.
    """
    from ape import chain, networks
    from ape.exceptions import ApeException, SubprocessError

    settings = _configured_fork_settings(chain.provider.network)
    for attempt in range(1, FORK_START_ATTEMPTS + 1):
        try:
            context = networks.fork(provider_name="foundry", block_number=rehearsal.block_number,
                                    provider_settings={**settings, "host": free_local_url()})
            provider = context.__enter__()
            break
        except SubprocessError as error:
            if attempt == FORK_START_ATTEMPTS:
                raise RehearsalUnavailable(f"cannot fork {name} for the rehearsal: anvil did not start on "
                                           f"{attempt} ports tried ({one_line(error)})") from None
        except ApeException as error:
            raise RehearsalUnavailable(f"cannot fork {name} for the rehearsal: {one_line(error)} "
                                       "(configure the network in ape-config.yaml, or pass --skip-rehearsal)") from None
    try:
        _check_fork(provider, rehearsal)
    except BaseException:
        context.__exit__(None, None, None)
        raise
    return context, provider


def _check_fork(provider: Any, rehearsal: Rehearsal) -> None:
    """The fork runs in the process we started and holds the block read from the real chain."""
    if provider.process is None:
        raise RehearsalUnavailable(f"another node answered at {provider.uri}; the rehearsal did not run")
    forked = provider.web3.eth.get_block(rehearsal.block_number)["hash"].to_0x_hex()
    if forked.lower() != rehearsal.block_hash.lower():
        raise RehearsalUnavailable(f"the fork's block {rehearsal.block_number} is {forked}, not {rehearsal.block_hash} "
                                   "as read from the network; the rehearsal did not run")


def _configured_fork_settings(network) -> dict:
    """ape-config.yaml's `foundry: fork: <ecosystem>: <network>:` settings (e.g. evm_version).

    `networks.fork` passes its own fork settings (upstream, block) as provider settings, which
    replace the configured ones; they are carried over here so the configuration still applies.
    """
    from ape import config

    configured = config.get_config("foundry").get("fork") or {}
    section = (configured.get(network.ecosystem.name) or {}).get(network.name) or {}
    if hasattr(section, "model_dump"):
        section = section.model_dump(exclude_none=True)
    kept = {k: v for k, v in dict(section).items() if k not in ("upstream_provider", "block_number") and v is not None}
    return {"fork": {network.ecosystem.name: {network.name: kept}}} if kept else {}


def _rehearse(rehearsal: Rehearsal, proposal_id: str, network: str) -> RehearsalReport:
    from treasury.chain.safe import safe_instance
    from treasury.decode.revert import explain_revert
    from treasury.execution.send import exec_arguments, plain_logs, safe_outcome, simulate

    safe_tx = rehearsal.safe_tx
    report: _ReportContext = dict(proposal_id=proposal_id, safe_tx_hash=safe_tx.safe_tx_hash.to_0x_hex(), network=network,
                                  block_number=rehearsal.block_number, block_hash=rehearsal.block_hash, executor=rehearsal.executor)
    notes: list[str] = []
    if safe_tx.safe_nonce < rehearsal.safe_nonce:
        reason = f"nonce {safe_tx.safe_nonce} was already used: the Safe is at nonce {rehearsal.safe_nonce}"
        return RehearsalReport(success=False, reason=reason, gas_used=None, **report)
    if safe_tx.safe_nonce > rehearsal.safe_nonce:
        _set_safe_nonce(safe_tx.safe_address, safe_tx.safe_nonce)
        notes.append(f"the Safe is at nonce {rehearsal.safe_nonce}: rehearsed as if the proposals before nonce "
                     f"{safe_tx.safe_nonce} had executed without changing anything else")
    report["notes"] = tuple(notes)
    signatures, filled = _fill_signatures(rehearsal)
    executor = _impersonate(rehearsal.executor)
    outcome = simulate(safe_tx, signatures, executor.address, rehearsal.version)
    if outcome.reverted:
        reason = explain_revert(outcome.revert_data, rehearsal.book) if outcome.revert_data else worded_safe_codes(outcome.message)
        return RehearsalReport(success=False, reason=reason, gas_used=None, filled=filled, **report)
    safe = safe_instance(safe_tx.safe_address, rehearsal.version)
    receipt = safe.execTransaction(*exec_arguments(safe_tx, signatures), sender=executor)
    logs = plain_logs(receipt.logs)
    success = bool(safe_outcome(logs, safe_tx.safe_address, safe_tx.safe_tx_hash))
    reason = "" if success else _inner_failure(safe_tx, receipt.block_number, rehearsal.book)
    return RehearsalReport(
        success=success, reason=reason, gas_used=int(receipt.gas_used), filled=filled,
        balance_changes=_balance_changes(rehearsal, logs, receipt.block_number),
        events=tuple(describe_log(log, rehearsal) for log in logs), **report,
    )


SAFE_NONCE_SLOT = 5  # storage slot of `nonce` in Safe 1.3.0 to 1.5.0


def _set_safe_nonce(safe: str, nonce: int) -> None:
    """On the copy only: move the Safe's nonce forward so a queued proposal can be rehearsed now."""
    from ape import chain

    chain.provider.set_storage(safe, SAFE_NONCE_SLOT, nonce.to_bytes(32, "big"))


def _fill_signatures(rehearsal: Rehearsal) -> tuple[list[SafeSignature], tuple[str, ...]]:
    """Up to the threshold: each missing owner approves the hash from its own (impersonated) address."""
    from treasury.chain.safe import safe_instance

    signatures = list(rehearsal.signatures)
    signed = {s.owner for s in signatures}
    missing = [owner for owner in rehearsal.owners if owner not in signed][: max(0, rehearsal.threshold - len(signatures))]
    safe_tx_hash = rehearsal.safe_tx.safe_tx_hash
    safe = safe_instance(rehearsal.safe_tx.safe_address, rehearsal.version)
    for owner in missing:
        safe.approveHash(safe_tx_hash, sender=_impersonate(owner))
        # safe-eth-py annotates safe_hash as str, but hands it to SafeSignature, which takes the hash's bytes.
        signatures.append(SafeSignatureApprovedHash.build_for_owner(owner, safe_tx_hash))  # type: ignore[arg-type]
    return signatures, tuple(missing)


def _impersonate(address: str) -> AccountAPI:
    """An account for `address` on the copy, funded for gas; the real chain never sees it."""
    from ape import accounts, chain

    account = accounts.test_accounts.impersonate_account(to_checksum_address(address))
    balance = chain.provider.get_balance(account.address)
    if balance < FUNDING:
        chain.provider.set_balance(account.address, balance + FUNDING)
    return account


def _inner_failure(safe_tx: SafeTx, block: int, book: TokenBook) -> str:
    """Why the Safe's inner call failed: replay it as an eth_call from the Safe before the block."""
    from ape import chain
    from web3.exceptions import ContractCustomError, ContractLogicError

    from treasury.decode.revert import explain_revert

    prefix = "the Safe ran the transaction but its call failed (ExecutionFailure)"
    if safe_tx.operation != 0:
        return prefix
    call = {"from": safe_tx.safe_address, "to": safe_tx.to, "value": safe_tx.value, "data": "0x" + bytes(safe_tx.data).hex()}
    try:
        chain.provider.web3.eth.call(call, block - 1)
    except (ContractCustomError, ContractLogicError) as error:
        data = error.data if isinstance(error.data, str) and error.data.startswith("0x") else ""
        return f"{prefix}: {explain_revert(data, book) if data else error.message}"
    return prefix


# --- balances -----------------------------------------------------------------------------------


def _balance_changes(rehearsal: Rehearsal, logs: Sequence[dict], block: int) -> tuple[BalanceChange, ...]:
    """Before (block - 1) and after (block) for the Safe and every recipient, in every token moved."""
    safe = rehearsal.safe_tx.safe_address
    holders: dict[str, str] = {safe: "Safe"}
    tokens = {ZERO_ADDRESS}
    for recipient, token in _recipients(rehearsal):
        holders.setdefault(recipient, "recipient")
        tokens.add(token)
    for log in logs:
        if _topic(log, 0) == TRANSFER and len(log["topics"]) == 3:  # ERC-20 (ERC-721 indexes the id too)
            tokens.add(to_checksum_address(log["address"]))
            for topic in log["topics"][1:3]:
                holders.setdefault(_address_topic(topic), "recipient")
    changes = []
    for holder, role in holders.items():
        for token in sorted(tokens):
            before, after = _balance(token, holder, block - 1), _balance(token, holder, block)
            if before != after:
                changes.append(BalanceChange(holder, role, token, before, after))
    return tuple(changes)


def _recipients(rehearsal: Rehearsal) -> Iterator[tuple[str, str]]:
    """(recipient, token) for native value and ERC-20 transfers the proposal makes, batches unwrapped."""
    from treasury.decode.calls import decode_safe_tx

    for call in decode_safe_tx(rehearsal.safe_tx, rehearsal.book).calls:
        data = bytes(call.data)
        if call.value:
            yield to_checksum_address(call.to), ZERO_ADDRESS
        if data[:4] == bytes.fromhex("a9059cbb") and len(data) >= 36:  # transfer(address,uint256)
            yield to_checksum_address(data[16:36]), to_checksum_address(call.to)
        elif data[:4] == bytes.fromhex("23b872dd") and len(data) >= 68:  # transferFrom(address,address,uint256)
            yield to_checksum_address(data[48:68]), to_checksum_address(call.to)


def _balance(token: str, holder: str, block: int) -> int:
    from ape import chain
    from eth_abi import encode

    web3 = chain.provider.web3
    if token == ZERO_ADDRESS:
        return int(web3.eth.get_balance(holder, block))
    data = "0x70a08231" + encode(["address"], [holder]).hex()  # balanceOf(address)
    raw = bytes(web3.eth.call({"to": token, "data": data}, block))
    return int.from_bytes(raw[:32], "big") if len(raw) >= 32 else 0


# --- events -------------------------------------------------------------------------------------


def describe_log(log: dict, rehearsal: Rehearsal) -> str:
    """One line per event: token movements in token terms, Safe and guard events by name."""
    emitter = to_checksum_address(log["address"])
    label = _label(emitter, rehearsal)
    topic0 = _topic(log, 0)
    if topic0 in (TRANSFER, APPROVAL) and len(log["topics"]) == 3:
        first, second = _address_topic(log["topics"][1]), _address_topic(log["topics"][2])
        amount = rehearsal.book.format(emitter, int.from_bytes(_bytes(log["data"])[:32], "big"))
        if topic0 == TRANSFER:
            return f"{label}: Transfer {amount} from {_label(first, rehearsal)} to {_label(second, rehearsal)}"
        return f"{label}: Approval of {amount} by {_label(first, rehearsal)} to {_label(second, rehearsal)}"
    event = _known_events(rehearsal.version).get(topic0)
    if event is None:
        return f"{label}: event {_hex(topic0)[:10]}…"
    return f"{label}: {event['name']}({_event_arguments(event, log, rehearsal)})"


def _event_arguments(event: dict, log: dict, rehearsal: Rehearsal) -> str:
    from eth_abi import decode

    indexed = [i for i in event["inputs"] if i.get("indexed")]
    plain = [i for i in event["inputs"] if not i.get("indexed")]
    try:
        values = dict(zip([i["name"] for i in plain], decode([i["type"] for i in plain], _bytes(log["data"])), strict=True))
        # Not strict: a log matched to an event by its topic0 may carry another number of topics (the
        # same signature indexed differently); the pairs both have are shown.
        for item, topic in zip(indexed, log["topics"][1:], strict=False):
            values[item["name"]] = decode([item["type"]], _bytes(topic))[0] if item["type"] in _STATIC else _bytes(topic)
    except Exception:  # noqa: BLE001 - an odd log is shown by name, never breaks the report
        return "…"
    shown = [i for i in event["inputs"] if i["name"] not in _REPEATS]
    return ", ".join(f"{i['name']}={_value(values.get(i['name']), i['type'], rehearsal)}" for i in shown)


# SafeMultiSigTransaction (L2 Safes) repeats the whole transaction: its call, gas fields and
# signatures are already in the proposal; the report keeps to, value and operation.
_REPEATS = {"data", "safeTxGas", "baseGas", "gasPrice", "gasToken", "refundReceiver", "signatures", "additionalInfo"}


_STATIC = {"address", "bool", "bytes32", "bytes4", "uint8", "uint256", "int256"}


def _value(value: Any, kind: str, rehearsal: Rehearsal) -> str:
    if kind == "address" and isinstance(value, str):
        return _label(to_checksum_address(value), rehearsal)
    if isinstance(value, bytes):
        text = "0x" + value.hex()
        return text if len(text) <= 66 else f"{text[:18]}… ({len(value)} bytes)"
    return str(value)


def _known_events(version: str) -> dict[bytes, dict]:
    """topic0 -> event ABI, for the Safe of this version and TreasuryGuard."""
    from treasury.chain.artifacts import contract_type
    from treasury.chain.guard_abi import guard_contract_type

    abis = [item.model_dump(by_alias=True) for item in guard_contract_type().events]
    for contract in ("safe", "safe_l2"):  # the L2 singleton adds SafeMultiSigTransaction
        abis += [item.model_dump(by_alias=True) for item in contract_type(contract, version).events]
    table = {}
    for abi in abis:
        signature = f"{abi['name']}({','.join(i['type'] for i in abi['inputs'])})"
        table[keccak(text=signature)] = abi
    return table


def _label(address: str, rehearsal: Rehearsal) -> str:
    if address == rehearsal.safe_tx.safe_address:
        return "Safe"
    if rehearsal.guard and address == rehearsal.guard:
        return "guard"
    token = rehearsal.book.by_address(address)
    return token.symbol if token is not None and not token.is_native else address


def _topic(log: dict, index: int) -> bytes:
    return _bytes(log["topics"][index]) if len(log["topics"]) > index else b""


def _address_topic(topic: Any) -> str:
    return to_checksum_address(_bytes(topic)[-20:])


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def _hex(value: bytes) -> str:
    return "0x" + value.hex()
