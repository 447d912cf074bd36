"""The answer cache's store, built from the config: memory (the default) or Redis; and the semantic
index with its embedder (the bundled local model, or an embeddings route of this gateway), when
some route is ``mode: semantic``."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import orjson

from breakwater.core.config import Config
from breakwater.engine.cache.store import CacheStore
from breakwater.engine.calls.gateway import Gateway
from breakwater.engine.context import RequestContext
from breakwater.engine.pipeline import Outcome
from breakwater.engine.ports import Clock
from breakwater.engine.routing import Router
from breakwater.infra.cache.memory import MemoryCacheStore
from breakwater.infra.credentials import resolve_optional
from breakwater.runtime.drifting import grades_by_similarity

if TYPE_CHECKING:  # numpy and wordllama are imported only for a semantic route
    from breakwater.engine.cache.semantic import Embedder, SemanticIndex
    from breakwater.infra.cache.semantic_feed import RedisSemanticFeed


def caches(config: Config) -> bool:
    """Some route caches answers."""
    return any(route.cache.mode != "off" for route in config.routes.values())


def build_cache_store(config: Config, environ: Mapping[str, str], clock: Clock) -> CacheStore | None:
    """The store for every caching route, or ``None`` when no route caches."""
    if not caches(config):
        return None
    settings = config.cache
    if settings.backend == "memory" or config.redis is None:
        return MemoryCacheStore(settings.max_bytes, clock)
    from breakwater.infra.cache.redis import RedisCacheStore  # redis-py only for a gateway that uses it

    r = config.redis
    return RedisCacheStore(resolve_optional(r.url, environ), namespace=r.namespace, timeout_s=r.timeout_ms / 1000)


def semantic(config: Config) -> bool:
    """Some route is ``mode: semantic``."""
    return any(route.cache.mode == "semantic" for route in config.routes.values())


def compares_answers(config: Config) -> bool:
    """Some route's shadow compares answers by embedding (``shadow.similarity``), or its drift
    watch grades them by a ``similar`` assertion."""
    shadows = any(r.shadow is not None and r.shadow.similarity for r in config.routes.values())
    return shadows or grades_by_similarity(config)


def embedder_identity(config: Config, router: Router) -> str:
    """What the configured embedder's vectors are comparable with: the local model's name, or the
    embeddings route's deployments (providers and upstream models). An index is kept across a
    reload only when this has not changed."""
    chosen = config.cache.embedder
    if chosen == "local":
        from breakwater.infra.cache.wordllama import WordLlamaEmbedder

        return WordLlamaEmbedder.identity
    served_by = [[d.target.provider, d.target.model] for d in router.routes[chosen.model].deployments]
    return "route:" + hashlib.sha256(orjson.dumps(served_by)).hexdigest()[:16]


def build_semantic_index(config: Config, identity: str) -> SemanticIndex | None:
    """The semantic index for vectors of the embedder ``identity``, or ``None``."""
    if not semantic(config):
        return None
    from breakwater.engine.cache.semantic import SemanticIndex

    return SemanticIndex(max_entries=config.cache.semantic_max_entries, identity=identity)


def build_embedder(
    config: Config,
    gateway: Gateway,
    clock: Clock,
    finish: Callable[[RequestContext, Outcome], None],
    previous: Embedder | None,
) -> Embedder | None:
    """The embedder of semantic routes' questions and shadowed answers (``previous``, the local
    model already loaded, when it is the same one), or ``None`` when nothing embeds."""
    if not semantic(config) and not compares_answers(config):
        return None
    chosen = config.cache.embedder
    if chosen == "local":
        from breakwater.infra.cache.wordllama import WordLlamaEmbedder

        if isinstance(previous, WordLlamaEmbedder):
            return previous
        return WordLlamaEmbedder()
    from breakwater.engine.cache.gateway_embedder import GatewayEmbedder

    identity = embedder_identity(config, gateway.router)
    return GatewayEmbedder(gateway.embeddings, chosen.model, identity, clock, finish)


async def load_embedder(embedder: Embedder) -> None:
    """Load a local embedder's model off the event loop (about 0.3 s, once per process).

    Raises:
        EmbedderUnavailable: the optional ``wordllama`` package is not installed.
    """
    load = getattr(embedder, "load", None)
    if load is not None:
        await asyncio.to_thread(load)


def build_semantic_feed(
    config: Config, environ: Mapping[str, str], index: SemanticIndex | None
) -> RedisSemanticFeed | None:
    """With the Redis backend, the feed that shares indexed questions between replicas."""
    if index is None or config.cache.backend != "redis" or config.redis is None:
        return None
    from breakwater.infra.cache.semantic_feed import RedisSemanticFeed

    r = config.redis
    feed = RedisSemanticFeed(
        resolve_optional(r.url, environ), index, namespace=r.namespace, timeout_s=r.timeout_ms / 1000
    )
    index.on_add = feed.publish
    return feed
