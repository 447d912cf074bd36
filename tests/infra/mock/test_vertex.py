"""The mock's Vertex AI: both publishers' URLs behind a bearer token, spoken to by the official
SDKs in their Vertex modes (Anthropic's ``AsyncAnthropicVertex``, google-genai with
``vertexai=True``), Vertex's error shapes, and the OAuth token endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import google.oauth2.credentials
import orjson
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from breakwater.infra.mock.service import MockService
from breakwater.infra.mock.vertex import JWT_BEARER
from tests.infra.mock.harness import call, sdk_http

LOCATION = "/v1/projects/harbour-prod/locations/us-east5"
CLAUDE = f"{LOCATION}/publishers/anthropic/models/claude-3-5-haiku@20241022"
GEMINI = f"{LOCATION}/publishers/google/models/gemini-2.0-flash-001"
HI = [{"role": "user", "content": "hi"}]
CLAUDE_BODY = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 50, "messages": HI}
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
BEARER = {"authorization": "Bearer ya29.test"}


@pytest.fixture
async def claude() -> AsyncIterator[anthropic.AsyncAnthropicVertex]:
    http = sdk_http()
    async with anthropic.AsyncAnthropicVertex(
        region="us-east5",
        project_id="harbour-prod",
        access_token="ya29.test",
        base_url="http://mock/v1",
        http_client=http,
        max_retries=0,
    ) as client:
        yield client


@pytest.fixture
async def gemini() -> AsyncIterator[genai.Client]:
    http = sdk_http()
    credentials = google.oauth2.credentials.Credentials(token="ya29.test")  # type: ignore[no-untyped-call]
    options = types.HttpOptions(base_url="http://mock/", httpx_async_client=http)
    yield genai.Client(
        vertexai=True, project="harbour-prod", location="us-east5", credentials=credentials, http_options=options
    )
    await http.aclose()


async def test_anthropic_vertex_sdk_messages_and_stream(claude: anthropic.AsyncAnthropicVertex) -> None:
    """The Anthropic SDK's Vertex client gets a message, and a stream with the same text, from rawPredict URLs."""
    message = await claude.messages.create(model="claude-3-5-haiku@20241022", max_tokens=60, messages=HI)  # type: ignore[arg-type]
    assert message.model == "claude-3-5-haiku@20241022"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    async with claude.messages.stream(model="claude-3-5-haiku@20241022", max_tokens=60, messages=HI) as stream:  # type: ignore[arg-type]
        final = await stream.get_final_message()
    assert final.content[0].text == message.content[0].text  # type: ignore[union-attr]


async def test_anthropic_vertex_sdk_sees_quota_as_rate_limit(claude: anthropic.AsyncAnthropicVertex) -> None:
    """A 429 fault on Claude's Vertex URL reaches the SDK as RateLimitError (a google.rpc body)."""
    with pytest.raises(anthropic.RateLimitError):
        await claude.messages.create(
            model="claude-3-5-haiku@20241022",
            max_tokens=10,
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-mock-fault": "status=429"},
        )


async def test_genai_sdk_in_vertex_mode(gemini: genai.Client) -> None:
    """google-genai with vertexai=True gets content and a stream of the same text from Vertex's URLs."""
    whole = await gemini.aio.models.generate_content(model="gemini-2.0-flash-001", contents="Say hello")
    assert whole.text
    assert whole.usage_metadata and whole.usage_metadata.prompt_token_count
    pieces = [
        c
        async for c in await gemini.aio.models.generate_content_stream(
            model="gemini-2.0-flash-001", contents="Say hello"
        )
    ]
    assert "".join(c.text or "" for c in pieces) == whole.text


async def test_genai_sdk_in_vertex_mode_sees_permission_denied(gemini: genai.Client) -> None:
    """A 403 fault on Gemini's Vertex URL reaches google-genai as a ClientError with PERMISSION_DENIED."""
    config = types.GenerateContentConfig(http_options=types.HttpOptions(headers={"x-mock-fault": "status=403"}))
    with pytest.raises(genai_errors.ClientError) as caught:
        await gemini.aio.models.generate_content(model="gemini-2.0-flash-001", contents="x", config=config)
    assert caught.value.code == 403
    assert caught.value.status == "PERMISSION_DENIED"


@pytest.mark.parametrize(
    ("path", "body"), [(f"{CLAUDE}:rawPredict", CLAUDE_BODY), (f"{GEMINI}:generateContent", GEMINI_BODY)]
)
@pytest.mark.parametrize("authorization", [None, "", "Bearer ", "Basic dXNlcjpwdw=="])
async def test_vertex_urls_want_a_bearer_token(
    service: MockService, path: str, body: dict[str, object], authorization: str | None
) -> None:
    """Without a bearer token, both publishers' URLs answer 401 UNAUTHENTICATED as a google.rpc.Status."""
    headers = {} if authorization is None else {"authorization": authorization}
    reply, out = await call(service, path, body, headers=headers)
    assert reply.status == 401
    error = orjson.loads(out)["error"]
    assert (error["code"], error["status"]) == (401, "UNAUTHENTICATED")
    assert (await call(service, path, body, headers=BEARER))[0].status == 200


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({**CLAUDE_BODY, "model": "claude-3-5-haiku"}, "model"),
        ({"max_tokens": 50, "messages": HI}, "anthropic_version"),
    ],
)
async def test_claude_on_vertex_body_is_checked(service: MockService, body: dict[str, object], complaint: str) -> None:
    """Claude's Vertex body names no model and carries anthropic_version; otherwise an Anthropic-shaped 400."""
    reply, out = await call(service, f"{CLAUDE}:rawPredict", body, headers=BEARER)
    assert reply.status == 400
    data = orjson.loads(out)
    assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
    assert complaint in data["error"]["message"]


@pytest.mark.parametrize(
    ("status", "shape"),
    [(429, "RESOURCE_EXHAUSTED"), (403, "PERMISSION_DENIED"), (503, "UNAVAILABLE"), (529, "overloaded_error")],
)
async def test_claude_on_vertex_errors_take_the_platform_or_claude_shape(
    service: MockService, status: int, shape: str
) -> None:
    """The platform's failures are google.rpc.Status; Claude's own (overloaded) keep Anthropic's body."""
    headers = {**BEARER, "x-mock-fault": f"status={status}"}
    reply, out = await call(service, f"{CLAUDE}:rawPredict", CLAUDE_BODY, headers=headers)
    assert reply.status == status
    err = orjson.loads(out)["error"]
    assert err.get("status", err.get("type")) == shape


async def test_token_endpoint_issues_bearer_tokens(service: MockService) -> None:
    """A JWT-bearer grant gets an hour-long bearer token; another grant is invalid_grant."""
    form = f"grant_type={JWT_BEARER}&assertion=eyJhbGciOiJSUzI1NiJ9.e30.c2ln".encode()
    reply, out = await call(service, "/token", form, headers={"content-type": "application/x-www-form-urlencoded"})
    token = orjson.loads(out)
    assert reply.status == 200
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3599
    assert token["access_token"].startswith("ya29.")
    again = orjson.loads((await call(service, "/token", form))[1])["access_token"]
    assert again != token["access_token"]
    reply, out = await call(service, "/token", b"grant_type=password&username=u&password=p")
    assert reply.status == 400
    assert orjson.loads(out)["error"] == "invalid_grant"
