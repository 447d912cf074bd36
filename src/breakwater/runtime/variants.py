"""The variants stage's plans and the refusal detector, built from the config (docs/variants.md)."""

from __future__ import annotations

from collections.abc import Sequence

from breakwater.core.config import Config
from breakwater.core.config.prompts import parse_ref
from breakwater.engine.refusals.detector import RefusalDetector
from breakwater.engine.refusals.patterns import DEFAULT_PATTERNS
from breakwater.engine.variants.assign import Arm, Assigner
from breakwater.engine.variants.stage import Plan


def build_variant_plans(config: Config) -> dict[str, Plan]:
    """One plan per route with variants; an arm with deployments of its own is served by the
    hidden route ``<route>.<arm>`` (``Wiring._branching``)."""
    plans: dict[str, Plan] = {}
    for name, route in config.routes.items():
        variants = route.variants
        if variants is None:
            continue
        arms = tuple(
            Arm(arm, t.route if t.route is not None else f"{name}.{arm}", t.weight, _version(t.prompt))
            for arm, t in variants.arms.items()
        )
        plans[name] = Plan(name, variants.sticky, Assigner(name, arms))
    return plans


def _version(prompt: str | None) -> tuple[str, int] | None:
    """An arm's ``name@N`` (checked at parse time) as ``(name, N)``."""
    ref = None if prompt is None else parse_ref(prompt)
    return None if ref is None or ref[1] is None else (ref[0], ref[1])


def build_refusal_detector(config: Config) -> RefusalDetector | None:
    """The detector the ``refusals`` section describes (``None`` when it is off)."""
    settings = config.refusals
    if not settings.enabled:
        return None
    patterns: dict[str, Sequence[str]] = dict(DEFAULT_PATTERNS) if settings.defaults else {}
    patterns.update(settings.patterns)
    return RefusalDetector(patterns, settings.max_chars)
