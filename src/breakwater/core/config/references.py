"""The checks that span a config's sections (``cross_check``): references resolve (routes,
deployments, providers, prompts, judges, fallbacks), branches and fallbacks hold no cycle,
wildcards are well formed. They work on the raw mapping, so they run even when field validation
failed, and every problem is reported with its key path.
"""

from __future__ import annotations

from typing import Any

from breakwater.core.config.problems import Problem
from breakwater.core.config.prompts import NAME, parse_ref
from breakwater.core.config.slo import slo_problems


def _section(data: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    """The entries of a top-level section that are mappings (type errors are reported elsewhere)."""
    section = data.get(key)
    if not isinstance(section, dict):
        return {}
    return {str(k): v for k, v in section.items() if isinstance(v, dict)}


def _one_of(names: list[str]) -> str:
    return ", ".join(names) or "none defined"


def cross_check(data: dict[str, Any]) -> list[Problem]:
    """Checks that span sections: references resolve, wildcards are well formed.

    Works on the raw mapping, not the validated model, so it runs even when field validation
    failed and ``check-config`` can report both kinds of problem in one pass.
    """
    problems: list[Problem] = []
    providers = _section(data, "providers")
    deployments = _section(data, "deployments")
    known_providers = sorted(providers)
    known_deployments = sorted(deployments)

    def provider_ref(path: str, value: Any) -> None:
        if isinstance(value, str) and value not in providers:
            problems.append(Problem(path, f"unknown provider {value!r} (expected one of: {_one_of(known_providers)})"))

    for name, dep in deployments.items():
        provider_ref(f"deployments.{name}.provider", dep.get("provider"))
        cache = dep.get("prompt_cache")
        provider = providers.get(dep.get("provider"))  # type: ignore[arg-type]
        for flag, served in (("legacy_completions", "/v1/completions"), ("responses_api", "/v1/responses")):
            if dep.get(flag) is True and isinstance(provider, dict):
                wire = provider.get("wire", "openai") if provider.get("type") == "mock" else provider.get("type")
                if wire != "openai":
                    problems.append(Problem(f"deployments.{name}.{flag}", f"only OpenAI-wire upstreams serve {served}"))
        if isinstance(cache, dict) and cache.get("auto") and isinstance(provider, dict):
            wire = provider.get("wire", "openai") if provider.get("type") == "mock" else provider.get("type")
            claude_on_vertex = wire == "vertex" and str(dep.get("model", "")).lower().startswith("claude")
            if wire != "anthropic" and not claude_on_vertex:
                problems.append(
                    Problem(
                        f"deployments.{name}.prompt_cache",
                        "automatic breakpoints are for Anthropic deployments; OpenAI and Gemini cache prefixes on their own",
                    )
                )
    for name, p in providers.items():
        if p.get("type") == "openai" and not p.get("base_url") and p.get("host") in (None, "azure", "custom"):
            problems.append(Problem(f"providers.{name}.base_url", "required unless 'host' names a known host"))
        for key in ("faults", "answers"):
            if p.get(key) and p.get("type") != "mock":
                problems.append(Problem(f"providers.{name}.{key}", f"only a provider of type 'mock' takes {key}"))
    limits = data.get("limits")
    if isinstance(limits, dict) and limits.get("backend") == "redis" and not isinstance(data.get("redis"), dict):
        problems.append(Problem("limits.backend", "the redis backend needs a 'redis' section with its url"))
    cache = data.get("cache")
    if isinstance(cache, dict) and cache.get("backend") == "redis" and not isinstance(data.get("redis"), dict):
        problems.append(Problem("cache.backend", "the redis backend needs a 'redis' section with its url"))
    embedder = cache.get("embedder") if isinstance(cache, dict) else None
    if isinstance(embedder, dict) and isinstance(embedder.get("model"), str):
        name = embedder["model"]
        embedding_routes = sorted(r for r in _section(data, "routes") if not r.endswith("/*"))
        if name not in embedding_routes:
            problems.append(
                Problem(
                    "cache.embedder.model", f"unknown route {name!r} (expected one of: {_one_of(embedding_routes)})"
                )
            )
    access = data.get("access")
    if isinstance(access, dict) and access.get("enabled", True) is not False:
        store = access.get("store")
        if isinstance(store, str) and not store.startswith("sqlite:") and not access.get("hash_secret"):
            problems.append(
                Problem(
                    "access.hash_secret",
                    "required with a shared key store (env:NAME or file:/path), so every replica hashes keys alike",
                )
            )
    routes = _section(data, "routes")
    _check_prompts(data, routes, problems)
    for name, route in routes.items():
        path = f"routes.{name}"
        _check_fallbacks(path, name, route.get("fallbacks"), routes, problems)
        _check_shadow(path, name, route.get("shadow"), routes, problems)
        _check_drift_judge(path, route.get("drift"), routes, problems)
        _check_trim(path, name, route.get("trim"), routes, problems)
        targets = route.get("deployments") or []
        if name.endswith("/*"):
            if route.get("provider") is None:
                problems.append(Problem(f"{path}.provider", "a wildcard route needs the provider it forwards to"))
            provider_ref(f"{path}.provider", route.get("provider"))
            if targets:
                problems.append(Problem(f"{path}.deployments", "a wildcard route takes 'provider', not deployments"))
            continue
        if "*" in name:
            problems.append(Problem(path, "'*' is only allowed as a final '/*' (e.g. 'openai/*')"))
        if route.get("provider") is not None:
            problems.append(Problem(f"{path}.provider", "only wildcard routes ('prefix/*') take a provider"))
        if route.get("variants") is not None:
            _check_variants(path, name, route, routes, deployments, problems)
            continue
        if route.get("branches"):
            if targets:
                problems.append(Problem(f"{path}.deployments", "a route with branches has no deployments of its own"))
            _check_branches(path, name, route, routes, deployments, problems)
            continue
        for key in ("rules", "learned", "default", "cascade", "baseline"):
            if route.get(key):
                problems.append(Problem(f"{path}.{key}", "needs 'branches' to choose from"))
        if not targets:
            problems.append(Problem(f"{path}.deployments", "a route needs at least one deployment"))
        if not isinstance(targets, list):
            continue
        for i, target in enumerate(targets):
            ref = target.get("deployment") if isinstance(target, dict) else target
            if isinstance(ref, str) and ref not in deployments:
                problems.append(
                    Problem(
                        f"{path}.deployments[{i}]",
                        f"unknown deployment {ref!r} (expected one of: {_one_of(known_deployments)})",
                    )
                )
    problems.extend(slo_problems(data))
    return problems


def _check_branches(
    path: str,
    name: str,
    route: dict[str, Any],
    routes: dict[str, dict[str, Any]],
    deployments: dict[str, dict[str, Any]],
    problems: list[Problem],
) -> None:
    """Branches name routes or deployments that exist; rules, default, learned and cascade name
    branches; a route is chosen by rules (and learned, default) or is a cascade, not both."""
    branches = route["branches"]
    if not isinstance(branches, dict):
        return
    names = sorted(str(b) for b in branches)
    known_routes = sorted(r for r in routes if not r.endswith("/*"))
    for branch, target in branches.items():
        _check_target(f"{path}.branches.{branch}", name, target, routes, deployments, problems)

    def branch_ref(where: str, value: Any) -> None:
        if isinstance(value, str) and value not in branches:
            problems.append(Problem(where, f"unknown branch {value!r} (expected one of: {_one_of(names)})"))

    for i, rule in enumerate(route.get("rules") or []):
        if isinstance(rule, dict):
            branch_ref(f"{path}.rules[{i}].then", rule.get("then"))
    branch_ref(f"{path}.default", route.get("default"))
    branch_ref(f"{path}.baseline", route.get("baseline"))
    learned = route.get("learned")
    if isinstance(learned, dict):
        branch_ref(f"{path}.learned.cheap", learned.get("cheap"))
        branch_ref(f"{path}.learned.strong", learned.get("strong"))
    cascade = route.get("cascade")
    if isinstance(cascade, dict):
        for i, step in enumerate(cascade.get("steps") or []):
            branch_ref(f"{path}.cascade.steps[{i}]", step)
        checks = cascade.get("checks")
        judge = checks.get("judge") if isinstance(checks, dict) else None
        if isinstance(judge, dict) and isinstance(judge.get("route"), str) and judge["route"] not in known_routes:
            problems.append(Problem(f"{path}.cascade.checks.judge.route", f"unknown route {judge['route']!r}"))
        if route.get("rules") or route.get("learned") or route.get("default"):
            problems.append(
                Problem(f"{path}.cascade", "a cascade tries its steps in order: no rules, learned or default")
            )
    elif route.get("default") is None:
        problems.append(
            Problem(f"{path}.default", "a route with branches needs the branch to use when no rule applies")
        )


def _reaches(start: str, target: str, routes: dict[str, dict[str, Any]], seen: set[str]) -> bool:
    """Does route ``start`` lead (through branches or variant arms) to ``target``?"""
    if start in seen:
        return False
    seen.add(start)
    for target_of in _targets_of(routes.get(start, {})):
        ref = target_of.get("route") if isinstance(target_of, dict) else None
        if isinstance(ref, str) and (ref == target or _reaches(ref, target, routes, seen)):
            return True
    return False


def _check_shadow(
    path: str, name: str, shadow: Any, routes: dict[str, dict[str, Any]], problems: list[Problem]
) -> None:
    """A shadow names another, non-wildcard route, which has no shadow of its own."""
    if not isinstance(shadow, dict) or not isinstance(shadow.get("route"), str):
        return
    ref, where = shadow["route"], f"{path}.shadow.route"
    known = sorted(r for r in routes if not r.endswith("/*") and r != name)
    if ref == name:
        problems.append(Problem(where, "a route cannot shadow itself"))
    elif ref not in routes or ref.endswith("/*"):
        problems.append(Problem(where, f"unknown route {ref!r} (expected one of: {_one_of(known)})"))
    elif isinstance(routes[ref], dict) and routes[ref].get("shadow"):
        problems.append(Problem(where, f"route {ref!r} has a shadow of its own: a candidate is not mirrored again"))


def _check_drift_judge(path: str, drift: Any, routes: dict[str, dict[str, Any]], problems: list[Problem]) -> None:
    """A drift watch's judge is a non-wildcard route of this config (whether its assertions need
    one is checked with them: ``runtime/drifting.check_drift``)."""
    judge = drift.get("judge") if isinstance(drift, dict) else None
    if isinstance(judge, str) and (judge not in routes or judge.endswith("/*")):
        known = sorted(r for r in routes if not r.endswith("/*"))
        problems.append(Problem(f"{path}.drift.judge", f"unknown route {judge!r} (expected one of: {_one_of(known)})"))


def _check_trim(path: str, name: str, trim: Any, routes: dict[str, dict[str, Any]], problems: list[Problem]) -> None:
    """A trimmer is on a named route; its summarise route is another non-wildcard route of this config."""
    if not isinstance(trim, dict):
        return
    if name.endswith("/*"):
        problems.append(Problem(f"{path}.trim", "a wildcard route cannot trim: give the models a route of their own"))
    ref = trim.get("summarise_route")
    if not isinstance(ref, str):
        return
    where = f"{path}.trim.summarise_route"
    if ref == name:
        problems.append(Problem(where, "a route cannot summarise its own history"))
    elif ref not in routes or ref.endswith("/*"):
        known = sorted(r for r in routes if not r.endswith("/*") and r != name)
        problems.append(Problem(where, f"unknown route {ref!r} (expected one of: {_one_of(known)})"))


def _targets_of(route: dict[str, Any]) -> list[Any]:
    """A route's branches and variant arms (what it sends its requests to)."""
    found: list[Any] = []
    branches = route.get("branches")
    if isinstance(branches, dict):
        found.extend(branches.values())
    variants = route.get("variants")
    arms = variants.get("arms") if isinstance(variants, dict) else None
    if isinstance(arms, dict):
        found.extend(arms.values())
    return found


def _check_variants(
    path: str,
    name: str,
    route: dict[str, Any],
    routes: dict[str, dict[str, Any]],
    deployments: dict[str, dict[str, Any]],
    problems: list[Problem],
) -> None:
    """A route with variants has no deployments or branches of its own (an arm may name a
    branching route); each arm names a route or deployments that exist, never leading back."""
    where = f"{path}.variants"
    if route.get("deployments"):
        problems.append(Problem(f"{path}.deployments", "a route with variants has no deployments of its own"))
    for key in ("branches", "rules", "learned", "default", "cascade"):
        if route.get(key):
            problems.append(
                Problem(
                    f"{path}.{key}", "a route has variants or branches, not both: an arm may name a branching route"
                )
            )
    cache = route.get("cache")
    if isinstance(cache, dict) and cache.get("mode", "off") != "off":
        # the cache stage comes after the variants stage: it sees the arm's route, never this one
        problems.append(
            Problem(f"{path}.cache", "a route with variants caches through its arms' routes: set cache there")
        )
    variants = route["variants"]
    arms = variants.get("arms") if isinstance(variants, dict) else None
    if not isinstance(arms, dict):
        return
    for arm, target in arms.items():
        _check_target(f"{where}.arms.{arm}", name, target, routes, deployments, problems)


def _check_target(
    where: str,
    name: str,
    target: Any,
    routes: dict[str, dict[str, Any]],
    deployments: dict[str, dict[str, Any]],
    problems: list[Problem],
) -> None:
    """A branch's or arm's target (``{route: R}`` or ``{deployments: [...]}``) exists and does not
    lead back to route ``name``."""
    if not isinstance(target, dict):
        return
    ref = target.get("route")
    if isinstance(ref, str):
        known_routes = sorted(r for r in routes if not r.endswith("/*"))
        if ref == name or _reaches(ref, name, routes, set()):
            problems.append(Problem(f"{where}.route", f"route {ref!r} leads back to {name!r}"))
        elif ref not in known_routes:
            problems.append(
                Problem(f"{where}.route", f"unknown route {ref!r} (expected one of: {_one_of(known_routes)})")
            )
    for i, item in enumerate(target.get("deployments") or []):
        dep = item.get("deployment") if isinstance(item, dict) else item
        if isinstance(dep, str) and dep not in deployments:
            problems.append(Problem(f"{where}.deployments[{i}]", f"unknown deployment {dep!r}"))


def _check_fallbacks(
    path: str, name: str, fallbacks: Any, routes: dict[str, dict[str, Any]], problems: list[Problem]
) -> None:
    """Fallback lists name other, non-wildcard routes."""
    if not isinstance(fallbacks, dict):
        return
    known = sorted(r for r in routes if not r.endswith("/*"))
    for kind in ("general", "context_window", "content_filter"):
        refs = fallbacks.get(kind)
        if not isinstance(refs, list):
            continue
        for i, ref in enumerate(refs):
            where = f"{path}.fallbacks.{kind}[{i}]"
            if not isinstance(ref, str):
                continue
            if ref == name:
                problems.append(Problem(where, "a route cannot fall back to itself"))
            elif ref not in routes or ref.endswith("/*"):
                problems.append(Problem(where, f"unknown route {ref!r} (expected one of: {_one_of(known)})"))


def _check_prompts(data: dict[str, Any], routes: dict[str, dict[str, Any]], problems: list[Problem]) -> None:
    """Prompt names are well formed; a route's pinned prompt (``name`` or ``name@N``) exists."""
    prompts = _section(data, "prompts")
    for name in prompts:
        if not NAME.match(name):
            problems.append(
                Problem(f"prompts.{name}", "a prompt name is letters, digits, '_', '.' and '-' (at most 64)")
            )
    for route_name, route in routes.items():
        pin = route.get("prompt")
        if isinstance(pin, str):
            where = f"routes.{route_name}.prompt"
            if route_name.endswith("/*"):
                problems.append(Problem(where, "a wildcard route cannot pin a prompt"))
            else:
                _check_prompt_ref(where, pin, prompts, problems, versioned=False)
        variants = route.get("variants")
        arms = variants.get("arms") if isinstance(variants, dict) else None
        for arm, target in arms.items() if isinstance(arms, dict) else ():
            if isinstance(target, dict) and isinstance(target.get("prompt"), str):
                where = f"routes.{route_name}.variants.arms.{arm}.prompt"
                _check_prompt_ref(where, target["prompt"], prompts, problems, versioned=True)


def _check_prompt_ref(
    where: str, text: str, prompts: dict[str, Any], problems: list[Problem], *, versioned: bool
) -> None:
    """``name`` or ``name@N`` names a prompt (and version) of the registry; ``versioned``: the
    version is required (a variant arm pins one version)."""
    ref = parse_ref(text)
    if ref is None or (versioned and ref[1] is None):
        expected = "'name@VERSION'" if versioned else "'name' or 'name@VERSION'"
        problems.append(Problem(where, f"expected {expected}, got {text!r}"))
        return
    prompt = prompts.get(ref[0])
    if prompt is None:
        problems.append(Problem(where, f"unknown prompt {ref[0]!r} (expected one of: {_one_of(sorted(prompts))})"))
        return
    versions = prompt.get("versions")
    if ref[1] is not None and isinstance(versions, dict) and ref[1] not in {_int(v) for v in versions}:
        numbers = ", ".join(str(v) for v in versions)
        problems.append(Problem(where, f"prompt {ref[0]!r} has no version {ref[1]} (versions: {numbers})"))


def _int(value: Any) -> int | None:
    """A version key as YAML gave it (``3`` or ``"3"``), as a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
