"""What identifies a cached answer: everything that can change it, and nothing that cannot.

The key is a SHA-256 over one canonical JSON document (object keys sorted, so the client's key
order never matters) of:

- the route's fingerprint (``engine/routing.Route.cache_fingerprint``: its name and every
  deployment's provider and upstream model, so a config change that would answer differently
  misses instead of serving an old answer);
- the tenant: the caller's key id (scope ``key``), its team id (``team``) or nothing
  (``shared``); the key itself never enters the hash;
- the request's output-affecting fields. For an OpenAI body kept as sent (the fast path) that
  is the body as the upstream will get it, less the fields that cannot change the answer;
  otherwise the canonical request's messages, tools, tool choice, response format and sampling
  parameters, less prompt-cache breakpoints (they change what the provider bills, not what it
  answers).

Fields that cannot change an answer: ``stream`` and ``stream_options`` (a hit is replayed in
whatever form the request asks for), ``user``, ``metadata``, ``store``, the model name (the
route stands for it), and the cache directives themselves. Numbers are compared as numbers:
``temperature: 0`` and ``temperature: 0.0`` are one key.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from typing import Any

import orjson

from breakwater.core.types import ChatRequest, EmbeddingRequest
from breakwater.engine.context import Caller

#: bump when what goes into the key changes, so old entries are never read with a new meaning
VERSION = 1

#: body fields of an OpenAI request that cannot change the answer
IGNORED_FIELDS = frozenset({"model", "stream", "stream_options", "user", "metadata", "store", "breakwater_cache"})

#: canonical fields that cannot change the answer (``raw`` is the fast path's body, keyed instead)
_IGNORED_CANONICAL = frozenset(
    {"model", "stream", "include_usage", "user", "metadata", "cache_control", "cache_breakpoints", "cache_directive",
     "raw"}
)  # fmt: skip

#: a Responses body's fields the canonical messages already key (or that change no answer)
_RESPONSES_KEYED_ELSEWHERE = IGNORED_FIELDS | {"input", "instructions"}


def tenant_of(caller: Caller, scope: str) -> str:
    """Whose answers a request may be served, under the route's ``scope``."""
    if scope == "shared":
        return ""
    if scope == "team" and caller.team is not None:
        return "team:" + caller.team.name
    return "key:" + (caller.key_id or "")


def cache_key(request: ChatRequest | EmbeddingRequest, fingerprint: str, tenant: str) -> str:
    """The hex SHA-256 naming ``request``'s answer on the route with ``fingerprint``, for ``tenant``.

    Embeddings are keyed the same way: their inputs, dimensions and encoding format (the body as
    sent, less ``model`` and ``user``).
    """
    kind, material = material_of(request)
    document = [VERSION, fingerprint, tenant, kind, material]
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def material_of(request: ChatRequest | EmbeddingRequest) -> tuple[str, Any]:
    """(what kind of body, its output-affecting fields) of a request: what its key hashes."""
    chat = isinstance(request, ChatRequest)
    if request.raw is not None:
        # (integral floats as integers, inline: this runs on every lookup)
        return ("openai" if chat else "openai-embeddings"), {
            k: int(v) if type(v) is float and v.is_integer() else v
            for k, v in request.raw.items()
            if k not in IGNORED_FIELDS
        }
    return ("canonical" if chat else "canonical-embeddings"), canonical(request)


def canonical(request: ChatRequest | EmbeddingRequest) -> dict[str, Any]:
    """The request's output-affecting canonical fields (for a request not kept as its OpenAI body)."""
    data = asdict(request)
    for name in _IGNORED_CANONICAL:
        data.pop(name, None)
    forward = data.get("responses")
    if forward is not None:  # a Responses body: its fields the messages do not carry (hosted tools, include...)
        data["responses"] = {k: v for k, v in forward["body"].items() if k not in _RESPONSES_KEYED_ELSEWHERE}
    stripped: dict[str, Any] = _without_breakpoints(data)
    return stripped


def _without_breakpoints(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_breakpoints(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_without_breakpoints(v) for v in value]
    return _number(value)


def _number(value: Any) -> Any:
    # an integral float is written as the integer, so 0 and 0.0 hash alike (True stays True)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
