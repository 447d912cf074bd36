"""The OpenAI chat completions wire protocol's streams and usage, client side: the stream parser
(canonical events, or chunks forwarded byte-for-byte on the fast path), a forwarded chunk read
back as events or text, and the usage object (``openai.py`` holds the adapter).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from breakwater.core.errors import MalformedResponse, UpstreamError, classify_status
from breakwater.core.types import (
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
from breakwater.providers.base import Target
from breakwater.providers.openai_completions import chat_entries
from breakwater.providers.sse import SSEStreamParser

FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


class OpenAIStreamParser(SSEStreamParser):
    """``chat.completion.chunk`` SSE frames to events (or pass-through chunks on the fast path)."""

    __slots__ = ("_done", "_include_usage", "_passthrough", "_started", "_target")

    def __init__(self, target: Target, *, passthrough: bool, include_usage: bool) -> None:
        self._target = target
        self._passthrough = passthrough
        self._include_usage = include_usage
        super().__init__()
        self._started = False
        self._done = False

    def _end(self, events: list[StreamEvent]) -> None:
        if not self._done:
            raise MalformedResponse(
                f"{self._target.provider} ended the stream before it was finished", provider=self._target.provider
            )

    def _frame(self, event: str | None, data: str, events: list[StreamEvent]) -> None:
        if data == "[DONE]":
            self._done = True
            return
        if self._done:
            return
        try:
            chunk = orjson.loads(data)
            if "error" in chunk:
                raise _stream_error(chunk, self._target)
            choices = chunk.get("choices") or []
            usage = read_usage(chunk.get("usage"))
            if self._passthrough:
                finishes = [FINISH.get(c.get("finish_reason"), "stop") for c in choices if c.get("finish_reason")]
                if usage is not None and not choices and not self._include_usage:
                    events.append(UsageEvent(usage))  # asked for by us, not the client: keep it to ourselves
                else:
                    text, refusal, others = _opening(choices)
                    events.append(PassthroughChunk(data.encode(), usage, finishes, text, refusal, others))
                return
            if not self._started:
                self._started = True
                events.append(
                    StreamStart(
                        str(chunk.get("id") or "chatcmpl-breakwater"),
                        str(chunk.get("model") or self._target.model),
                        int(chunk.get("created") or time.time()),
                    )
                )
            for c in choices:
                _choice_events(c, events)
            if usage is not None:
                events.append(UsageEvent(usage))
        except UpstreamError:
            raise
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise MalformedResponse(
                f"{self._target.provider} sent an unreadable stream chunk", provider=self._target.provider
            ) from exc


def _opening(choices: list[Any]) -> tuple[str, bool, tuple[tuple[object, str], ...]]:
    """A forwarded chunk's text of choice 0, whether some choice's delta carries a refusal, and
    the text it adds to other choices and to tool calls' arguments (``PassthroughChunk.others``)."""
    text, refusal = "", False
    others: list[tuple[object, str]] = []
    for c in choices:
        delta = c.get("delta") or {}
        if delta.get("refusal"):
            refusal = True
        index = c.get("index") or 0
        content = delta.get("content")
        if isinstance(content, str) and content:
            if index == 0:
                text += content
            else:
                others.append((index, content))
        for call in delta.get("tool_calls") or ():
            arguments = (call.get("function") or {}).get("arguments") if isinstance(call, dict) else None
            if isinstance(arguments, str) and arguments:
                others.append(((index, call.get("index") or 0), arguments))
    return text, refusal, tuple(others)


def passthrough_text(chunk: PassthroughChunk) -> str:
    """The text a forwarded chunk adds to choice 0 (to resume a broken stream from it).

    Raises:
        ValueError: the chunk is unreadable, or carries another choice or a tool call, so the
            text so far cannot be told from it. A forwarded Responses event gives the text
            its parser read (``PassthroughChunk.text``).
    """
    if chunk.event is not None:
        return chunk.text
    try:
        data = orjson.loads(chunk.data)
        text = ""
        for c in data.get("choices") or []:
            delta = c.get("delta") or {}
            if c.get("index", 0) != 0 or delta.get("tool_calls"):
                raise ValueError("not a plain text chunk of choice 0")
            text += delta.get("content") or ""
        return text
    except (TypeError, AttributeError) as exc:
        raise ValueError("unreadable chunk") from exc


def passthrough_events(chunk: PassthroughChunk) -> list[StreamEvent]:
    """A forwarded chunk as canonical events: its start (id, model, created), then its choices' pieces.

    For what must see a fast-path stream in canonical form (the answer cache assembles one to
    store it); usage stays on the chunk. Raises ``ValueError`` for an unreadable chunk, or a
    forwarded Responses event (``PassthroughChunk.event``), which has no canonical form here.
    """
    if chunk.event is not None:
        raise ValueError("a Responses event, not a chat completions chunk")
    try:
        data = orjson.loads(chunk.data)
        events: list[StreamEvent] = [
            StreamStart(str(data.get("id") or ""), str(data.get("model") or ""), int(data.get("created") or 0))
        ]
        for c in data.get("choices") or ():
            _choice_events(c, events)
        return events
    except (TypeError, AttributeError) as exc:
        raise ValueError("unreadable chunk") from exc


def _choice_events(c: dict[str, Any], events: list[StreamEvent]) -> None:
    index = int(c.get("index") or 0)
    delta = c.get("delta") or {}
    legacy = "text" in c and "delta" not in c  # a legacy completion's chunk (openai_completions.py)
    text = c["text"] if legacy else delta.get("content")
    if text:
        logprobs = c.get("logprobs")
        entries = chat_entries(logprobs) if legacy else logprobs.get("content") if isinstance(logprobs, dict) else None
        events.append(TextDelta(text, index, entries if isinstance(entries, list) else None))
    for tc in delta.get("tool_calls") or ():
        fn = tc.get("function") or {}
        events.append(
            ToolCallDelta(
                tool_index=int(tc.get("index") or 0),
                arguments=fn.get("arguments") or "",
                id=tc.get("id"),
                name=fn.get("name"),
                index=index,
            )
        )
    reason = c.get("finish_reason")
    if reason:
        events.append(FinishEvent(FINISH.get(reason, "stop"), index, stop_sequence(c)))


def _stream_error(chunk: dict[str, Any], target: Target) -> UpstreamError:
    err = chunk.get("error") or {}
    message = str(err.get("message") or "") if isinstance(err, dict) else str(err)
    code = str(err.get("code") or err.get("type") or "") if isinstance(err, dict) else ""
    status = 429 if "rate_limit" in code else 400 if "context_length" in code or "content_filter" in code else 500
    return classify_status(status, f"{code} {message}", provider=target.provider, overloaded=code == "overloaded")


def read_usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    prompt = data.get("prompt_tokens_details") or {}
    completion = data.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=int(data.get("prompt_tokens") or 0),
        output_tokens=int(data.get("completion_tokens") or 0),
        cached_input_tokens=int(prompt.get("cached_tokens") or 0),
        reasoning_tokens=int(completion.get("reasoning_tokens") or 0),
    )


def stop_sequence(c: dict[str, Any]) -> str | None:
    """vLLM names the stop string that ended a choice in ``stop_reason`` (OpenAI does not say)."""
    matched = c.get("stop_reason")
    return matched if isinstance(matched, str) else None
