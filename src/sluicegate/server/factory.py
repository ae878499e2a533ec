"""Building the app in each worker process from the environment the `serve` command prepared.

Granian starts workers as fresh processes that import a target; the command passes the config path and
its overrides through SLUICEGATE_* variables, so every worker builds exactly the same Settings.
"""

from __future__ import annotations

import logging
import os

from sluicegate.config import load_config
from sluicegate.metering.jsonlog import configure_logging
from sluicegate.server.app import Gateway


def create_from_env() -> Gateway:
    """Granian's factory target: `sluicegate.server.factory:create_from_env`."""
    loaded = load_config(os.environ.get("SLUICEGATE_CONFIG") or None)
    settings = loaded.settings
    configure_logging(settings.logging.level, json=settings.logging.json_format)
    # alembic narrates every migration check at INFO on each worker start; keep the log for our own news.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return Gateway(
        settings,
        missing_env=loaded.missing_env,
        require_auth=os.environ.get("SLUICEGATE_REQUIRE_AUTH") == "1",
    )
