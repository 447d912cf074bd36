"""The OpenAI and Anthropic SDKs against the gateway in front of a Bedrock upstream.

Two Bedrock routes: ``remote-bedrock``, an ordinary ``type: bedrock`` provider (SigV4 keys by
reference) whose endpoint is a real ``breakwater mock`` server on loopback, so requests are
signed, sent by aiohttp and streamed back in event-stream framing over a socket; and
``mock-bedrock``, the in-process mock speaking Bedrock. The mock refuses unsigned requests.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.server.conftest import NO_BREAKER, ONE_SHOT
from tests.server.running import anthropic_sdk, openai_sdk, serve

AWS_KEY_ID = "AKIDPLANTED0001"
AWS_SECRET = "planted-aws-secret-9d8c7b6a5f4e"
AWS_TOKEN = "planted-aws-session-token-1a2b3c4d"
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
ROUTES = ["remote-bedrock", "mock-bedrock"]
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def bedrock_gateway(mock_server_url: str) -> Iterator[str]:
    config: dict[str, Any] = {
        "access": {"enabled": False},
        "providers": {
            "aws": {
                "type": "bedrock", "host": "mock", "base_url": mock_server_url,
                "aws": {"region": "eu-west-1", "access_key_id": "env:PLANTED_AK",
                        "secret_access_key": "env:PLANTED_SK", "session_token": "env:PLANTED_TOKEN"},
            },
            "mock-bedrock": {"type": "mock", "wire": "bedrock"},
        },
        "deployments": {
            "r-bedrock": {"provider": "aws", "model": MODEL, **NO_BREAKER},
            "d-bedrock": {"provider": "mock-bedrock", "model": "amazon.nova-lite-v1:0", **NO_BREAKER},
        },
        "routes": {
            "remote-bedrock": {"deployments": ["r-bedrock"], **ONE_SHOT},
            "mock-bedrock": {"deployments": ["d-bedrock"], **ONE_SHOT},
        },
    }  # fmt: skip
    environ = {"PLANTED_AK": AWS_KEY_ID, "PLANTED_SK": AWS_SECRET, "PLANTED_TOKEN": AWS_TOKEN}
    with serve(create_app(build_config(config), environ=environ)) as url:
        yield url


@pytest.mark.parametrize("route", ROUTES)
def test_openai_sdk_plain_and_streamed(bedrock_gateway: str, route: str) -> None:
    """Chat completions through Bedrock: the same text plain and streamed, finish stop, usage counted."""
    client = openai_sdk(bedrock_gateway)
    whole = client.chat.completions.create(model=route, messages=HELLO, max_tokens=200)  # type: ignore[arg-type]
    text = whole.choices[0].message.content
    assert text
    assert whole.choices[0].finish_reason == "stop"
    assert whole.usage is not None and whole.usage.prompt_tokens > 0 and whole.usage.completion_tokens > 0
    chunks = list(
        client.chat.completions.create(
            model=route,
            messages=HELLO,
            max_tokens=200,
            stream=True,
            stream_options={"include_usage": True},  # type: ignore[arg-type]
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("stream", [False, True])
def test_openai_sdk_tool_call(bedrock_gateway: str, route: str, stream: bool) -> None:
    """A required tool call comes back as an OpenAI tool call with JSON arguments, plain and streamed."""
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    client = openai_sdk(bedrock_gateway)
    kw: dict[str, Any] = {"model": route, "messages": [{"role": "user", "content": "Weather in Oslo?"}],
                          "tools": tools, "tool_choice": "required"}  # fmt: skip
    if not stream:
        r = client.chat.completions.create(**kw)
        [call] = r.choices[0].message.tool_calls or []
        name, arguments, reason = call.function.name, call.function.arguments, r.choices[0].finish_reason  # type: ignore[union-attr]
    else:
        chunks = list(client.chat.completions.create(**kw, stream=True))
        deltas = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
        name = next(d.function.name for d in deltas if d.function and d.function.name)
        arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
        reason = next(c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason)
    assert name == "get_weather"
    assert isinstance(json.loads(arguments)["city"], str)
    assert reason == "tool_calls"


@pytest.mark.parametrize("route", ROUTES)
def test_anthropic_sdk_plain_streamed_and_tool_use(bedrock_gateway: str, route: str) -> None:
    """Messages through Bedrock: text plain and streamed, and a forced tool_use block."""
    client = anthropic_sdk(bedrock_gateway)
    whole = client.messages.create(model=route, max_tokens=200, messages=HELLO)  # type: ignore[arg-type]
    text = "".join(b.text for b in whole.content if b.type == "text")
    assert text and whole.stop_reason == "end_turn"
    with client.messages.stream(model=route, max_tokens=200, messages=HELLO) as stream:  # type: ignore[arg-type]
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == text
    assert final.usage.output_tokens == whole.usage.output_tokens
    tool = {"name": "get_weather", "input_schema": WEATHER}
    r = client.messages.create(
        model=route, max_tokens=200, messages=[{"role": "user", "content": "Weather?"}],
        tools=[tool], tool_choice={"type": "tool", "name": "get_weather"},  # type: ignore[list-item, typeddict-item]
    )  # fmt: skip
    [use] = [b for b in r.content if b.type == "tool_use"]
    assert use.name == "get_weather" and isinstance(use.input["city"], str)  # type: ignore[index]
    assert r.stop_reason == "tool_use"


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("status=429", 429, "rate_limit_exceeded"),
        ("status=403", 502, "upstream_permission_error"),
        ("context_length", 400, "context_length_exceeded"),
        ("status=503", 503, None),
    ],
)
def test_bedrock_errors_are_mapped(bedrock_gateway: str, fault: str, status: int, code: str | None) -> None:
    """Bedrock's exceptions reach the client as the gateway's mapped errors, never raw."""
    r = httpx.post(
        f"{bedrock_gateway}/v1/chat/completions",
        json={"model": "remote-bedrock", "messages": HELLO},
        headers={"x-mock-fault": fault},
        timeout=10,
    )
    assert r.status_code == status
    if code is not None:
        assert r.json()["error"]["code"] == code
    assert "x-amzn-errortype" not in r.headers


def test_mid_stream_failure_is_an_sse_error(bedrock_gateway: str) -> None:
    """A stream cut after it started ends with an error event, not a clean finish."""
    r = httpx.post(
        f"{bedrock_gateway}/v1/chat/completions",
        json={"model": "remote-bedrock", "messages": HELLO, "stream": True},
        headers={"x-mock-fault": "cut_after=2"},
        timeout=10,
    )
    assert r.status_code == 200
    assert '"error"' in r.text
    assert "[DONE]" not in r.text.split('"error"')[0][-20:]


def test_unsupported_parameter_is_reported_or_refused(bedrock_gateway: str) -> None:
    """A parameter Converse cannot carry (seed) is refused by default, naming it."""
    r = httpx.post(
        f"{bedrock_gateway}/v1/chat/completions",
        json={"model": "remote-bedrock", "messages": HELLO, "seed": 7},
        timeout=10,
    )
    assert r.status_code == 400
    assert "seed" in r.text


def test_aws_secrets_never_in_any_response_or_log(bedrock_gateway: str, caplog: pytest.LogCaptureFixture) -> None:
    """Under upstream failures, plain and streamed, the AWS secret key and session token appear nowhere."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    for fault in ("status=401", "status=403", "status=429", "status=500", "malformed", "reset", "cut_after=1"):
        for stream in (False, True):
            r = httpx.post(
                f"{bedrock_gateway}/v1/chat/completions",
                json={"model": "remote-bedrock", "stream": stream, "messages": HELLO},
                headers={"x-mock-fault": fault},
                timeout=10,
            )
            seen.append(r.text)
            seen.extend(f"{k}: {v}" for k, v in r.headers.items())
    seen.extend(record.getMessage() + str(record.__dict__) for record in caplog.records)
    assert not [s for s in seen if AWS_SECRET in s or AWS_TOKEN in s]


def test_standard_chain_credentials_are_resolved_at_start(
    mock_server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without keys in the config, the gateway finds them in AWS's chain (here the environment
    variables) when it starts, and signs with them: the signed mock answers."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMCHAIN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    config = {
        "access": {"enabled": False},
        "providers": {"aws": {"type": "bedrock", "host": "mock", "base_url": mock_server_url, "aws": {"region": "us-west-2"}}},
        "deployments": {"d": {"provider": "aws", "model": MODEL}},
        "routes": {"r": {"deployments": ["d"], **ONE_SHOT}},
    }  # fmt: skip
    with serve(create_app(build_config(config), environ={})) as url:
        r = openai_sdk(url).chat.completions.create(model="r", messages=HELLO)  # type: ignore[arg-type]
    assert r.choices[0].message.content


def test_no_credentials_is_an_upstream_auth_error(
    mock_server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing in AWS's chain the gateway still starts; a Bedrock request is then a 502 naming
    the provider's credentials, and nothing is sent unsigned."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    config = {
        "access": {"enabled": False},
        "providers": {"aws": {"type": "bedrock", "host": "mock", "base_url": mock_server_url, "aws": {"region": "us-west-2"}}},
        "deployments": {"d": {"provider": "aws", "model": MODEL}},
        "routes": {"r": {"deployments": ["d"], **ONE_SHOT}},
    }  # fmt: skip
    with serve(create_app(build_config(config), environ={})) as url:
        r = httpx.post(f"{url}/v1/chat/completions", json={"model": "r", "messages": HELLO}, timeout=10)
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_authentication_error"
