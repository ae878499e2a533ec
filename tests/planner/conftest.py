"""Shared fixtures: the bundled catalog, loaded once per test session (it is immutable)."""

from __future__ import annotations

import pytest

from sluicegate.planner.catalog import Catalog, load_catalog
from sluicegate.planner.models import Architecture


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def arch(catalog: Catalog):
    def get(name: str) -> Architecture:
        return Architecture.from_mapping(catalog.model(name).architecture)

    return get
