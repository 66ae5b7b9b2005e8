"""The one entry point: `Treasury.load("ops")`, and everything between "pay X" and "executed".

A Treasury ties the configured Safe, its token book and policy, the proposal store and the chain
together. Every method is a step of the data flow in DESIGN.md and every step is recorded in the
store's audit log; the CLI and the console call these methods and nothing else.
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from safe_eth.safe.safe_signature import SafeSignature
from safe_eth.safe.safe_tx import SafeTx

from treasury.addressbook import AddressBook
from treasury.addresses import ZERO_ADDRESS, parse_address
from treasury.amounts import TokenBook
from treasury.config import TreasuryEntry, load_config
from treasury.decode.calls import DecodedProposal, decode_safe_tx
from treasury.errors import InvalidInput, TreasuryError
from treasury.policy.model import Policy
from treasury.policy.verdict import Verdict
from treasury.proposal import build
from treasury.proposal.build import Intent
from treasury.proposal.safe_tx import build_safe_tx
from treasury.signatures.exchange import (
    export_bundle as export_signature_bundle,
    import_bundle as import_signature_bundle,
)
from treasury.signatures.signing import sign as sign_with
from treasury.signatures.verification import kind_of, parse_signature, verify
from treasury.store import (
    DraftRecord,
    ExecutionRecord,
    ProposalRecord,
    ScheduleEntryRecord,
    SignatureRecord,
    Store,
    TamperedRecord,
    UnknownProposal,
    new_signature,
)
from treasury.types import OPEN_STATUS_VALUES, ProposalStatus, SignatureKind
from treasury.wording import local_actor

if TYPE_CHECKING:
    from ape.api import AccountAPI
    from ape.contracts import ContractInstance

    from treasury.records import TreasuryRecords
    from treasury.signatures.guard_messages import GuardMessage

OPEN = OPEN_STATUS_VALUES


class StaleProposal(TreasuryError):
    """The proposal's nonce was already used on chain: it can never execute."""


class RehearsalFailed(TreasuryError):
    """A live execution was refused because the proposal fails on a fork of the current block."""


class PolicyRefusal(TreasuryError):
    """The policy verdict does not allow the proposal now (deny, or it must wait for the delay): nothing was sent."""

    def __init__(self, verdict: Verdict):
        self.verdict = verdict
        super().__init__(f"policy verdict {verdict.outcome}: {verdict.reason}".rstrip(": "))


class Drafted(PolicyRefusal):
    """The policy denied a new proposal and it was kept as a draft (no nonce, no safeTxHash), as asked
    with `if_denied="draft"`: nothing was proposed, so the Safe's queue is not blocked by it."""

    def __init__(self, verdict: Verdict, draft: DraftRecord):
        self.draft = draft
        super().__init__(verdict)


# What `Treasury.propose` does with an intent the policy denies (see its docstring).
IfDenied = Literal["store", "refuse", "draft"]
IF_DENIED: tuple[IfDenied, ...] = get_args(IfDenied)


@dataclass(frozen=True)
class Dropped:
    """What `Treasury.drop` did: a proposal marked cancelled locally (its nonce freed for the next
    proposal unless another open proposal holds it) or a draft marked dropped."""

    kind: str  # "proposal" or "draft"
    id: str
    nonce: int | None  # the proposal's; None for a draft
    freed: bool  # the nonce is free again (no other open proposal holds it)
    waiting: tuple[str, ...]  # open proposals with a higher nonce: they wait until that nonce is used
    warning: str | None = None  # a proposal's: signatures held elsewhere still run it until its nonce is used


@dataclass(frozen=True)
class TreasuryStatus:
    """The treasury on chain now: the Safe, its guard, balances, budgets and delay queue."""

    name: str
    safe: str
    chain_id: int
    version: str
    owners: tuple[str, ...]
    threshold: int
    nonce: int
    guard: str | None  # configured
    installed_guard: str  # what the Safe has (the zero address if none)
    modules: tuple[str, ...]
    balances: dict[str, int]  # symbol -> base units, native and every token of the book
    budgets: dict[str, int]  # symbol (or address) -> budget left now, per capped token
    entries: tuple[Any, ...]  # treasury.guard.ScheduledEntry, oldest first
    fallback_handler: Any = None  # treasury.chain.handler.HandlerInfo: the Safe's handler and what it signs
    module_guard: str | None = None  # Safe 1.5.0: the module guard (the zero address if none); None before 1.5.0

    def warnings(self) -> list[str]:
        """What undermines the guard now: a handler that signs arbitrary messages, modules that bypass it."""
        from treasury.chain.handler import safety_warnings

        return safety_warnings(self)


# Verdict errors that mean the proposal's intent must be queued (scheduled) before it can run.
SCHEDULE_ERRORS = frozenset({"NotScheduled", "EntryExpired", "RescheduleTooEarly"})


@dataclass(frozen=True)
class Signed:
    """What `Treasury.sign_all` did for one owner: the signatures stored now (None: not signed now)
    and what the owner had signed before ("safe_tx", "schedule")."""

    proposal_id: str
    safe_tx: SignatureRecord | None
    schedule: SignatureRecord | None
    already: tuple[str, ...]
    schedule_message: GuardMessage | None  # what the schedule signature is over, when one was needed

    @property
    def records(self) -> tuple[SignatureRecord, ...]:
        return tuple(r for r in (self.safe_tx, self.schedule) if r is not None)


@dataclass(frozen=True)
class SignatureNeed:
    """One kind of signature a proposal needs now: over what, who signed, and how many are required."""

    purpose: str  # "safe_tx", "schedule" or "cancel"
    signed_hash: str
    over: str  # in words: "the SafeTx", "schedule nonce 0", "cancel of entry 3"
    signers: tuple[str, ...]
    required: int

    @property
    def missing(self) -> int:
        return max(0, self.required - len(self.signers))


@dataclass(frozen=True)
class Reverified:
    """What `Treasury.reverify` found of the signatures a bundle brought in (checked offline against
    the owners the bundle recorded): those the chain's current owners confirm, now marked verified by
    the chain, and those it refuses, with why (left marked "bundle", never counted)."""

    confirmed: tuple[SignatureRecord, ...] = ()
    rejected: tuple[tuple[SignatureRecord, str], ...] = ()


@dataclass(frozen=True)
class ProposalView:
    """A proposal with what a signer needs to see: decoded intent, verdict, signatures so far."""

    record: ProposalRecord
    decoded: DecodedProposal
    verdict: Verdict
    signers: tuple[str, ...]
    threshold: int


class Treasury:
    """A named treasury from the `treasury:` config: a Safe, its policy and its proposal store."""

    def __init__(self, name: str, entry: TreasuryEntry, store: Store, actor: str | None = None):
        self.name = name
        self.entry = entry
        self.store = store
        self.actor = local_actor(actor or getpass.getuser())
        self.book: TokenBook = entry.token_book()
        self.policy: Policy = entry.to_policy()
        self._reconciled: Any = None  # the provider last reconciled with: once per connection
        self.retry_policy = None  # treasury.chain.rpc.RetryPolicy for a live node; None: its defaults
        self.config_path: Path | None = None  # the ape-config.yaml it was loaded from (None: the project's)
        self.reconciled: list = []  # what reconciling learned from the chain so far (treasury.execution.reconcile.Reconciled)
        # Who signs each new proposal as its proposer (Safe's rule for a server: a proposal comes with
        # its sender's signature); None: proposals are stored unsigned (a local store only).
        self.proposer: AccountAPI | None = None
        # What `propose` does with an intent the policy denies when not told: "store" for library
        # users and the test suite; the CLI asks for "refuse" (or "draft" with --force) per call.
        self.if_denied: IfDenied = "store"

    @classmethod
    def load(cls, name: str, config_path: Path | None = None, store: Store | str | None = None) -> Treasury:
        """The treasury `name` of the ape project's config (or of `config_path`).

        `store` (a path or a SQLAlchemy URL) overrides the configured one, which APE_TREASURY_STORE
        overrides in turn. A URL reaches the store as written: `Path()` would fold
        "postgresql://u:p@host/db" into a local file named after the password.
        """
        config = load_config(config_path)
        entry = config.treasury(name)
        if not isinstance(store, Store):
            store = Store.open(str(store or config.store))  # a path (its folder made) or a URL, as written
        treasury = cls(name, entry, store)
        treasury.config_path = config_path
        treasury.retry_policy = config.rpc.policy()
        return treasury

    def __repr__(self) -> str:
        return f"<Treasury {self.name}: Safe {self.safe} v{self.version} on chain {self.chain_id}>"

    # --- the Safe on chain ------------------------------------------------------------------------

    @property
    def safe(self) -> str:
        return self.entry.safe

    @property
    def version(self) -> str:
        return self.entry.version

    @property
    def chain_id(self) -> int:
        return self.entry.chain_id

    @property
    def addresses(self) -> AddressBook:
        """The address book: owners and vendors by name, token symbols beside them for labels."""
        return self.entry.address_book()

    def resolve_address(self, text: str, what: str = "address") -> str:
        """A checksummed address from what a person typed: an address, an address book name, or an
        ENS name (looked up on the connected chain when it has ENS; refused in one line elsewhere).

        The book comes first, so a name the team configured never depends on the chain, and an
        address never needs one.
        """
        from treasury.addressbook import looks_like_ens

        typed = text.strip() if isinstance(text, str) else text
        if not isinstance(typed, str) or typed.lower().startswith("0x") or self.addresses.lookup(typed) is not None \
                or not looks_like_ens(typed):
            return self.addresses.resolve(typed, what)
        from treasury.chain.ens import resolve_ens

        return resolve_ens(self._connected().provider, typed, what)

    def _connected(self):
        from ape import chain

        if not chain.provider.is_connected:
            raise TreasuryError("not connected to a chain (use --network, or `ape console --network ...`)")
        if chain.chain_id != self.chain_id:
            raise TreasuryError(f"connected to chain {chain.chain_id}, but treasury {self.name} is on chain {self.chain_id}")
        if self._reconciled is not chain.provider:
            self._reconciled = chain.provider  # first: reconciling reads the chain through this method
            if not chain.provider.network.is_dev:
                from treasury.chain.rpc import harden

                harden(chain.provider, self.retry_policy)
            self.reconcile()
        return chain

    @property
    def is_live(self) -> bool:
        """Connected to a network that is neither local nor a fork: mistakes there are permanent."""
        from treasury.chain.infrastructure import is_dev_chain

        return not is_dev_chain(self._connected().provider)

    def reconcile(self) -> list:
        """Record what the chain says happened to our broadcasts and to proposals whose nonce was used.

        Runs by itself on the first chain access of every Treasury (so every command that connects
        picks up an execution a crashed process did not record); returns `treasury.execution.reconcile.Reconciled`s.
        """
        from ape.logging import logger

        from treasury.execution.reconcile import reconcile

        if getattr(self.store, "is_remote", False):
            return []  # a server's store is the server's to reconcile; a client does not write its statuses
        found = reconcile(self)
        for item in found:
            log = logger.warning if item.outcome == "not-on-chain" else logger.info
            log(f"reconciled proposal {item.proposal_id}: {item.outcome} ({item.detail})")
        self.reconciled.extend(found)
        return found

    def _safe(self) -> ContractInstance:
        from treasury.chain.safe import safe_instance

        self._connected()
        return safe_instance(self.safe, self.version)

    def owners(self) -> list[str]:
        return [parse_address(o, "owner") for o in self._safe().getOwners()]

    def threshold(self) -> int:
        return int(self._safe().getThreshold())

    def onchain_nonce(self) -> int:
        return int(self._safe().call_view_method("nonce"))

    def guard(self) -> ContractInstance | None:
        from treasury.chain.guard import guard_at

        return guard_at(self.entry.guard) if self.entry.guard else None

    def modules(self) -> list[str]:
        sentinel = "0x0000000000000000000000000000000000000001"
        found, _next = self._safe().getModulesPaginated(sentinel, 100)
        return [parse_address(m, "module") for m in found]

    def balances(self) -> dict[str, int]:
        """The Safe's balance of the native currency and of every token in the book, in base units."""
        from ape import chain

        self._connected()
        result = {}
        for symbol, token in self.book.tokens.items():
            if token.is_native:
                result[symbol] = int(chain.provider.get_balance(self.safe))
            else:
                result[symbol] = _erc20_balance(token.address, self.safe)
        return result

    def status(self) -> TreasuryStatus:
        """Everything `treasury info` shows, read from the chain now."""
        from treasury.chain.guard import MODULE_GUARD_STORAGE_SLOT, budgets, entries, installed_guard
        from treasury.chain.handler import classify_handler, installed_handler, read_address_slot

        guard = self.guard()
        budget: dict[str, int] = {}
        queue: tuple = ()
        if guard is not None:
            for address, left in budgets(guard, self.policy).items():
                token = self.book.by_address(address)
                budget[token.symbol if token else address] = int(left)
            queue = tuple(entries(guard))
        return TreasuryStatus(
            name=self.name, safe=self.safe, chain_id=self.chain_id, version=self.version, owners=tuple(self.owners()),
            threshold=self.threshold(), nonce=self.onchain_nonce(), guard=self.entry.guard,
            installed_guard=installed_guard(self.safe), modules=tuple(self.modules()), balances=self.balances(),
            budgets=budget, entries=queue, fallback_handler=classify_handler(installed_handler(self.safe)),
            module_guard=read_address_slot(self.safe, MODULE_GUARD_STORAGE_SLOT) if self.version == "1.5.0" else None,
        )

    # --- proposals --------------------------------------------------------------------------------

    def next_nonce(self, chain_nonce: int | None = None) -> int:
        """The smallest nonce at or after the chain's that no open proposal holds.

        So a nonce freed by `drop` (or a cancelled proposal) is used again at once: the proposals
        after it cannot run until some transaction spends it.
        """
        nonce = self.onchain_nonce() if chain_nonce is None else chain_nonce
        held = {r.nonce for r in self.store.list_proposals(safe=self.safe, chain_id=self.chain_id)
                if r.status in OPEN and r.nonce >= nonce}
        while nonce in held:
            nonce += 1
        return nonce

    def propose(self, intent: Intent, title: str = "", nonce: int | None = None, *, if_denied: IfDenied | None = None,
                from_draft: str | None = None) -> ProposalRecord:
        """Number the intent, hash it, store it. The nonce defaults to the next free one.

        `if_denied`: what happens when the policy denies the intent now. "store" (the default, from
        `self.if_denied`: the test suite and library users rely on storing whatever they propose)
        stores it like any other; "refuse" raises PolicyRefusal with nothing stored and no nonce
        taken (the CLI's default: a denied proposal would otherwise hold a nonce and block every
        proposal after it); "draft" keeps it as a draft without a nonce and raises Drafted (the
        CLI's --force). `from_draft`: the draft this proposal promotes (see `propose_draft`).
        """
        self._judge_new(intent, title, if_denied or self.if_denied)
        chain_nonce = self.onchain_nonce()
        if nonce is None:
            nonce = self.next_nonce(chain_nonce)
        elif nonce < chain_nonce:
            raise StaleProposal(f"nonce {nonce} was already used on chain (the Safe is at nonce {chain_nonce})")
        safe_tx = self._safe_tx(intent.to, intent.value, intent.data, intent.operation, nonce)
        fields: dict[str, Any] = dict(
            chain_id=self.chain_id, safe=self.safe, nonce=nonce, to=intent.to, value=intent.value,
            data=intent.data, operation=intent.operation, safe_tx_hash=safe_tx.safe_tx_hash.to_0x_hex(),
            title=title or intent.summary[:200], description=intent.summary, actor=self.actor,
            # The signing account when one proposes (--account), else the OS user (shown as "local user …").
            proposer=self.proposer.address if self.proposer is not None else self.actor,
        )
        if from_draft is not None:
            fields["from_draft"] = from_draft
        if self.proposer is None and not getattr(self.store, "is_remote", False):
            return self.store.add_proposal(**fields)
        return self._propose_signed(safe_tx, fields)

    def _judge_new(self, intent: Intent, title: str, if_denied: IfDenied) -> None:
        """Before numbering: refuse a denied intent, or keep it as a draft, as `if_denied` says."""
        if if_denied not in IF_DENIED:
            raise InvalidInput(f"if_denied {if_denied!r} is not one of {', '.join(IF_DENIED)}")
        if if_denied == "store":
            return
        verdict = self.verdict_for(intent.to, intent.value, intent.data, intent.operation)
        if verdict.outcome != "deny":
            return
        if if_denied == "refuse":
            raise PolicyRefusal(verdict)
        self._require_local("drafts")
        draft = self.store.add_draft(
            chain_id=self.chain_id, safe=self.safe, to=intent.to, value=intent.value, data=intent.data,
            operation=intent.operation, title=title or intent.summary[:200], description=intent.summary,
            proposer=self.proposer.address if self.proposer is not None else self.actor, actor=self.actor,
            reason=verdict.reason[:2000],
        )
        raise Drafted(verdict, draft)

    def _require_local(self, what: str) -> None:
        if getattr(self.store, "is_remote", False):
            raise InvalidInput(f"{what} are kept in a local store only: not against a server (run without --server)")

    # --- drafts and dropping ----------------------------------------------------------------------

    def draft(self, draft_id: str) -> DraftRecord:
        """The draft, refused if it belongs to another Safe or chain than this treasury's."""
        self._require_local("drafts")
        record = self.store.get_draft(draft_id)
        if (record.chain_id, record.safe) != (self.chain_id, self.safe):
            raise InvalidInput(f"draft {record.id} belongs to Safe {record.safe} on chain {record.chain_id}, not to {self.name}")
        return record

    def drafts(self) -> list[DraftRecord]:
        """This treasury's open drafts, oldest first (none against a server)."""
        if getattr(self.store, "is_remote", False):
            return []
        return self.store.drafts(safe=self.safe, chain_id=self.chain_id)

    def propose_draft(self, draft_id: str) -> ProposalRecord:
        """Turn an open draft into a proposal with the next free nonce, if the policy allows it now.

        Still denied: PolicyRefusal, the draft kept as it is. The draft is marked promoted in the
        same store transaction that adds the proposal.
        """
        record = self.draft(draft_id)
        if record.status != "draft":
            where = f" as proposal {record.proposal_id}" if record.proposal_id else ""
            raise InvalidInput(f"draft {record.id} is {record.status}{where}; only an open draft can be proposed")
        intent = Intent(record.to, record.value, record.data, record.operation, record.description)
        return self.propose(intent, record.title, if_denied="refuse", from_draft=record.id)

    def drop(self, item_id: str, reason: str = "", force: bool = False) -> Dropped:
        """Drop a proposal locally (no chain transaction) while its nonce is unused, or drop a draft.

        A pending proposal, or a scheduled one with no live guard queue entry, is marked cancelled
        with `reason` in the audit log. Refused when its nonce was used on chain, it executed, it
        has a queued guard entry (in the store or on the guard: `cancel` it on chain), an execution
        is in flight, or (unless `force`) the store holds a SafeTx signature of it: the owners
        could otherwise still run a proposal the store calls cancelled. Whoever holds signatures
        can run it anyway until its nonce is used (`Dropped.warning` says so; `reject` spends the
        nonce); reconciling records such an execution.
        """
        self._require_local("drafts and dropped proposals")
        try:
            record = self.get(item_id)
        except UnknownProposal:
            return self._drop_draft(item_id, reason)
        self._connected()  # reconciles first: an execution the store missed shows as executed
        record = self.get(record.id)
        self._check_droppable(record, force)
        note = reason or "dropped locally"
        self.store.set_status(record.id, "cancelled", self.actor, f"dropped: {note}")
        still = [r for r in self.proposals() if r.status in OPEN]
        freed = all(r.nonce != record.nonce for r in still)
        waiting = tuple(r.id for r in still if r.nonce > record.nonce) if freed else ()
        warning = (f"signatures of proposal {record.id} held elsewhere stay valid until nonce {record.nonce} is used: "
                   f"`treasury reject {record.id}` spends it")
        return Dropped("proposal", record.id, record.nonce, freed, waiting, warning)

    def _drop_draft(self, draft_id: str, reason: str) -> Dropped:
        record = self.draft(draft_id)
        if record.status != "draft":
            raise InvalidInput(f"draft {record.id} is {record.status}; only an open draft can be dropped")
        self.store.drop_draft(record.id, self.actor, reason or "dropped")
        return Dropped("draft", record.id, None, False, ())

    def _check_droppable(self, record: ProposalRecord, force: bool = False) -> None:
        """One line saying why a proposal cannot be dropped locally, if it cannot."""
        if record.status not in OPEN:
            raise InvalidInput(f"proposal {record.id} is {record.status}; only a pending or scheduled proposal can be dropped")
        chain_nonce = self.onchain_nonce()
        if record.nonce < chain_nonce:
            raise InvalidInput(f"proposal {record.id} has nonce {record.nonce}, already used on chain (the Safe is at "
                               f"{chain_nonce}): there is nothing to drop")
        if any(e.status == "queued" for e in self.store.schedule_entries(record.id)):
            raise InvalidInput(f"proposal {record.id} has a live guard queue entry: cancel it on chain with "
                               f"`treasury cancel {record.id} --drop`")
        entry_id = self._live_guard_entry(record)
        if entry_id is not None:
            raise InvalidInput(f"proposal {record.id}'s intent waits in the guard's queue as entry {entry_id} "
                               "(scheduled outside this store): cancel it on chain first (`treasury cancel`)")
        if self.store.broadcasts(record.id, status="sent"):
            raise InvalidInput(f"proposal {record.id} has an execution in flight: wait for it (`treasury reconcile`)")
        signed = len(self.store.signatures(record.id))
        if signed and not force:
            raise InvalidInput(f"proposal {record.id} has {signed} SafeTx signature(s) stored: whoever holds them can still "
                               f"execute it until nonce {record.nonce} is used; `treasury reject {record.id}` spends it "
                               "(or drop with --force)")

    def _live_guard_entry(self, record: ProposalRecord) -> int | None:
        """The guard's pending, unexpired queue entry for the proposal's intent, if any (asked on chain:
        an entry scheduled from another store or straight through the guard counts too)."""
        from ape import chain

        from treasury.chain.guard import ENTRY_STATUS

        guard = self.guard()
        if guard is None:
            return None
        intent = bytes(guard.intentId(record.to, record.value, record.data, record.operation))
        entry_id = int(guard.pendingEntryOf(intent))
        if entry_id == 0:
            return None
        _, _, expiry, status = guard.getEntry(entry_id)
        live = ENTRY_STATUS[int(status)] == "pending" and chain.pending_timestamp < int(expiry)
        return entry_id if live else None

    def _propose_signed(self, safe_tx: SafeTx, fields: dict[str, Any]) -> ProposalRecord:
        """Propose with the proposer's signature of the safeTxHash: to a server in one request (its
        check decides, as Safe's service: an owner's counts as a confirmation, a delegate's does not);
        to a local store, verified against the owners and stored as the first signature."""
        if self.proposer is None:
            raise InvalidInput("a server takes a proposal only with its proposer's signature: propose with --account ALIAS")
        signature = sign_with(self.proposer, safe_tx, kind="eip712")
        raw = bytes(signature.export_signature())
        if getattr(self.store, "is_remote", False):
            return self.store.add_signed_proposal(sender=signature.owner, signature=raw, **fields)  # type: ignore[attr-defined]
        verify(signature, safe_tx, self.owners())
        return self.store.add_proposal(**fields, signatures=[new_signature(signature.owner, "eip712", raw)])

    def propose_transfer(self, to: str, amount: str, title: str = "") -> ProposalRecord:
        """Native or ERC-20 transfer from a human amount: "1.5 ETH", "250000 USDC". `to`: an address,
        an address book name or an ENS name (`resolve_address`)."""
        typed, to = to, self.resolve_address(to, "recipient")
        return self.propose(self._ens_noted(build.token_transfer(self.safe, self.book, to, amount), typed), title)

    def _ens_noted(self, intent: Intent, *typed: object) -> Intent:
        """The intent with the ENS names it was resolved from in its summary ("... (vitalik.eth via
        ENS)"): the stored title and description show signers the name that was resolved beside the
        address it pointed to when proposed (a name can be re-pointed later; the address is what is
        signed). The name is shown ENSIP-15-normalized, as resolved, not as typed: "vitaIik.eth" (a
        capital I) would read as vitalik, its normal form "vitaiik.eth" does not."""
        from dataclasses import replace

        from treasury.addressbook import looks_like_ens
        from treasury.chain.ens import normalize_ens

        names = [normalize_ens(t.strip()) for t in typed if isinstance(t, str) and looks_like_ens(t.strip())
                 and self.addresses.lookup(t.strip()) is None]
        return replace(intent, summary=f"{intent.summary} ({', '.join(names)} via ENS)") if names else intent

    def propose_nft_transfer(self, collection: str, to: str, token_id: int, title: str = "") -> ProposalRecord:
        collection, to = self._call_target(collection, "collection"), self.resolve_address(to, "recipient")
        return self.propose(build.nft_transfer(self.safe, collection, to, token_id), title)

    def propose_call(self, target: str, signature: str, args: Sequence[Any] = (), value: int = 0, title: str = "") -> ProposalRecord:
        """Call `signature` on `target`: an address, a token symbol of the book, a book name or an ENS
        name; address arguments may be book or ENS names too (resolved before anything is built)."""
        from treasury.proposal.arguments import parse_arguments

        typed, target = target, self._call_target(target, "call target")
        args = parse_arguments(signature, args, resolve=self.resolve_address)
        return self.propose(self._ens_noted(build.contract_call(target, signature, args, value), typed), title)

    def _call_target(self, text: str, what: str) -> str:
        """A contract named as people name it: a token symbol of the book first (as the policy's call
        targets are written), then whatever `resolve_address` takes."""
        if isinstance(text, str) and not text.strip().lower().startswith("0x") and self.addresses.lookup(text.strip()) is None:
            token = next((t for s, t in self.book.tokens.items() if s.upper() == text.strip().upper()), None)
            if token is not None and not token.is_native:
                return token.address
        return self.resolve_address(text, what)

    def propose_batch(self, intents: Sequence[Intent], title: str = "") -> ProposalRecord:
        return self.propose(build.batch(intents, self.version), title)

    def propose_add_owner(self, owner: str, threshold: int, title: str = "") -> ProposalRecord:
        """Owners may be given as addresses, address book names or ENS names (`resolve_address`)."""
        typed, owner = owner, self.resolve_address(owner, "owner")
        return self.propose(self._ens_noted(build.add_owner(self.safe, self.owners(), owner, threshold), typed), title)

    def propose_remove_owner(self, owner: str, threshold: int, title: str = "") -> ProposalRecord:
        owner = self.resolve_address(owner, "owner")
        return self.propose(build.remove_owner(self.safe, self.owners(), owner, threshold), title)

    def propose_swap_owner(self, old: str, new: str, title: str = "") -> ProposalRecord:
        typed, (old, new) = (old, new), (self.resolve_address(old, "owner"), self.resolve_address(new, "owner"))
        return self.propose(self._ens_noted(build.swap_owner(self.safe, self.owners(), old, new), *typed), title)

    def propose_threshold(self, threshold: int, title: str = "") -> ProposalRecord:
        return self.propose(build.change_threshold(self.safe, self.owners(), threshold), title)

    def propose_guard_setting(self, signature: str, args: Sequence[Any], title: str = "") -> ProposalRecord:
        if not self.entry.guard:
            raise InvalidInput(f"treasury {self.name} has no guard configured")
        return self.propose(build.guard_setting(self.entry.guard, signature, args), title)

    def propose_fallback_handler(self, handler: str | None = None, title: str = "") -> ProposalRecord:
        """Switch the Safe's fallback handler (default: TreasuryFallbackHandler); on a guarded Safe it waits the delay."""
        from treasury.chain.handler import handler_address

        handler = self.resolve_address(handler, "fallback handler") if handler else handler_address()
        return self.propose(build.fallback_handler_change(self.safe, handler), title)

    def propose_guard_install(self, guard: str | None = None, title: str = "") -> ProposalRecord:
        """Install `guard` (default: the configured one) as one proposal owners sign asynchronously.

        The guard must be deployed for this Safe and the Safe must have no guard yet; the batch also
        sets TreasuryFallbackHandler first if the Safe has another handler (build.guard_installation).
        """
        from treasury.chain.guard import guard_at, installed_guard
        from treasury.chain.handler import handler_address, installed_handler

        guard = guard or self.entry.guard
        if not guard:
            raise InvalidInput(f"treasury {self.name} has no guard configured: name the deployed guard to install")
        guard = self.resolve_address(guard, "guard")
        self._connected()
        try:
            bound = guard_at(guard).SAFE()
        except Exception:  # noqa: BLE001 - no code, or not a TreasuryGuard
            raise InvalidInput(f"{guard} is not a deployed TreasuryGuard") from None
        if parse_address(bound, "Safe") != self.safe:
            raise InvalidInput(f"guard {guard} was deployed for another Safe ({bound})")
        intent = build.guard_installation(
            self.safe, self.version, guard, current_guard=installed_guard(self.safe),
            current_handler=installed_handler(self.safe), handler=handler_address(),
        )
        return self.propose(intent, title)

    def reject(self, proposal_id: str) -> ProposalRecord:
        """A no-op at the same nonce: once executed, the rejected proposal can never run."""
        record = self.get(proposal_id)
        if record.status not in OPEN:
            raise InvalidInput(f"proposal {record.id} is {record.status}; there is nothing to reject")
        return self.propose(build.rejection(self.safe), f"reject {record.id} (nonce {record.nonce})", nonce=record.nonce)

    # --- reading ----------------------------------------------------------------------------------

    @property
    def records(self) -> TreasuryRecords:
        """This treasury as the store alone knows it (no chain): views, bundles, the audit log."""
        from treasury.records import TreasuryRecords

        return TreasuryRecords(self.name, self.entry, self.store)

    def get(self, proposal_id: str) -> ProposalRecord:
        """The proposal, refused if it belongs to another Safe or chain than this treasury's."""
        return self.records.get(proposal_id)

    def proposals(self, status: ProposalStatus | None = None, limit: int | None = None) -> list[ProposalRecord]:
        return self.store.list_proposals(safe=self.safe, chain_id=self.chain_id, status=status, limit=limit)

    def _safe_tx(
        self, to: str, value: int, data: bytes, operation: int, nonce: int, *, safe_tx_gas: int = 0, base_gas: int = 0,
        gas_price: int = 0, gas_token: str = ZERO_ADDRESS, refund_receiver: str = ZERO_ADDRESS,
    ) -> SafeTx:
        return build_safe_tx(
            self.safe, to, value, data, operation, nonce=nonce, chain_id=self.chain_id, version=self.version,
            safe_tx_gas=safe_tx_gas, base_gas=base_gas, gas_price=gas_price, gas_token=gas_token, refund_receiver=refund_receiver,
        )

    def safe_tx(self, record: ProposalRecord) -> SafeTx:
        """The SafeTx of a stored proposal, re-hashed: a stored hash that does not match is tampering."""
        safe_tx = self._safe_tx(record.to, record.value, record.data, record.operation, record.nonce,
                                safe_tx_gas=record.safe_tx_gas, base_gas=record.base_gas, gas_price=record.gas_price,
                                gas_token=record.gas_token, refund_receiver=record.refund_receiver)
        if safe_tx.safe_tx_hash.to_0x_hex() != record.safe_tx_hash.lower():
            raise TamperedRecord(f"proposal {record.id}: its fields no longer hash to its safeTxHash {record.safe_tx_hash}")
        return safe_tx

    def decode(self, proposal_id: str) -> DecodedProposal:
        return decode_safe_tx(self.safe_tx(self.get(proposal_id)), self.book)

    def verdict(self, proposal_id: str) -> Verdict:
        """The policy verdict from the configured policy and the guard's live state."""
        record = self.get(proposal_id)
        return self.verdict_for(record.to, record.value, record.data, record.operation, record.gas_price)

    def verdict_for(self, to: str, value: int, data: bytes, operation: int, gas_price: int = 0) -> Verdict:
        """The policy verdict on a Safe transaction that need not be stored yet (a server judges a
        proposal before it stores it, so a refused one leaves nothing behind)."""
        return self.verdicts_for([(to, value, data, operation, gas_price)])[0]

    def verdicts_for(self, transactions: Sequence[tuple[str, int, bytes, int, int]]) -> list[Verdict]:
        """`verdict_for` of many (to, value, data, operation, gas_price), against one read of the
        guard's state: a server lists a thousand proposals with their verdicts in one go."""
        from dataclasses import replace

        from treasury.chain.guard import installed_guard
        from treasury.chain.handler import classify_handler, handler_warning, installed_handler
        from treasury.policy.engine import evaluate, read_guard_state

        guard = self.guard()
        if guard is None:
            return [Verdict("allow", "no guard configured: the Safe's owners alone decide")] * len(transactions)
        if installed_guard(self.safe) == ZERO_ADDRESS:
            # e.g. the proposal that installs it (`treasury propose guard-install`): nothing checks it yet
            return [Verdict("allow", f"guard {guard.address} is not installed yet: the Safe's owners alone decide")] * len(transactions)
        state = read_guard_state(guard, self.policy)  # queue entries are looked up when a verdict needs one
        # A handler that signs arbitrary messages lets owners move funds without any proposal at all.
        warning = handler_warning(classify_handler(installed_handler(self.safe)), guarded=True)
        label = self.addresses.label  # names beside addresses in every reason ("acme (0x…)")
        verdicts = [evaluate(self.policy, state, to, value, data, operation, gas_price, book=self.book, label=label)
                    for to, value, data, operation, gas_price in transactions]
        return [replace(v, warnings=(*v.warnings, warning)) for v in verdicts] if warning else verdicts

    def require_allowed(self, proposal_id: str, verdict: Verdict | None = None) -> Verdict:
        """The proposal's verdict if it allows execution now; PolicyRefusal if it denies or must wait.

        What `execute` checks before anything is signed or sent. `verdict`: one computed moments
        ago (e.g. for a ProposalView just shown), so the caller refuses on what it displayed.
        """
        verdict = self.verdict(proposal_id) if verdict is None else verdict
        if not verdict.allowed:
            raise PolicyRefusal(verdict)
        return verdict

    def view(self, proposal_id: str) -> ProposalView:
        self._connected()  # reconciles first, so the status shown is the chain's
        record = self.get(proposal_id)
        return ProposalView(record, self.decode(proposal_id), self.verdict(proposal_id),
                            tuple(s.owner for s in self.store.signatures(record.id)), self.threshold())

    # --- signatures -------------------------------------------------------------------------------

    def sign(self, proposal_id: str, account: AccountAPI, kind: SignatureKind = "eip712") -> SignatureRecord:
        """Sign as `account` (an ape account) everything the proposal needs from an owner, verify
        each against the current owners, then store it; returns the SafeTx signature's record.

        Everything: the SafeTx and, when the policy verdict says the proposal must first be
        queued (NotScheduled, EntryExpired), the guard's schedule hash at the intent's current
        schedule nonce (see `sign_all`, which says what was signed).
        """
        signed = self.sign_all(proposal_id, account, kind)
        if signed.safe_tx is not None:
            return signed.safe_tx
        return next(s for s in self.store.signatures(signed.proposal_id) if s.owner == account.address)

    def sign_all(self, proposal_id: str, account: AccountAPI, kind: SignatureKind = "eip712") -> Signed:
        """`sign`, saying what was signed now and what this owner had signed already.

        Refused (DuplicateSignature, nothing stored) only when the owner had signed all of it.
        Every signature is verified before anything is stored; the SafeTx one is stored first.
        """
        from treasury.store import DuplicateSignature

        record = self._open(proposal_id)
        safe_tx = self.safe_tx(record)
        owners = self.owners()
        message = self.schedule_message_needed(record)
        already: list[str] = []
        safe_tx_signature = schedule_signature = None
        # Only a chain-verified signature counts as signed: a bundle's row for this owner (its owner
        # list is the bundle's word) is replaced by the real one in the store.
        if any(s.owner == account.address and s.verified_by == "chain" for s in self.store.signatures(record.id)):
            already.append("safe_tx")
        else:
            safe_tx_signature = sign_with(account, safe_tx, kind=kind)
            verify(safe_tx_signature, safe_tx, owners)
        if message is not None:
            if any(s.owner == account.address and s.verified_by == "chain"
                   for s in self.store.signatures(record.id, "schedule", message.hash)):
                already.append("schedule")
            else:
                schedule_signature = self._signed_guard_message(account, message, owners, kind)
        if safe_tx_signature is None and schedule_signature is None:
            what = "the SafeTx" + (f" and the {message.describe()}" if message is not None else "")
            raise DuplicateSignature(f"owner {account.address} has already signed {what} of proposal {record.id}")
        stored_safe_tx = stored_schedule = None
        if safe_tx_signature is not None:
            stored_safe_tx = self.store.add_signature(record.id, safe_tx_signature.owner, kind,
                                                      bytes(safe_tx_signature.export_signature()), actor=self.actor)
        if schedule_signature is not None and message is not None:
            stored_schedule = self._store_guard_signature(record, message, schedule_signature)
        return Signed(record.id, stored_safe_tx, stored_schedule, tuple(already), message)

    def sign_as_contract_owner(self, proposal_id: str, owner_safe: str, inner_signers: Sequence[AccountAPI],
                               kind: SignatureKind = "eip712") -> SignatureRecord:
        """Sign the proposal's SafeTx as the contract owner `owner_safe` (an address or book name: a
        Safe that owns this one), through its own owners `inner_signers`; verified, then stored.

        So a contract owner's key is exercised like any other owner's: each inner signer signs the
        owner Safe's SafeMessage, the result is put to its EIP-1271 check and to the outer Safe's
        verification before anything is stored. Only the SafeTx: a contract owner's schedule or
        cancel signature comes from a bundle. Refused (DuplicateSignature) when it already signed.
        """
        from treasury.signatures.signing import sign_as_contract_owner
        from treasury.store import DuplicateSignature

        record = self._open(proposal_id)
        owner = self.resolve_address(owner_safe, "owner Safe")
        owners = self.owners()
        if owner not in owners:
            raise InvalidInput(f"{self.addresses.label(owner)} is not an owner of Safe {self.safe}")
        if any(s.owner == owner and s.verified_by == "chain" for s in self.store.signatures(record.id)):
            raise DuplicateSignature(f"owner {owner} has already signed the SafeTx of proposal {record.id}")
        safe_tx = self.safe_tx(record)
        signature = sign_as_contract_owner(owner, inner_signers, safe_tx, kind=kind)
        verify(signature, safe_tx, owners)
        return self.store.add_signature(record.id, owner, "contract", bytes(signature.export_signature()), actor=self.actor)

    def _store_signature(self, record: ProposalRecord, safe_tx: SafeTx, signature: SafeSignature,
                         kind: SignatureKind) -> SignatureRecord:
        verify(signature, safe_tx, self.owners())
        return self.store.add_signature(record.id, signature.owner, kind, bytes(signature.export_signature()), actor=self.actor)

    # --- schedule and cancel signatures (TreasuryGuard's delay queue) -------------------------------

    def _require_guard(self, doing: str) -> ContractInstance:
        guard = self.guard()
        if guard is None:
            raise InvalidInput(f"treasury {self.name} has no guard: {doing}")
        return guard

    def schedule_message(self, proposal_id: str, nonce: int | None = None) -> GuardMessage:
        """What owners sign to queue the proposal's intent: at its current schedule nonce (read from
        the guard) unless `nonce` is given. Checked against the guard's own scheduleHash."""
        record = self.get(proposal_id)
        guard = self._require_guard("nothing to schedule")
        if nonce is None:
            intent = bytes(guard.intentId(record.to, record.value, record.data, record.operation))
            nonce = int(guard.intentState(intent)[0])
        return self._schedule_message_of(guard, record, nonce, f"proposal {record.id}")

    def _schedule_message_of(self, guard: ContractInstance, tx: Any, nonce: int, what: str) -> GuardMessage:
        """The schedule message of `tx` (a stored proposal, or a bundle read back: anything with to,
        value, data and operation) at schedule nonce `nonce`, checked against the guard's scheduleHash."""
        from treasury.signatures.guard_messages import schedule_message

        message = schedule_message(chain_id=self.chain_id, guard=guard.address, safe=self.safe, to=tx.to,
                                   value=tx.value, data=tx.data, operation=tx.operation, nonce=nonce)
        onchain = bytes(guard.scheduleHash(tx.to, tx.value, tx.data, tx.operation, nonce))
        if onchain != message.hash:
            raise TreasuryError(f"guard {guard.address} says scheduleHash {'0x' + onchain.hex()} for the {message.describe()} "
                                f"of {what}, not {message.hash_hex}: is it a TreasuryGuard v2?")
        return message

    def cancel_message(self, entry_id: int) -> GuardMessage:
        """What owners sign to cancel guard entry `entry_id`, checked against the guard's cancelHash."""
        from treasury.signatures.guard_messages import cancel_message

        guard = self._require_guard("there is no queue to cancel from")
        message = cancel_message(chain_id=self.chain_id, guard=guard.address, safe=self.safe, entry_id=entry_id)
        onchain = bytes(guard.cancelHash(entry_id))
        if onchain != message.hash:
            raise TreasuryError(f"guard {guard.address} says cancelHash {'0x' + onchain.hex()} for entry {entry_id}, "
                                f"not {message.hash_hex}: is it a TreasuryGuard v2?")
        return message

    def schedule_message_needed(self, record: ProposalRecord) -> GuardMessage | None:
        """The schedule message when the verdict says the proposal must be queued first, else None."""
        if self.guard() is None:
            return None
        if self.verdict(record.id).error not in SCHEDULE_ERRORS:
            return None
        return self.schedule_message(record.id)

    def _signed_guard_message(self, account: AccountAPI, message: GuardMessage, owners: Sequence[str],
                              kind: SignatureKind) -> SafeSignature:
        from treasury.signatures.signing import sign_guard_message
        from treasury.signatures.verification import verify_guard_signature

        signature = sign_guard_message(account, message, self.version, kind)
        return verify_guard_signature(signature, message, owners, self.version)

    def _store_guard_signature(self, record: ProposalRecord, message: GuardMessage, signature: SafeSignature,
                               actor: str | None = None) -> SignatureRecord:
        """Store a schedule or cancel signature the caller has just verified over `message`."""
        return self.store.add_signature(
            record.id, signature.owner, kind_of(signature), bytes(signature.export_signature()), actor=actor or self.actor,
            purpose=message.purpose, signed_hash=message.hash, intent_nonce=message.intent_nonce, entry_id=message.entry_id,
        )

    def queued_entry(self, record: ProposalRecord) -> tuple[ContractInstance, ScheduleEntryRecord]:
        """The proposal's queued entry (store), which must be pending on chain."""
        from treasury.chain.guard import entries

        if record.status != "scheduled":
            raise InvalidInput(f"proposal {record.id} is {record.status}; only a scheduled proposal can be cancelled")
        guard = self._require_guard("there is no queue to cancel from")
        queued = [e for e in self.store.schedule_entries(record.id) if e.status == "queued"]
        if not queued:
            raise InvalidInput(f"proposal {record.id} has no queued entry in the store")
        stored = queued[-1]
        onchain = {e.entry_id: e for e in entries(guard)}.get(stored.entry_id)
        if onchain is None or onchain.status != "pending":
            state = onchain.status if onchain else "unknown"
            raise InvalidInput(f"guard entry {stored.entry_id} is {state}, not pending: nothing to cancel")
        return guard, stored

    def sign_cancel(self, proposal_id: str, account: AccountAPI, kind: SignatureKind = "eip712") -> SignatureRecord:
        """Sign as `account` the cancellation of the proposal's queued guard entry; verified, then stored.

        A minority of owners can cancel (`cancel` needs only the guard's cancelSignaturesRequired),
        each owner once per intent until it runs.
        """
        self._connected()
        record = self.get(proposal_id)
        guard, stored = self.queued_entry(record)
        if self._spent_cancellers(guard, stored.entry_id, [account.address]):
            raise InvalidInput(f"{account.address} already cancelled proposal {record.id}'s intent since it last ran: "
                               "an owner cancels an intent once until it executes")
        message = self.cancel_message(stored.entry_id)
        signature = self._signed_guard_message(account, message, self.owners(), kind)
        return self._store_guard_signature(record, message, signature)

    def guard_signatures(self, proposal_id: str, message: GuardMessage) -> list[SafeSignature]:
        """The stored signatures over `message`, re-verified against the current owners; a stored one
        that no longer verifies (its owner was removed, an approval is gone) is left out."""
        from treasury.signatures.verification import InvalidSignature, verify_guard_signature

        owners = self.owners()
        found = []
        for stored in self.store.signatures(proposal_id, message.purpose, message.hash):
            try:
                found.append(verify_guard_signature(stored.signature, message, owners, self.version, claimed_owner=stored.owner))
            except InvalidSignature:
                continue
        return found

    def _gather(self, record: ProposalRecord, message: GuardMessage, signers: Sequence[AccountAPI], required: int,
                doing: str, spent: frozenset[str] = frozenset()) -> bytes:
        """Stored signatures over `message` plus those of `signers`: the first `required` sorted by
        owner, encoded for the Safe, leaving out owners in `spent` (who already cancelled the
        intent: the guard refuses them). Refused in one line when too few, with nothing stored;
        else the new signatures (each verified) are stored before the caller sends them."""
        from treasury.signatures.verification import encode

        owners = self.owners()
        have = {s.owner: s for s in self.guard_signatures(record.id, message)}
        new = []
        for signer in signers:
            if signer.address not in have and signer.address not in spent:
                signature = self._signed_guard_message(signer, message, owners, "eip712")
                have[signature.owner] = signature
                new.append(signature)
        have = {owner: signature for owner, signature in have.items() if owner not in spent}
        if len(have) < required:
            missing = required - len(have)
            spent_note = f", {len(spent)} owner(s) already cancelled this intent since it last ran" if spent else ""
            raise InvalidInput(
                f"proposal {record.id} has {len(have)} of the {required} {message.purpose} signatures the guard needs "
                f"for the {message.describe()}: {missing} missing ({doing}{spent_note})"
            )
        for signature in new:
            self._store_guard_signature(record, message, signature)
        chosen = [have[o] for o in sorted(have, key=lambda a: int(a, 16))][:required]
        return encode(chosen)

    def signature_needs(self, proposal_id: str) -> list[SignatureNeed]:
        """For `treasury show`: the SafeTx, schedule and cancel signatures stored now, and how many
        more each needs (the schedule one only while the proposal must be queued, the cancel one only
        while it is). Counted against the Safe's current owners and the guard's requirements."""
        from treasury.signatures.verification import InvalidSignature

        self._connected()
        record = self.get(proposal_id)
        self.reverify(record.id)  # a bundle's signatures now checked by the chain: marked, or left out below
        safe_tx, owners, valid = self.safe_tx(record), self.owners(), []
        for signature in self.store.signatures(record.id):
            try:  # counted as the Safe counts them now: a removed owner's signature does not count
                verify(parse_signature(signature.signature, safe_tx), safe_tx, owners)
            except InvalidSignature:
                continue
            valid.append(signature.owner)
        needs = [SignatureNeed("safe_tx", record.safe_tx_hash, "the SafeTx", tuple(valid), self.threshold())]
        guard = self.guard()
        if guard is None or record.status not in OPEN:
            return needs
        if record.status == "scheduled":
            try:
                guard, stored = self.queued_entry(record)
            except InvalidInput:
                return needs
            message = self.cancel_message(stored.entry_id)
            required = int(guard.cancelSignaturesRequired(stored.entry_id))
            spent = self._spent_cancellers(guard, stored.entry_id)
        else:
            schedule = self.schedule_message_needed(record)
            if schedule is None:
                return needs
            message, required, spent = schedule, self.threshold(), frozenset()
        signers = tuple(s.owner for s in self.guard_signatures(record.id, message) if s.owner not in spent)
        needs.append(SignatureNeed(message.purpose, message.hash_hex, message.describe(), signers, required))
        return needs

    def collected_signatures(self, proposal_id: str) -> list[SafeSignature]:
        """The stored signatures, parsed back and verified again against the current owners.

        A signature a bundle brought in that the chain's owners refuse is left out (and reported by
        `reverify`); any other that no longer verifies is an error, as before."""
        record = self.get(proposal_id)
        refused = {stored.id for stored, _ in self.reverify(record.id).rejected}
        safe_tx = self.safe_tx(record)
        owners = self.owners()
        parsed = []
        for stored in self.store.signatures(record.id):
            if stored.id in refused:
                continue
            signature = parse_signature(stored.signature, safe_tx)
            verify(signature, safe_tx, owners)
            parsed.append(signature)
        return parsed

    def export_bundle(self, proposal_id: str, path: Path | None = None) -> dict:
        """The proposal and its signatures as JSON, for an offline signer: SafeTx signatures and the
        stored schedule and cancel signatures (each verified against the current owners first)."""
        from treasury.signatures.verification import verify_guard_signature

        record = self.get(proposal_id)
        owners = self.owners()
        guard_fields = []
        for stored in self.store.signatures(record.id, None):
            if stored.purpose == "safe_tx":
                continue
            message = self._stored_message(record, stored)
            if message is None:
                continue  # made for another guard than this treasury's: of no use to anyone importing it
            verify_guard_signature(stored.signature, message, owners, self.version, claimed_owner=stored.owner)
            subject = stored.intent_nonce if stored.purpose == "schedule" else stored.entry_id
            guard_fields.append((stored.purpose, stored.owner, stored.kind, bytes(stored.signature), message.guard,
                                 stored.signed_hash, int(subject or 0)))
        from treasury.records import facts_of

        return export_signature_bundle(self.safe_tx(record), self.version, self.collected_signatures(record.id), path,
                                       guard_signatures=guard_fields, facts=facts_of(record, tuple(owners), self.threshold()))

    def _stored_message(self, record: ProposalRecord, stored: SignatureRecord) -> GuardMessage | None:
        """The message a stored schedule or cancel signature is over, recomputed for this treasury's
        guard; None when its stored hash is another (it was made for another guard: the store's
        content hash rules out an edit)."""
        if stored.purpose == "schedule":
            assert stored.intent_nonce is not None  # the store requires it
            message = self.schedule_message(record.id, stored.intent_nonce)
        else:
            assert stored.entry_id is not None
            message = self.cancel_message(stored.entry_id)
        return message if message.hash_hex == stored.signed_hash else None

    def import_bundle(self, source: Path | dict) -> tuple[ProposalRecord, int]:
        """Add the bundle's new signatures to its proposal, creating the proposal from the bundle when
        this store never saw it; everything is verified again against the chain.

        The safeTxHash is recomputed from the bundle's fields (any gas fields and refund receiver, as
        another tool may set them). Schedule and cancel signatures too: each hash is recomputed for
        this treasury's guard (a cancel signature's entry must be this proposal's intent on chain) and
        must equal the stated one, and each signature must be its owner's. Every signature is verified
        before anything is stored (the new proposal included), so a bad one leaves the store
        unchanged. Schedule signatures for a schedule nonce already spent are skipped (they can never
        be used).
        """
        from treasury.records import bundle_proposer
        from treasury.signatures.bundle import read_bundle
        from treasury.signatures.exchange import read_guard_signatures

        bundle = read_bundle(source)
        self.records.check_ours(bundle)
        record = self.store.find_by_safe_tx_hash(self.chain_id, self.safe, bundle.safe_tx_hash)
        if record is not None:
            record = self._open(record.id)
            safe_tx = self.safe_tx(record)
        else:
            chain_nonce = self.onchain_nonce()  # connects (and reconciles) first
            if bundle.nonce < chain_nonce:
                raise StaleProposal(f"bundle's proposal has nonce {bundle.nonce}, already used on chain (the Safe is at {chain_nonce})")
            fields = bundle.safe_tx_fields()
            safe_tx = self._safe_tx(fields.pop("to"), fields.pop("value"), fields.pop("data"), fields.pop("operation"),
                                    bundle.nonce, **fields)
        owners = self.owners()
        imported = import_signature_bundle(source, safe_tx, owners=owners)
        guard_verified = self._verified_guard_signatures(record or bundle, read_guard_signatures(source), owners)
        if record is None:
            record = self.store.add_proposal(
                chain_id=self.chain_id, safe=self.safe, nonce=bundle.nonce, safe_tx_hash=bundle.safe_tx_hash,
                title=bundle.facts.title, description=bundle.facts.description,
                proposer=bundle_proposer(bundle.facts.proposer), actor=self.actor, **bundle.safe_tx_fields(),
            )
        have = {s.owner for s in self.store.signatures(record.id) if s.verified_by == "chain"}  # a bundle's row is replaced
        added = 0
        actor = f"{self.actor} (bundle)"[:200]  # marked as imported: owner liveness does not date a key's control by it
        for signature in imported:
            if signature.owner not in have:
                self.store.add_signature(record.id, signature.owner, kind_of(signature), bytes(signature.export_signature()),
                                         actor=actor)  # verified just above, against the chain's owners
                added += 1
        for message, checked in guard_verified:
            if not any(s.owner == checked.owner and s.verified_by == "chain"
                       for s in self.store.signatures(record.id, message.purpose, message.hash)):
                self._store_guard_signature(record, message, checked, actor)
                added += 1
        return record, added

    def _verified_guard_signatures(self, tx: Any, bundled: Sequence[Any], owners: Sequence[str]) -> list[tuple[GuardMessage, SafeSignature]]:
        """A bundle's schedule and cancel signatures for `tx` (the stored proposal, or the bundle
        itself for a proposal not stored yet), each verified against this treasury's guard and the
        chain's owners; those for a spent schedule nonce are skipped. Raises on the first bad one."""
        from treasury.signatures.exchange import InvalidBundle
        from treasury.signatures.verification import InvalidSignature, verify_guard_signature

        if not bundled:
            return []
        what = f"proposal {tx.id}" if isinstance(tx, ProposalRecord) else f"the bundle's proposal {tx.safe_tx_hash}"
        guard = self._require_guard("its bundle's schedule and cancel signatures have no guard to go to")
        intent = bytes(guard.intentId(tx.to, tx.value, tx.data, tx.operation))
        current_nonce = int(guard.intentState(intent)[0])
        verified: list[tuple[GuardMessage, SafeSignature]] = []
        for index, entry in enumerate(bundled, start=1):
            where = f"bundle guard signature #{index}"
            if entry.guard != guard.address:
                raise InvalidBundle(f"{where} is for guard {entry.guard}, not {self.name}'s guard {guard.address}")
            if entry.purpose == "schedule":
                if entry.subject < current_nonce:
                    continue  # spent: the intent was scheduled with that nonce already
                message = self._schedule_message_of(guard, tx, entry.subject, what)
            else:
                entry_intent = bytes(guard.getEntry(entry.subject)[0])
                if entry_intent != intent:
                    raise InvalidBundle(f"{where} cancels guard entry {entry.subject}, which is not {what}'s intent")
                message = self.cancel_message(entry.subject)
            if entry.signed_hash != message.hash:
                raise InvalidBundle(f"{where} states hash 0x{entry.signed_hash.hex()}, but the {message.describe()} of "
                                    f"{what} hashes to {message.hash_hex}")
            try:
                checked = verify_guard_signature(entry.signature, message, owners, self.version, claimed_owner=entry.owner)
                if kind_of(checked) != entry.kind:
                    raise InvalidSignature(f"it is declared {entry.kind} but its bytes make an {kind_of(checked)} signature")
            except InvalidSignature as error:
                raise InvalidSignature(f"{where}: {error}") from None
            verified.append((message, checked))
        return verified

    def reverify(self, proposal_id: str) -> Reverified:
        """Check the signatures a bundle brought in against the chain's current owners.

        `treasury import` without a node verified them against the owners the bundle recorded
        (verified_by="bundle"); now that a chain is reachable, each is verified as any other (recovery,
        on-chain approvals, EIP-1271, the guard's hashes and entries): a good one is marked verified by
        the chain (`Store.mark_verified`), a bad one is reported (logged here, returned with why) and
        left marked "bundle", so `collected_signatures` and `signature_needs` never count it. Runs
        before signatures are counted (sign, execute, show --network) and after `import --network`.
        """
        from treasury.signatures.verification import InvalidSignature

        record = self.get(proposal_id)
        pending = [s for s in self.store.signatures(record.id, None) if s.verified_by == "bundle"]
        if not pending:
            return Reverified()
        safe_tx, owners = self.safe_tx(record), self.owners()
        confirmed: list[SignatureRecord] = []
        rejected: list[tuple[SignatureRecord, str]] = []
        for stored in pending:
            try:
                if stored.purpose == "safe_tx":
                    verify(parse_signature(stored.signature, safe_tx), safe_tx, owners)
                else:
                    self._reverify_guard_signature(record, stored, owners)
            except InvalidSignature as error:
                rejected.append((stored, str(error)))
                continue
            confirmed.append(self.store.mark_verified(stored.id, self.actor))
        if rejected:
            from ape.logging import logger

            for stored, why in rejected:
                logger.warning(f"proposal {record.id}: the bundle's {stored.purpose} signature by {stored.owner} "
                               f"does not verify against the chain, not counted: {why}")
        return Reverified(tuple(confirmed), tuple(rejected))

    def _reverify_guard_signature(self, record: ProposalRecord, stored: SignatureRecord, owners: Sequence[str]) -> None:
        """A bundle's schedule or cancel signature against this treasury's guard: its hash is the
        guard's for this proposal (a cancel's entry is this proposal's intent) and it is an owner's."""
        from treasury.signatures.verification import InvalidSignature, verify_guard_signature

        message = self._stored_message(record, stored)
        if message is None:
            raise InvalidSignature(f"its hash {stored.signed_hash} is not this treasury's guard's for it")
        if stored.purpose == "cancel":
            guard = self._require_guard("there is no queue to cancel from")
            intent = bytes(guard.intentId(record.to, record.value, record.data, record.operation))
            if bytes(guard.getEntry(stored.entry_id)[0]) != intent:
                raise InvalidSignature(f"it cancels guard entry {stored.entry_id}, which is not proposal {record.id}'s intent")
        verify_guard_signature(stored.signature, message, owners, self.version, claimed_owner=stored.owner)

    # --- schedule and execute ---------------------------------------------------------------------

    def _open(self, proposal_id: str) -> ProposalRecord:
        self._connected()  # reconciles first: the store may have missed what the chain knows
        record = self.get(proposal_id)
        if record.status not in OPEN:
            raise InvalidInput(f"proposal {record.id} is {record.status}")
        chain_nonce = self.onchain_nonce()
        if record.nonce < chain_nonce:
            self.reconcile()
            now = self.get(record.id).status
            raise StaleProposal(f"proposal {record.id} has nonce {record.nonce}, already used on chain "
                                f"(the Safe is at {chain_nonce}); it is {now}")
        return record

    def schedule(self, proposal_id: str, sender: AccountAPI, signers: Sequence[AccountAPI] = ()) -> ScheduleEntryRecord:
        """Queue a proposal the policy holds for the delay, with owner signatures over the guard's
        schedule hash at the intent's current schedule nonce.

        The signatures are the stored ones (`treasury sign` collects them, one owner at a time, from
        anywhere) plus any `signers` present now (they sign, and their signatures are verified and
        stored first). `sender` only pays: no owner needs to be present once the Safe's threshold
        of signatures is stored. Fewer than the threshold: refused in one line saying how many
        are missing, nothing sent.
        """
        from treasury.chain.guard import entries

        record = self._open(proposal_id)
        guard = self._require_guard("nothing to schedule")
        verdict = self.verdict(record.id)
        if verdict.error not in SCHEDULE_ERRORS:
            raise InvalidInput(f"proposal {record.id} does not need scheduling now: {verdict.outcome} {verdict.reason}".strip())
        intent = bytes(guard.intentId(record.to, record.value, record.data, record.operation))
        not_before = int(guard.intentState(intent)[2])
        if self._connected().pending_timestamp < not_before:
            raise InvalidInput(f"proposal {record.id} was cancelled: the guard takes it again from timestamp {not_before} "
                               "(the cancelled entry's eta), not before")
        message = self.schedule_message(record.id)
        signatures = self._gather(record, message, signers, self.threshold(), f"each owner runs `treasury sign {record.id}`")
        receipt = guard.schedule(record.to, record.value, record.data, record.operation, signatures, sender=sender)
        entry_id = int(guard.pendingEntryOf(intent))
        entry = next(e for e in entries(guard) if e.entry_id == entry_id)
        return self.store.add_schedule_entry(record.id, guard=guard.address, entry_id=entry_id, eta=entry.eta,
                                             expiry=entry.expiry, actor=self.actor, tx_hash=_tx_hash(receipt))

    def cancel(self, proposal_id: str, sender: AccountAPI, signers: Sequence[AccountAPI] = (),
               reopen: bool = True) -> ScheduleEntryRecord:
        """Cancel a scheduled proposal's queue entry with owner signatures over the guard's cancel hash.

        A minority veto: the guard needs only cancelSignaturesRequired(entryId) of them (its cancel
        threshold, at most the Safe's threshold), from owners who have not cancelled the intent
        since it last ran (each owner cancels an intent once until it executes).
        They are the stored ones (`treasury sign ID --cancel`) plus any `signers` present now
        (stored first); too few: refused in one line saying how many are missing, nothing sent.
        The entry is marked cancelled in the store; the proposal goes back to pending (it may be
        scheduled again, with new schedule signatures, once the cancelled entry's eta has passed)
        or, with `reopen=False`, is cancelled for good.
        """
        self._connected()
        record = self.get(proposal_id)
        guard, stored = self.queued_entry(record)
        message = self.cancel_message(stored.entry_id)
        required = int(guard.cancelSignaturesRequired(stored.entry_id))
        signatures = self._gather(record, message, signers, required, f"owners run `treasury sign {record.id} --cancel`",
                                  self._spent_cancellers(guard, stored.entry_id))
        guard.cancel(stored.entry_id, signatures, sender=sender)
        return self._cancelled(record, stored, reopen, f"guard entry {stored.entry_id} cancelled")

    def cancel_as_guardian(self, proposal_id: str, guardian: AccountAPI, reopen: bool = True) -> ScheduleEntryRecord:
        """Cancel a scheduled proposal's queue entry as one of the guard's guardians (an address that
        may only cancel), which the guard allows each guardian once per intent until it runs. Store
        as `cancel`."""
        self._connected()
        record = self.get(proposal_id)
        guard, stored = self.queued_entry(record)
        if not guard.isGuardian(guardian.address):
            raise InvalidInput(f"{guardian.address} is not a guardian of guard {guard.address}")
        if guardian.address in self._spent_cancellers(guard, stored.entry_id, [guardian.address]):
            raise InvalidInput(f"guardian {guardian.address} already cancelled proposal {record.id}'s intent since it "
                               "last ran: a guardian cancels an intent once; owners cancel it now")
        guard.cancelAsGuardian(stored.entry_id, sender=guardian)
        return self._cancelled(record, stored, reopen, f"guard entry {stored.entry_id} cancelled by guardian {guardian.address}")

    def _spent_cancellers(self, guard: ContractInstance, entry_id: int, who: Sequence[str] | None = None) -> frozenset[str]:
        """Those of `who` (default: the owners) who cancelled entry `entry_id`'s intent since it last
        ran: the guard refuses their cancel of it (AlreadyCancelledBy)."""
        intent = guard.getEntry(entry_id)[0]
        return frozenset(a for a in (self.owners() if who is None else who) if guard.hasCancelled(intent, a))

    def _cancelled(self, record: ProposalRecord, stored: ScheduleEntryRecord, reopen: bool, note: str) -> ScheduleEntryRecord:
        entry = self.store.set_schedule_status(stored.id, "cancelled", actor=self.actor, note=note)
        self.store.set_status(record.id, "pending" if reopen else "cancelled", actor=self.actor, note=note)
        return entry

    def execute(
        self, proposal_id: str, sender: AccountAPI, force: bool = False, *,
        confirmations: int | None = None, skip_rehearsal: bool = False,
    ) -> ExecutionRecord:
        """Send execTransaction with the stored signatures and record what the Safe said.

        Refused (PolicyRefusal) unless the policy verdict allows it now: a denied proposal, or one
        that must wait for the delay, is not sent (`force` sends anyway, e.g. to watch the guard
        refuse it). On a live network the proposal is then rehearsed on a fork of the current
        block and nothing is sent unless that passes (`skip_rehearsal` to opt out). The signed
        transaction is written to the store before it is broadcast, so a crash before the outcome
        is recorded is reconciled from the chain later, and the proposal is never sent twice.
        """
        from treasury.decode.revert import explain_revert
        from treasury.execution.send import broadcast, sign_execution, simulate

        record = self._open(proposal_id)
        confirmations = self.entry.confirmations if confirmations is None else confirmations
        in_flight = self.store.broadcasts(record.id, status="sent")
        if in_flight:
            return self._resume(record, in_flight[-1], confirmations)
        chain_nonce = self.onchain_nonce()
        if record.nonce != chain_nonce:
            raise InvalidInput(f"proposal {record.id} has nonce {record.nonce}; the Safe executes nonce {chain_nonce} first")
        safe_tx = self.safe_tx(record)
        signatures = self.collected_signatures(record.id)
        threshold = self.threshold()
        if len(signatures) < threshold:
            raise InvalidInput(f"proposal {record.id} has {len(signatures)} of {threshold} signatures")
        if not force:
            self.require_allowed(record.id)
        if self.is_live and not skip_rehearsal:
            rehearsal = self._rehearsal_at_head(record) or self.rehearse(record.id, executor=sender.address)
            if not rehearsal.success:
                raise RehearsalFailed(f"rehearsal on a fork of block {rehearsal.block_number} fails, nothing sent: {rehearsal.reason}")
        outcome = simulate(safe_tx, signatures, sender.address, self.version)
        if not outcome.succeeds and not force:
            why = explain_revert(outcome.revert_data, self.book) if outcome.reverted else "the inner call fails (ExecutionFailure)"
            raise TreasuryError(f"simulation fails, nothing sent: {why}")
        signed = sign_execution(safe_tx, signatures, sender, self.version, confirmations=confirmations)
        self.store.record_broadcast(
            record.id, tx_hash=signed.tx_hash, sender=signed.sender, sender_nonce=signed.sender_nonce, raw_tx=signed.raw,
            safe_nonce=record.nonce, block_at_send=self._head_number(), actor=self.actor,
        )
        try:
            broadcast(signed)
        except Exception:
            # Record whatever the chain already knows of it; if the node is down, the next command will.
            with contextlib.suppress(Exception):
                self.reconcile()
            raise
        return self._record_mined(record, signed.tx_hash, signed.sender)

    def _rehearsal_at_head(self, record: ProposalRecord):
        """A stored rehearsal of this exact safeTxHash against the current head block, if any."""
        from eth_utils import to_hex

        head = to_hex(self._connected().blocks.head.hash)
        done = [r for r in self.store.rehearsals(record.id) if r.block_hash == head and r.safe_tx_hash == record.safe_tx_hash]
        return done[-1] if done else None

    def _head_number(self) -> int:
        return int(self._connected().provider.web3.eth.block_number)

    def _resume(self, record: ProposalRecord, sent, confirmations: int | None) -> ExecutionRecord:
        """A broadcast of this proposal is unconfirmed: wait for it, or resend its exact bytes if the node lost it.

        The same signed bytes can only be mined once, so resending them cannot execute twice.
        """
        from treasury.execution.reconcile import transaction_known

        provider = self._connected().provider
        if not transaction_known(sent.tx_hash):
            provider.web3.eth.send_raw_transaction(sent.raw_tx)
        provider.get_receipt(sent.tx_hash, required_confirmations=confirmations or 0)
        return self._record_mined(record, sent.tx_hash, sent.sender)

    def _record_mined(self, record: ProposalRecord, tx_hash: str, executor: str) -> ExecutionRecord:
        from treasury.execution.reconcile import record_receipt

        receipt = dict(self._connected().provider.web3.eth.get_transaction_receipt(tx_hash))
        try:
            record_receipt(self, record, receipt, executor)
        except InvalidInput:
            # Another process (a second `execute`, any command's reconcile) recorded our transaction
            # first: it is still ours, and ours succeeded or failed as recorded. Anything else: raise.
            mine = self._recorded_execution(record.id, tx_hash)
            if mine is None:
                raise
            return mine
        for other in self.proposals():
            if other.id != record.id and other.status in OPEN and other.nonce == record.nonce:
                self.store.set_status(other.id, "superseded", actor=self.actor, note=f"nonce {record.nonce} used by {record.id}")
        return self.store.executions(record.id)[-1]

    def _recorded_execution(self, proposal_id: str, tx_hash: str) -> ExecutionRecord | None:
        """The stored execution of `proposal_id` by transaction `tx_hash`, if one is recorded."""
        wanted = tx_hash.lower()
        return next((e for e in self.store.executions(proposal_id) if str(e.tx_hash).lower() == wanted), None)

    # --- rehearsal --------------------------------------------------------------------------------

    def rehearse(self, proposal_id: str, executor: str | None = None):
        """Execute the proposal on a fork of the current block (a snapshot on a local chain) and report.

        Missing signatures are filled on the fork only, by approving the hash from the owners'
        addresses, so a proposal can be rehearsed before anyone signs. The result is recorded.
        Returns a `treasury.execution.rehearsal.RehearsalReport`.
        """
        from eth_utils import to_hex

        from treasury.execution.rehearsal import Rehearsal, run_rehearsal

        record = self._open(proposal_id)
        head = self._connected().blocks.head
        rehearsal = Rehearsal(
            safe_tx=self.safe_tx(record), version=self.version, signatures=tuple(self.collected_signatures(record.id)),
            owners=tuple(self.owners()), threshold=self.threshold(), safe_nonce=self.onchain_nonce(),
            executor=executor or self.owners()[0], block_number=int(head.number), block_hash=to_hex(head.hash),
            book=self.book, guard=self.entry.guard, fork=self.is_live,
        )
        report = run_rehearsal(rehearsal, proposal_id=record.id)
        self.store.record_rehearsal(
            record.id, safe_tx_hash=record.safe_tx_hash, chain_id=self.chain_id, block_number=report.block_number,
            block_hash=report.block_hash, success=report.success, reason=report.reason[:2000], gas_used=report.gas_used,
            filled=report.filled, executor=report.executor, actor=self.actor,
        )
        return report

    # --- risk review ------------------------------------------------------------------------------

    # --- the audit log ----------------------------------------------------------------------------

    def audit_log(self, proposal_id: str | None = None):
        return self.store.audit_entries(proposal_id)

    def verify_log(self):
        return self.store.verify_audit_log()


def _tx_hash(receipt: Any) -> str | None:
    """The transaction hash of an ape receipt as 0x-hex (None if it has none)."""
    value = getattr(receipt, "txn_hash", None)
    if value is None:
        return None
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def _erc20_balance(token: str, holder: str) -> int:
    """balanceOf(holder) by a plain eth_call: any ERC-20, no ABI lookup."""
    from ape import chain
    from eth_abi import decode, encode
    from eth_utils import function_signature_to_4byte_selector

    data = function_signature_to_4byte_selector("balanceOf(address)") + encode(["address"], [holder])
    raw = chain.provider.web3.eth.call({"to": token, "data": "0x" + data.hex()})
    return int(decode(["uint256"], bytes(raw))[0]) if len(raw) >= 32 else 0
