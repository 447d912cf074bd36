"""Telling every replica that something in the store changed: Redis pub/sub.

The replica (or CLI) that made a change publishes one message on ``<namespace><topic>``:
``access`` when keys, teams or limits changed (every replica reloads its directory),
``config`` when a configuration version was applied (every replica following the store loads
it). Replicas hear it within milliseconds. A message can be lost (Redis down, a replica
reconnecting): the replicas also poll the store, so pub/sub only makes the common case fast
and is never the only path.
Nothing here raises into a request or an admin call; failures are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio as redis
from redis.exceptions import RedisError

from breakwater.engine.tasks import stop_task

log = logging.getLogger("breakwater.access")

#: seconds between attempts to subscribe again after the connection was lost
_RETRY_S = 1.0


class RedisInvalidations:
    """Publishes and listens for access-store changes on one Redis channel.

    Args:
        url: the Redis URL (may hold a password: never logged).
        namespace: prefix of the channel name.
        timeout_s: bound on a publish.
        topic: what changes are announced: ``access`` or ``config``.
    """

    def __init__(self, url: str, *, namespace: str = "bw:", timeout_s: float = 0.5, topic: str = "access") -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        # the subscriber waits for messages indefinitely: no read timeout, but keep-alives and a
        # periodic PING so a silently dead connection is noticed
        self._subscriber = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_keepalive=True, health_check_interval=30
        )
        self.channel = f"{namespace}{topic}"
        self._topic = topic
        self._timeout = timeout_s
        self._task: asyncio.Task[None] | None = None
        #: messages received (tests and metrics)
        self.received = 0

    async def announce(self) -> None:
        """Tell the other replicas; a failure is logged (they will notice by polling)."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.publish(self.channel, b"changed")
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning(
                "could not announce a %s change on Redis (%s); replicas will poll", self._topic, type(exc).__name__
            )

    def listen(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` for each announcement, from a background task, until ``close``."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._listen(on_change), name=f"breakwater-{self._topic}-sub"
            )

    async def _listen(self, on_change: Callable[[], None]) -> None:
        failing = False
        while True:
            try:
                async with self._subscriber.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    if failing:
                        failing = False
                        log.info("subscribed again to %s changes on Redis", self._topic)
                        on_change()  # something may have changed while we were away
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                        if message is not None:
                            self.received += 1
                            on_change()
            except (RedisError, OSError) as exc:
                if not failing:
                    failing = True
                    log.warning(
                        "lost the Redis subscription to %s changes (%s); retrying", self._topic, type(exc).__name__
                    )
                await asyncio.sleep(_RETRY_S)

    async def close(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
        for client in (self._client, self._subscriber):
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()
