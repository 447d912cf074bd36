"""The official ``openai`` SDK's ``client.responses``, unchanged, against a running gateway.

Every behaviour is checked on the six routes of ``ROUTES``: the mock in-process and a real
``breakwater mock`` server behind the ordinary ``openai``, ``anthropic`` and ``gemini`` providers,
so the Responses ingress is proven against every upstream wire format. The session's gateway
runs without access control (its responses are kept in memory); per-key isolation and expiry are
checked on a gateway of their own, with keys in a SQLite key store and a manual clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
import openai
import pytest

from breakwater.core.config import build_config
from breakwater.infra.clock import ManualClock
from breakwater.server.app import create_app
from tests.server.conftest import ROUTES
from tests.server.running import admin_http, openai_sdk, serve
from tests.server.test_ledger import _cost, _row

WEATHER_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string", "minLength": 1}, "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": WEATHER_PARAMETERS,
}


@pytest.fixture(scope="module")
def client(gateway_url: str) -> openai.OpenAI:
    return openai_sdk(gateway_url)


def _error(exc: openai.APIStatusError) -> dict[str, Any]:
    """The OpenAI error object of a failed call (the envelope's exact keys checked)."""
    body = exc.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize("model", ROUTES)
def test_plain_response(client: openai.OpenAI, model: str) -> None:
    """A string input gets a completed Response: one assistant message with output_text, and usage
    that adds up; the text is the one the same conversation gets from chat completions."""
    response = client.responses.create(model=model, input="Hello there")
    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert [item.type for item in response.output] == ["message"]
    assert response.output[0].content[0].type == "output_text"  # type: ignore[union-attr]
    chat = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello there"}])
    assert response.output_text == chat.choices[0].message.content
    usage = response.usage
    assert usage is not None and chat.usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (chat.usage.prompt_tokens, chat.usage.completion_tokens)
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0


@pytest.mark.parametrize("model", ROUTES)
def test_instructions_are_the_system_prompt(client: openai.OpenAI, model: str) -> None:
    """``instructions`` reach the upstream as the system prompt (the answer is the chat one with that
    system message), and are echoed in the Response."""
    response = client.responses.create(model=model, input="Hello there", instructions="Answer in one word.")
    chat = client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "Hello there"}],
    )
    assert response.output_text == chat.choices[0].message.content
    assert response.instructions == "Answer in one word."


@pytest.mark.parametrize("model", ROUTES)
def test_streamed_response(client: openai.OpenAI, model: str) -> None:
    """A stream is OpenAI's event sequence, numbered from 0 without gaps; its deltas make the text of
    the unstreamed answer, and response.completed holds the whole Response with its usage."""
    plain = client.responses.create(model=model, input="Hello there")
    events = list(client.responses.create(model=model, input="Hello there", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")  # type: ignore[union-attr]
    assert deltas == plain.output_text
    done = events[-1].response  # type: ignore[union-attr]
    assert done.status == "completed"
    assert done.output_text == plain.output_text
    assert done.usage == plain.usage
    assert events[0].response.id == done.id  # type: ignore[union-attr]


@pytest.mark.parametrize("model", ROUTES)
def test_tool_call_round_trip(client: openai.OpenAI, model: str) -> None:
    """A required tool call is a function_call item (call_id, name, arguments valid for the tool's
    schema); its output sent back as a function_call_output item gets a text answer."""
    question = {"role": "user", "content": "What's the weather in Paris?"}
    first = client.responses.create(model=model, input=[question], tools=[WEATHER], tool_choice="required")  # type: ignore[list-item]
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) >= 1
    call = calls[0]
    assert call.name == "get_weather" and call.call_id and call.id and call.id.startswith("fc_")
    jsonschema.validate(json.loads(call.arguments), WEATHER_PARAMETERS)
    output = {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 21}'}
    # stateless: the whole conversation sent again, the call items as the gateway gave them
    replay = [question, *[item.model_dump(exclude_none=True) for item in first.output], output]
    second = client.responses.create(model=model, input=replay, tools=[WEATHER])  # type: ignore[arg-type,list-item]
    assert second.status == "completed"
    assert second.output_text
    # stateful: the same turn continuing the stored response gives the same answer
    chained = client.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[output],  # type: ignore[list-item]
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert chained.output_text == second.output_text
    assert chained.previous_response_id == first.id


@pytest.mark.parametrize("model", ROUTES)
def test_streamed_tool_call(client: openai.OpenAI, model: str) -> None:
    """A streamed tool call: output_item.added, argument deltas, arguments.done with the whole
    arguments, output_item.done with the finished item; the final Response holds the same call."""
    with client.responses.stream(
        model=model,
        input="What's the weather in Paris?",
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")  # type: ignore[union-attr]
    assert "".join(e.arguments for e in done) == deltas  # type: ignore[union-attr]
    items = [e.item for e in events if e.type == "response.output_item.done"]  # type: ignore[union-attr]
    calls = [item for item in final.output if item.type == "function_call"]
    streamed = [(i.call_id, i.name, i.arguments, i.id) for i in items if i.type == "function_call"]
    assert calls and streamed == [(c.call_id, c.name, c.arguments, c.id) for c in calls]
    jsonschema.validate(json.loads(calls[0].arguments), WEATHER_PARAMETERS)
    assert kinds[-1] == "response.completed"


@pytest.mark.parametrize("model", ROUTES)
def test_previous_response_id_continues_the_conversation(client: openai.OpenAI, model: str) -> None:
    """A response continued by id answers as if the whole conversation had been sent: the same text
    and input tokens as the stateless request with the earlier turn spelled out."""
    first = client.responses.create(model=model, input="Hello there")
    second = client.responses.create(model=model, input="Tell me more", previous_response_id=first.id)
    stateless = client.responses.create(
        model=model,
        input=[
            {"role": "user", "content": "Hello there"},
            {"role": "assistant", "content": first.output_text},
            {"role": "user", "content": "Tell me more"},
        ],
    )
    assert second.output_text == stateless.output_text
    assert second.usage is not None and stateless.usage is not None and first.usage is not None
    assert second.usage.input_tokens == stateless.usage.input_tokens > first.usage.total_tokens


def test_instructions_do_not_carry_over(client: openai.OpenAI) -> None:
    """An earlier response's instructions are not part of the continued conversation (OpenAI's rule)."""
    first = client.responses.create(model="mock", input="Hello there", instructions="Be terse.")
    second = client.responses.create(model="mock", input="More", previous_response_id=first.id)
    stateless = client.responses.create(
        model="mock",
        input=[
            {"role": "user", "content": "Hello there"},
            {"role": "assistant", "content": first.output_text},
            {"role": "user", "content": "More"},
        ],
    )
    assert second.output_text == stateless.output_text
    assert second.instructions is None


def test_streamed_response_is_stored(client: openai.OpenAI) -> None:
    """A streamed answer is kept by the time response.completed arrives: it can be read and continued."""
    events = list(client.responses.create(model="mock-claude", input="Hello there", stream=True))
    done = events[-1].response  # type: ignore[union-attr]
    assert client.responses.retrieve(done.id).output_text == done.output_text
    follow = client.responses.create(model="mock-claude", input="And?", previous_response_id=done.id)
    assert follow.status == "completed"


def test_retrieve_and_delete(client: openai.OpenAI) -> None:
    """GET returns the stored Response as first given; DELETE removes it (then both are 404)."""
    made = client.responses.create(model="mock", input="Hello there", metadata={"ticket": "42"})
    got = client.responses.retrieve(made.id)
    assert got.model_dump() == made.model_dump()
    assert got.metadata == {"ticket": "42"}
    client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(made.id)


def test_store_false_is_not_kept(client: openai.OpenAI) -> None:
    """``store: false`` answers but keeps nothing: it cannot be read or continued (404 naming the field)."""
    made = client.responses.create(model="mock", input="Hello there", store=False)
    assert made.output_text
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="mock", input="More", previous_response_id=made.id)
    assert _error(info.value)["param"] == "previous_response_id"


@pytest.mark.parametrize("model", ROUTES)
def test_max_output_tokens_makes_an_incomplete_response(client: openai.OpenAI, model: str) -> None:
    """An answer cut by max_output_tokens is ``incomplete`` with reason max_output_tokens, streamed or not."""
    response = client.responses.create(model=model, input="Hello there", max_output_tokens=2)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    events = list(client.responses.create(model=model, input="Hello there", max_output_tokens=2, stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"  # type: ignore[union-attr]


@pytest.mark.parametrize("model", ROUTES)
def test_json_schema_format(client: openai.OpenAI, model: str) -> None:
    """``text.format`` json_schema gives output_text that is JSON valid for the schema."""
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    response = client.responses.create(
        model=model,
        input="Make up a person",
        text={"format": {"type": "json_schema", "name": "person", "schema": schema, "strict": True}},
    )
    jsonschema.validate(json.loads(response.output_text), schema)
    assert response.text is not None and response.text.format.type == "json_schema"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type=web_search", "web_search"),
        (
            {"tools": [WEATHER, {"type": "file_search", "vector_store_ids": ["vs_1"]}]},
            "tools[1].type=file_search",
            "file_search",
        ),
        ({"background": True}, "background", "background"),
        ({"include": ["file_search_call.results"]}, "include", "include"),
        ({"conversation": "conv_1"}, "conversation", "conversations"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]", "item references"),
        (
            {"input": [{"type": "computer_call_output", "call_id": "c", "output": {"type": "computer_screenshot"}}]},
            "input[0].type=computer_call_output",
            "computer_call_output",
        ),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice.type=web_search_preview", "web_search_preview"),
        ({"reasoning": {"effort": "low"}}, "reasoning", "reasoning"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}, None, "file ids"),
        ({"temperature": 3}, "temperature", "temperature"),
        ({"input": 7}, "input", "input"),
    ],
)
def test_what_cannot_be_honoured_is_a_400_naming_it(
    client: openai.OpenAI, body: dict[str, Any], param: str | None, words: str
) -> None:
    """On a route that translates (no deployment serving OpenAI's ``/responses``), hosted tools,
    their items, include, and parameters the route cannot honour get a 400 in OpenAI's format that
    names them; background, conversations and item references get one on every route; nothing is
    silently dropped."""
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(**{"model": "mock", "input": "Hello there", **body})
    error = _error(info.value)
    assert words in error["message"]
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param


def test_harmless_hints_are_dropped_and_listed(client: openai.OpenAI) -> None:
    """Hints that change no answer (truncation, service_tier, an earlier turn's reasoning item, ...)
    are dropped and named in ``x-breakwater-dropped-params``, whatever the route says."""
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": []}
    raw = client.responses.with_raw_response.create(
        model="mock-claude",
        input=[reasoning, {"role": "user", "content": "Hello there"}],  # type: ignore[list-item]
        truncation="auto",
        service_tier="auto",
        safety_identifier="u1",
    )
    dropped = raw.headers["x-breakwater-dropped-params"].split(",")
    assert {"truncation", "service_tier", "safety_identifier", "input[0].type=reasoning"} <= set(dropped)
    assert raw.parse().output_text


def test_a_lenient_route_drops_what_it_cannot_honour(client: openai.OpenAI) -> None:
    """On a route with ``unsupported_params: drop``, an unmodelled parameter is dropped and listed."""
    raw = client.responses.with_raw_response.create(
        model="mock-claude-lenient", input="Hello there", reasoning={"effort": "low"}
    )
    assert "reasoning" in raw.headers["x-breakwater-dropped-params"].split(",")


def test_unknown_previous_response_is_404(client: openai.OpenAI) -> None:
    """A previous_response_id the gateway never made is a 404 naming the field."""
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="mock", input="Hi", previous_response_id="resp_unknown")
    error = _error(info.value)
    assert error["param"] == "previous_response_id"
    assert "resp_unknown" in error["message"]


@pytest.mark.parametrize("model", ROUTES)
def test_stream_cut_midway_ends_with_failure_events(client: openai.OpenAI, model: str) -> None:
    """An upstream stream cut mid-way ends with an ``error`` event then ``response.failed``, never
    ``response.completed``; the failed response is not stored."""
    events = list(
        client.responses.create(
            model=model, input="Hello there", stream=True, extra_headers={"x-mock-fault": "cut_after=2"}
        )
    )
    kinds = [e.type for e in events]
    assert kinds[-2:] == ["error", "response.failed"]
    assert "response.completed" not in kinds
    failed = events[-1].response  # type: ignore[union-attr]
    assert failed.status == "failed" and failed.error is not None and failed.error.message
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(failed.id)


@pytest.mark.parametrize("fault", ["status=500", "status=429;retry_after=2"])
def test_upstream_errors_are_mapped(client: openai.OpenAI, fault: str) -> None:
    """An upstream failure reaches the SDK in OpenAI's error format, with the status and message
    chat completions give for it."""
    headers = {"x-mock-fault": fault}
    with pytest.raises(openai.APIStatusError) as info:
        client.responses.create(model="remote-claude", input="Hello there", extra_headers=headers)
    with pytest.raises(openai.APIStatusError) as chat:
        client.chat.completions.create(
            model="remote-claude", messages=[{"role": "user", "content": "Hi"}], extra_headers=headers
        )
    assert info.value.status_code == chat.value.status_code >= 429
    assert _error(info.value)["message"] == _error(chat.value)["message"]
    if fault.startswith("status=429"):
        assert info.value.response.headers["retry-after"] == "2"


def test_without_v1_prefix(gateway_url: str) -> None:
    """``POST /responses`` (a base URL without /v1) is served too."""
    answer = httpx2.post(f"{gateway_url}/responses", json={"model": "mock", "input": "Hello there"}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["output"][0]["type"] == "message"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["mock", "remote"])
def test_each_response_is_one_ledger_row_with_usage_and_cost(
    client: openai.OpenAI, ledger_path: Path, model: str, stream: bool
) -> None:
    """A Responses call, streamed or not, leaves one ledger row with the usage the client saw, priced."""
    raw = client.responses.with_raw_response.create(
        model=model, input="Hello there", user="alice", stream=stream, metadata={"feature": "search"}
    )
    if stream:
        events = list(raw.parse())  # type: ignore[call-overload]
        response = events[-1].response
    else:
        response = raw.parse()
    usage = response.usage
    row = _row(ledger_path, raw.headers["x-request-id"])
    assert row["status"] == 200 and row["route"] == model and row["user"] == "alice"
    assert (row["input_tokens"], row["output_tokens"]) == (usage.input_tokens, usage.output_tokens)
    assert Decimal(row["cost_usd"]) == _cost(usage.input_tokens, usage.output_tokens)
    assert row["stream"] == int(stream)


# --- keys and expiry ----------------------------------------------------------------------------

ADMIN = "adm-responses-5d1e"
TTL_S = 600


class KeyedGateway:
    def __init__(self, url: str, clock: ManualClock) -> None:
        self.url = url
        self.clock = clock
        self.admin = admin_http(url, ADMIN)

    def client(self) -> openai.OpenAI:
        answer = self.admin.post("/admin/keys", json={"name": "app"})
        assert answer.status_code == 201, answer.text
        return openai_sdk(self.url, answer.json()["key"])


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedGateway]:
    """A gateway with access control: keys and responses in one SQLite key store; a manual clock."""
    tmp: Path = tmp_path_factory.mktemp("responses")
    config = build_config(
        {
            "server": {"admin_key": "env:BW_ADMIN"},
            "access": {"store": f"sqlite:///{tmp}/keys.db", "hash_secret": "env:BW_HASH"},
            "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool")},
            "responses": {"ttl_s": TTL_S},
            "providers": {"m": {"type": "mock", "wire": "anthropic"}},
            "deployments": {"d": {"provider": "m", "model": "mock-claude"}},
            "routes": {"claude": {"deployments": ["d"]}},
        }
    )
    clock = ManualClock(wall=1_795_867_200.0)
    app = create_app(config, environ={"BW_ADMIN": ADMIN, "BW_HASH": "hash-secret-for-tests-0123456789"}, clock=clock)
    with serve(app) as url:
        yield KeyedGateway(url, clock)


def test_another_key_cannot_see_a_response(keyed: KeyedGateway) -> None:
    """A response is its key's: another key gets 404 on GET, DELETE and previous_response_id, and the
    owner still has it afterwards."""
    alice, bob = keyed.client(), keyed.client()
    made = alice.responses.create(model="claude", input="Hello there")
    with pytest.raises(openai.NotFoundError):
        bob.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError) as info:
        bob.responses.create(model="claude", input="More", previous_response_id=made.id)
    assert _error(info.value)["param"] == "previous_response_id"
    assert alice.responses.retrieve(made.id).id == made.id
    assert alice.responses.create(model="claude", input="More", previous_response_id=made.id).output_text


def test_a_response_expires_after_the_ttl(keyed: KeyedGateway) -> None:
    """``responses.ttl_s`` after it was made, a response can no longer be read or continued."""
    alice = keyed.client()
    made = alice.responses.create(model="claude", input="Hello there")
    keyed.clock.advance(TTL_S - 1)
    assert alice.responses.retrieve(made.id).id == made.id
    keyed.clock.advance(1)
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        alice.responses.create(model="claude", input="More", previous_response_id=made.id)


def test_stored_responses_need_a_key(keyed: KeyedGateway) -> None:
    """Without a valid key, GET /v1/responses/{id} is a 401 in OpenAI's format."""
    answer = httpx2.get(f"{keyed.url}/v1/responses/resp_x", timeout=10)
    assert answer.status_code == 401
    assert set(answer.json()["error"]) == {"message", "type", "param", "code"}
