"""Provider keys at rest: sealed with Fernet (AES-128-CBC + HMAC-SHA256) under the operator's master key.

An upstream's secrets (`api_key`, `api_keys`, `headers`) leave the process only as one Fernet token, so
a copied database file or backup gives away no provider account. The master key comes from the
environment (`SLUICEGATE_MASTER_KEY`, read into `Settings.master_key` at the edge); without it nothing
secret is stored at all (`MasterKeyMissing`), never stored plain. Any text of 16+ characters works: a
Fernet key (44 characters of url-safe base64) is used as it is, anything else is stretched with SHA-256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

MASTER_KEY_ENV = "SLUICEGATE_MASTER_KEY"


class MasterKeyMissing(RuntimeError):
    """A secret must be sealed or opened, and no master key is configured."""

    def __init__(self) -> None:
        super().__init__(
            f"Provider keys are stored encrypted and no master key is set: set {MASTER_KEY_ENV} "
            "(a random text of 32+ characters, the same for every gateway and CLI sharing this "
            "database) and try again. Nothing was stored."
        )


class SecretsUnreadable(RuntimeError):
    """The stored secrets were sealed with another master key (or the row was tampered with)."""


def fernet_key(master_key: str) -> bytes:
    """The Fernet key for a master key: itself when it already is one, else SHA-256 of it."""
    raw = master_key.strip().encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32 and len(raw) == 44:
            return raw
    except (binascii.Error, ValueError):
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(b"sluicegate-master-key\0" + raw).digest())


class SecretBox:
    """Seal and open small JSON objects of secrets; `available` is False without a master key."""

    def __init__(self, master_key: str | None) -> None:
        # cryptography is imported only with a master key: ~7 MB a worker that stores no secrets saves.
        self._fernet: Fernet | None = None
        if master_key:
            from cryptography.fernet import Fernet

            self._fernet = Fernet(fernet_key(master_key))

    @property
    def available(self) -> bool:
        return self._fernet is not None

    def seal(self, secrets: dict[str, Any]) -> str:
        if self._fernet is None:
            raise MasterKeyMissing()
        return self._fernet.encrypt(orjson.dumps(secrets)).decode()

    def open(self, token: str) -> dict[str, Any]:
        if self._fernet is None:
            raise MasterKeyMissing()
        from cryptography.fernet import InvalidToken

        try:
            value = orjson.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise SecretsUnreadable(
                f"stored provider keys cannot be decrypted with this {MASTER_KEY_ENV} "
                "(was it changed?); set the key they were stored with, or enter them again "
                "(an update that gives api_key or api_keys replaces them)"
            ) from None
        return value if isinstance(value, dict) else {}
