"""Canonical request, response, stream-event and usage types.

Every wire protocol (OpenAI, Anthropic, Gemini) is translated to and from these types, so the
engine and its policies see one shape. The shape follows OpenAI's chat completions closely,
because that is the most common ingress and the richest parameter set, but content is always
a list of parts and tool calls are always a list, so translators never branch on "str or list".

Usage is normalised to OpenAI's meaning: ``input_tokens`` counts *all* prompt tokens, including
the ones read from or written to a prompt cache; ``cached_input_tokens`` and
``cache_creation_input_tokens`` are subsets of it. Anthropic reports the three separately, so its
translators add them up on the way in and subtract on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "developer", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]
ToolChoiceMode = Literal["auto", "none", "required", "named"]
ResponseFormatType = Literal["text", "json_object", "json_schema"]


#: Anthropic's prompt-cache breakpoint (``{"type": "ephemeral", "ttl": "5m"}``), kept as the client
#: sent it. Only the Anthropic wire writes it back; other wires drop it and say so (``cache_control``
#: in ``x-breakwater-dropped-params``).
CacheControl = dict[str, Any]


@dataclass(slots=True)
class TextPart:
    text: str
    cache_control: CacheControl | None = None


@dataclass(slots=True)
class ImagePart:
    """An image given by URL; base64 images travel as ``data:<mime>;base64,...`` URLs."""

    url: str
    detail: str | None = None
    cache_control: CacheControl | None = None


ContentPart = TextPart | ImagePart


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # the JSON text of the arguments, exactly as the model produced it
    cache_control: CacheControl | None = None


@dataclass(slots=True)
class Message:
    role: Role
    content: list[ContentPart] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    #: a tool message's breakpoint (Anthropic's ``tool_result`` block carries its own)
    cache_control: CacheControl | None = None

    def text(self) -> str:
        """The concatenated text parts (images are skipped)."""
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


@dataclass(slots=True)
class Tool:
    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    strict: bool | None = None
    cache_control: CacheControl | None = None


@dataclass(slots=True)
class ToolChoice:
    mode: ToolChoiceMode
    name: str | None = None


@dataclass(slots=True)
class ResponseFormat:
    type: ResponseFormatType
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass(slots=True)
class PromptReference:
    """A request's reference to a prompt of the registry (docs/prompts.md), from its ``prompt`` field.

    ``name`` is ``None`` when the request gives only variables for the prompt its route pins;
    ``version`` is ``None`` for the prompt's current version.
    """

    name: str | None
    version: int | None
    variables: dict[str, Any]


@dataclass(slots=True)
class ResponsesBody:
    """A Responses API body kept to go to an upstream that serves OpenAI's ``/responses`` as sent
    (``providers/openai_responses_forward.py``).

    ``body`` is the client's, with a stored conversation's items before its own in ``input`` and
    no ``previous_response_id`` (the gateway keeps conversations). ``messages`` is the canonical
    message list the body stands for: a stage that changes the conversation makes a new list, so
    a request whose ``messages`` are no longer this one is translated instead. ``hints`` are the
    extra parameters that change no answer (``truncation``, a ``reasoning`` item...): dropped and
    listed where the request is translated, whatever the route says.
    """

    body: dict[str, Any]
    messages: list[Message]
    hints: frozenset[str] = frozenset()


@dataclass(slots=True)
class ChatRequest:
    """A chat call in canonical form.

    ``raw`` keeps the client's original OpenAI body so an OpenAI-to-OpenAI call can forward
    fields this model does not know about untouched (the fast path).
    """

    model: str
    messages: list[Message]
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    n: int = 1
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    #: OpenAI's ``metadata`` (string pairs): attribution tags for the ledger, like ``x-breakwater-tags``
    metadata: dict[str, str] | None = None
    #: Anthropic's top-level ``cache_control`` (a breakpoint on the last cacheable block)
    cache_control: CacheControl | None = None
    #: some part of the request carries a ``cache_control`` breakpoint (set by the decoders, so
    #: no request is walked to find out)
    cache_breakpoints: bool = False
    #: client fields and content-part types the canonical form does not model, e.g.
    #: ``reasoning_effort`` or ``messages[0].content[1].type=input_audio``; only an upstream
    #: that receives the raw body (the OpenAI fast path) can honour them
    extra_params: list[str] = field(default_factory=list)
    #: the client's cache directives sent in the body (``breakwater_cache``), for SDKs that
    #: cannot set the ``x-breakwater-cache`` header; never forwarded upstream
    cache_directive: str | None = None
    #: a prompt of the registry to render before the messages (the ``prompt`` body field); the
    #: prompts stage consumes it (and the ``prompt`` entry of ``extra_params``): a reference
    #: nothing renders is an unsupported parameter like any other
    prompt: PromptReference | None = None
    raw: dict[str, Any] | None = None
    #: the client's legacy completions body (``POST /v1/completions``), for a deployment whose
    #: upstream serves that endpoint; elsewhere the request is answered as the chat it maps to
    completion: dict[str, Any] | None = None
    #: the client's Responses body (``POST /v1/responses``), for a deployment whose upstream serves
    #: OpenAI's ``/responses``; elsewhere the request is answered as the chat it maps to
    responses: ResponsesBody | None = None

    def used_params(self) -> list[str]:
        """Names (OpenAI spelling) of the optional parameters this request actually sets.

        Adapters compare this list with what their upstream can honour; a parameter left at
        its neutral value (``n=1``, no tools) is not "used".
        """
        used: list[str] = []
        for name in _OPTIONAL_SCALARS:
            if getattr(self, name) is not None:
                used.append(name)
        if self.stop:
            used.append("stop")
        if self.n != 1:
            used.append("n")
        if self.tools:
            used.append("tools")
        if self.tool_choice is not None:
            used.append("tool_choice")
        if self.parallel_tool_calls is not None:
            used.append("parallel_tool_calls")
        if self.response_format is not None and self.response_format.type != "text":
            used.append("response_format")
        if self.user is not None:
            used.append("user")
        if self.cache_breakpoints:
            used.append("cache_control")
        used.extend(self.extra_params)
        return used


_OPTIONAL_SCALARS = (
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
)


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class Choice:
    index: int
    message: Message
    finish_reason: FinishReason | None
    #: OpenAI's ``logprobs`` object (``{"content": [...]}``) when the client asked and the upstream gave
    logprobs: Any = None
    #: the stop sequence that ended the answer, when the upstream says which (Anthropic, the mock, vLLM)
    stop_sequence: str | None = None
    #: the model's refusal message instead of an answer (OpenAI's ``message.refusal``)
    refusal: str | None = None


@dataclass(slots=True)
class ChatResponse:
    """A whole response. ``raw_body`` is the upstream's bytes when they may go out untouched:
    a ``chat.completion`` object, or with ``raw_kind`` ``"responses"`` a Response object of
    OpenAI's ``/responses`` (a forwarded Responses request)."""

    id: str
    model: str
    created: int
    choices: list[Choice]
    usage: Usage | None = None
    raw_body: bytes | None = None
    raw_kind: Literal["chat", "responses"] = "chat"


# --- streaming -------------------------------------------------------------------------------
# A stream is a sequence of these events. Translators turn an upstream stream into events and
# events into the client's stream format; each event carries the choice index it belongs to.


@dataclass(slots=True)
class StreamStart:
    id: str
    model: str
    created: int


@dataclass(slots=True)
class TextDelta:
    text: str
    index: int = 0
    #: OpenAI-shaped logprob entries (``{"token", "logprob", "bytes", "top_logprobs"}``) for this piece
    logprobs: list[dict[str, Any]] | None = None


@dataclass(slots=True)
class ToolCallDelta:
    """A piece of one tool call; ``id`` and ``name`` arrive on the first piece only."""

    tool_index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None
    index: int = 0


@dataclass(slots=True)
class FinishEvent:
    reason: FinishReason
    index: int = 0
    stop_sequence: str | None = None


@dataclass(slots=True)
class UsageEvent:
    usage: Usage


@dataclass(slots=True)
class PassthroughChunk:
    """An upstream OpenAI chunk forwarded byte-for-byte on the fast path.

    Its usage and finish reasons are read out so accounting works without re-encoding it.
    """

    data: bytes
    usage: Usage | None = None
    finish_reasons: list[FinishReason] = field(default_factory=list)
    #: the text it adds to choice 0's content, and whether a choice's delta has a ``refusal``
    #: (read from the one parse the adapter makes: the refusal detector needs no other)
    text: str = ""
    refusal: bool = False
    #: the text it adds elsewhere: another choice's content (keyed by its index), a tool call's
    #: arguments (keyed by ``(choice, tool)``); empty for most chunks (one choice, no tools)
    others: tuple[tuple[object, str], ...] = ()
    #: the SSE event name of a Responses API event (a forwarded Responses stream: ``data`` is its
    #: JSON); ``None`` for a chat completions chunk
    event: str | None = None


StreamEvent = StreamStart | TextDelta | ToolCallDelta | FinishEvent | UsageEvent | PassthroughChunk


# --- embeddings ------------------------------------------------------------------------------


@dataclass(slots=True)
class EmbeddingRequest:
    """Texts to embed, or token ids (OpenAI's ``input: [[15339, 1917]]``, what LangChain sends).

    With token ids, ``inputs`` is empty and ``token_inputs`` holds one list per input; the
    engine decodes them to text for an upstream that takes only text.
    """

    model: str
    inputs: list[str]
    dimensions: int | None = None
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None
    raw: dict[str, Any] | None = None
    token_inputs: list[list[int]] | None = None


@dataclass(slots=True)
class EmbeddingResponse:
    model: str
    vectors: list[list[float]]
    usage: Usage
    raw_body: bytes | None = None
