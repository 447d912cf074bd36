"""The runtime serving now, and the reload that swaps in one built from a new configuration.

A reload reads the configuration again (the file the server was started with, or the embedded
default), validates it, builds a new ``Runtime`` from it and the current one (taking over what
did not change), starts it, and swaps it in: requests that start after the swap use the new one.
Requests and streams already running finish on the old one, which stops when its last request
has ended. A configuration that fails validation, or a runtime that fails to build or start,
changes nothing: the error lists every problem and the running configuration stays. Reloads
are serialised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from breakwater.core.config import Config, ConfigError, Problem
from breakwater.runtime.loading import checked
from breakwater.runtime.process import Process
from breakwater.runtime.runtime import Runtime

log = logging.getLogger("breakwater.server")

#: seconds a stopping server waits for replaced runtimes whose requests have not ended
RETIRE_WAIT_S = 5.0


@dataclass(frozen=True, slots=True)
class Loaded:
    """A configuration as a reload reads it."""

    config: Config
    #: its stored version (``runtime/stored_config.py``); ``None``: a file or the embedded default
    version: int | None = None


Load = Callable[[], Awaitable[Loaded]]


def loader(read: Callable[[], Config]) -> Load:
    """A ``Load`` over a plain reading function (a file, the embedded default)."""

    async def load() -> Loaded:
        return Loaded(read())

    return load


class Runtimes:
    """Holds the current runtime; ``reload`` replaces it.

    Args:
        process: what every runtime of this process shares.
        first: the runtime to serve with first (started by ``start``).
        load: reads the configuration again (raises ``ConfigError``).
        on_swap: told each runtime as it becomes the current one (the server builds its handlers).
    """

    def __init__(self, process: Process, first: Runtime, load: Load, on_swap: Callable[[Runtime], None]) -> None:
        self.process = process
        self.current = first
        #: reads the configuration again (replaceable: the server sets where it comes from)
        self.load = load
        self._on_swap = on_swap
        self._lock: asyncio.Lock | None = None
        #: replaced runtimes waiting for their last request, by the task that stops them
        self._retiring: dict[asyncio.Task[Any], Runtime] = {}
        #: reloads done since start (``/readyz``)
        self.reloads = 0
        on_swap(first)

    @property
    def retiring(self) -> int:
        """Replaced runtimes still finishing requests that started on them."""
        return len(self._retiring)

    async def start(self) -> None:
        await self.current.start()
        self.current.commit()

    async def reload(self) -> Runtime:
        """Swap in a runtime built from the configuration as it is now.

        Raises:
            ConfigError: the configuration is invalid, or the runtime could not be built or
                started; the running one stays.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            old = self.current
            loaded = await self.load()
            config = checked(loaded.config, self.process.environ)
            try:
                new = Runtime(config, self.process, previous=old, version=loaded.version)
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(
                    "<config>", [Problem("", f"could not build it: {type(exc).__name__}: {exc}")]
                ) from exc
            try:
                await new.start()
            except BaseException as exc:
                await new.stop()
                if isinstance(exc, Exception):
                    raise ConfigError("<config>", [Problem("", f"could not start it: {type(exc).__name__}")]) from exc
                raise
            new.commit()
            self.current = new
            self._on_swap(new)
            self.reloads += 1
            task = asyncio.create_task(old.retire())
            self._retiring[task] = old
            task.add_done_callback(self._retire_done)
            log.info(
                "configuration reloaded (%s%s); kept: %s",
                new.config_hash,
                "" if new.version is None else f", version {new.version}",
                ", ".join(new.kept) or "nothing",
                extra={"config_hash": new.config_hash, "config_version": new.version},
            )
            return new

    def _retire_done(self, task: asyncio.Task[Any]) -> None:
        self._retiring.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("a replaced configuration did not stop cleanly", exc_info=task.exception())

    async def stop(self) -> None:
        """At shutdown, after the server's last request: stop every runtime."""
        if self._retiring:
            _, pending = await asyncio.wait(list(self._retiring), timeout=RETIRE_WAIT_S)
            for task in pending:
                old = self._retiring.pop(task)
                task.cancel()
                await old.stop()  # a request that never ended: stop it anyway
        await self.current.stop()
