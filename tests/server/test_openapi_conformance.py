"""What the gateway returns, checked against OpenAI's published OpenAPI schemas.

The spec is vendored in ``tests/data/openai-openapi/`` (its README says which version). Every
response shape a client can get from the OpenAI-compatible routes (chat completion, stream chunk,
embeddings, model list, error) is validated, on routes backed by each upstream wire format.
"""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import orjson
import pytest
import yaml
from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.providers.helpers import sse_data
from tests.server.conftest import ROUTES
from tests.specs import OPENAI_SPEC as SPEC


def _nullable_to_31(node: Any) -> Any:
    """The spec is OpenAPI 3.1 but still marks some fields with 3.0's ``nullable: true``.

    3.1 validators ignore that keyword, so it is rewritten the 3.1 way (``null`` added to the
    type and enum) before validating; otherwise every legitimate ``null`` would be flagged.
    """
    if isinstance(node, list):
        return [_nullable_to_31(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable_to_31(v) for k, v in node.items()}
    if out.pop("nullable", False):
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.fixture(scope="session")
def validate() -> Any:
    if not SPEC.exists():
        pytest.fail(f"OpenAI spec not found at {SPEC}")
    spec = _nullable_to_31(yaml.load(SPEC.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader))
    registry: Registry[Any] = Registry().with_resource("spec", Resource.from_contents(spec, DRAFT202012))

    def check(instance: Any, schema_name: str) -> None:
        validator = OAS31Validator({"$ref": f"spec#/components/schemas/{schema_name}"}, registry=registry)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, f"{schema_name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])

    return check


def _post(url: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        url, content=orjson.dumps(body), headers={"content-type": "application/json", **headers}, timeout=10
    )


@pytest.mark.parametrize("model", ROUTES)
def test_chat_completion_matches_schema(gateway_url: str, validate: Any, model: str) -> None:
    """A chat completion (text and tool call) matches CreateChatCompletionResponse."""
    r = _post(f"{gateway_url}/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200
    validate(r.json(), "CreateChatCompletionResponse")
    tool = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}},
    }
    r = _post(
        f"{gateway_url}/v1/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": "hi"}], "tools": [tool], "tool_choice": "required"},
    )
    validate(r.json(), "CreateChatCompletionResponse")


@pytest.mark.parametrize("model", ROUTES)
def test_stream_chunks_match_schema(gateway_url: str, validate: Any, model: str) -> None:
    """Every streamed chunk, including the usage chunk and tool-call deltas, matches CreateChatCompletionStreamResponse."""
    tool = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}},
    }
    for extra in ({}, {"tools": [tool], "tool_choice": "required"}):
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
            **extra,
        }
        r = _post(f"{gateway_url}/v1/chat/completions", body)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        frames = sse_data(r.content)
        assert frames[-1] == "[DONE]"
        assert len(frames) > 2
        for frame in frames[:-1]:
            validate(orjson.loads(frame), "CreateChatCompletionStreamResponse")


def test_embeddings_match_schema(gateway_url: str, validate: Any) -> None:
    """An embeddings response matches CreateEmbeddingResponse."""
    r = _post(f"{gateway_url}/v1/embeddings", {"model": "mock", "input": "hello", "dimensions": 8})
    assert r.status_code == 200
    validate(r.json(), "CreateEmbeddingResponse")


def test_model_list_matches_schema(gateway_url: str, validate: Any) -> None:
    """GET /v1/models matches ListModelsResponse and GET /v1/models/{id} matches Model."""
    r = httpx.get(f"{gateway_url}/v1/models")
    validate(r.json(), "ListModelsResponse")
    validate(httpx.get(f"{gateway_url}/v1/models/mock").json(), "Model")


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}, {}),
        ({"model": "mock", "messages": "hi"}, {}),
        (
            {"model": "mock", "messages": [{"role": "user", "content": "hi"}]},
            {"x-mock-fault": "status=429;retry_after=1"},
        ),
        ({"model": "mock-claude", "messages": [{"role": "user", "content": "hi"}], "seed": 1}, {}),
    ],
)
def test_errors_match_schema(gateway_url: str, validate: Any, body: dict[str, Any], headers: dict[str, str]) -> None:
    """Error bodies match ErrorResponse."""
    r = _post(f"{gateway_url}/v1/chat/completions", body, **headers)
    assert r.status_code >= 400
    validate(r.json(), "ErrorResponse")


@pytest.mark.parametrize("model", ["mock", "mock-gemini", "remote", "remote-gemini"])
def test_logprobs_match_schema(gateway_url: str, validate: Any, model: str) -> None:
    """Answers and stream chunks carrying logprobs match the spec's response schemas."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "logprobs": True, "top_logprobs": 2}
    r = _post(f"{gateway_url}/v1/chat/completions", body)
    validate(r.json(), "CreateChatCompletionResponse")
    assert r.json()["choices"][0]["logprobs"]["content"]
    r = _post(f"{gateway_url}/v1/chat/completions", {**body, "stream": True})
    frames = sse_data(r.content)
    for frame in frames[:-1]:
        validate(orjson.loads(frame), "CreateChatCompletionStreamResponse")


@pytest.mark.parametrize("model", ROUTES)
def test_legacy_completions_match_schema(gateway_url: str, validate: Any, model: str) -> None:
    """A legacy completion and each of its stream chunks (the usage chunk too) match CreateCompletionResponse."""
    body = {"model": model, "prompt": "hi", "max_tokens": 40}
    r = _post(f"{gateway_url}/v1/completions", body)
    assert r.status_code == 200
    validate(r.json(), "CreateCompletionResponse")
    r = _post(f"{gateway_url}/v1/completions", {**body, "stream": True, "stream_options": {"include_usage": True}})
    frames = sse_data(r.content)
    assert frames[-1] == "[DONE]" and len(frames) > 2
    for frame in frames[:-1]:
        chunk = orjson.loads(frame)
        # the spec has one schema for the answer and its chunks; OpenAI's chunks carry
        # finish_reason null until the last (as chat chunks do), which the answer's schema lacks
        for choice in chunk["choices"]:
            assert choice["finish_reason"] in (None, "stop", "length", "content_filter")
            choice["finish_reason"] = choice["finish_reason"] or "stop"
        validate(chunk, "CreateCompletionResponse")


@pytest.mark.parametrize("model", ["mock", "remote"])
def test_moderations_match_schema(gateway_url: str, validate: Any, model: str) -> None:
    """A moderation (the mock's, forwarded) matches CreateModerationResponse; a refusal ErrorResponse."""
    for value in ("I will attack", ["fine", "you idiot"]):
        r = _post(f"{gateway_url}/v1/moderations", {"model": model, "input": value})
        assert r.status_code == 200
        validate(r.json(), "CreateModerationResponse")
    r = _post(f"{gateway_url}/v1/moderations", {"model": "mock-claude", "input": "hi"})
    assert r.status_code == 400
    validate(r.json(), "ErrorResponse")
