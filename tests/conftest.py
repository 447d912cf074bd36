"""Suite-wide guards and fixtures.

- Network guard: any socket connection beyond loopback fails the test (STYLE.md habit 10).
- ``require_service``: a test needing Redis/PostgreSQL skips with a reason when the server is
  absent, unless ``BREAKWATER_REQUIRE_SERVICES=1`` (set by ``.ci/run``) makes that a failure.
- Hypothesis keeps its caches in a temporary directory of the session, not ``.hypothesis/``.
- Write guard (``tests/write_guard.py``): each test runs in its own temporary directory, and a
  run that leaves a file new, changed or removed in the checkout fails, naming each one.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

#: ``pytester`` runs pytest inside a test (the write guard's own tests)
pytest_plugins = ["pytester", "tests.write_guard", "tests.fuzzing"]

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _loopback(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _loopback(address):
        raise RuntimeError(f"test tried to reach beyond loopback: {address!r}")
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _loopback(address):
        raise RuntimeError(f"test tried to reach beyond loopback: {address!r}")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _network_guard() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or fail under BREAKWATER_REQUIRE_SERVICES=1) when a TCP service is not listening."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError as exc:
        reason = f"{name} is not reachable at {host}:{port} ({exc})"
        if os.environ.get("BREAKWATER_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}; BREAKWATER_REQUIRE_SERVICES=1 requires it")
        pytest.skip(reason)


#: the session's home directory for Hypothesis (see ``pytest_configure``)
_HYPOTHESIS_HOME = pytest.StashKey[tempfile.TemporaryDirectory[str]]()


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis' caches go to a temporary directory, not ``.hypothesis/`` in the checkout.

    Its pytest plugin mines the project's source for constants while collecting and caches them
    (and unicode tables) in its home directory, by default in the directory pytest started from.
    The fuzz tests use no example database (``tests/fuzzing.py``), so nothing there is worth keeping.
    """
    from hypothesis.configuration import set_hypothesis_home_dir

    home = tempfile.TemporaryDirectory(prefix="hypothesis-")
    config.stash[_HYPOTHESIS_HOME] = home
    set_hypothesis_home_dir(home.name)


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(_HYPOTHESIS_HOME, None)
    if home is not None:
        home.cleanup()
