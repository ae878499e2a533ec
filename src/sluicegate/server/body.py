"""Reading a request body with a size limit, and finding the model in JSON or multipart bodies."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from sluicegate.protocol.content import JSON, MULTIPART, body_kind, header_param
from sluicegate.protocol.errors import BadRequest, BodyTooLarge, InvalidJSON, RequestTimeout
from sluicegate.protocol.multipart import form_field
from sluicegate.server.deadlines import BodyDeadlines


async def read_body(
    proto: Any, content_length: str | None, limit: int, deadlines: BodyDeadlines | None = None
) -> bytes:
    """The whole body, refusing more than `limit` bytes (before reading them when the length is declared),
    and, with `deadlines`, a client too slow in sending it (408).

    Without deadlines a client sending one byte a minute holds its connection (and its key's concurrency
    slot) for ever. A declared length ends the read at its last byte, without waiting for the stream's
    end; a body that ends short of it is refused rather than forwarded truncated.
    """
    declared: int | None = None
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise BadRequest("Invalid Content-Length header.") from None
        if declared > limit:
            raise BodyTooLarge(f"Request body of {declared} bytes is over the limit of {limit} bytes.")
        if declared == 0:
            return b""
    chunks: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    entry = deadlines.watch(task, loop.time()) if deadlines is not None and task is not None else None
    try:
        async for chunk in proto:
            if not chunk:
                continue
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"Request body is over the limit of {limit} bytes.")
            chunks.append(chunk)
            if size == declared:
                break
            if entry is not None:
                entry[1] = loop.time() + entry[3]
    except asyncio.CancelledError:
        if entry is None or not entry[2] or task is None:
            raise
        task.uncancel()
        raise RequestTimeout(
            f"The request body was not received in time (all of it within {entry[4]:g} s, "
            f"with no pause over {entry[3]:g} s).",
            headers={"connection": "close"},
        ) from None
    finally:
        if entry is not None and deadlines is not None and task is not None:
            deadlines.done(task)
    if declared is not None and size != declared:
        raise BadRequest(
            f"The request body ended after {size} of the {declared} bytes its Content-Length declared.",
            headers={"connection": "close"},
        )
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise InvalidJSON("The request body is empty; expected a JSON object.")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"The request body is not valid JSON: {exc.msg} at position {exc.pos}.") from None
    if not isinstance(payload, dict):
        raise InvalidJSON("The request body must be a JSON object.")
    return payload


def body_model(
    content_type: str, body: bytes, json_expected: bool
) -> tuple[dict[str, Any] | None, str | None]:
    """(the JSON payload when the body is JSON, the model it names or None).

    JSON is read whenever an upstream would read it as JSON (see protocol/content.py), and always on
    endpoints that take only JSON (`json_expected`); the model of a multipart upload comes from its
    form field. None means the gateway could not determine a model: absent, unreadable or ambiguous.
    """
    if not body:
        return None, None
    kind = body_kind(content_type, body)
    if kind == MULTIPART:
        boundary = header_param(content_type, "boundary")
        value = form_field(body, boundary or "", "model")
        return None, value if isinstance(value, str) else None
    if kind != JSON and not json_expected:
        return None, None
    payload = parse_json_object(body)
    model = payload.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequest("'model' must be a string.", param="model")
    return payload, model
