"""The Gemini API wire format, server side: read client requests.

The counterpart of ``breakwater.providers.gemini_request``; responses, streams and error bodies
are written by ``breakwater.providers.gemini_serve``. The mock provider uses both when it plays
Gemini. The model and stream-ness come from the URL (``models/{model}:streamGenerateContent``),
so the decoders take them as arguments.

Field names: Gemini speaks proto3 JSON, whose parsers accept both the lowerCamel name and the
proto's snake_case name, and the google-genai SDK really does send a mix (``inlineData`` holding
``mime_type``, ``parameters_json_schema``), so objects are read through ``_obj``, which folds keys
to lowerCamel; parameter paths in errors therefore use the documented lowerCamel names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from breakwater.core.errors import InvalidRequest
from breakwater.core.types import (
    ChatRequest,
    ContentPart,
    EmbeddingRequest,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
)
from breakwater.providers import fields as f
from breakwater.providers.gemini_signatures import join_call_id

_KNOWN = frozenset({"contents", "systemInstruction", "generationConfig", "tools", "toolConfig"})
_KNOWN_GENERATION = frozenset(
    {
        "maxOutputTokens", "temperature", "topP", "topK", "candidateCount", "stopSequences", "seed",
        "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs", "responseMimeType",
        "responseSchema", "responseJsonSchema",
    }
)  # fmt: skip
_MODES: dict[str, ToolChoiceMode] = {"AUTO": "auto", "NONE": "none", "ANY": "required"}


def _obj(value: Any, path: str) -> dict[str, Any]:
    """An object with its keys in lowerCamel, so ``mime_type`` reads as ``mimeType`` (values untouched)."""
    return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): v for k, v in f.obj(value, path).items()}


def decode_chat_request(body: Any, model: str, stream: bool) -> ChatRequest:
    """Validate a ``GenerateContentRequest`` body into a ``ChatRequest``; model and stream come from the URL."""
    body = _obj(body, "body")
    extra = [k for k in body if k not in _KNOWN]  # safetySettings, cachedContent, ...
    messages: list[Message] = []
    if body.get("systemInstruction") is not None:
        messages.append(Message("system", [TextPart(_text(body["systemInstruction"], "systemInstruction"))]))
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise InvalidRequest("'contents' must be a non-empty array", param="contents")
    calls = _Calls()
    for i, c in enumerate(contents):
        messages.extend(_content(c, f"contents[{i}]", calls, extra))
    gc = _obj(body.get("generationConfig") or {}, "generationConfig")
    g = "generationConfig."
    extra.extend(g + k for k in gc if k not in _KNOWN_GENERATION)  # thinkingConfig, responseModalities, ...
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=True,  # Gemini streams always carry usageMetadata
        max_tokens=f.opt_int(gc, "maxOutputTokens", g, minimum=1),
        temperature=f.opt_num(gc, "temperature", g, lo=0, hi=2),
        top_p=f.opt_num(gc, "topP", g, lo=0, hi=1),
        top_k=_whole(gc, "topK", g),
        stop=f.str_list(gc.get("stopSequences"), g + "stopSequences"),
        seed=f.opt_int(gc, "seed", g),
        n=f.opt_int(gc, "candidateCount", g, minimum=1) or 1,
        presence_penalty=f.opt_num(gc, "presencePenalty", g, lo=-2, hi=2),
        frequency_penalty=f.opt_num(gc, "frequencyPenalty", g, lo=-2, hi=2),
        logprobs=f.opt_bool(gc, "responseLogprobs", g) or None,
        top_logprobs=f.opt_int(gc, "logprobs", g, minimum=0),
        tools=_tools(body, extra),
        tool_choice=_tool_choice(body, extra),
        response_format=_response_format(gc, extra),
        extra_params=extra,
    )


@dataclass(slots=True)
class _Calls:
    """Pairs functionResponse parts with calls: by id when the client sent one, else by name in order."""

    count: int = 0
    canonical: dict[str, str] = field(default_factory=dict)  # bare id -> id with the thought signature
    waiting: dict[str, list[str]] = field(default_factory=dict)  # function name -> ids not yet answered

    def call(self, name: str, call_id: str | None, signature: str | None) -> str:
        bare = call_id or self._new()
        full = self.canonical[bare] = join_call_id(bare, signature)
        self.waiting.setdefault(name, []).append(full)
        return full

    def result(self, name: str, call_id: str | None) -> str:
        waiting = self.waiting.get(name, [])
        if call_id is None:
            return waiting.pop(0) if waiting else self._new()
        full = self.canonical.get(call_id, call_id)
        if full in waiting:
            waiting.remove(full)
        return full

    def _new(self) -> str:
        self.count += 1
        return f"call_{self.count - 1}"


def _text(value: Any, path: str) -> str:
    """The text of a text-only Content (systemInstruction, an embedding input)."""
    parts = f.opt_list(f.obj(value, path), "parts", path + ".")
    return "".join(
        f.req_str(f.obj(p, f"{path}.parts[{j}]"), "text", f"{path}.parts[{j}].") for j, p in enumerate(parts)
    )


def _content(value: Any, path: str, calls: _Calls, extra: list[str]) -> list[Message]:
    c = f.obj(value, path)
    role = c.get("role", "user")  # optional for single-turn requests (API reference, Content)
    if role not in ("user", "model", "function"):  # "function": the legacy role of function results
        raise InvalidRequest(f"'{path}.role': expected 'user' or 'model'", param=f"{path}.role")
    parts = f.opt_list(c, "parts", path + ".")
    if not parts:
        raise InvalidRequest(f"'{path}.parts' must be a non-empty array", param=f"{path}.parts")
    content: list[ContentPart] = []
    tool_calls: list[ToolCall] = []
    results: list[Message] = []
    for j, raw in enumerate(parts):
        pp = f"{path}.parts[{j}]."
        p = _obj(raw, pp[:-1])
        if "text" in p:
            text = f.req_str(p, "text", pp)
            if text and not p.get("thought"):  # thought summaries are not conversation
                content.append(TextPart(text))
        elif "inlineData" in p:
            blob = _obj(p["inlineData"], pp + "inlineData")
            mime, data = f.req_str(blob, "mimeType", pp + "inlineData."), f.req_str(blob, "data", pp + "inlineData.")
            content.append(ImagePart(f"data:{mime};base64,{data}"))
        elif "fileData" in p:
            content.append(ImagePart(f.req_str(_obj(p["fileData"], pp + "fileData"), "fileUri", pp + "fileData.")))
        elif "functionCall" in p and role == "model":
            fc = f.obj(p["functionCall"], pp + "functionCall")
            name = f.req_str(fc, "name", pp + "functionCall.")
            args = f.obj(fc.get("args") or {}, pp + "functionCall.args")
            call_id = calls.call(name, f.opt_str(fc, "id", pp + "functionCall."), f.opt_str(p, "thoughtSignature", pp))
            tool_calls.append(ToolCall(call_id, name, orjson.dumps(args).decode()))
        elif "functionResponse" in p and role != "model":
            fr = f.obj(p["functionResponse"], pp + "functionResponse")
            name = f.req_str(fr, "name", pp + "functionResponse.")
            response = f.obj(fr.get("response") or {}, pp + "functionResponse.response")
            call_id = calls.result(name, f.opt_str(fr, "id", pp + "functionResponse."))
            results.append(
                Message("tool", [TextPart(orjson.dumps(response).decode())], tool_call_id=call_id, name=name)
            )
        elif "functionCall" in p or "functionResponse" in p:
            kind = "functionCall" if "functionCall" in p else "functionResponse"
            raise InvalidRequest(f"'{pp}{kind}' is not allowed in a '{role}' turn", param=pp + kind)
        else:  # executableCode, videoMetadata, ...: nothing canonical carries them
            extra.extend(pp + k for k in p if k != "thoughtSignature")
    if role == "model":
        return [Message("assistant", content, tool_calls)] if content or tool_calls else []
    # results first: a tool message must directly follow the assistant turn that called it
    return results + ([Message("user", content)] if content else [])


def _whole(body: dict[str, Any], key: str, path: str) -> int | None:
    """topK: documented as an integer, but the google-genai SDK sends it as a float (``3.0``)."""
    value = f.opt_num(body, key, path)
    if value is not None and (not value.is_integer() or value < 1):
        raise f.bad(path + key, "a whole number >= 1")
    return None if value is None else int(value)


def _tools(body: dict[str, Any], extra: list[str]) -> list[Tool]:
    tools: list[Tool] = []
    for i, raw in enumerate(f.opt_list(body, "tools")):
        t = _obj(raw, f"tools[{i}]")
        extra.extend(f"tools[{i}].{k}" for k in t if k != "functionDeclarations")  # googleSearch, codeExecution, ...
        for j, d in enumerate(f.opt_list(t, "functionDeclarations", f"tools[{i}].")):
            dp = f"tools[{i}].functionDeclarations[{j}]."
            d = _obj(d, dp[:-1])
            if "parametersJsonSchema" in d:
                params = f.obj(d["parametersJsonSchema"], dp + "parametersJsonSchema")
            else:
                params = _lower_types(f.obj(d.get("parameters") or {}, dp + "parameters"))
            tools.append(Tool(f.req_str(d, "name", dp), f.opt_str(d, "description", dp), params))
    return tools


def _lower_types(schema: Any) -> Any:
    """An OpenAPI-subset Schema (``"type": "OBJECT"``) as JSON Schema (``"type": "object"``)."""
    if isinstance(schema, dict):
        return {k: v.lower() if k == "type" and isinstance(v, str) else _lower_types(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def _tool_choice(body: dict[str, Any], extra: list[str]) -> ToolChoice | None:
    if body.get("toolConfig") is None:
        return None
    path = "toolConfig.functionCallingConfig"
    fcc = _obj(_obj(body["toolConfig"], "toolConfig").get("functionCallingConfig") or {}, path)
    mode = f.opt_str(fcc, "mode", path + ".") or "MODE_UNSPECIFIED"
    names = f.str_list(fcc.get("allowedFunctionNames"), path + ".allowedFunctionNames")
    if mode == "ANY" and len(names) == 1:
        return ToolChoice("named", names[0])
    if names:
        extra.append(path + ".allowedFunctionNames")  # a subset of several tools has no canonical form
    if mode in _MODES:
        return ToolChoice(_MODES[mode])
    if mode == "VALIDATED":
        extra.append(path + ".mode=VALIDATED")
    elif mode != "MODE_UNSPECIFIED":
        raise f.bad(path + ".mode", "one of AUTO, ANY, NONE, VALIDATED")
    return None


def _response_format(gc: dict[str, Any], extra: list[str]) -> ResponseFormat | None:
    mime = f.opt_str(gc, "responseMimeType", "generationConfig.")
    schema: dict[str, Any] | None = None
    if "responseJsonSchema" in gc:
        schema = f.obj(gc["responseJsonSchema"], "generationConfig.responseJsonSchema")
    elif "responseSchema" in gc:
        schema = _lower_types(f.obj(gc["responseSchema"], "generationConfig.responseSchema"))
    if mime == "application/json":
        return (
            ResponseFormat("json_schema", schema=schema, name="response") if schema else ResponseFormat("json_object")
        )
    if schema is not None:
        raise InvalidRequest(
            "'generationConfig.responseMimeType' must be 'application/json' with a response schema",
            param="generationConfig.responseMimeType",
        )
    if mime not in (None, "text/plain"):
        extra.append(f"generationConfig.responseMimeType={mime}")  # text/x.enum and friends
    return None


def decode_embeddings_request(body: Any, model: str) -> EmbeddingRequest:
    """Validate a ``batchEmbedContents`` body; the model comes from the URL."""
    requests = f.opt_list(f.obj(body, "body"), "requests")
    if not requests:
        raise InvalidRequest("'requests' must be a non-empty array", param="requests")
    inputs: list[str] = []
    dimensions: set[int | None] = set()
    for i, raw in enumerate(requests):
        r = _obj(raw, f"requests[{i}]")
        inputs.append(_text(r.get("content"), f"requests[{i}].content"))
        dimensions.add(f.opt_int(r, "outputDimensionality", f"requests[{i}].", minimum=1))
    if len(dimensions) > 1:  # one canonical request has one dimension
        raise InvalidRequest("'requests[].outputDimensionality' must be the same in every request", param="requests")
    return EmbeddingRequest(model=model, inputs=inputs, dimensions=dimensions.pop())
