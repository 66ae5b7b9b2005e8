"""Configuration: the `treasury:` section of ape-config.yaml, one validated pydantic model.

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
          server: https://treasury.example.org   # propose/sign/list/show/export/log against this server
          tokens:
            USDC: {address: "0xA0b8...eB48", decimals: 6}
          vendors: {acme: "0x..."}          # the address book: names usable wherever an address is
          owners: {alice: "0x..."}          # (names shown beside the addresses; see treasury.addressbook)
          policy:
            recipients: ["0x...", acme]     # addresses or address book names
            calls:
              - {target: USDC, function: "transfer(address,uint256)"}
              - target: "0x..."               # any other call: optional rules on its argument words
                function: "deposit(address,uint256)"
                arguments: [{index: 0, kind: recipient}, {index: 1, kind: max, amount: "500 USDC"}]
            caps:
              - {token: USDC, amount: 10000, period: 1d, max_per_tx: 8000, delay_threshold: 5000,
                 tier_above: "100,000 USDC", tier_signers: 4}   # above: 4 owner signatures
              - {token: ETH, amount: 5, period: 1d}
              - {token: PUNKS, amount: 2, period: 7d, nft: true}  # NFTs: each one counts 1
            delay: 48h
            window: 7d
            cancel_threshold: 1               # owners (each once per intent) that cancel a queue entry
            guardians: ["0x...", alice]       # may cancel each queue intent once, nothing else
            liveness: 90d                     # off-chain only: warn when an owner's last proof of control is older

Loading validates everything at once, with the limits TreasuryGuard enforces (amounts up to
2**104 - 1, periods of 1 minute to a year, delay and window of 1 hour to 30 days), so even a command
that only reads the store refuses a config the guard could never be built from, in one line.

This module imports neither ape nor web3: the store-only commands load the config without paying
for the chain stack. `load_config()` reads the ape project's config files itself, the way ape
does (ape-config.yaml/.yml/.json or pyproject's [tool.ape], merged over the global
$APE_DATA_FOLDER/ape-config.yaml, `$VAR`s expanded), and ape's own view of the section is the
subclass registered in `ape_treasury`, validated by the same model and the same overrides.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from treasury.addressbook import AddressBook, looks_like_ens
from treasury.addresses import ZERO_ADDRESS, parse_address
from treasury.amounts import TokenBook
from treasury.chain.artifacts import DEFAULT_VERSION, check_version
from treasury.errors import InvalidInput
from treasury.policy.model import Policy, TokenCap

DEFAULT_STORE = ".treasury/treasury.db"
ENV_PREFIX = "APE_TREASURY_"  # APE_TREASURY_STORE, APE_TREASURY_RPC / _TREASURIES (JSON): win over the files
# EIP-2294: a chain id must stay below floor(MAX_UINT64 / 2) - 36 so that EIP-155's v = 2 * id + 36 fits 64 bits.
MAX_CHAIN_ID = (2**64 - 1) // 2 - 36
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")  # a treasury name, as typed after --treasury
_DURATION = re.compile(r"^\s*(\d{1,12})\s*([smhdw]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

Count = Annotated[int, Field(strict=True)]  # a YAML integer: not "6", not 6.0, not true
MIN_LIVENESS, MAX_LIVENESS = 86_400, 10 * 365 * 86_400  # an owner liveness period: a day to ten years


def parse_duration(value: object) -> int:
    """Seconds from 3600, "90m", "48h", "7d" or "2w"."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        match = _DURATION.fullmatch(str(value)) if isinstance(value, str) else None
        if not match:
            raise InvalidInput(f"duration {value!r} is not like 3600, 90m, 48h, 7d or 2w")
        seconds = int(match[1]) * _SECONDS[match[2]]
    if seconds <= 0:
        raise InvalidInput(f"duration {value!r} must be positive")
    return seconds


def _checked(parse: Any, *args: Any) -> Any:
    """Run one of the project's parsers inside a validator: its one-line error becomes pydantic's."""
    try:
        return parse(*args)
    except InvalidInput as error:
        raise ValueError(str(error)) from None


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Amount = str | Annotated[int, Field(strict=True)]  # in token units: 10000, "10,000" or "10000 USDC"
Duration = str | Annotated[int, Field(strict=True)]  # 3600 or "1h"


def _no_float(value: object) -> object:
    if isinstance(value, float):
        raise ValueError(f"amount {value} must be quoted (\"{value}\") so that it is read exactly")  # pydantic wants ValueError
    return value


class ArgumentConfig(_Section):
    """A rule on one argument word of an allowed call: {index: 0, kind: recipient} or
    {index: 1, kind: max, amount: "500 USDC"} (an integer amount is the word itself, in base units)."""

    index: Count = Field(ge=0, le=255)
    kind: Literal["recipient", "max"]
    amount: Amount | None = None

    @field_validator("amount", mode="before")
    @classmethod
    def _no_floats(cls, value: object) -> object:
        return _no_float(value)

    @model_validator(mode="after")
    def _bound(self) -> ArgumentConfig:
        if (self.kind == "max") != (self.amount is not None):
            raise ValueError("a max rule needs an amount, a recipient rule has none")
        return self

    def to_rule(self, book: TokenBook) -> dict[str, Any]:
        if self.amount is None:
            return {"index": self.index, "kind": self.kind}
        if isinstance(self.amount, int):
            bound = self.amount
        else:
            token, bound = book.parse(self.amount, allow_zero=True)  # a string names its token: "500 USDC"
            return {"index": self.index, "kind": self.kind, "bound": bound, "token": token.address}
        return {"index": self.index, "kind": self.kind, "bound": bound}


class CallConfig(_Section):
    target: str  # a token symbol from the book, an address book name, or an address
    function: str  # "transfer(address,uint256)" or a 0x selector
    arguments: list[ArgumentConfig] = Field(default_factory=list)


class CapConfig(_Section):
    token: str = "ETH"
    amount: Amount
    period: Duration
    max_per_tx: Amount | None = None
    delay_threshold: Amount | None = None
    nft: Annotated[bool, Field(strict=True)] = False  # a collection: each NFT moved or approved counts 1
    tier_above: Amount | None = None  # a total above this needs tier_signers owner signatures
    tier_signers: Count = Field(default=0, ge=0, le=255)

    @field_validator("amount", "max_per_tx", "delay_threshold", "tier_above", mode="before")
    @classmethod
    def _no_floats(cls, value: object) -> object:
        return _no_float(value)


class PolicyConfig(_Section):
    recipients: list[str] = Field(default_factory=list)
    calls: list[CallConfig] = Field(default_factory=list)
    caps: list[CapConfig] = Field(default_factory=list)
    delay: Duration = "48h"
    window: Duration = "7d"
    allow_refunds: Annotated[bool, Field(strict=True)] = False
    cancel_threshold: Count = Field(default=1, ge=1, le=255)  # owners (each once per intent) that cancel an entry
    guardians: list[str] = Field(default_factory=list)  # may cancel each queue intent once, nothing else
    # Owner liveness (treasury.ceremony.liveness): how recent an owner's last proof of control must be.
    # Off-chain only: the guard never sees it, so to_policy() leaves it out and the guard encoding is unchanged.
    liveness: Duration | None = None

    @field_validator("liveness")
    @classmethod
    def _liveness(cls, value: Duration | None) -> Duration | None:
        if value is not None:
            seconds = _checked(parse_duration, value)
            if not MIN_LIVENESS <= seconds <= MAX_LIVENESS:
                raise ValueError(f"liveness {value!r} must be between 1 day and 10 years")
        return value

    def liveness_period(self) -> int | None:
        """The configured liveness period in seconds (None: not set; the liveness report then uses 90 days)."""
        return None if self.liveness is None else parse_duration(self.liveness)

    def to_policy(self, book: TokenBook, addresses: AddressBook | None = None) -> Policy:
        """The policy in base units, every symbol resolved through the token book and every name
        (recipients, guardians, call targets) through the address book: the guard only knows addresses."""
        names = addresses if addresses is not None else AddressBook.of(None, book)

        def target(name: str) -> str:
            if name.strip().lower().startswith("0x") or names.lookup(name.strip()) is not None or looks_like_ens(name.strip()):
                return str(_listed(names, name, "call target"))
            token = next((t for symbol, t in book.tokens.items() if symbol.upper() == name.strip().upper()), None)
            if token is None:
                raise InvalidInput(f"call target {name!r} is neither an address, a token symbol ({', '.join(sorted(book.tokens))}) "
                                   f"nor an address book name ({', '.join(sorted(names.names)) or 'none configured'})")
            return token.address

        caps = [TokenCap(
            token=book.resolve(cap.token).address,
            amount=_units(book, cap.token, cap.amount, "cap amount"),
            period=parse_duration(cap.period),
            max_per_tx=_optional_units(book, cap.token, cap.max_per_tx, "max_per_tx"),
            delay_threshold=_optional_units(book, cap.token, cap.delay_threshold, "delay_threshold"),
            nft=cap.nft,
            tier_above=_optional_units(book, cap.token, cap.tier_above, "tier_above"),
            tier_signers=cap.tier_signers,
        ) for cap in self.caps]
        return Policy.model_validate({
            "recipients": [_listed(names, r, "recipient") for r in self.recipients],
            "calls": [{"target": target(c.target), "selector": c.function,
                       "arguments": [a.to_rule(book) for a in c.arguments]} for c in self.calls],
            "caps": caps,
            "delay": parse_duration(self.delay),
            "window": parse_duration(self.window),
            "allow_refunds": self.allow_refunds,
            "cancel_threshold": self.cancel_threshold,
            "guardians": [_listed(names, g, "guardian") for g in self.guardians],
        })


def _listed(names: AddressBook, value: object, what: str) -> object:
    """An allowlist entry: a book name becomes its address; anything else goes to the policy's own
    address check unchanged (so its wording of a bad address stays the one place for it)."""
    if isinstance(value, str) and not value.strip().lower().startswith("0x"):
        if looks_like_ens(value.strip()) and names.lookup(value.strip()) is None:
            raise InvalidInput(f"{what} {value!r} is an ENS name: the policy takes addresses and address book names "
                               "only (whoever controls an ENS name can re-point it)")
        return names.resolve(value, what)
    return value


def _units(book: TokenBook, token_name: str, value: str | int, what: str) -> int:
    """A cap figure in base units, through the one amount parser; a stated symbol must be the cap's."""
    token = book.resolve(token_name)
    parsed, units = book.parse(str(value), default_symbol=token.symbol, allow_zero=what != "cap amount")
    if parsed != token:
        raise InvalidInput(f"{what} {str(value)!r} is not in {token.symbol}")
    return units


def _optional_units(book: TokenBook, token_name: str, value: str | int | None, what: str) -> int | None:
    return None if value is None else _units(book, token_name, value, what)


class TreasuryEntry(_Section):
    """One named treasury: a Safe on one chain, its tokens and its policy (all checked on load)."""

    safe: str
    chain_id: Count = Field(ge=1, le=MAX_CHAIN_ID)
    version: str = DEFAULT_VERSION
    guard: str | None = None
    network: str | None = None  # ape network choice, e.g. ethereum:mainnet:node
    server: str | None = Field(default=None, pattern=r"^https?://\S+$")  # a `treasury serve` URL: no local store
    confirmations: Count | None = Field(default=None, ge=0, le=1000)  # blocks to wait after execute
    tokens: dict[str, dict[str, Any]] = Field(default_factory=dict)
    vendors: dict[str, Any] = Field(default_factory=dict)  # the address book: name -> address
    owners: dict[str, Any] = Field(default_factory=dict)  # named owners, in the same book (names unique across both)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    _book: TokenBook = PrivateAttr()
    _addresses: AddressBook = PrivateAttr()
    _policy: Policy = PrivateAttr()

    @field_validator("safe", "guard", mode="before")
    @classmethod
    def _address(cls, value: object) -> object:
        if value is None:
            return None
        address = _checked(parse_address, value, "address")
        if address == ZERO_ADDRESS:
            raise ValueError("the zero address is not a contract")
        return address

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        return _checked(check_version, value)

    @model_validator(mode="after")
    def _whole(self) -> TreasuryEntry:
        """Build the token book, the address book and the policy now: a config is valid only if the
        guard could enforce it and every name in it means one address."""
        try:
            self._book = TokenBook.of(self.tokens)
            self._addresses = AddressBook.of({**self.owners, **_unique(self.vendors, self.owners)}, self._book)
            self._policy = self.policy.to_policy(self._book, self._addresses)
        except InvalidInput as error:
            raise ValueError(str(error)) from None
        except ValidationError as error:
            raise ValueError(first_problem(error)) from None
        return self

    def token_book(self) -> TokenBook:
        return self._book

    def address_book(self) -> AddressBook:
        """Owners and vendors by name (case-insensitive), token symbols beside them for labels."""
        return self._addresses

    def to_policy(self) -> Policy:
        return self._policy


def _unique(vendors: Mapping[str, Any], owners: Mapping[str, Any]) -> Mapping[str, Any]:
    """The vendors, refused when one has the name of an owner (a merged dict would drop it silently)."""
    for name in vendors:
        if name.upper() in {owner.upper() for owner in owners}:
            raise InvalidInput(f"address book name {name!r} is both a vendor and an owner")
    return vendors


class RetryConfig(_Section):
    """How hard to try a live node before giving up (treasury.chain.rpc.RetryPolicy)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    attempts: Count = Field(default=6, ge=1, le=20)
    timeout: float = Field(default=30.0, gt=0, le=3600)  # seconds per request
    max_delay: float = Field(default=8.0, ge=0, le=3600)  # the longest wait between two attempts

    def policy(self):
        from treasury.chain.rpc import RetryPolicy

        return RetryPolicy(attempts=self.attempts, timeout=self.timeout, max_delay=self.max_delay)


class TreasuryConfig(BaseModel):
    """The `treasury:` section of ape-config.yaml (APE_TREASURY_* environment variables win)."""

    model_config = ConfigDict(extra="forbid")

    store: str = Field(default=DEFAULT_STORE, min_length=1)  # a path, or a SQLAlchemy URL
    rpc: RetryConfig = Field(default_factory=RetryConfig)
    treasuries: dict[str, TreasuryEntry] = Field(default_factory=dict)

    @field_validator("treasuries")
    @classmethod
    def _names(cls, treasuries: dict[str, TreasuryEntry]) -> dict[str, TreasuryEntry]:
        for name in treasuries:
            if not _NAME.fullmatch(name):
                raise ValueError(f"treasury name {name!r} must be 1-64 letters, digits, '.', '-' or '_'")
        return treasuries

    def treasury(self, name: str) -> TreasuryEntry:
        if name not in self.treasuries:
            known = ", ".join(sorted(self.treasuries)) or "none configured"
            raise InvalidInput(f"unknown treasury {name!r} (known: {known})")
        return self.treasuries[name]

    @classmethod
    def from_section(cls, section: object, environ: Mapping[str, str] | None = None) -> Self:
        """The validated section, APE_TREASURY_* overrides applied: one-line InvalidInput otherwise."""
        if section is None:
            section = {}
        if not isinstance(section, dict):
            raise InvalidInput(f"treasury config: the `treasury:` section must be a mapping, not {type(section).__name__}")
        try:
            return cls.model_validate(with_environment(section, os.environ if environ is None else environ))
        except ValidationError as error:
            raise InvalidInput(f"treasury config: {first_problem(error)}") from None


def is_url(store: str) -> bool:
    """Whether a configured store is a SQLAlchemy URL (sqlite:///..., postgresql://...) rather than a path."""
    return "://" in store


def with_environment(section: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """The section with APE_TREASURY_<FIELD> applied on top (names case-insensitive, as pydantic-settings).

    The environment wins over the files, so a deployment can point at its own store without editing
    the project's config. Structured fields (rpc, treasuries) take JSON and merge key by key.
    """
    merged = dict(section)
    lowered = {key.lower(): value for key, value in environ.items()}
    for field in TreasuryConfig.model_fields:
        raw = lowered.get((ENV_PREFIX + field).lower())
        if raw is None:
            continue
        if field == "store":
            merged[field] = raw
            continue
        from treasury.files import load_json

        value = load_json(raw, f"{ENV_PREFIX}{field.upper()}")
        current = merged.get(field)
        merged[field] = deep_merge(current, value) if isinstance(current, dict) and isinstance(value, dict) else value
    return merged


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """`top` over `base`, mappings merged key by key (ape's merge of the global and project configs)."""
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        merged[key] = deep_merge(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return merged


def first_problem(error: ValidationError) -> str:
    """Pydantic's first complaint as one line: where it is and what is wrong."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if part not in _UNION_BRANCHES)
    cause = first.get("ctx", {}).get("error")
    problem = str(cause) if cause is not None else first["msg"]
    return f"{where}: {problem}" if where else problem


_UNION_BRANCHES = {"str", "int", "float", "bool"}  # pydantic names the union branch it tried: noise to a user


# --- reading the files -------------------------------------------------------------------------------


def load_config(path: Path | str | None = None) -> TreasuryConfig:
    """The treasury config of the ape project in the current folder (or of the given file).

    Bad files and bad values are one-line `InvalidInput`s; nothing here imports ape or web3.
    """
    data = project_config(Path.cwd()) if path is None else read_config_file(Path(path))
    return TreasuryConfig.from_section(data.get("treasury"))


def project_config(folder: Path) -> dict[str, Any]:
    """An ape project's configuration, as ape assembles it: the global file, then the project's."""
    data_folder = Path(os.environ.get("APE_DATA_FOLDER") or Path.home() / ".ape")
    merged: dict[str, Any] = {}
    for path in (data_folder / "ape-config.yaml", project_config_file(folder)):
        if path is not None and path.is_file():
            merged = deep_merge(merged, read_config_file(path))
    return merged


def project_config_file(folder: Path) -> Path | None:
    """The file ape reads in `folder`: pyproject.toml if it has [tool.ape], else ape-config.yaml/.yml/.json."""
    from treasury.files import read_text

    pyproject = folder / "pyproject.toml"
    if pyproject.is_file() and "[tool.ape" in read_text(pyproject, "config"):
        return pyproject
    return next((p for p in (folder / f"ape-config{s}" for s in (".yaml", ".yml", ".json")) if p.is_file()), None)


def read_config_file(path: Path) -> dict[str, Any]:
    """One config file as a mapping: size- and depth-bounded, `$VAR`s expanded as ape does."""
    from treasury.files import load_json, load_yaml, read_text

    text = os.path.expandvars(read_text(path, "config"))
    if path.name == "pyproject.toml":
        import tomllib

        try:
            data = tomllib.loads(text).get("tool", {}).get("ape", {})
        except tomllib.TOMLDecodeError as error:
            raise InvalidInput(f"cannot read config {path}: {error}") from None
        except RecursionError:  # tomllib recurses per nesting level; pure Python, so this is raised, not a crash
            raise InvalidInput(f"cannot read config {path}: nested too deep") from None
    else:
        load = load_json if path.suffix == ".json" else load_yaml
        data = load(text, f"cannot read config {path}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput(f"config {path} is not a YAML mapping")
    return data
