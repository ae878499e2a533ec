"""Configuration: the Settings model and its loader (YAML file, ${ENV} substitution, SLUICEGATE_*)."""

from sluicegate.config.load import (
    ConfigError,
    ConfigProblem,
    LoadedConfig,
    default_database_url,
    default_spill_dir,
    load_config,
    load_settings,
)
from sluicegate.config.model import Settings

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "LoadedConfig",
    "Settings",
    "default_database_url",
    "default_spill_dir",
    "load_config",
    "load_settings",
]
