"""GPU and cloud planning for self-hosting a model; no part of the request path.

``catalog`` loads the sourced data files, ``models`` counts parameters and KV cache from an
architecture, ``memory`` / ``speed`` / ``cost`` / ``export_control`` are the estimator's pure
functions, and ``plan`` composes them into ranked options for ``sluicegate plan``.
"""
