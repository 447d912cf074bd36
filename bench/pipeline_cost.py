"""The request pipeline's own cost, in process: what the stages add to one request, in microseconds.

    python bench/pipeline_cost.py [--requests N] [--repeats R]

The stages are the ones a runtime builds from a config (``runtime/runtime.Runtime``), around
a stub innermost call that answers at once, so only the pipeline is timed:

- ``calls only``: the stub awaited directly (the floor: a coroutine call and a response);
- ``pipeline, no stages``: ``begin``, ``chat`` and ``end`` with no stage in it;
- ``two pass-through stages``: two stages that wrap the call and do nothing (the cost of the
  stage mechanism itself);
- ``access off``: the stages of a config with access control off (the access stage still
  admits through the quota, which has nothing to check; recording writes a ledger row that
  goes nowhere but the request metrics);
- ``access on, one key``: access control on, the request carrying a valid key with no limits;
- ``access off, prompts configured``: a prompt registry and a route pinning a prompt, neither
  touching the timed request (the prompts stage present, not acting);
- ``access off, prompt rendered`` against ``access off, fresh requests``: the request on a
  route pinning a one-message prompt with a defaulted variable (the stage acting), and without;
  both build a new request each time, since the stage adds the prompt's message to it.
- ``access off, refusals off``: as ``access off`` without the refusal detector (on by default),
  so the difference is the detector's cost on an ordinary answer of about 400 characters;
- ``... variants on another route``: a route with variants configured, the request on another
  (the variants stage present, not acting); ``... variants acting``: the request to that route
  (arms 99.9/0.1, the subject a user), the stage assigning it.

Each figure is the median over the repeats of the mean time per request. A plain request and a
stream (the ``EventStream`` tee with the usage tap, 8 batches) are timed separately.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from breakwater.core.config import build_config
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishEvent,
    Message,
    StreamEvent,
    StreamStart,
    TextDelta,
    TextPart,
    Usage,
    UsageEvent,
)
from breakwater.engine.accounting import TallyTap
from breakwater.engine.context import Caller, RequestContext
from breakwater.engine.pipeline import ChatAnswer, ChatCall, Outcome, Pipeline, Stage
from breakwater.engine.tee import EventStream
from breakwater.infra.clock import SystemClock
from breakwater.providers.openai_moderations import ModerationRequest
from breakwater.runtime.process import Process
from breakwater.runtime.runtime import Runtime

#: an ordinary answer's opening (what the refusal detector reads: its first 300 characters)
TEXT = (
    "Sure. The tide comes in twice a day because the moon's gravity pulls the oceans into two bulges, one "
    "facing the moon and one on the far side; as the earth turns, a coast passes through both. The sun adds "
    "a smaller pull, so tides are highest when sun and moon line up (spring tides) and lowest at right angles."
)
RESPONSE = ChatResponse(
    id="x",
    model="m",
    created=0,
    choices=[Choice(0, Message("assistant", [TextPart(TEXT)]), "stop")],
    usage=Usage(input_tokens=8, output_tokens=2),
)


async def _events() -> AsyncIterator[list[StreamEvent]]:
    yield [StreamStart("x", "m", 0)]
    for i in range(6):
        yield [TextDelta(TEXT[i * 60 : i * 60 + 60])]
    yield [FinishEvent("stop"), UsageEvent(Usage(input_tokens=8, output_tokens=6))]


class Stub:
    """The innermost call, answering at once (what the engine's gateway would do, minus upstream)."""

    def __init__(self) -> None:
        self.clock = SystemClock()

    async def chat(self, request: ChatRequest, ctx: RequestContext) -> ChatResponse:
        ctx.outcome.deployment = "d"
        ctx.tally.response(RESPONSE)
        return RESPONSE

    async def chat_stream(self, request: ChatRequest, ctx: RequestContext) -> EventStream:
        ctx.outcome.deployment = "d"
        stream = EventStream(_events())
        stream.tap(TallyTap(ctx.tally, self.clock, None))
        return stream

    async def embeddings(self, request: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResponse:
        raise NotImplementedError

    async def moderations(self, request: ModerationRequest, ctx: RequestContext) -> bytes:
        return b"{}"


class PassThrough(Stage):
    """A stage that wraps the call and does nothing: the cost of one more stage in the chain."""

    name = "pass"

    def chat(self, call: ChatCall) -> ChatCall:
        async def passed(request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
            return await call(request, ctx)

        return passed

    def end(self, ctx: RequestContext, outcome: Outcome) -> None:
        pass


PROMPTS = {
    "bench-system": {
        "versions": {
            1: {
                "messages": [{"role": "system", "content": "You answer for {{ product }}, briefly."}],
                "variables": {"product": {"default": "Breakwater"}},
            }
        }
    }
}


def _config(
    tmp: Path, access: bool, prompts: str | None = None, refusals: bool = True, variants: bool = False
) -> dict[str, object]:
    """``prompts``: ``other`` (a route other than the timed one pins a prompt), ``m`` (the timed one does)."""
    routes: dict[str, object] = {"m": {"deployments": ["d"]}}
    if prompts is not None:
        routes["other"] = {"deployments": ["d"]}
        routes[prompts] = {"deployments": ["d"], "prompt": "bench-system@1"}
    if variants:
        arms = {"control": {"route": "m", "weight": 99.9}, "canary": {"route": "m", "weight": 0.1}}
        routes["v"] = {"variants": {"sticky": "user", "arms": arms}}
    return {
        "access": {"enabled": access, "store": f"sqlite:///{tmp}/keys.db", "hash_secret": f"file:{tmp}/secret"}
        if access
        else {"enabled": False},
        "ledger": {"enabled": False},
        "providers": {"m": {"type": "mock", "wire": "openai"}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": routes,
        **({"prompts": PROMPTS} if prompts is not None else {}),
        "refusals": {"enabled": refusals},
    }


async def _time(
    pipeline: Pipeline | None,
    stub: Stub,
    stream: bool,
    n: int,
    credential: str | None,
    fresh: bool = False,
    model: str = "m",
) -> float:
    request = ChatRequest(model=model, messages=[Message("user", [TextPart("hello")])], stream=stream)
    clock = stub.clock
    started = time.perf_counter()
    for i in range(n):
        if fresh:
            request = ChatRequest(model=model, messages=[Message("user", [TextPart("hello")])], stream=stream)
        ctx = RequestContext(f"r{i}", caller=Caller(credential=credential, user=f"u{i % 1000}"))
        ctx.started_mono = clock.monotonic()
        if pipeline is None:
            answer = await (stub.chat_stream(request, ctx) if stream else stub.chat(request, ctx))
        else:
            pipeline.begin(ctx)
            answer = await pipeline.chat(request, ctx)
        if isinstance(answer, EventStream):
            async for _ in answer:
                pass
        if pipeline is not None:
            pipeline.end(ctx, Outcome(request))
    return (time.perf_counter() - started) / n * 1e6


async def _measure(n: int, repeats: int) -> dict[str, dict[str, float]]:
    stub = Stub()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "secret").write_text("bench-hash-secret-" + "0" * 32)
        runtimes: dict[str, tuple[Pipeline | None, str | None, bool, str]] = {
            "calls only": (None, None, False, "m"),
            "pipeline, no stages": (Pipeline({}, stub), None, False, "m"),
            "two pass-through stages": (
                Pipeline({"access": PassThrough(), "recording": PassThrough()}, stub),
                None,
                False,
                "m",
            ),
        }
        built: list[Runtime] = []
        cases = (
            ("access off", {"access": False}, False, "m"),
            ("access on, one key", {"access": True}, False, "m"),
            ("access off, prompts configured", {"access": False, "prompts": "other"}, False, "m"),
            ("access off, fresh requests", {"access": False}, True, "m"),
            ("access off, prompt rendered", {"access": False, "prompts": "m"}, True, "m"),
            ("access off, refusals off", {"access": False, "refusals": False}, False, "m"),
            (
                "access off, refusals off, variants on another route",
                {"access": False, "refusals": False, "variants": True},
                False,
                "m",
            ),
            (
                "access off, refusals off, variants acting",
                {"access": False, "refusals": False, "variants": True},
                False,
                "v",
            ),
        )
        for name, options, fresh, model in cases:
            runtime = Runtime(build_config(_config(Path(tmp), **options)), Process({}))  # type: ignore[arg-type]
            await runtime.start()
            built.append(runtime)
            key = None
            if runtime.access.admin is not None:
                from breakwater.engine.access.operations import KeySpec

                _, key = await runtime.access.admin.create_key(KeySpec(name="bench"), actor="bench")
                assert runtime.access.directory is not None
                await runtime.access.directory.refresh(force=True)
            stages = {stage.name: stage for stage in runtime.pipeline.stages}
            runtimes[name] = (Pipeline(stages, stub), key, fresh, model)
        out: dict[str, dict[str, float]] = {}
        for label, (pipeline, key, fresh, model) in runtimes.items():
            row: dict[str, float] = {}
            for stream in (False, True):
                await _time(pipeline, stub, stream, n // 10, key, fresh, model)  # warm up
                times = [await _time(pipeline, stub, stream, n, key, fresh, model) for _ in range(repeats)]
                row["stream" if stream else "plain"] = statistics.median(times)
            out[label] = row
        for runtime in built:
            await runtime.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    table = asyncio.run(_measure(args.requests, args.repeats))
    floor = table["calls only"]
    print("| path | plain us/request | stream us/request | plain over calls only | stream over calls only |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, row in table.items():
        print(
            f"| {label} | {row['plain']:.1f} | {row['stream']:.1f} | "
            f"{row['plain'] - floor['plain']:+.1f} | {row['stream'] - floor['stream']:+.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
