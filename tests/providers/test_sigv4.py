"""SigV4 signing: AWS's published test vectors, through the signing function the Bedrock adapter uses.

The vectors (tests/data/sigv4/vectors.json, source noted there) fix the credentials, region,
service and time, and give the canonical request, the string to sign and the Authorization
header; a signature that matches all three is computed the way AWS computes it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yarl

from breakwater.core.errors import UpstreamAuthError
from breakwater.core.types import ChatRequest, Message, TextPart
from breakwater.providers.base import HttpRequest, Target
from breakwater.providers.bedrock import BedrockAdapter, base_url, model_segment
from breakwater.providers.sigv4 import AwsCredentials, SigV4Signer, credential_scope, sign

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "sigv4" / "vectors.json").read_text())
SUITE_TIME = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
KEYS = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def _credentials(case: dict[str, Any]) -> AwsCredentials:
    creds = VECTORS["credentials"]
    token = VECTORS["session_token"] if case.get("session_token") else None
    return AwsCredentials(creds["access_key_id"], creds["secret_access_key"], token)


@pytest.mark.parametrize("case", VECTORS["cases"], ids=[c["name"] for c in VECTORS["cases"]])
def test_published_vectors(case: dict[str, Any]) -> None:
    """Each test-suite case gives the published canonical request, string to sign and Authorization header."""
    request = HttpRequest(case["method"], case["url"], dict(case["headers"]), case["body"].encode())
    signed = sign(request, _credentials(case), VECTORS["region"], VECTORS["service"], SUITE_TIME)
    if "creq" in case:
        assert signed.canonical_request == case["creq"]
    if "sts" in case:
        assert signed.string_to_sign == case["sts"]
    assert signed.request.headers["Authorization"] == case["authz"]
    assert signed.request.headers["X-Amz-Date"] == "20150830T123600Z"


def test_session_token_is_sent_and_signed() -> None:
    """Temporary credentials send their token in X-Amz-Security-Token, among the signed headers."""
    case = next(c for c in VECTORS["cases"] if c.get("session_token"))
    request = HttpRequest("POST", case["url"], {}, b"")
    signed = sign(request, _credentials(case), "us-east-1", "service", SUITE_TIME).request
    assert signed.headers["X-Amz-Security-Token"] == VECTORS["session_token"]
    assert "x-amz-security-token" in credential_scope(signed.headers["Authorization"])["signed_headers"]  # type: ignore[index]


def test_signing_again_replaces_the_old_signature() -> None:
    """A request signed twice (a retry) carries one Authorization and one X-Amz-Date, the newest."""
    request = HttpRequest("POST", "https://example.amazonaws.com/", {}, b"")
    first = sign(request, KEYS, "us-east-1", "service", SUITE_TIME).request
    later = sign(first, KEYS, "us-east-1", "service", datetime(2015, 8, 30, 12, 41, tzinfo=UTC)).request
    assert [k for k in later.headers if k.lower() == "authorization"] == ["Authorization"]
    assert later.headers["X-Amz-Date"] == "20150830T124100Z"
    assert later.headers["Authorization"] != first.headers["Authorization"]


def _signed_chat(model: str, now: float = 1_700_000_000.0) -> HttpRequest:
    class Keys:
        def current(self) -> AwsCredentials:
            return KEYS

    signer = SigV4Signer(Keys(), "eu-west-1", clock=lambda: now)
    target = Target(provider="aws", model=model, base_url=base_url("eu-west-1"), signer=signer)
    request = ChatRequest(model="r", messages=[Message("user", [TextPart("hi")])], max_tokens=5)
    return BedrockAdapter().chat_request(request, target)


def test_adapter_signs_the_bytes_it_sends() -> None:
    """The Converse request is signed for bedrock in its region, over its host, date, content type and body."""
    http = _signed_chat("anthropic.claude-3-5-sonnet-20240620-v1:0")
    scope = credential_scope(http.headers["Authorization"])
    assert scope is not None
    assert (scope["access_key_id"], scope["region"], scope["service"]) == ("AKIDEXAMPLE", "eu-west-1", "bedrock")
    assert scope["date"] == "20231114"
    assert scope["signed_headers"] == ["content-type", "host", "x-amz-date"]
    # the same request signed by the function itself, at the same time, is the same signature;
    # another body is another signature
    unsigned = HttpRequest(http.method, http.url, {"content-type": "application/json"}, http.body)
    again = sign(unsigned, KEYS, "eu-west-1", "bedrock", datetime.fromtimestamp(1_700_000_000, UTC)).request
    assert again.headers["Authorization"] == http.headers["Authorization"]
    other = HttpRequest(http.method, http.url, {"content-type": "application/json"}, http.body + b" ")
    assert (
        sign(other, KEYS, "eu-west-1", "bedrock", datetime.fromtimestamp(1_700_000_000, UTC)).request.headers[
            "Authorization"
        ]
        != http.headers["Authorization"]
    )
    assert orjson.loads(http.body)["inferenceConfig"] == {"maxTokens": 5}


@pytest.mark.parametrize(
    "model",
    [
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "amazon.nova-lite-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-3b-instruct-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123",
    ],
)
def test_signed_path_is_the_path_sent(model: str) -> None:
    """The HTTP client sends the URL's path unchanged (yarl re-quotes nothing), so the signed path is the wire's."""
    http = _signed_chat(model)
    url = yarl.URL(http.url)
    assert url.raw_path == http.url.removeprefix(base_url("eu-west-1"))
    assert url.raw_path == f"/model/{model_segment(model)}/converse"
    assert "/" not in model_segment(model)


def test_signer_without_credentials_is_an_auth_error() -> None:
    """While the credentials source holds nothing, a request fails as the provider's auth error, unsent."""

    class Empty:
        def current(self) -> None:
            return None

    with pytest.raises(UpstreamAuthError) as caught:
        SigV4Signer(Empty(), "us-east-1").sign(HttpRequest("POST", "https://x/", {}, b""), "aws")
    assert caught.value.provider == "aws"


def test_secrets_stay_out_of_repr() -> None:
    """Neither the credentials' nor the signer's repr shows the secret key or the session token."""
    creds = AwsCredentials("AKIDEXAMPLE", "very-secret-key", "very-secret-token")
    assert "very-secret" not in repr(creds)
    signer = SigV4Signer(type("S", (), {"current": lambda self: creds})(), "us-east-1")
    assert "very-secret" not in repr(signer)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/bedrock, SignedHeaders=host, Signature=" + "a" * 64,
        "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=short",
    ],
)
def test_credential_scope_refuses_what_is_not_sigv4(header: str) -> None:
    """Only a whole SigV4 Authorization header (scope of five parts, 64-hex signature) is read."""
    assert credential_scope(header) is None
