"""Differential test: generated proposals go through the Python verdict and the real guard.

Hypothesis drives a state machine over a guarded Safe on anvil (canonical Safe bytecode, real
TreasuryGuard, real tokens): proposals of every shape (native and ERC-20 payments, approvals,
transferFroms, foreign selectors, calls to the Safe and the guard, valid and malformed batches,
stray delegatecalls, refunds; and v2's rules: NFT-kind tokens, ERC-721/ERC-1155 transfers,
setApprovalForAll, increase/decreaseAllowance and Permit2 approvals under the approvals rule,
argument rules, settings-only calls to the guard, a signature tier, strict decoding of all of it)
interleaved with scheduling, time jumps and executions, so budgets and allowances move and entries
become due and expire. For each proposal, at one pinned block time:
  (a) evaluate(read_guard_state(signatures=0)) and predict_verdict (an eth_call, which carries no
      signatures) agree on outcome and error name, and the guard's own words of the error appear
      in the Python reason;
  (b) executing it with two owner signatures (the Safe's threshold) succeeds exactly when the
      verdict for two signatures is allow (and the call itself works); a refusal reverts with that
      verdict's error; refused for the tier, it is executed again by all three owners against the
      verdict for three; after a success the budgets moved by exactly what charges() said.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field, replace

import pytest
from ape.exceptions import ContractLogicError, VirtualMachineError
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as selector, to_checksum_address
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from treasury.chain.artifacts import safe_contract
from treasury.chain.guard import (
    decode_guard_error,
    deploy_guard,
    install_guard,
    installed_guard,
    predict_verdict,
    schedule_intent,
)
from treasury.execution.send import ExecutionFailed, ExecutionReverted, execute_with_owners
from treasury.policy.engine import MULTI_SEND, SET_GUARD, charges, evaluate, intent_id, read_guard_state
from treasury.policy.model import NATIVE, Policy
from treasury.proposal.multisend import multisend_call_only

U256_MAX = 2**256 - 1
CUSTOM = bytes.fromhex("deadbeef")
SIMULATE_AND_REVERT = selector("simulateAndRevert(address,bytes)")
EXAMPLES = {"1.4.1": int(os.environ.get("DIFF_EXAMPLES", 45)), "1.3.0": 10, "1.5.0": 10}
STEPS = 10
CALL_KINDS = ("good",) * 4 + ("edge", "edge", "delayed", "failing", "native", "native+custom", "erc20", "erc20",
                             "erc20-malformed", "selector", "short", "empty", "self", "guard", "guard",
                             "nft", "multi", "approvals", "approvals", "args", "v2-malformed")
T1_CALLS = ("transfer(address,uint256)", "approve(address,uint256)", "transferFrom(address,address,uint256)",
            "mint(address,uint256)", "increaseAllowance(address,uint256)", "decreaseAllowance(address,uint256)")
NFT_CALLS = ("transfer(address,uint256)", "approve(address,uint256)", "transferFrom(address,address,uint256)")
ERC721_CALLS = ("safeTransferFrom(address,address,uint256)", "safeTransferFrom(address,address,uint256,bytes)",
                "setApprovalForAll(address,bool)")
ERC1155_CALLS = ("safeTransferFrom(address,address,uint256,uint256,bytes)",
                 "safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)", "setApprovalForAll(address,bool)")
V2_KINDS = ("nft", "multi", "approvals", "args", "v2-malformed", "guard")
PERMIT2_APPROVE = "approve(address,address,uint160,uint48)"
DEPOSIT, WITHDRAW, HARVEST = "deposit(address,uint256)", "withdraw(uint256,address)", "harvest()"
DIRTY = 1 << 200
JUMPS = (1, 29, 30, 31, 60, 600, 1799, 1800, 3599, 3600, 3601, 5400, 7200)
SEEN: Counter = Counter()  # what the runs covered, printed at the end of each test


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def abi(signature: str, *args) -> bytes:
    types = signature[signature.index("(") + 1: -1]
    return selector(signature) + encode([t for t in types.split(",") if t], list(args))


def entry(to: str, value: int = 0, data: bytes = b"", operation: int = 0) -> bytes:
    return bytes([operation]) + bytes.fromhex(to[2:]) + word(value) + word(len(data)) + data


def multisend(packed: bytes, offset: int = 32, length: int | None = None, padding: bytes = b"") -> bytes:
    return MULTI_SEND + word(offset) + word(len(packed) if length is None else length) + packed + padding


@dataclass(frozen=True)
class Proposal:
    label: str
    to: str
    value: int = 0
    data: bytes = b""
    operation: int = 0
    gas_price: int = 0

    @property
    def args(self) -> tuple:
        return self.to, self.value, self.data, self.operation

    def describe(self, names: dict[str, str]) -> str:
        return (f"{self.label}: to={names.get(self.to, self.to)} value={self.value} operation={self.operation} "
                f"gas_price={self.gas_price} data=0x{self.data.hex()}")


@dataclass
class World:
    """A guarded Safe of one version with tokens, payees and a policy with small, edgy numbers."""

    version: str
    safe: str
    guard: object
    policy: Policy
    tokens: dict[str, str]  # capped T1 (all ERC-20 calls, a tier), T2 (transfer), T3 (uncapped), T4 (nothing
    #                          allowed), N1 (an NFT-kind TestToken: transfer, approve, transferFrom)
    people: dict[str, str]  # R1, R2 recipients; STRANGER; APPROVER (approved the Safe on T1); NEWOWNER
    # Targets without code (the guard reads their calldata only; a call to them succeeds): N2 (ERC-721 calls),
    # M1 (ERC-1155 calls), VAULT (argument rules); P2: Permit2 (a contract if the project has TestPermit2).
    v2: dict[str, str]
    owners: list
    sender: object
    names: dict[str, str] = field(default_factory=dict)

    @property
    def multisend(self) -> str:
        return multisend_call_only(self.version)


@pytest.fixture(scope="module", params=list(EXAMPLES))
def world(request, make_safe, owners, safe_deployer, accounts, project) -> World:
    version = request.param
    created = make_safe(owners, 2, version=version, salt_nonce=7700)
    people = {"R1": accounts[5].address, "R2": accounts[6].address, "STRANGER": accounts[7].address,
              "APPROVER": accounts[4].address, "NEWOWNER": accounts[8].address}
    tokens = {}
    for name in ("T1", "T2", "T3", "T4"):
        # T1 also has increaseAllowance/decreaseAllowance, so those calls run and move its allowances.
        kind = getattr(project, "TestAllowanceToken", project.TestToken) if name == "T1" else project.TestToken
        token = safe_deployer.deploy(kind, name, name, 6)
        token.mint(created.address, 10**30, sender=safe_deployer)
        tokens[name] = token.address
    t1 = project.TestToken.at(tokens["T1"])
    t1.mint(people["APPROVER"], 10**30, sender=safe_deployer)
    t1.approve(created.address, U256_MAX, sender=accounts[4])
    nft = safe_deployer.deploy(project.TestToken, "N1", "N1", 0)
    nft.mint(created.address, 10**30, sender=safe_deployer)
    tokens["N1"] = nft.address
    safe_deployer.transfer(created.address, 10**19)
    v2 = {name: to_checksum_address(f"0x{number:040x}") for name, number in
          (("N2", 0xA0721), ("M1", 0xA1155), ("VAULT", 0xA4626), ("P2", 0xA9E2))}
    permit2 = getattr(project, "TestPermit2", None)
    if permit2 is not None:  # approve and allowance(owner, token, spender) as Permit2 has them
        v2["P2"] = safe_deployer.deploy(permit2).address
    policy = Policy(
        recipients=[people["R1"], people["R2"]],
        calls=[{"target": tokens["T1"], "selector": s} for s in T1_CALLS]
        + [{"target": tokens["T2"], "selector": "transfer(address,uint256)"},
           {"target": tokens["T3"], "selector": "transfer(address,uint256)"},
           {"target": people["R1"], "selector": "0xdeadbeef"}]
        + [{"target": tokens["N1"], "selector": s} for s in NFT_CALLS]
        + [{"target": v2["N2"], "selector": s} for s in ERC721_CALLS]
        + [{"target": v2["M1"], "selector": s} for s in ERC1155_CALLS]
        + [{"target": v2["P2"], "selector": PERMIT2_APPROVE},
           {"target": v2["VAULT"], "selector": DEPOSIT,
            "arguments": [{"index": 0, "kind": "recipient"}, {"index": 1, "kind": "max", "bound": 500}]},
           {"target": v2["VAULT"], "selector": WITHDRAW,
            "arguments": [{"index": 1, "kind": "recipient"}, {"index": 0, "kind": "max", "bound": 10}]},
           {"target": v2["VAULT"], "selector": HARVEST}],
        caps=[{"token": NATIVE, "amount": 1000, "period": 3600, "max_per_tx": 600, "delay_threshold": 300},
              {"token": tokens["T1"], "amount": 10_000, "period": 7200, "max_per_tx": 6000, "delay_threshold": 3000,
               "tier_above": 2000, "tier_signers": 3},
              {"token": tokens["T2"], "amount": 5000, "period": 120},
              {"token": tokens["N1"], "amount": 4, "period": 3600, "max_per_tx": 2, "nft": True},
              {"token": v2["N2"], "amount": 3, "period": 600, "delay_threshold": 1, "nft": True},
              {"token": v2["M1"], "amount": 100, "period": 3600, "max_per_tx": 60, "delay_threshold": 40}],
        delay=3600, window=3600,
    )
    guard = deploy_guard(created.address, version, policy, safe_deployer)
    install_guard(created.address, version, guard.address, signers=owners[:2], sender=safe_deployer)
    names = {v: k for k, v in {**people, **tokens, **v2, "SAFE": created.address, "GUARD": guard.address,
                                  "MULTISEND": multisend_call_only(version)}.items()}
    return World(version, created.address, guard, policy, tokens, people, v2, list(owners), safe_deployer, names)


# --- proposal strategies ------------------------------------------------------------------------


def amounts(cap, left: int | None) -> st.SearchStrategy[int]:
    """Amounts at the edges that matter: delay threshold, per-transaction limit, budget left."""
    if cap is None:
        return st.sampled_from([0, 1, 1000, U256_MAX])
    edges = {0, 1, cap.amount, cap.amount + 1, 2**255, U256_MAX}
    for edge in (cap.delay_above, cap.per_tx_limit, left):
        if edge is not None and edge < 2**200:
            edges |= {edge - 1, edge, edge + 1}
    return st.one_of(st.sampled_from(sorted(e for e in edges if 0 <= e <= U256_MAX)), st.integers(0, 2 * cap.amount))


class Draw:
    """Draws single calls and whole proposals for one world, with the current budgets."""

    def __init__(self, data, world: World, budgets: dict[str, int], now: int = 0):
        self.data, self.w, self.budgets, self.now = data, world, budgets, now

    def __repr__(self) -> str:  # hypothesis names the drawn method in failure reports
        return "draw"

    def one(self, strategy):
        return self.data.draw(strategy)

    def pick(self, *options):
        return self.one(st.sampled_from(options))

    def amount(self, token: str) -> int:
        return self.one(amounts(self.w.policy.cap_for(token), self.budgets.get(token)))

    def call(self, kinds: tuple[str, ...] = CALL_KINDS) -> tuple[str, str, int, bytes]:
        kind = self.pick(*kinds)
        return getattr(self, "call_" + kind.replace("+", "_").replace("-", "_"))()

    def call_good(self):
        """Calls every per-call rule accepts, with amounts that mostly fit the caps."""
        p, t = self.w.people, self.w.tokens
        to, small = self.pick(p["R1"], p["R2"]), self.one(st.integers(1, 300))
        return self.pick(
            ("native", to, small, b""),
            ("native+custom", p["R1"], self.pick(0, small), CUSTOM),
            ("erc20 transfer", t["T1"], 0, abi("transfer(address,uint256)", to, 10 * small)),
            ("erc20 transfer", t["T2"], 0, abi("transfer(address,uint256)", to, 5 * small)),
            ("erc20 approve", t["T1"], 0, abi("approve(address,uint256)", to, small)),
            ("erc20 transferFrom", t["T1"], 0, abi("transferFrom(address,address,uint256)", p["APPROVER"], to, small)),
            ("mint", t["T1"], 0, abi("mint(address,uint256)", to, small)),
            ("rejection (empty self-call)", self.w.safe, 0, b""),
        )

    def call_edge(self):
        """A payment of exactly the budget left, give or take one."""
        t, to = self.w.tokens, self.pick(self.w.people["R1"], self.w.people["R2"])
        token = self.pick(NATIVE, t["T1"], t["T2"])
        amount = max(0, self.budgets[token] + self.pick(-1, 0, 1))
        if token == NATIVE:
            return "edge native", to, amount, b""
        return "edge erc20 transfer", token, 0, abi("transfer(address,uint256)", to, amount)

    def call_failing(self):
        """Calls the guard accepts but that fail in the Safe (the execution then reverts GS013)."""
        p, t, owner = self.w.people, self.w.tokens, self.w.owners[0].address
        return self.pick(
            ("transferFrom without allowance", t["T1"], 0,
             abi("transferFrom(address,address,uint256)", p["STRANGER"], p["R1"], 1)),
            ("addOwnerWithThreshold(existing owner)", self.w.safe, 0,
             abi("addOwnerWithThreshold(address,uint256)", owner, 2)),
        )

    def call_delayed(self):
        """Calls that are fine but must wait in the queue: large amounts, the Safe, the guard."""
        p, t = self.w.people, self.w.tokens
        return self.pick(
            ("erc20 transfer", t["T1"], 0,
             abi("transfer(address,uint256)", p["R1"], self.one(st.integers(3001, 6000)))),
            ("native", p["R2"], self.one(st.integers(301, 600)), b""),
            ("guard: setAllowRefunds(true)", self.w.guard.address, 0, abi("setAllowRefunds(bool)", True)),
            ("setApprovalForAll(true)", self.pick(self.w.v2["N2"], self.w.v2["M1"]), 0,
             abi("setApprovalForAll(address,bool)", self.pick(p["R1"], p["R2"]), True)),
            self.call_self(),
            self.call_guard(),
        )

    def call_native(self):
        p = self.w.people
        return "native", self.pick(p["R1"], p["R2"], p["STRANGER"], self.w.tokens["T1"]), self.amount(NATIVE), b""

    def call_native_custom(self):
        value = self.pick(0, self.amount(NATIVE))
        return "native+custom", self.pick(self.w.people["R1"], self.w.people["R2"]), value, CUSTOM

    def call_erc20(self):
        p, token = self.w.people, self.pick(*self.w.tokens.values())
        function = self.pick("transfer", "approve", "transferFrom")
        to, amount = self.pick(p["R1"], p["R2"], p["STRANGER"], self.w.safe), self.amount(token)
        if function == "transferFrom":
            source = self.pick(p["APPROVER"], p["STRANGER"])
            return "erc20 transferFrom", token, 0, abi("transferFrom(address,address,uint256)", source, to, amount)
        return f"erc20 {function}", token, 0, abi(f"{function}(address,uint256)", to, amount)

    def call_erc20_malformed(self):
        _, token, _, data = self.call_erc20()
        how = self.pick("cut", "extra", "dirty-first", "dirty-second")
        if how == "cut":
            return "erc20 cut", token, 0, data[:-self.one(st.integers(1, len(data) - 1))]
        if how == "extra":
            return "erc20 extra", token, 0, data + b"\x00"
        at = 4 if how == "dirty-first" else 36
        return f"erc20 {how}", token, 0, data[:at] + bytes([self.one(st.integers(1, 255))]) + data[at + 1:]

    def call_selector(self):
        t1, r1 = self.w.tokens["T1"], self.w.people["R1"]
        return self.pick(
            ("mint", t1, 0, abi("mint(address,uint256)", r1, 5)),
            ("name()", t1, 0, selector("name()")),
            ("custom on T2", self.w.tokens["T2"], 0, CUSTOM),
            ("transfer on EOA", r1, 0, abi("transfer(address,uint256)", r1, 1)),
        )

    def call_short(self):
        target = self.pick(self.w.people["R1"], self.w.people["STRANGER"])
        return "short calldata", target, self.pick(0, 1), CUSTOM[: self.one(st.integers(1, 3))]

    def call_empty(self):
        return "empty", self.pick(self.w.people["R1"], self.w.people["STRANGER"]), 0, b""

    def call_self(self):
        safe, w = self.w.safe, self.w
        return self.pick(
            ("setGuard(0)", safe, 0, SET_GUARD + word(0)),
            ("setGuard(same guard)", safe, 0, SET_GUARD + word(int(w.guard.address, 16))),
            ("addOwnerWithThreshold", safe, 0,
             abi("addOwnerWithThreshold(address,uint256)", self.pick(w.people["NEWOWNER"], w.people["R2"]), 2)),
            ("changeThreshold(2)", safe, 0, abi("changeThreshold(uint256)", 2)),
            ("rejection (empty self-call)", safe, 0, b""),
            ("empty self-call with value", safe, 7, b""),
        )

    def call_guard(self):
        guard = self.w.guard.address
        return self.pick(
            ("guard: empty", guard, 0, b""),
            ("guard: setAllowRefunds(true)", guard, 0, abi("setAllowRefunds(bool)", True)),
            ("guard: setAllowRefunds(false)", guard, 0, abi("setAllowRefunds(bool)", False)),
            ("guard: setRecipient(R1, true)", guard, 0, abi("setRecipient(address,bool)", self.w.people["R1"], True)),
            ("guard: setDelay(same)", guard, 0, abi("setDelay(uint256,uint256)", 3600, 3600)),
            ("guard: unknown selector", guard, 0, bytes.fromhex("12345678")),
            ("guard: 3 bytes", guard, 0, b"\x01\x02\x03"),
            ("guard: revokeMessage", guard, 0, abi("revokeMessage(bytes32)", b"\x01" * 32)),
            ("guard: revokeMessage with value", guard, 1, abi("revokeMessage(bytes32)", b"\x01" * 32)),
            ("guard: value", guard, 1, b""),
            ("guard: checkAfterExecution(false)", guard, 0, abi("checkAfterExecution(bytes32,bool)", bytes(32), False)),
            ("guard: schedule", guard, 0, abi("schedule(address,uint256,bytes,uint8,bytes)", guard, 0, b"", 0, b"")),
            ("guard: cancelAsGuardian", guard, 0, abi("cancelAsGuardian(uint256)", 1)),
            ("guard: view", guard, 0, abi("budgetLeft(address)", NATIVE)),
            ("guard: setTier", guard, 0, abi("setTier(address,uint256,uint256)", self.w.tokens["T2"], 1, 3)),
        )

    # --- v2: NFTs, ERC-1155, approvals, Permit2, argument rules --------------------------------

    def recipient(self) -> str:
        p = self.w.people
        return self.pick(p["R1"], p["R2"], p["R2"], p["STRANGER"])

    def call_nft(self):
        n1, n2, safe, to = self.w.tokens["N1"], self.w.v2["N2"], self.w.safe, self.recipient()
        token_id = self.pick(0, 1, 7, 2**255, U256_MAX)
        return self.pick(
            ("nft transfer", n1, 0, abi("transfer(address,uint256)", to, token_id)),
            ("nft approve", n1, 0, abi("approve(address,uint256)", self.pick(to, NATIVE), token_id)),
            ("nft transferFrom", n1, 0, abi("transferFrom(address,address,uint256)", self.w.people["APPROVER"], to,
                                            token_id)),
            ("721 safeTransferFrom", n2, 0, abi("safeTransferFrom(address,address,uint256)", safe, to, token_id)),
            ("721 safeTransferFrom+data", n2, 0, abi("safeTransferFrom(address,address,uint256,bytes)", safe, to,
                                                     token_id, self.pick(b"", b"\x01", bytes(33)))),
            ("setApprovalForAll", self.pick(n2, self.w.v2["M1"]), 0,
             abi("setApprovalForAll(address,bool)", to, self.pick(True, False, False))),
        )

    def call_multi(self):
        m1, safe, to = self.w.v2["M1"], self.w.safe, self.recipient()
        count = self.one(st.integers(0, 3))
        amounts = [self.pick(0, 1, 13, 20, 40, 41, 60, 61, 2**255) for _ in range(count)]
        ids = list(range(count)) + ([5] if self.pick(False, False, False, True) else [])  # uneven now and then
        return self.pick(
            ("1155 safeTransferFrom", m1, 0, abi("safeTransferFrom(address,address,uint256,uint256,bytes)", safe, to,
                                                 1, self.amount(m1), self.pick(b"", b"\xff" * 40))),
            ("1155 safeBatchTransferFrom", m1, 0,
             abi("safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)", safe, to, ids, amounts, b"")),
        )

    def call_approvals(self):
        t, p2, spender = self.w.tokens, self.w.v2["P2"], self.recipient()
        amount = self.pick(0, 0, self.one(st.integers(1, 300)), self.amount(t["T1"]))
        expiration = self.pick(0, self.now - 1, self.now, self.now + 3600, 2**48 - 1)
        return self.pick(
            ("approve", t["T1"], 0, abi("approve(address,uint256)", spender, amount)),
            ("increaseAllowance", t["T1"], 0, abi("increaseAllowance(address,uint256)", spender, amount)),
            ("decreaseAllowance", t["T1"], 0, abi("decreaseAllowance(address,uint256)", spender, amount)),
            ("permit2 approve", p2, 0, abi(PERMIT2_APPROVE, self.pick(t["T1"], t["T2"], t["T3"]), spender,
                                           min(amount, 2**160 - 1), max(0, expiration))),
        )

    def call_args(self):
        vault = self.w.v2["VAULT"]
        who = self.pick(*(int(a, 16) for a in (self.w.people["R1"], self.w.people["R2"], self.w.people["STRANGER"])))
        who = who | DIRTY if self.pick(*[False] * 5, True) else who
        deposit = selector(DEPOSIT) + word(who) + word(self.pick(0, 499, 500, 501, U256_MAX))
        withdraw = selector(WITHDRAW) + word(self.pick(0, 9, 10, 11)) + word(who)
        return self.pick(
            ("deposit", vault, 0, deposit),
            ("deposit", vault, 0, deposit + self.pick(b"", b"\x00", bytes(32))),
            ("withdraw", vault, 0, withdraw),
            ("deposit cut", vault, 0, deposit[: self.one(st.integers(4, len(deposit) - 1))]),
            ("withdraw cut", vault, 0, withdraw[: self.one(st.integers(4, len(withdraw) - 1))]),
            ("harvest", vault, 0, selector(HARVEST) + self.pick(b"", b"\x01")),
        )

    def call_v2_malformed(self):
        """A v2 token call with one word dirtied, moved or cut: the strict decoder's edges."""
        label, to, value, data = self.pick(self.call_nft, self.call_multi, self.call_approvals)()
        words = max(0, (len(data) - 4) // 32)
        how = self.pick("dirty", "plus-32", "bool-2", "cut", "extra", "padding")
        if how == "cut":
            return f"{label} cut", to, value, data[: self.one(st.integers(4, len(data) - 1))]
        if how == "extra":
            return f"{label} extra", to, value, data + self.pick(b"\x00", bytes(32))
        if how == "padding" or words == 0:
            return f"{label} last byte", to, value, data[:-1] + bytes([data[-1] ^ 1])
        at = self.one(st.integers(0, min(words, 6) - 1))
        old = int.from_bytes(data[4 + 32 * at: 36 + 32 * at], "big")
        new = {"dirty": old | DIRTY, "plus-32": (old + 32) % 2**256, "bool-2": 2}[how]
        return f"{label} word {at} {how}", to, value, data[: 4 + 32 * at] + word(new) + data[36 + 32 * at:]

    # --- whole proposals --------------------------------------------------------------------

    def proposal(self) -> Proposal:
        make = self.pick(self.call_proposal, self.call_proposal, self.call_proposal, self.batch, self.batch,
                         self.batch_malformed, self.batch_overflow, self.delegatecall_elsewhere, self.operation_2)
        made = make()
        refund = self.one(st.sampled_from([0] * 9 + [1]))
        return Proposal(made.label, made.to, made.value, made.data, made.operation, refund)

    def call_proposal(self) -> Proposal:
        label, to, value, data = self.call()
        return Proposal(label, to, value, data)

    def packed_calls(self, kinds: tuple[str, ...] = CALL_KINDS) -> tuple[list[str], bytes]:
        calls = [self.call(kinds) for _ in range(self.one(st.integers(1, 3)))]
        return [c[0] for c in calls], b"".join(entry(to, value, data) for _, to, value, data in calls)

    def batch(self, kinds: tuple[str, ...] = CALL_KINDS) -> Proposal:
        labels, packed = self.packed_calls(kinds)
        padding = bytes(self.pick(0, 0, 12, 31))  # the guard accepts up to 31 zero bytes after the entries
        return Proposal(f"batch[{', '.join(labels)}]", self.w.multisend, 0, multisend(packed, padding=padding), 1)

    def batch_malformed(self) -> Proposal:
        labels, packed = self.packed_calls()
        how = self.pick("selector", "offset", "longer", "shorter", "pad-32", "dirty-pad", "empty", "empty-pad",
                        "inner-delegatecall", "zero-target", "data-length", "truncated", "value")
        data, value = {
            "selector": lambda: abi("multiSend(bytes[])", [packed]),
            "offset": lambda: multisend(packed, offset=64),
            "longer": lambda: multisend(packed, length=len(packed) + 1),
            "shorter": lambda: multisend(packed, length=len(packed) - 1),
            "pad-32": lambda: multisend(packed, padding=bytes(32)),
            "dirty-pad": lambda: multisend(packed, padding=b"\x00" * 5 + b"\x01"),
            "empty": lambda: multisend(b""),
            "empty-pad": lambda: multisend(b"", padding=bytes(self.pick(1, 31, 32))),
            "inner-delegatecall": lambda: multisend(packed + entry(self.w.people["R1"], 0, b"", 1)),
            "zero-target": lambda: multisend(packed + entry(NATIVE, 1)),
            "data-length": lambda: multisend(packed[:53] + word(len(packed)) + packed[85:]),
            "truncated": lambda: multisend(packed[: self.one(st.integers(1, len(packed) - 1))]),
            "value": lambda: multisend(packed),
        }[how](), (1 if how == "value" else 0)
        return Proposal(f"malformed batch ({how}) of [{', '.join(labels)}]", self.w.multisend, value, data, 1)

    def batch_overflow(self) -> Proposal:
        """Totals of one token past 2**256 - 1: the guard's sum saturates and the cap refuses it."""
        r1, t1 = self.w.people["R1"], self.w.tokens["T1"]
        big = self.pick(entry(r1, 2**255), entry(t1, 0, abi("transfer(address,uint256)", r1, 2**255)))
        labels, more = self.packed_calls()
        label = f"overflowing batch (+[{', '.join(labels)}])"
        return Proposal(label, self.w.multisend, 0, multisend(big + big + more), 1)

    def delegatecall_elsewhere(self) -> Proposal:
        multisend_with_delegatecalls = safe_contract(self.w.version, "multi_send").canonical_address
        target = self.pick(self.w.tokens["T1"], self.w.people["R1"], self.w.safe, multisend_with_delegatecalls)
        _, packed = self.packed_calls()
        return Proposal("delegatecall elsewhere", target, 0, multisend(packed), 1)

    def to_schedule(self) -> Proposal:
        """Mostly proposals that need the delay and pass every other rule once due."""
        how = self.pick("delayed", "delayed", "delayed-batch", "any")
        if how == "delayed":
            return Proposal(*self.call(("delayed",)))
        if how == "delayed-batch":
            return self.batch(("good", "delayed"))
        return self.pick(self.call_proposal, self.batch)()

    def operation_2(self) -> Proposal:
        label, to, value, data = self.call()
        return Proposal(f"operation 2 ({label})", to, value, data, 2)


# --- running one proposal both ways -------------------------------------------------------------


def pin(timestamp: int) -> None:
    """Make the next block (and so every view read at 'pending') have exactly this timestamp."""
    from ape import chain

    chain.pending_timestamp = timestamp


def inner_call_succeeds(w: World, proposal: Proposal) -> bool:
    """Whether the Safe's own call would work, guard aside: the proposal run inside the Safe
    through simulateAndRevert (a plain call is wrapped as a one-entry MultiSendCallOnly batch)."""
    from ape import chain
    from web3.exceptions import ContractCustomError, ContractLogicError as Web3LogicError

    data = proposal.data if proposal.operation == 1 else multisend(entry(proposal.to, proposal.value, proposal.data))
    target = proposal.to if proposal.operation == 1 else w.multisend
    if target != w.multisend:
        return False
    calldata = SIMULATE_AND_REVERT + encode(["address", "bytes"], [target, data])
    try:
        chain.provider.web3.eth.call({"to": w.safe, "data": calldata})
    except (ContractCustomError, Web3LogicError) as error:
        raw = bytes.fromhex(error.data[2:]) if isinstance(error.data, str) else b""
        return len(raw) >= 32 and raw[31] == 1
    return False


def execute(w: World, proposal: Proposal, signers: int = 2) -> str:
    """Execute with `signers` owner signatures: 'ok', the guard's error name, or 'inner-failed'."""
    try:
        # With a refund (gasPrice > 0) the Safe gives its call exactly safeTxGas: 0 would starve it.
        execute_with_owners(w.safe, w.version, *proposal.args, signers=w.owners[:signers], sender=w.sender,
                            gas_price=proposal.gas_price, safe_tx_gas=500_000 if proposal.gas_price else 0)
    except ExecutionFailed:
        return "inner-failed"  # with a refund the Safe does not revert on a failed call
    except ExecutionReverted as error:  # refused before sending, with the raw revert data kept
        return data_name("0x" + error.revert_data.hex(), w.version)
    except VirtualMachineError as error:
        return revert_name(error, w.version)
    return "ok"


def revert_name(error: VirtualMachineError, version: str) -> str:
    """The guard's error name from the raw revert data (a panic is 'Reverted', as decode_guard_error
    names it), or 'inner-failed' when the Safe reverted because the call itself failed: GS013, or
    on 1.5.0 the failed call's own revert data, which that version passes through."""

    if str(error).startswith("Panic error 0x11"):  # ape words panics without keeping the data
        return "Reverted"
    data = getattr(error.base_err, "data", None)
    if not isinstance(data, str) or not data.startswith("0x"):
        return f"unexpected revert: {error}"
    return data_name(data, version)


def data_name(data: str, version: str) -> str:
    """revert_name for raw revert data (0x...)."""
    from eth_abi import decode

    if data.startswith("0x4e487b71"):  # Panic(uint256): named as decode_guard_error names it
        return "Reverted"
    name, _ = decode_guard_error(data)
    if name != "Reverted" or version == "1.5.0":
        return name if name != "Reverted" else "inner-failed"
    message = decode(["string"], bytes.fromhex(data[10:]))[0] if data.startswith("0x08c379a0") else data
    return "inner-failed" if message == "GS013" else f"Safe error {message}"


def fast_revert(provider, exception: Exception, revert_message: str | None = None, **kwargs) -> ContractLogicError:
    """Stands in for ape-foundry's revert handler, which traces every reverted transaction to
    decode its error and print a call tree (about 3 s each here); revert_name reads the raw data."""
    return ContractLogicError(base_err=exception, revert_message=revert_message or "reverted", txn=kwargs.get("txn"))


class DifferentialMachine(RuleBasedStateMachine):
    """One example: a snapshot of the world, a short sequence of steps, then a restore."""

    world: World  # set per test

    def __init__(self):
        from ape import chain

        super().__init__()
        self.w = type(self).world
        self.snapshot = chain.snapshot()
        self.now = chain.blocks.head.timestamp
        self.scheduled: list[Proposal] = []

    def teardown(self):
        from ape import chain

        chain.restore(self.snapshot)

    def state(self, *proposals: Proposal):
        """The guard's state now, for a transaction with no signatures (as predict_verdict's eth_call)."""
        pin(self.now)
        return read_guard_state(self.w.guard, self.w.policy, intents=[p.args for p in proposals if p.operation < 2],
                                signatures=0)

    # --- rules ------------------------------------------------------------------------------

    @initialize()
    def start(self):
        pin(self.now)

    @rule(data=st.data(), count=st.integers(1, 3))
    def propose(self, data, count):
        for _ in range(count):
            self.check(Draw(data, self.w, self.state().budget_left, self.now).proposal())

    @rule(data=st.data(), count=st.integers(1, 3))
    def propose_v2(self, data, count):
        """v2's calls more often than the general mix draws them, alone or in batches."""
        for _ in range(count):
            draw = Draw(data, self.w, self.state().budget_left, self.now)
            if draw.pick(True, False):
                self.check(Proposal(*draw.call(V2_KINDS)))
            else:
                self.check(draw.batch((*V2_KINDS, "good")))

    @rule(data=st.data())
    def propose_scheduled(self, data):
        if self.scheduled:
            self.check(data.draw(st.sampled_from(self.scheduled)))

    @rule(data=st.data())
    def schedule(self, data):
        self.schedule_one(data)

    @rule(data=st.data())
    def schedule_wait_and_propose(self, data):
        """Schedule, move to just before, at or after the eta or the expiry, and propose it."""
        proposal = self.schedule_one(data)
        if proposal is None:
            return
        _, eta, expiry = self.state(proposal).entry_of(intent_id(*proposal.args))
        self.move_to(data.draw(st.sampled_from([eta - 1, eta, eta + 1, expiry - 1, expiry])))
        self.check(proposal)

    def schedule_one(self, data) -> Proposal | None:
        proposal = Draw(data, self.w, self.state().budget_left, self.now).to_schedule()
        return proposal if self.schedule_proposal(proposal) else None

    def schedule_proposal(self, proposal: Proposal) -> tuple[int, int] | None:
        """Put the proposal in the queue; (eta, expiry), or None if it is pending already."""
        found = self.state(proposal).entry_of(intent_id(*proposal.args))
        if found is not None and self.now < found[2]:
            return None  # the guard refuses a second entry for a pending intent
        pin(self.now)
        entry_id = schedule_intent(self.w.guard, *proposal.args, signers=self.w.owners[:2], sender=self.w.sender)
        self.scheduled.append(proposal)
        SEEN["scheduled"] += 1
        _, eta, expiry, _ = self.w.guard.getEntry(entry_id)
        return eta, expiry

    def move_to(self, timestamp: int) -> None:
        """Mine a block at `timestamp`, so eth_call at 'latest' (predict_verdict) sees it too."""
        from ape import chain

        self.now = timestamp
        pin(self.now)
        chain.mine()
        assert chain.blocks.head.timestamp == self.now

    @rule(data=st.data())
    def jump(self, data):
        targets = [self.now + d for d in JUMPS]
        state = self.state(*self.scheduled)
        for proposal in self.scheduled:
            found = state.entry_of(intent_id(*proposal.args))
            if found is not None:
                targets += [t for t in (found[1] - 1, found[1], found[2] - 1, found[2]) if t > self.now]
        self.move_to(data.draw(st.sampled_from(sorted(set(targets)))))

    # --- the comparison ---------------------------------------------------------------------

    def check(self, proposal: Proposal) -> tuple[str, str]:
        """Both verdicts and the execution must agree; returns (verdict error or 'allow', execution result)."""
        w = self.w
        before = self.state(proposal)
        verdict = evaluate(w.policy, before, *proposal.args, gas_price=proposal.gas_price)
        predicted = predict_verdict(w.guard, *proposal.args, gas_price=proposal.gas_price)
        context = (f"\n  proposal {proposal.describe(w.names)}\n  python   {verdict}\n  guard    {predicted}"
                   f"\n  state    {before}")
        assert (verdict.outcome, verdict.error) == (predicted.outcome, predicted.error), "verdicts differ" + context
        if predicted.error:
            assert predicted.detail in verdict.detail, "error fields differ" + context
        SEEN[f"{predicted.outcome} {predicted.error}".strip()] += 1
        SEEN[proposal.label.split(" (")[0].split("[")[0]] += 1
        if proposal.operation > 1:
            return verdict.error, "not executable"  # the Safe's ABI cannot carry operation 2
        inner_ok = inner_call_succeeds(w, proposal)
        result = self.execute_checked(proposal, before, 2, inner_ok, context)
        if result == "NotEnoughSignatures":  # the tier: all three owners sign
            result = self.execute_checked(proposal, before, 3, inner_ok, context)
            SEEN[f"executed by 3 owners {result}"] += 1
        return verdict.error or "allow", result

    def execute_checked(self, proposal: Proposal, before, signers: int, inner_ok: bool, context: str) -> str:
        """Execute with `signers` owner signatures and compare with the verdict for that many."""
        w = self.w
        signed = replace(before, signatures=signers)
        verdict = evaluate(w.policy, signed, *proposal.args, gas_price=proposal.gas_price)
        spend = charges(w.policy, signed, *proposal.args) if verdict.allowed else {}
        pin(self.now)
        result = execute(w, proposal, signers)
        expected = ("ok" if inner_ok else "inner-failed") if verdict.allowed else verdict.error
        assert result == expected, f"execution by {signers} owners gave {result}, expected {expected}" + context
        SEEN[f"executed {result}"] += 1
        SEEN["executed ok with a refund"] += result == "ok" and proposal.gas_price > 0
        if result == "ok":
            self.after_success(before, spend, context)
        elif result == "inner-failed":  # reverted, or with a refund executed and the charges given back
            assert self.state().budget_left == before.budget_left, "a failed call kept its charges" + context
        return result

    def after_success(self, before, spend: dict[str, int], context: str) -> None:
        after = self.state()
        moved = {t: before.budget_left[t] - after.budget_left[t] for t in before.budget_left}
        expected = {t: spend.get(t, 0) for t in before.budget_left}
        assert moved == expected, f"budgets moved by {moved}, charges said {spend}" + context
        if installed_guard(self.w.safe) != self.w.guard.address:  # a scheduled setGuard(0) ran: put the guard back
            pin(self.now)
            set_guard = SET_GUARD + word(int(self.w.guard.address, 16))
            execute_with_owners(self.w.safe, self.w.version, self.w.safe, 0, set_guard, signers=self.w.owners[:2],
                                sender=self.w.sender)
            SEEN["guard removed and reinstalled"] += 1


def test_python_verdict_agrees_with_the_guard(world, chain, monkeypatch):
    monkeypatch.setattr(type(chain.provider), "_handle_execution_reverted", fast_revert)
    DifferentialMachine.world = world
    SEEN.clear()
    run_state_machine_as_test(DifferentialMachine, settings=settings(
        max_examples=EXAMPLES[world.version], stateful_step_count=STEPS, deadline=None, database=None,
        suppress_health_check=list(HealthCheck), print_blob=True,
    ))
    print(f"\nSafe {world.version}: {sum(v for k, v in SEEN.items() if k.startswith('executed'))} executions;",
          dict(sorted(SEEN.items())))
    for outcome in ("allow", "deny", "needs-delay", "executed ok"):
        assert any(key.startswith(outcome) and count for key, count in SEEN.items()), f"no {outcome!r} in {SEEN}"


def test_scripted_edges_agree(world, chain, monkeypatch):
    """A fixed walk through states random runs reach rarely, with the same two-way comparison:
    budgets spent to the unit and refilled by the sliding window, refunds switched on through
    the queue and used, calls that fail inside the Safe, the guard removed and put back."""
    monkeypatch.setattr(type(chain.provider), "_handle_execution_reverted", fast_revert)
    DifferentialMachine.world = world
    m = DifferentialMachine()
    p, t, safe, guard = world.people, world.tokens, world.safe, world.guard.address
    def pay(token: str, amount: int, to: str = p["R1"]) -> Proposal:
        return Proposal("transfer", token, 0, abi("transfer(address,uint256)", to, amount))

    def expect(proposal: Proposal, verdict: str, result: str | None = None) -> None:
        wanted = (verdict, result or (verdict if verdict != "allow" else "ok"))
        assert m.check(proposal) == wanted, proposal.describe(world.names)

    try:
        slot = 60  # T2: period 120, two sub-slots of 60 s
        m.move_to((m.now // slot + 1) * slot)
        expect(pay(t["T2"], 2500), "allow")
        expect(pay(t["T2"], 2501), "ExceedsBudget")
        expect(pay(t["T2"], 2500), "allow")
        spent_in = m.now // slot
        m.move_to((spent_in + 3) * slot - 1)  # still inside a window that holds the spending
        expect(pay(t["T2"], 1), "ExceedsBudget")
        m.move_to((spent_in + 3) * slot)  # refilled
        expect(pay(t["T2"], 5000), "allow")

        expect(Proposal("native at threshold", p["R1"], 300), "allow")
        native = Proposal("native above threshold", p["R2"], 301)
        expect(native, "NotScheduled")
        eta, expiry = m.schedule_proposal(native)
        expect(native, "NotYetDue")
        m.move_to(eta)
        expect(native, "allow")
        expect(Proposal("native over budget", p["R2"], 400), "ExceedsBudget")

        expect(Proposal("refund while off", p["R1"], 1, gas_price=1), "RefundsNotAllowed")
        refunds_on = Proposal("setAllowRefunds(true)", guard, 0, abi("setAllowRefunds(bool)", True))
        eta, _ = m.schedule_proposal(refunds_on)
        m.move_to(eta)
        expect(refunds_on, "allow")
        expect(Proposal("refund", p["R1"], 1, gas_price=1), "allow")
        no_allowance = Proposal("transferFrom without allowance", t["T1"], 0,
                                abi("transferFrom(address,address,uint256)", p["STRANGER"], p["R1"], 5))
        expect(no_allowance, "allow", "inner-failed")
        expect(Proposal(no_allowance.label + " with refund", *no_allowance.args, gas_price=1), "allow", "inner-failed")

        removal = Proposal("setGuard(0)", safe, 0, SET_GUARD + word(0))
        _, expiry = m.schedule_proposal(removal)
        m.move_to(expiry)
        expect(removal, "EntryExpired")
        eta, _ = m.schedule_proposal(removal)
        m.move_to(eta)
        expect(removal, "allow")
        assert installed_guard(safe) == guard  # put back by after_success
        expect(Proposal("rejection", safe), "allow")

        expect(pay(t["T1"], 6001), "ExceedsPerTxLimit")
        expect(pay(t["T3"], 1), "CapNotSet")
        expect(pay(t["T1"], 1, p["STRANGER"]), "RecipientNotAllowed")
        expect(Proposal("foreign selector", t["T1"], 0, selector("name()")), "CallNotAllowed")
        expect(Proposal("short", p["R1"], 0, b"\x01"), "MalformedCalldata")
        expect(Proposal("op 2", p["R1"], 0, b"", 2), "InvalidOperation", "not executable")
        expect(Proposal("delegatecall", t["T1"], 0, b"", 1), "DelegateCallNotAllowed")
        one = entry(p["R1"], 1)
        expect(Proposal("batch", world.multisend, 0, multisend(one + one), 1), "allow")
        expect(Proposal("batch with value", world.multisend, 1, multisend(one), 1), "InvalidMultiSend")
        expect(Proposal("empty batch", world.multisend, 0, multisend(b""), 1), "EmptyBatch")
        inner_delegatecall = multisend(one + entry(p["R1"], 0, b"", 1))
        expect(Proposal("inner delegatecall", world.multisend, 0, inner_delegatecall, 1), "InvalidBatchEntry")
        big = entry(t["T1"], 0, abi("transfer(address,uint256)", p["R1"], 2**255))
        expect(Proposal("overflow", world.multisend, 0, multisend(big + big), 1), "ExceedsPerTxLimit")  # saturated
    finally:
        m.teardown()



def test_scripted_v2_edges_agree(world, chain, monkeypatch):
    """v2's rules on a fixed walk, with the same two-way comparison and executions: the guard's
    hooks out of reach, the approvals rule as allowances move, NFT and ERC-1155 charges,
    setApprovalForAll through the queue, argument rules, Permit2, and the signature tier."""
    monkeypatch.setattr(type(chain.provider), "_handle_execution_reverted", fast_revert)
    DifferentialMachine.world = world
    m = DifferentialMachine()
    p, t, v2, guard = world.people, world.tokens, world.v2, world.guard.address

    def expect(proposal: Proposal, verdict: str, result: str | None = None) -> None:
        wanted = (verdict, result or (verdict if verdict != "allow" else "ok"))
        assert m.check(proposal) == wanted, proposal.describe(world.names)

    def call(label: str, to: str, signature: str, *args, value: int = 0) -> Proposal:
        return Proposal(label, to, value, abi(signature, *args))

    def batch(label: str, *calls: Proposal) -> Proposal:
        return Proposal(label, world.multisend, 0, multisend(b"".join(entry(c.to, c.value, c.data) for c in calls)), 1)

    try:
        erase = call("checkAfterExecution(false)", guard, "checkAfterExecution(bytes32,bool)", bytes(32), False)
        expect(erase, "GuardCallNotAllowed")
        expect(batch("a batch erasing its own charges", Proposal("native", p["R1"], 1), erase), "GuardCallNotAllowed")
        expect(Proposal("guard: empty", guard), "GuardCallNotAllowed")
        revoke = call("revokeMessage", guard, "revokeMessage(bytes32)", b"\x01" * 32)
        expect(revoke, "allow")
        expect(Proposal("revokeMessage with value", guard, 1, revoke.data), "GuardCallNotAllowed")

        def approve(spender: str, amount: int) -> Proposal:
            return call("approve", t["T1"], "approve(address,uint256)", spender, amount)

        expect(approve(p["R1"], 100), "allow")
        expect(approve(p["R1"], 100), "ApprovalOutstanding")
        expect(call("increaseAllowance", t["T1"], "increaseAllowance(address,uint256)", p["R1"], 5),
               "ApprovalOutstanding")
        expect(approve(p["STRANGER"], 0), "allow")  # a revocation: no recipient check, no charge
        expect(approve(p["R1"], 0), "allow")
        expect(approve(p["R1"], 100), "allow")
        expect(approve(p["STRANGER"], 1), "RecipientNotAllowed")
        has_decrease = selector("decreaseAllowance(address,uint256)").hex() in bytes(
            chain.provider.get_code(t["T1"])).hex()
        expect(call("decreaseAllowance", t["T1"], "decreaseAllowance(address,uint256)", p["R1"], 5),
               "allow", "ok" if has_decrease else "inner-failed")
        # No recipient check for a decrease; the token refuses to go below zero.
        expect(call("decreaseAllowance", t["T1"], "decreaseAllowance(address,uint256)", p["STRANGER"], 5),
               "allow", "inner-failed")
        expect(approve(p["R1"], 1), "ApprovalOutstanding")  # 95 left

        nft_transfer = call("nft transfer", t["N1"], "transfer(address,uint256)", p["R1"], 10**20)
        expect(nft_transfer, "allow")  # charged 1 (after_success checks the budget moved by exactly 1)
        expect(batch("three NFTs", nft_transfer, nft_transfer, nft_transfer), "ExceedsPerTxLimit")
        expect(call("nft approve revocation", t["N1"], "approve(address,uint256)", NATIVE, 3), "allow")
        one_721 = call("721", v2["N2"], "safeTransferFrom(address,address,uint256)", world.safe, p["R1"], 5)
        expect(one_721, "allow")
        expect(batch("two 721s", one_721, one_721), "NotScheduled")  # above N2's delay threshold of 1
        expect(call("721 with data", v2["N2"], "safeTransferFrom(address,address,uint256,bytes)", world.safe,
                    p["STRANGER"], 5, b"\x01"), "RecipientNotAllowed")

        for_all = call("setApprovalForAll(true)", v2["M1"], "setApprovalForAll(address,bool)", p["R2"], True)
        expect(for_all, "NotScheduled")
        eta, _ = m.schedule_proposal(for_all)
        m.move_to(eta)
        expect(for_all, "allow")
        expect(call("setApprovalForAll(false)", v2["M1"], "setApprovalForAll(address,bool)", p["STRANGER"], False),
               "allow")
        dirty_bool = Proposal("setApprovalForAll(bool 2)", v2["M1"], 0, for_all.data[:36] + word(2))
        expect(dirty_bool, "MalformedCalldata")
        safe_batch = "safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)"
        expect(call("1155 batch", v2["M1"], safe_batch, world.safe, p["R1"], [1, 2], [10, 20], b""), "allow")
        expect(call("1155 batch uneven", v2["M1"], safe_batch, world.safe, p["R1"], [1, 2], [10], b""),
               "MalformedCalldata")
        expect(call("1155 single", v2["M1"], "safeTransferFrom(address,address,uint256,uint256,bytes)", world.safe,
                    p["R1"], 1, 41, b""), "NotScheduled")

        expect(call("deposit", v2["VAULT"], DEPOSIT, p["R1"], 500), "allow")
        expect(call("deposit to a stranger", v2["VAULT"], DEPOSIT, p["STRANGER"], 1), "ArgumentNotAllowed")
        expect(call("deposit too much", v2["VAULT"], DEPOSIT, p["R1"], 501), "ArgumentNotAllowed")
        expect(Proposal("deposit cut", v2["VAULT"], 0, abi(DEPOSIT, p["R1"], 1)[:-1]), "MalformedCalldata")
        expect(call("withdraw", v2["VAULT"], WITHDRAW, 11, p["R1"]), "ArgumentNotAllowed")

        permit = call("permit2 approve", v2["P2"], PERMIT2_APPROVE, t["T1"], p["R1"], 5, m.now + 3600)
        revoke_permit = call("permit2 revoke", v2["P2"], PERMIT2_APPROVE, t["T1"], p["R1"], 0, 0)
        expect(call("permit2 revoke", v2["P2"], PERMIT2_APPROVE, t["T1"], p["STRANGER"], 0, 0), "allow")
        if bytes(chain.provider.get_code(v2["P2"])):
            expect(permit, "allow")
            expect(permit, "ApprovalOutstanding")  # live until m.now + 3600
            expect(revoke_permit, "allow")
            expect(permit, "allow")
            expired = call("permit2 expired", v2["P2"], PERMIT2_APPROVE, t["T2"], p["R2"], 5, m.now - 1)
            expect(expired, "allow")
            expect(expired, "allow")  # an expired allowance is not live: approving again is allowed
        else:
            expect(permit, "ApprovalOutstanding")  # without a Permit2 contract: unreadable counts as outstanding

        # The tier: above 2000 of T1, three owner signatures; the Safe's threshold is two.
        tiered = call("tiered transfer", t["T1"], "transfer(address,uint256)", p["R1"], 2001)
        expect(tiered, "NotEnoughSignatures", "ok")  # refused with two signatures, executed with three
        expect(call("transfer at the tier", t["T1"], "transfer(address,uint256)", p["R1"], 2000), "allow")
    finally:
        m.teardown()
