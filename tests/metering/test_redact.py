"""Stored bodies are masked before they are kept, and truncated after masking."""

from __future__ import annotations

import re

import pytest

from sluicegate.metering.redact import MASK, Redactor, redact


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv",
        "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx",
        "sk-sg-AbCdEfGhIjKlMnOpQrSt1234",
        "gsk_AbCdEfGhIjKlMnOpQrStUvWxYz012345",
        "AIzaSyAbCdEfGhIjKlMnOpQrStUvWxYz0123456",
    ],
)
def test_provider_keys_are_masked(secret: str) -> None:
    out = redact(f'{{"messages":[{{"role":"user","content":"my key is {secret} ok"}}]}}'.encode())
    assert secret not in out
    assert f"my key is {MASK} ok" in out


def test_bearer_tokens_are_masked() -> None:
    out = redact(b"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig")
    assert "eyJhbGci" not in out


def test_secret_fields_keep_their_name_and_lose_their_value() -> None:
    out = redact(b'{"api_key": "hunter2-is-not-a-key-shape", "password":"p\\"w", "model": "gpt-4o"}')
    assert out == f'{{"api_key": "{MASK}", "password": "{MASK}", "model": "gpt-4o"}}'


def test_email_addresses_are_masked() -> None:
    assert redact(b"write to jane.doe+llm@example.co.uk please") == f"write to {MASK} please"


def test_configured_patterns_are_masked_too() -> None:
    redactor = Redactor([r"\b\d{3}-\d{2}-\d{4}\b", re.compile(r"ACME-\d+")])
    assert redactor(b"ssn 123-45-6789 order ACME-42") == f"ssn {MASK} order {MASK}"


def test_ordinary_text_is_left_alone() -> None:
    text = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Ask about sk-learn and tasks"}]}'
    assert redact(text.encode()) == text


def test_long_bodies_are_truncated_with_a_marker() -> None:
    out = Redactor(max_chars=10)(b"a" * 25)
    assert out == "a" * 10 + "…[truncated 15 chars]"


def test_a_secret_at_the_cut_is_masked_before_truncation() -> None:
    body = b"x" * 8 + b"sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv"
    out = Redactor(max_chars=12)(body)
    assert out is not None and "sk-proj" not in out and out.startswith("x" * 8 + "[RED")


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert redact(b"ok \xff\xfe ok") == "ok \ufffd\ufffd ok"


def test_none_stays_none() -> None:
    assert Redactor()(None) is None


def test_the_admin_key_and_other_known_secrets_are_masked_wherever_they_appear() -> None:
    admin = "my-admin-key-0123456789"
    out = Redactor(secrets=[admin, "none", None])(f"please use {admin} and none of it".encode())
    assert out == f"please use {MASK} and none of it"


@pytest.mark.parametrize(
    "text",
    [
        "id AKIAIOSFODNN7EXAMPLE here",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        '{"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
        "token eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
    ],
)
def test_aws_keys_and_jwts_are_masked(text: str) -> None:
    out = Redactor()(text)
    assert out is not None and MASK in out
    for secret in ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI", "eyJzdWIiOiIxMjM0NTY3ODkwIn0"):
        assert secret not in out


def test_forty_character_words_without_the_aws_name_are_kept() -> None:
    text = "commit 0123456789abcdef0123456789abcdef01234567 landed"
    assert Redactor()(text) == text
