"""A route's shadow: a sampled share of its requests also sent to a candidate route, whose answer
is compared with the one the caller got and never returned (docs/safe-change.md)."""

from __future__ import annotations

from pydantic import Field

from breakwater.core.config.base import _Model


class RouteShadow(_Model):
    """``routes.X.shadow``."""

    #: the candidate: another route of this config (its deployments, retries and fallbacks)
    route: str = Field(min_length=1)
    #: the share of the route's requests mirrored (0.001 = 0.1%)
    share: float = Field(default=1.0, gt=0, le=1)
    #: mirrored requests waiting for a candidate call; beyond it a request is not mirrored (counted)
    queue: int = Field(default=100, ge=1, le=100_000)
    #: candidate calls at once, per process
    concurrency: int = Field(default=2, ge=1, le=256)
    #: also compare the two answers by the cosine similarity of their embeddings (the cache's
    #: embedder, ``cache.embedder``: the bundled local model by default)
    similarity: bool = False
