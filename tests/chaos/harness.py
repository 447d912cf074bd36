"""The chaos suite's gateway: a route `r` over deployments, each on its own in-process mock.

``build_gateway`` takes the clock, so the same set-up runs on a ``ManualClock`` (sleeps advance
it at once; network timeouts are never reached) or on a ``LoopClock`` under a virtual-time
event loop (every timer, the engine's ``asyncio.timeout`` included, runs in virtual time).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from breakwater.core.config import build_config
from breakwater.core.types import ChatRequest, Message, TextPart
from breakwater.engine.calls.gateway import Gateway
from breakwater.engine.ports import Clock
from breakwater.infra.clock import ManualClock
from breakwater.runtime.wiring import Wiring

Rules = list[dict[str, Any]]
Transitions = list[tuple[str, str, str]]


class SeededRandom:
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def random(self) -> float:
        return self._rng.random()


def build_gateway(
    faults: Mapping[str, Rules],
    clock: Clock,
    *,
    timeouts: Mapping[str, float] | None = None,
    deployment_timeouts: Mapping[str, Mapping[str, float]] | None = None,
    retry: Mapping[str, Any] | None = None,
    breaker: Mapping[str, Any] | None = None,
    seed: int = 1,
) -> tuple[Gateway, Transitions]:
    """A gateway whose route `r` lists one deployment per key of ``faults``, in order.

    Deployment ``x`` runs on mock provider ``px`` with the fault schedule ``faults[x]``.
    ``timeouts`` are the route's (connect, total, first_token, idle); ``deployment_timeouts``
    override them per deployment. One seeded random source drives jitter and fault rates.
    """
    providers: dict[str, Any] = {}
    deployments: dict[str, Any] = {}
    for name, rules in faults.items():
        providers[f"p{name}"] = {"type": "mock", "faults": rules}
        deployments[name] = {"provider": f"p{name}", "model": "m", "breaker": dict(breaker or {})}
        if deployment_timeouts and name in deployment_timeouts:
            deployments[name]["timeouts"] = dict(deployment_timeouts[name])
    route: dict[str, Any] = {"deployments": list(faults), "retry": dict(retry or {})}
    if timeouts is not None:
        route["timeouts"] = dict(timeouts)
    config = build_config(
        {"access": {"enabled": False}, "providers": providers, "deployments": deployments, "routes": {"r": route}}
    )
    rng = SeededRandom(seed)
    transitions: Transitions = []
    router = Wiring(config, {}, sender=None, clock=clock, rng=rng).router()  # type: ignore[arg-type]
    return Gateway(router, clock, rng, lambda *t: transitions.append(t)), transitions


def gateway(
    faults_a: Rules,
    faults_b: Rules | None = None,
    *,
    retry: dict[str, Any] | None = None,
    breaker: dict[str, Any] | None = None,
    seed: int = 1,
) -> tuple[Gateway, ManualClock, Transitions]:
    """A route `r` over deployment `a` (and `b` when faults_b is given), on a ``ManualClock``."""
    faults = {"a": faults_a} if faults_b is None else {"a": faults_a, "b": faults_b}
    clock = ManualClock()
    gw, transitions = build_gateway(faults, clock, retry=retry, breaker=breaker, seed=seed)
    return gw, clock, transitions


def hi(stream: bool = False) -> ChatRequest:
    return ChatRequest(model="r", messages=[Message("user", [TextPart("hello")])], stream=stream)
