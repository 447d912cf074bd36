"""Fixtures for the counter backends: a Redis namespace of the test's own, emptied afterwards.

Needs Redis on 127.0.0.1:6379: skipped when absent, a failure under
``BREAKWATER_REQUIRE_SERVICES=1``. Each test's keys live under ``bwtest:<random>:`` and are
deleted after it, so tests never see each other's counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest
import redis

from ...conftest import require_service

HOST, PORT = "127.0.0.1", 6379
URL = f"redis://{HOST}:{PORT}/0"


@pytest.fixture
def namespace() -> Iterator[str]:
    """A fresh key prefix on the real Redis; its keys are deleted after the test.

    Synchronous (a blocking client for the clean-up), so the parametrised backend fixture can
    ask for it only when it needs Redis.
    """
    require_service("Redis", HOST, PORT)
    prefix = f"bwtest:{uuid4().hex}:"
    yield prefix
    with redis.Redis.from_url(URL) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
