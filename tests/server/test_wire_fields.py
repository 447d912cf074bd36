"""Request fields that used to be lost on the way, checked end to end with the official SDKs.

Each field either works through the gateway or is named in ``x-breakwater-dropped-params``:
Anthropic ``cache_control`` reaches an Anthropic upstream at every place a client may put it;
stop sequences, log probabilities, base64 and token-id embeddings come back as the client asked;
requests that make no sense (a forced tool choice among no tools, a wrong method) are refused.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import orjson
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from tests.server.recording import RecordingUpstream
from tests.server.running import HELLO, anthropic_sdk, openai_sdk, serve
from tests.server.test_ledger import _row


@pytest.fixture(scope="module")
def recorded_gateway(
    upstream: tuple[RecordingUpstream, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A gateway whose routes call the recording upstream over HTTP, one route per wire."""
    _, url = upstream
    ledger = tmp_path_factory.mktemp("wire-fields") / "ledger.db"
    config = {
        "access": {"enabled": False},
        "ledger": {"url": f"sqlite:///{ledger}", "spool_path": str(ledger.with_suffix(".spool"))},
        "providers": {
            "claude": {"type": "anthropic", "host": "mock", "base_url": url, "api_key": "env:KEY"},
            "gpt": {"type": "openai", "host": "mock", "base_url": f"{url}/v1", "api_key": "env:KEY"},
        },
        "deployments": {"d-claude": {"provider": "claude", "model": "c"}, "d-gpt": {"provider": "gpt", "model": "g"}},
        "routes": {"claude": {"deployments": ["d-claude"]}, "gpt": {"deployments": ["d-gpt"]}},
    }
    app = create_app(build_config(config), environ={"KEY": "k"})
    with serve(app) as gateway:
        yield gateway


EPHEMERAL = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}
TOOL = {"name": "lookup", "description": "Look it up", "input_schema": {"type": "object", "properties": {}}}


def _cached_conversation() -> dict[str, Any]:
    """A Messages request with a breakpoint at every place Anthropic takes one."""
    return {
        "system": [{"type": "text", "text": "A long, stable system prompt.", "cache_control": HOUR}],
        "tools": [{**TOOL, "cache_control": EPHEMERAL}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Look it up", "cache_control": EPHEMERAL}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "tu_1", "name": "lookup", "input": {}, "cache_control": EPHEMERAL}
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "tu_1", "content": "42", "cache_control": EPHEMERAL},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                        "cache_control": EPHEMERAL,
                    },
                ],
            },
        ],
    }


def test_cache_control_reaches_an_anthropic_upstream_everywhere(
    upstream: tuple[RecordingUpstream, str], recorded_gateway: str
) -> None:
    """Breakpoints on the system prompt, tools, text, tool_use, tool_result and image blocks, and the
    top-level one, arrive at an Anthropic upstream exactly as the Anthropic SDK sent them."""
    recorder, _ = upstream
    client = anthropic_sdk(recorded_gateway)
    request = _cached_conversation()
    raw = client.messages.with_raw_response.create(
        model="claude",
        max_tokens=50,
        extra_body={"cache_control": EPHEMERAL},
        **request,
    )
    assert "x-breakwater-dropped-params" not in raw.headers
    sent = recorder.bodies["/v1/messages"][-1]
    assert sent["cache_control"] == EPHEMERAL
    assert sent["system"] == request["system"]
    assert sent["tools"][0]["cache_control"] == EPHEMERAL
    assert [m["content"] for m in sent["messages"]] == [m["content"] for m in request["messages"]]


def test_cache_control_from_an_openai_client_reaches_an_anthropic_upstream(
    upstream: tuple[RecordingUpstream, str], recorded_gateway: str
) -> None:
    """A breakpoint on an OpenAI content part (the convention LiteLLM clients use) becomes the
    Anthropic block's ``cache_control``."""
    recorder, _ = upstream
    client = openai_sdk(recorded_gateway)
    system = [{"type": "text", "text": "Stable instructions", "cache_control": EPHEMERAL}]
    client.chat.completions.create(model="claude", messages=[{"role": "system", "content": system}, *HELLO])  # type: ignore[misc,list-item]
    sent = recorder.bodies["/v1/messages"][-1]
    assert sent["system"] == [{"type": "text", "text": "Stable instructions", "cache_control": EPHEMERAL}]


def test_cache_control_to_an_openai_upstream_is_dropped_said_and_counted(
    upstream: tuple[RecordingUpstream, str], recorded_gateway: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An OpenAI-wire upstream cannot take breakpoints: the call still succeeds (even though the
    route rejects unsupported parameters), the header names ``cache_control``, the upstream body has
    none left, the ledger row lists it and /metrics counts it."""
    recorder, _ = upstream
    client = anthropic_sdk(recorded_gateway)
    raw = client.messages.with_raw_response.create(model="gpt", max_tokens=50, **_cached_conversation())
    assert raw.headers["x-breakwater-dropped-params"] == "cache_control"
    assert b"cache_control" not in orjson.dumps(recorder.bodies["/v1/chat/completions"][-1])
    openai_client = openai_sdk(recorded_gateway)
    part = {"type": "text", "text": "Hello", "cache_control": EPHEMERAL}
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt",
        messages=[{"role": "user", "content": [part]}],  # type: ignore[list-item]
    )
    assert raw.headers["x-breakwater-dropped-params"] == "cache_control"
    assert b"cache_control" not in orjson.dumps(recorder.bodies["/v1/chat/completions"][-1])
    metrics = httpx.get(f"{recorded_gateway}/metrics").text
    assert 'breakwater_dropped_params_total{param="cache_control",route="gpt"} 2.0' in metrics


def test_the_ledger_row_lists_dropped_params(client: openai.OpenAI, ledger_path: Path) -> None:
    """A request whose parameters were dropped says which in its ledger row."""
    raw = client.chat.completions.with_raw_response.create(
        model="mock-claude-lenient",
        messages=HELLO,
        logprobs=True,
        seed=3,  # type: ignore[arg-type]
    )
    assert raw.headers["x-breakwater-dropped-params"] == "seed,logprobs"
    assert _row(ledger_path, raw.headers["x-request-id"])["dropped_params"] == "seed,logprobs"


@pytest.fixture(scope="module")
def client(gateway_url: str) -> openai.OpenAI:
    return openai_sdk(gateway_url)


@pytest.fixture(scope="module")
def claude(gateway_url: str) -> anthropic.Anthropic:
    return anthropic_sdk(gateway_url)


# --- stop sequences -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["mock-claude", "remote-claude"])
def test_a_matched_stop_sequence_is_reported(claude: anthropic.Anthropic, model: str) -> None:
    """An Anthropic upstream's stop_sequence stop reason and the sequence reach the Anthropic SDK,
    whole and streamed."""
    whole = claude.messages.create(model=model, max_tokens=200, messages=HELLO)  # type: ignore[arg-type]
    text = whole.content[0].text  # type: ignore[union-attr]
    stop = text.split()[5]  # the mock's answer is a pure function of the prompt: this word is in it
    message = claude.messages.create(model=model, max_tokens=200, messages=HELLO, stop_sequences=["zzz", stop])  # type: ignore[arg-type]
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", stop)
    assert message.content[0].text == text[: text.index(stop)]  # type: ignore[union-attr]
    with claude.messages.stream(model=model, max_tokens=200, messages=HELLO, stop_sequences=[stop]) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", stop)


def test_an_answer_that_ends_naturally_is_end_turn(claude: anthropic.Anthropic) -> None:
    """With stop sequences that do not occur, the answer ends with end_turn and no sequence."""
    message = claude.messages.create(model="mock-claude", max_tokens=200, messages=HELLO, stop_sequences=["zzz"])  # type: ignore[arg-type]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)


# --- log probabilities ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["mock", "remote", "mock-gemini", "remote-gemini"])
def test_logprobs_come_back(client: openai.OpenAI, model: str) -> None:
    """logprobs and top_logprobs come back from OpenAI- and Gemini-wire routes, whole and streamed:
    one entry per token, joining to the text, each with the asked number of alternatives."""
    done = client.chat.completions.create(model=model, messages=HELLO, logprobs=True, top_logprobs=3)  # type: ignore[arg-type]
    content = done.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content and "".join(e.token for e in content) == done.choices[0].message.content
    assert all(len(e.top_logprobs) == 3 and e.logprob < 0 for e in content)
    chunks = client.chat.completions.create(
        model=model,
        messages=HELLO,
        logprobs=True,
        top_logprobs=3,
        stream=True,  # type: ignore[arg-type]
    )
    streamed = [e for c in chunks for ch in c.choices if ch.logprobs for e in ch.logprobs.content or ()]
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in content]


def test_logprobs_on_an_anthropic_route_are_refused_or_reported(client: openai.OpenAI) -> None:
    """Anthropic has no log probabilities: a 400 naming logprobs, or with unsupported_params: drop
    an answer whose header says they were dropped."""
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="mock-claude", messages=HELLO, logprobs=True)  # type: ignore[arg-type]
    assert info.value.param == "logprobs"  # type: ignore[attr-defined]
    raw = client.chat.completions.with_raw_response.create(
        model="mock-claude-lenient",
        messages=HELLO,
        logprobs=True,
        top_logprobs=2,  # type: ignore[arg-type]
    )
    assert raw.headers["x-breakwater-dropped-params"] == "logprobs,top_logprobs"


def test_top_logprobs_without_logprobs_is_a_400(client: openai.OpenAI) -> None:
    """top_logprobs needs logprobs: true, as OpenAI requires."""
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="mock", messages=HELLO, top_logprobs=2)  # type: ignore[arg-type]
    assert info.value.param == "top_logprobs"  # type: ignore[attr-defined]


# --- embeddings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["mock", "remote", "mock-gemini", "remote-gemini"])
def test_base64_embeddings_are_the_float_ones_packed(gateway_url: str, model: str) -> None:
    """encoding_format base64 gives little-endian float32 vectors equal to the float answer."""
    body = {"model": model, "input": ["one", "two"], "dimensions": 8}
    floats = httpx.post(f"{gateway_url}/v1/embeddings", json=body).json()["data"]
    packed = httpx.post(f"{gateway_url}/v1/embeddings", json={**body, "encoding_format": "base64"}).json()["data"]
    for f, b in zip(floats, packed, strict=True):
        assert isinstance(b["embedding"], str)
        decoded = struct.unpack("<8f", base64.b64decode(b["embedding"]))
        assert decoded == pytest.approx(f["embedding"], rel=1e-6)


@pytest.mark.parametrize("model", ["mock", "remote", "mock-gemini", "remote-gemini"])
def test_token_id_inputs_are_embedded(client: openai.OpenAI, model: str) -> None:
    """Token-id inputs (what LangChain's OpenAIEmbeddings sends) are embedded on every route:
    passed through to OpenAI-wire upstreams, decoded to their text (cl100k_base) for Gemini."""
    hello_world = [15339, 1917]  # "hello world" in cl100k_base
    by_ids = client.embeddings.create(model=model, input=[hello_world, [15339]], dimensions=8)
    assert [len(d.embedding) for d in by_ids.data] == [8, 8]
    single = client.embeddings.create(model=model, input=hello_world, dimensions=8)
    assert single.data[0].embedding == by_ids.data[0].embedding
    if "gemini" in model:  # decoded: the same vector as the text itself
        by_text = client.embeddings.create(model=model, input="hello world", dimensions=8)
        assert by_text.data[0].embedding == by_ids.data[0].embedding


@pytest.mark.parametrize(
    "value",
    [[[]], [[1, "a"]], [[-1]], [[True]], [1.5], [["a"]], [[1], "a"], {"a": 1}],
)
def test_malformed_embedding_input_is_a_400(gateway_url: str, value: Any) -> None:
    """An input that is none of OpenAI's four shapes is a 400 naming ``input``."""
    response = httpx.post(f"{gateway_url}/v1/embeddings", json={"model": "mock", "input": value})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input"


def test_an_unknown_token_id_for_a_text_upstream_is_a_400(gateway_url: str) -> None:
    """A token id cl100k_base does not have cannot be decoded for Gemini: 400 naming ``input``."""
    response = httpx.post(f"{gateway_url}/v1/embeddings", json={"model": "mock-gemini", "input": [[10**9]]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input"


# --- requests that make no sense --------------------------------------------------------------------


@pytest.mark.parametrize("tool_choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_a_forced_tool_choice_without_tools_is_a_400(client: openai.OpenAI, tool_choice: Any) -> None:
    """tool_choice required or named with no tools is refused, as OpenAI refuses it."""
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="mock", messages=HELLO, tool_choice=tool_choice)  # type: ignore[arg-type]
    assert info.value.param == "tool_choice"  # type: ignore[attr-defined]


def test_a_named_tool_that_is_not_offered_is_a_400(client: openai.OpenAI) -> None:
    """A named tool_choice must name one of the tools, on every route (not only where the upstream checks)."""
    tool = {"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}}
    for model in ("mock", "mock-claude", "mock-gemini"):
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model=model,
                messages=HELLO,  # type: ignore[arg-type]
                tools=[tool],  # type: ignore[list-item]
                tool_choice={"type": "function", "function": {"name": "b"}},
            )


def test_a_forced_tool_choice_without_tools_is_a_400_on_messages(claude: anthropic.Anthropic) -> None:
    """On /v1/messages, tool_choice any or tool with no tools is an invalid_request_error."""
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(model="mock", max_tokens=20, messages=HELLO, tool_choice={"type": "any"})  # type: ignore[arg-type]


def test_auto_and_none_tool_choice_without_tools_are_harmless(client: openai.OpenAI) -> None:
    """auto and none with no tools change nothing and are served on every wire."""
    for model in ("mock", "mock-claude", "mock-gemini"):
        for choice in ("auto", "none"):
            done = client.chat.completions.create(model=model, messages=HELLO, tool_choice=choice)  # type: ignore[arg-type]
            assert done.choices[0].message.content


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("DELETE", "/v1/embeddings", "POST"),
        ("POST", "/v1/models", "GET"),
        ("POST", "/v1/models/mock", "GET"),
        ("GET", "/v1/messages", "POST"),
        ("PUT", "/metrics", "GET"),
    ],
)
def test_a_wrong_method_is_a_405_with_allow(gateway_url: str, method: str, path: str, allow: str) -> None:
    """A known path with the wrong method answers 405 method_not_allowed with an Allow header."""
    response = httpx.request(method, f"{gateway_url}{path}")
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    if path != "/v1/messages":
        assert error["code"] == "method_not_allowed"


def test_an_unknown_path_is_still_a_404(gateway_url: str) -> None:
    """A path nobody serves is a 404 not_found, without an Allow header."""
    response = httpx.get(f"{gateway_url}/v1/nothing-here")
    assert response.status_code == 404
    assert "allow" not in response.headers


def test_the_mock_provider_answers_405_with_allow(mock_server_url: str) -> None:
    """The mock provider, too, names the method a path takes."""
    response = httpx.get(f"{mock_server_url}/v1/chat/completions")
    assert (response.status_code, response.headers["allow"]) == (405, "POST")
