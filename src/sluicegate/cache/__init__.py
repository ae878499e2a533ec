"""The response cache (issue 17): exact answers, scoped per key by default, in memory or Redis.

`key.py` the canonical key; `policy.py` whether and how a request is cached; `stores.py` memory and
Redis; `entry.py` the entry, the request, and the `SecondStage` seam (a semantic cache plugs in there);
`assemble.py` a stream read back into a whole answer; `replay.py` a whole answer streamed again;
`embeddings.py` batches cached per input; `service.py` what the gateway holds (`gw.cache`).
"""

from sluicegate.cache.entry import CacheEntry, CacheRequest, SecondStage
from sluicegate.cache.policy import BYPASS, CACHE_HEADER, HIT, MISS
from sluicegate.cache.service import ResponseCache

__all__ = [
    "BYPASS",
    "CACHE_HEADER",
    "HIT",
    "MISS",
    "CacheEntry",
    "CacheRequest",
    "ResponseCache",
    "SecondStage",
]
