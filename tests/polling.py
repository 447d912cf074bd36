"""Waiting in tests for something another process or thread does: a condition polled with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def until(condition: Callable[[], bool], limit_s: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail the test, naming ``what``, after ``limit_s`` seconds."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.05)  # polling a condition with a deadline, not a fixed wait
