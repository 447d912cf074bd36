"""Fixtures for the mock provider's tests: a fake clock and a service on a seeded random source."""

from __future__ import annotations

import pytest

from breakwater.infra.clock import SystemRandom
from breakwater.infra.mock.service import MockService
from tests.infra.mock.harness import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(clock: FakeClock) -> MockService:
    return MockService(clock, SystemRandom(7))
