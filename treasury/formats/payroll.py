"""A payroll CSV: one payment a row, as an ops team keeps it in a spreadsheet.

    to,amount,token,memo
    acme,250,USDC,invoice 2026-11
    0x5B38Da6a701c568545dCfcB03FcB875f56beddC4,0.5,ETH,
    alice.eth,"1,200 USDC",,November

A header row is required (so a reordered or missing column is noticed, not paid): columns `to` and
`amount`, optionally `token` and `memo`, in any order and any case. The amount is a number with the
`token` column giving its symbol, or "250 USDC" when that column is absent or empty. `to` is an
address or a name (the address book, ENS), resolved later with the rest of the batch.

The reader only shapes rows into batch items ({to, amount, memo, line}); amounts, symbols and
recipients are parsed by the same code as every other batch item, with the row's line number in
every refusal ("payroll.csv line 7: ..."). Excel's UTF-8 byte order mark is accepted; the file is
read bounded like every other file the tool is handed.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from treasury.errors import InvalidInput
from treasury.files import read_text

MAX_CSV_BYTES = 512 * 1024  # a few thousand rows; a batch is capped far below that anyway
MAX_MEMO_CHARS = 200
REQUIRED = ("to", "amount")
COLUMNS = ("to", "amount", "token", "memo")
HEADER_HINT = "to,amount[,token][,memo]"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HAS_SYMBOL = re.compile(r"[A-Za-z]")


def is_csv(path: str | Path) -> bool:
    """Whether `path` names a CSV file (by its extension: a CSV has no shape to detect reliably)."""
    return Path(path).suffix.lower() == ".csv"


def read_payroll_csv(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a payroll CSV as batch items {to, amount[, memo], line}; one-line errors otherwise."""
    text = read_text(path, "payroll file", max_bytes=MAX_CSV_BYTES).removeprefix("\ufeff")
    rows = _rows(text, str(path))
    if not rows:
        raise InvalidInput(f"payroll file {path} is empty: it needs a header row ({HEADER_HINT}) and one row per payment")
    header_line, header = rows[0]
    columns = _columns(header, f"{path} line {header_line}")
    items = [_item(columns, cells, f"{path} line {line}", line) for line, cells in rows[1:]]
    if not items:
        raise InvalidInput(f"payroll file {path} has a header row but no payments")
    return items


def _rows(text: str, where: str) -> list[tuple[int, list[str]]]:
    """(first line number, cells) of every record that is not blank; a quoted cell may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    line = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                rows.append((line, cells))
            line = reader.line_num + 1
    except csv.Error as error:
        raise InvalidInput(f"{where} line {reader.line_num}: not valid CSV: {error}") from None
    return rows


def _columns(header: list[str], where: str) -> list[str]:
    """The header's column names, lower case; refused unless it names to and amount, each once."""
    names = [cell.strip().lower() for cell in header]
    if header and header[0].strip().lower().startswith("0x"):
        raise InvalidInput(f"{where}: the first row must be a header row ({HEADER_HINT}), not a payment")
    for name in names:
        if name not in COLUMNS:
            raise InvalidInput(f"{where}: unknown column {name!r}; the header row is {HEADER_HINT}")
        if names.count(name) > 1:
            raise InvalidInput(f"{where}: column {name!r} appears twice")
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise InvalidInput(f"{where}: the header row has no {' and no '.join(missing)} column ({HEADER_HINT})")
    return names


def _item(columns: list[str], cells: list[str], where: str, line: int) -> dict[str, Any]:
    """One payment row as a batch item; the amount carries its symbol exactly once."""
    if len(cells) != len(columns):
        raise InvalidInput(f"{where}: {len(cells)} cells, but the header row has {len(columns)} columns")
    row = {name: cell.strip() for name, cell in zip(columns, cells, strict=True)}
    for name in REQUIRED:
        if not row[name]:
            raise InvalidInput(f"{where}: {name} is empty")
    item: dict[str, Any] = {"to": row["to"], "amount": _amount(row["amount"], row.get("token", ""), where), "line": line}
    memo = row.get("memo", "")
    if memo:
        if len(memo) > MAX_MEMO_CHARS:
            raise InvalidInput(f"{where}: memo is longer than {MAX_MEMO_CHARS} characters")
        if _CONTROL.search(memo):
            raise InvalidInput(f"{where}: memo contains a control character (a line break?)")
        item["memo"] = memo
    return item


def _amount(amount: str, token: str, where: str) -> str:
    """"250 USDC" from amount 250 and token USDC, or the amount as written when no token is given."""
    if not token:
        return amount
    if _HAS_SYMBOL.search(amount):
        raise InvalidInput(f"{where}: amount {amount!r} names a token and the token column says {token!r}: "
                           "give the symbol in one place")
    return f"{amount} {token}"
