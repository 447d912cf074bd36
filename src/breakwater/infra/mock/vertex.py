"""What the mock speaks of Google Vertex AI: its publisher URLs, Claude's body there, and Google's
OAuth token endpoint, so a Vertex provider can be driven end to end with real google-auth.

Vertex serves each publisher's own wire at ``/v1/projects/{project}/locations/{location}/
publishers/{google|anthropic}/models/{model}:{verb}`` and wants ``Authorization: Bearer`` on
every call: without one it answers 401 UNAUTHENTICATED as a google.rpc.Status, whichever the
publisher. Errors of the platform (quota, permission, an unknown model, 5xx) are google.rpc too;
Claude's own refusals (a bad request, overloaded) keep Anthropic's error body.

The token endpoint takes the OAuth 2.0 JWT bearer grant (RFC 7523) google-auth posts for a
service account, and issues a token an hour long. The assertion's signature is not checked:
the mock authenticates nobody, it only makes callers present a token.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs

import orjson

from breakwater.core.errors import InvalidRequest
from breakwater.core.types import ChatRequest
from breakwater.infra.mock.wires import AnthropicWire, GeminiWire
from breakwater.providers import anthropic_serve_request, gemini_serve

#: a Vertex model call: (publisher, model, verb)
VERTEX_PATH = re.compile(
    r"/v1(?:beta1)?/projects/[^/]+/locations/[^/]+/publishers/(google|anthropic)/models/([^/:]+):"
    r"(generateContent|streamGenerateContent|rawPredict|streamRawPredict)"
)
#: the path of the mock's OAuth token endpoint (put it in a service account's ``token_uri``)
TOKEN_PATH = "/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME_S = 3599
#: Google's answer to a call without credentials (google.rpc.Status, UNAUTHENTICATED)
UNAUTHENTICATED = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential."
)
_GOOGLE = GeminiWire()


def has_bearer(headers: dict[str, str] | Any) -> bool:
    """Whether the (lower-case) headers carry ``Authorization: Bearer <something>``."""
    value = str(headers.get("authorization") or "")
    return value[:7].lower() == "bearer " and bool(value[7:].strip())


def token_reply(body: bytes, serial: str) -> tuple[int, bytes]:
    """The token endpoint's status and JSON body for a form-encoded grant."""
    form = parse_qs(body.decode("utf-8", "replace"))
    if form.get("grant_type") != [JWT_BEARER] or not form.get("assertion", [""])[0]:
        error = {"error": "invalid_grant", "error_description": "Invalid grant: expected a JWT bearer assertion."}
        return 400, orjson.dumps(error)
    token = {"access_token": f"ya29.mock-{serial}", "expires_in": TOKEN_LIFETIME_S, "token_type": "Bearer"}
    return 200, orjson.dumps(token)


class VertexAnthropicWire(AnthropicWire):
    """Claude on Vertex: the Messages body with the model in the URL and ``anthropic_version`` in
    the body; the platform's errors as google.rpc.Status, Claude's own as Anthropic's."""

    def decode_chat(self, body: Any, model: str | None, stream: bool) -> ChatRequest:
        if isinstance(body, dict):
            if "model" in body:
                raise InvalidRequest("model: Extra inputs are not permitted (Vertex takes the model from the URL)")
            if not isinstance(body.pop("anthropic_version", None), str):
                raise InvalidRequest("anthropic_version: Field required")
            body["model"] = model or ""
        return anthropic_serve_request.decode_chat_request(body)

    def error(self, status: int, message: str | None = None) -> bytes:
        if status in (400, 413, 529):  # Claude's own refusals
            return super().error(status, message)
        return _GOOGLE.error(status, message)


def unauthenticated() -> bytes:
    """The 401 body of a call without a bearer token."""
    return gemini_serve.error_body(401, UNAUTHENTICATED, "UNAUTHENTICATED")
