"""Canonical chat request → Gemini `generateContent` request: the native Gemini adapter's outbound half.

Chat is the canonical shape, so OpenAI clients (and Responses / Messages clients, after their own
codec's translation) reach Gemini through here. Gemini's thought signatures on function calls travel
in chat as Google's own OpenAI-compatible endpoint carries them (`tool_calls[].extra_content.google.
thought_signature`), so a client that sends the turn back keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluicegate.providers.anthropic_answer import parse_arguments
from sluicegate.providers.chat_pieces import texts

# reasoning_effort → thinkingBudget (tokens); "none" turns thinking off where the model allows it.
EFFORT_BUDGET = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}


def chat_to_gemini(chat: Mapping[str, Any]) -> dict[str, Any]:
    """A chat request as a GenerateContentRequest body (raises ValueError for what cannot be sent)."""
    messages = chat.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list.")
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id → function name (functionResponse needs the name)
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping):
            raise ValueError(f"messages[{i}] must be an object.")
        role = msg.get("role")
        if role in ("system", "developer"):
            system.extend({"text": t} for t in texts(msg.get("content")))
        elif role == "user":
            _append(contents, "user", _user_parts(msg.get("content")))
        elif role == "assistant":
            parts = _model_parts(msg, names)
            if parts:
                _append(contents, "model", parts)
        elif role in ("tool", "function"):
            call_id = msg.get("tool_call_id")
            name = names.get(call_id, msg.get("name")) if isinstance(call_id, str) else msg.get("name")
            text = "".join(texts(msg.get("content")))
            response: dict[str, Any] = {"name": name or "tool", "response": {"content": text}}
            if isinstance(call_id, str):
                response["id"] = call_id
            _append(contents, "user", [{"functionResponse": response}])
        else:
            raise ValueError(f"messages[{i}].role {role!r} is not supported.")
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    config = _generation_config(chat)
    if config:
        body["generationConfig"] = config
    tools = chat.get("tools")
    if isinstance(tools, list) and tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in tools if isinstance(t, Mapping)]}]
        choice = _tool_config(chat.get("tool_choice"))
        if choice:
            body["toolConfig"] = choice
    return body


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _user_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return [{"text": content or ""}]
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": part.get("text") or ""})
        elif kind == "image_url":
            ref = part.get("image_url")
            url = ref.get("url") if isinstance(ref, Mapping) else ref
            if not isinstance(url, str):
                raise ValueError("image_url.url must be a string.")
            if url.startswith("data:"):
                head, _, data = url.partition(",")
                parts.append(
                    {"inlineData": {"mimeType": head[5:].split(";", 1)[0] or "image/png", "data": data}}
                )
            else:
                parts.append({"fileData": {"fileUri": url}})
        else:
            raise ValueError(f"Content part {kind!r} cannot be sent to a Gemini upstream.")
    return parts or [{"text": ""}]


def _model_parts(msg: Mapping[str, Any], names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"text": t} for t in texts(msg.get("content"))]
    calls = msg.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        fn = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(fn, Mapping):
            continue
        name = str(fn.get("name") or "")
        if isinstance(call.get("id"), str):
            names[call["id"]] = name
        part: dict[str, Any] = {"functionCall": {"name": name, "args": parse_arguments(fn.get("arguments"))}}
        signature = ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")
        if isinstance(signature, str):
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _generation_config(chat: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if isinstance(chat.get(ours), (int, float)) and not isinstance(chat.get(ours), bool):
            config[theirs] = chat[ours]
    for key in ("max_completion_tokens", "max_tokens"):
        if isinstance(chat.get(key), int) and not isinstance(chat.get(key), bool):
            config["maxOutputTokens"] = chat[key]
            break
    stop = chat.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = [s for s in stop if isinstance(s, str)]
    if isinstance(chat.get("n"), int) and chat["n"] > 1:
        config["candidateCount"] = chat["n"]
    fmt = chat.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
        if isinstance(schema, Mapping):
            config["responseJsonSchema"] = schema
    effort = chat.get("reasoning_effort")
    if isinstance(effort, str) and effort in EFFORT_BUDGET:
        budget = EFFORT_BUDGET[effort]
        config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": budget > 0}
    return config


def _declaration(tool: Mapping[str, Any]) -> dict[str, Any]:
    fn = tool.get("function")
    if tool.get("type") != "function" or not isinstance(fn, Mapping):
        raise ValueError("Only function tools can be sent to a Gemini upstream.")
    out: dict[str, Any] = {"name": fn.get("name")}
    if fn.get("description"):
        out["description"] = fn["description"]
    if isinstance(fn.get("parameters"), Mapping) and fn["parameters"].get("properties"):
        out["parametersJsonSchema"] = fn["parameters"]
    return out


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice == "none":
        return {"functionCallingConfig": {"mode": "NONE"}}
    if choice == "required":
        return {"functionCallingConfig": {"mode": "ANY"}}
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        return {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice["function"].get("name")]}
        }
    return None
