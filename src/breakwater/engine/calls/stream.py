"""A started stream, watched: failures after the start count, and may be resumed elsewhere.

Once a stream's first events have gone to the client, the gateway can no longer change its
status or start over. What it can still do:

- count a failure against the deployment that broke (its breaker and stats);
- give the deployment's concurrency slot back when the stream ends, however it ends;
- (accounting and anything else that watches the answer taps the ``EventStream`` around it:
  ``engine/tee.py``)
- optionally (route ``stream_failure: continue``) resume: ask another deployment to continue
  from the text sent so far, given as an assistant prefix, and splice its events into the
  same stream. Only a plain text answer with one choice can be resumed; a stream that was in
  the middle of a tool call, or had already finished, ends with the error instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from breakwater.core.errors import UpstreamError
from breakwater.core.types import FinishEvent, PassthroughChunk, StreamEvent, StreamStart, TextDelta, ToolCallDelta
from breakwater.engine.tee import EventStream, StreamClosed, close

#: given the text streamed so far, open a stream that continues it (already past its first events)
Resume = Callable[[str], Awaitable[AsyncIterator[list[StreamEvent]]]]


class WatchedStream(EventStream):
    """An ``EventStream`` over one upstream stream (and its continuations).

    ``release`` runs exactly once, when the stream is exhausted, fails or is closed; call
    ``aclose`` when abandoning it early so the upstream connection is released at once. It is
    the answer's tee itself (taps see the batches it returns), so a stream costs no extra layer.
    """

    __slots__ = ("_continued", "_on_failure", "_pending", "_release", "_resume", "_text", "text_of")

    def __init__(
        self,
        first: list[StreamEvent],
        rest: AsyncIterator[list[StreamEvent]],
        *,
        on_failure: Callable[[], None],
        release: Callable[[], None],
        resume: Resume | None = None,
        text_of: Callable[[PassthroughChunk], str] | None = None,
    ) -> None:
        super().__init__(rest)
        self._pending: list[StreamEvent] | None = first or None
        self._on_failure = on_failure
        self._release: Callable[[], None] | None = release
        self._resume = resume
        #: reads forwarded chunks' text (the serving adapter's ``passthrough_text``)
        self.text_of = text_of
        self._text: list[str] = []
        self._continued = False
        if first:
            self._track(first)

    async def __anext__(self) -> list[StreamEvent]:
        if self._pending is not None:
            batch, self._pending = self._pending, None
            for tap in self._taps:
                tap.batch(batch)
            return batch
        while True:
            try:
                batch = await anext(self._source)
            except StopAsyncIteration:
                await self._close_own()
                self._end(None)
                raise
            except UpstreamError as exc:
                if (
                    self._release is not None
                ):  # the first failure is this deployment's; later ones are counted by the continuation
                    self._on_failure()
                resumed = await self._try_resume()
                if resumed is None:
                    await self._close_own()
                    self._end(exc)
                    raise
                continue
            except BaseException as exc:
                self._end(exc)
                raise
            if self._continued:
                batch = [e for e in batch if not isinstance(e, StreamStart)]
            if self._resume is not None:
                self._track(batch)
            if batch:
                for tap in self._taps:  # the tee, inline: this is the per-batch hot path
                    tap.batch(batch)
                return batch

    async def _try_resume(self) -> AsyncIterator[list[StreamEvent]] | None:
        resume, self._resume = self._resume, None  # one continuation per stream
        if resume is None:
            return None
        self._finish_own()
        await close(self._source)
        try:
            self._source = await resume("".join(self._text))
        except UpstreamError:
            return None
        self._continued = True
        return self._source

    def _track(self, batch: list[StreamEvent]) -> None:
        """Collect the text of choice 0; anything that cannot be resumed turns resuming off."""
        if self._resume is None:
            return
        for event in batch:
            if isinstance(event, TextDelta):
                if event.index != 0:
                    self._resume = None
                    return
                self._text.append(event.text)
            elif isinstance(event, PassthroughChunk):
                if event.finish_reasons or self.text_of is None or event.event is not None:  # (a Responses event)
                    self._resume = None
                    return
                try:
                    self._text.append(self.text_of(event))
                except ValueError:
                    self._resume = None
                    return
            elif isinstance(event, (ToolCallDelta, FinishEvent)):
                self._resume = None
                return

    def _finish_own(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    async def _close_own(self) -> None:
        self._finish_own()
        await close(self._source)

    async def aclose(self) -> None:
        try:
            await self._close_own()
        finally:
            self._end(StreamClosed())
