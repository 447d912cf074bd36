"""AWS's own client (boto3's ``bedrock-runtime``) parses everything the mock says as Bedrock Converse.

boto3 signs each request with SigV4 and reads the event-stream framing with botocore's parser, so
these tests hold the mock's wire (paths, bodies, exceptions, stream messages and their checksums)
to the real client; the mock runs on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.eventstream import ChecksumMismatch
from botocore.exceptions import ClientError

from breakwater.infra.mock.app import create_mock_app
from tests.server.running import serve

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
    "required": ["city", "unit"],
}
HELLO = [{"role": "user", "content": [{"text": "Say hello"}]}]


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with serve(create_mock_app()) as url:
        yield url


@pytest.fixture
def aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No shared AWS config or credentials file of the machine is read."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def client(url: str, *, signed: bool = True, fault: str | None = None) -> Any:
    config = Config(retries={"total_max_attempts": 1}, **({} if signed else {"signature_version": UNSIGNED}))
    c = boto3.client(
        "bedrock-runtime",
        endpoint_url=url,
        region_name="eu-west-2",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        config=config,
    )
    if fault is not None:

        def add_fault(request: Any, **_: Any) -> None:
            request.headers["x-mock-fault"] = fault

        c.meta.events.register("before-sign.bedrock-runtime.*", add_fault)
    return c


@pytest.mark.usefixtures("aws_files")
def test_converse(mock_url: str) -> None:
    """converse parses: the assistant's text, stopReason end_turn, token usage and latency."""
    r = client(mock_url).converse(modelId=MODEL, messages=HELLO, inferenceConfig={"maxTokens": 200})
    [block] = r["output"]["message"]["content"]
    assert block["text"]
    assert r["stopReason"] == "end_turn"
    usage = r["usage"]
    assert usage["inputTokens"] > 0 and usage["outputTokens"] > 0
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert "latencyMs" in r["metrics"]


@pytest.mark.usefixtures("aws_files")
def test_converse_tool_use(mock_url: str) -> None:
    """A named toolChoice gets a toolUse whose input validates against the tool's schema."""
    tools = {
        "tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": WEATHER}}}],
        "toolChoice": {"tool": {"name": "get_weather"}},
    }
    r = client(mock_url).converse(modelId=MODEL, messages=HELLO, toolConfig=tools)
    uses = [b["toolUse"] for b in r["output"]["message"]["content"] if "toolUse" in b]
    assert [u["name"] for u in uses] == ["get_weather"]
    assert uses[0]["toolUseId"]
    jsonschema.validate(uses[0]["input"], WEATHER)
    assert r["stopReason"] == "tool_use"


@pytest.mark.usefixtures("aws_files")
def test_converse_stream_matches_converse(mock_url: str) -> None:
    """converse_stream's events come in ConverseStream's order and carry the same text and usage."""
    c = client(mock_url)
    whole = c.converse(modelId=MODEL, messages=HELLO)
    events = list(c.converse_stream(modelId=MODEL, messages=HELLO)["stream"])
    names = [next(iter(e)) for e in events]
    assert names[0] == "messageStart"
    assert names[-2:] == ["messageStop", "metadata"]
    assert set(names[1:-2]) == {"contentBlockDelta", "contentBlockStop"}
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == whole["output"]["message"]["content"][0]["text"]
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == whole["usage"]["outputTokens"]


@pytest.mark.usefixtures("aws_files")
def test_converse_stream_tool_use(mock_url: str) -> None:
    """A streamed tool call opens its block with id and name, then sends its input as JSON pieces."""
    tools = {
        "tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": WEATHER}}}],
        "toolChoice": {"any": {}},
    }
    events = list(client(mock_url).converse_stream(modelId=MODEL, messages=HELLO, toolConfig=tools)["stream"])
    [start] = [e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e]
    assert start["name"] == "get_weather" and start["toolUseId"]
    pieces = [
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "contentBlockDelta" in e and "toolUse" in e["contentBlockDelta"]["delta"]
    ]
    jsonschema.validate(json.loads("".join(pieces)), WEATHER)
    assert [e["messageStop"]["stopReason"] for e in events if "messageStop" in e] == ["tool_use"]


@pytest.mark.usefixtures("aws_files")
def test_unsigned_request_is_refused(mock_url: str) -> None:
    """A request without a SigV4 signature gets AWS's 403 MissingAuthenticationTokenException."""
    with pytest.raises(ClientError) as caught:
        client(mock_url, signed=False).converse(modelId=MODEL, messages=HELLO)
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "MissingAuthenticationTokenException"


@pytest.mark.usefixtures("aws_files")
@pytest.mark.parametrize(
    ("status", "code"),
    [(429, "ThrottlingException"), (400, "ValidationException"), (503, "ServiceUnavailableException")],
)
def test_fault_statuses_are_bedrock_exceptions(mock_url: str, status: int, code: str) -> None:
    """An injected status reaches boto3 as the Bedrock exception of that status."""
    with pytest.raises(ClientError) as caught:
        client(mock_url, fault=f"status={status}").converse(modelId=MODEL, messages=HELLO)
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


@pytest.mark.usefixtures("aws_files")
def test_context_length_fault_is_a_validation_exception(mock_url: str) -> None:
    """The context-length fault says what Bedrock says: a ValidationException naming the input's length."""
    with pytest.raises(ClientError) as caught:
        client(mock_url, fault="context_length").converse(modelId=MODEL, messages=HELLO)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "too long" in caught.value.response["Error"]["Message"]


@pytest.mark.usefixtures("aws_files")
def test_malformed_stream_frame_fails_the_checksum(mock_url: str) -> None:
    """The malformed fault's frame is refused by botocore's parser (its checksums do not match)."""
    stream = client(mock_url, fault="malformed").converse_stream(modelId=MODEL, messages=HELLO)["stream"]
    with pytest.raises(ChecksumMismatch):
        list(stream)


@pytest.mark.usefixtures("aws_files")
def test_cache_point_is_written_then_read(mock_url: str) -> None:
    """A long prefix ending in a cachePoint is written by the first request and read by the next."""
    system = [{"text": "Harbour rules: " + "keep the channel clear, " * 400}, {"cachePoint": {"type": "default"}}]
    c = client(mock_url)
    first = c.converse(modelId=MODEL, system=system, messages=HELLO)["usage"]
    second = c.converse(modelId=MODEL, system=system, messages=HELLO)["usage"]
    assert first.get("cacheWriteInputTokens", 0) > 1024 and not first.get("cacheReadInputTokens")
    assert second["cacheReadInputTokens"] == first["cacheWriteInputTokens"]
    assert second["totalTokens"] == first["totalTokens"]
