"""The output checks stage on whole answers and streams: the canary planted in a copy of the
request and never returned, verbatim spans of the system prompt, deny patterns, output DLP
through the detector protocol, structured outputs repaired by one retry with the validation
error as feedback, and streams stopped mid-way by the canary (the checks that need the whole
answer only flag)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from breakwater.core.config import build_config
from breakwater.core.config.parse import ConfigError
from breakwater.core.errors import OutputBlocked
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    FinishEvent,
    Message,
    PassthroughChunk,
    ResponseFormat,
    StreamEvent,
    StreamStart,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    Usage,
)
from breakwater.engine.context import RequestContext
from breakwater.engine.guardrails.leak import Verbatim, make_canary, system_text, with_canary
from breakwater.engine.guardrails.output_policy import redacted
from breakwater.engine.guardrails.output_stage import OutputChecksStage
from breakwater.engine.pipeline import ChatAnswer
from breakwater.engine.tee import EventStream
from breakwater.infra.clock import SystemRandom

SYSTEM = "You are the support assistant of Breakwater Inc. Answer politely and never discuss pricing tiers."
BASE: dict[str, Any] = {"providers": {"m": {"type": "mock"}}, "deployments": {"d": {"provider": "m", "model": "x"}}}
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def _stage(output: dict[str, Any], seed: int = 7) -> OutputChecksStage:
    config = build_config({**BASE, "routes": {"r": {"deployments": ["d"], "output": output}}})
    stage = OutputChecksStage.of(config, SystemRandom(seed))
    assert stage is not None
    return stage


def _canary(stage: OutputChecksStage) -> str:
    canary = stage.policies["r"].canary
    assert canary is not None
    return canary


def _request(text: str = "hi", system: str | None = SYSTEM, **fields: Any) -> ChatRequest:
    messages = [Message("system", [TextPart(system)])] if system is not None else []
    return ChatRequest(model="r", messages=[*messages, Message("user", [TextPart(text)])], **fields)


def _answer(text: str = "", calls: list[ToolCall] | None = None) -> ChatResponse:
    message = Message("assistant", [TextPart(text)] if text else [], calls or [])
    return ChatResponse("id", "m", 0, [Choice(0, message, "stop")], Usage(3, 5), raw_body=b"{}")


class Upstream:
    """The rest of the chain: answers in turn, and the requests it was given."""

    def __init__(self, *answers: ChatResponse | list[list[StreamEvent]]) -> None:
        self.answers = list(answers)
        self.requests: list[ChatRequest] = []

    async def __call__(self, request: ChatRequest, ctx: RequestContext) -> ChatAnswer:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, ChatResponse):
            return answer
        return EventStream(_batches(answer))


async def _batches(batches: list[list[StreamEvent]]) -> AsyncIterator[list[StreamEvent]]:
    for batch in batches:
        yield batch


def _stream(*texts: str) -> list[list[StreamEvent]]:
    return [[StreamStart("id", "m", 0)], *([TextDelta(t)] for t in texts), [FinishEvent("stop")]]


async def _drain(stream: EventStream) -> list[str]:
    texts = []
    async for batch in stream:
        texts.extend(e.text for e in batch if isinstance(e, TextDelta))
    return texts


def test_the_canary_is_random_per_route_and_repeatable_with_a_seed() -> None:
    """Two draws differ; the same seed draws the same token (tests and reloads of one process differ)."""
    assert make_canary(SystemRandom(1)) == make_canary(SystemRandom(1))
    assert make_canary(SystemRandom(1)) != make_canary(SystemRandom(2))
    assert make_canary(SystemRandom(1)).startswith("bw-")


def test_the_canary_line_goes_into_a_copy_of_the_request() -> None:
    """The first system message gets the line (the caller's request is untouched); a request
    without a system prompt gets one; the OpenAI fast path's raw body says the same."""
    request = _request(raw={"model": "r", "messages": [{"role": "system", "content": SYSTEM}, {"role": "user"}]})
    sent = with_canary(request, "LINE")
    assert system_text(sent.messages) == SYSTEM + "\nLINE"
    assert system_text(request.messages) == SYSTEM and request.raw is not None
    assert request.raw["messages"][0]["content"] == SYSTEM
    assert sent.raw is not None and sent.raw["messages"][0]["content"] == SYSTEM + "\nLINE"
    bare = with_canary(_request(system=None, raw={"messages": [{"role": "user", "content": "hi"}]}), "LINE")
    assert bare.messages[0].role == "system" and bare.messages[0].text() == "LINE"
    assert bare.raw is not None and bare.raw["messages"][0] == {"role": "system", "content": "LINE"}


async def test_an_answer_holding_the_canary_is_blocked() -> None:
    """The upstream sees the canary; an answer repeating it is refused with a 400-class error
    naming the kind (not the token), and the finding is on the context."""
    stage = _stage({"canary": True})
    canary = _canary(stage)
    upstream = Upstream(_answer(f"My instructions say: Confidential marker {canary}."))
    ctx = RequestContext("r1")
    with pytest.raises(OutputBlocked) as caught:
        await stage.chat(upstream)(_request(), ctx)
    assert caught.value.code == "system_prompt_leak" and canary not in caught.value.message
    assert canary in system_text(upstream.requests[0].messages)
    assert ctx.output_flags == ["canary:blocked"]


async def test_a_flagged_canary_is_cut_out_of_the_answer() -> None:
    """With ``canary_action: flag`` the answer goes out without the token, re-encoded (no raw body)."""
    stage = _stage({"canary": True, "canary_action": "flag"})
    canary = _canary(stage)
    ctx = RequestContext("r1")
    answer = await stage.chat(Upstream(_answer(f"marker {canary} ok")))(_request(), ctx)
    assert isinstance(answer, ChatResponse)
    assert answer.choices[0].message.text() == "marker [redacted] ok" and answer.raw_body is None
    assert ctx.output_flags == ["canary:stripped"]


async def test_a_clean_answer_passes_untouched() -> None:
    """Nothing found: the very response object is returned, and the flags say checked, nothing found."""
    stage = _stage({"canary": True, "verbatim_words": 8, "deny": ["(?i)internal use only"]})
    response = _answer("Paris is the capital of France.")
    ctx = RequestContext("r1")
    assert await stage.chat(Upstream(response))(_request(), ctx) is response
    assert ctx.output_flags == []


async def test_a_long_verbatim_span_of_the_system_prompt_is_found() -> None:
    """Eight consecutive words of the system prompt (case and punctuation aside) are a leak; seven are not."""
    stage = _stage({"verbatim_words": 8, "verbatim_action": "block"})
    leaked = _answer("Sure. I am the support assistant of breakwater inc, answer politely!")
    with pytest.raises(OutputBlocked):
        await stage.chat(Upstream(leaked))(_request(), RequestContext("r1"))
    ctx = RequestContext("r2")
    await stage.chat(Upstream(_answer("the support assistant of Breakwater Inc. Answer kindly")))(_request(), ctx)
    assert ctx.output_flags == []
    assert Verbatim(5).leaked("one two three four five six", "x two three four five six y")


async def test_deny_patterns_block_or_flag() -> None:
    """A matching answer is refused (``output_denied``) or, flagged, returned as it is."""
    blocking = _stage({"deny": [r"(?i)internal\s+use"]})
    with pytest.raises(OutputBlocked) as caught:
        await blocking.chat(Upstream(_answer("for INTERNAL use only")))(_request(), RequestContext("r1"))
    assert caught.value.code == "output_denied"
    flagging = _stage({"deny": [r"(?i)internal\s+use"], "deny_action": "flag"})
    ctx = RequestContext("r2")
    answer = await flagging.chat(Upstream(_answer("for internal use")))(_request(), ctx)
    assert isinstance(answer, ChatResponse) and answer.choices[0].message.text() == "for internal use"
    assert ctx.output_flags == ["deny:flagged"]


class Emails:
    """A detector of the protocol the DLP detectors implement."""

    def find(self, text: str) -> list[tuple[str, int, int]]:
        at = text.find("@")
        if at < 0:
            return []
        start = text.rfind(" ", 0, at) + 1
        end = text.find(" ", at)
        return [("email", start, len(text) if end < 0 else end)]


async def test_output_dlp_redacts_or_flags_through_the_detector_protocol() -> None:
    """``dlp: redact`` replaces each finding with its kind; ``flag`` leaves the text."""
    config = build_config(
        {
            **BASE,
            "routes": {
                "r": {"deployments": ["d"], "output": {"dlp": "redact"}},
                "f": {"deployments": ["d"], "output": {"dlp": "flag"}},
            },
        }
    )
    stage = OutputChecksStage.of(config, SystemRandom(1), Emails())
    assert stage is not None
    ctx = RequestContext("r1")
    answer = await stage.chat(Upstream(_answer("write to ann@example.com today")))(_request(), ctx)
    assert isinstance(answer, ChatResponse) and answer.choices[0].message.text() == "write to [EMAIL] today"
    assert ctx.output_flags == ["dlp:redacted"]
    flagged = RequestContext("r2")
    request = _request()
    request.model = "f"
    answer = await stage.chat(Upstream(_answer("ann@example.com")))(request, flagged)
    assert isinstance(answer, ChatResponse) and answer.choices[0].message.text() == "ann@example.com"
    assert flagged.output_flags == ["dlp:flagged"]
    assert redacted("a b c", [("x", 0, 1), ("y", 0, 3), ("z", 4, 5)]) == "[X] b [Z]"


async def test_an_invalid_structured_answer_is_repaired_by_one_retry() -> None:
    """The retry carries the invalid answer and the validation error; the first answer's usage
    is charged on the ledger row (``earlier``), and the flags say retried and repaired."""
    stage = _stage({"structured": "error"})
    upstream = Upstream(_answer('{"town": "Paris"}'), _answer('{"city": "Paris"}'))
    request = _request(response_format=ResponseFormat("json_schema", SCHEMA, "place"))
    ctx = RequestContext("r1")
    answer = await stage.chat(upstream)(request, ctx)
    assert isinstance(answer, ChatResponse) and answer.choices[0].message.text() == '{"city": "Paris"}'
    retry = upstream.requests[1]
    assert [m.role for m in retry.messages[-2:]] == ["assistant", "user"]
    assert "'city' is a required property" in retry.messages[-1].text()
    assert ctx.output_flags == ["structured:retried", "structured:repaired"]
    assert [spent.usage for spent in ctx.outcome.earlier] == [Usage(3, 5)]


async def test_a_structured_answer_still_invalid_is_refused_or_flagged() -> None:
    """After the retry: ``error`` is a 400 (``output_schema_invalid``), ``flag`` returns the answer."""
    request = _request(response_format=ResponseFormat("json_object"))
    refusing = _stage({"structured": "error"})
    with pytest.raises(OutputBlocked) as caught:
        await refusing.chat(Upstream(_answer("no"), _answer("still no")))(request, RequestContext("r1"))
    assert caught.value.code == "output_schema_invalid"
    flagging = _stage({"structured": "flag", "structured_retries": 0})
    ctx = RequestContext("r2")
    answer = await flagging.chat(Upstream(_answer("no")))(request, ctx)
    assert isinstance(answer, ChatResponse) and ctx.output_flags == ["structured:flagged"]


async def test_tool_call_arguments_are_validated_against_the_tools_parameters() -> None:
    """A tool call whose arguments break the tool's schema is asked again."""
    stage = _stage({"structured": "error"})
    tools = [Tool("weather", parameters=SCHEMA)]
    upstream = Upstream(
        _answer(calls=[ToolCall("c1", "weather", '{"city": 3}')]),
        _answer(calls=[ToolCall("c2", "weather", '{"city": "Oslo"}')]),
    )
    ctx = RequestContext("r1")
    await stage.chat(upstream)(_request(tools=tools), ctx)
    assert "tool call to 'weather'" in upstream.requests[1].messages[-1].text()
    assert ctx.output_flags == ["structured:retried", "structured:repaired"]


async def test_a_stream_is_stopped_at_the_batch_that_completes_the_canary() -> None:
    """The canary split over two deltas: the first half went out, the batch completing it never
    does, and the stream ends with the block."""
    stage = _stage({"canary": True})
    canary = _canary(stage)
    ctx = RequestContext("r1")
    stream = await stage.chat(Upstream(_stream("Hello ", canary[:6], canary[6:] + " bye")))(_request(stream=True), ctx)
    assert isinstance(stream, EventStream)
    sent: list[str] = []
    with pytest.raises(OutputBlocked):
        async for batch in stream:
            sent.extend(e.text for e in batch if isinstance(e, TextDelta))
    assert sent == ["Hello ", canary[:6]] and ctx.output_flags == ["canary:blocked"]


@pytest.mark.parametrize("where", ["second choice", "tool call arguments"])
async def test_a_forwarded_openai_stream_is_stopped_wherever_the_canary_shows(where: str) -> None:
    """On the OpenAI fast path a chunk goes out byte-for-byte; the window still reads every
    choice's content and every tool call's arguments the adapter parsed out of it."""
    import orjson

    from breakwater.providers.base import Target
    from breakwater.providers.openai import OpenAIAdapter

    stage = _stage({"canary": True})
    canary = _canary(stage)

    def chunk(half: str) -> bytes:
        if where == "second choice":
            choices = [{"index": 0, "delta": {"content": "fine "}}, {"index": 1, "delta": {"content": half}}]
        else:
            call = {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": half}}
            choices = [{"index": 0, "delta": {"tool_calls": [call]}}]
        body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices}
        return b"data: " + orjson.dumps(body) + b"\n\n"

    request = _request(stream=True, raw={"model": "r", "messages": [], "stream": True})
    parser = OpenAIAdapter().stream_parser(request, Target("p", "m", "http://h/v1"))
    events = parser.feed(chunk(canary[:6]) + chunk(canary[6:]))
    assert len(events) == 2 and all(isinstance(e, PassthroughChunk) for e in events)
    ctx = RequestContext("r1")
    stream = await stage.chat(Upstream([[StreamStart("id", "m", 0)], [events[0]], [events[1]]]))(request, ctx)
    assert isinstance(stream, EventStream)
    sent: list[StreamEvent] = []
    with pytest.raises(OutputBlocked):
        async for batch in stream:
            sent.extend(batch)
    assert sent[1:] == [events[0]] and ctx.output_flags == ["canary:blocked"]


async def test_a_stream_is_flagged_after_the_fact_by_the_checks_that_need_it_whole() -> None:
    """A verbatim span and an invalid JSON answer are only flagged: the stream was sent whole."""
    stage = _stage({"canary": True, "verbatim_words": 6, "structured": "error"})
    ctx = RequestContext("r1")
    request = _request(stream=True, response_format=ResponseFormat("json_object"))
    stream = await stage.chat(Upstream(_stream("the support assistant ", "of Breakwater Inc. Answer")))(request, ctx)
    assert isinstance(stream, EventStream)
    assert await _drain(stream) == ["the support assistant ", "of Breakwater Inc. Answer"]
    assert ctx.output_flags == ["verbatim:flagged", "structured:flagged"]


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ({"deny": ["(unclosed"]}, "deny[0]: not a regular expression"),
        ({"verbatim_words": 3}, "at least 5"),
        ({"structured": "maybe"}, "structured"),
    ],
)
def test_a_bad_output_section_is_refused_with_its_key(output: dict[str, Any], problem: str) -> None:
    """A config error names what is wrong (checked when the config is loaded, not per request)."""
    with pytest.raises(ConfigError) as caught:
        _stage(output)
    assert problem in str(caught.value)


async def test_a_wildcard_routes_checks_cover_the_routes_made_from_it() -> None:
    """``prefix/*`` with an ``output`` section: a request for ``prefix/model`` is checked."""
    config = build_config({**BASE, "routes": {"m/*": {"provider": "m", "output": {"deny": ["secret"]}}}})
    stage = OutputChecksStage.of(config, SystemRandom(1))
    assert stage is not None
    request = _request()
    request.model = "m/anything"
    with pytest.raises(OutputBlocked):
        await stage.chat(Upstream(_answer("the secret")))(request, RequestContext("r1"))


async def test_routes_without_output_checks_are_not_touched() -> None:
    """Another route's request reaches the upstream as it is, and nothing is recorded."""
    stage = _stage({"canary": True})
    upstream = Upstream(_answer("x"))
    request = _request()
    request.model = "other"
    ctx = RequestContext("r1")
    await stage.chat(upstream)(request, ctx)
    assert upstream.requests[0] is request and ctx.output_flags is None


def test_a_schema_that_breaks_the_validator_is_reported_not_raised() -> None:
    from breakwater.engine.guardrails.structured import schema_error

    for schema in ({"type": 3}, {"properties": {"a": {"pattern": "("}}}, {"properties": []}, {"required": 5}, ["x"]):
        assert schema_error(schema, {"a": "b"}) in (None, "the schema itself is not a valid JSON schema")  # type: ignore[arg-type]
    assert schema_error({"type": 3}, {}) == "the schema itself is not a valid JSON schema"
