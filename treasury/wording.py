"""The words every surface uses for waits, instants, amounts and addresses.

A signer reads the same proposal in the CLI, on the signing page and in a verdict. If one said
"172800 s", another "48 h" and a third "2 days", or one "12000000000" where another says
"12,000 USDC", they would compare figures that look different for no reason, and a base-unit
figure is easy to misread by a factor of a million. So the policy engine, `treasury info`,
`show`, `schedule` and the pages all word things through here:

    duration(171_000)             "1 d 23 h"
    when(1_796_306_700)           "2026-12-03 14:05 UTC"
    due(now, eta)                 "due in 1 d 23 h, at 2026-12-03 14:05 UTC" (both rounded up)
    amount(book, usdc, 12 * 10**9) "12,000 USDC"  (unknown token: "12000 base units of 0x…")

Times are UTC: a team spread over time zones must read one instant, and "14:05 UTC" cannot be
mistaken for the reader's local time. This module imports nothing heavy (no ape, no web3), so the
store-only commands can use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from treasury.addresses import ZERO_ADDRESS

if TYPE_CHECKING:
    from treasury.amounts import TokenBook

# How an address is shown: AddressBook.label ("acme (0x…)") or, without a book, the address itself.
Labeller = Callable[[str], str]

_UNITS = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}(?![0-9a-fA-F])")
_ONLY_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_LOCAL_USER = "local user "


def plain(address: str) -> str:
    """The default labeller: the address as it is."""
    return address


# --- time ---------------------------------------------------------------------------------------


def duration(seconds: int, *, exact: bool = False, up: bool = False) -> str:
    """A span in its two largest units: '1 d 23 h', '3 h 5 min', '2 d', '30 s' (zero units dropped).

    A span needs no more than two units: the rest is truncated, so "expired 2 d ago" or "expires in
    2 d" never says later than the truth. `up=True` rounds the rest up to the next whole unit shown
    instead, for a remaining wait: 2 d 0 h 29 min is "2 d 1 h", so "due in …" never promises a time
    before the guard allows it. `exact=True` keeps every non-zero unit, for configured figures (a
    delay, a cap's period) that must be shown as they are: '1 d 1 s'.
    """
    seconds = max(0, int(seconds))
    if up and not exact:
        first = next((size for _, size in _UNITS if seconds >= size), 1)
        step = next((size for _, size in _UNITS if size < first), 1)  # the second unit shown
        seconds = -(-seconds // step) * step  # at most the next whole first unit: still two units
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, rest = divmod(rest, 60)
    parts = [(count, unit) for count, unit in ((days, "d"), (hours, "h"), (minutes, "min"), (rest, "s"))]
    first = next((i for i, (count, _) in enumerate(parts) if count), len(parts) - 1)
    shown = [(count, unit) for count, unit in parts[first:None if exact else first + 2] if count] or [parts[-1]]
    return " ".join(f"{count} {unit}" for count, unit in shown)


def when(timestamp: int, *, up: bool = False) -> str:
    """A block timestamp as a UTC minute: '2026-12-03 14:05 UTC', its seconds dropped. `up=True`
    rounds a timestamp with seconds up to the next minute instead (14:05:59 is '14:06', 14:05:00
    stays '14:05'): an eta shown must never be before the instant the guard allows."""
    try:
        stamp = int(timestamp)
        return datetime.fromtimestamp(-(-stamp // 60) * 60 if up else stamp, UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return f"timestamp {int(timestamp)}"


def eta(timestamp: int) -> str:
    """When a delayed transaction may run, as a UTC minute never before it: `when(timestamp, up=True)`."""
    return when(timestamp, up=True)


def countdown(now: int, eta: int) -> str:
    """'due in 1 d 23 h' from the chain's clock `now` (rounded up: never sooner than the truth), or
    'due now' once `eta` is reached."""
    return "due now" if eta <= now else f"due in {duration(eta - now, up=True)}"


def due(now: int, eta: int) -> str:
    """When a delayed transaction may run: 'due in 1 d 23 h, at 2026-12-03 14:05 UTC' ('due now,
    since …'). The wait and the time are rounded up, so neither is earlier than the guard allows."""
    if eta <= now:
        return f"due now, since {when(eta)}"
    return f"{countdown(now, eta)}, at {when(eta, up=True)}"


def expires(now: int, expiry: int) -> str:
    """The end of a queue entry's window: 'expires in 6 d 23 h, at …' or 'expired 2 h ago, at …'."""
    if expiry <= now:
        return f"expired {duration(now - expiry)} ago, at {when(expiry)}"
    return f"expires in {duration(expiry - now)}, at {when(expiry)}"


# --- amounts ------------------------------------------------------------------------------------


@cache
def default_book() -> TokenBook:
    """The book with only the native currency (ETH): what words use when no treasury's book is at hand."""
    from treasury.amounts import TokenBook

    return TokenBook.of()


def _book(book: TokenBook | None) -> TokenBook:
    return book if book is not None else default_book()


def amount(book: TokenBook | None, token_address: str, units: int) -> str:
    """Base units in the token's terms: '12,000 USDC'; a token the book lacks: '12000 base units of 0x…'."""
    return _book(book).format(token_address, int(units))


def token_name(book: TokenBook | None, token_address: str) -> str:
    """What a sentence calls a token: its symbol ('USDC', 'ETH'), else 'token 0x…'."""
    token = _book(book).by_address(token_address)
    if token is not None:
        return token.symbol
    return "the native currency" if token_address == ZERO_ADDRESS else f"token {token_address}"


def units_of(book: TokenBook | None, symbol_or_address: str, units: int) -> str:
    """`amount` for a key that is a symbol of the book or a token address (as `Treasury.status` keys budgets)."""
    chosen = _book(book)
    token = next((t for s, t in chosen.tokens.items() if s.upper() == symbol_or_address.upper()), None)
    if token is None and symbol_or_address.startswith("0x"):
        return chosen.format(symbol_or_address, int(units))
    if token is None:
        return f"{int(units)} base units of {symbol_or_address}"
    return chosen.format(token.address, int(units))


# --- addresses and people -----------------------------------------------------------------------


def labelled(text: str, label: Labeller | None) -> str:
    """`text` with every address in it shown through `label` (each once: 'acme (0x…)').

    For sentences built elsewhere (a decoded call's description): the address book's names go
    beside the addresses without every decoder having to know the book.
    """
    if label is None or label is plain:
        return text
    from treasury.addresses import to_checksum

    def one(match: re.Match[str]) -> str:
        try:
            return label(to_checksum(match.group(0)))
        except Exception:  # noqa: BLE001 - a name is decoration: an address the labeller refuses stays as written
            return match.group(0)

    return _ADDRESS.sub(one, text)


def local_actor(name: str) -> str:
    """The audit actor (and unsigned proposer) for an OS user name: as it is, except that a name
    shaped like an address (USER=0x…, which anyone can set) is stored as "local user 0x…", so it
    can never pass for an account: only a proposer's signature (--account) stores a bare address."""
    return f"{_LOCAL_USER}{name.strip()}" if _ONLY_ADDRESS.fullmatch(name.strip()) else name


def actor(stored: str, label: Labeller | None = None) -> str:
    """An audit log actor with the address book's names beside its addresses, except a local
    user's name, which is shown as typed: "local user 0x…" is a name, not an account."""
    return stored if stored.startswith(_LOCAL_USER) else labelled(stored, label)


def proposer(stored: str, label: Labeller | None = None) -> str:
    """Who proposed, as stored: an account's address (a proposer that signed, --account) is shown
    with its name; a bundle's claim stays marked as a claim; anything else is the OS user of the
    machine that proposed, said so, so nobody mistakes it for an owner (an address-shaped user
    name is stored as "local user 0x…" by `local_actor`, and never labelled)."""
    text = stored.strip()
    if text.startswith(("bundle:", _LOCAL_USER)):
        return text
    if _ONLY_ADDRESS.fullmatch(text):
        from treasury.addresses import to_checksum

        return (label or plain)(to_checksum(text))
    return f"local user {text}" if text else "unknown"


# --- the delay queue ----------------------------------------------------------------------------
