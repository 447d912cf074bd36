"""The semantic cache's questions embedded by one of this gateway's own embeddings routes.

``cache: {embedder: {model: ROUTE}}`` (docs/caching.md): each question a semantic route looks up
is sent to ROUTE as an embeddings request, through the gateway's calls (the route's deployments,
retries, fallbacks and breakers), not through the access stage: no key pays for it. Each call
is a ledger row of its own, attributed to the user ``breakwater:semantic-cache``, so what the
embeddings cost is in ``breakwater usage`` beside what the cache saved.

An embedding that fails (the route down, an answer that is not one vector) raises
``EmbedderFailed``; the stage then skips the semantic lookup (the request goes on as an exact
miss): the cache never fails a request. The vector is normalised here, since the index compares
unit vectors and not every provider returns them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from breakwater.core.ids import IdGenerator
from breakwater.core.types import EmbeddingRequest
from breakwater.engine.cache.semantic import Vector
from breakwater.engine.cache.semantic_scope import EmbedderFailed
from breakwater.engine.context import Caller, RequestContext
from breakwater.engine.pipeline import EmbeddingsCall, Outcome
from breakwater.engine.ports import Clock

#: the ledger's user for the embedder's own calls
USER = "breakwater:semantic-cache"


class GatewayEmbedder:
    """Args:
    call: the gateway's embeddings call (``engine/calls/gateway.Gateway.embeddings``).
    model: the route to embed with.
    identity: what makes two of its vectors comparable (the route's fingerprint: its
        deployments' providers and upstream models): an index built with another is not kept.
    clock: the row's times.
    finish: told of each call when it is over (the recording stage's ``end``: its ledger row).
    """

    def __init__(
        self,
        call: EmbeddingsCall,
        model: str,
        identity: str,
        clock: Clock,
        finish: Callable[[RequestContext, Outcome], None] | None = None,
    ) -> None:
        self.call = call
        self.model = model
        self.identity = identity
        self.clock = clock
        self.finish = finish
        self._ids = IdGenerator()

    async def embed(self, text: str, regions: frozenset[str] | None = None) -> Vector:
        """Raises: EmbedderFailed. ``regions``: the asking request's allowed regions (data residency)."""
        ctx = RequestContext("embed-" + self._ids.new(), caller=Caller(user=USER))
        ctx.regions = regions
        ctx.started_at, ctx.started_mono = self.clock.time(), self.clock.monotonic()
        ctx.outcome.route = self.model
        outcome = Outcome()
        try:
            response = await self.call(EmbeddingRequest(model=self.model, inputs=[text]), ctx)
            vectors = response.vectors
            if len(vectors) != 1 or not vectors[0]:
                raise EmbedderFailed(f"route {self.model!r} answered {len(vectors)} vectors for one question")
            vector = np.asarray(vectors[0], dtype=np.float32)
            norm = float(np.linalg.norm(vector))
            if not math.isfinite(norm) or norm == 0.0:
                raise EmbedderFailed(f"route {self.model!r} answered a vector that cannot be normalised")
            return vector / norm
        except EmbedderFailed as exc:
            outcome.status, outcome.error = 502, exc
            raise
        except Exception as exc:  # an upstream failure skips the lookup, never fails the request
            outcome.status, outcome.error = 502, exc
            raise EmbedderFailed(f"route {self.model!r} did not embed the question ({type(exc).__name__})") from exc
        finally:
            if self.finish is not None:
                self.finish(ctx, outcome)
