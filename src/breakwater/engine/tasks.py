"""Stopping the app's background tasks (ledger retention, alert evaluation, disconnect sweeps)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("breakwater")


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
