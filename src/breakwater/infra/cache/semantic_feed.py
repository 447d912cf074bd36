"""The semantic index shared by replicas: each question one replica indexes, the others learn.

Answers are shared through the cache store (Redis) already; what each replica lacks is the
others' *questions*. Every question a replica indexes is appended to one Redis stream
(``<namespace>cache:semantic``: scope, question, the answer's key, the embedding as float32
bytes, and the replica's id), capped near the index's own bound (``MAXLEN ~``), and every
replica reads the stream from where it left off, every ``interval_s``, and adds the others'
questions to its index. Plain Redis (streams, 5.0 and later): no search module needed.

A replica that was down reads what it missed as long as the stream still holds it; one that
starts fresh begins with the stream's current contents (``0-0``). Redis unreachable: publishing
and reading are skipped (counted), the local index goes on alone.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import numpy as np
from redis.exceptions import RedisError

from breakwater.engine.cache.semantic import SemanticIndex, Vector
from breakwater.engine.tasks import stop_task
from breakwater.infra.redis_client import bounded_redis

log = logging.getLogger("breakwater.cache")


class RedisSemanticFeed:
    """Publishes this replica's indexed questions and adds the other replicas' to ``index``.

    Args:
        url: the Redis URL (may hold a password: never logged).
        index: this process's semantic index.
        namespace: the Redis key prefix.
        timeout_s: bound on every Redis call.
        interval_s: pause between reads of the stream.
    """

    def __init__(
        self,
        url: str,
        index: SemanticIndex,
        *,
        namespace: str = "bw:",
        timeout_s: float = 0.1,
        interval_s: float = 0.5,
    ) -> None:
        self._redis = bounded_redis(url, timeout_s=max(timeout_s, 0.5), max_connections=4)
        self._stream = namespace + "cache:semantic"
        self._index = index
        self._interval_s = interval_s
        self._timeout_s = max(timeout_s, 0.5)
        self._origin = uuid.uuid4().hex[:12]
        self._last = "0-0"
        self._pending: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.learned = 0
        self.failures = 0

    def publish(self, scope: str, question: str, key: str, vector: Vector) -> None:
        """Append an indexed question to the stream, in the background (never waited for)."""
        fields: dict[Any, Any] = {"s": scope, "q": question, "k": key, "v": vector.astype(np.float32).tobytes(),
                                  "e": self._index.identity, "o": self._origin}  # fmt: skip
        task = asyncio.get_running_loop().create_task(self._add(fields))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _add(self, fields: dict[Any, Any]) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._redis.xadd(self._stream, fields, maxlen=self._index.max_entries, approximate=True)
            self.published += 1
        except (RedisError, OSError, TimeoutError) as exc:
            self.failures += 1
            log.debug("semantic feed: publish skipped (%s)", type(exc).__name__)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._follow(), name="breakwater-semantic-feed")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self._redis.aclose()

    async def _follow(self) -> None:
        while True:
            try:
                await self.read_once()
            except (RedisError, OSError, TimeoutError) as exc:
                self.failures += 1
                log.debug("semantic feed: read skipped (%s)", type(exc).__name__)
            await asyncio.sleep(self._interval_s)

    async def read_once(self) -> int:
        """Add the other replicas' questions published since the last read; how many were added."""
        added = 0
        async with asyncio.timeout(self._timeout_s):
            replies: Any = await self._redis.xread({self._stream: self._last}, count=1000)
        for _, entries in replies or ():
            for entry_id, raw in entries:
                fields: dict[bytes, bytes] = raw
                self._last = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                if fields.get(b"o", b"").decode() == self._origin:
                    continue
                if fields.get(b"e", b"").decode() != self._index.identity:
                    continue  # embedded by another embedder: not comparable
                vector = np.frombuffer(fields[b"v"], dtype=np.float32)
                self._index.add(
                    fields[b"s"].decode(), fields[b"q"].decode(), fields[b"k"].decode(), vector, share=False
                )
                added += 1
        self.learned += added
        return added
