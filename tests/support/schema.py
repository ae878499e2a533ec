"""OpenAI's OpenAPI spec as a JSON Schema validator, and the stream rules it cannot express.

The spec is OpenAPI 3.1 but still says `nullable: true` (an OpenAPI 3.0 keyword JSON Schema
ignores); we rewrite it into `"null"` in `type` (or an `anyOf` with `{"type": "null"}` around a
`$ref`), as /work/shared/spec/README.md explains. Loading takes about 2 s: do it once a session.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def _spec_path() -> Path:
    """OpenAI's spec: $SLUICEGATE_OPENAI_SPEC, else ../shared/spec beside the repository (where CI puts it)."""
    if os.environ.get("SLUICEGATE_OPENAI_SPEC"):
        return Path(os.environ["SLUICEGATE_OPENAI_SPEC"])
    beside = Path(__file__).resolve().parents[3] / "shared" / "spec" / "openai-openapi.yaml"
    return beside if beside.exists() else Path("/work/shared/spec/openai-openapi.yaml")


SPEC_PATH = _spec_path()
SPEC_URI = "urn:openai-openapi"

SCHEMAS = (
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "CreateCompletionResponse",
    "CreateEmbeddingResponse",
    "ListModelsResponse",
    "ErrorResponse",
)


def rewrite_nullable(node: Any) -> Any:
    """Return a copy of `node` with every OpenAPI 3.0 `nullable: true` made JSON Schema."""
    if isinstance(node, list):
        return [rewrite_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: rewrite_nullable(value) for key, value in node.items()}
    nullable = out.pop("nullable", None)
    if nullable is not True:
        return out
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
        return out
    if isinstance(kind, list):
        if "null" not in kind:
            out["type"] = [*kind, "null"]
        return out
    # No type: a $ref or a combinator. Allow null beside whatever it is.
    return {"anyOf": [out, {"type": "null"}]}


class SpecValidator:
    """Validates instances against named schemas of the OpenAI spec."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = rewrite_nullable(document)
        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        self.registry: Registry = Registry().with_resource(SPEC_URI, resource)
        self._validators: dict[str, Draft202012Validator] = {}

    @classmethod
    def load(cls, path: Path = SPEC_PATH) -> SpecValidator:
        with open(path, "rb") as f:
            document = yaml.load(f, Loader=yaml.CSafeLoader)
        return cls(document)

    @cached_property
    def schema_names(self) -> frozenset[str]:
        return frozenset(self.document["components"]["schemas"])

    def validator(self, schema_name: str) -> Draft202012Validator:
        found = self._validators.get(schema_name)
        if found is None:
            if schema_name not in self.schema_names:
                raise KeyError(f"no schema {schema_name!r} in the OpenAI spec")
            schema = {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}
            found = Draft202012Validator(schema, registry=self.registry)
            self._validators[schema_name] = found
        return found

    def errors(self, schema_name: str, instance: Any) -> list[ValidationError]:
        return list(self.validator(schema_name).iter_errors(instance))

    def validate(self, schema_name: str, instance: Any) -> Any:
        """Raise AssertionError naming the failing path when `instance` does not match; return it."""
        if isinstance(instance, (bytes, str)):
            instance = orjson.loads(instance)
        errors = self.errors(schema_name, instance)
        if errors:
            raise AssertionError(describe(schema_name, instance, errors))
        return instance


def describe(schema_name: str, instance: Any, errors: list[ValidationError]) -> str:
    best = best_match(errors)
    lines = [
        f"{schema_name}: {len(errors)} schema error(s); most relevant:",
        f"  at {_path(best.absolute_path)}: {best.message}",
    ]
    for error in errors[:5]:
        if error is not best:
            lines.append(f"  at {_path(error.absolute_path)}: {error.message}")
    body = orjson.dumps(instance).decode()
    lines.append(f"  instance: {body[:600]}{'...' if len(body) > 600 else ''}")
    return "\n".join(lines)


def _path(parts: Iterable[Any]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


# -- SSE --------------------------------------------------------------------------------------


def parse_sse(raw: bytes | str) -> list[str]:
    """The `data:` payloads of a server-sent event stream, in order (multi-line data joined)."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    events: list[str] = []
    for block in text.split("\n\n"):
        data = [line[5:].removeprefix(" ") for line in block.split("\n") if line.startswith("data:")]
        if data:
            events.append("\n".join(data))
    return events


def assert_stream(
    events: list[str],
    *,
    include_usage: bool | None = None,
    spec: SpecValidator | None = None,
    schema_name: str = "CreateChatCompletionStreamResponse",
) -> list[dict[str, Any]]:
    """Check a chat completion stream beyond its schema; return the parsed chunks (without [DONE]).

    `events` are the `data:` payloads (see `parse_sse`). The rules clients rely on: the stream
    ends with `[DONE]` and has nothing after it; every chunk has the same `id`; no chunk is an
    `{"error": ...}` event; with `include_usage` the last chunk before `[DONE]` has `choices: []`
    and a `usage`, every other chunk `usage: null` (or absent); without it no chunk has usage.
    With `spec`, every chunk is also validated against `schema_name`.
    """
    assert events, "the stream had no events at all"
    assert events[-1] == "[DONE]", f"the stream does not end with [DONE]; last event: {events[-1][:300]!r}"
    assert events.count("[DONE]") == 1, "the stream has more than one [DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert chunks, "the stream has [DONE] but no chunk"
    for i, chunk in enumerate(chunks):
        assert "error" not in chunk, f"chunk {i} is an error event: {chunk}"
        if spec is not None:
            try:
                spec.validate(schema_name, chunk)
            except AssertionError as exc:
                raise AssertionError(f"chunk {i}: {exc}") from None
    ids = {chunk.get("id") for chunk in chunks}
    assert len(ids) == 1, f"chunks carry different ids: {sorted(map(str, ids))}"
    if include_usage is True:
        last = chunks[-1]
        assert last.get("choices") == [], f"with include_usage the last chunk must have choices []: {last}"
        assert isinstance(last.get("usage"), dict), (
            f"with include_usage the last chunk must have usage: {last}"
        )
        for i, chunk in enumerate(chunks[:-1]):
            assert chunk.get("usage") is None, f"chunk {i} before the usage chunk has usage: {chunk}"
    elif include_usage is False:
        for i, chunk in enumerate(chunks):
            assert chunk.get("usage") is None, f"chunk {i} has usage though include_usage was off: {chunk}"
    return chunks
