"""Fixtures of the batch runner's tests: a memory store, a manual clock, the scripted executor
and load gauge (``scripted.py``)."""

from __future__ import annotations

import pytest

from breakwater.infra.batch_memory import MemoryBatchStore
from breakwater.infra.clock import ManualClock
from tests.engine.batches.scripted import Fake, Load, T


@pytest.fixture
def store() -> MemoryBatchStore:
    return MemoryBatchStore()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(wall=T)


@pytest.fixture
def fake() -> Fake:
    return Fake()


@pytest.fixture
def load() -> Load:
    return Load()
