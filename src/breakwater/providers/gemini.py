"""The Google Gemini API (generativelanguage ``v1beta``) wire protocol, client side.

Chat goes to ``{base}/v1beta/models/{model}:generateContent`` or ``:streamGenerateContent?alt=sse``
(frames are whole ``GenerateContentResponse`` objects, with no end marker), with the key in
``x-goog-api-key`` and never in ``?key=``, so it cannot leak into access logs.

Request bodies are built in ``breakwater.providers.gemini_request``; thought signatures ride in
tool call ids, as ``breakwater.providers.gemini_signatures`` describes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import orjson

from breakwater.core.errors import (
    MalformedResponse,
    UpstreamAuthError,
    UpstreamError,
    UpstreamTimeout,
    classify_status,
    parse_retry_after,
)
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    ContentPart,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishEvent,
    FinishReason,
    Message,
    PassthroughChunk,
    StreamEvent,
    StreamStart,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from breakwater.providers.base import HttpRequest, Target, error_object, response_object
from breakwater.providers.gemini_request import chat_body
from breakwater.providers.gemini_signatures import join_call_id
from breakwater.providers.sse import SSEStreamParser

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_API_VERSION = "v1beta"

# Candidate.FinishReason values that mean "a filter stopped the output" (API reference, FinishReason).
FILTERED = frozenset(
    {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
        "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
    }
)  # fmt: skip


class GeminiAdapter:
    wire = "gemini"
    supported_params = frozenset(
        {
            "max_tokens", "temperature", "top_p", "top_k", "stop", "seed", "n", "presence_penalty",
            "frequency_penalty", "logprobs", "top_logprobs", "tools", "tool_choice", "response_format",
        }
    )  # fmt: skip

    def unsupported(self, request: ChatRequest, target: Target) -> list[str]:
        """Parameters of ``request`` Gemini cannot honour (``user``, ``parallel_tool_calls``, every extra)."""
        return [p for p in request.used_params() if p not in self.supported_params]

    def token_input(self, target: Target) -> bool:
        """Gemini embeds text only: token-id inputs reach it decoded."""
        return False

    # 1. errors ---------------------------------------------------------------------------------

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target) -> UpstreamError:
        retry_after = parse_retry_after(headers)
        return classify_rpc(status, error_object(body), target.provider, retry_after)

    # 2. requests -------------------------------------------------------------------------------

    def chat_request(self, request: ChatRequest, target: Target) -> HttpRequest:
        body = chat_body(request)
        body.update(target.extra_body)
        method = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
        return HttpRequest("POST", self.url(target, method), self.headers(target), orjson.dumps(body), request.stream)

    def embeddings_request(self, request: EmbeddingRequest, target: Target) -> HttpRequest:
        name = model_path(target.model)
        extra = {"outputDimensionality": request.dimensions} if request.dimensions is not None else {}
        body = {"requests": [{"model": name, "content": {"parts": [{"text": t}]}, **extra} for t in request.inputs]}
        return HttpRequest("POST", self.url(target, "batchEmbedContents"), self.headers(target), orjson.dumps(body))

    def url(self, target: Target, method: str) -> str:
        """Where ``method`` (``generateContent``, ...) of the target's model is called; Vertex overrides it."""
        return _url(target, method)

    def headers(self, target: Target) -> dict[str, str]:
        """The request headers, the API key among them; Vertex overrides it (its token is the sender's)."""
        return _headers(target)

    # 3. responses ------------------------------------------------------------------------------

    def chat_response(self, body: bytes, target: Target) -> ChatResponse:
        # raw_body stays None: it means "OpenAI bytes that may go out untouched", which these are not
        data = response_object(body, target)
        try:
            choices = [_choice(c, i) for i, c in enumerate(data.get("candidates") or ())]
            if not choices:
                if not (data.get("promptFeedback") or {}).get("blockReason"):
                    raise MalformedResponse(f"{target.provider} sent no candidates", provider=target.provider)
                # a blocked prompt is an answer, not a failure (API reference, PromptFeedback)
                choices = [Choice(0, Message("assistant"), "content_filter")]
            return ChatResponse(
                id=str(data.get("responseId") or "gemini-breakwater"),
                model=_model_name(data.get("modelVersion"), target),
                created=int(time.time()),
                choices=choices,
                usage=_usage(data.get("usageMetadata")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedResponse(f"{target.provider} sent an unreadable response", provider=target.provider) from exc

    def embeddings_response(self, body: bytes, target: Target) -> EmbeddingResponse:
        data = response_object(body, target)
        try:
            vectors = [[float(x) for x in e["values"]] for e in data["embeddings"]]
            return EmbeddingResponse(target.model, vectors, Usage())  # batchEmbedContents reports no usage
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedResponse(f"{target.provider} sent unreadable embeddings", provider=target.provider) from exc

    # 4. streams --------------------------------------------------------------------------------

    def passthrough_text(self, chunk: PassthroughChunk) -> str:
        raise ValueError("the Gemini wire forwards no chunks byte-for-byte")

    def stream_parser(self, request: ChatRequest, target: Target) -> GeminiStreamParser:
        return GeminiStreamParser(target)


class GeminiStreamParser(SSEStreamParser):
    """``data: {GenerateContentResponse}`` SSE frames to events.

    Each frame is a partial response: text arrives in pieces, a function call arrives whole, and
    every frame repeats a running ``usageMetadata`` (the last one is final), so usage is emitted
    once, at close. There is no end marker: a stream is complete once a finishReason was seen.
    """

    __slots__ = ("_calls", "_finished", "_started", "_target", "_usage")

    def __init__(self, target: Target) -> None:
        self._target = target
        super().__init__()
        self._started = False
        self._finished = False
        self._usage: Usage | None = None
        self._calls: dict[int, int] = {}  # candidate index -> tool calls seen so far

    def _end(self, events: list[StreamEvent]) -> None:
        if not self._finished:
            provider = self._target.provider
            raise MalformedResponse(f"{provider} ended the stream before it was finished", provider=provider)
        if self._usage is not None:
            events.append(UsageEvent(self._usage))

    def _frame(self, event: str | None, data: str, events: list[StreamEvent]) -> None:
        if not data.strip():
            return
        provider = self._target.provider
        try:
            chunk = orjson.loads(data)
            err = chunk.get("error")
            if isinstance(err, dict):  # a failure after the 200 arrives as one more frame
                raise classify_rpc(int(err.get("code") or 500), err, provider, None)
            if not self._started:
                self._started = True
                rid = str(chunk.get("responseId") or "gemini-breakwater")
                events.append(StreamStart(rid, _model_name(chunk.get("modelVersion"), self._target), int(time.time())))
            candidates = chunk.get("candidates") or ()
            for i, c in enumerate(candidates):
                self._candidate(c, i, events)
            if not candidates and (chunk.get("promptFeedback") or {}).get("blockReason"):
                events.append(FinishEvent("content_filter", 0))
                self._finished = True
            usage = _usage(chunk.get("usageMetadata"))
            if usage is not None:
                self._usage = usage
        except UpstreamError:
            raise
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise MalformedResponse(f"{provider} sent an unreadable stream chunk", provider=provider) from exc

    def _candidate(self, c: dict[str, Any], position: int, events: list[StreamEvent]) -> None:
        index = int(c.get("index", position))
        for part in (c.get("content") or {}).get("parts") or ():
            if "functionCall" in part:
                n = self._calls.get(index, 0)
                self._calls[index] = n + 1
                call = _tool_call(part, n)
                events.append(ToolCallDelta(n, call.arguments, call.id, call.name, index))
            elif part.get("text") and not part.get("thought"):
                logprobs = _logprobs(c.get("logprobsResult"))
                events.append(TextDelta(part["text"], index, None if logprobs is None else logprobs["content"]))
        reason = c.get("finishReason")
        if reason:
            events.append(FinishEvent(finish_reason(reason, index in self._calls), index))
            self._finished = True


# --- finish reasons, URLs, errors and response parsing ------------------------------------------


def finish_reason(reason: str, has_calls: bool) -> FinishReason:
    """Gemini's Candidate.FinishReason to canonical; any non-filter, non-length end with calls is a tool call."""
    if reason in FILTERED:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    return "tool_calls" if has_calls else "stop"


def model_path(model: str) -> str:
    """The resource name in URLs and embed requests; ``tunedModels/x`` and ``models/x`` pass unchanged."""
    return model if "/" in model else f"models/{model}"


def _model_name(version: Any, target: Target) -> str:
    return str(version or target.model).removeprefix("models/")


def _url(target: Target, method: str) -> str:
    base = (target.base_url or DEFAULT_BASE_URL).rstrip("/")
    return f"{base}/{target.api_version or DEFAULT_API_VERSION}/{model_path(target.model)}:{method}"


def _headers(target: Target) -> dict[str, str]:
    headers = {"content-type": "application/json", **target.headers}
    if target.api_key:
        headers["x-goog-api-key"] = target.api_key
    return headers


def classify_rpc(status: int, err: dict[str, Any], provider: str, retry_after: float | None) -> UpstreamError:
    """A google.rpc.Status error (``{"code", "message", "status", "details"}``) in the error tree;
    Vertex answers in it for both of its publishers."""
    code = str(err.get("status") or "")
    details = [d for d in err.get("details") or () if isinstance(d, dict)]
    if retry_after is None:
        retry_after = _retry_delay(details)
    kw: dict[str, Any] = {"provider": provider, "upstream_status": status}
    # Gemini answers a bad key with 400 INVALID_ARGUMENT and ErrorInfo reason API_KEY_INVALID
    if status == 400 and any(d.get("reason") == "API_KEY_INVALID" for d in details):
        return UpstreamAuthError(f"{provider} rejected the gateway's credentials", **kw)
    if status == 504 or code == "DEADLINE_EXCEEDED":
        return UpstreamTimeout(f"{provider} timed out", **kw)
    return classify_status(status, f"{code} {err.get('message') or ''}", provider=provider, retry_after=retry_after)


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """Seconds from a google.rpc.RetryInfo detail (``"retryDelay": "7s"``, a protobuf Duration), sent on 429s."""
    delays = [str(d["retryDelay"]) for d in details if "retryDelay" in d]
    return float(delays[0][:-1]) if delays and re.fullmatch(r"\d+(\.\d+)?s", delays[0]) else None


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    # thoughts are billed as output (API reference, UsageMetadata), so they count in output_tokens
    # too; tool-use prompt tokens (search results and the like) are billed as input
    thoughts = int(data.get("thoughtsTokenCount") or 0)
    return Usage(
        input_tokens=int(data.get("promptTokenCount") or 0) + int(data.get("toolUsePromptTokenCount") or 0),
        output_tokens=int(data.get("candidatesTokenCount") or 0) + thoughts,
        cached_input_tokens=int(data.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def _tool_call(part: dict[str, Any], n: int) -> ToolCall:
    fc = part["functionCall"]
    call_id = str(fc.get("id") or f"call_{n}")  # the id is new in Gemini 2.x and often absent
    arguments = orjson.dumps(fc.get("args") or {}).decode()
    return ToolCall(join_call_id(call_id, part.get("thoughtSignature")), str(fc["name"]), arguments)


def _choice(c: dict[str, Any], position: int) -> Choice:
    parts = (c.get("content") or {}).get("parts") or ()
    # thought parts are reasoning summaries (includeThoughts), not answer text
    text = "".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought"))
    calls = [_tool_call(p, n) for n, p in enumerate(p for p in parts if "functionCall" in p)]
    reason = c.get("finishReason")
    content: list[ContentPart] = [TextPart(text)] if text else []
    return Choice(
        index=int(c.get("index", position)),
        message=Message("assistant", content, calls),
        finish_reason=finish_reason(reason, bool(calls)) if reason else None,
        logprobs=_logprobs(c.get("logprobsResult")),
    )


def _logprobs(result: Any) -> dict[str, Any] | None:
    """Gemini's LogprobsResult in OpenAI's ``choices[].logprobs`` shape, the canonical one."""
    if not isinstance(result, dict):
        return None
    tops = [t.get("candidates") or () for t in result.get("topCandidates") or ()]
    chosen = result.get("chosenCandidates") or ()
    top = [[_logprob(t) for t in (tops[k] if k < len(tops) else ())] for k in range(len(chosen))]
    content = [{**_logprob(c), "top_logprobs": t} for c, t in zip(chosen, top, strict=True)]
    return {"content": content, "refusal": None}


def _logprob(c: dict[str, Any]) -> dict[str, Any]:
    token = str(c.get("token") or "")
    return {"token": token, "logprob": float(c.get("logProbability") or 0.0), "bytes": list(token.encode())}
