"""Responses API requests forwarded to upstreams that serve OpenAI's ``/v1/responses``, with the
official ``openai`` SDK's ``client.responses`` against a running gateway.

The OpenAI-wire upstreams are the mock provider, over HTTP on loopback (recording every body it is
sent) and in-process. The mock acts out OpenAI's hosted web search (a ``web_search_call`` item
first in the output), so an answer holding one was made by a forwarded request: a translated one
would have been refused. Its ids start ``resp_mock``, the gateway's own ``resp_`` + hex.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.server.recording import RecordingUpstream
from tests.server.running import openai_sdk, serve
from tests.server.test_ledger import _row

EMAIL = "jane.doe@example.com"
SEARCH = {"type": "web_search"}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
#: the routes whose deployment serves /responses: over HTTP (recorded) and in-process
FORWARDED = ["fwd", "inproc"]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("responses-forward") / "ledger.db"


@pytest.fixture(scope="module")
def client(upstream: tuple[RecordingUpstream, str], ledger: Path) -> Iterator[openai.OpenAI]:
    _, url = upstream
    one = {"retry": {"max_attempts": 1}}
    config = {
        "access": {"enabled": False},
        "ledger": {
            "url": f"sqlite:///{ledger}",
            "spool_path": str(ledger.with_suffix(".spool")),
            "flush_interval_s": 0.05,
        },
        "providers": {
            "openai": {"type": "openai", "host": "mock", "base_url": f"{url}/v1", "api_key": "env:KEY"},
            "claude": {"type": "anthropic", "host": "mock", "base_url": url, "api_key": "env:KEY"},
            "inproc": {"type": "mock", "wire": "openai"},
            "down": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "env:KEY"},
        },
        "deployments": {
            "d-fwd": {"provider": "openai", "model": "gpt-fwd", "responses_api": True},
            "d-chat": {"provider": "openai", "model": "gpt-chat"},
            "d-inproc": {"provider": "inproc", "model": "mock-gpt", "responses_api": True},
            "d-claude": {"provider": "claude", "model": "claude-model"},
            "d-down": {"provider": "down", "model": "gpt-down", "responses_api": True},
        },
        "routes": {
            "fwd": {"deployments": ["d-fwd"], **one},
            "inproc": {"deployments": ["d-inproc"], **one},
            "chat": {"deployments": ["d-chat"], **one},
            "claude": {"deployments": ["d-claude"], **one},
            "redacted": {"deployments": ["d-fwd"], "dlp": {"action": "redact"}, **one},
            "moves": {"deployments": ["d-down", "d-claude"], "retry": {"max_attempts": 2}},
        },
    }
    app = create_app(build_config(config), environ={"KEY": "k"})
    with serve(app) as url:
        yield openai_sdk(url)


def _sent(recorder: RecordingUpstream, model: str) -> dict[str, Any]:
    """The last body the recording upstream got on /v1/responses for ``model``."""
    bodies: list[dict[str, Any]] = [b for b in recorder.bodies.get("/v1/responses", []) if b["model"] == model]
    assert bodies, f"nothing sent to /v1/responses for {model}"
    return bodies[-1]


@pytest.mark.parametrize("route", FORWARDED)
def test_hosted_tools_and_openai_fields_are_forwarded(client: openai.OpenAI, route: str) -> None:
    """Hosted tools, include, reasoning and hints reach an upstream that serves /responses as sent:
    its answer (a hosted search's item first, the upstream's own id) comes back as it came, and
    nothing is listed as dropped."""
    raw = client.responses.with_raw_response.create(
        model=route,
        input="Search the news about tides",
        tools=[SEARCH, WEATHER],  # type: ignore[list-item]
        include=["web_search_call.action.sources"],
        reasoning={"effort": "low"},
        truncation="auto",
    )
    response = raw.parse()
    assert "x-breakwater-dropped-params" not in raw.headers
    assert response.id.startswith("resp_mock")
    assert [item.type for item in response.output] == ["web_search_call", "message"]
    assert response.output[0].action.query == "Search the news about tides"  # type: ignore[union-attr]
    assert response.output_text


def test_the_upstream_gets_the_body_as_sent(client: openai.OpenAI, upstream: tuple[RecordingUpstream, str]) -> None:
    """The forwarded body is the client's with the deployment's model: nothing the gateway reads
    for itself (its cache directive) and nothing added."""
    recorder, _ = upstream
    client.responses.create(
        model="fwd",
        input="Hello there",
        tools=[SEARCH],  # type: ignore[list-item]
        include=["web_search_call.action.sources"],
        truncation="auto",
        extra_body={"breakwater_cache": "no-store"},
    )
    sent = _sent(recorder, "gpt-fwd")
    assert sent == {
        "model": "gpt-fwd",
        "input": "Hello there",
        "tools": [SEARCH],
        "include": ["web_search_call.action.sources"],
        "truncation": "auto",
    }


@pytest.mark.parametrize("route", FORWARDED)
def test_a_forwarded_stream_goes_out_as_it_came(client: openai.OpenAI, route: str, ledger: Path) -> None:
    """A streamed forwarded request is the upstream's own events (the hosted search's item, numbers
    from 0 without gaps), its text the unstreamed answer's; the ledger has its usage."""
    plain = client.responses.create(model=route, input="Hello there", tools=[SEARCH])  # type: ignore[list-item]
    raw = client.responses.with_raw_response.create(
        model=route,
        input="Hello there",
        tools=[SEARCH],  # type: ignore[list-item]
        stream=True,
    )
    events = list(raw.parse())  # type: ignore[call-overload]
    assert events[0].type == "response.created" and events[0].response.id.startswith("resp_mock")
    added = [e.item.type for e in events if e.type == "response.output_item.added"]
    assert added == ["web_search_call", "message"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = events[-1]
    assert done.type == "response.completed"
    assert done.response.output_text == plain.output_text
    usage = done.response.usage
    row = _row(ledger, raw.headers["x-request-id"])
    assert (row["input_tokens"], row["output_tokens"]) == (usage.input_tokens, usage.output_tokens)
    assert row["status"] == 200 and row["stream"] == 1


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_call_round_trip_is_forwarded(
    client: openai.OpenAI, upstream: tuple[RecordingUpstream, str], stream: bool
) -> None:
    """A required function call comes back from the forwarded request; its output, continued with
    previous_response_id, goes upstream after the whole earlier conversation (the gateway keeps it)."""
    recorder, _ = upstream
    first = client.responses.create(
        model="fwd",
        input="Weather in Paris?",
        tools=[WEATHER],
        tool_choice="required",  # type: ignore[list-item]
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    output = {"type": "function_call_output", "call_id": calls[0].call_id, "output": "18C and sunny"}
    second = client.responses.create(
        model="fwd",
        previous_response_id=first.id,
        input=[output],  # type: ignore[list-item]
        tools=[WEATHER],  # type: ignore[list-item]
        stream=stream,
    )
    if stream:
        second = list(second)[-1].response  # type: ignore[call-overload, union-attr]
    sent = _sent(recorder, "gpt-fwd")
    assert "previous_response_id" not in sent
    assert sent["input"][0] == {"type": "message", "role": "user", "content": "Weather in Paris?"}
    assert [item["type"] for item in sent["input"][1:]] == ["function_call", "function_call_output"]
    assert sent["input"][1]["call_id"] == calls[0].call_id
    assert client.responses.retrieve(second.id).output_text == second.output_text  # type: ignore[union-attr]


def test_a_conversation_moves_to_a_translated_provider(client: openai.OpenAI) -> None:
    """A conversation begun on OpenAI (with a hosted search) goes on with Anthropic: the search's
    record is dropped and listed, the rest translated."""
    first = client.responses.create(model="fwd", input="Search the news about tides", tools=[SEARCH])  # type: ignore[list-item]
    raw = client.responses.with_raw_response.create(model="claude", input="Summarise it", previous_response_id=first.id)
    assert "previous_response.items[1].type=web_search_call" in raw.headers["x-breakwater-dropped-params"].split(",")
    answer = raw.parse()
    assert answer.output_text and not answer.id.startswith("resp_mock")


def test_a_translating_deployment_refuses_hosted_tools(
    client: openai.OpenAI, upstream: tuple[RecordingUpstream, str]
) -> None:
    """An OpenAI-wire deployment without ``responses_api`` translates onto chat completions: function
    tools work, a hosted tool is a 400 naming it."""
    recorder, _ = upstream
    answer = client.responses.create(model="chat", input="Hello there", tools=[WEATHER])  # type: ignore[list-item]
    assert answer.output_text and not answer.id.startswith("resp_mock")
    assert [b for b in recorder.bodies["/v1/chat/completions"] if b["model"] == "gpt-chat"]
    assert not [b for b in recorder.bodies.get("/v1/responses", []) if b["model"] == "gpt-chat"]
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="chat", input="Hello there", tools=[SEARCH])  # type: ignore[list-item]
    assert info.value.response.json()["error"]["param"] == "tools[0].type=web_search"


def test_a_fallback_from_a_forwarding_deployment_is_translated(client: openai.OpenAI) -> None:
    """When the deployment that serves /responses is down, the next one (Anthropic) answers the
    same request translated."""
    answer = client.responses.create(model="moves", input="Hello there", tools=[WEATHER])  # type: ignore[list-item]
    assert answer.output_text and not answer.id.startswith("resp_mock")


def test_data_loss_prevention_cleans_the_forwarded_body(
    client: openai.OpenAI, upstream: tuple[RecordingUpstream, str]
) -> None:
    """A route's redaction applies to the forwarded body: the upstream never sees the address, and
    the request still goes as a Responses request (hosted tool kept)."""
    recorder, _ = upstream
    answer = client.responses.create(
        model="redacted",
        instructions=f"Reply to {EMAIL}",
        input=f"Write to {EMAIL}",
        tools=[SEARCH],  # type: ignore[list-item]
    )
    assert answer.output[0].type == "web_search_call"
    sent = _sent(recorder, "gpt-fwd")
    assert EMAIL not in json.dumps(sent)
    assert sent["input"] == "Write to [EMAIL]" and sent["instructions"] == "Reply to [EMAIL]"
