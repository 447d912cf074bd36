"""A LiteLLM proxy config (``config.yaml``) as a Breakwater config, and what did not carry over.

``model_list`` becomes providers and deployments (``litellm_models.py``); each ``model_name``
(a LiteLLM "model group") becomes a route over its deployments; ``router_settings`` and
``litellm_settings`` become the routes' strategy, retries, timeouts and fallbacks. Everything
else (callbacks, caching, the proxy's keys and database, ``general_settings``) is listed with its
key path and what to use instead. Format followed: LiteLLM's proxy docs "Config.yaml",
"Fallbacks" and the router's strategies page (docs.litellm.ai, read 2026-12).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from breakwater.core.migration.litellm_models import Entry, ModelList, convert_models
from breakwater.core.migration.notes import Note

__all__ = ["Conversion", "convert"]

#: LiteLLM routing_strategy -> (Breakwater strategy, how it differs or None)
_STRATEGIES: dict[str, tuple[str, str | None]] = {
    "simple-shuffle": ("weighted", None),
    "least-busy": ("least_in_flight", None),
    "latency-based-routing": ("lowest_latency", None),
    "usage-based-routing": ("weighted", "weighted by each deployment's rpm/tpm instead of this minute's usage"),
    "usage-based-routing-v2": ("weighted", "weighted by each deployment's rpm/tpm instead of this minute's usage"),
    "cost-based-routing": ("weighted", "weighted instead of cheapest first; list the cheapest first with order:"),
}
#: (LiteLLM fallback key, Breakwater fallbacks key)
_FALLBACKS = (
    ("fallbacks", "general"),
    ("context_window_fallbacks", "context_window"),
    ("content_policy_fallbacks", "content_filter"),
)
#: settings keys read below; the others are listed as unmapped with a hint when there is one
_READ = frozenset(
    {"routing_strategy", "num_retries", "timeout", "request_timeout", "drop_params", "default_fallbacks"}
    | {key for key, _ in _FALLBACKS}
)
_HINTS = {
    "master_key": "Breakwater's virtual keys: breakwater keys create (docs/access.md)",
    "database_url": "access.store and ledger.url (docs/configuration.md)",
    "cache": "per route: routes.NAME.cache (docs/caching.md)",
    "cache_params": "per route: routes.NAME.cache, and the cache section (docs/caching.md)",
    "success_callback": "the ledger, /metrics and tracing record every request (docs/observability.md)",
    "failure_callback": "the ledger, /metrics and tracing record every request (docs/observability.md)",
    "callbacks": "the ledger, /metrics and tracing record every request (docs/observability.md)",
    "redis_host": "redis.url, with limits.backend: redis / cache.backend: redis (docs/configuration.md)",
    "redis_port": "redis.url (docs/configuration.md)",
    "redis_password": "redis.url: env:NAME holding the URL with its password (docs/configuration.md)",
    "allowed_fails": "deployments.NAME.breaker (docs/reliability.md): consecutive failures or a failure rate",
    "cooldown_time": "deployments.NAME.breaker.cooldown_s (docs/reliability.md)",
    "max_parallel_requests": "deployments.NAME.max_concurrency (docs/reliability.md)",
    "model_group_alias": "add a route of the alias's name with the same deployments",
    "retry_policy": "one retry policy per route: routes.NAME.retry (docs/reliability.md)",
    "routing_strategy_args": "the strategies take no arguments in Breakwater",
    "enable_pre_call_checks": "not needed: a prompt that does not fit a deployment's context_window skips it",
    "set_verbose": "not needed: serve --log-level debug",
    "json_logs": "not needed: Breakwater's logs are JSON",
}


@dataclass(frozen=True, slots=True)
class Conversion:
    """The Breakwater config (a mapping ready for ``build_config`` and YAML) and the notes."""

    config: dict[str, Any]
    notes: list[Note]


def convert(data: Any, environ: Mapping[str, str]) -> Conversion:
    """A parsed LiteLLM proxy config converted.

    Args:
        data: the YAML file, parsed.
        environ: read only for non-secret settings LiteLLM takes from the environment
            (``api_base: os.environ/AZURE_API_BASE``), which Breakwater takes literally; secrets
            stay references.
    """
    notes: list[Note] = []
    if not isinstance(data, dict):
        return Conversion({}, [Note("", "unmapped", "expected a mapping at the top level")])
    models = convert_models(data.get("model_list"), environ, notes)
    router = _section(data, "router_settings", notes)
    module = _section(data, "litellm_settings", notes)
    # the router's own settings win over the module's, as on the proxy
    settings = {**module, **router}
    routes = _routes(models, settings, router, notes)
    _fallbacks(routes, settings, router, notes)
    for section, values in (("router_settings", router), ("litellm_settings", module)):
        for key in values:
            if key not in _READ:
                notes.append(Note(f"{section}.{key}", "unmapped", _HINTS.get(key, "not used by Breakwater")))
    for key, value in data.items():
        if key in ("model_list", "router_settings", "litellm_settings"):
            continue
        if isinstance(value, dict) and value:
            for sub in value:
                notes.append(Note(f"{key}.{sub}", "unmapped", _HINTS.get(sub, "not used by Breakwater")))
        else:
            notes.append(Note(str(key), "unmapped", "not used by Breakwater"))
    config = {"providers": models.providers, "deployments": models.deployments, "routes": routes}
    return Conversion(config, notes)


def _section(data: dict[str, Any], name: str, notes: list[Note]) -> dict[str, Any]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        notes.append(Note(name, "unmapped", "expected a mapping"))
        return {}
    return value


def _routes(
    models: ModelList, settings: dict[str, Any], router: dict[str, Any], notes: list[Note]
) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Entry]] = {}
    for entry in models.entries:
        groups.setdefault(entry.group, []).append(entry)
    strategy_name = str(settings.get("routing_strategy") or "simple-shuffle")
    strategy = _STRATEGIES.get(strategy_name)
    if strategy is None:
        strategy = ("weighted", None)
        notes.append(
            Note(_where(settings, "routing_strategy", router), "unmapped", f"{strategy_name!r}: weighted written")
        )
    elif strategy[1] is not None:
        notes.append(Note(_where(settings, "routing_strategy", router), "approximated", strategy[1]))
    routes: dict[str, dict[str, Any]] = {}
    for group, entries in groups.items():
        wildcard = next((e.wildcard_provider for e in entries if e.wildcard_provider), None)
        if wildcard is not None:
            routes[group] = {"provider": wildcard}
            continue
        route: dict[str, Any] = {}
        route["deployments"] = _targets(entries, strategy[0], route)
        _policies(route, entries, settings)
        routes[group] = route
    return routes


def _targets(entries: list[Entry], strategy: str, route: dict[str, Any]) -> list[Any]:
    if len(entries) == 1:
        return [entries[0].deployment]
    if any(e.order is not None for e in entries):
        # LiteLLM's order: lower first, the next only when those fail
        route["strategy"] = "ordered"
        ranked = sorted(entries, key=lambda e: (e.order is None, e.order or 0))
        return [e.deployment for e in ranked]
    route["strategy"] = strategy
    if strategy != "weighted":
        return [e.deployment for e in entries]
    weights = [e.weight or e.rpm or e.tpm for e in entries]
    if all(w is None for w in weights) or len({w for w in weights}) == 1:
        return [e.deployment for e in entries]
    return [{"deployment": e.deployment, "weight": w if w else 1} for e, w in zip(entries, weights, strict=True)]


def _policies(route: dict[str, Any], entries: list[Entry], settings: dict[str, Any]) -> None:
    retries = settings.get("num_retries")
    if isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0:
        route["retry"] = {"max_attempts": min(retries + 1, 20)}
    timeout = settings.get("timeout", settings.get("request_timeout"))
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
        route["timeouts"] = {"total": float(timeout)}
    if settings.get("drop_params") is True or any(e.drop_params for e in entries):
        route["unsupported_params"] = "drop"


def _fallbacks(
    routes: dict[str, dict[str, Any]], settings: dict[str, Any], router: dict[str, Any], notes: list[Note]
) -> None:
    """``[{group: [other, ...]}, ...]`` lists as each route's fallbacks by kind."""
    known = {name for name, r in routes.items() if "provider" not in r}
    for theirs, ours in _FALLBACKS:
        value = settings.get(theirs)
        where = _where(settings, theirs, router)
        if value is None:
            continue
        if not isinstance(value, list):
            notes.append(Note(where, "unmapped", "expected a list of {model_group: [fallbacks]}"))
            continue
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                notes.append(Note(f"{where}[{i}]", "unmapped", "expected {model_group: [fallbacks]}"))
                continue
            for group, targets in item.items():
                _add_fallbacks(routes, known, str(group), targets, ours, f"{where}[{i}].{group}", notes)
    defaults = settings.get("default_fallbacks")
    if isinstance(defaults, list):
        for group in known:
            _add_fallbacks(
                routes, known, group, defaults, "general", _where(settings, "default_fallbacks", router), notes
            )


def _add_fallbacks(
    routes: dict[str, dict[str, Any]],
    known: set[str],
    group: str,
    targets: Any,
    kind: str,
    where: str,
    notes: list[Note],
) -> None:
    if group not in known:
        notes.append(Note(where, "unmapped", f"no route {group!r} (its model group was not converted)"))
        return
    listed = targets if isinstance(targets, list) else [targets]
    chosen = routes[group].setdefault("fallbacks", {}).setdefault(kind, [])
    for target in listed:
        name = str(target)
        if name == group or name in chosen:
            continue
        if name not in known:
            notes.append(Note(where, "unmapped", f"fallback {name!r} is not a converted model group"))
            continue
        chosen.append(name)


def _where(settings: dict[str, Any], key: str, router: dict[str, Any]) -> str:
    """The section a merged setting came from (for its note's key path)."""
    return f"router_settings.{key}" if key in router else f"litellm_settings.{key}"
