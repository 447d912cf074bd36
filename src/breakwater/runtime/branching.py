"""The router stage's plans, built from the config: for each route with ``branches``, where each
branch goes and how one is chosen (rules, the learned router, default) or the cascade; and the
learned routers' artifacts, checked at start-up and loaded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from breakwater.core.config import Config, Problem, Route
from breakwater.core.tokens import TextCounter
from breakwater.core.types import ChatRequest
from breakwater.engine.context import Baseline
from breakwater.engine.ports import Clock
from breakwater.engine.router.cascade import Cascade
from breakwater.engine.router.checks import Checks
from breakwater.engine.router.rules import compile_rules, last_user_text
from breakwater.engine.router.stage import Learned, Plan

#: (provider, model) whose encoding counts a prompt's tokens for a learned router: ``cl100k_base``,
#: what ``breakwater router train`` counts with (cli/router_data.py)
TRAINING_COUNT = ("openai", "gpt-4")

if TYPE_CHECKING:  # numpy only when a route has a learned router
    from breakwater.engine.cache.semantic import Embedder
    from breakwater.engine.router.learned import LearnedRouter


def build_plans(config: Config, clock: Clock, learned: dict[str, Learned] | None = None) -> dict[str, Plan]:
    """One plan per branching route (``learned``: the learned routers, by route, already loaded)."""
    plans: dict[str, Plan] = {}
    for name, route in config.routes.items():
        if not route.branches:
            continue
        branches = {b: t.route if t.route is not None else f"{name}.{b}" for b, t in route.branches.items()}
        cascade = None
        if route.cascade is not None:
            checks = route.cascade.checks
            cascade = Cascade(
                tuple(route.cascade.steps),
                Checks(checks),
                clock,
                deadline_s=route.timeouts.total if route.timeouts is not None else None,
                judge_route=checks.judge.route if checks.judge is not None else None,
            )
        plans[name] = Plan(
            route=name,
            branches=branches,
            rules=compile_rules(route.rules),
            default=route.default or "",
            learned=(learned or {}).get(name),
            cascade=cascade,
            baseline=baseline_of(config, name),
        )
    return plans


def baseline_branch(route: Route) -> str:
    """The branch a branching route's savings are counted against: ``baseline``, else the
    cascade's last step, else the learned router's strong branch, else ``default``."""
    if route.baseline is not None:
        return route.baseline
    if route.cascade is not None:
        return route.cascade.steps[-1]
    if route.learned is not None:
        return route.learned.strong
    return route.default or ""


def baseline_of(config: Config, name: str, seen: frozenset[str] = frozenset()) -> Baseline | None:
    """Route ``name``'s baseline branch and the deployment it is priced at: the first deployment
    the branch lists, or its route's first (through branching routes, their own baselines);
    ``None`` when that leads to no deployment (a wildcard route, a loop)."""
    route = config.routes.get(name)
    if route is None or not route.branches or name in seen:
        return None
    branch = baseline_branch(route)
    target = route.branches.get(branch)
    if target is None:
        return None
    deployment: str | None = None
    if target.deployments:
        deployment = target.deployments[0].deployment
    elif target.route is not None:
        via = config.routes.get(target.route)
        if via is not None and via.deployments:
            deployment = via.deployments[0].deployment
        elif via is not None and via.branches:
            inner = baseline_of(config, target.route, seen | {name})
            deployment = None if inner is None else inner.deployment
    spec = None if deployment is None else config.deployments.get(deployment)
    if spec is None or deployment is None:
        return None
    return Baseline(branch, deployment, spec.provider, spec.model)


class EmbeddingScorer:
    """A learned router on the request path: the last user turn embedded by the local model and
    scored by the artifact with its token count (the artifact's cost weighting), counted as in
    training: ``cl100k_base``, by ``count``."""

    def __init__(self, model: LearnedRouter, embedder: Embedder, count: TextCounter) -> None:
        self.model = model
        self.embedder = embedder
        self.count = count

    async def score(self, request: ChatRequest) -> float:
        text = last_user_text(request)
        vector = await self.embedder.embed(text)
        return self.model.score(vector, self.count(text), text=text)


def local_embedder(config: Config, cache_embedder: Embedder | None, previous: Embedder | None) -> Embedder | None:
    """The local model learned routers embed prompts with (``None`` when no route has one): the
    cache's embedder when it is that model, else the previous runtime's, else a new one (loaded
    at start)."""
    if not any(route.learned is not None for route in config.routes.values()):
        return None
    from breakwater.infra.cache.wordllama import WordLlamaEmbedder

    for embedder in (cache_embedder, previous):
        if isinstance(embedder, WordLlamaEmbedder):
            return embedder
    return WordLlamaEmbedder()


def load_learned(config: Config, embedder: Embedder | None, count: TextCounter) -> dict[str, Learned]:
    """The learned routers of the routes that have one (their artifacts checked by
    ``check_learned`` first); ``count``: a prompt's tokens, as the training counted them."""
    if embedder is None:
        return {}
    from breakwater.engine.router.learned import load_router

    learned: dict[str, Learned] = {}
    for name, route in config.routes.items():
        spec = route.learned
        if spec is None:
            continue
        model = load_router(spec.artifact)
        threshold = spec.threshold if spec.threshold is not None else model.threshold
        learned[name] = Learned(EmbeddingScorer(model, embedder, count), spec.cheap, spec.strong, threshold)
    return learned


def check_learned(config: Config) -> list[Problem]:
    """Each learned router's artifact: there, of this version, trained with the local embedder."""
    problems: list[Problem] = []
    specs = {name: r.learned for name, r in config.routes.items() if r.learned is not None}
    if not specs:
        return problems
    try:
        from breakwater.engine.router.learned import RouterArtifactError, load_router
        from breakwater.infra.cache.wordllama import WordLlamaEmbedder
    except ImportError:
        need = "the learned router needs numpy and wordllama: pip install 'breakwater[semantic]'"
        return [Problem(f"routes.{name}.learned", need) for name in specs]
    for name, spec in specs.items():
        where = f"routes.{name}.learned.artifact"
        try:
            model = load_router(spec.artifact)
        except RouterArtifactError as exc:
            problems.append(Problem(where, str(exc)))
            continue
        if model.embedder_identity != WordLlamaEmbedder.identity:
            mine = WordLlamaEmbedder.identity
            problems.append(
                Problem(where, f"trained on {model.embedder_identity!r} embeddings; the gateway's are {mine!r}")
            )
    return problems
