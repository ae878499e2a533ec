"""What a request-log record may hold, and how to repair one the store refused.

Figures come from upstreams, and an upstream can report `prompt_tokens: 1e300`: a number no
column holds, which made a whole batch of 30 records fail. So every record is bounded before it
is written (`bound`): counts are whole numbers in [0, MAX_COUNT], money and times finite and in
[0, MAX_AMOUNT], and a record that needed it is flagged `usage_clamped`. Bounds cost a few
comparisons per record, off the request path (the log sink applies them).

If the store still refuses a batch because of what is in it (`is_record_fault`: a data or
constraint error, not a lost connection), the sink splits the batch to find the record and writes
`repaired(record)` instead: text cleaned (no NUL, cut to its column's length) and bodies dropped;
then, if that is refused too, `zeroed(record)`: the same with every figure zero. Both keep the
record's id, so a repaired record that was in fact stored is not counted twice.
"""

from __future__ import annotations

import math
from dataclasses import replace

from sluicegate.metering.usage import MAX_TOKENS
from sluicegate.store.records import RequestRecord

# 2**53: the largest count every layer (JSON readers, float sums in reports, BIGINT) holds exactly.
MAX_COUNT = 2**53
MAX_AMOUNT = 1e15  # money and milliseconds: far beyond any real request, far below overflow
_COUNTS = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")
_AMOUNTS = ("cost", "latency_ms")
# Column lengths of request_logs (store/schema.py); PostgreSQL refuses longer text.
TEXT_LIMITS = {
    "request_id": 64,
    "key_id": 64,
    "key_name": 200,
    "endpoint": 200,
    "model_requested": 200,
    "model_served": 200,
    "upstream": 200,
    "channel": 200,
    "error_type": 100,
    "currency": 8,
    "client_ip": 64,
    "record_id": 64,
}


def _count(value: object) -> int | None:
    """The bounded count, or None when `value` is already a valid count (the common case).

    A count at or past usage parsing's cap (`usage.MAX_TOKENS`) was clamped on its way in: no
    request uses 2**31 tokens, so it is reported as changed and the record gets its flag.
    """
    if type(value) is int and 0 <= value < MAX_TOKENS:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return min(max(value, 0), MAX_COUNT)
    if isinstance(value, float) and math.isfinite(value):
        return int(min(max(value, 0.0), float(MAX_COUNT)))
    if isinstance(value, float) and value == math.inf:
        return MAX_COUNT
    return 0


def _amount(value: object, optional: bool = False) -> float | None:
    """The bounded amount, or None when `value` is already valid."""
    if value is None and optional:
        return None
    if type(value) is float and 0.0 <= value <= MAX_AMOUNT:
        return None
    if type(value) is int and 0 <= value <= MAX_AMOUNT:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value):
        return min(max(float(value), 0.0), MAX_AMOUNT)
    return 0.0


def bound(record: RequestRecord) -> bool:
    """Clamp `record`'s figures into what the store holds, in place; True if any was changed.

    A changed record is flagged `usage_clamped`, so a report can tell a clamped figure from a
    real one.
    """
    # The common record in one expression (exact types, in range): the same answer as the checks
    # below, without a call and a getattr per figure (~580 bytecodes a record otherwise).
    ttft = record.ttft_ms
    cost = record.cost
    latency = record.latency_ms
    if (
        type(record.prompt_tokens) is int
        and 0 <= record.prompt_tokens < MAX_TOKENS
        and type(record.completion_tokens) is int
        and 0 <= record.completion_tokens < MAX_TOKENS
        and type(record.cached_tokens) is int
        and 0 <= record.cached_tokens < MAX_TOKENS
        and type(record.reasoning_tokens) is int
        and 0 <= record.reasoning_tokens < MAX_TOKENS
        and type(cost) is float
        and 0.0 <= cost <= MAX_AMOUNT
        and type(latency) is float
        and 0.0 <= latency <= MAX_AMOUNT
        and (ttft is None or (type(ttft) is float and 0.0 <= ttft <= MAX_AMOUNT))
    ):
        return False
    changed = False
    for name in _COUNTS:
        fixed = _count(getattr(record, name))
        if fixed is not None:
            setattr(record, name, fixed)
            changed = True
    for name in _AMOUNTS:
        fixed_amount = _amount(getattr(record, name))
        if fixed_amount is not None:
            setattr(record, name, fixed_amount)
            changed = True
    ttft = record.ttft_ms
    if ttft is not None:
        fixed_ttft = _amount(ttft)
        if fixed_ttft is not None:
            record.ttft_ms = fixed_ttft
            changed = True
    if changed:
        record.usage_clamped = True
    return changed


def _clean(text: str | None, limit: int | None) -> str | None:
    if text is None:
        return None
    text = str(text).replace("\x00", "").encode("utf-8", "replace").decode("utf-8", "replace")
    return text[:limit] if limit is not None else text


def repaired(record: RequestRecord) -> RequestRecord:
    """A copy with its text made storable (no NUL, no lone surrogate, cut to length), bodies dropped."""
    copy = replace(record, request_body=None, response_body=None, usage_clamped=True)
    for name, limit in TEXT_LIMITS.items():
        value = getattr(copy, name)
        if value is not None:
            setattr(copy, name, _clean(value, limit))
    if not copy.request_id:
        copy.request_id = "unknown"
    if not copy.endpoint:
        copy.endpoint = "unknown"
    if type(copy.status) is not int or not 0 <= copy.status < 1000:
        copy.status = 0
    bound(copy)
    copy.usage_clamped = True
    return copy


def zeroed(record: RequestRecord) -> RequestRecord:
    """`repaired(record)` with every figure zero: the last form before a record is dropped."""
    copy = repaired(record)
    for name in _COUNTS:
        setattr(copy, name, 0)
    copy.cost = 0.0
    copy.latency_ms = 0.0
    copy.ttft_ms = None
    copy.ts = copy.ts if isinstance(copy.ts, float) and math.isfinite(copy.ts) else 0.0
    return copy


def is_record_fault(exc: BaseException) -> bool:
    """Whether the store refused a batch for what is in it (so splitting it helps), not because it
    cannot write at all (connection lost, disk full, read-only, no privilege: retry or spill).

    Data exceptions (SQLSTATE class 22) and constraint violations (23), and the Python errors a
    driver raises for a value it cannot send (OverflowError, ValueError, TypeError), are the
    record's fault.
    """
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.DataError | sa_exc.IntegrityError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        state = str(getattr(exc.orig, "sqlstate", "") or getattr(exc.orig, "pgcode", "") or "")
        if state[:2] in ("22", "23"):
            return True
        cause = exc.orig.__cause__ if exc.orig is not None else None
        return type(cause).__name__ == "DataError"  # asyncpg: a value it could not encode
    if isinstance(exc, sa_exc.StatementError):
        return exc.orig is not None and is_record_fault(exc.orig)
    if isinstance(exc, OSError):
        return False
    return isinstance(exc, OverflowError | ValueError | TypeError | UnicodeError)
