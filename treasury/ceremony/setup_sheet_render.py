"""The setup sheet on paper: Markdown (for the repository or a wiki) and PDF (for the drawer).

Both carry the same sections from one list of (heading, rows) built here, the QR code of the
Safe's EIP-681 address (segno builds the matrix; the Markdown shows it as text blocks that survive
any viewer and a printer, the PDF draws it as squares), the checksum, and the facts the checksum is
taken over, so `treasury setup-sheet --check` can say what changed without the old chain.

`read_markdown` and `read_pdf` check a written sheet: they render it again from the facts and context
it embeds and compare what a person reads (every Markdown line; the PDF's page content, text and QR
squares), so an edited address, QR code or URL is refused, not only an edited JSON block.
"""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from treasury.ceremony.setup_sheet import (
    CONTEXT_BEGIN,
    CONTEXT_END,
    FACTS_BEGIN,
    FACTS_END,
    MAX_AMOUNT,
    PDF_CONTEXT_PREFIX,
    PDF_FACTS_PREFIX,
    SAFE_WALLET_SHORT_NAMES,
    SetupSheet,
    canonical_json,
    eip681_uri,
    owner_kind_text,
    parse_markdown,
    parse_pdf,
    sheet_context,
)
from treasury.errors import InvalidInput
from treasury.wording import duration

Section = tuple[str, list[str]]  # a heading and its lines (Markdown-light: `code` only)
QR_QUIET_ZONE = 2  # modules of white around the code (segno's default 4 wastes paper; 2 still scans)


def qr_matrix(payload: str) -> list[list[bool]]:
    """The QR code of `payload` as rows of dark (True) modules, quiet zone excluded."""
    import segno

    code = segno.make(payload, error="m", micro=False)
    return [[bool(module) for module in row] for row in code.matrix]


def qr_text(matrix: list[list[bool]]) -> list[str]:
    """Two rows of modules per line in half blocks, ink for dark modules (as printed on white paper),
    the quiet zone as spaces."""
    width = len(matrix[0]) + 2 * QR_QUIET_ZONE
    blank = [False] * width
    rows = [blank] * QR_QUIET_ZONE + [[False] * QR_QUIET_ZONE + row + [False] * QR_QUIET_ZONE for row in matrix]
    rows += [blank] * QR_QUIET_ZONE
    if len(rows) % 2:
        rows.append(blank)
    glyph = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
    return ["".join(glyph[(top, bottom)] for top, bottom in zip(rows[i], rows[i + 1], strict=True))
            for i in range(0, len(rows), 2)]


def qr_from_text(lines: Iterable[str]) -> list[list[bool]]:
    """The matrix back from `qr_text` lines (quiet zone removed): what a test compares with segno's.
    Trailing spaces an editor may have trimmed are restored from the code's size (odd, square)."""
    lines = list(lines)
    size = 2 * len(lines) - 2 * QR_QUIET_ZONE
    size -= 1 - size % 2
    width = size + 2 * QR_QUIET_ZONE
    rows: list[list[bool]] = []
    for line in lines:
        padded = line.ljust(width)
        rows.append([c in "█▀" for c in padded])
        rows.append([c in "█▄" for c in padded])
    q = QR_QUIET_ZONE
    return [row[q:q + size] for row in rows[q:q + size]]


# --- the content --------------------------------------------------------------------------------


def _amount(sheet: SetupSheet, token: str, units: str) -> str:
    value = int(units)
    if value == MAX_AMOUNT or str(value) == (sheet.facts.get("guard_settings") or {}).get("max_amount"):
        return "no limit"
    symbol, decimals = sheet.tokens.get(token, ("ETH", 18) if token == "0x" + "0" * 40 else (token, 0))
    shown = Decimal(value).scaleb(-decimals) if decimals else Decimal(value)
    return f"{shown.normalize():f} {symbol}"


def _utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def intro(sheet: SetupSheet) -> list[str]:
    return [
        ("Keep this sheet apart from seed phrases and keystores. It holds no secret: it says which Safe holds the "
        "treasury, who controls it, what its guard enforces, and how to execute without this tool."),
        (f"Read from the chain at block {sheet.block} ({_utc(sheet.generated_at)}) on {sheet.network}. The Safe's "
        f"nonce then: {sheet.nonce} (not part of the checksum)."),
        *_checksum_lines(sheet),
    ]


def _checksum_lines(sheet: SetupSheet) -> list[str]:
    if sheet.checksum is None:
        return [("Checksum: none. The facts are INCOMPLETE (" + "; ".join(sheet.incomplete) + "), so this sheet vouches "
                 "for nothing and `treasury setup-sheet --check` will never call it current. Write it again through a "
                 "node that serves the guard's logs.")]
    return [f"Checksum (keccak-256): `{sheet.checksum}`",
            ("Is it still current? `treasury setup-sheet --check THIS-FILE` recomputes the checksum from the chain and "
             "lists what changed; without the tool, hash the facts at the end (keccak-256 of the JSON text exactly as "
             "written) and compare them with a reading of the Safe.")]


def safe_section(sheet: SetupSheet) -> Section:
    f = sheet.facts
    rows = [
        f"Safe: `{f['safe']}` ({sheet.names.get(f['safe'], '')})",
        f"Chain: {f['chain_id']} ({sheet.network})",
        f"Version: {f['version']}",
        f"Singleton (storage slot 0): {_labelled(sheet, f['singleton'])}",
        f"Threshold: {f['threshold']} of {len(f['owners'])} owners",
        f"Fallback handler: {_labelled(sheet, f['fallback_handler'])}",
        "Modules: " + (", ".join(_labelled(sheet, m) for m in f["modules"]) or "none"),
        f"Guard: {_labelled(sheet, f['guard']) if f['guard'] != '0x' + '0' * 40 else 'none'}",
    ]
    if "module_guard" in f:
        rows.append(f"Module guard: {_labelled(sheet, f['module_guard'])}")
    rows.append(f"QR code: `{eip681_uri(f['safe'], f['chain_id'])}` (EIP-681: the address on its chain)")
    return "Safe", rows


def owners_section(sheet: SetupSheet) -> Section:
    rows = []
    for number, owner in enumerate(sheet.facts["owners"], start=1):
        name = sheet.names.get(owner["address"], "(no name in the address book)")
        rows.append(f"{number}. {name}: `{owner['address']}`, {owner_kind_text(owner)}")
        if owner["kind"] == "safe":
            inner = ", ".join(_labelled(sheet, a) for a in owner["owners"])
            rows.append(f"   its owners ({owner['threshold']} sign for it, EIP-1271): {inner}")
    return f"Owners ({sheet.facts['threshold']} of {len(sheet.facts['owners'])} sign)", rows


def guard_section(sheet: SetupSheet) -> Section | None:
    settings = sheet.facts.get("guard_settings")
    if settings is None:
        return None
    if settings.get("kind") != "TreasuryGuard":
        return "Guard settings", ["The guard is not a TreasuryGuard: its settings cannot be read by this tool."]
    s = settings
    rows = [
        f"Bound to Safe `{s['safe']}`; batches only through MultiSendCallOnly {_labelled(sheet, s['multisend_call_only'])}",
        (f"Delay {duration(s['delay'], exact=True)}, then a window of {duration(s['window'], exact=True)} to execute; "
        f"cancelling an entry takes {s['cancel_threshold']} owner signature(s); gas refunds "
        f"{'allowed' if s['allow_refunds'] else 'refused'}"),
        "Allowed recipients: " + (", ".join(_labelled(sheet, a) for a in s["recipients"]) or "none"),
        "Guardians (may cancel a queued intent once): " + (", ".join(_labelled(sheet, a) for a in s["guardians"]) or "none"),
    ]
    rows += [_cap_line(sheet, cap) for cap in s["caps"]] or ["Spending caps: none"]
    for call in s["calls"]:
        rules = f", argument rules {' '.join(call['argument_rules'])}" if call["argument_rules"] else ""
        rows.append(f"Allowed call: selector `{call['selector']}` on {_labelled(sheet, call['target'])}{rules}")
    rows += [f"Allowed typed data: domain `{t['domain_separator']}`, type `{t['type_hash']}`" for t in s["typed_data"]]
    rows.append("Changes to owners, threshold, modules, guard or fallback handler wait the delay in the guard's queue.")
    return f"Guard settings (as on chain, guard {sheet.facts['guard']})", rows


def _cap_line(sheet: SetupSheet, cap: dict[str, Any]) -> str:
    token = cap["token"]
    name = sheet.names.get(token) if token != "0x" + "0" * 40 else "ETH (native)"
    delayed = _amount(sheet, token, cap["delay_above"])
    line = (f"Cap on {name or token}: {_amount(sheet, token, cap['amount'])} per {duration(cap['period'], exact=True)}, "
            f"at most {_amount(sheet, token, cap['max_per_tx'])} per transaction, "
            + ("never delayed for size" if delayed == "no limit" else f"waits the delay above {delayed}"))
    if cap["nft"]:
        line += ", an NFT collection"
    if cap["tier_signers"]:
        line += f", above {_amount(sheet, token, cap['tier_amount'])} needs {cap['tier_signers']} signatures"
    return line


def deployment_section(sheet: SetupSheet) -> Section:
    d = sheet.deployment
    if d is None:
        return "Deployment", ["Not found on chain nor in a deployment manifest (`deployments/CHAIN_ID.json`)."]
    rows = [f"Source: {d['source']}"]
    for key, label in (("factory", "Proxy factory"), ("singleton", "Singleton at creation"),
                       ("singleton_contract", "Singleton is"), ("singleton_deployer", "Singleton deployed through"),
                       ("singleton_salt", "Singleton salt"), ("singleton_code_matches", "Singleton code matches safe-deployments"),
                       ("salt_nonce", "Salt nonce"), ("salt", "CREATE2 salt (keccak(keccak(initializer), salt nonce))"),
                       ("initializer_hash", "keccak of the setup() initializer"),
                       ("address_verified", "Safe address recomputed from these"),
                       ("transaction", "Creation transaction"), ("block", "Block"),
                       ("initial_threshold", "Threshold at creation"), ("note", "Note")):
        if key in d:
            value = d[key]
            if isinstance(value, bool):
                shown = "yes" if value else "no"
            elif isinstance(value, str) and len(value) == 42:
                shown = _labelled(sheet, value)
            else:
                shown = f"`{value}`"
            rows.append(f"{label}: {shown}")
    if "initial_owners" in d:
        rows.append("Owners at creation: " + ", ".join(_labelled(sheet, a) for a in d["initial_owners"]))
    rows.append("Deployment history is shown for rebuilding the Safe elsewhere; it is not part of the checksum.")
    return "Deployment", rows


def execution_section(sheet: SetupSheet) -> Section:
    f = sheet.facts
    safe, chain_id = f["safe"], f["chain_id"]
    short = SAFE_WALLET_SHORT_NAMES.get(chain_id)
    rows = [f"Safe{{Wallet}}: https://app.safe.global/home?safe={short}:{safe} (connect an owner's wallet; "
            "custom calls through Apps > Transaction Builder)" if short else
            f"Safe{{Wallet}}: chain {chain_id} is not one it serves (URL form: https://app.safe.global/home?safe=SHORTNAME:{safe})"]
    rows += [
        (f"safe-cli (pip install safe-cli): `safe-cli {safe} RPC_URL`, then `load_ledger_cli_owners` "
        "(or load each owner's own key there), and:"),
        "   `send_ether TO WEI`, `send_erc20 TO TOKEN AMOUNT`, `send_custom TO VALUE 0xDATA`, `change_threshold N`",
        ("Any client over JSON-RPC: sign the SafeTx (EIP-712, domain chainId + the Safe) with threshold owners and call "
        "execTransaction with the signatures sorted by owner address."),
    ]
    for owner in f["owners"]:
        if owner["kind"] == "safe":
            rows.append(f"Contract owner {_labelled(sheet, owner['address'])} signs through its own owners: they sign a "
                        "SafeMessage of the SafeTx hash in that Safe's domain; its signature is the EIP-1271 kind.")
    if (f.get("guard_settings") or {}).get("kind") == "TreasuryGuard":
        guard = f["guard"]
        rows += [
            (f"The guard {guard} checks every transaction. What it holds for the delay must be scheduled first: "
            "`schedule(to, value, data, operation, signatures)` on the guard, signed by threshold owners over "
            "`scheduleHash(to, value, data, operation, nonce)` (EIP-712 Schedule, domain chainId + the guard; nonce = "
            "`intentState(intentId(to, value, data, operation))[0]`); after the delay, execute as usual within the window."),
            "Removing the guard (`setGuard(0x0)` on the Safe) can always be scheduled, so it can never lock the Safe.",
        ]
    return "Executing without this tool", rows


def sections(sheet: SetupSheet) -> list[Section]:
    found = [safe_section(sheet), owners_section(sheet)]
    guard = guard_section(sheet)
    if guard is not None:
        found.append(guard)
    found += [deployment_section(sheet), execution_section(sheet)]
    if sheet.incomplete:
        found.append(("Incomplete facts (no checksum)", list(sheet.incomplete)))
    if sheet.notes:
        found.append(("Notes", list(sheet.notes)))
    return found


def _labelled(sheet: SetupSheet, address: str) -> str:
    name = sheet.names.get(address)
    return f"`{address}` ({name})" if name else f"`{address}`"


# --- Markdown -------------------------------------------------------------------------------------


def markdown(sheet: SetupSheet) -> str:
    """The sheet as Markdown; ends with the facts block `--check` reads."""
    lines = [f"# Setup sheet: treasury {sheet.treasury}", ""]
    for paragraph in intro(sheet):
        lines += [paragraph, ""]
    for heading, rows in sections(sheet):
        lines += [f"## {heading}", ""]
        lines += [row if row.startswith("   ") or row[:1].isdigit() else f"- {row}" for row in rows]
        lines.append("")
        if heading == "Safe":
            lines += ["```text", *qr_text(qr_matrix(eip681_uri(sheet.safe, sheet.chain_id))), "```", ""]
    lines += ["## On-chain facts", "", "The checksum is keccak-256 of the JSON line below, exactly as written.", "",
              FACTS_BEGIN, "```json", canonical_json(sheet.facts), "```", FACTS_END, "",
              ("What the sheet shows beside the facts (names, the reading, the deployment), for `--check` to render "
               "it again:"), "", CONTEXT_BEGIN, "```json", canonical_json(sheet_context(sheet)), "```", CONTEXT_END, ""]
    return "\n".join(lines)


def read_markdown(text: str) -> SetupSheet:
    """The sheet a Markdown file describes, refused in one line unless every line a person reads is what
    its embedded facts and context render to (trailing spaces and line endings aside)."""
    sheet = parse_markdown(text)
    written, expected = _lines(text), _lines(markdown(sheet))
    for number, (line, wanted) in enumerate(zip(written, expected, strict=False), start=1):
        if line != wanted:
            raise InvalidInput(f"line {number} of the sheet is not what its facts say ({_short(line)!r} instead of "
                               f"{_short(wanted)!r}): the sheet was edited")
    if len(written) != len(expected):
        raise InvalidInput(f"the sheet has {len(written)} lines where its facts render {len(expected)}: the sheet was edited")
    return sheet


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.replace("\r\n", "\n").rstrip().split("\n")]


def _short(line: str, width: int = 80) -> str:
    return line if len(line) <= width else line[:width - 3] + "..."


# --- PDF ----------------------------------------------------------------------------------------------


def pdf(sheet: SetupSheet) -> bytes:
    """The sheet as a PDF (A4, core fonts): the same sections, the QR code drawn, the facts in its keywords."""
    from fpdf import FPDF

    doc = FPDF(format="A4")
    doc.set_title(f"Setup sheet: treasury {sheet.treasury}")
    doc.set_creator("ape-treasury setup-sheet")
    doc.set_subject(f"Safe {sheet.safe} on chain {sheet.chain_id}, checksum {sheet.checksum or 'none (incomplete)'}")
    doc.set_keywords(f"{PDF_FACTS_PREFIX}{_b64(canonical_json(sheet.facts))} "
                     f"{PDF_CONTEXT_PREFIX}{_b64(canonical_json(sheet_context(sheet)))}")
    doc.set_creation_date(datetime.fromtimestamp(sheet.generated_at, UTC))
    doc.set_auto_page_break(auto=True, margin=15)
    doc.add_page()
    doc.set_font("Helvetica", "B", 16)
    _write(doc, f"Setup sheet: treasury {sheet.treasury}", 8)
    doc.set_font("Helvetica", size=9)
    for paragraph in intro(sheet):
        _write(doc, paragraph, 4.5)
    for heading, rows in sections(sheet):
        doc.ln(2)
        doc.set_font("Helvetica", "B", 12)
        _write(doc, heading, 6)
        doc.set_font("Helvetica", size=9)
        if heading == "Safe":
            _qr(doc, qr_matrix(eip681_uri(sheet.safe, sheet.chain_id)))
        for row in rows:
            _write(doc, row if row.startswith("   ") or row[:1].isdigit() else f"- {row}", 4.5)
    doc.ln(2)
    doc.set_font("Helvetica", "B", 12)
    _write(doc, "On-chain facts (the checksum is keccak-256 of this JSON, without line breaks)", 6)
    doc.set_font("Courier", size=6)
    _write(doc, canonical_json(sheet.facts), 3)
    return bytes(doc.output())


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("ascii")).decode("ascii")


def read_pdf(data: bytes) -> SetupSheet:
    """The sheet a PDF describes, refused in one line unless its pages (every text line and QR square)
    are what its embedded facts and context render to. A PDF written by another fpdf2 version than
    constraints.txt pins may differ in layout: write a new one then."""
    sheet = parse_pdf(data)
    if page_streams(data) != page_streams(pdf(sheet)):
        raise InvalidInput("the PDF's pages are not what its facts say (text or QR code changed): the sheet was edited, "
                           "or written by another version of the tool")
    return sheet


def page_streams(data: bytes) -> list[bytes]:
    """Every zlib-compressed stream of the PDF (fpdf2 writes the pages' content so), inflated."""
    found = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.DOTALL):
        if match.group(1)[:1] == b"x":
            try:
                found.append(zlib.decompress(match.group(1)))
            except zlib.error:
                raise InvalidInput("the PDF's pages are damaged: the sheet was edited or cut") from None
    return found


def _write(doc: Any, text: str, height: float) -> None:
    """One paragraph; the core fonts are Latin-1, so other characters become '?' (names are ASCII)."""
    plain = text.replace("`", "").encode("latin-1", "replace").decode("latin-1")
    doc.multi_cell(0, height, plain, new_x="LMARGIN", new_y="NEXT")


def _qr(doc: Any, matrix: list[list[bool]], module: float = 1.2) -> None:
    """The QR code as filled squares (exact, no image library), then the text continues below it."""
    size = (len(matrix) + 2 * QR_QUIET_ZONE) * module
    left, top = doc.l_margin, doc.get_y()
    doc.set_fill_color(0, 0, 0)
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                doc.rect(left + (c + QR_QUIET_ZONE) * module, top + (r + QR_QUIET_ZONE) * module, module, module, style="F")
    doc.set_y(top + size + 1)
