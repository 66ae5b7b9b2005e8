"""The signatures collected for one Safe transaction: each verified on entry, one per owner.

A `SignatureSet` is what a caller holds while gathering signatures from anywhere (an ape account,
a contract owner, a bundle): nothing enters it unverified, a second signature from the same owner
is refused, and it hands execTransaction its `signatures` argument sorted as the Safe requires.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from safe_eth.safe.safe_signature import SafeSignature
from safe_eth.safe.safe_tx import SafeTx

from treasury.addresses import parse_address
from treasury.errors import InvalidInput
from treasury.signatures.owners import current_owners, current_threshold
from treasury.signatures.signing import sign, sign_as_contract_owner
from treasury.signatures.verification import (
    InvalidSignature,
    encode,
    kind_of,
    threshold_met,
    verify,
)
from treasury.types import SignatureKind

if TYPE_CHECKING:
    from ape.api import AccountAPI


class SignatureSet:
    """Signatures collected for one Safe transaction: each verified on entry, one per owner.

    `owners` defaults to the Safe's current owners, read from chain when the set is made.
    """

    def __init__(self, safe_tx: SafeTx, owners: Sequence[str] | None = None, *, executor: str | None = None):
        self.safe_tx = safe_tx
        self.owners: tuple[str, ...] = (
            current_owners(safe_tx.safe_address, safe_tx.safe_version) if owners is None
            else tuple(parse_address(o, "owner") for o in owners)
        )
        self.executor = executor
        self._by_owner: dict[str, SafeSignature] = {}

    def add(self, signature: SafeSignature) -> SafeSignature:
        """Verify and keep `signature`; a second signature from the same owner is refused."""
        verify(signature, self.safe_tx, self.owners, executor=self.executor)
        return self._keep(signature)

    def _keep(self, signature: SafeSignature) -> SafeSignature:
        """Keep a signature the caller has just verified against this set's transaction and owners.

        Private: only `add` and this package's importers (which verify with more context than `add`
        has, such as a bundle's claimed owner) may call it; the one-signature-per-owner rule still applies.
        """
        owner = signature.owner
        if owner in self._by_owner:
            raise InvalidSignature(
                f"owner {owner} already signed this transaction ({kind_of(self._by_owner[owner])}); "
                f"a second signature ({kind_of(signature)}) is refused, remove the first to replace it"
            )
        self._by_owner[owner] = signature
        return signature

    def sign(self, account: AccountAPI, kind: SignatureKind = "eip712") -> SafeSignature:
        """`sign` with `account` and `add` the result."""
        return self.add(sign(account, self.safe_tx, kind))

    def add_contract_owner(self, owner_safe_address: str, inner_signers: Sequence, kind: SignatureKind = "eip712") -> SafeSignature:
        """`sign_as_contract_owner` and `add` the result."""
        return self.add(sign_as_contract_owner(owner_safe_address, inner_signers, self.safe_tx, kind=kind))

    def remove(self, owner: str) -> SafeSignature:
        owner = parse_address(owner, "owner")
        if owner not in self._by_owner:
            raise InvalidInput(f"owner {owner} has not signed this transaction")
        return self._by_owner.pop(owner)

    @property
    def signatures(self) -> list[SafeSignature]:
        """Sorted by owner, as the Safe requires."""
        return [self._by_owner[o] for o in sorted(self._by_owner, key=str.lower)]

    @property
    def signers(self) -> list[str]:
        return [s.owner for s in self.signatures]

    def __len__(self) -> int:
        return len(self._by_owner)

    def __iter__(self) -> Iterator[SafeSignature]:
        return iter(self.signatures)

    def __contains__(self, owner: object) -> bool:
        return isinstance(owner, str) and owner.lower() in {o.lower() for o in self._by_owner}

    def encode(self) -> bytes:
        """The execTransaction `signatures` argument."""
        return encode(self.signatures)

    def threshold_met(self, owners: Sequence[str] | None = None, threshold: int | None = None) -> bool:
        """Whether enough owners signed; owners / threshold default to the Safe's current ones on chain."""
        if owners is None:
            owners = current_owners(self.safe_tx.safe_address, self.safe_tx.safe_version)
        if threshold is None:
            threshold = current_threshold(self.safe_tx.safe_address, self.safe_tx.safe_version)
        return threshold_met(self.signatures, owners, threshold)
