"""Shared fixtures: the stand-in upstream, the spec validator, real gateways, SDK clients.

Add fixtures here only if several test packages use them; keep package-specific ones local.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import openai
import pytest
from support.gateway import Core, Gateway, core_config, make_openai_client, start_gateway
from support.schema import SpecValidator
from support.upstream import Upstream


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A fresh stand-in OpenAI-compatible upstream on 127.0.0.1 (see support/upstream.py)."""
    with Upstream() as stand_in:
        yield stand_in


@pytest.fixture
def upstream_factory() -> Iterator[Callable[..., Upstream]]:
    """Make more stand-in upstreams (for failover, several channels); all closed at teardown."""
    made: list[Upstream] = []

    def make(**kwargs: Any) -> Upstream:
        stand_in = Upstream(**kwargs)
        made.append(stand_in)
        return stand_in

    yield make
    for stand_in in made:
        stand_in.close()


@pytest.fixture(scope="session")
def spec() -> SpecValidator:
    """The OpenAI OpenAPI spec as a validator: `spec.validate("CreateChatCompletionResponse", body)`."""
    return SpecValidator.load()


@pytest.fixture
def gateway_factory() -> Iterator[Callable[..., Gateway]]:
    """`gateway_factory(config, *, port=None, env=None, args=(), ...)` starts a real gateway and
    waits for /healthz; every gateway it started is stopped at teardown."""
    started: list[Gateway] = []

    def start(config: Mapping[str, Any] | str, **kwargs: Any) -> Gateway:
        gateway = start_gateway(config, **kwargs)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def openai_client() -> Iterator[Callable[..., openai.OpenAI]]:
    """`openai_client(gateway, key)` returns an `openai.OpenAI` aimed at the gateway; closed at teardown."""
    clients: list[openai.OpenAI] = []

    def make(gateway: Gateway, key: str = "sk-no-key", **kwargs: Any) -> openai.OpenAI:
        client = make_openai_client(gateway, key, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# -- the gateway core over one stand-in upstream, shared by the e2e tests ---------------------------
# A gateway takes seconds to start (fresh SQLite store, migrations, a Granian worker), so the tests
# of the core share one; `core_config` gives each kind of failure its own channel, and `core` resets
# the stand-in before every test, so tests do not see each other.


@pytest.fixture(scope="session")
def core_upstream() -> Iterator[Upstream]:
    with Upstream() as stand_in:
        yield stand_in


@pytest.fixture(scope="session")
def core_gateway(core_upstream: Upstream) -> Iterator[Gateway]:
    """One gateway for the session's core tests; see `core_config`."""
    gateway = start_gateway(core_config(core_upstream.url, core_upstream.root))
    yield gateway
    gateway.stop()


@pytest.fixture
def core(core_gateway: Gateway, core_upstream: Upstream) -> Core:
    """The shared gateway and upstream, with the upstream reset (behaviour ok, no requests)."""
    if not core_gateway.running():
        pytest.fail(
            f"the shared gateway died in an earlier test (exit {core_gateway.process.returncode})\n"
            f"--- stderr ---\n{core_gateway.stderr_text()[-3000:]}",
            pytrace=False,
        )
    core_upstream.reset()
    return Core(core_gateway, core_upstream)
