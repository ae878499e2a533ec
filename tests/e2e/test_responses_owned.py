"""Responses stored by an upstream serving the Responses API itself belong to the key that made them
(server/responses_owned.py, docs/responses.md).

Two real gateways share one store (SQLite file or PostgreSQL database) and one native stand-in account
that, as OpenAI's, lets any caller read, delete, cancel or continue any stored response. Through the
gateways, key B gets 404 (or 400 for `previous_response_id`) for key A's responses, as for ids that do
not exist, and the stand-in never sees B's request; A reads its own on the other gateway at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from support.agent_upstream import NATIVE_TEXT, AgentUpstream
from support.gateway import Gateway, start_gateway
from support.pg import create_postgres_database, drop_postgres_database
from support.schema import SpecValidator, parse_sse

ALICE = "sk-owned-responses-alice-4d2a"
BOB = "sk-owned-responses-bob-9e71"


@dataclass
class Env:
    native: AgentUpstream
    gateways: list[Gateway]

    def call(
        self, method: str, path: str, key: str, gateway: int = 0, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        return httpx.request(
            method,
            self.gateways[gateway].url + path,
            json=body,
            headers={"authorization": f"Bearer {key}"},
            timeout=30,
        )

    def upstream_paths(self) -> list[str]:
        return [seen.path for seen in self.native.requests]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    native = AgentUpstream(native_responses=True)
    pg_name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('owned-responses') / 'gw.db'}"
    else:
        pg_name, url = create_postgres_database("sg_e2e_owned_responses")
    config = {
        "database": url,
        "keys": [{"key": ALICE, "name": "alice"}, {"key": BOB, "name": "bob"}],
        # the native upstream is the default one: ids the gateway did not keep are relayed to it
        "upstreams": {
            "native": {"base_url": native.url, "api_key": "sk-provider-native", "responses": "native"}
        },
        "models": {"native-model": "native/upstream-native"},
    }
    gateways: list[Gateway] = []
    try:
        gateways = [start_gateway(config), start_gateway(config)]
        yield Env(native, gateways)
    finally:
        for gateway in gateways:
            gateway.stop()
        native.close()
        if pg_name is not None:
            drop_postgres_database(pg_name)


def create(env: Env, key: str = ALICE, **extra: Any) -> str:
    response = env.call("POST", "/v1/responses", key, body={"model": "native-model", "input": "Hi", **extra})
    assert response.status_code == 200, response.text
    if extra.get("stream"):
        events = [orjson.loads(e) for e in parse_sse(response.content)]
        assert events[-1]["type"] == "response.completed"
        return str(events[0]["response"]["id"])
    return str(response.json()["id"])


def assert_not_found(response: httpx.Response, response_id: str) -> None:
    assert response.status_code == 404, response.text
    assert response.json() == {
        "error": {
            "message": f"Response with id '{response_id}' not found.",
            "type": "invalid_request_error",
            "param": "response_id",
            "code": "not_found",
        }
    }


def test_the_maker_reads_its_stored_response_on_either_gateway(env: Env, spec: SpecValidator) -> None:
    response_id = create(env)
    assert response_id in env.native.stored
    for gateway in (0, 1):
        got = env.call("GET", f"/v1/responses/{response_id}", ALICE, gateway)
        assert got.status_code == 200, got.text
        body = spec.validate("Response", got.json())
        assert body["id"] == response_id
        assert body["output"][0]["content"][0]["text"] == NATIVE_TEXT
    items = env.call("GET", f"/v1/responses/{response_id}/input_items", ALICE, 1)
    assert items.status_code == 200, items.text
    assert items.json()["object"] == "list"


@pytest.mark.parametrize("stream", [False, True])
def test_another_key_cannot_read_delete_cancel_or_list_items_of_it(env: Env, stream: bool) -> None:
    response_id = create(env, stream=stream)
    env.native.requests.clear()
    for gateway in (0, 1):
        assert_not_found(env.call("GET", f"/v1/responses/{response_id}", BOB, gateway), response_id)
        assert_not_found(env.call("DELETE", f"/v1/responses/{response_id}", BOB, gateway), response_id)
        assert_not_found(
            env.call("GET", f"/v1/responses/{response_id}/input_items", BOB, gateway), response_id
        )
        assert_not_found(env.call("POST", f"/v1/responses/{response_id}/cancel", BOB, gateway), response_id)
    assert env.upstream_paths() == []  # not one of Bob's requests reached the provider account
    assert response_id in env.native.stored  # and Alice's response is still there
    assert env.call("GET", f"/v1/responses/{response_id}", ALICE, 1).status_code == 200


def test_another_key_cannot_continue_it(env: Env) -> None:
    response_id = create(env)
    env.native.requests.clear()
    body = {"model": "native-model", "input": "And then?", "previous_response_id": response_id}
    refused = env.call("POST", "/v1/responses", BOB, 1, body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "previous_response_not_found"
    assert refused.json()["error"]["param"] == "previous_response_id"
    assert env.upstream_paths() == []
    went = env.call("POST", "/v1/responses", ALICE, 1, body)
    assert went.status_code == 200, went.text
    assert env.native.requests[-1].json["previous_response_id"] == response_id


def test_the_maker_deletes_it_and_the_deletion_is_relayed(env: Env) -> None:
    response_id = create(env)
    deleted = env.call("DELETE", f"/v1/responses/{response_id}", ALICE, 1)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"id": response_id, "object": "response", "deleted": True}
    assert response_id not in env.native.stored


def test_ids_nobody_made_through_the_gateway_are_not_found_for_everyone(env: Env) -> None:
    # made on the provider's account directly (its console, another tool): the gateway knows no owner
    unowned = "resp_made_elsewhere_123"
    env.native.stored[unowned] = {"id": unowned, "object": "response"}
    env.native.requests.clear()
    for key in (ALICE, BOB):
        assert_not_found(env.call("GET", f"/v1/responses/{unowned}", key), unowned)
        body = {"model": "native-model", "input": "x", "previous_response_id": unowned}
        assert env.call("POST", "/v1/responses", key, 0, body).status_code == 400
    assert env.upstream_paths() == []


def test_store_false_records_no_owner_and_the_upstream_kept_nothing(env: Env) -> None:
    before = dict(env.native.stored)
    response = env.call(
        "POST", "/v1/responses", ALICE, body={"model": "native-model", "input": "Hi", "store": False}
    )
    assert response.status_code == 200, response.text
    assert env.native.stored == before
    assert_not_found(env.call("GET", f"/v1/responses/{response.json()['id']}", ALICE), response.json()["id"])


def test_other_post_endpoints_under_responses_are_not_taken_for_ids(env: Env) -> None:
    # POST /v1/responses/input_tokens is OpenAI's token count: relayed as before, not a "stored response"
    response = env.call(
        "POST", "/v1/responses/input_tokens", ALICE, body={"model": "native-model", "input": "Hi"}
    )
    assert "Response with id" not in response.text
    assert env.upstream_paths()[-1] == "/v1/responses/input_tokens"
