"""The injection stage a config asks for, built once per config (docs/guardrails.md)."""

from __future__ import annotations

from collections.abc import Sequence

from breakwater.core.config import Config
from breakwater.core.config.injection import DEFAULT_THRESHOLD, InjectionPattern
from breakwater.engine.guardrails.injection import HeuristicDetector, InjectionDetector
from breakwater.engine.guardrails.injection_patterns import OVERRIDE
from breakwater.engine.guardrails.injection_stage import InjectionPlan, InjectionStage

__all__ = ["DEFAULT_THRESHOLD", "build_injection", "build_injection_detector"]


def build_injection_detector(patterns: Sequence[InjectionPattern] = ()) -> InjectionDetector:
    """The injection detector: the shipped heuristics plus a route's own phrases (counted as overrides).

    Args:
        patterns: ``routes.X.injection.patterns``.
    """
    return HeuristicDetector(extra=[(OVERRIDE, p.weight, p.pattern) for p in patterns])


def build_injection(config: Config) -> InjectionStage | None:
    """The injection stage, when some route scores its requests (``routes.X.injection``)."""
    if all(route.injection is None for route in config.routes.values()):
        return None  # no detector built (its phrases compiled) for a config that scores nothing
    shared = build_injection_detector()
    plans: dict[str, InjectionPlan] = {}
    for name, route in config.routes.items():
        settings = route.injection
        if settings is None:
            continue
        plans[name] = InjectionPlan(
            detector=build_injection_detector(settings.patterns) if settings.patterns else shared,
            action=settings.action,
            threshold=settings.threshold,
            user=settings.user,
            tools=settings.tools,
            last_messages=settings.last_messages,
            max_chars=settings.max_chars,
        )
    return InjectionStage(plans) if plans else None
