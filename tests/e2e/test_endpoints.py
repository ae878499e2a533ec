"""The other OpenAI endpoints through the real gateway: models, embeddings, legacy completions,
audio uploads, images, moderations."""

from __future__ import annotations

import hashlib

import httpx
import orjson
from support.gateway import FAILURE_CHANNELS, PROVIDER_KEY, Core
from support.schema import SpecValidator, assert_stream, parse_sse
from support.upstream import EMBEDDING_DIM, embedding_vector

PUBLIC_MODELS = {
    "gpt-4o-mini",
    "renamed",
    "gpt-3.5-turbo-instruct",
    "text-embedding-3-small",
    "whisper-1",
    "dall-e-3",
    "omni-moderation-latest",
    "slow-model",
    "sleepy-model",
    "dead-model",
    "hasty-model",
    "azure-model",
    *(f"{name}-model" for name in FAILURE_CHANNELS),
}


def test_models_lists_the_configured_public_names_in_openai_shape(core: Core, spec: SpecValidator) -> None:
    response = httpx.get(f"{core.gateway.base_url}/models", headers=core.auth, timeout=10)
    assert response.status_code == 200
    body = spec.validate("ListModelsResponse", response.json())
    assert {m["id"] for m in body["data"]} == PUBLIC_MODELS
    assert all(m["object"] == "model" for m in body["data"])


def test_models_never_names_upstream_model_names_or_upstreams(core: Core, spec: SpecValidator) -> None:
    with core.client() as client:
        raw = client.models.with_raw_response.list()
    ids = {m["id"] for m in spec.validate("ListModelsResponse", orjson.loads(raw.content))["data"]}
    assert "real-model-name" not in ids
    assert "my-deployment" not in ids


def test_embeddings_through_the_sdk_decode_to_the_upstream_vectors(core: Core) -> None:
    with core.client() as client:
        raw = client.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input=["first text", "second"]
        )
    # The SDK asks for base64 by default, which the spec's schema (arrays of numbers) does not
    # describe; the float form is schema-checked in the next test.
    assert all(isinstance(d["embedding"], str) for d in orjson.loads(raw.content)["data"])
    result = raw.parse()
    assert [d.index for d in result.data] == [0, 1]
    assert [len(d.embedding) for d in result.data] == [EMBEDDING_DIM, EMBEDDING_DIM]
    for i, text in enumerate(["first text", "second"]):
        expected = embedding_vector(text, i)
        assert all(abs(a - b) < 1e-5 for a, b in zip(result.data[i].embedding, expected))
    assert result.usage.prompt_tokens == result.usage.total_tokens == 5
    assert core.upstream.last.json["input"] == ["first text", "second"]


def test_embeddings_float_response_matches_the_spec(core: Core, spec: SpecValidator) -> None:
    body = {"model": "text-embedding-3-small", "input": "one", "encoding_format": "float"}
    response = httpx.post(f"{core.gateway.base_url}/embeddings", json=body, headers=core.auth, timeout=10)
    assert response.status_code == 200
    data = spec.validate("CreateEmbeddingResponse", response.json())
    assert data["data"][0]["embedding"] == embedding_vector("one", 0)


def test_completions_return_the_upstream_text(core: Core, spec: SpecValidator) -> None:
    with core.client() as client:
        raw = client.completions.with_raw_response.create(model="gpt-3.5-turbo-instruct", prompt="say hi")
    body = spec.validate("CreateCompletionResponse", orjson.loads(raw.content))
    assert body["choices"][0]["text"].startswith("Echo: say hi")
    assert core.upstream.last.path == "/v1/completions"
    assert core.upstream.last.json["prompt"] == "say hi"


def test_completions_stream_ends_with_done(core: Core) -> None:
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "say hi", "stream": True}
    response = httpx.post(f"{core.gateway.base_url}/completions", json=body, headers=core.auth, timeout=10)
    assert response.status_code == 200
    # Not schema-checked chunk by chunk: the spec's CreateCompletionResponse forbids the
    # `finish_reason: null` that every streamed completion chunk but the last carries.
    chunks = assert_stream(parse_sse(response.content))
    assert all(c["object"] == "text_completion" for c in chunks)
    with core.client() as client:
        chunks = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="say hi", stream=True))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text.startswith("Echo: say hi")
    assert chunks[-1].choices, (
        f"the last chunk has no choices (a usage chunk nobody asked for?): {chunks[-1]}"
    )
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_audio_upload_reaches_the_upstream_byte_for_byte(core: Core, spec: SpecValidator) -> None:
    audio = hashlib.sha256(b"seed").digest() * 6000  # 192 kB of non-repeating-looking bytes
    with core.client() as client:
        raw = client.audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=("meeting.mp3", audio, "audio/mpeg")
        )
    spec.validate("CreateTranscriptionResponseJson", orjson.loads(raw.content))
    result = raw.parse()
    upload = core.upstream.last.form["file"]
    assert upload["filename"] == "meeting.mp3"
    assert upload["size"] == len(audio)
    assert upload["sha256"] == hashlib.sha256(audio).hexdigest()
    assert core.upstream.last.form["model"] == "whisper-1"
    assert result.text == f"meeting.mp3:{len(audio)}"
    assert core.upstream.last.authorization == f"Bearer {PROVIDER_KEY}"


def test_image_generation_passes_through(core: Core, spec: SpecValidator) -> None:
    with core.client() as client:
        raw = client.images.with_raw_response.generate(model="dall-e-3", prompt="a sluice gate at dawn", n=2)
    spec.validate("ImagesResponse", orjson.loads(raw.content))
    result = raw.parse()
    assert [img.url for img in result.data] == [
        "https://images.example.invalid/0.png",
        "https://images.example.invalid/1.png",
    ]
    assert core.upstream.last.json == {"model": "dall-e-3", "prompt": "a sluice gate at dawn", "n": 2}


def test_moderations_pass_through_unchanged(core: Core, spec: SpecValidator) -> None:
    body = {"model": "omni-moderation-latest", "input": ["hello", "world"]}
    response = httpx.post(f"{core.gateway.base_url}/moderations", json=body, headers=core.auth, timeout=10)
    assert response.status_code == 200
    result = spec.validate("CreateModerationResponse", response.json())
    assert result["results"][0]["flagged"] is False
    assert result["id"].startswith("modr-")
    assert core.upstream.last.path == "/v1/moderations"
    assert core.upstream.last.json == body
    assert core.upstream.last.authorization == f"Bearer {PROVIDER_KEY}"


def test_retrieving_one_model_returns_it_in_openai_shape(core: Core, spec: SpecValidator) -> None:
    with core.client() as client:
        raw = client.models.with_raw_response.retrieve("renamed")
    spec.validate("Model", orjson.loads(raw.content))
    model = raw.parse()
    assert model.id == "renamed"
    assert model.object == "model"
    assert model.owned_by


def test_retrieving_an_unknown_model_is_404(core: Core, spec: SpecValidator) -> None:
    response = httpx.get(f"{core.gateway.base_url}/models/gpt-nonexistent", headers=core.auth, timeout=10)
    assert response.status_code == 404
    spec.validate("ErrorResponse", response.json())
    assert response.json()["error"]["code"] == "model_not_found"
