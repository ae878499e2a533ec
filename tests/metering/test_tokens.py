"""The token counter counts like OpenAI's tokenizers, offline, and falls back to a heuristic."""

from __future__ import annotations

import os
import subprocess
import sys

from sluicegate.metering import tokens
from sluicegate.metering.tokens import TokenCounter, encoding_for_model, heuristic_count


def test_hello_world_is_two_tokens_in_o200k_and_cl100k(counter: TokenCounter) -> None:
    assert counter.count_text("hello world") == 2
    assert counter.count_text("hello world", "gpt-4") == 2


def test_counts_match_the_reference_token_ids(counter: TokenCounter) -> None:
    # tiktoken's documented example: cl100k "hello world" -> [15339, 1917]
    encoder = counter._encoder("cl100k_base")
    assert encoder is not None and encoder.encode_ordinary("hello world") == [15339, 1917]


def test_encodings_differ_where_their_vocabularies_do(counter: TokenCounter) -> None:
    text = "人工智能正在改变世界。"  # o200k has far more CJK merges than cl100k
    assert counter.count_text(text, "gpt-4o") < counter.count_text(text, "gpt-4")


def test_model_names_choose_the_encoding() -> None:
    assert encoding_for_model("gpt-4o-mini") == "o200k_base"
    assert encoding_for_model("openai/gpt-4.1") == "o200k_base"
    assert encoding_for_model("o3-mini") == "o200k_base"
    assert encoding_for_model("gpt-4-turbo") == "cl100k_base"
    assert encoding_for_model("gpt-3.5-turbo") == "cl100k_base"
    assert encoding_for_model("llama-3.3-70b-versatile") == "o200k_base"


def test_chat_messages_carry_openais_per_message_overhead(counter: TokenCounter) -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hello!"},
    ]
    # 3 priming + (3 + "system" 1 + 6) + (3 + "user" 1 + "Hello!" 2) = 19, what OpenAI reports
    assert counter.count_messages(messages, "gpt-4o-mini") == 19


def test_a_name_costs_one_more_token(counter: TokenCounter) -> None:
    plain = counter.count_messages([{"role": "user", "content": "Hi"}])
    named = counter.count_messages([{"role": "user", "content": "Hi", "name": "bob"}])
    assert named == plain + counter.count_text("bob") + 1


def test_text_parts_are_counted_and_images_at_their_floor(counter: TokenCounter) -> None:
    parts = [
        {"type": "text", "text": "hello world"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    assert counter.count_messages([{"role": "user", "content": parts}]) == 3 + 3 + 1 + 2 + 85


def test_embedding_input_lists_are_counted(counter: TokenCounter) -> None:
    assert counter.count_request({"model": "text-embedding-3-small", "input": ["hello world", "hello"]}) == 3
    assert counter.count_request({"input": [15339, 1917]}) == 2


def test_special_token_text_is_counted_as_ordinary_text(counter: TokenCounter) -> None:
    assert counter.count_text("<|endoftext|>") > 1


def test_heuristic_counts_cjk_per_character_and_latin_per_four() -> None:
    assert heuristic_count("abcdefgh") == 2
    assert heuristic_count("你好世界") == 4
    assert heuristic_count("") == 0


def test_without_a_tokenizer_the_heuristic_is_used(monkeypatch) -> None:
    def unavailable(name: str):
        raise tokens.TokenizerUnavailable("not installed here")

    monkeypatch.setattr(tokens, "_load_encoder", unavailable)
    counter = TokenCounter()
    assert counter.exact is False
    assert counter.count_text("abcdefgh") == 2


def test_counting_works_with_no_network_and_an_empty_tiktoken_cache(tmp_path) -> None:
    """tiktoken's own loader would download the ranks; ours must never touch the network."""
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise RuntimeError('network used')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "from sluicegate.metering.tokens import TokenCounter\n"
        "c = TokenCounter()\n"
        "assert c.exact\n"
        "print(c.count_text('hello world'), c.count_text('hello world', 'gpt-4'))\n"
    )
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path), "DATA_GYM_CACHE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "2"]
    assert list(tmp_path.iterdir()) == []


def test_import_does_no_work() -> None:
    counter = TokenCounter()
    assert counter._encoders == {}
