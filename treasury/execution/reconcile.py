"""Bring the store up to date with the chain: what happened to proposals while nobody was looking.

A process can die between broadcasting execTransaction and recording it; an owner can execute a
proposal from another tool; a rejection can take a nonce. The chain is the truth. Its facts come
from standard eth_* calls only: the write-ahead broadcast record names our own transaction by hash,
the Safe's nonce says which proposals can no longer run, and ExecutionSuccess/ExecutionFailure logs
name the safeTxHash that used each nonce. Reconciling records those facts and never sends anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from treasury.execution.send import EXECUTION_FAILURE, EXECUTION_SUCCESS, outcome_hash, plain_logs, safe_outcome
from treasury.types import OPEN_STATUS_VALUES, ReconcileOutcome

if TYPE_CHECKING:
    from treasury.store import BroadcastRecord, ProposalRecord, Store

OPEN = OPEN_STATUS_VALUES


class Ledger(Protocol):
    """What reconciling needs from a treasury: its Safe, its store, who acts, the Safe's nonce now.

    A protocol rather than the Treasury class: the facade calls this stage, so this stage must not
    import the facade (treasury.Treasury satisfies it; so can a server's per-Safe view).
    """

    store: Store
    actor: str

    @property
    def safe(self) -> str: ...

    def onchain_nonce(self) -> int: ...

    def proposals(self) -> list[ProposalRecord]: ...


@dataclass(frozen=True)
class Reconciled:
    """One fact learned from the chain and recorded (or, for `in-flight`, only reported)."""

    proposal_id: str
    outcome: ReconcileOutcome
    detail: str


def reconcile(treasury: Ledger) -> list[Reconciled]:
    """Settle our own unconfirmed broadcasts, then every open proposal whose nonce the Safe passed.

    One read of the Safe's nonce and of the store's proposals serves every step (this runs before
    every command); the proposals are read again only if settling a broadcast changed one.
    """
    chain_nonce = treasury.onchain_nonce()
    proposals = treasury.proposals()
    found = [r for b in _unconfirmed(treasury, proposals) if (r := _settle_broadcast(treasury, b))]
    if found:
        proposals = treasury.proposals()
    impossible = _impossible_records(proposals, chain_nonce)  # settling below touches lower nonces only
    return found + _settle_consumed_nonces(treasury, proposals, chain_nonce) + impossible


def _web3():
    from ape import chain

    return chain.provider.web3


def _unconfirmed(treasury: Ledger, proposals: list[ProposalRecord]) -> list[BroadcastRecord]:
    mine = {p.id for p in proposals}
    return [b for b in treasury.store.broadcasts(status="sent") if b.proposal_id in mine]


def _receipt(tx_hash: str) -> dict | None:
    from web3.exceptions import TransactionNotFound

    try:
        return dict(_web3().eth.get_transaction_receipt(tx_hash))
    except TransactionNotFound:
        return None


def transaction_known(tx_hash: str) -> bool:
    from web3.exceptions import TransactionNotFound

    try:
        _web3().eth.get_transaction(tx_hash)
        return True
    except TransactionNotFound:
        return False


def _settle_broadcast(treasury: Ledger, sent: BroadcastRecord) -> Reconciled | None:
    """Our own execTransaction, written down before it was sent: find it by hash and record it."""
    record = treasury.store.get_proposal(sent.proposal_id)
    receipt = _receipt(sent.tx_hash)
    if receipt is not None and record.status not in OPEN:
        # Settled meanwhile by another transaction (an owner executed it elsewhere while ours waited).
        note = f"mined in block {int(receipt['blockNumber'])} after the proposal was already {record.status}"
        treasury.store.set_broadcast_status(sent.id, "mined", actor=treasury.actor, note=note)
        return Reconciled(record.id, "late", f"transaction {sent.tx_hash} {note}")
    if receipt is not None:
        return record_receipt(treasury, record, receipt, sent.sender)
    if transaction_known(sent.tx_hash):
        return Reconciled(record.id, "in-flight", f"transaction {sent.tx_hash} is waiting to be mined")
    if _web3().eth.get_transaction_count(sent.sender, "latest") > sent.sender_nonce:
        note = f"{sent.sender}'s nonce {sent.sender_nonce} was used by another transaction"
        treasury.store.set_broadcast_status(sent.id, "dropped", actor=treasury.actor, note=note)
        return Reconciled(record.id, "dropped", f"transaction {sent.tx_hash} was never mined: {note}")
    return Reconciled(record.id, "lost", f"the node does not know transaction {sent.tx_hash}; "
                                         "`treasury execute` sends the same signed bytes again")


def record_receipt(treasury: Ledger, record: ProposalRecord, receipt: dict, executor: str) -> Reconciled:
    """Record a mined execTransaction of `record`: executed, failed (nonce spent) or reverted (not spent)."""
    tx_hash = _hex(receipt["transactionHash"])
    success = safe_outcome(plain_logs(receipt["logs"]), treasury.safe, record.safe_tx_hash)
    reverted = int(receipt["status"]) == 0 or success is None
    treasury.store.record_execution(
        record.id, tx_hash=tx_hash, block_number=int(receipt["blockNumber"]), gas_used=int(receipt["gasUsed"]),
        success=bool(success), executor=executor, actor=treasury.actor, nonce_consumed=not reverted,
    )
    outcome: ReconcileOutcome = "reverted" if reverted else ("executed" if success else "failed")
    return Reconciled(record.id, outcome, f"transaction {tx_hash} in block {int(receipt['blockNumber'])}")


SETTLED = ("executed", "failed", "rejected", "superseded")  # a proposal at the nonce that says what used it


def _settle_consumed_nonces(treasury: Ledger, proposals: list[ProposalRecord], chain_nonce: int) -> list[Reconciled]:
    """Open proposals below the Safe's nonce can never run: find out whether each ran or lost its nonce.

    A cancelled proposal (`treasury drop`: no chain transaction) can still have run, by whoever held
    its signatures: while no stored proposal at its nonce says what used the nonce, it is matched
    against the outcome logs like an open one (the recent ones, and those already fetched for its
    nonce) and recorded when it ran. It is never marked superseded: cancelled is final.
    """
    found: list[Reconciled] = []
    consumers: dict[int, list[dict]] = {}
    settled = {p.nonce for p in proposals if p.status in SETTLED}
    candidates = [p for p in proposals if p.nonce < chain_nonce and
                  (p.status in OPEN or (p.status == "cancelled" and p.nonce not in settled))]
    recent = _recent_outcome_logs(treasury) if candidates else []
    recent_hashes = {_hex(outcome_hash(log)) for log in recent}
    # Per nonce, the proposals that ran come first: their log then names what used the nonce for
    # the others, with no search through historical state (which a pruned node may not have).
    # Cancelled ones last: they only read the logs the others fetched.
    stale = sorted(candidates, key=lambda p: (p.nonce, p.safe_tx_hash.lower() not in recent_hashes, p.status == "cancelled"))
    for record in stale:
        mine = [log for log in recent if _hex(outcome_hash(log)) == record.safe_tx_hash.lower()]
        if mine:
            consumers.setdefault(record.nonce, mine[:1])
        elif record.status == "cancelled":
            logs = consumers.get(record.nonce, [])
            mine = [log for log in logs if _hex(outcome_hash(log)) == record.safe_tx_hash.lower()]
        else:
            if record.nonce not in consumers:
                consumers[record.nonce] = _outcome_logs_for_nonce(treasury, record.nonce, chain_nonce)
            logs = consumers[record.nonce]
            mine = [log for log in logs if _hex(outcome_hash(log)) == record.safe_tx_hash.lower()]
        if mine:
            receipt = dict(_web3().eth.get_transaction_receipt(mine[0]["transactionHash"]))
            found.append(record_receipt(treasury, record, receipt, receipt["from"]))
            continue
        if record.status == "cancelled":
            continue
        note = _superseded_note(record.nonce, consumers.get(record.nonce, []))
        treasury.store.set_status(record.id, "superseded", actor=treasury.actor, note=note)
        found.append(Reconciled(record.id, "superseded", note))
    return found


def _impossible_records(proposals: list[ProposalRecord], chain_nonce: int) -> list[Reconciled]:
    """Executions the store has and this chain cannot have had: the Safe never reached their nonce.

    They come from a fork (a flow rehearsed with the real store) or a reorganised chain. Final
    records are not rewritten; they are reported, so nobody pays twice believing it was paid.
    """
    return [
        Reconciled(p.id, "not-on-chain", f"recorded {p.status} at nonce {p.nonce}, but the Safe on this chain is at "
                                         f"nonce {chain_nonce}: the record came from a fork or a reorganised chain")
        for p in proposals
        if p.status in ("executed", "failed") and p.nonce >= chain_nonce
    ]


def _superseded_note(nonce: int, logs: list[dict]) -> str:
    if len(logs) == 1:
        return (f"nonce {nonce} was used by safeTxHash {_hex(outcome_hash(logs[0]))} "
                f"in transaction {_hex(logs[0]['transactionHash'])}")
    return f"nonce {nonce} was used by another Safe transaction"


RECENT_BLOCKS = 10_000  # scanned first, newest first, in windows a hosted node accepts
LOG_WINDOW = 1_000


def _outcome_logs(treasury: Ledger, first: int, last: int) -> list[dict]:
    topics = [["0x" + EXECUTION_SUCCESS.hex(), "0x" + EXECUTION_FAILURE.hex()]]
    logs = _web3().eth.get_logs({"address": treasury.safe, "fromBlock": first, "toBlock": last, "topics": topics})
    return [dict(log) for log in logs]


def _recent_outcome_logs(treasury: Ledger) -> list[dict]:
    """The Safe's outcome logs of the last RECENT_BLOCKS blocks: where a missed execution usually is."""
    head = int(_web3().eth.block_number)
    found: list[dict] = []
    last = head
    while last >= max(0, head - RECENT_BLOCKS):
        first = max(0, last - LOG_WINDOW + 1, head - RECENT_BLOCKS)
        found += _outcome_logs(treasury, first, last)
        last = first - 1
    return found


def _outcome_logs_for_nonce(treasury: Ledger, nonce: int, chain_nonce: int) -> list[dict]:
    """The Safe's outcome logs in the block where its nonce moved past `nonce` (older than the recent scan).

    The block is found by bisecting `nonce()` over historical blocks (about log2(head) eth_calls);
    one transaction per Safe nonce means the safeTxHash that used `nonce` is among that block's logs.
    A node without the history (pruned) gives no block: the proposal is then marked superseded
    without naming what used its nonce.
    """
    block = _block_where_nonce_passed(treasury, nonce, chain_nonce)
    return [] if block is None else _outcome_logs(treasury, block, block)


def _block_where_nonce_passed(treasury: Ledger, nonce: int, chain_nonce: int) -> int | None:
    from web3.exceptions import Web3Exception

    head = int(_web3().eth.block_number)
    low, high = 0, head  # invariant: nonce_at(high) > nonce
    try:
        while low < high:
            middle = (low + high) // 2
            if _nonce_at(treasury, middle) > nonce:
                high = middle
            else:
                low = middle + 1
        # A node that answers for pruned history with today's state would fool the search: the
        # block found must be where the nonce actually moved.
        if high == 0 or _nonce_at(treasury, high) <= nonce or _nonce_at(treasury, high - 1) > nonce:
            return None
    except (Web3Exception, ValueError):
        return None
    return high


def _nonce_at(treasury: Ledger, block: int) -> int:
    web3 = _web3()
    if not web3.eth.get_code(treasury.safe, block):
        return 0  # the Safe did not exist yet
    raw = web3.eth.call({"to": treasury.safe, "data": "0xaffed0e0"}, block)  # nonce()
    return int.from_bytes(bytes(raw)[:32], "big") if raw else 0


def _hex(value: Any) -> str:
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()
