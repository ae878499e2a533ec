"""Building the app in each worker process from the environment the `serve` command prepared.

Granian starts workers as fresh processes that import a target; the command passes the config path and
its overrides through SLUICEGATE_* variables, so every worker builds exactly the same Settings.
"""

from __future__ import annotations

import logging
import os
import sys

from sluicegate.config import load_config
from sluicegate.server.app import Gateway


def configure_logging(level: str, json_format: bool) -> None:
    root = logging.getLogger()
    root.setLevel(level.upper())
    if json_format:
        try:
            from sluicegate.metering.jsonlog import JsonFormatter
        except ImportError:  # pragma: no cover - metering always ships; guard keeps logging alive
            JsonFormatter = None  # type: ignore[assignment,misc]  # noqa: N806
        if JsonFormatter is not None:
            handler = logging.StreamHandler(sys.stdout)  # JSON lines go to stdout, for log shippers
            handler.setFormatter(JsonFormatter())
            root.handlers[:] = [handler]
            return
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)


def create_from_env() -> Gateway:
    """Granian's factory target: `sluicegate.server.factory:create_from_env`."""
    loaded = load_config(os.environ.get("SLUICEGATE_CONFIG") or None)
    settings = loaded.settings
    configure_logging(settings.logging.level, settings.logging.json_format)
    return Gateway(settings, missing_env=loaded.missing_env,
                   require_auth=os.environ.get("SLUICEGATE_REQUIRE_AUTH") == "1")
