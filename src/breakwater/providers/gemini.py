"""The Google Gemini API (generativelanguage ``v1beta``) wire protocol, client side.

Chat goes to ``{base}/v1beta/models/{model}:generateContent`` or ``:streamGenerateContent?alt=sse``
(frames are whole ``GenerateContentResponse`` objects, with no end marker), with the key in
``x-goog-api-key`` and never in ``?key=``, so it cannot leak into access logs.

Schemas go in ``parametersJsonSchema`` / ``responseJsonSchema``, not ``parameters`` /
``responseSchema``: canonical schemas are full JSON Schema, while the older fields take an OpenAPI
3.0 subset that rejects ``additionalProperties`` and more. The google-genai SDK (3.4) sends the
same fields, and its ``response_schema`` docs point to ``response_json_schema`` for such schemas.

Thought signatures (Gemini API docs, "Thought signatures"): Gemini 3 rejects a function-call
history unless each model turn's first ``functionCall`` part carries the ``thoughtSignature`` it
came with. Canonical tool calls have no field for it, so it rides in the tool call id
(``<id>__thought__<url-safe base64>``) and is split off on the way back; calls made by another
model get the documented ``skip_thought_signature_validator`` value instead.
"""

from __future__ import annotations

import mimetypes
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from breakwater.core.errors import (
    InvalidRequest,
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
from breakwater.providers.sse import SSEDecoder

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_API_VERSION = "v1beta"
SIGNATURE_SEP = "__thought__"
SKIP_SIGNATURE = "skip_thought_signature_validator"

# Candidate.FinishReason values that mean "a filter stopped the output" (API reference, FinishReason).
FILTERED = frozenset(
    {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
        "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
    }
)  # fmt: skip
# canonical name -> generationConfig field, for the values that copy across unchanged
_GENERATION = (
    ("max_tokens", "maxOutputTokens"), ("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK"),
    ("seed", "seed"), ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty"),
    ("logprobs", "responseLogprobs"), ("top_logprobs", "logprobs"),
)  # fmt: skip
_TOOL_MODE = {"auto": "AUTO", "none": "NONE", "required": "ANY", "named": "ANY"}


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
        return _classify(status, error_object(body), target.provider, retry_after)

    # 2. requests -------------------------------------------------------------------------------

    def chat_request(self, request: ChatRequest, target: Target) -> HttpRequest:
        body = _chat_body(request)
        body.update(target.extra_body)
        method = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
        return HttpRequest("POST", _url(target, method), _headers(target), orjson.dumps(body), request.stream)

    def embeddings_request(self, request: EmbeddingRequest, target: Target) -> HttpRequest:
        name = model_path(target.model)
        extra = {"outputDimensionality": request.dimensions} if request.dimensions is not None else {}
        body = {"requests": [{"model": name, "content": {"parts": [{"text": t}]}, **extra} for t in request.inputs]}
        return HttpRequest("POST", _url(target, "batchEmbedContents"), _headers(target), orjson.dumps(body))

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


class GeminiStreamParser:
    """``data: {GenerateContentResponse}`` SSE frames to events.

    Each frame is a partial response: text arrives in pieces, a function call arrives whole, and
    every frame repeats a running ``usageMetadata`` (the last one is final), so usage is emitted
    once, at close. There is no end marker: a stream is complete once a finishReason was seen.
    """

    __slots__ = ("_calls", "_finished", "_sse", "_started", "_target", "_usage")

    def __init__(self, target: Target) -> None:
        self._target = target
        self._sse = SSEDecoder()
        self._started = False
        self._finished = False
        self._usage: Usage | None = None
        self._calls: dict[int, int] = {}  # candidate index -> tool calls seen so far

    def feed(self, data: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for sse in self._sse.feed(data):
            self._frame(sse.data, events)
        return events

    def close(self) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for sse in self._sse.flush():
            self._frame(sse.data, events)
        if not self._finished:
            provider = self._target.provider
            raise MalformedResponse(f"{provider} ended the stream before it was finished", provider=provider)
        if self._usage is not None:
            events.append(UsageEvent(self._usage))
        return events

    def _frame(self, data: str, events: list[StreamEvent]) -> None:
        if not data.strip():
            return
        provider = self._target.provider
        try:
            chunk = orjson.loads(data)
            err = chunk.get("error")
            if isinstance(err, dict):  # a failure after the 200 arrives as one more frame
                raise _classify(int(err.get("code") or 500), err, provider, None)
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


# --- pieces shared with gemini_serve ----------------------------------------------------------


def finish_reason(reason: str, has_calls: bool) -> FinishReason:
    """Gemini's Candidate.FinishReason to canonical; any non-filter, non-length end with calls is a tool call."""
    if reason in FILTERED:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    return "tool_calls" if has_calls else "stop"


def join_call_id(call_id: str, signature: str | None) -> str:
    """A canonical tool call id carrying Gemini's thought signature (url-safe, so any client keeps it intact).

    The skip value is not kept: it is no signature, and ``_function_call`` adds it again where needed.
    """
    if not signature or signature == SKIP_SIGNATURE:
        return call_id
    return f"{call_id}{SIGNATURE_SEP}{signature.replace('+', '-').replace('/', '_').rstrip('=')}"


def split_call_id(call_id: str) -> tuple[str, str | None]:
    """The inverse of ``join_call_id``: the bare id and the signature in standard, padded base64."""
    bare, sep, signature = call_id.partition(SIGNATURE_SEP)
    if not sep or not signature:
        return call_id, None
    signature = signature.replace("-", "+").replace("_", "/")
    return bare, signature + "=" * (-len(signature) % 4)


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


def _classify(status: int, err: dict[str, Any], provider: str, retry_after: float | None) -> UpstreamError:
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


# --- canonical request to a GenerateContentRequest body ----------------------------------------


def _chat_body(request: ChatRequest) -> dict[str, Any]:
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name, for functionResponse parts
    tool_turn: dict[str, Any] | None = None
    for i, m in enumerate(request.messages):
        path = f"messages[{i}]"
        if m.role in ("system", "developer"):
            # one systemInstruction for the whole request, and it takes text only
            system.extend({"text": p.text} for p in m.content if isinstance(p, TextPart) and p.text)
            continue
        if m.role == "tool":
            # parallel results go back together in one user turn (function calling guide)
            if tool_turn is None:
                tool_turn = {"role": "user", "parts": []}
                contents.append(tool_turn)
            tool_turn["parts"].append({"functionResponse": _function_response(m, path, names)})
            continue
        tool_turn = None
        parts = [
            _part(p, f"{path}.content[{j}]") for j, p in enumerate(m.content) if not isinstance(p, TextPart) or p.text
        ]
        for j, call in enumerate(m.tool_calls if m.role == "assistant" else ()):
            names[call.id] = call.name
            parts.append(_function_call(call, j == 0, f"{path}.tool_calls[{j}]"))
        if parts:  # Gemini refuses empty text parts ("empty text parameter"), so an empty turn is left out
            contents.append({"role": "model" if m.role == "assistant" else "user", "parts": parts})
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    if request.tools:
        declarations = [
            {
                "name": t.name,
                **({"description": t.description} if t.description else {}),
                **({"parametersJsonSchema": t.parameters} if t.parameters else {}),  # none: a function without args
            }
            for t in request.tools
        ]
        body["tools"] = [{"functionDeclarations": declarations}]
    if request.tool_choice is not None:
        tc = request.tool_choice
        config: dict[str, Any] = {"mode": _TOOL_MODE[tc.mode]}
        if tc.mode == "named" and tc.name:
            config["allowedFunctionNames"] = [tc.name]
        body["toolConfig"] = {"functionCallingConfig": config}
    generation = _generation_config(request)
    if generation:
        body["generationConfig"] = generation
    return body


def _generation_config(request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name, key in _GENERATION:
        value = getattr(request, name)
        if value is not None:
            config[key] = value
    if request.stop:
        config["stopSequences"] = request.stop
    if request.n != 1:
        config["candidateCount"] = request.n
    rf = request.response_format
    if rf is not None and rf.type != "text":
        config["responseMimeType"] = "application/json"
        if rf.type == "json_schema" and rf.schema:
            config["responseJsonSchema"] = rf.schema
    return config


def _part(p: ContentPart, path: str) -> dict[str, Any]:
    if isinstance(p, TextPart):
        return {"text": p.text}
    if p.url.startswith("data:"):
        header, _, data = p.url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if encoding != "base64" or not data:
            raise InvalidRequest(f"'{path}.image_url.url': expected a base64 data URL", param=f"{path}.image_url.url")
        return {"inlineData": {"mimeType": mime or "image/jpeg", "data": data}}
    mime = mimetypes.guess_type(urlsplit(p.url).path)[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": p.url}}


def _function_call(call: ToolCall, first: bool, path: str) -> dict[str, Any]:
    try:
        args = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        raise InvalidRequest(f"'{path}.function.arguments': expected a JSON object", param=f"{path}.function.arguments")
    call_id, signature = split_call_id(call.id)
    part: dict[str, Any] = {"functionCall": {"id": call_id, "name": call.name, "args": args}}
    if signature is None and first:
        signature = SKIP_SIGNATURE  # a call Gemini did not make; see the module docstring
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def _function_response(m: Message, path: str, names: dict[str, str]) -> dict[str, Any]:
    # Gemini pairs results with calls by function name, which a tool message does not carry
    name = names.get(m.tool_call_id or "") or m.name
    if name is None:
        raise InvalidRequest(f"'{path}.tool_call_id': no earlier tool call has this id", param=f"{path}.tool_call_id")
    try:
        value = orjson.loads(m.text())
    except orjson.JSONDecodeError:
        value = m.text()
    # FunctionResponse.response must be a JSON object
    out: dict[str, Any] = {"name": name, "response": value if isinstance(value, dict) else {"result": value}}
    if m.tool_call_id:
        out["id"] = split_call_id(m.tool_call_id)[0]
    return out
