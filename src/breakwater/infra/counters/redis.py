"""``Counters`` in Redis: limits and budgets shared, exactly, by every replica and worker process.

Why one script per call: a request is admitted against all of its limits at once or not at all.
Reading the counts and then writing them in separate commands would let two replicas both see
room for the last place; a Lua script runs atomically inside Redis, so the read, the decision
and the writes of one ``acquire`` see no other client in between, and the counts stay exact
across replicas. ``settle`` and ``read`` are one script each for the same reason, and for one
round trip per call.

Why ``now`` comes from the caller and not Redis ``TIME``: the engine's clock is injected (tests
and drills move it by hand), and slots and lease expiries are numbers on that clock. Redis only
measures key lifetimes (``EXPIRE``), which are durations and need no shared clock.

Every call is bounded by ``timeout_s`` (``asyncio.timeout`` around the call, socket timeouts
under it) and every failure becomes ``CountersUnavailable``, so the caller can fall back to
local counters instead of waiting on a sick Redis. redis-py's own retries are off: a script
that timed out may have run, and re-sending it would count a request twice. A connection that
failed is dropped by redis-py and the pool connects afresh on the next call, so a restarted
Redis needs no recovery step. The URL may hold a password: messages say "Redis", never the URL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar, cast

from breakwater.engine.limits.counters import Adjust, Check, CountersUnavailable, Reading, Release, Verdict, Window
from breakwater.infra.redis_client import answered, bounded_redis

__all__ = ["RedisCounters"]

_T = TypeVar("_T")

# Shared by the acquire and read scripts. A window key is a hash: field = slot number, value =
# count. Redis turns a Lua ``false`` into a nil reply (None in Python) and ``nil`` would end the
# reply array, so "no slot" is ``false``. Lua numbers come back truncated to integers: every
# count and slot is an integer, so nothing is lost.
_WINDOW_LUA = """
-- flat is a window's HGETALL reply: the sum of slots first..last, the oldest of them with a
-- nonzero count (or false), and the fields older than first
local function scan(flat, first, last)
  local total, oldest, stale = 0, false, {}
  for j = 1, #flat, 2 do
    local s = tonumber(flat[j])
    if s < first then
      stale[#stale + 1] = flat[j]
    elseif s <= last then
      local c = tonumber(flat[j + 1])
      total = total + c
      if c ~= 0 and (oldest == false or s < oldest) then oldest = s end
    end
  end
  return total, oldest, stale
end
"""

# KEYS: one per check. ARGV[1] = now; then per check either
#   'w', limit, amount, slot, buckets, ttl_s, below (1/0)       a window (7 values), or
#   'l', limit, token, expires_at                               a lease (4 values).
# Lease sets are sorted sets scored by expiry; expiries are decimal strings compared by Redis
# as numbers. A token counts until its expiry, inclusive ("(" drops only scores below now).
# Returns {refused (1-based, 0 = admitted), then count, oldest, fits_at per check}.
_ACQUIRE_LUA = (
    _WINDOW_LUA
    + """
-- the first slot at which amount fits: the count only falls when a slot s leaves the window,
-- at s + buckets, so try those moments in order; false when it never fits (amount > limit)
local function fits_at(p)
  local first, counted = p.slot - p.buckets + 1, {}
  for j = 1, #p.flat, 2 do
    local s = tonumber(p.flat[j])
    if s >= first and s <= p.slot then counted[#counted + 1] = {s, tonumber(p.flat[j + 1])} end
  end
  table.sort(counted, function(a, b) return a[1] < b[1] end)
  local remaining = p.count
  for _, c in ipairs(counted) do
    remaining = remaining - c[2]
    if remaining + p.amount <= p.limit then return c[1] + p.buckets end
  end
  return false
end

local now = tonumber(ARGV[1])
local probes, refused, at = {}, 0, 2

-- Pass 1: read every check; drop forgotten slots and expired tokens (no count changes).
for i, key in ipairs(KEYS) do
  local p = {window = ARGV[at] == 'w', limit = tonumber(ARGV[at + 1])}
  if p.window then
    p.amount, p.field, p.buckets = tonumber(ARGV[at + 2]), ARGV[at + 3], tonumber(ARGV[at + 4])
    p.ttl, p.below, at = ARGV[at + 5], ARGV[at + 6] == '1', at + 7
    p.slot = tonumber(p.field)
    p.flat = redis.call('HGETALL', key)
    local stale
    p.count, p.oldest, stale = scan(p.flat, p.slot - p.buckets + 1, p.slot)
    if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
    if p.below then p.fits = p.count < p.limit else p.fits = p.count + p.amount <= p.limit end
  else
    p.token, p.expires, at = ARGV[at + 2], ARGV[at + 3], at + 4
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[1])
    p.count = redis.call('ZCARD', key)
    p.fits = p.count < p.limit
  end
  if not p.fits and refused == 0 then refused = i end
  probes[i] = p
end

-- Pass 2: apply all of them (admitted) or none (refused), and report.
local out = {refused}
for i, key in ipairs(KEYS) do
  local p = probes[i]
  local first_fit = false
  if p.window then
    if refused == 0 and p.amount ~= 0 then
      local value = redis.call('HINCRBY', key, p.field, p.amount)
      redis.call('EXPIRE', key, p.ttl)
      p.count = p.count + p.amount
      -- the current slot is the newest counted: it is the oldest only if no other counts
      if value ~= 0 then
        if p.oldest == false then p.oldest = p.slot end
      elseif p.oldest == p.slot then
        p.oldest = false
      end
    elseif refused ~= 0 and not p.fits and not p.below then
      first_fit = fits_at(p)
    end
    out[3 * i - 1], out[3 * i], out[3 * i + 1] = p.count, p.oldest, first_fit
  else
    if refused == 0 then
      p.count = p.count + redis.call('ZADD', key, p.expires, p.token)  -- 0 when re-held
      -- keep the set until its latest token expires
      local latest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
      redis.call('EXPIRE', key, math.max(1, math.ceil(tonumber(latest[2]) - now)))
    end
    out[3 * i - 1], out[3 * i], out[3 * i + 1] = p.count, false, false
  end
end
return out
"""
)

# KEYS: one per window. ARGV: slot, buckets per window. Changes nothing (forgotten slots are
# skipped, not deleted). Returns count, oldest per window.
_READ_LUA = (
    _WINDOW_LUA
    + """
local out = {}
for i, key in ipairs(KEYS) do
  local slot, buckets = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local total, oldest = scan(redis.call('HGETALL', key), slot - buckets + 1, slot)
  out[2 * i - 1], out[2 * i] = total, oldest
end
return out
"""
)

# KEYS: the adjusted window keys, then the released lease keys. ARGV[1] = the number of
# adjustments; then slot, delta, ttl_s per adjustment; then the token per release. A delta
# that is not positive applies only to a slot that still exists (a late settlement after the
# window moved on changes nothing). Returns the new value per adjustment (false: skipped).
_SETTLE_LUA = """
local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  local key, field, delta = KEYS[i], ARGV[3 * i - 1], tonumber(ARGV[3 * i])
  if delta > 0 or redis.call('HEXISTS', key, field) == 1 then
    out[i] = redis.call('HINCRBY', key, field, delta)
    redis.call('EXPIRE', key, ARGV[3 * i + 1])
  else
    out[i] = false
  end
end
for j = n + 1, #KEYS do
  redis.call('ZREM', KEYS[j], ARGV[2 * n + j + 1])
end
return out
"""


class RedisCounters:
    """The shared ``Counters``: one atomic Lua script per call over a bounded connection pool.

    Args:
        url: ``redis://[:password@]host:port/db`` (``rediss://`` for TLS); never logged.
        namespace: prefixed to every key, so deployments (and tests) sharing a Redis stay apart.
        timeout_s: bound on each call, connecting included.
        max_connections: the pool's size; callers beyond it wait (within ``timeout_s``) for a
            connection rather than open more.
    """

    def __init__(self, url: str, *, namespace: str = "bw:", timeout_s: float = 0.05, max_connections: int = 32) -> None:
        self._redis = bounded_redis(url, timeout_s=timeout_s, max_connections=max_connections)
        self._namespace = namespace
        self._timeout_s = timeout_s
        self._acquire = self._redis.register_script(_ACQUIRE_LUA)
        self._read = self._redis.register_script(_READ_LUA)
        self._settle = self._redis.register_script(_SETTLE_LUA)

    async def acquire(self, checks: Sequence[Check], now: float) -> Verdict:
        if not checks:
            return Verdict(True, ())
        ns = self._namespace
        args: list[str | int] = [repr(float(now))]
        for check in checks:
            if isinstance(check, Window):
                below = 1 if check.below else 0
                args += ("w", check.limit, check.amount, check.slot, check.buckets, check.ttl_s, below)
            else:
                args += ("l", check.limit, check.token, repr(float(check.expires_at)))
        reply = await self._answer(self._acquire(keys=[ns + c.key for c in checks], args=args))
        values = cast(list[Any], reply)
        readings = tuple(Reading(values[j], values[j + 1], values[j + 2]) for j in range(1, len(values), 3))
        refused = cast(int, values[0])
        return Verdict(refused == 0, readings, refused - 1 if refused else None)

    async def settle(self, adjusts: Sequence[Adjust], releases: Sequence[Release], now: float) -> list[int | None]:
        if not adjusts and not releases:
            return []
        ns = self._namespace
        keys = [ns + a.key for a in adjusts] + [ns + r.key for r in releases]
        args: list[str | int] = [len(adjusts)]
        for adjust in adjusts:
            args += (adjust.slot, adjust.delta, adjust.ttl_s)
        args += [r.token for r in releases]
        reply = await self._answer(self._settle(keys=keys, args=args))
        return cast(list[int | None], reply)

    async def read(self, windows: Sequence[Window], now: float) -> list[Reading]:
        if not windows:
            return []
        args: list[int] = []
        for window in windows:
            args += (window.slot, window.buckets)
        reply = await self._answer(self._read(keys=[self._namespace + w.key for w in windows], args=args))
        values = cast(list[Any], reply)
        return [Reading(values[j], values[j + 1]) for j in range(0, len(values), 2)]

    async def held(self, keys: Sequence[str], now: float) -> list[int]:
        if not keys:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.zcount(self._namespace + key, repr(float(now)), "+inf")  # a token counts until its expiry
        return [int(n) for n in await self._answer(pipe.execute())]

    async def first(self, key: str, ttl_s: int, now: float) -> bool:
        claimed = await self._answer(self._redis.set(self._namespace + key, b"1", nx=True, ex=ttl_s))
        return bool(claimed)

    async def ping(self) -> None:
        await self._answer(self._redis.ping())

    async def close(self) -> None:
        """Close the pool's connections."""
        await self._redis.aclose()

    async def _answer(self, call: Awaitable[_T]) -> _T:
        """Await one Redis call within ``timeout_s``; every failure becomes ``CountersUnavailable``."""
        return await answered(call, self._timeout_s, CountersUnavailable)
