"""The trim stage's plans from a config (``routes.X.trim``, ``engine/trim``)."""

from __future__ import annotations

from breakwater.core.config import Config
from breakwater.core.config.trim import RouteTrim
from breakwater.engine.ports import TokenCounters, text_counter
from breakwater.engine.routing import Router
from breakwater.engine.trim.stage import TrimPlan, TrimStage


def build_trim(config: Config, router: Router, tokens: TokenCounters) -> TrimStage | None:
    """The trim stage, or ``None`` when no route trims.

    Each route counts with its first deployment's tokenizer, as the access layer's estimates do.
    A route with variants hands its requests to its arms' routes before the trim stage (the
    variants stage is outer), so its trimmer is theirs too, unless an arm's route has its own.
    """
    wanted: dict[str, RouteTrim] = {}
    for name, route in config.routes.items():
        if route.trim is not None:
            wanted[name] = route.trim
    for name, route in config.routes.items():
        if route.trim is None or route.variants is None:
            continue
        for arm, spec in route.variants.arms.items():
            wanted.setdefault(spec.route if spec.route is not None else f"{name}.{arm}", route.trim)
    plans: dict[str, TrimPlan] = {}
    counted: set[tuple[str | None, str]] = set()
    for name, trim in wanted.items():
        target = router.resolve(name).deployments[0].target
        counted.add((target.provider, target.model))
        plans[name] = TrimPlan(
            max_input_tokens=trim.max_input_tokens,
            keep_last_turns=trim.keep_last_turns,
            count=text_counter(tokens, target.provider, target.model),
            summarise_route=trim.summarise_route if trim.mode == "summarise" else None,
            summary_max_tokens=trim.summary_max_tokens,
        )
    return TrimStage(plans, frozenset(counted)) if plans else None
