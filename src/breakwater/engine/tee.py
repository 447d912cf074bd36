"""The one stream tee: a streamed answer's batches shown to every stage that wants to see them.

A streamed answer leaves the engine as one ``EventStream``. A stage that needs to see it (usage
accounting today; cache fill, output checks and shadow comparison next) adds a ``StreamTap``
with ``tap``, and never wraps the stream again: every tap sees each batch as it goes to the
client, in the order the taps were added, then exactly one ``end``: ``None`` when the stream
finished, the error it failed with, or ``StreamClosed`` when its consumer closed it early (the
client left). A tap runs on the request path: it must be cheap and must not raise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from breakwater.core.types import StreamEvent


class StreamClosed(Exception):
    """The consumer closed the stream before its end."""


class StreamTap(Protocol):
    def batch(self, events: list[StreamEvent]) -> None:
        """One batch, as it goes to the client."""

    def end(self, error: BaseException | None) -> None:
        """The stream is over: ``None`` when complete, else why not."""


class EventStream:
    """An answer's event batches (one per upstream read), with the taps that watch them."""

    __slots__ = ("_done", "_source", "_taps")

    def __init__(self, source: AsyncIterator[list[StreamEvent]]) -> None:
        #: where the batches come from (``engine/calls/stream.WatchedStream`` is its own source
        #: of upstream batches and calls ``_show`` and ``_end`` itself)
        self._source = source
        self._taps: list[StreamTap] = []
        self._done = False

    def tap(self, tap: StreamTap) -> None:
        """Show ``tap`` every batch from now on, and the end."""
        self._taps.append(tap)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> list[StreamEvent]:
        try:
            batch = await anext(self._source)
        except StopAsyncIteration:
            self._end(None)
            raise
        except BaseException as exc:
            self._end(exc)
            raise
        self._show(batch)
        return batch

    def _show(self, batch: list[StreamEvent]) -> None:
        for tap in self._taps:
            tap.batch(batch)

    async def aclose(self) -> None:
        """Close the source at once (its upstream connection is released); taps see the end."""
        try:
            await close(self._source)
        finally:
            self._end(StreamClosed())

    def _end(self, error: BaseException | None) -> None:
        if self._done:
            return
        self._done = True
        for tap in self._taps:
            tap.end(error)


async def close(iterator: Any) -> None:
    """``aclose`` an async iterator that has one."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()
