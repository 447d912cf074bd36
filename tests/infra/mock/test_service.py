"""``MockService`` routes, vendor error shapes, and every fault's observable effect."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from breakwater.core.types import ChatRequest, ChatResponse
from breakwater.infra.clock import SystemRandom
from breakwater.infra.mock.faults import LONG_SLEEP, ConnectionReset
from breakwater.infra.mock.model import MockModel
from breakwater.infra.mock.service import MockService
from tests.infra.mock.harness import FakeClock, call
from tests.providers.helpers import sse_data

HI = [{"role": "user", "content": "hi"}]
OPENAI = ("/v1/chat/completions", {"model": "m", "messages": HI})
ANTHROPIC = ("/v1/messages", {"model": "c", "max_tokens": 50, "messages": HI})
GEMINI = ("/v1beta/models/g:generateContent", {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
WIRES: dict[str, tuple[str, dict[str, Any]]] = {"openai": OPENAI, "anthropic": ANTHROPIC, "gemini": GEMINI}


def error_of(wire: str, body: bytes) -> tuple[str, str]:
    """(type-or-status, message) from a vendor error body, asserting the vendor's envelope."""
    data = orjson.loads(body)
    if wire == "anthropic":
        assert data["type"] == "error"
        return data["error"]["type"], data["error"]["message"]
    err = data["error"]
    if wire == "gemini":
        assert isinstance(err["code"], int)
        return err["status"], err["message"]
    assert set(err) == {"message", "type", "param", "code"}
    return err["type"], err["message"]


async def test_openai_chat(service: MockService) -> None:
    """POST /v1/chat/completions answers a chat.completion with the requested model and usage."""
    reply, body = await call(service, *OPENAI)
    data = orjson.loads(body)
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    assert data["object"] == "chat.completion" and data["model"] == "m"
    assert data["id"].startswith("chatcmpl-") and data["usage"]["total_tokens"] > 0


async def test_paths_without_v1_prefix(service: MockService) -> None:
    """A base URL without /v1 works too (/chat/completions, /models)."""
    assert (await call(service, "/chat/completions", OPENAI[1]))[0].status == 200
    assert (await call(service, "/models", method="GET"))[0].status == 200


async def test_azure_deployment_path(service: MockService) -> None:
    """Azure-style paths take the model from the deployment name when the body has none."""
    body = {"messages": HI}
    _, out = await call(service, "/openai/deployments/my-gpt/chat/completions", body, query="api-version=2024-10-21")
    assert orjson.loads(out)["model"] == "my-gpt"
    _, out = await call(service, "/openai/deployments/my-embed/embeddings", {"input": "x"})
    assert orjson.loads(out)["model"] == "my-embed"


async def test_anthropic_and_gemini_chat(service: MockService) -> None:
    """/v1/messages answers an Anthropic message; :generateContent a Gemini response."""
    _, body = await call(service, *ANTHROPIC)
    assert orjson.loads(body)["type"] == "message"
    _, body = await call(service, *GEMINI)
    data = orjson.loads(body)
    assert data["candidates"][0]["content"]["parts"][0]["text"] and data["modelVersion"] == "g"


async def test_health_and_models(service: MockService) -> None:
    """/healthz is ok; /v1/models speaks OpenAI, or Anthropic when anthropic-version is sent; Gemini lists too."""
    assert orjson.loads((await call(service, "/healthz", method="GET"))[1]) == {"status": "ok"}
    assert orjson.loads((await call(service, "/v1/models", method="GET"))[1])["object"] == "list"
    anthropic = orjson.loads(
        (await call(service, "/v1/models", method="GET", headers={"anthropic-version": "2023-06-01"}))[1]
    )
    assert anthropic["data"][0]["type"] == "model" and anthropic["has_more"] is False
    gemini = orjson.loads((await call(service, "/v1beta/models", method="GET"))[1])
    assert gemini["models"][0]["name"].startswith("models/")


async def test_embeddings_both_wires(service: MockService) -> None:
    """OpenAI embeddings (float and base64) and Gemini batchEmbedContents/embedContent answer vectors."""
    data = orjson.loads(
        (await call(service, "/v1/embeddings", {"model": "e", "input": ["a", "b"], "dimensions": 8}))[1]
    )
    assert [len(d["embedding"]) for d in data["data"]] == [8, 8]
    b64 = orjson.loads(
        (await call(service, "/v1/embeddings", {"model": "e", "input": "a", "encoding_format": "base64"}))[1]
    )
    assert isinstance(b64["data"][0]["embedding"], str)
    batch = {"requests": [{"model": "models/e", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 4}]}
    data = orjson.loads((await call(service, "/v1beta/models/e:batchEmbedContents", batch))[1])
    assert len(data["embeddings"][0]["values"]) == 4
    single = {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 4}
    data = orjson.loads((await call(service, "/v1beta/models/e:embedContent", single))[1])
    assert len(data["embedding"]["values"]) == 4


async def test_count_tokens(service: MockService) -> None:
    """Anthropic count_tokens and Gemini countTokens report the same prompt count as a reply's usage."""
    _, usage = await call(service, *ANTHROPIC)
    expected = orjson.loads(usage)["usage"]["input_tokens"]
    body = {"model": "c", "messages": HI}
    assert orjson.loads((await call(service, "/v1/messages/count_tokens", body))[1]) == {"input_tokens": expected}
    gemini = orjson.loads((await call(service, "/v1beta/models/g:countTokens", GEMINI[1]))[1])
    assert gemini == {"totalTokens": expected}


@pytest.mark.parametrize(
    "auth", [{"authorization": "Bearer x"}, {"x-api-key": "x"}, {"api-key": "x"}, {"x-goog-api-key": "x"}, {}]
)
async def test_any_auth_is_accepted(service: MockService, auth: dict[str, str]) -> None:
    """The mock checks no key: any auth header form, or none, is served."""
    assert (await call(service, *OPENAI, headers=auth))[0].status == 200


@pytest.mark.parametrize(
    ("path", "wire"),
    [("/v1/nope", "openai"), ("/v1/messages/batches", "anthropic"), ("/v1beta/models/g:unknownVerb", "gemini")],
)
async def test_unknown_paths_are_404_in_the_vendor_shape(service: MockService, path: str, wire: str) -> None:
    """An unknown path answers 404 in the shape of the vendor its prefix belongs to."""
    reply, body = await call(service, path, {})
    assert reply.status == 404
    kind, _ = error_of(wire, body)
    assert kind in ("invalid_request_error", "not_found_error", "NOT_FOUND")


async def test_wrong_method_is_405(service: MockService) -> None:
    """GET on a POST route is 405 with a message naming the right method."""
    reply, body = await call(service, "/v1/chat/completions", method="GET")
    assert reply.status == 405 and "POST" in error_of("openai", body)[1]


BAD_BODIES: list[Any] = [
    b"{not json",
    b"",
    b"[]",
    b"null",
    b'"text"',
    {"model": 5},
    {"messages": "hi", "model": "m", "contents": "x", "max_tokens": "lots"},
    {"model": "m", "messages": [{"role": "wizard"}], "contents": [{"parts": 3}], "max_tokens": 5},
    {"model": "m", "messages": [{"role": "user", "content": [{"type": 7}]}], "contents": [7], "max_tokens": 5},
    {"model": "m", "messages": HI, "tools": [{"function": {}}], "contents": [{"parts": [{"text": 1}]}], "max_tokens": 0},
    {"model": "m", "messages": HI, "response_format": {"type": "json_schema", "json_schema": {"schema": {"$ref": "#/nope"}}}},
    {"model": "m", "messages": HI, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}},
]  # fmt: skip


@pytest.mark.parametrize("wire", list(WIRES))
@pytest.mark.parametrize("body", BAD_BODIES)
async def test_bad_input_is_a_400_in_the_vendor_shape(service: MockService, wire: str, body: Any) -> None:
    """Malformed or invalid bodies answer 400 in that vendor's error shape, never a 500."""
    reply, out = await call(service, WIRES[wire][0], body)
    assert reply.status == 400, out
    kind, message = error_of(wire, out)
    assert kind in ("invalid_request_error", "INVALID_ARGUMENT") and message


class _BrokenModel(MockModel):
    """A model with a bug: answering raises an exception that no serve module turned into a 400."""

    def chat(self, request: ChatRequest, *, response_id: str = "chatcmpl-mock", created: int = 0) -> ChatResponse:
        raise TypeError("unhashable type: 'dict'")


@pytest.mark.parametrize("wire", list(WIRES))
async def test_an_unforeseen_failure_is_a_400_without_python_text(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, wire: str
) -> None:
    """An exception nothing foresaw is a 400 in the vendor's shape that shows none of Python's text, and is logged whole."""
    service = MockService(clock, SystemRandom(7), model=_BrokenModel())
    reply, out = await call(service, *WIRES[wire])
    assert reply.status == 400, out
    kind, message = error_of(wire, out)
    assert kind in ("invalid_request_error", "INVALID_ARGUMENT")
    assert "wrong type or shape" in message and "unhashable" not in out.decode()
    (record,) = [r for r in caplog.records if r.name == "breakwater.mock"]
    assert record.levelname == "ERROR" and record.exc_info is not None and record.exc_info[0] is TypeError


@pytest.mark.parametrize(
    ("wire", "status", "kind"),
    [
        ("openai", 429, "requests"),
        ("openai", 500, "server_error"),
        ("openai", 503, "server_error"),
        ("anthropic", 429, "rate_limit_error"),
        ("anthropic", 500, "api_error"),
        ("anthropic", 529, "overloaded_error"),
        ("anthropic", 401, "authentication_error"),
        ("gemini", 429, "RESOURCE_EXHAUSTED"),
        ("gemini", 503, "UNAVAILABLE"),
        ("gemini", 500, "INTERNAL"),
    ],
)
async def test_status_faults_use_real_error_shapes(service: MockService, wire: str, status: int, kind: str) -> None:
    """status=N answers N with the vendor's own error type for it."""
    reply, body = await call(service, *WIRES[wire], headers={"x-mock-fault": f"status={status}"})
    assert reply.status == status
    assert error_of(wire, body)[0] == kind


async def test_openai_rate_limit_body_and_retry_headers(service: MockService) -> None:
    """An OpenAI 429 carries code rate_limit_exceeded and both retry-after and retry-after-ms."""
    reply, body = await call(service, *OPENAI, headers={"x-mock-fault": "status=429;retry_after=2.5"})
    assert orjson.loads(body)["error"]["code"] == "rate_limit_exceeded"
    assert reply.headers["retry-after"] == "3" and reply.headers["retry-after-ms"] == "2500"


async def test_429_defaults_to_a_retry_hint(service: MockService) -> None:
    """A 429 without retry_after still says retry-after: 1, as real vendors always do."""
    reply, _ = await call(service, *ANTHROPIC, headers={"x-mock-fault": "status=429"})
    assert reply.headers["retry-after"] == "1" and "retry-after-ms" not in reply.headers


@pytest.mark.parametrize(
    ("wire", "expect"),
    [("openai", "context_length_exceeded"), ("anthropic", "prompt is too long"), ("gemini", "input token count")],
)
async def test_context_length(service: MockService, wire: str, expect: str) -> None:
    """context_length answers 400 with each vendor's real wording and code."""
    reply, body = await call(service, *WIRES[wire], headers={"x-mock-fault": "context_length"})
    assert reply.status == 400 and expect in body.decode()


@pytest.mark.parametrize(
    ("wire", "path", "value"),
    [
        ("openai", ("choices", 0, "finish_reason"), "content_filter"),
        ("anthropic", ("stop_reason",), "refusal"),
        ("gemini", ("candidates", 0, "finishReason"), "SAFETY"),
    ],
)
async def test_output_content_filter(service: MockService, wire: str, path: tuple[Any, ...], value: str) -> None:
    """content_filter gives each vendor's real filtered outcome on a 200."""
    reply, body = await call(service, *WIRES[wire], headers={"x-mock-fault": "content_filter"})
    node: Any = orjson.loads(body)
    for key in path:
        node = node[key]
    assert reply.status == 200 and node == value


async def test_prompt_content_filter(service: MockService) -> None:
    """content_filter=prompt is OpenAI/Azure's 400 code content_filter, and Gemini's blockReason SAFETY."""
    reply, body = await call(service, *OPENAI, headers={"x-mock-fault": "content_filter=prompt"})
    assert reply.status == 400 and orjson.loads(body)["error"]["code"] == "content_filter"
    reply, body = await call(service, *GEMINI, headers={"x-mock-fault": "content_filter=prompt"})
    assert reply.status == 200 and orjson.loads(body)["promptFeedback"]["blockReason"] == "SAFETY"


@pytest.mark.parametrize("wire", list(WIRES))
async def test_malformed_body(service: MockService, wire: str) -> None:
    """malformed answers 200 with a body that is not valid JSON."""
    reply, body = await call(service, *WIRES[wire], headers={"x-mock-fault": "malformed"})
    assert reply.status == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)


async def test_malformed_stream(service: MockService) -> None:
    """In a stream, malformed makes the first frame's data invalid JSON."""
    _, body = await call(service, OPENAI[0], {**OPENAI[1], "stream": True}, headers={"x-mock-fault": "malformed"})
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(sse_data(body)[0])


async def test_bad_fault_header_is_a_400(service: MockService) -> None:
    """A fault header that does not parse is the caller's error, explained in the vendor's shape."""
    reply, body = await call(service, *ANTHROPIC, headers={"x-mock-fault": "status=700"})
    assert reply.status == 400 and "x-mock-fault" in error_of("anthropic", body)[1]


async def test_latency_before_head(service: MockService, clock: FakeClock) -> None:
    """latency=150 sleeps 0.15 s on the clock before answering."""
    await call(service, *OPENAI, headers={"x-mock-fault": "latency=150"})
    assert clock.sleeps == [0.15]


async def test_reset_and_timeout(service: MockService, clock: FakeClock) -> None:
    """reset raises ConnectionReset at once; timeout first sleeps a day on the clock."""
    with pytest.raises(ConnectionReset):
        await call(service, *OPENAI, headers={"x-mock-fault": "reset"})
    assert clock.sleeps == []
    with pytest.raises(ConnectionReset):
        await call(service, *OPENAI, headers={"x-mock-fault": "timeout"})
    assert clock.sleeps == [LONG_SLEEP]


async def stream_frames(service: MockService, wire: str, fault: str) -> list[bytes]:
    path, body = WIRES[wire]
    if wire == "gemini":
        path = path.replace("generateContent", "streamGenerateContent")
    reply = await service.handle(
        "POST",
        path,
        "alt=sse",
        {"x-mock-fault": fault},
        orjson.dumps({**body, "stream": True} if wire != "gemini" else body),
    )
    assert reply.chunks is not None and reply.headers["content-type"] == "text/event-stream"
    return [c async for c in reply.chunks]


@pytest.mark.parametrize(
    ("wire", "end"), [("openai", b"[DONE]"), ("anthropic", b"message_stop"), ("gemini", b"finishReason")]
)
async def test_cut_after(service: MockService, wire: str, end: bytes) -> None:
    """cut_after=3 sends exactly 3 frames and never the closing frame."""
    full = await stream_frames(service, wire, "ttft=0")
    assert end in full[-1]
    frames = await stream_frames(service, wire, "cut_after=3")
    assert [_no_id(f) for f in frames] == [_no_id(f) for f in full[:3]]
    assert all(end not in f for f in frames)


def _no_id(frame: bytes) -> bytes:
    return re.sub(rb"mock[0-9a-f]{12}", b"ID", frame)


@pytest.mark.parametrize("wire", list(WIRES))
async def test_stall_after(service: MockService, clock: FakeClock, wire: str) -> None:
    """stall_after=2 sends 2 frames, then hangs (a day on the clock) and drops the connection."""
    path, body = WIRES[wire]
    seen = []
    with pytest.raises(ConnectionReset):
        stream_body = {**body, "stream": True} if wire != "gemini" else body
        reply = await service.handle(
            "POST",
            path.replace("generateContent", "streamGenerateContent"),
            "alt=sse",
            {"x-mock-fault": "stall_after=2"},
            orjson.dumps(stream_body),
        )
        assert reply.chunks is not None
        async for chunk in reply.chunks:
            seen.append(chunk)
    assert len(seen) == 2 and clock.sleeps == [LONG_SLEEP]


async def test_reset_mid_stream(service: MockService) -> None:
    """reset_after=4 sends 4 frames, then the stream raises ConnectionReset."""
    reply = await service.handle(
        "POST", OPENAI[0], "", {"x-mock-fault": "reset_after=4"}, orjson.dumps({**OPENAI[1], "stream": True})
    )
    assert reply.chunks is not None
    seen = []
    with pytest.raises(ConnectionReset):
        async for chunk in reply.chunks:
            seen.append(chunk)
    assert len(seen) == 4


async def test_stream_pacing(service: MockService, clock: FakeClock) -> None:
    """ttft waits before the first frame and token_delay between frames, on the injected clock."""
    frames = await stream_frames(service, "openai", "ttft=500,token_delay=20")
    assert clock.sleeps == [0.5] + [0.02] * (len(frames) - 1)


async def test_gemini_stream_without_sse_is_a_json_array(service: MockService) -> None:
    """streamGenerateContent without alt=sse answers one JSON array of the chunks."""
    reply, body = await call(service, "/v1beta/models/g:streamGenerateContent", GEMINI[1])
    chunks = orjson.loads(body)
    assert reply.headers["content-type"] == "application/json"
    assert isinstance(chunks, list) and chunks[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_stream_content_filter_prompt_gemini(service: MockService) -> None:
    """A blocked prompt on a Gemini stream is one frame carrying promptFeedback."""
    frames = await stream_frames(service, "gemini", "content_filter=prompt")
    assert len(frames) == 1 and orjson.loads(sse_data(frames[0])[0])["promptFeedback"]["blockReason"] == "SAFETY"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (OPENAI[0], {**OPENAI[1], "n": 100_000}),
        ("/v1/embeddings", {"model": "e", "input": "x", "dimensions": 10**9}),
        ("/v1/embeddings", {"model": "e", "input": ["x"] * 5000}),
        (
            OPENAI[0],
            {
                **OPENAI[1],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"schema": {"type": "array", "minItems": 10**9}},
                },
            },
        ),
        (
            OPENAI[0],
            {
                **OPENAI[1],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"schema": {"type": "string", "minLength": 10**9}},
                },
            },
        ),
    ],
)
async def test_unbounded_work_is_refused(service: MockService, path: str, body: dict[str, Any]) -> None:
    """Requests that would make the mock do unbounded work (huge n, dimensions, minItems) are 400s."""
    reply, out = await call(service, path, body)
    assert reply.status == 400, out


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/embeddings", {"model": "e", "input": "x"}),
        ("/v1beta/models/e:embedContent", {"content": {"parts": [{"text": "a"}]}}),
        ("/v1beta/models/e:batchEmbedContents", {"requests": [{"content": {"parts": [{"text": "a"}]}}]}),
    ],
)
async def test_malformed_embeddings(service: MockService, path: str, body: dict[str, Any]) -> None:
    """malformed on an embeddings call is a 200 whose body is not JSON, on every embeddings route."""
    reply, out = await call(service, path, body, headers={"x-mock-fault": "malformed"})
    assert reply.status == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(out)
