"""The mock's "model": deterministic answers that behave like a real model where a client can tell.

Determinism rules (documented in docs/mock.md, relied on by demos and load tests):

* **Content.** The reply text is a sentence of 12 to 31 words from a fixed word list, chosen
  by ``zlib.crc32`` of the last user message's text (mixed with ``seed`` when the request sets
  one; the hash then seeds a blake2b digest whose bytes pick the words). Choice ``i`` of ``n``
  mixes ``i`` in too, so choices differ from each other.
* **Tokens.** A token is a run of letters, digits and underscores, or one other non-space
  character (``re`` pattern ``\\w+|[^\\w\\s]``). Prompt tokens are, per message, 4 plus the
  tokens of its text, tool-call names and arguments, plus 85 per image; plus 3 for the reply;
  plus, per offered tool, the tokens of its name, description and JSON parameters schema; plus
  the tokens of a ``json_schema`` response format's schema. Completion tokens are the tokens of
  the text, or of each tool call's name and arguments.
* **Tools.** A named ``tool_choice`` calls that tool; ``required`` calls the tools the last
  user message mentions by name, or else the first tool; ``auto`` (or unset) calls the
  mentioned tools only when the conversation ends with a user message, so an agent loop that
  sends tool results back gets a text answer and ends. ``parallel_tool_calls: false`` keeps one
  call. Arguments are built from the tool's JSON schema, so they validate against it.
* **Limits.** Stop sequences cut the text before the first occurrence (finish ``stop``, and the
  sequence that matched is reported: Anthropic's ``stop_reason: stop_sequence``); ``max_tokens``
  cuts at a token boundary (finish ``length``), tool-call arguments included.
* **Log probabilities.** With ``logprobs``, each token of the text (a token and the spaces after
  it) gets a log probability in [-2, 0) from a hash of the token and the answer, and
  ``top_logprobs`` alternatives below it (the token itself first, then words from the list).
* **Embeddings.** A bag of words: ``shake_256`` of each lower-cased word gives that word's raw
  numbers (so no two processes or Python versions disagree), the words' unit vectors are summed
  and the sum scaled to unit length, so texts sharing words are similar (a semantic cache can be
  shown on the mock). A token-id input is embedded as the text of its ids joined by spaces, and
  counts one token per id.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import operator
import re
import struct
import zlib
from dataclasses import dataclass, replace
from typing import Any

import orjson

from breakwater.core.errors import InvalidRequest
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishEvent,
    FinishReason,
    Message,
    StreamEvent,
    StreamStart,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from breakwater.infra.mock.scalar_instance import WORDS
from breakwater.infra.mock.schema_instance import instance_for

TOKEN = re.compile(r"\w+|[^\w\s]")
MESSAGE_TOKENS = 4
REPLY_TOKENS = 3
IMAGE_TOKENS = 85
#: tokens per streamed text or argument piece
PIECE_TOKENS = 3
DEFAULT_DIMENSIONS = 1536
# the vendors' own ceilings (OpenAI: n <= 128, 2048 embedding inputs; the largest embedding
# models have 3072 dimensions), so a request cannot make the mock spend unbounded work
MAX_CHOICES = 128
MAX_INPUTS = 2048
MAX_DIMENSIONS = 8192
#: the word list repeated to 256 entries, so a hash byte indexes it directly
_BYTE_WORDS = WORDS * (256 // len(WORDS))


def count_tokens(text: str) -> int:
    """The mock's token count for ``text`` (see the module docstring for the rule)."""
    return len(TOKEN.findall(text))


def stable_hash(text: str, salt: int = 0) -> int:
    """A 31-bit hash that is the same in every process (Python's ``hash()`` is salted)."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass"), salt & 0xFFFFFFFF) & 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class ScriptedAnswer:
    """An answer fixed in advance (``answers`` in the mock's config): the text the mock gives a
    request for ``model`` (any, when ``None``) whose last user turn ``matches`` (searched; any,
    when ``None``), every token with log probability ``logprob`` when given."""

    text: str
    model: str | None = None
    matches: re.Pattern[str] | None = None
    logprob: float | None = None

    @classmethod
    def parse(cls, rule: dict[str, Any]) -> ScriptedAnswer:
        """Raises: ValueError, naming what is wrong."""
        unknown = set(rule) - {"text", "model", "matches", "logprob"}
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))} (expected text, model, matches, logprob)")
        text, model, matches, logprob = rule.get("text"), rule.get("model"), rule.get("matches"), rule.get("logprob")
        if not isinstance(text, str):
            raise ValueError("'text' must be a string")
        if model is not None and not isinstance(model, str):
            raise ValueError("'model' must be a string")
        if logprob is not None and (not isinstance(logprob, int | float) or logprob > 0):
            raise ValueError("'logprob' must be a number at most 0")
        try:
            pattern = re.compile(matches) if isinstance(matches, str) else None
        except re.error as exc:
            raise ValueError(f"'matches' is not a regular expression: {exc}") from None
        return cls(text, model, pattern, None if logprob is None else float(logprob))

    def applies(self, request: ChatRequest, prompt: str) -> bool:
        return (self.model is None or self.model == request.model) and (
            self.matches is None or self.matches.search(prompt) is not None
        )


class MockModel:
    """Answers canonical requests deterministically; holds no per-request state.

    Args:
        answers: scripted answers, the first that applies to a request wins (else the usual
            answer from the hash of its prompt).
    """

    __slots__ = ("answers", "default_dimensions")

    def __init__(
        self, *, default_dimensions: int = DEFAULT_DIMENSIONS, answers: tuple[ScriptedAnswer, ...] = ()
    ) -> None:
        self.default_dimensions = default_dimensions
        self.answers = answers

    def chat(self, request: ChatRequest, *, response_id: str = "chatcmpl-mock", created: int = 0) -> ChatResponse:
        """The whole answer to ``request``.

        Raises:
            InvalidRequest: a named tool that was not offered, or a schema nothing validates against.
        """
        if request.n > MAX_CHOICES:
            raise InvalidRequest(f"'n' must be at most {MAX_CHOICES}", param="n")
        messages = request.messages
        last_user = next((m for m in reversed(messages) if m.role == "user"), None)
        prompt = last_user.text() if last_user is not None else "".join(m.text() for m in messages)
        base = stable_hash(prompt, request.seed or 0)
        script = next((a for a in self.answers if a.applies(request, prompt)), None)
        calls = _tools_to_call(request, prompt) if request.tools and script is None else []
        choices = []
        output = 0
        for i in range(request.n):
            choice, tokens = _choice(request, i, stable_hash(str(i), base) if i else base, calls, script)
            output += tokens
            choices.append(choice)
        usage = Usage(input_tokens=input_tokens(request), output_tokens=output)
        return ChatResponse(id=response_id, model=request.model, created=created, choices=choices, usage=usage)

    def stream(
        self, request: ChatRequest, *, response_id: str = "chatcmpl-mock", created: int = 0
    ) -> list[StreamEvent]:
        """The same answer as ``chat``, as the stream events a real model would send."""
        return stream_events(self.chat(request, response_id=response_id, created=created))

    def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """One unit vector per input, ``dimensions`` long (default 1536), from its words (``embedding``)."""
        dims = request.dimensions or self.default_dimensions
        if dims > MAX_DIMENSIONS:
            raise InvalidRequest(f"'dimensions' must be at most {MAX_DIMENSIONS}", param="dimensions")
        ids = request.token_inputs
        texts = request.inputs if ids is None else [" ".join(map(str, t)) for t in ids]
        if len(texts) > MAX_INPUTS:
            raise InvalidRequest(f"at most {MAX_INPUTS} inputs per request", param="input")
        vectors = [embedding(text, dims) for text in texts]
        tokens = sum(count_tokens(t) for t in texts) if ids is None else sum(len(t) for t in ids)
        usage = Usage(input_tokens=tokens)
        return EmbeddingResponse(model=request.model, vectors=vectors, usage=usage)


def input_tokens(request: ChatRequest) -> int:
    """Prompt tokens by the documented rule."""
    total = REPLY_TOKENS
    for m in request.messages:
        total += MESSAGE_TOKENS
        for part in m.content:
            total += count_tokens(part.text) if isinstance(part, TextPart) else IMAGE_TOKENS
        for call in m.tool_calls:
            total += count_tokens(call.name) + count_tokens(call.arguments)
    for tool in request.tools:
        total += count_tokens(tool.name) + count_tokens(tool.description or "")
        total += count_tokens(orjson.dumps(tool.parameters).decode())
    rf = request.response_format
    if rf is not None and rf.schema:
        total += count_tokens(orjson.dumps(rf.schema).decode())
    return total


def embedding(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for ``text``: the sum of its words' vectors (a bag of words:
    texts sharing most of their words are similar, as with a real model, so a semantic cache can
    be shown on the mock), normalised. A text without words is embedded whole."""
    words = _WORD.findall(text.lower()) or [text]
    total = _word_vector(words[0], dimensions)
    for word in words[1:]:
        total = [a + b for a, b in zip(total, _word_vector(word, dimensions), strict=True)]
    norm = math.sqrt(math.fsum(x * x for x in total)) or 1.0
    return [x / norm for x in total]


_WORD = re.compile(r"\w+")


@functools.lru_cache(maxsize=4096)
def _word_vector(word: str, dimensions: int) -> list[float]:
    """One word's raw vector: little-endian int32s from shake_256 of the word, scaled to unit length."""
    raw = struct.unpack(
        f"<{dimensions}i", hashlib.shake_256(word.encode("utf-8", "surrogatepass")).digest(4 * dimensions)
    )
    norm = math.sqrt(math.fsum(float(x) * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def sentence(h: int) -> tuple[str, int]:
    """The reply text for hash ``h`` and its token count: 12 to 31 words from the word list, a
    comma half-way and a full stop (so the count is the words plus two, no regex needed)."""
    count = 12 + h % 20
    # one blake2b call gives every word index, and itemgetter looks them all up in C: this runs
    # on every uncached request, so it avoids a Python-level loop
    digest = hashlib.blake2b(h.to_bytes(4, "little"), digest_size=32).digest()
    words: tuple[str, ...] = operator.itemgetter(*digest[:count])(_BYTE_WORDS)
    half = count // 2
    text = " ".join(words[: half + 1]) + ", " + " ".join(words[half + 1 :]) + "."
    return text[0].upper() + text[1:], count + 2


def filtered(response: ChatResponse) -> ChatResponse:
    """``response`` as a content filter would leave it: the first few tokens, finish ``content_filter``."""
    choices = []
    output = 0
    for c in response.choices:
        text, _ = _truncate(c.message.text(), PIECE_TOKENS)
        message = Message("assistant", [TextPart(text)] if text else [])
        output += count_tokens(text)
        choices.append(Choice(c.index, message, "content_filter"))
    usage = replace(response.usage, output_tokens=output) if response.usage is not None else None
    return replace(response, choices=choices, usage=usage)


def stream_events(response: ChatResponse) -> list[StreamEvent]:
    """A response as stream events: text and argument pieces of a few tokens each."""
    events: list[StreamEvent] = [StreamStart(response.id, response.model, response.created)]
    for c in response.choices:
        entries = c.logprobs["content"] if c.logprobs is not None else None
        for k, piece in enumerate(_pieces(c.message.text())):
            # a piece is PIECE_TOKENS tokens, and so are its logprob entries
            logprobs = None if entries is None else entries[k * PIECE_TOKENS : (k + 1) * PIECE_TOKENS]
            events.append(TextDelta(piece, c.index, logprobs))
        for t, call in enumerate(c.message.tool_calls):
            events.append(ToolCallDelta(t, "", id=call.id, name=call.name, index=c.index))
            for piece in _pieces(call.arguments):
                events.append(ToolCallDelta(t, piece, index=c.index))
        events.append(FinishEvent(c.finish_reason or "stop", c.index, c.stop_sequence))
    if response.usage is not None:
        events.append(UsageEvent(response.usage))
    return events


# --- one choice ---------------------------------------------------------------------------


def _tools_to_call(request: ChatRequest, prompt: str) -> list[tuple[int, Tool]]:
    tools = request.tools
    choice = request.tool_choice
    if not tools or (choice is not None and choice.mode == "none"):
        return []
    if choice is not None and choice.mode == "named":
        for i, tool in enumerate(tools):
            if tool.name == choice.name:
                return [(i, tool)]
        raise InvalidRequest(f"tool_choice names {choice.name!r}, which is not among the tools", param="tool_choice")
    lowered = prompt.lower()
    ends_with_user = bool(request.messages) and request.messages[-1].role == "user"
    mentioned = [(i, t) for i, t in enumerate(tools) if ends_with_user and t.name.lower() in lowered]
    if request.parallel_tool_calls is False:
        mentioned = mentioned[:1]
    if choice is not None and choice.mode == "required":
        return mentioned or [(0, tools[0])]
    return mentioned


def _choice(
    request: ChatRequest, index: int, h: int, calls: list[tuple[int, Tool]], script: ScriptedAnswer | None = None
) -> tuple[Choice, int]:
    """One choice and its completion tokens."""
    if calls:
        choice = _tool_choice(request, index, h, calls)
        return choice, sum(count_tokens(c.name) + count_tokens(c.arguments) for c in choice.message.tool_calls)
    text, tokens = (script.text, count_tokens(script.text)) if script is not None else _text(request, h)
    finish: FinishReason = "stop"
    matched = None
    if request.stop:
        found = [(p, s) for s in request.stop if s and (p := text.find(s)) >= 0]
        if found:
            cut, matched = min(found)
            text, tokens = text[:cut], -1
    if request.max_tokens is not None and request.max_tokens < (tokens if tokens >= 0 else count_tokens(text)):
        text, _ = _truncate(text, request.max_tokens)
        finish, tokens, matched = "length", request.max_tokens, None
    if tokens < 0:
        tokens = count_tokens(text)
    fixed = script.logprob if script is not None else None
    logprobs = _logprobs(text, request.top_logprobs or 0, h, fixed) if request.logprobs else None
    message = Message("assistant", [TextPart(text)] if text else [])
    return Choice(index, message, finish, logprobs, matched), tokens


def _logprobs(text: str, top: int, h: int, fixed: float | None = None) -> dict[str, Any]:
    """OpenAI's ``logprobs`` object for ``text``: one entry per token (``fixed``, or from a hash
    of the token), ``top`` alternatives each."""
    starts = [m.start() for m in TOKEN.finditer(text)]
    bounds = [0, *starts[1:], len(text)] if starts else []
    content = []
    for a, b in itertools.pairwise(bounds):
        token = text[a:b]
        logprob = fixed if fixed is not None else -((stable_hash(token, h) % 2000) + 1) / 1000
        alternatives = [_entry(token, logprob)]
        for j in range(1, top):
            word = _BYTE_WORDS[stable_hash(str(j), h + a) % 256]
            alternatives.append(_entry(word, round(logprob - 0.75 * j, 3)))
        content.append({**_entry(token, logprob), "top_logprobs": alternatives[:top]})
    return {"content": content, "refusal": None}


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def _tool_choice(request: ChatRequest, index: int, h: int, calls: list[tuple[int, Tool]]) -> Choice:
    budget = request.max_tokens
    out: list[ToolCall] = []
    finish: FinishReason = "tool_calls"
    for n, (t, tool) in enumerate(calls):
        try:
            args = orjson.dumps(instance_for(tool.parameters, seed=stable_hash(tool.name, h))).decode()
        except ValueError as exc:
            raise InvalidRequest(f"tools[{t}].function.parameters: {exc}", param=f"tools[{t}]") from None
        call_id = f"call_{stable_hash(tool.name, h):08x}{stable_hash(str(n), h):08x}{index:x}"
        if budget is not None:
            budget -= count_tokens(tool.name)
            args, truncated = _truncate(args, max(budget, 0))
            budget -= count_tokens(args)
            if truncated:
                out.append(ToolCall(call_id, tool.name, args))
                finish = "length"
                break
        out.append(ToolCall(call_id, tool.name, args))
    return Choice(index, Message("assistant", tool_calls=out), finish)


def _text(request: ChatRequest, h: int) -> tuple[str, int]:
    """The content for hash ``h`` and its token count."""
    rf = request.response_format
    if rf is None or rf.type == "text":
        return sentence(h)
    if rf.type == "json_object":
        text = orjson.dumps({"answer": sentence(h)[0]}).decode()
    else:
        try:
            value: Any = instance_for(rf.schema or {}, seed=h)
        except ValueError as exc:
            raise InvalidRequest(f"response_format.json_schema.schema: {exc}", param="response_format") from None
        text = orjson.dumps(value).decode()
    return text, count_tokens(text)


def _truncate(text: str, limit: int) -> tuple[str, bool]:
    """The first ``limit`` tokens of ``text`` (cut at the end of the last one) and whether it was cut."""
    for i, m in enumerate(TOKEN.finditer(text)):
        if i == limit:
            return text[: m.start()].rstrip(), True
    return text, False


def _pieces(text: str) -> list[str]:
    """``text`` split before every ``PIECE_TOKENS``-th token; the pieces join back to ``text``."""
    starts = [m.start() for i, m in enumerate(TOKEN.finditer(text)) if i and i % PIECE_TOKENS == 0]
    bounds = [0, *starts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]
