"""A user can never read or touch another user's keys, usage, logs, ledger, files, batches, uploads or
stored responses, tried through every endpoint that takes an id (issue 18).

Two portal users on two gateways sharing one store (SQLite file and PostgreSQL), each with a key they
made in the portal. Alice makes one of everything; Bob, with his own session and his own key, asks for
each of her objects by id through every /portal/api and /v1 endpoint that names one: each answer is the
answer for an id nobody has (404, or "not found" in a list), her objects are unchanged afterwards, and
nothing of hers (a file name, its content, an answer's text, her key's name) is in anything Bob got.
A user's key and session open nothing of the operator's either.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from support.deployment import ADMIN_KEY, PROVIDER_KEY, wait_until
from support.files_upstream import FilesUpstream, batch_input
from support.gateway import start_gateway
from support.portal_kit import PortalClient, Site, database
from support.upstream import Upstream

SECRET_NAME = "alice-private-notes.jsonl"
SECRET_TEXT = "alice secret words 7f3c"


@dataclass
class Person:
    user_id: str
    portal: PortalClient
    key: str
    key_id: str
    gateway: int

    def v1(self, site: Site) -> openai.OpenAI:
        return openai.OpenAI(api_key=self.key, base_url=f"{site.url}/v1", max_retries=0, timeout=20)


@dataclass
class Env:
    sites: list[Site]
    files: FilesUpstream


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    files_up = FilesUpstream()
    request.addfinalizer(files_up.close)
    with Upstream() as chat_up, database(request.param) as url:
        config = {
            "admin_key": ADMIN_KEY,
            "database": url,
            # The files account is the first (default) upstream: files, uploads and batches go there.
            "upstreams": {
                "acct": {"base_url": f"http://127.0.0.1:{files_up.port}/v1", "api_key": PROVIDER_KEY},
                "up": {"base_url": chat_up.url, "api_key": PROVIDER_KEY},
            },
            "models": {"gpt-4o-mini": "up"},
            "prices": {"gpt-4o-mini": {"input": 2.0, "output": 8.0}},
            "files": {"poll_interval_s": 0.2},
            "metering": {"flush_interval_s": 0.2},
            "server": {"trusted_proxies": ["127.0.0.1/32"]},
            "portal": {"enabled": True, "max_keys_per_user": 3},
        }
        with start_gateway(config) as first, start_gateway(config) as second:
            yield Env([Site(first, url), Site(second, url)], files_up)


def person(env: Env, name: str, gateway: int) -> Person:
    site = env.sites[gateway]
    user_id = site.user(f"{name}-{time.monotonic_ns() % 1_000_000}")
    site.topup(user_id, "10")
    names = site.store(lambda store: store.tenancy.get_user(user_id))
    client = site.client().signed_in(names.name)
    made = client.post("keys", {"name": f"{name}-laptop"})
    assert made.status_code == 201, made.text
    body = made.json()
    return Person(user_id, client, body["key"], body["id"], gateway)


def not_found_like_nobodys(theirs: httpx.Response, nobodys: httpx.Response, real: str, fake: str) -> None:
    assert theirs.status_code == nobodys.status_code == 404, (theirs.text, nobodys.text)
    assert theirs.json() == orjson_replace(nobodys.json(), fake, real)


def orjson_replace(body: Any, old: str, new: str) -> Any:
    if isinstance(body, dict):
        return {k: orjson_replace(v, old, new) for k, v in body.items()}
    if isinstance(body, list):
        return [orjson_replace(v, old, new) for v in body]
    return body.replace(old, new) if isinstance(body, str) else body


def test_every_id_endpoint_answers_another_users_ids_as_nobodys(env: Env) -> None:
    alice, bob = person(env, "alice", 0), person(env, "bob", 1)
    a_site, b_site = env.sites[alice.gateway], env.sites[bob.gateway]
    wait_until(lambda: _loaded(a_site, alice) and _loaded(b_site, bob), timeout=10, what="both keys loaded")
    mine = alice.v1(a_site)

    # Alice makes one of everything.
    secret_file = mine.files.create(file=(SECRET_NAME, batch_input("gpt-4o-mini", 1)), purpose="batch")
    batch = mine.batches.create(
        input_file_id=secret_file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    upload = mine.uploads.create(bytes=3, filename=SECRET_NAME, mime_type="text/plain", purpose="assistants")
    response = mine.responses.create(model="gpt-4o-mini", input=SECRET_TEXT)
    chat = httpx.post(
        f"{a_site.url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": SECRET_TEXT}]},
        headers={"Authorization": f"Bearer {alice.key}"},
        timeout=20,
    )
    assert chat.status_code == 200
    request_id = chat.headers["x-request-id"]
    wait_until(
        lambda: bool(alice.portal.get("logs", request_id=request_id).json()["data"]),
        timeout=15,
        what="Alice's request in her log",
    )

    # Bob asks for each by id, through every /v1 endpoint that names one, on the other gateway.
    seen: list[str] = []

    def v1(method: str, path: str, **kwargs: Any) -> httpx.Response:
        answer = httpx.request(
            method,
            f"{b_site.url}/v1{path}",
            headers={"Authorization": f"Bearer {bob.key}"},
            timeout=20,
            **kwargs,
        )
        seen.append(answer.text)
        return answer

    fakes = {
        secret_file.id: secret_file.id[:-3] + "zzz",
        batch.id: batch.id[:-3] + "zzz",
        upload.id: upload.id[:-3] + "zzz",
        response.id: response.id[:-3] + "zzz",
    }
    by_id = [
        ("GET", "/files/{}", secret_file.id, {}),
        ("GET", "/files/{}/content", secret_file.id, {}),
        ("DELETE", "/files/{}", secret_file.id, {}),
        ("GET", "/batches/{}", batch.id, {}),
        ("POST", "/batches/{}/cancel", batch.id, {}),
        ("POST", "/uploads/{}/parts", upload.id, {"files": {"data": ("p", b"xyz")}}),
        ("POST", "/uploads/{}/complete", upload.id, {"json": {"part_ids": []}}),
        ("POST", "/uploads/{}/cancel", upload.id, {}),
        ("GET", "/responses/{}", response.id, {}),
        ("GET", "/responses/{}/input_items", response.id, {}),
        ("DELETE", "/responses/{}", response.id, {}),
    ]
    for method, template, real, kwargs in by_id:
        theirs = v1(method, template.format(real), **kwargs)
        nobodys = v1(method, template.format(fakes[real]), **kwargs)
        not_found_like_nobodys(theirs, nobodys, real, fakes[real])
    # Her file as a batch's input, and her response as a conversation to continue: refused the same way.
    made = v1(
        "POST",
        "/batches",
        json={
            "input_file_id": secret_file.id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
    )
    assert made.status_code == 404, made.text
    going_on = v1(
        "POST",
        "/responses",
        json={"model": "gpt-4o-mini", "input": "go on", "previous_response_id": response.id},
    )
    assert going_on.status_code == 400 and going_on.json()["error"]["code"] == "previous_response_not_found"
    # Lists: none of hers.
    assert secret_file.id not in v1("GET", "/files").text
    assert batch.id not in v1("GET", "/batches").text

    # Bob's portal: every call that takes an id or could show a row of hers.
    b = bob.portal
    assert b.delete(f"keys/{alice.key_id}").status_code == 404
    assert b.get("logs", request_id=request_id).json()["data"] == []
    seen += [b.get(route).text for route in ("me", "balance", "keys", "usage", "logs")]
    seen.append(b.get("keys", all="1").text)
    ledger_ids = [e["id"] for e in alice.portal.get("balance").json()["ledger"]]
    seen.append(b.get("balance", before=str(max(ledger_ids) + 1)).text)
    assert {e["owner"] for e in b.get("balance").json()["ledger"]} == {f"user:{bob.user_id}"}
    assert {r["key_id"] for r in b.get("logs").json()["data"]} <= {bob.key_id}
    # A user's key and session open nothing of the operator's, nor does the session stand for a key.
    assert (
        httpx.get(f"{b_site.url}/admin/keys", headers={"Authorization": f"Bearer {bob.key}"}).status_code
        == 401
    )
    assert b.http.get("/admin/keys").status_code == 401
    assert b.http.get("/v1/models").status_code == 401

    # Nothing of Alice's reached Bob, and everything of hers is as she left it.
    for text in seen:
        for hers in (SECRET_NAME, SECRET_TEXT, alice.key_id, alice.user_id, request_id, "alice-laptop"):
            assert hers not in text, (hers, text[:300])
    assert mine.files.retrieve(secret_file.id).filename == SECRET_NAME
    assert mine.batches.retrieve(batch.id).status == "validating"
    assert mine.responses.retrieve(response.id).id == response.id
    assert env.files.uploads[upload.id]["status"] == "pending"
    assert alice.portal.get("logs", request_id=request_id).json()["data"][0]["key_id"] == alice.key_id
    assert [k["id"] for k in alice.portal.get("keys").json()["data"]] == [alice.key_id]


def _loaded(site: Site, who: Person) -> bool:
    try:
        who.v1(site).models.list()
    except openai.AuthenticationError:
        return False
    return True
