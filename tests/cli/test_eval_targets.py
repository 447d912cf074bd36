"""The eval targets: a route of a configuration in-process (cost from its ledger row) and an
OpenAI-compatible server over HTTP (here: a gateway on loopback), giving the same outputs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from breakwater.cli.eval_targets import GatewayTarget, HttpTarget
from breakwater.core.config.parse import parse_config
from breakwater.server.app import create_app
from tests.server.running import serve

CONFIG = """
access: {enabled: false}
providers:
  m:
    type: mock
    answers:
      - {text: 'Paris is the capital.', matches: capital}
deployments:
  d: {provider: m, model: mock-1, price: {input_per_mtok: 1.0, output_per_mtok: 2.0}}
routes:
  chat: {deployments: [d]}
"""
ASK: dict[str, Any] = {"messages": [{"role": "user", "content": "What is the capital of France?"}]}
TOOL = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}


async def test_in_process_target_answers_with_the_ledger_cost() -> None:
    target = await GatewayTarget(create_app(parse_config(CONFIG), environ={}), "chat").open()
    try:
        reply = await target.ask(ASK)
        assert reply.error is None and reply.status == 200 and reply.output is not None
        out = reply.output
        assert out.text == "Paris is the capital." and out.prompt == "user: What is the capital of France?"
        assert out.cost_usd is not None and out.cost_usd > 0 and out.latency_ms is not None
        weather = {"messages": [{"role": "user", "content": "Weather in Oslo?"}]}
        tooled = await target.ask({**weather, "tools": [TOOL], "tool_choice": "required"})
        assert tooled.output is not None and tooled.output.tools == [TOOL]
        assert tooled.output.tool_calls and tooled.output.tool_calls[0]["function"]["name"] == "weather"
        bad = await target.ask({"messages": "nope"})
        assert bad.output is None and bad.status == 400 and bad.error and bad.error.startswith("HTTP 400")
    finally:
        await target.aclose()


def test_http_target_reads_the_same_answer_from_a_running_gateway() -> None:
    with serve(create_app(parse_config(CONFIG), environ={})) as url:

        async def run() -> tuple[Any, Any, Any]:
            target = HttpTarget("chat", url + "/v1")
            try:
                return await target.ask(ASK), await target.ask({"messages": []}), target.label
            finally:
                await target.aclose()

        reply, bad, label = asyncio.run(run())
    assert label == "openai:chat:chat" and reply.output is not None
    assert reply.output.text == "Paris is the capital." and reply.output.cost_usd is None
    assert bad.output is None and bad.status == 400


async def test_http_target_that_cannot_connect_says_so() -> None:
    target = HttpTarget("chat", "http://127.0.0.1:9/v1")
    try:
        reply = await target.ask(ASK)
    finally:
        await target.aclose()
    assert reply.output is None and reply.error and "did not answer" in reply.error


async def test_a_judge_call_goes_through_a_target_and_reads_the_answer_back() -> None:
    """judge_of: the ChatRequest as an OpenAI body (the judge's config over it), the answer as a
    ChatResponse; a target with no answer raises JudgeFailed."""
    from breakwater.cli.eval_targets import JudgeFailed, judge_of
    from breakwater.core.types import ChatRequest, Message, TextPart

    target = await GatewayTarget(create_app(parse_config(CONFIG), environ={}), "chat").open()
    try:
        question = ChatRequest(model="", messages=[Message("user", [TextPart("The capital?")])], temperature=0)
        answer = await judge_of(target, {"max_completion_tokens": 50})(question)
        assert answer.choices[0].message.text() == "Paris is the capital."
    finally:
        await target.aclose()
    nowhere = HttpTarget("chat", "http://127.0.0.1:9/v1")
    try:
        with pytest.raises(JudgeFailed, match="did not answer"):
            await judge_of(nowhere)(question)
    finally:
        await nowhere.aclose()
