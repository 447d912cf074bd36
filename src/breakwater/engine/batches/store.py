"""Batch files and batches: the records, and the port a store implements.

A file (``POST /v1/files``) and a batch (``POST /v1/batches``) belong to the key that made them
(their ``owner``, ``""`` with access control off): another key finds nothing, exactly as if they
did not exist. A batch's lines' results are kept one row per ``custom_id`` and written at most
once (``line_put`` keeps the first), so a batch resumed after a restart or taken over by another
replica never answers a line twice; its ``request_counts`` are counted from those rows when read.

A batch's status changes by compare-and-set (``batch_save(record, expect=...)``): a runner's
progress write cannot undo a cancellation that landed in between. A runner holds a batch under a
lease (``batch_claim``), so replicas sharing a store share the work without running a batch twice;
it asks first whether there is anything to claim (``batch_claimable``, a read), so an idle
runner's looks write nothing.

A file may expire (``expires_at``, OpenAI's ``expires_after``): from that moment it is gone for
every call that passes ``now`` (read, content, listing, deletion), as if deleted, and
``file_expired`` / ``file_sweep`` find and delete it later. The one exception is the input file
of a batch still active: the runner reads it with ``now=None`` and no sweep deletes it until the
batch has ended, so a batch never loses its lines part-way.

Implemented by the key stores (``infra/keystore/batch_plans.py``: the ``<prefix>_files``,
``_batches`` and ``_batch_lines`` tables) and in memory (``infra/batch_memory.py``), behind one
conformance suite (tests/infra/keystore/test_batch_store.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

#: statuses in which a batch still has work for a runner
ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
#: statuses a batch ends in
FINAL = ("completed", "failed", "expired", "cancelled")

#: OpenAI's bounds on ``expires_after[seconds]`` and ``output_expires_after.seconds``: 1 hour to 30 days
EXPIRY_BOUNDS_S = (3600, 2_592_000)
#: how long a file of purpose ``batch`` (an upload) or ``batch_output`` (a batch's output or error
#: file) lives when its creator names no expiry: 30 days, OpenAI's default for ``batch`` files
BATCH_FILE_TTL_S = 2_592_000.0

BatchStatus = Literal[
    "validating", "in_progress", "finalizing", "cancelling", "completed", "failed", "expired", "cancelled"
]


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One stored file, without its content: OpenAI's File object."""

    id: str
    owner: str
    purpose: str
    filename: str
    bytes: int
    created_at: float
    #: when the file is gone (``None``: never; files kept by a version before expiry have none)
    expires_at: float | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": int(self.created_at),
            "expires_at": None if self.expires_at is None else int(self.expires_at),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


@dataclass(frozen=True, slots=True)
class LineResult:
    """One line's outcome: answered (``ok``: its HTTP status was 2xx) or not, and its output line."""

    custom_id: str
    #: the line's position in the input file (results are written out in input order)
    index: int
    ok: bool
    #: the output (or error) file's line for it, as JSON
    line: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One batch as kept. ``request_counts`` are filled from its lines' results when read."""

    id: str
    owner: str
    endpoint: str
    input_file_id: str
    completion_window: str
    status: BatchStatus
    created_at: float
    expires_at: float
    metadata: dict[str, str] | None = None
    #: ``in_progress_at``, ``finalizing_at``, ``completed_at``, ``failed_at``, ``expired_at``,
    #: ``cancelling_at``, ``cancelled_at``: when each status was reached
    times: dict[str, float] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    #: why validation failed (OpenAI's ``errors.data``)
    errors: list[dict[str, Any]] | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    #: seconds the output and error files live after they are made (``output_expires_after``;
    #: ``None``: ``BATCH_FILE_TTL_S``)
    output_expires_s: float | None = None

    def moved(self, status: BatchStatus, now: float, **changes: Any) -> BatchRecord:
        """This batch in ``status`` since ``now``."""
        return replace(self, status=status, times={**self.times, f"{status}_at": now}, **changes)

    def body(self) -> dict[str, Any]:
        """What the store keeps beside the columns (``record_of`` reads it back)."""
        return {
            "endpoint": self.endpoint,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "metadata": self.metadata,
            "times": self.times,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "errors": self.errors,
            "total": self.total,
            "output_expires_s": self.output_expires_s,
        }

    @classmethod
    def of(
        cls, batch_id: str, owner: str, status: str, created_at: float, expires_at: float, body: dict[str, Any]
    ) -> BatchRecord:
        return cls(
            batch_id,
            owner,
            body["endpoint"],
            body["input_file_id"],
            body["completion_window"],
            status,  # type: ignore[arg-type]
            created_at,
            expires_at,
            body.get("metadata"),
            dict(body.get("times") or {}),
            body.get("output_file_id"),
            body.get("error_file_id"),
            body.get("errors"),
            int(body.get("total") or 0),
            output_expires_s=body.get("output_expires_s"),
        )

    def public(self) -> dict[str, Any]:
        """OpenAI's Batch object; a time or file not reached yet is left out (OpenAI's schema types
        them as integers and strings, not nullable ones), ``metadata`` is null when unset."""
        t = self.times

        def at(name: str) -> int | None:
            value = t.get(name)
            return None if value is None else int(value)

        batch = {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": None if not self.errors else {"object": "list", "data": self.errors},
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": int(self.created_at),
            "in_progress_at": at("in_progress_at"),
            "expires_at": int(self.expires_at),
            "finalizing_at": at("finalizing_at"),
            "completed_at": at("completed_at"),
            "failed_at": at("failed_at"),
            "expired_at": at("expired_at"),
            "cancelling_at": at("cancelling_at"),
            "cancelled_at": at("cancelled_at"),
            "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
        }
        return {k: v for k, v in batch.items() if v is not None} | {"metadata": self.metadata}


class BatchStore(Protocol):
    """Where batch files, batches and their lines' results live."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def file_put(self, info: FileInfo, content: bytes) -> None:
        """Keep a new file."""
        ...

    async def file_get(self, file_id: str, owner: str, now: float | None) -> FileInfo | None:
        """The file, if ``owner`` made it and it has not expired at ``now`` (``None``: expired or not,
        for the runner reading an active batch's input)."""
        ...

    async def file_content(self, file_id: str, owner: str, now: float | None) -> bytes | None:
        """The file's bytes, on the terms of ``file_get``."""
        ...

    async def file_list(
        self, owner: str, purpose: str | None, after: str | None, limit: int, now: float
    ) -> list[FileInfo]:
        """``owner``'s files not expired at ``now``, newest first, from the one after ``after`` (a file id)."""
        ...

    async def file_delete(self, file_id: str, owner: str, now: float) -> bool:
        """Delete the file if ``owner`` made it and it has not expired at ``now``; whether it did."""
        ...

    async def file_expired(self, now: float, limit: int) -> list[str]:
        """Up to ``limit`` ids of files expired at ``now`` that no active batch has as its input,
        soonest expired first (a read: the sweep's look, made every ``poll_s``)."""
        ...

    async def file_sweep(self, file_ids: list[str], now: float) -> int:
        """Delete those of ``file_ids`` that are expired at ``now`` and no active batch's input;
        how many it deleted (another replica's sweep may have been first: deleting is idempotent)."""
        ...

    async def batch_save(self, record: BatchRecord, expect: str | None) -> bool:
        """Insert ``record`` (``expect=None``), or replace it if its stored status is ``expect``;
        whether it was written."""
        ...

    async def batch_get(self, batch_id: str, owner: str) -> BatchRecord | None:
        """The batch, with its request counts, if ``owner`` made it."""
        ...

    async def batch_list(self, owner: str, after: str | None, limit: int) -> list[BatchRecord]:
        """``owner``'s batches, newest first, from the one after ``after`` (a batch id)."""
        ...

    async def batch_claim(self, runner: str, now: float, lease_s: float, limit: int) -> list[BatchRecord]:
        """Up to ``limit`` active batches (``ACTIVE``) that ``runner`` holds or whose lease has run
        out at ``now``, leased to ``runner`` until ``now + lease_s``: those it holds first (so their
        leases are renewed), then the oldest; returned oldest first."""
        ...

    async def batch_claimable(self, runner: str, now: float) -> bool:
        """Whether ``batch_claim`` would claim anything: an active batch ``runner`` holds or whose
        lease has run out at ``now`` (a read, so an idle runner's looks write nothing)."""
        ...

    async def batch_release(self, batch_id: str, runner: str) -> None:
        """``runner`` lets go of the batch (another runner may take it at once)."""
        ...

    async def line_put(self, batch_id: str, result: LineResult) -> bool:
        """Keep a line's result unless one is kept for its ``custom_id``; whether it was kept."""
        ...

    async def line_ids(self, batch_id: str) -> set[str]:
        """The ``custom_id`` of every line with a result."""
        ...

    async def lines(self, batch_id: str) -> list[LineResult]:
        """Every line's result, in input order."""
        ...
