"""The semantic stage of the response cache (docs/cache.md#semantic-cache).

`prompt.py` what is embedded and what must match exactly (pure); `index.py` a partition's vectors in a
usearch index (the `semantic` extra, imported lazily); `shared.py` the Redis stream every gateway's
index follows; `stage.py` the `SecondStage` the cache consults after an exact miss.
"""
