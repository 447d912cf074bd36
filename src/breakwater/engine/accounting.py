"""What a request consumed, as it happens: usage, finish reason, first-event time, upstream model.

The engine fills one ``Tally`` per request: from the whole response of a plain call, or batch
by batch as a stream passes (``TallyTap``, a tap on the answer's ``EventStream``: ``engine/tee.py``). The upstream's reported
usage is authoritative; when none arrives (some self-hosted servers ignore
``stream_options.include_usage``), the content chunks seen are kept so the ledger can
estimate, and mark the row as estimated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from breakwater.core.types import (
    ChatResponse,
    FinishEvent,
    PassthroughChunk,
    StreamEvent,
    StreamStart,
    TextDelta,
    TextPart,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from breakwater.engine.ports import Clock

#: the text a forwarded chunk adds to choice 0 (``Adapter.passthrough_text``)
TextOf = Callable[[PassthroughChunk], str]


@dataclass(slots=True)
class Tally:
    usage: Usage | None = None
    #: the first choice's finish reason
    finish_reason: str | None = None
    #: the model the upstream says answered (may differ from the configured name: dated snapshots)
    model: str | None = None
    #: monotonic time the first events of the answer arrived (streams), for time to first token
    first_event_at: float | None = None
    #: monotonic time the latest batch of the stream arrived (the end of its upstream time)
    last_event_at: float | None = None
    #: content-bearing stream events seen: about one token each, the estimate without usage
    chunks: int = 0
    #: the answer's text, kept for a plain response that reported no usage (to estimate it) and
    #: for a request whose content is captured
    output_text: str | None = None
    #: keep the answer's text (``observability/capture.py`` sampled this request)
    capture: bool = False

    def response(self, response: ChatResponse) -> None:
        self.usage = response.usage
        self.model = response.model or self.model
        if response.choices:
            self.finish_reason = response.choices[0].finish_reason
        if response.usage is None or self.capture:
            self.output_text = "".join(
                part.text
                for choice in response.choices
                for part in choice.message.content
                if isinstance(part, TextPart)
            )

    def observe(self, batch: list[StreamEvent], text_of: TextOf | None = None) -> None:
        """Take one batch of a stream; ``text_of`` reads forwarded chunks' text (the adapter's)."""
        if self.capture:
            self._keep_text(batch, text_of)
        for event in batch:
            if isinstance(event, PassthroughChunk):
                self.chunks += 1
                if event.usage is not None:
                    self.usage = event.usage
                if event.finish_reasons and self.finish_reason is None:
                    self.finish_reason = event.finish_reasons[0]
            elif isinstance(event, (TextDelta, ToolCallDelta)):
                self.chunks += 1
            elif isinstance(event, UsageEvent):
                self.usage = event.usage
            elif isinstance(event, FinishEvent):
                if event.index == 0:
                    self.finish_reason = event.reason
            elif isinstance(event, StreamStart) and event.model:
                self.model = event.model

    def _keep_text(self, batch: list[StreamEvent], text_of: TextOf | None) -> None:
        pieces = [self.output_text or ""]
        for event in batch:
            if isinstance(event, TextDelta) and event.index == 0:
                pieces.append(event.text)
            elif isinstance(event, PassthroughChunk) and text_of is not None:
                try:
                    pieces.append(text_of(event))
                except ValueError:
                    pass  # not a plain text chunk (tool call, several choices): nothing to keep
        self.output_text = "".join(pieces)


class TallyTap:
    """Accounting as a stream passes: each batch into the request's ``Tally``, with its arrival time."""

    __slots__ = ("_clock", "_tally", "_text_of")

    def __init__(self, tally: Tally, clock: Clock, text_of: TextOf | None) -> None:
        self._tally = tally
        self._clock = clock
        self._text_of = text_of

    def batch(self, events: list[StreamEvent]) -> None:
        tally = self._tally
        tally.last_event_at = self._clock.monotonic()
        tally.observe(events, self._text_of)

    def end(self, error: BaseException | None) -> None:
        pass  # the ledger row is written when the exchange ends (``engine/pipeline.py``)
