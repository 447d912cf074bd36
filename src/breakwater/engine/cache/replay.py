"""Stored answers as streams, and streamed answers as stored ones.

``replay_events`` turns an answer into the events of a stream that says the same: its start,
each choice's text and tool calls whole (a cached answer has nothing to wait for, so it is not
cut into pieces), its finish, its usage. The client's stream encoder writes them in the
client's wire format like any other stream.

``Assembly`` is a tap on a streamed answer (``engine/tee.py``) that puts its pieces back
together, and hands the whole answer on only when the stream finished normally: every choice
ended with a reason that is an answer (not an error, not a content filter), and the stream
itself ended without an error or a client leaving.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from breakwater.core.types import (
    ChatResponse,
    Choice,
    FinishEvent,
    FinishReason,
    Message,
    PassthroughChunk,
    StreamEvent,
    StreamStart,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from breakwater.engine.tee import EventStream
from breakwater.providers.openai_stream import passthrough_events

log = logging.getLogger("breakwater.cache")

#: finish reasons of an answer worth keeping
STORABLE = frozenset({"stop", "length", "tool_calls"})


def storable(response: ChatResponse) -> bool:
    """Every choice finished as an answer (not an error, not filtered)."""
    for c in response.choices:
        if c.finish_reason not in STORABLE:
            return False
    return bool(response.choices)


def replayed(response: ChatResponse) -> EventStream:
    """A whole answer as a stream of one batch: a cache hit, or a cascade's checked answer."""
    return EventStream(_once(replay_events(response)))


async def _once(events: list[StreamEvent]) -> AsyncIterator[list[StreamEvent]]:
    yield events


def replay_events(response: ChatResponse) -> list[StreamEvent]:
    events: list[StreamEvent] = [StreamStart(response.id, response.model, response.created)]
    for c in response.choices:
        text = c.message.text()
        entries = c.logprobs.get("content") if isinstance(c.logprobs, dict) else None
        if text or entries:
            events.append(TextDelta(text, c.index, entries if isinstance(entries, list) else None))
        for t, call in enumerate(c.message.tool_calls):
            events.append(ToolCallDelta(t, call.arguments, id=call.id, name=call.name, index=c.index))
        events.append(FinishEvent(c.finish_reason or "stop", c.index, c.stop_sequence))
    if response.usage is not None:
        events.append(UsageEvent(response.usage))
    return events


class _Choice:
    __slots__ = ("calls", "finish", "logprobs", "stop_sequence", "text")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.logprobs: list[dict[str, object]] | None = None
        self.calls: dict[int, list[str]] = {}  # tool index -> [id, name, arguments so far]
        self.finish: FinishReason | None = None
        self.stop_sequence: str | None = None


class Assembly:
    """A streamed answer's events, put back together; ``done`` gets the whole answer if it finished."""

    __slots__ = ("_choices", "_done", "_failed", "_start", "_usage")

    def __init__(self, done: Callable[[ChatResponse], None]) -> None:
        self._done = done
        self._start: StreamStart | None = None
        self._choices: dict[int, _Choice] = {}
        self._usage: Usage | None = None
        self._failed = False

    def batch(self, events: list[StreamEvent]) -> None:
        if self._failed:
            return
        for event in events:
            if isinstance(event, PassthroughChunk):
                if event.usage is not None:
                    self._usage = event.usage
                try:
                    self._take(passthrough_events(event))
                except ValueError:
                    self._failed = True  # a chunk that cannot be read: the answer cannot be rebuilt
                    return
            else:
                self._take((event,))

    def _take(self, events: tuple[StreamEvent, ...] | list[StreamEvent]) -> None:
        for event in events:
            if isinstance(event, TextDelta):
                choice = self._choice(event.index)
                choice.text.append(event.text)
                if event.logprobs:
                    choice.logprobs = (choice.logprobs or []) + event.logprobs
            elif isinstance(event, ToolCallDelta):
                call = self._choice(event.index).calls.setdefault(event.tool_index, ["", "", ""])
                if event.id:
                    call[0] = event.id
                if event.name:
                    call[1] = event.name
                call[2] += event.arguments
            elif isinstance(event, FinishEvent):
                choice = self._choice(event.index)
                choice.finish, choice.stop_sequence = event.reason, event.stop_sequence
            elif isinstance(event, UsageEvent):
                self._usage = event.usage
            elif isinstance(event, StreamStart) and self._start is None:
                self._start = event

    def _choice(self, index: int) -> _Choice:
        choice = self._choices.get(index)
        if choice is None:
            choice = self._choices[index] = _Choice()
        return choice

    def end(self, error: BaseException | None) -> None:
        if error is not None or self._failed or self._start is None:
            return
        choices = []
        for index in sorted(self._choices):
            c = self._choices[index]
            text = "".join(c.text)
            calls = [ToolCall(c.calls[t][0], c.calls[t][1], c.calls[t][2]) for t in sorted(c.calls)]
            message = Message("assistant", [TextPart(text)] if text else [], calls)
            logprobs = {"content": c.logprobs} if c.logprobs is not None else None
            choices.append(Choice(index, message, c.finish, logprobs, c.stop_sequence))
        start = self._start
        response = ChatResponse(start.id, start.model, start.created, choices, self._usage)
        if storable(response):
            try:
                self._done(response)
            except Exception:  # a tap must not raise into the stream (engine/tee.py): the answer went out
                log.exception("a streamed answer could not be stored in the cache")
