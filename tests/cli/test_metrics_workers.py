"""``breakwater serve --workers 2``: every scrape of /metrics counts the requests of all workers.

Requests and scrapes each go on a new connection, so the kernel spreads them over both worker
processes; the request counters live in prometheus-client's multiprocess files, so whichever
worker answers a scrape reports the same total. Waits poll a condition against a deadline.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx2 as httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.test_cli import _free_port, _spawn, _wait_ready

N = 40
HI = [{"role": "user", "content": "hi"}]


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"ledger: {{url: 'sqlite:///{tmp_path}/ledger.db', spool_path: '{tmp_path}/ledger.spool'}}\n"
        "access: {enabled: false}\n"
        "providers:\n  m: {type: mock, wire: openai}\n"
        "deployments:\n  d: {provider: m, model: mock-gpt}\n"
        "routes:\n  fast: {deployments: [d], retry: {max_attempts: 1}}\n"
    )
    return path


def _metrics_dirs(temp: Path) -> list[Path]:
    return [p for p in temp.iterdir() if p.name.startswith("breakwater-metrics-")]


def _scrape(url: str) -> tuple[float, float]:
    """(all workers' ``breakwater_requests_total`` for route ``fast``, the answering worker's upstream
    attempts), scraped on a new connection."""
    r = httpx.get(f"{url}/metrics", headers={"connection": "close"}, timeout=10)
    assert r.status_code == 200
    total = attempts = 0.0
    for family in text_string_to_metric_families(r.text):
        if family.name == "breakwater_requests":
            total += sum(s.value for s in family.samples if s.name.endswith("_total") and s.labels["route"] == "fast")
        elif family.name == "breakwater_upstream_attempts":
            attempts += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total, attempts


def test_two_workers_report_one_total(tmp_path: Path) -> None:
    """After 40 requests over two workers, five scrapes in a row each report exactly 40; SIGTERM exits 0
    and removes the metrics directory the CLI made."""
    port = _free_port()
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env["TMPDIR"] = str(temp)
    args = ["serve", "--config", str(_config(tmp_path)), "--port", str(port), "--workers", "2"]
    proc = _spawn(*args, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        assert _metrics_dirs(temp)  # made before the workers started
        for _ in range(N):
            r = httpx.post(
                f"{url}/v1/chat/completions",
                json={"model": "fast", "messages": HI},
                headers={"connection": "close"},
                timeout=10,
            )
            assert r.status_code == 200
        # a request is counted just after its last byte went out: wait for the last one
        deadline = time.monotonic() + 10
        while (seen := _scrape(url)[0]) != N:
            assert seen < N
            assert time.monotonic() < deadline, f"metrics show {seen} requests, not {N}"
            time.sleep(0.02)  # polling a condition with a deadline, not a fixed wait
        scrapes = [_scrape(url) for _ in range(5)]
        assert [total for total, _ in scrapes] == [N] * 5
        # the live-state counters are per worker: fewer than N shows another worker served the rest
        assert any(attempts < N for _, attempts in scrapes), scrapes

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert _metrics_dirs(temp) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=20)
    assert "Traceback" not in err
