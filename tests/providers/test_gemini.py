"""The Gemini API wire protocol, both sides, checked against recorded samples and the official google-genai SDK."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
import yaml
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gt

from breakwater.core import errors
from breakwater.core.errors import InvalidRequest, MalformedResponse
from breakwater.core.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishEvent,
    ImagePart,
    Message,
    PassthroughChunk,
    ResponseFormat,
    StreamEvent,
    StreamStart,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
    UsageEvent,
)
from breakwater.providers.base import Target
from breakwater.providers.gemini import DEFAULT_BASE_URL, GeminiAdapter
from breakwater.providers.gemini_serve import (
    StreamEncoder,
    encode_chat_response,
    encode_embeddings_response,
    error_body,
)
from breakwater.providers.gemini_serve_request import decode_chat_request, decode_embeddings_request
from breakwater.providers.gemini_signatures import SIGNATURE_SEP, SKIP_SIGNATURE, join_call_id, split_call_id

from .helpers import AdapterUnderTest, chat_request, collect_stream, user

SAMPLES = Path(__file__).parent / "samples" / "gemini"
ADAPTER = GeminiAdapter()
TARGET = Target(provider="gem", model="gemini-2.5-flash", base_url="", api_key="AIza-secret")
WIRE = AdapterUnderTest(ADAPTER, TARGET, piece=11)


def _sse(*chunks: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in chunks)


def _frames(raw: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line[6:]) for line in raw.split(b"\r\n\r\n") if line.startswith(b"data: ")]


# --- request building --------------------------------------------------------------------------


def test_urls_and_key_header() -> None:
    """Chat goes to :generateContent, streams to :streamGenerateContent?alt=sse, and the key travels only in x-goog-api-key."""
    plain = ADAPTER.chat_request(chat_request(user("hi")), TARGET)
    stream = ADAPTER.chat_request(chat_request(user("hi"), stream=True), TARGET)
    assert plain.url == f"{DEFAULT_BASE_URL}/v1beta/models/gemini-2.5-flash:generateContent"
    assert stream.url == f"{DEFAULT_BASE_URL}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert (plain.method, plain.stream, stream.stream) == ("POST", False, True)
    for req in (plain, stream):
        assert req.headers["x-goog-api-key"] == "AIza-secret"
        assert "AIza-secret" not in req.url and "key=" not in req.url


def test_url_respects_base_version_and_resource_names() -> None:
    """A base URL's trailing slash, an api_version override and models/ or tunedModels/ names are all honoured."""
    target = Target(provider="g", model="models/gemini-2.0-flash", base_url="http://proxy.test/", api_version="v1")
    assert ADAPTER.chat_request(chat_request(user("hi")), target).url == (
        "http://proxy.test/v1/models/gemini-2.0-flash:generateContent"
    )
    tuned = Target(provider="g", model="tunedModels/my-tune", base_url="http://proxy.test")
    req = ADAPTER.chat_request(chat_request(user("hi")), tuned)
    assert req.url == "http://proxy.test/v1beta/tunedModels/my-tune:generateContent"
    assert "x-goog-api-key" not in req.headers


def test_target_headers_and_extra_body() -> None:
    """The target's extra headers and extra_body fields are merged into the request."""
    target = Target(
        provider="g", model="m", base_url="", api_key="k", headers={"x-a": "1"}, extra_body={"labels": {"t": "x"}}
    )
    req = ADAPTER.chat_request(chat_request(user("hi")), target)
    assert req.headers == {"content-type": "application/json", "x-a": "1", "x-goog-api-key": "k"}
    assert orjson.loads(req.body)["labels"] == {"t": "x"}


def test_system_and_developer_messages_become_system_instruction() -> None:
    """System and developer messages, wherever they appear, become one systemInstruction of text parts."""
    body = WIRE.body(
        chat_request(
            Message("system", [TextPart("Be brief.")]), user("hi"), Message("developer", [TextPart("No emoji.")])
        )
    )
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "No emoji."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert "systemInstruction" not in WIRE.body(chat_request(user("hi")))


def test_roles_map_to_user_and_model() -> None:
    """User messages keep role user and assistant messages become role model."""
    body = WIRE.body(chat_request(user("hi"), Message("assistant", [TextPart("hello")]), user("bye")))
    assert [(c["role"], c["parts"]) for c in body["contents"]] == [
        ("user", [{"text": "hi"}]),
        ("model", [{"text": "hello"}]),
        ("user", [{"text": "bye"}]),
    ]


def test_tool_calls_and_results_resolve_names_from_ids() -> None:
    """Assistant tool calls become functionCall parts and tool results functionResponse parts named from the call's id."""
    body = WIRE.body(
        chat_request(
            user("weather in Paris and Oslo?"),
            Message(
                "assistant",
                [TextPart("Checking.")],
                [ToolCall("t1", "weather", '{"city": "Paris"}'), ToolCall("t2", "forecast", "")],
            ),
            Message("tool", [TextPart('{"temp_c": 18}')], tool_call_id="t1"),
            Message("tool", [TextPart("[1, 2]")], tool_call_id="t2"),
            user("thanks"),
        )
    )
    assert body["contents"][1] == {
        "role": "model",
        "parts": [
            {"text": "Checking."},
            {
                "functionCall": {"id": "t1", "name": "weather", "args": {"city": "Paris"}},
                "thoughtSignature": SKIP_SIGNATURE,
            },
            {"functionCall": {"id": "t2", "name": "forecast", "args": {}}},
        ],
    }
    # parallel results go back together in one user turn
    assert body["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"id": "t1", "name": "weather", "response": {"temp_c": 18}}},
            {"functionResponse": {"id": "t2", "name": "forecast", "response": {"result": [1, 2]}}},
        ],
    }
    assert body["contents"][3] == {"role": "user", "parts": [{"text": "thanks"}]}


def test_empty_turns_are_left_out() -> None:
    """Messages with no text, images or tool calls send no content, since Gemini refuses empty text parts."""
    body = WIRE.body(chat_request(user("hi"), Message("assistant", [TextPart("")]), user("again")))
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "user", "parts": [{"text": "again"}]},
    ]


def test_plain_text_tool_result_is_wrapped() -> None:
    """A tool result that is not JSON is sent as {"result": text}, since FunctionResponse.response must be an object."""
    body = WIRE.body(
        chat_request(
            user("x"),
            Message("assistant", [], [ToolCall("a", "f", "{}")]),
            Message("tool", [TextPart("sunny")], tool_call_id="a"),
        )
    )
    assert body["contents"][2]["parts"][0]["functionResponse"]["response"] == {"result": "sunny"}


def test_tool_result_with_unknown_id_is_invalid() -> None:
    """A tool message whose id matches no earlier tool call is an InvalidRequest naming its tool_call_id."""
    with pytest.raises(InvalidRequest) as info:
        WIRE.body(chat_request(user("x"), Message("tool", [TextPart("1")], tool_call_id="nope")))
    assert info.value.param == "messages[1].tool_call_id"


def test_tool_call_arguments_must_be_an_object() -> None:
    """Tool call arguments that are not a JSON object are an InvalidRequest naming the arguments."""
    with pytest.raises(InvalidRequest) as info:
        WIRE.body(chat_request(user("x"), Message("assistant", [], [ToolCall("a", "f", "[1]")])))
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"


def test_images_become_inline_data_or_file_data() -> None:
    """data: URLs become inlineData and http URLs fileData with a MIME type guessed from the extension or image/jpeg."""
    body = WIRE.body(
        chat_request(
            Message(
                "user",
                [
                    TextPart("what is this?"),
                    ImagePart("data:image/png;base64,iVBORw0KGgo="),
                    ImagePart("https://example.test/pics/harbour.webp?size=l"),
                    ImagePart("https://example.test/render"),
                ],
            )
        )
    )
    assert body["contents"][0]["parts"] == [
        {"text": "what is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.test/pics/harbour.webp?size=l"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.test/render"}},
    ]


def test_bad_data_url_is_invalid() -> None:
    """A data: URL that is not base64 is an InvalidRequest naming the image URL."""
    with pytest.raises(InvalidRequest) as info:
        WIRE.body(chat_request(Message("user", [TextPart("x"), ImagePart("data:image/png,raw")])))
    assert info.value.param == "messages[0].content[1].image_url.url"


def test_generation_config_fields() -> None:
    """Sampling parameters map to generationConfig fields with Gemini's names."""
    body = WIRE.body(
        chat_request(
            user("hi"),
            max_tokens=64,
            temperature=0.3,
            top_p=0.8,
            top_k=20,
            stop=["END", "STOP"],
            seed=42,
            n=2,
            presence_penalty=0.5,
            frequency_penalty=-0.5,
            logprobs=True,
            top_logprobs=3,
        )
    )
    assert body["generationConfig"] == {
        "maxOutputTokens": 64,
        "temperature": 0.3,
        "topP": 0.8,
        "topK": 20,
        "seed": 42,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.5,
        "responseLogprobs": True,
        "logprobs": 3,
        "stopSequences": ["END", "STOP"],
        "candidateCount": 2,
    }
    assert "generationConfig" not in WIRE.body(chat_request(user("hi")))


def test_tools_use_parameters_json_schema() -> None:
    """Tools become functionDeclarations with the JSON Schema in parametersJsonSchema, omitted for argument-less tools."""
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": False}
    body = WIRE.body(
        chat_request(user("hi"), tools=[Tool("weather", "Get weather", schema, strict=True), Tool("ping")])
    )
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {"name": "weather", "description": "Get weather", "parametersJsonSchema": schema},
                {"name": "ping"},
            ]
        }
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice("auto"), {"mode": "AUTO"}),
        (ToolChoice("none"), {"mode": "NONE"}),
        (ToolChoice("required"), {"mode": "ANY"}),
        (ToolChoice("named", "weather"), {"mode": "ANY", "allowedFunctionNames": ["weather"]}),
    ],
)
def test_tool_choice_becomes_tool_config(choice: ToolChoice, expected: dict[str, Any]) -> None:
    """tool_choice auto/none/required/named maps to functionCallingConfig AUTO/NONE/ANY/ANY with allowedFunctionNames."""
    body = WIRE.body(chat_request(user("hi"), tools=[Tool("weather")], tool_choice=choice))
    assert body["toolConfig"] == {"functionCallingConfig": expected}


def test_response_format_json_object_and_schema() -> None:
    """json_object sets responseMimeType application/json; json_schema adds responseJsonSchema."""
    body = WIRE.body(chat_request(user("hi"), response_format=ResponseFormat("json_object")))
    assert body["generationConfig"] == {"responseMimeType": "application/json"}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = WIRE.body(chat_request(user("hi"), response_format=ResponseFormat("json_schema", schema=schema, name="x")))
    assert body["generationConfig"] == {"responseMimeType": "application/json", "responseJsonSchema": schema}
    assert "generationConfig" not in WIRE.body(chat_request(user("hi"), response_format=ResponseFormat("text")))


def test_request_pieces_validate_against_sdk_models() -> None:
    """Every piece of a rich request body is accepted by the google-genai SDK's strict (extra='forbid') models."""
    request = chat_request(
        Message("system", [TextPart("Be brief.")]),
        Message(
            "user", [TextPart("hi"), ImagePart("data:image/png;base64,iVBORw0KGgo="), ImagePart("https://x.test/a.png")]
        ),
        Message("assistant", [], [ToolCall(join_call_id("c1", "AAEC+/8="), "f", '{"a": 1}')]),
        Message("tool", [TextPart("ok")], tool_call_id=join_call_id("c1", "AAEC+/8=")),
        max_tokens=10,
        temperature=0.1,
        top_k=3,
        stop=["x"],
        n=2,
        seed=1,
        logprobs=True,
        top_logprobs=2,
        tools=[Tool("f", "d", {"type": "object", "properties": {"a": {"type": "integer"}}})],
        tool_choice=ToolChoice("named", "f"),
        response_format=ResponseFormat("json_schema", schema={"type": "object"}),
    )
    body = WIRE.body(request)
    for content in body["contents"]:
        gt.Content.model_validate_json(orjson.dumps(content))
    gt.Content.model_validate_json(orjson.dumps(body["systemInstruction"]))
    gt.Tool.model_validate_json(orjson.dumps(body["tools"][0]))
    gt.ToolConfig.model_validate_json(orjson.dumps(body["toolConfig"]))
    gt.GenerationConfig.model_validate_json(orjson.dumps(body["generationConfig"]))
    sig = gt.Content.model_validate_json(orjson.dumps(body["contents"][1])).parts[0].thought_signature  # type: ignore[index]
    assert sig == bytes([0, 1, 2, 251, 255])


def test_unsupported_lists_user_parallel_tool_calls_and_extras() -> None:
    """unsupported() names used parameters Gemini cannot carry: user, parallel_tool_calls and every extra param."""
    request = chat_request(
        user("hi"), user="u", parallel_tool_calls=False, temperature=0.1, extra_params=["reasoning_effort"]
    )
    assert ADAPTER.unsupported(request, TARGET) == ["parallel_tool_calls", "user", "reasoning_effort"]
    assert (
        ADAPTER.unsupported(
            chat_request(user("hi"), n=2, top_k=3, response_format=ResponseFormat("json_object")), TARGET
        )
        == []
    )


def test_embeddings_request_shape() -> None:
    """Embeddings go to :batchEmbedContents with one request per input, each naming models/{model} and the dimension."""
    req = ADAPTER.embeddings_request(EmbeddingRequest(model="alias", inputs=["a", "b"], dimensions=256), TARGET)
    assert req.url == f"{DEFAULT_BASE_URL}/v1beta/models/gemini-2.5-flash:batchEmbedContents"
    assert req.headers["x-goog-api-key"] == "AIza-secret"
    assert orjson.loads(req.body) == {
        "requests": [
            {"model": "models/gemini-2.5-flash", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 256},
            {"model": "models/gemini-2.5-flash", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 256},
        ]
    }


# --- thought signatures ------------------------------------------------------------------------


def test_call_id_carries_thought_signature_both_ways() -> None:
    """join_call_id/split_call_id keep a base64 signature losslessly inside a url-safe tool call id."""
    sig = "8F2b+11G/eqSZw=="
    joined = join_call_id("call_0", sig)
    assert joined == f"call_0{SIGNATURE_SEP}8F2b-11G_eqSZw"
    assert split_call_id(joined) == ("call_0", sig)
    assert split_call_id("call_0") == ("call_0", None)
    assert join_call_id("x", None) == "x"
    assert join_call_id("x", SKIP_SIGNATURE) == "x"


def test_thought_signature_survives_a_turn() -> None:
    """A signature Gemini returned on a functionCall is sent back on that call in the next request."""
    response = ADAPTER.chat_response((SAMPLES / "chat_function_call.json").read_bytes(), TARGET)
    call = response.choices[0].message.tool_calls[0]
    original = orjson.loads((SAMPLES / "chat_function_call.json").read_bytes())
    signature = original["candidates"][0]["content"]["parts"][1]["thoughtSignature"]
    body = WIRE.body(
        chat_request(
            user("x"), Message("assistant", [], [call]), Message("tool", [TextPart("{}")], tool_call_id=call.id)
        )
    )
    part = body["contents"][1]["parts"][0]
    assert part == {
        "functionCall": {"id": "call_0", "name": "get_harbour_forecast", "args": {"harbour": "Dover", "hours": 12}},
        "thoughtSignature": signature,
    }
    assert body["contents"][2]["parts"][0]["functionResponse"]["id"] == "call_0"


# --- response parsing --------------------------------------------------------------------------


def test_text_response() -> None:
    """A text candidate becomes one assistant text part with finish stop, usage, id and model."""
    response = ADAPTER.chat_response((SAMPLES / "chat_text.json").read_bytes(), TARGET)
    assert response.id == "mQ3oZ4yJLtmR0-kPq8Cm2Ac"
    assert response.model == "gemini-2.0-flash"
    assert response.raw_body is None
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.text().startswith("Tides rise and fall")
    assert choice.finish_reason == "stop"
    assert response.usage == Usage(input_tokens=11, output_tokens=22)


def test_function_call_response_with_thoughts_and_cache() -> None:
    """functionCall parts become tool calls (finish tool_calls); thoughts count as output and reasoning, cache as cached input."""
    response = ADAPTER.chat_response((SAMPLES / "chat_function_call.json").read_bytes(), TARGET)
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.text() == "I'll fetch the harbour forecast first."
    [call] = choice.message.tool_calls
    assert call.id.startswith("call_0" + SIGNATURE_SEP)
    assert (call.name, call.arguments) == ("get_harbour_forecast", '{"harbour":"Dover","hours":12}')
    assert response.usage == Usage(input_tokens=2150, output_tokens=118, cached_input_tokens=2048, reasoning_tokens=97)


def test_function_call_ids_are_used_or_generated() -> None:
    """A functionCall's own id is kept; calls without one get call_<index> in candidate order."""
    body = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"name": "a", "args": {}}},
                        {"functionCall": {"id": "fc-77", "name": "b", "args": {"x": [1]}}},
                        {"functionCall": {"name": "c"}},
                    ],
                },
                "finishReason": "STOP",
            }
        ]
    }
    calls = ADAPTER.chat_response(orjson.dumps(body), TARGET).choices[0].message.tool_calls
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("call_0", "a", "{}"),
        ("fc-77", "b", '{"x":[1]}'),
        ("call_2", "c", "{}"),
    ]


def test_safety_finish_is_content_filter() -> None:
    """A candidate stopped by SAFETY has no text and finish content_filter."""
    response = ADAPTER.chat_response((SAMPLES / "chat_safety.json").read_bytes(), TARGET)
    assert response.choices[0].finish_reason == "content_filter"
    assert response.choices[0].message.content == []
    assert response.usage == Usage(input_tokens=17)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reason_mapping(reason: str, expected: str) -> None:
    """Gemini finish reasons map to stop, length or content_filter."""
    body = {"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert ADAPTER.chat_response(orjson.dumps(body), TARGET).choices[0].finish_reason == expected


def test_blocked_prompt_is_a_content_filter_response() -> None:
    """promptFeedback.blockReason with no candidates is an empty response with finish content_filter, not an error."""
    body = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []}, "usageMetadata": {"promptTokenCount": 9}}
    response = ADAPTER.chat_response(orjson.dumps(body), TARGET)
    assert [(c.index, c.message.content, c.finish_reason) for c in response.choices] == [(0, [], "content_filter")]
    assert response.usage == Usage(input_tokens=9)


def test_thought_parts_candidates_and_logprobs() -> None:
    """Thought summaries are not answer text, every candidate becomes a choice, and logprobsResult becomes OpenAI logprobs."""
    body = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "pondering", "thought": True}, {"text": "Hi"}]},
                "finishReason": "STOP",
                "index": 0,
                "logprobsResult": {
                    "topCandidates": [
                        {
                            "candidates": [
                                {"token": "Hi", "logProbability": -0.1},
                                {"token": "Yo", "logProbability": -2.5},
                            ]
                        }
                    ],
                    "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}],
                },
            },
            {"content": {"role": "model", "parts": [{"text": "Hey"}]}, "finishReason": "MAX_TOKENS", "index": 1},
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "toolUsePromptTokenCount": 4},
        "modelVersion": "models/gemini-2.5-pro",
    }
    response = ADAPTER.chat_response(orjson.dumps(body), TARGET)
    assert [(c.index, c.message.text(), c.finish_reason) for c in response.choices] == [
        (0, "Hi", "stop"),
        (1, "Hey", "length"),
    ]
    assert response.choices[0].logprobs == {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.1,
                "bytes": [72, 105],
                "top_logprobs": [
                    {"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
                    {"token": "Yo", "logprob": -2.5, "bytes": [89, 111]},
                ],
            }
        ],
        "refusal": None,
    }
    assert response.choices[1].logprobs is None
    assert response.model == "gemini-2.5-pro"
    assert response.usage == Usage(input_tokens=7, output_tokens=2)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'"a string"',
        b'{"candidates": "nope"}',
        b'{"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]}',
        b'{"candidates": [], "usageMetadata": {"promptTokenCount": 1}}',
        b'{"candidates": [{"content": {"parts": [{"text": "x"}]}}], "usageMetadata": {"promptTokenCount": "many"}}',
    ],
)
def test_malformed_responses(body: bytes) -> None:
    """Bodies that are not a readable GenerateContentResponse raise MalformedResponse, never a KeyError."""
    with pytest.raises(MalformedResponse):
        ADAPTER.chat_response(body, TARGET)


def test_embeddings_response() -> None:
    """batchEmbedContents vectors come back in order with zero usage, since Gemini reports none."""
    out = ADAPTER.embeddings_response(b'{"embeddings": [{"values": [0.1, 2]}, {"values": [-1]}]}', TARGET)
    assert out.vectors == [[0.1, 2.0], [-1.0]]
    assert out.usage == Usage()
    assert out.model == "gemini-2.5-flash"
    with pytest.raises(MalformedResponse):
        ADAPTER.embeddings_response(b'{"embedding": {"values": [1]}}', TARGET)


# --- stream parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_text_stream_in_random_pieces(seed: int) -> None:
    """A recorded text stream, fed in random pieces, yields its text, finish stop and the last usage once, at the end."""
    events = WIRE.parse_stream((SAMPLES / "chat_text.sse").read_bytes(), seed)
    assert isinstance(events[0], StreamStart) and events[0].id == "p8DoZ6mXA9Gq1-kP7bCo-Q4"
    assert events[0].model == "gemini-2.0-flash"
    text, tools, finish, usage = collect_stream(events)
    assert text == "A sea wall takes the force of the waves so the harbour stays calm."
    assert (tools, finish) == ([], "stop")
    assert usage == Usage(input_tokens=8, output_tokens=15)
    assert sum(isinstance(e, UsageEvent) for e in events) == 1
    assert isinstance(events[-1], UsageEvent)


@pytest.mark.parametrize("seed", range(5))
def test_function_call_stream_in_random_pieces(seed: int) -> None:
    """A streamed functionCall arrives as one ToolCallDelta with id, name and whole arguments, and finishes as tool_calls."""
    events = WIRE.parse_stream((SAMPLES / "chat_function_call.sse").read_bytes(), seed)
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len(deltas) == 1 and deltas[0].tool_index == 0
    assert deltas[0].id is not None and deltas[0].id.startswith("call_0" + SIGNATURE_SEP)
    text, tools, finish, usage = collect_stream(events)
    assert text == "Let me check the swell height."
    assert [(t["name"], t["arguments"]) for t in tools] == [("get_swell", {"beach": "Fistral", "unit": "m"})]
    assert finish == "tool_calls"
    assert usage == Usage(input_tokens=1290, output_tokens=113, cached_input_tokens=1024, reasoning_tokens=88)


def test_stream_with_several_candidates_and_lf_frames() -> None:
    """Frames separated by plain LF work too, and each candidate's events carry its index."""
    raw = _sse(
        {
            "candidates": [
                {"content": {"parts": [{"text": "a"}]}, "index": 0},
                {"content": {"parts": [{"text": "b"}]}, "index": 1},
            ]
        },
        {
            "candidates": [
                {
                    "content": {"parts": [{"functionCall": {"name": "f", "args": {}}}]},
                    "finishReason": "STOP",
                    "index": 1,
                },
                {"content": {"parts": [{"text": "c"}]}, "finishReason": "STOP", "index": 0},
            ]
        },
    ).replace(b"\r\n", b"\n")
    events = [e for e in WIRE.parse_stream(raw) if not isinstance(e, StreamStart)]
    assert events == [
        TextDelta("a", 0),
        TextDelta("b", 1),
        ToolCallDelta(0, "{}", "call_0", "f", 1),
        FinishEvent("tool_calls", 1),
        TextDelta("c", 0),
        FinishEvent("stop", 0),
    ]


def test_stream_without_finish_is_malformed() -> None:
    """A stream that ends with no finishReason raises MalformedResponse at close."""
    raw = _sse({"candidates": [{"content": {"parts": [{"text": "half"}]}, "index": 0}]})
    with pytest.raises(MalformedResponse):
        WIRE.parse_stream(raw)


def test_stream_prompt_block_finishes_with_content_filter() -> None:
    """A streamed promptFeedback block with no candidates finishes choice 0 with content_filter."""
    events = WIRE.parse_stream(
        _sse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 5}})
    )
    assert collect_stream(events)[2:] == ("content_filter", Usage(input_tokens=5))


@pytest.mark.parametrize(
    ("error", "cls"),
    [
        ({"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}, errors.RateLimited),
        ({"code": 500, "message": "internal", "status": "INTERNAL"}, errors.UpstreamServerError),
        ({"code": 504, "message": "slow", "status": "DEADLINE_EXCEEDED"}, errors.UpstreamTimeout),
    ],
)
def test_in_stream_error_frame_raises(error: dict[str, Any], cls: type[Exception]) -> None:
    """An error frame after the 200 raises the mapped UpstreamError from feed()."""
    raw = _sse({"candidates": [{"content": {"parts": [{"text": "x"}]}, "index": 0}]}, {"error": error})
    parser = ADAPTER.stream_parser(chat_request(user("hi"), stream=True), TARGET)
    with pytest.raises(cls):
        parser.feed(raw)


def test_unreadable_stream_frame_is_malformed() -> None:
    """A frame that is not JSON raises MalformedResponse."""
    parser = ADAPTER.stream_parser(chat_request(user("hi"), stream=True), TARGET)
    with pytest.raises(MalformedResponse):
        parser.feed(b"data: {oops\r\n\r\n")


# --- error mapping -----------------------------------------------------------------------------


def _err(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "status": status, "details": details or []}})


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (400, _err(400, "INVALID_ARGUMENT", "Invalid value at 'contents[0].role'"), errors.UpstreamBadRequest),
        (
            400,
            _err(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            ),
            errors.ContextLengthExceeded,
        ),
        (
            400,
            _err(
                400,
                "INVALID_ARGUMENT",
                "API key not valid.",
                [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
            ),
            errors.UpstreamAuthError,
        ),
        (
            401,
            _err(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
            errors.UpstreamAuthError,
        ),
        (403, _err(403, "PERMISSION_DENIED", "The caller does not have permission"), errors.UpstreamPermissionError),
        (404, _err(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta"), errors.UpstreamNotFound),
        (429, _err(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted"), errors.RateLimited),
        (500, _err(500, "INTERNAL", "An internal error has occurred."), errors.UpstreamServerError),
        (503, _err(503, "UNAVAILABLE", "The service is currently unavailable."), errors.UpstreamServerError),
        (504, _err(504, "DEADLINE_EXCEEDED", "Deadline exceeded"), errors.UpstreamTimeout),
        (502, b"<html>Bad Gateway</html>", errors.UpstreamServerError),
        (429, b'[{"error": {"code": 429, "message": "q", "status": "RESOURCE_EXHAUSTED"}}]', errors.RateLimited),
    ],
)
def test_error_mapping(status: int, body: bytes, cls: type[errors.UpstreamError]) -> None:
    """Gemini error bodies map by HTTP status first, with 400 split by message and ErrorInfo, and 504 as a timeout."""
    err = ADAPTER.map_error(status, {}, body, TARGET)
    assert type(err) is cls
    assert (err.provider, err.upstream_status) == ("gem", status)


def test_retry_after_from_header_or_retry_info() -> None:
    """A Retry-After header wins; otherwise the google.rpc.RetryInfo retryDelay in the body is used."""
    body = (SAMPLES / "error_429.json").read_bytes()
    assert ADAPTER.map_error(429, {}, body, TARGET).retry_after == 23
    assert ADAPTER.map_error(429, {"Retry-After": "4"}, body, TARGET).retry_after == 4
    fractional = _err(429, "RESOURCE_EXHAUSTED", "q", [{"@type": "x/google.rpc.RetryInfo", "retryDelay": "1.5s"}])
    assert ADAPTER.map_error(429, {}, fractional, TARGET).retry_after == 1.5
    assert ADAPTER.map_error(429, {}, _err(429, "RESOURCE_EXHAUSTED", "q"), TARGET).retry_after is None


def test_recorded_cases_match_the_adapter() -> None:
    """Every case in samples/gemini/cases.yaml parses to its documented values (a local copy of the conformance check)."""
    cases = yaml.safe_load((SAMPLES / "cases.yaml").read_text())
    for case in cases["responses"]:
        response = ADAPTER.chat_response((SAMPLES / case["file"]).read_bytes(), TARGET)
        assert response.choices[0].message.text() == case["text"]
        assert response.usage == Usage(**case["usage"])
    for case in cases["streams"]:
        text, _, finish, usage = collect_stream(WIRE.parse_stream((SAMPLES / case["file"]).read_bytes()))
        assert (text, finish, usage) == (case["text"], case["finish_reason"], Usage(**case["usage"]))
    for case in cases["errors"]:
        err = ADAPTER.map_error(case["status"], case["headers"], (SAMPLES / case["file"]).read_bytes(), TARGET)
        assert type(err).__name__ == case["error"]
        assert err.retry_after == case.get("retry_after")


# --- serve side: decoding ----------------------------------------------------------------------


def test_decode_full_request() -> None:
    """A GenerateContentRequest decodes to canonical messages, tool calls paired with results, tools and parameters."""
    body = {
        "systemInstruction": {"parts": [{"text": "Be "}, {"text": "brief."}]},
        "contents": [
            {
                "role": "user",
                "parts": [{"text": "Weather?"}, {"inlineData": {"mimeType": "image/png", "data": "iVBO"}}],
            },
            {
                "role": "model",
                "parts": [
                    {"text": "Checking."},
                    {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "AAEC+/8="},
                    {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "weather", "response": {"temp": 18}}},
                    {"functionResponse": {"name": "weather", "response": {"temp": 9}}},
                ],
            },
            {
                "parts": [
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/a.jpg"}},
                    {"text": "and this?"},
                ]
            },
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "weather",
                        "description": "By city",
                        "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
                    },
                    {"name": "raw", "parametersJsonSchema": {"type": "object", "additionalProperties": False}},
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}},
        "generationConfig": {
            "maxOutputTokens": 50,
            "temperature": 0.4,
            "topP": 0.9,
            "topK": 3.0,
            "candidateCount": 2,
            "stopSequences": ["END"],
            "seed": 9,
            "presencePenalty": 0.1,
            "frequencyPenalty": 0.2,
            "responseLogprobs": True,
            "logprobs": 4,
            "responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}},
        },
    }
    r = decode_chat_request(body, "gemini-2.5-flash", stream=True)
    assert (r.model, r.stream, r.include_usage, r.extra_params, r.raw) == ("gemini-2.5-flash", True, True, [], None)
    assert [(m.role, m.text()) for m in r.messages] == [
        ("system", "Be brief."),
        ("user", "Weather?"),
        ("assistant", "Checking."),
        ("tool", '{"temp":18}'),
        ("tool", '{"temp":9}'),
        ("user", "and this?"),
    ]
    assert r.messages[1].content[1] == ImagePart("data:image/png;base64,iVBO")
    assert r.messages[5].content[0] == ImagePart("https://x.test/a.jpg")
    calls = r.messages[2].tool_calls
    assert [(c.name, c.arguments) for c in calls] == [("weather", '{"city":"Paris"}'), ("weather", '{"city":"Oslo"}')]
    assert split_call_id(calls[0].id) == ("call_0", "AAEC+/8=") and calls[1].id == "call_1"
    assert [(m.tool_call_id, m.name) for m in r.messages[3:5]] == [(calls[0].id, "weather"), (calls[1].id, "weather")]
    assert r.tools == [
        Tool("weather", "By city", {"type": "object", "properties": {"city": {"type": "string"}}}),
        Tool("raw", None, {"type": "object", "additionalProperties": False}),
    ]
    assert r.tool_choice == ToolChoice("named", "weather")
    assert (r.max_tokens, r.temperature, r.top_p, r.top_k, r.n, r.stop, r.seed) == (50, 0.4, 0.9, 3, 2, ["END"], 9)
    assert (r.presence_penalty, r.frequency_penalty, r.logprobs, r.top_logprobs) == (0.1, 0.2, True, 4)
    assert r.response_format == ResponseFormat(
        "json_schema", schema={"type": "object", "properties": {"a": {"type": "integer"}}}, name="response"
    )


def test_decode_snake_case_fields() -> None:
    """proto3 snake_case field names (which the SDK sends for some fields) read like lowerCamel ones."""
    body = {
        "system_instruction": {"parts": [{"text": "S"}]},
        "contents": [{"role": "user", "parts": [{"inline_data": {"mime_type": "image/gif", "data": "R0lG"}}]}],
        "tools": [{"function_declarations": [{"name": "f", "parameters_json_schema": {"type": "object"}}]}],
        "tool_config": {"function_calling_config": {"mode": "NONE"}},
        "generation_config": {"max_output_tokens": 5, "response_mime_type": "application/json"},
    }
    r = decode_chat_request(body, "m", stream=False)
    assert r.messages[0].text() == "S"
    assert r.messages[1].content == [ImagePart("data:image/gif;base64,R0lG")]
    assert r.tools == [Tool("f", None, {"type": "object"})]
    assert r.tool_choice == ToolChoice("none")
    assert (r.max_tokens, r.response_format) == (5, ResponseFormat("json_object"))


def test_decode_pairs_results_by_id_when_given() -> None:
    """functionResponse ids, when present, pair results with the call of the same id regardless of order."""
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {
                "role": "model",
                "parts": [{"functionCall": {"id": "A", "name": "f"}}, {"functionCall": {"id": "B", "name": "f"}}],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"id": "B", "name": "f", "response": {}}},
                    {"functionResponse": {"name": "f", "response": {}}},
                ],
            },
        ]
    }
    r = decode_chat_request(body, "m", stream=False)
    assert [c.id for c in r.messages[1].tool_calls] == ["A", "B"]
    assert [m.tool_call_id for m in r.messages[2:]] == ["B", "A"]


def test_adapter_request_decodes_with_the_same_call_ids() -> None:
    """A request the adapter writes decodes on the serve side with its tool call ids, signatures and pairing intact."""
    signed = join_call_id("c2", "AAEC+/8=")
    request = chat_request(
        user("x"),
        Message("assistant", [], [ToolCall("c1", "f", "{}"), ToolCall(signed, "g", '{"a":1}')]),
        Message("tool", [TextPart("1")], tool_call_id=signed),
        Message("tool", [TextPart("2")], tool_call_id="c1"),
    )
    r = decode_chat_request(WIRE.body(request), "m", stream=False)
    assert [c.id for c in r.messages[1].tool_calls] == ["c1", signed]
    assert [(m.tool_call_id, m.text()) for m in r.messages[2:]] == [(signed, '{"result":1}'), ("c1", '{"result":2}')]


def test_decode_flags_extras() -> None:
    """Fields the canonical form cannot carry are listed in extra_params rather than silently dropped."""
    body = {
        "contents": [{"role": "user", "parts": [{"text": "x"}, {"executableCode": {"code": "1"}}]}],
        "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
        "tools": [{"googleSearch": {}}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a", "b"]}},
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}, "responseMimeType": "text/x.enum"},
    }
    r = decode_chat_request(body, "m", stream=False)
    assert sorted(r.extra_params) == sorted(
        [
            "safetySettings",
            "contents[0].parts[1].executableCode",
            "tools[0].googleSearch",
            "toolConfig.functionCallingConfig.allowedFunctionNames",
            "generationConfig.thinkingConfig",
            "generationConfig.responseMimeType=text/x.enum",
        ]
    )
    assert r.tool_choice == ToolChoice("required")
    assert ADAPTER.unsupported(r, TARGET) == r.extra_params


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], "body"),
        ({}, "contents"),
        ({"contents": []}, "contents"),
        ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "contents[0].role"),
        ({"contents": [{"role": "user", "parts": []}]}, "contents[0].parts"),
        ({"contents": [{"role": "user", "parts": ["x"]}]}, "contents[0].parts[0]"),
        ({"contents": [{"role": "user", "parts": [{"text": 5}]}]}, "contents[0].parts[0].text"),
        (
            {"contents": [{"role": "user", "parts": [{"inlineData": {"data": "x"}}]}]},
            "contents[0].parts[0].inlineData.mimeType",
        ),
        (
            {"contents": [{"role": "user", "parts": [{"functionCall": {"name": "f"}}]}]},
            "contents[0].parts[0].functionCall",
        ),
        (
            {"contents": [{"role": "model", "parts": [{"functionCall": {"args": {}}}]}]},
            "contents[0].parts[0].functionCall.name",
        ),
        (
            {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": [1]}}]}]},
            "contents[0].parts[0].functionCall.args",
        ),
        (
            {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"temperature": "hot"}},
            "generationConfig.temperature",
        ),
        ({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"topK": 2.5}}, "generationConfig.topK"),
        (
            {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": 0}},
            "generationConfig.maxOutputTokens",
        ),
        (
            {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"responseSchema": {"type": "OBJECT"}}},
            "generationConfig.responseMimeType",
        ),
        (
            {"contents": [{"parts": [{"text": "x"}]}], "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
            "toolConfig.functionCallingConfig.mode",
        ),
        (
            {"contents": [{"parts": [{"text": "x"}]}], "tools": [{"functionDeclarations": [{"description": "d"}]}]},
            "tools[0].functionDeclarations[0].name",
        ),
        (
            {"contents": [{"parts": [{"text": "x"}]}], "systemInstruction": {"parts": [{"inlineData": {}}]}},
            "systemInstruction.parts[0].text",
        ),
    ],
)
def test_decode_bad_input_names_the_param(body: Any, param: str) -> None:
    """Malformed request bodies raise InvalidRequest whose param is the offending field's path."""
    with pytest.raises(InvalidRequest) as info:
        decode_chat_request(body, "m", stream=False)
    assert info.value.param == param


def test_decode_embeddings_request() -> None:
    """batchEmbedContents bodies decode to one input per request, with a shared outputDimensionality."""
    body = {
        "requests": [
            {"model": "models/e", "content": {"parts": [{"text": "a"}, {"text": "b"}]}, "outputDimensionality": 8},
            {
                "model": "models/e",
                "content": {"parts": [{"text": "c"}]},
                "output_dimensionality": 8,
                "taskType": "RETRIEVAL_QUERY",
            },
        ]
    }
    assert decode_embeddings_request(body, "e") == EmbeddingRequest(model="e", inputs=["ab", "c"], dimensions=8)
    for bad, param in (
        ({"requests": []}, "requests"),
        ({"requests": [{"content": {"parts": [{"text": 1}]}}]}, "requests[0].content.parts[0].text"),
        ({"requests": [{"content": {"parts": []}, "outputDimensionality": 1}, {"content": {"parts": []}}]}, "requests"),
    ):
        with pytest.raises(InvalidRequest) as info:
            decode_embeddings_request(bad, "e")
        assert info.value.param == param


# --- serve side: encoding ----------------------------------------------------------------------


def _response() -> ChatResponse:
    return ChatResponse(
        id="resp-1",
        model="gemini-2.5-flash",
        created=1700000000,
        choices=[
            Choice(
                0,
                Message(
                    "assistant",
                    [TextPart("Checking the tides.")],
                    [
                        ToolCall(join_call_id("call_0", "AAEC+/8="), "get_tides", '{"port":"Dover"}'),
                        ToolCall("x9", "noop", ""),
                    ],
                ),
                "tool_calls",
            ),
            Choice(1, Message("assistant", [TextPart("Cut sh")]), "length"),
        ],
        usage=Usage(input_tokens=1500, output_tokens=140, cached_input_tokens=1024, reasoning_tokens=100),
    )


def test_encode_chat_response_shape() -> None:
    """A response encodes to candidates with model-role parts, Gemini finish reasons, usageMetadata, modelVersion and responseId."""
    out = orjson.loads(encode_chat_response(_response()))
    assert out["candidates"][0] == {
        "content": {
            "role": "model",
            "parts": [
                {"text": "Checking the tides."},
                {
                    "functionCall": {"id": "call_0", "name": "get_tides", "args": {"port": "Dover"}},
                    "thoughtSignature": "AAEC+/8=",
                },
                {"functionCall": {"id": "x9", "name": "noop", "args": {}}},
            ],
        },
        "index": 0,
        "finishReason": "STOP",
    }
    assert out["candidates"][1]["finishReason"] == "MAX_TOKENS"
    assert out["usageMetadata"] == {
        "promptTokenCount": 1500,
        "candidatesTokenCount": 40,
        "totalTokenCount": 1640,
        "thoughtsTokenCount": 100,
        "cachedContentTokenCount": 1024,
    }
    assert (out["modelVersion"], out["responseId"]) == ("gemini-2.5-flash", "resp-1")


def test_encoded_response_reads_back_through_the_adapter() -> None:
    """What the serve side writes, the adapter reads back: text, tool calls with signatures, finishes and usage."""
    parsed = ADAPTER.chat_response(encode_chat_response(_response()), TARGET)
    original = _response()
    first, second = parsed.choices
    assert first.message.tool_calls == [original.choices[0].message.tool_calls[0], ToolCall("x9", "noop", "{}")]
    assert second.message.tool_calls == []
    assert [(c.message.text(), c.finish_reason) for c in parsed.choices] == [
        ("Checking the tides.", "tool_calls"),
        ("Cut sh", "length"),
    ]
    assert parsed.usage == original.usage


def test_encode_response_parses_with_the_sdk() -> None:
    """encode_chat_response output validates as the SDK's GenerateContentResponse with the same text, calls and usage."""
    parsed = gt.GenerateContentResponse.model_validate_json(encode_chat_response(_response()))
    assert parsed.text == "Checking the tides."
    assert [(c.id, c.name, c.args) for c in parsed.function_calls or ()] == [
        ("call_0", "get_tides", {"port": "Dover"}),
        ("x9", "noop", {}),
    ]
    assert parsed.candidates is not None and parsed.candidates[0].content is not None
    assert parsed.candidates[0].content.parts is not None
    assert parsed.candidates[0].content.parts[1].thought_signature == bytes([0, 1, 2, 251, 255])
    assert parsed.candidates[1].finish_reason == gt.FinishReason.MAX_TOKENS
    usage = parsed.usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count) == (1500, 40, 100)
    assert (usage.cached_content_token_count, usage.total_token_count) == (1024, 1640)
    assert (parsed.model_version, parsed.response_id) == ("gemini-2.5-flash", "resp-1")


def test_encode_logprobs_round_trip() -> None:
    """OpenAI-shaped canonical logprobs encode to logprobsResult and parse back unchanged."""
    logprobs = {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.5,
                "bytes": [72, 105],
                "top_logprobs": [{"token": "Hi", "logprob": -0.5, "bytes": [72, 105]}],
            }
        ],
        "refusal": None,
    }
    response = ChatResponse("r", "m", 0, [Choice(0, Message("assistant", [TextPart("Hi")]), "stop", logprobs)])
    raw = encode_chat_response(response)
    gt.GenerateContentResponse.model_validate_json(raw)
    assert ADAPTER.chat_response(raw, TARGET).choices[0].logprobs == logprobs


def test_embeddings_and_error_bodies() -> None:
    """Embeddings encode as {"embeddings": [{"values"}]} and errors as Gemini's {"error": {code, message, status}}."""
    raw = encode_embeddings_response(EmbeddingResponse("e", [[0.5, 1.0]], Usage()))
    assert orjson.loads(raw) == {"embeddings": [{"values": [0.5, 1.0]}]}
    assert orjson.loads(error_body(429, "slow down", "RESOURCE_EXHAUSTED")) == {
        "error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}
    }


def _stream_events() -> list[StreamEvent]:
    return [
        StreamStart("s-1", "gemini-2.5-flash", 1700000000),
        TextDelta("Hel"),
        TextDelta("lo"),
        ToolCallDelta(0, "", id=join_call_id("c1", "AAEC+/8="), name="lookup"),
        ToolCallDelta(0, '{"q": '),
        ToolCallDelta(1, "{}", id="c2", name="ping"),
        ToolCallDelta(0, '"tides"}'),
        FinishEvent("tool_calls"),
        UsageEvent(Usage(input_tokens=300, output_tokens=12, cached_input_tokens=256, reasoning_tokens=5)),
    ]


def test_stream_encoder_frames() -> None:
    """Text goes out per delta; tool calls are buffered into whole functionCall parts in the final chunk with finish and usage."""
    encoder = StreamEncoder(chat_request(user("hi"), stream=True))
    pieces = [encoder.encode(e) for e in _stream_events()]
    assert [bool(p) for p in pieces] == [False, True, True, False, False, False, False, False, False]
    final = encoder.end()
    assert encoder.end() == b""
    raw = b"".join(pieces) + final
    assert raw.endswith(b"\r\n\r\n") and b"[DONE]" not in raw
    frames = _frames(raw)
    assert frames[0] == {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}],
        "modelVersion": "gemini-2.5-flash",
        "responseId": "s-1",
    }
    assert frames[2]["candidates"] == [
        {
            "content": {
                "role": "model",
                "parts": [
                    {
                        "functionCall": {"id": "c1", "name": "lookup", "args": {"q": "tides"}},
                        "thoughtSignature": "AAEC+/8=",
                    },
                    {"functionCall": {"id": "c2", "name": "ping", "args": {}}},
                ],
            },
            "index": 0,
            "finishReason": "STOP",
        }
    ]
    assert frames[2]["usageMetadata"] == {
        "promptTokenCount": 300,
        "candidatesTokenCount": 7,
        "totalTokenCount": 312,
        "thoughtsTokenCount": 5,
        "cachedContentTokenCount": 256,
    }


def test_stream_encoder_round_trips_through_the_adapter() -> None:
    """A stream the encoder writes parses back to the same text, tool calls, finish and usage."""
    encoder = StreamEncoder(chat_request(user("hi"), stream=True))
    raw = b"".join(encoder.encode(e) for e in _stream_events()) + encoder.end()
    text, tools, finish, usage = collect_stream(WIRE.parse_stream(raw))
    assert text == "Hello"
    assert [(t["id"], t["name"], t["arguments"]) for t in tools] == [
        (join_call_id("c1", "AAEC+/8="), "lookup", {"q": "tides"}),
        ("c2", "ping", {}),
    ]
    assert (finish, usage) == (
        "tool_calls",
        Usage(input_tokens=300, output_tokens=12, cached_input_tokens=256, reasoning_tokens=5),
    )


def test_stream_encoder_flushes_calls_before_later_text() -> None:
    """Buffered calls go out before later text of the same choice; an OpenAI passthrough chunk is refused."""
    encoder = StreamEncoder(chat_request(user("hi"), stream=True))
    encoder.encode(ToolCallDelta(0, '{"a":1}', id="c", name="f"))
    assert _frames(encoder.encode(TextDelta("after")))[0]["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"id": "c", "name": "f", "args": {"a": 1}}},
        {"text": "after"},
    ]
    encoder.encode(FinishEvent("stop"))
    final = _frames(encoder.end())[0]
    assert final["candidates"] == [
        {"content": {"role": "model", "parts": [{"text": ""}]}, "index": 0, "finishReason": "STOP"}
    ]
    assert "usageMetadata" not in final
    with pytest.raises(TypeError):
        encoder.encode(PassthroughChunk(b"{}"))


def test_stream_encoder_with_nothing_buffered_ends_empty() -> None:
    """end() writes nothing when no finish or usage is pending."""
    encoder = StreamEncoder(chat_request(user("hi"), stream=True))
    assert encoder.encode(TextDelta("x"))
    assert encoder.end() == b""


@pytest.mark.parametrize(
    ("type_", "code", "status"),
    [
        ("rate_limit_error", "rate_limit_exceeded", (429, "RESOURCE_EXHAUSTED")),
        ("server_error", "upstream_timeout", (504, "DEADLINE_EXCEEDED")),
        ("invalid_request_error", "context_length_exceeded", (400, "INVALID_ARGUMENT")),
        ("server_error", None, (500, "INTERNAL")),
    ],
)
def test_stream_encoder_error_frame(type_: str, code: str | None, status: tuple[int, str]) -> None:
    """error() writes one data frame holding Gemini's error envelope with a matching code and status."""
    raw = StreamEncoder(chat_request(user("hi"))).error("went wrong", type_, code)
    assert raw.startswith(b"data: ") and raw.endswith(b"\r\n\r\n")
    assert _frames(raw)[0] == {"error": {"code": status[0], "message": "went wrong", "status": status[1]}}


# --- the official SDK against the serve side ---------------------------------------------------


def _client(handler: Callable[[httpx2.Request], httpx2.Response]) -> genai.Client:
    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    options = gt.HttpOptions(base_url="http://bw.test", api_version="v1beta", httpx_client=http)
    return genai.Client(api_key="test-key", http_options=options)


def _route(request: httpx2.Request) -> tuple[str, str]:
    """(model, method) from /v1beta/models/{model}:{method}."""
    model, _, method = request.url.path.removeprefix("/v1beta/models/").partition(":")
    return model, method


def test_sdk_generate_content_round_trip() -> None:
    """The SDK's request decodes with the serve side, and its response encodes back into the SDK's objects intact."""
    seen: list[ChatRequest] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.headers["x-goog-api-key"] == "test-key"
        model, method = _route(request)
        assert method == "generateContent"
        seen.append(decode_chat_request(orjson.loads(request.content), model, stream=False))
        return httpx2.Response(200, content=encode_chat_response(_response()))

    config = gt.GenerateContentConfig(
        system_instruction="Be brief.",
        temperature=0.5,
        top_k=4,
        max_output_tokens=99,
        stop_sequences=["END"],
        tools=[
            gt.Tool(
                function_declarations=[
                    gt.FunctionDeclaration(name="get_tides", parameters_json_schema={"type": "object"})
                ]
            )
        ],
        tool_config=gt.ToolConfig(
            function_calling_config=gt.FunctionCallingConfig(mode=gt.FunctionCallingConfigMode.AUTO)
        ),
        automatic_function_calling=gt.AutomaticFunctionCallingConfig(disable=True),
    )
    contents = [
        gt.Content(
            role="user", parts=[gt.Part(text="tides?"), gt.Part.from_bytes(data=b"\x89PNG", mime_type="image/png")]
        ),
        gt.Content(
            role="model", parts=[gt.Part(function_call=gt.FunctionCall(name="get_tides", args={"port": "Dover"}))]
        ),
        gt.Content(
            role="user",
            parts=[gt.Part(function_response=gt.FunctionResponse(name="get_tides", response={"high": "06:10"}))],
        ),
    ]
    result = _client(handler).models.generate_content(model="gemini-2.5-flash", contents=contents, config=config)
    [r] = seen
    assert r.model == "gemini-2.5-flash" and r.stream is False
    assert [(m.role, m.text()) for m in r.messages] == [
        ("system", "Be brief."),
        ("user", "tides?"),
        ("assistant", ""),
        ("tool", '{"high":"06:10"}'),
    ]
    assert r.messages[1].content[1] == ImagePart("data:image/png;base64,iVBORw==")
    assert r.messages[3].tool_call_id == r.messages[2].tool_calls[0].id
    assert (r.temperature, r.top_k, r.max_tokens, r.stop) == (0.5, 4, 99, ["END"])
    assert (r.tools, r.tool_choice) == ([Tool("get_tides", None, {"type": "object"})], ToolChoice("auto"))
    assert r.extra_params == []
    assert result.text == "Checking the tides."
    assert [(c.name, c.args) for c in result.function_calls or ()] == [("get_tides", {"port": "Dover"}), ("noop", {})]
    assert result.usage_metadata is not None and result.usage_metadata.thoughts_token_count == 100


def test_sdk_stream_round_trip() -> None:
    """The SDK's streaming call reads the StreamEncoder's frames: text pieces, the whole function call, finish and usage."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        model, method = _route(request)
        assert (method, request.url.params.get("alt")) == ("streamGenerateContent", "sse")
        chat = decode_chat_request(orjson.loads(request.content), model, stream=True)
        encoder = StreamEncoder(chat)
        data = b"".join(encoder.encode(e) for e in _stream_events()) + encoder.end()
        return httpx2.Response(200, content=data, headers={"content-type": "text/event-stream"})

    chunks = list(_client(handler).models.generate_content_stream(model="gemini-2.5-flash", contents="tides?"))
    assert "".join(c.text or "" for c in chunks[:-1]) == "Hello"
    last = chunks[-1]
    assert [(c.id, c.name, c.args) for c in last.function_calls or ()] == [
        ("c1", "lookup", {"q": "tides"}),
        ("c2", "ping", {}),
    ]
    assert last.candidates is not None and last.candidates[0].finish_reason == gt.FinishReason.STOP
    assert last.usage_metadata is not None and last.usage_metadata.total_token_count == 312
    assert last.response_id == "s-1"


def test_sdk_embeddings_and_errors() -> None:
    """The SDK's embed_content decodes with the serve side, and an error_body is raised by the SDK with its code and status."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        model, method = _route(request)
        if model == "missing":
            return httpx2.Response(429, content=error_body(429, "slow down", "RESOURCE_EXHAUSTED"))
        assert method == "batchEmbedContents"
        req = decode_embeddings_request(orjson.loads(request.content), model)
        assert (req.model, req.inputs, req.dimensions) == ("text-embedding-004", ["a", "b"], 3)
        return httpx2.Response(
            200, content=encode_embeddings_response(EmbeddingResponse(req.model, [[1.0, 0, 0], [0, 1.0, 0]], Usage()))
        )

    client = _client(handler)
    result = client.models.embed_content(
        model="text-embedding-004", contents=["a", "b"], config=gt.EmbedContentConfig(output_dimensionality=3)
    )
    assert [e.values for e in result.embeddings or ()] == [[1.0, 0, 0], [0, 1.0, 0]]
    with pytest.raises(genai_errors.ClientError) as info:
        client.models.generate_content(model="missing", contents="x")
    assert (info.value.code, info.value.status, info.value.message) == (429, "RESOURCE_EXHAUSTED", "slow down")
