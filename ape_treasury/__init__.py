"""ape plugin shim: ape imports `ape_<name>` for a distribution named `ape-<name>`.

The `ape treasury` command itself is registered through the `ape_cli_subcommands` entry point
and lives in `treasury.cli`; this package only lets ape's plugin loader find us.
"""
