"""The official ``anthropic`` SDK, unchanged, as a client of ``/v1/messages`` on a running gateway.

Each behaviour runs on routes backed by all three upstream wire formats: the Anthropic ingress
reaches any provider, not only Anthropic.
"""

from __future__ import annotations

import json

import anthropic
import jsonschema
import pytest

from tests.server.conftest import ROUTES
from tests.server.running import HELLO, anthropic_sdk

TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city", "unit"],
    },
}


@pytest.fixture(scope="module")
def client(gateway_url: str) -> anthropic.Anthropic:
    return anthropic_sdk(gateway_url)


@pytest.mark.parametrize("model", ROUTES)
def test_plain_message(client: anthropic.Anthropic, model: str) -> None:
    """A plain message returns a text block, stop_reason end_turn and usage."""
    message = client.messages.create(model=model, max_tokens=200, system="Be brief.", messages=HELLO)  # type: ignore[arg-type]
    assert message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0


@pytest.mark.parametrize("model", ROUTES)
def test_streamed_message(client: anthropic.Anthropic, model: str) -> None:
    """A streamed message yields the same text as the plain one and a final message with usage."""
    plain = client.messages.create(model=model, max_tokens=200, messages=HELLO)  # type: ignore[arg-type]
    with client.messages.stream(model=model, max_tokens=200, messages=HELLO) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == plain.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.usage.input_tokens == plain.usage.input_tokens


@pytest.mark.parametrize("model", ROUTES)
@pytest.mark.parametrize("stream", [False, True])
def test_forced_tool_use(client: anthropic.Anthropic, model: str, stream: bool) -> None:
    """tool_choice naming a tool gives a tool_use block whose input satisfies the input_schema."""
    kwargs = {
        "model": model,
        "max_tokens": 200,
        "messages": [{"role": "user", "content": "Weather?"}],
        "tools": [TOOL],
        "tool_choice": {"type": "tool", "name": "get_weather"},
    }
    if stream:
        with client.messages.stream(**kwargs) as s:  # type: ignore[arg-type]
            message = s.get_final_message()
    else:
        message = client.messages.create(**kwargs)  # type: ignore[arg-type]
    assert message.stop_reason == "tool_use"
    blocks = [b for b in message.content if b.type == "tool_use"]
    assert len(blocks) == 1
    assert blocks[0].name == "get_weather"
    assert blocks[0].id
    jsonschema.validate(blocks[0].input, TOOL["input_schema"])


def test_tool_result_round(client: anthropic.Anthropic) -> None:
    """A tool_use / tool_result exchange is accepted and answered on every wire."""
    messages = [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo", "unit": "c"}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": json.dumps({"temp": 4})}],
        },
    ]
    for model in ROUTES:
        message = client.messages.create(model=model, max_tokens=100, messages=messages, tools=[TOOL])  # type: ignore[arg-type,list-item]
        assert message.content[0].text  # type: ignore[union-attr]


def test_max_tokens_stop_reason(client: anthropic.Anthropic) -> None:
    """max_tokens is honoured with stop_reason max_tokens."""
    for model in ROUTES:
        message = client.messages.create(model=model, max_tokens=2, messages=HELLO)  # type: ignore[arg-type]
        assert message.stop_reason == "max_tokens"
        assert message.usage.output_tokens == 2


def test_unknown_model(client: anthropic.Anthropic) -> None:
    """An unknown model raises the SDK's NotFoundError."""
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="claude-nope", max_tokens=10, messages=HELLO)  # type: ignore[arg-type]


def test_missing_max_tokens(gateway_url: str) -> None:
    """A body without max_tokens is a 400 invalid_request_error, as Anthropic answers it."""
    import httpx2 as httpx

    r = httpx.post(f"{gateway_url}/v1/messages", json={"model": "mock", "messages": HELLO})
    assert r.status_code == 400
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("fault", "exc"),
    [
        ("status=429;retry_after=3", anthropic.RateLimitError),
        ("status=500", anthropic.InternalServerError),
        ("status=529", anthropic.OverloadedError),
        ("context_length", anthropic.BadRequestError),
        ("reset", anthropic.InternalServerError),
    ],
)
@pytest.mark.parametrize("model", ROUTES)
def test_upstream_errors_raise_sdk_types(
    client: anthropic.Anthropic, model: str, fault: str, exc: type[Exception]
) -> None:
    """Injected upstream failures reach the Anthropic client as the SDK's own exception types."""
    with pytest.raises(exc):
        client.messages.create(model=model, max_tokens=50, messages=HELLO, extra_headers={"x-mock-fault": fault})  # type: ignore[arg-type]


def test_stream_error_event(client: anthropic.Anthropic) -> None:
    """An upstream stream cut mid-way ends with stop_reason "error", then an error event that the SDK raises."""
    events = []
    with (
        pytest.raises(anthropic.APIError),
        client.messages.stream(
            model="mock-claude",
            max_tokens=200,
            messages=HELLO,
            extra_headers={"x-mock-fault": "cut_after=2"},  # type: ignore[arg-type]
        ) as stream,
    ):
        for event in stream:
            events.append(event)
    assert [e.delta.stop_reason for e in events if e.type == "message_delta"] == ["error"]
    assert not any(e.type == "message_stop" for e in events)


def test_sdk_does_not_retry_on_top_of_the_gateway(gateway_url: str) -> None:
    """With its default retries on, the Anthropic SDK sends one request for an upstream 529."""
    import httpx2

    sent: list[object] = []
    http = httpx2.Client(event_hooks={"request": [sent.append]})
    client = anthropic.Anthropic(base_url=gateway_url, api_key="unused", http_client=http)
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(
            model="mock-claude", max_tokens=10, messages=HELLO, extra_headers={"x-mock-fault": "status=529"}
        )  # type: ignore[arg-type]
    assert len(sent) == 1
