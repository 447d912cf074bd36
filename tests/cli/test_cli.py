"""The ``breakwater`` command: version, check-config, and serve on the embedded default."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from breakwater import __version__
from breakwater.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`breakwater version` prints the package version."""
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"breakwater {__version__}"


def test_python_dash_m(tmp_path: Path) -> None:
    """`python -m breakwater version` is the same command."""
    out = subprocess.run(
        [sys.executable, "-m", "breakwater", "version"], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == f"breakwater {__version__}"


def test_check_config_ok(capsys: pytest.CaptureFixture[str]) -> None:
    """check-config on a valid file exits 0 and summarises it."""
    assert main(["check-config", str(ROOT / "examples" / "mock.yaml")]) == 0
    assert "OK" in capsys.readouterr().out


def test_check_config_reports_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check-config on a bad file exits 1 and prints each problem with its key path."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "providers:\n  p: {type: openai, base_url: 'http://x/v1', api_key: sk-inline}\nroutes:\n  r: {deployments: [nope]}\n"
    )
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "providers.p.api_key: must be a reference" in err
    assert "routes.r.deployments[0]: unknown deployment 'nope'" in err
    assert "sk-inline" not in err


def test_check_config_resolves_access_references(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Unset hash secret, store and Redis references are reported by key path, before serving."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "access: {store: 'env:BW_NO_STORE', hash_secret: 'env:BW_NO_SECRET'}\n"
        "redis: {url: 'env:BW_NO_REDIS'}\nlimits: {backend: redis}\n"
        "providers:\n  m: {type: mock}\ndeployments:\n  d: {provider: m, model: x}\nroutes:\n  r: {deployments: [d]}\n"
    )
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    for path in ("access.hash_secret", "access.store", "redis.url"):
        assert f"{path}: environment variable" in err


def test_serve_refuses_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """serve refuses a bad config with the same messages as check-config."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("routes:\n  r: {deployments: [nope]}\n")
    assert main(["serve", "--config", str(bad)]) == 1
    assert "routes.r.deployments[0]: unknown deployment 'nope'" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m breakwater ARGS``, output piped as text; provider API keys are left out of its
    environment (``env`` replaces that environment, already filtered by the caller).

    It runs in the test's current directory, its ``tmp_path`` (``tests/write_guard.py``): a
    relative default such as the embedded default's ledger lands there, never in the checkout.
    """
    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    cwd = Path.cwd()
    assert not cwd.is_relative_to(ROOT), f"a breakwater process must not run in the checkout ({cwd})"
    return subprocess.Popen(
        [sys.executable, "-m", "breakwater", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )


def _wait_ready(url: str, proc: subprocess.Popen[str], limit_s: float = 20.0, path: str = "/readyz") -> None:
    """Poll ``path`` until it answers 200; fail if the process exits or the limit passes."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited early: {proc.communicate()}")
        try:
            if httpx.get(f"{url}{path}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling a condition with a deadline, not a fixed wait
    pytest.fail("server did not become ready")


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_embedded_default(workers: int, tmp_path: Path) -> None:
    """`breakwater serve` with no config prints its address and routes, warns that access control is
    off (stdout, log, /readyz), answers model "mock" at once and keeps its ledger in the current
    directory."""
    port = _free_port()
    proc = _spawn("serve", "--port", str(port), "--workers", str(workers))
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        r = httpx.post(
            f"{url}/v1/chat/completions", json={"model": "mock", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert r.status_code == 200
        assert r.json()["choices"][0]["message"]["content"]
        ready = httpx.get(f"{url}/readyz").json()
        assert ready["access"] == "off" and "access control is off" in ready["warnings"][0]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert f"listening on http://127.0.0.1:{port}" in out
    assert "route mock" in out
    # the quick start has no keys, and says so loudly: on stdout and in each worker's log
    assert "WARNING: access control is off" in out
    assert "ACCESS CONTROL IS OFF" in err
    assert (tmp_path / "breakwater-ledger.db").exists()  # the current directory, the test's own


def test_mock_command_serves_all_wire_formats(tmp_path: Path) -> None:
    """`breakwater mock` serves OpenAI, Anthropic and Gemini requests, and applies a faults file."""
    faults = tmp_path / "faults.yaml"
    faults.write_text("- {fault: 'status=503', paths: ['/v1/embeddings']}\n")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "breakwater", "mock", "--port", str(port), "--faults", str(faults)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    hi = [{"role": "user", "content": "hi"}]
    try:
        _wait_ready(url, proc, path="/healthz")
        assert httpx.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": hi}).status_code == 200
        assert httpx.post(f"{url}/v1/messages", json={"model": "m", "max_tokens": 9, "messages": hi}).status_code == 200
        gemini = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        assert httpx.post(f"{url}/v1beta/models/m:generateContent", json=gemini).status_code == 200
        assert httpx.post(f"{url}/v1/embeddings", json={"model": "m", "input": "x"}).status_code == 503
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert f"listening on http://127.0.0.1:{port}" in out


def test_mock_command_refuses_bad_faults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`breakwater mock` refuses a faults file with an invalid rule and says which."""
    faults = tmp_path / "faults.yaml"
    faults.write_text("- {fault: 'status=503', rate: 1.5}\n")
    assert main(["mock", "--faults", str(faults)]) == 1
    assert "rate" in capsys.readouterr().err


def test_the_gateway_loads_no_optional_heavy_package_unless_configured() -> None:
    """numpy, scikit-learn, matplotlib, wordllama, jsonschema and botocore are imported only by the
    features that use them (a semantic route, a learned router, `router train`, a schema check, a
    Bedrock provider): a plain
    `breakwater` process does not pay their memory and start-up time (the RSS and start-up targets)."""
    code = (
        "import sys, breakwater.cli.main, breakwater.server.app, breakwater.runtime.runtime\n"
        "heavy = ('numpy', 'sklearn', 'matplotlib', 'wordllama', 'jsonschema', 'botocore')\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
