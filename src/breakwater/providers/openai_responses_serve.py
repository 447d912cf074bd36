"""OpenAI's Responses API, server side: canonical answers as Response objects and Responses streams.

A canonical answer's first choice becomes the ``output`` items: a ``message`` with an
``output_text`` part (or a ``refusal`` part), then one ``function_call`` item per tool call.
A stream becomes OpenAI's event sequence (shapes from the ``openai`` SDK's
``openai.types.responses``, checked by tests/server/test_responses_sdk.py): ``response.created``,
``response.in_progress``, for each item ``response.output_item.added``, its content part or
arguments as deltas, their ``.done`` events and ``response.output_item.done``, then
``response.completed`` (``response.incomplete`` when the answer was cut short) holding the
whole Response. Every event has a ``sequence_number``. A failure once the stream has started is
an ``error`` event, then ``response.failed``. A forwarded request's stream is the upstream's own
events (``PassthroughChunk.event``), which go out as they came.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from breakwater.core.types import (
    ChatResponse,
    FinishEvent,
    FinishReason,
    PassthroughChunk,
    StreamEvent,
    StreamStart,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from breakwater.providers.openai_responses_forward import event_of
from breakwater.providers.openai_responses_request import ResponsesRequest
from breakwater.providers.openai_stream import passthrough_events
from breakwater.providers.sse import encode_sse

NewId = Callable[[str], str]
"""A new id with a prefix (``resp_``, ``msg_``, ``fc_``)."""

#: a finish reason that means the answer is incomplete -> Responses' ``incomplete_details.reason``
_INCOMPLETE: dict[FinishReason, str] = {"length": "max_output_tokens", "content_filter": "content_filter"}
#: the forwarded events the encoder reads: the response's id, and its last state
_FIRST_OR_LAST = frozenset({"response.created", "response.completed", "response.incomplete"})


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_input_tokens,
            "cache_write_tokens": usage.cache_creation_input_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def response_object(
    request: ResponsesRequest,
    response_id: str,
    created_at: int,
    model: str,
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None = None,
    finish: FinishReason | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Response object: the answer so far, and the request's settings echoed as OpenAI does."""
    chat = request.chat
    incomplete = _INCOMPLETE.get(finish) if finish is not None else None
    if incomplete is not None and status == "completed":
        status = "incomplete"
    out = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": None if incomplete is None else {"reason": incomplete},
        "instructions": request.instructions,
        "max_output_tokens": chat.max_tokens,
        "model": model,
        "output": output,
        "parallel_tool_calls": chat.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "store": request.store,
        "temperature": 1.0 if chat.temperature is None else chat.temperature,
        "text": request.text,
        "tool_choice": request.tool_choice,
        "tools": [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
                "strict": t.strict,
            }
            for t in chat.tools
        ],
        "top_p": 1.0 if chat.top_p is None else chat.top_p,
        "truncation": "disabled",
        "metadata": chat.metadata or {},
    }
    if usage is not None:  # the schema has no null usage: left out until known
        out["usage"] = usage_json(usage)
    if chat.user is not None:
        out["user"] = chat.user
    return out


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(item_id: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": content}


def _call_item(item_id: str, status: str, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def encode_response(
    response: ChatResponse, request: ResponsesRequest, response_id: str, created_at: int, new_id: NewId
) -> dict[str, Any]:
    """A whole canonical answer as a Response object (its first choice: the Responses API has no ``n``)."""
    output: list[dict[str, Any]] = []
    finish: FinishReason | None = None
    if response.choices:
        choice = response.choices[0]
        finish = choice.finish_reason
        status = "incomplete" if finish in _INCOMPLETE else "completed"
        text = choice.message.text()
        if choice.refusal:
            output.append(_message_item(new_id("msg_"), status, [{"type": "refusal", "refusal": choice.refusal}]))
        elif text or not choice.message.tool_calls:
            output.append(_message_item(new_id("msg_"), status, [_text_part(text)]))
        for call in choice.message.tool_calls:
            output.append(_call_item(new_id("fc_"), "completed", call.id, call.name, call.arguments))
    return response_object(
        request, response_id, created_at, response.model, status="completed", output=output, usage=response.usage,
        finish=finish,
    )  # fmt: skip


class _Call:
    __slots__ = ("arguments", "item", "output_index")

    def __init__(self, item: dict[str, Any], output_index: int) -> None:
        self.item = item
        self.output_index = output_index
        self.arguments: list[str] = []


class StreamEncoder:
    """Canonical stream events to the Responses event sequence (``server/endpoints.StreamEncoder``).

    Once ``end`` has run, ``response`` is the whole Response object (what the gateway stores).
    """

    def __init__(self, request: ResponsesRequest, response_id: str, created_at: int, new_id: NewId) -> None:
        self._request = request
        self._id = response_id
        self._created = created_at
        self._new_id = new_id
        self._model = request.chat.model
        self._seq = 0
        self._begun = False
        self._output: list[dict[str, Any]] = []
        #: the open message item, and its text so far
        self._message: dict[str, Any] | None = None
        self._message_index = 0
        self._text: list[str] = []
        self._calls: dict[int, _Call] = {}
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None
        #: the stream is an upstream's own Responses events, forwarded as they come
        self._forwarding = False
        self.response: dict[str, Any] | None = None

    def _event(self, kind: str, payload: dict[str, Any]) -> bytes:
        data = orjson.dumps({"type": kind, "sequence_number": self._seq, **payload})
        self._seq += 1
        return encode_sse(data, kind)

    def _snapshot(self, status: str, **extra: Any) -> dict[str, Any]:
        return response_object(
            self._request, self._id, self._created, self._model, status=status, output=self._output, **extra
        )

    def _begin(self) -> bytes:
        self._begun = True
        snapshot = self._snapshot("in_progress")
        return self._event("response.created", {"response": snapshot}) + self._event(
            "response.in_progress", {"response": snapshot}
        )

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, PassthroughChunk) and event.event is not None:
            return self._forward(event)
        if isinstance(event, StreamStart):
            self._model = event.model
            return b"" if self._begun else self._begin()
        head = b"" if self._begun else self._begin()
        if isinstance(event, TextDelta):
            return head + self._text_delta(event) if event.index == 0 else head
        if isinstance(event, ToolCallDelta):
            return head + self._call_delta(event) if event.index == 0 else head
        if isinstance(event, FinishEvent):
            if event.index == 0:
                self._finish = event.reason
            return head
        if isinstance(event, UsageEvent):
            self._usage = event.usage
            return head
        if isinstance(event, PassthroughChunk):  # a stream replayed by the cache in OpenAI's chunks
            if event.usage is not None:
                self._usage = event.usage
            return head + b"".join(self.encode(e) for e in passthrough_events(event))
        raise TypeError(f"unknown stream event {event!r}")

    def _forward(self, chunk: PassthroughChunk) -> bytes:
        """An upstream's Responses event, as it came; the response's id and last state are read
        from it (what ``error`` continues, what the gateway stores)."""
        self._forwarding = True
        self._seq += 1
        if chunk.event in _FIRST_OR_LAST:
            response = event_of(chunk).get("response") or {}
            if chunk.event == "response.created":
                self._id, self._begun = str(response.get("id") or self._id), True
            else:
                self.response = response
        assert chunk.event is not None
        return encode_sse(chunk.data, chunk.event)

    def item(self, item: dict[str, Any]) -> bytes:
        """A finished item that has no deltas (a hosted tool's call, as the mock acts one out)."""
        out = b"" if self._begun else self._begin()
        out += self._close_message("completed")
        at = {"output_index": len(self._output)}
        self._output.append(item)
        return (
            out
            + self._event("response.output_item.added", {**at, "item": {**item, "status": "in_progress"}})
            + self._event("response.output_item.done", {**at, "item": item})
        )

    def _text_delta(self, event: TextDelta) -> bytes:
        out = b""
        if self._message is None:
            self._message = _message_item(self._new_id("msg_"), "in_progress", [])
            self._message_index = len(self._output)
            self._output.append(self._message)
            self._text = []
            at = {"output_index": self._message_index}
            out += self._event("response.output_item.added", {**at, "item": self._message})
            where = {"item_id": self._message["id"], **at, "content_index": 0}
            out += self._event("response.content_part.added", {**where, "part": _text_part("")})
        self._text.append(event.text)
        where = {"item_id": self._message["id"], "output_index": self._message_index, "content_index": 0}
        return out + self._event("response.output_text.delta", {**where, "delta": event.text, "logprobs": []})

    def _close_message(self, status: str) -> bytes:
        message = self._message
        if message is None:
            return b""
        self._message = None
        text = "".join(self._text)
        part = _text_part(text)
        message["content"] = [part]
        message["status"] = status
        where = {"item_id": message["id"], "output_index": self._message_index, "content_index": 0}
        return (
            self._event("response.output_text.done", {**where, "text": text, "logprobs": []})
            + self._event("response.content_part.done", {**where, "part": part})
            + self._event("response.output_item.done", {"output_index": self._message_index, "item": message})
        )

    def _call_delta(self, event: ToolCallDelta) -> bytes:
        out = b""
        call = self._calls.get(event.tool_index)
        if call is None:
            out += self._close_message("completed")
            item_id = self._new_id("fc_")
            item = _call_item(item_id, "in_progress", event.id or item_id, event.name or "", "")
            call = self._calls[event.tool_index] = _Call(item, len(self._output))
            self._output.append(item)
            out += self._event("response.output_item.added", {"output_index": call.output_index, "item": item})
        if not event.arguments:
            return out
        call.arguments.append(event.arguments)
        where = {"item_id": call.item["id"], "output_index": call.output_index}
        return out + self._event("response.function_call_arguments.delta", {**where, "delta": event.arguments})

    def end(self) -> bytes:
        if self._forwarding:  # the upstream's last event went out already
            return b""
        incomplete = self._finish in _INCOMPLETE
        out = b"" if self._begun else self._begin()
        out += self._close_message("incomplete" if incomplete else "completed")
        for call in sorted(self._calls.values(), key=lambda c: c.output_index):
            arguments = "".join(call.arguments)
            call.item["arguments"], call.item["status"] = arguments, "completed"
            where = {"item_id": call.item["id"], "output_index": call.output_index}
            done = {**where, "name": call.item["name"], "arguments": arguments}
            out += self._event("response.function_call_arguments.done", done)
            out += self._event("response.output_item.done", {"output_index": call.output_index, "item": call.item})
        self.response = self._snapshot("completed", usage=self._usage, finish=self._finish)
        kind = "response.incomplete" if incomplete else "response.completed"
        return out + self._event(kind, {"response": self.response})

    def error(self, message: str, type_: str, code: str | None) -> bytes:
        """An ``error`` event, then ``response.failed``: the stream never looks complete."""
        out = b"" if self._begun else self._begin()
        out += self._event("error", {"code": code or type_, "message": message, "param": None})
        failure = {"code": "rate_limit_exceeded" if type_ == "rate_limit_error" else "server_error", "message": message}
        failed = self._snapshot("failed", usage=self._usage, error=failure)
        return out + self._event("response.failed", {"response": failed})
