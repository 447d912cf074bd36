"""Server-sent events, both ways: an incremental decoder and the encoder.

Decoding follows the WHATWG event-stream rules that matter for LLM APIs: lines end in
``\\n``, ``\\r\\n`` or ``\\r``; ``event:`` and ``data:`` fields; several ``data:`` lines join with
``\\n``; a blank line dispatches; lines starting with ``:`` are comments (keep-alives).
"""

from __future__ import annotations

from dataclasses import dataclass

from breakwater.core.types import StreamEvent


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str


class SSEDecoder:
    """Feed bytes as they arrive; get whole events back. Partial lines are buffered."""

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            # a lone trailing \r may be the first half of \r\n: keep it for the next chunk
            keep_cr = buffer.endswith(b"\r")
            if keep_cr:
                buffer = buffer[:-1]
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if keep_cr:
                buffer += b"\r"
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        events: list[SSEEvent] = []
        for raw in lines:
            self._line(raw.decode("utf-8", "replace"), events)
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: an event not followed by a blank line is still delivered."""
        events: list[SSEEvent] = []
        if self._buffer:
            self._line(self._buffer.rstrip(b"\r").decode("utf-8", "replace"), events)
            self._buffer = b""
        self._line("", events)
        return events

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if not line:
            if self._data or self._event is not None:
                events.append(SSEEvent(self._event, "\n".join(self._data)))
            self._event = None
            self._data = []
            return
        if line[0] == ":":
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value


def encode_sse(data: bytes, event: str | None = None) -> bytes:
    """One SSE frame. ``data`` must not contain newlines (compact JSON never does)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


class SSEStreamParser:
    """A provider's stream parser over server-sent events (the ``StreamParser`` of
    ``providers/base.py``): ``feed`` and ``close`` decode the frames and hand each one to
    ``_frame``; at ``close``, ``_end`` raises for a stream that did not finish and adds what
    comes last. Subclasses write those two."""

    __slots__ = ("_sse",)

    def __init__(self) -> None:
        self._sse = SSEDecoder()

    def feed(self, data: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for sse in self._sse.feed(data):
            self._frame(sse.event, sse.data, events)
        return events

    def close(self) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for sse in self._sse.flush():
            self._frame(sse.event, sse.data, events)
        self._end(events)
        return events

    def _frame(self, event: str | None, data: str, events: list[StreamEvent]) -> None:
        raise NotImplementedError

    def _end(self, events: list[StreamEvent]) -> None:
        raise NotImplementedError
