"""A cached answer as stored bytes, and back.

One JSON object: when it was stored, who answered it (deployment, provider, upstream model:
the saved cost is priced from them), and the answer in canonical form. An OpenAI answer that
went to its client byte for byte keeps those bytes too, so a hit on the same wire is the same
bytes, fields Breakwater does not model included.

Anything that does not decode to a well-formed entry (a value written by something else, a
truncated write, an older format) raises ``CorruptEntry``: the stage deletes it and treats the
lookup as a miss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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

FORMAT = 1


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
        "usage": None if response.usage is None else asdict(response.usage),
        "raw_body": None if response.raw_body is None else response.raw_body.decode(),
    }
    if isinstance(response, EmbeddingResponse):
        data["vectors"] = response.vectors
    else:
        data.update(id=response.id, created=response.created, choices=[asdict(c) for c in response.choices])
    return orjson.dumps(data)


def decode_entry(value: bytes) -> CacheEntry:
    """Raises: CorruptEntry."""
    try:
        data = orjson.loads(value)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CorruptEntry("not a cache entry of this format")
        raw = data["raw_body"]
        usage = None if data["usage"] is None else Usage(**data["usage"])
        body = None if raw is None else raw.encode()
        response: ChatResponse | EmbeddingResponse
        if "vectors" in data:
            vectors = [[float(x) for x in v] for v in data["vectors"]]
            response = EmbeddingResponse(str(data["model"]), vectors, usage or Usage(), body)
        else:
            choices = [_choice(c) for c in data["choices"]]
            response = ChatResponse(str(data["id"]), str(data["model"]), int(data["created"]), choices, usage, body)
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


def _choice(data: dict[str, Any]) -> Choice:
    m = data["message"]
    content: list[TextPart | ImagePart] = [
        TextPart(p["text"]) if "text" in p else ImagePart(p["url"], p.get("detail")) for p in m["content"]
    ]
    calls = [ToolCall(c["id"], c["name"], c["arguments"]) for c in m["tool_calls"]]
    message = Message(m["role"], content, calls, m.get("tool_call_id"), m.get("name"))
    return Choice(int(data["index"]), message, data["finish_reason"], data.get("logprobs"), data.get("stop_sequence"))
