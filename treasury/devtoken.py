"""A test ERC-20 on a development chain, for a newcomer's first proposal: `treasury dev-token`.

The token is the shipped TestToken (treasury/data/TestToken.json), whose `mint` anyone may call:
harmless on a local anvil or a fork, a gift to everyone on a live network. So deploying it is
refused on anything but a development network, before a transaction is even built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from treasury.amounts import Token, format_units, split_amount, to_base_units
from treasury.errors import InvalidInput

if TYPE_CHECKING:
    from ape.api import AccountAPI, ProviderAPI

ZERO = "0x" + "0" * 40


@dataclass(frozen=True)
class DevToken:
    """What was deployed and minted, and the line that puts it in the config's token book."""

    symbol: str
    address: str
    decimals: int
    minted: int  # base units
    to: str

    @property
    def config_line(self) -> str:
        return f'{self.symbol}: {{address: "{self.address}", decimals: {self.decimals}}}'

    @property
    def minted_text(self) -> str:
        return f"{format_units(self.minted, self.decimals)} {self.symbol}"


def mint_units(symbol: str, decimals: int, amount: str) -> int:
    """The amount to mint in base units ("1,000,000" or "1,000,000 TUSD"); checks symbol and decimals too."""
    from pydantic import ValidationError

    try:
        token = Token(symbol=symbol, address=ZERO, decimals=decimals)
    except ValidationError as error:  # the first problem, in one line
        first = error.errors()[0]
        raise InvalidInput(f"token {symbol}: {first.get('ctx', {}).get('error') or first['msg']}") from None
    number, named = split_amount(amount)
    if named is not None and named.upper() != symbol.upper():
        raise InvalidInput(f"--mint {amount!r} names {named}, but the token is {symbol}")
    return to_base_units(number, token, allow_zero=True)


def require_dev_chain(provider: ProviderAPI) -> None:
    """One line and nothing sent unless the connected network is local or a fork."""
    from treasury.chain.infrastructure import is_dev_chain

    if not is_dev_chain(provider):
        network = provider.network
        raise InvalidInput(
            f"dev-token deploys a token anyone can mint: development networks only (local or a fork), not "
            f"{network.ecosystem.name}:{network.name} (chain {provider.chain_id}); nothing deployed")


def deploy_dev_token(provider: ProviderAPI, deployer: AccountAPI, symbol: str, decimals: int, units: int,
                     to: str) -> DevToken:
    """Deploy TestToken as `symbol` with `decimals` and mint `units` to `to` (a development chain only)."""
    from treasury.testing.fixtures import deploy_test_token

    require_dev_chain(provider)
    token = deploy_test_token(deployer, f"Test {symbol}", symbol, decimals)
    if units:
        token.mint(to, units, sender=deployer)
    return DevToken(symbol, str(token.address), decimals, units, to)
