"""The Vertex AI adapters: Gemini's and Anthropic's wires at Vertex's URLs, with Vertex's body and
error differences (the conformance suite covers their responses, streams and recorded errors)."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from breakwater.core import errors
from breakwater.core.types import EmbeddingRequest, ResponseFormat, Tool
from breakwater.providers.anthropic import AnthropicAdapter
from breakwater.providers.base import Target
from breakwater.providers.gemini import GeminiAdapter
from breakwater.providers.registry import adapter_for
from breakwater.providers.vertex import (
    ANTHROPIC_VERSION,
    VertexAnthropicAdapter,
    VertexGeminiAdapter,
    location_url,
    publisher,
    vertex_wire,
)

from .helpers import chat_request, user

BASE = location_url("harbour-prod", "us-east5")
GEMINI = Target(provider="vertex", model="gemini-2.0-flash-001", base_url=BASE)
CLAUDE = Target(provider="vertex", model="claude-3-5-sonnet-v2@20241022", base_url=BASE)


@pytest.mark.parametrize(
    ("location", "base_url", "api_version", "expected"),
    [
        ("us-east5", None, None, "https://us-east5-aiplatform.googleapis.com/v1/projects/p-1234/locations/us-east5"),
        ("global", None, None, "https://aiplatform.googleapis.com/v1/projects/p-1234/locations/global"),
        ("eu", None, None, "https://aiplatform.eu.rep.googleapis.com/v1/projects/p-1234/locations/eu"),
        ("europe-west4", None, "v1beta1",
         "https://europe-west4-aiplatform.googleapis.com/v1beta1/projects/p-1234/locations/europe-west4"),
        ("us-central1", "http://127.0.0.1:9000/", None, "http://127.0.0.1:9000/v1/projects/p-1234/locations/us-central1"),
    ],
)  # fmt: skip
def test_location_url(location: str, base_url: str | None, api_version: str | None, expected: str) -> None:
    """A location's resource URL: the regional host, the global one, a multi-region's, or a base URL given."""
    assert location_url("p-1234", location, base_url, api_version) == expected


@pytest.mark.parametrize(
    ("model", "owner", "wire"),
    [
        ("claude-3-5-sonnet-v2@20241022", "anthropic", "vertex-anthropic"),
        ("claude-sonnet-4@20250514", "anthropic", "vertex-anthropic"),
        ("gemini-2.5-pro", "google", "vertex-gemini"),
        ("gemini-2.0-flash-001", "google", "vertex-gemini"),
    ],
)
def test_publisher_follows_the_model_name(model: str, owner: str, wire: str) -> None:
    """Claude models are Anthropic's on Vertex, every other model Google's; the wire follows."""
    assert publisher(model) == owner
    assert vertex_wire(model) == wire
    assert adapter_for(wire).wire == wire


@pytest.mark.parametrize(("stream", "verb"), [(False, "generateContent"), (True, "streamGenerateContent?alt=sse")])
def test_gemini_on_vertex_is_the_gemini_body_at_vertex_url(stream: bool, verb: str) -> None:
    """Gemini on Vertex sends the Gemini adapter's body to the publisher URL, with no API key header."""
    request = chat_request(user("Tide times?"), stream=stream, max_tokens=64)
    http = VertexGeminiAdapter().chat_request(request, GEMINI)
    assert http.url == f"{BASE}/publishers/google/models/gemini-2.0-flash-001:{verb}"
    assert http.stream is stream
    assert http.headers == {"content-type": "application/json"}
    plain = GeminiAdapter().chat_request(request, dataclasses.replace(GEMINI, base_url="https://x"))
    assert orjson.loads(http.body) == orjson.loads(plain.body)
    assert all(c["role"] in ("user", "model") for c in orjson.loads(http.body)["contents"])  # Vertex requires roles


def test_a_model_resource_path_is_called_under_the_location() -> None:
    """A model given as a resource of the project (a tuned model's endpoint) is called at that resource."""
    target = dataclasses.replace(GEMINI, model="endpoints/4417928723")
    http = VertexGeminiAdapter().chat_request(chat_request(user("hi")), target)
    assert http.url == f"{BASE}/endpoints/4417928723:generateContent"


@pytest.mark.parametrize(("stream", "verb"), [(False, "rawPredict"), (True, "streamRawPredict")])
def test_claude_on_vertex_has_the_model_in_the_url_and_vertex_version_in_the_body(stream: bool, verb: str) -> None:
    """Claude on Vertex: the Messages body without model, with anthropic_version vertex-2023-10-16, at rawPredict."""
    request = chat_request(user("Wind at Padstow?"), stream=stream, max_tokens=100, temperature=0.2)
    http = VertexAnthropicAdapter().chat_request(request, CLAUDE)
    assert http.url == f"{BASE}/publishers/anthropic/models/claude-3-5-sonnet-v2@20241022:{verb}"
    assert http.headers == {"content-type": "application/json"}  # no x-api-key, no anthropic-version header
    body = orjson.loads(http.body)
    assert "model" not in body
    assert body["anthropic_version"] == ANTHROPIC_VERSION == "vertex-2023-10-16"
    assert body.get("stream", False) is stream
    plain = orjson.loads(AnthropicAdapter().chat_request(request, CLAUDE).body)
    del plain["model"]
    assert {k: v for k, v in body.items() if k != "anthropic_version"} == plain


def test_claude_on_vertex_keeps_the_anthropic_adapter_features() -> None:
    """Automatic cache breakpoints and an extra_body (which may pin another anthropic_version) still apply."""
    long_system = "Harbour rules. " * 400
    target = dataclasses.replace(CLAUDE, auto_cache_min_tokens=1024, extra_body={"anthropic_version": "vertex-2099"})
    request = chat_request(user("hi"), max_tokens=10, tools=[Tool("t", "a tool", {"type": "object"})])
    request = dataclasses.replace(request, messages=[*request.messages])
    request.messages.insert(0, dataclasses.replace(user(long_system), role="system"))
    body = orjson.loads(VertexAnthropicAdapter().chat_request(request, target).body)
    assert body["anthropic_version"] == "vertex-2099"
    assert "cache_control" in str(body["system"])


def test_claude_on_vertex_reports_response_format_as_unsupported() -> None:
    """Structured outputs are not documented for Claude on Vertex: response_format is named as unsupported."""
    request = chat_request(user("hi"), response_format=ResponseFormat("json_schema", schema={"type": "object"}))
    assert VertexAnthropicAdapter().unsupported(request, CLAUDE) == ["response_format"]
    assert "response_format" not in AnthropicAdapter().unsupported(request, CLAUDE)


@pytest.mark.parametrize("adapter", [VertexGeminiAdapter(), VertexAnthropicAdapter()])
def test_vertex_embeddings_are_refused_clearly(adapter: VertexGeminiAdapter | VertexAnthropicAdapter) -> None:
    """Embeddings on a Vertex provider are a clear UnsupportedParameter naming the provider."""
    with pytest.raises(errors.UnsupportedParameter, match="vertex"):
        adapter.embeddings_request(EmbeddingRequest(model="m", inputs=["x"]), GEMINI)


def test_claude_quota_error_with_retry_info_is_rate_limited() -> None:
    """Vertex's google.rpc 429 for Claude, with a RetryInfo detail, is RateLimited with that delay."""
    body = orjson.dumps(
        {
            "error": {
                "code": 429,
                "message": "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model",
                "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}],
            }
        }
    )
    err = VertexAnthropicAdapter().map_error(429, {}, body, CLAUDE)
    assert type(err) is errors.RateLimited
    assert err.retry_after == 17
    assert err.provider == "vertex"


def test_claude_deadline_exceeded_is_a_timeout() -> None:
    """Vertex's 504 DEADLINE_EXCEEDED for Claude is an UpstreamTimeout, as for Gemini."""
    body = orjson.dumps({"error": {"code": 504, "message": "Deadline exceeded", "status": "DEADLINE_EXCEEDED"}})
    assert type(VertexAnthropicAdapter().map_error(504, {}, body, CLAUDE)) is errors.UpstreamTimeout
