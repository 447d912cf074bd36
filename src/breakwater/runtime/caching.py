"""The answer cache's store, built from the config: memory (the default) or Redis; and the semantic
index with its local embedder, when some route is ``mode: semantic``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from breakwater.core.config import Config
from breakwater.engine.cache.store import CacheStore
from breakwater.engine.ports import Clock
from breakwater.infra.cache.memory import MemoryCacheStore
from breakwater.infra.credentials import resolve_optional

if TYPE_CHECKING:  # numpy and wordllama are imported only for a semantic route
    from breakwater.engine.cache.semantic import SemanticIndex
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


def build_semantic_index(config: Config) -> SemanticIndex | None:
    """The semantic index (its embedder not loaded yet: ``load_semantic``), or ``None``."""
    if not semantic(config):
        return None
    from breakwater.engine.cache.semantic import SemanticIndex
    from breakwater.infra.cache.wordllama import WordLlamaEmbedder

    return SemanticIndex(WordLlamaEmbedder(), max_entries=config.cache.semantic_max_entries)


async def load_semantic(index: SemanticIndex) -> None:
    """Load the embedder's model off the event loop (about 0.3 s, once per process).

    Raises:
        EmbedderUnavailable: the optional ``wordllama`` package is not installed.
    """
    load = getattr(index.embedder, "load", None)
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
