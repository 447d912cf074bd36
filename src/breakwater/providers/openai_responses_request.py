"""OpenAI's Responses API, server side: a ``POST /v1/responses`` body as a canonical chat request.

The body's conversation is a list of *items* (messages with ``input_text`` / ``output_text``
parts, ``function_call`` and ``function_call_output`` items); they become canonical messages,
``instructions`` the system prompt, ``text.format`` the response format. What the gateway keeps
for ``previous_response_id`` is the items themselves (``ResponsesRequest.items``): a stored
conversation is turned into messages by the same ``messages_of`` as a new one.

The body itself is kept too (``ChatRequest.responses``): a deployment whose upstream serves
``/responses`` (OpenAI) gets it as sent (``openai_responses_forward.py``). Elsewhere the request is
translated, and what the canonical form cannot carry is sorted three ways (docs/api.md, "Responses"):

- features that need a stored state the gateway does not proxy (``background``, ``conversation``,
  item references): a 400 naming them, whatever the route;
- what only OpenAI's ``/responses`` can honour (hosted tools as ``tools[i].type=web_search``, other
  items as ``input[i].type=...``, ``include``, ``reasoning``, ``max_tool_calls``, ``text.verbosity``...):
  ``extra_params``, so the route's ``unsupported_params`` decides where the request is translated
  (a 400 naming them, or dropped and listed in ``x-breakwater-dropped-params``);
- hints that change no answer (``truncation``, ``service_tier``, ``prompt_cache_key``, a
  ``reasoning`` item or a hosted search's record, ...): ``extra_params`` too, but always dropped
  and listed where the request is translated (``ResponsesBody.hints``), so a conversation started
  on OpenAI can go on elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from breakwater.core.errors import InvalidRequest
from breakwater.core.types import (
    ChatRequest,
    ContentPart,
    ImagePart,
    Message,
    ResponseFormat,
    ResponsesBody,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)
from breakwater.providers import fields as f
from breakwater.providers.openai_serve import CACHE_FIELD, PROMPT_FIELD, metadata_of

#: fields that need a state kept at OpenAI the gateway does not proxy: refused with a 400 naming them
REFUSED = {
    "background": "background responses are not supported by the gateway; send the request without 'background'",
    "conversation": "OpenAI conversations are not supported; use 'previous_response_id' or send the whole input",
}
#: fields that change no answer: honoured where forwarded, else dropped and listed in
#: ``x-breakwater-dropped-params`` (``ResponsesBody.hints``)
HARMLESS = frozenset(
    {"truncation", "service_tier", "prompt_cache_key", "prompt_cache_retention", "safety_identifier", "stream_options"}
)
#: items that record what OpenAI did itself (its reasoning, a hosted tool's run): hints, since an
#: answer made elsewhere needs none of them (the results are in the conversation's text); a call a
#: client runs (``computer_call``, ``custom_tool_call``...) is not one
RECORDS = frozenset(
    {"reasoning", "web_search_call", "file_search_call", "code_interpreter_call", "image_generation_call",
     "mcp_call", "mcp_list_tools"}
)  # fmt: skip
_ROLES = frozenset({"user", "assistant", "system", "developer"})


@dataclass(slots=True)
class ResponsesRequest:
    """A decoded Responses body: the canonical request and what the Responses side keeps itself."""

    chat: ChatRequest
    #: the conversation items the body sent (a string input as one user message item)
    items: list[dict[str, Any]]
    instructions: str | None = None
    previous_response_id: str | None = None
    #: keep the answer for ``previous_response_id`` and ``GET /v1/responses/{id}`` (OpenAI's default)
    store: bool = True
    #: the body's ``tool_choice`` and ``text`` as sent, echoed in the Response object
    tool_choice: Any = "auto"
    text: dict[str, Any] = field(default_factory=lambda: {"format": {"type": "text"}})
    #: the client's body, as a forwarded request sends it (``ResponsesBody.body``)
    body: dict[str, Any] = field(default_factory=dict)
    #: the extra parameters that change no answer (``ResponsesBody.hints``)
    hints: set[str] = field(default_factory=set)


def decode_responses_request(body: Any) -> ResponsesRequest:
    """Validate a Responses body; the conversation's messages are ``instructions`` and ``input``
    (a stored conversation is put before them by the caller, see ``with_history``).

    Raises:
        InvalidRequest: a malformed body, or a feature that needs OpenAI's own servers.
    """
    body = f.obj(body, "body")
    chat = ChatRequest(model="", messages=[])
    out = ResponsesRequest(chat, [])
    for key, value in body.items():
        if value is None:
            continue
        setter = _SETTERS.get(key)
        if setter is not None:
            setter(out, value)
        elif key in REFUSED:
            if value not in (False, [], {}):
                raise InvalidRequest(REFUSED[key], param=key)
        elif key in HARMLESS:
            out.hints.add(key)
            chat.extra_params.append(key)
        elif value not in ([], {}):  # (an empty ``include`` asks for nothing)
            chat.extra_params.append(key)
    if not chat.model:
        raise InvalidRequest("'model' is required", param="model")
    if not out.items and out.previous_response_id is None and chat.prompt is None:
        raise InvalidRequest("'input' must be a non-empty string or array of items", param="input")
    f.check_tool_choice(chat.tool_choice, chat.tools)
    out.body = {k: v for k, v in body.items() if k not in _KEPT_BY_GATEWAY}
    _keep_body(out, messages_of(out.items, out.instructions))
    return out


#: body fields the gateway itself answers for, never forwarded
_KEPT_BY_GATEWAY = frozenset({"previous_response_id", CACHE_FIELD})


def _keep_body(request: ResponsesRequest, messages: list[Message]) -> None:
    """``messages`` as the canonical conversation, and the body that stands for them."""
    request.chat.messages = messages
    request.hints.update(p for p in request.chat.extra_params if p.partition(".type=")[2] in RECORDS)
    request.chat.responses = ResponsesBody(request.body, messages, frozenset(request.hints))


def with_history(request: ResponsesRequest, history: list[dict[str, Any]]) -> None:
    """Put a stored conversation's items before the request's own (``previous_response_id``).

    The earlier response's ``instructions`` do not carry over (OpenAI's rule): only this request's.
    The stored items are checked again, so a content part the route dropped in an earlier turn is
    named in ``extra_params`` (and dropped and listed, or refused) in this one too.
    """
    for i, item in enumerate(history):
        _check_item(item, f"previous_response.items[{i}]", request.chat)
    items = [*history, *request.items]
    request.body = {**request.body, "input": items}
    _keep_body(request, messages_of(items, request.instructions))


def _set_model(r: ResponsesRequest, v: Any) -> None:
    if not isinstance(v, str) or not v:
        raise f.bad("model", "a non-empty string")
    r.chat.model = v


def _set_input(r: ResponsesRequest, v: Any) -> None:
    if isinstance(v, str):
        r.items = [{"type": "message", "role": "user", "content": v}]
        return
    if not isinstance(v, list):
        raise f.bad("input", "a string or an array of items")
    for i, item in enumerate(v):
        _check_item(f.obj(item, f"input[{i}]"), f"input[{i}]", r.chat)
    r.items = v


def _set_tools(r: ResponsesRequest, v: Any) -> None:
    if not isinstance(v, list):
        raise f.bad("tools", "an array")
    for i, value in enumerate(v):
        t = f.obj(value, f"tools[{i}]")
        kind = t.get("type")
        if kind == "function":
            r.chat.tools.append(_tool(t, i))
        elif isinstance(kind, str) and kind:  # a tool OpenAI runs itself: only its /responses can
            r.chat.extra_params.append(f"tools[{i}].type={kind[:40]}")
        else:
            raise f.bad(f"tools[{i}].type", "a string")


def _set_tool_choice(r: ResponsesRequest, v: Any) -> None:
    r.tool_choice = v
    if v in ("auto", "none", "required"):
        r.chat.tool_choice = ToolChoice(v)
        return
    choice = f.obj(v, "tool_choice")
    if choice.get("type") != "function":  # a hosted tool, or allowed_tools: only OpenAI's /responses can
        if not isinstance(choice.get("type"), str):
            raise f.bad("tool_choice.type", "a string")
        r.chat.extra_params.append(f"tool_choice.type={choice['type'][:40]}")
        return
    r.chat.tool_choice = ToolChoice("named", f.req_str(choice, "name", "tool_choice."))


def _set_text(r: ResponsesRequest, v: Any) -> None:
    text = f.obj(v, "text")
    r.text = text
    for key in text:
        if key == "format":
            r.chat.response_format = _format(text[key])
        elif text[key] is not None:
            r.chat.extra_params.append(f"text.{key}")


def _set_prompt(r: ResponsesRequest, v: Any) -> None:
    r.chat.prompt = f.prompt_reference(v)
    r.chat.extra_params.append(PROMPT_FIELD)  # until the prompts stage renders it (docs/prompts.md)


def _set_store(r: ResponsesRequest, v: Any) -> None:
    r.store = bool(f.as_bool(v, "store"))


def _set_instructions(r: ResponsesRequest, v: Any) -> None:
    if not isinstance(v, str):
        raise f.bad("instructions", "a string (instruction items are not supported)")
    r.instructions = v or None


def _set_previous(r: ResponsesRequest, v: Any) -> None:
    if not isinstance(v, str) or not v:
        raise f.bad("previous_response_id", "a non-empty string")
    r.previous_response_id = v


def _chat(set_: Callable[[ChatRequest, Any], None]) -> Callable[[ResponsesRequest, Any], None]:
    return lambda r, v: set_(r.chat, v)


_SETTERS: dict[str, Callable[[ResponsesRequest, Any], None]] = {
    "model": _set_model,
    "input": _set_input,
    "instructions": _set_instructions,
    "previous_response_id": _set_previous,
    "store": _set_store,
    "tools": _set_tools,
    "tool_choice": _set_tool_choice,
    "text": _set_text,
    "prompt": _set_prompt,
    "stream": _chat(lambda c, v: setattr(c, "stream", bool(f.as_bool(v, "stream")))),
    "max_output_tokens": _chat(lambda c, v: setattr(c, "max_tokens", f.as_int(v, "max_output_tokens", 1))),
    "temperature": _chat(lambda c, v: setattr(c, "temperature", f.as_num(v, "temperature", 0, 2))),
    "top_p": _chat(lambda c, v: setattr(c, "top_p", f.as_num(v, "top_p", 0, 1))),
    "parallel_tool_calls": _chat(lambda c, v: setattr(c, "parallel_tool_calls", f.as_bool(v, "parallel_tool_calls"))),
    "user": _chat(lambda c, v: setattr(c, "user", f.as_str(v, "user"))),
    "metadata": _chat(lambda c, v: setattr(c, "metadata", metadata_of(v))),
    CACHE_FIELD: _chat(lambda c, v: setattr(c, "cache_directive", f.as_str(v, CACHE_FIELD))),
}


def _tool(t: dict[str, Any], i: int) -> Tool:
    path = f"tools[{i}]"
    params = t.get("parameters") or {"type": "object", "properties": {}}
    return Tool(
        name=f.req_str(t, "name", path + "."),
        description=f.opt_str(t, "description", path + "."),
        parameters=f.obj(params, path + ".parameters"),
        strict=f.opt_bool(t, "strict", path + "."),
    )


def _format(value: Any) -> ResponseFormat | None:
    if value is None:
        return None
    fmt = f.obj(value, "text.format")
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        return ResponseFormat(kind)
    if kind == "json_schema":
        return ResponseFormat(
            "json_schema",
            schema=f.obj(fmt.get("schema"), "text.format.schema"),
            name=f.req_str(fmt, "name", "text.format."),
            strict=f.opt_bool(fmt, "strict", "text.format."),
        )
    raise f.bad("text.format.type", "'text', 'json_object' or 'json_schema'")


# --- items --------------------------------------------------------------------------------------


def _check_item(item: dict[str, Any], path: str, chat: ChatRequest) -> None:
    """A 400 for an item the gateway cannot take; content part types it cannot carry go to ``extra_params``."""
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise InvalidRequest(f"'{path}.role': expected one of {', '.join(sorted(_ROLES))}", param=f"{path}.role")
        content = item.get("content")
        if isinstance(content, str):
            return
        if not isinstance(content, list):
            raise f.bad(f"{path}.content", "a string or an array of content parts")
        for j, part in enumerate(content):
            ppath = f"{path}.content[{j}]"
            part = f.obj(part, ppath)
            ptype = part.get("type")
            if ptype in ("input_text", "output_text"):
                f.req_str(part, "text", ppath + ".")
            elif ptype == "refusal":
                f.req_str(part, "refusal", ppath + ".")
            elif ptype == "input_image":
                if not isinstance(part.get("image_url"), str):
                    raise InvalidRequest(
                        f"'{ppath}.image_url': an image is taken by URL (or data: URL); file ids are not supported",
                        param=f"{ppath}.image_url",
                    )
                f.opt_str(part, "detail", ppath + ".")
            elif isinstance(ptype, str):
                chat.extra_params.append(f"{ppath}.type={ptype[:40]}")
            else:
                raise f.bad(f"{ppath}.type", "a string")
    elif kind == "function_call":
        for key in ("call_id", "name", "arguments"):
            f.req_str(item, key, path + ".")
    elif kind == "function_call_output":
        f.req_str(item, "call_id", path + ".")
        output = item.get("output")
        if not isinstance(output, str) and not isinstance(output, list):
            raise f.bad(f"{path}.output", "a string or an array of content parts")
        if isinstance(output, list):
            for j, part in enumerate(output):
                part = f.obj(part, f"{path}.output[{j}]")
                if part.get("type") != "input_text" or not isinstance(part.get("text"), str):
                    raise f.bad(f"{path}.output[{j}]", "an input_text part")
    elif kind == "item_reference":
        raise InvalidRequest(
            f"'{path}': item references are not supported; send the item itself or use 'previous_response_id'",
            param=path,
        )
    elif isinstance(kind, str) and kind:  # reasoning, a hosted tool's call...: only OpenAI's /responses takes them
        chat.extra_params.append(f"{path}.type={kind[:40]}")
    else:
        raise f.bad(f"{path}.type", "a string")


def messages_of(items: list[dict[str, Any]], instructions: str | None) -> list[Message]:
    """Checked items (``_check_item``) as canonical messages.

    A run of ``function_call`` items (with the assistant text before them) is one assistant
    message with several tool calls, as the chat wires want.
    """
    messages: list[Message] = [] if instructions is None else [Message("system", [TextPart(instructions)])]
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(Message(item["role"], _parts(item["content"])))
        elif kind == "function_call":
            call = ToolCall(item["call_id"], item["name"], item["arguments"] or "{}")
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":
                last.tool_calls.append(call)
            else:
                messages.append(Message("assistant", [], [call]))
        elif kind == "function_call_output":
            output = item["output"]
            text = output if isinstance(output, str) else "".join(p["text"] for p in output)
            messages.append(Message("tool", [TextPart(text)], tool_call_id=item["call_id"]))
    return messages


def _parts(content: str | list[dict[str, Any]]) -> list[ContentPart]:
    if isinstance(content, str):
        return [TextPart(content)]
    parts: list[ContentPart] = []
    for part in content:
        kind = part["type"]
        if kind in ("input_text", "output_text"):
            parts.append(TextPart(part["text"]))
        elif kind == "refusal":
            parts.append(TextPart(part["refusal"]))
        elif kind == "input_image":
            detail = part.get("detail")
            parts.append(ImagePart(part["image_url"], None if detail == "auto" else detail))
    return parts
