"""``create_mock_app``: the raw ASGI shell, in-memory and on a real loopback uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, MutableMapping
from typing import Any

import httpx2
import orjson
import pytest

from breakwater.infra.clock import SystemRandom
from breakwater.infra.mock.app import create_mock_app
from breakwater.infra.mock.faults import ConnectionReset
from tests.infra.mock.harness import FakeClock
from tests.server.running import serve

CHAT = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})


async def run(app: Any, scope: dict[str, Any], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drive an ASGI app with the given inbound messages; return what it sent."""
    inbox = iter(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        for message in inbox:
            return message
        await asyncio.Event().wait()  # like a server: nothing more until the client disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def http_scope(path: str = "/v1/chat/completions", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "query_string": b"", "headers": headers or []}


async def test_lifespan() -> None:
    """The app answers lifespan startup and shutdown, so servers with lifespan on start cleanly."""
    sent = await run(
        create_mock_app(), {"type": "lifespan"}, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    )
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_body_in_pieces_and_content_length() -> None:
    """A body sent in several messages is reassembled; a whole reply carries its content-length."""
    parts: list[dict[str, Any]] = [
        {"type": "http.request", "body": CHAT[:10], "more_body": True},
        {"type": "http.request", "body": CHAT[10:]},
    ]
    start, body = await run(create_mock_app(), http_scope(), parts)
    headers = dict(start["headers"])
    assert start["status"] == 200 and int(headers[b"content-length"]) == len(body["body"])
    assert orjson.loads(body["body"])["object"] == "chat.completion"


async def test_stream_sent_chunk_by_chunk() -> None:
    """A stream goes out as one body message per frame with more_body, then an empty final one."""
    body = orjson.dumps({**orjson.loads(CHAT), "stream": True})
    sent = await run(create_mock_app(), http_scope(), [{"type": "http.request", "body": body}])
    bodies = sent[1:]
    assert all(m["more_body"] for m in bodies[:-1]) and bodies[-1] == {"type": "http.response.body", "body": b""}
    assert bodies[-2]["body"] == b"data: [DONE]\n\n"


async def test_fault_header_and_injected_clock() -> None:
    """The app reads x-mock-fault from the raw headers and sleeps on the clock it was given."""
    clock = FakeClock()
    app = create_mock_app(clock=clock, rng=SystemRandom(1))
    scope = http_scope(headers=[(b"x-mock-fault", b"status=503,latency=40")])
    start, _ = await run(app, scope, [{"type": "http.request", "body": CHAT}])
    assert start["status"] == 503 and clock.sleeps == [0.04]


async def test_reset_sends_a_head_then_raises() -> None:
    """A reset sends a response head (so the server cannot substitute a 500) and then raises."""
    scope = http_scope(headers=[(b"x-mock-fault", b"reset")])
    sent: list[MutableMapping[str, Any]] = []
    inbox = iter([{"type": "http.request", "body": CHAT}])

    async def receive() -> dict[str, Any]:
        for message in inbox:
            return message
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    with pytest.raises(ConnectionReset):
        await create_mock_app()(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start"]


class HangingClock(FakeClock):
    """A clock whose sleeps never end by themselves; records whether one was cancelled."""

    cancelled = False

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


@pytest.mark.parametrize("fault", ["timeout", "latency=60000"])
async def test_client_disconnect_cancels_a_hanging_fault(fault: str) -> None:
    """When the client leaves during a long fault, the request's work is cancelled, not left sleeping."""
    clock = HangingClock()
    app = create_mock_app(clock=clock)
    messages = [{"type": "http.request", "body": CHAT}, {"type": "http.disconnect"}]
    sent = await asyncio.wait_for(run(app, http_scope(headers=[(b"x-mock-fault", fault.encode())]), messages), 5)
    assert sent == [] and clock.cancelled


def test_invalid_schedule_is_refused() -> None:
    """An invalid fault schedule fails at app creation with every problem listed."""
    with pytest.raises(ValueError, match=r"faults\[0\]\.rate"):
        create_mock_app([{"fault": "status=503", "rate": 3}])


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with serve(create_mock_app()) as url:
        yield url


def test_real_server_round_trip(mock_url: str) -> None:
    """Over real HTTP (uvicorn, httptools, uvloop) the mock answers chats, streams and health checks."""
    assert httpx2.get(f"{mock_url}/healthz").json() == {"status": "ok"}
    r = httpx2.post(f"{mock_url}/v1/chat/completions", content=CHAT, headers={"authorization": "Bearer x"})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
    with httpx2.stream(
        "POST", f"{mock_url}/v1/chat/completions", content=orjson.dumps({**orjson.loads(CHAT), "stream": True})
    ) as s:
        text = b"".join(s.iter_bytes())
    assert text.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize("fault", ["reset", "reset_after=2"])
def test_real_server_drops_the_connection(mock_url: str, fault: str) -> None:
    """On a real server, reset faults drop the connection: the client sees a protocol error, not a reply."""
    body = orjson.dumps({**orjson.loads(CHAT), "stream": True})
    with (
        pytest.raises(httpx2.RemoteProtocolError),
        httpx2.stream("POST", f"{mock_url}/v1/chat/completions", content=body, headers={"x-mock-fault": fault}) as s,
    ):
        b"".join(s.iter_bytes())
