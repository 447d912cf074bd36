"""The trim stage's plans from a config (``routes.X.trim``, ``engine/trim``)."""

from __future__ import annotations

from breakwater.core.config import Config
from breakwater.engine.ports import TokenCounters, text_counter
from breakwater.engine.routing import Router
from breakwater.engine.trim.stage import TrimPlan, TrimStage


def build_trim(config: Config, router: Router, tokens: TokenCounters) -> TrimStage | None:
    """The trim stage, or ``None`` when no route trims.

    Each route counts with its first deployment's tokenizer, as the access layer's estimates do.
    """
    plans: dict[str, TrimPlan] = {}
    counted: set[tuple[str | None, str]] = set()
    for name, route in config.routes.items():
        trim = route.trim
        if trim is None:
            continue
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
