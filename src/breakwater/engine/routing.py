"""Routes: from the public model name a client sends to the deployments that can serve it.

The router is built once from the config (``breakwater.runtime.wiring``) and is read-only while
serving, so a lookup is a dict hit. Wildcard routes (``openai/*``) make a deployment on first use
for each model name after the prefix and keep it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import orjson

from breakwater.core.config import (
    BreakerPolicy,
    Fallbacks,
    MaxTokensGuard,
    RetryPolicy,
    RouteCache,
    Strategy,
    Timeouts,
)
from breakwater.core.errors import ModelNotFound
from breakwater.core.limits import Limits
from breakwater.engine.calls.stats import DeploymentStats
from breakwater.engine.ports import HttpSender, RandomSource
from breakwater.providers.base import Adapter, Target


@dataclass(frozen=True, slots=True)
class Deployment:
    """A deployment ready to call: adapter, resolved target, sender and limits."""

    name: str
    adapter: Adapter
    target: Target
    sender: HttpSender
    timeouts: Timeouts
    #: an in-process or remote mock: the client's ``x-mock-*`` headers are forwarded to it
    is_mock: bool = False
    context_window: int | None = None
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    max_concurrency: int | None = None
    max_queue: int = 100
    #: where it processes data (``core/regions.py``): restricted requests go only where allowed
    region: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    deployments: tuple[Deployment, ...]
    weights: tuple[float, ...]
    strategy: Strategy = "ordered"
    unsupported_params: Literal["reject", "drop"] = "reject"
    owner: str = "breakwater"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    fallbacks: Fallbacks = field(default_factory=Fallbacks)
    #: the whole request's time limit across attempts and fallbacks: the route's own
    #: ``timeouts.total`` when it sets one, else its first deployment's
    deadline_s: float | None = None
    overflow: bool = False
    stream_failure: Literal["error", "continue"] = "error"
    #: caps on the route as a whole (``routes.<name>.limits``), counted under ``limits_name``
    limits: Limits | None = None
    #: the configured route whose limits apply: the route itself, or its wildcard (``openai/*``)
    limits_name: str = ""
    max_tokens: MaxTokensGuard | None = None
    #: the regions this route's requests may go to (``None``: anywhere); the access stage puts it
    #: on the request, and the attempts hold every route run to it as well
    allowed_regions: frozenset[str] | None = None
    #: the answer cache's policy, when the route caches (``engine/cache``)
    cache: RouteCache | None = None
    #: a branching route's branches, as the routes that serve them (``engine/router``): its
    #: requests go to one of these (its ``deployments`` are theirs, for estimates only), and its
    #: cached answers depend on them
    branch_targets: tuple[str, ...] = ()
    #: a route made for a branch's own deployments (``<route>.<branch>``): not listed in /v1/models
    hidden: bool = False
    #: derived: what a cached answer of this route depends on besides the request (its name and
    #: every deployment's provider and upstream model), as a short hash
    cache_fingerprint: str = field(init=False, default="")
    #: derived: some deployment has a context window to check prompts against
    has_windows: bool = field(init=False, default=False)
    #: derived: a content-filter refusal goes to a fallback route or a fixed answer
    handles_refusals: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        # derived once here, so the request path reads a flag instead of scanning the config
        windows = any(d.context_window is not None for d in self.deployments)
        refusals = bool(self.fallbacks.content_filter) or self.fallbacks.content_filter_message is not None
        object.__setattr__(self, "has_windows", windows)
        object.__setattr__(self, "handles_refusals", refusals)
        if self.cache is not None:
            served_by = [[d.name, d.target.provider, d.target.model] for d in self.deployments]
            digest = hashlib.sha256(orjson.dumps([self.name, served_by, self.branch_targets])).hexdigest()[:16]
            object.__setattr__(self, "cache_fingerprint", digest)


WildcardFactory = Callable[[str], Route]


@dataclass(slots=True)
class Router:
    """Name lookup and deployment choice. ``wildcards`` maps ``prefix/`` to a route factory."""

    routes: dict[str, Route]
    wildcards: dict[str, tuple[str, WildcardFactory]] = field(default_factory=dict)
    rng: RandomSource | None = None

    def resolve(self, model: str) -> Route:
        route = self.routes.get(model)
        if route is not None:
            return route
        prefix, _, rest = model.partition("/")
        wildcard = self.wildcards.get(prefix + "/")
        if wildcard is not None and rest:
            route = wildcard[1](model)
            self.routes[model] = route  # made once per model name; later calls are a dict hit
            return route
        raise ModelNotFound(
            f"The model '{model}' does not exist. Available: {', '.join(self.public_names())}", param="model"
        )

    def public_names(self) -> list[str]:
        """Configured route names and wildcard patterns (not the per-model routes made from them)."""
        made = {n for n in self.routes if n.partition("/")[0] + "/" in self.wildcards}
        names = [n for n, r in self.routes.items() if n not in made and not r.hidden]
        names.extend(p + "*" for p in self.wildcards)
        return sorted(names)

    def owner(self, name: str) -> str:
        if name.endswith("/*"):
            return self.wildcards[name[:-1]][0]
        return self.routes[name].owner

    def order(
        self, route: Route, stats: Mapping[str, DeploymentStats] | None = None, *, stream: bool = False
    ) -> list[Deployment]:
        """The deployments to try, best first, by the route's strategy; the rest are fallbacks.

        ``ordered`` keeps the listed order; ``weighted`` draws the first choice by weight;
        ``least_in_flight`` and ``lowest_latency`` sort by the deployments' live ``stats``
        (ties keep the listed order, so equal deployments behave like ``ordered``).
        """
        deployments = route.deployments
        if route.strategy == "ordered" or len(deployments) == 1:
            return list(deployments)
        if route.strategy == "weighted":
            if self.rng is None:
                return list(deployments)
            point = self.rng.random() * sum(route.weights)
            for i, weight in enumerate(route.weights):
                point -= weight
                if point < 0:
                    return [deployments[i], *deployments[:i], *deployments[i + 1 :]]
            return list(deployments)
        known = stats or {}
        empty = DeploymentStats()
        if route.strategy == "least_in_flight":
            return sorted(deployments, key=lambda d: known.get(d.name, empty).in_flight)
        return sorted(deployments, key=lambda d: known.get(d.name, empty).expected(stream=stream))
