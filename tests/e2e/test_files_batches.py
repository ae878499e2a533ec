"""Files, uploads and batches belong to the key that made them (docs/files-and-batches.md).

Two real gateways share one store (SQLite file or PostgreSQL database) and one stand-in provider account
(tests/support/files_upstream.py) where every object is visible to every caller, as on OpenAI's. Through
the gateway, key B can neither see nor touch key A's objects (404, as for an id that does not exist),
lists show only one's own, and a finished batch is charged to its owner once although both gateways poll.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openai
import pytest
from support.deployment import wait_until
from support.files_upstream import COMPLETION, PROMPT, FilesUpstream, batch_input
from support.gateway import Gateway, start_gateway
from support.pg import create_postgres_database, drop_postgres_database

KEY_A = "sk-files-key-a-0123456789"
KEY_B = "sk-files-key-b-0123456789"
KEY_C = "sk-files-key-c-0123456789"  # held to gpt-4o-mini
PROVIDER_KEY = "sk-provider-files-secret-42"
ADMIN_KEY = "admin-files-0123456789abcdef"
PRICE_IN, PRICE_OUT = 2.0, 8.0  # per million tokens


@dataclass
class Env:
    upstream: FilesUpstream
    gateways: list[Gateway]
    database_url: str

    def client(self, key: str, gateway: int = 0) -> openai.OpenAI:
        return openai.OpenAI(api_key=key, base_url=self.gateways[gateway].base_url, max_retries=0, timeout=20)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.database_url.startswith("sqlite"):
            with sqlite3.connect(self.database_url.removeprefix("sqlite:///")) as conn:
                return list(conn.execute(sql).fetchall())

        async def read() -> list[tuple[Any, ...]]:
            conn = await asyncpg.connect(self.database_url)
            try:
                return [tuple(r) for r in await conn.fetch(sql)]
            finally:
                await conn.close()

        return asyncio.run(read())


def config(upstream: FilesUpstream, database_url: str, **files: Any) -> dict[str, Any]:
    return {
        "database": database_url,
        "keys": [
            {"key": KEY_A, "name": "alice"},
            {"key": KEY_B, "name": "bob"},
            {"key": KEY_C, "name": "carol", "models": ["gpt-4o-mini"]},
        ],
        "upstreams": {"acct": {"base_url": f"http://127.0.0.1:{upstream.port}/v1", "api_key": PROVIDER_KEY}},
        "models": {"gpt-4o-mini": "acct"},
        "prices": {"gpt-4o-mini": {"input": PRICE_IN, "output": PRICE_OUT}},
        "admin_key": ADMIN_KEY,
        "files": {"poll_interval_s": 0.2, **files},
        "metering": {"flush_interval_s": 0.2},
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    upstream = FilesUpstream()
    pg_name = None
    gateways: list[Gateway] = []
    try:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('files') / 'sluicegate.db'}"
        else:
            pg_name, url = create_postgres_database("sg_e2e_files")
        for _ in range(2):
            gateways.append(start_gateway(config(upstream, url)))
        yield Env(upstream, gateways, url)
    finally:
        for gw in gateways:
            gw.stop()
        upstream.close()
        if pg_name is not None:
            drop_postgres_database(pg_name)
    for gw in gateways:
        assert PROVIDER_KEY not in gw.logs()


def upload(client: openai.OpenAI, name: str, content: bytes = b'{"x": 1}\n', purpose: str = "batch") -> Any:
    return client.files.create(file=(name, content), purpose=purpose)  # type: ignore[arg-type]


def test_the_openai_sdk_works_on_files_uploads_and_batches(env: Env) -> None:
    alice = env.client(KEY_A)
    created = upload(alice, "input.jsonl", batch_input("gpt-4o-mini", 2))
    assert created.id.startswith("file-") and created.purpose == "batch"
    assert alice.files.retrieve(created.id).filename == "input.jsonl"
    assert alice.files.content(created.id).content == batch_input("gpt-4o-mini", 2)
    # Another gateway (another process: its own cache) knows the owner from the store.
    assert env.client(KEY_A, 1).files.retrieve(created.id).id == created.id
    batch = alice.batches.create(
        input_file_id=created.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "validating"
    assert alice.batches.retrieve(batch.id).input_file_id == created.id
    assert batch.id in [b.id for b in alice.batches.list()]
    up = alice.uploads.create(bytes=6, filename="notes.txt", mime_type="text/plain", purpose="assistants")
    part1 = alice.uploads.parts.create(upload_id=up.id, data=b"abc")
    part2 = alice.uploads.parts.create(upload_id=up.id, data=b"def")
    done = alice.uploads.complete(upload_id=up.id, part_ids=[part1.id, part2.id])
    assert done.status == "completed" and done.file is not None
    assert alice.files.content(done.file.id).content == b"abcdef"  # the upload's file is hers too
    assert done.file.id in [f.id for f in alice.files.list()]
    cancelled = alice.batches.cancel(batch.id)
    assert cancelled.status == "cancelled"
    deleted = alice.files.delete(done.file.id)
    assert deleted.deleted is True
    assert done.file.id not in [f.id for f in alice.files.list()]
    with pytest.raises(openai.NotFoundError):
        alice.files.retrieve(done.file.id)


def test_another_keys_objects_answer_404_like_ids_that_do_not_exist(env: Env) -> None:
    alice, bob = env.client(KEY_A), env.client(KEY_B, 1)
    secret_file = upload(alice, "alice.jsonl", batch_input("gpt-4o-mini", 1))
    batch = alice.batches.create(
        input_file_id=secret_file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    up = alice.uploads.create(bytes=3, filename="a.txt", mime_type="text/plain", purpose="assistants")
    attempts = [
        lambda: bob.files.retrieve(secret_file.id),
        lambda: bob.files.content(secret_file.id),
        lambda: bob.files.delete(secret_file.id),
        lambda: bob.batches.retrieve(batch.id),
        lambda: bob.batches.cancel(batch.id),
        lambda: bob.batches.create(
            input_file_id=secret_file.id, endpoint="/v1/chat/completions", completion_window="24h"
        ),
        lambda: bob.uploads.parts.create(upload_id=up.id, data=b"xyz"),
        lambda: bob.uploads.complete(upload_id=up.id, part_ids=[]),
        lambda: bob.uploads.cancel(up.id),
    ]
    for attempt in attempts:
        with pytest.raises(openai.NotFoundError) as caught:
            attempt()
        error = caught.value.response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error"
    # The answer for someone else's id is the answer for an id nobody has.
    for path in (f"/files/{secret_file.id}", f"/batches/{batch.id}"):
        theirs = httpx.get(env.gateways[0].base_url + path, headers={"Authorization": f"Bearer {KEY_B}"})
        fake_id = path.rsplit("/", 1)[1][:-3] + "zzz"
        nobody = httpx.get(
            env.gateways[0].base_url + path.replace(path.rsplit("/", 1)[1], fake_id),
            headers={"Authorization": f"Bearer {KEY_B}"},
        )
        assert theirs.status_code == nobody.status_code == 404
        assert theirs.json()["error"]["message"].replace(path.rsplit("/", 1)[1], "ID") == nobody.json()[
            "error"
        ]["message"].replace(fake_id, "ID")
    # Nothing was done to Alice's objects.
    assert env.upstream.batches[batch.id]["status"] == "validating"
    assert secret_file.id in env.upstream.files
    assert alice.files.retrieve(secret_file.id).id == secret_file.id


def test_lists_show_only_ones_own_objects_page_by_page(env: Env) -> None:
    alice, bob = env.client(KEY_A), env.client(KEY_B)
    mine = [upload(alice, f"mine-{i}.jsonl", purpose="fine-tune").id for i in range(5)]
    theirs = [upload(bob, f"theirs-{i}.jsonl", purpose="fine-tune").id for i in range(3)]
    # Auto-pagination with pages of 2 follows the gateway's cursors: Alice's five, newest first.
    alice_ids = [f.id for f in alice.files.list(purpose="fine-tune", limit=2)]
    assert alice_ids == list(reversed(mine))
    bob_ids = [f.id for f in bob.files.list(purpose="fine-tune", limit=2)]
    assert bob_ids == list(reversed(theirs))
    asc = [f.id for f in alice.files.list(purpose="fine-tune", order="asc", limit=3)]
    assert asc == mine
    page = httpx.get(
        env.gateways[1].base_url + "/files",
        params={"purpose": "fine-tune", "limit": 2},
        headers={"Authorization": f"Bearer {KEY_A}"},
    ).json()
    assert page["has_more"] is True and page["first_id"] == mine[-1] and page["last_id"] == mine[-2]
    # A cursor that is someone else's id shows nothing, not what follows it.
    assert [f.id for f in alice.files.list(after=theirs[0])] == []
    # Batches too: each sees exactly the batches it created, though the account holds both.
    bobs_input = upload(bob, "bob.jsonl", batch_input("gpt-4o-mini", 1))
    bobs = bob.batches.create(
        input_file_id=bobs_input.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    every_batch = {b.id for b in bob.batches.list()}
    assert bobs.id in every_batch
    assert all(env.upstream.batches[b]["input_file_id"] in {bobs_input.id} for b in every_batch)
    assert bobs.id not in {b.id for b in alice.batches.list()}


def test_a_finished_batch_is_charged_to_its_owner_once_with_two_gateways_polling(env: Env) -> None:
    alice, bob = env.client(KEY_A, 1), env.client(KEY_B)
    requests = 3
    input_file = upload(alice, "work.jsonl", batch_input("gpt-4o-mini", requests))
    batch = alice.batches.create(
        input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    env.upstream.finish(batch.id)

    def charged() -> list[tuple[Any, ...]]:
        return env.rows(
            f"SELECT prompt_tokens, completion_tokens, cost, currency, charged_at FROM owned_objects "
            f"WHERE id = '{batch.id}' AND charged_at IS NOT NULL"
        )

    wait_until(lambda: bool(charged()), timeout=30, what="the batch charged")
    prompt, completion, cost, currency, _ = charged()[0]
    assert (prompt, completion) == (requests * PROMPT, requests * COMPLETION)
    expected = (requests * PROMPT * PRICE_IN + requests * COMPLETION * PRICE_OUT) / 1e6 * 0.5
    assert cost == pytest.approx(expected) and currency == "USD"

    def logged() -> list[tuple[Any, ...]]:
        return env.rows(
            "SELECT key_id, endpoint, model_served, prompt_tokens, completion_tokens, cost FROM request_logs "
            f"WHERE request_id = '{batch.id}'"
        )

    wait_until(lambda: bool(logged()), timeout=10, what="the batch's usage logged")
    # Both gateways keep polling: the charge stays one row, one day's aggregate.
    wait_until(lambda: env.upstream.gets[f"/v1/batches/{batch.id}"] >= 1, timeout=5)
    time.sleep(1.5)  # several more polls of both gateways
    assert logged() == [
        ("cfg-alice", "/v1/batches", "gpt-4o-mini", requests * PROMPT, requests * COMPLETION, expected)
    ]
    daily = env.rows(
        "SELECT SUM(prompt_tokens), SUM(cost) FROM usage_daily WHERE key_id = 'cfg-alice' AND model = 'gpt-4o-mini'"
    )
    assert daily[0][0] >= requests * PROMPT
    # The operator sees the batch, its owner and its charge.
    seen = httpx.get(
        env.gateways[0].url + "/admin/objects",
        params={"key": "cfg-alice", "kind": "batch"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ).json()["data"]
    mine = next(o for o in seen if o["id"] == batch.id)
    assert mine["key_id"] == "cfg-alice" and mine["cost"] == pytest.approx(expected)
    assert mine["object"]["status"] == "completed" and mine["charged_at"] is not None
    # The output file is Alice's: readable by her, not found for Bob.
    output = alice.batches.retrieve(batch.id).output_file_id
    assert output is not None
    lines = alice.files.content(output).content.splitlines()
    assert len(lines) == requests
    with pytest.raises(openai.NotFoundError):
        bob.files.content(output)
    with pytest.raises(openai.NotFoundError):
        bob.files.retrieve(output)


def test_a_batch_cannot_reach_models_its_key_may_not_use(env: Env) -> None:
    carol = env.client(KEY_C)
    lines = batch_input("gpt-4o-mini", 2) + batch_input("gpt-4o", 1)
    smuggled = upload(carol, "smuggle.jsonl", lines)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        carol.batches.create(
            input_file_id=smuggled.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    error = caught.value.response.json()["error"]
    assert error["code"] == "model_not_allowed" and error["message"].startswith("Line 3 ")
    allowed = upload(carol, "fine.jsonl", batch_input("gpt-4o-mini", 2))
    batch = carol.batches.create(
        input_file_id=allowed.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "validating"


def test_the_providers_refusal_of_the_gateways_key_is_not_blamed_on_the_client(env: Env) -> None:
    env.upstream.refuse_key = PROVIDER_KEY
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            upload(env.client(KEY_A), "x.jsonl")
    finally:
        env.upstream.refuse_key = None
    assert caught.value.status_code == 502
    assert caught.value.response.json()["error"]["code"] == "upstream_auth_error"


def test_endpoints_the_gateway_cannot_attribute_are_refused(env: Env) -> None:
    answer = httpx.get(
        env.gateways[0].base_url + "/vector_stores", headers={"Authorization": f"Bearer {KEY_A}"}
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "endpoint_not_isolated"
    assert ("GET", "/v1/vector_stores") not in env.upstream.received


def test_shared_endpoints_can_be_relayed_when_the_operator_says_so(tmp_path: Path) -> None:
    upstream = FilesUpstream()
    try:
        with start_gateway(
            config(upstream, f"sqlite:///{tmp_path / 'db.sqlite'}", shared_endpoints="relay")
        ) as gw:
            answer = httpx.get(gw.base_url + "/vector_stores", headers={"Authorization": f"Bearer {KEY_A}"})
            assert answer.status_code == 200 and answer.json()["object"] == "list"
            assert ("GET", "/v1/vector_stores") in upstream.received
    finally:
        upstream.close()


def ancestors(pid: int) -> list[int]:
    """`pid` and the processes above it (a gateway's worker is a child of its `serve` process)."""
    chain = [pid]
    while pid > 1:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        pid = next(int(line.split()[1]) for line in status if line.startswith("PPid:"))
        chain.append(pid)
    return chain


def test_when_the_polling_gateway_stops_another_takes_the_lease_and_charges(tmp_path: Path) -> None:
    upstream = FilesUpstream()
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    env = Env(upstream, [], url)
    try:
        env.gateways.extend(start_gateway(config(upstream, url, lease_ttl_s=1)) for _ in range(2))
        wait_until(lambda: bool(env.rows("SELECT holder FROM leases")), timeout=10, what="a lease taken")
        holder_pid = int(env.rows("SELECT holder FROM leases")[0][0].split(":")[1])
        holding = next(g for g in env.gateways if g.pid in ancestors(holder_pid))
        other = next(g for g in env.gateways if g is not holding)
        holding.stop()
        alice = openai.OpenAI(api_key=KEY_A, base_url=other.base_url, max_retries=0, timeout=20)
        batch = alice.batches.create(
            input_file_id=upload(alice, "in.jsonl", batch_input("gpt-4o-mini", 2)).id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
        )
        upstream.finish(batch.id)
        wait_until(
            lambda: bool(
                env.rows(f"SELECT 1 FROM owned_objects WHERE id = '{batch.id}' AND charged_at IS NOT NULL")
            ),
            timeout=20,
            what="the batch charged by the gateway left running",
        )
        assert int(env.rows("SELECT holder FROM leases")[0][0].split(":")[1]) != holder_pid
    finally:
        for gw in env.gateways:
            gw.stop()
        upstream.close()


def test_a_batch_of_a_users_key_is_charged_to_their_balance_once(env: Env) -> None:
    def admin(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = httpx.request(
            method, env.gateways[0].url + path, json=body, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        assert answer.status_code < 300, answer.text
        return answer.json()

    user = admin("POST", "/admin/users", {"name": f"batcher-{time.time_ns()}"})
    admin("POST", f"/admin/balances/{user['id']}/topup", {"amount": 10, "reason": "batch work"})
    key = admin("POST", "/admin/keys", {"name": f"batch-key-{time.time_ns()}", "user_id": user["id"]})["key"]
    client = env.client(key)
    wait_until(lambda: _loaded(env, key), timeout=10, what="the key on the first gateway")
    input_file = upload(client, "work.jsonl", batch_input("gpt-4o-mini", 2))
    batch = client.batches.create(
        input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    env.upstream.finish(batch.id)

    def charges() -> list[Any]:
        ledger = admin("GET", f"/admin/balances/{user['id']}")["ledger"]
        return [e for e in ledger if e["kind"] == "charge"]

    wait_until(lambda: bool(charges()), timeout=30, what="the batch's charge in the ledger")
    time.sleep(1.0)  # both gateways keep polling: still one charge
    (charge,) = charges()
    expected = round((2 * PROMPT * PRICE_IN + 2 * COMPLETION * PRICE_OUT) * 0.5)  # micro-USD: price per 1M
    assert charge["request_id"] == batch.id and charge["amount_micro"] == -expected
    shown = admin("GET", f"/admin/balances/{user['id']}")
    assert shown["balance_micro"] == 10_000_000 - expected == sum(e["amount_micro"] for e in shown["ledger"])


def _loaded(env: Env, key: str) -> bool:
    try:
        env.client(key).models.list()
    except openai.AuthenticationError:
        return False
    return True
