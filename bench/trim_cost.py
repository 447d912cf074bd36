"""The history trimmer's cost per request, in process.

    python bench/trim_cost.py [--repeats R] [--json]

The trim stage, as the runtime builds it (the route's first deployment's tokenizer, here
``gpt-4o-mini``'s ``o200k_base``, loaded first), around a stub call that answers at once:

- ``short, under budget``: a three-message chat under a budget of 8,000 tokens: its bytes bound
  its tokens below the budget, so it is never tokenized (the configured-but-not-acting case);
- ``4k tokens, under budget``: one ~16,000-character message under the same budget: its bytes
  could be over, so it is counted, and passes;
- ``40 turns, trimmed``: a 40-turn conversation (~20k tokens) cut to 8,000 (drop mode).

The figure is p50 over ``--repeats`` requests of (stage - stub), in milliseconds. The throughput
cost of a configured trimmer through the whole gateway is ``python bench/run.py --trim-cost``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

from breakwater.core.types import ChatRequest, ChatResponse, Message, TextPart
from breakwater.engine.context import RequestContext
from breakwater.engine.pipeline import ChatAnswer, ChatCall
from breakwater.engine.ports import text_counter
from breakwater.engine.trim.stage import TrimPlan, TrimStage
from breakwater.infra.tokenizers import Tokenizers

sys.path.insert(0, str(Path(__file__).parent))
from injection_cost import _prose

MODEL = ("openai", "gpt-4o-mini")
BUDGET = 8000


async def _answer(request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
    return ChatResponse("x", "m", 0, [])


def cases() -> dict[str, list[Message]]:
    system = Message("system", [TextPart("You are a helpful assistant.")])
    turns = []
    for i in range(40):
        turns.append(Message("user", [TextPart(_prose(1000 + i))]))
        turns.append(Message("assistant", [TextPart(_prose(1000 + 2 * i))]))
    return {
        "short, under budget": [
            system,
            Message("user", [TextPart("Hello there")]),
            Message("assistant", [TextPart("Hi!")]),
        ],
        "4k tokens, under budget": [system, Message("user", [TextPart(_prose(16_000))])],
        "40 turns, trimmed": [system, *turns, Message("user", [TextPart("And so?")])],
    }


async def _p50(call: ChatCall, messages: list[Message], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        request = ChatRequest("chat", list(messages))
        ctx = RequestContext("r")
        start = time.perf_counter()
        await call(request, ctx)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


async def run(repeats: int) -> dict[str, float]:
    tokens = Tokenizers()
    await tokens.load(*MODEL)
    stage = TrimStage({"chat": TrimPlan(BUDGET, 1, text_counter(tokens, *MODEL))})
    trimmed = stage.chat(_answer)
    out: dict[str, float] = {}
    for name, messages in cases().items():
        await trimmed(ChatRequest("chat", list(messages)), RequestContext("warm"))
        bare = await _p50(_answer, messages, repeats)
        out[name] = round((await _p50(trimmed, messages, repeats) - bare) * 1000, 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args.repeats))
    if args.json:
        print(json.dumps({"added_p50_ms": result}, indent=2))
        return
    print(f"the trim stage, p50 of {args.repeats} requests, added ms:")
    for name, ms in result.items():
        print(f"  {name:<26} {ms:8.4f}")


if __name__ == "__main__":
    main()
