"""The drift stage, built from the config: each route's ``drift`` as a plan (its assertions read by
the eval reader), scores to the ledger's eval score table, crossings to the alert outbox.

``check_drift`` is part of the environment checks (``runtime/wiring.check_environment``), so
``check-config``, ``serve`` and a reload report a wrong assertion with its path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from breakwater.core.config import Config, Problem
from breakwater.core.config.drift import RouteDrift
from breakwater.engine.calls.gateway import Gateway
from breakwater.engine.context import RequestContext
from breakwater.engine.drift.stage import DriftPlan, DriftStage
from breakwater.engine.drift.window import QualityDrop
from breakwater.engine.evals.asserts import Assertion, SuiteError, parse_assertion
from breakwater.engine.evals.model_graded import needs
from breakwater.engine.pipeline import Outcome
from breakwater.engine.ports import Clock, RandomSource
from breakwater.engine.similarity import similarity_by
from breakwater.observability.alerts import Alert
from breakwater.observability.ledger.eval_scores import EvalScoreStore

if TYPE_CHECKING:
    from breakwater.engine.cache.semantic import Embedder

#: what a live sample cannot be graded by: its cost is known only once the ledger row is written
UNGRADABLE = ("cost",)


def _assertions(drift: RouteDrift, path: str) -> tuple[list[Assertion], list[Problem]]:
    found, problems = [], []
    for i, raw in enumerate(drift.asserts):
        where = f"{path}.asserts[{i}]"
        try:
            assertion = parse_assertion(raw, where)
        except SuiteError as exc:
            problems.append(Problem(exc.path, str(exc).removeprefix(f"{exc.path}: ")))
            continue
        if assertion.type in UNGRADABLE:
            problems.append(
                Problem(f"{where}.type", f"{assertion.type!r} cannot grade live traffic (the cost is not known yet)")
            )
            continue
        found.append(assertion)
    return found, problems


def check_drift(config: Config) -> list[Problem]:
    """Every drift watch's assertions read, and a judge named where one is needed."""
    problems: list[Problem] = []
    for name, route in config.routes.items():
        if route.drift is None:
            continue
        path = f"routes.{name}.drift"
        assertions, found = _assertions(route.drift, path)
        problems.extend(found)
        if "judge" in needs(assertions) and route.drift.judge is None:
            problems.append(Problem(f"{path}.judge", "required: llm-rubric and factuality need a judge route"))
    return problems


def grades_by_similarity(config: Config) -> bool:
    """Some drift watch has a ``similar`` assertion (it needs the configured embedder)."""
    for name, route in config.routes.items():
        if route.drift is not None and "embedder" in needs(_assertions(route.drift, f"routes.{name}.drift")[0]):
            return True
    return False


def build_drift(
    config: Config,
    gateway: Gateway,
    clock: Clock,
    rng: RandomSource,
    finish: Callable[[RequestContext, Outcome], None],
    *,
    embedder: Embedder | None,
    store: EvalScoreStore | None,
    alert: Callable[[Alert], None],
    previous: DriftStage | None,
) -> DriftStage | None:
    """The drift stage, or ``None`` when no route is watched (the config was checked: ``check_drift``)."""
    plans = {}
    for name, route in config.routes.items():
        d = route.drift
        if d is None:
            continue
        assertions, _ = _assertions(d, f"routes.{name}.drift")
        plans[name] = DriftPlan(
            tuple(assertions),
            d.share,
            d.threshold,
            d.judge,
            d.window_s,
            d.baseline_s,
            d.margin,
            d.min_samples,
            d.queue,
            d.concurrency,
        )
    if not plans:
        return None
    return DriftStage(
        plans,
        gateway.chat,
        clock,
        rng,
        finish,
        record=None if store is None else store.write_eval_score,
        alert=lambda drop: alert(quality_drop(drop)),
        similarity=None if embedder is None else similarity_by(embedder),
        previous=previous,
    )


def quality_drop(drop: QualityDrop) -> Alert:
    """The ``quality_drop`` alert of a crossing (logged and posted like every alert)."""
    return Alert(
        "quality_drop",
        drop.route,
        f"route {drop.route!r}: eval score {drop.current:.3f} over the last {drop.window_s / 60:g} min, down from "
        f"{drop.baseline:.3f} in the {drop.baseline_s / 3600:g} h before (more than {drop.margin:.0%} lower)",
        drop.current,
        drop.line,
        drop.at,
        {
            "route": drop.route,
            "baseline": drop.baseline,
            "margin": drop.margin,
            "samples": drop.current_samples,
            "baseline_samples": drop.baseline_samples,
        },
    )
