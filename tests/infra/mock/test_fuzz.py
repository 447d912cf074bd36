"""Fuzzing the mock provider: whatever the body, no 5xx unless a fault asks for one, no Python text in errors.

The mock's ASGI app (``create_mock_app``, no fault schedule, no ``x-mock-fault`` header) gets
OpenAI chat completions and embeddings bodies from OpenAI's vendored spec, Anthropic Messages
bodies (with an ``anthropic-version`` header), Gemini ``generateContent`` /
``streamGenerateContent`` bodies and Bedrock ``converse`` / ``converse-stream`` bodies (SigV4-signed
headers) from our JSON Schemas of them: valid-shaped, schema-violating and
mutated (``tests/fuzzing.py`` says how each is made, and holds the checks). Examples are
derandomized: every run sends the same requests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakwater.infra.mock.app import create_mock_app
from tests.fuzzing import FUZZ, MODES, Bodies, InProcess, Mode, Wire, check_each, draw_requests

#: the version header the Anthropic SDKs send with every request
ANTHROPIC_VERSION = {"anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def mock() -> Iterator[InProcess]:
    client = InProcess(create_mock_app())
    yield client
    client.close()


def _fuzz(
    mock: InProcess,
    caplog: pytest.LogCaptureFixture,
    data: st.DataObject,
    bodies: Bodies,
    mode: Mode,
    operation: tuple[str, str],
    url: str,
    wire: Wire,
    headers: dict[str, str] | None = None,
) -> None:
    overrides = {"stream": True} if operation[1] != "/embeddings" and data.draw(st.booleans(), label="stream") else {}
    check_each(mock, draw_requests(data, bodies, mode, *operation, url, **overrides), wire, caplog, **(headers or {}))


@pytest.mark.parametrize("mode", MODES)
@settings(FUZZ, max_examples=50)
@given(data=st.data())
def test_openai_chat(
    mock: InProcess, openai_spec: Bodies, caplog: pytest.LogCaptureFixture, mode: Mode, data: st.DataObject
) -> None:
    """Any chat completions body, streamed or not, gets a non-5xx answer, errors in OpenAI's format without Python text."""
    _fuzz(mock, caplog, data, openai_spec, mode, ("POST", "/chat/completions"), "/v1/chat/completions", "openai")


@pytest.mark.parametrize("mode", MODES)
@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_openai_embeddings(
    mock: InProcess, openai_spec: Bodies, caplog: pytest.LogCaptureFixture, mode: Mode, data: st.DataObject
) -> None:
    """Any embeddings body gets a non-5xx answer, errors in OpenAI's format without Python text."""
    _fuzz(mock, caplog, data, openai_spec, mode, ("POST", "/embeddings"), "/v1/embeddings", "openai")


@pytest.mark.parametrize("mode", MODES)
@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_anthropic_messages(
    mock: InProcess, messages_schema: Bodies, caplog: pytest.LogCaptureFixture, mode: Mode, data: st.DataObject
) -> None:
    """Any Messages body, streamed or not, gets a non-5xx answer, errors in Anthropic's format without Python text."""
    _fuzz(mock, caplog, data, messages_schema, mode, ("POST", "/body"), "/v1/messages", "anthropic", ANTHROPIC_VERSION)


@pytest.mark.parametrize("mode", MODES)
@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_gemini_generate_content(
    mock: InProcess, gemini_schema: Bodies, caplog: pytest.LogCaptureFixture, mode: Mode, data: st.DataObject
) -> None:
    """Any GenerateContentRequest body, to generateContent or a streamGenerateContent SSE stream, gets a
    non-5xx answer, errors in Gemini's format without Python text."""
    action = data.draw(st.sampled_from(["generateContent", "streamGenerateContent?alt=sse"]), label="action")
    url = f"/v1beta/models/mock-chat:{action}"
    check_each(mock, draw_requests(data, gemini_schema, mode, "POST", "/body", url), "gemini", caplog)


@pytest.mark.parametrize("mode", MODES)
@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_vertex_gemini_generate_content(
    mock: InProcess, gemini_schema: Bodies, caplog: pytest.LogCaptureFixture, mode: Mode, data: st.DataObject
) -> None:
    """Any GenerateContentRequest body to Vertex AI's Gemini URLs (with a bearer token) gets a non-5xx
    answer, errors in Google's format without Python text."""
    action = data.draw(st.sampled_from(["generateContent", "streamGenerateContent?alt=sse"]), label="action")
    url = f"/v1/projects/p-fuzz/locations/us-east5/publishers/google/models/gemini-2.0-flash-001:{action}"
    requests = draw_requests(data, gemini_schema, mode, "POST", "/body", url)
    check_each(mock, requests, "gemini", caplog, authorization="Bearer ya29.fuzz")


#: a SigV4 Authorization header as a signed client sends it (the mock checks its scope, not the signature)
SIGNED = {
    "authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/bedrock/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date, Signature=" + "0" * 64,
    "x-amz-date": "20231114T221320Z",
}


@pytest.mark.parametrize("mode", MODES)
@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_bedrock_converse(
    mock: InProcess, converse_schema: Bodies, caplog: pytest.LogCaptureFixture, mode: Mode, data: st.DataObject
) -> None:
    """Any Converse body, to converse or converse-stream, gets a non-5xx answer, errors as Bedrock's
    rest-json without Python text, streams as whole event-stream messages ending properly."""
    action = data.draw(st.sampled_from(["converse", "converse-stream"]), label="action")
    url = f"/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/{action}"
    check_each(mock, draw_requests(data, converse_schema, mode, "POST", "/body", url), "bedrock", caplog, **SIGNED)
