"""ResponsesRepository on SQLite and PostgreSQL: kept Responses state, per key, until it expires."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluicegate.store import Store

if TYPE_CHECKING:
    from conftest import Clock

DAY = 86400.0


def response(rid: str) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "status": "completed",
        "output": [{"type": "message", "id": "m"}],
    }


ITEMS = [{"type": "message", "role": "user", "content": "Hi"}, {"type": "message", "id": "m"}]


async def test_a_saved_response_loads_back_whole(store: Store) -> None:
    await store.responses.save("key_a", response("resp_1"), ITEMS, 30 * DAY)
    assert await store.responses.load("key_a", "resp_1") == {"response": response("resp_1"), "items": ITEMS}


async def test_another_keys_response_is_not_found(store: Store) -> None:
    await store.responses.save("key_a", response("resp_1"), ITEMS, 30 * DAY)
    assert await store.responses.load("key_b", "resp_1") is None
    assert await store.responses.delete("key_b", "resp_1") is False
    assert await store.responses.load("key_a", "resp_1") is not None


async def test_an_expired_response_is_not_found_and_is_purged(store: Store, clock: Clock) -> None:
    await store.responses.save("key_a", response("resp_old"), ITEMS, 1 * DAY)
    await store.responses.save("key_a", response("resp_new"), ITEMS, 30 * DAY)
    clock.advance(2 * DAY)
    assert await store.responses.load("key_a", "resp_old") is None
    assert await store.responses.purge_expired() == 1
    assert await store.responses.load("key_a", "resp_new") is not None


async def test_delete_removes_the_response(store: Store) -> None:
    await store.responses.save("key_a", response("resp_1"), ITEMS, 30 * DAY)
    assert await store.responses.delete("key_a", "resp_1") is True
    assert await store.responses.load("key_a", "resp_1") is None
