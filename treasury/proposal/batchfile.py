"""Batch files: several transfers and calls for one Safe transaction.

Three kinds of file, told apart by their extension or shape:

YAML or JSON, a list of items (or a mapping with one `calls:` list):

    - {to: "0xVendor", amount: "250 USDC", memo: "invoice 7"}   # a transfer (ETH or a token of the book)
    - {to: acme, amount: "250 USDC"}                            # a name of the address book (or ENS)
    - {target: USDC, function: "approve(address,uint256)", args: ["0xSpender", 1000000]}
    - {target: "0xPool", function: "setFee(uint256)", args: [30], value: "0.1 ETH"}

a payroll CSV (`*.csv`, treasury.formats.payroll: `to,amount[,token][,memo]`), and a Safe{Wallet}
Transaction Builder file (JSON with `transactions` and `chainId`, treasury.formats.tx_builder).

Every file is read bounded (size, depth), and every amount, address and argument goes through the
same parsers as the command line, so a batch can express nothing a single proposal could not.
A refusal names the item ("batch item 3: ...") or the CSV line ("payroll.csv line 7: ..."), and
comes before anything is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from treasury.addresses import ZERO_ADDRESS, parse_address, to_checksum
from treasury.amounts import TokenBook
from treasury.errors import InvalidInput
from treasury.files import load_json, load_yaml, read_text
from treasury.formats.payroll import is_csv, read_payroll_csv
from treasury.formats.tx_builder import BuilderFile, looks_like_tx_builder, read_tx_builder
from treasury.proposal.arguments import parse_arguments

MAX_ITEMS = 256  # MultiSend has no limit, but a batch no signer can review is not a batch
TRANSFER_KEYS = {"to", "amount"}
CALL_KEYS = {"target", "function", "args", "value"}
EXTRA_KEYS = {"memo", "line"}  # a note for the description; the CSV line an item came from
MAX_MEMO_CHARS = 200
ERC20_TRANSFER = bytes.fromhex("a9059cbb")  # transfer(address,uint256)
_SHAPE = "{to, amount[, memo]} or {target, function, args[, value][, memo]}"

Resolve = Callable[[str, str], str]
"""(text, what) -> checksummed address: an address, a book name, an ENS name (Treasury.resolve_address)."""


@dataclass(frozen=True)
class BatchSource:
    """A batch file read and checked for shape; no chain or address book consulted yet."""

    path: str
    items: tuple[dict[str, Any], ...] = ()
    builder: BuilderFile | None = None
    payroll: bool = False


@dataclass(frozen=True)
class PlannedBatch:
    """What `propose batch` will propose, with what its proposer is shown before it is stored.

    `calls` are the inner calls in order; `intent` the one Safe transaction (the MultiSend batch,
    or the call itself when a Transaction Builder file holds one, as Safe{Wallet} would send it);
    `title` a default title ("" when the intent's summary says it best).
    """

    calls: tuple[Any, ...]
    intent: Any
    title: str = ""

    def totals(self) -> dict[str, int]:
        """Token address (the zero address for ETH) -> base units paid out, in order of first payment."""
        sums: dict[str, int] = {}
        for call in self.calls:
            moved = payment(call)
            if moved is not None:
                sums[moved[0]] = sums.get(moved[0], 0) + moved[2]
        return sums

    def payments(self) -> int:
        return sum(1 for call in self.calls if payment(call) is not None)

    def summary(self, book: TokenBook) -> list[str]:
        """Lines a proposer reads before confirming: the count, then the total per token."""
        payments, other = self.payments(), len(self.calls) - self.payments()
        parts = [_count(payments, "payment")] if payments else []
        parts += [_count(other, "other call" if payments else "call")] if other else []
        lines = [f"{' and '.join(parts)} in one Safe transaction"]
        lines += [f"  total {book.format(token, units)}" for token, units in self.totals().items()]
        return lines


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def payment(call: Any) -> tuple[str, str, int] | None:
    """(token address, recipient, units) when a call pays: ETH with no calldata, or an ERC-20 transfer."""
    if call.value and not call.data:
        return ZERO_ADDRESS, call.to, call.value
    data = bytes(call.data)
    if not call.value and len(data) == 68 and data[:4] == ERC20_TRANSFER and not any(data[4:16]):
        return call.to, to_checksum(data[16:36]), int.from_bytes(data[36:68], "big")
    return None


# --- reading -----------------------------------------------------------------------------------


def load_batch(path: str | Path) -> BatchSource:
    """The batch file at `path`: a payroll CSV (by extension), a Transaction Builder file (by shape), or items."""
    if is_csv(path):
        items = read_payroll_csv(path)
        _bound(len(items), f"payroll file {path}")
        return BatchSource(str(path), tuple(items), payroll=True)
    data = _parse(read_text(path, "batch file"), f"cannot read batch file {path}")
    if looks_like_tx_builder(data):
        return BatchSource(str(path), builder=read_tx_builder(data, f"Transaction Builder file {path}", MAX_ITEMS))
    return BatchSource(str(path), tuple(_items(data, path)))


def read_batch_file(path: str | Path) -> list[dict[str, Any]]:
    """The items of a YAML/JSON batch file or a payroll CSV (a Transaction Builder file has calls, not items)."""
    source = load_batch(path)
    if source.builder is not None:
        raise InvalidInput(f"{path} is a Transaction Builder file: read it with load_batch")
    return list(source.items)


def _parse(text: str, what: str) -> Any:
    """JSON read as JSON when it is (a Transaction Builder checksum is over JSON's values), else YAML."""
    if text.lstrip().startswith("{"):
        try:
            return load_json(text, what)
        except InvalidInput:
            pass  # a YAML flow mapping ({calls: [...]}) is not JSON: YAML gives the error if any
    return load_yaml(text, what)


def _items(data: Any, path: str | Path) -> list[dict[str, Any]]:
    if isinstance(data, dict) and set(data) == {"calls"}:
        data = data["calls"]
    if not isinstance(data, list) or not data:
        raise InvalidInput(f"batch file {path} must hold a non-empty list of {_SHAPE} items")
    _bound(len(data), f"batch file {path}")
    for number, item in enumerate(data, 1):
        if not isinstance(item, dict):
            raise InvalidInput(f"batch item {number} is not a mapping ({_SHAPE})")
    return data


def _bound(count: int, what: str) -> None:
    if count > MAX_ITEMS:
        raise InvalidInput(f"{what} has {count} items; at most {MAX_ITEMS} fit one reviewable transaction")


# --- planning ----------------------------------------------------------------------------------


def plan_batch(source: BatchSource, safe: str, book: TokenBook, *, chain_id: int, version: str,
               resolve: Resolve | None = None) -> PlannedBatch:
    """The proposal a batch file makes, every item parsed; InvalidInput for the first bad one."""
    from treasury.proposal import build

    if source.builder is not None:
        calls = builder_intents(source.builder, book, chain_id, source.path, safe=safe)
        intent = calls[0] if len(calls) == 1 else build.batch(calls, version)
        return PlannedBatch(tuple(calls), intent, source.builder.name)
    calls = batch_intents(safe, book, source.items, resolve, source=source.path)
    title = f"payroll: {_count(len(calls), 'payment')}" if source.payroll else ""
    return PlannedBatch(tuple(calls), build.batch(calls, version), title)


def builder_intents(builder: BuilderFile, book: TokenBook, chain_id: int, path: str, *, safe: str | None = None) -> list:
    """`Intent`s of a Transaction Builder file's calls, refused when it was made for another chain
    or (its meta.createdFromSafeAddress, when present) for another Safe than `safe`."""
    from treasury.proposal.build import Intent

    if builder.chain_id != chain_id:
        raise InvalidInput(f"Transaction Builder file {path} is for chain {builder.chain_id}, "
                           f"but this treasury is on chain {chain_id}: nothing proposed")
    if safe is not None and builder.safe is not None and builder.safe.lower() != safe.lower():
        raise InvalidInput(f"Transaction Builder file {path} was made for Safe {builder.safe}, "
                           f"but this treasury's Safe is {safe}: nothing proposed")
    return [Intent(call.to, call.value, call.data, 0, _describe(book, call)) for call in builder.calls]


def _describe(book: TokenBook, call: Any) -> str:
    """A call of a foreign file in words, for the proposal's description (the decoder shows it in full)."""
    moved = payment(call)
    if moved is not None:
        return f"send {book.format(moved[0], moved[2])} to {moved[1]}"
    what = call.method or ("0x" + bytes(call.data[:4]).hex() if call.data else "no data")
    value = f" with {book.format(ZERO_ADDRESS, call.value)}" if call.value else ""
    return f"call {what} on {call.to}{value}"


def batch_intents(safe: str, book: TokenBook, items: Sequence[dict[str, Any]], resolve: Resolve | None = None,
                  *, source: str = "") -> list:
    """`Intent`s from batch items: {to, amount} (a transfer) or {target, function, args, value} (a call).

    `resolve` turns a recipient or call target that is not a 0x address into one (a name of the
    address book, an ENS name); without it only addresses (and token symbols as targets) are read.
    An item with a `line` (a CSV row) is named "{source} line N" in errors, else "batch item N".
    """
    intents = []
    for number, item in enumerate(items, 1):
        line = item.get("line") if isinstance(item, dict) else None
        where = f"{source or 'batch'} line {line}" if isinstance(line, int) else f"batch item {number}"
        intents.append(_intent(safe, book, item, where, resolve))
    return intents


def _intent(safe: str, book: TokenBook, item: dict[str, Any], where: str, resolve: Resolve | None):
    from treasury.proposal import build

    if not isinstance(item, dict):
        raise InvalidInput(f"{where} is not a mapping ({_SHAPE})")
    keys = set(item) - EXTRA_KEYS
    memo = _memo(item.get("memo"), where)
    if keys == TRANSFER_KEYS:
        try:
            to = _address(_text(item["to"], "to", where), "recipient", resolve)
            intent = build.token_transfer(safe, book, to, _text(item["amount"], "amount", where))
        except InvalidInput as error:
            raise InvalidInput(_prefixed(where, error)) from None
    elif {"target", "function"} <= keys <= CALL_KEYS:
        intent = _call(book, item, where, resolve)
    else:
        raise InvalidInput(f"{where} has keys {sorted(map(str, set(item)))}; expected {_SHAPE}")
    if memo:
        intent = replace(intent, summary=f"{intent.summary} ({memo})")
    return intent


def _memo(value: object, where: str) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: memo must be a string")
    if len(value) > MAX_MEMO_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(f"{where}: memo must be one line of at most {MAX_MEMO_CHARS} characters")
    return value.strip()


def _prefixed(where: str, error: InvalidInput) -> str:
    text = str(error)
    return text if text.startswith(f"{where}:") else f"{where}: {text}"


def _address(text: str, what: str, resolve: Resolve | None) -> str:
    """A 0x address as written (parsed later), or a name through `resolve` when one is given."""
    if resolve is None or text.lower().startswith("0x"):
        return text
    return resolve(text, what)


def _call(book: TokenBook, item: dict[str, Any], where: str, resolve: Resolve | None):
    from treasury.proposal import build

    signature = _text(item["function"], "function", where)
    args = item.get("args") or []
    if not isinstance(args, list):
        raise InvalidInput(f"{where}: args must be a list")
    parsed = parse_arguments(signature, args, where, resolve=resolve)
    wei = 0
    if item.get("value") is not None:
        value = item["value"]
        if isinstance(value, float):
            raise InvalidInput(f"{where}: value {value} must be quoted (\"{value} ETH\") so that it is read exactly")
        try:
            token, wei = book.parse(str(value), default_symbol="ETH")
        except InvalidInput as error:
            raise InvalidInput(f"{where}: {error}") from None
        if not token.is_native:
            raise InvalidInput(f"{where}: value {value!r} must be in the native currency")
    try:
        target = _target(book, _text(item["target"], "target", where), resolve)
        return build.contract_call(target, signature, parsed, wei)
    except InvalidInput as error:
        raise InvalidInput(_prefixed(where, error)) from None
    except (TypeError, ValueError, OverflowError) as error:
        raise InvalidInput(f"{where}: arguments do not fit {signature}: {str(error).splitlines()[0]}") from None


def _target(book: TokenBook, target: str, resolve: Resolve | None = None) -> str:
    """A contract address, a token of the book by symbol (as in the policy config), or a book name."""
    if target.lower().startswith("0x"):
        return parse_address(target, "call target")
    if resolve is not None and not any(symbol.upper() == target.upper() for symbol in book.tokens):
        return resolve(target, "call target")
    token = book.by_symbol(target)
    if token.is_native:
        raise InvalidInput(f"{target} is the native currency, not a contract")
    return token.address


def _text(value: object, key: str, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and key in ("to", "target"):
        raise InvalidInput(f"{where}: {key} must be quoted (YAML reads an unquoted 0x... as a number)")
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: {key} must be a string, not {type(value).__name__}")
    return value
