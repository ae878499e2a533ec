"""The request log's local spill: append-only files that hold records while the store cannot.

When the database is down for longer than the in-memory queue can cover, the log sink moves
queued records here instead of dropping them, and writes them into the store when it is back or
at the next start. Files are JSON lines (one `RequestRecord` per line), fsync'd after every
append, so what the sink handed over survives a crash or a power cut.

Several worker processes (and gateways sharing a directory) use one directory safely with
advisory locks (`flock`): each process appends to its own file `spill-<pid>-<random>.jsonl` and
holds a lock on it while it is open; a file nobody holds a lock on is finished (sealed, or left by
a process that died) and may be claimed, under its lock, by whoever replays it. Replaying twice is
harmless: records carry a unique id and the store skips ids it has (`write_batch(replay=True)`).
A size cap bounds the directory; past it, `append` takes nothing more and the sink drops (and
counts) what neither memory nor the spill can hold.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import orjson

from sluicegate.store.records import RequestRecord

_FIELDS = frozenset(f.name for f in fields(RequestRecord))
_PATTERN = "spill-*.jsonl"
_log = logging.getLogger("sluicegate.metering.spill")


@dataclass
class Claimed:
    """A finished spill file this process holds the lock of, and how far it was written back."""

    path: Path
    fd: int
    offset: int = 0  # bytes of the file already in the store
    records: int = 0  # records not yet in the store (counted when claimed)


class Spill:
    """One process's view of a spill directory: its own append file and the files it claimed."""

    def __init__(self, directory: str | Path, max_bytes: int, logger: logging.Logger | None = None) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._log = logger or _log
        self._fd: int | None = None  # our append file, locked while open
        self._path: Path | None = None
        self._unsealed = 0  # records in our open file
        self._claimed: dict[Path, Claimed] = {}
        self.appended = 0
        self.torn = 0  # partial lines found at replay (a crash mid-append): those records are lost

    # -- writing (called in a worker thread by the sink) ------------------------------------------

    def append(self, records: Sequence[RequestRecord]) -> int:
        """Append as many of `records` as the size cap allows, fsync'd; returns how many.

        Raises OSError when the disk refuses (full, read-only); nothing is then counted as stored.
        """
        if not records:
            return 0
        room = self.max_bytes - self.used_bytes()
        lines: list[bytes] = []
        size = 0
        for r in records:
            line = orjson.dumps(r) + b"\n"
            if size + len(line) > room:
                break
            lines.append(line)
            size += len(line)
        if not lines:
            return 0
        fd = self._open_own()
        data = b"".join(lines)
        written = 0
        try:
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except OSError:
            if written:  # never leave half a line: the next append would glue onto it
                os.ftruncate(fd, os.lseek(fd, 0, os.SEEK_END) - written)
            raise
        self._unsealed += len(lines)
        self.appended += len(lines)
        return len(lines)

    def _open_own(self) -> int:
        if self._fd is not None:
            return self._fd
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"spill-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        _fsync_dir(self.directory)  # the new file's name survives a crash too
        self._fd, self._path = fd, path
        return fd

    def seal(self) -> None:
        """Close our append file so it can be replayed; the next append starts a new one."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._path = None
            self._unsealed = 0

    def used_bytes(self) -> int:
        """Bytes in every spill file of the directory (ours and other processes')."""
        total = 0
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if entry.name.startswith("spill-") and entry.name.endswith(".jsonl"):
                        try:
                            total += entry.stat().st_size
                        except FileNotFoundError:
                            pass
        except FileNotFoundError:
            return 0
        return total

    @property
    def has_room(self) -> bool:
        return self.used_bytes() < self.max_bytes

    @property
    def pending(self) -> int:
        """Records this process knows are waiting in the spill: in its open file and its claims."""
        return self._unsealed + sum(c.records for c in self._claimed.values())

    @property
    def open_records(self) -> int:
        return self._unsealed

    # -- replaying --------------------------------------------------------------------------------

    def claim(self) -> list[Claimed]:
        """Lock every finished spill file of the directory (ours once sealed, or a dead process's)."""
        if not self.directory.is_dir():
            return list(self._claimed.values())
        for path in sorted(self.directory.glob(_PATTERN)):
            if path in self._claimed or path == self._path:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # another process is appending to it or replaying it
                continue
            if not path.exists():  # replayed and removed between our listing and our lock
                os.close(fd)
                continue
            with open(path, "rb") as f:
                count = sum(1 for line in f if line.endswith(b"\n"))
            self._claimed[path] = Claimed(path, fd, 0, count)
        return list(self._claimed.values())

    def batches(self, claimed: Claimed, size: int) -> Iterator[tuple[list[RequestRecord], int]]:
        """Batches of the claimed file from where its write-back stopped, each with its end offset."""
        with open(claimed.path, "rb") as f:
            f.seek(claimed.offset)
            batch: list[RequestRecord] = []
            offset = claimed.offset
            for line in f:
                offset += len(line)
                record = self._parse(line, claimed.path)
                if record is not None:
                    batch.append(record)
                if len(batch) >= size:
                    yield batch, offset
                    batch = []
            if batch or offset != claimed.offset:
                yield batch, offset

    def _parse(self, line: bytes, path: Path) -> RequestRecord | None:
        if not line.endswith(b"\n"):
            self.torn += 1
            self._log.error(
                "request log spill %s ends in a partial record (a crash mid-write): skipped", path
            )
            return None
        try:
            data = orjson.loads(line)
            return RequestRecord(**{k: v for k, v in data.items() if k in _FIELDS})
        except (orjson.JSONDecodeError, TypeError, AttributeError):
            self.torn += 1
            self._log.error("request log spill %s holds an unreadable line: skipped", path)
            return None

    def advance(self, claimed: Claimed, offset: int, records: int) -> None:
        """The batch ending at `offset` is in the store."""
        claimed.offset = offset
        claimed.records = max(0, claimed.records - records)

    def finish(self, claimed: Claimed) -> None:
        """Everything in the claimed file is in the store: remove it, then release its lock."""
        try:
            claimed.path.unlink(missing_ok=True)
            _fsync_dir(self.directory)
        finally:
            os.close(claimed.fd)
            self._claimed.pop(claimed.path, None)

    def recovery_lock(self, timeout: float) -> int | None:
        """Take the directory's recovery lock, waiting up to `timeout` s; the fd to release, or None.

        Workers starting together replay one at a time, so none seeds its budgets from the store
        while another is still writing spilled usage into it.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / "recover.lock", os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except OSError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return None
                time.sleep(0.05)

    def close(self) -> None:
        """Close our file and release every claim (their files stay for the next replay)."""
        self.seal()
        for claimed in list(self._claimed.values()):
            os.close(claimed.fd)
        self._claimed.clear()


def spill_for(directory: str | None, max_mb: float) -> Spill | None:
    """The spill of a configured directory, or None when it is switched off (`spill_max_mb: 0`)."""
    if not directory or max_mb <= 0:
        return None
    return Spill(directory, int(max_mb * 1024 * 1024))


async def write_back(
    spill: Spill,
    write: Callable[[list[RequestRecord]], Awaitable[bool]],
    batch_size: int,
    limit: int | None,
) -> tuple[bool, int, bool]:
    """Write the finished spill files back through `write` (False: the store failed), at most
    `limit` batches (None: all). File reads run in a thread. Returns (no failure, records
    written, every file done); a file is removed once all of it is written."""
    written = 0
    budget = limit
    for claimed in await asyncio.to_thread(spill.claim):
        batches = spill.batches(claimed, batch_size)
        while True:
            item = await asyncio.to_thread(next, batches, None)
            if item is None:
                break
            batch, offset = item
            if batch and not await write(batch):
                return False, written, False
            spill.advance(claimed, offset, len(batch))
            written += len(batch)
            if budget is not None:
                budget -= 1
                if budget <= 0:
                    return True, written, False  # more next turn: queued records get theirs too
        await asyncio.to_thread(spill.finish, claimed)
    return True, written, True


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
