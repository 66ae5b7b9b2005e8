"""Create a Safe (a proxy of a canonical singleton) at an address known before deployment.

The proxy factory deploys with CREATE2 from (initializer, salt nonce), so the address is fixed by
the owners, threshold, fallback handler, singleton and salt: we predict it, deploy, and then check
that the contract at that address has exactly the requested owners and threshold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, keccak
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from treasury.addresses import SENTINEL_ADDRESS, ZERO_ADDRESS, parse_address
from treasury.chain.artifacts import (
    DEFAULT_VERSION,
    check_version,
    contract_type,
    create2_address,
    proxy_creation_code,
    safe_contract,
)
from treasury.errors import DeploymentError, InvalidInput

if TYPE_CHECKING:
    from ape.api import AccountAPI, ProviderAPI

ETHEREUM_MAINNET = 1
_SETUP_SELECTOR = function_signature_to_4byte_selector(
    "setup(address[],uint256,address,bytes,address,address,uint256,address)"
)
_CREATE_PROXY_SELECTOR = function_signature_to_4byte_selector("createProxyWithNonce(address,bytes,uint256)")


class SafeSpec(BaseModel):
    """What Safe to create. Validated on construction; see `safe_spec` for one-line errors."""

    model_config = ConfigDict(frozen=True)

    owners: tuple[str, ...]
    threshold: int
    salt_nonce: int = 0
    version: str = DEFAULT_VERSION
    fallback_handler: str | None = None  # None: the toolkit's TreasuryFallbackHandler (treasury.chain.handler)
    l2: bool | None = None  # None: the L2 singleton everywhere but Ethereum mainnet

    @field_validator("owners", mode="before")
    @classmethod
    def _owners(cls, owners: Iterable[object]) -> tuple[str, ...]:
        if isinstance(owners, (str, bytes)) or not owners:
            raise ValueError("a Safe needs at least one owner")
        parsed = tuple(parse_address(owner, "owner") for owner in owners)
        for owner in parsed:
            if owner in (ZERO_ADDRESS, SENTINEL_ADDRESS):
                raise ValueError(f"owner {owner} is reserved by the Safe and cannot own it")
        duplicates = sorted({o for o in parsed if parsed.count(o) > 1})
        if duplicates:
            raise ValueError(f"owner {duplicates[0]} is listed more than once")
        return parsed

    @field_validator("version")
    @classmethod
    def _version(cls, version: str) -> str:
        return check_version(version)

    @field_validator("fallback_handler", mode="before")
    @classmethod
    def _fallback_handler(cls, handler: object) -> str | None:
        return None if handler is None else parse_address(handler, "fallback handler")

    @field_validator("salt_nonce")
    @classmethod
    def _salt_nonce(cls, salt_nonce: int) -> int:
        if not 0 <= salt_nonce < 2**256:
            raise ValueError(f"salt nonce {salt_nonce} is not a uint256")
        return salt_nonce

    @model_validator(mode="after")
    def _threshold(self) -> SafeSpec:
        if not 1 <= self.threshold <= len(self.owners):
            raise ValueError(
                f"threshold {self.threshold} must be between 1 and the number of owners ({len(self.owners)})"
            )
        return self

    def singleton_role(self, chain_id: int) -> str:
        l2 = self.l2 if self.l2 is not None else chain_id != ETHEREUM_MAINNET
        return "safe_l2" if l2 else "safe"

    def singleton(self, chain_id: int) -> str:
        return safe_contract(self.version, self.singleton_role(chain_id)).canonical_address

    def handler(self) -> str:
        """The fallback handler set up in the Safe: TreasuryFallbackHandler unless another was asked for.

        Not Safe's CompatibilityFallbackHandler: it validates owner signatures over any message as the
        Safe's own (EIP-1271), so owners could sign permits that move funds outside every guard check.
        """
        if self.fallback_handler is not None:
            return self.fallback_handler
        from treasury.chain.handler import handler_address

        return handler_address()

    def factory(self) -> str:
        return safe_contract(self.version, "proxy_factory").canonical_address

    def initializer(self) -> bytes:
        """Calldata of `setup(...)` that the new proxy runs once."""
        args = encode(
            ["address[]", "uint256", "address", "bytes", "address", "address", "uint256", "address"],
            [list(self.owners), self.threshold, ZERO_ADDRESS, b"", self.handler(), ZERO_ADDRESS, 0, ZERO_ADDRESS],
        )
        return _SETUP_SELECTOR + args


def safe_spec(**fields) -> SafeSpec:
    """Build a SafeSpec, turning pydantic's report into the first problem as one line."""
    try:
        return SafeSpec(**fields)
    except InvalidInput:
        raise
    except ValidationError as error:
        first = error.errors()[0]
        cause = first.get("ctx", {}).get("error")
        message = str(cause) if cause is not None else f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
        raise InvalidInput(message) from None


def predict_safe_address(spec: SafeSpec, chain_id: int) -> str:
    """The address createProxyWithNonce will give this Safe (non chain-specific salt)."""
    salt = keccak(keccak(spec.initializer()) + spec.salt_nonce.to_bytes(32, "big"))
    init_code = proxy_creation_code(spec.version) + bytes.fromhex(spec.singleton(chain_id)[2:]).rjust(32, b"\0")
    return create2_address(spec.factory(), salt, init_code)


@dataclass(frozen=True)
class CreatedSafe:
    """A Safe as created (or found already created) on chain."""

    address: str
    version: str
    singleton: str
    factory: str
    fallback_handler: str
    owners: tuple[str, ...]
    threshold: int
    salt_nonce: int
    action: str  # "created" or "present"
    transaction: str | None = None

    def as_dict(self) -> dict:
        data = asdict(self)
        data["owners"] = list(self.owners)
        return data


def safe_instance(address: str, version: str = DEFAULT_VERSION):
    """An ape contract instance for the Safe at `address` with the ABI of `version`."""
    from ape import chain

    return chain.contracts.instance_at(address, contract_type=contract_type("safe", version), fetch_from_explorer=False)


def create_safe(spec: SafeSpec, deployer: AccountAPI, provider: ProviderAPI | None = None) -> CreatedSafe:
    """Deploy the Safe described by `spec` through the canonical proxy factory and verify it.

    Idempotent: if the predicted address already holds a Safe, it is checked and returned.
    """
    if provider is None:
        from ape import chain

        provider = chain.provider
    chain_id = provider.chain_id
    for role, address in (("proxy factory", spec.factory()), ("singleton", spec.singleton(chain_id)), ("fallback handler", spec.handler())):
        if not bytes(provider.get_code(address)):
            raise DeploymentError(f"Safe {spec.version} {role} {address} is not deployed on chain {chain_id}; run `ape run deploy` first")

    predicted = predict_safe_address(spec, chain_id)
    action, tx_hash = "present", None
    if not bytes(provider.get_code(predicted)):
        calldata = _CREATE_PROXY_SELECTOR + encode(
            ["address", "bytes", "uint256"], [spec.singleton(chain_id), spec.initializer(), spec.salt_nonce]
        )
        receipt = deployer.transfer(spec.factory(), 0, data=calldata)
        action, tx_hash = "created", receipt.txn_hash
        if not bytes(provider.get_code(predicted)):
            raise DeploymentError(f"the proxy factory did not create the Safe at the predicted address {predicted}")

    _verify_safe(predicted, spec)
    return CreatedSafe(
        address=predicted,
        version=spec.version,
        singleton=spec.singleton(chain_id),
        factory=spec.factory(),
        fallback_handler=spec.handler(),
        owners=spec.owners,
        threshold=spec.threshold,
        salt_nonce=spec.salt_nonce,
        action=action,
        transaction=tx_hash,
    )


def _verify_safe(address: str, spec: SafeSpec) -> None:
    safe = safe_instance(address, spec.version)
    owners, threshold, version = tuple(safe.getOwners()), safe.getThreshold(), safe.VERSION()
    if (set(owners), threshold, version) != (set(spec.owners), spec.threshold, spec.version):
        raise DeploymentError(
            f"the Safe at {address} has owners {list(owners)}, threshold {threshold}, version {version}; "
            f"expected {list(spec.owners)}, {spec.threshold}, {spec.version}"
        )


def safe_nonce(address: str, version: str = DEFAULT_VERSION) -> int:
    """The Safe's transaction nonce (ape's `instance.nonce` is the account nonce, not this)."""
    return safe_instance(address, version).call_view_method("nonce")
