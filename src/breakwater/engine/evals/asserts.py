"""Eval assertions: what an answer must satisfy, in a promptfoo-compatible subset (docs/evals.md).

An assertion is declarative (``{type, value, threshold, weight}``; no code from the suite runs).
Each one grades an ``Output`` to a score in [0, 1] and a pass; a ``not-`` prefix inverts the
pass (and the score). A test's assertions pass when every one passes, or, when the test sets a
``threshold``, when their weighted mean score reaches it.

The deterministic types are graded here (``grade``, ``verdict``). The types that need a model
(``MODEL_TYPES``: ``similar`` by the embedder, ``llm-rubric`` and ``factuality`` by a judge route)
are read here and graded by ``model_graded.evaluate``, which grades both kinds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from breakwater.engine.guardrails.structured import tool_call_error

#: the types graded here (each may take the ``not-`` prefix)
TYPES = (
    "equals",
    "contains",
    "icontains",
    "contains-any",
    "icontains-any",
    "contains-all",
    "icontains-all",
    "starts-with",
    "regex",
    "is-json",
    "contains-json",
    "levenshtein",
    "cost",
    "latency",
    "perplexity",
    "json-schema",
    "is-valid-openai-tools-call",
)
#: the types a model grades (``model_graded.py``)
MODEL_TYPES = ("similar", "llm-rubric", "factuality")
#: every type a suite may name
ALL_TYPES = TYPES + MODEL_TYPES
#: promptfoo's defaults where a threshold is optional
_LEVENSHTEIN_DEFAULT = 5.0


class SuiteError(ValueError):
    """An eval suite that cannot be read; ``path`` says where (``tests[2].assert[0].type``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class Output:
    """What a case produced: the answer's text and what the call cost and took."""

    text: str
    cost_usd: float | None = None
    latency_ms: float | None = None
    #: the answer's tokens' log probabilities, where the provider returned them
    logprobs: Sequence[float] | None = None
    #: the answer's tool calls, OpenAI-shaped (``{id, type, function: {name, arguments}}``)
    tool_calls: Sequence[Mapping[str, Any]] | None = None
    #: the tools the request offered, OpenAI-shaped (``{type, function: {name, parameters}}``)
    tools: Sequence[Mapping[str, Any]] | None = None
    #: what was asked (the rendered prompt), for the judges
    prompt: str = ""


@dataclass(frozen=True, slots=True)
class Assertion:
    type: str
    negate: bool = False
    value: Any = None
    threshold: float | None = None
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Grade:
    """One assertion's verdict on one output."""

    assertion: Assertion
    passed: bool
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """A test's verdict: every assertion's grade, the weighted score, the pass."""

    passed: bool
    score: float
    grades: list[Grade] = field(default_factory=list)


def parse_assertion(raw: Any, path: str) -> Assertion:
    """An assertion from its YAML mapping.

    Raises:
        SuiteError: not a mapping, an unknown or unsupported type, a missing or wrong value.
    """
    if not isinstance(raw, Mapping):
        raise SuiteError(path, "an assertion is a mapping with a 'type'")
    unknown = set(raw) - {"type", "value", "threshold", "weight", "metric", "description"}
    if unknown:
        raise SuiteError(f"{path}.{sorted(unknown)[0]}", "not a supported assertion key")
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise SuiteError(f"{path}.type", "required: the assertion's type")
    negate = kind.startswith("not-")
    base = kind.removeprefix("not-")
    if base not in ALL_TYPES:
        raise SuiteError(f"{path}.type", f"unsupported assertion type {kind!r} (supported: {', '.join(ALL_TYPES)})")
    threshold = raw.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)):
        raise SuiteError(f"{path}.threshold", "must be a number")
    weight = raw.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0 or not math.isfinite(weight):
        raise SuiteError(f"{path}.weight", "must be a number of at least 0")
    value = raw.get("value")
    _check_value(base, value, threshold, path)
    return Assertion(base, negate, value, None if threshold is None else float(threshold), float(weight))


def _check_value(kind: str, value: Any, threshold: Any, path: str) -> None:
    if kind in ("contains-any", "icontains-any", "contains-all", "icontains-all"):
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise SuiteError(f"{path}.value", "must be a list of strings")
    elif kind in ("contains", "icontains", "starts-with", "regex", "levenshtein", "llm-rubric", "factuality"):
        if not isinstance(value, str):
            raise SuiteError(f"{path}.value", "must be a string")
        if kind == "regex":
            try:
                re.compile(value)
            except re.error as exc:
                raise SuiteError(f"{path}.value", f"not a regular expression: {exc}") from None
    elif kind == "equals":
        if value is None:
            raise SuiteError(f"{path}.value", "required: what the output must equal")
    elif kind == "similar":
        if not (
            isinstance(value, str) or (isinstance(value, list) and value and all(isinstance(v, str) for v in value))
        ):
            raise SuiteError(f"{path}.value", "must be a string or a list of strings")
        if threshold is not None and not 0 <= threshold <= 1:
            raise SuiteError(f"{path}.threshold", "must be a similarity between 0 and 1")
    elif kind == "is-valid-openai-tools-call":
        if value is not None and not (isinstance(value, list) and all(isinstance(t, Mapping) for t in value)):
            raise SuiteError(f"{path}.value", "must be a list of OpenAI tools, when given (else the request's)")
    elif kind in ("is-json", "contains-json", "json-schema"):
        if value is not None and not isinstance(value, Mapping):
            raise SuiteError(f"{path}.value", "must be a JSON schema (a mapping), when given")
        if kind == "json-schema" and value is None:
            raise SuiteError(f"{path}.value", "required: the JSON schema the output must satisfy")
        if value is not None:
            import jsonschema  # only for a suite that validates JSON

            try:
                jsonschema.validators.validator_for(value).check_schema(value)
            except jsonschema.SchemaError as exc:
                raise SuiteError(f"{path}.value", f"not a valid JSON schema: {exc.message}") from None
    elif kind in ("cost", "latency", "perplexity") and threshold is None:
        raise SuiteError(f"{path}.threshold", f"required: the largest {kind} that passes")


def grade(assertion: Assertion, output: Output) -> Grade:
    """One assertion's grade of ``output`` (a deterministic type: not one of ``MODEL_TYPES``)."""
    return graded(assertion, _GRADERS[assertion.type](assertion, output))


def graded(assertion: Assertion, result: Graded) -> Grade:
    """The grade from a grader's ``(passed, score, reason)``, inverted for a ``not-`` assertion."""
    passed, score, reason = result
    if assertion.negate:
        passed, score = not passed, 1.0 - score
        reason = f"not ({reason})"
    return Grade(assertion, passed, score, reason)


def verdict(assertions: Sequence[Assertion], output: Output, threshold: float | None = None) -> Verdict:
    """A test's verdict: every assertion passes, or (with ``threshold``) the weighted mean score reaches it."""
    return combine([grade(a, output) for a in assertions], threshold)


def combine(grades: list[Grade], threshold: float | None) -> Verdict:
    """The verdict of a test's grades (see ``verdict``)."""
    total = sum(g.assertion.weight for g in grades)
    score = 1.0 if total == 0 else sum(g.score * g.assertion.weight for g in grades) / total
    if threshold is not None:
        return Verdict(score >= threshold, score, grades)
    return Verdict(all(g.passed for g in grades), score, grades)


# --- the graders: (assertion, output) -> (passed, score, reason) --------------------------------

Graded = tuple[bool, float, str]


def _bool(passed: bool, reason: str) -> Graded:
    return passed, 1.0 if passed else 0.0, reason


def _equals(a: Assertion, o: Output) -> Graded:
    if isinstance(a.value, str):
        return _bool(o.text == a.value, f"output equals {a.value!r}")
    try:
        parsed = orjson.loads(o.text)
    except orjson.JSONDecodeError:
        return _bool(False, "output is not the JSON value expected")
    return _bool(parsed == a.value, "output is the JSON value expected")


def _contains(a: Assertion, o: Output, *, fold: bool = False) -> Graded:
    text, value = (o.text.casefold(), a.value.casefold()) if fold else (o.text, a.value)
    return _bool(value in text, f"output contains {a.value!r}")


def _contains_set(a: Assertion, o: Output, *, fold: bool, every: bool) -> Graded:
    text = o.text.casefold() if fold else o.text
    found = [v for v in a.value if (v.casefold() if fold else v) in text]
    if every:
        missing = [v for v in a.value if v not in found]
        return _bool(not missing, "output contains all of them" if not missing else f"missing {missing!r}")
    return _bool(bool(found), f"output contains {found[0]!r}" if found else "output contains none of them")


def json_values(text: str) -> list[Any]:
    """Every JSON object or array embedded in ``text`` (outermost ones, left to right)."""
    values, i = [], 0
    decoder_starts = [m.start() for m in re.finditer(r"[\[{]", text)]
    for start in decoder_starts:
        if start < i:
            continue
        end = _balanced_end(text, start)
        if end is None:
            continue
        try:
            values.append(orjson.loads(text[start:end]))
            i = end
        except orjson.JSONDecodeError:
            continue
    return values


def _balanced_end(text: str, start: int) -> int | None:
    """Where the bracketed span opened at ``start`` closes (strings taken into account)."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def _schema_ok(schema: Mapping[str, Any] | None, value: Any) -> bool:
    if schema is None:
        return True
    import jsonschema

    return bool(jsonschema.validators.validator_for(schema)(schema).is_valid(value))


def _is_json(a: Assertion, o: Output) -> Graded:
    try:
        value = orjson.loads(o.text)
    except orjson.JSONDecodeError:
        return _bool(False, "output is not valid JSON")
    return _bool(_schema_ok(a.value, value), "output is JSON" + (" valid against the schema" if a.value else ""))


def _json_schema(a: Assertion, o: Output) -> Graded:
    try:
        value = orjson.loads(o.text)
    except orjson.JSONDecodeError:
        return _bool(False, "output is not valid JSON")
    return _bool(_schema_ok(a.value, value), "output is JSON valid against the schema")


def _tools_call(a: Assertion, o: Output) -> Graded:
    """Every tool call names an offered tool and its arguments satisfy that tool's schema."""
    offered = a.value if a.value is not None else o.tools
    if not offered:
        return _bool(False, "no tools to check against (none offered, none in value)")
    if not o.tool_calls:
        return _bool(False, "output has no tool calls")
    schemas: dict[str, Any] = {}
    for tool in offered:
        inner = tool.get("function")
        function: Mapping[str, Any] = inner if isinstance(inner, Mapping) else tool
        if isinstance(function.get("name"), str):
            schemas[function["name"]] = function.get("parameters") or {"type": "object"}
    for call in o.tool_calls:
        function = call.get("function") or {}
        name = function.get("name")
        error = tool_call_error(schemas, name if isinstance(name, str) else "", function.get("arguments") or "{}")
        if error is not None:
            return _bool(False, error)
    return _bool(True, f"{len(o.tool_calls)} valid tool call(s)")


def _contains_json(a: Assertion, o: Output) -> Graded:
    ok = any(_schema_ok(a.value, v) for v in json_values(o.text))
    return _bool(ok, "output contains JSON" + (" valid against the schema" if a.value else ""))


def levenshtein(a: str, b: str) -> int:
    """The edit distance between two strings (insertions, deletions, substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _levenshtein(a: Assertion, o: Output) -> Graded:
    limit = _LEVENSHTEIN_DEFAULT if a.threshold is None else a.threshold
    distance = levenshtein(o.text, a.value)
    return _bool(distance <= limit, f"edit distance {distance} (at most {limit:g})")


def _at_most(name: str, value: float | None, limit: float | None, unit: str) -> Graded:
    if value is None:
        return _bool(False, f"no {name} known for this output")
    assert limit is not None
    return _bool(value <= limit, f"{name} {value:.6g}{unit} (at most {limit:g}{unit})")


def _perplexity(a: Assertion, o: Output) -> Graded:
    if not o.logprobs:
        return _bool(False, "no logprobs for this output (the provider did not return them)")
    value = math.exp(-sum(o.logprobs) / len(o.logprobs))
    return _at_most("perplexity", value, a.threshold, "")


_GRADERS: dict[str, Callable[[Assertion, Output], Graded]] = {
    "equals": _equals,
    "contains": _contains,
    "icontains": lambda a, o: _contains(a, o, fold=True),
    "contains-any": lambda a, o: _contains_set(a, o, fold=False, every=False),
    "icontains-any": lambda a, o: _contains_set(a, o, fold=True, every=False),
    "contains-all": lambda a, o: _contains_set(a, o, fold=False, every=True),
    "icontains-all": lambda a, o: _contains_set(a, o, fold=True, every=True),
    "starts-with": lambda a, o: _bool(o.text.startswith(a.value), f"output starts with {a.value!r}"),
    "regex": lambda a, o: _bool(re.search(a.value, o.text) is not None, f"output matches /{a.value}/"),
    "is-json": _is_json,
    "contains-json": _contains_json,
    "levenshtein": _levenshtein,
    "cost": lambda a, o: _at_most("cost", o.cost_usd, a.threshold, " USD"),
    "latency": lambda a, o: _at_most("latency", o.latency_ms, a.threshold, " ms"),
    "perplexity": _perplexity,
    "json-schema": _json_schema,
    "is-valid-openai-tools-call": _tools_call,
}
