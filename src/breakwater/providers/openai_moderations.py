"""OpenAI's moderations (``POST /v1/moderations``), both sides: the client's request checked, the
upstream request described, the answer read for its model.

Only OpenAI-wire upstreams have the endpoint (Anthropic and Gemini moderate inside their chat
APIs, with no classifier of their own to call). The body is forwarded as the client sent it,
``model`` replaced by the deployment's, and the answer goes back as the upstream sent it: its
categories change with OpenAI's classifier versions, and a gateway that re-encoded them would
drop the new ones. The mock provider uses ``decode_moderation_request`` too, so both agree.

The shape (OpenAI's API reference, "Moderations", checked 2026-12): ``input`` is a string, an
array of strings, or an array of ``{"type": "text", "text"}`` / ``{"type": "image_url",
"image_url": {"url"}}`` objects; ``model`` is optional (``omni-moderation-latest``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from breakwater.core.errors import InvalidRequest
from breakwater.providers import fields as f
from breakwater.providers.base import HttpRequest, Target

#: the model OpenAI moderates with when a request names none (and the route Breakwater looks for)
DEFAULT_MODEL = "omni-moderation-latest"


@dataclass(frozen=True, slots=True)
class ModerationRequest:
    model: str
    #: each input: its text, or ``None`` for an image
    texts: list[str | None]
    raw: dict[str, Any]


def decode_moderation_request(body: Any) -> ModerationRequest:
    """Validate a moderations body (a 400 naming the field for anything else)."""
    body = f.obj(body, "body")
    model = f.opt_str(body, "model") or DEFAULT_MODEL
    value = body.get("input")
    if value is None:
        raise InvalidRequest("'input' is required", param="input")
    if isinstance(value, str):
        return ModerationRequest(model, [value], body)
    if not isinstance(value, list) or not value:
        raise f.bad("input", "a string, or a non-empty array of strings or of text and image_url objects")
    if all(isinstance(v, str) for v in value):
        return ModerationRequest(model, list(value), body)
    return ModerationRequest(model, [_part(v, i) for i, v in enumerate(value)], body)


def _part(value: Any, i: int) -> str | None:
    path = f"input[{i}]"
    part = f.obj(value, path)
    kind = part.get("type")
    if kind == "text":
        return f.req_str(part, "text", path + ".")
    if kind == "image_url":
        f.req_str(f.obj(part.get("image_url"), path + ".image_url"), "url", path + ".image_url.")
        return None
    raise f.bad(path + ".type", "'text' or 'image_url'")


def moderation_request(request: ModerationRequest, target: Target, url: str, headers: dict[str, str]) -> HttpRequest:
    """The upstream call: the client's body with the deployment's model, to ``url``."""
    body = {**request.raw, "model": target.model}
    return HttpRequest("POST", url, headers, orjson.dumps(body))
