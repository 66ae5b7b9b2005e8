"""Shared fixtures and helpers of the TreasuryGuard suites (tests/test_guard_*.py).

A `GuardedSafe` is a 2-of-3 Safe of one version with a TreasuryGuard deployed and installed through
the toolkit (`deploy_guard`, `install_guard`) under a small, fixed policy (`standard_policy`):

- TOKEN: transfer / approve / transferFrom allowlisted; cap 1000 per day, 500 per transaction,
  anything above 100 in one transaction waits in the delay queue.
- native currency: cap 10 ETH per day, 5 per transaction, above 1 ETH delayed.
- EMPTY_TOKEN: like TOKEN but only transfer, and the Safe holds none of it (its transfers fail).
- STRAY_TOKEN: held by the Safe, in no allowlist at all.
- the ReentrantCallback's `callback(address)` is an allowlisted call.
- recipients: PAYEE and PAYEE2. ATTACKER is in no list.

Every attack is a raw `execTransaction` carrying valid signatures of a threshold of owners (we
assume the signers are compromised or the tooling is bypassed). `GuardedSafe.attack` first asks
the node (eth_call) for the revert data, then mines the very same transaction, requires it to
revert, checks that nothing moved (balances, Safe configuration, guard state) and returns the
name of the error that refused it, e.g. "RecipientNotAllowed" (a guard custom error) or "GS013"
(a Safe error string).

Failing transactions are sent with web3 rather than through ape: ape's foundry provider fetches
and prints a call trace for every revert, which costs over a second each.

The test modules import this file with `from guard_helpers import *` (pytest puts tests/ on
sys.path because tests/ is not a package).
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError

from treasury.addresses import SENTINEL_ADDRESS, ZERO_ADDRESS
from treasury.chain.artifacts import SUPPORTED_VERSIONS
from treasury.chain.guard import (
    GUARD_STORAGE_SLOT,
    MODULE_GUARD_STORAGE_SLOT,
    decode_guard_error,
    deploy_guard,
    install_guard,
    predict_verdict,
    schedule_intent,
)
from treasury.chain.safe import safe_instance, safe_nonce
from treasury.execution.send import execute_with_owners
from treasury.policy.model import NATIVE, AllowedCall, Policy, TokenCap
from treasury.proposal.multisend import Call, encode_batch, multisend_call_only
from treasury.proposal.safe_tx import build_safe_tx
from treasury.signatures import encode_signatures, sign_safe_tx

__all__ = [
    "VERSIONS", "UNIT", "HOUR", "DAY", "DELAY", "WINDOW", "PAYEE", "PAYEE2", "ATTACKER",
    "TRANSFER", "APPROVE", "TRANSFER_FROM", "FALLBACK_HANDLER_SLOT", "GUARD_STORAGE_SLOT",
    "MODULE_GUARD_STORAGE_SLOT", "SENTINEL_ADDRESS", "ZERO_ADDRESS", "NATIVE",
    "Call", "GuardedSafe", "standard_policy", "build_guarded_safe", "guarded", "relayer",
    "selector", "transfer", "approve", "transfer_from", "packed_entry", "multisend_calldata",
    "revert_name", "send_expecting_revert", "call_error", "wait_until", "pin_next_block", "storage_word",
    "head_timestamp", "module_salt", "view",
]

VERSIONS = SUPPORTED_VERSIONS
UNIT = 10**18
HOUR, DAY = 3600, 86400
DELAY, WINDOW = HOUR, DAY  # the guard's delay and execution window

PAYEE = to_checksum_address("0x" + "a1" * 20)
PAYEE2 = to_checksum_address("0x" + "a2" * 20)
ATTACKER = to_checksum_address("0x" + "ee" * 20)

# keccak256("fallback_manager.handler.address"), the same in Safe 1.3.0, 1.4.1 and 1.5.0
FALLBACK_HANDLER_SLOT = 0x6C9A6C4A39284E37ED1CF53D337577D14212A4870FB976A4366C693B939918D5
CONFIG_SLOTS = {
    "singleton (slot 0)": 0,
    "guard": GUARD_STORAGE_SLOT,
    "fallback handler": FALLBACK_HANDLER_SLOT,
    "module guard": MODULE_GUARD_STORAGE_SLOT,
}

ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string), how the Safe reports GS0xx codes


def selector(signature: str) -> bytes:
    return function_signature_to_4byte_selector(signature)


TRANSFER = selector("transfer(address,uint256)")
APPROVE = selector("approve(address,uint256)")
TRANSFER_FROM = selector("transferFrom(address,address,uint256)")
MULTI_SEND = selector("multiSend(bytes)")


# --- calldata -----------------------------------------------------------------------------------


def transfer(to: str, amount: int) -> bytes:
    return TRANSFER + encode(["address", "uint256"], [to, amount])


def approve(spender: str, amount: int) -> bytes:
    return APPROVE + encode(["address", "uint256"], [spender, amount])


def transfer_from(source: str, to: str, amount: int) -> bytes:
    return TRANSFER_FROM + encode(["address", "address", "uint256"], [source, to, amount])


def packed_entry(to: str, value: int = 0, data: bytes = b"", operation: int = 0, data_length: int | None = None) -> bytes:
    """One MultiSend entry: operation (1 byte) | to (20) | value (32) | data length (32) | data."""
    length = len(data) if data_length is None else data_length
    return bytes([operation]) + bytes.fromhex(to[2:]) + value.to_bytes(32, "big") + length.to_bytes(32, "big") + data


def multisend_calldata(packed: bytes, *, offset: int = 0x20, length: int | None = None, padding: bytes | None = None) -> bytes:
    """multiSend(bytes) calldata built by hand, so tests can break every part of the encoding."""
    length = len(packed) if length is None else length
    if padding is None:
        padding = b"\0" * (-len(packed) % 32)
    return MULTI_SEND + offset.to_bytes(32, "big") + length.to_bytes(32, "big") + packed + padding


# --- chain access -------------------------------------------------------------------------------


def _web3():
    from ape import chain

    return chain.provider.web3


def head_timestamp() -> int:
    from ape import chain

    return chain.blocks.head.timestamp


def wait_until(timestamp: int) -> None:
    """Mine a block at `timestamp`, so reads at "latest" see it; the next transaction lands one second
    later (tests/conftest.py pins the chain's clock), or at the time `pin_next_block` sets."""
    from ape import chain

    chain.pending_timestamp = timestamp
    chain.mine()


def pin_next_block(timestamp: int) -> None:
    """The next block gets exactly `timestamp`, and so does every eth_call at "pending" until it is
    mined (predict_verdict reads there): a verdict predicted now is for that very block."""
    from ape import chain

    chain.pending_timestamp = timestamp


def storage_word(address: str, slot: int) -> int:
    return int.from_bytes(bytes(_web3().eth.get_storage_at(address, slot)), "big")


def revert_name(data: Any) -> str:
    """The name of what a revert says: a guard error ("ExceedsBudget"), a Safe code ("GS013"),
    or "Reverted(0x...)" for anything else."""
    if isinstance(data, str):
        raw = bytes.fromhex(data[2:]) if data.startswith("0x") else b""
    else:
        raw = bytes(data or b"")
    if raw[:4] == ERROR_STRING:
        return decode(["string"], raw[4:])[0]
    name, _ = decode_guard_error(raw)
    return name if name != "Reverted" else f"Reverted(0x{raw.hex()})"


def call_error(sender: str, to: str, data: bytes, value: int = 0, block: str = "latest") -> str | None:
    """eth_call `data` from `sender` at `block`: None if it would succeed, else the revert's name."""
    try:
        _web3().eth.call({"from": sender, "to": to, "data": HexBytes(data), "value": value}, block)
    except ContractLogicError as error:
        return revert_name(error.data)
    return None


def send_expecting_revert(sender: str, to: str, data: bytes, value: int = 0, gas: int = 5_000_000, at: int | None = None) -> str:
    """Mine `data` from `sender` to `to`, require the transaction to revert; return the revert's name.

    The preview call runs at "pending", so at the very timestamp the transaction is mined at: the
    next second, or with `at` exactly `at` (a block is mined at `at` first, so reads at "latest"
    see that time too).
    """
    w3 = _web3()
    if at is not None:
        wait_until(at)
        pin_next_block(at)
    name = call_error(sender, to, data, value, block="pending")
    if name is None:
        pytest.fail(f"the transaction to {to} would succeed; expected it to be refused")
    if at is not None:
        pin_next_block(at)
    tx_hash = w3.eth.send_transaction({"from": sender, "to": to, "data": HexBytes(data), "value": value, "gas": gas})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt.status == 0, f"the call reverted but the mined transaction succeeded ({name})"
    return name


# --- the guarded Safe -----------------------------------------------------------------------------


@dataclass
class GuardedSafe:
    version: str
    address: str
    safe: Any  # ape contract instance with the Safe's ABI
    guard: Any  # ape contract instance of the TreasuryGuard
    policy: Policy
    token: Any
    empty_token: Any
    stray_token: Any
    callback: Any
    owners: Sequence[Any]  # all three owners
    relayer: Any  # sends the transactions; owns nothing the checks look at

    @property
    def signers(self) -> Sequence[Any]:
        """A threshold (two) of owners: what a compromised quorum would have."""
        return self.owners[:2]

    @property
    def multisend(self) -> str:
        return multisend_call_only(self.version)

    def batch(self, *calls: Call) -> tuple[str, bytes]:
        """(MultiSendCallOnly, multiSend calldata) for `calls`, as the toolkit encodes a batch."""
        return encode_batch(calls, self.version)

    def encode_safe(self, method: str, *args) -> bytes:
        """Calldata of a call on the Safe itself (owners, threshold, modules, guard, ...)."""
        return bytes(getattr(self.safe, method).encode_input(*args))

    def encode_guard(self, method: str, *args) -> bytes:
        return bytes(getattr(self.guard, method).encode_input(*args))

    # -- sending ---------------------------------------------------------------------------------

    def execute(self, to: str, value: int = 0, data: bytes = b"", operation: int = 0, *, at: int | None = None,
                **gas_fields):
        """A transaction the guard must accept, through the toolkit (ExecutionSuccess required);
        with `at`, mined at exactly that timestamp."""
        if at is not None:
            pin_next_block(at)
        return execute_with_owners(
            self.address, self.version, to, value, data, operation, signers=self.signers, sender=self.relayer, **gas_fields
        )

    def exec_calldata(self, to: str, value: int = 0, data: bytes = b"", operation: int = 0, *,
                      signers: Sequence[Any] | None = None, nonce: int | None = None, **gas_fields) -> bytes:
        """execTransaction calldata with valid owner signatures (the Safe's current nonce by default)."""
        from ape import chain

        safe_tx = build_safe_tx(
            self.address, to, value, data, operation,
            nonce=safe_nonce(self.address, self.version) if nonce is None else nonce,
            chain_id=chain.chain_id, version=self.version, **gas_fields,
        )
        signatures = encode_signatures([sign_safe_tx(s, safe_tx) for s in (signers or self.signers)])
        return bytes(self.safe.execTransaction.encode_input(
            safe_tx.to, safe_tx.value, safe_tx.data, safe_tx.operation, safe_tx.safe_tx_gas, safe_tx.base_gas,
            safe_tx.gas_price, safe_tx.gas_token, safe_tx.refund_receiver, signatures,
        ))

    def attack(self, to: str, value: int = 0, data: bytes = b"", operation: int = 0, *, at: int | None = None,
               **gas_fields) -> str:
        """Send a threshold-signed execTransaction that must be refused; return the refusal's name.

        Also checks that nothing moved: balances of the Safe, the payees and the attacker, the
        Safe's configuration and nonce, and the guard's budgets, queue and settings.
        """
        calldata = self.exec_calldata(to, value, data, operation, **gas_fields)
        if at is not None:
            wait_until(at)  # budgets depend on the time: read them when the attack runs
        before = self.state()
        name = send_expecting_revert(self.relayer.address, self.address, calldata, at=at)
        after = self.state()
        changed = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
        assert not changed, f"a refused transaction changed state: {changed}"
        return name

    def attack_batch(self, *calls: Call, **gas_fields) -> str:
        """`attack` with a batch: a delegatecall to MultiSendCallOnly, encoded by the toolkit."""
        target, data = self.batch(*calls)
        return self.attack(target, 0, data, 1, **gas_fields)

    # -- the delay queue -------------------------------------------------------------------------

    def schedule(self, to: str, value: int = 0, data: bytes = b"", operation: int = 0) -> int:
        return schedule_intent(self.guard, to, value, data, operation, signers=self.signers, sender=self.relayer)

    def eta(self, entry_id: int) -> int:
        return self.guard.getEntry(entry_id)[1]

    def expiry(self, entry_id: int) -> int:
        return self.guard.getEntry(entry_id)[2]

    def wait_until_due(self, entry_id: int) -> None:
        wait_until(self.eta(entry_id))

    def predict(self, to: str, value: int = 0, data: bytes = b"", operation: int = 0, *, at: int | None = None):
        """predict_verdict: the guard's verdict for the next block, or with `at` for a block at `at`
        (which the next transaction then lands in)."""
        if at is not None:
            pin_next_block(at)
        return predict_verdict(self.guard, to, value, data, operation)

    # -- reading ---------------------------------------------------------------------------------

    def token_balance(self, holder: str, token=None) -> int:
        token = self.token if token is None else token
        return view(token.address, "balanceOf(address)", ["address"], [holder])

    def eth_balance(self, holder: str) -> int:
        return _web3().eth.get_balance(holder)

    def budget(self, token: str | None = None) -> int:
        return self.guard.budgetLeft(self.token.address if token is None else token)

    def config(self) -> dict:
        """The Safe's critical configuration, read from storage and from its getters."""
        return self._read_config(Reads()).run()

    def _read_config(self, reads: Reads) -> Reads:
        for label, slot in CONFIG_SLOTS.items():
            reads.storage(label, self.address, slot)
        reads.call("owners", self.address, "getOwners()", returns=["address[]"])
        reads.call("threshold", self.address, "getThreshold()")
        reads.call("modules", self.address, "getModulesPaginated(address,uint256)", ["address", "uint256"],
                   [SENTINEL_ADDRESS, 10], ["address[]", "address"])
        return reads

    def state(self) -> dict:
        """Everything an attack could move: balances, Safe configuration and nonce, guard state.
        Read in one JSON-RPC batch, at one block."""
        guard, token = self.guard.address, self.token.address
        reads = self._read_config(Reads())
        reads.call("nonce", self.address, "nonce()")
        for label, holder in (("Safe", self.address), ("payee", PAYEE), ("payee2", PAYEE2), ("attacker", ATTACKER)):
            reads.balance(f"{label} ETH", holder)
            reads.call(f"{label} TOKEN", token, "balanceOf(address)", ["address"], [holder])
            reads.call(f"{label} STRAY", self.stray_token.address, "balanceOf(address)", ["address"], [holder])
        reads.call("TOKEN budget", guard, "budgetLeft(address)", ["address"], [token])
        reads.call("native budget", guard, "budgetLeft(address)", ["address"], [NATIVE])
        reads.call("TOKEN cap", guard, "capConfig(address)", ["address"], [token], ["uint256"] * 4)
        reads.call("next entry", guard, "nextEntryId()")
        reads.call("attacker is recipient", guard, "isRecipient(address)", ["address"], [ATTACKER], ["bool"])
        reads.call("refunds allowed", guard, "allowRefunds()", returns=["bool"])
        return reads.run()


class Reads:
    """Several chain reads sent as one JSON-RPC batch (one HTTP round trip, one block)."""

    def __init__(self):
        self._items: list[tuple[str, str, list, Any]] = []

    def call(self, label: str, to: str, signature: str, types: Sequence[str] = (), args: Sequence[Any] = (),
             returns: Sequence[str] = ("uint256",)) -> None:
        data = "0x" + (selector(signature) + encode(list(types), list(args))).hex()

        def decoded(result: str):
            values = _checksummed(decode(list(returns), bytes.fromhex(result[2:])))
            return values[0] if len(values) == 1 else values

        self._items.append((label, "eth_call", [{"to": to, "data": data}, self._block], decoded))

    def balance(self, label: str, address: str) -> None:
        self._items.append((label, "eth_getBalance", [address, self._block], lambda result: int(result, 16)))

    def storage(self, label: str, address: str, slot: int) -> None:
        self._items.append((label, "eth_getStorageAt", [address, hex(slot), self._block], lambda result: int(result, 16)))

    @property
    def _block(self) -> str:
        if not hasattr(self, "_pinned"):
            self._pinned = hex(_web3().eth.block_number)
        return self._pinned

    def run(self) -> dict:
        responses = _web3().provider.make_batch_request([(method, params) for _, method, params, _ in self._items])
        if not isinstance(responses, list):
            raise AssertionError(f"batch read failed: {responses}")
        responses = sorted(responses, key=lambda response: response["id"])
        found = {}
        for (label, _, _, decoder), response in zip(self._items, responses, strict=True):  # one answer per read
            if "error" in response:
                raise AssertionError(f"reading {label} failed: {response['error']}")
            found[label] = decoder(response["result"])
        return found


def _checksummed(value):
    if isinstance(value, (list, tuple)):
        return tuple(_checksummed(v) for v in value)
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return to_checksum_address(value)
    return value


def view(to: str, signature: str, types: Sequence[str] = (), args: Sequence[Any] = (), returns: Sequence[str] = ("uint256",)):
    """One raw eth_call of a view (several times faster than going through ape's contract layer)."""
    reads = Reads()
    reads.call("value", to, signature, types, args, returns)
    return reads.run()["value"]


def standard_policy(token: str, empty_token: str, callback: str) -> Policy:
    per_token = dict(amount=1000 * UNIT, period=DAY, max_per_tx=500 * UNIT, delay_threshold=100 * UNIT)
    return Policy(
        recipients=(PAYEE, PAYEE2),
        calls=(
            AllowedCall(target=token, selector="transfer(address,uint256)"),
            AllowedCall(target=token, selector="approve(address,uint256)"),
            AllowedCall(target=token, selector="transferFrom(address,address,uint256)"),
            AllowedCall(target=empty_token, selector="transfer(address,uint256)"),
            AllowedCall(target=callback, selector="callback(address)"),
        ),
        caps=(
            TokenCap(token=token, **per_token),
            TokenCap(token=empty_token, **per_token),
            TokenCap(token=NATIVE, amount=10 * UNIT, period=DAY, max_per_tx=5 * UNIT, delay_threshold=UNIT),
        ),
        delay=DELAY,
        window=WINDOW,
    )


def build_guarded_safe(*, version: str, salt_nonce: int, make_safe, owners, deployer, relayer, project,
                       policy_for=standard_policy) -> GuardedSafe:
    """Create a funded Safe, deploy its guard with `policy_for(token, empty_token, callback)`, install it."""
    created = make_safe(owners, 2, version=version, salt_nonce=salt_nonce)
    token = deployer.deploy(project.TestToken, "Treasury Token", "TT", 18)
    empty_token = deployer.deploy(project.TestToken, "Empty Token", "ET", 18)
    stray_token = deployer.deploy(project.TestToken, "Stray Token", "ST", 18)
    callback = deployer.deploy(project.ReentrantCallback)
    token.mint(created.address, 10**6 * UNIT, sender=deployer)
    stray_token.mint(created.address, 10**6 * UNIT, sender=deployer)
    deployer.transfer(created.address, 100 * UNIT)
    policy = policy_for(token.address, empty_token.address, callback.address)
    guard = deploy_guard(created.address, version, policy, deployer)
    install_guard(created.address, version, guard.address, signers=owners[:2], sender=relayer)
    return GuardedSafe(
        version=version, address=created.address, safe=safe_instance(created.address, version), guard=guard,
        policy=policy, token=token, empty_token=empty_token, stray_token=stray_token, callback=callback,
        owners=list(owners), relayer=relayer,
    )


_instances = itertools.count()


def module_salt(request) -> int:
    """A fresh salt nonce for every Safe a fixture creates: pytest may set a module-scoped fixture up
    again (another parameter in between) while the chain still holds the Safe it created before."""
    return zlib.crc32(request.module.__name__.encode()) * 10_000 + next(_instances)


@pytest.fixture(scope="session")
def relayer(accounts):
    """Sends the Safe transactions (any account can); it is no owner and no recipient."""
    return accounts[4]


@pytest.fixture(scope="module", params=VERSIONS)
def guarded(request, make_safe, owners, safe_deployer, relayer, project):
    """A guarded 2-of-3 Safe (standard policy) per Safe version, shared by a module's tests."""
    return build_guarded_safe(
        version=request.param, salt_nonce=module_salt(request), make_safe=make_safe, owners=owners,
        deployer=safe_deployer, relayer=relayer, project=project,
    )
