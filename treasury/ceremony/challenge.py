"""The recovery drill's challenge: an EIP-712 message of our own that no Safe would ever accept.

Each owner proves control of their key by signing a DrillChallenge: the Safe, the chain and a fresh
nonce, with a validity window and a purpose in words. The domain names this tool ("ape-treasury
drill", version "1"); a Safe's own domain has neither a name nor a version (its EIP712Domain is
`(uint256 chainId, address verifyingContract)`), so the digest an owner signs here can never equal a
safeTxHash nor a SafeMessage hash of the Safe: a drill signature is useless as a transaction
signature or as a message the Safe would vouch for (tests/test_drill.py asks the Safe itself).

Pure data and hashing: no chain, no store.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak

from treasury.addresses import parse_address
from treasury.errors import InvalidInput

DRILL_DOMAIN_NAME = "ape-treasury drill"
DRILL_DOMAIN_VERSION = "1"
PRIMARY_TYPE = "DrillChallenge"
DEFAULT_PURPOSE = "Recovery drill: I still control my key to this Safe. This is not a transaction."
MAX_PURPOSE = 500
UINT64_MAX = 2**64 - 1
MAX_CHAIN_ID = 2**53 - 1  # the largest chain id a JSON number (and a wallet's JavaScript) holds exactly
CHALLENGE_FORMAT = "ape-treasury drill challenge"
DAY = 86_400
MAX_TTL = 90 * DAY  # a drill open longer than a liveness period proves little about "now" (local and server drills)
MAX_PROOF_BYTES = 10_000  # a contract owner's proof is its own owners' signatures (65 bytes each), not a document
VIA = re.compile(r"[a-z][a-z0-9_-]{0,31}")  # how a proof was signed: one short lowercase word (use fullmatch)

DRILL_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    PRIMARY_TYPE: [
        {"name": "safe", "type": "address"},
        {"name": "nonce", "type": "bytes32"},
        {"name": "issuedAt", "type": "uint64"},
        {"name": "expiresAt", "type": "uint64"},
        {"name": "purpose", "type": "string"},
    ],
}

_DOMAIN_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
_CHALLENGE_TYPEHASH = keccak(
    text="DrillChallenge(address safe,bytes32 nonce,uint64 issuedAt,uint64 expiresAt,string purpose)"
)
_NONCE = re.compile(r"0x[0-9a-f]{64}")


def wall_clock() -> int:
    """Unix seconds by the wall clock: the one clock drills are issued, proved and expire by (and owner
    liveness counts with), because a proof is stamped when it is stored, not in a block."""
    return int(time.time())


def new_nonce() -> str:
    """A fresh 32-byte nonce (0x-hex) from the operating system's randomness."""
    return "0x" + secrets.token_bytes(32).hex()


def _uint64(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT64_MAX:
        raise InvalidInput(f"drill {what} {value!r} is not a uint64 unix time")
    return value


def _nonce(value: object) -> str:
    if isinstance(value, (bytes, bytearray)) and len(value) == 32:
        return "0x" + bytes(value).hex()
    text = value.lower() if isinstance(value, str) else ""
    if not _NONCE.fullmatch(text):
        raise InvalidInput(f"drill nonce {value!r} is not a 0x-prefixed 32-byte hex value")
    return text


@dataclass(frozen=True)
class DrillChallenge:
    """What every owner signs in a drill. Build with `DrillChallenge.create` or read with `from_json`."""

    safe: str
    chain_id: int
    nonce: str  # 0x + 64 hex digits
    issued_at: int  # unix seconds
    expires_at: int  # unix seconds
    purpose: str = DEFAULT_PURPOSE

    def __post_init__(self) -> None:
        object.__setattr__(self, "safe", parse_address(self.safe, "drill Safe"))
        object.__setattr__(self, "nonce", _nonce(self.nonce))
        if isinstance(self.chain_id, bool) or not isinstance(self.chain_id, int) or not 0 < self.chain_id <= MAX_CHAIN_ID:
            raise InvalidInput(f"drill chain id {self.chain_id!r} is not a positive integer below 2**53")
        _uint64(self.issued_at, "issue time")
        _uint64(self.expires_at, "expiry")
        if self.expires_at <= self.issued_at:
            raise InvalidInput("a drill challenge must expire after it is issued")
        if not isinstance(self.purpose, str) or not self.purpose.strip() or len(self.purpose) > MAX_PURPOSE \
                or not self.purpose.isprintable():
            raise InvalidInput(f"drill purpose must be one printable line of at most {MAX_PURPOSE} characters")

    @classmethod
    def create(cls, safe: str, chain_id: int, issued_at: int, ttl: int, purpose: str = DEFAULT_PURPOSE) -> DrillChallenge:
        """A challenge with a fresh nonce, valid from `issued_at` for `ttl` seconds."""
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
            raise InvalidInput(f"a drill's lifetime must be a positive number of seconds, got {ttl!r}")
        return cls(safe, chain_id, new_nonce(), issued_at, issued_at + ttl, purpose)

    def typed_data(self) -> dict[str, Any]:
        """The eth_signTypedData_v4 payload (JSON-safe: numbers as JSON numbers, bytes32 as 0x-hex)."""
        return {
            "types": {name: [dict(item) for item in fields] for name, fields in DRILL_TYPES.items()},
            "primaryType": PRIMARY_TYPE,
            "domain": {"name": DRILL_DOMAIN_NAME, "version": DRILL_DOMAIN_VERSION, "chainId": self.chain_id,
                       "verifyingContract": self.safe},
            "message": {"safe": self.safe, "nonce": self.nonce, "issuedAt": self.issued_at, "expiresAt": self.expires_at,
                        "purpose": self.purpose},
        }

    def domain_separator(self) -> bytes:
        return keccak(abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [_DOMAIN_TYPEHASH, keccak(text=DRILL_DOMAIN_NAME), keccak(text=DRILL_DOMAIN_VERSION), self.chain_id, self.safe],
        ))

    def struct_hash(self) -> bytes:
        return keccak(abi_encode(
            ["bytes32", "address", "bytes32", "uint64", "uint64", "bytes32"],
            [_CHALLENGE_TYPEHASH, self.safe, bytes.fromhex(self.nonce[2:]), self.issued_at, self.expires_at,
             keccak(text=self.purpose)],
        ))

    def digest(self) -> bytes:
        """The EIP-712 hash an owner's key signs: keccak256(0x1901 || domainSeparator || structHash)."""
        return keccak(b"\x19\x01" + self.domain_separator() + self.struct_hash())

    def to_json(self) -> dict[str, Any]:
        """The challenge file: its typed data and, for people comparing with a wallet screen, its digest."""
        return {"type": CHALLENGE_FORMAT, "version": 1, "typed_data": self.typed_data(),
                "digest": "0x" + self.digest().hex()}

    @classmethod
    def from_json(cls, data: Any) -> DrillChallenge:
        """Read a challenge file (or bare typed data); refused unless it is exactly a challenge this tool issues.

        A file's `type` and `version`, when present, must be this format's; its `digest`, when present,
        must be the typed data's own (someone comparing it with a wallet screen must see the real one).
        """
        digest = None
        if isinstance(data, dict) and "typed_data" in data:
            _check_header(data)
            digest = data.get("digest")
            data = data["typed_data"]
        if not isinstance(data, dict) or data.get("primaryType") != PRIMARY_TYPE:
            raise InvalidInput("not a drill challenge: expected EIP-712 typed data with primaryType DrillChallenge")
        domain, message = data.get("domain"), data.get("message")
        if not isinstance(domain, dict) or not isinstance(message, dict):
            raise InvalidInput("not a drill challenge: its domain and message must be objects")
        try:
            challenge = cls(safe=message["safe"], chain_id=domain["chainId"], nonce=message["nonce"],
                            issued_at=message["issuedAt"], expires_at=message["expiresAt"], purpose=message["purpose"])
        except KeyError as missing:
            raise InvalidInput(f"not a drill challenge: {missing.args[0]} is missing") from None
        if _normal(challenge.typed_data()) != _normal(data):
            raise InvalidInput("drill challenge altered: its types, domain or fields differ from the ones this tool issues")
        if digest is not None and (not isinstance(digest, str) or digest.lower() != "0x" + challenge.digest().hex()):
            raise InvalidInput("drill challenge altered: its digest is not the hash of its typed data")
        return challenge


def _check_header(data: dict[str, Any]) -> None:
    if "type" in data and data["type"] != CHALLENGE_FORMAT:
        raise InvalidInput(f"not a drill challenge: type {data['type']!r}, expected {CHALLENGE_FORMAT!r}")
    if "version" in data and (isinstance(data["version"], bool) or data["version"] != 1):
        raise InvalidInput(f"drill challenge version {data['version']!r} is not supported (expected 1)")


def _normal(typed: dict[str, Any]) -> dict[str, Any]:
    """Typed data compared with addresses and hex in lowercase (a checksum is not a difference)."""
    def low(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("0x"):
            return value.lower()
        if isinstance(value, dict):
            return {k: low(v) for k, v in value.items()}
        if isinstance(value, list):
            return [low(v) for v in value]
        return value

    return low({k: typed.get(k) for k in ("types", "primaryType", "domain", "message")} | {"extra": sorted(set(typed) - {
        "types", "primaryType", "domain", "message"})})
