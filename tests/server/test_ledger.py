"""Every request leaves one ledger row: the official SDKs call a running gateway, then the test
reads the SQLite ledger it wrote (in the background, in batches) and checks each field."""

from __future__ import annotations

import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from breakwater.observability.redact import redact
from tests.server.running import HELLO, anthropic_sdk, openai_sdk


def _row(ledger_path: Path, request_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """The row of ``request_id``, once the writer has flushed it (bounded wait on a condition)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if ledger_path.exists():
            db = sqlite3.connect(ledger_path)
            db.row_factory = sqlite3.Row
            try:
                found = db.execute("SELECT * FROM breakwater_ledger WHERE request_id = ?", (request_id,)).fetchall()
            except sqlite3.OperationalError:  # table not created yet
                found = []
            finally:
                db.close()
            if found:
                assert len(found) == 1, "one row per request"
                return dict(found[0])
        if time.monotonic() > deadline:
            raise AssertionError(f"no ledger row for {request_id} after {timeout_s}s")
        time.sleep(0.02)


def _cost(input_tokens: int, output_tokens: int, cached: int = 0) -> Decimal:
    # the conftest PRICE: 1.25 in, 0.125 cached in, 10 out, USD per million tokens
    return (
        Decimal(input_tokens - cached) * Decimal("1.25") + Decimal(cached) * Decimal("0.125")
        + Decimal(output_tokens) * Decimal(10)
    ) / Decimal(1_000_000)  # fmt: skip


@pytest.fixture(scope="module")
def client(gateway_url: str) -> openai.OpenAI:
    return openai_sdk(gateway_url)


@pytest.mark.parametrize("model", ["mock", "remote"])
def test_a_plain_call_is_one_row_with_usage_and_cost(client: openai.OpenAI, ledger_path: Path, model: str) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=HELLO,  # type: ignore[arg-type]
        user="alice",
        extra_headers={"x-breakwater-tags": "feature=search, env=test"},
    )
    completion = raw.parse()
    row = _row(ledger_path, raw.headers["x-request-id"])
    usage = completion.usage
    assert usage is not None
    assert row["status"] == 200 and row["error_class"] is None
    assert row["route"] == model and row["deployment"] == ("d-openai" if model == "mock" else "r-openai")
    assert row["user"] == "alice"
    assert '"feature":"search"' in row["tags"] and '"env":"test"' in row["tags"]
    assert (row["input_tokens"], row["output_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    assert row["finish_reason"] == completion.choices[0].finish_reason
    assert Decimal(row["cost_usd"]) == _cost(usage.prompt_tokens, usage.completion_tokens)
    assert row["stream"] == 0 and row["usage_estimated"] == 0 and row["ttft_ms"] is None
    assert row["latency_ms"] > 0 and row["attempts"] == 1


@pytest.mark.parametrize("model", ["mock", "remote"])
def test_a_stream_the_client_asked_no_usage_for_is_still_priced(
    client: openai.OpenAI, ledger_path: Path, model: str
) -> None:
    with client.chat.completions.with_streaming_response.create(
        model=model,
        messages=HELLO,
        stream=True,  # type: ignore[arg-type]
    ) as response:
        rid = response.headers["x-request-id"]
        chunks = list(response.parse())
    # the gateway asked the upstream for usage, and kept that chunk to itself
    assert all(chunk.usage is None for chunk in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    row = _row(ledger_path, rid)
    assert row["stream"] == 1 and row["usage_estimated"] == 0
    assert row["output_tokens"] > 0 and row["input_tokens"] > 0 and text
    assert Decimal(row["cost_usd"]) == _cost(row["input_tokens"], row["output_tokens"])
    assert row["ttft_ms"] is not None and 0 <= row["ttft_ms"] <= row["latency_ms"]
    assert row["finish_reason"] == "stop"


def test_a_stream_with_client_usage_matches_what_the_client_saw(client: openai.OpenAI, ledger_path: Path) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="mock-claude",
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        rid = response.headers["x-request-id"]
        chunks = list(response.parse())
    usage = chunks[-1].usage
    assert usage is not None
    row = _row(ledger_path, rid)
    assert (row["input_tokens"], row["output_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    assert row["provider"] == "mock-anthropic" and Decimal(row["cost_usd"]) > 0


def test_a_failed_request_has_its_row_too(client: openai.OpenAI, ledger_path: Path) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="no-such-model", messages=HELLO)  # type: ignore[arg-type]
    row = _row(ledger_path, info.value.response.headers["x-request-id"])
    assert row["status"] == 404 and row["error_class"] == "ModelNotFound"
    assert row["deployment"] == "" and row["cost_usd"] is None and row["input_tokens"] == 0


def test_a_mock_deployment_without_a_price_costs_nothing(client: openai.OpenAI, ledger_path: Path) -> None:
    """The mock is free: a mock deployment with no price: costs 0, not null (test_unpriced.py has a
    deployment with no known price, whose cost is null)."""
    raw = client.chat.completions.with_raw_response.create(model="mock-gemini", messages=HELLO)  # type: ignore[arg-type]
    row = _row(ledger_path, raw.headers["x-request-id"])
    assert row["status"] == 200 and row["output_tokens"] > 0
    assert Decimal(row["cost_usd"]) == 0


def test_the_anthropic_ingress_is_recorded(gateway_url: str, ledger_path: Path) -> None:
    client = anthropic_sdk(gateway_url)
    raw = client.messages.with_raw_response.create(model="mock-claude", max_tokens=50, messages=HELLO)  # type: ignore[arg-type]
    message = raw.parse()
    row = _row(ledger_path, raw.headers["x-request-id"])
    assert row["output_tokens"] == message.usage.output_tokens
    assert row["route"] == "mock-claude" and row["finish_reason"] == "stop"


@pytest.mark.parametrize("stream", [False, True])
def test_a_captured_route_stores_prompt_and_answer_redacted(
    client: openai.OpenAI, ledger_path: Path, stream: bool
) -> None:
    prompt = "Mail jane.doe@example.com my key sk-proj-abcdefghijklmnop and card 4111 1111 1111 1111"
    messages = [{"role": "user", "content": prompt}]
    if stream:
        with client.chat.completions.with_streaming_response.create(
            model="mock-captured",
            messages=messages,
            stream=True,  # type: ignore[arg-type]
        ) as response:
            rid = response.headers["x-request-id"]
            text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    else:
        raw = client.chat.completions.with_raw_response.create(model="mock-captured", messages=messages)  # type: ignore[arg-type]
        rid, text = raw.headers["x-request-id"], raw.parse().choices[0].message.content or ""
    row = _row(ledger_path, rid)
    assert row["prompt"] is not None and row["response"] is not None
    for secret in ("jane.doe@example.com", "sk-proj-abcdefghijklmnop", "4111 1111 1111 1111"):
        assert secret not in row["prompt"]
    assert "[EMAIL]" in row["prompt"] and "[REDACTED]" in row["prompt"] and "[CARD]" in row["prompt"]
    assert text and row["response"] == redact(text)


def test_routes_without_capture_store_no_content(client: openai.OpenAI, ledger_path: Path) -> None:
    raw = client.chat.completions.with_raw_response.create(model="mock", messages=HELLO)  # type: ignore[arg-type]
    row = _row(ledger_path, raw.headers["x-request-id"])
    assert row["prompt"] is None and row["response"] is None


def test_embeddings_are_recorded(client: openai.OpenAI, ledger_path: Path) -> None:
    raw = client.embeddings.with_raw_response.create(model="mock", input=["one", "two"])
    result = raw.parse()
    row = _row(ledger_path, raw.headers["x-request-id"])
    assert row["status"] == 200 and row["route"] == "mock" and row["deployment"] == "d-openai"
    assert row["input_tokens"] == result.usage.prompt_tokens > 0 and row["output_tokens"] == 0
    assert Decimal(row["cost_usd"]) == _cost(result.usage.prompt_tokens, 0)


def test_openai_metadata_becomes_tags_and_the_header_wins(client: openai.OpenAI, ledger_path: Path) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="mock-claude",  # not an OpenAI upstream: metadata is the gateway's, not forwarded as a parameter
        messages=HELLO,  # type: ignore[arg-type]
        metadata={"feature": "from-body", "experiment": "b"},
        extra_headers={"x-breakwater-tags": "feature=from-header"},
    )
    row = _row(ledger_path, raw.headers["x-request-id"])
    assert orjson.loads(row["tags"]) == {"feature": "from-header", "experiment": "b"}


def test_malformed_metadata_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="mock", messages=HELLO, metadata={"k": 3})  # type: ignore[arg-type, dict-item]
    assert info.value.body["param"] == "metadata.k"  # type: ignore[index]


def test_upstream_time_and_overhead_split_the_latency(client: openai.OpenAI, ledger_path: Path) -> None:
    """The mock waits 120 ms before answering: that is upstream time; the rest is the gateway's overhead."""
    raw = client.chat.completions.with_raw_response.create(
        model="mock",
        messages=HELLO,  # type: ignore[arg-type]
        extra_headers={"x-mock-fault": "latency=120"},
    )
    row = _row(ledger_path, raw.headers["x-request-id"])
    assert 120 <= row["upstream_ms"] <= row["latency_ms"]
    assert row["overhead_ms"] == pytest.approx(row["latency_ms"] - row["upstream_ms"], abs=0.01)
    assert row["overhead_ms"] < row["upstream_ms"]


def test_the_request_parameters_are_recorded_from_the_openai_sdk(client: openai.OpenAI, ledger_path: Path) -> None:
    """An OpenAI request's temperature, max_completion_tokens, top_p, seed, tools and response_format
    land in their columns (the schema itself is not kept)."""
    raw = client.chat.completions.with_raw_response.create(
        model="mock",
        messages=HELLO,  # type: ignore[arg-type]
        temperature=0.3,
        max_completion_tokens=77,
        top_p=0.9,
        seed=2**40,
        tools=[{"type": "function", "function": {"name": "look_up", "parameters": {"type": "object"}}}],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
    )
    row = _row(ledger_path, raw.headers["x-request-id"])
    assert (row["temperature"], row["max_tokens"], row["top_p"], row["seed"]) == (0.3, 77, 0.9, 2**40)
    assert row["has_tools"] == 1 and row["response_format"] == "json_schema" and row["stream"] == 0


def test_a_plain_request_records_no_parameters_and_no_tools(client: openai.OpenAI, ledger_path: Path) -> None:
    """Parameters the client did not send are NULL; no tools is false, not unknown."""
    raw = client.chat.completions.with_raw_response.create(model="mock", messages=HELLO, max_tokens=12)  # type: ignore[arg-type]
    row = _row(ledger_path, raw.headers["x-request-id"])
    assert (row["temperature"], row["top_p"], row["seed"], row["response_format"]) == (None, None, None, None)
    assert row["max_tokens"] == 12 and row["has_tools"] == 0


def test_a_seed_beyond_64_bits_is_left_out_of_the_row(client: openai.OpenAI, ledger_path: Path) -> None:
    """A seed no signed 64-bit column can hold (2**63, which JSON readers still take) is recorded as NULL, and the row is still written."""
    raw = client.chat.completions.with_raw_response.create(model="mock", messages=HELLO, seed=2**63)  # type: ignore[arg-type]
    row = _row(ledger_path, raw.headers["x-request-id"])
    assert row["status"] == 200 and row["seed"] is None


def test_the_request_parameters_are_recorded_from_the_anthropic_sdk(gateway_url: str, ledger_path: Path) -> None:
    """An Anthropic Messages request's temperature, max_tokens, top_p and tools land in the same
    columns; a streamed one says so."""
    client = anthropic_sdk(gateway_url)
    tool = {"name": "look_up", "input_schema": {"type": "object"}}
    with client.messages.with_streaming_response.create(
        model="mock-claude",
        max_tokens=50,
        extra_body={"temperature": 0.7, "top_p": 0.8},  # (this SDK's version no longer names them)
        tools=[tool],  # type: ignore[list-item]
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
    ) as response:
        rid = response.headers["x-request-id"]
        for _ in response.iter_lines():
            pass
    row = _row(ledger_path, rid)
    assert (row["temperature"], row["max_tokens"], row["top_p"], row["seed"]) == (0.7, 50, 0.8, None)
    assert row["has_tools"] == 1 and row["response_format"] is None and row["stream"] == 1
