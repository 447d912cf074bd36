"""``breakwater config ...`` against a store, and two ``breakwater serve --config-store``
processes converging on a version applied from the command line.

The commands run in-process (``main([...])``); the gateways are real processes. Waits poll a
condition against a deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import httpx2 as httpx
import pytest

from breakwater.cli.main import main
from tests.cli.test_cli import _free_port, _spawn, _wait_ready
from tests.conftest import require_service
from tests.polling import until
from tests.runtime.test_reload import _write

PG = "postgresql://postgres@127.0.0.1:5432/test"


def _file(tmp: Path, name: str, **changes: object) -> Path:
    path = tmp / name
    _write(path, **changes)  # type: ignore[arg-type]
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["config", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_apply_history_show_diff_and_rollback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ["--store", f"sqlite:///{tmp_path}/keys.db"]
    env_check = ["--no-env-check"]  # the files name env:ADMIN_KEY, not set here
    one, two = _file(tmp_path, "one.yaml"), _file(tmp_path, "two.yaml", extra_route="fresh")

    code, out, _ = _run(capsys, "apply", str(one), "-m", "first", *store, *env_check)
    assert code == 0 and out.startswith("applied version 1 (")
    assert "within 0.25 s (SQLite)" in out
    code, out, _ = _run(capsys, "apply", str(one), "-m", "again", *store, *env_check)
    assert (code, out) == (0, "unchanged: version 1 holds this text already\n")
    code, out, _ = _run(capsys, "apply", str(two), "-m", "add fresh", "--author", "ci", *store, *env_check, "--json")
    applied = json.loads(out)
    assert (applied["number"], applied["author"], applied["message"], applied["created"]) == (
        2,
        "ci",
        "add fresh",
        True,
    )

    code, out, _ = _run(capsys, "history", *store)
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:2] == ["version", "when"]
    assert lines[1].split()[0] == "2" and "add fresh" in lines[1]
    assert lines[2].split()[0] == "1" and "first" in lines[2]

    code, out, _ = _run(capsys, "show", "1", *store)
    assert (code, out) == (0, one.read_text())
    code, out, _ = _run(capsys, "diff", "1", *store)
    assert code == 0 and "--- version 1" in out and "+++ version 2" in out and "+  fresh:" in out

    code, out, _ = _run(capsys, "rollback", "-m", "fresh broke search", *store, *env_check)
    assert code == 0 and out.startswith("applied version 3 (")
    code, out, _ = _run(capsys, "history", "--json", *store)
    newest = json.loads(out)[0]
    assert (newest["number"], newest["action"], newest["message"]) == (3, "rollback", "fresh broke search")
    code, out, _ = _run(capsys, "show", *store)
    assert out == one.read_text()

    # refusals: exit 1 with the reason; nothing stored
    bad = _file(tmp_path, "bad.yaml", broken=True)
    code, _, err = _run(capsys, "apply", str(bad), "-m", "bad", *store, *env_check)
    assert code == 1 and "nowhere" in err
    code, _, err = _run(capsys, "apply", str(two), "-m", "env", *store)
    assert code == 1 and "ADMIN_KEY" in err  # the environment check, on by default
    code, _, err = _run(capsys, "apply", str(two), "-m", "stale", "--expect", "1", *store, *env_check)
    assert code == 1 and "was applied since version 1" in err
    code, _, err = _run(capsys, "show", "9", *store)
    assert code == 1 and "no version 9" in err
    code, _, err = _run(capsys, "rollback", "3", *store, *env_check)
    assert code == 1 and "newest already" in err
    code, _, err = _run(capsys, "apply", str(tmp_path / "missing.yaml"), "-m", "x", *store)
    assert code == 1 and "cannot read" in err
    code, out, _ = _run(capsys, "history", "--json", *store)
    assert [v["number"] for v in json.loads(out)] == [3, 2, 1]


def test_a_store_must_be_named(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BREAKWATER_CONFIG_STORE", raising=False)
    code, _, err = _run(capsys, "history")
    assert code == 2 and "--store" in err
    code, _, err = _run(capsys, "history", "--store", "mysql://nope")
    assert code == 1 and "sqlite:///" in err


def test_two_gateways_converge_on_an_applied_version(
    tmp_path: Path, pg_schema: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = f"{PG}?search_path={pg_schema}"
    """Two replicas run from one PostgreSQL store and hear of new versions on Redis: polling is
    set to 60 s, so converging within seconds is pub/sub's doing."""
    require_service("Redis", "127.0.0.1", 6379)
    namespace = f"bwtest-{uuid.uuid4().hex[:8]}:"

    def config(**changes: object) -> Path:
        path = _file(tmp_path, f"v{len(list(tmp_path.glob('v*.yaml')))}.yaml", **changes)
        text = path.read_text().replace("access: {enabled: false}", "access: {enabled: false, reload_s: 60}")
        path.write_text(text + f"redis: {{url: 'redis://127.0.0.1:6379', namespace: '{namespace}'}}\n")
        return path

    env = {
        "ADMIN_KEY": "admin-key-for-reload-tests",
        **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
    }
    monkeypatch.setenv("ADMIN_KEY", env["ADMIN_KEY"])  # the commands check the environment too
    gateways: list[tuple[str, subprocess.Popen[str]]] = []
    try:
        assert _run(capsys, "apply", str(config()), "-m", "first", "--store", store)[0] == 0
        for _ in range(2):
            port = _free_port()
            proc = _spawn("serve", "--config-store", store, "--port", str(port), env=env)
            gateways.append((f"http://127.0.0.1:{port}", proc))
        for url, proc in gateways:
            _wait_ready(url, proc, limit_s=60)
            assert httpx.get(f"{url}/readyz", timeout=5).json()["config"]["version"] == 1

        code, out, _ = _run(capsys, "apply", str(config(extra_route="fresh")), "-m", "add fresh", "--store", store)
        assert code == 0 and "at once (announced on Redis pub/sub)" in out
        for url, _ in gateways:
            until(
                lambda url=url: httpx.get(f"{url}/readyz", timeout=5).json()["config"]["version"] == 2,
                10,
                f"{url} runs version 2",
            )
        for url, _ in gateways:
            r = httpx.post(
                f"{url}/v1/chat/completions",
                json={"model": "fresh", "messages": [{"role": "user", "content": "hi"}]},
                timeout=10,
            )
            assert r.status_code == 200
            assert "breakwater_config_version 2.0" in httpx.get(f"{url}/metrics", timeout=5).text
    finally:
        for _, proc in gateways:
            proc.terminate()
            proc.communicate(timeout=30)
