"""Canary guards and ramps, acting on the running configuration (docs/safe-change.md).

For each route whose ``variants`` have ``guards``, every ``check_s`` seconds: the ledger rows of
the last ``window_s`` on that route are split by arm, and each canary (an arm other than the
control with a positive weight) is compared with the control by the sequential tests of
``engine/rollout/sequential.py``: error rate, latency, cost per request, refusal rate, and the
share of drift-graded answers that fail (``max_eval_fail_increase``). A breach
with ``min_requests`` on each side sets the canary's weight to 0 by applying a new configuration
version (action ``auto-rollback``, author ``breakwater:guard``, the reason in its message), and
raises an alert (logged, and posted to the alert webhook). With a ``ramp``, a canary whose
guards have held for ``hold_s`` since its weight last changed moves to the next step the same
way (action ``auto-ramp``). A ramp with an eval ``gate`` also runs its suite on the canary and
the control first (``runtime/eval_gate.py``): a canary that fails it is rolled back instead.
The gateway's own calls (the gate's, replays', drift judges') are not the arms' traffic: their
rows are left out of the guards.

Acting needs stored configuration (``serve --config-store``): a gateway serving a file raises
the alert and says it cannot act. Every replica checks; the first to apply wins (the version is
applied with ``expect``), the others find the new version and stand down.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from breakwater.core.config import Config
from breakwater.core.config.versions import VersionConflict
from breakwater.engine.drift.stage import USER as DRIFT_USER
from breakwater.engine.rollout.sequential import Verdict, mean_ratio, rate_increase
from breakwater.engine.tasks import stop_task
from breakwater.observability.alerts import Alert
from breakwater.observability.ledger.row import LedgerRow
from breakwater.runtime.eval_gate import USER as GATE_USER
from breakwater.runtime.eval_gate import GateReading, read_gate
from breakwater.runtime.stored_config import StoredConfig, apply

if TYPE_CHECKING:
    from breakwater.core.config.rollout import EvalGate, Guards
    from breakwater.core.config.variants import Variants
    from breakwater.runtime.runtime import Runtime
    from breakwater.runtime.swap import Runtimes

log = logging.getLogger("breakwater.rollout")

#: the author of versions the guards apply
AUTHOR = "breakwater:guard"
#: the most ledger rows one check reads
ROWS = 200_000
#: the gateway's own callers (the eval gate, replays, drift judges): their rows are not the arms' traffic
INTERNAL = frozenset({GATE_USER, DRIFT_USER, "breakwater:replay"})  # (replay: cli/replay.USER)


@dataclass(frozen=True, slots=True)
class Action:
    """What a check did to one canary."""

    route: str
    arm: str
    kind: str  # "rollback" | "ramp" | "alert-only"
    message: str
    version: int | None


def verdicts(
    guards: Guards, canary: list[LedgerRow], control: list[LedgerRow], scores: Mapping[str, bool] | None = None
) -> list[Verdict]:
    """Each guard's reading of a canary's rows against its control's (none before ``min_requests``).

    Args:
        scores: the drift watch's pass of each graded request, by request id.
    """
    if len(canary) < guards.min_requests or len(control) < guards.min_requests:
        return []
    alpha, out = guards.alpha, []
    if guards.max_eval_fail_increase is not None and scores:
        graded_c = [scores[r.request_id] for r in canary if r.request_id in scores]
        graded_0 = [scores[r.request_id] for r in control if r.request_id in scores]
        if graded_c and graded_0:
            out.append(
                rate_increase(
                    "eval_fail_rate",
                    (graded_c.count(False), len(graded_c)),
                    (graded_0.count(False), len(graded_0)),
                    guards.max_eval_fail_increase,
                    alpha,
                )
            )
    if guards.max_error_rate_increase is not None:
        out.append(
            rate_increase(
                "error_rate", _count(canary, _failed), _count(control, _failed), guards.max_error_rate_increase, alpha
            )
        )
    if guards.max_refusal_rate_increase is not None:
        out.append(
            rate_increase(
                "refusal_rate",
                _count(canary, _refused),
                _count(control, _refused),
                guards.max_refusal_rate_increase,
                alpha,
            )
        )
    answered_c = [r for r in canary if not _failed(r)]
    answered_0 = [r for r in control if not _failed(r)]
    if guards.max_latency_ratio is not None and len(answered_c) >= 2 and len(answered_0) >= 2:
        out.append(
            mean_ratio(
                "latency",
                [r.latency_ms for r in answered_c],
                [r.latency_ms for r in answered_0],
                guards.max_latency_ratio,
                alpha,
                log=True,
            )
        )
    if guards.max_cost_ratio is not None:
        cost_c = [float(r.cost_usd) for r in answered_c if r.cost_usd is not None]
        cost_0 = [float(r.cost_usd) for r in answered_0 if r.cost_usd is not None]
        if len(cost_c) >= 2 and len(cost_0) >= 2:
            out.append(mean_ratio("cost", cost_c, cost_0, guards.max_cost_ratio, alpha, log=False))
    return out


def _failed(row: LedgerRow) -> bool:
    return row.status >= 500 or (row.status < 400 and row.error_class is not None)


def _refused(row: LedgerRow) -> bool:
    return bool(row.refused)


def _count(rows: list[LedgerRow], event: Any) -> tuple[int, int]:
    return sum(1 for r in rows if event(r)), len(rows)


def with_weights(text: str, route: str, weights: dict[str, float]) -> str:
    """The configuration ``text`` with the given arms' weights on ``route`` (comments are not kept)."""
    data = yaml.safe_load(text)
    arms = data["routes"][route]["variants"]["arms"]
    for arm, weight in weights.items():
        arms[arm]["weight"] = int(weight) if float(weight).is_integer() else weight
    dumped: str = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return dumped


class RolloutWatch:
    """Checks every guarded route of the running configuration (see the module docstring)."""

    def __init__(self, runtimes: Runtimes, stored: StoredConfig | None) -> None:
        self._runtimes = runtimes
        self._stored = stored
        self._task: asyncio.Task[None] | None = None
        #: (route, arm, weight) already alerted without acting: said once, not at every check
        self._told: set[tuple[str, str, float]] = set()
        #: checks done, and what they did (``/readyz``-free introspection for tests and tools)
        self.checks = 0
        self.actions: list[Action] = []

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="breakwater-rollout")

    async def close(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            interval = _interval(self._runtimes.current.config)
            await asyncio.sleep(interval or 30.0)
            if interval is None:
                continue
            try:
                self.actions += await self.check()
            except Exception:  # the watch outlives any one failed check
                log.exception("a canary check failed; checking again later")
            self.checks += 1

    async def check(self) -> list[Action]:
        """One pass over every guarded route of the running configuration."""
        runtime = self._runtimes.current
        guarded = {
            n: r.variants for n, r in runtime.config.routes.items() if r.variants is not None and r.variants.guards
        }
        if not guarded or runtime.ledger is None:
            return []
        now = runtime.process.clock.time()
        window = max(v.guards.window_s for v in guarded.values() if v.guards is not None)
        store = runtime.ledger.store
        rows = await store.fetch(since=now - window, limit=ROWS)
        scores: dict[str, bool] = {}
        if any(v.guards is not None and v.guards.max_eval_fail_increase is not None for v in guarded.values()):
            scores = {s.request_id: s.passed for s in await store.fetch_eval_scores(since=now - window)}
        # the rows split and the tests run off the event loop: a busy window is many rows
        readings = await asyncio.to_thread(_readings, guarded, rows, now, scores)
        since_change = await self._since_change(runtime.version, now)
        actions: list[Action] = []
        for name, arm, found in readings:
            variants = guarded[name]
            guards, spec = variants.guards, variants.arms[arm]
            assert guards is not None
            breached = [v for v in found if v.breached]
            if breached:
                action = await self._rollback(name, arm, spec.weight, breached, guards, now)
                actions.append(action)
                if action.version is not None:
                    return actions  # one change per check: the next check reads the new version
                continue
            ramp = variants.ramp
            if ramp is not None and found and since_change is not None and since_change >= ramp.hold_s:
                step = _next_step(ramp.steps, spec.weight, sum(a.weight for a in variants.arms.values()))
                if step is None:
                    continue
                note = ""
                if ramp.gate is not None:
                    reading = await self._gate(runtime, name, arm, ramp.gate, now)
                    if reading is None:
                        continue  # the suite could not run: said once, the canary stays where it is
                    if not reading.passed:
                        message = f"route {name}: canary {arm} weight {spec.weight:g} -> 0: {reading.message}"
                        details = {"canary": reading.canary, "control": reading.control}
                        action = await self._back(name, arm, spec.weight, message, now, details)
                        actions.append(action)
                        if action.version is not None:
                            return actions
                        continue
                    note = f"; {reading.message}"
                ramped = await self._ramp(name, arm, variants.control, step, now, note)
                if ramped is not None:
                    actions.append(ramped)
                    return actions
        return actions

    async def _gate(self, runtime: Runtime, route: str, arm: str, gate: EvalGate, now: float) -> GateReading | None:
        """The canary's eval gate read, or ``None`` (alerted once) when the suite cannot run."""
        try:
            reading = await read_gate(runtime, route, arm, gate)
        except Exception as exc:  # noqa: BLE001 - a broken suite holds the ramp; it never stops the watch
            key = (route, arm, -1.0)
            if key not in self._told:
                self._told.add(key)
                message = f"route {route}: canary {arm} not ramped: its eval gate cannot run: {exc}"
                log.warning(message, extra={"route": route, "arm": arm})
                self._runtimes.current.outbox.push(
                    Alert(rule="canary_gate", subject=f"{route}/{arm}", message=message, value=0, threshold=0, at=now)
                )
            return None
        log.info(reading.message, extra={"route": route, "arm": arm, "passed": reading.passed})
        return reading

    async def _since_change(self, version: int | None, now: float) -> float | None:
        """Seconds since the running version was applied (``None``: not from a store)."""
        if self._stored is None or version is None:
            return None
        stored = await (await self._stored.opened()).config_get(version)
        return None if stored is None else now - stored.ts

    async def _rollback(
        self, route: str, arm: str, weight: float, breached: list[Verdict], guards: Guards, now: float
    ) -> Action:
        limits = {
            "error_rate": f"+{guards.max_error_rate_increase}",
            "refusal_rate": f"+{guards.max_refusal_rate_increase}",
            "latency": f"{guards.max_latency_ratio}x",
            "cost": f"{guards.max_cost_ratio}x",
            "eval_fail_rate": f"+{guards.max_eval_fail_increase}",
        }
        reasons = "; ".join(v.reason(limits[v.guard]) for v in breached)
        message = f"route {route}: canary {arm} weight {weight:g} -> 0: {reasons}"
        details = {"guards": [v.guard for v in breached], "canary": breached[0].canary, "control": breached[0].control}
        return await self._back(route, arm, weight, message, now, details)

    async def _back(
        self, route: str, arm: str, weight: float, message: str, now: float, details: dict[str, Any]
    ) -> Action:
        """Set the canary's weight to 0 by a new version and alert; or alert once that it cannot."""
        version = await self._apply(route, {arm: 0.0}, "auto-rollback", message, now)
        if version is not None:
            self._alert(route, arm, message, now, details, version)
            return Action(route, arm, "rollback", message, version)
        if (route, arm, weight) not in self._told:
            self._told.add((route, arm, weight))
            self._alert(route, arm, f"{message} (NOT rolled back: {self._why_not()})", now, details, None)
        return Action(route, arm, "alert-only", message, None)

    async def _ramp(self, route: str, arm: str, control: str, step: float, now: float, note: str = "") -> Action | None:
        message = f"route {route}: canary {arm} ramped to {step:g}% (its guards held{note})"
        version = await self._apply(route, {arm: step, control: 100.0 - step}, "auto-ramp", message, now)
        if version is None:
            return None
        log.warning(message, extra={"route": route, "arm": arm, "config_version": version})
        return Action(route, arm, "ramp", message, version)

    async def _apply(self, route: str, weights: dict[str, float], action: str, message: str, now: float) -> int | None:
        runtime = self._runtimes.current
        if self._stored is None or runtime.version is None:
            return None
        store = await self._stored.opened()
        current = await store.config_get(runtime.version)
        if current is None:
            return None
        text = with_weights(current.text, route, weights)
        try:
            applied = await apply(
                store,
                text,
                author=AUTHOR,
                message=message,
                now=now,
                environ=runtime.process.environ,
                action=action,
                expect=runtime.version,
            )
        except VersionConflict:
            log.info("a newer configuration version was applied meanwhile; the canary check stands down")
            return None
        self._stored.wake()
        return applied.version.number

    def _why_not(self) -> str:
        if self._stored is None:
            return "the gateway runs from a config file: set the weight to 0 there and reload"
        return "a newer configuration version was applied meanwhile"

    def _alert(
        self, route: str, arm: str, message: str, now: float, details: dict[str, Any], version: int | None
    ) -> None:
        alert = Alert(
            rule="canary_rollback",
            subject=f"{route}/{arm}",
            message=message,
            value=details.get("canary", 0.0),
            threshold=details.get("control", 0.0),
            at=now,
            details={"version": version, "guards": details.get("guards", ["eval_gate"])},
        )
        self._runtimes.current.outbox.push(alert)


def _readings(
    guarded: dict[str, Variants], rows: list[LedgerRow], now: float, scores: Mapping[str, bool]
) -> list[tuple[str, str, list[Verdict]]]:
    """Each canary's guards read against its control, from the window's rows: (route, arm, verdicts)."""
    out = []
    for name, variants in guarded.items():
        guards = variants.guards
        if guards is None:
            continue
        by_arm: dict[str, list[LedgerRow]] = {}
        for r in rows:
            if r.route == name and r.ts >= now - guards.window_s and r.shadow_of is None and r.user not in INTERNAL:
                by_arm.setdefault(r.variant or "", []).append(r)
        control = variants.control
        for arm, spec in variants.arms.items():
            if arm != control and spec.weight > 0:
                out.append((name, arm, verdicts(guards, by_arm.get(arm, []), by_arm.get(control, []), scores)))
    return out


def _interval(config: Config) -> float | None:
    checks = [r.variants.guards.check_s for r in config.routes.values() if r.variants is not None and r.variants.guards]
    return min(checks) if checks else None


def _next_step(steps: list[float], weight: float, total: float) -> float | None:
    """The step after the canary's current share (``None``: at the last step already)."""
    share = 100.0 * weight / total if total > 0 else 0.0
    for step in steps:
        if step > share + 1e-9 and not math.isclose(step, share):
            return step
    return None
