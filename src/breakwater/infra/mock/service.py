"""The mock provider's request handling, independent of any server or HTTP library.

``MockService.handle`` takes a request (method, path, query, lower-case headers, body bytes)
and returns a ``MockReply``. The ASGI app (``breakwater mock``) and the in-process sender (a
deployment of provider type ``mock``) are thin shells around it, so both behave identically.

Routes (docs/mock.md lists them): OpenAI's chat completions, legacy completions
(``completions.py``), Responses (``responses.py``), embeddings, moderations (``moderation.py``) and
models, with or without ``/v1`` and at Azure's deployment URLs; Anthropic's messages, token counts
and models (with an ``anthropic-version`` header); Gemini's generate, stream, embed, count and
models; Vertex AI's Gemini and Claude URLs, which want a bearer token, and Google's OAuth token
endpoint (``vertex.py``); Bedrock's Converse and ConverseStream (event-stream framing);
``GET /healthz``. API keys are not checked, whatever header carries them; Bedrock requests must
carry a SigV4 ``Authorization`` header scoped to the ``bedrock`` service (its signature is not
recomputed: the mock knows no secret), else a 403 as AWS answers it.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote

import orjson

from breakwater.core.errors import InvalidRequest
from breakwater.core.ids import IdGenerator
from breakwater.core.types import ChatRequest, ChatResponse
from breakwater.engine.ports import Clock, RandomSource
from breakwater.infra.mock.completions import completion_answer, completion_frames
from breakwater.infra.mock.faults import LONG_SLEEP, NO_FAULTS, ConnectionReset, Faults, FaultSchedule, parse_faults
from breakwater.infra.mock.model import MockModel, filtered, input_tokens
from breakwater.infra.mock.moderation import moderation_body
from breakwater.infra.mock.prompt_cache import PromptCacheSim
from breakwater.infra.mock.responses import response_json, stream_frames
from breakwater.infra.mock.vertex import (
    TOKEN_PATH,
    VERTEX_PATH,
    VertexAnthropicWire,
    has_bearer,
    token_reply,
    unauthenticated,
)
from breakwater.infra.mock.wires import AnthropicWire, BedrockWire, GeminiWire, OpenAIWire, Wire, wire_frames
from breakwater.providers.bedrock_serve import exception_name as bedrock_exception
from breakwater.providers.openai_completions_serve import encode_completion_response
from breakwater.providers.openai_moderations import decode_moderation_request
from breakwater.providers.openai_responses_request import decode_responses_request
from breakwater.providers.sigv4 import credential_scope

__all__ = ["ConnectionReset", "MockReply", "MockService"]

log = logging.getLogger("breakwater.mock")

_JSON = MappingProxyType({"content-type": "application/json"})
_SSE = MappingProxyType({"content-type": "text/event-stream", "cache-control": "no-cache"})
_EVENTSTREAM = MappingProxyType({"content-type": "application/vnd.amazon.eventstream"})
_HEALTH = orjson.dumps({"status": "ok"})
_UNREADABLE = "The request body has a value of the wrong type or shape; check it against the API reference."
_AZURE = re.compile(r"/openai/deployments/([^/]+)/(chat/completions|embeddings)")
_GEMINI = re.compile(
    r"/v1(?:beta|alpha)?/(?:models|tunedModels)/([^/:]+):"
    r"(generateContent|streamGenerateContent|batchEmbedContents|embedContent|countTokens)"
)
_BEDROCK = re.compile(r"/model/([^/]+)/(converse|converse-stream)")
# the answer memo: entries, and the largest body worth keeping (bigger ones are rarely repeated)
_MEMO_SIZE = 512
_MEMO_MAX_BODY = 16 * 1024
_GEMINI_KIND = {
    "generateContent": "chat",
    "streamGenerateContent": "chat",
    "batchEmbedContents": "embeddings",
    "embedContent": "embeddings",
    "countTokens": "count_tokens",
    "rawPredict": "chat",
    "streamRawPredict": "chat",
}


@dataclass(slots=True)
class MockReply:
    """An answer: ``body`` for a whole response, or ``chunks`` for a stream (then ``body`` is empty)."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    chunks: AsyncIterator[bytes] | None = None


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    wire: Wire
    kind: str  # chat | completions | responses | embeddings | moderations | models | count_tokens | health
    model: str | None = None
    action: str | None = None  # Gemini's (or Vertex's) verb after the colon
    vertex: bool = False  # a Vertex AI URL: a bearer token is required


class MockService:
    """The mock provider. ``clock`` paces delays and time windows; ``rng`` draws fault rates.

    Raises:
        ValueError: ``rules`` is not a valid fault schedule (see ``faults.validate_faults``).
    """

    def __init__(
        self,
        clock: Clock,
        rng: RandomSource,
        rules: list[dict[str, Any]] | None = None,
        *,
        model: MockModel | None = None,
    ) -> None:
        self._clock = clock
        self._schedule = FaultSchedule(rules, clock, rng)
        self._model = model or MockModel()
        #: one counter for response and request ids, with no random prefix
        self._ids = IdGenerator(0, width=12)
        self._memo: dict[tuple[str, bytes], tuple[ChatRequest, ChatResponse]] = {}
        #: the cached-token counts a provider's prompt cache would report (``prompt_cache.py``)
        self._prompt_cache = PromptCacheSim(clock)
        self.openai, self.anthropic, self.gemini = OpenAIWire(), AnthropicWire(), GeminiWire()
        self.vertex_anthropic = VertexAnthropicWire()
        self.bedrock = BedrockWire()
        self._routes: dict[str, _Route] = {}
        for prefix in ("/v1", ""):
            self._routes[prefix + "/chat/completions"] = _Route("POST", self.openai, "chat")
            self._routes[prefix + "/embeddings"] = _Route("POST", self.openai, "embeddings")
            self._routes[prefix + "/models"] = _Route("GET", self.openai, "models")
            self._routes[prefix + "/moderations"] = _Route("POST", self.openai, "moderations")
            self._routes[prefix + "/completions"] = _Route("POST", self.openai, "completions")
            self._routes[prefix + "/responses"] = _Route("POST", self.openai, "responses")
        self._routes["/v1/messages"] = _Route("POST", self.anthropic, "chat")
        self._routes["/v1/messages/count_tokens"] = _Route("POST", self.anthropic, "count_tokens")
        self._routes["/v1beta/models"] = _Route("GET", self.gemini, "models")
        self._routes["/healthz"] = _Route("GET", self.openai, "health")
        self._routes[TOKEN_PATH] = _Route("POST", self.gemini, "token")
        # the model lists never change: encode them once
        self._models = {w.name: w.models() for w in (self.openai, self.anthropic, self.gemini)}

    @property
    def scheduled(self) -> bool:
        """Whether a fault schedule is configured (else only the x-mock-fault header injects faults)."""
        return bool(self._schedule)

    async def handle(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> MockReply:
        """Answer one request. Raises ``ConnectionReset`` when a fault drops the connection."""
        route = self._routes.get(path) or self._match(path)
        if route is None:
            wire = self._guess(path)
            return self._error(wire, 404, f"Unknown request URL: {method} {path}. Please check the URL and method.")
        wire = route.wire
        if route.kind == "models" and "anthropic-version" in headers:
            wire = self.anthropic
        if method != route.method:
            reply = self._error(wire, 405, f"Method {method} is not allowed for {path}; use {route.method}.")
            reply.headers["allow"] = route.method
            return reply
        if route.kind == "health":
            return MockReply(200, dict(_JSON), _HEALTH)
        if route.kind == "token":
            status, token = token_reply(body, self._ids.new())
            return MockReply(status, self._headers(_JSON), token)
        if route.vertex and not has_bearer(headers):
            return MockReply(401, self._headers(_JSON), unauthenticated())
        if wire is self.bedrock:
            refused = self._unsigned(headers)
            if refused is not None:
                return refused
        faults = self._schedule.select(path, wire.name) if self._schedule else NO_FAULTS
        spec = headers.get("x-mock-fault")
        if spec:
            try:
                faults = faults.merged(parse_faults(spec))
            except ValueError as exc:
                return self._error(wire, 400, f"x-mock-fault: {exc}")
        if faults is not NO_FAULTS:
            early = await self._early_faults(wire, faults)
            if early is not None:
                return early
        if route.kind == "models":
            return MockReply(200, self._headers(_JSON), self._models[wire.name])
        try:
            if route.kind == "chat":
                return self._chat(wire, *self._answer(route, path, body), faults, query)
            data = orjson.loads(body)
            if route.kind == "embeddings":
                return self._embeddings(wire, data, route.model, faults)
            if route.kind == "completions":
                return self._completions(data, faults)
            if route.kind == "responses":
                return self._responses(data, faults)
            if route.kind == "moderations":
                request = decode_moderation_request(data)
                body = (
                    wire.malformed_body if faults.malformed else moderation_body(request, f"modr-mock{self._ids.new()}")
                )
                return MockReply(200, self._headers(_JSON), body)
            return self._count_tokens(wire, data, route.model)
        except orjson.JSONDecodeError:
            return self._error(wire, 400, "We could not parse the JSON body of your request.")
        except InvalidRequest as exc:
            return self._error(wire, 400, exc.message)
        except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError, RecursionError) as exc:
            # A body shape the serve modules did not foresee: still the client's error, never a
            # 500, but a bug (they should raise InvalidRequest naming the field). The client is
            # not shown Python's text; the log has it, with the request's route.
            log.error("mock: unreadable %s %s body", wire.name, route.kind, exc_info=exc, extra={"path": path})
            return self._error(wire, 400, _UNREADABLE)

    # --- routing --------------------------------------------------------------------------

    def _match(self, path: str) -> _Route | None:
        if m := _AZURE.fullmatch(path):
            return _Route("POST", self.openai, "chat" if m.group(2) == "chat/completions" else "embeddings", m.group(1))
        if m := _BEDROCK.fullmatch(path):
            return _Route("POST", self.bedrock, "chat", unquote(m.group(1)), m.group(2))
        if m := _GEMINI.fullmatch(path):
            return _Route("POST", self.gemini, _GEMINI_KIND[m.group(2)], m.group(1), m.group(2))
        if m := VERTEX_PATH.fullmatch(path):
            wire: Wire = self.gemini if m.group(1) == "google" else self.vertex_anthropic
            return _Route("POST", wire, _GEMINI_KIND[m.group(3)], m.group(2), m.group(3), vertex=True)
        return None

    def _guess(self, path: str) -> Wire:
        if path.startswith("/model/"):
            return self.bedrock
        if path.startswith(("/v1beta", "/v1alpha")) or ":" in path:
            return self.gemini
        if path.startswith("/v1/messages"):
            return self.anthropic
        return self.openai

    # --- faults ---------------------------------------------------------------------------

    async def _early_faults(self, wire: Wire, faults: Faults) -> MockReply | None:
        """Faults that act before the request is read: delays, drops, error statuses."""
        if faults.latency:
            await self._clock.sleep(faults.latency)
        if faults.reset:
            raise ConnectionReset("mock fault: connection reset")
        if faults.timeout:
            await self._clock.sleep(LONG_SLEEP)
            raise ConnectionReset("mock fault: timeout (no answer)")
        if faults.status is not None:
            retry_after = faults.retry_after
            if retry_after is None and faults.status == 429:
                retry_after = 1.0  # real vendors always say when to come back after a 429
            return self._error(wire, faults.status, retry_after=retry_after)
        if faults.context_length:
            headers = self._headers(_JSON)
            if wire is self.bedrock:
                headers["x-amzn-errortype"] = bedrock_exception(400)
            return MockReply(400, headers, wire.context_length())
        return None

    # --- endpoints ------------------------------------------------------------------------

    def _answer(self, route: _Route, path: str, body: bytes) -> tuple[ChatRequest, ChatResponse]:
        """The decoded request and the model's answer, memoised by path and body.

        The model is deterministic, so an identical request (the norm in a load test) needs no
        decoding or generation again: measured on one core, this is what keeps the mock well
        ahead of the gateway it is testing. Only the id and timestamp are fresh per reply.
        """
        key = (path, body)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        stream = route.action in ("streamGenerateContent", "converse-stream")
        request = route.wire.decode_chat(orjson.loads(body), route.model, stream)
        answer = request, self._model.chat(request)
        if len(body) <= _MEMO_MAX_BODY:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()  # a full memo starts over: O(1), and repeated bodies refill it at once
            self._memo[key] = answer
        return answer

    def _chat(self, wire: Wire, request: ChatRequest, answer: ChatResponse, faults: Faults, query: str) -> MockReply:
        # Anthropic's API (Claude on Vertex too) and Bedrock (Claude, Nova) cache only up to explicit breakpoints
        explicit = isinstance(wire, AnthropicWire) or wire is self.bedrock
        usage = self._prompt_cache.usage(request, answer.usage, explicit=explicit)
        response = ChatResponse(
            f"{wire.id_prefix}mock{self._ids.new()}", answer.model, self._now(), answer.choices, usage
        )
        if faults.content_filter == "prompt":
            blocked = wire.prompt_blocked(request, input_tokens(request))
            if blocked is not None:
                status, body = blocked
                if status != 200 or not request.stream:
                    return MockReply(status, self._headers(_JSON), body)
                return MockReply(200, self._headers(_SSE), chunks=_once(b"data: " + body + wire.frame_sep))
        if faults.content_filter:
            response = filtered(response)
        if not request.stream:
            body = wire.malformed_body if faults.malformed else wire.encode_chat(response)
            return MockReply(200, self._headers(_JSON), body)
        frames, end = wire_frames(wire, request, response)
        if faults.malformed:
            frames.insert(0, wire.malformed_frame)
        if wire is self.gemini and "alt=sse" not in query:
            # without alt=sse Gemini streams one JSON array of the chunks; sent here in one piece
            datas = [f.removeprefix(b"data: ").removesuffix(wire.frame_sep) for f in frames + end]
            return MockReply(200, self._headers(_JSON), b"[" + b",\r\n".join(datas) + b"]")
        kind = _EVENTSTREAM if wire is self.bedrock else _SSE
        return MockReply(200, self._headers(kind), chunks=self._paced(frames, end, faults))

    def _completions(self, data: Any, faults: Faults) -> MockReply:
        """OpenAI's legacy completions (``completions.py``)."""
        request, response = completion_answer(data, self._model, f"cmpl-mock{self._ids.new()}", self._now())
        return self._text_reply(
            request.stream,
            faults,
            lambda: encode_completion_response(response),
            lambda: completion_frames(request, response),
        )

    def _responses(self, data: Any, faults: Faults) -> MockReply:
        """OpenAI's Responses API (``responses.py``): the chat answer as a Response or its events."""
        request = decode_responses_request(data)
        answer = self._model.chat(request.chat)
        response_id, created = f"resp_mock{self._ids.new()}", self._now()
        return self._text_reply(
            request.chat.stream,
            faults,
            lambda: orjson.dumps(response_json(request, answer, response_id, created, self._new_id)),
            lambda: stream_frames(request, answer, response_id, created, self._new_id),
        )

    def _text_reply(
        self,
        stream: bool,
        faults: Faults,
        body: Callable[[], bytes],
        frames: Callable[[], tuple[list[bytes], list[bytes]]],
    ) -> MockReply:
        """An OpenAI answer, whole or as a paced SSE stream, with the malformed-body fault applied."""
        if faults.malformed:
            return MockReply(200, self._headers(_JSON), self.openai.malformed_body)
        if not stream:
            return MockReply(200, self._headers(_JSON), body())
        head, end = frames()
        return MockReply(200, self._headers(_SSE), chunks=self._paced(head, end, faults))

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}mock{self._ids.new()}"

    def _embeddings(self, wire: Wire, data: Any, model: str | None, faults: Faults) -> MockReply:
        single = wire is self.gemini and isinstance(data, dict) and "requests" not in data  # :embedContent
        request = wire.decode_embeddings(data, model)
        response = self._model.embed(request)
        if faults.malformed:
            body = wire.malformed_body
        elif single:
            body = orjson.dumps({"embedding": {"values": response.vectors[0]}})
        else:
            body = wire.encode_embeddings(response, request)
        return MockReply(200, self._headers(_JSON), body)

    def _count_tokens(self, wire: Wire, data: Any, model: str | None) -> MockReply:
        if wire is self.anthropic:
            if isinstance(data, dict) and "max_tokens" not in data:
                data["max_tokens"] = 1  # count_tokens bodies have no max_tokens; the decoder needs one
            tokens = input_tokens(wire.decode_chat(data, model, False))
            return MockReply(200, self._headers(_JSON), orjson.dumps({"input_tokens": tokens}))
        if isinstance(data, dict) and isinstance(data.get("generateContentRequest"), dict):
            data = data["generateContentRequest"]
        tokens = input_tokens(wire.decode_chat(data, model, False))
        return MockReply(200, self._headers(_JSON), orjson.dumps({"totalTokens": tokens}))

    # --- streams --------------------------------------------------------------------------

    async def _paced(self, frames: list[bytes], end: list[bytes], faults: Faults) -> AsyncIterator[bytes]:
        """Send frames with the stream faults applied; cuts always fall before the closing frames."""
        limit = len(frames)
        stall, cut, reset = (
            min(x, limit) if x is not None else -1 for x in (faults.stall_after, faults.cut_after, faults.reset_after)
        )
        frames = frames + end
        sleep = self._clock.sleep
        if faults.ttft:
            await sleep(faults.ttft)
        delay = faults.token_delay
        for i in range(len(frames) + 1):
            if i == stall:
                await sleep(LONG_SLEEP)
                raise ConnectionReset("mock fault: stream stalled")
            if i == reset:
                raise ConnectionReset("mock fault: connection reset mid-stream")
            if i == cut or i == len(frames):
                return
            if i and delay:
                await sleep(delay)
            yield frames[i]

    # --- replies --------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self._clock.time())

    def _headers(self, base: Mapping[str, str]) -> dict[str, str]:
        return {**base, "x-request-id": f"req_mock{self._ids.new()}"}

    def _error(
        self, wire: Wire, status: int, message: str | None = None, retry_after: float | None = None
    ) -> MockReply:
        headers = self._headers(_JSON)
        if retry_after is not None:
            headers["retry-after"] = str(math.ceil(retry_after))  # HTTP allows whole seconds only
            if wire is self.openai:
                headers["retry-after-ms"] = str(round(retry_after * 1000))
        if wire is self.bedrock:
            headers["x-amzn-errortype"] = bedrock_exception(status)
        return MockReply(status, headers, wire.error(status, message))

    def _unsigned(self, headers: Mapping[str, str]) -> MockReply | None:
        """A 403 as Bedrock answers a request that is not SigV4-signed for its service, else None."""
        authorization = headers.get("authorization")
        if not authorization:
            return self._refuse("MissingAuthenticationTokenException", "Missing Authentication Token")
        scope = credential_scope(authorization)
        if scope is None or "x-amz-date" not in headers:
            return self._refuse(
                "IncompleteSignatureException", "Authorization header requires a valid SigV4 signature."
            )
        if scope["service"] != "bedrock":
            return self._refuse(
                "InvalidSignatureException", "Credential should be scoped to correct service: 'bedrock'."
            )
        if "host" not in scope["signed_headers"] or not headers["x-amz-date"].startswith(scope["date"]):
            return self._refuse("InvalidSignatureException", "The request signature does not cover its host and date.")
        return None

    def _refuse(self, exception: str, message: str) -> MockReply:
        headers = {**self._headers(_JSON), "x-amzn-errortype": exception}
        return MockReply(403, headers, self.bedrock.error(403, message))


async def _once(chunk: bytes) -> AsyncIterator[bytes]:
    yield chunk
