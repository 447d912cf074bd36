"""``Drain``: the SIGTERM state machine, with real signals raised in this process.

A recording handler stands in for uvicorn's ``Server.handle_exit`` (installed first, as uvicorn
does before lifespan startup); ``Drain`` wraps it, and ``signal.raise_signal`` delivers signals
to the main thread, where the tests and their event loop run. The whole shutdown through the
CLI is in tests/cli/test_graceful_shutdown.py.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from types import FrameType

import httpx2 as httpx
import pytest

from breakwater.core.config import build_config
from breakwater.server.app import create_app
from breakwater.server.drain import Drain

WAIT_S = 10.0


class Server:
    """Stands in for uvicorn's ``handle_exit``: records each signal handed on to it."""

    def __init__(self) -> None:
        self.signals: list[int] = []
        self.called = asyncio.Event()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.signals.append(sig)
        self.called.set()


@pytest.fixture
def server() -> Iterator[Server]:
    """A recording handler installed for SIGTERM and SIGINT; the previous handlers come back afterwards."""
    fake = Server()
    saved = {sig: signal.signal(sig, fake.handle_exit) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield fake
    for sig, handler in saved.items():
        signal.signal(sig, handler)


async def test_first_sigterm_marks_draining_then_hands_on_after_the_delay(server: Server) -> None:
    """The first SIGTERM calls on_drain at once, and reaches the server only after the delay."""
    drained: list[bool] = []
    drain = Drain(0.3, lambda: drained.append(True))
    assert drain.install()
    loop = asyncio.get_running_loop()
    start = loop.time()
    signal.raise_signal(signal.SIGTERM)
    assert drained == [True]
    assert server.signals == []
    assert drain.state == "draining"
    await asyncio.wait_for(server.called.wait(), WAIT_S)
    assert loop.time() - start >= 0.3
    assert server.signals == [signal.SIGTERM]
    assert drain.state == "stopping"
    drain.uninstall()


async def test_no_delay_hands_sigterm_on_at_once(server: Server) -> None:
    """With drain_delay_s 0, SIGTERM reaches the server inside the same signal handler."""
    drained: list[bool] = []
    drain = Drain(0, lambda: drained.append(True))
    assert drain.install()
    signal.raise_signal(signal.SIGTERM)
    assert (drained, server.signals, drain.state) == ([True], [signal.SIGTERM], "stopping")
    drain.uninstall()


async def test_first_sigint_stops_without_the_delay(server: Server) -> None:
    """Ctrl+C (SIGINT) turns readiness false and stops at once, without waiting the drain delay."""
    drained: list[bool] = []
    drain = Drain(60, lambda: drained.append(True))
    assert drain.install()
    signal.raise_signal(signal.SIGINT)
    assert (drained, server.signals) == ([True], [signal.SIGINT])
    drain.uninstall()


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
async def test_second_signal_during_the_delay_forces_exit(server: Server, second: int) -> None:
    """A second SIGTERM or SIGINT during the delay stops the server and forces it (SIGINT while stopping)."""
    drain = Drain(60, lambda: None)
    assert drain.install()
    signal.raise_signal(signal.SIGTERM)
    assert server.signals == []
    signal.raise_signal(second)
    assert server.signals == [signal.SIGTERM, signal.SIGINT]
    assert drain.state == "forced"
    drain.uninstall()


async def test_second_signal_while_stopping_forces_exit(server: Server) -> None:
    """A second signal after the delay (the server already stopping) is handed on as SIGINT: force exit."""
    drain = Drain(0, lambda: None)
    assert drain.install()
    signal.raise_signal(signal.SIGTERM)
    signal.raise_signal(signal.SIGTERM)
    assert server.signals == [signal.SIGTERM, signal.SIGINT]


async def test_uninstall_puts_the_server_handlers_back(server: Server) -> None:
    """After uninstall the server's own handlers are installed again."""
    drain = Drain(1, lambda: None)
    assert drain.install()
    assert signal.getsignal(signal.SIGTERM) == drain.on_signal
    drain.uninstall()
    assert signal.getsignal(signal.SIGTERM) == server.handle_exit
    assert signal.getsignal(signal.SIGINT) == server.handle_exit


async def test_install_changes_nothing_without_a_python_sigterm_handler() -> None:
    """With SIGTERM at its default (no server wanting a graceful stop), install is a no-op."""
    saved = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        drain = Drain(1, lambda: None)
        assert not drain.install()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, saved)


async def test_install_off_the_main_thread_changes_nothing(server: Server) -> None:
    """Lifespan startup on another thread (an embedded server) leaves the signal handlers alone."""
    drain = Drain(1, lambda: None)
    installed = await asyncio.to_thread(lambda: asyncio.run(_install(drain)))
    assert not installed
    assert signal.getsignal(signal.SIGTERM) == server.handle_exit


async def _install(drain: Drain) -> bool:
    return drain.install()


async def test_readyz_answers_503_draining_from_the_first_sigterm(server: Server) -> None:
    """The app's /readyz turns to 503 "draining" the moment SIGTERM arrives, before the server hears of it."""
    app = create_app(build_config({"server": {"drain_delay_s": 60}, "access": {"enabled": False}}), environ={})
    app.ready = True  # what lifespan startup ends with (not run here: it also freezes the GC)
    assert app.drain.install()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            assert (await client.get("/readyz")).status_code == 200
            signal.raise_signal(signal.SIGTERM)
            r = await client.get("/readyz")
            assert r.status_code == 503
            assert r.json()["status"] == "draining"
            assert server.signals == []  # still serving: the server has not been told yet
            assert (await client.get("/healthz")).status_code == 200
    finally:
        app.drain.uninstall()
    assert signal.getsignal(signal.SIGTERM) == server.handle_exit
