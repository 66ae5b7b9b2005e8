"""ape-treasury: run a multisig treasury on a Safe from ape.

Kept import-light on purpose: the CLI's `--help` must not pay for importing ape or web3.
"""

__version__ = "0.1.0"
