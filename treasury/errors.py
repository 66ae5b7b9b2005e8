"""The project's error types: each carries one line a user can act on."""


class TreasuryError(Exception):
    """Base class: the message is a complete, one-line explanation for the user."""


class InvalidInput(TreasuryError):
    """The caller passed something malformed (address, threshold, version, amount...)."""


class DeploymentError(TreasuryError):
    """Chain state does not match what a canonical deployment requires."""
