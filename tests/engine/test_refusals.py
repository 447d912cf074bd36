"""The refusal detector: the shipped patterns in each language (and what they leave alone), only
the answer's opening searched, the providers' own signals, streams through a tap."""

from __future__ import annotations

import orjson
import pytest

from breakwater.core.config import parse_config
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    FinishEvent,
    Message,
    PassthroughChunk,
    TextDelta,
    TextPart,
)
from breakwater.engine.context import RequestContext
from breakwater.engine.refusals.detector import RefusalDetector, RefusalTap, literal_opening
from breakwater.engine.refusals.patterns import DEFAULT_PATTERNS
from breakwater.providers.base import Target
from breakwater.providers.openai import OpenAIAdapter, chat_completion
from breakwater.runtime.variants import build_refusal_detector

DETECTOR = RefusalDetector(DEFAULT_PATTERNS, 300)
ADAPTER = OpenAIAdapter()


@pytest.mark.parametrize(
    "text",
    [
        "I can't help with that.",
        "I’m sorry, but I can’t assist with that request.",
        "I am sorry, but I cannot provide that information.",
        "I'm afraid I can't do that.",
        "I must decline this request.",
        "Ich kann dabei nicht helfen.",
        "Es tut mir leid, aber ich kann dabei nicht weiterhelfen.",
        "Ich kann diese Anfrage nicht erfüllen.",
        "Je ne peux pas vous aider avec cela.",
        "Désolé, mais je ne peux pas répondre à cette question.",
        "No puedo ayudarte con eso.",
        "Lo siento, pero no puedo hacer eso.",
    ],
)
def test_refusals_in_each_language(text: str) -> None:
    assert DETECTOR.text(text)


@pytest.mark.parametrize(
    "text",
    [
        "Sure! Here is the recipe you asked for.",
        "I'm sorry for the confusion earlier; the answer is 42.",
        "I can help with that: first, open the settings.",
        "Ich kann Ihnen dabei gerne helfen.",
        "Je peux vous aider.",
        "Claro, puedo ayudarte con eso.",
    ],
)
def test_ordinary_answers_are_not_refusals(text: str) -> None:
    assert not DETECTOR.text(text)


def test_only_the_opening_is_searched() -> None:
    """A refusal phrase quoted deep in a long answer is not a refusal."""
    assert not DETECTOR.text("x" * 300 + " I can't help with that.")
    assert RefusalDetector(DEFAULT_PATTERNS, 400).text("x" * 300 + " I can't help with that.")


def test_configured_patterns_replace_or_add_a_language() -> None:
    """``refusals.patterns`` adds a language, replaces a shipped one of the same name, and with
    ``defaults: false`` stands alone; ``enabled: false`` builds no detector."""

    def detector(section: str) -> RefusalDetector | None:
        config = parse_config(f"refusals: {section}\n")
        return build_refusal_detector(config)

    added = detector(r"{patterns: {it: ['\bnon posso aiutarti']}}")
    assert (
        added is not None and added.text("Mi dispiace, non posso aiutarti.") and added.text("I can't help with that.")
    )
    replaced = detector("{patterns: {en: ['computer says no']}}")
    assert replaced is not None and replaced.text("Computer says no.") and not replaced.text("I can't help with that.")
    assert replaced.text("Ich kann dabei nicht helfen.")
    alone = detector("{defaults: false, patterns: {it: ['non posso']}}")
    assert alone is not None and not alone.text("Ich kann dabei nicht helfen.")
    assert detector("{enabled: false}") is None


def _response(text: str = "", finish: str | None = "stop", refusal: str | None = None) -> ChatResponse:
    choice = Choice(0, Message("assistant", [TextPart(text)] if text else []), finish, refusal=refusal)  # type: ignore[arg-type]
    return ChatResponse("id", "m", 0, [choice])


def test_provider_signals_on_a_whole_answer() -> None:
    """content_filter (Anthropic's refusal, Gemini's SAFETY as the adapters map them) and OpenAI's
    ``message.refusal`` are refusals whatever the text."""
    assert DETECTOR.response(_response("", "content_filter"))
    assert DETECTOR.response(_response("", "stop", refusal="I'm unable to comply."))
    assert not DETECTOR.response(_response("Hello!"))
    assert not DETECTOR.response(ChatResponse("id", "m", 0, []))


def test_the_openai_adapter_keeps_message_refusal() -> None:
    body = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": None, "refusal": "No."}, "finish_reason": "stop"}
        ]
    }
    response = chat_completion(body, orjson.dumps(body), "gpt")
    assert response.choices[0].refusal == "No." and DETECTOR.response(response)


def _tap(batches: list[list[object]]) -> bool | None:
    ctx = RequestContext("r")
    tap = RefusalTap(DETECTOR, ctx)
    for batch in batches:
        tap.batch(batch)  # type: ignore[arg-type]
    tap.end(None)
    return ctx.refused


def test_a_stream_is_checked_through_its_tap() -> None:
    """Text deltas of choice 0 across batches; a content_filter finish; forwarded OpenAI chunks
    with text or a ``refusal`` delta."""
    assert _tap([[TextDelta("I'm sorry, but ")], [TextDelta("I can't help with that.")]]) is True
    assert _tap([[TextDelta("Hello"), TextDelta("I can't help", index=1)]]) is False
    assert _tap([[TextDelta("Hel")], [FinishEvent("content_filter")]]) is True

    def chunks(*deltas: dict[str, object]) -> list[object]:
        """Forwarded chunks as the OpenAI adapter's stream parser makes them (text and refusal read out)."""
        frames = b"".join(
            b"data: " + orjson.dumps({"id": "c", "choices": [{"index": 0, "delta": d}]}) + b"\n\n" for d in deltas
        )
        request = ChatRequest(model="m", messages=[], stream=True, raw={"model": "m"})
        parser = ADAPTER.stream_parser(request, Target("p", "m", "http://h/v1"))
        return [e for e in parser.feed(frames) if isinstance(e, PassthroughChunk)]

    assert _tap([chunks({"content": "I can't "}), chunks({"content": "assist with that."})]) is True
    assert _tap([chunks({"refusal": "I can't do that"})]) is True
    assert _tap([chunks({"content": "Fine", "refusal": None})]) is False


def test_a_long_stream_is_decided_at_max_chars() -> None:
    """The verdict comes once the opening is long enough; later text is not kept."""
    ctx = RequestContext("r")
    tap = RefusalTap(RefusalDetector(DEFAULT_PATTERNS, 20), ctx)
    tap.batch([TextDelta("Sure, here it is: " + "a" * 10)])
    assert ctx.refused is False
    tap.batch([TextDelta(" I can't help with that.")])
    tap.end(None)
    assert ctx.refused is False


@pytest.mark.parametrize(
    ("pattern", "opening"),
    [
        ("i can(?:no|')?t", "i can"),
        ("ab?c", "a"),
        ("a|b", ""),
        ("(x)y", ""),
        (r"\bfoo", ""),
        ("x{2}", ""),
        ("a(b|c)", "a"),
        (r"a\(|b", ""),
        ("a[|]b", "a"),
    ],
)
def test_a_patterns_literal_opening(pattern: str, opening: str) -> None:
    """What every match starts with, where the detector looks for it ("": searched as it is)."""
    assert literal_opening(pattern) == opening


def test_a_pattern_without_a_literal_opening_still_matches() -> None:
    assert RefusalDetector({"x": [r"\bnope\b", "(?:non|nein) merci"]}, 300).text("Well: nope.")
