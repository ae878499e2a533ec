"""Putting one batch of request-log records into the store, whatever is in it.

The log sink decides when to write and what waits; this decides how a batch gets in. A write that
fails because the store cannot write (connection lost, disk full, a write hanging past `timeout`)
raises `StoreUnwritable`, and the sink keeps the batch for a retry. A write the store refuses for
what is in the batch (`bounds.is_record_fault`) is split in halves, recursively, until the record at
fault is found: it is written repaired (`bounds.repaired`), else with its figures zeroed, else
dropped and reported through `on_refused`. One bad record never costs the others their place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sluicegate.metering.bounds import is_record_fault, repaired, zeroed
from sluicegate.store.records import RequestRecord

Writer = Callable[..., Awaitable[object]]  # writer(records) or writer(records, replay=True)


class StoreUnwritable(Exception):
    """The store could not write at all; `cause` says why. Nothing of the batch is lost."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(repr(cause))
        self.cause = cause


class BatchWriter:
    """Writes batches through `writer`, isolating and repairing records the store refuses."""

    def __init__(
        self,
        writer: Writer,
        *,
        timeout: float,
        on_refused: Callable[[RequestRecord, BaseException], None],
        logger: logging.Logger,
    ) -> None:
        self._writer = writer
        self._timeout = timeout
        self._on_refused = on_refused
        self._log = logger
        self.written = 0
        self.failed_writes = 0  # writer calls that raised (each retry counts)
        self.repaired = 0  # records written repaired after the store refused them

    async def write(self, batch: list[RequestRecord], replay: bool) -> None:
        """Store the batch; `replay=True` when some of it may already be stored (skipped then).

        Raises `StoreUnwritable` when the store cannot write; records split off and already
        written by then are skipped on the retry (it is a replay).
        """
        try:
            call = self._writer(batch, replay=True) if replay else self._writer(batch)
            await asyncio.wait_for(call, self._timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the writer's failure must not kill the sink
            self.failed_writes += 1
            if not is_record_fault(exc):
                raise StoreUnwritable(exc) from exc
            await self._isolate(batch, exc)
            return
        self.written += len(batch)

    async def _isolate(self, batch: list[RequestRecord], exc: Exception) -> None:
        if len(batch) > 1:
            mid = len(batch) // 2
            await self.write(batch[:mid], True)
            await self.write(batch[mid:], True)
            return
        record = batch[0]
        for fixed in (repaired(record), zeroed(record)):
            try:
                await asyncio.wait_for(self._writer([fixed], replay=True), self._timeout)
            except asyncio.CancelledError:
                raise
            except Exception as again:
                self.failed_writes += 1
                if not is_record_fault(again):
                    raise StoreUnwritable(again) from again
                continue
            self.written += 1
            self.repaired += 1
            self._log.error(
                "request log: record %s was refused (%r); written repaired", record.request_id, exc
            )
            return
        self._on_refused(record, exc)
