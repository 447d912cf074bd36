"""The Batch API's store, built from the config (``batches`` section, docs/batch.md)."""

from __future__ import annotations

from collections.abc import Mapping

from breakwater.core.config import Config
from breakwater.engine.batches.store import BatchStore
from breakwater.infra.batch_memory import MemoryBatchStore
from breakwater.infra.credentials import resolve_optional
from breakwater.infra.keystore import store_for


def build_batch_store(config: Config, environ: Mapping[str, str]) -> BatchStore:
    """``batches.store``; unset, the key store's database (memory with access control off)."""
    url = config.batches.store
    if url is None:
        url = config.access.store if config.access.enabled else "memory"
    if url == "memory":
        return MemoryBatchStore()
    store: BatchStore = store_for(resolve_optional(url, environ))
    return store
