"""Where cached answers live: ``memory`` (this process) and ``redis`` (every replica), behind
``engine/cache/store.CacheStore``."""
