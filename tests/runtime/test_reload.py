"""Reloading the configuration of a running gateway: ``POST /admin/reload`` and SIGHUP.

A real gateway on loopback (uvicorn in a thread, or ``breakwater serve`` for SIGHUP) reads its
config file; the tests rewrite the file and reload. Waits poll a condition against a deadline.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from breakwater.runtime.loading import load_config
from breakwater.server.app import BreakwaterApp, create_app
from tests.cli.test_cli import _free_port, _spawn, _wait_ready
from tests.polling import until
from tests.server.running import serve

ADMIN = "admin-key-for-reload-tests"
HI = [{"role": "user", "content": "hi"}]  # the mock answers "hi" in 8 stream frames


def _write(path: Path, *, extra_route: str | None = None, b_timeout: float = 600, broken: bool = False) -> None:
    routes = "routes:\n  r: {deployments: [a, b], strategy: ordered, retry: {max_attempts: 2}}\n"
    if extra_route:
        routes += f"  {extra_route}: {{deployments: [a], retry: {{max_attempts: 1}}}}\n"
    if broken:
        routes += "  bad: {deployments: [nowhere]}\n"
    path.write_text(
        "server: {admin_key: 'env:ADMIN_KEY'}\n"
        "access: {enabled: false}\n"
        f"ledger: {{url: 'sqlite:///{path.parent}/ledger.db', spool_path: '{path.parent}/ledger.spool', "
        "flush_interval_s: 0.05}\n"
        "providers:\n  m: {type: mock, wire: openai}\n"
        "deployments:\n"
        "  a: {provider: m, model: mock-gpt, timeouts: {total: 600, first_token: 600, idle: 600}}\n"
        f"  b: {{provider: m, model: mock-gpt, timeouts: {{total: {b_timeout}, first_token: 600, idle: 600}}}}\n"
        + routes
    )


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    _write(path)
    return path


@pytest.fixture
def gateway(config_file: Path) -> Iterator[tuple[str, BreakwaterApp]]:
    env = {"ADMIN_KEY": ADMIN}
    app = create_app(load_config(str(config_file), env), environ=env, config_path=str(config_file))
    with serve(app) as url:
        yield url, app


def _reload(url: str, key: str | None = ADMIN) -> httpx.Response:
    headers = {} if key is None else {"authorization": f"Bearer {key}"}
    return httpx.post(f"{url}/admin/reload", headers=headers, timeout=10)


def _readyz(url: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{url}/readyz", timeout=5).json()
    return body


def _deployments(url: str) -> dict[str, dict[str, Any]]:
    r = httpx.get(f"{url}/admin/deployments", headers={"authorization": f"Bearer {ADMIN}"}, timeout=5)
    return {row["name"]: row for row in r.json()["data"]}


def _chat(url: str, model: str = "r", **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json={"model": model, "messages": HI}, headers=headers, timeout=10)


def test_reload_swaps_the_config_and_keeps_state_of_unchanged_deployments(
    gateway: tuple[str, BreakwaterApp], config_file: Path
) -> None:
    url, app = gateway
    before = _readyz(url)
    assert before["config"]["reloads"] == 0
    # deployment a answers a; a 500 from a sends one attempt to b (ordered route, fallback)
    assert _chat(url).status_code == 200
    assert _chat(url, **{"x-mock-fault": "status=500"}).status_code in (200, 502, 503)
    used = _deployments(url)
    assert used["a"]["attempts"] >= 2 and "b" in used

    _write(config_file, extra_route="fresh", b_timeout=300)  # b changes, a does not; a new route
    r = _reload(url)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "reloaded"
    # nothing but routes and deployments changed: keys, limits, ledger, tracer, alerts are kept
    assert sorted(body["kept"]) == ["access", "alerts", "batches", "cache", "ledger", "responses", "tracer"]
    after = _readyz(url)
    assert after["config"] == {"hash": body["config"]["hash"], "reloads": 1, "version": None}
    assert after["config"]["hash"] != before["config"]["hash"]
    assert "fresh" in after["routes"]

    now = _deployments(url)
    assert now["a"]["attempts"] == used["a"]["attempts"]  # carried over
    assert "b" not in now  # changed: starts afresh
    assert _chat(url, model="fresh").status_code == 200
    assert app.runtime.config.routes.keys() >= {"r", "fresh"}


def test_an_invalid_config_is_refused_and_the_running_one_stays(
    gateway: tuple[str, BreakwaterApp], config_file: Path
) -> None:
    url, _ = gateway
    before = _readyz(url)["config"]
    _write(config_file, broken=True)
    r = _reload(url)
    assert r.status_code == 400
    error = r.json()["error"]
    assert "not reloaded" in error["message"]
    assert any(p["path"] == "routes.bad.deployments" or "nowhere" in p["message"] for p in error["problems"])
    assert _readyz(url)["config"] == before
    assert _chat(url).status_code == 200

    config_file.write_text("routes: [unclosed\n")
    r = _reload(url)
    assert r.status_code == 400 and r.json()["error"]["problems"]
    assert _readyz(url)["config"] == before


def test_reload_needs_the_admin_key(gateway: tuple[str, BreakwaterApp]) -> None:
    url, _ = gateway
    assert _reload(url, key=None).status_code == 401
    assert _reload(url, key="wrong").status_code == 401
    assert _readyz(url)["config"]["reloads"] == 0


class _Streams:
    """``n`` streaming chat requests read to their end on threads."""

    def __init__(self, url: str, n: int, token_delay_ms: int) -> None:
        self.results: list[tuple[int, str] | BaseException] = []
        self.started = threading.Semaphore(0)
        self._lock = threading.Lock()
        body = {"model": "r", "stream": True, "messages": HI}
        headers = {"x-mock-fault": f"token_delay={token_delay_ms}"}
        self.threads = [threading.Thread(target=self._read, args=(url, body, headers), daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def _read(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        text, first = "", True
        try:
            with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers, timeout=60) as r:
                for chunk in r.iter_text():
                    text += chunk
                    if first and "data: " in text:
                        first = False
                        self.started.release()
                result: tuple[int, str] | BaseException = (r.status_code, text)
        except BaseException as exc:
            result = exc
        if first:
            self.started.release()
        with self._lock:
            self.results.append(result)

    def join(self) -> None:
        for t in self.threads:
            t.join(60)


def test_reloads_under_load_lose_no_request_and_cut_no_stream(
    gateway: tuple[str, BreakwaterApp], config_file: Path
) -> None:
    """Ten streams in flight (c=10) and plain requests meanwhile, across five reloads: every
    stream ends with [DONE], every request is answered 200, and the ledger has a row for each."""
    url, app = gateway
    streams = _Streams(url, 10, token_delay_ms=150)  # 7 pauses: about 1 s per stream
    for _ in range(10):
        assert streams.started.acquire(timeout=20)  # every stream has sent its first frame
    plain: list[int] = []
    for i in range(5):
        _write(config_file, extra_route=f"extra{i}", b_timeout=600 - i)
        r = _reload(url)
        assert r.status_code == 200, r.text
        plain.append(_chat(url).status_code)
    streams.join()
    assert len(streams.results) == 10
    for result in streams.results:
        assert not isinstance(result, BaseException), result
        status, text = result
        assert status == 200
        assert text.rstrip().endswith("data: [DONE]"), text[-200:]
        assert '"error"' not in text
    assert plain == [200] * 5
    assert _readyz(url)["config"]["reloads"] == 5

    ledger = config_file.parent / "ledger.db"

    def rows() -> int:
        try:
            with sqlite3.connect(ledger) as db:
                return int(db.execute("select count(*) from breakwater_ledger").fetchone()[0])
        except sqlite3.OperationalError:
            return 0

    until(lambda: rows() == 15, 10, "the ledger holds a row for each of the 15 requests")
    # each replaced configuration stopped once its last stream had ended
    until(lambda: app.runtimes.retiring == 0, 10, "the replaced runtimes have stopped")


def test_sighup_reloads_the_config_file(tmp_path: Path) -> None:
    """``kill -HUP`` on ``breakwater serve``: a good file is picked up, a bad one is refused and
    logged while the running config stays."""
    config = tmp_path / "gateway.yaml"
    _write(config)
    port = _free_port()
    env = {"ADMIN_KEY": ADMIN, **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}}
    proc = _spawn("serve", "--config", str(config), "--port", str(port), env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        first = _readyz(url)["config"]["hash"]
        _write(config, extra_route="added")
        proc.send_signal(signal.SIGHUP)
        until(lambda: "added" in _readyz(url)["routes"], 10, "SIGHUP reloads the config file")
        assert _readyz(url)["config"]["reloads"] == 1
        assert _readyz(url)["config"]["hash"] != first
        assert _chat(url, model="added").status_code == 200

        _write(config, broken=True)
        proc.send_signal(signal.SIGHUP)
        assert _chat(url, model="added").status_code == 200
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        assert "was not reloaded" in stderr
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=20)
