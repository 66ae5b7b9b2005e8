"""Human amounts ("1.5 ETH", "250000 USDC", "1,000.25 USDC") to exact base units, and back.

Decimal all the way: a float never touches an amount. An amount with more decimals than the token
has is refused rather than rounded, because rounding someone's payment is a decision, not a detail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from typing import Mapping

from pydantic import BaseModel, ConfigDict, field_validator

from treasury.addresses import ZERO_ADDRESS, parse_address
from treasury.errors import InvalidInput

NATIVE_SYMBOL = "ETH"
NATIVE_DECIMALS = 18
UINT256_MAX = 2**256 - 1
_AMOUNT = re.compile(r"^\s*(?P<number>[0-9][0-9_,]*(?:\.[0-9]+)?|\.[0-9]+)\s*(?P<symbol>[A-Za-z][A-Za-z0-9.\-]*)?\s*$")


class Token(BaseModel):
    """One entry of the token book."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    address: str
    decimals: int

    @field_validator("address", mode="before")
    @classmethod
    def _address(cls, value: object) -> str:
        return parse_address(value, "token address")

    @field_validator("decimals")
    @classmethod
    def _decimals(cls, value: int) -> int:
        if not 0 <= value <= 77:
            raise ValueError(f"decimals {value} must be between 0 and 77")
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
    def of(cls, tokens: Mapping[str, Mapping] | None = None) -> "TokenBook":
        book = {NATIVE_SYMBOL: NATIVE}
        for symbol, entry in (tokens or {}).items():
            token = Token(symbol=symbol, **dict(entry))
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
        stripped = str(text).strip()
        if stripped.startswith("-"):
            raise InvalidInput(f"amount {stripped} is negative")
        if re.match(r"^[0-9.]+[eE][-+]?[0-9]+", stripped):
            raise InvalidInput(f"amount {stripped} is in scientific notation: write it out in plain decimals")
        match = _AMOUNT.match(stripped)
        if not match:
            raise InvalidInput(f"amount {text!r} is not a number followed by a token symbol, like '1.5 ETH'")
        symbol = match["symbol"] or default_symbol
        if symbol is None:
            raise InvalidInput(f"amount {text!r} needs a token symbol, like '{text} ETH'")
        token = self.by_symbol(symbol)
        return token, to_base_units(match["number"], token, allow_zero=allow_zero)

    def format(self, token_address: str, amount: int) -> str:
        """Base units in the token's own terms: '1,234.5 USDC', or '1234500 units of 0x..' if unknown."""
        token = self.by_address(token_address)
        if token is None:
            return f"{amount} base units of {token_address}"
        return f"{format_units(amount, token.decimals)} {token.symbol}"


def to_base_units(number: str, token: Token, *, allow_zero: bool = False) -> int:
    """'1,000.25' in `token` to its integer base units, exactly, or a one-line error."""
    cleaned = number.replace(",", "").replace("_", "")
    if cleaned.startswith("-"):
        raise InvalidInput(f"amount {number} is negative")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidInput(f"amount {number!r} is not a decimal number") from None
    if not value.is_finite() or "e" in cleaned.lower():
        raise InvalidInput(f"amount {number!r} must be written out in plain decimals")
    with localcontext() as exact:
        exact.prec = 200  # the default 28 digits would round a uint256 silently
        scaled = value.scaleb(token.decimals)
    if scaled != scaled.to_integral_value():
        raise InvalidInput(f"amount {number} {token.symbol} has more than {token.decimals} decimals")
    units = int(scaled)
    if units == 0 and not allow_zero:
        raise InvalidInput(f"amount {number} {token.symbol} is zero")
    if units > UINT256_MAX:
        raise InvalidInput(f"amount {number} {token.symbol} does not fit in a uint256")
    return units


def format_units(amount: int, decimals: int) -> str:
    """Base units as a decimal string with thousands separators, no trailing zeros."""
    with localcontext() as exact:
        exact.prec = 200
        text = f"{Decimal(amount).scaleb(-decimals):,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
