"""Vertex AI end to end: the OpenAI SDK against a gateway whose Vertex providers call a real
``breakwater mock`` server on loopback, for Gemini and for Claude.

Nothing is faked between them: the provider's credentials are a service-account JSON (a key made
for the test) given by an ``env:`` reference, google-auth signs its JWT grant and posts it to the
mock's token endpoint (the JSON's ``token_uri``), and the gateway's calls carry the token it got.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import jsonschema
import openai
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from breakwater.core.config import build_config
from breakwater.infra.mock.app import create_mock_app
from breakwater.runtime.process import Process
from breakwater.runtime.runtime import Runtime
from breakwater.server.app import create_app
from tests.server.conftest import NO_BREAKER, ONE_SHOT
from tests.server.running import HELLO, openai_sdk, serve
from tests.server.test_openai_sdk import WEATHER_TOOL

ROUTES = ["vertex-gemini", "vertex-claude"]


def service_account(token_uri: str) -> dict[str, str]:
    """A service-account key document, its private key made for this test, its tokens from ``token_uri``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "breakwater-test",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "gateway@breakwater-test.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with serve(create_mock_app()) as url:
        yield url


@pytest.fixture(scope="module")
def account(mock_url: str) -> dict[str, str]:
    return service_account(f"{mock_url}/token")


def vertex_config(mock_url: str) -> dict[str, Any]:
    """Gemini and Claude routes on a Vertex provider whose API and token endpoint are the mock's."""
    vertex = {
        "type": "vertex", "host": "mock", "base_url": mock_url, "project": "breakwater-test",
        "location": "us-east5", "credentials": "env:VERTEX_SA_JSON",
    }  # fmt: skip
    return {
        "access": {"enabled": False},
        "providers": {"vertex": vertex},
        "deployments": {
            "gemini": {"provider": "vertex", "model": "gemini-2.0-flash-001", **NO_BREAKER},
            "claude": {"provider": "vertex", "model": "claude-3-5-haiku@20241022", **NO_BREAKER},
        },
        "routes": {
            "vertex-gemini": {"deployments": ["gemini"], **ONE_SHOT},
            "vertex-claude": {"deployments": ["claude"], **ONE_SHOT},
        },
    }


@pytest.fixture(scope="module")
def gateway(mock_url: str, account: dict[str, str]) -> Iterator[str]:
    config = vertex_config(mock_url)
    app = create_app(build_config(config), environ={"VERTEX_SA_JSON": json.dumps(account)})
    with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def client(gateway: str) -> openai.OpenAI:
    return openai_sdk(gateway)


@pytest.mark.parametrize("model", ROUTES)
def test_plain_completion(client: openai.OpenAI, model: str) -> None:
    """A plain completion through Vertex returns text, finish_reason stop and the upstream's usage."""
    completion = client.chat.completions.create(model=model, messages=HELLO)  # type: ignore[arg-type]
    choice = completion.choices[0]
    assert choice.message.content
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens > 0


@pytest.mark.parametrize("model", ROUTES)
def test_streamed_completion(client: openai.OpenAI, model: str) -> None:
    """A streamed completion through Vertex gives the same text as the plain one, one finish and usage."""
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=HELLO,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    plain = client.chat.completions.create(model=model, messages=HELLO)  # type: ignore[arg-type]
    assert text == plain.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens  # type: ignore[union-attr]


@pytest.mark.parametrize("model", ROUTES)
@pytest.mark.parametrize("stream", [False, True])
def test_tool_call(client: openai.OpenAI, model: str, stream: bool) -> None:
    """A required tool call through Vertex, plain or streamed, has arguments that satisfy the tool's schema."""
    with (
        client.chat.completions.stream(
            model=model,
            messages=[{"role": "user", "content": "Weather please"}],
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
        if stream
        else _NoStream(client, model) as answer
    ):
        final = answer.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = (choice.message.tool_calls or [])[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_TOOL["function"]["parameters"])  # type: ignore[union-attr,index]


class _NoStream:
    """The plain request, shaped like the SDK's stream manager so one test body checks both."""

    def __init__(self, client: openai.OpenAI, model: str) -> None:
        self.completion = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Weather please"}],
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            tool_choice="required",
        )

    def __enter__(self) -> _NoStream:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def get_final_completion(self) -> Any:
        return self.completion


@pytest.mark.parametrize("model", ROUTES)
@pytest.mark.parametrize(
    ("fault", "status", "error"),
    [
        ("status=429;retry_after=2", 429, openai.RateLimitError),
        ("status=401", 502, openai.APIStatusError),
        ("status=403", 502, openai.APIStatusError),
        ("status=400", 400, openai.BadRequestError),
        ("status=503", 503, openai.APIStatusError),
    ],
)
def test_vertex_errors_are_mapped(
    client: openai.OpenAI, model: str, fault: str, status: int, error: type[openai.APIStatusError]
) -> None:
    """Vertex's google.rpc errors (and Claude's own) reach the client mapped, in OpenAI's error shape."""
    with pytest.raises(error) as caught:
        client.chat.completions.create(model=model, messages=HELLO, extra_headers={"x-mock-fault": fault})  # type: ignore[arg-type]
    assert caught.value.status_code == status
    assert "vertex" in caught.value.message


def test_credentials_never_in_a_response_or_log(
    gateway: str, account: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The service account's private key and the access tokens appear in no response and no log line."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    for route in ROUTES:
        for fault in ("status=401", "status=429", "status=500", "malformed", "reset"):
            for stream in (False, True):
                r = httpx.post(
                    f"{gateway}/v1/chat/completions",
                    json={"model": route, "stream": stream, "messages": HELLO},
                    headers={"x-mock-fault": fault},
                    timeout=10,
                )
                seen.append(r.text)
                seen.extend(f"{k}: {v}" for k, v in r.headers.items())
    for path in ("/v1/models", "/readyz", "/admin/deployments"):
        seen.append(httpx.get(f"{gateway}{path}").text)
    seen.extend(record.getMessage() + str(record.__dict__) for record in caplog.records)
    key_body = account["private_key"].splitlines()[1]  # a line of the key itself, not its armour
    assert not [s for s in seen if key_body in s or "ya29." in s]


async def test_runtime_refreshes_tokens_while_it_runs(mock_url: str, account: dict[str, str]) -> None:
    """A runtime starts its Vertex provider's refresher (one token source for both deployments), the
    token comes from the service account's token endpoint, and stopping the runtime stops it."""
    runtime = Runtime(build_config(vertex_config(mock_url)), Process({"VERTEX_SA_JSON": json.dumps(account)}))
    [tokens] = runtime.access_tokens
    await runtime.start()
    assert tokens.running
    assert (await tokens.token()).startswith("ya29.mock-")
    assert (tokens.refreshes, tokens.failures) == (1, 0)
    await runtime.stop()
    assert not tokens.running


def test_token_refreshes_are_counted_in_metrics(client: openai.OpenAI, gateway: str) -> None:
    """/metrics counts the Vertex provider's token refreshes by result: one that worked, none failed."""
    client.chat.completions.create(model="vertex-gemini", messages=HELLO)  # type: ignore[arg-type]
    body = httpx.get(f"{gateway}/metrics").text
    assert 'breakwater_token_refreshes_total{provider="vertex",result="ok"} 1.0' in body
    assert 'breakwater_token_refreshes_total{provider="vertex",result="failed"} 0.0' in body
