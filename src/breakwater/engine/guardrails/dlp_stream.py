"""A masked request's streamed answer with the placeholders restored, as it goes to the client.

A placeholder can be split across chunks (``[EMA`` then ``IL_1]``): the text after the last
``[`` that has no ``]`` yet, if shorter than the longest placeholder, is held back until the
next delta of that choice, its finish, or the stream's end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from breakwater.core.types import FinishEvent, StreamEvent, TextDelta, ToolCallDelta
from breakwater.engine.guardrails.dlp import PLACEHOLDER_MAX, DlpPlan
from breakwater.engine.tee import EventStream


class Restorer:
    """Restores placeholders in text and tool-call deltas, holding back an unfinished one per
    choice (and per tool call)."""

    __slots__ = ("_held", "_plan", "_tools")

    def __init__(self, plan: DlpPlan) -> None:
        self._plan = plan
        self._held: dict[int, str] = {}
        #: ``(choice, tool call)`` -> the arguments held back
        self._tools: dict[tuple[int, int], str] = {}

    def batch(self, events: list[StreamEvent]) -> list[StreamEvent]:
        """``events`` with text restored (a delta whose text is all held back is left out)."""
        out: list[StreamEvent] = []
        for event in events:
            if isinstance(event, TextDelta):
                text = self._held.pop(event.index, "") + event.text
                cut = _cut(text)
                if cut < len(text):
                    self._held[event.index] = text[cut:]
                if cut or event.logprobs:
                    out.append(dataclasses.replace(event, text=self._plan.restore(text[:cut])))
            elif isinstance(event, ToolCallDelta) and event.arguments:
                key = (event.index, event.tool_index)
                text = self._tools.pop(key, "") + event.arguments
                cut = _cut(text)
                if cut < len(text):
                    self._tools[key] = text[cut:]
                if cut or event.id is not None or event.name is not None:
                    out.append(dataclasses.replace(event, arguments=self._plan.restore(text[:cut])))
            elif isinstance(event, FinishEvent):
                out.extend(self._flush(event.index))
                out.append(event)
            else:
                out.append(event)
        return out

    def rest(self) -> list[StreamEvent]:
        """What is still held back (the stream ended without a finish)."""
        indexes = {*self._held, *(index for index, _ in self._tools)}
        return [event for index in sorted(indexes) for event in self._flush(index)]

    def _flush(self, index: int) -> list[StreamEvent]:
        held = self._held.pop(index, "")
        out: list[StreamEvent] = [TextDelta(self._plan.restore(held), index=index)] if held else []
        for key in [key for key in self._tools if key[0] == index]:
            arguments = self._plan.restore(self._tools.pop(key))
            out.append(ToolCallDelta(key[1], arguments=arguments, index=index))
        return out


def _cut(text: str) -> int:
    """Where the text that may still be the start of a placeholder begins (``len(text)``: none)."""
    at = text.rfind("[", max(0, len(text) - PLACEHOLDER_MAX))
    if at == -1 or "]" in text[at:]:
        return len(text)
    return at


def restoring(stream: EventStream, plan: DlpPlan) -> EventStream:
    """A stream of ``stream``'s batches with placeholders restored; closing it closes ``stream``."""
    return EventStream(_restored(stream, Restorer(plan)))


async def _restored(stream: EventStream, restorer: Restorer) -> AsyncIterator[list[StreamEvent]]:
    try:
        async for batch in stream:
            events = restorer.batch(batch)
            if events:
                yield events
        rest = restorer.rest()
        if rest:
            yield rest
    finally:
        await stream.aclose()
