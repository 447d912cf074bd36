"""Branching routes end to end through the official SDKs: rules choose a branch, a cascade asks a
cheap model first and escalates on a failed check (the mock's scripted answers play a cheap model
that is unsure and a strong one that knows), and the ledger row says where the request went, why,
and what every step cost."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.server.running import anthropic_sdk, openai_sdk, serve
from tests.server.test_ledger import _row

SMALL_PRICE = {"input_per_mtok": "1", "output_per_mtok": "2"}
BIG_PRICE = {"input_per_mtok": "100", "output_per_mtok": "200"}
UNSURE = "I am not sure."
KNOWS = "Paris is the capital of France."

ANSWERS = [
    {"model": "mock-small", "matches": "(?i)capital of france", "text": UNSURE},
    {"model": "mock-small", "matches": "(?i)as json", "text": "not json at all"},
    {"model": "mock-big", "matches": "(?i)as json", "text": '{"city": "Paris"}'},
    {"model": "mock-small", "matches": r"2\+2", "text": "4", "logprob": -0.05},
    {"model": "mock-big", "text": KNOWS},
]


def _config(tmp: Path) -> dict[str, Any]:
    return {
        "access": {"enabled": False},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool"), "flush_interval_s": 0.05},
        "providers": {
            "m": {"type": "mock", "answers": ANSWERS},
            "down": {"type": "mock", "faults": [{"fault": "status=503"}]},
        },
        "deployments": {
            "small": {"provider": "m", "model": "mock-small", "price": SMALL_PRICE},
            "big": {"provider": "m", "model": "mock-big", "price": BIG_PRICE},
            "broken": {"provider": "down", "model": "mock-small", "price": SMALL_PRICE},
        },
        "routes": {
            "small": {"deployments": ["small"]},
            "big": {"deployments": ["big"]},
            "broken": {"deployments": ["broken"], "retry": {"max_attempts": 1}},
            "pick": {
                "branches": {"cheap": {"route": "small"}, "strong": {"route": "big"}, "own": {"deployments": ["big"]}},
                "rules": [
                    {"if": {"tools": True}, "then": "strong"},
                    {"if": {"last_user_contains": ["prove"]}, "then": "strong"},
                    {"if": {"header": {"x-tier": "gold"}}, "then": "own"},
                    {"if": {"tags": {"team": "research"}}, "then": "strong"},
                    {"if": {"prompt_tokens_over": 200}, "then": "strong"},
                ],
                "default": "cheap",
                "baseline": "strong",
            },
            "ask": {
                "branches": {"cheap": {"route": "small"}, "strong": {"route": "big"}},
                "cascade": {
                    "steps": ["cheap", "strong"],
                    "checks": {"not_contains": ["not sure"], "json_schema": True},
                },
            },
            "sure": {
                "branches": {"cheap": {"route": "small"}, "strong": {"route": "big"}},
                "cascade": {"steps": ["cheap", "strong"], "checks": {"min_mean_logprob": -0.1}},
            },
            "flaky": {
                "branches": {"cheap": {"route": "broken"}, "strong": {"route": "big"}},
                "cascade": {"steps": ["cheap", "strong"], "checks": {}},
            },
        },
    }


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[openai.OpenAI, Path]]:
    tmp = tmp_path_factory.mktemp("routing")
    with serve(create_app(build_config(_config(tmp)), environ={})) as url:
        yield openai_sdk(url), tmp / "ledger.db"


def _ask(client: openai.OpenAI, model: str, text: str, **extra: Any) -> Any:
    messages: Any = [{"role": "user", "content": text}]
    return client.chat.completions.with_raw_response.create(model=model, messages=messages, **extra)


TOOL: Any = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("text", "extra", "branch", "deployment", "why"),
    [
        ("Hello there", {}, "cheap", "small", "default"),
        ("Hello there", {"tools": [TOOL]}, "strong", "big", "rule 1 (tools)"),
        ("Please PROVE it.", {}, "strong", "big", "rule 2 (last_user_contains)"),
        ("Hello there", {"extra_headers": {"x-tier": "gold"}}, "own", "big", "rule 3 (header)"),
        ("Hello there", {"extra_headers": {"x-breakwater-tags": "team=research"}}, "strong", "big", "rule 4 (tags)"),
        ("Hello there", {"metadata": {"team": "research"}}, "strong", "big", "rule 4 (tags)"),
        ("word " * 1000, {}, "strong", "big", "rule 5 (prompt_tokens_over)"),
    ],
)
def test_rules_choose_the_branch_and_the_ledger_says_why(
    gateway: tuple[openai.OpenAI, Path], text: str, extra: dict[str, Any], branch: str, deployment: str, why: str
) -> None:
    client, ledger = gateway
    answer = _ask(client, "pick", text, **extra)
    assert answer.headers["x-breakwater-route-branch"] == branch
    assert answer.headers["x-breakwater-deployment"] == deployment
    assert "x-breakwater-cascade-steps" not in answer.headers
    row = _row(ledger, answer.headers["x-request-id"])
    assert (row["route"], row["branch"], row["decision"], row["deployment"]) == ("pick", branch, why, deployment)


def test_a_branch_route_of_its_own_is_not_listed(gateway: tuple[openai.OpenAI, Path]) -> None:
    """``pick.own`` serves the branch with deployments of its own; /v1/models lists ``pick`` only."""
    names = {m.id for m in gateway[0].models.list()}
    assert "pick" in names and "pick.own" not in names


def _cost(ledger: Path, request_id: str) -> Decimal:
    return Decimal(_row(ledger, request_id)["cost_usd"])


def test_a_cascade_escalates_an_unsure_answer_and_charges_both_steps(gateway: tuple[openai.OpenAI, Path]) -> None:
    """The cheap step says it is not sure: the strong step answers; the headers say so, and the
    ledger row has the decision and the cost of both calls (each priced at its own deployment)."""
    client, ledger = gateway
    question = "What is the capital of France?"
    answer = _ask(client, "ask", question)
    assert answer.parse().choices[0].message.content == KNOWS
    assert answer.headers["x-breakwater-route-branch"] == "strong"
    assert answer.headers["x-breakwater-cascade-steps"] == "2"
    row = _row(ledger, answer.headers["x-request-id"])
    assert row["decision"] == "cascade: cheap (not_contains failed) -> strong (last step)"
    alone = [_ask(client, route, question).headers["x-request-id"] for route in ("small", "big")]
    assert Decimal(row["cost_usd"]) == _cost(ledger, alone[0]) + _cost(ledger, alone[1])
    small, big = (_row(ledger, rid) for rid in alone)
    assert row["input_tokens"] == small["input_tokens"] + big["input_tokens"]
    assert row["output_tokens"] == small["output_tokens"] + big["output_tokens"]


def _at(row: dict[str, Any], price: dict[str, str]) -> Decimal:
    """The row's tokens at ``price`` (the mock reports no cached tokens)."""
    assert row["cached_input_tokens"] == 0
    per = Decimal(1_000_000)
    return (
        row["input_tokens"] * Decimal(price["input_per_mtok"])
        + row["output_tokens"] * Decimal(price["output_per_mtok"])
    ) / per


def test_the_ledger_says_what_routing_saved_against_the_baseline(gateway: tuple[openai.OpenAI, Path]) -> None:
    """Each branching row records what its tokens would have cost at the route's baseline branch
    (``pick``: ``baseline: strong``; a cascade: its last step) minus what it cost: a cheap
    answer saves the difference, the baseline's own answer saves nothing, a cascade that
    escalated spent its cheap step more; a plain route's row has no figure."""
    client, ledger = gateway
    cheap = _row(ledger, _ask(client, "pick", "Hello there").headers["x-request-id"])
    assert cheap["branch"] == "cheap" and Decimal(cheap["cost_usd"]) == _at(cheap, SMALL_PRICE) > 0
    assert Decimal(cheap["routing_saved_usd"]) == _at(cheap, BIG_PRICE) - _at(cheap, SMALL_PRICE) > 0
    for extra in ({"tools": [TOOL]}, {"extra_headers": {"x-tier": "gold"}}):  # strong, and own (same price)
        row = _row(ledger, _ask(client, "pick", "Hello there", **extra).headers["x-request-id"])
        assert Decimal(row["routing_saved_usd"]) == 0
    kept = _row(ledger, _ask(client, "ask", "What is 2+2?").headers["x-request-id"])
    assert Decimal(kept["routing_saved_usd"]) == _at(kept, BIG_PRICE) - Decimal(kept["cost_usd"]) > 0
    question = "What is the capital of France?"
    escalated = _row(ledger, _ask(client, "ask", question).headers["x-request-id"])
    cheap_step = _cost(ledger, _ask(client, "small", question).headers["x-request-id"])
    assert Decimal(escalated["routing_saved_usd"]) == -cheap_step < 0
    plain = _row(ledger, _ask(client, "big", "Hello there").headers["x-request-id"])
    assert plain["routing_saved_usd"] is None


def test_a_cascade_keeps_a_cheap_answer_that_passes(gateway: tuple[openai.OpenAI, Path]) -> None:
    client, ledger = gateway
    answer = _ask(client, "ask", "What is 2+2?")
    assert answer.parse().choices[0].message.content == "4"
    assert answer.headers["x-breakwater-route-branch"] == "cheap"
    assert answer.headers["x-breakwater-cascade-steps"] == "1"
    row = _row(ledger, answer.headers["x-request-id"])
    assert row["decision"] == "cascade: cheap (passed)" and row["deployment"] == "small"


def test_an_answer_that_fails_the_request_schema_escalates(gateway: tuple[openai.OpenAI, Path]) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    answer = _ask(
        gateway[0],
        "ask",
        "Name the city, as JSON.",
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
    )
    assert answer.parse().choices[0].message.content == '{"city": "Paris"}'
    assert answer.headers["x-breakwater-route-branch"] == "strong"
    assert "json_schema failed" in _row(gateway[1], answer.headers["x-request-id"])["decision"]


def test_the_logprob_check_asks_for_logprobs_without_returning_them(gateway: tuple[openai.OpenAI, Path]) -> None:
    """A confident cheap answer (every token -0.05) is kept, without the logprobs the caller did
    not ask for; an unsure one (the mock's usual answers average about -1) escalates."""
    client = gateway[0]
    sure = _ask(client, "sure", "What is 2+2?")
    assert sure.headers["x-breakwater-route-branch"] == "cheap"
    assert sure.parse().choices[0].logprobs is None
    unsure = _ask(client, "sure", "Tell me something.")
    assert unsure.headers["x-breakwater-route-branch"] == "strong"


def test_a_failing_cheap_step_escalates(gateway: tuple[openai.OpenAI, Path]) -> None:
    client, ledger = gateway
    answer = _ask(client, "flaky", "Hello")
    assert answer.parse().choices[0].message.content == KNOWS
    decision = _row(ledger, answer.headers["x-request-id"])["decision"]
    assert decision.startswith("cascade: cheap (failed: ") and decision.endswith("-> strong (last step)")


@pytest.mark.parametrize(("question", "expected", "branch"), [("What is 2+2?", "4", "cheap"),
                                                               ("What is the capital of France?", KNOWS, "strong")])  # fmt: skip
def test_a_streamed_cascade_streams_the_kept_answer(
    gateway: tuple[openai.OpenAI, Path], question: str, expected: str, branch: str
) -> None:
    """Streamed: a checked step is buffered and replayed as a stream, the last step streams; the
    official SDK reads both, usage included."""
    client = gateway[0]
    with client.chat.completions.with_streaming_response.create(
        model="ask",
        messages=[{"role": "user", "content": question}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["x-breakwater-route-branch"] == branch
        chunks = list(response.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_a_caller_may_skip_the_cascade(gateway: tuple[openai.OpenAI, Path]) -> None:
    answer = _ask(gateway[0], "ask", "What is 2+2?", extra_headers={"x-breakwater-cascade": "skip"})
    assert answer.headers["x-breakwater-route-branch"] == "strong"
    assert answer.headers["x-breakwater-cascade-steps"] == "1"
    assert _row(gateway[1], answer.headers["x-request-id"])["decision"] == "cascade: strong (cascade skipped)"


def test_branches_and_escalations_are_counted(gateway: tuple[openai.OpenAI, Path]) -> None:
    client = gateway[0]
    _ask(client, "pick", "Hello there")
    _ask(client, "ask", "What is the capital of France?")
    metrics = httpx2.get(str(client.base_url).removesuffix("v1/") + "metrics").text
    assert 'breakwater_route_branch_total{branch="cheap",route="pick"}' in metrics
    assert 'breakwater_route_branch_total{branch="strong",route="ask"}' in metrics
    escalations = next(line for line in metrics.splitlines() if line.startswith("breakwater_cascade_escalations_total"))
    assert float(escalations.split()[1]) >= 1


def test_embeddings_on_a_branching_route_go_to_its_default_branch(gateway: tuple[openai.OpenAI, Path]) -> None:
    client, ledger = gateway
    answer = client.embeddings.with_raw_response.create(model="pick", input="hello")
    assert len(answer.parse().data[0].embedding) == 1536
    row = _row(ledger, answer.headers["x-request-id"])
    assert (row["route"], row["branch"], row["deployment"]) == ("pick", "cheap", "small")


@pytest.mark.parametrize(("question", "expected"), [("What is 2+2?", "4"), ("What is the capital of France?", KNOWS)])
def test_a_cascade_answers_the_anthropic_sdk_streamed(
    gateway: tuple[openai.OpenAI, Path], question: str, expected: str
) -> None:
    """Through /v1/messages: a kept cheap answer is replayed as Anthropic events, the escalated
    one streams from the last step; the SDK assembles both."""
    url = str(gateway[0].base_url).removesuffix("/v1/")
    client = anthropic_sdk(url)
    with client.messages.stream(
        model="ask", max_tokens=100, messages=[{"role": "user", "content": question}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == expected and final.usage.output_tokens > 0
