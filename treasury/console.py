"""The `treasury` object of `ape console` (see ape_console_extras.py at the project root).

    In [1]: treasury                       # which treasuries the config names
    In [2]: ops = treasury.load("ops")     # a Treasury, every library method on it
    In [3]: p = ops.propose_transfer("0x...", "250 USDC")
    In [4]: p                              # <Proposal 3c69a07a nonce 4 pending: send 250 USDC to 0x...>
    In [5]: ops.show(p)                    # decoded intent, verdict, hashes (as `treasury show`)
    In [6]: ops.sign(p, accounts.load("alice"))

With a single configured treasury, its methods are also on `treasury` itself:
`treasury.propose_transfer(...)`, `treasury.proposals()`. Proposals print as one line; records
(and these one-line wrappers) are accepted wherever a method wants a proposal id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Proposal:
    """A ProposalRecord that prints as one readable line; every field is still there (`p.nonce`)."""

    __slots__ = ("record",)

    def __init__(self, record: Any):
        object.__setattr__(self, "record", record)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.record, name)

    def __eq__(self, other: object) -> bool:
        return self.record == (other.record if isinstance(other, Proposal) else other)

    def __hash__(self) -> int:
        return hash(self.record)

    def __repr__(self) -> str:
        r = self.record
        return f"<Proposal {r.id} nonce {r.nonce} {r.status}: {r.title} (safeTxHash {r.safe_tx_hash[:10]}…)>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython
        printer.text(repr(self))


class ProposalList(list):
    def __repr__(self) -> str:
        if not self:
            return "[] (no proposals)"
        return "\n".join(repr(p) for p in self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _readable(value: Any) -> Any:
    from treasury.store import ProposalRecord

    if isinstance(value, ProposalRecord):
        return Proposal(value)
    if isinstance(value, list) and value and all(isinstance(v, ProposalRecord) for v in value):
        return ProposalList(Proposal(v) for v in value)
    if isinstance(value, tuple) and value and isinstance(value[0], ProposalRecord):  # import_bundle
        return (Proposal(value[0]), *value[1:])
    return value


def _plain(value: Any) -> Any:
    """A Proposal (or a raw record) where an id is wanted."""
    from treasury.store import ProposalRecord

    if isinstance(value, Proposal):
        return value.record.id
    if isinstance(value, ProposalRecord):
        return value.id
    return value


class ConsoleTreasury:
    """A Treasury for interactive use: results print readably, proposals are accepted as ids."""

    def __init__(self, treasury: Any):
        self._treasury = treasury

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._treasury, name)
        if not callable(attribute):
            return _readable(attribute)

        def call(*args: Any, **kwargs: Any) -> Any:
            return _readable(attribute(*[_plain(a) for a in args], **{k: _plain(v) for k, v in kwargs.items()}))

        call.__doc__ = attribute.__doc__
        call.__name__ = name
        return call

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._treasury)) | {"show", "unwrap"})

    def __repr__(self) -> str:
        return repr(self._treasury)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def unwrap(self) -> Any:
        """The plain Treasury object."""
        return self._treasury

    def show(self, proposal: Any) -> None:
        """Print what `treasury show` prints: decoded intent, verdict, warnings, the three hashes."""
        from treasury.cli.common import print_view

        print_view(self._treasury, self._treasury.view(_plain(proposal)))


class TreasuryConsole:
    """The `treasury` name in `ape console`: load a configured treasury by name."""

    def __init__(self, config_path: Path | str | None = None):
        self._config_path = Path(config_path) if config_path else None
        self._loaded: dict[str, ConsoleTreasury] = {}

    def names(self) -> list[str]:
        """The treasuries configured in the `treasury:` section."""
        from treasury.config import load_config

        return sorted(load_config(self._config_path).treasuries)

    def load(self, name: str | None = None) -> ConsoleTreasury:
        """The treasury `name` (default: the only one configured), ready to propose, sign, execute."""
        from treasury.cli.common import treasury_name
        from treasury.treasury import Treasury

        name = treasury_name(name, self._config_path)
        if name not in self._loaded:
            self._loaded[name] = ConsoleTreasury(Treasury.load(name, self._config_path))
        return self._loaded[name]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.load(), name)  # the only configured treasury, if there is exactly one

    def __repr__(self) -> str:
        try:
            names = self.names()
        except Exception as error:  # noqa: BLE001 - a broken config must not break the console banner
            return f"<treasury: config problem: {error}>"
        hint = f"treasury.load({names[0]!r})" if names else "add a `treasury:` section to ape-config.yaml"
        return f"<treasury: {', '.join(names) or 'no treasuries configured'}; {hint}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))
