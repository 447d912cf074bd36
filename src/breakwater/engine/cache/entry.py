"""A cached answer as stored bytes, and back.

A JSON object on the first line: when it was stored, for how long, who answered it
(deployment, provider, upstream model: the saved cost is priced from them) and the answer in
canonical form. An OpenAI answer that went to its client byte for byte (the fast path) is kept
as those bytes instead, after the first line: a hit on the same wire is the same bytes, fields
Breakwater does not model included, and the entry is about a third of the size (no second,
escaped copy). Compact JSON never holds a raw newline, so the first one ends the header.

Anything that does not decode to a well-formed entry (a value written by something else, a
truncated write, an older format) raises ``CorruptEntry``: the stage deletes it and treats the
lookup as a miss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from breakwater.core.types import (
    ChatResponse,
    Choice,
    EmbeddingResponse,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    Usage,
)
from breakwater.providers.openai import chat_completion

FORMAT = 2


class CorruptEntry(Exception):
    """A stored value that is not a cache entry."""


@dataclass(frozen=True, slots=True)
class CacheEntry:
    stored_at: float
    #: seconds it is served for after ``stored_at``
    ttl_s: float
    deployment: str
    provider: str
    upstream_model: str
    response: ChatResponse | EmbeddingResponse


def encode_entry(entry: CacheEntry) -> bytes:
    response = entry.response
    data: dict[str, Any] = {
        "format": FORMAT,
        "stored_at": entry.stored_at,
        "ttl_s": entry.ttl_s,
        "deployment": entry.deployment,
        "provider": entry.provider,
        "upstream_model": entry.upstream_model,
        "model": response.model,
    }
    if isinstance(response, ChatResponse) and response.raw_body is not None and response.raw_kind == "chat":
        return orjson.dumps(data) + b"\n" + response.raw_body
    data["usage"] = None if response.usage is None else _usage_json(response.usage)
    if isinstance(response, EmbeddingResponse):
        data["vectors"] = response.vectors
        data["raw_body"] = None if response.raw_body is None else response.raw_body.decode()
    else:
        data.update(id=response.id, created=response.created, choices=[_choice_json(c) for c in response.choices])
    return orjson.dumps(data)


def decode_entry(value: bytes) -> CacheEntry:
    """Raises: CorruptEntry."""
    try:
        header, newline, raw = value.partition(b"\n")
        data = orjson.loads(header)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CorruptEntry("not a cache entry of this format")
        response: ChatResponse | EmbeddingResponse
        if newline:
            answer = orjson.loads(raw)
            if not isinstance(answer, dict):
                raise CorruptEntry("not a chat completion")
            response = chat_completion(answer, raw, str(data["model"]))
        elif "vectors" in data:
            usage = None if data["usage"] is None else Usage(**data["usage"])
            body = None if data["raw_body"] is None else data["raw_body"].encode()
            vectors = [[float(x) for x in v] for v in data["vectors"]]
            response = EmbeddingResponse(str(data["model"]), vectors, usage or Usage(), body)
        else:
            usage = None if data["usage"] is None else Usage(**data["usage"])
            choices = [_choice(c) for c in data["choices"]]
            response = ChatResponse(str(data["id"]), str(data["model"]), int(data["created"]), choices, usage)
        return CacheEntry(
            float(data["stored_at"]),
            float(data["ttl_s"]),
            str(data["deployment"]),
            str(data["provider"]),
            str(data["upstream_model"]),
            response,
        )
    except CorruptEntry:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptEntry(f"unreadable cache entry ({type(exc).__name__})") from None


# Written by hand, not with ``dataclasses.asdict`` (a recursive deep copy: 17 us an answer against
# 3 us), since a miss pays for it on the request path.


def _usage_json(u: Usage) -> dict[str, int]:
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_input_tokens": u.cached_input_tokens,
        "cache_creation_input_tokens": u.cache_creation_input_tokens,
        "reasoning_tokens": u.reasoning_tokens,
    }


def _choice_json(c: Choice) -> dict[str, Any]:
    m = c.message
    content = [{"text": p.text} if isinstance(p, TextPart) else {"url": p.url, "detail": p.detail} for p in m.content]
    return {
        "index": c.index,
        "message": {
            "role": m.role,
            "content": content,
            "tool_calls": [{"id": t.id, "name": t.name, "arguments": t.arguments} for t in m.tool_calls],
            "tool_call_id": m.tool_call_id,
            "name": m.name,
        },
        "finish_reason": c.finish_reason,
        "logprobs": c.logprobs,
        "stop_sequence": c.stop_sequence,
    }


def _choice(data: dict[str, Any]) -> Choice:
    m = data["message"]
    content: list[TextPart | ImagePart] = [
        TextPart(p["text"]) if "text" in p else ImagePart(p["url"], p.get("detail")) for p in m["content"]
    ]
    calls = [ToolCall(c["id"], c["name"], c["arguments"]) for c in m["tool_calls"]]
    message = Message(m["role"], content, calls, m.get("tool_call_id"), m.get("name"))
    return Choice(int(data["index"]), message, data["finish_reason"], data.get("logprobs"), data.get("stop_sequence"))
