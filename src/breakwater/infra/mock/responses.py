"""The mock's OpenAI Responses API (``POST /v1/responses``), as OpenAI serves it to a gateway that
forwards Responses requests (``providers/openai_responses_forward.py``).

The model answers the request's conversation like any chat; the Response object and the event
stream are the gateway's own encoders' (``providers/openai_responses_serve.py``). OpenAI's hosted
web search is acted out, so a test can tell a forwarded request from a translated one: with a
``web_search`` (or ``web_search_preview``) tool, the output starts with a ``web_search_call`` item
for the last user message. Other hosted tools are accepted and ignored.
"""

from __future__ import annotations

from typing import Any

from breakwater.core.types import ChatResponse
from breakwater.infra.mock.model import stream_events
from breakwater.providers import openai_responses_serve as serve
from breakwater.providers.openai_responses_request import ResponsesRequest

#: the hosted tools the mock acts out
_WEB_SEARCH = frozenset({"web_search", "web_search_preview"})


def web_search_item(request: ResponsesRequest, item_id: str) -> dict[str, Any] | None:
    """The ``web_search_call`` item the request's hosted search tool makes (``None``: it has none)."""
    tools = request.body.get("tools")
    if not isinstance(tools, list) or not any(isinstance(t, dict) and t.get("type") in _WEB_SEARCH for t in tools):
        return None
    users = [m for m in request.chat.messages if m.role == "user"]
    query = users[-1].text()[:200] if users else ""
    return {
        "type": "web_search_call",
        "id": item_id,
        "status": "completed",
        "action": {"type": "search", "query": query},
    }


def response_json(
    request: ResponsesRequest, answer: ChatResponse, response_id: str, created: int, new_id: serve.NewId
) -> dict[str, Any]:
    """The whole Response object."""
    response = serve.encode_response(answer, request, response_id, created, new_id)
    search = web_search_item(request, new_id("ws_"))
    if search is not None:
        response["output"].insert(0, search)
    return response


def stream_frames(
    request: ResponsesRequest, answer: ChatResponse, response_id: str, created: int, new_id: serve.NewId
) -> tuple[list[bytes], list[bytes]]:
    """The event stream as single SSE frames, split into the body and the closing frames."""
    encoder = serve.StreamEncoder(request, response_id, created, new_id)
    search = web_search_item(request, new_id("ws_"))
    out = [encoder.item(search)] if search is not None else []
    out.extend(encoder.encode(event) for event in stream_events(answer))
    return _split(b"".join(out)), _split(encoder.end())


def _split(data: bytes) -> list[bytes]:
    return [frame + b"\n\n" for frame in data.split(b"\n\n") if frame]
