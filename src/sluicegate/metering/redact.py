"""Masking secrets and personal data in text the gateway keeps: stored bodies and log lines.

Bodies are stored only for keys that opt in, and even then a prompt may carry someone's API key or
e-mail address. The built-in patterns mask provider keys (`sk-...`, `sk-ant-...`, `gsk_...`,
`AIza...`), AWS access key ids (`AKIA...`) and secret keys written next to their name
(`aws_secret_access_key = ...`), JSON Web Tokens, `Bearer` tokens, `"api_key": "..."`-style fields and
e-mail addresses; the gateway's own secrets (the admin key, provider keys from the file) are masked
wherever they appear, passed in as literals; operators add their own patterns
(`metering.redact_patterns`). Patterns compile once, in the `Redactor` the app owns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

MASK = "[REDACTED]"

# Provider keys: OpenAI/DeepSeek/Moonshot/this gateway (sk-...), Anthropic (sk-ant-...), Groq (gsk_),
# Google (AIza...), xAI (xai-...), GitHub/HF tokens. Long enough that ordinary words never match.
_KEY = r"(?:sk-[A-Za-z0-9_\-]{16,}|gsk_[A-Za-z0-9]{20,}|AIza[0-9A-Za-z_\-]{30,}|xai-[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,})"
_BEARER = r"(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"
_SECRET_FIELD = (
    r'(?i:"(?:api[_-]?key|x-api-key|authorization|password|secret|access[_-]?token)"\s*:\s*)'
    r'"(?:[^"\\]|\\.)*"'
)
_EMAIL = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"
# AWS: access key ids have a fixed shape; a secret key (40 base64 characters) only means something
# next to its name, so it is masked with the name (`aws_secret_access_key = ...`, JSON or INI style).
_AWS_KEY_ID = r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"
_AWS_SECRET = r"""(?i:aws_?secret_?access_?key|secret_?access_?key)["']?\s*[:=]\s*["']?[A-Za-z0-9/+=]{40}"""
# A JSON Web Token: two base64url JSON objects ('{"' encodes as 'eyJ') and a signature (maybe empty).
_JWT = r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"

SECRET_PATTERNS: tuple[str, ...] = (_SECRET_FIELD, _BEARER, _JWT, _AWS_SECRET, _AWS_KEY_ID, _KEY)
DEFAULT_PATTERNS: tuple[str, ...] = (*SECRET_PATTERNS, _EMAIL)


def _compile(patterns: Iterable[str | re.Pattern[str]]) -> re.Pattern[str]:
    sources = [p.pattern if isinstance(p, re.Pattern) else p for p in patterns]
    return re.compile("|".join(f"(?:{source})" for source in sources))


def _mask(match: re.Match[str]) -> str:
    text = match.group(0)
    if text.startswith('"'):  # a JSON field: keep the name, mask the value
        name, _, _ = text.partition(":")
        return f'{name}: "{MASK}"'
    return MASK


class Redactor:
    """Masks secrets, e-mail addresses and configured patterns, then truncates to `max_chars`.

    Invalid extra patterns fail at construction (startup), not on the first stored body.
    """

    __slots__ = ("_pattern", "max_chars")

    def __init__(
        self,
        extra_patterns: Sequence[str | re.Pattern[str]] = (),
        *,
        max_chars: int = 16_384,
        mask_emails: bool = True,
        secrets: Sequence[str | None] = (),
    ) -> None:
        base = DEFAULT_PATTERNS if mask_emails else SECRET_PATTERNS
        # Known secrets (the admin key, provider keys) as literals, longest first; short values such
        # as "none" are no secret and would mask ordinary words.
        literals = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)
        self._pattern = _compile([*(re.escape(s) for s in literals), *base, *extra_patterns])
        self.max_chars = max_chars

    def __call__(self, body: bytes | bytearray | memoryview | str | None) -> str | None:
        """The text to store for `body`; None stays None. Truncation happens after masking, so a
        secret cut in half by the limit cannot survive unmasked."""
        if body is None:
            return None
        text = body if isinstance(body, str) else bytes(body).decode("utf-8", errors="replace")
        text = self._pattern.sub(_mask, text)
        if len(text) > self.max_chars:
            cut = len(text) - self.max_chars
            text = f"{text[: self.max_chars]}…[truncated {cut} chars]"
        return text

    def scrub(self, text: str) -> str:
        """Mask without truncating (for log lines)."""
        return self._pattern.sub(_mask, text)


def redact(
    body: bytes | bytearray | memoryview | str,
    patterns: Sequence[str | re.Pattern[str]] = (),
    *,
    max_chars: int = 16_384,
) -> str:
    """One-off redaction with the built-in and `patterns`; hot paths keep a `Redactor` instead."""
    result = Redactor(patterns, max_chars=max_chars)(body)
    return result if result is not None else ""
