"""Structured logs: one JSON object per line on stdout, for log shippers (`logging.json: true`).

A gateway holds provider keys and sees client keys, so a log line must never carry one, whoever
wrote the logging call. The formatter masks anything that looks like a key or a bearer token in the
finished line, as a last line of defence behind the code's own care.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from sluicegate.metering.redact import Redactor

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName"}
)


def _default(value: Any) -> str:
    return repr(value)


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", ...extra fields, "exc"}` on one line, secrets masked."""

    def __init__(self, extra_patterns: tuple[str, ...] = ()) -> None:
        super().__init__()
        # Keys and tokens only: e-mail addresses in logs are often wanted (an owner, an admin).
        self._redactor = Redactor(extra_patterns, mask_emails=False)

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        line = orjson.dumps(doc, default=_default).decode("utf-8")
        return self._redactor.scrub(line)


def configure_logging(
    level: str = "info", *, json: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """Install one stdout handler on the root logger (plain text, or JSON lines); return it.

    Called once by the app factory or the CLI from the `logging:` settings; replaces handlers a
    previous call installed so tests and reloads don't duplicate lines.
    """
    handler = logging.StreamHandler(stream or sys.stdout)
    if json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.set_name("sluicegate")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "sluicegate":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
