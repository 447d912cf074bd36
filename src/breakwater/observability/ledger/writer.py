"""The ledger writer: rows in synchronously, batches out in the background, a disk spool between.

``submit`` only appends to a deque, so the request path never waits on a database. A background
task writes batches to the store. When a write fails (any exception: refused, timed out, reset)
the batch goes to an append-only JSON-lines spool file and the writer stays in *spooling* mode:
later batches go to the spool too, so rows keep their order, while the store is retried with
exponential backoff. Once a write succeeds again the spool is replayed from its start, in order,
batch by batch; then the file is removed and direct writes resume. Stores skip rows whose ``id``
they already hold, so a batch that committed but whose reply was lost is replayed harmlessly:
every row lands exactly once.

A row that can be written neither to the store nor to the spool is counted in ``dropped`` and
logged at ERROR on ``breakwater.ledger``: rows are never lost silently.

Lag: ``last_write_lag_s`` is the age (wall ``clock.time()`` minus ``ts``) of the oldest row of the
last batch the store accepted, i.e. how far behind real time the ledger was at that write. It
grows during an outage replay and falls back to ~``flush_interval_s`` + request duration.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from breakwater.engine.ports import Clock, SystemClock
from breakwater.engine.tasks import stop_task
from breakwater.observability.ledger.row import LedgerRow

log = logging.getLogger("breakwater.ledger")


class LedgerStore(Protocol):
    """Where batches go. ``write`` must be idempotent by ``LedgerRow.id`` (replays rely on it).

    ``behind`` tells the store the writer is catching up (a full batch still waits after this one,
    or the spool is being replayed): a store that defers its work to spare the request path (the
    SQLite store's low-priority thread) must not defer this batch.
    """

    async def write(self, rows: list[LedgerRow], *, behind: bool = False) -> None: ...


class RetentionStore(Protocol):
    """A store that can forget old rows."""

    async def delete_before(self, ts: float) -> int: ...


def _append(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _read_lines(path: Path, offset: int, limit: int) -> tuple[list[bytes], int]:
    """Up to ``limit`` whole lines from byte ``offset``, and the offset after them."""
    lines: list[bytes] = []
    try:
        with path.open("rb") as f:
            f.seek(offset)
            while len(lines) < limit:
                line = f.readline()
                if not line.endswith(b"\n"):
                    break
                lines.append(line)
                offset += len(line)
    except (FileNotFoundError, NotADirectoryError):
        pass  # no spool file: nothing to replay
    return lines, offset


def _recover(path: Path) -> int:
    """Rows left in a spool by an earlier run; end a torn last line so appends start clean."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return 0
    if data and not data.endswith(b"\n"):
        _append(path, b"\n")
        data += b"\n"
    return data.count(b"\n")


class LedgerWriter:
    """Batches ledger rows to a store, spooling to disk while the store is down.

    Args:
        store: where rows go; its ``write`` must skip rows whose ``id`` it already holds.
        spool_path: the spool file (JSON lines); its directory is created when first needed.
        batch_size: most rows per store write (and per replay step).
        flush_interval_s: pause between flushes; each flush takes the rows pending when it starts.
        retry_initial_s: first backoff after a failed write; doubles up to ``retry_max_s``.
        retry_max_s: longest backoff between store retries while spooling.
        max_pending: rows held in memory at most; beyond it ``submit`` drops (counted, logged).
        clock: wall time for lag, monotonic time for backoff deadlines.
        sleep: how the task waits between flushes (default ``asyncio.sleep``); ``stop`` cancels it.
    """

    def __init__(
        self,
        store: LedgerStore,
        spool_path: str | Path,
        *,
        batch_size: int = 500,
        flush_interval_s: float = 0.2,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 10.0,
        max_pending: int = 1_000_000,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self.spool_path = Path(spool_path)
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._retry_initial = retry_initial_s
        self._retry_max = retry_max_s
        self._max_pending = max_pending
        self._clock: Clock = clock or SystemClock()
        self._sleep = sleep or asyncio.sleep
        self._pending: deque[LedgerRow] = deque()
        #: the batch being written to the store now (still findable: ``route_of``)
        self._writing: list[LedgerRow] = []
        self._task: asyncio.Task[None] | None = None
        self._idle = False
        self._stopping = False
        self._spooling = False
        self._spool_offset = 0  # bytes of the spool already replayed
        self._retry_at = 0.0
        self._retry_delay = retry_initial_s
        self.spooled_rows = 0
        """Rows in the spool file not yet replayed."""
        self.dropped = 0
        """Rows lost: neither stored nor spooled (each loss is logged at ERROR)."""
        self.written = 0
        """Rows the store accepted (replays of already-stored rows included)."""
        self.last_write_lag_s: float | None = None
        """Age of the oldest row in the last batch the store accepted (see module docstring)."""

    @property
    def pending(self) -> int:
        """Rows in memory, not yet written nor spooled."""
        return len(self._pending)

    @property
    def spooling(self) -> bool:
        """True while the store is considered down and rows go to the spool."""
        return self._spooling

    def submit(self, row: LedgerRow) -> None:
        """Queue one row; O(1), never blocks, never raises. Call from the event loop's thread."""
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            log.error("ledger queue full (%d rows): dropped row id=%s", self._max_pending, row.id)
            return
        self._pending.append(row)

    def route_of(self, request_id: str, key_id: str | None) -> tuple[str, str] | None:
        """``(route, key_id)`` of the newest row of ``request_id`` (and ``key_id``, unless ``None``)
        still in memory: pending, or in the batch being written. Rows leave memory only once the
        store has them (or the spool, while the store is down)."""
        for rows in (reversed(self._pending), reversed(self._writing)):
            for row in rows:
                if row.request_id == request_id and (key_id is None or row.key_id == key_id):
                    return row.route, row.key_id
        return None

    @property
    def running(self) -> bool:
        """Started and not stopped since."""
        return self._task is not None

    def start(self) -> None:
        """Start the background task; a spool left by an earlier run is replayed first."""
        if self._task is not None:
            return
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="breakwater-ledger-writer")

    async def stop(self) -> None:
        """Flush everything: memory and spool go to the store, or, if it is still down, to the spool."""
        task = self._task
        if task is None:
            await self._flush(final=True)
            return
        self._stopping = True
        if self._idle:
            task.cancel()
        try:
            await task
        finally:
            self._task = None

    async def _run(self) -> None:
        try:
            recovered = await asyncio.to_thread(_recover, self.spool_path)
        except OSError as exc:
            # Unreadable: leave it for an operator; writing (and spooling) still proceed.
            log.error("ledger spool %s from an earlier run is unreadable: %r", self.spool_path, exc)
            recovered = 0
        if recovered:
            log.warning("ledger spool %s holds %d rows from an earlier run: replaying", self.spool_path, recovered)
            self.spooled_rows = recovered
            self._spooling = True
        while not self._stopping:
            try:
                await self._flush(final=False)
            except Exception:
                # Unexpected (a bug, an unreadable spool): keep the task alive; the rows stay queued.
                log.exception("ledger flush failed; retrying in %.2fs", self._interval)
            if self._stopping:
                break
            self._idle = True
            try:
                await self._sleep(self._interval)
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
            finally:
                self._idle = False
        await self._flush(final=True)

    async def _flush(self, *, final: bool) -> None:
        """Write what is pending; ``final`` tries the store once more regardless of backoff and
        repeats until nothing is left (rows may still arrive while the app shuts down)."""
        await self._flush_once(final=final)
        while final and self._pending:
            await self._flush_once(final=final)

    async def _flush_once(self, *, final: bool) -> None:
        """One pass over the rows pending when it starts: under a load that outpaces the store,
        later rows wait for the next pass, so a pass always ends and the store is retried."""
        if self._spooling:
            # Retry the store before spooling what is queued: if the spool itself is failing, the
            # queued rows then still reach the store once it is back. Either way they follow the spool.
            due = final or self._clock.monotonic() >= self._retry_at
            if not (due and await self._replay()):
                await self._spool_pending()
                return
        budget = len(self._pending)
        while budget > 0:
            batch = self._writing = self._take(budget)
            budget -= len(batch)
            try:
                await self._store.write(batch, behind=len(self._pending) >= self._batch_size)
            except Exception as exc:  # noqa: BLE001 - any store failure means "spool and retry", logged here
                log.warning("ledger store write failed (%r): spooling to %s", exc, self.spool_path)
                self._spooling = True
                self._backoff()
                await self._spool(batch)
                await self._spool_pending()
                return
            finally:
                self._writing = []
            self._wrote(batch)

    def _take(self, most: int) -> list[LedgerRow]:
        n = min(self._batch_size, most, len(self._pending))
        return [self._pending.popleft() for _ in range(n)]

    def _wrote(self, batch: list[LedgerRow]) -> None:
        self.written += len(batch)
        self.last_write_lag_s = self._clock.time() - min(r.ts for r in batch)
        self._retry_delay = self._retry_initial

    def _backoff(self) -> None:
        self._retry_at = self._clock.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_max, self._retry_delay * 2)

    async def _spool_pending(self) -> None:
        """Everything pending, in one append (one fsync) however many rows it is."""
        if self._pending:
            batch = list(self._pending)
            self._pending.clear()
            await self._spool(batch)

    async def _spool(self, batch: list[LedgerRow]) -> None:
        try:
            data = b"".join(r.to_json() + b"\n" for r in batch)
            await asyncio.to_thread(_append, self.spool_path, data)
        except (OSError, TypeError) as exc:  # TypeError: a row orjson cannot encode
            self.dropped += len(batch)
            log.error(
                "ledger spool %s failed (%r) while the store is down: dropped %d rows (ids %s..%s)",
                self.spool_path,
                exc,
                len(batch),
                batch[0].id,
                batch[-1].id,
            )
            return
        self.spooled_rows += len(batch)

    async def _replay(self) -> bool:
        """Replay the spool in order; True when it is empty and removed, False if the store failed."""
        while True:
            lines, end = await asyncio.to_thread(_read_lines, self.spool_path, self._spool_offset, self._batch_size)
            if not lines:
                break
            batch = self._parse(lines)
            try:
                await self._store.write(batch, behind=True)
            except Exception as exc:  # noqa: BLE001 - still down: keep spooling, retry later
                log.info("ledger store still failing (%r): next retry in %.2fs", exc, self._retry_delay)
                self._backoff()
                return False
            self._wrote(batch)
            self._spool_offset = end
            self.spooled_rows = max(0, self.spooled_rows - len(lines))
            if len(self._pending) >= self._batch_size:
                # A long replay under load: new rows join the spool's end (order kept) rather
                # than pile up in memory until the replay is over.
                await self._spool_pending()
        try:
            await asyncio.to_thread(self.spool_path.unlink)
        except (FileNotFoundError, NotADirectoryError):
            pass  # never created (or the spool is unusable): nothing to remove
        except OSError as exc:
            # Every row in it is stored; a leftover file would only be replayed again (harmlessly).
            log.error("ledger spool %s replayed but not removed: %r", self.spool_path, exc)
        if self._spooling:
            log.warning("ledger store is back: spool replayed, writing directly again")
        self._spooling = False
        self._spool_offset = 0
        self.spooled_rows = 0
        return True

    def _parse(self, lines: list[bytes]) -> list[LedgerRow]:
        rows: list[LedgerRow] = []
        for line in lines:
            try:
                rows.append(LedgerRow.from_json(line))
            except (ValueError, TypeError, KeyError) as exc:
                self.dropped += 1
                log.error("ledger spool %s: unreadable line dropped (%r): %.200r", self.spool_path, exc, line)
        return rows


class Retention:
    """Deletes ledger rows older than ``max_age_s`` every ``interval_s``, in a task the app owns.

    Args:
        store: the ledger store.
        max_age_s: rows whose ``ts`` is older than this are deleted.
        interval_s: pause between purges.
        clock: wall time for the cut-off; ``sleep`` as in ``LedgerWriter``.
    """

    def __init__(
        self,
        store: RetentionStore,
        max_age_s: float,
        interval_s: float,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._max_age = max_age_s
        self._interval = interval_s
        self._clock: Clock = clock or SystemClock()
        self._sleep = sleep or asyncio.sleep
        self._task: asyncio.Task[None] | None = None
        self.deleted = 0

    async def run_once(self) -> int:
        """Delete rows older than the cut-off now; return how many."""
        n = await self._store.delete_before(self._clock.time() - self._max_age)
        self.deleted += n
        return n

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="breakwater-ledger-retention")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("ledger retention failed; retrying in %.0fs", self._interval)
            await self._sleep(self._interval)
