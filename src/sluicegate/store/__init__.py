"""The store: managed keys, the request log and usage aggregates, in SQLite or PostgreSQL.

`Store.open(url)` is the entry point. The names are loaded lazily so that modules needing only
the plain records (`sluicegate.store.records`, used on the request path) do not pull in
SQLAlchemy and alembic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluicegate.store.facade import Store
    from sluicegate.store.keyfields import InvalidKeyField
    from sluicegate.store.keys import KeyNotFound, KeyRepository, KeyRevoked
    from sluicegate.store.migrate import upgrade
    from sluicegate.store.secrets import hash_key, key_prefix
    from sluicegate.store.usage import LogEntry, Spent, UsageRepository

_EXPORTS = {
    "Store": "sluicegate.store.facade",
    "KeyRepository": "sluicegate.store.keys",
    "KeyNotFound": "sluicegate.store.keys",
    "KeyRevoked": "sluicegate.store.keys",
    "InvalidKeyField": "sluicegate.store.keyfields",
    "UsageRepository": "sluicegate.store.usage",
    "LogEntry": "sluicegate.store.usage",
    "Spent": "sluicegate.store.usage",
    "upgrade": "sluicegate.store.migrate",
    "hash_key": "sluicegate.store.secrets",
    "key_prefix": "sluicegate.store.secrets",
}

__all__ = [
    "InvalidKeyField",
    "KeyNotFound",
    "KeyRepository",
    "KeyRevoked",
    "LogEntry",
    "Spent",
    "Store",
    "UsageRepository",
    "hash_key",
    "key_prefix",
    "upgrade",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sluicegate.store' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
