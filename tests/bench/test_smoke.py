"""The benchmark's smoke mode runs in the test suite, so the harness cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke(tmp_path: Path) -> None:
    """`bench/run.py --smoke` starts the mock and Breakwater, drives a few seconds of load with no failures, and writes JSON and Markdown."""
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
    )
    result = json.loads((tmp_path / "smoke.json").read_text())["smoke"]
    for mode in ("plain", "stream"):
        assert result[mode]["ok"] > 50
        assert result[mode]["failed"] == 0
    assert 0 < result["startup_s"] < 30
    assert result["rss_mb"] > 0
    assert "| plain |" in (tmp_path / "smoke.md").read_text()
