"""The router stage's plans, built from the config: for each route with ``branches``, where each
branch goes and how one is chosen (rules, the learned router, default) or the cascade."""

from __future__ import annotations

from breakwater.core.config import Config
from breakwater.engine.ports import Clock
from breakwater.engine.router.cascade import Cascade
from breakwater.engine.router.checks import Checks
from breakwater.engine.router.rules import compile_rules
from breakwater.engine.router.stage import Learned, Plan


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
        )
    return plans
