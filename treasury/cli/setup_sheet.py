"""`treasury setup-sheet`: write the setup record (Markdown, PDF), or check that one is still current."""

from __future__ import annotations

from pathlib import Path

import click

from treasury.cli.chain import chain_command
from treasury.cli.common import console, emit_json, open_treasury
from treasury.errors import InvalidInput


@chain_command("setup-sheet")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="write the Markdown sheet here (default: print it)")
@click.option("--pdf", "pdf_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="also write the sheet as a PDF here")
@click.option("--check", "check_path", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="a sheet written earlier (.md or .pdf): is it still current? (exit 1 when stale)")
@click.option("--manifest-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("deployments"),
              show_default=True, help="deployment manifests, read when the Safe's creation is not found on chain")
def setup_sheet(name, config_path, as_json, verbose, output, pdf_path, check_path, manifest_dir):
    """A record a successor can recover the treasury from, without secrets: the Safe and its QR code,
    chain, version, singleton, owners (names, key type), threshold, guard and every setting it holds,
    modules, fallback handler, how it was deployed and how to execute without this tool. All read
    from the chain now, with a checksum of those facts. Nothing is sent.

    With --check FILE: refuse a file whose visible text (addresses, QR code, URLs) is not what its
    embedded facts render to, then recompute the checksum from the chain and say "current", or list
    what changed. A sheet whose facts were incomplete (the node refused the guard's logs) carries no
    checksum and is never "current".
    """
    from treasury.ceremony.setup_sheet import read_setup

    if check_path is not None and (output or pdf_path):
        raise InvalidInput("--check reads a sheet; it writes none: leave out -o and --pdf")
    treasury = open_treasury(name, config_path)
    sheet = read_setup(treasury, manifest_dir=manifest_dir)
    if check_path is not None:
        _check(sheet, check_path, as_json)
        return
    _write(sheet, output, pdf_path, as_json)


def _write(sheet, output: Path | None, pdf_path: Path | None, as_json: bool) -> None:
    from treasury.ceremony.setup_sheet_render import markdown, pdf

    text = markdown(sheet)
    if output is not None:
        output.write_text(text, encoding="utf-8")
    if pdf_path is not None:
        pdf_path.write_bytes(pdf(sheet))
    if as_json:
        emit_json({"treasury": sheet.treasury, "checksum": sheet.checksum, "facts": sheet.facts, "names": sheet.names,
                   "deployment": sheet.deployment, "block": sheet.block, "nonce": sheet.nonce, "notes": list(sheet.notes),
                   "markdown": str(output) if output else None, "pdf": str(pdf_path) if pdf_path else None})
    elif output is None and pdf_path is None:
        click.echo(text, nl=False)
    else:
        for path in (output, pdf_path):
            if path is not None:
                click.echo(f"wrote {path}")
        click.echo(f"checksum {sheet.checksum} (block {sheet.block})" if sheet.checksum else
                   f"no checksum: the facts are incomplete ({'; '.join(sheet.incomplete)})")


def _check(sheet, path: Path, as_json: bool) -> None:
    from treasury.ceremony.setup_sheet import check_sheet
    from treasury.ceremony.setup_sheet_render import read_markdown, read_pdf
    from treasury.files import read_text

    if path.suffix.lower() == ".pdf":
        written = read_pdf(path.read_bytes())
    else:
        written = read_markdown(read_text(path, "setup sheet"))
    result = check_sheet(written, sheet)
    if as_json:
        emit_json({"sheet": str(path), "current": result.is_current, "written_checksum": result.written,
                   "checksum_now": result.current, "changes": list(result.changes), "incomplete": list(result.incomplete),
                   "block": sheet.block})
    elif result.is_current:
        console().print(f"[green]current[/]: {path} matches the chain at block {sheet.block} (checksum {result.current})")
    else:
        from rich.markup import escape

        for line in result.changes:
            console().print(f"[bold red]changed[/] {escape(line)}")
    if result.incomplete:
        raise click.ClickException("the sheet cannot be called current: the facts are incomplete ("
                                   + "; ".join(result.incomplete) + ")")
    if not result.is_current:
        raise click.ClickException(f"the sheet is stale: {len(result.changes)} change(s) since it was written "
                                   f"(checksum {result.written}, now {result.current}); write a new one")
