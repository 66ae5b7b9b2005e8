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
    text = worded_safe_codes(lines[0] if lines else "")
    if isinstance(error, TreasuryError):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def worded_safe_codes(text: str) -> str:
    """Add its meaning after every Safe revert code (GS026) in `text` that does not carry it yet.

    The Safe reverts with bare five-character codes to save gas; "GS026" tells a treasurer
    nothing, and the code reaches the user through many paths (ape's ContractLogicError, a node's
    message, a server's answer), so the wording is added where every error becomes its one line.
    """
    if "GS" not in text:
        return text
    import re

    from treasury.safe_codes import SAFE_CODES

    def word(match: re.Match[str]) -> str:
        code = match.group(0)
        meaning = SAFE_CODES.get(code)
        return f"{code}: {meaning}" if meaning and meaning not in text else code

    return re.sub(r"\bGS\d{3}\b", word, text)
