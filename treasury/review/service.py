"""A proposal's review in one call: the facts, the rules, a model's advisory summary if asked, the audit entry.

`treasury review`, the sign prompt and `show --network` all come here, so a signer reads the same
findings wherever they look, and the stored "proposal.reviewed" audit entry holds exactly what was
shown: the findings, the worst severity, the advice (provider, model, summary, marked advisory) or
the one line saying why there is none. A review never refuses anything and never changes the
verdict: the model sees the findings, it cannot alter them (they are fixed before it is asked).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from treasury.errors import InvalidInput, one_line
from treasury.review.facts import ReviewFacts, gather_facts
from treasury.review.findings import Advice, Finding, Review
from treasury.review.rules import review_rules

if TYPE_CHECKING:
    from treasury.treasury import Treasury

REVIEWED = "proposal.reviewed"  # the audit action that keeps a review
MODEL_TIMEOUT = 20.0  # seconds the model may take, retry included, before the review goes on without it
NOT_ASKED = "no model asked: rules only"
KEY_VARIABLES = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")


@dataclass(frozen=True)
class ProposalReview(Review):
    """A Review as the service made it: also why there is no advice, and the audit entry that keeps it."""

    advice_note: str | None = None  # the one line when there is no advice (no key, timeout, 429, not asked)
    audit_seq: int | None = None  # the "proposal.reviewed" entry; None when the review was not stored

    def as_dict(self) -> dict[str, Any]:
        """`Review.as_dict` plus the note and the audit entry (the `--json` shape of `treasury review`)."""
        return {**super().as_dict(), "advice_note": self.advice_note, "audit_seq": self.audit_seq}


def review_proposal(treasury: Treasury, proposal_id: str, *, use_model: bool = True,
                    environ: Mapping[str, str] | None = None, store: bool = True,
                    timeout: float = MODEL_TIMEOUT) -> ProposalReview:
    """Review a stored proposal: gather its facts, run the rules, ask the model (if `use_model`), keep it.

    `environ` is where the model's key and base URL are read (default: os.environ). `store` False
    reviews without writing (the sign prompt and `show` read, they do not record).
    """
    _require_local(treasury)
    facts = gather_facts(treasury, proposal_id)
    findings = tuple(review_rules(facts))  # fixed before the model is asked: it cannot change them
    advice, note = _advice(facts, findings, use_model, os.environ if environ is None else environ, timeout)
    review = ProposalReview(facts.proposal_id, findings, advice, note)
    if store:
        seq = treasury.store.add_review(facts.proposal_id, stored_review(review, facts), treasury.actor)
        review = replace(review, audit_seq=seq)
    return review


def _require_local(treasury: Treasury) -> None:
    """The rules read the executed history, which a server's store does not hand out."""
    if getattr(treasury.store, "is_remote", False):
        raise InvalidInput("a review reads the executed history of a local store: not against a server "
                           "(run without --server)")


def _advice(facts: ReviewFacts, findings: tuple[Finding, ...], use_model: bool, environ: Mapping[str, str],
            timeout: float) -> tuple[Advice | None, str | None]:
    """The model's advice, or None and the one line why; never raises (a review never refuses)."""
    if not use_model:
        return None, NOT_ASKED
    from treasury.review.advisor import advice_input, advise

    try:
        advice, why = advise(advice_input(facts, facts.verdict, findings), environ=environ, timeout=timeout)
    except Exception as error:  # noqa: BLE001 - an advisor bug must not keep the signer from the rules
        return None, _redacted(f"the model's advice failed ({one_line(error)}): rules only", environ)
    return advice, why


def _redacted(line: str, environ: Mapping[str, str]) -> str:
    """A line fit to print and store: no API key from the environment in it."""
    for variable in KEY_VARIABLES:
        key = environ.get(variable, "").strip()
        if key:
            line = line.replace(key, "***")
    return line


def stored_review(review: ProposalReview, facts: ReviewFacts) -> dict[str, Any]:
    """The audit payload: what the signer was shown, and the verdict it stood beside (unchanged by it)."""
    data = review.as_dict()
    return {
        "worst": data["worst"],
        "findings": data["findings"],
        "advice": data["advice"],
        "advice_note": review.advice_note if review.advice is None else None,
        "verdict": facts.verdict.outcome if facts.verdict is not None else None,
        "safe_tx_hash": facts.decoded.safe_tx_hash if facts.decoded is not None else None,
    }
