"""SIGTERM through the real CLI: readiness turns false, serving goes on for the drain delay,
in-flight streams finish (or are cut at the drain deadline), and the process exits 0.

Each test runs ``python -m breakwater serve`` on a free loopback port with an in-process mock
whose stream is paced by the ``x-mock-fault: token_delay=...`` header. Waits poll a condition
against a deadline; none sleeps for synchronisation.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from tests.cli.test_cli import _free_port, _spawn, _wait_ready
from tests.polling import until

HI = [{"role": "user", "content": "hi"}]  # the mock answers "hi" in 8 stream frames


def _config(tmp_path: Path, drain_delay_s: float, drain_timeout_s: float) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"server: {{drain_delay_s: {drain_delay_s}, drain_timeout_s: {drain_timeout_s}}}\n"
        "access: {enabled: false}\n"
        f"ledger: {{url: 'sqlite:///{tmp_path}/ledger.db', spool_path: '{tmp_path}/ledger.spool'}}\n"
        "providers:\n  m: {type: mock, wire: openai}\n"
        "deployments:\n  d: {provider: m, model: mock-gpt, timeouts: {total: 600, first_token: 600, idle: 600}}\n"
        "routes:\n  slow: {deployments: [d], retry: {max_attempts: 1}}\n"
    )
    return path


class Gateway:
    """A ``breakwater serve`` process and its base URL."""

    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url

    def terminate(self) -> float:
        """Send SIGTERM; return when it was sent (monotonic)."""
        self.proc.send_signal(signal.SIGTERM)
        return time.monotonic()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    procs: list[subprocess.Popen[str]] = []

    def run(drain_delay_s: float, drain_timeout_s: float, workers: int = 1) -> Gateway:
        port = _free_port()
        config = _config(tmp_path, drain_delay_s, drain_timeout_s)
        proc = _spawn("serve", "--config", str(config), "--port", str(port), "--workers", str(workers))
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, proc)
        return Gateway(proc, url)

    yield run
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=20)


def _readyz(url: str) -> tuple[int, Any] | None:
    """(status, body) of /readyz on a new connection; None when nothing accepts connections."""
    try:
        # short: with --workers the supervisor keeps the socket listening, so a stopped gateway
        # shows as a connection nobody answers rather than a refused one
        r = httpx.get(f"{url}/readyz", timeout=0.5, headers={"connection": "close"})
    except httpx.TransportError:
        return None
    return r.status_code, r.json()


class Stream:
    """A streaming chat request read to its end on a thread; notes when the first frame and the end arrived."""

    def __init__(self, url: str, token_delay_ms: int) -> None:
        self.first = threading.Event()
        self.done = threading.Event()
        self.ended_at = 0.0
        self.text = ""
        self.error: BaseException | None = None
        body = {"model": "slow", "stream": True, "messages": HI}
        headers = {"x-mock-fault": f"token_delay={token_delay_ms}"}
        self._thread = threading.Thread(target=self._read, args=(url, body, headers), daemon=True)
        self._thread.start()

    def _read(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        try:
            with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers, timeout=60) as r:
                assert r.status_code == 200
                for chunk in r.iter_text():
                    self.text += chunk
                    if "data: " in self.text:
                        self.first.set()
        except BaseException as exc:
            self.error = exc
        finally:
            self.ended_at = time.monotonic()
            self.first.set()
            self.done.set()

    def events(self) -> list[str]:
        return [line.removeprefix("data: ") for line in self.text.split("\n") if line.startswith("data: ")]


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_then_exits_zero(start: Callable[..., Gateway], workers: int) -> None:
    """After SIGTERM /readyz is 503 draining while requests are still served; then accepting stops,
    the in-flight stream finishes with [DONE], and the process exits 0 within the drain timeout."""
    gw = start(drain_delay_s=1.5, drain_timeout_s=20, workers=workers)
    stream = Stream(gw.url, token_delay_ms=700)  # 7 pauses: about 5 s, well past the delay
    assert stream.first.wait(10) and stream.error is None
    sent = gw.terminate()

    # readiness turns false at once (with --workers, once the supervisor forwards the signal)
    until(lambda: (_readyz(gw.url) or (0, {}))[0] == 503, 5, "/readyz answers 503")
    status = _readyz(gw.url)
    assert status is not None and status[1]["status"] == "draining"
    # ...while new requests on new connections are still served during the delay
    r = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "slow", "messages": HI}, timeout=10)
    assert r.status_code == 200
    assert r.json()["choices"][0]["finish_reason"] == "stop"

    until(lambda: _readyz(gw.url) is None, 10, "the gateway stops accepting connections")
    stopped_accepting = time.monotonic()
    assert stopped_accepting - sent >= 1.5
    assert stream.done.wait(20)
    assert stream.error is None
    assert stream.ended_at > stopped_accepting  # the stream outlived the listener
    events = stream.events()
    assert events[-1] == "[DONE]"
    assert all("error" not in orjson.loads(e) for e in events[:-1])
    assert gw.proc.wait(timeout=20) == 0
    assert time.monotonic() - sent < 1.5 + 20


def test_stream_longer_than_drain_timeout_is_cut(start: Callable[..., Gateway]) -> None:
    """A stream still running at the drain deadline ends with a shutting_down error event, and the process exits 0."""
    gw = start(drain_delay_s=0, drain_timeout_s=1)
    stream = Stream(gw.url, token_delay_ms=600_000)  # ten minutes between frames
    assert stream.first.wait(10) and stream.error is None
    sent = gw.terminate()
    assert stream.done.wait(15), "the stream hung past the drain deadline"
    assert stream.error is None
    events = stream.events()
    assert "[DONE]" not in events
    assert orjson.loads(events[-1])["error"]["code"] == "shutting_down"
    assert gw.proc.wait(timeout=15) == 0
    assert time.monotonic() - sent < 10
    _, err = gw.proc.communicate(timeout=5)
    assert "Traceback" not in err
    assert "Exception in ASGI application" not in err


def test_second_sigterm_exits_at_once(start: Callable[..., Gateway]) -> None:
    """A second SIGTERM during a long drain delay exits at once, cutting the in-flight stream."""
    gw = start(drain_delay_s=60, drain_timeout_s=60)
    stream = Stream(gw.url, token_delay_ms=600_000)
    assert stream.first.wait(10) and stream.error is None
    sent = gw.terminate()
    until(lambda: (_readyz(gw.url) or (0, {}))[0] == 503, 5, "/readyz answers 503")
    gw.terminate()
    assert gw.proc.wait(timeout=10) == 0
    assert time.monotonic() - sent < 10
    assert stream.done.wait(10)
    assert "[DONE]" not in stream.events()


def test_sigterm_mid_load_flushes_every_ledger_row(start: Callable[..., Gateway], tmp_path: Path) -> None:
    """Requests keep coming while SIGTERM lands: every request that got an answer has exactly
    one ledger row once the process has exited (the writer flushes at shutdown)."""
    gw = start(drain_delay_s=0, drain_timeout_s=20)
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                try:
                    r = client.post(
                        f"{gw.url}/v1/chat/completions",
                        json={"model": "slow", "messages": HI},
                        headers={"x-mock-fault": "latency=20"},
                    )
                except httpx.TransportError:
                    return  # the gateway stopped accepting: this request never reached it
                with lock:
                    answered.append(r.headers["x-request-id"])

    threads = [threading.Thread(target=load, daemon=True) for _ in range(6)]
    for t in threads:
        t.start()
    until(lambda: len(answered) >= 30, 20, "30 requests were answered")
    gw.terminate()
    assert gw.proc.wait(timeout=30) == 0
    stop.set()
    for t in threads:
        t.join(timeout=30)
    db = sqlite3.connect(tmp_path / "ledger.db")
    try:
        ids = [r[0] for r in db.execute("SELECT request_id FROM breakwater_ledger")]
    finally:
        db.close()
    assert len(ids) == len(set(ids)), "every row lands once"
    assert set(answered) <= set(ids), f"{len(set(answered) - set(ids))} answered requests have no row"
    assert not (tmp_path / "ledger.spool").exists() or (tmp_path / "ledger.spool").stat().st_size == 0
