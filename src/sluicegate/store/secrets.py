"""Issuing API key secrets and turning a presented secret into its lookup hash.

The store keeps only `hash_key(secret)`. Issued secrets carry 256 bits from the OS CSPRNG, so a
plain SHA-256 (no salt, no slow KDF) already makes a leaked table useless, and it keeps the hot
path to one hash plus one dictionary lookup per request.
"""

from __future__ import annotations

import hashlib
import secrets as _random

SECRET_PREFIX = "sk-sg-"
PREFIX_LENGTH = len(SECRET_PREFIX) + 4  # "sk-sg-AbCd": recognisable in lists, 24 bits disclosed


def generate_secret() -> str:
    """A new key secret: `sk-sg-` and 43 base64url characters (256 bits of entropy)."""
    return SECRET_PREFIX + _random.token_urlsafe(32)


def hash_key(secret: str) -> str:
    """The lowercase hex SHA-256 of the whole secret, as stored in `api_keys.key_hash`.

    The request path calls this on the presented bearer token and looks the result up in the key
    cache; the store never sees the secret itself.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def key_prefix(secret: str) -> str:
    """The non-secret leading characters shown in listings so people can tell their keys apart."""
    return secret[:PREFIX_LENGTH]
