"""JSON log lines: one object per line, extra fields kept, keys never printed."""

from __future__ import annotations

import io
import logging

import orjson

from sluicegate.metering.jsonlog import JsonFormatter, configure_logging


def emit(logger_name: str, msg: str, *args: object, **extra: object) -> dict:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.info(msg, *args, extra=extra)
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    return orjson.loads(lines[0])


def test_a_record_is_one_json_object_with_ts_level_logger_msg_and_extras() -> None:
    doc = emit("sluicegate.test", "upstream %s answered %d", "groq", 200, request_id="req-1", latency_ms=12.5)
    assert doc["level"] == "info"
    assert doc["logger"] == "sluicegate.test"
    assert doc["msg"] == "upstream groq answered 200"
    assert doc["request_id"] == "req-1" and doc["latency_ms"] == 12.5
    assert doc["ts"].endswith("+00:00")


def test_a_provider_key_in_the_message_is_scrubbed() -> None:
    doc = emit("sluicegate.test", "calling with key %s", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv")
    assert "sk-proj" not in orjson.dumps(doc).decode()
    assert doc["msg"] == "calling with key [REDACTED]"


def test_a_bearer_token_in_an_extra_field_is_scrubbed() -> None:
    doc = emit("sluicegate.test", "headers", authorization="Bearer abcdefghijklmnop", note="ok")
    assert doc["authorization"] == "[REDACTED]"
    assert doc["note"] == "ok"


def test_exceptions_are_included_and_scrubbed() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("sluicegate.test.exc")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        raise ValueError("bad key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx")
    except ValueError:
        logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    doc = orjson.loads(stream.getvalue())
    assert "ValueError" in doc["exc"] and "sk-ant" not in doc["exc"]


def test_unserialisable_extras_are_logged_by_repr() -> None:
    doc = emit("sluicegate.test", "x", obj={1, 2} and object())
    assert doc["obj"].startswith("<object object")


def test_configure_logging_replaces_its_own_handler_instead_of_stacking() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        configure_logging("info", json=True, stream=stream)
        configure_logging("info", json=True, stream=stream)
        logging.getLogger("jsonlog_cfg_test").info("once")
        assert stream.getvalue().count('"msg":"once"') == 1
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)
