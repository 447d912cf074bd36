"""The output checks' cost, in process: what the stage adds to one request, in microseconds.

    python bench/output_checks_cost.py [--requests N] [--repeats R]

The stage (``engine/guardrails/output_stage.py``) around a stub call that answers at once, on a
request with a system prompt of about 4,000 tokens (3,000 words) and an answer of about 400
characters, so only the checks are timed:

- ``no stage``: the stub awaited directly (the floor);
- ``configured, not acting``: the stage present, the request on a route without checks;
- ``regex-class checks``: the request on a route with the canary (added to a copy of the request,
  searched in the answer), a verbatim-span check of 12 words against the 3,000-word system prompt
  (its spans hashed once, kept for the next request with the same prompt), two deny patterns and a
  regex DLP stand-in of the detector protocol (an e-mail pattern; the shared detectors are wired
  by the lead); ``... fresh system prompt``: the same with a system prompt never seen before on
  every request (the spans hashed each time: the worst case); ``no verbatim check, fresh system
  prompt``: every check but the verbatim span, on a new system prompt each time;
- ``stream, regex-class checks``: a stream of 8 batches through the canary window and the
  checks after the stream, against the same stream without the stage.

Each figure is the median over the repeats of the mean time per request (a tight loop on one
core: the machine is shared, so the figures move by 10-20% between runs; compare within a run).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
from collections.abc import AsyncIterator, Callable

from breakwater.core.config import build_config
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    FinishEvent,
    Message,
    StreamEvent,
    StreamStart,
    TextDelta,
    TextPart,
    Usage,
)
from breakwater.engine.context import RequestContext
from breakwater.engine.guardrails.output_stage import OutputChecksStage
from breakwater.engine.pipeline import ChatAnswer, ChatCall
from breakwater.engine.tee import EventStream
from breakwater.infra.clock import SystemRandom

TEXT = (
    "Sure. The tide comes in twice a day because the moon's gravity pulls the oceans into two bulges, one "
    "facing the moon and one on the far side; as the earth turns, a coast passes through both. The sun adds "
    "a smaller pull, so tides are highest when sun and moon line up (spring tides) and lowest at right angles."
)
WORDS = ["policy", "support", "answer", "customer", "refund", "order", "shipping", "account", "billing", "product"]
#: about 3,000 words: some 4,000 tokens
SYSTEM = " ".join(WORDS[(i * 7 + i // 10) % len(WORDS)] + str(i % 97) for i in range(3000))
RESPONSE = ChatResponse("x", "m", 0, [Choice(0, Message("assistant", [TextPart(TEXT)]), "stop")], Usage(4000, 90))
OUTPUT = {"canary": True, "verbatim_words": 12, "deny": ["(?i)internal use only", r"\bACME-\d{6}\b"], "dlp": "flag"}


class RegexDetectors:
    """A stand-in for the shared DLP detectors: one e-mail expression."""

    _EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")

    def find(self, text: str) -> list[tuple[str, int, int]]:
        return [("email", m.start(), m.end()) for m in self._EMAIL.finditer(text)]


async def _answer(request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
    if request.stream:
        return EventStream(_events())
    return RESPONSE


async def _events() -> AsyncIterator[list[StreamEvent]]:
    yield [StreamStart("x", "m", 0)]
    for i in range(6):
        yield [TextDelta(TEXT[i * 60 : i * 60 + 60])]
    yield [FinishEvent("stop")]


def _request(route: str, system: str, stream: bool = False) -> ChatRequest:
    return ChatRequest(
        model=route,
        messages=[Message("system", [TextPart(system)]), Message("user", [TextPart("Why are there tides?")])],
        stream=stream,
    )


async def _time(call: ChatCall, requests: Callable[[int], ChatRequest], n: int) -> float:
    """Mean seconds per request over ``n`` (a stream read to its end)."""
    made = [requests(i) for i in range(n)]
    start = time.perf_counter()
    for request in made:
        answer = await call(request, RequestContext("r"))
        if isinstance(answer, EventStream):
            async for _ in answer:
                pass
    return (time.perf_counter() - start) / n


async def main(n: int, repeats: int) -> None:
    config = build_config(
        {
            "providers": {"p": {"type": "mock"}},
            "deployments": {"d": {"provider": "p", "model": "m"}},
            "routes": {
                "checked": {"deployments": ["d"], "output": OUTPUT},
                "light": {"deployments": ["d"], "output": {**OUTPUT, "verbatim_words": 0}},
                "plain": {"deployments": ["d"]},
            },
        }
    )
    stage = OutputChecksStage.of(config, SystemRandom(1), RegexDetectors())
    assert stage is not None
    checked = stage.chat(_answer)
    cases: list[tuple[str, ChatCall, Callable[[int], ChatRequest]]] = [
        ("no stage", _answer, lambda i: _request("checked", SYSTEM)),
        ("configured, not acting", checked, lambda i: _request("plain", SYSTEM)),
        ("regex-class checks", checked, lambda i: _request("checked", SYSTEM)),
        ("regex-class checks, fresh system prompt", checked, lambda i: _request("checked", f"{i} {SYSTEM}")),
        ("no verbatim check, fresh system prompt", checked, lambda i: _request("light", f"{i} {SYSTEM}")),
        ("stream, no stage", _answer, lambda i: _request("checked", SYSTEM, True)),
        ("stream, regex-class checks", checked, lambda i: _request("checked", SYSTEM, True)),
    ]
    results: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _ in range(repeats):
        for name, call, requests in cases:
            results[name].append(await _time(call, requests, n))
    floor = {False: statistics.median(results["no stage"]), True: statistics.median(results["stream, no stage"])}
    print(f"{'case':<42} {'us/request':>11} {'added us':>9}")
    for name, _, _ in cases:
        median = statistics.median(results[name])
        added = median - floor[name.startswith("stream")]
        print(f"{name:<42} {median * 1e6:>11.1f} {added * 1e6:>9.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.repeats))
