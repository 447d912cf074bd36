"""What ``check-config`` says about data residency: routes that restricted requests cannot use.

A request restricted to some regions (``core/regions.py``) goes only to deployments in them,
whatever sent it there, so a route's fallbacks and the routes its side calls use (shadow
candidate, branches and cascade steps, the history summariser, the drift and cascade judges, the
cache's embeddings route) may be unreachable for it. Two kinds of finding:

- **route restrictions** (``routes.X.allowed_regions``, in the config): exact. A route with no
  deployment in its own regions, a deployment it can never use, a route it calls that has no
  deployment there;
- **tenant restrictions** (keys' and teams' ``regions``, in the key store, not in the config):
  checked for each region a deployment declares, as if a tenant were restricted to it: a route
  that can serve it whose fallbacks or side routes cannot.
"""

from __future__ import annotations

from collections.abc import Iterator

from breakwater.core.config import Config
from breakwater.core.config import Route as RouteConfig
from breakwater.core.regions import Regions, allows, describe, narrow
from breakwater.runtime.wiring import sends_to


def residency_warnings(config: Config) -> list[str]:
    """One line per finding (empty when nothing restricts, or everything is reachable)."""
    found: list[str] = []
    for name in sorted(config.routes):
        route = config.routes[name]
        if route.allowed_regions is None:
            continue
        allowed = frozenset(route.allowed_regions)
        own = _own_regions(config, route)
        if own and not any(allows(allowed, r) for r in own.values()):
            found.append(
                f"route {name!r}: no deployment in its allowed regions ({describe(allowed)}): "
                "every request fails with region_unavailable"
            )
        for deployment, region in own.items():
            if own and not allows(allowed, region):
                found.append(
                    f"route {name!r}: deployment {deployment!r} (region {region or 'unset'}) is outside "
                    f"its allowed regions ({describe(allowed)}) and is never used"
                )
        found.extend(_unreachable(config, name, route, allowed, "its allowed regions"))
    regions = sorted({r for r in _deployment_regions(config).values() if r is not None})
    for region in regions:
        tenant = frozenset({region})
        for name in sorted(config.routes):
            route = config.routes[name]
            if route.allowed_regions is not None or not _reachable(config, name, tenant):
                continue
            found.extend(_unreachable(config, name, route, tenant, f"a tenant restricted to {region}"))
    unset = sorted(d for d, r in _deployment_regions(config).items() if r is None)
    if unset and (regions or any(r.allowed_regions is not None for r in config.routes.values())):
        found.append(
            f"deployments without a region ({', '.join(unset)}) are never used for restricted requests; "
            "set region on them or on their providers"
        )
    return found


def _unreachable(config: Config, name: str, route: RouteConfig, allowed: frozenset[str], who: str) -> Iterator[str]:
    for kind, target in _called(config, route):
        if target in config.routes and not _reachable(config, target, allowed):
            yield f"route {name!r}: {kind} {target!r} has no deployment in {who} ({describe(allowed)}): unreachable"


def _called(config: Config, route: RouteConfig) -> Iterator[tuple[str, str]]:
    """The routes a route's requests may go on to: fallbacks, branches, and side calls."""
    fallbacks = route.fallbacks
    for kind, names in (
        ("fallback route", fallbacks.general),
        ("context-window fallback route", fallbacks.context_window),
        ("content-filter fallback route", fallbacks.content_filter),
    ):
        for target in names:
            yield kind, target
    for branch in sends_to(route).values():
        if branch.route is not None:
            yield "branch route", branch.route
    if route.cascade is not None and route.cascade.checks.judge is not None:
        yield "cascade judge route", route.cascade.checks.judge.route
    if route.shadow is not None:
        yield "shadow candidate", route.shadow.route
    if route.trim is not None and route.trim.summarise_route is not None:
        yield "summarise route", route.trim.summarise_route
    if route.drift is not None and route.drift.judge is not None:
        yield "drift judge route", route.drift.judge
    embedder = config.cache.embedder
    if route.cache.mode == "semantic" and not isinstance(embedder, str):
        yield "cache embeddings route", embedder.model


def _reachable(config: Config, name: str, allowed: Regions) -> bool:
    """Some deployment of route ``name`` (or of a route its branches name) may serve ``allowed``."""
    route = config.routes[name]
    allowed = narrow(allowed, route.allowed_regions)
    if any(allows(allowed, r) for r in _own_regions(config, route).values()):
        return True
    return any(
        b.route is not None and b.route in config.routes and _reachable(config, b.route, allowed)
        for b in sends_to(route).values()
        if b.route != name
    )


def _own_regions(config: Config, route: RouteConfig) -> dict[str, str | None]:
    """The route's own deployments (and its branches' own) by name, with their regions."""
    regions = _deployment_regions(config)
    names = [t.deployment for t in route.deployments]
    names.extend(t.deployment for b in sends_to(route).values() for t in b.deployments)
    own = {n: regions[n] for n in names if n in regions}
    if route.provider is not None and route.provider in config.providers:  # a wildcard route
        own[f"{route.provider}/*"] = config.providers[route.provider].region
    return own


def _deployment_regions(config: Config) -> dict[str, str | None]:
    return {
        name: d.region or (config.providers[d.provider].region if d.provider in config.providers else None)
        for name, d in config.deployments.items()
    }
