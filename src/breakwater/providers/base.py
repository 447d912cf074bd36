"""What every provider adapter is: the shared vocabulary of the sans-IO translators.

An adapter turns a canonical request into an ``HttpRequest`` description and turns the bytes
that came back into canonical responses or stream events. It never opens a socket: the engine
sends the description through its HTTP port, so adapters are tested on recorded wire samples.

Each adapter module has the same skeleton, in this order:

1. ``map_error``: the one place the vendor's error bodies become the error tree;
2. the request builders (``chat_request``, ``embeddings_request``);
3. the response parsers (``chat_response``, ``embeddings_response``);
4. the stream parser, which reuses the response parser's pieces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from breakwater.core.errors import MalformedResponse, UpstreamError
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    PassthroughChunk,
    StreamEvent,
)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """An upstream call, described but not sent."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    stream: bool = False


class RequestSigner(Protocol):
    """Signs a finished upstream request (AWS SigV4 for Bedrock); CPU only, never I/O."""

    def sign(self, request: HttpRequest, provider: str) -> HttpRequest:
        """``request`` with its signature headers. Raises an ``UpstreamError`` when it cannot sign."""
        ...


@dataclass(frozen=True, slots=True)
class Target:
    """A deployment resolved for an adapter: which model, where, and with which credential.

    ``provider`` is the configured provider *name*: it is what errors, logs and metrics show,
    never the URL or the key.
    """

    provider: str
    model: str
    base_url: str
    api_key: str | None = None
    api_version: str | None = None
    host: str = "custom"
    headers: Mapping[str, str] = field(default_factory=dict)
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    #: Anthropic: add a prompt-cache breakpoint after a stable prefix this long (tokens), to a
    #: request that has none (``None``: never)
    auto_cache_min_tokens: int | None = None
    #: OpenAI wire: the upstream serves the legacy ``/completions`` (``openai_completions.py``)
    legacy_completions: bool = False
    #: OpenAI wire: the upstream serves OpenAI's ``/responses`` (``openai_responses_forward.py``)
    responses_api: bool = False
    #: signs each request last, over its exact bytes (Bedrock's SigV4; ``None``: no signature)
    signer: RequestSigner | None = None


class StreamParser(Protocol):
    """Incremental decoder of one upstream stream into canonical events."""

    def feed(self, data: bytes) -> list[StreamEvent]:
        """Decode the next bytes. Raises an ``UpstreamError`` on an in-stream error event."""
        ...

    def close(self) -> list[StreamEvent]:
        """The upstream closed. Raises ``MalformedResponse`` if the stream was not finished."""
        ...


class Adapter(Protocol):
    """The contract every wire-protocol adapter fulfils."""

    wire: str
    #: OpenAI-spelled optional parameters this wire can carry (see ``ChatRequest.used_params``)
    supported_params: frozenset[str]

    def unsupported(self, request: ChatRequest, target: Target) -> list[str]:
        """Parameters ``request`` uses that this wire (and the target's host) cannot honour."""
        ...

    def token_input(self, target: Target) -> bool:
        """Whether the target embeds token-id inputs itself; if not, the engine decodes them to text."""
        ...

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target) -> UpstreamError: ...

    def chat_request(self, request: ChatRequest, target: Target) -> HttpRequest: ...

    def chat_response(self, body: bytes, target: Target) -> ChatResponse: ...

    def stream_parser(self, request: ChatRequest, target: Target) -> StreamParser: ...

    def passthrough_text(self, chunk: PassthroughChunk) -> str:
        """The text a chunk this wire forwarded byte-for-byte adds to choice 0.

        Raises:
            ValueError: not a plain text chunk of choice 0 (or this wire forwards no chunks).
        """
        ...

    def embeddings_request(self, request: EmbeddingRequest, target: Target) -> HttpRequest: ...

    def embeddings_response(self, body: bytes, target: Target) -> EmbeddingResponse: ...


def response_object(body: bytes, target: Target) -> dict[str, Any]:
    """A successful upstream body as a JSON object, or ``MalformedResponse`` naming the provider."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedResponse(f"{target.provider} sent invalid JSON", provider=target.provider) from exc
    if not isinstance(data, dict):
        raise MalformedResponse(f"{target.provider} sent an unexpected JSON value", provider=target.provider)
    return data


def error_object(body: bytes) -> dict[str, Any]:
    """The ``error`` member of a vendor error body, whatever the vendor.

    OpenAI and Gemini put an object there, Anthropic too (beside ``"type": "error"``); Gemini wraps
    the body in a list on non-SSE streams; some OpenAI-compatible servers put a bare string. A body
    that is not JSON at all (a proxy's HTML page) gives its first 500 bytes as the message, which
    only ever feeds ``classify_status``'s text hints.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"message": body[:500].decode("utf-8", "replace")}
    if isinstance(data, list) and data:
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        return err
    if isinstance(err, str):
        return {"message": err}
    return {"message": body[:500].decode("utf-8", "replace")}
