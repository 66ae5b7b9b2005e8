"""The treasury's policy as data: what may be called, who may be paid, how much, how fast.

The same model configures TreasuryGuard on chain (treasury.chain.guard encodes it) and, later, the
off-chain policy engine, so the two cannot drift apart by construction. Amounts are integers in
the token's base units; human amounts ("1.5 ETH") are parsed elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from treasury.addresses import ZERO_ADDRESS, parse_address
from treasury.decode.hashes import function_selector

NATIVE = ZERO_ADDRESS  # the "token" address that stands for the chain's native currency
MAX_AMOUNT = 2**104 - 1  # TreasuryGuard.MAX_AMOUNT: what its packed cap words can hold
MIN_PERIOD, MAX_PERIOD = 60, 365 * 24 * 3600  # TreasuryGuard.MIN_PERIOD / MAX_PERIOD
MIN_DELAY, MAX_DELAY = 3600, 30 * 24 * 3600  # TreasuryGuard.MIN_DELAY / MAX_DELAY (also the window bounds)


def selector_of(value: str) -> bytes:
    """A 4-byte selector from "0xa9059cbb" or from a signature such as "transfer(address,uint256)"."""
    if value.startswith("0x"):
        raw = bytes.fromhex(value[2:])
        if len(raw) != 4:
            raise ValueError(f"selector {value} is not 4 bytes")
        return raw
    if "(" not in value or not value.endswith(")"):
        raise ValueError(f"{value!r} is neither a 0x selector nor a function signature like transfer(address,uint256)")
    return function_selector(value)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


ArgumentKind = Literal["recipient", "max"]
ARGUMENT_KIND_CODES: dict[str, int] = {"recipient": 1, "max": 2}  # TreasuryGuard's rule kinds
MAX_ARGUMENT_BOUND = 2**240 - 1  # the bound shares a word with the kind and the index
MAX_TIER_SIGNERS = 255
# The standard token calls the guard decodes itself (CallRules): argument rules never apply to them.
STANDARD_TOKEN_FUNCTIONS = (
    "transfer(address,uint256)", "approve(address,uint256)", "transferFrom(address,address,uint256)",
    "increaseAllowance(address,uint256)", "decreaseAllowance(address,uint256)",
    "safeTransferFrom(address,address,uint256)", "safeTransferFrom(address,address,uint256,bytes)",
    "setApprovalForAll(address,bool)", "safeTransferFrom(address,address,uint256,uint256,bytes)",
    "safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)", "approve(address,address,uint160,uint48)",
)


class ArgumentRule(_Frozen):
    """A condition on one 32-byte argument word of an allowlisted call (word 0 follows the selector):
    "recipient" - the word is an address on the recipient allowlist; "max" - the word is at most `bound`."""

    index: int
    kind: ArgumentKind
    bound: int = 0
    # The token a "max" bound was written in ("500 USDC"), so a verdict can say it in that token's
    # units; words only: the guard's rule word (`word`) does not carry it.
    token: str | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ArgumentRule:
        if not 0 <= self.index <= 255:
            raise ValueError(f"argument index {self.index} must be between 0 and 255")
        if not 0 <= self.bound <= MAX_ARGUMENT_BOUND:
            raise ValueError(f"argument bound {self.bound} must be between 0 and 2**240 - 1")
        if self.kind == "recipient" and self.bound != 0:
            raise ValueError("a recipient rule has no bound")
        return self

    @property
    def word(self) -> int:
        """The rule as TreasuryGuard stores it: kind (8 bits) | index (8 bits) | bound (240 bits)."""
        return (ARGUMENT_KIND_CODES[self.kind] << 248) | (self.index << 240) | self.bound


class AllowedCall(_Frozen):
    """A (target contract, function) pair the Safe may call, optionally with argument rules."""

    target: str
    selector: bytes
    arguments: tuple[ArgumentRule, ...] = ()

    @field_validator("target", mode="before")
    @classmethod
    def _target(cls, value: object) -> str:
        return parse_address(value, "call target")

    @field_validator("selector", mode="before")
    @classmethod
    def _selector(cls, value: object) -> bytes:
        return value if isinstance(value, bytes) and len(value) == 4 else selector_of(str(value))

    @model_validator(mode="after")
    def _rules_apply(self) -> AllowedCall:
        if self.arguments and self.selector in {function_selector(f) for f in STANDARD_TOKEN_FUNCTIONS}:
            raise ValueError(f"argument rules on 0x{self.selector.hex()} would never apply: the guard decodes "
                             "standard token calls itself")
        return self


class TokenCap(_Frozen):
    """A spending cap: at most `amount` in any `period` seconds, `max_per_tx` per transaction,
    and anything above `delay_threshold` in one transaction waits in the delay queue."""

    token: str = NATIVE
    amount: int
    period: int
    max_per_tx: int | None = None  # None: the cap amount
    delay_threshold: int | None = None  # None: never delayed for size
    nft: bool = False  # a collection: each ERC-721 token moved or approved counts 1
    tier_above: int | None = None  # a total above this needs `tier_signers` owner signatures
    tier_signers: int = 0  # 0: no tier

    @field_validator("token", mode="before")
    @classmethod
    def _token(cls, value: object) -> str:
        return parse_address(value, "token")

    @model_validator(mode="after")
    def _bounds(self) -> TokenCap:
        if not 0 < self.amount <= MAX_AMOUNT:
            raise ValueError(f"cap amount {self.amount} must be positive and at most 2**104 - 1")
        if not MIN_PERIOD <= self.period <= MAX_PERIOD:
            raise ValueError(f"cap period {self.period}s must be between {MIN_PERIOD}s and one year")
        for name in ("max_per_tx", "delay_threshold"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= MAX_AMOUNT:
                raise ValueError(f"{name} {value} must be between 0 and 2**104 - 1")
        if not 0 <= self.tier_signers <= MAX_TIER_SIGNERS:
            raise ValueError(f"tier_signers {self.tier_signers} must be between 0 and {MAX_TIER_SIGNERS}")
        if (self.tier_signers == 0) != (self.tier_above is None):
            raise ValueError("a tier needs both tier_above and tier_signers")
        if self.tier_above is not None and not 0 <= self.tier_above <= MAX_AMOUNT:
            raise ValueError(f"tier_above {self.tier_above} must be between 0 and 2**104 - 1")
        return self

    @property
    def per_tx_limit(self) -> int:
        return self.amount if self.max_per_tx is None else self.max_per_tx

    @property
    def delay_above(self) -> int:
        return MAX_AMOUNT if self.delay_threshold is None else self.delay_threshold

    @property
    def tier_amount(self) -> int:
        """The guard's tierAmount: a total above it needs the tier's signatures (MAX_AMOUNT: no tier)."""
        return MAX_AMOUNT if self.tier_above is None else self.tier_above


class Policy(_Frozen):
    """Everything TreasuryGuard enforces for one Safe."""

    recipients: tuple[str, ...] = ()
    calls: tuple[AllowedCall, ...] = ()
    caps: tuple[TokenCap, ...] = ()
    delay: int = 48 * 3600
    window: int = 7 * 24 * 3600
    allow_refunds: bool = False
    cancel_threshold: int = 1  # owners (each once per intent) that cancel a queue entry: the minority veto
    guardians: tuple[str, ...] = ()  # may cancel each queue intent once, nothing else

    @field_validator("recipients", mode="before")
    @classmethod
    def _recipients(cls, values: Iterable[object]) -> tuple[str, ...]:
        parsed = tuple(parse_address(v, "recipient") for v in values)
        if len(set(parsed)) != len(parsed):
            raise ValueError("a recipient is listed more than once")
        return parsed

    @field_validator("guardians", mode="before")
    @classmethod
    def _guardians(cls, values: Iterable[object]) -> tuple[str, ...]:
        parsed = tuple(parse_address(v, "guardian") for v in values)
        if len(set(parsed)) != len(parsed):
            raise ValueError("a guardian is listed more than once")
        return parsed

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        tokens = [cap.token for cap in self.caps]
        if len(set(tokens)) != len(tokens):
            raise ValueError("a token has more than one cap")
        for name in ("delay", "window"):
            if not MIN_DELAY <= getattr(self, name) <= MAX_DELAY:
                raise ValueError(f"{name} {getattr(self, name)}s must be between one hour and 30 days")
        if not 1 <= self.cancel_threshold <= MAX_TIER_SIGNERS:
            raise ValueError(f"cancel_threshold {self.cancel_threshold} must be between 1 and {MAX_TIER_SIGNERS}")
        return self

    def cap_for(self, token: str) -> TokenCap | None:
        token = parse_address(token, "token")
        return next((cap for cap in self.caps if cap.token == token), None)
