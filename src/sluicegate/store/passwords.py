"""Passwords of users, hashed with argon2id (argon2-cffi's defaults: RFC 9106's low-memory profile).

Apart from the repository so the one place that touches plaintext passwords is small and easy to audit;
a hash made under older parameters still verifies, and `needs_rehash` tells the caller to store a new one.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()
MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 takes any length; a bound keeps one login from costing a megabyte of hashing


class WeakPassword(ValueError):
    """The password cannot be accepted; the message says why."""


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (salted, self-describing: parameters travel with the hash)."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password may have at most {MAX_LENGTH} characters")
    return _HASHER.hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches the stored hash; False for users with no password."""
    if not password_hash or not isinstance(password, str) or len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """The hash was made with weaker parameters than today's defaults."""
    return _HASHER.check_needs_rehash(password_hash)
