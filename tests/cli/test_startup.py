"""``breakwater serve`` and ``breakwater mock`` starting up: what they print, and where.

A port that is taken is one clear line and exit status 1, before any "listening" line; every
worker logs the same JSON lines at the chosen level, uvicorn's own warnings included; the
"access control is off" warning is printed once on stdout (and logged once per worker); the
embedded default's mock is free, so it warns about no price. Each process runs with its
working directory in the test's temporary directory (the embedded default's ledger goes there).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.cli.test_cli import _free_port, _spawn, _wait_ready

HI = [{"role": "user", "content": "hi"}]


def _start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    """``python -m breakwater ARGS`` (in the test's directory, ``cwd``), without provider API keys
    and with its temporary files, the metrics directory of --workers N too, under ``cwd``."""
    assert Path.cwd() == cwd
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env["TMPDIR"] = str(cwd)
    return _spawn(*args, env=env)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another socket is listening on for the whole test."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.mark.parametrize(
    ("command", "prefix"),
    [
        (["serve", "--workers", "1"], "breakwater"),
        (["serve", "--workers", "2"], "breakwater"),
        (["mock"], "breakwater mock"),
    ],
)
def test_a_port_in_use_is_one_clear_line_and_exit_1(
    tmp_path: Path, busy_port: int, command: list[str], prefix: str
) -> None:
    """With the port taken, the command prints exactly one line saying so on stderr, nothing on
    stdout (no "listening" line) and exits 1."""
    proc = _start(tmp_path, *command, "--port", str(busy_port))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert out == ""
    assert err == (
        f"{prefix}: cannot listen on 127.0.0.1:{busy_port}: address already in use "
        "(another process has it; choose --port)\n"
    )


def _json_lines(err: str) -> list[dict[str, object]]:
    """Every line of stderr, each parsed as one JSON object (fails on any line that is not)."""
    lines = []
    for line in err.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"a log line is not JSON: {line!r}")
        assert isinstance(record, dict)
        lines.append(record)
    return lines


@pytest.mark.parametrize("workers", [1, 2])
def test_every_worker_logs_json_and_the_access_warning_is_printed_once(tmp_path: Path, workers: int) -> None:
    """On the embedded default, stdout warns once that access control is off; stderr is JSON lines
    only, at the chosen level, from every worker (each logs the warning once, and logs stopping
    at SIGTERM), with uvicorn's own warning about a malformed request in the same format; and no
    worker warns about a missing price (the mock is free)."""
    port = _free_port()
    proc = _start(tmp_path, "serve", "--port", str(port), "--workers", str(workers), "--log-level", "info")
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        for _ in range(4):  # new connections, so with two workers both are likely to answer one
            r = httpx.post(
                f"{url}/v1/chat/completions", json={"model": "mock", "messages": HI}, headers={"connection": "close"}
            )
            assert r.status_code == 200
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"NOT HTTP\r\n\r\n")
            assert raw.recv(1024).startswith(b"HTTP/1.1 400")
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert out.count("access control is off") == 1
    assert out.startswith("Breakwater ")
    records = _json_lines(err)
    messages = [str(r["msg"]) for r in records]
    assert sum("ACCESS CONTROL IS OFF" in m for m in messages) == workers
    assert sum(m.startswith("stopping: readiness is false") for m in messages) == workers  # INFO, from each
    assert {(r["logger"], r["msg"]) for r in records if r["logger"] == "uvicorn.error"} == {
        ("uvicorn.error", "Invalid HTTP request received.")
    }
    assert not [m for m in messages if "price" in m]


def test_the_listening_line_names_the_port_the_kernel_chose(tmp_path: Path) -> None:
    """``--port 0`` binds a free port, and the "listening" line (printed after binding) names it."""
    proc = _start(tmp_path, "mock", "--port", "0")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        prefix = "Breakwater mock provider listening on http://127.0.0.1:"
        assert line.startswith(prefix), line
        port = int(line.removeprefix(prefix).split(" ")[0])
        assert port > 0
        _wait_ready(f"http://127.0.0.1:{port}", proc, path="/healthz")
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert proc.returncode == 0
