"""The benchmark's smoke mode runs in the test suite, so the harness cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench(script: str, *args: str, cwd: Path) -> str:
    """Run ``bench/<script>`` with ``args`` in ``cwd``; its standard output (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )
    return done.stdout


def test_bench_smoke(tmp_path: Path) -> None:
    """`bench/run.py --smoke` starts the mock and Breakwater, drives a few seconds of load with no failures, and writes JSON and Markdown."""
    bench("run.py", "--smoke", "--out", str(tmp_path), cwd=tmp_path)
    result = json.loads((tmp_path / "smoke.json").read_text())["smoke"]
    for mode in ("plain", "stream"):
        assert result[mode]["ok"] > 50
        assert result[mode]["failed"] == 0
    assert 0 < result["startup_s"] < 30
    assert result["rss_mb"] > 0
    assert "| plain |" in (tmp_path / "smoke.md").read_text()


def test_pipeline_cost_runs_and_prints_its_table(tmp_path: Path) -> None:
    """`bench/pipeline_cost.py` builds real runtimes (access off and on, the refusal detector off,
    a route with variants) and times every row."""
    out = bench("pipeline_cost.py", "--requests", "300", "--repeats", "1", cwd=tmp_path)
    rows = [line for line in out.splitlines() if line.startswith("| ") and "us/request" not in line]
    labels = [row.split("|")[1].strip() for row in rows if not row.startswith("| ---")]
    assert labels == [
        "calls only",
        "pipeline, no stages",
        "two pass-through stages",
        "access off",
        "access on, one key",
        "access off, prompts configured",
        "access off, fresh requests",
        "access off, prompt rendered",
        "access off, refusals off",
        "access off, refusals off, variants on another route",
        "access off, refusals off, variants acting",
    ]
    for row in rows[1:]:
        plain, stream = (float(cell) for cell in row.split("|")[2:4])
        assert plain > 0 and stream > 0


def test_cpu_per_request_splits_the_event_loop_thread_from_the_others() -> None:
    """`bench/cpu_per_request.py` reads every thread's CPU ticks and divides the deltas by requests."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import cpu_per_request
    finally:
        sys.path.remove(str(ROOT / "bench"))

    ticks = cpu_per_request.thread_ticks(os.getpid())
    assert os.getpid() in ticks and all(user >= 0 and system >= 0 for user, system in ticks.values())
    hz = os.sysconf("SC_CLK_TCK")
    before = {100: (10, 5), 101: (0, 0)}
    after = {100: (10 + hz, 5 + hz // 2), 101: (hz // 4, 0), 102: (hz // 4, 0)}  # 102 started meanwhile
    costs = cpu_per_request.per_request(100, before, after, n=1000)
    assert costs["main_user_us"] == 1000.0
    assert costs["main_system_us"] == (hz // 2) * 1e6 / hz / 1000
    assert costs["other_threads_us"] == 2 * (hz // 4) * 1e6 / hz / 1000
    assert costs["total_us"] == pytest.approx(
        costs["main_user_us"] + costs["main_system_us"] + costs["other_threads_us"]
    )


def test_semantic_cache_eval_runs_the_lookup_path_on_a_pairs_file(tmp_path: Path) -> None:
    """`bench/semantic_cache_eval.py --json` stores each a, looks up each b, and reports the rates."""
    pairs = tmp_path / "pairs.jsonl"
    rows = [
        {"a": "How do I reset my password?", "b": "How can I reset my password?", "duplicate": 1},
        {"a": "What is the capital of France?", "b": "What is the capital of France?", "duplicate": 1},
        {"a": "How do I enable 2FA on my account?", "b": "How do I disable 2FA on my account?", "duplicate": 0},
        {"a": "Convert 10 EUR to USD", "b": "Convert 10 USD to EUR", "duplicate": 0},
    ]
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = json.loads(bench("semantic_cache_eval.py", "--pairs", str(pairs), "--json", "--table", cwd=tmp_path))
    assert (result["pairs"], result["duplicates"], result["threshold"]) == (4, 2, 0.96)
    assert (result["hit_rate"], result["false_hit_rate"]) == (1.0, 0.0)
    assert result["table"][0]["threshold"] == 0.9 and len(result["table"]) == 10


def test_cache_savings_prices_a_mock_run_from_its_ledger(tmp_path: Path) -> None:
    """`bench/cache_savings.py --json` runs a gateway on the mock and prices its ledger three ways:
    the semantic hits are the planned share, and each cache lowers the spend."""
    result = json.loads(bench("cache_savings.py", "--requests", "20", "--json", cwd=tmp_path))
    assert (result["requests"], result["semantic hits"]) == (20, 6)
    assert result["of which read from the prompt cache"] > 1024
    spends = [
        float(result[k]) for k in ("spend, no caching (USD)", "spend, prompt caching (USD)", "spend, both caches (USD)")
    ]
    assert spends[0] > spends[1] > spends[2] > 0


def test_dlp_cost_runs_and_prints_every_row(tmp_path: Path) -> None:
    """`bench/dlp_cost.py` times the detectors on three 4k-token prompts and the dlp stage four ways."""
    out = bench("dlp_cost.py", "--repeats", "5", cwd=tmp_path)
    for label in (
        "plain prose",
        "prose with numbers",
        "numbers and findings",
        "not ASCII",
        "no stage",
        "configured, not acting",
    ):
        assert label in out
    assert "found: card,email,iban,phone" in out  # the planted findings are found
    assert "mask + restore, short prompt" in out


def test_guardrails_cost_prints_what_every_case_adds(tmp_path: Path) -> None:
    """`bench/guardrails_cost.py` times the three guardrail stages together on each 4k-token prompt."""
    out = json.loads(bench("guardrails_cost.py", "--repeats", "3", "--json", cwd=tmp_path))["added_p50_ms"]
    assert set(out) == {"prose", "prose, numbers", "prose, not ASCII", "prose, leetspeak and a URL", "acting"}
    assert all(isinstance(ms, float) for ms in out.values())


def test_trim_cost_prints_what_every_case_adds(tmp_path: Path) -> None:
    """`bench/trim_cost.py` times the trim stage under its budget (short and 4k-token prompts) and trimming."""
    out = json.loads(bench("trim_cost.py", "--repeats", "3", "--json", cwd=tmp_path))["added_p50_ms"]
    assert set(out) == {"short, under budget", "4k tokens, under budget", "40 turns, trimmed"}
    assert all(isinstance(ms, float) for ms in out.values())


def test_token_estimate_accuracy_prints_its_table(tmp_path: Path) -> None:
    """`bench/token_estimate_accuracy.py` measures the OpenAI estimates against OpenAI's counting
    (within 1%) and says the Claude and Gemini rows have no reference without one."""
    rows = json.loads(bench("token_estimate_accuracy.py", "--json", cwd=tmp_path))
    openai_rows = [r for r in rows if str(r["family"]).startswith("OpenAI")]
    assert {r["kind"] for r in openai_rows} == {"prose", "code", "json", "other scripts"}
    assert all(r["n"] > 0 and r["mean_abs_pct"] < 1.0 for r in openai_rows)
    assert any("no reference" in str(r.get("note")) for r in rows)
