"""OpenAI's Responses API, client side: a ``POST /v1/responses`` request forwarded to an upstream
that serves ``/responses`` itself (OpenAI; a deployment with ``responses_api: true``).

The forwarded body is the client's (``ChatRequest.responses``): hosted tools, reasoning items,
``include`` and every field the canonical form does not model reach the upstream, and its answer
goes back byte-for-byte, as on the chat fast path. It is still read, for usage, the finish reason
and the text the output checks see. A conversation is still the gateway's (``previous_response_id``
is resolved before the call, so a conversation may move between providers); a request whose
conversation a stage rewrote (a rendered prompt, a canary's system message) is translated instead,
since the body no longer stands for it.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from breakwater.core.errors import MalformedResponse, UpstreamError, classify_status
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    FinishReason,
    Message,
    PassthroughChunk,
    StreamEvent,
    TextPart,
    ToolCall,
    Usage,
)
from breakwater.providers.base import Target
from breakwater.providers.sse import SSEStreamParser

#: the events that end a Responses stream
_LAST = frozenset({"response.completed", "response.incomplete"})


def forwarded(request: ChatRequest, target: Target) -> bool:
    """Whether ``request`` goes to ``target``'s ``/responses`` as the client sent it."""
    forward = request.responses
    return forward is not None and target.responses_api and forward.messages is request.messages


def responses_body(request: ChatRequest, model: str) -> dict[str, Any]:
    """The body to send: the client's, with the deployment's ``model``."""
    assert request.responses is not None
    body = {**request.responses.body, "model": model}
    if not request.stream:
        body.pop("stream", None)
    return body


def read_response(data: dict[str, Any], body: bytes, target: Target) -> ChatResponse:
    """A Response object as a canonical answer that keeps its bytes (``raw_kind="responses"``).

    Raises:
        UpstreamError: the response failed upstream (``status: failed``).
        KeyError, TypeError, ValueError, AttributeError: not a Response object.
    """
    if data.get("status") == "failed":
        raise _failure(data.get("error"), target)
    text: list[str] = []
    calls: list[ToolCall] = []
    refusal: str | None = None
    for item in data.get("output") or ():
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or ():
                if part.get("type") == "output_text":
                    text.append(str(part.get("text") or ""))
                elif part.get("type") == "refusal":
                    refusal = str(part.get("refusal") or "")
        elif kind == "function_call":
            calls.append(ToolCall(str(item["call_id"]), str(item["name"]), str(item.get("arguments") or "")))
    message = Message("assistant", [TextPart("".join(text))] if text else [], calls)
    choice = Choice(0, message, finish_reason(data, bool(calls)), refusal=refusal)
    return ChatResponse(
        id=str(data["id"]),
        model=str(data.get("model") or target.model),
        created=int(data.get("created_at") or time.time()),
        choices=[choice],
        usage=read_usage(data.get("usage")),
        raw_body=body,
        raw_kind="responses",
    )


def finish_reason(response: dict[str, Any], calls: bool) -> FinishReason:
    """A Response object's end as a canonical finish reason."""
    if response.get("status") == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if calls else "stop"


def read_usage(data: Any) -> Usage | None:
    """The Responses API's usage object (``input_tokens``, ``output_tokens`` and their details)."""
    if not isinstance(data, dict):
        return None
    details = data.get("input_tokens_details") or {}
    output = data.get("output_tokens_details") or {}
    return Usage(
        input_tokens=int(data.get("input_tokens") or 0),
        output_tokens=int(data.get("output_tokens") or 0),
        cached_input_tokens=int(details.get("cached_tokens") or 0),
        reasoning_tokens=int(output.get("reasoning_tokens") or 0),
    )


class ResponsesStreamParser(SSEStreamParser):
    """Responses API events, each forwarded as it came (a ``PassthroughChunk`` with its ``event``).

    Each is read for what the gateway watches: the text of the answer's messages (``text``), a
    function call's arguments (``others``, keyed by ``(0, output_index)``), a refusal, and, on the
    last event, the usage and finish reason. An ``error`` or ``response.failed`` event is raised.
    """

    __slots__ = ("_calls", "_done", "_target")

    def __init__(self, target: Target) -> None:
        self._target = target
        super().__init__()
        self._done = False
        self._calls = False

    def _end(self, events: list[StreamEvent]) -> None:
        if not self._done:
            raise MalformedResponse(
                f"{self._target.provider} ended the stream before it was finished", provider=self._target.provider
            )

    def _frame(self, event: str | None, data: str, events: list[StreamEvent]) -> None:
        if self._done:
            return
        try:
            payload = orjson.loads(data)
            kind = str(payload.get("type") or event or "")
            chunk = PassthroughChunk(data.encode(), event=kind)
            if kind == "response.output_text.delta":
                chunk.text = str(payload.get("delta") or "")
            elif kind == "response.function_call_arguments.delta":
                chunk.others = (((0, int(payload.get("output_index") or 0)), str(payload.get("delta") or "")),)
            elif kind == "response.refusal.delta":
                chunk.refusal = True
            elif kind == "response.output_item.added":
                self._calls = self._calls or (payload.get("item") or {}).get("type") == "function_call"
            elif kind in _LAST:
                response = payload.get("response") or {}
                self._done = True
                chunk.usage = read_usage(response.get("usage"))
                chunk.finish_reasons = [finish_reason(response, self._calls)]
            elif kind == "response.failed":
                raise _failure((payload.get("response") or {}).get("error"), self._target)
            elif kind == "error":
                raise _failure(payload, self._target)
            events.append(chunk)
        except UpstreamError:
            raise
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise MalformedResponse(
                f"{self._target.provider} sent an unreadable stream event", provider=self._target.provider
            ) from exc


def _failure(err: Any, target: Target) -> UpstreamError:
    """A failed response's ``error`` (or an ``error`` event) as the upstream error it stands for."""
    err = err if isinstance(err, dict) else {}
    code, message = str(err.get("code") or err.get("type") or ""), str(err.get("message") or "")
    status = 429 if "rate_limit" in code else 400 if "invalid" in code or "context_length" in code else 500
    return classify_status(status, f"{code} {message}", provider=target.provider, overloaded=code == "overloaded")


def event_of(chunk: PassthroughChunk) -> dict[str, Any]:
    """A forwarded Responses event's JSON (``ValueError`` when it is not one)."""
    if chunk.event is None:
        raise ValueError("a chat completions chunk, not a Responses event")
    data = orjson.loads(chunk.data)
    if not isinstance(data, dict):
        raise ValueError("not a Responses event")
    return data
