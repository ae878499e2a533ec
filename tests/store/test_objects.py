"""The owner records of files and batches, the batch charge flag and the poller's lease, on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sluicegate.store import Store
from sluicegate.store.owned import BATCH, DELETED, FILE, Owner
from sluicegate.store.records import RequestRecord

if TYPE_CHECKING:
    from conftest import Clock

ALICE = Owner("key-a", user_id="u-1", team_id="t-1")
BOB = Owner("key-b")


async def test_the_first_owner_recorded_stays(store: Store) -> None:
    assert await store.objects.record(FILE, "file-1", "acct", ALICE, {"id": "file-1"}, state="processed")
    assert not await store.objects.record(FILE, "file-1", "acct", BOB, {"id": "file-1"})
    found = await store.objects.find("file-1")
    assert found is not None
    assert (found.kind, found.channel, found.owner, found.state) == (FILE, "acct", ALICE, "processed")
    assert await store.objects.find("file-2") is None


async def test_pages_hold_only_the_owners_objects_and_follow_its_cursors(store: Store, clock: Clock) -> None:
    for i in range(5):
        clock.advance(1)
        await store.objects.record(FILE, f"a-{i}", "acct", ALICE, {"id": f"a-{i}"}, purpose="batch")
        await store.objects.record(FILE, f"b-{i}", "acct", BOB, {"id": f"b-{i}"}, purpose="batch")
    await store.objects.record(FILE, "a-other", "acct", ALICE, {"id": "a-other"}, purpose="fine-tune")
    page, more = await store.objects.page("key-a", FILE, limit=2, purpose="batch")
    assert [o["id"] for o in page] == ["a-4", "a-3"] and more
    page, more = await store.objects.page("key-a", FILE, limit=2, after="a-3", purpose="batch")
    assert [o["id"] for o in page] == ["a-2", "a-1"] and more
    page, more = await store.objects.page("key-a", FILE, limit=2, after="a-1", purpose="batch")
    assert [o["id"] for o in page] == ["a-0"] and not more
    page, _ = await store.objects.page("key-a", FILE, limit=10, order="asc", purpose="batch")
    assert [o["id"] for o in page] == [f"a-{i}" for i in range(5)]
    assert await store.objects.page("key-a", FILE, limit=10, after="b-3") == ([], False)
    await store.objects.mark_deleted("a-2")
    await store.objects.refresh("a-2", {"id": "a-2", "status": "processed"}, "processed")  # stays deleted
    page, _ = await store.objects.page("key-a", FILE, limit=10, purpose="batch")
    assert "a-2" not in [o["id"] for o in page]
    found = await store.objects.find("a-2")
    assert found is not None and found.state == DELETED


async def test_a_batch_is_charged_once_however_many_try_at_once(store: Store) -> None:
    await store.objects.record(BATCH, "batch_1", "acct", ALICE, {"id": "batch_1"}, state="completed")
    assert [b.id for b in await store.objects.uncharged_batches()] == ["batch_1"]
    results = await asyncio.gather(
        *(store.objects.mark_charged("batch_1", 30, 20, 0.5, "USD") for _ in range(10))
    )
    assert results.count(True) == 1
    assert await store.objects.uncharged_batches() == []
    charged = await store.objects.charged("batch_1")
    assert charged is not None and charged["prompt_tokens"] == 30 and charged["cost"] == 0.5


async def test_the_batch_usage_rows_are_written_once(store: Store) -> None:
    record = RequestRecord(
        request_id="batch_1",
        ts=1_790_000_000.0,
        key_id="key-a",
        key_name="alice",
        endpoint="/v1/batches",
        model_requested="m",
        model_served="m",
        upstream="acct",
        channel="acct/*",
        status=200,
        prompt_tokens=30,
        completion_tokens=20,
        cost=0.5,
        record_id="batch-abc",
    )
    added = [await store.usage.write_batch([record], replay=True) for _ in range(3)]
    assert added == [1, 0, 0]


async def test_one_lease_holder_at_a_time_until_it_expires(store: Store, clock: Clock) -> None:
    taken = await asyncio.gather(*(store.objects.acquire_lease("poller", f"node-{i}", 10) for i in range(6)))
    assert taken.count(True) == 1
    holder = f"node-{taken.index(True)}"
    assert await store.objects.acquire_lease("poller", holder, 10)  # renewing
    clock.advance(5)
    assert not await store.objects.acquire_lease("poller", "late", 10)
    clock.advance(11)
    assert await store.objects.acquire_lease("poller", "late", 10)  # the holder stopped renewing
    assert not await store.objects.acquire_lease("poller", holder, 10)
    await store.objects.release_lease("poller", "late")
    assert await store.objects.acquire_lease("poller", holder, 10)


async def test_the_operators_listing_filters_by_key_and_kind(store: Store, clock: Clock) -> None:
    await store.objects.record(FILE, "file-1", "acct", ALICE, {"id": "file-1", "filename": "a"})
    clock.advance(1)
    await store.objects.record(BATCH, "batch_1", "acct", ALICE, {"id": "batch_1"}, state="in_progress")
    clock.advance(1)
    await store.objects.record(FILE, "file-2", "acct", BOB, {"id": "file-2"})
    assert [r["id"] for r in await store.objects.listing()] == ["file-2", "batch_1", "file-1"]
    rows = await store.objects.listing(key_id="key-a", kind=FILE)
    assert [(r["id"], r["user_id"], r["object"]["filename"]) for r in rows] == [("file-1", "u-1", "a")]
    assert all(type(name) is str for name in rows[0])  # orjson takes only plain str keys
