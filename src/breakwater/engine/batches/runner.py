"""Running batches: each line through the gateway's own pipeline, as low-priority work.

One ``BatchRunner`` per gateway process looks at the store every ``poll_s`` (at once when a batch
is created here) and claims the active batches it may run (``BatchStore.batch_claim``: a lease,
renewed on every look, so replicas sharing a store share the work and a batch whose runner died
is taken over once its lease runs out). It claims only when ``batch_claimable`` (a read) says
there is something to claim or renew, so an idle gateway's looks write nothing. Each look also
sweeps expired files (``file_expired``, a read; then ``file_sweep`` on what it found, at most
``SWEEP_CHUNK`` files a look): every replica may, as deleting is idempotent. A batch goes

```
validating -> in_progress -> finalizing -> completed
    |              |  \\-> cancelling -> cancelled      (POST /v1/batches/{id}/cancel)
    v              \\-> expired                         (its completion window passed)
  failed                                               (the input file is missing or wrong)
```

Each status change is a compare-and-set on the stored status, so a cancellation that lands
while lines run is never overwritten by the runner's own writes.

Lines run at most ``concurrency`` at once across the process's batches, and none starts while the
gateway is busy with interactive traffic: any deployment has requests queued for a slot, or the
requests in flight that are not the runner's own reach ``yield_in_flight``. Each line is one
``Execute`` call (the server's: the same pipeline, limits, retries and ledger row as an
interactive request, tagged ``batch_id``); a 429 or 5xx answer is tried again up to
``line_attempts`` times, and one refused by the gateway's own limits (the owner's rate limits,
a full deployment) waits as long as it is told and goes again without spending an attempt. A
line's result is kept once per ``custom_id`` (``line_put``), and a resumed batch runs only the
lines without one, so after a restart every line still has exactly one result. The output and error files get ids derived from the batch's, so finalizing twice
(a crash in between) writes each once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from breakwater.core.config.batches import BatchSettings
from breakwater.core.errors import InvalidRequest
from breakwater.core.ids import IdGenerator
from breakwater.engine.batches.lines import Line, read_lines
from breakwater.engine.batches.store import (
    ACTIVE,
    BATCH_FILE_TTL_S,
    BatchRecord,
    BatchStatus,
    BatchStore,
    FileInfo,
    LineResult,
)
from breakwater.engine.ports import Clock
from breakwater.engine.tasks import stop_task

log = logging.getLogger("breakwater.batches")

#: the most expired files one look deletes (one transaction): a backlog goes over several looks
SWEEP_CHUNK = 100


@dataclass(frozen=True, slots=True)
class LineAnswer:
    """What one line's request got: its HTTP status, request id and JSON body."""

    status: int
    request_id: str
    body: dict[str, Any]
    #: seconds the answer asked to wait before trying again (429s)
    retry_after: float | None = None
    #: refused by the gateway's own limits or backpressure (a rate limit, a full deployment): the
    #: line waits and goes again without spending an attempt, until the batch expires
    throttled: bool = False


#: one line through the gateway, for the batch's owner
Execute = Callable[[BatchRecord, Line], Awaitable[LineAnswer]]
#: interactive load now: requests in flight across deployments, and requests queued for a slot
Load = Callable[[], tuple[int, int]]


def output_file_id(batch_id: str, kind: str) -> str:
    """The id of a batch's ``output`` or ``error`` file (derived: finalizing twice writes it once)."""
    return f"file-{kind}-{batch_id.removeprefix('batch_')}"


class BatchRunner:
    """The process's batch runner (see the module docstring).

    Args:
        store: the current batch store (read on every look: a reload may change it).
        settings: the current ``batches`` section.
        execute: runs one line.
        load: the interactive load, to yield to.
        clock: timestamps, leases, expiry and retry waits.
    """

    def __init__(
        self,
        store: Callable[[], BatchStore],
        settings: Callable[[], BatchSettings],
        execute: Execute,
        load: Load,
        clock: Clock,
    ) -> None:
        self._store = store
        self._settings = settings
        self._execute = execute
        self._load = load
        self._clock = clock
        self.name = f"runner-{IdGenerator(8).prefix}"
        self._ids = IdGenerator(8)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: batch id -> the task working on it
        self._working: dict[str, asyncio.Task[None]] = {}
        self._slots: asyncio.Semaphore | None = None
        #: lines of this runner in flight now (not counted as interactive load)
        self.in_flight = 0
        #: lines run, by outcome (``ok``, ``failed``, ``retried``, ``throttled``), for metrics
        self.counts: dict[str, int] = {"ok": 0, "failed": 0, "retried": 0, "throttled": 0}
        #: times a line waited for interactive traffic to calm down
        self.yields = 0
        #: expired files this runner's sweeps deleted
        self.swept = 0
        #: ``close`` was called: no line starts any more
        self._stopping = False
        #: the batches the last claim leased to this runner: let go on ``close`` even when no task
        #: works on one at that moment (its task ended between two looks)
        self._leased: set[str] = set()

    def start(self) -> None:
        if self._task is None:
            self._slots = asyncio.Semaphore(self._settings().concurrency)
            self._task = asyncio.get_running_loop().create_task(self._run(), name="breakwater-batches")

    @property
    def running(self) -> int:
        """Batches this runner works on now."""
        return len(self._working)

    def wake(self) -> None:
        """Look for work now (a batch was created or cancelled)."""
        self._wake.set()

    async def close(self, *, release: bool = True, grace_s: float = 0.0) -> None:
        """Stop: no line starts any more; the lines in flight have ``grace_s`` to finish and keep
        their results, the rest are cancelled (run again by whoever resumes the batch); leases let
        go (``release=False``: kept until they run out, as when a process dies)."""
        self._stopping = True
        await stop_task(self._task)
        self._task = None
        working, self._working = self._working, {}
        if working and grace_s > 0:
            await asyncio.wait(set(working.values()), timeout=grace_s)
        for task in working.values():
            await stop_task(task)
        if not release:
            return
        store = self._store()
        for batch_id in sorted(set(working) | self._leased):
            try:
                await store.batch_release(batch_id, self.name)
            except Exception as exc:  # noqa: BLE001 - the lease then runs out on its own
                log.warning("could not let go of batch %s: %s", batch_id, type(exc).__name__)

    async def _run(self) -> None:
        while True:
            settings = self._settings()
            store = self._store()
            try:
                claimed = await self._claim(store, settings)
            except Exception as exc:  # noqa: BLE001 - an unreachable store is tried again at the next look
                log.warning("could not look for batches: %s", type(exc).__name__)
                claimed = []
            try:
                await self._sweep(store)
            except Exception as exc:  # noqa: BLE001 - the expired files are swept at a later look
                log.warning("could not sweep expired files: %s", type(exc).__name__)
            for batch in claimed:
                if batch.id not in self._working:
                    task = asyncio.get_running_loop().create_task(self._work(batch), name=f"batch-{batch.id}")
                    self._working[batch.id] = task
                    task.add_done_callback(self._forget)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), min(settings.poll_s, settings.lease_s / 3))
            except TimeoutError:
                pass

    async def _claim(self, store: BatchStore, settings: BatchSettings) -> list[BatchRecord]:
        """The batches to work on: claimed (the ones held first, their leases renewed; no more than
        lines can run at once), only when there is anything to claim, so an idle look writes nothing."""
        now = self._clock.time()
        if not await store.batch_claimable(self.name, now):
            return []
        most = max(settings.concurrency, len(self._working))
        claimed = await store.batch_claim(self.name, now, settings.lease_s, most)
        self._leased = {batch.id for batch in claimed}
        return claimed

    async def _sweep(self, store: BatchStore) -> None:
        """Delete up to ``SWEEP_CHUNK`` expired files (none: a read only)."""
        now = self._clock.time()
        expired = await store.file_expired(now, SWEEP_CHUNK)
        if expired:
            self.swept += await store.file_sweep(expired, now)

    def _forget(self, task: asyncio.Task[None]) -> None:
        for batch_id, working in list(self._working.items()):
            if working is task:
                del self._working[batch_id]

    async def _work(self, batch: BatchRecord) -> None:
        """Take ``batch`` from its status to a final one (or until this runner stops)."""
        store = self._store()
        try:
            while batch.status in ACTIVE and not self._stopping:
                if batch.status == "validating":
                    batch = await self._validate(store, batch)
                elif batch.status == "in_progress":
                    batch = await self._progress(store, batch)
                else:
                    batch = await self._finish(
                        store, batch, "completed" if batch.status == "finalizing" else "cancelled"
                    )
        except asyncio.CancelledError:
            raise
        except Exception:
            # still leased to this runner: taken up again from its stored status at the next look
            log.exception("batch %s stopped on an error; it is taken up again at the next look", batch.id)

    async def _move(self, store: BatchStore, batch: BatchRecord, status: BatchStatus, **changes: Any) -> BatchRecord:
        """``batch`` in ``status``; if its stored status moved meanwhile (a cancel), the stored batch."""
        moved = batch.moved(status, self._clock.time(), **changes)
        if await store.batch_save(moved, batch.status):
            return moved
        current = await store.batch_get(batch.id, batch.owner)
        if current is None:
            raise LookupError(f"batch {batch.id} is gone")
        return current

    async def _input(self, store: BatchStore, batch: BatchRecord) -> list[Line]:
        # expired or not: an active batch's input is kept until it ends (docs/batch.md)
        content = await store.file_content(batch.input_file_id, batch.owner, None)
        if content is None:
            raise InvalidRequest(f"The input file '{batch.input_file_id}' no longer exists")
        lines = await asyncio.to_thread(read_lines, content, self._settings().max_lines)  # off the event loop
        for line in lines:
            if line.url != batch.endpoint:
                raise InvalidRequest(
                    f"Request '{line.custom_id}' calls {line.url}, but the batch's endpoint is {batch.endpoint}"
                )
        return lines

    async def _validate(self, store: BatchStore, batch: BatchRecord) -> BatchRecord:
        try:
            lines = await self._input(store, batch)
        except InvalidRequest as exc:
            return await self._fail(store, batch, exc)
        return await self._move(store, batch, "in_progress", total=len(lines))

    async def _fail(self, store: BatchStore, batch: BatchRecord, exc: InvalidRequest) -> BatchRecord:
        errors = [{"code": "invalid_request", "message": exc.message, "param": None, "line": None}]
        return await self._move(store, batch, "failed", errors=errors)

    async def _progress(self, store: BatchStore, batch: BatchRecord) -> BatchRecord:
        """Run the lines without a result; then finalize, or stop at a cancellation or at expiry."""
        try:
            lines = await self._input(store, batch)
        except InvalidRequest as exc:  # the input file was deleted while the batch ran
            return await self._fail(store, batch, exc)
        done = await store.line_ids(batch.id)
        running: set[asyncio.Task[None]] = set()
        settings = self._settings()
        checked = self._clock.monotonic()
        stopped: BatchRecord | None = None
        try:
            for line in lines:
                if line.custom_id in done:
                    continue
                await self._until_quiet(settings)
                if self._stopping:  # the lines started finish and keep their results
                    stopped = batch
                    break
                if self._clock.time() >= batch.expires_at:
                    break
                if self._clock.monotonic() - checked >= settings.poll_s:
                    checked = self._clock.monotonic()
                    current = await store.batch_get(batch.id, batch.owner)
                    if current is None or current.status != "in_progress":
                        stopped = current or batch
                        break
                assert self._slots is not None
                await self._slots.acquire()
                if self._stopping:
                    self._slots.release()
                    stopped = batch
                    break
                task = asyncio.get_running_loop().create_task(self._line(store, batch, line))
                running.add(task)
                task.add_done_callback(running.discard)
            if running:  # the lines started finish, even when the batch is being cancelled
                await asyncio.wait(set(running))
        except BaseException:
            for task in list(running):
                await stop_task(task)
            raise
        if stopped is not None:
            return stopped
        missing = len(lines) - len(await store.line_ids(batch.id))
        if missing and self._clock.time() < batch.expires_at:
            # a result could not be kept (the store failed): taken up again at the next look
            raise RuntimeError(f"{missing} lines have no result")
        if self._clock.time() >= batch.expires_at and len(await store.line_ids(batch.id)) < len(lines):
            return await self._finish(store, batch, "expired", lines)
        return await self._move(store, batch, "finalizing")

    async def _until_quiet(self, settings: BatchSettings) -> None:
        """Wait while interactive traffic keeps the gateway busy."""
        while not self._stopping:
            in_flight, queued = self._load()
            if queued == 0 and in_flight - self.in_flight < settings.yield_in_flight:
                return
            self.yields += 1
            await asyncio.sleep(settings.poll_s)

    async def _line(self, store: BatchStore, batch: BatchRecord, line: Line) -> None:
        assert self._slots is not None
        self.in_flight += 1
        try:
            await self._answer(store, batch, line)
        except Exception as exc:  # noqa: BLE001 - the line keeps no result and runs again when the batch resumes
            log.warning(
                "batch %s line %d: its result could not be kept (%s)", batch.id, line.index + 1, type(exc).__name__
            )
        finally:
            self.in_flight -= 1
            self._slots.release()

    async def _answer(self, store: BatchStore, batch: BatchRecord, line: Line) -> None:
        """Run ``line`` (again after a 429 or 5xx, up to ``line_attempts``) and keep its result."""
        settings = self._settings()
        attempt = 0
        while True:
            answer = await self._execute(batch, line)
            if answer.throttled and self._clock.time() < batch.expires_at:
                self.counts["throttled"] += 1
                await self._clock.sleep(answer.retry_after or settings.poll_s)
                continue
            attempt += 1
            if attempt >= settings.line_attempts or not (answer.status == 429 or answer.status >= 500):
                break
            self.counts["retried"] += 1
            await self._clock.sleep(answer.retry_after or min(2.0**attempt, 30.0))
        ok = 200 <= answer.status < 300
        self.counts["ok" if ok else "failed"] += 1
        result = {
            "id": f"batch_req_{self._ids.new()}",
            "custom_id": line.custom_id,
            "response": {"status_code": answer.status, "request_id": answer.request_id, "body": answer.body},
            "error": None,
        }
        await store.line_put(batch.id, LineResult(line.custom_id, line.index, ok, result))

    async def _finish(
        self, store: BatchStore, batch: BatchRecord, final: BatchStatus, lines: list[Line] | None = None
    ) -> BatchRecord:
        """Write the output and error files, then move ``batch`` to ``final``.

        An expired batch's lines without a result get an error line each (``batch_expired``);
        a cancelled batch's are left out, as OpenAI does.
        """
        results = await store.lines(batch.id)
        output = [r.line for r in results if r.ok]
        errors = [r.line for r in results if not r.ok]
        if final == "expired" and lines is not None:
            answered = {r.custom_id for r in results}
            for line in lines:
                if line.custom_id not in answered:
                    error = {
                        "code": "batch_expired",
                        "message": "This request could not be executed before the completion window expired.",
                    }
                    errors.append(
                        {
                            "id": f"batch_req_{self._ids.new()}",
                            "custom_id": line.custom_id,
                            "response": None,
                            "error": error,
                        }
                    )
        changes = {
            "output_file_id": await self._file(store, batch, "output", output),
            "error_file_id": await self._file(store, batch, "error", errors),
        }
        return await self._move(store, batch, final, **changes)

    async def _file(self, store: BatchStore, batch: BatchRecord, kind: str, lines: list[dict[str, Any]]) -> str | None:
        if not lines:
            return None
        file_id = output_file_id(batch.id, kind)
        if await store.file_get(file_id, batch.owner, None) is None:
            content = await asyncio.to_thread(_jsonl, lines)  # up to a file's worth of JSON: off the event loop
            now = self._clock.time()
            lives = BATCH_FILE_TTL_S if batch.output_expires_s is None else batch.output_expires_s
            name = f"{batch.id}_{kind}.jsonl"
            info = FileInfo(file_id, batch.owner, "batch_output", name, len(content), now, now + lives)
            await store.file_put(info, content)
        return file_id


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join([orjson.dumps(line) + b"\n" for line in lines])
