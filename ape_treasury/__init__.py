"""ape plugin registration: ape imports `ape_<name>` for a distribution named `ape-<name>`.

Registers the `treasury:` config section; the `ape treasury` command is registered through the
`ape_cli_subcommands` entry point and lives in `treasury.cli`.
"""

from ape import plugins


@plugins.register(plugins.Config)
def config_class():
    from treasury.config import TreasuryConfig

    return TreasuryConfig
