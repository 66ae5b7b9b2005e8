"""Resolve ape accounts by alias, and unlock keystore accounts once per command.

Signers are always ape accounts, never raw keys. An ape keystore account (ape_accounts'
KeyfileAccount) asks, for every single signature, "Sign: [y/N]", then its passphrase, then "Leave
unlocked?": four prompts for one `treasury sign` that signs the SafeTx and the guard's schedule
hash. `unlock` asks for the passphrase once (or takes it from ape's
APE_ACCOUNTS_<alias>_PASSPHRASE variable or a --passphrase-file) and switches on ape's autosign for
this process only, after the user confirmed what is signed with treasury's own question. Nothing is
written to disk; the key lives in this process until it ends.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from treasury.errors import InvalidInput, one_line

if TYPE_CHECKING:
    from ape.api import AccountAPI

PASSPHRASE_FILE_LIMIT = 4096  # a passphrase, not a document: refuse anything larger unread


def resolve_account(alias: str | None) -> AccountAPI:
    """The ape account named `alias`; on a local chain, the first test account by default."""
    from ape import accounts, chain

    if alias is None:
        if chain.provider.network.is_dev:
            return accounts.test_accounts[0]
        raise InvalidInput("choose the paying account with --account ALIAS (see `ape accounts list`)")
    if alias.startswith("TEST::"):
        index = alias.removeprefix("TEST::")
        if not index.isdigit():
            raise InvalidInput(f"unknown test account {alias!r}")
        return accounts.test_accounts[int(index)]
    try:
        return accounts.load(alias)
    except Exception:  # noqa: BLE001 - ape raises several kinds for an unknown or unreadable alias: one message for all
        raise InvalidInput(f"unknown account alias {alias!r} (see `ape accounts list`)") from None


def passphrase_variable(alias: str) -> str:
    """ape's environment variable holding the passphrase of keystore account `alias`."""
    return f"APE_ACCOUNTS_{alias}_PASSPHRASE"


def read_passphrase_file(path: Path) -> str:
    """The passphrase in `path`: its first line, without the line ending (editors add one).

    Refused in one line when the file is missing, too large or readable by other users (a
    passphrase file others can read is a leaked passphrase; chmod 600 fixes it). The passphrase
    itself never appears in a message.
    """
    try:
        info = path.stat()
        if info.st_size > PASSPHRASE_FILE_LIMIT:
            raise InvalidInput(f"passphrase file {path} is larger than {PASSPHRASE_FILE_LIMIT} bytes")
        if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InvalidInput(f"passphrase file {path} is readable by other users: run `chmod 600 {path}`")
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot read passphrase file {path}: {error.strerror or type(error).__name__}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"passphrase file {path} is not UTF-8 text") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise InvalidInput(f"passphrase file {path} is empty")
    return lines[0]


def is_keystore(account: AccountAPI) -> bool:
    """Whether `account` is an ape keystore account (the kind that prompts before signing)."""
    try:
        from ape_accounts.accounts import KeyfileAccount
    except ImportError:  # ape without its accounts plugin: nothing prompts
        return False
    return isinstance(account, KeyfileAccount)


def unlock(account: AccountAPI, passphrase: str | None = None, *, ask: bool = True) -> AccountAPI:
    """Unlock a keystore account once and let it sign without asking again, for this process.

    The passphrase is `passphrase` (from a --passphrase-file), else ape's
    APE_ACCOUNTS_<alias>_PASSPHRASE variable, else one prompt of ours on stderr. Ours, not ape's:
    ape re-asks up to three times and, on an input that answers with empty lines, forever. An
    empty or missing answer (stdin closed: a script) or a wrong passphrase is one clear line; with
    `ask` False (--yes: no questions at all) a missing passphrase is that line at once.
    Other accounts (test accounts, hardware wallets' own plugins) are returned unchanged.
    """
    if not is_keystore(account):
        return account
    from ape.logging import logger

    alias = account.alias
    source = "--passphrase-file"
    if passphrase is None and os.environ.get(passphrase_variable(alias)):
        passphrase, source = os.environ[passphrase_variable(alias)], f"${passphrase_variable(alias)}"
    if passphrase is None and not ask:
        raise InvalidInput(_locked(alias))
    if passphrase is None:
        passphrase, source = _ask(alias), "the prompt"
    try:
        # ape warns that the account "will now sign any transaction": true only for this process.
        with logger.at_level("ERROR"):
            account.set_autosign(True, passphrase=passphrase)
    except Exception as error:  # noqa: BLE001 - ape's wrong-passphrase and other errors: one line each
        raise InvalidInput(_unlock_failure(alias, source, error)) from None
    return account


def _ask(alias: str) -> str:
    """One passphrase prompt (hidden, on stderr); no answer is a refusal, never a second prompt."""
    import click

    try:
        answer = click.prompt(f"Enter passphrase to unlock '{alias}'", hide_input=True, default="",
                              show_default=False, err=True)
    except click.Abort:
        answer = ""
    if not answer:
        click.echo(err=True)  # end the prompt's line: the error is a line of its own
        raise InvalidInput(f"no passphrase given: {_locked(alias)}")
    return str(answer)


def _locked(alias: str) -> str:
    return (f"account {alias!r} is a locked keystore: set {passphrase_variable(alias)} or pass --passphrase-file FILE "
            "(or, without --yes, type it when asked)")


def _unlock_failure(alias: str, source: str, error: Exception) -> str:
    """Why unlocking failed, naming where the passphrase came from (never the passphrase)."""
    if type(error).__name__ == "InvalidPasswordError":
        return f"wrong passphrase for account {alias!r} (from {source}); nothing signed"
    return f"account {alias!r} could not be unlocked: {one_line(error)}; nothing signed"
