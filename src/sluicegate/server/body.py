"""Reading a request body with a size limit, and finding the model in JSON or multipart bodies."""

from __future__ import annotations

import re
from typing import Any

import orjson

from sluicegate.protocol.errors import BadRequest, BodyTooLarge, InvalidJSON


async def read_body(proto: Any, content_length: str | None, limit: int) -> bytes:
    """The whole body, refusing more than `limit` bytes before reading them when the length is declared."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise BadRequest("Invalid Content-Length header.") from None
        if declared > limit:
            raise BodyTooLarge(f"Request body of {declared} bytes is over the limit of {limit} bytes.")
        return await proto()
    chunks: list[bytes] = []
    size = 0
    async for chunk in proto:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"Request body is over the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


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


_FIELD_RE = re.compile(rb'name="model"\r\n(?:[^\r\n]*\r\n)*\r\n([^\r\n]*)\r\n')


def multipart_model(body: bytes) -> str | None:
    """The `model` form field of a multipart upload (audio), without parsing the whole form.

    The upload itself is forwarded byte for byte; only the model name is needed to route it.
    """
    m = _FIELD_RE.search(body)
    if m is None:
        return None
    try:
        return m.group(1).decode()
    except UnicodeDecodeError:
        return None
