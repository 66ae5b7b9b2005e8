"""Deploy the Safe contracts (v1.3.0, v1.4.1, v1.5.0) at their canonical addresses where missing.

    ape run deploy [--version 1.4.1 ...] [--account ALIAS] [--allow-noncanonical] [--network ...]

The same command as `treasury deploy`.
"""

from treasury.cli import deploy as cli  # noqa: F401
