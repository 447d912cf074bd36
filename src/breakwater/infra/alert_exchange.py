"""Where the traffic-alert samples of every worker and replica meet: Redis.

With Redis configured, each worker's alert task (``observability/alerts.AlertTask``) publishes the
samples it observed since its last round, then asks for the lead. One worker at a time holds it
(a key with a time to live, renewed by its holder each round); the leader reads the whole fleet's
samples within the rules' horizon and evaluates the rules over them, so an alert sees all the
traffic and fires once for the fleet. Which alerts are active is kept in Redis too, so a new
leader (the old one stopped or lost the lease) does not fire again what already fired.

Keys: ``<namespace>alerts:samples`` a sorted set (score: the request's time; member: the sample
as JSON, prefixed by its worker's id and a counter, so equal samples stay distinct),
``<namespace>alerts:leader`` the leader's id, ``<namespace>alerts:active`` the active alerts as
JSON. Every key expires on its own when no gateway is left to renew it.

All of this runs in the alert task's round, off the request path. Any Redis failure becomes
``ConnectionError`` (naming Redis, never its URL, which may hold a password).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, TypeVar

import orjson

from breakwater.infra.redis_client import answered, bounded_redis

__all__ = ["RedisAlertExchange"]

_T = TypeVar("_T")

#: take the lead when it is free, or renew it when it is already ours
_LEAD_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


class RedisAlertExchange:
    """One worker's view of the fleet's alert samples.

    Args:
        url: the Redis URL (may hold a password: never logged).
        namespace: prefix of every key.
        timeout_s: bound on each round trip.
        worker: this worker's id (default: a random one, distinct per process).
    """

    def __init__(self, url: str, *, namespace: str = "bw:", timeout_s: float = 1.0, worker: str | None = None) -> None:
        self._redis = bounded_redis(url, timeout_s=timeout_s, max_connections=2)
        self._timeout_s = timeout_s
        self._samples = namespace + "alerts:samples"
        self._leader = namespace + "alerts:leader"
        self._active = namespace + "alerts:active"
        self.worker = worker or os.urandom(8).hex()
        self._seq = itertools.count()
        self._lead = self._redis.register_script(_LEAD_LUA)

    async def publish(self, samples: Sequence[Sequence[Any]], keep_s: float) -> None:
        """Add ``samples`` (each starting with its time) for every leader to see for ``keep_s``."""
        if not samples:
            return
        members = {orjson.dumps([self.worker, next(self._seq), *s]): float(s[0]) for s in samples}
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(self._samples, members)
        pipe.pexpire(self._samples, _ms(keep_s))
        await self._call(pipe.execute())

    async def lead(self, ttl_s: float) -> bool:
        """Whether this worker evaluates the rules this round (taken or renewed for ``ttl_s``)."""
        return bool(await self._call(self._lead(keys=[self._leader], args=[self.worker, _ms(ttl_s)])))

    async def window(self, since: float) -> list[tuple[Any, ...]]:
        """Every worker's samples from ``since`` on, oldest first (older ones are dropped)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zremrangebyscore(self._samples, "-inf", f"({since!r}")
        pipe.zrangebyscore(self._samples, since, "+inf")
        _, members = await self._call(pipe.execute())
        return [tuple(orjson.loads(m)[2:]) for m in members]

    async def active(self) -> set[tuple[str, str]]:
        """The (rule, subject) pairs active at the last evaluation, by any leader."""
        raw = await self._call(self._redis.get(self._active))
        return {(str(rule), str(subject)) for rule, subject in orjson.loads(raw)} if raw else set()

    async def set_active(self, active: Iterable[tuple[str, str]], keep_s: float) -> None:
        await self._call(self._redis.set(self._active, orjson.dumps(sorted(active)), px=_ms(keep_s)))

    async def release(self) -> None:
        """Give up the lead, if this worker holds it (stopping: another takes over next round)."""
        try:
            if await self._call(self._redis.get(self._leader)) == self.worker.encode():
                await self._call(self._redis.delete(self._leader))
        except ConnectionError:
            pass

    async def close(self) -> None:
        await self._redis.aclose()

    async def _call(self, op: Awaitable[_T]) -> _T:
        return await answered(op, self._timeout_s, ConnectionError)


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)
