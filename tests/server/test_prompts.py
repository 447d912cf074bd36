"""The prompt registry end to end through the official SDKs: a request names a prompt (the
``prompt`` body field, through ``extra_body``), the gateway renders it before the request's own
messages, the upstream gets the rendered conversation, and the response header, ledger row and
metric say which version; every render error is a 400 naming the variable, in the caller's wire
format; a route's pin decides the prompt for every request on it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.server.running import anthropic_sdk, openai_sdk, serve
from tests.server.test_ledger import _row

TRIAGE_V1 = "You triage support tickets for {{ product }}. Answer with one word."
TRIAGE_V2 = "You triage support tickets for {{ product }}. Answer with one word, in {{ language }}."

PROMPTS: dict[str, Any] = {
    "triage": {
        "versions": {
            1: {
                "messages": [
                    {"role": "system", "content": TRIAGE_V1},
                    {"role": "user", "content": "Ticket ({{ priority }}, {{ count }} reports): {{ ticket }}"},
                ],
                "variables": {
                    "product": {"type": "string", "default": "Breakwater"},
                    "priority": {"type": "enum", "values": ["low", "high"], "default": "low"},
                    "count": {"type": "integer", "default": 1},
                    "ticket": {"type": "string", "max_length": 40},
                },
            },
            2: {
                "messages": [
                    {"role": "system", "content": TRIAGE_V2},
                    {"role": "user", "content": "Ticket: {{ ticket }} (urgent: {{ urgent }}, score {{ score }})"},
                ],
                "variables": {
                    "product": {"type": "string", "default": "Breakwater"},
                    "language": {"type": "string", "default": "English"},
                    "ticket": {"type": "string"},
                    "urgent": {"type": "boolean", "default": False},
                    "score": {"type": "number", "default": 0.5},
                },
            },
        },
        "current": 1,
    },
    "greeting": {"versions": {1: {"messages": [{"role": "system", "content": "Greet warmly."}]}}},
}

ANSWERS = [
    {"matches": r"^Ticket \(high, 3 reports\): printer on fire$", "text": "hardware"},
    {"matches": r"^Ticket: printer on fire \(urgent: true, score 0.9\)$", "text": "hardware-v2"},
    {"matches": r"^Ticket \(low, 1 reports\): login fails$", "text": "access"},
]


def _config(tmp: Path) -> dict[str, Any]:
    return {
        "access": {"enabled": False},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool"), "flush_interval_s": 0.05},
        "providers": {"m": {"type": "mock", "answers": ANSWERS}},
        "deployments": {"d": {"provider": "m", "model": "mock-model"}},
        "routes": {
            "chat": {"deployments": ["d"], "capture": {"enabled": True}},
            "triage-pinned": {"deployments": ["d"], "prompt": "triage@2"},
            "triage-current": {"deployments": ["d"], "prompt": "triage"},
        },
        "prompts": PROMPTS,
    }


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("prompts")
    with serve(create_app(build_config(_config(tmp)), environ={})) as url:
        yield url, tmp / "ledger.db"


def _prompt(name: str | None = "triage", version: Any = None, **variables: Any) -> dict[str, Any]:
    ref: dict[str, Any] = {"variables": variables}
    if name is not None:
        ref["id"] = name
    if version is not None:
        ref["version"] = version
    return {"prompt": ref}


def _openai(url: str, model: str, body: dict[str, Any], messages: Any = ()) -> Any:
    return openai_sdk(url).chat.completions.with_raw_response.create(
        model=model, messages=list(messages), extra_body=body
    )


def test_a_named_prompt_is_rendered_before_the_request_and_recorded(gateway: tuple[str, Path]) -> None:
    """The current version (1) with the request's variables (and defaults for the rest): the mock's
    scripted answer for the rendered user turn comes back; header, ledger columns and capture agree."""
    url, ledger = gateway
    raw = _openai(url, "chat", _prompt(ticket="printer on fire", priority="high", count=3))
    assert raw.parse().choices[0].message.content == "hardware"
    assert raw.headers["x-breakwater-prompt"] == "triage@1"
    row = _row(ledger, raw.headers["x-request-id"])
    assert (row["prompt_name"], row["prompt_version"]) == ("triage", 1)
    captured = json.loads(row["prompt"])
    assert captured[0] == {"role": "system", "content": [TRIAGE_V1.replace("{{ product }}", "Breakwater")]}


def test_the_callers_messages_follow_the_prompt(gateway: tuple[str, Path]) -> None:
    """Template first, then the caller's turns: the caller's last user turn is the one the upstream answers last."""
    url, ledger = gateway
    caller = [{"role": "user", "content": "Any update?"}]
    raw = _openai(url, "chat", _prompt("greeting"), caller)
    row = _row(ledger, raw.headers["x-request-id"])
    captured = json.loads(row["prompt"])
    assert [m["role"] for m in captured] == ["system", "user"]
    assert captured[0]["content"] == ["Greet warmly."] and captured[1]["content"] == ["Any update?"]
    assert raw.headers["x-breakwater-prompt"] == "greeting@1"


def test_a_version_is_chosen_by_number_as_openai_spells_it(gateway: tuple[str, Path]) -> None:
    """``version`` as a string (OpenAI's type) or an integer."""
    url, _ = gateway
    for version in ("2", 2):
        raw = _openai(url, "chat", _prompt(version=version, ticket="printer on fire", urgent=True, score=0.9))
        assert raw.parse().choices[0].message.content == "hardware-v2"
        assert raw.headers["x-breakwater-prompt"] == "triage@2"


RENDER_ERRORS = [
    ({"priority": "low"}, "prompt.variables.ticket", "missing"),
    ({"ticket": "x", "colour": "red"}, "prompt.variables.colour", "unknown variable"),
    ({"ticket": 42}, "prompt.variables.ticket", "expected a string"),
    ({"ticket": "x", "count": 2.5}, "prompt.variables.count", "expected an integer"),
    ({"ticket": "x", "count": True}, "prompt.variables.count", "expected an integer"),
    ({"ticket": "x", "priority": "urgent"}, "prompt.variables.priority", "expected one of: low, high"),
    ({"ticket": "x" * 41}, "prompt.variables.ticket", "too long: 41 characters, at most 40"),
]


@pytest.mark.parametrize(("variables", "param", "says"), RENDER_ERRORS)
def test_render_errors_are_400_naming_the_variable_openai(
    gateway: tuple[str, Path], variables: dict[str, Any], param: str, says: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _openai(gateway[0], "chat", _prompt(**variables))
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == param and says in error["message"] and "triage@1" in error["message"]
    assert error["code"] == "invalid_prompt_variable"


@pytest.mark.parametrize(("variables", "param", "says"), RENDER_ERRORS)
def test_render_errors_are_400_naming_the_variable_anthropic(
    gateway: tuple[str, Path], variables: dict[str, Any], param: str, says: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        anthropic_sdk(gateway[0]).messages.create(
            model="chat", max_tokens=50, messages=[], extra_body=_prompt(**variables)
        )
    assert caught.value.status_code == 400
    body = caught.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "invalid_request_error"
    assert param in body["error"]["message"] and says in body["error"]["message"]


def test_the_anthropic_wire_renders_a_prompt(gateway: tuple[str, Path]) -> None:
    url, ledger = gateway
    raw = anthropic_sdk(url).messages.with_raw_response.create(
        model="chat", max_tokens=50, messages=[], extra_body=_prompt(ticket="login fails")
    )
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == "access"
    assert raw.headers["x-breakwater-prompt"] == "triage@1"
    assert _row(ledger, raw.headers["x-request-id"])["prompt_version"] == 1


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (_prompt("nope"), "prompt.id"),
        (_prompt(version=9, ticket="x"), "prompt.version"),
        (_prompt(None, ticket="x"), "prompt.id"),
        ({"prompt": "triage"}, "prompt"),
        ({"prompt": {"id": "triage", "variables": []}}, "prompt.variables"),
        ({"prompt": {"id": "triage", "version": "two"}}, "prompt.version"),
        ({"prompt": {"id": "triage", "tools": {}}}, "prompt.tools"),
    ],
)
def test_bad_references_are_400(gateway: tuple[str, Path], body: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _openai(gateway[0], "chat", body)
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == param


def test_a_pinned_route_gives_its_prompt_to_every_request(gateway: tuple[str, Path]) -> None:
    """Variables alone (no ``id``), or the pinned name: both get ``triage@2``."""
    url, ledger = gateway
    for body in (_prompt(None, ticket="printer on fire", urgent=True, score=0.9),
                 _prompt("triage", ticket="printer on fire", urgent=True, score=0.9)):  # fmt: skip
        raw = _openai(url, "triage-pinned", body)
        assert raw.parse().choices[0].message.content == "hardware-v2"
        assert raw.headers["x-breakwater-prompt"] == "triage@2"
        assert _row(ledger, raw.headers["x-request-id"])["prompt_version"] == 2


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        ("triage-pinned", _prompt("greeting"), "prompt.id"),
        ("triage-pinned", _prompt(version=1, ticket="x"), "prompt.version"),
        ("triage-pinned", {}, "prompt.variables.ticket"),
    ],
)
def test_a_pinned_route_refuses_another_prompt(
    gateway: tuple[str, Path], route: str, body: dict[str, Any], param: str
) -> None:
    """Another prompt, or another version of a pinned version: 400; no variables at all: the required one is missing."""
    with pytest.raises(openai.BadRequestError) as caught:
        _openai(gateway[0], route, body, [{"role": "user", "content": "hi"}])
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == param


def test_a_route_pinning_a_name_lets_the_request_choose_the_version(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    current = _openai(url, "triage-current", _prompt(None, ticket="login fails"))
    assert current.headers["x-breakwater-prompt"] == "triage@1"
    chosen = _openai(url, "triage-current", _prompt(None, version=2, ticket="x"))
    assert chosen.headers["x-breakwater-prompt"] == "triage@2"


def test_requests_without_a_prompt_pass_untouched(gateway: tuple[str, Path]) -> None:
    url, ledger = gateway
    raw = _openai(url, "chat", {}, [{"role": "user", "content": "Hello there"}])
    assert "x-breakwater-prompt" not in raw.headers
    row = _row(ledger, raw.headers["x-request-id"])
    assert row["prompt_name"] is None and row["prompt_version"] is None
    assert [m["role"] for m in json.loads(row["prompt"])] == ["user"]


def test_the_metric_counts_requests_by_prompt_and_version(gateway: tuple[str, Path]) -> None:
    url, _ = gateway
    _openai(url, "chat", _prompt("greeting"), [{"role": "user", "content": "hi"}])
    metrics = httpx2.get(f"{url}/metrics").text
    line = next(x for x in metrics.splitlines() if x.startswith('breakwater_prompt_requests_total{prompt="greeting"'))
    assert 'version="1"' in line and float(line.rsplit(" ", 1)[1]) >= 1


def test_without_prompts_configured_a_prompt_field_is_an_unsupported_parameter(tmp_path: Path) -> None:
    """Nothing renders it, so it is refused like any parameter the upstream cannot honour (never ignored)."""
    config = _config(tmp_path)
    del config["prompts"]
    config["routes"] = {"chat": {"deployments": ["d"]}}
    with serve(create_app(build_config(config), environ={})) as url, pytest.raises(anthropic.BadRequestError) as caught:
        anthropic_sdk(url).messages.create(model="chat", max_tokens=50, messages=[], extra_body=_prompt(ticket="x"))
    body = caught.value.body
    assert isinstance(body, dict) and "'prompt'" in body["error"]["message"]


def test_a_streamed_answer_carries_the_prompt_header(gateway: tuple[str, Path]) -> None:
    """The SSE response's head says which version too, and the stream is the rendered prompt's answer."""
    url, ledger = gateway
    with openai_sdk(url).chat.completions.with_streaming_response.create(
        model="chat", messages=[], stream=True, extra_body=_prompt(ticket="printer on fire", priority="high", count=3)
    ) as response:
        assert response.headers["x-breakwater-prompt"] == "triage@1"
        text = "".join(chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices)
        request_id = response.headers["x-request-id"]
    assert text == "hardware"
    assert _row(ledger, request_id)["prompt_name"] == "triage"
