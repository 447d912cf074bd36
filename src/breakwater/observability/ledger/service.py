"""The ledger as the app runs it: a store picked by URL, its writer, its retention task and feedback.

Start-up never waits on the database: if it cannot be reached, the writer spools rows to disk
and replays them, in order, once it can (``writer.py``). Shutdown flushes everything, to the
store or, if it is still down, to the spool, which the next start replays.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from breakwater.engine.ports import Clock, SystemClock
from breakwater.engine.tasks import stop_task
from breakwater.observability.ledger.feedback import FeedbackDesk
from breakwater.observability.ledger.postgres import PostgresLedger
from breakwater.observability.ledger.row import LedgerRow
from breakwater.observability.ledger.sqlite import SqliteLedger
from breakwater.observability.ledger.writer import LedgerWriter, Retention

log = logging.getLogger("breakwater.ledger")

Store = SqliteLedger | PostgresLedger

MAX_FEEDBACK_GRACE_S = 1.0
"""The longest a feedback waits for its request's row to land (from another worker's writer)."""


def store_for(url: str) -> Store:
    """``sqlite:///relative.db`` / ``sqlite:////absolute.db`` or ``postgresql://...``."""
    if url.startswith("sqlite:///"):
        return SqliteLedger(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresLedger(url)
    raise ValueError("ledger url must start with sqlite:/// or postgresql://")


class Ledger:
    """Owns the store, the writer and the retention task for the app's lifetime."""

    def __init__(
        self,
        store: Store,
        spool_path: str | Path,
        *,
        batch_size: int = 500,
        flush_interval_s: float = 0.2,
        retention_s: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.writer = LedgerWriter(
            store, spool_path, batch_size=batch_size, flush_interval_s=flush_interval_s, clock=clock
        )
        self.retention = None if retention_s is None else Retention(store, retention_s, 3600.0, clock=clock)
        #: feedback on the ledger's requests; a row not found yet is looked for again after two
        #: flushes (at most a second: an unknown id's 404 waits no longer)
        grace_s = min(2 * flush_interval_s, MAX_FEEDBACK_GRACE_S)
        self.feedback = FeedbackDesk(store, self.writer, clock or SystemClock(), grace_s=grace_s)
        #: rolls up the hours of a ledger from before the hourly rollups (``rollup.py``)
        self._fill: asyncio.Task[None] | None = None

    def submit(self, row: LedgerRow) -> None:
        self.writer.submit(row)

    async def start(self) -> None:
        try:
            await self.store.open()
        except Exception as exc:  # noqa: BLE001 - a database that is down must not stop the gateway
            log.warning(
                "ledger database unreachable at start-up (%s); rows spool to %s until it returns",
                type(exc).__name__,
                self.writer.spool_path,
            )
        self.writer.start()
        if self.retention is not None:
            self.retention.start()
        if self.store.rollup_start > 0.0:
            self._fill = asyncio.create_task(self._fill_rollup(), name="breakwater-ledger-rollup-fill")

    async def _fill_rollup(self) -> None:
        """Roll up the hours written before this version, a day at a time in the background; a
        failure leaves the rest for the next start (the dashboard reads those hours' rows)."""
        try:
            await self.store.fill_rollup()
        except Exception as exc:  # noqa: BLE001 - the dashboard reads rows meanwhile; nothing is lost
            log.warning("ledger rollup of older hours stopped (%s); it resumes at the next start", type(exc).__name__)

    async def stop(self) -> None:
        await stop_task(self._fill)
        if self.retention is not None:
            await self.retention.stop()
        await self.writer.stop()
        try:
            await self.store.close()
        except Exception as exc:  # noqa: BLE001 - closing a dead connection may fail; nothing is lost
            log.warning("ledger store did not close cleanly: %s", type(exc).__name__)
