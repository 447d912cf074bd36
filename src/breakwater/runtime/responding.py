"""The Responses API's store, built from the config (``responses`` section, docs/api.md)."""

from __future__ import annotations

from collections.abc import Mapping

from breakwater.core.config import Config
from breakwater.engine.responses.store import ResponseStore
from breakwater.infra.credentials import resolve_optional
from breakwater.infra.keystore import store_for
from breakwater.infra.response_memory import MemoryResponseStore


def build_response_store(config: Config, environ: Mapping[str, str]) -> ResponseStore:
    """``responses.store``; unset, the key store's database (memory with access control off)."""
    settings = config.responses
    url = settings.store
    if url is None:
        url = config.access.store if config.access.enabled else "memory"
    if url == "memory":
        return MemoryResponseStore(settings.max_memory_records)
    store: ResponseStore = store_for(resolve_optional(url, environ))
    return store
