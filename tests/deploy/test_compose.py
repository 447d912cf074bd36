"""compose.yaml: two gateway replicas behind nginx, sharing Redis and PostgreSQL.

Checked in two ways. Always: the file's shape, and that the gateway config it mounts passes
Breakwater's own checks with the environment compose gives it, keeping everything the replicas
must agree on in Redis or PostgreSQL. Where a container runtime is there: the stack is built and
started, and requests through the load balancer reach both replicas and one key store.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml

from breakwater.core.config import parse_config
from breakwater.runtime.wiring import check_environment

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
GATEWAY_CONFIG = ROOT / "deploy" / "compose" / "breakwater.yaml"


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment with compose's ``${NAME:-default}`` taken at its default."""
    return {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in service["environment"].items()}


def test_two_gateways_share_one_config_redis_and_postgres() -> None:
    services = _compose()["services"]
    assert {"gateway-1", "gateway-2", "lb", "redis", "postgres"} <= set(services)
    one, two = services["gateway-1"], services["gateway-2"]
    assert one["volumes"] == two["volumes"] and one["environment"] == two["environment"]
    assert any(v.startswith("./deploy/compose/breakwater.yaml:") for v in one["volumes"])
    assert {"postgres", "redis"} <= set(one["depends_on"])
    nginx = (ROOT / "deploy" / "compose" / "nginx.conf").read_text()
    assert "server gateway-1:8080" in nginx and "server gateway-2:8080" in nginx
    assert "proxy_buffering off" in nginx  # streams are not held back by the load balancer


def test_the_mounted_config_passes_the_gateways_checks_and_shares_its_state() -> None:
    config = parse_config(GATEWAY_CONFIG.read_text(), str(GATEWAY_CONFIG))
    env = _environment(_compose()["services"]["gateway-1"])
    assert check_environment(config, env) == []
    assert env["KEYS_DATABASE_URL"].startswith("postgresql://") and env["REDIS_URL"].startswith("redis://")
    assert config.access.enabled and config.access.store == "env:KEYS_DATABASE_URL"
    assert config.ledger.url == "env:LEDGER_DATABASE_URL"
    assert config.limits.backend == "redis" and config.cache.backend == "redis" and config.redis is not None
    assert config.server.drain_delay_s > 0


# -- the stack itself, where a container runtime can run it ------------------------------------------

NOT_A_SERVICE = (
    "; a container runtime is not a service the suite needs, so BREAKWATER_REQUIRE_SERVICES=1 "
    "does not make this a failure"
)


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def _runtime_or_skip() -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on this machine" + NOT_A_SERVICE)
    if _docker("compose", "version").returncode != 0:
        pytest.skip("the docker CLI has no compose plugin" + NOT_A_SERVICE)
    if _docker("info").returncode != 0:
        pytest.skip("no container runtime answers (docker info failed)" + NOT_A_SERVICE)
    images = [line.split()[1] for line in COMPOSE.read_text().splitlines() if line.strip().startswith("image: ")]
    images += [args.split()[0] for word, args in _from_lines() if word == "FROM"]
    for image in {i for i in images if not i.startswith("breakwater:")}:
        if _docker("image", "inspect", image).returncode != 0 and _docker("pull", image, timeout=300).returncode:
            pytest.skip(f"the image {image} is not here and cannot be pulled" + NOT_A_SERVICE)


def _from_lines() -> list[tuple[str, str]]:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    return [(line.split()[0], line.partition(" ")[2]) for line in lines if line.startswith("FROM ")]


@pytest.fixture(scope="module")
def stack() -> Iterator[str]:
    _runtime_or_skip()
    project = ["compose", "-f", str(COMPOSE), "-p", "breakwater-test"]
    up = _docker(*project, "up", "-d", "--build", "--wait", timeout=900)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield "http://127.0.0.1:8080"
    finally:
        _docker(*project, "down", "-v", "--remove-orphans", timeout=300)


def test_requests_through_the_load_balancer_reach_both_replicas(stack: str) -> None:
    admin = {"authorization": "Bearer local-admin-key-change-me"}
    deadline = time.monotonic() + 60
    while httpx.get(f"{stack}/readyz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the stack did not become ready"
        time.sleep(0.5)  # polling a condition with a deadline
    made = httpx.post(f"{stack}/admin/keys", json={"name": "compose-test"}, headers=admin, timeout=10)
    assert made.status_code in (200, 201), made.text
    key = made.json()["key"]
    for _ in range(20):  # round robin: each replica authenticates the key made through the other
        r = httpx.post(
            f"{stack}/v1/chat/completions",
            json={"model": "mock", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key}", "connection": "close"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
