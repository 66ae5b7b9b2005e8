"""Configuration: the `treasury:` section of ape-config.yaml, as an ape plugin config (pydantic).

Policies are written the way a treasury team thinks ("10000 USDC per 1d, above 5000 USDC waits
48h") and turned into a `Policy` in base units through the treasury's token book, so one file says
what the Safe is, what it holds and what it may do.

    treasury:
      store: .treasury/treasury.db        # a path, or a SQLAlchemy URL (postgresql://...)
      rpc: {attempts: 6, timeout: 30, max_delay: 8}   # retries of a live node (the defaults)
      treasuries:
        ops:
          safe: "0x..."
          chain_id: 1
          version: 1.4.1
          guard: "0x..."                  # once deployed
          confirmations: 2                # blocks execute waits for (default: ape's network setting)
          tokens:
            USDC: {address: "0xA0b8...eB48", decimals: 6}
          policy:
            recipients: ["0x..."]
            calls: [{target: USDC, function: "transfer(address,uint256)"}]
            caps:
              - {token: USDC, amount: 10000, period: 1d, max_per_tx: 8000, delay_threshold: 5000}
              - {token: ETH, amount: 5, period: 1d}
            delay: 48h
            window: 7d
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import SettingsConfigDict

from ape.api.config import PluginConfig

from treasury.addresses import parse_address
from treasury.amounts import TokenBook, to_base_units
from treasury.chain.artifacts import DEFAULT_VERSION, check_version
from treasury.errors import InvalidInput
from treasury.policy.model import AllowedCall, Policy, TokenCap

DEFAULT_STORE = ".treasury/treasury.db"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: object) -> int:
    """Seconds from 3600, "90m", "48h", "7d" or "2w"."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise InvalidInput(f"duration {value!r} is not like 3600, 90m, 48h, 7d or 2w")
        seconds = int(match[1]) * _SECONDS[match[2]]
    if seconds <= 0:
        raise InvalidInput(f"duration {value!r} must be positive")
    return seconds


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CallConfig(_Section):
    target: str  # a token symbol from the book, or an address
    function: str  # "transfer(address,uint256)" or a 0x selector


class CapConfig(_Section):
    token: str = "ETH"
    amount: str | int  # in token units: 10000 or "10000" or "10000 USDC"
    period: str | int
    max_per_tx: str | int | None = None
    delay_threshold: str | int | None = None

    @field_validator("amount", "max_per_tx", "delay_threshold", mode="before")
    @classmethod
    def _no_floats(cls, value: object) -> object:
        if isinstance(value, float):
            raise ValueError(f"amount {value} must be quoted (\"{value}\") so that it is read exactly")
        return value


class PolicyConfig(_Section):
    recipients: list[str] = Field(default_factory=list)
    calls: list[CallConfig] = Field(default_factory=list)
    caps: list[CapConfig] = Field(default_factory=list)
    delay: str | int = "48h"
    window: str | int = "7d"
    allow_refunds: bool = False

    def to_policy(self, book: TokenBook) -> Policy:
        """The policy in base units, every symbol resolved through the token book."""

        def target(name: str) -> str:
            return parse_address(name, "call target") if name.startswith("0x") else book.by_symbol(name).address

        def units(token_symbol: str, value: str | int | None, what: str) -> int | None:
            if value is None:
                return None
            token = book.resolve(token_symbol)
            text = str(value)
            number, _, symbol = text.strip().partition(" ")
            if symbol and symbol.strip().upper() != token.symbol.upper():
                raise InvalidInput(f"{what} {text!r} is not in {token.symbol}")
            return to_base_units(number, token, allow_zero=what != "cap amount")

        caps = []
        for cap in self.caps:
            caps.append(TokenCap(
                token=book.resolve(cap.token).address,
                amount=units(cap.token, cap.amount, "cap amount"),
                period=parse_duration(cap.period),
                max_per_tx=units(cap.token, cap.max_per_tx, "max_per_tx"),
                delay_threshold=units(cap.token, cap.delay_threshold, "delay_threshold"),
            ))
        return Policy(
            recipients=self.recipients,
            calls=[AllowedCall(target=target(c.target), selector=c.function) for c in self.calls],
            caps=caps,
            delay=parse_duration(self.delay),
            window=parse_duration(self.window),
            allow_refunds=self.allow_refunds,
        )


class TreasuryEntry(_Section):
    """One named treasury: a Safe on one chain, its tokens and its policy."""

    safe: str
    chain_id: int
    version: str = DEFAULT_VERSION
    guard: str | None = None
    network: str | None = None  # ape network choice, e.g. ethereum:mainnet:node
    confirmations: int | None = Field(default=None, ge=0)  # blocks to wait after execute (default: the network's)
    tokens: dict[str, dict[str, Any]] = Field(default_factory=dict)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)

    @field_validator("safe", "guard", mode="before")
    @classmethod
    def _address(cls, value: object) -> object:
        return value if value is None else parse_address(value, "address")

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        return check_version(value)

    def token_book(self) -> TokenBook:
        return TokenBook.of(self.tokens)

    def to_policy(self) -> Policy:
        try:
            return self.policy.to_policy(self.token_book())
        except ValidationError as error:
            raise InvalidInput(f"treasury policy: {first_problem(error)}") from None


class RetryConfig(_Section):
    """How hard to try a live node before giving up (treasury.chain.rpc.RetryPolicy)."""

    attempts: int = Field(default=6, ge=1, le=20)
    timeout: float = Field(default=30.0, gt=0)  # seconds per request
    max_delay: float = Field(default=8.0, ge=0)  # the longest wait between two attempts

    def policy(self):
        from treasury.chain.rpc import RetryPolicy

        return RetryPolicy(attempts=self.attempts, timeout=self.timeout, max_delay=self.max_delay)


class TreasuryConfig(PluginConfig):
    """The `treasury:` section of ape-config.yaml (APE_TREASURY_STORE overrides the store)."""

    model_config = SettingsConfigDict(extra="forbid", env_prefix="APE_TREASURY_")

    store: str = DEFAULT_STORE
    rpc: RetryConfig = Field(default_factory=RetryConfig)
    treasuries: dict[str, TreasuryEntry] = Field(default_factory=dict)

    def treasury(self, name: str) -> TreasuryEntry:
        if name not in self.treasuries:
            known = ", ".join(sorted(self.treasuries)) or "none configured"
            raise InvalidInput(f"unknown treasury {name!r} (known: {known})")
        return self.treasuries[name]


def first_problem(error: ValidationError) -> str:
    """Pydantic's first complaint as one line: where it is and what is wrong."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    cause = first.get("ctx", {}).get("error")
    problem = cause if cause is not None else first["msg"]
    return f"{where}: {problem}" if where else str(problem)


def load_config(path: Path | None = None) -> TreasuryConfig:
    """The treasury config of the ape project (or of the given ape-config.yaml), one-line errors."""
    import yaml

    try:
        if path is None:
            from ape import config

            return config.get_config("treasury")
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise InvalidInput(f"config {path} is not a YAML mapping")
        return TreasuryConfig.model_validate(data.get("treasury") or {})
    except ValidationError as error:
        raise InvalidInput(f"treasury config: {first_problem(error)}") from None
    except (OSError, yaml.YAMLError) as error:
        raise InvalidInput(f"cannot read config {path}: {str(error).splitlines()[0]}") from None
