"""Cost of streamed answers with prompt caching, end to end through the real stream parsers:
upstream SSE bytes -> canonical events -> ``Tally`` -> ``Recorder`` -> the row's cost.

This is where gateways get cost wrong (counting usage from the first event only, adding the
cumulative output counts of several events, or pricing cache reads at the full input rate), so
every expected figure below is computed by hand.
"""

from __future__ import annotations

from decimal import Decimal

import orjson

from breakwater.core.prices import PriceBook
from breakwater.core.pricing import Price
from breakwater.core.types import ChatRequest, Message, TextPart
from breakwater.engine.context import RequestContext, RouteOutcome
from breakwater.observability.ledger.row import LedgerRow
from breakwater.observability.recorder import Recorder
from breakwater.providers.base import Target
from breakwater.providers.registry import adapter_for

REQUEST = ChatRequest(model="r", messages=[Message("user", [TextPart("hi")])], stream=True)


def _sse(*events: tuple[str | None, dict[str, object]]) -> bytes:
    out = b""
    for name, data in events:
        if name is not None:
            out += f"event: {name}\n".encode()
        out += b"data: " + orjson.dumps(data) + b"\n\n"
    return out


def _row(wire: str, host: str, model: str, body: bytes, prices: PriceBook | None = None) -> LedgerRow:
    target = Target(provider=host, model=model, base_url="http://127.0.0.1:1", host=host)
    parser = adapter_for(wire).stream_parser(REQUEST, target)
    outcome = RouteOutcome(route="r", deployment="d", provider=host, upstream_model=model)
    ctx = RequestContext("rid", outcome=outcome, stream=True)
    # the body arrives split at awkward places, as TCP delivers it
    for i in range(0, len(body), 37):
        ctx.tally.observe(parser.feed(body[i : i + 37]))
    ctx.tally.observe(parser.close())
    rows: list[LedgerRow] = []
    recorder = Recorder(rows.append, prices or PriceBook(), lambda provider: provider)
    recorder.record(ctx, REQUEST, 200, None, 1.0)
    return rows[0]


def test_anthropic_stream_with_cache_read_and_write() -> None:
    body = _sse(
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
            "content": [], "stop_reason": None,
            "usage": {"input_tokens": 100, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 500,
                      "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        # output_tokens here is cumulative: 300 in all, not 301
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 300}}),
        ("message_stop", {"type": "message_stop"}),
    )  # fmt: skip
    row = _row("anthropic", "anthropic", "claude-sonnet-4-20250514", body)
    assert (row.input_tokens, row.cached_input_tokens, row.cache_write_tokens, row.output_tokens) == (
        2600, 2000, 500, 300,
    )  # fmt: skip
    # list price, USD/Mtok: input 3, cache read 0.30, cache write 3.75, output 15
    # 100*3 + 2000*0.30 + 500*3.75 + 300*15 = 300 + 600 + 1875 + 4500 = 7275 -> $0.007275
    assert row.cost_usd == Decimal("0.007275")
    assert row.finish_reason == "stop" and not row.usage_estimated


def test_openai_stream_with_cached_prompt_and_reasoning() -> None:
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06"}
    body = _sse(
        (None, {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}]}),
        (None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        (None, {**chunk, "choices": [], "usage": {
            "prompt_tokens": 3000, "completion_tokens": 200, "total_tokens": 3200,
            "prompt_tokens_details": {"cached_tokens": 2048},
            "completion_tokens_details": {"reasoning_tokens": 150}}}),
    ) + b"data: [DONE]\n\n"  # fmt: skip
    row = _row("openai", "openai", "gpt-4o", body)
    assert (row.input_tokens, row.cached_input_tokens, row.output_tokens, row.reasoning_tokens) == (
        3000,
        2048,
        200,
        150,
    )
    # gpt-4o, USD/Mtok: input 2.50, cached 1.25, output 10 (reasoning billed as output)
    # (3000-2048)*2.5 + 2048*1.25 + 200*10 = 2380 + 2560 + 2000 = 6940 -> $0.00694
    assert row.cost_usd == Decimal("0.00694")


def test_gemini_stream_with_cached_content_and_thoughts_at_a_custom_price() -> None:
    frame = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}, "index": 0}]}
    final = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "!"}]}, "finishReason": "STOP", "index": 0}],
        # every frame repeats a running total; the last one is final
        "usageMetadata": {"promptTokenCount": 1000, "cachedContentTokenCount": 600, "candidatesTokenCount": 100,
                          "thoughtsTokenCount": 50, "totalTokenCount": 1150},
    }  # fmt: skip
    running = {**frame, "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 1}}
    body = _sse((None, running), (None, final))
    price = Price(input=Decimal("0.30"), output=Decimal("2.50"), cached_input=Decimal("0.03"))
    row = _row("gemini", "gemini", "gemini-x", body, PriceBook({"d": price}))
    assert (row.input_tokens, row.cached_input_tokens, row.output_tokens, row.reasoning_tokens) == (1000, 600, 150, 50)
    # 400*0.30 + 600*0.03 + 150*2.50 = 120 + 18 + 375 = 513 -> $0.000513
    assert row.cost_usd == Decimal("0.000513")


def test_a_stream_without_usage_is_estimated_and_marked() -> None:
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "llama"}
    body = (
        b"".join(
            _sse((None, {**chunk, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}))
            for w in ("one", " two", " three")
        )
        + b"data: [DONE]\n\n"
    )
    price = Price(input=Decimal(1), output=Decimal(2))
    row = _row("openai", "vllm", "llama", body, PriceBook({"d": price}))
    assert row.usage_estimated
    assert row.output_tokens == 3  # one per content chunk
    assert row.input_tokens > 0
    assert row.cost_usd == (Decimal(row.input_tokens) * 1 + Decimal(3) * 2) / Decimal(1_000_000)
