"""docs/configuration.md documents every field of the Settings model (so the docs stay true)."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from sluicegate.config.model import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def field_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        path = prefix + (field.alias or name)
        yield path
        for t in (field.annotation, *typing.get_args(field.annotation)):
            for inner in (t, *typing.get_args(t)):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    yield from field_paths(inner, path + ".")


def test_every_settings_field_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [p for p in field_paths(Settings) if f"`{p}`" not in text and f"`{p}." not in text]
    assert not missing, f"fields missing from docs/configuration.md: {missing}"
