"""Stopping the app's background tasks (ledger retention, alert evaluation, disconnect sweeps), and
the per-route lanes of work done off the request path (``Lanes``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger("breakwater")

Job = TypeVar("Job")


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has ended.

    The task's own cancellation is not re-raised, but a cancellation of the caller still is
    (``asyncio.wait`` does not swallow it). A task that had failed instead is logged.
    """
    if task is None:
        return
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s had failed", task.get_name(), exc_info=task.exception())


@dataclass(slots=True)
class LaneCounts:
    """Per route: jobs dropped (the lane full, or stopped with them queued) and jobs whose work
    failed. A stage's own counts add what its jobs did (``ShadowCounts.mirrored``, ``DriftCounts.scored``)."""

    dropped: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    #: jobs not taken at all because the route's error budget burns fast (docs/slo.md)
    shed: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def add(counts: dict[str, int], route: str, n: int = 1) -> None:
        counts[route] = counts.get(route, 0) + n


class Lanes(Generic[Job]):
    """Work done off the request path, per route: a bounded queue each, emptied by its own workers
    (made at the route's first offer). Offering never waits: a full queue refuses the job. The
    shadow stage's mirrors and the drift watch's samples run here.

    Args:
        work: does one job; what it raises is told to ``failed`` (the worker lives on).
        name: the workers' task names start with it (``breakwater-shadow``).
        failed: told of a job whose ``work`` raised, with the exception.
    """

    def __init__(
        self, work: Callable[[Job], Awaitable[None]], name: str, failed: Callable[[Job, Exception], None]
    ) -> None:
        self._do, self._name, self._failed = work, name, failed
        self._lanes: dict[str, tuple[asyncio.Queue[Job], list[asyncio.Task[None]]]] = {}

    def offer(self, route: str, job: Job, size: int, concurrency: int) -> bool:
        """Queue ``job`` on the route's lane (made with ``size`` and ``concurrency`` workers when
        new); ``False`` when the lane is full."""
        lane = self._lanes.get(route)
        if lane is None:
            queue: asyncio.Queue[Job] = asyncio.Queue(size)
            loop = asyncio.get_running_loop()
            workers = [
                loop.create_task(self._work(queue), name=f"{self._name}-{route}-{i}") for i in range(concurrency)
            ]
            lane = self._lanes[route] = (queue, workers)
        try:
            lane[0].put_nowait(job)
        except asyncio.QueueFull:
            return False
        return True

    def queued(self, route: str) -> int:
        """Jobs of ``route`` waiting for a worker."""
        lane = self._lanes.get(route)
        return 0 if lane is None else lane[0].qsize()

    async def _work(self, queue: asyncio.Queue[Job]) -> None:
        while True:
            job = await queue.get()
            try:
                await self._do(job)
            except Exception as exc:  # noqa: BLE001 - a worker must outlive any one job (told to failed)
                self._failed(job, exc)

    async def stop(self, dropped: dict[str, int]) -> None:
        """Stop every worker; the jobs still queued are dropped (added to ``dropped``, per route)."""
        lanes, self._lanes = self._lanes, {}
        for route, (queue, workers) in lanes.items():
            for task in workers:
                await stop_task(task)
            if queue.qsize():
                LaneCounts.add(dropped, route, queue.qsize())
