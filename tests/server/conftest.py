"""A real gateway on loopback (uvicorn + httptools + uvloop) in front of the mock provider.

Two kinds of route, one per upstream wire format each:
- ``mock``, ``mock-claude``, ``mock-gemini``: the mock in-process (``type: mock``);
- ``remote``, ``remote-claude``, ``remote-gemini``: ordinary ``openai`` / ``anthropic`` /
  ``gemini`` providers whose base URL is a real ``breakwater mock`` server on loopback, so the
  production path (aiohttp client, sockets, SSE over the wire) is exercised end to end.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from breakwater.core.config import build_config
from breakwater.infra.mock.app import create_mock_app
from breakwater.server.app import create_app
from tests.server.recording import RecordingUpstream
from tests.server.running import serve

#: the provider credential for remote routes; tests assert it never reaches a client
PLANTED_SECRET = "sk-planted-4f9c2e7a1b"


#: the SDK and wire tests inject one fault per request and check what the client sees, so these
#: routes make one attempt and their breakers never trip (tests/chaos covers those policies)
ONE_SHOT = {"retry": {"max_attempts": 1}}
NO_BREAKER = {"breaker": {"consecutive_failures": 1000000, "min_volume": 1000000, "cool_down_on_429": False}}


#: a price override on some mock deployments (USD per million tokens), for the ledger's cost
PRICE = {"input_per_mtok": "1.25", "output_per_mtok": "10", "cached_input_per_mtok": "0.125"}


def mock_config(remote_url: str) -> dict[str, Any]:
    config = {
        "server": {"max_body_bytes": 64 * 1024},
        "access": {"enabled": False},  # tests/server/test_access.py covers keys and limits
        "providers": {
            "mock-openai": {"type": "mock", "wire": "openai"},
            "mock-anthropic": {"type": "mock", "wire": "anthropic"},
            "mock-gemini": {"type": "mock", "wire": "gemini"},
            "mock-flaky": {"type": "mock", "wire": "openai", "faults": [{"fault": "reset_after=4"}]},
            "remote-openai": {
                "type": "openai", "host": "mock", "base_url": f"{remote_url}/v1", "api_key": "env:PLANTED_KEY",
            },
            "remote-anthropic": {"type": "anthropic", "host": "mock", "base_url": remote_url, "api_key": "env:PLANTED_KEY"},
            "remote-gemini": {"type": "gemini", "host": "mock", "base_url": remote_url, "api_key": "env:PLANTED_KEY"},
        },
        "deployments": {
            "d-openai": {"provider": "mock-openai", "model": "mock-gpt", "price": PRICE},
            "d-anthropic": {"provider": "mock-anthropic", "model": "mock-claude", "price": PRICE},
            "d-gemini": {"provider": "mock-gemini", "model": "mock-gemini"},
            "r-openai": {"provider": "remote-openai", "model": "mock-gpt", "price": PRICE},
            "r-anthropic": {"provider": "remote-anthropic", "model": "mock-claude"},
            "r-gemini": {"provider": "remote-gemini", "model": "mock-gemini"},
            "d-flaky": {"provider": "mock-flaky", "model": "mock-gpt"},
            "d-narrow": {"provider": "mock-openai", "model": "mock-gpt", "max_concurrency": 1, "max_queue": 0},
        },
        "routes": {
            "mock": {"deployments": ["d-openai"]},
            "mock-claude": {"deployments": ["d-anthropic"]},
            "mock-gemini": {"deployments": ["d-gemini"]},
            "mock-claude-lenient": {"deployments": ["d-anthropic"], "unsupported_params": "drop"},
            "remote": {"deployments": ["r-openai"]},
            "remote-claude": {"deployments": ["r-anthropic"]},
            "remote-gemini": {"deployments": ["r-gemini"]},
            "mock-narrow": {"deployments": ["d-narrow"]},
            "mock-resume": {"deployments": ["d-flaky", "d-openai"], "stream_failure": "continue"},
            "mock-captured": {"deployments": ["d-openai"], "capture": {"enabled": True}},
        },
    }  # fmt: skip
    for route in config["routes"].values():
        route.update(ONE_SHOT)
    for deployment in config["deployments"].values():
        deployment.update(NO_BREAKER)
    return config


ROUTES = ["mock", "mock-claude", "mock-gemini", "remote", "remote-claude", "remote-gemini"]


@pytest.fixture(scope="session")
def mock_server_url() -> Iterator[str]:
    """A `breakwater mock` server on loopback."""
    with serve(create_mock_app()) as url:
        yield url


@pytest.fixture(scope="session")
def ledger_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SQLite ledger of the session's gateway."""
    return tmp_path_factory.mktemp("ledger") / "ledger.db"


@pytest.fixture(scope="session")
def gateway_url(mock_server_url: str, ledger_path: Path) -> Iterator[str]:
    """Base URL (no /v1) of a gateway serving ``mock_config`` for the whole session."""
    config = mock_config(mock_server_url)
    config["ledger"] = {
        "url": f"sqlite:///{ledger_path}",
        "spool_path": str(ledger_path.with_suffix(".spool")),
        "flush_interval_s": 0.05,
    }
    app = create_app(build_config(config), environ={"PLANTED_KEY": PLANTED_SECRET})
    with serve(app) as url:
        yield url


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback HTTP server that keeps every JSON body POSTed to it."""
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[RecordingUpstream, str]]:
    """The recording mock on loopback (``tests/server/recording.py``), one per test module."""
    recorder = RecordingUpstream()
    with serve(recorder) as url:
        yield recorder, url
