"""Fault injection: what can go wrong, said per request (a header) or on a schedule (config).

The header ``x-mock-fault`` holds one or more faults, separated by commas (``;`` works too,
which reads well for a status and its retry hint)::

    status=503                 reply with that HTTP status and the vendor's error body (400-599)
    status=429;retry_after=2   ... plus retry-after (and OpenAI's retry-after-ms) headers
    latency=150                wait 150 ms before the response head
    ttft=500                   wait 500 ms before the first stream frame
    token_delay=20             wait 20 ms between stream frames
    timeout                    never answer (sleep a day, then drop the connection)
    stall_after=3              send 3 stream frames, then hang like ``timeout``
    cut_after=3                send 3 stream frames, then end without the end marker
    reset                      drop the connection before answering
    reset_after=3              send 3 stream frames, then drop the connection
    malformed                  an invalid JSON body, or a stream frame that is not JSON
    context_length             the vendor's real context-length-exceeded error
    content_filter             the vendor's real content-filter outcome on the output
    content_filter=prompt      ... on the prompt (OpenAI/Azure 400 code content_filter,
                               Gemini promptFeedback.blockReason SAFETY)

A schedule is a list of rules, each a mapping with ``fault`` (the same grammar) and optional
``rate`` (0..1, drawn from the injected RandomSource), ``from_s``/``to_s`` (a window in seconds
since the mock started, by the injected Clock; ``to_s`` excluded), ``paths`` (globs such as
``/v1/chat/*``) and ``wire`` (openai, anthropic, gemini, bedrock, or a list). Every matching rule
applies, in order; the header applies last and wins on conflicts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from fnmatch import fnmatchcase
from typing import Any, Literal

from breakwater.engine.ports import Clock, RandomSource

#: how long "never answer" sleeps; any client gives up long before
LONG_SLEEP = 86_400.0
WIRES = ("openai", "anthropic", "gemini", "bedrock")
_RULE_KEYS = ("fault", "rate", "from_s", "to_s", "paths", "wire")
_FLAGS = ("timeout", "reset", "malformed", "context_length")
_MILLIS = ("latency", "ttft", "token_delay")
_COUNTS = ("stall_after", "cut_after", "reset_after")
_NAMES = ("status", "retry_after", *_MILLIS, *_FLAGS, *_COUNTS, "content_filter")


class ConnectionReset(Exception):
    """Raised by the mock service (or its stream) when a fault says the connection drops.

    The transports translate it: the ASGI app lets the server close the socket, the in-process
    sender raises ``UpstreamConnectionError``.
    """


@dataclass(frozen=True, slots=True)
class Faults:
    """The faults for one request. Delays are in seconds; None / False means "not injected"."""

    status: int | None = None
    retry_after: float | None = None
    latency: float | None = None
    ttft: float | None = None
    token_delay: float | None = None
    timeout: bool = False
    stall_after: int | None = None
    cut_after: int | None = None
    reset: bool = False
    reset_after: int | None = None
    malformed: bool = False
    context_length: bool = False
    content_filter: Literal["output", "prompt"] | None = None

    def merged(self, other: Faults) -> Faults:
        """``self`` overridden by whatever ``other`` sets."""
        changes = {f.name: getattr(other, f.name) for f in fields(other) if getattr(other, f.name) not in (None, False)}
        return replace(self, **changes) if changes else self


NO_FAULTS = Faults()


def parse_faults(text: str) -> Faults:
    """Parse the fault grammar (the ``x-mock-fault`` header or a rule's ``fault``).

    Raises:
        ValueError: naming the first item that is wrong and what was expected.
    """
    values: dict[str, Any] = {}
    for item in re.split(r"[,;]", text):
        item = item.strip()
        if not item:
            continue
        name, eq, raw = item.partition("=")
        name, raw = name.strip().lower(), raw.strip()
        if name not in _NAMES:
            raise ValueError(f"unknown fault {name!r} (expected one of: {', '.join(_NAMES)})")
        if name in values:
            raise ValueError(f"{name!r} is given twice")
        values[name] = _value(name, raw if eq else None)
    if not values:
        raise ValueError("no fault given")
    if "retry_after" in values and "status" not in values:
        raise ValueError("retry_after goes with a status, e.g. 'status=429;retry_after=2'")
    return Faults(**values)


def _value(name: str, raw: str | None) -> Any:
    if name in _FLAGS:
        if raw is not None:
            raise ValueError(f"{name!r} takes no value")
        return True
    if name == "content_filter":
        if raw not in (None, "output", "prompt"):
            raise ValueError("content_filter is 'content_filter', 'content_filter=output' or 'content_filter=prompt'")
        return raw or "output"
    if raw is None or raw == "":
        raise ValueError(f"{name!r} needs a value, e.g. {name}={_EXAMPLES[name]}")
    if name == "status":
        if not raw.isdigit() or not 400 <= int(raw) <= 599:
            raise ValueError(f"status must be an HTTP error status from 400 to 599, got {raw!r}")
        return int(raw)
    if name in _COUNTS:
        if not raw.isdigit():
            raise ValueError(f"{name} must be a whole number of stream frames, got {raw!r}")
        return int(raw)
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        unit = "seconds" if name == "retry_after" else "milliseconds"
        raise ValueError(f"{name} must be a number of {unit} >= 0, got {raw!r}")
    return number if name == "retry_after" else number / 1000.0


_EXAMPLES = {
    "status": "503",
    "retry_after": "2",
    "latency": "150",
    "ttft": "500",
    "token_delay": "20",
    **dict.fromkeys(_COUNTS, "3"),
}


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One schedule rule, validated."""

    faults: Faults
    rate: float | None = None
    from_s: float | None = None
    to_s: float | None = None
    paths: tuple[str, ...] = ()
    wires: tuple[str, ...] = ()


def validate_faults(rules: Any) -> list[str]:
    """Every problem in a fault schedule, as ``faults[i].key: what is wrong``; empty when valid.

    The gateway's config check calls this for each provider of type ``mock``.
    """
    problems: list[str] = []
    _compile(rules, problems)
    return problems


def compile_rules(rules: Any) -> list[FaultRule]:
    """Validated rules. Raises ValueError listing every problem."""
    problems: list[str] = []
    compiled = _compile(rules, problems)
    if problems:
        raise ValueError("invalid fault schedule:\n  " + "\n  ".join(problems))
    return compiled


def _compile(rules: Any, problems: list[str]) -> list[FaultRule]:
    if rules is None:
        return []
    if not isinstance(rules, Sequence) or isinstance(rules, (str, bytes)):
        problems.append("faults: expected a list of rules like {fault: 'status=503', rate: 0.3}")
        return []
    out: list[FaultRule] = []
    for i, rule in enumerate(rules):
        path = f"faults[{i}]"
        if not isinstance(rule, dict):
            problems.append(f"{path}: expected a mapping like {{fault: 'status=503', rate: 0.3}}")
            continue
        before = len(problems)
        for key in rule:
            if key not in _RULE_KEYS:
                problems.append(f"{path}: unknown key {key!r} (expected: {', '.join(_RULE_KEYS)})")
        faults = NO_FAULTS
        spec = rule.get("fault")
        if not isinstance(spec, str) or not spec.strip():
            problems.append(f"{path}.fault: required, a fault such as 'status=503' or 'latency=200'")
        else:
            try:
                faults = parse_faults(spec)
            except ValueError as exc:
                problems.append(f"{path}.fault: {exc}")
        rate = _number(rule, "rate", path, problems, hi=1.0)
        from_s = _number(rule, "from_s", path, problems)
        to_s = _number(rule, "to_s", path, problems)
        if from_s is not None and to_s is not None and to_s <= from_s:
            problems.append(f"{path}.to_s: must be greater than from_s ({to_s} <= {from_s})")
        paths = _strings(rule, "paths", path, problems, lambda p: p.startswith("/"), "paths starting with '/'")
        wires = _strings(rule, "wire", path, problems, lambda w: w in WIRES, "one of " + ", ".join(WIRES))
        if len(problems) == before:
            out.append(FaultRule(faults, rate, from_s, to_s, paths, wires))
    return out


def _number(rule: dict[str, Any], key: str, path: str, problems: list[str], hi: float | None = None) -> float | None:
    value = rule.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        problems.append(f"{path}.{key}: expected a number >= 0, got {value!r}")
        return None
    if hi is not None and value > hi:
        problems.append(f"{path}.{key}: expected a number from 0 to {hi:g}, got {value!r}")
        return None
    return float(value)


def _strings(rule: dict[str, Any], key: str, path: str, problems: list[str], ok: Any, expected: str) -> tuple[str, ...]:
    value = rule.get(key)
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and ok(v) for v in items):
        problems.append(f"{path}.{key}: expected {expected} (a string or a non-empty list), got {value!r}")
        return ()
    return tuple(items)


class FaultSchedule:
    """Which scheduled faults apply to a request, by path, wire, time window and rate.

    Time is ``clock.monotonic()`` since construction; a rule with a ``rate`` draws exactly one
    ``rng.random()`` per request that passes its other filters, so a seeded source gives the
    same sequence of faults on every run.
    """

    __slots__ = ("_clock", "_rng", "_rules", "_start")

    def __init__(self, rules: Any, clock: Clock, rng: RandomSource) -> None:
        self._rules = compile_rules(rules)
        self._clock = clock
        self._rng = rng
        self._start = clock.monotonic()

    def __bool__(self) -> bool:
        return bool(self._rules)

    def select(self, path: str, wire: str) -> Faults:
        out = NO_FAULTS
        if not self._rules:
            return out
        elapsed = self._clock.monotonic() - self._start
        for rule in self._rules:
            if rule.wires and wire not in rule.wires:
                continue
            if rule.paths and not any(fnmatchcase(path, p) for p in rule.paths):
                continue
            if (rule.from_s is not None and elapsed < rule.from_s) or (rule.to_s is not None and elapsed >= rule.to_s):
                continue
            if rule.rate is not None and self._rng.random() >= rule.rate:
                continue
            out = out.merged(rule.faults)
        return out
