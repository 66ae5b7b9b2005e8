"""How a `treasury serve` runs: one frozen value, built by the CLI or by tests, read by the app.

Security defaults are the safe ones: loopback only, 1 MiB bodies, 120 writes a minute per client.
Going beyond loopback needs TLS (here or in a proxy in front) or an explicit opt-in (`check_exposure`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from treasury.errors import InvalidInput

MIB = 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    read_token: str | None = None  # every GET needs `Authorization: Bearer <token>` when set
    max_body: int = MIB  # bytes; larger request bodies get 413 before they are read
    write_rate: float = 120.0  # writes per minute per client (a refilling bucket)
    write_burst: int = 20  # writes a client may make at once before the rate applies
    behind_tls: bool = False  # TLS ends in a proxy in front: require X-Forwarded-Proto: https
    insecure_remote: bool = False  # explicit opt-in to plain HTTP beyond loopback
    refuse_denied: bool = False  # proposals the policy denies get 422, nothing stored
    owner_cache_seconds: float = 5.0  # how long the chain's owners/threshold/nonce are reused
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # --behind-tls: the peers whose X-Forwarded-For/Proto count (addresses or networks); others get 403
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")

    def __post_init__(self) -> None:
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise InvalidInput(f"--trusted-proxy {proxy!r} is not an IP address or network") from None
        if self.max_body < 1:
            raise InvalidInput(f"--max-body must be a positive number of bytes, not {self.max_body}")
        if self.write_rate <= 0 or self.write_burst < 1:
            raise InvalidInput("--write-rate must be positive (writes per minute per client)")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InvalidInput("--tls-cert and --tls-key go together")
        if self.read_token is not None and not self.read_token.strip():
            raise InvalidInput("the read token is empty")

    def __repr__(self) -> str:  # never show the token (logs, tracebacks)
        shown = "set" if self.read_token else None
        return f"ServerSettings(host={self.host!r}, port={self.port}, read_token={shown}, behind_tls={self.behind_tls})"

    def trusts(self, peer: str) -> bool:
        """Whether `peer` (the TCP peer's address) is one of the trusted proxies."""
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(proxy, strict=False) for proxy in self.trusted_proxies)

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def check_exposure(self) -> list[str]:
        """Refuse plain HTTP beyond loopback unless asked for; the warnings to print otherwise."""
        if self.loopback:
            return []
        if not (self.tls or self.behind_tls or self.insecure_remote):
            raise InvalidInput(
                f"refusing to listen on {self.host} over plain HTTP: pass --tls-cert/--tls-key, "
                "--behind-tls (a TLS proxy in front), or --insecure-remote"
            )
        if self.read_token is None:
            warning = (f"anyone who can reach {self.host}:{self.port} can read every proposal "
                       "(set a read token: --read-token-file or TREASURY_SERVER_TOKEN)")
            return [warning]
        return []


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only ("localhost" included)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
