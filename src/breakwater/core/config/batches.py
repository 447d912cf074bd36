"""The ``batches`` section: OpenAI's Files and Batch APIs (``/v1/files``, ``/v1/batches``), run by
the gateway itself as low-priority work (docs/batch.md)."""

from __future__ import annotations

from pydantic import Field, field_validator

from breakwater.core.config.base import _database_url, _Model


class BatchSettings(_Model):
    """Uploaded batch files, batches, and the runner that works through them."""

    #: off: ``/v1/files`` and ``/v1/batches`` answer 404
    enabled: bool = True
    #: ``memory`` (this process only, lost on restart), ``sqlite:///path``, ``postgresql://...`` or a
    #: reference to one; unset: the key store's database (``access.store``), or memory with access
    #: control off. Files' contents are kept in it too.
    store: str | None = None
    #: the largest file an upload may be (OpenAI's own cap is 200 MB)
    max_file_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    #: the most lines one input file may hold (OpenAI's: 50,000)
    max_lines: int = Field(default=50_000, ge=1)
    #: lines of one gateway's batches in flight at once
    concurrency: int = Field(default=4, ge=1, le=256)
    #: batch lines wait while interactive requests in flight reach this many (across deployments)
    #: or while any deployment has requests queued for a slot
    yield_in_flight: int = Field(default=64, ge=1)
    #: attempts of a line whose answer is a 429 or a 5xx (the route's own retries happen inside each)
    line_attempts: int = Field(default=3, ge=1, le=10)
    #: seconds a runner holds a batch before another replica may take it over (renewed as it runs)
    lease_s: float = Field(default=60.0, ge=1.0)
    #: seconds between looks at the store for batches to run, and between checks of the load
    poll_s: float = Field(default=1.0, gt=0.0, le=60.0)

    @field_validator("store")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        return value if value is None or value == "memory" else _database_url(value)
