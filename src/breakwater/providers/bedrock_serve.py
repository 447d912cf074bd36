"""The Bedrock Converse wire format, server side: read Converse requests, write responses, streams
and error bodies. The mock provider uses it when it plays Bedrock.

The counterpart of ``breakwater.providers.bedrock`` and ``bedrock_request``. The model and
stream-ness come from the URL (``/model/{modelId}/converse-stream``). A stream is AWS event-stream
messages (``:message-type: event``, ``:event-type``, ``:content-type: application/json``), in
ConverseStream's order: ``messageStart``, per block ``contentBlockStart`` (tool calls),
``contentBlockDelta``, ``contentBlockStop``, then ``messageStop`` and ``metadata``.
"""

from __future__ import annotations

from typing import Any

import orjson

from breakwater.core.errors import InvalidRequest
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    ContentPart,
    FinishEvent,
    FinishReason,
    ImagePart,
    Message,
    PassthroughChunk,
    StreamEvent,
    StreamStart,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
    UsageEvent,
)
from breakwater.providers import fields as f
from breakwater.providers.bedrock_request import IMAGE_FORMATS
from breakwater.providers.eventstream import encode_message

_KNOWN = frozenset({"messages", "system", "inferenceConfig", "toolConfig", "modelId"})
#: a ``cachePoint`` block read as the canonical breakpoint on the block before it
_CHECKPOINT = {"type": "ephemeral"}
_FORMAT_MIME = {v: k for k, v in IMAGE_FORMATS.items()}
_STOP_OUT: dict[FinishReason, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "content_filtered",
    "error": "malformed_model_output",
}
#: canonical error type hints -> (HTTP status, Bedrock exception name)
EXCEPTIONS: dict[int, str] = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


# --- requests ------------------------------------------------------------------------------------


def decode_chat_request(body: Any, model: str, stream: bool) -> ChatRequest:
    """Validate a Converse body into a ``ChatRequest``; ``model`` and ``stream`` come from the URL."""
    body = f.obj(body, "body")
    extra = [k for k in body if k not in _KNOWN]  # guardrailConfig, additionalModelRequestFields, ...
    messages: list[Message] = []
    for i, block in enumerate(f.opt_list(body, "system")):
        block = f.obj(block, f"system[{i}]")
        if "text" in block:
            messages.append(Message("system", [TextPart(f.req_str(block, "text", f"system[{i}]."))]))
        elif "cachePoint" in block and messages:
            messages[-1].content[-1].cache_control = dict(_CHECKPOINT)
        else:
            extra.extend(f"system[{i}].{k}" for k in block)
    raw_messages = f.opt_list(body, "messages")
    if not raw_messages:
        raise InvalidRequest("'messages' must hold at least one message", param="messages")
    for i, value in enumerate(raw_messages):
        messages.extend(_message(value, f"messages[{i}]", extra))
    config = f.obj(body.get("inferenceConfig") or {}, "inferenceConfig")
    stop = config.get("stopSequences")
    tools, choice = _tool_config(body.get("toolConfig"), extra)
    marked = any(_marked(m) for m in messages) or any(t.cache_control is not None for t in tools)
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        cache_breakpoints=marked,
        include_usage=stream,
        max_tokens=f.opt_int(config, "maxTokens", "inferenceConfig.", minimum=1),
        temperature=f.opt_num(config, "temperature", "inferenceConfig.", 0, 1),
        top_p=f.opt_num(config, "topP", "inferenceConfig.", 0, 1),
        stop=f.str_list(stop, "inferenceConfig.stopSequences") if stop is not None else [],
        tools=tools,
        tool_choice=choice,
        extra_params=extra,
    )


def _message(value: Any, path: str, extra: list[str]) -> list[Message]:
    """One Converse turn: a user turn's tool results become tool messages, before its other blocks."""
    m = f.obj(value, path)
    role = f.req_str(m, "role", path + ".")
    if role not in ("user", "assistant"):
        raise f.bad(path + ".role", "'user' or 'assistant'")
    parts: list[ContentPart] = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    last: ContentPart | ToolCall | Message | None = None  # what a cachePoint block marks
    for j, block in enumerate(f.opt_list(m, "content", path + ".")):
        where = f"{path}.content[{j}]"
        block = f.obj(block, where)
        if "text" in block:
            last = TextPart(f.req_str(block, "text", where + "."))
            parts.append(last)
        elif "image" in block:
            last = _image(block["image"], where + ".image")
            parts.append(last)
        elif "toolUse" in block and role == "assistant":
            use = f.obj(block["toolUse"], where + ".toolUse")
            arguments = orjson.dumps(f.obj(use.get("input", {}), where + ".toolUse.input")).decode()
            last = ToolCall(f.req_str(use, "toolUseId", where + ".toolUse."), f.req_str(use, "name", where + ".toolUse."), arguments)  # fmt: skip
            calls.append(last)
        elif "toolResult" in block and role == "user":
            last = _tool_result(block["toolResult"], where + ".toolResult", extra)
            results.append(last)
        elif "cachePoint" in block and last is not None:
            last.cache_control = dict(_CHECKPOINT)
        else:
            extra.extend(f"{where}.{k}" for k in block)
    if role == "assistant":
        return [Message("assistant", parts, calls)]
    return [*results, Message("user", parts)] if parts or not results else results


def _marked(m: Message) -> bool:
    return (
        m.cache_control is not None
        or any(p.cache_control is not None for p in m.content)
        or any(c.cache_control is not None for c in m.tool_calls)
    )


def _image(value: Any, path: str) -> ImagePart:
    image = f.obj(value, path)
    image_format = f.req_str(image, "format", path + ".")
    source = f.obj(image.get("source"), path + ".source")
    if "bytes" in source:
        return ImagePart(
            f"data:{_FORMAT_MIME.get(image_format, 'image/png')};base64,{f.req_str(source, 'bytes', path + '.source.')}"
        )
    location = f.obj(source.get("s3Location"), path + ".source.s3Location")
    return ImagePart(f.req_str(location, "uri", path + ".source.s3Location."))


def _tool_result(value: Any, path: str, extra: list[str]) -> Message:
    result = f.obj(value, path)
    parts: list[ContentPart] = []
    for k, block in enumerate(f.opt_list(result, "content", path + ".")):
        block = f.obj(block, f"{path}.content[{k}]")
        if "json" in block:
            parts.append(TextPart(orjson.dumps(block["json"]).decode()))
        elif "text" in block:
            parts.append(TextPart(f.req_str(block, "text", f"{path}.content[{k}].")))
        elif "image" in block:
            parts.append(_image(block["image"], f"{path}.content[{k}].image"))
        else:
            extra.extend(f"{path}.content[{k}].{key}" for key in block)
    return Message("tool", parts, tool_call_id=f.req_str(result, "toolUseId", path + "."))


def _tool_config(value: Any, extra: list[str]) -> tuple[list[Tool], ToolChoice | None]:
    if value is None:
        return [], None
    config = f.obj(value, "toolConfig")
    tools: list[Tool] = []
    for i, item in enumerate(f.opt_list(config, "tools", "toolConfig.")):
        path = f"toolConfig.tools[{i}]"
        item = f.obj(item, path)
        if "cachePoint" in item and tools:
            tools[-1].cache_control = dict(_CHECKPOINT)
            continue
        if "toolSpec" not in item:
            extra.extend(f"{path}.{k}" for k in item)
            continue
        spec = f.obj(item["toolSpec"], path + ".toolSpec")
        schema = f.obj(f.obj(spec.get("inputSchema"), path + ".toolSpec.inputSchema").get("json"), path + ".toolSpec.inputSchema.json")  # fmt: skip
        name = f.req_str(spec, "name", path + ".toolSpec.")
        tools.append(Tool(name, f.opt_str(spec, "description", path + ".toolSpec."), schema))
    choice = None
    if config.get("toolChoice") is not None:
        raw = f.obj(config["toolChoice"], "toolConfig.toolChoice")
        if "any" in raw:
            choice = ToolChoice("required")
        elif "tool" in raw:
            choice = ToolChoice("named", f.req_str(f.obj(raw["tool"], "toolConfig.toolChoice.tool"), "name", "toolConfig.toolChoice.tool."))  # fmt: skip
        elif "auto" in raw:
            choice = ToolChoice("auto")
        else:
            raise f.bad("toolConfig.toolChoice", "one of 'auto', 'any' or 'tool'")
    f.check_tool_choice(choice, tools)
    return tools, choice


# --- responses -----------------------------------------------------------------------------------


def usage_json(usage: Usage) -> dict[str, int]:
    """Canonical usage as Converse's TokenUsage (``inputTokens`` without the cache's tokens)."""
    plain = max(0, usage.input_tokens - usage.cached_input_tokens - usage.cache_creation_input_tokens)
    out = {"inputTokens": plain, "outputTokens": usage.output_tokens, "totalTokens": usage.total_tokens}
    if usage.cached_input_tokens:
        out["cacheReadInputTokens"] = usage.cached_input_tokens
    if usage.cache_creation_input_tokens:
        out["cacheWriteInputTokens"] = usage.cache_creation_input_tokens
    return out


def encode_chat_response(response: ChatResponse, latency_ms: int = 0) -> bytes:
    """A ``ConverseResponse`` of choice 0 (Converse answers one choice)."""
    choice = response.choices[0]
    content: list[dict[str, Any]] = [{"text": p.text} for p in choice.message.content if isinstance(p, TextPart)]
    content.extend(
        {"toolUse": {"toolUseId": c.id, "name": c.name, "input": orjson.loads(c.arguments or "{}")}}
        for c in choice.message.tool_calls
    )
    out: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": _stop_reason(choice.finish_reason, choice.stop_sequence),
        "metrics": {"latencyMs": latency_ms},
    }
    if response.usage is not None:
        out["usage"] = usage_json(response.usage)
    return orjson.dumps(out)


def error_body(message: str) -> bytes:
    """A rest-json error body; the exception's name travels in the ``x-amzn-ErrorType`` header."""
    return orjson.dumps({"message": message})


def exception_name(status: int) -> str:
    """The Bedrock exception a status stands for (``ValidationException`` for an unlisted 4xx)."""
    return EXCEPTIONS.get(status) or ("InternalServerException" if status >= 500 else "ValidationException")


def _stop_reason(reason: FinishReason | None, stop_sequence: str | None) -> str:
    if reason == "stop" and stop_sequence:
        return "stop_sequence"
    return _STOP_OUT.get(reason or "stop", "end_turn")


def _event(name: str, data: dict[str, Any]) -> bytes:
    headers = {":event-type": name, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, orjson.dumps(data))


class StreamEncoder:
    """Canonical stream events (choice 0) to ConverseStream event-stream messages.

    Each content block is opened and closed around its deltas; the stop reason is held for
    ``messageStop`` and usage for ``metadata``, both written by ``end()``.
    """

    def __init__(self, request: ChatRequest) -> None:
        self._block = -1  # index of the open content block
        self._open: str | None = None  # "text" or "tool:<n>"
        self._reason: FinishReason | None = None
        self._stop_sequence: str | None = None
        self._usage: Usage | None = None
        self._started = False
        self._ended = False

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return _event("messageStart", {"role": "assistant"})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event("contentBlockStop", {"contentBlockIndex": self._block})

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, StreamStart):
            return self._start()
        if isinstance(event, TextDelta):
            if event.index != 0:
                return b""
            out = self._start()
            if self._open != "text":
                out += self._close()
                self._block += 1
                self._open = "text"
            return out + _event("contentBlockDelta", {"contentBlockIndex": self._block, "delta": {"text": event.text}})
        if isinstance(event, ToolCallDelta):
            if event.index != 0:
                return b""
            out = self._start()
            key = f"tool:{event.tool_index}"
            if self._open != key:
                out += self._close()
                self._block += 1
                self._open = key
                start = {"toolUse": {"toolUseId": event.id or f"tooluse_{event.tool_index}", "name": event.name or ""}}
                out += _event("contentBlockStart", {"contentBlockIndex": self._block, "start": start})
            if event.arguments:
                delta = {"toolUse": {"input": event.arguments}}
                out += _event("contentBlockDelta", {"contentBlockIndex": self._block, "delta": delta})
            return out
        if isinstance(event, FinishEvent):
            if event.index == 0:
                self._reason, self._stop_sequence = event.reason, event.stop_sequence
            return b""
        if isinstance(event, UsageEvent):
            self._usage = event.usage
            return b""
        if isinstance(event, PassthroughChunk):
            raise TypeError("an OpenAI pass-through chunk cannot be re-encoded as a Bedrock event")
        raise TypeError(f"unknown stream event {event!r}")

    def end(self) -> bytes:
        if self._ended:
            return b""
        self._ended = True
        out = self._start() + self._close()
        out += _event("messageStop", {"stopReason": _stop_reason(self._reason, self._stop_sequence)})
        metadata: dict[str, Any] = {"metrics": {"latencyMs": 0}}
        if self._usage is not None:
            metadata["usage"] = usage_json(self._usage)
        return out + _event("metadata", metadata)

    def error(self, message: str, type_: str, code: str | None) -> bytes:
        """An ``exception`` message; no ``messageStop`` follows, so the stream never looks complete."""
        key = f"{code or ''} {type_}".lower()
        name = "throttlingException" if "rate" in key else "internalServerException"
        if "invalid" in key or "bad_request" in key:
            name = "validationException"
        headers = {":exception-type": name, ":content-type": "application/json", ":message-type": "exception"}
        return encode_message(headers, orjson.dumps({"message": message}))
