"""Everything the review rules look at, gathered once from a Treasury into plain data.

The rules (treasury.review.rules) are pure functions of a ReviewFacts, so each rule is tested with
facts written by hand, and only `gather_facts` touches the store and the chain. Facts are what the
treasury knows (token book, address book, executed history) and what the chain shows now (code at an
address, whether it was there a while ago, the Safe's balances); nothing here is sent anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from treasury.addresses import ZERO_ADDRESS, to_checksum
from treasury.amounts import TokenBook
from treasury.decode.hashes import function_selector
from treasury.history import movements
from treasury.types import DELEGATE_CALL

if TYPE_CHECKING:
    from treasury.decode.calls import DecodedCall, DecodedProposal
    from treasury.policy.verdict import Verdict
    from treasury.treasury import Treasury

# A contract whose code was not there this long ago is "created recently" (seconds: 7 days). Time, not
# blocks: block times differ by chain (12 s on mainnet, 2 s or less on rollups).
RECENT_SECONDS = 7 * 86_400
CUTOFF_MAX_REQUESTS = 64  # a binary search over block timestamps: about log2(head) requests

T = TypeVar("T")
ApprovalKind = Literal["erc20", "permit2", "operator"]
_APPROVE = function_selector("approve(address,uint256)")
_PERMIT2_APPROVE = function_selector("approve(address,address,uint160,uint48)")
_SET_APPROVAL_FOR_ALL = function_selector("setApprovalForAll(address,bool)")
# Raising an allowance grants as much as approve does (OpenZeppelin's and the older BasicToken names).
_INCREASE = {function_selector("increaseAllowance(address,uint256)"), function_selector("increaseApproval(address,uint256)")}
# ERC-721 transfers move a token id, not an amount: the recipient rules apply, amount rules do not.
_NFT_TRANSFERS = {function_selector(s) for s in ("safeTransferFrom(address,address,uint256)",
                                                 "safeTransferFrom(address,address,uint256,bytes)")}
_TRANSFER_FROM = function_selector("transferFrom(address,address,uint256)")
# Selectors these facts read themselves even where the decoder shows "unknown calldata".
UNDERSTOOD = {_APPROVE, _PERMIT2_APPROVE, _SET_APPROVAL_FOR_ALL, *_INCREASE, *_NFT_TRANSFERS}
_ERC20_TRANSFERS = {function_selector("transfer(address,uint256)"), _TRANSFER_FROM}


class ReviewStepFailed(Exception):
    """A step of gathering the facts failed; names the step only.

    The underlying error may carry a revert message chosen by whoever wrote the contract called (an
    attacker's token), so it is never shown: the signer reads which step failed and checks by hand.
    """

    def __init__(self, step: str) -> None:
        super().__init__(f"the review could not run: {step} failed")
        self.step = step


@dataclass(frozen=True)
class Payment:
    """Value leaving the Safe: `token` is the token's address (ZERO_ADDRESS for the native currency)."""

    token: str
    units: int
    recipient: str
    nft: bool = False  # an ERC-721 token id moved (units is the id, not an amount)


@dataclass(frozen=True)
class Approval:
    """A right to spend the Safe's tokens granted to `spender`.

    `units` None: every token (an NFT operator); `expiration` is a Permit2 approval's end (unix time),
    None for an ERC-20 approve, which has none.
    """

    token: str
    spender: str
    units: int | None
    kind: ApprovalKind = "erc20"
    expiration: int | None = None


@dataclass(frozen=True)
class ReviewFacts:
    """One proposal and its surroundings, as plain data the rules can read without a chain."""

    proposal_id: str
    safe: str
    title: str = ""
    to: str = ZERO_ADDRESS  # the Safe transaction's own target and operation (before a batch is unwrapped)
    operation: int = 0
    multisend_call_only: bool = False  # `to` is a canonical MultiSendCallOnly (a delegatecall there is a batch)
    calls: tuple[DecodedCall, ...] = ()
    payments: tuple[Payment, ...] = ()
    approvals: tuple[Approval, ...] = ()
    tokens: TokenBook = field(default_factory=TokenBook.of)
    names: Mapping[str, str] = field(default_factory=dict)  # address book: name -> checksummed address
    past_payments: tuple[Payment, ...] = ()  # what executed proposals moved, oldest first
    past_targets: frozenset[str] = frozenset()  # every address an executed proposal called
    balances: Mapping[str, int] = field(default_factory=dict)  # token address -> the Safe's balance (known ones)
    code_size: Mapping[str, int] = field(default_factory=dict)  # address -> bytes of code (addresses looked up)
    recent_code: frozenset[str] = frozenset()  # contracts whose code was not there RECENT_SECONDS ago
    code_age_known: bool = True  # False: the chain (or the node's state) is younger than RECENT_SECONDS
    owners: frozenset[str] = frozenset()  # the Safe's current owners, its guard and modules (known addresses)
    guard: str | None = None
    modules: frozenset[str] = frozenset()
    safe_version: str = ""
    canonical_multisend: str | None = None  # this version's MultiSendCallOnly address, when known
    gas_price: int = 0  # the SafeTx's refund terms: gasPrice > 0 or a refundReceiver pays gas out of the Safe
    refund_receiver: str = ZERO_ADDRESS
    gas_token: str = ZERO_ADDRESS
    verdict: Verdict | None = None
    decoded: DecodedProposal | None = None

    @property
    def past_recipients(self) -> frozenset[str]:
        return frozenset(p.recipient for p in self.past_payments)

    @property
    def touched(self) -> tuple[str, ...]:
        """Every address the proposal sends to, calls or approves, in order, once each."""
        found = [self.to] + [c.to for c in self.calls] + [p.recipient for p in self.payments]
        found += [a.spender for a in self.approvals]
        return tuple(dict.fromkeys(to_checksum(a) for a in found))

    def name_of(self, address: str) -> str | None:
        """The address book name or the token symbol of an address (for reasons a signer can read)."""
        named = next((n for n, a in self.names.items() if a == address), None)
        if named is not None:
            return named
        token = self.tokens.by_address(address)
        return token.symbol if token is not None else None

    def label(self, address: str) -> str:
        name = self.name_of(address)
        return f"{name} ({address})" if name else address

    def amount(self, token: str, units: int) -> str:
        return self.tokens.format(token, units)


# --- from decoded calls (no chain) -------------------------------------------------------------------


def payments_of(calls: Sequence[DecodedCall], fallback: str, nfts: frozenset[str] = frozenset()) -> tuple[Payment, ...]:
    """The value movements of calls, in the history's own terms (treasury.history.movements).

    An ERC-721 transferFrom has the ERC-20 shape, so whether it moves an amount or a token id depends on
    the token: `nfts` are the targets known not to be ERC-20 (not in the token book, no balance read).
    safeTransferFrom is always an NFT transfer."""
    found = [Payment(m.token_address, m.units, m.recipient) for m in movements(calls, fallback)
             if m.token_address is not None and m.units is not None]
    found = [replace(p, nft=True) if p.token in nfts and p.token != ZERO_ADDRESS else p for p in found]
    return tuple(found) + tuple(p for p in (_nft_transfer(c) for c in calls) if p is not None)


def _nft_transfer(call: DecodedCall) -> Payment | None:
    data = bytes(call.data)
    if data[:4] not in _NFT_TRANSFERS:
        return None
    from eth_abi import decode as abi_decode

    types = ["address", "address", "uint256"] + (["bytes"] if len(data) > 4 + 96 else [])
    try:
        args = abi_decode(types, data[4:], strict=False)
    except Exception:  # noqa: BLE001 - calldata that does not decode moved nothing we can name
        return None
    return Payment(to_checksum(call.to), int(args[2]), to_checksum(args[1]), nft=True)


def approvals_of(calls: Iterable[DecodedCall]) -> tuple[Approval, ...]:
    """ERC-20 approvals, Permit2 approvals and NFT operator grants among the calls."""
    return tuple(a for a in (_approval(c) for c in calls) if a is not None)


def _approval(call: DecodedCall) -> Approval | None:
    data = bytes(call.data)
    shapes: dict[bytes, list[str]] = {
        _APPROVE: ["address", "uint256"], _PERMIT2_APPROVE: ["address", "address", "uint160", "uint48"],
        _SET_APPROVAL_FOR_ALL: ["address", "bool"], **{s: ["address", "uint256"] for s in _INCREASE},
    }
    types = shapes.get(data[:4])
    if types is None:
        return None
    from eth_abi import decode as abi_decode

    try:
        args = abi_decode(types, data[4:], strict=True)
    except Exception:  # noqa: BLE001 - calldata that does not decode grants nothing we can name
        return None
    to = to_checksum(call.to)
    if data[:4] == _APPROVE or data[:4] in _INCREASE:
        return Approval(to, to_checksum(args[0]), int(args[1])) if args[1] else None
    if data[:4] == _PERMIT2_APPROVE:
        return Approval(to_checksum(args[0]), to_checksum(args[1]), int(args[2]), "permit2", int(args[3]))
    return Approval(to, to_checksum(args[0]), None, "operator") if args[1] else None


def facts_from_calls(proposal_id: str, safe: str, decoded: DecodedProposal, *, title: str = "", to: str | None = None,
                     operation: int = 0, multisend_call_only: bool = False, nfts: frozenset[str] = frozenset(),
                     **known: Any) -> ReviewFacts:
    """ReviewFacts from a decoded proposal and whatever else is `known` (history, chain facts).

    `nfts`: contracts known to be ERC-721 (their transferFrom moves a token id, not an amount)."""
    calls = decoded.calls
    return ReviewFacts(
        proposal_id=proposal_id, safe=to_checksum(safe), title=title, to=to_checksum(to or calls[0].to),
        operation=operation, multisend_call_only=multisend_call_only, calls=calls,
        payments=payments_of(calls, to or calls[0].to, nfts), approvals=approvals_of(calls), decoded=decoded, **known,
    )


# --- from a Treasury (store and chain) --------------------------------------------------------------


def gather_facts(treasury: Treasury, proposal_id: str) -> ReviewFacts:
    """The facts of a stored proposal: the store's history, the book, the chain's code and balances.

    Needs the treasury's chain (the verdict, code and balances are read now). Each step that fails
    raises ReviewStepFailed naming the step, never the error's own text (it may be a revert message
    written by an attacker's contract); callers turn that into a "review-failed" danger finding.
    """
    from treasury.proposal.multisend import is_multisend_call_only

    record = treasury.get(proposal_id)  # an unknown id is the caller's mistake, not a failed review
    decoded = _step("decoding the calls", lambda: treasury.decode(proposal_id))
    _step("connecting to the chain", treasury._connected)  # connects and reconciles: the history is the chain's
    nfts = _step("reading which tokens are NFTs", lambda: frozenset(
        t for t in {to_checksum(c.to) for c in decoded.calls if bytes(c.data)[:4] == _TRANSFER_FROM}
        if treasury.book.by_address(t) is None and _is_erc721(t)))
    facts = facts_from_calls(
        record.id, treasury.safe, decoded, title=record.title, to=record.to, operation=record.operation,
        multisend_call_only=record.operation == DELEGATE_CALL and is_multisend_call_only(record.to), nfts=nfts,
        tokens=treasury.book, names=dict(treasury.addresses.names), gas_price=int(record.gas_price),
        refund_receiver=to_checksum(record.refund_receiver), gas_token=to_checksum(record.gas_token),
    )
    tokens = {p.token for p in facts.payments if not p.nft} | {a.token for a in facts.approvals if a.kind != "operator"}
    balances = balance_facts(treasury, tokens)
    past_payments, past_targets = _step("reading the executed history", lambda: executed_history(treasury, record.id))
    code_size, recent, age_known = _step("reading contract code", lambda: code_facts(
        facts.touched, exclude={to_checksum(treasury.safe)}))
    owners, guard, modules = _step("reading the Safe's owners, guard and modules", lambda: safe_facts(treasury))
    verdict = _step("evaluating the policy", lambda: treasury.verdict(proposal_id))
    return replace(facts, balances=balances, past_payments=past_payments, past_targets=past_targets,
                   code_size=code_size, recent_code=recent, code_age_known=age_known, owners=owners, guard=guard,
                   modules=modules, safe_version=treasury.version, canonical_multisend=_canonical_multisend(treasury.version),
                   verdict=verdict)


def _step(step: str, read: Callable[[], T]) -> T:
    """Run one step of gathering; a failure becomes ReviewStepFailed(step), its own text dropped."""
    try:
        return read()
    except Exception as error:  # any failure: the review says which step, not what it said
        raise ReviewStepFailed(step) from error


def safe_facts(treasury: Treasury) -> tuple[frozenset[str], str | None, frozenset[str]]:
    """The Safe's owners, guard and modules: addresses a look-alike imitates as readily as a payee."""
    guard = to_checksum(treasury.entry.guard) if treasury.entry.guard else None
    return (frozenset(to_checksum(o) for o in treasury.owners()), guard,
            frozenset(to_checksum(m) for m in treasury.modules()))


def _canonical_multisend(version: str) -> str | None:
    from treasury.chain.artifacts import canonical_address

    try:
        return to_checksum(canonical_address(version, "multi_send_call_only"))
    except Exception:  # noqa: BLE001 - without the published deployments the reason just says less
        return None


def _is_erc721(address: str) -> bool:
    """supportsInterface(ERC-721) by a plain eth_call; anything else (no code, a revert) is not an NFT."""
    from ape import chain
    from eth_abi import decode, encode

    data = function_selector("supportsInterface(bytes4)") + encode(["bytes4"], [bytes.fromhex("80ac58cd")])
    try:
        raw = bytes(chain.provider.web3.eth.call({"to": address, "data": "0x" + data.hex()}))
        return len(raw) >= 32 and bool(decode(["bool"], raw[:32])[0])
    except Exception:  # noqa: BLE001 - an ERC-20 without ERC-165 reverts here
        return False


def executed_history(treasury: Treasury, exclude: str = "") -> tuple[tuple[Payment, ...], frozenset[str]]:
    """What the treasury's successfully executed proposals paid, and every address they called.

    From the store alone: only our own executions count as history, so an address that sent the Safe
    dust (the start of an address-poisoning attack) never becomes a "known" recipient.
    """
    records = treasury.records
    proposals = [p for p in records.proposals(status="executed") if p.id != exclude]
    executions = records.store.executions_of([p.id for p in proposals])
    payments: list[Payment] = []
    targets: set[str] = set()
    for proposal in proposals:
        if not any(e.success for e in executions.get(proposal.id, [])):
            continue
        calls = records.decode(proposal.id).calls
        payments.extend(payments_of(calls, proposal.to))
        targets.update(to_checksum(c.to) for c in calls)
        targets.add(to_checksum(proposal.to))
    return tuple(payments), frozenset(targets)


def code_facts(addresses: Iterable[str], exclude: set[str] | frozenset[str] = frozenset(), *,
               window: int = RECENT_SECONDS) -> tuple[dict[str, int], frozenset[str], bool]:
    """Code size of each address now, which contracts had no code `window` seconds ago, and whether that
    age is known at all (False when the chain's history, or the node's state, is younger than `window`).

    `exclude`: addresses whose code says nothing about the proposal (the Safe itself)."""
    from ape import chain

    provider = chain.provider
    then = cutoff_block(provider, window)
    sizes: dict[str, int] = {}
    recent: set[str] = set()
    known = then is not None
    for address in addresses:
        if address in exclude or address == ZERO_ADDRESS:
            continue
        sizes[address] = len(bytes(provider.get_code(address)))
        if not sizes[address] or then is None:
            continue
        size_then = _code_then(provider, address, then)
        if size_then is None:
            known = False
        elif size_then == 0:
            recent.add(address)
    return sizes, frozenset(recent), known


def cutoff_block(provider: Any, window: int = RECENT_SECONDS) -> int | None:
    """The last block at least `window` seconds older than the head, by a binary search over block
    timestamps (about log2(head) requests); None when even block 0 is younger (a young chain)."""
    head = provider.get_block("latest")
    cutoff = int(head.timestamp) - window
    low, high = 0, int(head.number or 0)
    if int(provider.get_block(low).timestamp) > cutoff:
        return None
    for _ in range(CUTOFF_MAX_REQUESTS):
        if low >= high:
            break
        middle = (low + high + 1) // 2
        if int(provider.get_block(middle).timestamp) <= cutoff:
            low = middle
        else:
            high = middle - 1
    return low


def _code_then(provider: Any, address: str, block: int) -> int | None:
    """Code size at an earlier block; None when the node keeps no state that old (a pruned node)."""
    try:
        return len(bytes(provider.get_code(address, block_id=block)))
    except Exception:  # noqa: BLE001 - a node without the old state says nothing about age
        return None


def balance_facts(treasury: Treasury, tokens: Iterable[str]) -> dict[str, int]:
    """The Safe's balance of each token the proposal moves or approves, those that can be read.

    Read token by token: a token whose balanceOf reverts (a hostile or broken contract) is left out
    (its balance is unknown) rather than taking the whole review down with it."""
    from ape import chain

    from treasury.treasury import _erc20_balance

    found: dict[str, int] = {}
    for token in set(tokens):
        try:
            found[token] = (int(chain.provider.get_balance(treasury.safe)) if token == ZERO_ADDRESS
                            else _erc20_balance(token, treasury.safe))
        except Exception:  # noqa: BLE001 - balance unknown: the rules that need it say nothing
            continue
    return found
