"""The shadow stage, built from the config: each route's ``shadow`` as a plan, and the answers'
similarity by the configured embedder (``cache.embedder``) for shadows that ask for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from breakwater.core.config import Config
from breakwater.engine.calls.gateway import Gateway
from breakwater.engine.context import RequestContext
from breakwater.engine.pipeline import Outcome
from breakwater.engine.ports import Clock, RandomSource
from breakwater.engine.shadow.stage import ShadowPlan, ShadowStage
from breakwater.engine.similarity import similarity_by

if TYPE_CHECKING:
    from breakwater.engine.cache.semantic import Embedder


def build_shadow(
    config: Config,
    gateway: Gateway,
    clock: Clock,
    rng: RandomSource,
    finish: Callable[[RequestContext, Outcome], None],
    embedder: Embedder | None,
) -> ShadowStage | None:
    """The shadow stage, or ``None`` when no route has a shadow."""
    plans = {
        name: ShadowPlan(s.route, s.share, s.queue, s.concurrency, s.similarity)
        for name, route in config.routes.items()
        if (s := route.shadow) is not None
    }
    if not plans:
        return None
    similarity = None if embedder is None else similarity_by(embedder)
    return ShadowStage(plans, gateway.chat, clock, rng, finish, similarity=similarity)
