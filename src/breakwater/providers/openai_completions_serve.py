"""OpenAI's legacy text completions (``POST /v1/completions``), server side, mapped onto chat.

A completion request becomes a canonical chat request with the prompt as its one user message,
so every route serves it (OpenAI, Anthropic and Gemini upstreams alike) through the whole
pipeline; the answer goes back as a ``text_completion`` object, and a stream as
``text_completion`` chunks ending in ``data: [DONE]`` (OpenAI's API reference, "Completions",
checked 2026-12).

What the chat form cannot carry:

- a batch of prompts (a list of several strings) or token-id prompts: a 400 naming ``prompt``
  (one prompt a request; send text);
- ``echo: true``, a non-empty ``suffix``, ``best_of`` above ``n``, ``logit_bias``: listed in
  ``extra_params``, so the route's ``unsupported_params`` decides, as for any parameter its
  upstream cannot honour (a 400 naming it, or dropped and listed in
  ``x-breakwater-dropped-params``).

``logprobs: N`` asks the chat for ``logprobs`` with ``top_logprobs: N``, and the chat's entries
come back in the completions' shape (``tokens``, ``token_logprobs``, ``top_logprobs`` as
token -> logprob maps, ``text_offset``), whole and streamed; an upstream without log
probabilities (Anthropic) refuses it like the chat parameter.

``raw`` stays ``None``: a completion body must never reach an upstream's chat endpoint as is;
it travels as ``completion``, for a deployment whose upstream serves ``/v1/completions``
(``legacy_completions: true``, ``openai_completions.py``), which then honours what chat cannot.
``max_tokens`` defaults to 16, as OpenAI's completions do.
"""

from __future__ import annotations

from typing import Any

import orjson

from breakwater.core.errors import InvalidRequest
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    FinishEvent,
    FinishReason,
    Message,
    PassthroughChunk,
    StreamEvent,
    StreamStart,
    TextDelta,
    TextPart,
    ToolCallDelta,
    UsageEvent,
)
from breakwater.providers import fields as f
from breakwater.providers.openai_completions import legacy_logprobs
from breakwater.providers.openai_serve import DONE, envelope, error_body, usage_json
from breakwater.providers.sse import encode_sse

#: OpenAI's default ``max_tokens`` for a completion
DEFAULT_MAX_TOKENS = 16
#: at most this many stop sequences, and of alternatives per token (OpenAI's limits)
MAX_STOP, MAX_LOGPROBS = 4, 5

#: fields read into the canonical request; anything else is an extra parameter
_KNOWN = frozenset(
    {
        "model", "prompt", "max_tokens", "temperature", "top_p", "n", "stop", "stream", "stream_options",
        "user", "seed", "presence_penalty", "frequency_penalty", "echo", "suffix", "best_of", "logprobs",
    }
)  # fmt: skip


def decode_completion_request(body: Any) -> ChatRequest:
    """Validate a completions body into a chat request (the prompt as its one user message)."""
    body = f.obj(body, "body")
    model = f.req_str(body, "model")
    prompt = _prompt(body.get("prompt"))
    top = f.opt_int(body, "logprobs", minimum=0)
    if top is not None and top > MAX_LOGPROBS:
        raise f.bad("logprobs", f"an integer between 0 and {MAX_LOGPROBS}")
    extra = [k for k, v in body.items() if k not in _KNOWN and v is not None]
    if f.opt_bool(body, "echo"):
        extra.append("echo")
    if f.opt_str(body, "suffix"):
        extra.append("suffix")
    n = f.opt_int(body, "n", minimum=1) or 1
    best_of = f.opt_int(body, "best_of", minimum=0)
    if best_of is not None and best_of > n:
        extra.append("best_of")
    stop = f.str_list(body.get("stop"), "stop")
    if len(stop) > MAX_STOP:
        raise f.bad("stop", f"at most {MAX_STOP} sequences")
    options = body.get("stream_options")
    include_usage = options is not None and bool(f.opt_bool(f.obj(options, "stream_options"), "include_usage"))
    max_tokens = f.opt_int(body, "max_tokens", minimum=1)
    return ChatRequest(
        model=model,
        messages=[Message("user", [TextPart(prompt)])],
        stream=bool(f.opt_bool(body, "stream")),
        include_usage=include_usage,
        max_tokens=DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
        temperature=f.opt_num(body, "temperature", lo=0, hi=2),
        top_p=f.opt_num(body, "top_p", lo=0, hi=1),
        stop=stop,
        seed=f.opt_int(body, "seed"),
        n=n,
        presence_penalty=f.opt_num(body, "presence_penalty", lo=-2, hi=2),
        frequency_penalty=f.opt_num(body, "frequency_penalty", lo=-2, hi=2),
        user=f.opt_str(body, "user"),
        logprobs=None if top is None else True,
        top_logprobs=top,
        extra_params=extra,
        completion=body,
    )


def _prompt(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        raise InvalidRequest("'prompt' is required", param="prompt")
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value[0]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        raise InvalidRequest(
            "'prompt': one prompt a request (a batch of prompts is not mapped onto chat); send each separately",
            param="prompt",
        )
    if isinstance(value, list) and value and all(isinstance(v, (int, list)) and not isinstance(v, bool) for v in value):
        raise InvalidRequest("'prompt': token-id prompts are not supported; send the text", param="prompt")
    raise f.bad("prompt", "a string")


# --- responses --------------------------------------------------------------------------------

#: a chat finish reason as a completion's (completions have no tool calls)
_FINISH: dict[str, str] = {"stop": "stop", "length": "length", "content_filter": "content_filter", "tool_calls": "stop"}


def _finish(reason: FinishReason | None) -> str | None:
    return None if reason is None else _FINISH.get(reason, reason)


def completion_id(chat_id: str) -> str:
    """``chatcmpl-…`` as ``cmpl-…``, the prefix of completion ids (a forwarded completion's id kept)."""
    return chat_id if chat_id.startswith("cmpl-") else "cmpl-" + chat_id.removeprefix("chatcmpl-")


def encode_completion_response(response: ChatResponse) -> bytes:
    """A chat answer as a ``text_completion`` object (never the upstream's bytes: they are chat)."""
    choices = []
    for c in response.choices:
        entries = c.logprobs.get("content") if isinstance(c.logprobs, dict) else None
        logprobs = legacy_logprobs(entries, 0) if entries else None
        text = c.message.text()
        choices.append(
            {"text": text, "index": c.index, "logprobs": logprobs, "finish_reason": _finish(c.finish_reason)}
        )
    return envelope(response, completion_id(response.id), "text_completion", choices)


class CompletionStreamEncoder:
    """Canonical stream events to ``text_completion`` SSE chunks, ending in ``data: [DONE]``."""

    def __init__(self, request: ChatRequest) -> None:
        self._include_usage = request.include_usage
        self._id = "cmpl-breakwater"
        self._model = request.model
        self._created = 0
        self._choices = request.n
        #: characters sent so far per choice (the ``text_offset`` of the next token)
        self._sent: dict[int, int] = {}

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        out: dict[str, Any] = {
            "id": self._id,
            "object": "text_completion",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if usage is not None:
            out["usage"] = usage
        return encode_sse(orjson.dumps(out))

    def _text(
        self, index: int, text: str, finish: str | None = None, entries: list[dict[str, Any]] | None = None
    ) -> bytes:
        offset = self._sent.get(index, 0)
        self._sent[index] = offset + len(text)
        logprobs = legacy_logprobs(entries, offset) if entries else None
        return self._chunk([{"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish}])

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            return self._text(event.index, event.text, None, event.logprobs)
        if isinstance(event, FinishEvent):
            return self._text(event.index, "", _finish(event.reason))
        if isinstance(event, StreamStart):
            self._id, self._model, self._created = completion_id(event.id), event.model, event.created
            return b""
        if isinstance(event, UsageEvent):
            return self._chunk([], usage_json(event.usage)) if self._include_usage else b""
        if isinstance(event, PassthroughChunk):
            return self._passthrough(event)
        if isinstance(event, ToolCallDelta):
            return b""  # a completion request carries no tools
        raise TypeError(f"unknown stream event {event!r}")

    def _passthrough(self, event: PassthroughChunk) -> bytes:
        """An OpenAI chat chunk (a replayed answer) as completion chunks: text, logprobs, finish reasons, usage."""
        try:
            data = orjson.loads(event.data)
            out = []
            for c in data.get("choices") or ():
                delta, logprobs = c.get("delta") or {}, c.get("logprobs")
                entries = logprobs.get("content") if isinstance(logprobs, dict) else None
                reason = c.get("finish_reason")
                finish = None if reason is None else _FINISH.get(reason, reason)
                out.append(self._text(int(c.get("index") or 0), delta.get("content") or "", finish, entries))
        except (ValueError, TypeError, AttributeError):
            return b""  # not a chat chunk: nothing a completion client can read
        usage = event.usage
        if usage is not None and self._include_usage and not out:
            out.append(self._chunk([], usage_json(usage)))
        return b"".join(out)

    def end(self) -> bytes:
        return DONE

    def error(self, message: str, type_: str, code: str | None) -> bytes:
        """A final chunk per choice with ``finish_reason: "error"``, then the error event; no ``[DONE]``."""
        tail = b"".join(self._text(i, "", "error") for i in range(self._choices))
        return tail + encode_sse(error_body(message, type_, None, code))
