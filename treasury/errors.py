"""The project's error types: each carries one line a user can act on."""


class TreasuryError(Exception):
    """Base class: the message is a complete, one-line explanation for the user."""


class InvalidInput(TreasuryError):
    """The caller passed something malformed (address, threshold, version, amount...)."""


class DeploymentError(TreasuryError):
    """Chain state does not match what a canonical deployment requires."""


def one_line(error: BaseException) -> str:
    """The first non-blank line of an error; other libraries' errors keep their type name in front."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if isinstance(error, TreasuryError):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
