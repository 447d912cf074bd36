"""The answer cache: a route's ``cache`` policy, and the top-level ``cache`` section (where entries live).

See docs/caching.md. A route caches nothing unless it says ``cache: {mode: exact}``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from breakwater.core.config.base import _Model

#: the longest a directive or a route may keep an entry: 30 days
MAX_TTL_S = 30 * 86400


class RouteCache(_Model):
    """A route's cache policy."""

    #: ``off`` (default); ``exact`` (the same request gets the same answer); ``semantic`` (also a
    #: question similar enough to one already answered, in the same scope, that passes the verifier)
    mode: Literal["off", "exact", "semantic"] = "off"
    #: ``semantic``: the least cosine similarity of the two questions' embeddings for a hit (chosen
    #: on QQP for at most 1% false hits with the verifier: docs/caching.md)
    similarity: float = Field(default=0.96, gt=0, le=1)
    #: seconds an entry is served for (a request may ask for less or more with ``ttl=``)
    ttl_s: float = Field(default=3600.0, gt=0, le=MAX_TTL_S)
    #: whose answers a request may be served: its own key's (``key``), its team's (``team``; a key
    #: without a team is its own tenant), or anyone's on the route (``shared``). With access
    #: control off there are no keys, and every caller is one tenant.
    scope: Literal["key", "team", "shared"] = "key"
    #: which requests are cached: ``deterministic`` ones (temperature 0, or a seed) or ``all``
    qualify: Literal["deterministic", "all"] = "deterministic"
    #: answers larger than this (bytes, as stored) are not stored
    max_entry_bytes: int = Field(default=1_048_576, ge=1)
    #: when every deployment and fallback fails, an entry up to this many seconds past its TTL
    #: is served instead, marked ``x-breakwater-cache: stale`` (0: never)
    stale_if_error_s: float = Field(default=0.0, ge=0, le=MAX_TTL_S)


class GatewayEmbedder(_Model):
    """The semantic cache's questions embedded by this gateway's own embeddings route."""

    #: a route of this config that serves embeddings (with its retries, fallbacks and breakers);
    #: its calls are ledger rows of their own, user ``breakwater:semantic-cache``
    model: str = Field(min_length=1)


class CacheSettings(_Model):
    """Where cached answers live, for every route that caches."""

    #: ``memory``: this process, bounded by ``max_bytes`` (least recently used out first);
    #: ``redis``: shared by every replica and worker (the ``redis`` section), expiring in Redis
    backend: Literal["memory", "redis"] = "memory"
    #: the memory backend's bound: stored bytes of every entry together
    max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    #: the semantic index's bound: questions remembered in this process (about 1.3 KB each)
    semantic_max_entries: int = Field(default=100_000, ge=1)
    #: what embeds a semantic route's questions: ``local`` (the model bundled with the optional
    #: ``wordllama`` package, in this process: no network, ~60 us a question) or ``{model: ROUTE}``
    #: (an embeddings route of this gateway: an upstream call per question not answered exactly)
    embedder: Literal["local"] | GatewayEmbedder = "local"
