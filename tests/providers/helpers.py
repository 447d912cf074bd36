"""Helpers the wire-format tests share: canonical requests, an adapter's request body and stream
parsing in random pieces, a stream's gist, and the ``data:`` payloads of an SSE body.

Used by the adapter tests here (``test_anthropic.py``, ``test_gemini.py``, ``test_conformance.py``),
the mock provider's tests (``tests/infra/mock``) and the gateway's (``tests/server``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson

from breakwater.core.types import (
    ChatRequest,
    FinishEvent,
    Message,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from breakwater.providers.base import Adapter, StreamParser, Target


def user(text: str) -> Message:
    """A user message of one text part."""
    return Message("user", [TextPart(text)])


def chat_request(*messages: Message, **kw: Any) -> ChatRequest:
    """A canonical chat request to the route ``alias``; ``kw`` sets any other field."""
    return ChatRequest(model="alias", messages=list(messages), **kw)


def feed_in_pieces(parser: StreamParser, data: bytes, *, most: int, seed: int = 7) -> list[StreamEvent]:
    """Every event ``parser`` makes of ``data`` fed in random pieces of 1 to ``most`` bytes, then closed.

    The cuts land anywhere (inside a frame, a line, a UTF-8 character), the same for the same seed.
    """
    rng = random.Random(seed)
    events: list[StreamEvent] = []
    i = 0
    while i < len(data):
        n = rng.randint(1, most)
        events.extend(parser.feed(data[i : i + n]))
        i += n
    events.extend(parser.close())
    return events


@dataclass(frozen=True)
class AdapterUnderTest:
    """An adapter and the target it calls, for the tests of one wire format.

    Args:
        adapter: the adapter under test.
        target: where its requests go.
        piece: the largest piece ``parse_stream`` feeds at a time.
    """

    adapter: Adapter
    target: Target
    piece: int

    def body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body the adapter sends upstream for ``request``."""
        body: dict[str, Any] = orjson.loads(self.adapter.chat_request(request, self.target).body)
        return body

    def parse_stream(self, data: bytes, seed: int = 7) -> list[StreamEvent]:
        """The events of an upstream stream, fed in random pieces to a parser for a streamed request."""
        parser = self.adapter.stream_parser(chat_request(user("hi"), stream=True), self.target)
        return feed_in_pieces(parser, data, most=self.piece, seed=seed)


def collect_stream(events: list[StreamEvent]) -> tuple[str, list[dict[str, Any]], str | None, Usage | None]:
    """(text, tool calls with parsed arguments, finish reason, usage) of a canonical stream.

    A tool call streamed without arguments has ``{}`` as its arguments.
    """
    text, finish, usage = "", None, None
    calls: dict[int, dict[str, Any]] = {}
    for e in events:
        if isinstance(e, TextDelta):
            text += e.text
        elif isinstance(e, ToolCallDelta):
            call = calls.setdefault(e.tool_index, {"id": e.id, "name": e.name, "arguments": ""})
            call["arguments"] += e.arguments
        elif isinstance(e, FinishEvent):
            finish = e.reason
        elif isinstance(e, UsageEvent):
            usage = e.usage
    tools = [
        {"id": c["id"], "name": c["name"], "arguments": orjson.loads(c["arguments"] or "{}")} for c in calls.values()
    ]
    return text, tools, finish, usage


def sse_data(stream: bytes) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order (frames end in ``\\n\\n`` or ``\\r\\n\\r\\n``)."""
    out = []
    for frame in stream.replace(b"\r\n", b"\n").split(b"\n\n"):
        for line in frame.split(b"\n"):
            if line.startswith(b"data: "):
                out.append(line[6:].decode())
    return out
