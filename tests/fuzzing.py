"""What the fuzz tests share: request bodies drawn from API descriptions, an in-process client, the checks.

Bodies come from schemathesis over the descriptions in ``tests/data`` (``tests/specs.py``): OpenAI's
vendored OpenAPI spec, and our JSON Schemas of Anthropic's Messages request, Gemini's
GenerateContentRequest and Breakwater's own feedback body, each wrapped here in a one-operation OpenAPI document. Every operation is
fuzzed three ways (``Mode``): valid-shaped bodies (schemathesis' positive mode), schema-violating
ones (its negative mode: wrong types, missing or extra fields, bodies that are not JSON at all), and
valid-shaped bodies with one value, at any depth, replaced by arbitrary JSON (``mutated``: what
reaches the decoders' deepest field reads, where negative mode mostly stops at the first one).

Nothing is loaded at import time: the tests draw from ``Bodies`` strategies inside the test
(``st.data()``), with the descriptions loaded by module fixtures.

The checks are the contract for bad input: never a 5xx, never a traceback in the log, error bodies
in the client's wire format without Python exception text, and a stream that fails after it has
started ends with its wire's error event, never just stops.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core import NotSet

from breakwater.providers.eventstream import EventStreamDecoder
from tests.specs import (
    ANTHROPIC_MESSAGES_REQUEST,
    BEDROCK_CONVERSE_REQUEST,
    FEEDBACK_REQUEST,
    GEMINI_GENERATE_CONTENT_REQUEST,
    OPENAI_SPEC,
)

T = TypeVar("T")
#: a client wire format; ``responses`` is OpenAI's Responses API (OpenAI's errors, its own stream events)
Wire = Literal["openai", "anthropic", "gemini", "responses", "bedrock"]
Mode = Literal["positive", "negative", "mutated"]
MODES: list[Mode] = ["positive", "negative", "mutated"]

#: what a mutation puts in place of a generated value: one of each JSON type first (a wrong type
#: is what a decoder must catch), then any small JSON value
MUTATIONS: st.SearchStrategy[Any] = st.sampled_from([{}, [], None, "", 0, -1, 0.5, True, {"": 0}, [0]]) | st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
#: mutated bodies sent per valid-shaped body drawn (a request costs far less than a chat body's draw)
MUTANTS = 8

#: the settings every fuzz test starts from; each sets its own ``max_examples``
FUZZ = settings(
    derandomize=True,  # a fixed seed (derived from the test's name): every run draws the same examples
    database=None,  # no .hypothesis/ directory: nothing is written, nothing replayed between runs
    deadline=None,  # a shared 2-core machine has noisy timings; max_examples bounds the run time
    suppress_health_check=[
        # caplog is function-scoped on purpose: each example clears it and checks what its request logged
        HealthCheck.function_scoped_fixture,
        # drawing from OpenAI's chat schema is slow and its bodies large; both are the point here
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

# What Python exception text looks like; none of it may reach a client. ("Invalid request: " was
# the prefix of the mock's old catch-all, which sent the exception's text on.)
_PYTHON_TEXT = re.compile(
    r"Traceback \(most recent call last\)|unhashable type|object has no attribute|object is not "
    r"(?:subscriptable|iterable|callable)|(?:Type|Key|Value|Attribute|Index|Lookup|Recursion)Error\b|"
    r"NoneType|^Invalid request: "
)


@dataclass(frozen=True, slots=True)
class Request:
    """One generated request, ready to send."""

    method: str
    path: str
    body: bytes
    headers: dict[str, str]


class Bodies:
    """One API description, as hypothesis strategies of schemathesis cases (body, path parameters) per operation."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema
        self._strategies: dict[tuple[str, str, GenerationMode], st.SearchStrategy[Any]] = {}

    @classmethod
    def openai(cls) -> Bodies:
        """OpenAI's vendored spec (all its operations; tests pick the ones Breakwater serves)."""
        return cls(schemathesis.openapi.from_path(str(OPENAI_SPEC)))

    @classmethod
    def json_schema(cls, path: Path) -> Bodies:
        """A JSON Schema file of a request body, as the body of one ``POST /body`` operation."""
        # the file's "#/$defs/..." references, re-pointed at where the wrapper keeps the definitions
        schema = json.loads(path.read_text(encoding="utf-8").replace('"#/$defs/', '"#/components/schemas/'))
        definitions = schema.pop("$defs", {})
        content = {"application/json": {"schema": schema}}
        document = {
            "openapi": "3.1.0",
            "info": {"title": schema.get("title", path.name), "version": "1"},
            "paths": {
                "/body": {
                    "post": {
                        "requestBody": {"required": True, "content": content},
                        "responses": {"200": {"description": "answered"}},
                    }
                }
            },
            "components": {"schemas": definitions},
        }
        return cls(schemathesis.openapi.from_dict(document))

    @classmethod
    def anthropic_messages(cls) -> Bodies:
        return cls.json_schema(ANTHROPIC_MESSAGES_REQUEST)

    @classmethod
    def gemini_generate_content(cls) -> Bodies:
        return cls.json_schema(GEMINI_GENERATE_CONTENT_REQUEST)

    @classmethod
    def bedrock_converse(cls) -> Bodies:
        return cls.json_schema(BEDROCK_CONVERSE_REQUEST)

    @classmethod
    def feedback(cls) -> Bodies:
        return cls.json_schema(FEEDBACK_REQUEST)

    def cases(self, method: str, path: str, mode: GenerationMode) -> st.SearchStrategy[Any]:
        """schemathesis ``Case`` objects for the operation ``method path`` in ``mode`` (built once)."""
        key = (method, path, mode)
        if key not in self._strategies:
            self._strategies[key] = self._schema[path][method].as_strategy(generation_mode=mode)
        return self._strategies[key]


def draw_requests(
    data: st.DataObject, bodies: Bodies, mode: Mode, method: str, path: str, url: str, **overrides: Any
) -> list[Request]:
    """Requests to ``url`` with bodies drawn for the operation ``method path`` of ``bodies`` in ``mode``.

    One request, or in ``mutated`` mode up to ``MUTANTS`` of them: one valid-shaped body (the
    costly draw) with a different single value replaced in each. ``overrides`` replace top-level
    fields of an object body (the model to route to, ``stream``) before any mutation, so a
    mutation may hit them too; other bodies are sent as generated. In ``url``, ``{path}`` stands
    for the operation's path with the case's path parameters filled in.
    """
    generation = GenerationMode.NEGATIVE if mode == "negative" else GenerationMode.POSITIVE
    case = data.draw(bodies.cases(method, path, generation), label="case")
    url = url.replace("{path}", case.formatted_path)
    body = case.body
    if mode != "negative":
        body = _whole_numbers(body)
    if isinstance(body, dict) and overrides:
        body = {**body, **overrides}
    spots = list(_spots(body)) if mode == "mutated" else []
    if not spots:
        return [_request(case, body, url)]
    # distinct spots: drawn one by one, hypothesis would favour the first (the body's first key)
    at = data.draw(st.permutations(spots), label="mutated at")[:MUTANTS]
    return [_request(case, _replaced(body, spot, data.draw(MUTATIONS, label="mutation")), url) for spot in at]


def _whole_numbers(value: Any) -> Any:
    """``value`` with its whole floats written as integers.

    Hypothesis writes an ``integer`` as ``1.0`` at times, which the decoders refuse at once
    (``max_tokens: 1.0``); SDKs send ``1``, and so do the tests, to get past that check.
    """
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def _spots(value: Any, at: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path of every value inside ``value`` (not ``value`` itself), outermost first."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        yield (*at, key)
        yield from _spots(inner, (*at, key))


def _replaced(value: Any, spot: tuple[str | int, ...], new: Any) -> Any:
    """A copy of ``value`` with the value at ``spot`` replaced by ``new``."""
    if not spot:
        return new
    key, rest = spot[0], spot[1:]
    if isinstance(value, dict):
        return {**value, key: _replaced(value[key], rest, new)}
    copy = list(value)
    copy[key] = _replaced(copy[key], rest, new)  # type: ignore[index]
    return copy


def _request(case: Any, body: Any, url: str) -> Request:
    if isinstance(body, NotSet):
        raw = b""
    elif isinstance(body, bytes):
        raw = body  # negative mode: bytes that are not JSON
    else:
        raw = json.dumps(body).encode()  # not orjson: generated integers may exceed 64 bits
    headers = {"content-type": case.media_type or "application/json"} if raw else {}
    return Request(case.method.upper(), url, raw, headers)


class InProcess:
    """An ASGI app called in-process on a private event loop, from synchronous (hypothesis) tests.

    No lifespan runs: the fuzzed routes need none of what it starts (ledger, HTTP pool, limits).
    """

    def __init__(self, app: Any) -> None:
        self._runner = asyncio.Runner()
        self._client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://fuzz")

    def send(self, request: Request, **headers: str) -> httpx2.Response:
        return self._runner.run(
            self._client.request(
                request.method, request.path, content=request.body, headers={**request.headers, **headers}
            )
        )

    def run(self, work: Awaitable[T]) -> T:
        """Await ``work`` on the client's event loop (to open or close what a test's app needs)."""
        return self._runner.run(work)

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()


def logged_failures(records: Sequence[logging.LogRecord]) -> list[str]:
    """Log records that show a crash: any with exception info, or an ERROR that holds a traceback."""
    return [
        f"{r.name} {r.levelname}: {r.getMessage()}"
        for r in records
        if r.exc_info or (r.levelno >= logging.ERROR and "Traceback" in r.getMessage())
    ]


def check_each(client: InProcess, requests: Sequence[Request], wire: Wire, caplog: Any, **headers: str) -> None:
    """Send each request: every answer passes ``check_answer`` and its request logs no crash."""
    for request in requests:
        caplog.clear()
        check_answer(client.send(request, **headers), wire, request)
        assert not logged_failures(caplog.records)


def check_answer(response: httpx2.Response, wire: Wire, request: Request) -> None:
    """No 5xx; errors in ``wire``'s format, with a message free of Python exception text; streams end properly.

    A mock route never maps to a 5xx (those come from upstream failures and faults, and none is
    asked for), so every 5xx is a bug: no status is exempt.
    """
    where = f"{request.method} {request.path} {request.body[:2000]!r}"
    assert response.status_code < 500, f"{response.status_code} for {where}: {response.text[:1000]}"
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("text/event-stream"):
        assert response.status_code == 200, where
        _check_stream(response.text, wire, where)
    elif content_type.startswith("application/vnd.amazon.eventstream"):
        assert response.status_code == 200, where
        _check_event_stream(response.content, where)
    elif response.status_code >= 400:
        message = _error_message(response.json(), wire)
        assert message, f"no error message in {response.text[:500]} for {where}"
        assert not _PYTHON_TEXT.search(message), f"Python exception text in {message!r} for {where}"


def _error_message(body: Any, wire: Wire) -> str:
    """The message of an error body in ``wire``'s envelope (an AssertionError if it is not one)."""
    assert isinstance(body, dict), body
    if wire == "bedrock":  # rest-json: {"message": ...}, the exception's name in a header
        assert set(body) == {"message"}, body
        return str(body["message"])
    if wire == "anthropic":
        assert body.get("type") == "error", body
        error = body["error"]
        assert isinstance(error.get("type"), str), body
    else:
        error = body["error"]
        if wire in ("openai", "responses"):
            assert set(error) == {"message", "type", "param", "code"}, body
        else:
            assert isinstance(error.get("code"), int) and isinstance(error.get("status"), str), body
    message = error.get("message")
    assert isinstance(message, str), body
    return message


def _sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) of each frame of an SSE body (any line ending)."""
    events: list[tuple[str | None, str]] = []
    for frame in text.replace("\r\n", "\n").split("\n\n"):
        name: str | None = None
        data: list[str] = []
        for line in frame.split("\n"):
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].strip())
        if name is not None or data:
            events.append((name, "\n".join(data)))
    return events


def _check_stream(text: str, wire: Wire, where: str) -> None:
    """Every frame is JSON (or OpenAI's ``[DONE]``); a stream without its end marker ends with an error event."""
    events = _sse_events(text)
    assert events, f"an empty stream for {where}"
    payloads = [_frame_data(data, where) for _, data in events]
    last_name, last = events[-1][0], payloads[-1]
    if wire == "openai":
        finished = last == "[DONE]"
        failed = isinstance(last, dict) and "error" in last
    elif wire == "responses":  # a failure is an ``error`` event, then ``response.failed``
        finished = last_name in ("response.completed", "response.incomplete")
        failed = last_name == "response.failed" and len(events) > 1 and events[-2][0] == "error"
        if failed:
            last = {"error": payloads[-2]}
    elif wire == "anthropic":
        finished = last_name == "message_stop"
        failed = last_name == "error" and isinstance(last, dict) and last.get("type") == "error"
    else:  # Gemini streams have no end marker; a failure is a final frame holding an error
        failed = isinstance(last, dict) and "error" in last
        finished = not failed
    assert finished or failed, f"a stream that stopped without its end or an error event for {where}: {text[-500:]}"
    if failed:
        error = last["error"]
        assert isinstance(error, dict) and not _PYTHON_TEXT.search(str(error.get("message"))), f"{error} for {where}"


def _check_event_stream(raw: bytes, where: str) -> None:
    """Every message is whole (botocore checks both checksums) with a JSON payload; the stream ends
    with ``metadata`` after ``messageStop``, or with an exception message."""
    decoder = EventStreamDecoder()
    messages = decoder.feed(raw)
    assert messages and not decoder.pending(), f"an empty or cut event stream for {where}"
    for m in messages:
        json.loads(m.payload)
    last = messages[-1].headers
    failed = last.get(":message-type") == "exception"
    names = [m.headers.get(":event-type") for m in messages]
    assert failed or names[-2:] == ["messageStop", "metadata"], f"an event stream without its end for {where}: {names}"
    if failed:
        message = json.loads(messages[-1].payload).get("message")
        assert isinstance(message, str) and not _PYTHON_TEXT.search(message), f"{message!r} for {where}"


def _frame_data(data: str, where: str) -> Any:
    if data == "[DONE]":
        return data
    try:
        return json.loads(data)
    except ValueError:
        raise AssertionError(f"a stream frame that is not JSON ({data[:200]!r}) for {where}") from None


# --- fixtures (a pytest plugin: tests/conftest.py lists this module) ---------------------------


@pytest.fixture(scope="module")
def openai_spec() -> Bodies:
    """Bodies drawn from OpenAI's vendored OpenAPI spec."""
    return Bodies.openai()


@pytest.fixture(scope="module")
def messages_schema() -> Bodies:
    """Bodies drawn from our JSON Schema of Anthropic's Messages request."""
    return Bodies.anthropic_messages()


@pytest.fixture(scope="module")
def gemini_schema() -> Bodies:
    """Bodies drawn from our JSON Schema of Gemini's GenerateContentRequest."""
    return Bodies.gemini_generate_content()


@pytest.fixture(scope="module")
def converse_schema() -> Bodies:
    """Bodies drawn from our JSON Schema of Bedrock's Converse request."""
    return Bodies.bedrock_converse()


@pytest.fixture(scope="module")
def feedback_schema() -> Bodies:
    """Bodies drawn from our JSON Schema of the ``POST /v1/feedback`` body."""
    return Bodies.feedback()
