"""Commands that connect to a chain: ape's ConnectedProviderCommand and --network, as in `ape run`.

Only modules of chain commands import this one (it imports ape.cli, and with it ape). Store-only
commands (treasury.cli.records) connect through `connected` only when given --network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from ape.cli import ConnectedProviderCommand, network_option

from treasury.cli.common import OneLineErrors, treasury_options

_CONNECTION_PARAMS = ("network", "provider_settings")


def ape_log_to_stderr() -> None:
    """ape logs ("INFO: Confirmed 0x...") with click.echo to stdout; send every level to stderr."""
    from ape.logging import ClickHandler, logger

    for handler in logger._logger.handlers:
        if isinstance(handler, ClickHandler):
            levels = set(handler.echo_kwargs) | {name.lower() for name in logging.getLevelNamesMapping()} | {"success"}
            handler.echo_kwargs = {level: {**handler.echo_kwargs.get(level, {}), "err": True} for level in levels}


class ChainCommand(OneLineErrors, ConnectedProviderCommand):
    """A command that connects to the network chosen with --network (ape's option).

    `check_input`, given the parsed options, rejects bad input before any connection is made: the
    user hears about a wrong threshold even when the node is down, and no RPC is spent on it.
    """

    def __init__(self, *args: Any, check_input: Callable[..., Any] | None = None, **kwargs: Any) -> None:
        self.check_input = check_input
        super().__init__(*args, **kwargs)

    def before_connecting(self, ctx: click.Context) -> None:
        if ctx.params.get("as_json"):
            ape_log_to_stderr()  # stdout carries the JSON only
        if self.check_input is not None:
            self.check_input(**{k: v for k, v in ctx.params.items() if k not in _CONNECTION_PARAMS})
        provider = _chosen_provider(ctx)
        if provider is not None:
            from treasury.chain.rpc import check_node

            check_node(provider, _retry_policy(ctx.params.get("config_path")))


def _chosen_provider(ctx: click.Context) -> Any:
    """The provider ape is about to connect (parsed from --network, or ape's default), if known yet."""
    from ape.api.providers import ProviderAPI
    from ape.cli.options import NETWORK_META_KEY

    chosen = (ctx.meta.get(NETWORK_META_KEY) or {}).get("provider") or ctx.params.get("network")
    return chosen if isinstance(chosen, ProviderAPI) else None


def _retry_policy(config_path: Any) -> Any:
    """The configured retry policy (treasury `rpc:`), or the defaults when the config cannot be read
    (the command then reports the config problem itself, after this check)."""
    from treasury.chain.rpc import RetryPolicy
    from treasury.config import load_config

    try:
        return load_config(config_path).rpc.policy()
    except Exception:  # noqa: BLE001 - the config's own error is the command's to report
        return RetryPolicy()


def chain_command(name: str | None = None, **kwargs: Any) -> Callable[[Callable], click.Command]:
    """A command with --network, as in `ape run` / `ape safe`: `--network ethereum:local:foundry`."""

    def decorate(fn: Callable) -> click.Command:
        return click.command(name, cls=ChainCommand, **kwargs)(network_option()(treasury_options(fn)))

    return decorate


@contextmanager
def connected(network: str, as_json: bool = False) -> Iterator[Any]:
    """Connected to `network` (any choice ape's --network accepts) for the block; yields the provider.

    The same connection ape's ConnectedProviderCommand makes, for store-only commands that were
    given --network (`treasury show ID --network ...` adds the live policy verdict).
    """
    from ape.utils.basemodel import ManagerAccessMixin

    if as_json:
        ape_log_to_stderr()
    from treasury.chain.rpc import check_node

    choice = ManagerAccessMixin.network_manager.parse_network_choice(network, disconnect_on_exit=True)
    chosen = getattr(choice, "_provider", None)  # ape's ProviderContextManager keeps it there
    if chosen is not None:
        check_node(chosen)  # a silent node is one line; no fresh anvil in its place
    with choice as provider:
        yield provider
