"""Google Vertex AI, client side: Gemini and Anthropic's Claude through Vertex's publisher endpoints.

Vertex speaks each vendor's own body at URLs of its own, under a location's resource URL
(``location_url``: ``https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/
{location}``, or ``aiplatform.googleapis.com`` for ``global``), which is ``Target.base_url``:

- Gemini: ``{location_url}/publishers/google/models/{model}:generateContent`` and
  ``:streamGenerateContent?alt=sse``, the ``generateContent`` body and responses unchanged
  (Vertex requires ``role`` on every content, which the Gemini body builder always writes);
- Claude: ``{location_url}/publishers/anthropic/models/{model}:rawPredict`` and
  ``:streamRawPredict``, the Messages body without ``model`` and with ``anthropic_version:
  vertex-2023-10-16`` (``stream`` stays in the body), the Messages responses and events unchanged.

Both adapters are the vendor's adapter with the URL, headers and body changed, nothing copied.
Authentication is an OAuth access token that changes every hour: the sender adds it
(``infra/google_auth.BearerSender``), so the adapters stay pure and hold no credential.

Errors come in two shapes: what Vertex itself refuses (credentials, quota, an unknown model) is a
google.rpc.Status (``{"error": {"code", "message", "status"}}``) for both publishers; what Claude
refuses is Anthropic's error body. Both reach the error tree through ``classify_status``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from breakwater.core.errors import UnsupportedParameter, UpstreamError, parse_retry_after
from breakwater.core.types import ChatRequest, EmbeddingRequest, EmbeddingResponse
from breakwater.providers.anthropic import AnthropicAdapter
from breakwater.providers.base import HttpRequest, Target, error_object
from breakwater.providers.gemini import GeminiAdapter, classify_rpc

#: the Messages API version Claude on Vertex takes, in the body (Anthropic's "Claude on Vertex AI")
ANTHROPIC_VERSION = "vertex-2023-10-16"
DEFAULT_API_VERSION = "v1"

Publisher = Literal["google", "anthropic"]


def endpoint(location: str) -> str:
    """The Vertex AI API host for ``location``: the global endpoint, a multi-region's, or a region's."""
    if location == "global":
        return "https://aiplatform.googleapis.com"
    if location in ("us", "eu"):  # the multi-region endpoints (regional endpoint "rep" hosts)
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def location_url(project: str, location: str, base_url: str | None = None, api_version: str | None = None) -> str:
    """The resource URL every call of a Vertex provider starts with (``Target.base_url``).

    Args:
        project: the Google Cloud project id.
        location: a region (``us-east5``), ``global``, or a multi-region (``us``, ``eu``).
        base_url: another host for the API (a private endpoint, the mock); default ``endpoint(location)``.
        api_version: ``v1`` unless given (``v1beta1`` for preview features).
    """
    host = (base_url or endpoint(location)).rstrip("/")
    return f"{host}/{api_version or DEFAULT_API_VERSION}/projects/{project}/locations/{location}"


def publisher(model: str) -> Publisher:
    """Who publishes ``model`` on Vertex: Anthropic for Claude (``claude-3-5-sonnet-v2@20241022``), else Google."""
    return "anthropic" if model.lower().startswith("claude") else "google"


def vertex_wire(model: str) -> str:
    """The adapter's wire name for ``model`` on a Vertex provider (``registry.adapter_for``)."""
    return "vertex-anthropic" if publisher(model) == "anthropic" else "vertex-gemini"


def _model_url(target: Target, owner: Publisher, verb: str) -> str:
    base = target.base_url.rstrip("/")
    if "/" in target.model:  # a resource of the project's own, e.g. a tuned model's endpoints/123
        return f"{base}/{target.model}:{verb}"
    return f"{base}/publishers/{owner}/models/{target.model}:{verb}"


def _headers(target: Target) -> dict[str, str]:
    return {"content-type": "application/json", **target.headers}


def _no_embeddings(target: Target) -> UnsupportedParameter:
    # Vertex embeds through :predict with bodies of its own, which no adapter speaks yet
    return UnsupportedParameter(f"provider {target.provider} (vertex) does not offer embeddings here", param="model")


class VertexGeminiAdapter(GeminiAdapter):
    """Gemini on Vertex: the Gemini adapter at Vertex's URLs, with no API key."""

    wire = "vertex-gemini"

    def url(self, target: Target, method: str) -> str:
        return _model_url(target, "google", method)

    def headers(self, target: Target) -> dict[str, str]:
        return _headers(target)

    def embeddings_request(self, request: EmbeddingRequest, target: Target) -> HttpRequest:
        raise _no_embeddings(target)

    def embeddings_response(self, body: bytes, target: Target) -> EmbeddingResponse:
        raise _no_embeddings(target)


class VertexAnthropicAdapter(AnthropicAdapter):
    """Claude on Vertex: the Anthropic adapter at Vertex's URLs, the model in the URL, no API key."""

    wire = "vertex-anthropic"
    # response_format is left out: Claude's structured outputs (output_config) are an Anthropic API
    # feature Vertex does not document, so it is dropped or refused here rather than sent to a 400
    supported_params = AnthropicAdapter.supported_params - {"response_format"}

    def unsupported(self, request: ChatRequest, target: Target) -> list[str]:
        return [p for p in request.used_params() if p not in self.supported_params]

    def body(self, request: ChatRequest, target: Target) -> dict[str, Any]:
        body = super().body(request, target)
        del body["model"]
        body.setdefault("anthropic_version", ANTHROPIC_VERSION)  # an extra_body may pin another
        return body

    def url(self, target: Target, stream: bool) -> str:
        return _model_url(target, "anthropic", "streamRawPredict" if stream else "rawPredict")

    def headers(self, target: Target) -> dict[str, str]:
        return _headers(target)

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target) -> UpstreamError:
        err = error_object(body)
        if "status" in err and "type" not in err:  # Vertex's own google.rpc.Status
            return classify_rpc(status, err, target.provider, parse_retry_after(headers))
        return super().map_error(status, headers, body, target)
