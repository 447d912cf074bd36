"""Every assertion type, passing and failing, with ``not-``, weights and a test threshold; a
suite's mistakes are refused with their path."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from breakwater.engine.evals.asserts import (
    MODEL_TYPES,
    TYPES,
    Output,
    SuiteError,
    grade,
    levenshtein,
    parse_assertion,
    verdict,
)

ANSWER = 'Sure. The capital is Paris. {"city": "Paris", "population": 2102650} Done.'

# (assertion, passes on ANSWER)
CASES: list[tuple[dict[str, Any], bool]] = [
    ({"type": "equals", "value": ANSWER}, True),
    ({"type": "equals", "value": "Paris"}, False),
    ({"type": "contains", "value": "Paris"}, True),
    ({"type": "contains", "value": "paris"}, False),
    ({"type": "icontains", "value": "PARIS"}, True),
    ({"type": "icontains", "value": "Lyon"}, False),
    ({"type": "contains-any", "value": ["Lyon", "Paris"]}, True),
    ({"type": "contains-any", "value": ["Lyon", "Nice"]}, False),
    ({"type": "icontains-any", "value": ["LYON", "PARIS"]}, True),
    ({"type": "contains-all", "value": ["Paris", "Done"]}, True),
    ({"type": "contains-all", "value": ["Paris", "Lyon"]}, False),
    ({"type": "icontains-all", "value": ["paris", "done"]}, True),
    ({"type": "starts-with", "value": "Sure."}, True),
    ({"type": "starts-with", "value": "Paris"}, False),
    ({"type": "regex", "value": r"capital is [A-Z]\w+"}, True),
    ({"type": "regex", "value": r"^\d+$"}, False),
    ({"type": "is-json"}, False),
    ({"type": "contains-json"}, True),
    ({"type": "contains-json", "value": {"type": "object", "required": ["city"]}}, True),
    ({"type": "contains-json", "value": {"type": "object", "required": ["country"]}}, False),
    ({"type": "levenshtein", "value": ANSWER.replace("Paris", "Pars", 1)}, True),
    ({"type": "levenshtein", "value": "Paris", "threshold": 3}, False),
    ({"type": "cost", "threshold": 0.01}, True),
    ({"type": "cost", "threshold": 0.0001}, False),
    ({"type": "latency", "threshold": 500}, True),
    ({"type": "latency", "threshold": 100}, False),
    ({"type": "perplexity", "threshold": 1.5}, True),
    ({"type": "perplexity", "threshold": 1.01}, False),
    ({"type": "json-schema", "value": {"type": "object"}}, False),
    ({"type": "is-valid-openai-tools-call"}, True),
    ({"type": "is-valid-openai-tools-call", "value": [{"type": "function", "function": {"name": "other"}}]}, False),
]
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
OUTPUT = Output(
    ANSWER,
    cost_usd=0.002,
    latency_ms=320.0,
    logprobs=[-0.1, -0.2, -0.3],
    tool_calls=[{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}],
    tools=[WEATHER],
)


@pytest.mark.parametrize(("raw", "passes"), CASES, ids=[f"{c[0]['type']}-{c[1]}" for c in CASES])
def test_each_type_passes_and_fails(raw: dict[str, Any], passes: bool) -> None:
    result = grade(parse_assertion(raw, "assert[0]"), OUTPUT)
    assert result.passed is passes and result.score == (1.0 if passes else 0.0)
    negated = grade(parse_assertion({**raw, "type": "not-" + raw["type"]}, "assert[0]"), OUTPUT)
    assert negated.passed is not passes and negated.reason.startswith("not (")


def test_every_type_is_covered() -> None:
    assert {raw["type"] for raw, _ in CASES} == set(TYPES)
    assert not set(TYPES) & set(MODEL_TYPES)


def test_json_outputs() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert grade(parse_assertion({"type": "is-json", "value": schema}, "a"), Output('{"n": 3}')).passed
    assert not grade(parse_assertion({"type": "is-json", "value": schema}, "a"), Output('{"n": "3"}')).passed
    assert grade(parse_assertion({"type": "equals", "value": {"n": 3}}, "a"), Output('{ "n" : 3 }')).passed
    assert not grade(parse_assertion({"type": "equals", "value": {"n": 3}}, "a"), Output("n=3")).passed
    # a brace inside a string does not end the embedded object early
    assert grade(parse_assertion({"type": "contains-json"}, "a"), Output('see {"a": "}{", "b": [1]} here')).passed


def test_tool_calls_are_checked_against_the_offered_schemas() -> None:
    check = parse_assertion({"type": "is-valid-openai-tools-call"}, "a")

    def called(arguments: str, name: str = "weather") -> Output:
        call = {"id": "c", "type": "function", "function": {"name": name, "arguments": arguments}}
        return Output("", tool_calls=[call], tools=[WEATHER])

    assert grade(check, called('{"city": "Oslo"}')).passed
    assert "do not satisfy" in grade(check, called('{"town": "Oslo"}')).reason
    assert "not JSON" in grade(check, called("{city")).reason
    assert "not offered" in grade(check, called("{}", name="stock")).reason
    assert "no tool calls" in grade(check, Output("text", tools=[WEATHER])).reason
    assert "no tools" in grade(check, Output("text")).reason
    schema = parse_assertion({"type": "json-schema", "value": WEATHER["function"]["parameters"]}, "a")
    assert grade(schema, Output('{"city": "Oslo"}')).passed and not grade(schema, Output("{}")).passed


def test_missing_measurements_fail() -> None:
    bare = Output("text")
    for raw in (
        {"type": "cost", "threshold": 1},
        {"type": "latency", "threshold": 1},
        {"type": "perplexity", "threshold": 9},
    ):
        result = grade(parse_assertion(raw, "a"), bare)
        assert not result.passed and "no " in result.reason


def test_weights_and_a_test_threshold() -> None:
    assertions = [
        parse_assertion({"type": "contains", "value": "Paris", "weight": 3}, "a"),
        parse_assertion({"type": "contains", "value": "Lyon"}, "b"),
    ]
    strict = verdict(assertions, OUTPUT)
    assert not strict.passed and strict.score == pytest.approx(0.75)
    assert verdict(assertions, OUTPUT, threshold=0.7).passed
    assert not verdict(assertions, OUTPUT, threshold=0.8).passed
    assert verdict([parse_assertion({"type": "contains", "value": "Lyon", "weight": 0}, "a")], OUTPUT, 0.5).score == 1.0


@pytest.mark.parametrize(
    ("raw", "path", "says"),
    [
        ("contains", "t.assert[1]", "a mapping"),
        ({"value": "x"}, "t.assert[1].type", "required"),
        ({"type": "javascript", "value": "1"}, "t.assert[1].type", "unsupported assertion type 'javascript'"),
        ({"type": "llm-rubric", "value": ["polite"]}, "t.assert[1].value", "a string"),
        ({"type": "similar", "value": "x", "threshold": 2}, "t.assert[1].threshold", "between 0 and 1"),
        ({"type": "json-schema"}, "t.assert[1].value", "required"),
        ({"type": "is-valid-openai-tools-call", "value": "x"}, "t.assert[1].value", "a list of OpenAI tools"),
        ({"type": "contains", "value": ["a"]}, "t.assert[1].value", "a string"),
        ({"type": "contains-any", "value": "a"}, "t.assert[1].value", "a list of strings"),
        ({"type": "regex", "value": "("}, "t.assert[1].value", "not a regular expression"),
        ({"type": "is-json", "value": {"type": 3}}, "t.assert[1].value", "not a valid JSON schema"),
        ({"type": "cost"}, "t.assert[1].threshold", "required"),
        ({"type": "contains", "value": "a", "weight": -1}, "t.assert[1].weight", "at least 0"),
        ({"type": "contains", "value": "a", "threshold": "high"}, "t.assert[1].threshold", "a number"),
        ({"type": "contains", "value": "a", "provider": "x"}, "t.assert[1].provider", "not a supported"),
        ({"type": "equals"}, "t.assert[1].value", "required"),
    ],
)
def test_a_suite_s_mistakes_name_their_path(raw: Any, path: str, says: str) -> None:
    with pytest.raises(SuiteError) as info:
        parse_assertion(raw, "t.assert[1]")
    assert info.value.path == path and says in str(info.value)


@given(st.text(max_size=30), st.text(max_size=30))
def test_levenshtein_is_a_distance(a: str, b: str) -> None:
    d = levenshtein(a, b)
    assert d == levenshtein(b, a) and (d == 0) == (a == b) and abs(len(a) - len(b)) <= d <= max(len(a), len(b))


@given(st.text(max_size=200))
def test_no_output_makes_a_grader_raise(text: str) -> None:
    output = Output(text, cost_usd=None, latency_ms=None, logprobs=None)
    for raw, _ in CASES:
        result = grade(parse_assertion(raw, "a"), output)
        assert result.score in (0.0, 1.0) and isinstance(result.passed, bool)
    assert math.isfinite(verdict([parse_assertion(CASES[0][0], "a")], output).score)
