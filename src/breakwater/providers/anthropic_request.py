"""Canonical chat requests to Anthropic Messages API bodies, for the client side.

System prompts become the top-level ``system`` field, tool results become ``tool_result`` blocks
inside a *user* turn, consecutive turns of one role are merged (turns must alternate), and
``max_tokens``, which Anthropic requires, falls back to ``DEFAULT_MAX_TOKENS``.
"""

from __future__ import annotations

from typing import Any

import orjson

from breakwater.core.errors import InvalidRequest, UnsupportedParameter
from breakwater.core.types import ChatRequest, ContentPart, ImagePart, Message, TextPart, Tool, ToolCall, ToolChoice

#: Anthropic requires ``max_tokens`` and OpenAI clients usually omit it. 4096 fits every current
#: Claude model's output limit, so a request without it never fails for being too large.
DEFAULT_MAX_TOKENS = 4096
_TOOL_CHOICE = {"auto": "auto", "required": "any", "none": "none", "named": "tool"}


def chat_body(request: ChatRequest, model: str) -> dict[str, Any]:
    """Canonical request to a Messages API body."""
    system, turns = _turns(request.messages)
    max_tokens = request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": turns}
    if system:
        # one plain block goes as a string, as clients write it; a breakpoint needs the block
        body["system"] = system[0]["text"] if len(system) == 1 and "cache_control" not in system[0] else system
    if request.stream:
        body["stream"] = True
    for name in ("temperature", "top_p", "top_k"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.stop:
        body["stop_sequences"] = request.stop
    if request.user is not None:
        body["metadata"] = {"user_id": request.user}
    # a tool choice among no tools is a no-op; leaving it out avoids a 400 over nothing
    if request.tools:
        body["tools"] = [_tool_json(t) for t in request.tools]
        choice = _tool_choice_json(request.tool_choice, request.parallel_tool_calls)
        if choice is not None:
            body["tool_choice"] = choice
    if request.cache_control is not None:
        body["cache_control"] = request.cache_control
    rf = request.response_format
    if rf is not None and rf.type == "json_object":
        raise UnsupportedParameter("Anthropic has no JSON mode without a schema", param="response_format")
    if rf is not None and rf.type == "json_schema":
        body["output_config"] = {"format": {"type": "json_schema", "schema": rf.schema or {}}}
    return body


#: the breakpoint added automatically: Anthropic's default five-minute cache
EPHEMERAL = {"type": "ephemeral"}


def mark_stable_prefix(body: dict[str, Any], min_tokens: int) -> bool:
    """Put a prompt-cache breakpoint at the end of ``body``'s stable prefix (its tools, then its
    system prompt) when that prefix is at least ``min_tokens`` long; say whether it did.

    Anthropic caches everything up to a breakpoint, in the order tools, system, messages, so a
    breakpoint on the last system block covers the tools too. The length is estimated at four
    characters a token: the adapter counts nothing, and a prefix just under the model's minimum
    that gets marked anyway is processed normally, at no extra cost.
    """
    tools = body.get("tools") or []
    system = body.get("system")
    chars = len(orjson.dumps(tools)) if tools else 0
    if isinstance(system, str):
        chars += len(system)
    elif isinstance(system, list):
        chars += sum(len(str(block.get("text", ""))) for block in system)
    if chars < 4 * min_tokens:
        return False
    if isinstance(system, str) and system:
        body["system"] = [{"type": "text", "text": system, "cache_control": EPHEMERAL}]
    elif isinstance(system, list) and system:
        system[-1] = {**system[-1], "cache_control": EPHEMERAL}
    elif tools:
        tools[-1] = {**tools[-1], "cache_control": EPHEMERAL}
    else:
        return False
    return True


def _turns(messages: list[Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system text blocks, alternating user/assistant turns)."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if m.role in ("system", "developer"):
            # hoisted wherever they appear: Anthropic has one system prompt, not system turns
            system.extend(_text_block(p) for p in m.content if isinstance(p, TextPart) and p.text)
            continue
        if m.role == "tool":
            role, blocks = "user", [_tool_result(m, i)]
        elif m.role == "assistant":
            role = "assistant"
            blocks = _blocks(m.content, i) + [_tool_use(c, i, j) for j, c in enumerate(m.tool_calls)]
        else:
            role, blocks = "user", _blocks(m.content, i)
        if turns and turns[-1]["role"] == role:
            # turns must alternate, and all results for one assistant turn belong in one user turn
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _blocks(parts: list[ContentPart], i: int) -> list[dict[str, Any]]:
    # Anthropic rejects empty text blocks, which OpenAI clients send freely (content: "")
    return [
        _text_block(p) if isinstance(p, TextPart) else _image(p, f"messages[{i}].content[{j}]")
        for j, p in enumerate(parts)
        if not isinstance(p, TextPart) or p.text
    ]


def _text_block(part: TextPart) -> dict[str, Any]:
    return _cached({"type": "text", "text": part.text}, part.cache_control)


def _cached(block: dict[str, Any], cache_control: dict[str, Any] | None) -> dict[str, Any]:
    """``block`` with its breakpoint, when it has one."""
    if cache_control is not None:
        block["cache_control"] = cache_control
    return block


def _image(part: ImagePart, path: str) -> dict[str, Any]:
    url = part.url
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not comma or encoding != "base64":
            raise InvalidRequest(f"'{path}': only base64 data URLs can carry images to Anthropic", param=path)
        source = {"type": "base64", "media_type": media_type, "data": data}
        return _cached({"type": "image", "source": source}, part.cache_control)
    if url.startswith(("https://", "http://")):
        return _cached({"type": "image", "source": {"type": "url", "url": url}}, part.cache_control)
    raise InvalidRequest(f"'{path}': an image must be an http(s) or base64 data URL", param=path)


def _tool_result(m: Message, i: int) -> dict[str, Any]:
    content: str | list[dict[str, Any]]
    plain = all(isinstance(p, TextPart) and p.cache_control is None for p in m.content)
    content = m.text() if plain else _blocks(m.content, i)
    return _cached({"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": content}, m.cache_control)


def _tool_use(call: ToolCall, i: int, j: int) -> dict[str, Any]:
    # Anthropic wants the input as an object; OpenAI keeps the model's text, which may be anything
    path = f"messages[{i}].tool_calls[{j}].function.arguments"
    try:
        arguments = orjson.loads(call.arguments) if call.arguments.strip() else {}
    except orjson.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        raise InvalidRequest(f"'{path}': Anthropic needs the arguments as a JSON object", param=path)
    return _cached({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}, call.cache_control)


def _tool_json(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    # OpenAI lets a tool without arguments omit its schema; Anthropic requires an object schema
    out["input_schema"] = tool.parameters or {"type": "object", "properties": {}}
    if tool.strict is not None:
        out["strict"] = tool.strict
    return _cached(out, tool.cache_control)


def _tool_choice_json(choice: ToolChoice | None, parallel: bool | None) -> dict[str, Any] | None:
    if choice is None and parallel is not False:
        return None
    mode = choice.mode if choice is not None else "auto"
    out: dict[str, Any] = {"type": _TOOL_CHOICE[mode]}
    if choice is not None and mode == "named":
        out["name"] = choice.name
    # Anthropic's parallel switch lives on tool_choice, and "none" does not accept it
    if parallel is False and mode != "none":
        out["disable_parallel_tool_use"] = True
    return out
