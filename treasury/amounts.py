"""Human amounts ("1.5 ETH", "250000 USDC", "1,000.25 USDC") to exact base units, and back.

This is the one amount parser of the project: the CLI, the library, batch files and the config all
go through `TokenBook.parse` / `to_base_units`, so "1,5" cannot mean 1.5 on one surface and 15 on
another. Integers all the way: a float never touches an amount. An amount with more decimals than
the token has is refused rather than rounded, because rounding someone's payment is a decision,
not a detail. A thousands separator ("," or "_") is accepted only between strict groups of three
digits ("10,000.5", "1_000_000"): "1,5" is a European 1.5 or a typo for 15, and guessing which
would move ten times the money, so anything else is refused as ambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from treasury.addresses import ZERO_ADDRESS, parse_address
from treasury.errors import InvalidInput

NATIVE_SYMBOL = "ETH"
NATIVE_DECIMALS = 18
UINT256_MAX = 2**256 - 1
# An ERC-20's decimals() is a uint8, but one whole token must fit in a uint256 for any amount to be
# expressible: 10**77 < 2**256 - 1 < 10**78, so 77 is the largest meaningful number of decimals.
MAX_DECIMALS = len(str(UINT256_MAX)) - 1
MAX_AMOUNT_CHARS = 200  # a uint256 with 77 decimals and every separator is well under this

_SYMBOL = re.compile(r"^[A-Za-z][A-Za-z0-9.\-]{0,31}$")  # what an amount like "1.5 USDC.e" can name
_SPLIT = re.compile(r"^(?P<number>[0-9.,_]+)\s*(?P<symbol>[A-Za-z][A-Za-z0-9.\-]*)?$")
# Plain digits, or groups of three after a 1-3 digit head with one kind of separator; then decimals.
_NUMBER = re.compile(r"^(?P<whole>[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,3}(?:_[0-9]{3})+)?(?:\.(?P<fraction>[0-9]+))?$")
_SCIENTIFIC = re.compile(r"^[0-9.,_]+[eE][-+]?[0-9]+")


class Token(BaseModel):
    """One entry of the token book."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    symbol: str
    address: str
    decimals: int

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        if not _SYMBOL.fullmatch(value):
            raise ValueError(f"token symbol {value!r} must be a letter then up to 31 letters, digits, '.' or '-'")
        return value

    @field_validator("address", mode="before")
    @classmethod
    def _address(cls, value: object) -> str:
        try:
            return parse_address(value, "token address")
        except InvalidInput as error:
            raise ValueError(str(error)) from None

    @field_validator("decimals")
    @classmethod
    def _decimals(cls, value: int) -> int:
        if not 0 <= value <= MAX_DECIMALS:
            raise ValueError(f"decimals {value} must be between 0 and {MAX_DECIMALS} (one token must fit in a uint256)")
        return value

    @property
    def is_native(self) -> bool:
        return self.address == ZERO_ADDRESS


NATIVE = Token(symbol=NATIVE_SYMBOL, address=ZERO_ADDRESS, decimals=NATIVE_DECIMALS)


@dataclass(frozen=True)
class TokenBook:
    """The tokens a treasury knows by name on its chain; the native currency is always there."""

    tokens: Mapping[str, Token]

    @classmethod
    def of(cls, tokens: Mapping[str, Mapping] | None = None) -> TokenBook:
        book = {NATIVE_SYMBOL: NATIVE}
        for symbol, entry in (tokens or {}).items():
            if not isinstance(entry, Mapping):
                raise InvalidInput(f"token {symbol} must be a mapping like {{address: 0x..., decimals: 6}}")
            try:
                token = Token.model_validate({"symbol": symbol, **dict(entry)})
            except ValidationError as error:
                first = error.errors()[0]
                problem = first.get("ctx", {}).get("error") or first["msg"]
                raise InvalidInput(f"token {symbol}: {'.'.join(map(str, first['loc']))}: {problem}") from None
            if symbol.upper() in {s.upper() for s in book}:
                raise InvalidInput(f"token {symbol} is listed twice (symbols are case-insensitive)")
            book[symbol] = token
        addresses = [t.address for t in book.values()]
        if len(set(addresses)) != len(addresses):
            raise InvalidInput("two token symbols share one address")
        return cls(book)

    def by_symbol(self, symbol: str) -> Token:
        for name, token in self.tokens.items():
            if name.upper() == symbol.upper():
                return token
        known = ", ".join(sorted(self.tokens))
        raise InvalidInput(f"unknown token {symbol!r} (known: {known})")

    def by_address(self, address: str) -> Token | None:
        address = parse_address(address, "token address")
        return next((t for t in self.tokens.values() if t.address == address), None)

    def resolve(self, symbol_or_address: str) -> Token:
        """A token from its symbol or its address (an address must be in the book too)."""
        if symbol_or_address.startswith("0x"):
            token = self.by_address(symbol_or_address)
            if token is None:
                raise InvalidInput(f"token {symbol_or_address} is not in the token book")
            return token
        return self.by_symbol(symbol_or_address)

    def parse(self, text: str, default_symbol: str | None = None, *, allow_zero: bool = False) -> tuple[Token, int]:
        """(token, amount in base units) from "1.5 ETH"; the symbol may be omitted if a default is given."""
        number, symbol = split_amount(text)
        symbol = symbol or default_symbol
        if symbol is None:
            raise InvalidInput(f"amount {str(text).strip()!r} needs a token symbol, like '{number} ETH'")
        token = self.by_symbol(symbol)
        return token, to_base_units(number, token, allow_zero=allow_zero)

    def format(self, token_address: str, amount: int) -> str:
        """Base units in the token's own terms: '1,234.5 USDC', or '1234500 units of 0x..' if unknown."""
        token = self.by_address(token_address)
        if token is None:
            return f"{amount} base units of {token_address}"
        return f"{format_units(amount, token.decimals)} {token.symbol}"


def split_amount(text: object) -> tuple[str, str | None]:
    """("1,000.5", "USDC") from "1,000.5 USDC": the number as written and the symbol, if any."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise InvalidInput(f"amount {text!r} must be a string like '1.5 ETH' (quote fractions: a float is not exact)")
    stripped = str(text).strip()
    if len(stripped) > MAX_AMOUNT_CHARS:
        raise InvalidInput(f"amount {stripped[:20]}... is longer than {MAX_AMOUNT_CHARS} characters")
    if stripped.startswith("-"):
        raise InvalidInput(f"amount {stripped} is negative")
    if _SCIENTIFIC.match(stripped):
        raise InvalidInput(f"amount {stripped} is in scientific notation: write it out in plain decimals")
    match = _SPLIT.fullmatch(stripped)
    if not match:
        raise InvalidInput(f"amount {stripped!r} is not a number followed by a token symbol, like '1.5 ETH'")
    return match["number"], match["symbol"]


def to_base_units(number: str, token: Token, *, allow_zero: bool = False) -> int:
    """'1,000.25' in `token` to its integer base units, exactly, or a one-line error."""
    whole, fraction = _digits(str(number).strip())
    fraction = fraction.rstrip("0")
    if len(fraction) > token.decimals:
        raise InvalidInput(f"amount {number} {token.symbol} has more than {token.decimals} decimals")
    units = int(whole or "0") * 10**token.decimals + int(fraction.ljust(token.decimals, "0") or "0")
    if units == 0 and not allow_zero:
        raise InvalidInput(f"amount {number} {token.symbol} is zero")
    if units > UINT256_MAX:
        raise InvalidInput(f"amount {number} {token.symbol} does not fit in a uint256")
    return units


def _digits(number: str) -> tuple[str, str]:
    """(whole digits, fraction digits) of a plain decimal; separators only in strict groups of three."""
    if number.startswith("-"):
        raise InvalidInput(f"amount {number} is negative")
    if len(number) > MAX_AMOUNT_CHARS:
        raise InvalidInput(f"amount {number[:20]}... is longer than {MAX_AMOUNT_CHARS} characters")
    match = _NUMBER.fullmatch(number)
    if match and (match["whole"] or match["fraction"]):
        return match["whole"].replace(",", "").replace("_", "") if match["whole"] else "", match["fraction"] or ""
    if re.fullmatch(r"[0-9.,_]+", number) and re.search(r"[,_]", number):
        raise InvalidInput(f"amount {number!r} is ambiguous: a thousands separator must split groups of three "
                           "digits (1,500 or 1.5), and the decimal mark is a point")
    raise InvalidInput(f"amount {number!r} is not a decimal number")


def format_units(amount: int, decimals: int) -> str:
    """Base units as a decimal string with thousands separators, no trailing zeros."""
    whole, fraction = divmod(amount, 10**decimals)
    text = f"{whole:,}"
    digits = str(fraction).rjust(decimals, "0").rstrip("0") if decimals else ""
    return f"{text}.{digits}" if digits else text
