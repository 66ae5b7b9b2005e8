"""The store's errors: each is a TreasuryError whose message is one line a user can act on."""

from __future__ import annotations

from treasury.errors import InvalidInput, TreasuryError


class TamperedRecord(TreasuryError):
    """A stored row no longer matches its content hash: it was edited outside the store."""


class SchemaTooNew(TreasuryError):
    """The database was written by a newer ape-treasury; opening it could corrupt it."""


class StoreBusy(TreasuryError):
    """Another writer held the database longer than the busy timeout."""


class DuplicateSignature(InvalidInput):
    """That owner has already signed this proposal; a Safe counts each owner once."""


class DuplicateProposal(InvalidInput):
    """A proposal with this safeTxHash already exists for this Safe on this chain."""


class UnknownProposal(InvalidInput):
    """No proposal (or schedule entry, or broadcast) has the given id."""


class InvalidTransition(InvalidInput):
    """The requested status change is not allowed from the current status."""
