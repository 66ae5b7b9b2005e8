"""The address book: names a treasury team uses for the addresses it pays and the owners who sign.

    treasury:
      treasuries:
        ops:
          vendors: {acme: "0x..."}       # who the treasury pays
          owners: {alice: "0x..."}       # who signs (named so `show` says "alice", not 0x...)

Wherever a command takes an address it also takes a name from the book (`treasury propose transfer
acme "250 USDC"`), and wherever an address is shown its name is shown beside it. A name is looked up
case-insensitively and must not be mistakable for anything else one could type in its place: not an
address (a name starts with a letter), not an ENS name (a name has no dot) and not a token symbol
(a token's address is named by its symbol already). ENS names are resolved by
`Treasury.resolve_address`, which has a chain to ask; the book alone refuses them in one line.

Like treasury.config, this module imports neither ape nor web3: the store-only commands label
addresses without paying for the chain stack.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from treasury.addresses import ZERO_ADDRESS, parse_address
from treasury.amounts import TokenBook
from treasury.errors import InvalidInput

MAX_NAMES = 10_000  # a bound on what one config may list: the book is searched linearly
_BOOK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
# Something a person typed meaning an ENS name: dot-separated labels, no spaces, not an address.
_ENS_LIKE = re.compile(r"^[^\s.]+(\.[^\s.]+)+$")


def looks_like_ens(text: str) -> bool:
    """Whether `text` reads as an ENS name ("vitalik.eth", "pay.acme.xyz"): labels joined by dots."""
    return bool(_ENS_LIKE.fullmatch(text)) and not text.lower().startswith("0x")


@dataclass(frozen=True)
class AddressBook:
    """Names to checksummed addresses (owners and vendors together), with the token book beside it
    so token symbols name their contracts too when an address is labelled."""

    names: Mapping[str, str] = field(default_factory=dict)  # name as written -> checksummed address
    tokens: TokenBook = field(default_factory=TokenBook.of)

    @classmethod
    def of(cls, entries: Mapping[str, object] | None, tokens: TokenBook) -> AddressBook:
        """The book from config entries (name -> address), every name and address checked now.

        Refused in one line: a name that is not 1-64 letters, digits, '_' or '-' starting with a
        letter (so it cannot be read as an address or an ENS name), a name listed twice (names are
        case-insensitive), a name that is a token symbol, a bad address, or the zero address.
        """
        entries = entries or {}
        if len(entries) > MAX_NAMES:
            raise InvalidInput(f"the address book has {len(entries)} names; at most {MAX_NAMES}")
        names: dict[str, str] = {}
        seen: set[str] = set()
        symbols = {symbol.upper() for symbol in tokens.tokens}
        for name, address in entries.items():
            _check_name(name, seen, symbols)
            seen.add(name.upper())
            if not isinstance(address, str):  # YAML reads an unquoted 0x... as an integer
                raise InvalidInput(f"address of {name!r} must be a quoted string like \"0x...\"")
            checked = parse_address(address, f"address of {name!r}")
            if checked == ZERO_ADDRESS:
                raise InvalidInput(f"address of {name!r} is the zero address")
            names[name] = checked
        return cls(names, tokens)

    def resolve(self, text: str, what: str = "address") -> str:
        """A checksummed address from an address or a book name; InvalidInput otherwise.

        An ENS name is refused here with a line saying it needs a chain: `Treasury.resolve_address`
        resolves ENS names before it falls back on this.
        """
        if not isinstance(text, str):
            return parse_address(text, what)  # an ape account or contract: its .address
        typed = text.strip()
        if typed.lower().startswith("0x"):
            return parse_address(typed, what)
        found = self.lookup(typed)
        if found is not None:
            return found
        if looks_like_ens(typed):
            raise InvalidInput(f"{what} {typed!r} is an ENS name: resolving it needs a chain with ENS (--network)")
        shown = typed if len(typed) <= 60 else typed[:57] + "..."
        known = ", ".join(sorted(self.names)[:20]) or "none configured"
        raise InvalidInput(f"{what} {shown!r} is neither an address nor a name in the address book (names: {known})")

    def lookup(self, name: str) -> str | None:
        """The address of a book name (case-insensitive), or None."""
        upper = name.upper()
        return next((address for known, address in self.names.items() if known.upper() == upper), None)

    def name_of(self, address: str) -> str | None:
        """The name of an address: its book name, else its token symbol, else None."""
        try:
            checked = parse_address(address, "address")
        except InvalidInput:
            return None
        named = next((name for name, known in self.names.items() if known == checked), None)
        if named is not None:
            return named
        token = self.tokens.by_address(checked)
        return token.symbol if token is not None and not token.is_native else None

    def label(self, address: str) -> str:
        """"acme (0xAbC...full checksummed)" for a named address, the address itself otherwise."""
        name = self.name_of(address)
        if name is None:
            return address
        return f"{name} ({parse_address(address, 'address')})"


def _check_name(name: object, seen: set[str], symbols: set[str]) -> None:
    if not isinstance(name, str) or not _BOOK_NAME.fullmatch(name):
        raise InvalidInput(f"address book name {name!r} must be 1-64 letters, digits, '_' or '-', starting with a letter "
                           "(no dots: it must not read as an ENS name)")
    if name.upper() in seen:
        raise InvalidInput(f"address book name {name!r} is listed twice (names are case-insensitive, "
                           "and vendors and owners share one book)")
    if name.upper() in symbols:
        raise InvalidInput(f"address book name {name!r} is a token symbol: name the address something else")
