"""The google-genai SDK (its client, and its response types) parses everything the mock says as Gemini."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import orjson
import pytest
from google import genai
from google.genai import errors, types

from breakwater.infra.mock.service import MockService
from tests.infra.mock.harness import call, sdk_http
from tests.providers.helpers import sse_data

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
    "required": ["city", "unit"],
}
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]}


@pytest.fixture
async def client() -> AsyncIterator[genai.Client]:
    http = sdk_http()
    options = types.HttpOptions(base_url="http://mock", httpx_async_client=http)
    c = genai.Client(api_key="k", http_options=options)
    yield c
    await http.aclose()


def fault(spec: str) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(http_options=types.HttpOptions(headers={"x-mock-fault": spec}))


async def test_generate_content(client: genai.Client) -> None:
    """generate_content parses: text, finish STOP, usage metadata."""
    r = await client.aio.models.generate_content(model="mock-gemini", contents="Say hello")
    assert r.text
    assert r.candidates and r.candidates[0].finish_reason == types.FinishReason.STOP
    assert r.usage_metadata and r.usage_metadata.prompt_token_count and r.usage_metadata.candidates_token_count


async def test_stream_matches_whole(client: genai.Client) -> None:
    """generate_content_stream (alt=sse) yields the same text in pieces, finishing with usage."""
    whole = await client.aio.models.generate_content(model="g", contents="Say hello")
    chunks = [c async for c in await client.aio.models.generate_content_stream(model="g", contents="Say hello")]
    assert len(chunks) > 2
    assert "".join(c.text or "" for c in chunks) == whole.text
    last, expected = chunks[-1].usage_metadata, whole.usage_metadata
    assert last and expected and last.total_token_count == expected.total_token_count


async def test_function_call(client: genai.Client) -> None:
    """Mode ANY returns a function call whose args validate against the declared schema."""
    tool = types.Tool(
        function_declarations=[types.FunctionDeclaration(name="get_weather", parameters_json_schema=WEATHER)]
    )
    config = types.GenerateContentConfig(
        tools=[tool],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY)
        ),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    r = await client.aio.models.generate_content(model="g", contents="weather?", config=config)
    [fc] = r.function_calls or []
    assert fc.name == "get_weather"
    jsonschema.validate(fc.args, WEATHER)


async def test_json_schema_output(client: genai.Client) -> None:
    """A response JSON schema gives text that is valid JSON for it (the SDK's .parsed too)."""
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "s": {"type": "string"}},
        "required": ["n", "s"],
    }
    config = types.GenerateContentConfig(response_mime_type="application/json", response_json_schema=schema)
    r = await client.aio.models.generate_content(model="g", contents="json please", config=config)
    jsonschema.validate(orjson.loads(r.text or ""), schema)


async def test_embeddings(client: genai.Client) -> None:
    """embed_content (batchEmbedContents) returns one vector per input of the requested size."""
    r = await client.aio.models.embed_content(
        model="text-embedding-004", contents=["a", "b"], config=types.EmbedContentConfig(output_dimensionality=16)
    )
    assert r.embeddings and [len(e.values or []) for e in r.embeddings] == [16, 16]


@pytest.mark.parametrize(
    ("spec", "exc", "code"),
    [
        ("status=429", errors.ClientError, 429),
        ("status=503", errors.ServerError, 503),
        ("status=500", errors.ServerError, 500),
        ("context_length", errors.ClientError, 400),
    ],
)
async def test_injected_errors_raise_sdk_types(
    client: genai.Client, spec: str, exc: type[errors.APIError], code: int
) -> None:
    """Injected failures surface as google-genai's ClientError / ServerError with the status."""
    with pytest.raises(exc) as info:
        await client.aio.models.generate_content(model="g", contents="hi", config=fault(spec))
    assert info.value.code == code


async def test_safety_outcomes(client: genai.Client) -> None:
    """content_filter finishes with SAFETY; content_filter=prompt blocks with promptFeedback."""
    r = await client.aio.models.generate_content(model="g", contents="hi", config=fault("content_filter"))
    assert r.candidates and r.candidates[0].finish_reason == types.FinishReason.SAFETY
    r = await client.aio.models.generate_content(model="g", contents="hi", config=fault("content_filter=prompt"))
    assert r.prompt_feedback and r.prompt_feedback.block_reason == types.BlockedReason.SAFETY


async def test_raw_bodies_validate_as_sdk_types(service: MockService) -> None:
    """Raw bodies and every stream frame validate as GenerateContentResponse."""
    _, body = await call(service, "/v1beta/models/g:generateContent", GEMINI_BODY)
    assert types.GenerateContentResponse.model_validate_json(body).text
    _, stream = await call(service, "/v1beta/models/g:streamGenerateContent", GEMINI_BODY, query="alt=sse")
    frames = [types.GenerateContentResponse.model_validate_json(d) for d in sse_data(stream)]
    assert frames[-1].candidates and frames[-1].candidates[0].finish_reason == types.FinishReason.STOP
    tools: Any = {
        "functionDeclarations": [
            {"name": "f", "parameters": {"type": "OBJECT", "properties": {"x": {"type": "INTEGER"}}, "required": ["x"]}}
        ]
    }
    body_with_tools = {**GEMINI_BODY, "tools": [tools], "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}}
    _, body = await call(service, "/v1beta/models/g:generateContent", body_with_tools)
    [fc] = types.GenerateContentResponse.model_validate_json(body).function_calls or []
    assert fc.name == "f" and isinstance((fc.args or {})["x"], int)
