"""`treasury serve`: the Safe Transaction Service API over the treasury store, on this chain.

Refusals that need no chain (plain HTTP beyond loopback, an unreadable token file) come before ape
connects; the socket is bound here, before uvicorn starts, so the line printed at start names the
real port even for `--port 0` (tests and scripts read it instead of guessing a free port).
"""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from treasury.cli.chain import chain_command
from treasury.errors import InvalidInput

TOKEN_ENV = "TREASURY_SERVER_TOKEN"


def _settings(host: str, port: int, read_token_file: Path | None, tls_cert: Path | None, tls_key: Path | None,
              behind_tls: bool, insecure_remote: bool, refuse_denied: bool, write_rate: float, max_body: int,
              trusted_proxy: tuple[str, ...] = ()) -> Any:
    from treasury.server.settings import ServerSettings

    settings = ServerSettings(host=host, port=port, read_token=_read_token(read_token_file), max_body=max_body,
                              write_rate=write_rate, behind_tls=behind_tls, insecure_remote=insecure_remote,
                              refuse_denied=refuse_denied, tls_cert=tls_cert, tls_key=tls_key)
    return replace(settings, trusted_proxies=tuple(trusted_proxy)) if trusted_proxy else settings


def _read_token(path: Path | None) -> str | None:
    """The read token from its file (first line) or the environment; never echoed anywhere."""
    if path is not None:
        try:
            token = path.read_text(encoding="utf-8").strip().splitlines()
        except OSError as error:
            raise InvalidInput(f"cannot read the token file {path}: {error.strerror}") from None
        if not token or not token[0].strip():
            raise InvalidInput(f"the token file {path} is empty")
        return token[0].strip()
    return os.environ.get(TOKEN_ENV) or None


def _check(**params: Any) -> None:
    """Before connecting: the settings are valid and the exposure is allowed (one `Error:` line if not)."""
    settings = _settings(**{k: params[k] for k in _SETTING_PARAMS})
    for warning in settings.check_exposure():
        click.echo(f"Warning: {warning}", err=True)


_SETTING_PARAMS = ("host", "port", "read_token_file", "tls_cert", "tls_key", "behind_tls", "insecure_remote",
                   "refuse_denied", "write_rate", "max_body", "trusted_proxy")


@chain_command("serve", check_input=_check)
@click.option("--store", "store_url", default=None, metavar="URL", help="store path or SQLAlchemy URL (default: the config's)")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="port (0: any free one)")
@click.option("--read-token-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help=f"file holding the bearer token every read needs (or env {TOKEN_ENV})")
@click.option("--tls-cert", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None, help="TLS certificate (PEM)")
@click.option("--tls-key", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None, help="TLS private key (PEM)")
@click.option("--behind-tls", is_flag=True, help="TLS ends in a proxy in front: require X-Forwarded-Proto: https")
@click.option("--trusted-proxy", multiple=True, metavar="ADDR",
              help="with --behind-tls: a proxy whose X-Forwarded-* headers count, repeatable (default 127.0.0.1 and ::1); "
                   "requests from any other peer are refused")
@click.option("--insecure-remote", is_flag=True, help="allow plain HTTP beyond loopback (not recommended)")
@click.option("--refuse-denied", is_flag=True, help="refuse (422) proposals the policy denies instead of flagging them")
@click.option("--write-rate", default=120.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="writes per minute per client")
@click.option("--max-body", default=1024 * 1024, show_default=True, type=click.IntRange(min=1), help="largest request body, bytes")
def serve(name, config_path, as_json, verbose, store_url, host, port, read_token_file, tls_cert, tls_key, behind_tls,
          trusted_proxy, insecure_remote, refuse_denied, write_rate, max_body):
    """Serve the Safe Transaction Service API (for ape-safe, safe-eth-py, Safe's api-kit and
    `treasury --server`) over the treasury store, with the policy verdict on every proposal.

    Reads are open on loopback; set a read token before listening beyond it. Writes are accepted
    only with signatures of the Safe's current owners (or their delegates), checked on this chain."""
    import uvicorn
    from ape import chain

    from treasury.config import load_config
    from treasury.server.app import create_app
    from treasury.server.chain_view import ApeChainView
    from treasury.server.context import ServerContext
    from treasury.store import Store

    settings = _settings(host, port, read_token_file, tls_cert, tls_key, behind_tls, insecure_remote, refuse_denied,
                         write_rate, max_body, trusted_proxy)
    config = load_config(config_path)
    if name is not None:
        config = config.model_copy(update={"treasuries": {name: config.treasury(name)}})
    if not chain.provider.network.is_dev:
        from treasury.chain.rpc import harden

        harden(chain.provider, config.rpc.policy())
    store = Store.open(str(store_url or config.store))
    try:
        context = ServerContext(settings=settings, store=store, chain=ApeChainView(chain.provider, ttl=settings.owner_cache_seconds),
                                config=config)
        sock = bind(host, port)
        url = f"{settings.scheme}://{_url_host(host)}:{sock.getsockname()[1]}"
        _announce(url, store, context.chain.chain_id, as_json)
        server = uvicorn.Server(uvicorn_config(create_app(context), settings))
        server.run(sockets=[sock])
    finally:
        store.close()


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now (an address in use is one error line, before anything starts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and without
    # it every keep-alive answer written in two parts waits for the client's delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as error:
        sock.close()
        raise InvalidInput(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app: Any, settings: Any) -> Any:
    """uvicorn's settings: our own forwarded-header handling (treasury.server.context), quiet logs."""
    import uvicorn

    return uvicorn.Config(app, log_level="warning", access_log=False, proxy_headers=False, server_header=False,
                          lifespan="off", timeout_graceful_shutdown=5,
                          ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
                          ssl_keyfile=str(settings.tls_key) if settings.tls_key else None)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _announce(url: str, store: Any, chain_id: int, as_json: bool) -> None:
    """One line at start: where, which store (password masked), which chain. Never the token."""
    if as_json:
        import json

        click.echo(json.dumps({"url": url, "store": store.backend, "store_url": store.url, "chain_id": chain_id}), nl=True)
    else:
        click.echo(f"treasury serve: listening on {url} (store: {store.backend} {store.url}, chain {chain_id})")
    import sys

    sys.stdout.flush()
