"""What a risk review says about one proposal: findings from the rules, advice from a model.

Findings and the advice are kept apart on purpose: the rules decide what is shown as a risk, the
model's summary is only ever advisory and cannot add, remove or change a finding.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["info", "warning", "danger"]

SEVERITIES: tuple[Severity, ...] = ("info", "warning", "danger")
"""Severities from least to most serious, so callers can sort and pick the worst."""


@dataclass(frozen=True)
class Finding:
    """One unusual thing about a proposal, worded for a signer in a single line."""

    rule: str
    severity: Severity
    reason: str

    def __post_init__(self) -> None:
        # A multi-line reason would break the one-line-per-finding display in the CLI and the page.
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")
        if "\n" in self.reason or "\r" in self.reason:
            raise ValueError(f"finding {self.rule} has a multi-line reason")

    def as_dict(self) -> dict[str, str]:
        """Plain data for JSON output and the store."""
        return {"rule": self.rule, "severity": self.severity, "reason": self.reason}


@dataclass(frozen=True)
class Advice:
    """A model's summary of one proposal: shown beside the findings, marked advisory, never a finding."""

    provider: str
    model: str
    summary: str
    advisory: Literal[True] = True


@dataclass(frozen=True)
class Review:
    """The rule findings of one proposal, plus the model's advisory summary when one was asked for."""

    proposal_id: str
    findings: tuple[Finding, ...]
    advice: Advice | None = None

    @property
    def worst(self) -> Severity | None:
        """The most serious severity among the findings, None when the rules found nothing."""
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=SEVERITIES.index)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready) for `--json`, the page and storing the review with the proposal."""
        return {
            "proposal_id": self.proposal_id,
            "worst": self.worst,
            "findings": [f.as_dict() for f in self.findings],
            "advice": _advice_dict(self.advice),
        }


def _advice_dict(advice: Advice | None) -> dict[str, Any] | None:
    """The advice as plain data; tolerant of how advisor.py shapes Advice (dataclass or plain object)."""
    if advice is None:
        return None
    if dataclasses.is_dataclass(advice) and not isinstance(advice, type):
        return dataclasses.asdict(advice)
    return {k: getattr(advice, k) for k in ("provider", "model", "summary", "advisory")}
