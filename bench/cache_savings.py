"""What the caches save, from the ledger of a mock run: provider prompt caching and the semantic cache.

    python bench/cache_savings.py [--requests 100] [--json]

Starts the mock provider's Anthropic wire in-process behind ``breakwater serve`` (a route with
``cache: {mode: semantic}`` on a deployment with ``prompt_cache: {auto: true}``, priced like a
Sonnet-class model), sends requests whose prompt is a ~3,000-token system prompt (the same for
all) and a ~1,000-token question, 30% of them rewordings of an earlier question, then reads the
SQLite ledger the gateway wrote and prices the same traffic three ways:

- no caching at all: every request's input tokens at the input price;
- provider prompt caching only: what the ledger's rows cost, plus what the semantic hits would
  have cost (their ``saved_usd``);
- both: what the ledger's rows cost.

The mock counts tokens its own way (docs/mock.md), so the figures are the mock's, not a
provider's; the arithmetic is the same.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py: process helpers

#: USD per million tokens: input, output, cache writes (1.25x) and reads (0.1x), Sonnet-class
PRICE = {
    "input_per_mtok": "3",
    "output_per_mtok": "15",
    "cache_write_per_mtok": "3.75",
    "cached_input_per_mtok": "0.30",
}
SYSTEM = "You are the support assistant of Example Corp. " + " ".join(
    f"Rule {i}: answer from the policy, cite the section, never guess." for i in range(230)
)
TOPICS = [
    "refund",
    "invoice",
    "password",
    "shipping",
    "warranty",
    "account",
    "delivery",
    "upgrade",
    "contract",
    "login",
]


def question(i: int, reworded: bool = False) -> str:
    """Question ``i``: about 1,000 tokens of context, then the ask; reworded, one word differs."""
    topic = TOPICS[i % len(TOPICS)]
    context = " ".join(f"Note {j} about the {topic} case {i}: the customer wrote again." for j in range(90))
    ask = "How can I resolve" if reworded else "How do I resolve"
    return f"{context} {ask} the {topic} case number {i} for this customer?"


def config(tmp: Path) -> Path:
    path = tmp / "savings.yaml"
    data = {
        "access": {"enabled": False},
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "spool_path": str(tmp / "spool"), "flush_interval_s": 0.05},
        "providers": {"claude": {"type": "mock", "wire": "anthropic"}},
        "deployments": {
            "sonnet": {"provider": "claude", "model": "mock-claude", "price": PRICE, "prompt_cache": {"auto": True}}
        },
        "routes": {"support": {"deployments": ["sonnet"], "cache": {"mode": "semantic"}}},
    }
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


def traffic(n: int) -> list[tuple[int, bool]]:
    """(question number, reworded?): 70% new questions, 30% rewordings of one asked before."""
    plan: list[tuple[int, bool]] = []
    asked = 0
    for i in range(n):
        if i % 10 in (3, 6, 9) and asked:
            plan.append(((i * 7) % asked, True))
        else:
            plan.append((asked, False))
            asked += 1
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        port = run.free_port()
        cmd = [sys.executable, "-m", "breakwater", "serve", "--config", str(config(tmp)), "--port", str(port)]
        proc = run.spawn(cmd, run.GATEWAY_CPU)
        try:
            url = f"http://127.0.0.1:{port}"
            run.first_success(f"{url}/v1/chat/completions", "support", proc, time.monotonic())
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
            ids = []
            for number, reworded in traffic(args.requests):
                messages: Any = [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": question(number, reworded)},
                ]
                answer = client.chat.completions.with_raw_response.create(
                    model="support", messages=messages, temperature=0
                )
                ids.append(answer.headers["x-request-id"])
            rows = _rows(tmp / "ledger.db", ids)
        finally:
            run.stop(proc)
    result = _prices(rows)
    if args.json:
        print(json.dumps(result))
        return 0
    for name, value in result.items():
        print(f"{name:>34}: {value}")
    return 0


def _rows(ledger: Path, ids: list[str]) -> list[dict[str, Any]]:
    """The run's ledger rows, once the writer has flushed them all (bounded wait)."""
    deadline = time.monotonic() + 30
    while True:
        db = sqlite3.connect(ledger)
        db.row_factory = sqlite3.Row
        try:
            rows = [dict(r) for r in db.execute("SELECT * FROM breakwater_ledger WHERE route = 'support'")]
        except sqlite3.OperationalError:
            rows = []
        finally:
            db.close()
        if {r["request_id"] for r in rows} >= set(ids):
            return [r for r in rows if r["request_id"] in set(ids)]
        if time.monotonic() > deadline:
            raise SystemExit("the ledger did not receive every row")
        time.sleep(0.05)


def _prices(rows: list[dict[str, Any]]) -> dict[str, Any]:
    mtok = Decimal(1_000_000)
    paid = [r for r in rows if r["cache"] != "semantic-hit"]
    hits = [r for r in rows if r["cache"] == "semantic-hit"]
    input_tokens = sum(r["input_tokens"] for r in paid)
    cached = sum(r["cached_input_tokens"] for r in paid)
    written = sum(r["cache_write_tokens"] for r in paid)
    output = sum(r["output_tokens"] for r in paid)
    spend = sum((Decimal(r["cost_usd"]) for r in rows), Decimal(0))
    saved = sum((Decimal(r["saved_usd"]) for r in hits), Decimal(0))
    # without any cache, every request is a full-price call like the one it would have been
    per_input = Decimal(PRICE["input_per_mtok"]) / mtok
    per_output = Decimal(PRICE["output_per_mtok"]) / mtok
    full = input_tokens * per_input + output * per_output
    avg_full = full / len(paid)
    return {
        "requests": len(rows),
        "semantic hits": len(hits),
        "semantic hit rate": round(len(hits) / len(rows), 3),
        "input tokens per upstream call": round(input_tokens / len(paid)),
        "of which read from the prompt cache": round(cached / len(paid)),
        "of which written to it": round(written / len(paid)),
        "output tokens per upstream call": round(output / len(paid)),
        "spend, no caching (USD)": f"{avg_full * len(rows):.4f}",
        "spend, prompt caching (USD)": f"{spend + saved:.4f}",
        "spend, both caches (USD)": f"{spend:.4f}",
        "saved by the semantic cache (USD)": f"{saved:.4f}",
    }


if __name__ == "__main__":
    raise SystemExit(main())
