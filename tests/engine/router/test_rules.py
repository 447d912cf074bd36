"""Routing rules over any request: each condition, their order, the default, and no request that
makes a rule raise."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from breakwater.core.config.branching import Rule
from breakwater.core.types import ChatRequest, ImagePart, Message, ResponseFormat, TextPart, Tool
from breakwater.engine.context import Caller, RequestContext
from breakwater.engine.router.rules import choose, compile_rules

RULES = compile_rules(
    [
        Rule.model_validate(r)
        for r in [
            {"if": {"system_matches": "(?i)legal", "last_user_contains": ["contract"]}, "then": "lawyer"},
            {"if": {"last_user_matches": r"\d{4,}"}, "then": "numbers"},
            {"if": {"system_contains": ["pirate"]}, "then": "fun"},
            {"if": {"response_format": True}, "then": "structured"},
            {"if": {"tools": False, "prompt_tokens_under": 20}, "then": "tiny"},
            {"if": {"header": {"x-any": "*"}}, "then": "flagged"},
        ]
    ]
)


def _request(system: str | None, user: str, **extra: Any) -> ChatRequest:
    messages = [Message("system", [TextPart(system)])] if system else []
    messages.append(Message("user", [TextPart(user)]))
    return ChatRequest(model="r", messages=messages, **extra)


def test_every_condition_of_a_rule_must_hold_and_the_first_rule_wins() -> None:
    legal = _request("You are a legal assistant.", "Review this contract for a loan of 25000 dollars.")
    assert choose(RULES, "base", legal, RequestContext("a")) == (
        "lawyer",
        "rule 1 (last_user_contains, system_matches)",
    )
    not_legal = _request("You are a helpful assistant.", "Review this contract for a loan of 25000 dollars.")
    assert choose(RULES, "base", not_legal, RequestContext("b"))[0] == "numbers"
    # whole words only: "contracts" is not "contract", "pirates" is not "pirate"
    assert (
        choose(
            RULES,
            "base",
            _request("Legal", "contracts please, and let me explain at some length what I need from you today"),
            RequestContext("c"),
        )[0]
        == "base"
    )
    assert choose(RULES, "base", _request("Talk like a Pirate.", "hello there friend"), RequestContext("d"))[0] == "fun"


def test_presence_conditions_headers_and_the_default() -> None:
    fmt = _request(None, "give me data please", response_format=ResponseFormat("json_object"))
    assert choose(RULES, "base", fmt, RequestContext("a"))[0] == "structured"
    assert choose(RULES, "base", _request(None, "hi"), RequestContext("b"))[0] == "tiny"
    tool = Tool("t", None, {"type": "object"})
    assert choose(RULES, "base", _request(None, "hi", tools=[tool]), RequestContext("c")) == ("base", "default")
    flagged = RequestContext("d", headers=[(b"x-any", b"")])
    long = _request(None, "a question long enough to be over twenty tokens by the byte estimate, surely")
    assert choose(RULES, "base", long, flagged)[0] == "flagged"
    assert choose(RULES, "base", long, RequestContext("e")) == ("base", "default")


text = st.text(max_size=60)
part = st.one_of(text.map(TextPart), st.builds(ImagePart, text, st.none()))
message = st.builds(
    Message, st.sampled_from(["system", "developer", "user", "assistant", "tool", ""]), st.lists(part, max_size=3)
)
header = st.tuples(st.binary(max_size=12), st.binary(max_size=12))


@settings(max_examples=300, deadline=None)
@given(
    messages=st.lists(message, max_size=5),
    tools=st.lists(st.builds(Tool, text, st.none(), st.just({})), max_size=2),
    fmt=st.none() | st.builds(ResponseFormat, st.sampled_from(["text", "json_object", "json_schema"])),
    tags=st.dictionaries(text, text, max_size=3),
    headers=st.lists(header, max_size=4),
)
def test_no_request_makes_a_rule_raise(
    messages: list[Message], tools: list[Tool], fmt: ResponseFormat | None, tags: dict[str, str], headers: Any
) -> None:
    request = ChatRequest(model="r", messages=messages, tools=tools, response_format=fmt)
    ctx = RequestContext("p", caller=Caller(tags=tags), headers=headers)
    branch, why = choose(RULES, "base", request, ctx)
    assert branch in {"lawyer", "numbers", "fun", "structured", "tiny", "flagged", "base"} and why
