"""Reloads under load: wrk streams at c=10 while the configuration is reloaded again and again.

    python bench/reload_under_load.py [--seconds 10] [--reloads 10]

``breakwater serve`` (ledger on, access off) in front of a ``breakwater mock`` upstream; wrk
drives streamed chat completions over 10 connections while this script rewrites the config
file (a new route each time, and a changed deployment timeout every other time) and calls
``POST /admin/reload``. Then the gateway is stopped (the ledger flushed) and the ledger read:

- every request wrk counts was answered (no socket error, no non-2xx);
- every reload answered 200;
- the ledger holds one row per request, every one status 200 with no error class: no stream
  was cut (a cut stream ends with an error event, which the ledger records as its error).

Needs wrk. Exits 1 when any of these does not hold.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx2 as httpx
import run  # bench/run.py: processes, wrk, the mock upstream


def _config(path: Path, mock: str, tmp: Path, step: int) -> None:
    timeout = 600 if step % 2 == 0 else 599
    extra = "".join(f"  extra{i}: {{deployments: [bench]}}\n" for i in range(step))
    path.write_text(
        f"ledger: {{url: 'sqlite:///{tmp}/ledger.db', spool_path: '{tmp}/ledger.spool'}}\n"
        "access: {enabled: false}\n"
        "providers:\n"
        f"  upstream: {{type: openai, base_url: '{mock}/v1', api_key: 'env:BENCH_UPSTREAM_KEY'}}\n"
        "deployments:\n"
        f"  bench: {{provider: upstream, model: bench-model, timeouts: {{total: {timeout}}}}}\n"
        "routes:\n"
        "  bench: {deployments: [bench]}\n" + extra
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--reloads", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as name, run.mock_server() as mock:
        tmp = Path(name)
        config = tmp / "gateway.yaml"
        _config(config, mock, tmp, 0)
        port = run.free_port()
        proc = run.spawn(
            [sys.executable, "-m", "breakwater", "serve", "--config", str(config), "--port", str(port)],
            run.GATEWAY_CPU,
            {"BENCH_UPSTREAM_KEY": "sk-bench-upstream"},
        )
        url = f"http://127.0.0.1:{port}"
        result: dict[str, Any] = {}
        try:
            run.first_success(f"{url}/v1/chat/completions", run.MODEL, proc, time.monotonic())
            load: dict[str, float] = {}
            driver = threading.Thread(
                target=lambda: load.update(
                    run.wrk(f"{url}/v1/chat/completions", run.body(run.MODEL, True), 10, args.seconds)
                )
            )
            driver.start()
            statuses: list[int] = []
            pause = args.seconds / (args.reloads + 2)
            for step in range(1, args.reloads + 1):
                time.sleep(pause)  # spreading the reloads over the load, not synchronising anything
                _config(config, mock, tmp, step)
                statuses.append(httpx.post(f"{url}/admin/reload", timeout=10).status_code)
            driver.join()
            ready = httpx.get(f"{url}/readyz", timeout=5).json()
        finally:
            run.stop(proc)
        with sqlite3.connect(tmp / "ledger.db") as db:
            rows, bad = db.execute(
                "select count(*), sum(case when status != 200 or error_class is not null then 1 else 0 end) "
                "from breakwater_ledger where route = ?",
                (run.MODEL,),
            ).fetchone()
        result = {
            "wrk_requests": int(load["requests"]),
            "wrk_errors": int(load["errors"]),
            "rps": round(load["rps"]),
            "reloads": statuses,
            "reloads_reported": ready["config"]["reloads"],
            # wrk counts the requests it completed; the ledger also has the ones in flight when it stopped
            "ledger_rows": rows,
            "ledger_rows_not_200_or_failed": bad or 0,
        }
    print(json.dumps(result, indent=2))
    ok = (
        result["wrk_errors"] == 0
        and statuses == [200] * args.reloads
        and result["reloads_reported"] == args.reloads
        and result["ledger_rows"] >= result["wrk_requests"] > 0
        and result["ledger_rows_not_200_or_failed"] == 0
    )
    print("OK: no request lost, no stream cut" if ok else "FAILED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
