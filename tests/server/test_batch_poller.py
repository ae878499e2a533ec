"""Two gateways' batch pollers racing on one finished batch (no lease between them): the owner is
charged once, one request-log row is written, and the `charge=` hook runs once. On SQLite and PostgreSQL.

The gateways are real `Gateway` objects started in this process (store, client, metering), talking to
the stand-in provider on a real port; only the HTTP server around them is left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.files_upstream import COMPLETION, PROMPT, FilesUpstream, batch_input
from support.pg import fresh_postgres_database

from sluicegate.config.model import Settings
from sluicegate.server.app import Gateway
from sluicegate.store.owned import FILE, Charge, Owner


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gw.db'}"
    else:
        with fresh_postgres_database("sg_poller") as url:
            yield url


@pytest.fixture
def upstream() -> Iterator[FilesUpstream]:
    up = FilesUpstream()
    yield up
    up.close()


def settings(upstream: FilesUpstream, db_url: str, tmp_path: Path, name: str) -> Settings:
    return Settings.model_validate(
        {
            "database": db_url,
            "keys": [{"key": "sk-poller-key-a-0123", "name": "alice"}],
            "upstreams": {
                "acct": {"base_url": f"http://127.0.0.1:{upstream.port}/v1", "api_key": "sk-prov-1"}
            },
            "models": {"gpt-4o-mini": "acct"},
            "prices": {"gpt-4o-mini": {"input": 1.0, "output": 3.0}},
            "files": {"poll_interval_s": 3600, "batch_price_ratio": 0.25},
            "metering": {"spill_dir": str(tmp_path / f"spill-{name}")},
        }
    )


async def test_racing_pollers_charge_a_batch_once(
    upstream: FilesUpstream, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hooked: list[Charge] = []

    async def hook(charge: Charge) -> None:
        hooked.append(charge)

    gateways = [Gateway(settings(upstream, db_url, tmp_path, str(i))) for i in range(2)]
    for gw in gateways:
        gw.batch_charge = hook
        await gw.startup()
    try:
        owner = Owner("cfg-alice", user_id="u-7")
        input_file = upstream._add_file("in.jsonl", "batch", batch_input("gpt-4o-mini", 4))
        await gateways[0].objects.record(FILE, input_file, "acct", owner)
        batch_id = "batch_race"
        upstream.batches[batch_id] = {"id": batch_id, "object": "batch", "input_file_id": input_file["id"]}
        upstream.finish(batch_id)
        await gateways[0].store.objects.record(
            "batch", batch_id, "acct", owner, {"id": batch_id}, state="validating"
        )
        await asyncio.gather(*(gw.batches.poll_once() for gw in gateways for _ in range(3)))
        # (`charged` also counts a background round that may have run meanwhile: still one in all.)
        assert sum(gw.batches.charged for gw in gateways) == 1, caplog.text  # the pollers' warnings, if any
        assert len(hooked) == 1
        expected = (4 * PROMPT * 1.0 + 4 * COMPLETION * 3.0) / 1e6 * 0.25
        assert hooked[0] == Charge(
            batch_id, owner, 4 * PROMPT, 4 * COMPLETION, pytest.approx(expected), "USD"
        )  # type: ignore[arg-type]
        usage = await gateways[1].store.usage.query(key_id="cfg-alice")
        assert [
            (u["requests"], u["prompt_tokens"], u["completion_tokens"], u["key_name"]) for u in usage
        ] == [(1, 4 * PROMPT, 4 * COMPLETION, "alice")]
        data = await gateways[1].store.objects.data(batch_id)
        assert data is not None and data["status"] == "completed"
        # The output file became the batch owner's.
        output = await gateways[1].objects.lookup(data["output_file_id"])
        assert output is not None and output.owner == owner
    finally:
        for gw in gateways:
            await gw.shutdown()
