"""Key-ceremony drills against `treasury serve` (treasury.server.drills): the client side, for `--server`.

The server keeps the drill and verifies every proof against the chain itself; this module only
signs and sends. Starting a drill needs a signature (the server takes writes only with one): the
starter's ape account signs the new challenge, exactly as an owner's proof would. A proof made
offline (`treasury drill sign challenge.json`, a DrillProof file) is sent as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from treasury.ceremony.challenge import DEFAULT_PURPOSE, DrillChallenge, wall_clock
from treasury.ceremony.drill import DEFAULT_TTL, DrillProof, sign_drill
from treasury.errors import InvalidInput
from treasury.remote.http import HttpClient, NotFound
from treasury.wording import when

if TYPE_CHECKING:
    from ape.api import AccountAPI

EXTENSION = "/api/treasury/v1"


def start_drill(http: HttpClient, safe: str, chain_id: int, account: AccountAPI, *, require_device: Sequence[str] = (),
                ttl: int = DEFAULT_TTL, now: int | None = None, purpose: str = DEFAULT_PURPOSE) -> dict[str, Any]:
    """Issue a drill on the server, signed by `account` (an owner, or a delegate of one); its JSON back."""
    issued = wall_clock() if now is None else now
    challenge = DrillChallenge.create(safe, chain_id, issued, ttl, purpose)
    signed = sign_drill(challenge, account)
    body = {"nonce": challenge.nonce, "issuedAt": challenge.issued_at, "expiresAt": challenge.expires_at,
            "purpose": challenge.purpose, "requireDevice": list(require_device), "sender": signed.owner,
            "signature": "0x" + signed.signature.hex()}
    return _object(http.post(f"{EXTENSION}/safes/{challenge.safe}/drills/", body), "the new drill")


def get_drill(http: HttpClient, drill_id: str) -> dict[str, Any]:
    """The drill's JSON: its challenge (typed data), who has proved control, who is missing."""
    try:
        return _object(http.get(f"{EXTENSION}/drills/{drill_id}/"), f"drill {drill_id}")
    except NotFound:
        raise InvalidInput(f"no drill {drill_id} on server {http.url}") from None


def list_drills(http: HttpClient, safe: str) -> list[dict[str, Any]]:
    """The Safe's drills on the server, newest first (the first page: the latest hundred)."""
    page = _object(http.get(f"{EXTENSION}/safes/{safe}/drills/"), "the drill list")
    results = page.get("results")
    if not isinstance(results, list):
        raise InvalidInput(f"server {http.url}: the drill list has no results")
    return results


def challenge_of(drill: Mapping[str, Any]) -> DrillChallenge:
    """The challenge of a drill as the server sent it, re-read strictly (a server is not trusted to shape it)."""
    return DrillChallenge.from_json(drill.get("typedData"))


def send_proof(http: HttpClient, drill_id: str, proof: DrillProof) -> dict[str, Any]:
    """Post an owner's proof; the server verifies it against the owners on chain before keeping it."""
    body = {"signature": "0x" + proof.signature.hex(), "via": proof.via, "owner": proof.owner}
    return _object(http.post(f"{EXTENSION}/drills/{drill_id}/proofs/", body), "the stored proof")


def status_lines(drill: Mapping[str, Any], names: Mapping[str, str] | None = None) -> list[str]:
    """The drill in words, as `treasury drill status` prints a local one."""
    names = names or {}
    owners = list(drill.get("owners", []))
    proofs = {p["owner"]: p for p in drill.get("proofs", []) if p.get("owner") in owners}  # today's owners only
    state = "expired" if drill.get("expired") and drill.get("status") == "open" else drill.get("status")
    lines = [(f"drill {drill['id']} ({state}, expires {when(int(drill['expiresAt']))}): "
              f"{len(proofs)} of {len(owners)} owners proved control")]
    for owner in owners:
        proof = proofs.get(owner)
        shown = f"proved {when(int(proof['provedAt']))} via {proof['via']}" if proof else "not yet proved"
        device = " (device required)" if owner in drill.get("requireDevice", []) else ""
        lines.append(f"  {names.get(owner) or owner}: {shown}{device}")
    return lines


def _object(answer: Any, what: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise InvalidInput(f"the server answered {what} with something other than a JSON object")
    return answer
