"""Recorded SSE `data:` payloads, shaped exactly as upstreams send them (ids and text shortened).

OPENAI_STREAM is gpt-4o-mini with stream_options.include_usage: a role chunk, content chunks, a
finish chunk, the usage-only chunk, then [DONE]. Every chunk before the last carries "usage":null.
"""

_HEAD = b'{"id":"chatcmpl-AbC123","object":"chat.completion.chunk","created":1732500000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1",'

ROLE = (
    _HEAD
    + b'"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}'
)
CONTENT = [
    _HEAD
    + b'"choices":[{"index":0,"delta":{"content":"'
    + piece
    + b'"},"logprobs":null,"finish_reason":null}],"usage":null}'
    for piece in (b"Hello", b"!", b" How", b" can", b" I", b" help", b" you", b" today", b"?")
]
FINISH = _HEAD + b'"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}'
USAGE = _HEAD + (
    b'"choices":[],"usage":{"prompt_tokens":19,"completion_tokens":9,"total_tokens":28,'
    b'"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
    b'"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
    b'"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}'
)
DONE = b"[DONE]"

OPENAI_STREAM = [ROLE, *CONTENT, FINISH, USAGE, DONE]
TEXT = "Hello! How can I help you today?"

# llama.cpp's server without usage: same chunks, no "usage" key at all, no usage chunk.
LLAMACPP_STREAM = [
    b'{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"'
    + piece
    + b'"}}],"created":1732500000,'
    b'"id":"chatcmpl-x","model":"llama","object":"chat.completion.chunk"}'
    for piece in (b"Hello", b"!", b" How", b" can", b" I", b" help", b" you", b" today", b"?")
] + [
    b'{"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"created":1732500000,"id":"chatcmpl-x",'
    b'"model":"llama","object":"chat.completion.chunk"}',
    DONE,
]

# Gemini's OpenAI-compatible endpoint: usage on the last content chunk, no usage-only chunk.
GEMINI_LAST_CHUNK = (
    b'{"choices":[{"delta":{"content":"Hi","role":"assistant"},"finish_reason":"stop","index":0}],'
    b'"created":1732500000,"id":"x","model":"gemini-2.5-flash","object":"chat.completion.chunk",'
    b'"usage":{"completion_tokens":1,"prompt_tokens":5,"total_tokens":30,'
    b'"completion_tokens_details":{"reasoning_tokens":24}}}'
)

# Anthropic's native stream: usage split over message_start and message_delta.
ANTHROPIC_STREAM = [
    b'{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],'
    b'"model":"claude-sonnet-4-5","stop_reason":null,"usage":{"input_tokens":25,"cache_read_input_tokens":100,'
    b'"cache_creation_input_tokens":0,"output_tokens":1}}}',
    b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
    b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello there"}}',
    b'{"type":"content_block_stop","index":0}',
    b'{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}',
    b'{"type":"message_stop"}',
]

REQUEST = {
    "model": "gpt-4o-mini",
    "stream": True,
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hello!"},
    ],
}
