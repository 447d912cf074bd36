"""Fault grammar, schedule validation, and schedules by rate and time window."""

from __future__ import annotations

import random
from typing import Any

import pytest

from breakwater.infra.clock import SystemRandom
from breakwater.infra.mock.faults import LONG_SLEEP, Faults, FaultSchedule, parse_faults, validate_faults
from breakwater.infra.mock.service import MockService
from tests.infra.mock.harness import FakeClock, call

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("status=503", Faults(status=503)),
        ("status=429;retry_after=2", Faults(status=429, retry_after=2.0)),
        ("latency=150", Faults(latency=0.15)),
        ("ttft=500", Faults(ttft=0.5)),
        ("token_delay=20", Faults(token_delay=0.02)),
        ("timeout", Faults(timeout=True)),
        ("stall_after=3", Faults(stall_after=3)),
        ("cut_after=3", Faults(cut_after=3)),
        ("reset", Faults(reset=True)),
        ("reset_after=0", Faults(reset_after=0)),
        ("malformed", Faults(malformed=True)),
        ("context_length", Faults(context_length=True)),
        ("content_filter", Faults(content_filter="output")),
        ("content_filter=prompt", Faults(content_filter="prompt")),
        ("status=529", Faults(status=529)),
        (" Latency = 100 , ttft=50 , token_delay=5 ", Faults(latency=0.1, ttft=0.05, token_delay=0.005)),
        ("status=429, retry_after=0.5", Faults(status=429, retry_after=0.5)),
    ],
)
def test_grammar(spec: str, expected: Faults) -> None:
    """Each documented fault spelling parses to the intended faults (ms become seconds)."""
    assert parse_faults(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no fault given"),
        ("explode", "unknown fault 'explode'"),
        ("status=200", "from 400 to 599"),
        ("status=abc", "from 400 to 599"),
        ("latency=-5", "milliseconds >= 0"),
        ("latency=fast", "milliseconds >= 0"),
        ("latency", "needs a value"),
        ("timeout=3", "takes no value"),
        ("cut_after=two", "whole number"),
        ("retry_after=2", "goes with a status"),
        ("status=500,status=503", "given twice"),
        ("content_filter=maybe", "content_filter=prompt"),
    ],
)
def test_grammar_errors(spec: str, message: str) -> None:
    """A wrong spec raises ValueError naming what is wrong."""
    with pytest.raises(ValueError, match=message):
        parse_faults(spec)


def test_header_overrides_schedule() -> None:
    """Merging keeps the base's faults and lets the later one win where both set a field."""
    merged = parse_faults("status=503,latency=10").merged(parse_faults("status=429"))
    assert merged == Faults(status=429, latency=0.01)


def test_valid_rules_have_no_problems() -> None:
    """Well-formed rules of every kind validate cleanly."""
    rules = [
        {"fault": "status=503", "rate": 0.3},
        {"fault": "latency=200", "from_s": 10, "to_s": 20},
        {"fault": "cut_after=2", "paths": ["/v1/chat/*"], "wire": "openai"},
        {"fault": "status=529", "wire": ["anthropic"], "paths": "/v1/messages"},
    ]
    assert validate_faults(rules) == []
    assert validate_faults([]) == []
    assert validate_faults(None) == []


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ("status=503", "faults: expected a list"),
        (["status=503"], "faults[0]: expected a mapping"),
        ([{"rate": 0.5}], "faults[0].fault: required"),
        ([{"fault": "status=9000"}], "faults[0].fault: status must be"),
        ([{"fault": "reset", "rate": 1.5}], "faults[0].rate: expected a number from 0 to 1"),
        ([{"fault": "reset", "rate": "often"}], "faults[0].rate: expected a number >= 0"),
        ([{"fault": "reset", "from_s": 20, "to_s": 10}], "faults[0].to_s: must be greater than from_s"),
        ([{"fault": "reset", "paths": ["v1/chat"]}], "faults[0].paths: expected paths starting with '/'"),
        ([{"fault": "reset", "wire": "cohere"}], "faults[0].wire: expected one of openai, anthropic, gemini"),
        ([{"fault": "reset", "probability": 0.1}], "faults[0]: unknown key 'probability'"),
        ([{"fault": "reset"}, {"fault": "nope"}], "faults[1].fault: unknown fault 'nope'"),
    ],
)
def test_bad_rules_are_reported(rules: Any, problem: str) -> None:
    """Each bad rule is reported with its index, key and what was expected."""
    problems = validate_faults(rules)
    assert any(p.startswith(problem) for p in problems), problems


def test_bad_rules_reject_construction(clock: FakeClock) -> None:
    """A schedule with problems cannot be built: ValueError lists every problem."""
    with pytest.raises(ValueError, match=r"faults\[0\]\.rate.*\n.*faults\[1\]\.fault"):
        FaultSchedule([{"fault": "reset", "rate": 2}, {"fault": "bogus"}], clock, SystemRandom(1))


async def test_rate_gives_the_exact_seeded_count(clock: FakeClock) -> None:
    """With a seeded random source, a 30% rule fails exactly as many of 1000 requests as the seed dictates."""
    service = MockService(clock, SystemRandom(42), [{"fault": "status=503", "rate": 0.3}])
    statuses = [(await call(service, "/v1/chat/completions", CHAT))[0].status for _ in range(1000)]
    draws = random.Random(42)
    expected = sum(draws.random() < 0.3 for _ in range(1000))
    assert statuses.count(503) == expected
    assert statuses.count(200) == 1000 - expected
    assert 250 < expected < 350


async def test_time_window(clock: FakeClock) -> None:
    """A from_s/to_s rule applies only inside [from_s, to_s) seconds after the mock started."""
    service = MockService(clock, SystemRandom(1), [{"fault": "status=503", "from_s": 10, "to_s": 20}])
    seen = []
    for t in (0, 9.99, 10, 15, 19.99, 20, 30):
        clock.now = t
        seen.append((await call(service, "/v1/chat/completions", CHAT))[0].status)
    assert seen == [200, 200, 503, 503, 503, 200, 200]


async def test_path_and_wire_filters(clock: FakeClock) -> None:
    """Rules with paths or wire only touch matching requests."""
    rules: list[dict[str, Any]] = [
        {"fault": "status=500", "paths": ["/v1/embeddings"]},
        {"fault": "status=529", "wire": "anthropic"},
    ]
    service = MockService(clock, SystemRandom(1), rules)
    assert (await call(service, "/v1/chat/completions", CHAT))[0].status == 200
    assert (await call(service, "/v1/embeddings", {"model": "e", "input": "x"}))[0].status == 500
    messages = {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    assert (await call(service, "/v1/messages", messages))[0].status == 529


async def test_header_wins_over_schedule(clock: FakeClock) -> None:
    """A request's x-mock-fault header overrides the schedule's status for that request."""
    service = MockService(clock, SystemRandom(1), [{"fault": "status=503"}])
    reply, _ = await call(service, "/v1/chat/completions", CHAT, headers={"x-mock-fault": "status=429"})
    assert reply.status == 429


async def test_schedule_delays_use_the_clock(clock: FakeClock) -> None:
    """Scheduled latency sleeps on the injected clock, so drills are repeatable and tests instant."""
    service = MockService(clock, SystemRandom(1), [{"fault": "latency=250"}])
    reply, _ = await call(service, "/v1/chat/completions", CHAT)
    assert reply.status == 200
    assert clock.sleeps == [0.25]
    assert LONG_SLEEP >= 3600
