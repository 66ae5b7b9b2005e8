"""Where an anvil the tool starts itself listens: a port the kernel says is free.

ape-foundry's `host: auto` draws a random port from 49152-60999 without asking whether it is taken.
That range is also where the kernel puts the local end of outgoing connections, so on a busy machine
the draw sometimes hits a port in use: anvil cannot bind, and ape gives up after a fixed 20 s wait.
If the port belongs to another anvil, ape quietly talks to that one instead. Binding port 0 lets
the kernel pick a port nothing holds.
"""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A loopback TCP port no socket holds right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def free_local_url() -> str:
    """The JSON-RPC URL for an anvil about to be started on a free loopback port."""
    return f"http://{LOOPBACK}:{free_port()}"
