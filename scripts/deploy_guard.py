"""Deploy TreasuryGuard from a treasury's configured policy and install it on the Safe.

    ape run deploy_guard --treasury ops --signer alice --signer bob [--account deployer]

The same command as `treasury deploy-guard`.
"""

from treasury.cli import deploy_guard as cli  # noqa: F401
