"""What a semantic lookup compares: the prompt's text, and the partition everything else must match.

Pure. The text embedded is the conversation the client sent (the chat messages, the Responses `input`,
the Anthropic `messages`), one `role: text` line per message, after the inbound codec parsed it. The
instructions (system and developer messages, Responses `instructions`, Anthropic `system`) are not
embedded: they belong to the partition with every other parameter that changes the answer (model,
`max_tokens`, `temperature`, tools, `response_format`, ...), which must match exactly, like the scope.
A prompt that is not plain text (images, audio, files, tool calls and tool results) is not compared
semantically at all: two such prompts with similar words can need different answers.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from sluicegate.cache.key import canonical

SEMANTIC_PATHS = frozenset({"/v1/chat/completions", "/v1/responses", "/v1/messages"})
PARTITION_PREFIX = "sg:cache:s:"
INSTRUCTION_ROLES = frozenset({"system", "developer"})
TEXT_PARTS = frozenset({"text", "input_text", "output_text"})


def _text(content: Any) -> str | None:
    """Plain text of a message's content; None when any part is not text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        pieces: list[str] = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS:
                return None
            text = part.get("text")
            if not isinstance(text, str):
                return None
            pieces.append(text)
        return "\n".join(pieces)
    return None


def _conversation(messages: Any, instructions: list[Any] | None) -> str | None:
    """`role: text` lines; instruction messages go to `instructions` (the partition) when given."""
    if not isinstance(messages, list) or not messages:
        return None
    lines: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            return None
        role = message.get("role")
        kind = message.get("type")
        if kind not in (None, "message") or not isinstance(role, str):
            return None
        if set(message) - {"role", "content", "type", "name"}:  # tool calls, ids, refusals...
            return None
        if role in INSTRUCTION_ROLES and instructions is not None:
            instructions.append(message)
            continue
        if role not in ("user", "assistant"):
            return None
        text = _text(message.get("content"))
        if text is None:
            return None
        lines.append(f"{role}: {text}")
    return "\n".join(lines) if lines else None


def split_prompt(path: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The text to embed and the rest of the request (what must match exactly), or None when the
    request is not one to compare semantically."""
    if path not in SEMANTIC_PATHS:
        return None
    rest = canonical(payload)
    if path == "/v1/responses":
        value = rest.pop("input", None)
        if isinstance(value, str):
            text: str | None = f"user: {value}" if value else None
        else:
            text = _conversation(value, None)
    else:
        instructions: list[Any] = []
        text = _conversation(rest.pop("messages", None), instructions)
        if instructions:
            rest["\x00instructions"] = instructions
    if text is None:
        return None
    return text, rest


def partition_key(scope: str, path: str, model: str, embedding_model: str, rest: dict[str, Any]) -> str:
    """Where a prompt's vector lives: one partition per scope, client API, model, embedding model and
    parameters. Two requests can only ever be compared inside one partition."""
    text = orjson.dumps([scope, path, model, embedding_model, rest], option=orjson.OPT_SORT_KEYS)
    return PARTITION_PREFIX + hashlib.sha256(text).hexdigest()
