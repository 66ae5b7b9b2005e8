"""Recovery drills: every owner proves, by a signature nobody can use for anything else, that their key works.

    drill = start_drill(treasury)                                   # a fresh challenge, kept in the store
    proof = sign_drill(DrillChallenge.from_json(drill.challenge), account)      # on each owner's machine
    record_drill_proof(treasury, drill.id, proof)                   # verified against today's owners, stored
    drill_report(treasury, drill.id).lines()                        # who proved control; what is live

Nothing is sent on chain. An owner that is a key signs the challenge's EIP-712 typed data; the
signature is checked by recovery (exactly 65 bytes, low s, v 27/28). An owner that is a contract
(a Safe owned by other keys) proves control through its own owners: they sign the SafeMessage of the
challenge's digest in the owner Safe's domain, and the owner is asked `isValidSignature(digest,
signatures)` by eth_call, which must answer 0x1626ba7e. Every proof is checked against the Safe's
owners as the chain reports them when it is recorded, so a removed owner proves nothing.

`via` says how a proof was signed: "keyfile" (an ape keystore), "test", "hardware" (ape-ledger,
ape-trezor), "browser" (the signing page), "contract", or the name of another ape account kind. A
drill can require some owners to sign through their hardware wallet; `via` is what the signing tool
reported, and it is not covered by the signature (a signature does not show which device made
it): anyone handling the proof (the owner, whoever carries the proof file, any API client) can
write "hardware". The requirement guards against an owner signing with a hot copy of the key by
habit, not against anyone who edits the proof.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector

from treasury.addresses import parse_address
from treasury.ceremony.challenge import DAY, DEFAULT_PURPOSE, MAX_CHAIN_ID, MAX_TTL, VIA, DrillChallenge, wall_clock
from treasury.errors import InvalidInput
from treasury.signatures.verification import EIP1271_MAGIC, InvalidSignature, eip1271_accepted, shown_answer
from treasury.store.records import DrillRecord, OwnerProofRecord

if TYPE_CHECKING:
    from ape.api import AccountAPI

DEFAULT_TTL = 7 * DAY
PROOF_FORMAT = "ape-treasury drill proof"
HARDWARE_PLUGINS = ("ape_ledger", "ape_trezor")
CONTRACT = "contract"
HARDWARE = "hardware"

_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_IS_VALID_SIGNATURE = function_signature_to_4byte_selector("isValidSignature(bytes32,bytes)")


def _now(now: int | None) -> int:
    return wall_clock() if now is None else now


# --- proofs -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrillProof:
    """One owner's signature of a drill challenge, and which drill (Safe, chain, nonce) it claims to answer.

    `signature`: 65 bytes r, s, v for a key; for a contract owner ("contract"), the signatures its
    isValidSignature receives (its own owners', sorted). Nothing here is trusted until
    `verify_drill_proof` has recomputed and checked it.
    """

    owner: str
    via: str
    signature: bytes = field(repr=False)
    safe: str
    chain_id: int
    nonce: str

    def __post_init__(self) -> None:
        """Addresses checksummed (a lowercase owner is the same owner), the rest in shape, whoever built it."""
        object.__setattr__(self, "owner", parse_address(self.owner, "proof owner"))
        object.__setattr__(self, "safe", parse_address(self.safe, "proof Safe"))
        object.__setattr__(self, "via", _via(self.via))
        object.__setattr__(self, "nonce", _nonce_text(self.nonce))
        if isinstance(self.chain_id, bool) or not isinstance(self.chain_id, int) or not 0 < self.chain_id <= MAX_CHAIN_ID:
            raise InvalidInput(f"drill proof chain id {self.chain_id!r} is not a positive integer below 2**53")
        if not isinstance(self.signature, (bytes, bytearray)):
            raise InvalidInput("drill proof signature must be bytes")
        object.__setattr__(self, "signature", bytes(self.signature))

    def to_json(self) -> dict[str, Any]:
        """The proof file an owner hands back (no secret in it: a signature of a public challenge)."""
        return {"type": PROOF_FORMAT, "version": 1, "owner": self.owner, "via": self.via,
                "signature": "0x" + self.signature.hex(), "safe": self.safe, "chain_id": self.chain_id, "nonce": self.nonce}

    @classmethod
    def from_json(cls, data: Any) -> DrillProof:
        """Read a proof file; one line says what is wrong with a malformed one."""
        if not isinstance(data, dict) or data.get("type") != PROOF_FORMAT:
            raise InvalidInput(f"not a drill proof: expected an object with type {PROOF_FORMAT!r}")
        if data.get("version") != 1:
            raise InvalidInput(f"drill proof version {data.get('version')!r} is not supported (expected 1)")
        try:
            signature, chain_id = data["signature"], data["chain_id"]
            if not isinstance(signature, str) or not re.fullmatch(r"0x([0-9a-fA-F]{2})+", signature):
                raise InvalidInput("drill proof signature must be 0x-prefixed hex")
            return cls(owner=data["owner"], via=data["via"], signature=bytes.fromhex(signature[2:]), safe=data["safe"],
                       chain_id=chain_id, nonce=data["nonce"])
        except KeyError as missing:
            raise InvalidInput(f"drill proof is missing {missing.args[0]}") from None


def _via(value: object) -> str:
    if not isinstance(value, str) or not VIA.fullmatch(value):
        raise InvalidInput(f"drill proof signer kind {value!r} is not a short lowercase word")
    return value


def _nonce_text(value: object) -> str:
    text = value.lower() if isinstance(value, str) else ""
    if not re.fullmatch(r"0x[0-9a-f]{64}", text):
        raise InvalidInput(f"drill proof nonce {value!r} is not a 0x-prefixed 32-byte hex value")
    return text


def signer_kind(account: Any) -> str:
    """How an ape account signs, as a proof's `via`: hardware, keyfile, test, or its class's own name."""
    cls = type(account)
    if cls.__module__.split(".")[0] in HARDWARE_PLUGINS:
        return HARDWARE
    try:
        from ape_accounts.accounts import KeyfileAccount

        if isinstance(account, KeyfileAccount):
            return "keyfile"
    except ImportError:  # pragma: no cover - ape ships its accounts plugin
        pass
    try:
        from ape.api.accounts import TestAccountAPI

        if isinstance(account, TestAccountAPI):
            return "test"
    except ImportError:  # pragma: no cover
        pass
    name = re.sub(r"[^a-z0-9_-]", "", cls.__name__.lower().removesuffix("account"))[:32]
    return name if name and name[0].isalpha() else "other"


# --- signing ----------------------------------------------------------------------------------------


def _signature_bytes(signed: Any) -> bytes:
    v = int(signed.v)
    if v < 27:
        v += 27
    return int(signed.r if isinstance(signed.r, int) else int.from_bytes(bytes(signed.r), "big")).to_bytes(32, "big") \
        + int(signed.s if isinstance(signed.s, int) else int.from_bytes(bytes(signed.s), "big")).to_bytes(32, "big") \
        + bytes([v])


def sign_drill(challenge: DrillChallenge, account: AccountAPI) -> DrillProof:
    """Have an ape account sign the challenge's EIP-712 typed data (a key owner's proof).

    The account shows the typed data (a hardware wallet shows its domain and message hashes); the
    result is checked to recover to the account before it is returned.
    """
    from eth_account.messages import encode_typed_data

    signed = account.sign_message(encode_typed_data(full_message=challenge.typed_data()))
    if signed is None:
        raise InvalidSignature(f"account {account.address} declined to sign the drill challenge")
    raw = _signature_bytes(signed)
    signer = recover_drill_signer(challenge.digest(), raw)
    if signer != parse_address(account.address, "account"):
        raise InvalidSignature(f"the drill signature recovers to {signer}, not to the signing account {account.address}")
    return DrillProof(owner=signer, via=signer_kind(account), signature=raw, safe=challenge.safe,
                      chain_id=challenge.chain_id, nonce=challenge.nonce)


def owner_safe_signatures(challenge: DrillChallenge, owner_safe: str, inner_signers: Sequence[AccountAPI],
                          *, check_owners: bool = True) -> bytes:
    """The owner Safe's own owners sign the SafeMessage of the challenge digest; returns them sorted.

    `check_owners` False skips the check that each signer is an owner of `owner_safe` (a test builds
    the stranger's signature that way, to show the owner itself refuses it).
    """
    from treasury.chain.artifacts import DEFAULT_VERSION
    from treasury.signatures.owners import current_owners, safe_at
    from treasury.signatures.signing import owner_safe_message, sign_digest
    from treasury.signatures.verification import encode_signatures

    try:
        version = str(safe_at(owner_safe, DEFAULT_VERSION).VERSION())
    except Exception:  # noqa: BLE001 - no VERSION(): not a Safe
        raise InvalidInput(f"owner {owner_safe} is not a Safe (no VERSION()): another EIP-1271 contract hands in its "
                           "own proof file") from None
    message = owner_safe_message(owner_safe, challenge.chain_id, challenge.digest())
    inner_owners = set(current_owners(owner_safe, version))
    signatures: list[Any] = []
    for signer in inner_signers:
        signature = sign_digest(signer, "eip712", message.hash, message.typed_data, owner_safe, version)
        if check_owners and signature.owner not in inner_owners:
            raise InvalidSignature(f"{signature.owner} is not an owner of owner Safe {owner_safe}: it cannot sign for it")
        if any(s.owner == signature.owner for s in signatures):
            raise InvalidSignature(f"owner {signature.owner} of owner Safe {owner_safe} signed twice")
        signatures.append(signature)
    if not signatures:
        raise InvalidInput(f"owner Safe {owner_safe} needs its own owners to sign (give at least one inner signer)")
    return encode_signatures(signatures)


def sign_drill_as_contract_owner(challenge: DrillChallenge, owner_safe: str, inner_signers: Sequence[AccountAPI]) -> DrillProof:
    """A Safe that owns the drilled Safe proves control: its owners sign, then it is asked (eth_call)."""
    owner = parse_address(owner_safe, "owner Safe")
    blob = owner_safe_signatures(challenge, owner, inner_signers)
    _ask_contract(owner, challenge, blob)
    return DrillProof(owner=owner, via=CONTRACT, signature=blob, safe=challenge.safe, chain_id=challenge.chain_id,
                      nonce=challenge.nonce)


# --- verifying --------------------------------------------------------------------------------------


def recover_drill_signer(digest: bytes, raw: bytes) -> str:
    """The signer of a strict 65-byte r, s, v ECDSA signature (v 27/28, low s) over `digest`.

    The one recoverer for drill signatures (the server's API uses it too), so a proof refused here is
    refused everywhere."""
    from eth_keys import keys
    from eth_keys.exceptions import BadSignature

    if len(raw) != 65:
        raise InvalidSignature(f"malformed drill signature: {len(raw)} bytes, a key's signature is exactly 65 (r, s, v)")
    r, s, v = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    if v not in (27, 28):
        raise InvalidSignature(f"malformed drill signature: v={v}, expected 27 or 28")
    if not 0 < r < _SECP256K1_N or not 0 < s <= _SECP256K1_N // 2:
        raise InvalidSignature("malformed drill signature: r or s out of range (a high s is a malleated signature)")
    try:
        public = keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest)
    except (BadSignature, ValueError):
        raise InvalidSignature("malformed drill signature: it recovers to no key") from None
    return parse_address(public.to_checksum_address(), "signer")


def _ask_contract(owner: str, drill: DrillChallenge, data: bytes) -> None:
    """Ask a contract owner isValidSignature(digest, data) by eth_call on the drill's own chain; anything but
    exactly 0x1626ba7e (one ABI word) is a refusal."""
    from ape import chain

    from treasury.signatures.owners import code_at

    connected = chain.provider.chain_id
    if connected != drill.chain_id:
        raise InvalidSignature(f"the drill is for chain {drill.chain_id} but the node answers for chain {connected}: "
                               f"contract owner {owner} cannot be asked there")
    digest, caller = drill.digest(), drill.safe
    if not code_at(owner):
        raise InvalidSignature(f"drill proof says {owner} is a contract owner, but it has no code")
    calldata = _IS_VALID_SIGNATURE + abi_encode(["bytes32", "bytes"], [digest, data])
    try:
        result = bytes(chain.provider.web3.eth.call({"from": caller, "to": owner, "data": "0x" + calldata.hex()}))
    except Exception as error:  # noqa: BLE001 - any revert is a refusal; say what it said in one line
        reason = " ".join(str(getattr(error, "message", None) or error or type(error).__name__).split())[:160]
        raise InvalidSignature(f"contract owner {owner} refused the drill signature: isValidSignature reverted ({reason})") from None
    if not eip1271_accepted(result, EIP1271_MAGIC):
        raise InvalidSignature(f"contract owner {owner} refused the drill signature: isValidSignature returned "
                               f"{shown_answer(result)}")


def _challenge_of(challenge: DrillChallenge | DrillRecord) -> tuple[DrillChallenge, tuple[str, ...]]:
    if isinstance(challenge, DrillRecord):
        return DrillChallenge.from_json(challenge.challenge), challenge.require_device
    return challenge, ()


def verify_drill_proof(challenge: DrillChallenge | DrillRecord, proof: DrillProof, owners: Sequence[str], *,
                       require_device: Sequence[str] | None = None, now: int | None = None) -> None:
    """Raise InvalidSignature unless `proof` shows that one of `owners` controls its key in this drill.

    `challenge` is the drill's challenge, or its DrillRecord (then `require_device` defaults to the
    drill's). Checked: the proof names this drill (Safe, chain, nonce), the drill is within its window
    at `now` (default: the wall clock), the owner is one of `owners` (pass the chain's current owners),
    the signature recovers to that owner over this challenge's digest (a key) or the owner's
    isValidSignature accepts it (a contract), and an owner the drill requires on a device signed via
    "hardware".
    """
    drill, devices = _challenge_of(challenge)
    devices = tuple(devices if require_device is None else require_device)
    if not isinstance(proof, DrillProof):
        raise InvalidSignature(f"not a drill proof: {type(proof).__name__}")
    _check_same_drill(drill, proof)
    check_window(drill, _now(now))
    members = {parse_address(o, "owner") for o in owners}
    if proof.owner not in members:
        raise InvalidSignature(f"{proof.owner} is not a current owner of Safe {drill.safe}: its proof counts for nothing")
    if proof.via == CONTRACT:
        _ask_contract(proof.owner, drill, proof.signature)
    else:
        signer = recover_drill_signer(drill.digest(), proof.signature)
        if signer != proof.owner:
            raise InvalidSignature(f"drill signature said to be by {proof.owner} recovers to {signer} over this drill's "
                                   "challenge: it was made for another drill, Safe or chain, or its bytes were altered")
    if proof.owner in {parse_address(d, "owner") for d in devices} and proof.via != HARDWARE:
        raise InvalidSignature(f"this drill requires {proof.owner} to sign with their hardware wallet, but the proof "
                               f"was signed via {proof.via}")


def _check_same_drill(drill: DrillChallenge, proof: DrillProof) -> None:
    if proof.chain_id != drill.chain_id:
        raise InvalidSignature(f"the drill proof is for chain {proof.chain_id}, not chain {drill.chain_id}")
    if proof.safe != drill.safe:
        raise InvalidSignature(f"the drill proof is for Safe {proof.safe}, not Safe {drill.safe}")
    if proof.nonce != drill.nonce:
        raise InvalidSignature(f"the drill proof answers another drill (nonce {proof.nonce[:10]}…, not {drill.nonce[:10]}…)")


def check_window(drill: DrillChallenge, now: int) -> None:
    """Refuse outside the challenge's validity window at `now` (unix s): a proof then proves nothing."""
    from treasury.wording import when

    if now < drill.issued_at:
        raise InvalidSignature(f"the drill challenge is not valid before {when(drill.issued_at)}")
    if now > drill.expires_at:
        raise InvalidSignature(f"the drill expired at {when(drill.expires_at)}: start a new one (`treasury drill start`)")


# --- a configured treasury ------------------------------------------------------------------------------


def start_drill(treasury: Any, *, require_device: Sequence[str] = (), ttl: int = DEFAULT_TTL, now: int | None = None,
                purpose: str = DEFAULT_PURPOSE) -> DrillRecord:
    """Issue a drill for the treasury's Safe and keep it in the store (nothing is sent on chain).

    `require_device`: owners (names from the address book or addresses) who must sign through their
    hardware wallet; each must be a current owner that is a key, not a contract.
    """
    from treasury.signatures.owners import code_at

    if isinstance(ttl, int) and ttl > MAX_TTL:
        raise InvalidInput(f"a drill may stay open at most {MAX_TTL // DAY} days (asked for {ttl // DAY})")
    owners = set(treasury.owners())
    devices = []
    for text in require_device:
        owner = treasury.resolve_address(text, "owner")
        if owner not in owners:
            raise InvalidInput(f"{text} is not an owner of Safe {treasury.safe}: it cannot be required to sign on a device")
        if code_at(owner):
            raise InvalidInput(f"{text} is a contract owner: it signs through its own owners, not a device of its own")
        devices.append(owner)
    challenge = DrillChallenge.create(treasury.safe, treasury.chain_id, _now(now), ttl, purpose)
    return treasury.store.add_drill(challenge.chain_id, challenge.safe, challenge.nonce, challenge.typed_data(),
                                    sorted(set(devices), key=lambda a: int(a, 16)), challenge.issued_at,
                                    challenge.expires_at, actor=treasury.actor)


def drill_challenge(record: DrillRecord) -> DrillChallenge:
    """The challenge a stored drill issued (re-read strictly)."""
    return DrillChallenge.from_json(record.challenge)


def find_drill(treasury: Any, proof: DrillProof) -> DrillRecord:
    """The stored drill a proof answers (by Safe, chain and nonce); one line when there is none."""
    if proof.chain_id != treasury.chain_id or proof.safe != treasury.safe:
        raise InvalidInput(f"the proof is for Safe {proof.safe} on chain {proof.chain_id}, not treasury {treasury.name} "
                           f"(Safe {treasury.safe} on chain {treasury.chain_id})")
    for drill in treasury.store.drills(treasury.chain_id, treasury.safe):
        if drill.nonce == proof.nonce:
            return drill
    raise InvalidInput(f"no drill of treasury {treasury.name} has nonce {proof.nonce}: was it issued by another store?")


def record_drill_proof(treasury: Any, drill_id: str, proof: DrillProof, now: int | None = None) -> OwnerProofRecord:
    """Verify a proof against the Safe's owners as the chain reports them now, then store it (`drill.proved`)."""
    drill = treasury.store.get_drill(drill_id)
    if (drill.chain_id, drill.safe) != (treasury.chain_id, treasury.safe):
        raise InvalidInput(f"drill {drill.id} is for Safe {drill.safe} on chain {drill.chain_id}, not treasury {treasury.name}")
    if drill.status != "open":
        raise InvalidInput(f"drill {drill.id} is {drill.status}: it takes no more proofs")
    when = _now(now)
    verify_drill_proof(drill, proof, treasury.owners(), now=when)
    return treasury.store.add_owner_proof(drill.id, proof.owner, proof.via, proof.signature, when, actor=treasury.actor)


# --- reporting ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrillReport:
    """A drill's standing: which current owners proved control in it, and (when owner liveness is
    available) which M-of-N combinations are provably live today."""

    drill: DrillRecord | None
    owners: tuple[str, ...]
    threshold: int
    proved: Mapping[str, OwnerProofRecord]
    now: int
    names: Mapping[str, str] = field(default_factory=dict)
    liveness: Any = None  # treasury.ceremony.liveness.LivenessReport

    def name(self, owner: str) -> str:
        return self.names.get(owner) or owner

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(o for o in self.owners if o not in self.proved)

    def lines(self) -> list[str]:
        """In words: the drill, each owner's proof (or its absence), then the liveness summary."""
        from treasury.wording import when

        out = []
        if self.drill is None:
            out.append("no drill yet: start one with `treasury drill start`")
        else:
            state: str = self.drill.status
            if state == "open" and self.now > self.drill.expires_at:
                state = "expired"
            out.append(f"drill {self.drill.id} ({state}, expires {when(self.drill.expires_at)}): "
                       f"{len(self.proved)} of {len(self.owners)} owners proved control")
            for owner in self.owners:
                proof = self.proved.get(owner)
                device = " (device required)" if owner in self.drill.require_device else ""
                shown = f"proved {when(proof.proved_at)} via {proof.via}" if proof else "not yet proved"
                out.append(f"  {self.name(owner)}: {shown}{device}")
        if self.liveness is not None:
            out.extend(self.liveness.lines())
        return out

    def as_dict(self) -> dict[str, Any]:
        drill = self.drill
        return {
            "drill": None if drill is None else {
                "id": drill.id, "chain_id": drill.chain_id, "safe": drill.safe, "nonce": drill.nonce,
                "status": drill.status, "created_at": drill.created_at, "expires_at": drill.expires_at,
                "require_device": list(drill.require_device), "expired": self.now > drill.expires_at,
            },
            "owners": list(self.owners), "threshold": self.threshold, "now": self.now,
            "proofs": {o: ({"via": p.via, "proved_at": p.proved_at, "id": p.id} if (p := self.proved.get(o)) else None)
                       for o in self.owners},
            "missing": list(self.missing),
            "names": dict(self.names),
            "liveness": None if self.liveness is None else self.liveness.as_dict(),
            "lines": self.lines(),
        }


def drill_report(treasury: Any, drill_id: str | None = None, now: int | None = None) -> DrillReport:
    """The report of drill `drill_id` (default: the latest) against the chain's current owners and threshold."""
    store = treasury.store
    drill = store.get_drill(drill_id) if drill_id is not None else next(iter(store.drills(treasury.chain_id, treasury.safe)), None)
    if drill is not None and (drill.chain_id, drill.safe) != (treasury.chain_id, treasury.safe):
        raise InvalidInput(f"drill {drill.id} is for Safe {drill.safe} on chain {drill.chain_id}, not treasury {treasury.name}")
    owners = tuple(treasury.owners())
    threshold = treasury.threshold()
    when = _now(now)
    proved = {} if drill is None else current_proofs(store.owner_proofs(treasury.chain_id, treasury.safe, drill.id), owners)
    book = treasury.addresses
    names = {o: n for o in owners if (n := book.name_of(o)) is not None}
    return DrillReport(drill, owners, threshold, proved, when, names, _liveness(treasury, owners, threshold, when))


def current_proofs(proofs: Iterable[OwnerProofRecord], owners: Iterable[str]) -> dict[str, OwnerProofRecord]:
    """Each current owner's proof among `proofs` (of one drill): a removed owner's proof counts for nothing."""
    members = set(owners)
    return {p.owner: p for p in proofs if p.owner in members}


def proven_counts(proofs: Iterable[OwnerProofRecord], owners: Iterable[str]) -> dict[str, int]:
    """How many current owners proved control in each drill (by drill id), never more than there are owners."""
    members = set(owners)
    counts: dict[str, set[str]] = {}
    for proof in proofs:
        if proof.owner in members:
            counts.setdefault(proof.drill_id, set()).add(proof.owner)
    return {drill_id: len(found) for drill_id, found in counts.items()}


def _liveness(treasury: Any, owners: Sequence[str], threshold: int, now: int) -> Any:
    """Owner liveness (treasury.ceremony.liveness) over every proof on record, or None where it cannot be read."""
    try:
        from treasury.ceremony.liveness import treasury_liveness
    except ImportError:  # pragma: no cover - shipped together
        return None
    return treasury_liveness(treasury, list(owners), threshold, now)
