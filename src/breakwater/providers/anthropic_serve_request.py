"""The Anthropic Messages wire format, server side: read client requests.

The counterpart of ``breakwater.providers.anthropic_request``; responses, streams and error
bodies are written by ``breakwater.providers.anthropic_serve``. Breakwater's ``POST /v1/messages``
uses both, and so does the mock provider when it plays Anthropic.

Requests decode to the canonical form with ``raw`` left None: ``raw`` is the OpenAI body for
the OpenAI fast path, and an Anthropic body must never be forwarded to an OpenAI upstream.
``cache_control`` breakpoints (top level, system and message blocks, tools) are kept on the
canonical parts, so an Anthropic upstream gets them back; ``tool_result.is_error`` has no
canonical field and is dropped; block and tool types the canonical form cannot carry are listed
in ``extra_params``.
"""

from __future__ import annotations

from typing import Any

import orjson

from breakwater.core.errors import InvalidRequest
from breakwater.core.types import (
    ChatRequest,
    ContentPart,
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

# Fields of a Messages request the canonical form models; anything else is an "extra" parameter.
_KNOWN = frozenset(
    {
        "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
        "temperature", "top_p", "top_k", "tools", "tool_choice", "output_config", "cache_control",
        "breakwater_cache", "prompt",
    }
)  # fmt: skip
_TOOL_CHOICE: dict[str, ToolChoiceMode] = {"auto": "auto", "any": "required", "none": "none", "tool": "named"}


def decode_chat_request(body: Any) -> ChatRequest:
    """Validate a Messages API body into a ``ChatRequest``."""
    body = f.obj(body, "body")
    model = f.req_str(body, "model")
    max_tokens = f.opt_int(body, "max_tokens", minimum=1)
    if max_tokens is None:
        raise InvalidRequest("'max_tokens' is required", param="max_tokens")
    prompt = None if body.get("prompt") is None else f.prompt_reference(body["prompt"])
    raw_messages = body.get("messages")
    if prompt is not None and raw_messages is None:
        raw_messages = []  # a prompt brings messages of its own
    if not isinstance(raw_messages, list) or (not raw_messages and prompt is None):
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    extra: list[str] = [k for k in body if k not in _KNOWN]
    if prompt is not None:
        extra.append("prompt")  # until the prompts stage renders it (docs/prompts.md)
    messages = _system(body.get("system"))
    for i, m in enumerate(raw_messages):
        messages.extend(_message(m, i, extra))
    tools = [tool for i, t in enumerate(f.opt_list(body, "tools")) if (tool := _tool(t, i, extra)) is not None]
    tool_choice, parallel = _tool_choice(body.get("tool_choice"))
    f.check_tool_choice(tool_choice, tools)
    top_cache = f.cache_control(body, "")
    return ChatRequest(
        model=model,
        messages=messages,
        stream=bool(f.opt_bool(body, "stream")),
        include_usage=True,  # an Anthropic stream always reports usage
        max_tokens=max_tokens,
        temperature=f.opt_num(body, "temperature", lo=0, hi=1),
        top_p=f.opt_num(body, "top_p", lo=0, hi=1),
        top_k=f.opt_int(body, "top_k", minimum=0),
        stop=_stop_sequences(body.get("stop_sequences")),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        response_format=_output_config(body.get("output_config"), extra),
        user=_metadata(body.get("metadata"), extra),
        cache_control=top_cache,
        cache_directive=f.opt_str(body, "breakwater_cache"),
        prompt=prompt,
        cache_breakpoints=top_cache is not None or _has_breakpoints(messages, tools),
        extra_params=extra,
    )


def _has_breakpoints(messages: list[Message], tools: list[Tool]) -> bool:
    if any(t.cache_control is not None for t in tools):
        return True
    for m in messages:
        if m.cache_control is not None or any(p.cache_control is not None for p in m.content):
            return True
        if any(c.cache_control is not None for c in m.tool_calls):
            return True
    return False


def _system(value: Any) -> list[Message]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [Message("system", [TextPart(value)])]
    if not isinstance(value, list):
        raise f.bad("system", "a string or an array of text blocks")
    parts: list[ContentPart] = []
    for j, block in enumerate(value):
        block = f.obj(block, f"system[{j}]")
        if block.get("type") != "text":
            raise f.bad(f"system[{j}].type", "'text'")
        path = f"system[{j}]."
        parts.append(TextPart(f.req_str(block, "text", path), f.cache_control(block, path)))
    return [Message("system", parts)] if parts else []


def _message(value: Any, i: int, extra: list[str]) -> list[Message]:
    """One Anthropic turn; its ``tool_result`` blocks become canonical tool messages first."""
    path = f"messages[{i}]"
    m = f.obj(value, path)
    role = m.get("role")
    if role not in ("user", "assistant"):
        raise InvalidRequest(f"'{path}.role': expected 'user' or 'assistant'", param=f"{path}.role")
    content = m.get("content")
    if isinstance(content, str):
        return [Message(role, [TextPart(content)])]
    if not isinstance(content, list):
        raise f.bad(f"{path}.content", "a string or an array of content blocks")
    results: list[Message] = []
    parts: list[ContentPart] = []
    calls: list[ToolCall] = []
    for j, block in enumerate(content):
        bpath = f"{path}.content[{j}]"
        block = f.obj(block, bpath)
        kind = block.get("type")
        if kind == "tool_use" and role == "assistant":
            args = f.obj(block.get("input"), bpath + ".input")
            call_id, name = f.req_str(block, "id", bpath + "."), f.req_str(block, "name", bpath + ".")
            calls.append(ToolCall(call_id, name, _compact(args), f.cache_control(block, bpath + ".")))
        elif kind == "tool_result" and role == "user":
            tool_use_id = f.req_str(block, "tool_use_id", bpath + ".")
            content = _result_content(block.get("content"), bpath, extra)
            cache = f.cache_control(block, bpath + ".")
            results.append(Message("tool", content, tool_call_id=tool_use_id, cache_control=cache))
        elif kind in ("tool_use", "tool_result"):
            owner = "assistant" if kind == "tool_use" else "user"
            raise InvalidRequest(f"'{bpath}.type': {kind} blocks belong in {owner} messages", param=bpath + ".type")
        else:
            _part(block, kind, bpath, parts, extra)
    # Anthropic puts tool results first in the user turn; canonical tool messages precede the rest
    if parts or calls or not results:
        results.append(Message(role, parts, calls))
    return results


def _part(block: dict[str, Any], kind: Any, path: str, parts: list[ContentPart], extra: list[str]) -> None:
    if kind == "text":
        parts.append(TextPart(f.req_str(block, "text", path + "."), f.cache_control(block, path + ".")))
    elif kind == "image":
        source = f.obj(block.get("source"), path + ".source")
        stype = source.get("type")
        cache = f.cache_control(block, path + ".")
        if stype == "base64":
            media_type = f.req_str(source, "media_type", path + ".source.")
            data = f.req_str(source, "data", path + ".source.")
            parts.append(ImagePart(f"data:{media_type};base64,{data}", cache_control=cache))
        elif stype == "url":
            parts.append(ImagePart(f.req_str(source, "url", path + ".source."), cache_control=cache))
        elif isinstance(stype, str):
            extra.append(f"{path}.source.type={stype}")
        else:
            raise f.bad(path + ".source.type", "a string")
    elif isinstance(kind, str):
        extra.append(f"{path}.type={kind}")
    else:
        raise f.bad(path + ".type", "a string")


def _result_content(value: Any, path: str, extra: list[str]) -> list[ContentPart]:
    if value is None:
        return []
    if isinstance(value, str):
        return [TextPart(value)]
    if not isinstance(value, list):
        raise f.bad(path + ".content", "a string or an array of content blocks")
    parts: list[ContentPart] = []
    for j, block in enumerate(value):
        bpath = f"{path}.content[{j}]"
        block = f.obj(block, bpath)
        _part(block, block.get("type"), bpath, parts, extra)
    return parts


def _tool(value: Any, i: int, extra: list[str]) -> Tool | None:
    path = f"tools[{i}]"
    t = f.obj(value, path)
    kind = t.get("type")
    if kind not in (None, "custom"):
        # server tools (web search, code execution...) run at Anthropic and have no canonical form
        extra.append(f"{path}.type={kind}")
        return None
    schema = t.get("input_schema")
    if schema is None:
        raise InvalidRequest(f"'{path}.input_schema' is required", param=f"{path}.input_schema")
    return Tool(
        name=f.req_str(t, "name", path + "."),
        description=f.opt_str(t, "description", path + "."),
        parameters=f.obj(schema, path + ".input_schema"),
        strict=f.opt_bool(t, "strict", path + "."),
        cache_control=f.cache_control(t, path + "."),
    )


def _tool_choice(value: Any) -> tuple[ToolChoice | None, bool | None]:
    """(tool choice, parallel_tool_calls): Anthropic keeps the parallel switch on tool_choice."""
    if value is None:
        return None, None
    tc = f.obj(value, "tool_choice")
    kind = tc.get("type")
    if not isinstance(kind, str) or kind not in _TOOL_CHOICE:  # an object or array is unhashable
        raise f.bad("tool_choice.type", "'auto', 'any', 'tool' or 'none'")
    name = f.req_str(tc, "name", "tool_choice.") if kind == "tool" else None
    parallel = False if f.opt_bool(tc, "disable_parallel_tool_use", "tool_choice.") else None
    return ToolChoice(_TOOL_CHOICE[kind], name), parallel


def _stop_sequences(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise f.bad("stop_sequences", "an array of strings")


def _metadata(value: Any, extra: list[str]) -> str | None:
    if value is None:
        return None
    metadata = f.obj(value, "metadata")
    extra.extend(f"metadata.{k}" for k in metadata if k != "user_id")
    return f.opt_str(metadata, "user_id", "metadata.")


def _output_config(value: Any, extra: list[str]) -> ResponseFormat | None:
    if value is None:
        return None
    config = f.obj(value, "output_config")
    extra.extend(f"output_config.{k}" for k in config if k != "format")
    fmt = config.get("format")
    if fmt is None:
        return None
    fmt = f.obj(fmt, "output_config.format")
    if fmt.get("type") != "json_schema":
        raise f.bad("output_config.format.type", "'json_schema'")
    schema = f.obj(fmt.get("schema"), "output_config.format.schema")
    # Anthropic always decodes against the schema, which is what OpenAI calls strict
    return ResponseFormat("json_schema", schema=schema, strict=True)


def _compact(value: Any) -> str:
    return orjson.dumps(value).decode()
