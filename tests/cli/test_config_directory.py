"""Relative paths in a config file are relative to the file's directory, wherever a command runs.

The config here sits in ``acc/`` and leaves the key store, its hash secret, the ledger and the
spool at their relative defaults. ``breakwater serve`` run from one directory and the commands run
from another (the config's parent, with ``--config acc/gateway.yaml``) find the same files beside
the config; a command that only reads never creates a store or a secret.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml

from breakwater.cli.main import main
from tests.cli.test_cli import _free_port, _spawn, _wait_ready

CONFIG = {
    "providers": {"m": {"type": "mock"}},
    "deployments": {"d": {"provider": "m", "model": "mock-gpt"}},
    "routes": {"chat": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
}
READ_ONLY = [
    ["keys", "list"],
    ["keys", "show", "key_nope"],
    ["teams", "list"],
    ["teams", "show", "t1"],
    ["limits", "list"],
    ["audit"],
]


@pytest.fixture
def parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory, holding ``acc/gateway.yaml`` and nothing else."""
    (tmp_path / "acc").mkdir()
    (tmp_path / "acc" / "gateway.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """stdout of ``breakwater ARGS --config acc/gateway.yaml``, which must exit 0."""
    capsys.readouterr()
    status = main([*args, "--config", "acc/gateway.yaml"])
    out, err = capsys.readouterr()
    assert status == 0, err
    return out


def test_serve_and_the_commands_use_the_files_beside_the_config(
    parent: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key made from the config's parent directory authenticates on a gateway started from a third
    directory, and the request it made is in the usage read from the parent: every file is in acc/."""
    key = json.loads(_run(capsys, "keys", "create", "--format", "json"))
    elsewhere = parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    port = _free_port()
    proc = _spawn("serve", "--config", "../acc/gateway.yaml", "--port", str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        r = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key['key']}"},
        )
        assert r.status_code == 200, r.text
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0  # SIGTERM: the ledger is flushed before the process exits
    monkeypatch.chdir(parent)
    usage = json.loads(_run(capsys, "usage", "--by", "key", "--format", "json"))
    assert [(g["group"], g["requests"]) for g in usage["data"]] == [(key["id"], 1)]
    assert [k["id"] for k in json.loads(_run(capsys, "keys", "list", "--format", "json"))["data"]] == [key["id"]]
    files = _files(parent)
    for name in ("breakwater-keys.db", "breakwater-keys.db.secret", "breakwater-ledger.db"):
        assert f"acc/{name}" in files
    assert [f for f in files if not f.startswith("acc/")] == ["acc", "elsewhere"]


@pytest.mark.parametrize("args", READ_ONLY, ids=[" ".join(a) for a in READ_ONLY])
def test_read_only_commands_refuse_a_missing_key_store(
    parent: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    """A command that only reads exits 1 with one line naming the store it looked for (beside the
    config, not in the current directory), and creates neither the store nor its hash secret."""
    assert main([*args, "--config", "acc/gateway.yaml"]) == 1
    err = capsys.readouterr().err
    store = parent / "acc" / "breakwater-keys.db"
    assert f"no key store at {store} (from access.store in acc/gateway.yaml)" in err
    assert len(err.splitlines()) == 1
    assert _files(parent) == ["acc", "acc/gateway.yaml"]


def test_usage_refuses_a_missing_ledger(parent: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``breakwater usage`` on a SQLite ledger that does not exist exits 1 naming it, and creates nothing."""
    assert main(["usage", "--config", "acc/gateway.yaml"]) == 1
    err = capsys.readouterr().err
    assert f"no ledger at {parent / 'acc' / 'breakwater-ledger.db'} (from ledger.url in acc/gateway.yaml)" in err
    assert len(err.splitlines()) == 1
    assert _files(parent) == ["acc", "acc/gateway.yaml"]


def test_read_only_commands_do_not_create_a_missing_hash_secret(
    parent: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the store present but its generated hash secret gone, a listing exits 1 naming the secret
    file instead of making a new one (which would silently break every key in the store)."""
    _run(capsys, "keys", "create")
    secret = parent / "acc" / "breakwater-keys.db.secret"
    secret.unlink()
    assert main(["keys", "list", "--config", "acc/gateway.yaml"]) == 1
    assert f"no key hash secret at {secret}" in capsys.readouterr().err
    assert not secret.exists()


def test_the_embedded_default_uses_the_current_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --config the stores are looked for in the current directory, and not created by a read."""
    assert main(["keys", "list"]) == 1
    assert main(["usage"]) == 1
    err = capsys.readouterr().err
    source = "the embedded default config"
    assert f"no key store at {Path.cwd() / 'breakwater-keys.db'} (from access.store in {source})" in err
    assert f"no ledger at {Path.cwd() / 'breakwater-ledger.db'} (from ledger.url in {source})" in err
    assert Path.cwd() == tmp_path and list(tmp_path.iterdir()) == []
