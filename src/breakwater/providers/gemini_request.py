"""Canonical chat requests to Gemini ``GenerateContentRequest`` bodies, for the client side.

Schemas go in ``parametersJsonSchema`` / ``responseJsonSchema``, not ``parameters`` /
``responseSchema``: canonical schemas are full JSON Schema, while the older fields take an OpenAPI
3.0 subset that rejects ``additionalProperties`` and more. The google-genai SDK (3.4) sends the
same fields, and its ``response_schema`` docs point to ``response_json_schema`` for such schemas.
"""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import urlsplit

import orjson

from breakwater.core.errors import InvalidRequest
from breakwater.core.types import ChatRequest, ContentPart, Message, TextPart, ToolCall
from breakwater.providers.gemini_signatures import SKIP_SIGNATURE, split_call_id

# canonical name -> generationConfig field, for the values that copy across unchanged
_GENERATION = (
    ("max_tokens", "maxOutputTokens"), ("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK"),
    ("seed", "seed"), ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty"),
    ("logprobs", "responseLogprobs"), ("top_logprobs", "logprobs"),
)  # fmt: skip
_TOOL_MODE = {"auto": "AUTO", "none": "NONE", "required": "ANY", "named": "ANY"}


def chat_body(request: ChatRequest) -> dict[str, Any]:
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name, for functionResponse parts
    tool_turn: dict[str, Any] | None = None
    for i, m in enumerate(request.messages):
        path = f"messages[{i}]"
        if m.role in ("system", "developer"):
            # one systemInstruction for the whole request, and it takes text only
            system.extend({"text": p.text} for p in m.content if isinstance(p, TextPart) and p.text)
            continue
        if m.role == "tool":
            # parallel results go back together in one user turn (function calling guide)
            if tool_turn is None:
                tool_turn = {"role": "user", "parts": []}
                contents.append(tool_turn)
            tool_turn["parts"].append({"functionResponse": _function_response(m, path, names)})
            continue
        tool_turn = None
        parts = [
            _part(p, f"{path}.content[{j}]") for j, p in enumerate(m.content) if not isinstance(p, TextPart) or p.text
        ]
        for j, call in enumerate(m.tool_calls if m.role == "assistant" else ()):
            names[call.id] = call.name
            parts.append(_function_call(call, j == 0, f"{path}.tool_calls[{j}]"))
        if parts:  # Gemini refuses empty text parts ("empty text parameter"), so an empty turn is left out
            contents.append({"role": "model" if m.role == "assistant" else "user", "parts": parts})
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    if request.tools:
        declarations = [
            {
                "name": t.name,
                **({"description": t.description} if t.description else {}),
                **({"parametersJsonSchema": t.parameters} if t.parameters else {}),  # none: a function without args
            }
            for t in request.tools
        ]
        body["tools"] = [{"functionDeclarations": declarations}]
    if request.tool_choice is not None:
        tc = request.tool_choice
        config: dict[str, Any] = {"mode": _TOOL_MODE[tc.mode]}
        if tc.mode == "named" and tc.name:
            config["allowedFunctionNames"] = [tc.name]
        body["toolConfig"] = {"functionCallingConfig": config}
    generation = _generation_config(request)
    if generation:
        body["generationConfig"] = generation
    return body


def _generation_config(request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name, key in _GENERATION:
        value = getattr(request, name)
        if value is not None:
            config[key] = value
    if request.stop:
        config["stopSequences"] = request.stop
    if request.n != 1:
        config["candidateCount"] = request.n
    rf = request.response_format
    if rf is not None and rf.type != "text":
        config["responseMimeType"] = "application/json"
        if rf.type == "json_schema" and rf.schema:
            config["responseJsonSchema"] = rf.schema
    return config


def _part(p: ContentPart, path: str) -> dict[str, Any]:
    if isinstance(p, TextPart):
        return {"text": p.text}
    if p.url.startswith("data:"):
        header, _, data = p.url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if encoding != "base64" or not data:
            raise InvalidRequest(f"'{path}.image_url.url': expected a base64 data URL", param=f"{path}.image_url.url")
        return {"inlineData": {"mimeType": mime or "image/jpeg", "data": data}}
    mime = mimetypes.guess_type(urlsplit(p.url).path)[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": p.url}}


def _function_call(call: ToolCall, first: bool, path: str) -> dict[str, Any]:
    try:
        args = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        raise InvalidRequest(f"'{path}.function.arguments': expected a JSON object", param=f"{path}.function.arguments")
    call_id, signature = split_call_id(call.id)
    part: dict[str, Any] = {"functionCall": {"id": call_id, "name": call.name, "args": args}}
    if signature is None and first:
        signature = SKIP_SIGNATURE  # a call Gemini did not make; see gemini_signatures
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def _function_response(m: Message, path: str, names: dict[str, str]) -> dict[str, Any]:
    # Gemini pairs results with calls by function name, which a tool message does not carry
    name = names.get(m.tool_call_id or "") or m.name
    if name is None:
        raise InvalidRequest(f"'{path}.tool_call_id': no earlier tool call has this id", param=f"{path}.tool_call_id")
    try:
        value = orjson.loads(m.text())
    except orjson.JSONDecodeError:
        value = m.text()
    # FunctionResponse.response must be a JSON object
    out: dict[str, Any] = {"name": name, "response": value if isinstance(value, dict) else {"result": value}}
    if m.tool_call_id:
        out["id"] = split_call_id(m.tool_call_id)[0]
    return out
