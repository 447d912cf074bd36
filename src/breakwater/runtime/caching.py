"""The answer cache's store, built from the config: memory (the default) or Redis."""

from __future__ import annotations

from collections.abc import Mapping

from breakwater.core.config import Config
from breakwater.engine.cache.store import CacheStore
from breakwater.engine.ports import Clock
from breakwater.infra.cache.memory import MemoryCacheStore
from breakwater.infra.credentials import resolve_optional


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
