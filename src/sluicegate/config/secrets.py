"""Masking of secrets for anything a person or a log may see."""

from __future__ import annotations


def mask(secret: str | None) -> str:
    """Keep just enough to recognise a secret: 'sk-proj-abc...xyz' -> 'sk-p…(51)'.

    The length helps spot a truncated paste; four leading characters identify the provider's format
    without narrowing a brute-force search in any useful way.
    """
    if not secret:
        return ""
    if len(secret) <= 8:
        return "***"
    return f"{secret[:4]}…({len(secret)})"
