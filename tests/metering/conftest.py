from __future__ import annotations

import pytest

from sluicegate.metering.tokens import TokenCounter


@pytest.fixture(scope="session")
def counter() -> TokenCounter:
    """One tokenizer for the whole run: loading o200k takes most of a second."""
    counter = TokenCounter()
    counter.warm()
    return counter
