"""The output checks on a streamed answer (docs/guardrails.md, "Streams").

Two parts, because a stream's batches leave for the client as they come:

* ``guarded``: the checks that can stop a stream part-way. Each batch's text is searched, with
  the last ``stream_window`` characters before it, for the route's canary and its blocking deny
  patterns *before* the batch is passed on; a batch that completes a match is never sent: the
  stream ends there with an error event (``OutputBlocked``) and the upstream is released. Nothing
  is held back, so no latency is added; the price is that the beginning of a match (a prefix of
  the canary) may already have been sent, never the whole of it.
* ``FlagTap``: the checks that need the whole answer (a verbatim span of the system prompt,
  personal data, deny patterns that only flag, the JSON schema) run on the assembled stream
  (``engine/cache/replay.Assembly``) once it has finished, and can only flag: it has been sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    PassthroughChunk,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)
from breakwater.engine.cache.replay import Assembly
from breakwater.engine.context import RequestContext
from breakwater.engine.guardrails.output_policy import Detectors, OutputPolicy, denied, leak_blocked
from breakwater.engine.guardrails.structured import answer_error, wants_structure
from breakwater.engine.tee import EventStream


def guard_stream(
    stream: EventStream,
    policy: OutputPolicy,
    request: ChatRequest,
    system: str,
    ctx: RequestContext,
    detectors: Detectors | None,
) -> EventStream:
    """``stream`` with the route's output checks: wrapped when some check can stop it, tapped
    for the checks that run once it is whole."""
    flags = ctx.output_flags = []
    if policy.canary is not None or (policy.deny is not None and policy.config.deny_action == "block"):
        stream = EventStream(_guarded(stream, policy, flags))
    config = policy.config
    if policy.verbatim is not None or config.deny or config.dlp != "off" or config.structured != "off":
        stream.tap(Assembly(lambda whole: _after(whole, policy, request, system, flags, detectors)))
    return stream


async def _guarded(inner: EventStream, policy: OutputPolicy, flags: list[str]) -> AsyncIterator[list[StreamEvent]]:
    keep = policy.config.stream_window
    #: the recent text of each choice's content (by index) and of each tool call's arguments
    #: (keyed by ``(choice, tool)``)
    tails: dict[object, str] = {}
    try:
        async for batch in inner:
            for event in batch:
                pieces: tuple[tuple[object, str], ...]
                if isinstance(event, TextDelta):
                    pieces = ((event.index, event.text),)
                elif isinstance(event, PassthroughChunk):
                    pieces = ((0, event.text), *event.others)
                elif isinstance(event, ToolCallDelta):
                    pieces = (((event.index, event.tool_index), event.arguments),)
                else:
                    continue
                for key, text in pieces:
                    if not text:
                        continue
                    seen = tails.get(key, "") + text
                    found = policy.window_finding(seen)
                    if found is not None:
                        flags.append(f"{found}:blocked")
                        raise leak_blocked("canary") if found == "canary" else denied()
                    tails[key] = seen[-keep:]
            yield batch
    finally:
        await inner.aclose()  # released at once, however this stream ends


def _after(
    whole: ChatResponse,
    policy: OutputPolicy,
    request: ChatRequest,
    system: str,
    flags: list[str],
    detectors: Detectors | None,
) -> None:
    for choice in whole.choices:
        texts = [choice.message.text(), *(call.arguments for call in choice.message.tool_calls)]
        for text in texts:
            for flag in policy.flags_after(text, system, detectors):
                if flag not in flags:
                    flags.append(flag)
    if policy.config.structured != "off" and wants_structure(request) and answer_error(request, whole) is not None:
        flags.append("structured:flagged")
