"""A client that disconnects cancels its upstream request at once (``server/disconnect.py``).

The wrapper alone is driven with fake ASGI ``receive``/``send`` (its watcher task, what it
cancels and what it leaves alone); then a real uvicorn gateway on loopback, in front of the
in-process mock, is abandoned mid-request by a raw socket, and the test watches the mock's slow
sleep being cancelled through an instrumented clock.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from breakwater.core.config import build_config
from breakwater.infra.clock import SystemClock
from breakwater.server import errors
from breakwater.server.app import create_app
from breakwater.server.disconnect import CancelOnDisconnect, DisconnectWatch
from breakwater.server.endpoints import RequestIds
from tests.server.running import serve

BODY = {"type": "http.request", "body": b"{}", "more_body": False}
WAIT_S = 10.0  # a bound on every wait below; the behaviour under test takes milliseconds


def scope(headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": headers or []}


class Records(logging.Handler):
    """Log records of the gateway and of uvicorn, with an event set on the first "client disconnected"."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self.disconnected = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if record.getMessage() == "client disconnected":
            self.disconnected.set()

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@pytest.fixture
def records() -> Iterator[Records]:
    gateway, server = logging.getLogger("breakwater.server"), logging.getLogger("uvicorn.error")
    handler, level = Records(), gateway.level
    gateway.addHandler(handler)
    gateway.setLevel(logging.INFO)
    server.addHandler(handler)  # where uvicorn reports "Exception in ASGI application"
    yield handler
    gateway.removeHandler(handler)
    gateway.setLevel(level)
    server.removeHandler(handler)


# --- the wrapper alone -----------------------------------------------------------------------


@pytest.mark.parametrize("swept", [False, True], ids=["watched-at-once", "watched-by-the-sweeper"])
async def test_disconnect_cancels_the_handler(records: Records, swept: bool) -> None:
    """A disconnect after the body cancels the handler (watched at once, or by the app's sweeper once the
    request outlives its delay); the wrapper returns quietly and logs the id."""
    gone = asyncio.Event()
    handler_cancelled = asyncio.Event()
    inbox = [BODY]

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop()
        await gone.wait()
        return {"type": "http.disconnect"}

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        gone.set()  # the client leaves while the handler waits on its upstream
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            handler_cancelled.set()
            raise

    async def send(message: Any) -> None:
        raise AssertionError("nothing is sent to a client that left")

    watch = DisconnectWatch(after_s=0.0, interval_s=0.001) if swept else None
    if watch is not None:
        watch.start()
    try:
        guard = CancelOnDisconnect(handler, RequestIds(), errors.openai_error, watch)
        await asyncio.wait_for(guard(scope([(b"x-request-id", b"req-7")]), receive, send), WAIT_S)
    finally:
        if watch is not None:
            await watch.stop()
    assert handler_cancelled.is_set()
    assert records.messages() == ["client disconnected"]
    assert records.records[0].request_id == "req-7"  # type: ignore[attr-defined]
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0  # the wrapper's own cancel was taken back


async def test_watcher_is_cancelled_when_the_handler_finishes() -> None:
    """A handler that answers normally leaves no watcher task behind."""
    watching = asyncio.Event()
    watcher_cancelled = asyncio.Event()
    inbox = [BODY]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop()
        watching.set()
        try:
            await asyncio.Event().wait()  # like uvicorn: nothing until the client disconnects
        except asyncio.CancelledError:
            watcher_cancelled.set()
            raise
        raise AssertionError("unreachable")

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await watching.wait()  # the watcher is waiting on the connection, as it would on a server
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await CancelOnDisconnect(handler, RequestIds(), errors.openai_error)(scope(), receive, send)
    await asyncio.wait_for(watcher_cancelled.wait(), WAIT_S)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_disconnect_after_a_complete_response_cancels_nothing(records: Records) -> None:
    """The "disconnect" a server reports once the response is complete does not cancel work that follows it."""
    after_response = asyncio.Event()
    inbox = [BODY]
    finished = []

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop()
        after_response.set()  # the handler resumes only after the watcher has seen this message
        return {"type": "http.disconnect"}

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        await after_response.wait()
        finished.append(True)

    async def send(message: dict[str, Any]) -> None:
        pass

    await asyncio.wait_for(
        CancelOnDisconnect(handler, RequestIds(), errors.openai_error)(scope(), receive, send), WAIT_S
    )
    assert finished == [True]
    assert "client disconnected" not in records.messages()


async def test_a_request_cut_by_the_server_gets_a_503() -> None:
    """A handler the server cancels (its shutdown deadline) before answering gets a 503 shutting_down, not a 500."""
    inbox = [BODY]
    sent: list[dict[str, Any]] = []
    waiting = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        waiting.set()
        await asyncio.Event().wait()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    task = asyncio.create_task(CancelOnDisconnect(handler, RequestIds(), errors.openai_error)(scope(), receive, send))
    await asyncio.wait_for(waiting.wait(), WAIT_S)
    task.cancel()
    await asyncio.wait_for(task, WAIT_S)  # returns normally: nothing for the server to report
    assert sent[0]["status"] == 503
    assert orjson.loads(sent[1]["body"])["error"]["code"] == "shutting_down"


async def test_the_log_names_the_id_the_handler_chose(records: Records) -> None:
    """Without a client x-request-id, the "client disconnected" line names the id the handler generated."""
    seen: list[str] = []
    ids = RequestIds()
    gone = asyncio.Event()
    inbox = [BODY]

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        seen.append(ids.context(scope).request_id)
        await receive()
        gone.set()
        await asyncio.Event().wait()

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop()
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        pass

    await asyncio.wait_for(CancelOnDisconnect(handler, ids, errors.openai_error)(scope(), receive, send), WAIT_S)
    assert seen and seen[0]
    assert records.messages() == ["client disconnected"]
    assert records.records[0].request_id == seen[0]  # type: ignore[attr-defined]


# --- a real gateway --------------------------------------------------------------------------


class WatchedClock(SystemClock):
    """The system clock, reporting (across threads) when a long sleep starts and when it is cancelled.

    The in-process mock paces its ``latency`` and ``token_delay`` faults on the gateway's clock,
    so a cancelled long sleep is the mock's upstream work being torn down.
    """

    def __init__(self) -> None:
        self.sleeping = threading.Event()
        self.cancelled = threading.Event()

    async def sleep(self, seconds: float) -> None:
        if seconds < 5:
            await asyncio.sleep(seconds)
            return
        self.sleeping.set()
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


CONFIG = {
    "access": {"enabled": False},
    "providers": {"mock": {"type": "mock", "wire": "openai"}},
    "deployments": {
        "d": {"provider": "mock", "model": "mock-gpt", "timeouts": {"total": 600, "first_token": 600, "idle": 600}}
    },
    "routes": {"slow": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
}


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, WatchedClock]]:
    clock = WatchedClock()
    ledger = {"url": f"sqlite:///{tmp_path}/ledger.db", "spool_path": str(tmp_path / "ledger.spool")}
    with serve(create_app(build_config({**CONFIG, "ledger": ledger}), environ={}, clock=clock)) as url:
        yield url, clock


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> socket.socket:
    """Send a chat request on a raw socket (so the test decides when the connection closes)."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    sock = socket.create_connection((parts.hostname, parts.port), timeout=WAIT_S)
    data = orjson.dumps(body)
    head = [
        "POST /v1/chat/completions HTTP/1.1",
        f"host: {parts.hostname}",
        "content-type: application/json",
        f"content-length: {len(data)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    sock.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + data)
    return sock


def test_client_leaving_a_stream_cancels_the_upstream(gateway: tuple[str, WatchedClock], records: Records) -> None:
    """Closing the connection mid-stream cancels the mock's pending frame at once and logs the stream's request id."""
    url, clock = gateway
    body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    sock = _post(url, body, {"x-mock-fault": "token_delay=600000"})  # 10 minutes between frames
    received = b""
    while b"data: " not in received:  # the head and the first frame: the stream is under way
        chunk = sock.recv(65536)
        assert chunk, "the gateway closed the stream"
        received += chunk
    head = received.split(b"\r\n\r\n", 1)[0].decode().lower()
    rid = next(line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.startswith("x-request-id:"))
    assert clock.sleeping.wait(WAIT_S)
    sock.close()
    assert records.disconnected.wait(WAIT_S), "the handler was not cancelled"
    assert clock.cancelled.is_set()  # the upstream's sleep was cancelled before the handler ended
    assert [(r.getMessage(), r.request_id) for r in records.records] == [("client disconnected", rid)]  # type: ignore[attr-defined]


def test_client_leaving_a_plain_request_cancels_the_upstream(
    gateway: tuple[str, WatchedClock], records: Records
) -> None:
    """Closing the connection while a non-streaming request waits on its upstream cancels that wait at once."""
    url, clock = gateway
    body = {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}
    sock = _post(url, body, {"x-mock-fault": "latency=600000", "x-request-id": "leaver-1"})
    assert clock.sleeping.wait(WAIT_S)  # the mock is holding the answer back
    sock.close()
    assert records.disconnected.wait(WAIT_S), "the handler was not cancelled"
    assert clock.cancelled.is_set()
    assert [(r.getMessage(), r.request_id) for r in records.records] == [("client disconnected", "leaver-1")]  # type: ignore[attr-defined]


def test_gateway_serves_normally_after_a_disconnect(gateway: tuple[str, WatchedClock], records: Records) -> None:
    """After a client left mid-request, the next request on a new connection is answered in full."""
    url, clock = gateway
    sock = _post(
        url, {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}, {"x-mock-fault": "latency=600000"}
    )
    assert clock.sleeping.wait(WAIT_S)
    sock.close()
    assert records.disconnected.wait(WAIT_S)
    sock = _post(url, {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}, {"connection": "close"})
    with sock:
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    assert b'"finish_reason":"stop"' in answer


async def test_a_quick_answer_starts_no_watcher() -> None:
    """With the app's sweeper running, a handler that answers within the watch delay starts no watcher task."""
    inbox = [BODY]
    watched: list[bool] = []

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop()
        watched.append(True)
        return {"type": "http.disconnect"}

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message: dict[str, Any]) -> None:
        pass

    watch = DisconnectWatch(after_s=60)
    watch.start()
    try:
        sweeper = asyncio.all_tasks() - {asyncio.current_task()}
        await CancelOnDisconnect(handler, RequestIds(), errors.openai_error, watch)(scope(), receive, send)
        assert asyncio.all_tasks() - {asyncio.current_task()} == sweeper  # no watcher was started
        assert watched == []
    finally:
        await watch.stop()
