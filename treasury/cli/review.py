"""`treasury review ID`: what is unusual about a proposal, in plain words, before anyone signs it.

Also the printer the sign prompt and `show --network` use, so the findings read the same everywhere.
A review never refuses (exit 0 whatever it finds) and the model's summary is only ever advisory.
"""

from __future__ import annotations

from typing import Any

import click

from treasury.cli.chain import chain_command
from treasury.cli.common import console, emit_json, open_treasury, printable

SEVERITY_STYLE = {"danger": "bold red", "warning": "yellow", "info": "cyan"}


@chain_command("review")
@click.argument("proposal_id")
@click.option("--no-model", is_flag=True,
              help="rules only: ask no language model, even with ANTHROPIC_API_KEY or OPENAI_API_KEY set")
def review(name, config_path, as_json, verbose, proposal_id, no_model):
    """Review PROPOSAL_ID: what is unusual about it, from what the treasury knows and the chain shows.

    \b
    The rules look for: a first-time recipient, an amount far above the history, a new token or
    contract, a contract recipient with no history, delegatecall, Safe administration, a proposal
    that empties a balance, an approval without an end (or of the whole balance), a look-alike of a
    known address (the Safe, its owners, guard and modules included), a title the calldata does not
    match, calldata this treasury cannot decode, and a gas refund. Each finding has a severity and a
    one-line reason; a review that cannot run is itself a "review-failed" danger finding.

    With ANTHROPIC_API_KEY (or OPENAI_API_KEY, and OPENAI_BASE_URL for a compatible endpoint) set,
    a language model also summarizes the decoded proposal, the verdict and the findings: advisory
    only, it changes neither. The review is kept in the audit log ("proposal.reviewed"). Exit 0.
    """
    from treasury.review.service import review_proposal

    treasury = open_treasury(name, config_path)
    try:
        done = review_proposal(treasury, proposal_id, use_model=not no_model)
    except Exception as error:  # a review that cannot run is itself the loudest finding
        if getattr(treasury.store, "is_remote", False):
            raise  # a server's store: the one-line refusal (the rules need the local history)
        done = failed_review(treasury.get(proposal_id).id, error)  # an unknown id still fails as one
    if as_json:
        emit_json(done.as_dict())
        return
    record = treasury.get(done.proposal_id)
    console().print(f"Review of proposal [bold]{done.proposal_id}[/]: {_escaped(record.title)}", highlight=False)
    print_review(done)
    if done.audit_seq is not None:
        console().print(f"kept in the audit log as entry {done.audit_seq} (proposal.reviewed)", highlight=False)


def failed_review(proposal_id: str, error: BaseException) -> Any:
    """A review standing for one that could not run: a single "review-failed" danger finding.

    Never a quiet line: a signer must not read "nothing unusual" where nothing was checked. The
    error's own text is not shown (it may be an attacker's revert message), only the failed step."""
    from treasury.review.rules import failed_review_finding
    from treasury.review.service import ProposalReview

    return ProposalReview(proposal_id, (failed_review_finding(error),), advice_note="the review failed: no model asked")


def review_for_signer(treasury: Any, proposal_id: str, *, use_model: bool = False) -> tuple[Any, str | None]:
    """The review shown before signing and by `show --network` (not stored), or None and the one line why.

    A server's store has no local history to review with: one line says so. A review that fails (a
    node failing mid-way, a token whose calls revert) is a "review-failed" danger finding instead, so
    the sign prompt defaults to No; it never keeps an owner from signing or a proposal from showing.
    """
    from treasury.review.service import review_proposal

    if getattr(treasury.store, "is_remote", False):
        return None, "review not available: a review reads the executed history of a local store (run without --server)"
    try:
        return review_proposal(treasury, proposal_id, use_model=use_model, store=False), None
    except Exception as error:  # noqa: BLE001 - the review is a help, never a gate
        return failed_review(proposal_id, error), None


def review_blocks_default(done: Any) -> bool:
    """Whether the sign prompt should default to No: the review failed or found a danger."""
    return done is not None and done.worst == "danger"


def print_review(done: Any, unavailable: str | None = None) -> None:
    """The findings as a table (severity, rule, reason), then the model's advice or why there is none."""
    from rich.table import Table

    out = console()
    if done is None:
        out.print(f"[yellow]{_escaped(unavailable or 'review not available')}[/]", highlight=False)
        return
    if not done.findings:
        out.print("review: the rules found nothing unusual", highlight=False)
    else:
        worst = done.worst or "info"
        table = Table(title=f"Review: {len(done.findings)} finding(s), worst [{SEVERITY_STYLE[worst]}]{worst}[/]",
                      title_justify="left")
        for column in ("severity", "rule", "reason"):
            table.add_column(column, overflow="fold")
        for finding in done.findings:
            style = SEVERITY_STYLE.get(finding.severity, "")
            table.add_row(f"[{style}]{finding.severity}[/]", finding.rule, _escaped(finding.reason))
        out.print(table)
    if done.advice is not None:
        advice = done.advice
        out.print(f"[bold]advisory[/] (model {_escaped(advice.provider)} {_escaped(advice.model)}; it changes no "
                  f"finding and not the verdict): {_escaped(advice.summary)}", highlight=False)
    elif done.advice_note:
        out.print(f"[dim]{_escaped(done.advice_note)}[/]", highlight=False)


def review_dict(done: Any, unavailable: str | None) -> dict[str, Any]:
    """The review as JSON beside sign's and show's output: the review, or why there is none."""
    return {"review": done.as_dict() if done is not None else None, "review_note": unavailable}


def _escaped(text: str) -> str:
    """Text from a proposal or a model, shown as text: no rich markup, no terminal control characters."""
    from rich.markup import escape

    return escape(printable(text)) if "\n" not in text else "\n".join(escape(printable(line)) for line in text.split("\n"))
