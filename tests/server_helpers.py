"""Run `treasury serve` for a test: in a thread of the test process, or as a process of its own.

`running_server` is for most tests: the app over the current ape connection (the session's anvil,
or the stand-in while `live(...)` is active), on a socket bound to port 0 before uvicorn starts, so
no other process can take the port between choosing and listening. `serve_process` runs the real
command (for SIGKILL tests): it listens on `--port 0` and the port is read from its start line.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from treasury.store import Store

TREASURY = Path(sys.executable).parent / "treasury"
START_LINE = "treasury serve: listening on "


def build_context(store: Store, *, config_path: Path | str | None = None, clock: Callable[[], float] | None = None,
                  chain: Any = None, **settings: Any) -> Any:
    """The ServerContext `running_server` serves: over the current ape connection unless `chain` is given."""
    from treasury.config import load_config
    from treasury.server.chain_view import ApeChainView
    from treasury.server.context import ServerContext
    from treasury.server.settings import ServerSettings

    server_settings = ServerSettings(**settings)
    view = chain if chain is not None else ApeChainView(ttl=server_settings.owner_cache_seconds)
    config = load_config(config_path) if config_path is not None else None
    context = ServerContext(settings=server_settings, store=store, chain=view, config=config)
    if clock is not None:
        context.clock = clock
    return context


@contextlib.contextmanager
def running_server(store: str | Path | Store, *, config_path: Path | str | None = None,
                   clock: Callable[[], float] | None = None, chain: Any = None, routers: Sequence[Any] = (),
                   **settings: Any) -> Iterator[str]:
    """Serve `store` (a Store, a path or a URL) in a daemon thread; yields `http://127.0.0.1:PORT`.

    `settings` are ServerSettings fields (read_token=..., max_body=..., write_rate=..., behind_tls=...,
    refuse_denied=...); `clock` replaces the context's (rate limits, TOTP); `chain` a ChainView;
    `routers` extra APIRouters for a test's own endpoints.
    """
    import uvicorn

    from treasury.cli.serve import uvicorn_config
    from treasury.server.app import create_app

    owned = not isinstance(store, Store)
    opened = Store.open(str(store)) if owned else store
    assert isinstance(opened, Store)
    try:
        context = build_context(opened, config_path=config_path, clock=clock, chain=chain, **settings)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY: see serve.bind
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        app = create_app(context)
        for router in routers:
            app.include_router(router)
        server = uvicorn.Server(uvicorn_config(app, context.settings))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"treasury-serve-{port}")
        thread.start()
        try:
            _wait(lambda: server.started, thread.is_alive, "the server did not start")
            yield f"{context.settings.scheme}://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            sock.close()
    finally:
        if owned:
            opened.close()


def _wait(done: Callable[[], bool], alive: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll until `done` (the deadline only bounds a broken start; correctness never rests on it)."""
    deadline = time.monotonic() + timeout
    while not done():
        if not alive() or time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(0.01)


@dataclass
class ServeProcess:
    """A `treasury serve` process: its URL, the process, and what it printed so far."""

    url: str
    process: subprocess.Popen
    output: list[str] = field(default_factory=list)

    def kill(self) -> int:
        """SIGKILL, as a crash would: no shutdown code runs."""
        self.process.kill()
        return self.process.wait(timeout=30)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                return self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                return self.kill()
        return self.process.returncode


@contextlib.contextmanager
def serve_process(store: str | Path, *, network: str | None = None, config_path: Path | str | None = None,
                  cwd: Path | str | None = None, args: Sequence[str] = (), env: dict[str, str] | None = None,
                  read_token: str | None = None, timeout: float = 120.0) -> Iterator[ServeProcess]:
    """`treasury serve --store STORE --port 0 ...` as a subprocess, yielded once `/api/v1/about/` answers.

    `network` defaults to the current ape provider's URI (the session's anvil); in a project made
    by standin.cli_project pass "ethereum:mainnet:node" and that folder as `cwd`. Stopped (SIGTERM)
    on exit unless the test killed it.
    """
    if network is None:
        from ape import chain

        network = chain.provider.uri
    command = [str(TREASURY), "serve", "--store", str(store), "--port", "0", "--network", network, *args]
    if config_path is not None:
        command += ["--config", str(config_path)]
    environment = {**os.environ, **(env or {})}
    if read_token is not None:
        environment["TREASURY_SERVER_TOKEN"] = read_token
    process = subprocess.Popen(command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=drain, daemon=True).start()
    served = ServeProcess(url="", process=process, output=output)
    try:
        served.url = _start_url(lines, process, output, timeout)
        headers = {"Authorization": f"Bearer {read_token}"} if read_token else {}
        _wait(lambda: _answers(served.url, headers), lambda: process.poll() is None, "treasury serve did not answer", timeout)
        yield served
    finally:
        served.stop()


def _start_url(lines: queue.Queue[str], process: subprocess.Popen, output: list[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            if process.poll() is not None and lines.empty():
                break
            continue
        if line.startswith(START_LINE):
            return line[len(START_LINE):].split()[0]
    raise RuntimeError("treasury serve did not start:\n" + "".join(output))


def _answers(url: str, headers: dict[str, str]) -> bool:
    try:
        return requests.get(f"{url}/api/v1/about/", headers=headers, timeout=5).status_code == 200
    except requests.RequestException:
        return False
