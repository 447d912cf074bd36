"""A gateway running from stored configuration versions (``serve --config-store``): applying,
rolling back and diffing through the admin API, the reload each version makes, what a version
that does not run here does, and an open stream across a new version.

A real gateway on loopback (uvicorn in a thread) over a SQLite store in the test's directory.
Waits poll a condition against a deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from breakwater.core.config import ConfigError
from breakwater.runtime.loading import load_config
from breakwater.runtime.stored_config import apply, deploy_file, versions_store
from breakwater.server.app import BreakwaterApp, create_app, create_stored_app
from tests.polling import until
from tests.runtime.test_reload import ADMIN, _chat, _readyz, _Streams, _write
from tests.server.running import serve

AUTH = {"authorization": f"Bearer {ADMIN}"}
ENV = {"ADMIN_KEY": ADMIN}


def _text(tmp: Path, **changes: Any) -> str:
    path = tmp / "draft.yaml"
    _write(path, **changes)
    return path.read_text()


def _store_apply(url: str, text: str, *, environment: bool = True) -> int:
    async def run() -> int:
        store = versions_store(url, ENV)
        await store.open()
        try:
            applied = await apply(
                store, text, author="test", message="seed", now=1.0, environ=ENV, environment=environment
            )
            return applied.version.number
        finally:
            await store.close()

    return asyncio.run(run())


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, BreakwaterApp, str]]:
    store = f"sqlite:///{tmp_path}/keys.db"
    assert _store_apply(store, _text(tmp_path)) == 1
    app = create_stored_app(store, environ=ENV)
    with serve(app) as url:
        yield url, app, store


def _post(url: str, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers=AUTH, timeout=10)


def _get(url: str, path: str) -> httpx.Response:
    return httpx.get(f"{url}{path}", headers=AUTH, timeout=10)


def _version(url: str) -> int | None:
    value: int | None = _readyz(url)["config"]["version"]
    return value


def test_an_applied_version_is_served_and_kept_in_the_history(
    gateway: tuple[str, BreakwaterApp, str], tmp_path: Path
) -> None:
    url, app, _ = gateway
    ready = _readyz(url)["config"]
    assert (ready["version"], ready["newest"]) == (1, 1) and "error" not in ready

    r = _post(url, "/admin/config/versions", {"text": _text(tmp_path, extra_route="fresh"), "message": "add fresh"})
    assert r.status_code == 201, r.text
    assert r.json()["number"] == 2 and r.json()["created"] is True
    until(lambda: _version(url) == 2, 10, "the gateway runs version 2")
    assert "fresh" in _readyz(url)["routes"]
    assert _chat(url, model="fresh").status_code == 200
    assert app.runtime.version == 2

    history = _get(url, "/admin/config/versions").json()["data"]
    assert [(v["number"], v["action"], v["message"], v["author"]) for v in history] == [
        (2, "apply", "add fresh", "admin-api"),
        (1, "apply", "seed", "test"),
    ]
    assert all("text" not in v for v in history)
    first = _get(url, "/admin/config/versions/1").json()
    assert first["text"] == _text(tmp_path) and first["hash"] == history[1]["hash"]
    diff = _get(url, "/admin/config/diff?from=1").json()
    assert (diff["from"], diff["to"]) == (1, 2)
    assert "+  fresh: {deployments: [a]" in diff["diff"]
    assert _get(url, "/admin/config").json()["version"] == 2

    # the same text again stores nothing
    again = _post(url, "/admin/config/versions", {"text": _text(tmp_path, extra_route="fresh"), "message": "x"})
    assert again.status_code == 200 and again.json() | {"created": False} == again.json()
    assert again.json()["number"] == 2


def test_rollback_applies_the_previous_version_again(gateway: tuple[str, BreakwaterApp, str], tmp_path: Path) -> None:
    url, _, _ = gateway
    assert _post(url, "/admin/config/versions", {"text": _text(tmp_path, extra_route="fresh")}).status_code == 201
    until(lambda: _version(url) == 2, 10, "the gateway runs version 2")

    r = _post(url, "/admin/config/rollback", {"author": "oncall"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["number"], body["action"], body["message"], body["author"]) == (
        3,
        "rollback",
        "rollback to version 1",
        "oncall",
    )
    until(lambda: _version(url) == 3, 10, "the gateway runs version 3")
    assert "fresh" not in _readyz(url)["routes"]
    assert _get(url, "/admin/config/versions/3").json()["text"] == _text(tmp_path)

    assert _post(url, "/admin/config/rollback", {"to": 9}).status_code == 404
    assert _post(url, "/admin/config/rollback", {"to": 3}).status_code == 404
    assert _post(url, "/admin/config/rollback", {"to": "one"}).status_code == 400
    r = _post(url, "/admin/config/rollback", {"to": 2, "message": "fresh again"})
    assert r.status_code == 201 and r.json()["message"] == "fresh again"
    until(lambda: "fresh" in _readyz(url)["routes"], 10, "version 4 (version 2's text) runs")


def test_a_bad_version_is_refused_and_nothing_is_stored(
    gateway: tuple[str, BreakwaterApp, str], tmp_path: Path
) -> None:
    url, _, _ = gateway
    r = _post(url, "/admin/config/versions", {"text": _text(tmp_path, broken=True), "message": "bad"})
    assert r.status_code == 400
    error = r.json()["error"]
    assert "nothing was stored" in error["message"]
    assert any("nowhere" in p["message"] or p["path"] == "routes.bad.deployments" for p in error["problems"])

    leaked = _text(tmp_path) + "# the key was sk-proj-a1b2c3d4e5f6a7b8c9d0\n"
    r = _post(url, "/admin/config/versions", {"text": leaked})
    assert r.status_code == 400
    assert any("credential" in p["message"] for p in r.json()["error"]["problems"])
    assert "sk-proj" not in r.text  # the refusal does not repeat the secret

    assert (
        _post(url, "/admin/config/versions", {"text": _text(tmp_path, extra_route="x"), "expect": 0}).status_code == 409
    )
    assert _post(url, "/admin/config/versions", {"message": "no text"}).status_code == 400
    assert _post(url, "/admin/config/versions", ["not", "an", "object"]).status_code == 400
    raw = httpx.post(f"{url}/admin/config/versions", content=b"{oops", headers=AUTH, timeout=10)
    assert raw.status_code == 400
    assert httpx.post(f"{url}/admin/config/versions", json={"text": "x"}, timeout=10).status_code == 401
    assert _get(url, "/admin/config/versions/abc").status_code == 404
    assert _get(url, "/admin/config/versions/7").status_code == 404
    assert _get(url, "/admin/config/diff").status_code == 400
    assert _get(url, "/admin/config/versions?limit=0").status_code == 400
    assert [v["number"] for v in _get(url, "/admin/config/versions").json()["data"]] == [1]
    assert _version(url) == 1


def test_a_version_that_does_not_run_here_leaves_the_running_one(
    gateway: tuple[str, BreakwaterApp, str], tmp_path: Path
) -> None:
    """Stored from elsewhere without the environment check, version 2 names an admin key this
    gateway's environment lacks: the gateway keeps version 1 and says why in /readyz."""
    url, _, store = gateway
    text = _text(tmp_path, extra_route="fresh").replace("env:ADMIN_KEY", "env:ONLY_ON_OTHER_HOSTS")
    assert _store_apply(store, text, environment=False) == 2
    until(lambda: "error" in _readyz(url)["config"], 10, "readyz reports the version that does not run")
    config = _readyz(url)["config"]
    assert (config["version"], config["newest"]) == (1, 2)
    assert "ONLY_ON_OTHER_HOSTS" in config["error"]
    assert _chat(url).status_code == 200
    # a version that runs clears it
    assert _post(url, "/admin/config/versions", {"text": _text(tmp_path, extra_route="ok")}).status_code == 201
    until(lambda: _version(url) == 3, 10, "version 3 runs")
    assert "error" not in _readyz(url)["config"]


def test_an_open_stream_survives_a_new_version(gateway: tuple[str, BreakwaterApp, str], tmp_path: Path) -> None:
    url, app, _ = gateway
    streams = _Streams(url, 3, token_delay_ms=150)  # about 1 s per stream
    for _ in range(3):
        assert streams.started.acquire(timeout=20)
    assert _post(url, "/admin/config/versions", {"text": _text(tmp_path, extra_route="fresh")}).status_code == 201
    until(lambda: _version(url) == 2, 10, "the gateway runs version 2")
    assert app.runtimes.retiring >= 0
    streams.join()
    assert len(streams.results) == 3
    for result in streams.results:
        assert not isinstance(result, BaseException), result
        status, text = result
        assert status == 200 and text.rstrip().endswith("data: [DONE]"), text[-200:]


def test_a_gateway_serving_a_file_has_no_versions(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    _write(path)
    app = create_app(load_config(str(path), ENV), environ=ENV, config_path=str(path))
    with serve(app) as url:
        r = _get(url, "/admin/config/versions")
        assert r.status_code == 404 and "--config-store" in r.json()["error"]["message"]
        assert _post(url, "/admin/config/rollback", {}).status_code == 404
        assert _get(url, "/admin/config").json()["version"] is None
        assert _readyz(url)["config"]["version"] is None


async def test_a_deployed_file_is_applied_when_it_changed_since_its_last_deploy(tmp_path: Path) -> None:
    """``serve --config FILE --config-store URL``: the first start applies the file; a restart
    with the same file keeps a rollback made since; a changed file is a new version."""
    store = versions_store(f"sqlite:///{tmp_path}/keys.db", ENV)
    await store.open()
    try:
        path = tmp_path / "deployed.yaml"
        _write(path)
        first = await deploy_file(store, str(path), author="serve", now=1.0, environ=ENV)
        assert first is not None and (first.version.number, first.version.action) == (1, "start-up")
        assert first.version.message == f"deployed from {path}"
        await apply(store, _text(tmp_path, extra_route="hotfix"), author="ops", message="m", now=2.0, environ=ENV)
        assert await deploy_file(store, str(path), author="serve", now=3.0, environ=ENV) is None
        assert await store.config_newest_number() == 2  # the restart kept the hotfix
        _write(path, extra_route="release")
        released = await deploy_file(store, str(path), author="serve", now=4.0, environ=ENV)
        assert released is not None and released.version.number == 3
        assert "release" in (await store.config_get()).text  # type: ignore[union-attr]
        _write(path, broken=True)
        with pytest.raises(ConfigError):
            await deploy_file(store, str(path), author="serve", now=5.0, environ=ENV)
        assert await store.config_newest_number() == 3
    finally:
        await store.close()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "text": st.text(max_size=200) | JSON,
        "message": JSON,
        "author": JSON,
        "expect": JSON,
        "to": JSON,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=FIELDS | JSON, path=st.sampled_from(["/admin/config/versions", "/admin/config/rollback"]))
def test_arbitrary_bodies_never_get_a_500(gateway: tuple[str, BreakwaterApp, str], body: Any, path: str) -> None:
    url, _, _ = gateway
    r = _post(url, path, body)
    assert r.status_code < 500, r.text
    assert (r.status_code in (200, 201, 400, 404, 409) and "error" in r.json()) or r.status_code in (200, 201)
