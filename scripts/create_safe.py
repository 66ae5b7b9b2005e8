"""Create an M-of-N Safe through the canonical proxy factory, at an address predicted beforehand.

    ape run create_safe --owner 0x.. --owner 0x.. --owner 0x.. --threshold 2 [--version 1.4.1]

The same command as `treasury create-safe`.
"""

from treasury.cli import create_safe as cli  # noqa: F401
