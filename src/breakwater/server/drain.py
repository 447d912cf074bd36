"""Graceful shutdown on SIGTERM: readiness turns false first, the server stops a delay later.

A load balancer (or Kubernetes, whose endpoint removal races the SIGTERM it sends the pod) keeps
sending a replica new requests for a few seconds after the replica was told to stop. uvicorn
stops accepting as soon as SIGTERM arrives, and tells the app (lifespan shutdown) only once every
connection has closed: too late to fail a readiness probe. So ``Drain`` wraps the server's own
signal handlers from lifespan startup. A first SIGTERM marks the app draining at once
(``/readyz`` answers 503) and hands the signal on to the server ``delay_s`` later; the server
then stops accepting, lets in-flight requests finish up to its graceful-shutdown timeout, and
exits. A second SIGTERM or SIGINT exits at once: it is handed on as SIGINT, which uvicorn reads
as "force exit" once it is stopping. A first SIGINT (Ctrl+C) stops without the delay.

This follows uvicorn 0.54 (``uvicorn/server.py``): ``Server.capture_signals`` installs
``handle_exit`` with ``signal.signal`` before lifespan startup, in every worker process with
``--workers N`` (whose supervisor forwards SIGTERM to each worker), and restores the previous
handlers when it returns, which also removes these wrappers.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["Drain"]

log = logging.getLogger("breakwater.server")

SignalHandler = Callable[[int, FrameType | None], Any]


class Drain:
    """The drain state of one server process: ``serving`` -> ``draining`` -> ``stopping``.

    Args:
        delay_s: seconds between the first SIGTERM and handing it on to the server.
        on_drain: called at once on the first signal (from the signal handler: keep it to
            setting flags).
    """

    def __init__(self, delay_s: float, on_drain: Callable[[], None]) -> None:
        self.delay_s = delay_s
        self.state = "serving"
        self._on_drain = on_drain
        self._server: dict[int, SignalHandler] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def install(self) -> bool:
        """Wrap the server's SIGTERM and SIGINT handlers (call from lifespan startup, on the loop).

        Returns False, changing nothing, off the main thread (signals are the main thread's)
        or when no Python handler owns SIGTERM (nothing there expects a graceful stop).
        """
        if threading.current_thread() is not threading.main_thread():
            return False
        if not callable(signal.getsignal(signal.SIGTERM)):
            return False
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            handler = signal.getsignal(sig)
            if callable(handler):
                self._server[sig] = handler
                signal.signal(sig, self.on_signal)
        return True

    def uninstall(self) -> None:
        """Put the server's handlers back where these wrappers are still installed (on the loop)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if threading.current_thread() is threading.main_thread():
            for sig, handler in self._server.items():
                if signal.getsignal(sig) == self.on_signal:
                    signal.signal(sig, handler)
        self._server.clear()

    def on_signal(self, sig: int, frame: FrameType | None) -> None:
        """The installed handler. Runs between two bytecodes of the main thread: it only sets
        flags and hands the rest to the event loop (``call_soon_threadsafe`` is the safe way in)."""
        if self.state != "serving":
            assert self._loop is not None
            self._loop.call_soon_threadsafe(log.warning, "second signal: exiting at once, cutting in-flight requests")
            self._force()
            return
        self._on_drain()
        assert self._loop is not None
        if sig == signal.SIGTERM and self.delay_s > 0:
            self.state = "draining"
            self._loop.call_soon_threadsafe(self._start_delay)
        else:
            self._loop.call_soon_threadsafe(log.info, "stopping: readiness is false, finishing in-flight requests")
            self._hand_on(sig)

    def _start_delay(self) -> None:
        if self.state != "draining":
            return  # a second signal came first
        log.info("SIGTERM: draining, readiness is false; still serving for %g s, then stopping", self.delay_s)
        assert self._loop is not None
        self._timer = self._loop.call_later(self.delay_s, self._end_delay)

    def _end_delay(self) -> None:
        if self.state == "draining":
            log.info("drain delay over: no longer accepting; finishing in-flight requests")
            self._hand_on(signal.SIGTERM)

    def _hand_on(self, sig: int) -> None:
        self.state = "stopping"
        handler = self._server.get(sig) or self._server.get(signal.SIGTERM)
        if handler is not None:
            handler(sig, None)

    def _force(self) -> None:
        if self.state == "draining":
            self._hand_on(signal.SIGTERM)  # the server must be stopping before it can be forced
        self.state = "forced"
        handler = self._server.get(signal.SIGTERM)
        if handler is not None:
            handler(signal.SIGINT, None)  # uvicorn: SIGINT while stopping sets force_exit
