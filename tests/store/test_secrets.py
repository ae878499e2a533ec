"""Key secrets: format, entropy, and the hash the request path looks keys up by."""

from __future__ import annotations

import hashlib
import re

from sluicegate.store.secrets import generate_secret, hash_key, key_prefix


def test_a_secret_is_sk_sg_and_43_base64url_characters() -> None:
    assert re.fullmatch(r"sk-sg-[A-Za-z0-9_-]{43}", generate_secret())


def test_secrets_carry_at_least_190_bits() -> None:
    # 43 base64url characters carry 6 bits each: 258 bits encoded from 256 random ones.
    secret = generate_secret()
    assert len(secret.removeprefix("sk-sg-")) * 6 >= 190
    assert len({generate_secret() for _ in range(1000)}) == 1000


def test_the_hash_is_the_lowercase_hex_sha256_of_the_whole_secret() -> None:
    secret = "sk-sg-" + "A" * 43
    assert hash_key(secret) == hashlib.sha256(secret.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", hash_key(secret))


def test_the_prefix_shows_four_characters_after_sk_sg() -> None:
    assert key_prefix("sk-sg-AbCdEfGh") == "sk-sg-AbCd"
