"""Owner liveness: when each owner last proved control of their key, and what that leaves of the threshold.

A Safe is only as recoverable as the keys that still work. An owner who has not signed anything for
months may have lost a seed phrase, left the team, or died, and nobody finds out until an emergency
needs their signature. So the toolkit keeps, per owner, the latest *proof of control* it has on record
and says what that means for the M-of-N threshold today:

    3-of-5: 4 of 10 combinations live; bob unproven for 97 days
    the threshold survives the loss of any one owner: yes; of any two: no

A proof of control is the latest of, each dated so that an old signature can never look fresh:

- a recovery drill signature (Store.owner_proofs, verified by recovery or EIP-1271 before it was
  stored), dated at the DRILL's issue time (its fresh nonce did not exist before), not at when the
  proof was recorded: a proof imported on a drill's last day counts from its first;
- a signature by that owner on one of this Safe's proposals or messages, made through this tool's
  own signing (`treasury sign`, a smoke test) or posted to the team server's confirmation API, verified
  against the chain's owners, dated when the store took it. Signatures that arrived in a bundle
  (`treasury import`) or a `treasury sync --from` do not count: they may have been made long ago
  (the audit log tells them apart: see `_imported`);
- an execution that owner sent, dated by its block's timestamp (read from the connected node; never
  later than the store recorded it, should the chain's clock run ahead of the store's); an execution
  whose block cannot be read is not counted.

An owner is live while their last proof is at most `period` old (the policy's `liveness`, 90 days if
none is set); a warning says so before it lapses (14 days ahead, or a sixth of a shorter period). This
is advice, off chain only: nothing here changes who may sign (see the README, "Key ceremonies", on why
there is no on-chain removal of silent owners).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from math import comb
from typing import TYPE_CHECKING, Any, Literal

from treasury.ceremony.challenge import wall_clock
from treasury.errors import InvalidInput
from treasury.wording import duration, when

if TYPE_CHECKING:
    from treasury.treasury import Treasury

DAY = 86_400
DEFAULT_PERIOD = 90 * DAY  # without a policy `liveness` setting
WARN_AHEAD = 14 * DAY  # warn this long before a proof lapses (or a sixth of a shorter period)
LOSSES = (1, 2)  # the report says whether the threshold survives losing this many owners

ProofKind = Literal["drill", "signature", "execution"]
BlockTime = Callable[[int], int | None]  # a block number's timestamp (unix s), None when it cannot be read
# How the import paths mark their audit actor: an offline bundle import ("user (bundle)",
# TreasuryRecords.import_bundle; its rows also say verified_by "bundle"), an online one
# (Treasury.import_bundle) and a pull from a transaction service ("user (sync from host)", remote.sync).
IMPORT_ACTOR_MARKS = (" (bundle)", " (sync from ")


@dataclass(frozen=True)
class ProofOfControl:
    """The latest evidence that `owner` controlled their key: at unix time `at`, what (`kind`), and
    where to look it up (`reference`: "drill drill-…", "proposal …", "message 0x…", "execution 0x…")."""

    owner: str
    at: int
    kind: ProofKind
    reference: str

    def as_dict(self) -> dict[str, Any]:
        return {"owner": self.owner, "at": self.at, "kind": self.kind, "reference": self.reference}


# --- what the store has on record ---------------------------------------------------------------------


def last_proofs(source: Any, chain_id: int | None = None, safe: str | None = None,
                owners: Sequence[str] | None = None, *, block_time: BlockTime | None = None) -> dict[str, ProofOfControl | None]:
    """Each owner's latest proof of control on record for this Safe (None: nothing on record).

    `source` is a Treasury (chain id, Safe and, when `owners` is None, the chain's current owners
    come from it) or a Store (then all three are needed). Only the store's verified records count:
    drill proofs, SafeTx/schedule/cancel signatures verified against the chain's owners and made
    here (not imported: see the module's docstring), message signatures, executions. `block_time`
    dates executions; without it a Treasury's connected node is asked, and a Store alone counts no
    execution (it cannot date one).
    """
    store = getattr(source, "store", source)
    if chain_id is None or safe is None:
        if store is source:
            raise InvalidInput("last_proofs needs the chain id and the Safe when given a store")
        chain_id, safe = source.chain_id if chain_id is None else chain_id, source.safe if safe is None else safe
    if owners is None:
        if store is source:
            raise InvalidInput("last_proofs needs the owners when given a store")
        owners = source.owners()
    if block_time is None and store is not source:
        block_time = chain_block_time(int(chain_id))
    _require_reads(store)
    wanted = {owner.lower(): owner for owner in owners}
    latest: dict[str, ProofOfControl | None] = dict.fromkeys(owners)
    for proof in _evidence(store, int(chain_id), str(safe), block_time):
        owner = wanted.get(proof.owner.lower())
        if owner is None:
            continue  # a former owner's signature proves nothing about today's owners
        current = latest[owner]
        if current is None or proof.at > current.at:
            latest[owner] = ProofOfControl(owner, proof.at, proof.kind, proof.reference)
    return latest


_READS = ("list_proposals", "signatures_of", "executions_of", "messages", "audit_entries")


def _require_reads(store: Any) -> None:
    """A remote (server) store offers no bulk reads: say so in one line instead of paging the server."""
    missing = [name for name in _READS if not callable(getattr(store, name, None))]
    if missing:
        raise InvalidInput("owner liveness needs the proposal store itself (against a server, its Safe page "
                           "shows each owner's last proof of control)")


def _evidence(store: Any, chain_id: int, safe: str, block_time: BlockTime | None) -> Iterable[ProofOfControl]:
    """Every proof of control on record for the Safe, in no particular order."""
    yield from _drill_proofs(store, chain_id, safe)
    proposals = [p.id for p in store.list_proposals(safe=safe, chain_id=chain_id)]
    for pid, signatures in store.signatures_of(proposals, purpose=None).items():
        verified = [s for s in signatures if s.verified_by == "chain"]
        imported = _imported(store, pid) if verified else set()
        for signature in verified:
            if _signature_key(signature) not in imported:
                yield ProofOfControl(signature.owner, _unix(signature.created_at), "signature", f"proposal {pid}")
    for executions in store.executions_of(proposals).values():
        for execution in executions:
            mined = None if block_time is None else block_time(int(execution.block_number))
            if mined is not None:  # an execution found late (reconcile) is dated by its block, not by when it was found
                at = min(mined, _unix(execution.recorded_at))  # nor later than the store saw it (a chain clock ahead)
                yield ProofOfControl(execution.executor, at, "execution", f"execution {execution.tx_hash}")
    for message in store.messages(chain_id, safe):
        for signature in message.signatures:
            yield ProofOfControl(signature.owner, _unix(signature.created_at), "signature",
                                 f"message {message.message_hash}")


def _signature_key(signature: Any) -> tuple[str, str, str | None]:
    """What names a stored signature within its proposal: owner, purpose and (but for a SafeTx one) hash."""
    purpose = getattr(signature, "purpose", "safe_tx")
    return signature.owner, purpose, None if purpose == "safe_tx" else signature.signed_hash


def _imported(store: Any, proposal_id: str) -> set[tuple[str, str, str | None]]:
    """The proposal's signatures that arrived by import, by `_signature_key`: whose latest
    "signature.added" audit entry was bundle-verified (an offline bundle; a later re-check against the
    chain does not make it recent) or was written by a bundle import or a sync (IMPORT_ACTOR_MARKS)."""
    added: dict[tuple[str, str, str | None], Any] = {}
    for entry in store.audit_entries(proposal_id):
        if entry.action == "signature.added":
            purpose = entry.payload.get("purpose", "safe_tx")
            key = (entry.payload.get("owner"), purpose, None if purpose == "safe_tx" else entry.payload.get("signed_hash"))
            added[key] = entry  # a replaced row's newer entry wins
    return {key for key, entry in added.items()
            if "verified_by" in entry.payload or any(mark in entry.actor for mark in IMPORT_ACTOR_MARKS)}


def _drill_proofs(store: Any, chain_id: int, safe: str) -> Iterable[ProofOfControl]:
    """Recovery drill proofs (Store.owner_proofs, schema 6), each dated at its drill's issue time
    (never later than it was recorded); a store without drills has none."""
    owner_proofs = getattr(store, "owner_proofs", None)
    if owner_proofs is None:  # a store from before the drills (or a server): signatures and executions only
        return
    issued = {drill.id: int(drill.created_at) for drill in store.drills(chain_id, safe)}
    for proof in owner_proofs(chain_id, safe):
        if proof.drill_id in issued:
            at = min(issued[proof.drill_id], int(proof.proved_at))
            yield ProofOfControl(proof.owner, at, "drill", f"drill {proof.drill_id}")


def chain_block_time(chain_id: int) -> BlockTime:
    """Block timestamps from the connected node (ape's provider), when it is on `chain_id`; None for
    a block it cannot read (not connected, another chain, a node without it). Read once per block."""
    seen: dict[int, int | None] = {}

    def read(number: int) -> int | None:
        if number not in seen:
            seen[number] = _block_timestamp(chain_id, number)
        return seen[number]

    return read


def _block_timestamp(chain_id: int, number: int) -> int | None:
    try:
        from ape import chain

        if not chain.provider.is_connected or chain.chain_id != chain_id:
            return None
        return int(chain.provider.web3.eth.get_block(number)["timestamp"])
    except Exception:  # noqa: BLE001 - advisory: an unreadable block only means that execution is not counted
        return None


def _unix(stamp: Any) -> int:
    return int(stamp.timestamp())


# --- what it means for the threshold ------------------------------------------------------------------


@dataclass(frozen=True)
class LivenessReport:
    """Which owners are provably live at `now`, and what that leaves of the M-of-N threshold.

    `period`: the configured liveness period in seconds (None: DEFAULT_PERIOD applies, see `window`).
    `live_combinations` of the `total_combinations` sets of `threshold` owners consist of live owners
    only: those are the signing sets known to work today. `survives_loss[k]`: whether, whichever k
    owners are lost, enough live owners remain to reach the threshold. `lapsing`: live owners whose
    proof lapses within the warning window, with the seconds left, soonest first.
    """

    owners: tuple[str, ...]
    threshold: int
    proofs: Mapping[str, ProofOfControl | None]
    now: int
    period: int | None
    live: frozenset[str]
    live_combinations: int
    total_combinations: int
    survives_loss: dict[int, bool]
    lapsing: list[tuple[str, int]]
    names: Mapping[str, str] = field(default_factory=dict)

    @property
    def window(self) -> int:
        """The period actually applied, in seconds."""
        return DEFAULT_PERIOD if self.period is None else self.period

    def name(self, owner: str) -> str:
        """The owner as people call them: the address book's name, else the address."""
        return self.names.get(owner) or self.names.get(owner.lower()) or owner

    def age(self, owner: str) -> int | None:
        """Seconds since the owner's last proof (None: never proven); a proof stamped after `now` is 0 old."""
        proof = self.proofs.get(owner)
        return None if proof is None else max(0, self.now - proof.at)

    def owner_line(self, owner: str) -> str:
        """One owner's standing: "live: drill 3 d ago (2026-11-28 10:00 UTC, drill drill-…)"."""
        proof = self.proofs.get(owner)
        if proof is None:
            return "never proven: no drill, signature or execution on record"
        state = "live" if owner in self.live else "lapsed"
        return (f"{state}: {proof.kind} {_ago(self.age(owner) or 0)} ({when(proof.at)}, {proof.reference})")

    def lines(self) -> list[str]:
        """The summary, the survival line and one warning per lapsing owner, in words."""
        n = len(self.owners)
        summary = f"{self.threshold}-of-{n}: {self.live_combinations} of {self.total_combinations} combinations live"
        dead = [o for o in self.owners if o not in self.live]
        if dead:
            summary += "; " + ", ".join(self._unproven(o) for o in dead)
        words = {True: "yes", False: "no"}
        survival = (f"the threshold survives the loss of any one owner: {words[self.survives_loss[1]]}; "
                    f"of any two: {words[self.survives_loss[2]]}")
        return [summary, survival, *(f"warning: {line}" for line in self.warnings())]

    def warnings(self) -> list[str]:
        """Whether the threshold is out of provable reach, then one line per owner whose proof lapses
        within the warning window, soonest first."""
        short = []
        if len(self.live) < self.threshold:
            short.append(f"only {len(self.live)} owner(s) proved control within {duration(self.window, exact=True)}: "
                         f"the threshold of {self.threshold} is not provably reachable")
        return short + [f"{self.name(o)}'s proof of control lapses in {duration(left)} "
                f"(liveness period {duration(self.window, exact=True)}): run a drill (`treasury drill start`)"
                for o, left in self.lapsing]

    def _unproven(self, owner: str) -> str:
        age = self.age(owner)
        if age is None:
            return f"{self.name(owner)} never proven"
        return f"{self.name(owner)} unproven for {_days(age)}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe: for `treasury info --json` and the server."""
        return {
            "owners": list(self.owners), "threshold": self.threshold, "now": self.now, "period": self.period,
            "window": self.window, "live": [o for o in self.owners if o in self.live],
            "live_combinations": self.live_combinations, "total_combinations": self.total_combinations,
            "survives_loss": {str(k): v for k, v in self.survives_loss.items()},
            "lapsing": [{"owner": o, "seconds_left": left} for o, left in self.lapsing],
            "proofs": {o: (p.as_dict() if p else None) for o, p in self.proofs.items()},
            "lines": self.lines(),
        }


def _days(seconds: int) -> str:
    days = seconds // DAY
    return "less than a day" if days == 0 else f"{days} day{'s' if days != 1 else ''}"


def _ago(seconds: int) -> str:
    return "just now" if seconds < 60 else f"{duration(seconds)} ago"


def warn_ahead(period: int) -> int:
    """How long before a proof lapses the report warns: 14 days, or a sixth of a shorter period."""
    return min(WARN_AHEAD, period // 6)


def live_owners(proofs: Mapping[str, ProofOfControl | None], owners: Sequence[str], now: int, period: int) -> frozenset[str]:
    """The owners proven at most `period` seconds before `now` (a proof after `now` counts as fresh)."""
    return frozenset(o for o in owners if (p := proofs.get(o)) is not None and now - p.at <= period)


def survives_loss(live_count: int, threshold: int, lost: int) -> bool:
    """Whether any `lost` owners can go and `threshold` live ones still remain: the worst case loses live ones."""
    return live_count - lost >= threshold


def liveness_report(proofs: Mapping[str, ProofOfControl | None], owners: Sequence[str], threshold: int, now: int,
                    period: int | None = None, names: Mapping[str, str] | None = None) -> LivenessReport:
    """The report for `owners` (the Safe's, as the chain says now) at threshold `threshold`, time `now`.

    A set of `threshold` owners is a live combination when every member is live, so there are
    C(live, threshold) of C(n, threshold); losing any k owners leaves the threshold reachable when
    live - k >= threshold. Pure arithmetic: no store, no chain, no clock.
    """
    owners = tuple(owners)
    _check_shape(owners, threshold, now, period)
    window = DEFAULT_PERIOD if period is None else period
    live = live_owners(proofs, owners, now, window)
    ahead = warn_ahead(window)
    lapsing = sorted(((o, left) for o in owners if o in live and (left := _left(proofs, o, now, window)) <= ahead),
                     key=lambda item: (item[1], owners.index(item[0])))
    return LivenessReport(
        owners=owners, threshold=threshold, proofs={o: proofs.get(o) for o in owners}, now=now, period=period,
        live=live, live_combinations=comb(len(live), threshold), total_combinations=comb(len(owners), threshold),
        survives_loss={k: survives_loss(len(live), threshold, k) for k in LOSSES}, lapsing=lapsing,
        names=dict(names or {}),
    )


def _left(proofs: Mapping[str, ProofOfControl | None], owner: str, now: int, period: int) -> int:
    proof = proofs[owner]
    assert proof is not None  # only live owners are asked
    return min(period, proof.at + period - now)


def _check_shape(owners: tuple[str, ...], threshold: int, now: int, period: int | None) -> None:
    if not owners:
        raise InvalidInput("a Safe has at least one owner")
    if len({o.lower() for o in owners}) != len(owners):
        raise InvalidInput("an owner is listed more than once")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= len(owners):
        raise InvalidInput(f"threshold {threshold!r} must be between 1 and the number of owners ({len(owners)})")
    if isinstance(now, bool) or not isinstance(now, int) or now < 0:
        raise InvalidInput(f"now {now!r} must be a unix time in seconds")
    if period is not None and (isinstance(period, bool) or not isinstance(period, int) or period <= 0):
        raise InvalidInput(f"liveness period {period!r} must be a positive number of seconds")


# --- for a configured treasury ------------------------------------------------------------------------


def treasury_liveness(treasury: Treasury, owners: Sequence[str] | None = None, threshold: int | None = None,
                      now: int | None = None) -> LivenessReport:
    """The report for a configured treasury: its store's proofs, its policy's `liveness` period, its
    address book's names. `owners`/`threshold` default to the chain's (pass them when already read);
    `now` defaults to the wall clock, the clock the store stamps proofs with; executions are dated
    by their blocks, read from the connected node."""
    owners = list(treasury.owners()) if owners is None else list(owners)
    threshold = treasury.threshold() if threshold is None else threshold
    now = wall_clock() if now is None else now
    proofs = last_proofs(treasury.store, treasury.chain_id, treasury.safe, owners,
                         block_time=chain_block_time(treasury.chain_id))
    book = treasury.addresses
    names = {o: name for o in owners if (name := book.name_of(o)) is not None}
    return liveness_report(proofs, owners, threshold, now, treasury.entry.policy.liveness_period(), names)
