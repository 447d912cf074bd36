"""A change made with ``breakwater keys ...`` reaches a running gateway within 1 s (no Redis).

The gateway is a real ``breakwater serve`` process over a SQLite key store in the test's
temporary directory; the CLI runs in-process against the same config, as another process's
connection to the file. The gateway's directory watches the file's ``data_version`` every
0.25 s, so the key must work, and stop working when revoked, within 1 s (plus a margin for
the polling requests on a loaded machine). Waits poll a condition against a deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml

from breakwater.cli.main import main
from breakwater.core.config import build_config
from breakwater.runtime.access import change_reach
from tests.cli.test_cli import _free_port, _wait_ready
from tests.polling import until

SECRET_VAR = "BW_LIVE_KEYS_HASH"
SECRET = "live-keys-test-hash-secret-0123456789"
#: what the gateway promises (a watch tick of 0.25 s, then one reload), and slack for the test's
#: own polling on a loaded two-core machine
PROMISE_S = 1.0
MARGIN_S = 0.25
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def config(tmp_path: Path) -> str:
    """A gateway config with access on, a SQLite key store and a ledger in ``tmp_path``, no Redis,
    and a version poll every 30 s."""
    data = {
        # the version poll far off: only the watch on the file can make the promise
        "access": {"store": f"sqlite:///{tmp_path}/keys.db", "hash_secret": f"env:{SECRET_VAR}", "reload_s": 30},
        "ledger": {"url": f"sqlite:///{tmp_path}/ledger.db", "spool_path": str(tmp_path / "ledger.spool")},
        "providers": {"m": {"type": "mock"}},
        "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
        "routes": {"mock": {"deployments": ["d"]}},
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


@pytest.fixture
def gateway(tmp_path: Path, config: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The base URL of a ``breakwater serve`` process on ``config``, ready (its keys loaded)."""
    monkeypatch.setenv(SECRET_VAR, SECRET)  # for the in-process CLI, and inherited by the gateway
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "breakwater", "serve", "--config", config, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def _status(url: str, key: str) -> int:
    r = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "mock", "messages": HI},
        headers={"authorization": f"Bearer {key}"},
        timeout=5,
    )
    return r.status_code


def _cli(capsys: pytest.CaptureFixture[str], config: str, *args: str) -> tuple[dict[str, object], str]:
    """(the JSON document ``breakwater <args>`` printed, its stderr), checking it exited 0."""
    capsys.readouterr()
    assert main([*args, "--config", config, "--format", "json"]) == 0
    out, err = capsys.readouterr()
    body: dict[str, object] = json.loads(out)
    return body, err


def test_a_key_made_with_the_cli_works_within_1_s_and_a_revoke_within_1_s(
    gateway: str, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A running gateway without Redis accepts a key ``keys create`` just made within 1 s, and
    refuses it within 1 s of ``keys revoke``; each command says so on stderr."""
    made, err = _cli(capsys, config, "keys", "create", "--name", "live")
    written = time.monotonic()
    assert "Running gateways using this key store pick this up within 1 s." in err
    key = str(made["key"])
    until(lambda: _status(gateway, key) == 200, PROMISE_S + MARGIN_S, "the gateway accepts the new key")
    assert time.monotonic() - written <= PROMISE_S + MARGIN_S

    _, err = _cli(capsys, config, "keys", "revoke", str(made["id"]))
    written = time.monotonic()
    assert "within 1 s" in err
    until(lambda: _status(gateway, key) == 401, PROMISE_S + MARGIN_S, "the gateway refuses the revoked key")
    assert time.monotonic() - written <= PROMISE_S + MARGIN_S


def test_reads_say_nothing_about_running_gateways(
    config: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only commands that change the store tell when gateways see the change; a listing does not."""
    monkeypatch.setenv(SECRET_VAR, SECRET)
    _, err = _cli(capsys, config, "keys", "create")
    assert "Running gateways" in err
    _, err = _cli(capsys, config, "keys", "list")
    assert "Running gateways" not in err


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"access": {"store": "sqlite:///keys.db"}}, "within 1 s."),
        ({"access": {"store": "postgresql://bw@db/bw", "hash_secret": "env:X"}}, "within 1 s (access.reload_s;"),
        (
            {"access": {"store": "postgresql://bw@db/bw", "hash_secret": "env:X", "reload_s": 3}},
            "within 3 s (access.reload_s;",
        ),
        (
            {"access": {"store": "postgresql://bw@db/bw", "hash_secret": "env:X"}, "redis": {"url": "redis://r:6379"}},
            "at once (announced on Redis pub/sub).",
        ),
    ],
)
def test_the_cli_says_when_gateways_see_a_change(settings: dict[str, object], said: str) -> None:
    """SQLite without Redis: within 1 s; PostgreSQL without Redis: within access.reload_s; with Redis: at once."""
    config = build_config(
        {
            "providers": {"m": {"type": "mock"}},
            "deployments": {"d": {"provider": "m", "model": "x"}},
            "routes": {"r": {"deployments": ["d"]}},
            **settings,
        }
    )
    note = change_reach(config, {})
    assert note.startswith("Running gateways using this key store pick this up ")
    assert said in note
