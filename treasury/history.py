"""The treasury's executed transactions as rows an accountant can load: `treasury history`.

One row per value movement: an ETH transfer, an ERC-20 `transfer`/`transferFrom`, each transfer
inside a MultiSend batch. A transaction that moved nothing (a contract call, a rejection, a failed
execution) is one row with an empty amount, so every fee paid still appears once. Dates are block
times in UTC and the fee is what the receipt says was paid (gasUsed x effectiveGasPrice), never an
estimate: the chain is the truth, the store only says which transactions are ours and why.

The reading is split in two so each half can be tested alone: `movements` (the store's decoded
calls, no chain) and `history` (joins them with block times and receipts from a `ChainReader`).
Text meant for a spreadsheet goes through `csv_text`, which neutralises formula-looking cells:
a proposal title such as `=HYPERLINK(...)` is data, not something a spreadsheet should run.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from treasury.addresses import parse_address, to_checksum
from treasury.amounts import NATIVE, TokenBook, format_units
from treasury.decode.hashes import function_selector
from treasury.errors import InvalidInput

if TYPE_CHECKING:
    from treasury.decode.calls import DecodedCall
    from treasury.records import TreasuryRecords
    from treasury.store import ExecutionRecord, ProposalRecord

COLUMNS = ("date", "block", "tx_hash", "status", "token", "amount", "units", "recipient", "recipient_name",
           "fee_eth", "proposal_id", "title", "signers")
# Cells a spreadsheet would evaluate (OWASP's CSV injection list): prefixed with ' to stay text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRANSFER = function_selector("transfer(address,uint256)")
_TRANSFER_FROM = function_selector("transferFrom(address,address,uint256)")
_EXEC_TYPES = ["address", "uint256", "bytes", "uint8", "uint256", "uint256", "uint256", "address", "address", "bytes"]
_EXEC_TRANSACTION = function_selector(f"execTransaction({','.join(_EXEC_TYPES)})")


# --- filters ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryFilter:
    """Which rows to keep: block time in [since, until), and one token (its address) if given."""

    since: datetime | None = None
    until: datetime | None = None
    token: str | None = None

    def keeps(self, row: HistoryRow) -> bool:
        when = datetime.fromtimestamp(row.timestamp, UTC)
        if (self.since and when < self.since) or (self.until and when >= self.until):
            return False
        return self.token is None or row.token_address == self.token


def parse_date(text: str, what: str, *, end: bool = False) -> datetime:
    """A UTC instant from "2026-12-01" or an ISO time ("2026-12-01T14:05", "...+02:00").

    A bare date given as the end of a range means the whole day: `--until 2026-12-01` keeps
    everything on the 1st, which is what a person asking for "until the 1st" expects.
    """
    text = text.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date like 2026-12-01 or 2026-12-01T14:05 (UTC)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if end and _DATE.fullmatch(text):
        parsed += timedelta(days=1)
    return parsed.astimezone(UTC)


def history_filter(book: TokenBook, since: str | None = None, until: str | None = None,
                   token: str | None = None) -> HistoryFilter:
    """The filter from the command's text options, each refused with one line when it is wrong."""
    start = parse_date(since, "--since") if since else None
    stop = parse_date(until, "--until", end=True) if until else None
    if start and stop and start >= stop:
        raise InvalidInput(f"--since {since} is not before --until {until}")
    address = None
    if token:
        address = parse_address(token, "--token") if token.startswith("0x") else book.by_symbol(token).address
    return HistoryFilter(start, stop, address)


# --- rows -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Movement:
    """One value movement (or, with units None, a call that moved nothing) inside a transaction."""

    token_address: str | None
    units: int | None
    recipient: str


@dataclass(frozen=True)
class HistoryRow:
    timestamp: int
    block: int
    tx_hash: str
    status: str  # executed | failed | reverted
    token: str  # symbol from the book, the token's address, or "" when nothing moved
    token_address: str | None
    amount: str  # in token units ("1,234.5"); "" when nothing moved or the token's decimals are unknown
    units: int | None  # base units, exact
    recipient: str
    recipient_name: str
    fee_wei: int
    proposal_id: str
    title: str
    signers: tuple[str, ...]

    @property
    def date(self) -> str:
        return datetime.fromtimestamp(self.timestamp, UTC).isoformat().replace("+00:00", "Z")

    @property
    def fee_eth(self) -> str:
        return format_units(self.fee_wei, NATIVE.decimals).replace(",", "")

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape; integers that can exceed 2**53 are decimal strings."""
        return {
            "date": self.date, "block": self.block, "tx_hash": self.tx_hash, "status": self.status,
            "token": self.token or None, "token_address": self.token_address, "amount": self.amount or None,
            "units": None if self.units is None else str(self.units), "recipient": self.recipient,
            "recipient_name": self.recipient_name or None, "fee_eth": self.fee_eth, "fee_wei": str(self.fee_wei),
            "proposal_id": self.proposal_id, "title": self.title, "signers": list(self.signers),
        }

    def cells(self) -> list[str]:
        """The CSV row, in COLUMNS order; amounts without thousands separators (spreadsheets parse them)."""
        return [self.date, str(self.block), self.tx_hash, self.status, self.token, self.amount.replace(",", ""),
                "" if self.units is None else str(self.units), self.recipient, self.recipient_name, self.fee_eth,
                self.proposal_id, self.title, " ".join(self.signers)]


def movements(calls: Sequence[DecodedCall], fallback_recipient: str) -> list[Movement]:
    """The value movements of a transaction's calls (a batch's inner calls), or one empty movement.

    ETH sent with a call counts as a movement to the call's target; an ERC-20 transfer/transferFrom
    moves the token to its recipient argument. Approvals and other calls move nothing by themselves.
    """
    found: list[Movement] = []
    for call in calls:
        if call.function == "multiSend":
            continue  # a batch that did not unwrap: its inner value is unknown, the row below stays empty
        if call.value:
            found.append(Movement(NATIVE.address, call.value, to_checksum(call.to)))
        token_move = _token_movement(call)
        if token_move is not None:
            found.append(token_move)
    return found or [Movement(None, None, to_checksum(fallback_recipient))]


def _token_movement(call: DecodedCall) -> Movement | None:
    data = bytes(call.data)
    selector = data[:4]
    if selector not in (_TRANSFER, _TRANSFER_FROM):
        return None
    from eth_abi import decode as abi_decode

    types = ["address", "uint256"] if selector == _TRANSFER else ["address", "address", "uint256"]
    try:
        *addresses, units = abi_decode(types, data[4:], strict=True)
    except Exception:  # noqa: BLE001 - calldata that does not decode moved nothing we can name
        return None
    return Movement(to_checksum(call.to), int(units), to_checksum(addresses[-1]))


class ChainReader(Protocol):
    """What history needs from a node: a block's time, a receipt's fee and a transaction's input
    (one request each)."""

    def block_time(self, number: int) -> int: ...

    def fee(self, tx_hash: str) -> int: ...

    def calldata(self, tx_hash: str) -> bytes: ...


class Web3Reader:
    """A ChainReader over web3, with every answer cached: a block or transaction is asked for once.

    `prefetch` asks for all of them in JSON-RPC batches (BATCH per round trip), so an export of a
    year of payments is a few round trips, not three per transaction; a node or proxy that refuses
    batches gets the same questions one at a time instead.
    """

    BATCH = 100

    def __init__(self, web3: Any) -> None:
        self.web3 = web3
        self._times: dict[int, int] = {}
        self._fees: dict[str, int] = {}
        self._inputs: dict[str, bytes] = {}

    def prefetch(self, blocks: Iterable[int], tx_hashes: Iterable[str]) -> None:
        wanted: list[tuple[str, Any]] = [("block", b) for b in sorted(set(blocks)) if b not in self._times]
        wanted += [(kind, h) for h in dict.fromkeys(tx_hashes) if h not in self._fees for kind in ("receipt", "tx")]
        for start in range(0, len(wanted), self.BATCH):
            chunk = wanted[start:start + self.BATCH]
            try:
                with self.web3.batch_requests() as batch:
                    for kind, key in chunk:
                        batch.add(self._request(kind, key))
                    answers = batch.execute()
                for (kind, key), answer in zip(chunk, answers, strict=True):
                    self._keep(kind, key, answer)
            except Exception:  # noqa: BLE001 - batches are an optimisation: any refusal means one at a time
                return

    def _request(self, kind: str, key: Any) -> Any:
        eth = self.web3.eth
        return {"block": eth.get_block, "receipt": eth.get_transaction_receipt, "tx": eth.get_transaction}[kind](key)

    def _keep(self, kind: str, key: Any, answer: Any) -> None:
        if kind == "block":
            self._times[key] = int(answer["timestamp"])
        elif kind == "receipt":
            self._fees[key] = int(answer["gasUsed"]) * int(answer["effectiveGasPrice"])
        else:
            self._inputs[key] = bytes(answer["input"])

    def block_time(self, number: int) -> int:
        if number not in self._times:
            self._keep("block", number, self._request("block", number))
        return self._times[number]

    def fee(self, tx_hash: str) -> int:
        if tx_hash not in self._fees:
            self._keep("receipt", tx_hash, self._request("receipt", tx_hash))
        return self._fees[tx_hash]

    def calldata(self, tx_hash: str) -> bytes:
        if tx_hash not in self._inputs:
            self._keep("tx", tx_hash, self._request("tx", tx_hash))
        return self._inputs[tx_hash]


Namer = Callable[[str], str | None]


def token_namer(book: TokenBook) -> Namer:
    """Names from the token book alone (used when the treasury has no address book)."""
    def name_of(address: str) -> str | None:
        token = book.by_address(address)
        return token.symbol if token else None

    return name_of


def history(records: TreasuryRecords, reader: ChainReader, selection: HistoryFilter | None = None,
            name_of: Namer | None = None) -> list[HistoryRow]:
    """Every recorded execution of the treasury's proposals as rows, oldest first, filtered."""
    selection = selection or HistoryFilter()
    name_of = name_of or token_namer(records.book)
    proposals = {p.id: p for p in records.proposals()}
    executions = records.store.executions_of(list(proposals))
    recorded_all = [e for found in executions.values() for e in found]
    prefetch = getattr(reader, "prefetch", None)
    if prefetch is not None:
        prefetch([e.block_number for e in recorded_all], [e.tx_hash for e in recorded_all])
    rows: list[HistoryRow] = []
    for pid, recorded in executions.items():
        for execution in recorded:
            rows.extend(_rows_of(records, proposals[pid], execution, reader, name_of))
    rows.sort(key=lambda r: (r.block, r.tx_hash))
    return [r for r in rows if selection.keeps(r)]


def _rows_of(records: TreasuryRecords, proposal: ProposalRecord, execution: ExecutionRecord, reader: ChainReader,
             name_of: Namer) -> Iterable[HistoryRow]:
    timestamp = reader.block_time(execution.block_number)
    fee = reader.fee(execution.tx_hash)
    signers = onchain_signers(reader.calldata(execution.tx_hash), proposal.safe_tx_hash) or tuple(
        sorted({s.owner for s in records.store.signatures(proposal.id)}, key=str.lower))
    moved = movements(records.decode(proposal.id).calls, proposal.to) if execution.success else [
        Movement(None, None, proposal.to)]
    for movement in moved:
        token, amount = _token_and_amount(records.book, movement)
        yield HistoryRow(
            timestamp=timestamp, block=execution.block_number, tx_hash=execution.tx_hash,
            status=_status(proposal, execution), token=token, token_address=movement.token_address,
            amount=amount, units=movement.units, recipient=movement.recipient,
            recipient_name=name_of(movement.recipient) or "", fee_wei=fee, proposal_id=proposal.id,
            title=proposal.title, signers=signers,
        )


def onchain_signers(calldata: bytes, safe_tx_hash: str) -> tuple[str, ...]:
    """The owners whose signatures an execTransaction carried (what the Safe checked), sorted.

    Empty when the transaction is not a direct execTransaction (a relayer, a module): then the
    store's signatures are the best account of who approved it.
    """
    if calldata[:4] != _EXEC_TRANSACTION:
        return ()
    from eth_abi import decode as abi_decode
    from safe_eth.safe.safe_signature import SafeSignature

    try:
        signatures = abi_decode(_EXEC_TYPES, calldata[4:])[-1]
        parsed = SafeSignature.parse_signature(signatures, bytes.fromhex(safe_tx_hash.removeprefix("0x")))
    except Exception:  # noqa: BLE001 - input that does not decode names no signer; fall back to the store
        return ()
    return tuple(sorted({to_checksum(s.owner) for s in parsed}, key=str.lower))


def _status(proposal: ProposalRecord, execution: ExecutionRecord) -> str:
    """executed; failed (the Safe spent its nonce, ExecutionFailure); reverted (nothing spent but gas)."""
    if execution.success:
        return "executed"
    return "failed" if proposal.status == "failed" else "reverted"


def _token_and_amount(book: TokenBook, movement: Movement) -> tuple[str, str]:
    if movement.token_address is None or movement.units is None:
        return "", ""
    token = book.by_address(movement.token_address)
    if token is None:
        return movement.token_address, ""  # decimals unknown: the exact base units are in `units`
    return token.symbol, format_units(movement.units, token.decimals)


# --- output -----------------------------------------------------------------------------------------


def safe_cell(text: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading '."""
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_text(rows: Iterable[HistoryRow]) -> str:
    """RFC 4180 CSV (header row, CRLF, quotes doubled) with every cell formula-safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row.cells()])
    return out.getvalue()
