"""The OpenAI chat wire format, server side: read client requests, write responses and streams.

The counterpart of ``breakwater.providers.openai`` (which writes requests and reads
responses). Breakwater's ``/v1/chat/completions`` uses this, and so does the mock provider when
it plays OpenAI; embeddings are in ``openai_embeddings_serve``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeGuard

import orjson

from breakwater.core.errors import InvalidRequest
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    ContentPart,
    FinishEvent,
    ImagePart,
    Message,
    PassthroughChunk,
    ResponseFormat,
    Role,
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
from breakwater.providers.sse import encode_sse

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
#: OpenAI's ceiling for ``top_logprobs``
MAX_TOP_LOGPROBS = 20
DONE = b"data: [DONE]\n\n"
#: the body field that carries cache directives (docs/caching.md), kept from the upstream
CACHE_FIELD = "breakwater_cache"
#: the body field that names a prompt of the registry (docs/prompts.md), on both wires
PROMPT_FIELD = "prompt"


# --- requests ---------------------------------------------------------------------------------


def decode_chat_request(body: Any) -> ChatRequest:
    """Validate an OpenAI chat completions body into a ``ChatRequest`` (keeping it as ``raw``).

    This runs on every request, so it visits only the keys the client sent (one dict lookup
    each) instead of probing for every optional field.
    """
    body = f.obj(body, "body")
    request = ChatRequest(model="", messages=[], raw=body)
    for key, value in body.items():
        if value is None:
            continue
        setter = _SETTERS.get(key)
        if setter is None:
            request.extra_params.append(key)
        else:
            setter(request, value)
    if not request.model:
        raise InvalidRequest("'model' is required", param="model")
    if request.cache_directive is not None:  # Breakwater's own field: not for the upstream
        request.raw = {k: v for k, v in body.items() if k != CACHE_FIELD}
    if not request.messages and request.prompt is None:  # a prompt brings messages of its own
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    f.check_tool_choice(request.tool_choice, request.tools)
    if request.top_logprobs and not request.logprobs:
        raise InvalidRequest("'top_logprobs' needs 'logprobs': true", param="top_logprobs")
    return request


def _set_model(r: ChatRequest, v: Any) -> None:
    if not isinstance(v, str):
        raise f.bad("model", "a string")
    r.model = v


def _set_messages(r: ChatRequest, v: Any) -> None:
    if not isinstance(v, list):
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    r.messages = [_message(m, i, r) for i, m in enumerate(v)]


def _set_stream_options(r: ChatRequest, v: Any) -> None:
    r.include_usage = bool(f.opt_bool(f.obj(v, "stream_options"), "include_usage", "stream_options."))


def _set_max_completion_tokens(r: ChatRequest, v: Any) -> None:
    r.max_tokens = f.as_int(v, "max_completion_tokens", 1)


def _set_max_tokens(r: ChatRequest, v: Any) -> None:
    value = f.as_int(v, "max_tokens", 1)
    if r.raw is None or r.raw.get("max_completion_tokens") is None:  # the newer name wins, in any key order
        r.max_tokens = value


def _set_n(r: ChatRequest, v: Any) -> None:
    r.n = f.as_int(v, "n", 1) or 1


def _set_tools(r: ChatRequest, v: Any) -> None:
    if not isinstance(v, list):
        raise f.bad("tools", "an array")
    r.tools = [_tool(t, i, r) for i, t in enumerate(v)]


def _set_prompt(r: ChatRequest, v: Any) -> None:
    r.prompt = f.prompt_reference(v)
    r.extra_params.append(PROMPT_FIELD)  # until the prompts stage renders it (docs/prompts.md)


_Setter = Callable[[ChatRequest, Any], None]
_SETTERS: dict[str, _Setter] = {
    "model": _set_model,
    "messages": _set_messages,
    "stream": lambda r, v: setattr(r, "stream", bool(f.as_bool(v, "stream"))),
    "stream_options": _set_stream_options,
    "max_completion_tokens": _set_max_completion_tokens,
    "max_tokens": _set_max_tokens,
    "temperature": lambda r, v: setattr(r, "temperature", f.as_num(v, "temperature", 0, 2)),
    "top_p": lambda r, v: setattr(r, "top_p", f.as_num(v, "top_p", 0, 1)),
    "stop": lambda r, v: setattr(r, "stop", f.str_list(v, "stop")),
    "seed": lambda r, v: setattr(r, "seed", f.as_int(v, "seed")),
    "n": _set_n,
    "presence_penalty": lambda r, v: setattr(r, "presence_penalty", f.as_num(v, "presence_penalty", -2, 2)),
    "frequency_penalty": lambda r, v: setattr(r, "frequency_penalty", f.as_num(v, "frequency_penalty", -2, 2)),
    "logprobs": lambda r, v: setattr(r, "logprobs", f.as_bool(v, "logprobs") or None),
    "top_logprobs": lambda r, v: setattr(r, "top_logprobs", _top_logprobs(v)),
    "tools": _set_tools,
    "tool_choice": lambda r, v: setattr(r, "tool_choice", _tool_choice(v)),
    "parallel_tool_calls": lambda r, v: setattr(r, "parallel_tool_calls", f.as_bool(v, "parallel_tool_calls")),
    "response_format": lambda r, v: setattr(r, "response_format", _response_format(v)),
    "user": lambda r, v: setattr(r, "user", f.as_str(v, "user")),
    "metadata": lambda r, v: setattr(r, "metadata", metadata_of(v)),
    CACHE_FIELD: lambda r, v: setattr(r, "cache_directive", f.as_str(v, CACHE_FIELD)),
    PROMPT_FIELD: _set_prompt,
}


def metadata_of(value: Any) -> dict[str, str]:
    """OpenAI's shape: at most 16 pairs, keys up to 64 characters, string values up to 512."""
    pairs = f.obj(value, "metadata")
    if len(pairs) > 16:
        raise f.bad("metadata", "at most 16 key-value pairs")
    for key, item in pairs.items():
        if len(key) > 64 or not isinstance(item, str) or len(item) > 512:
            raise f.bad(f"metadata.{key}", "a string of at most 512 characters, under a key of at most 64")
    return dict(pairs)


def _top_logprobs(value: Any) -> int | None:
    n = f.as_int(value, "top_logprobs", 0)
    if n is not None and n > MAX_TOP_LOGPROBS:
        raise f.bad("top_logprobs", f"an integer between 0 and {MAX_TOP_LOGPROBS}")
    return n


def _is_role(value: Any) -> TypeGuard[Role]:
    return isinstance(value, str) and value in _ROLES  # a client's object or array is not hashable


def _message(value: Any, i: int, r: ChatRequest) -> Message:
    if not isinstance(value, dict):
        raise f.bad(f"messages[{i}]", "an object")
    role = value.get("role")
    if not _is_role(role):
        raise InvalidRequest(
            f"'messages[{i}].role': expected one of {', '.join(sorted(_ROLES))}", param=f"messages[{i}].role"
        )
    content = value.get("content")
    parts: list[ContentPart] = [TextPart(content)] if type(content) is str else _content(content, f"messages[{i}]", r)
    calls = value.get("tool_calls")
    tool_call_id = value.get("tool_call_id")
    name = value.get("name")
    if calls is None and tool_call_id is None and name is None:
        if role == "tool":
            raise InvalidRequest(
                f"'messages[{i}].tool_call_id' is required for a tool message", param=f"messages[{i}].tool_call_id"
            )
        return Message(role, parts)  # the common case: role and content only
    return _full_message(value, i, role, parts)


def _full_message(m: dict[str, Any], i: int, role: Role, parts: list[ContentPart]) -> Message:
    path = f"messages[{i}]"
    tool_calls = []
    for j, tc in enumerate(f.opt_list(m, "tool_calls", path + ".")):
        tpath = f"{path}.tool_calls[{j}]"
        tc = f.obj(tc, tpath)
        fn = f.obj(tc.get("function"), tpath + ".function")
        tool_calls.append(
            ToolCall(
                id=f.req_str(tc, "id", tpath + "."),
                name=f.req_str(fn, "name", tpath + ".function."),
                arguments=f.opt_str(fn, "arguments", tpath + ".function.") or "{}",
            )
        )
    tool_call_id = f.opt_str(m, "tool_call_id", path + ".")
    if role == "tool" and tool_call_id is None:
        raise InvalidRequest(f"'{path}.tool_call_id' is required for a tool message", param=f"{path}.tool_call_id")
    return Message(
        role=role,
        content=parts,
        tool_calls=tool_calls,
        tool_call_id=tool_call_id,
        name=f.opt_str(m, "name", path + "."),
    )


def _content(value: Any, path: str, r: ChatRequest) -> list[ContentPart]:
    if value is None:
        return []
    if isinstance(value, str):
        return [TextPart(value)]
    if not isinstance(value, list):
        raise f.bad(f"{path}.content", "a string or an array of content parts")
    parts: list[ContentPart] = []
    for j, part in enumerate(value):
        ppath = f"{path}.content[{j}]"
        part = f.obj(part, ppath)
        kind = part.get("type")
        if kind == "text":
            parts.append(TextPart(f.req_str(part, "text", ppath + "."), _cache_control(part, ppath, r)))
        elif kind == "image_url":
            image = f.obj(part.get("image_url"), ppath + ".image_url")
            url, detail = f.req_str(image, "url", ppath + ".image_url."), f.opt_str(image, "detail")
            parts.append(ImagePart(url, detail, _cache_control(part, ppath, r)))
        elif isinstance(kind, str):
            r.extra_params.append(f"{ppath}.type={kind}")
        else:
            raise f.bad(f"{ppath}.type", "a string")
    return parts


def _cache_control(part: dict[str, Any], path: str, r: ChatRequest) -> dict[str, Any] | None:
    """Anthropic's breakpoint on an OpenAI content part or tool (the convention LiteLLM clients use)."""
    cc = f.cache_control(part, path + ".")
    if cc is not None:
        r.cache_breakpoints = True
    return cc


def _tool(value: Any, i: int, r: ChatRequest) -> Tool:
    path = f"tools[{i}]"
    t = f.obj(value, path)
    if t.get("type", "function") != "function":
        raise InvalidRequest(f"'{path}.type': only 'function' tools are supported", param=f"{path}.type")
    fn = f.obj(t.get("function"), path + ".function")
    params = fn.get("parameters") or {"type": "object", "properties": {}}
    return Tool(
        name=f.req_str(fn, "name", path + ".function."),
        description=f.opt_str(fn, "description", path + ".function."),
        parameters=f.obj(params, path + ".function.parameters"),
        strict=f.opt_bool(fn, "strict", path + ".function."),
        cache_control=_cache_control(t, path, r),
    )


def _tool_choice(value: Any) -> ToolChoice | None:
    if value is None:
        return None
    if value in ("auto", "none", "required"):
        return ToolChoice(value)
    if isinstance(value, dict):
        fn = f.obj(value.get("function"), "tool_choice.function")
        return ToolChoice("named", f.req_str(fn, "name", "tool_choice.function."))
    raise f.bad("tool_choice", "'auto', 'none', 'required' or a named function")


def _response_format(value: Any) -> ResponseFormat | None:
    if value is None:
        return None
    rf = f.obj(value, "response_format")
    kind = rf.get("type")
    if kind in ("text", "json_object"):
        return ResponseFormat(kind)
    if kind == "json_schema":
        js = f.obj(rf.get("json_schema"), "response_format.json_schema")
        schema = js.get("schema") or {}
        return ResponseFormat(
            "json_schema",
            schema=f.obj(schema, "response_format.json_schema.schema"),
            name=f.opt_str(js, "name", "response_format.json_schema."),
            strict=f.opt_bool(js, "strict", "response_format.json_schema."),
        )
    raise f.bad("response_format.type", "'text', 'json_object' or 'json_schema'")


# --- responses --------------------------------------------------------------------------------


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _tool_calls_json(calls: list[ToolCall]) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls]


def encode_chat_response(response: ChatResponse) -> bytes:
    if response.raw_body is not None and response.raw_kind == "chat":
        return response.raw_body
    choices = []
    for c in response.choices:
        message: dict[str, Any] = {"role": "assistant", "content": c.message.text() or None, "refusal": c.refusal}
        if c.message.tool_calls:
            message["tool_calls"] = _tool_calls_json(c.message.tool_calls)
        choices.append({"index": c.index, "message": message, "finish_reason": c.finish_reason, "logprobs": c.logprobs})
    return envelope(response, response.id, "chat.completion", choices)


def envelope(response: ChatResponse, id_: str, object_: str, choices: list[dict[str, Any]]) -> bytes:
    """An OpenAI answer object (chat or legacy completion) around its encoded ``choices``."""
    out: dict[str, Any] = {
        "id": id_,
        "object": object_,
        "created": response.created,
        "model": response.model,
        "choices": choices,
    }
    if response.usage is not None:
        out["usage"] = usage_json(response.usage)
    return orjson.dumps(out)


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> bytes:
    """OpenAI's error envelope, used for HTTP errors and for in-stream error events."""
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


class StreamEncoder:
    """Canonical stream events to OpenAI ``chat.completion.chunk`` SSE frames."""

    def __init__(self, request: ChatRequest) -> None:
        self._include_usage = request.include_usage
        self._id = "chatcmpl-breakwater"
        self._model = request.model
        self._created = 0
        self._role_sent: set[int] = set()
        self._choices = request.n
        self._last: PassthroughChunk | None = None

    def _chunk(
        self, index: int, delta: dict[str, Any], finish: str | None = None, logprobs: list[Any] | None = None
    ) -> bytes:
        if index not in self._role_sent:
            self._role_sent.add(index)
            delta = {"role": "assistant", **delta}
        choice = {
            "index": index,
            "delta": delta,
            "finish_reason": finish,
            "logprobs": None if logprobs is None else {"content": logprobs, "refusal": None},
        }
        return encode_sse(
            orjson.dumps(
                {
                    "id": self._id,
                    "object": "chat.completion.chunk",
                    "created": self._created,
                    "model": self._model,
                    "choices": [choice],
                }
            )
        )

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, PassthroughChunk):
            self._last = event
            return encode_sse(event.data)
        if isinstance(event, TextDelta):
            return self._chunk(event.index, {"content": event.text}, None, event.logprobs)
        if isinstance(event, ToolCallDelta):
            call: dict[str, Any] = {"index": event.tool_index, "function": {"arguments": event.arguments}}
            if event.id is not None:
                call["id"] = event.id
                call["type"] = "function"
            if event.name is not None:
                call["function"]["name"] = event.name
            return self._chunk(event.index, {"tool_calls": [call]})
        if isinstance(event, FinishEvent):
            return self._chunk(event.index, {}, event.reason)
        if isinstance(event, StreamStart):
            self._id, self._model, self._created = event.id, event.model, event.created
            return b""
        if isinstance(event, UsageEvent):
            if not self._include_usage:
                return b""
            return encode_sse(
                orjson.dumps(
                    {
                        "id": self._id,
                        "object": "chat.completion.chunk",
                        "created": self._created,
                        "model": self._model,
                        "choices": [],
                        "usage": usage_json(event.usage),
                    }
                )
            )
        raise TypeError(f"unknown stream event {event!r}")

    def end(self) -> bytes:
        return DONE

    def error(self, message: str, type_: str, code: str | None) -> bytes:
        """A final chunk per choice with ``finish_reason: "error"``, then the error event.

        A client that only looks at finish reasons sees the answer did not finish; the SDKs
        raise on the error event. No ``[DONE]`` follows: the stream never looks complete.
        """
        if self._last is not None:  # forwarded chunks: keep their id and model
            try:
                data = orjson.loads(self._last.data)
                self._id, self._model, self._created = data["id"], data["model"], data["created"]
            except (ValueError, KeyError, TypeError):
                pass  # an unreadable chunk was forwarded as is; the defaults will do for the tail
        out = b"".join(self._chunk(i, {}, "error") for i in range(self._choices))
        return out + encode_sse(error_body(message, type_, None, code))
