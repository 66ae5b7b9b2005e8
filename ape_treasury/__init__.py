"""ape plugin registration: ape imports `ape_<name>` for a distribution named `ape-<name>`.

Registers the `treasury:` config section; the `ape treasury` command is registered through the
`ape_cli_subcommands` entry point and lives in `treasury.cli`.

The section's model is `treasury.config.TreasuryConfig`, plain pydantic so that the store-only
commands can load it without ape. ape wants a `PluginConfig`, so this module gives it one: the same
model, fed through the same APE_TREASURY_* overrides (`TreasuryConfig.from_section`), so
`ape.config.get_config("treasury")` and `treasury.config.load_config()` always agree.
"""

from __future__ import annotations

from pathlib import Path

from ape import plugins
from ape.api.config import PluginConfig
from ape.exceptions import ConfigError
from pydantic_settings import SettingsConfigDict

from treasury.config import TreasuryConfig
from treasury.errors import InvalidInput


class ApeTreasuryConfig(TreasuryConfig, PluginConfig):
    """`TreasuryConfig` as ape's plugin config for the `treasury:` section of ape-config.yaml."""

    model_config = SettingsConfigDict(extra="forbid", env_prefix="APE_TREASURY_")

    @classmethod
    def from_overrides(cls, overrides: dict, plugin_name: str | None = None,
                       project_path: Path | None = None) -> ApeTreasuryConfig:
        """ape's merged `treasury:` data, validated like `load_config` (the environment wins over files)."""
        try:
            return cls.from_section(overrides)
        except InvalidInput as error:
            raise ConfigError(str(error)) from None


@plugins.register(plugins.Config)
def config_class():
    return ApeTreasuryConfig
